//! Everyday document handling: defaults on `add`, duplicates stored once, `rm`, `export`
//! (names, no overwrite without --force) and `ls` filters and order.

use crate::util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use util::*;

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = files_under(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn title_defaults_to_the_file_name_and_date_to_its_modification_day() {
    let v = Vault::init();
    let p = v.write("Radio du thorax.v2.jpeg-like", b"pas une image\n");
    let st = Command::new("touch")
        .args(["-d", "2019-06-15T12:00:00", s(&p)])
        .status()
        .unwrap();
    assert!(st.success());
    let out = v.ok(&["add", s(&p)]);
    let docs = v.ls(&[]);
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d["title"], "Radio du thorax.v2");
    assert_eq!(d["date"], "2019-06-15");
    assert_eq!(d["category"], "autre");
    assert_eq!(d["author"], Value::Null);
    assert_eq!(d["tags"], serde_json::json!([]));
    assert_eq!(d["media_type"], "text/plain");
    assert!(
        d["added_at"].as_str().unwrap().ends_with('Z'),
        "added_at is UTC: {}",
        d["added_at"]
    );
    let id = d["id"].as_str().unwrap();
    assert_eq!(
        text(&out.stdout),
        format!("added {}  Radio du thorax.v2\n", short(id))
    );
}

#[test]
fn duplicate_content_is_stored_once() {
    let v = Vault::init();
    let bytes = pseudo_random(80_000, 31);
    let id = v.add(
        &v.write("scanner-2024.bin", &bytes),
        &["--title", "Scanner"],
    );
    let objects = v.objects();
    assert_eq!(objects.len(), 1);

    // Same bytes, another name, other metadata.
    let copy = v.write("copie/scanner-copie.dat", &bytes);
    let out = v.ok(&[
        "add",
        s(&copy),
        "--title",
        "Autre nom",
        "--category",
        "imagerie",
    ]);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("already in vault as {}", short(&id))),
        "{err}"
    );
    assert!(err.contains(s(&copy)), "the message names the file: {err}");
    assert!(
        out.stdout.is_empty(),
        "nothing was added: {}",
        text(&out.stdout)
    );
    assert_eq!(v.objects(), objects, "objects/ must not grow");
    let docs = v.ls(&[]);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["title"], "Scanner");

    // --json says so too.
    let out = v.ok(&["add", "--json", s(&copy)]);
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome[0]["status"], "duplicate");
    assert_eq!(outcome[0]["id"], id.as_str());
    assert_eq!(v.objects(), objects);
    assert_eq!(
        files_under(&v.dir.join("tmp")),
        Vec::<PathBuf>::new(),
        "a duplicate left a temp file behind"
    );
}

#[test]
fn identical_files_in_one_folder_import_are_stored_once() {
    let v = Vault::init();
    let same = pseudo_random(10_000, 32);
    v.write("lot/a.bin", &same);
    v.write("lot/b.bin", &same);
    v.write("lot/c.bin", &pseudo_random(10_000, 33));
    let out = v.ok(&["add", s(&v.work.join("lot"))]);
    let docs = v.ls(&[]);
    let mut titles: Vec<&str> = docs.iter().map(|d| d["title"].as_str().unwrap()).collect();
    titles.sort();
    assert_eq!(titles, ["a", "c"]);
    let a = docs.iter().find(|d| d["title"] == "a").unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "already in vault as {}",
            short(a["id"].as_str().unwrap())
        )),
        "{err}"
    );
    assert_eq!(v.objects().len(), 2);
}

#[test]
fn rm_with_yes_removes_the_document_and_its_object() {
    let v = Vault::init();
    let keep = v.add(&v.write("garder.txt", b"a garder\n"), &[]);
    let gone = v.add(&v.write("supprimer.txt", b"a supprimer\n"), &[]);
    let before = v.objects();
    assert_eq!(before.len(), 2);

    let out = v.ok(&["rm", short(&gone), "--yes"]);
    assert_eq!(
        text(&out.stdout),
        format!("removed {}  supprimer\n", short(&gone))
    );
    let ids: Vec<String> = v
        .ls(&[])
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&keep));
    let after = v.objects();
    assert_eq!(
        after.len(),
        1,
        "the removed document's object is still there"
    );
    assert!(before.contains(&after[0]));

    assert_error(
        &v.run(&["cat", &gone]),
        &[&format!("no document with id {gone}")],
    );
    assert_eq!(v.ok(&["cat", &keep]).stdout, b"a garder\n");
}

#[test]
fn rm_removes_several_documents_at_once() {
    let v = Vault::init();
    let a = v.add(&v.write("a.txt", b"a\n"), &[]);
    let b = v.add(&v.write("b.txt", b"b\n"), &[]);
    let c = v.add(&v.write("c.txt", b"c\n"), &[]);
    v.ok(&["rm", &a, short(&c), "--yes"]);
    let left: Vec<Value> = v.ls(&[]);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], b.as_str());
    assert_eq!(v.objects().len(), 1);
}

#[test]
fn rm_without_yes_and_no_terminal_refuses_and_changes_nothing() {
    let v = Vault::init();
    let id = v.add(&v.write("ordonnance.txt", b"Doliprane\n"), &[]);
    let before = v.snapshot();
    let out = v.run(&["rm", &id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("error: refusing to remove documents without confirmation"),
        "{err}"
    );
    assert!(hint(&err).contains("--yes"), "{err}");
    assert_same(&before, &v.snapshot(), "the vault after `rm` without --yes");
    assert_eq!(v.ls(&[]).len(), 1);
}

#[test]
fn export_refuses_to_overwrite_without_force_and_writes_nothing() {
    let v = Vault::init();
    let cr = b"Compte rendu de consultation\n".to_vec();
    let radio = pseudo_random(70_000, 41);
    v.add(
        &v.write("cr.txt", &cr),
        &["--date", "2024-04-01", "--title", "Compte rendu"],
    );
    v.add(
        &v.write("radio.bin", &radio),
        &["--date", "2024-04-02", "--title", "Radio"],
    );
    let dest = v.work.join("export");
    v.ok(&["export", "--all", "-o", s(&dest)]);
    assert_eq!(
        names_in(&dest),
        ["2024-04-01 Compte rendu.txt", "2024-04-02 Radio.bin"]
    );

    // The user annotates one exported file and deletes the other.
    let annotated = dest.join("2024-04-01 Compte rendu.txt");
    fs::write(&annotated, b"mes annotations\n").unwrap();
    fs::remove_file(dest.join("2024-04-02 Radio.bin")).unwrap();
    let before = snapshot(&dest);
    let out = v.run(&["export", "--all", "-o", s(&dest)]);
    let err = assert_error(&out, &[&format!("{} already exists", annotated.display())]);
    assert!(hint(&err).contains("--force"), "{err}");
    assert_same(&before, &snapshot(&dest), "the export folder (no --force)");

    let out = v.ok(&["export", "--all", "-o", s(&dest), "--force"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}\n{}\n",
            annotated.display(),
            dest.join("2024-04-02 Radio.bin").display()
        )
    );
    assert_eq!(
        names_in(&dest),
        ["2024-04-01 Compte rendu.txt", "2024-04-02 Radio.bin"]
    );
    assert_bytes_eq(&fs::read(&annotated).unwrap(), &cr, "overwritten file");
    assert_bytes_eq(
        &fs::read(dest.join("2024-04-02 Radio.bin")).unwrap(),
        &radio,
        "re-exported file",
    );
}

#[test]
fn export_names_come_from_titles_and_dates_and_stay_inside_the_folder() {
    let v = Vault::init();
    let docs: [(&str, &[u8], &str, &str); 6] = [
        (
            "irm.pdf",
            b"%PDF-1.7\n% compte rendu\n",
            "Compte rendu IRM",
            "2024-03-05",
        ),
        ("evil.txt", b"evil\n", "../../../etc/passwd", "2023-01-01"),
        (
            "slash.txt",
            b"slash\n",
            "a/b\\c:d*e?f|g\"h<i>",
            "2023-01-02",
        ),
        ("note", b"juste du texte\n", "..", "2023-01-03"),
        ("bilan1.txt", b"bilan 1\n", "Bilan", "2024-01-01"),
        ("bilan2.txt", b"bilan 2\n", "Bilan", "2024-01-01"),
    ];
    for (file, bytes, title, date) in docs {
        v.add(&v.write(file, bytes), &["--title", title, "--date", date]);
    }
    let out_parent = v.root().join("out");
    fs::create_dir(&out_parent).unwrap();
    let dest = out_parent.join("export");
    let root_before = snapshot(v.root());
    v.ok(&["export", "--all", "-o", s(&dest)]);

    assert_eq!(
        names_in(&dest),
        [
            "2023-01-01 .._.._.._etc_passwd.txt",
            "2023-01-02 a_b_c_d_e_f_g_h_i_.txt",
            "2023-01-03.txt",
            "2024-01-01 Bilan (2).txt",
            "2024-01-01 Bilan.txt",
            "2024-03-05 Compte rendu IRM.pdf",
        ]
    );
    assert_eq!(
        fs::read(dest.join("2024-01-01 Bilan.txt")).unwrap(),
        b"bilan 1\n",
        "the first added keeps the plain name"
    );
    assert_eq!(
        fs::read(dest.join("2024-01-01 Bilan (2).txt")).unwrap(),
        b"bilan 2\n"
    );
    // Nothing was written anywhere but inside the export folder, except the vault's access
    // log recording the export (the log segment, the head that names it, the signed index).
    let root_after = snapshot(v.root());
    for (p, e) in &root_after {
        let full = v.root().join(p);
        let logged = full.starts_with(v.root().join("vault/log"))
            || full == v.root().join("vault/head.age")
            || full == v.root().join("vault/index.json")
            || full == v.root().join("vault/index.json.minisig");
        if !full.starts_with(&dest) && !logged {
            assert_eq!(
                root_before.get(p),
                Some(e),
                "export touched {}",
                p.display()
            );
        }
    }
    for p in root_before.keys() {
        assert!(root_after.contains_key(p), "export removed {}", p.display());
    }
}

#[test]
fn export_of_a_long_title_gives_a_name_that_fits_the_file_system() {
    let v = Vault::init();
    for (i, title) in ["🩻".repeat(200), "脊椎".repeat(100), "é".repeat(300)]
        .iter()
        .enumerate()
    {
        v.add(
            &v.write(&format!("t{i}.txt"), format!("doc {i}\n").as_bytes()),
            &["--title", title, "--date", "2024-01-01"],
        );
    }
    let dest = v.work.join("export");
    v.ok(&["export", "--all", "-o", s(&dest)]);
    let names = names_in(&dest);
    assert_eq!(names.len(), 3, "{names:?}");
    for n in names {
        assert!(n.len() <= 255, "{} bytes: {n}", n.len());
        assert!(n.starts_with("2024-01-01 ") && n.ends_with(".txt"), "{n}");
    }
}

#[test]
fn cat_into_a_closed_pipe_is_not_an_error() {
    let v = Vault::init();
    let id = v.add(&v.write("gros.bin", &pseudo_random(3 << 20, 51)), &[]);
    let mut child = v
        .cmd()
        .args(["cat", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut head).unwrap();
    drop(stdout); // like `carnet cat ID | head -c 16`
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{} {}", out.status, text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

/// file, title, category, date, tags, author
type DocSpec<'a> = (&'a str, &'a str, &'a str, &'a str, &'a [&'a str], &'a str);

/// Four documents added out of date order, with categories, tags and authors to filter on.
fn vault_for_filters() -> Vault {
    let v = Vault::init();
    let docs: [DocSpec; 4] = [
        (
            "bilan.txt",
            "Bilan sanguin",
            "compte-rendu",
            "2024-06-01",
            &["poumon"],
            "Laboratoire Cerba",
        ),
        (
            "radio.txt",
            "Radio thorax",
            "imagerie",
            "2023-05-10",
            &["poumon", "urgence"],
            "Dr Martin",
        ),
        (
            "genou.txt",
            "IRM genou",
            "imagerie",
            "2022-11-30",
            &[],
            "Centre Imagerie Martin",
        ),
        (
            "ordo.txt",
            "Ordonnance antibiotique",
            "prescription",
            "2024-01-15",
            &["infection"],
            "Dr Durand",
        ),
    ];
    for (file, title, cat, date, tags, author) in docs {
        let mut args = vec![
            "--title",
            title,
            "--category",
            cat,
            "--date",
            date,
            "--author",
            author,
        ];
        for t in tags {
            args.extend(["--tag", t]);
        }
        v.add(&v.write(file, format!("{title}\n").as_bytes()), &args);
    }
    v
}

#[test]
fn ls_is_sorted_by_date_and_filters_by_category_dates_tag_and_search() {
    let v = vault_for_filters();
    let all = [
        "IRM genou",
        "Radio thorax",
        "Ordonnance antibiotique",
        "Bilan sanguin",
    ];
    assert_eq!(v.ls_titles(&[]), all);
    assert_eq!(
        v.ls_titles(&["--category", "imagerie"]),
        ["IRM genou", "Radio thorax"]
    );
    // Bounds are inclusive.
    assert_eq!(
        v.ls_titles(&["--since", "2024-01-15"]),
        ["Ordonnance antibiotique", "Bilan sanguin"]
    );
    assert_eq!(
        v.ls_titles(&["--until", "2024-01-15"]),
        ["IRM genou", "Radio thorax", "Ordonnance antibiotique"]
    );
    assert_eq!(
        v.ls_titles(&["--since", "2023-01-01", "--until", "2024-03-01"]),
        ["Radio thorax", "Ordonnance antibiotique"]
    );
    assert_eq!(
        v.ls_titles(&["--tag", "poumon"]),
        ["Radio thorax", "Bilan sanguin"]
    );
    assert_eq!(v.ls_titles(&["--tag", "urgence"]), ["Radio thorax"]);
    // Search looks in titles, authors and tags, ignoring case.
    assert_eq!(
        v.ls_titles(&["--search", "MARTIN"]),
        ["IRM genou", "Radio thorax"]
    );
    assert_eq!(v.ls_titles(&["--search", "irm"]), ["IRM genou"]);
    assert_eq!(
        v.ls_titles(&["--search", "infect"]),
        ["Ordonnance antibiotique"]
    );
    assert_eq!(
        v.ls_titles(&[
            "--category",
            "imagerie",
            "--since",
            "2023-01-01",
            "--search",
            "martin"
        ]),
        ["Radio thorax"]
    );
    assert_eq!(
        v.ls_titles(&["--category", "certificat"]),
        Vec::<String>::new()
    );

    // Each JSON entry carries the documented fields.
    for d in v.ls(&[]) {
        for f in [
            "id",
            "title",
            "category",
            "date",
            "author",
            "tags",
            "media_type",
            "size",
            "sha256",
            "added_at",
        ] {
            assert!(d.get(f).is_some(), "ls --json lacks {f}: {d}");
        }
    }
    let radio = v.ls(&["--search", "radio"]).remove(0);
    assert_eq!(radio["tags"], serde_json::json!(["poumon", "urgence"]));
    assert_eq!(radio["author"], "Dr Martin");
    assert_eq!(radio["size"], "Radio thorax\n".len());
    assert_eq!(radio["sha256"], sha256_hex(b"Radio thorax\n").as_str());

    // `show --json` agrees with `ls --json`.
    let out = v.ok(&["show", "--json", radio["id"].as_str().unwrap()]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown, radio);
}

#[test]
fn ls_table_is_sorted_by_date() {
    let v = vault_for_filters();
    let out = v.ok(&["ls"]);
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].ends_with("TITLE"),
        "{table}"
    );
    let expected = [
        (
            "2022-11-30",
            "imagerie",
            "IRM genou  — Centre Imagerie Martin",
        ),
        ("2023-05-10", "imagerie", "Radio thorax  — Dr Martin"),
        (
            "2024-01-15",
            "prescription",
            "Ordonnance antibiotique  — Dr Durand",
        ),
        (
            "2024-06-01",
            "compte-rendu",
            "Bilan sanguin  — Laboratoire Cerba",
        ),
    ];
    for (line, (date, cat, end)) in lines[1..].iter().zip(expected) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], date, "{line}");
        assert_eq!(cols[2], cat, "{line}");
        assert!(line.ends_with(end), "{line}");
    }

    // No match: an empty table on stdout, a note on stderr, success.
    let out = v.ok(&["ls", "--tag", "aucun"]);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(text(&out.stderr), "no documents match\n");
    assert_eq!(v.ok(&["ls", "--json", "--tag", "aucun"]).stdout, b"[]\n");
}
