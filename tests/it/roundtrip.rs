//! Documents come back byte for byte, through `cat` (stdout) and `export` (files), whatever
//! their size, and folder imports keep the tree's categories without following symlinks.

use crate::util;

use std::path::Path;

use serde_json::Value;
use util::*;

/// Adds `bytes` as `name`, then checks `ls`, `cat` and `export` give back exactly those bytes.
fn round_trip(name: &str, bytes: &[u8]) {
    let v = Vault::init();
    let path = v.write(name, bytes);
    let id = v.add(&path, &["--date", "2024-02-29"]);

    let docs = v.ls(&[]);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["id"], id.as_str());
    assert_eq!(docs[0]["size"], bytes.len() as u64);
    assert_eq!(docs[0]["sha256"], sha256_hex(bytes).as_str());
    assert_eq!(docs[0]["date"], "2024-02-29");

    // A unique prefix is enough to name a document.
    let out = v.ok(&["cat", short(&id)]);
    assert_bytes_eq(&out.stdout, bytes, &format!("cat of {name}"));
    assert!(out.stderr.is_empty(), "cat: {}", text(&out.stderr));

    let dest = v.work.join("export");
    let out = v.ok(&["export", &id, "-o", s(&dest), "--json"]);
    let written: Value = serde_json::from_slice(&out.stdout).unwrap();
    let written = written.as_array().unwrap();
    assert_eq!(written.len(), 1, "{written:?}");
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let expected = dest.join(format!("2024-02-29 {stem}.{ext}"));
    assert_eq!(written[0]["path"], s(&expected));
    assert_eq!(files_under(&dest), vec![expected.clone()]);
    assert_bytes_eq(
        &std::fs::read(&expected).unwrap(),
        bytes,
        &format!("export of {name}"),
    );
}

#[test]
fn empty_file_round_trips() {
    round_trip("empty.bin", b"");
}

#[test]
fn one_byte_file_round_trips() {
    round_trip("one.bin", &[0xa7]);
}

#[test]
fn file_of_exactly_64_kib_round_trips() {
    // age encrypts in 64 KiB chunks: a file that fills the first one exactly is an edge case.
    round_trip("chunk.bin", &pseudo_random(65536, 1));
}

#[test]
fn file_of_64_kib_plus_one_round_trips() {
    round_trip("chunk1.bin", &pseudo_random(65537, 2));
}

#[test]
fn multi_megabyte_file_round_trips() {
    round_trip("scanner.dat", &pseudo_random(5 << 20, 3));
}

#[test]
fn text_file_round_trips() {
    let mut t = String::new();
    for i in 0..5000 {
        t.push_str(&format!("ligne {i}: créatinine 80 µmol/L\r\n"));
    }
    round_trip("bilan.txt", t.as_bytes());
}

fn dicom(payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 128];
    b.extend_from_slice(b"DICM");
    b.extend_from_slice(payload);
    b
}

#[test]
fn folder_tree_is_imported_with_categories_from_folder_names_and_symlinks_skipped() {
    let v = Vault::init();
    let scan = dicom(&pseudo_random(70_000, 4));
    let ordo = "Amoxicilline 1 g, 2 fois par jour pendant 7 jours\n".as_bytes();
    let misc: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let outside = v.write(
        "outside-secret.txt",
        b"must not be imported through a link\n",
    );
    let root = v.work.join("root");
    v.write("root/imagerie/2024/scan.dcm", &scan);
    v.write("root/prescription/ordo.txt", ordo);
    v.write("root/misc/x.bin", &misc);
    let file_link = root.join("misc/link-to-outside.txt");
    let dir_link = root.join("imagerie/link-to-misc");
    std::os::unix::fs::symlink(&outside, &file_link).unwrap();
    std::os::unix::fs::symlink(root.join("misc"), &dir_link).unwrap();

    let out = v.ok(&["add", s(&root), "--date", "2024-05-06"]);
    let err = text(&out.stderr);
    for link in [&file_link, &dir_link] {
        assert!(
            err.contains(&format!(
                "skipped {}: symbolic links are not followed",
                link.display()
            )),
            "no skip message for {}; stderr:\n{err}",
            link.display()
        );
    }

    let docs = v.ls(&[]);
    let mut got: Vec<(String, String, String)> = docs
        .iter()
        .map(|d| {
            (
                d["title"].as_str().unwrap().to_string(),
                d["category"].as_str().unwrap().to_string(),
                d["media_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("ordo", "prescription", "text/plain"),
        ("scan", "imagerie", "application/dicom"),
        ("x", "autre", "application/octet-stream"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want, "documents imported from the tree");

    let by_title = |t: &str| -> String {
        docs.iter()
            .find(|d| d["title"] == t)
            .map(|d| d["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    for (title, bytes) in [("scan", &scan[..]), ("ordo", ordo), ("x", &misc[..])] {
        let out = v.ok(&["cat", &by_title(title)]);
        assert_bytes_eq(&out.stdout, bytes, &format!("cat {title}"));
    }

    let dest = v.work.join("export-all");
    v.ok(&["export", "--all", "-o", s(&dest)]);
    let mut names: Vec<String> = files_under(&dest)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "2024-05-06 ordo.txt",
            "2024-05-06 scan.dcm",
            "2024-05-06 x.bin"
        ]
    );
    assert_bytes_eq(
        &std::fs::read(dest.join("2024-05-06 scan.dcm")).unwrap(),
        &scan,
        "exported scan",
    );
    assert_bytes_eq(
        &std::fs::read(dest.join("2024-05-06 ordo.txt")).unwrap(),
        ordo,
        "exported ordo",
    );
    assert_bytes_eq(
        &std::fs::read(dest.join("2024-05-06 x.bin")).unwrap(),
        &misc,
        "exported x",
    );

    // Exporting one category gives only that category.
    let dest = v.work.join("export-imagerie");
    v.ok(&["export", "--category", "imagerie", "-o", s(&dest)]);
    assert_eq!(files_under(&dest), vec![dest.join("2024-05-06 scan.dcm")]);
}

#[test]
fn explicit_category_wins_over_the_folder_name() {
    let v = Vault::init();
    v.write("tree/imagerie/compte-rendu-irm.txt", b"IRM du genou: RAS\n");
    v.ok(&["add", s(&v.work.join("tree")), "--category", "compte-rendu"]);
    let docs = v.ls(&[]);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["category"], "compte-rendu");
}

/// A small PNG-looking file: binary by content, with an ASCII marker to look for.
fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend_from_slice(b"PAYLOAD-MARKER-3141");
    b.extend_from_slice(&[0, 0xff, 0x10, 0x80, 0]);
    b
}

#[test]
fn cat_writes_binary_content_to_a_pipe() {
    let v = Vault::init();
    let bytes = png();
    let id = v.add(&v.write("radio.png", &bytes), &[]);
    assert_eq!(v.ls(&[])[0]["media_type"], "image/png");
    // stdout is a pipe here, not a terminal: no refusal, no --force needed.
    let out = v.ok(&["cat", &id]);
    assert_bytes_eq(&out.stdout, &bytes, "cat of a binary document");
}

/// `script` gives carnet a terminal for stdout.
fn run_on_terminal(script: &Path, v: &Vault, args: &str) -> std::process::Output {
    let bin = bin();
    let line = format!("'{}' --vault '{}' {args}", bin.display(), v.dir.display());
    std::process::Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .env_remove("CARNET_VAULT")
        .env_remove("CARNET_IDENTITY")
        .env("CARNET_PASSPHRASE", PASSPHRASE)
        .env("CARNET_SCRYPT_LOG_N", "10")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn cat_refuses_binary_on_a_terminal_unless_forced() {
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let v = Vault::init();
    let id = v.add(&v.write("radio.png", &png()), &[]);
    let out = run_on_terminal(&script, &v, &format!("cat {id}"));
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("error: radio is binary (image/png)"),
        "{shown}"
    );
    assert!(shown.contains("--force"), "{shown}");
    assert!(!shown.contains("PAYLOAD-MARKER"), "{shown}");

    let out = run_on_terminal(&script, &v, &format!("cat --force {id}"));
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("PAYLOAD-MARKER-3141"));
}
