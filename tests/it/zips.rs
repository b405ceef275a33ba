//! Zips every reader opens, and zips no reader should trust (issue 9, items 2 and 6).
//!
//! Bundles and backups carry sizes and CRC-32 in their local headers, so streaming readers that
//! never see the central directory read them entry by entry: `bsdtar` from a pipe (Debian
//! package libarchive-tools) and Java's `ZipInputStream` (the fixture
//! `tests/data/ZipStreamCheck.java`); Info-ZIP `unzip -t` and 7-Zip (`7z t`, `7z x`) check them.
//! A reader that is not installed skips its check, or fails it under CARNET_REQUIRE_INTEROP=1
//! (`util::tools`).
//!
//! Hostile zips are forged here from the genuine ones: central records aliasing one local file
//! (the overlap bomb) and local headers that disagree with the central directory.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::util::grants::*;
use crate::util::tree;

const ORDONNANCE: &[u8] = b"Amoxicilline 1 g, trois fois par jour pendant 7 jours.\n";

/// A genuine bundle and backup, made once for every test here (each works on copies).
struct Seed {
    key: Vec<u8>,
    card: Vec<u8>,
    recipient: String,
    /// The bundle's plaintext zip, and the backup zip.
    bundle_zip: Vec<u8>,
    backup_zip: Vec<u8>,
}

static SEED: OnceLock<Seed> = OnceLock::new();

fn seed() -> &'static Seed {
    SEED.get_or_init(|| {
        let lab = Lab::new();
        let patient = lab.patient("marie", "Marie Dupont");
        let pro = lab.keygen("Paul Roux", "paul.key", true, &["--adeli", "751234567"]);
        patient.add_pro(&pro);
        let docs: Vec<(&str, Vec<u8>, &str)> = vec![
            ("ordonnance.txt", ORDONNANCE.to_vec(), "Ordonnance été"),
            ("radio.bin", pseudo_random(300_000, 5), "Radio thorax"),
            // A document that is itself a zip: what a streaming reader that trusts data
            // descriptors gets wrong.
            (
                "compte-rendu.docx",
                zip_write(&[ZipEntry::file("word/document.xml", b"<w:document/>")]),
                "Compte rendu",
            ),
            ("vide.txt", Vec::new(), "Vide"),
        ];
        for (file, bytes, title) in &docs {
            patient.add(file, bytes, &["--title", title, "--date", "2024-03-01"]);
        }
        let bundle = lab.path("bundles/genuine.age");
        patient.grant(&[
            "--to",
            "paul-roux",
            "--all",
            "--expires",
            "7d",
            "-o",
            s(&bundle),
        ]);
        let bundle_zip = age_decrypt(&fs::read(&bundle).unwrap(), &pro.identity());
        // The documents come out byte for byte (read through the central directory here; the
        // streaming readers below must agree with it).
        let entries = zip_read(&bundle_zip);
        for (_, bytes, title) in &docs {
            assert!(
                entries
                    .iter()
                    .any(|e| e.name.contains(title) && e.data == *bytes),
                "{title} in the bundle"
            );
        }
        let backup = lab.path("backup.zip");
        patient.ok(&["backup", "-o", s(&backup)]);
        let backup_zip = fs::read(&backup).unwrap();
        for e in zip_read(&backup_zip) {
            assert_eq!(
                e.data,
                fs::read(patient.vault.join(&e.name)).unwrap(),
                "{}",
                e.name
            );
        }
        Seed {
            key: fs::read(&pro.key).unwrap(),
            card: fs::read(&pro.card).unwrap(),
            recipient: pro.recipient,
            bundle_zip,
            backup_zip,
        }
    })
}

/// The zips streaming readers must read: (what, bytes).
fn genuine_zips() -> [(&'static str, &'static [u8]); 2] {
    let seed = seed();
    [("bundle", &seed.bundle_zip), ("backup", &seed.backup_zip)]
}

/// One line per entry, as tests/data/ZipStreamCheck.java prints them: name, bytes, size, SHA-256.
fn expected_lines(zip: &[u8]) -> String {
    zip_read(zip)
        .iter()
        .map(|e| {
            let n = e.data.len();
            format!("{}\t{n}\t{n}\t{}\n", e.name, sha256_hex(&e.data))
        })
        .collect()
}

/// Runs `cmd` with `input` on its standard input through a pipe (never a seekable file).
fn piped(mut cmd: Command, input: &[u8]) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tool starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        // The tool may stop reading early when it fails: its exit status reports that.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

#[test]
fn java_zip_input_stream_reads_bundles_and_backups_entry_by_entry() {
    let Some(java) = require_tool(Tool::Java) else {
        return;
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ZipStreamCheck.java");
    for (what, zip) in genuine_zips() {
        let mut cmd = Command::new(&java);
        cmd.arg(&fixture);
        let out = piped(cmd, zip);
        assert!(
            out.status.success(),
            "{what}: ZipInputStream fails:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected_lines(zip),
            "{what}: every entry, its size and its bytes"
        );
    }
}

#[test]
fn bsdtar_reads_bundles_and_backups_from_a_pipe() {
    let Some(bsdtar) = require_tool(Tool::Bsdtar) else {
        return;
    };
    for (what, zip) in genuine_zips() {
        let entries = zip_read(zip);
        let mut list = Command::new(&bsdtar);
        list.args(["-tvf", "-"]);
        let out = piped(list, zip);
        assert!(
            out.status.success(),
            "{what}: bsdtar -tvf - fails:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), entries.len(), "{what}: {text}");
        for (line, e) in lines.iter().zip(&entries) {
            assert!(
                line.ends_with(&format!(" {}", e.name))
                    && line.contains(&format!(" {} ", e.data.len())),
                "{what}: {line:?} lists {} ({} bytes)",
                e.name,
                e.data.len()
            );
        }
        // Every entry's bytes, in order, read from the pipe.
        let mut extract = Command::new(&bsdtar);
        extract.args(["-xOf", "-"]);
        let out = piped(extract, zip);
        assert!(out.status.success(), "{what}: bsdtar -xOf - fails");
        let all: Vec<u8> = entries.iter().flat_map(|e| e.data.clone()).collect();
        assert_bytes_eq(&out.stdout, &all, what);
    }
}

#[test]
fn unzip_tests_bundles_and_backups() {
    let Some(unzip) = require_tool(Tool::Unzip) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (what, zip) in genuine_zips() {
        let file = dir.path().join(format!("{what}.zip"));
        fs::write(&file, zip).unwrap();
        let out = Command::new(&unzip).arg("-t").arg(&file).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{what}: unzip -t fails:\n{text}");
        assert!(text.contains("No errors detected"), "{what}: {text}");
        assert_eq!(
            text.lines().filter(|l| l.ends_with(" OK")).count(),
            zip_read(zip).len(),
            "{what}: every entry tested: {text}"
        );
    }
}

#[test]
fn seven_zip_tests_and_extracts_bundles_and_backups() {
    let Some(seven) = require_tool(Tool::SevenZip) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (what, zip) in genuine_zips() {
        let file = dir.path().join(format!("{what}.zip"));
        fs::write(&file, zip).unwrap();
        // `t` checks every entry's CRC-32 against its data.
        let out = Command::new(&seven)
            .args(["t", "-bd"])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{what}: 7z t fails:\n{text}");
        assert!(text.contains("Everything is Ok"), "{what}: {text}");
        // Every entry's bytes, in order.
        let out = Command::new(&seven)
            .args(["x", "-so", "-bd"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: 7z x -so fails");
        let all: Vec<u8> = zip_read(zip).iter().flat_map(|e| e.data.clone()).collect();
        assert_bytes_eq(&out.stdout, &all, what);
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile zips

/// (name, position of its central record, offset of its local header) for every entry.
fn central(z: &[u8]) -> Vec<(String, usize, usize)> {
    let rd16 = |at: usize| u16::from_le_bytes([z[at], z[at + 1]]) as usize;
    let rd32 = |at: usize| u32::from_le_bytes(z[at..at + 4].try_into().unwrap()) as usize;
    let eocd = z.len() - 22;
    assert_eq!(rd32(eocd), 0x0605_4b50, "no comment, no Zip64");
    let mut at = rd32(eocd + 16);
    (0..rd16(eocd + 10))
        .map(|_| {
            let n = rd16(at + 28);
            let name = String::from_utf8(z[at + 46..at + 46 + n].to_vec()).unwrap();
            let item = (name, at, rd32(at + 42));
            at += 46 + n + rd16(at + 30) + rd16(at + 32);
            item
        })
        .collect()
}

/// `zip` with one more central record per alias, each a copy of `target`'s record (same local
/// header, same data) under another name: n entries for the bytes of one.
fn with_aliases(zip: &[u8], target: &str, aliases: &[String]) -> Vec<u8> {
    let entries = central(zip);
    let cd_start = entries[0].1;
    let eocd = zip.len() - 22;
    let (_, at, _) = entries.iter().find(|e| e.0 == target).unwrap();
    let n = target.len();
    let record = &zip[*at..*at + 46 + n];
    let mut out = zip[..eocd].to_vec();
    for alias in aliases {
        let mut r = record[..46].to_vec();
        r[28..30].copy_from_slice(&(alias.len() as u16).to_le_bytes());
        r.extend_from_slice(alias.as_bytes());
        out.extend_from_slice(&r);
    }
    let count = (entries.len() + aliases.len()) as u16;
    let mut end = zip[eocd..].to_vec();
    end[8..10].copy_from_slice(&count.to_le_bytes());
    end[10..12].copy_from_slice(&count.to_le_bytes());
    end[12..16].copy_from_slice(&((out.len() - cd_start) as u32).to_le_bytes());
    out.extend_from_slice(&end);
    out
}

/// A lab holding the seed's professional, who opens `zip` sealed to him into `recv/out`:
/// the run must fail with `code` and `needles`, and `recv/` must be left as it was.
fn open_refused(zip: &[u8], needles: &[&str]) {
    let seed = seed();
    let lab = Lab::new();
    let pro = Pro {
        key: lab.write("keys/paul.key", &seed.key),
        card: lab.write("keys/paul.card.toml", &seed.card),
        recipient: seed.recipient.clone(),
        passphrase: None,
    };
    let bundle = lab.write(
        "bundles/hostile.age",
        &age_encrypt(&seed.recipient, zip, false),
    );
    let recv = lab.root.join("recv");
    fs::create_dir_all(&recv).unwrap();
    fs::write(recv.join("already-here.txt"), b"x").unwrap();
    let before = tree(&recv);
    let out = lab.open(&pro, &bundle, &["-o", s(&recv.join("out"))]);
    out.fails(EXIT_INTEGRITY, needles);
    assert_eq!(tree(&recv), before, "nothing written");
}

/// Terms with `aliases` more documents, each naming `target`'s size and SHA-256 under another
/// path, signed by a key of the attacker's own (trusted on first use).
fn aliased_terms(terms: &str, target: &str, aliases: &[String]) -> (String, String) {
    let mut t: toml::Table = toml::from_str(terms).unwrap();
    let docs = t["documents"].as_array_mut().unwrap();
    let original = docs
        .iter()
        .find(|d| d["path"].as_str() == Some(target))
        .unwrap()
        .clone();
    for (i, alias) in aliases.iter().enumerate() {
        let mut d = original.as_table().unwrap().clone();
        d.insert("id".into(), format!("{:032x}", i + 1).into());
        d.insert("title".into(), format!("Copie {i}").into());
        d.insert("path".into(), alias.clone().into());
        docs.push(d.into());
    }
    let key = MinisignKey::from_seed(91);
    let pt = t["patient"].as_table_mut().unwrap();
    pt.insert("signing_key".into(), key.public().into());
    pt.insert("fingerprint".into(), key.fingerprint().into());
    let text = toml::to_string(&t).unwrap();
    let sig = key.sign(text.as_bytes(), "carnet grant overlap bomb");
    (text, sig)
}

#[test]
fn an_overlapping_entry_bomb_in_self_signed_terms_is_refused_with_nothing_written() {
    let seed = seed();
    let mut entries = zip_read(&seed.bundle_zip);
    let target = entries
        .iter()
        .find(|e| e.name.contains("Radio thorax"))
        .unwrap()
        .name
        .clone();
    let aliases: Vec<String> = (0..500)
        .map(|i| format!("documents/autre/copie {i}.bin"))
        .collect();
    let terms = String::from_utf8(entries[0].data.clone()).unwrap();
    let (text, sig) = aliased_terms(&terms, &target, &aliases);
    entries[0].data = text.into_bytes();
    entries[1].data = sig.into_bytes();
    // 500 × 300 kB (150 MB) declared, from a zip of well under 1 MB.
    let bomb = with_aliases(&zip_write(&entries), &target, &aliases);
    assert!(bomb.len() < 1_000_000);
    open_refused(&bomb, &["damaged or was altered", "overlap"]);
}

#[test]
fn an_overlapping_entry_bomb_in_a_backup_is_refused_with_nothing_restored() {
    let seed = seed();
    let entries = central(&seed.backup_zip);
    let object = entries
        .iter()
        .find(|e| e.0.starts_with("objects/"))
        .unwrap()
        .0
        .clone();
    let aliases: Vec<String> = (0..500)
        .map(|i| format!("{}{i:03}", &object[..object.len() - 3]))
        .collect();
    let bomb = with_aliases(&seed.backup_zip, &object, &aliases);
    let lab = Lab::new();
    let zip = lab.write("bomb.zip", &bomb);
    let parent = lab.root.join("restored");
    fs::create_dir_all(&parent).unwrap();
    let out = lab.run(
        None,
        &["--vault", s(&parent.join("vault")), "restore", s(&zip)],
    );
    out.fails(EXIT_INTEGRITY, &["overlap"]);
    assert_eq!(tree(&parent), Default::default(), "nothing restored");
}

#[test]
fn a_local_header_that_disagrees_with_the_central_directory_is_refused() {
    let seed = seed();
    // In a bundle: the document's local header names another file (same length).
    let zip = &seed.bundle_zip;
    let (name, _, local) = central(zip)
        .into_iter()
        .find(|e| e.0.contains("Ordonnance"))
        .unwrap();
    let mut bad = zip.clone();
    bad[local + 30 + name.len() - 1] = b'X';
    open_refused(&bad, &["damaged or was altered", &name, "local header"]);
    // Its CRC-32 in the local header changed.
    let mut bad = zip.clone();
    bad[local + 14] ^= 1;
    open_refused(&bad, &[&name, "local header"]);

    // In a backup: an object's local header declares another size.
    let (object, _, local) = central(&seed.backup_zip)
        .into_iter()
        .find(|e| e.0.starts_with("objects/"))
        .unwrap();
    let mut bad = seed.backup_zip.clone();
    bad[local + 22] ^= 1;
    let lab = Lab::new();
    let zip = lab.write("bad.zip", &bad);
    let out = lab.run(
        None,
        &["--vault", s(&lab.root.join("v")), "restore", s(&zip)],
    );
    out.fails(EXIT_INTEGRITY, &[&object, "local header"]);
    assert!(!lab.root.join("v").exists());
}

#[test]
fn verify_offline_checks_a_backup_zip_in_place() {
    let seed = seed();
    let lab = Lab::new();
    let zip = lab.write("usb/backup.zip", &seed.backup_zip);
    let before = tree(&lab.root);
    // Every file the signed index lists: all entries but the index and its signature.
    let files = zip_read(&seed.backup_zip).len() - 2;
    // Both spellings: the file as the argument, or as the vault.
    let ok = lab.run(None, &["verify", "--offline", s(&zip)]).ok();
    assert_eq!(
        ok.text(),
        format!("ok: {files} files checked against the signed index\n")
    );
    let v = lab
        .run(None, &["--vault", s(&zip), "verify", "--offline", "--json"])
        .ok()
        .json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(tree(&lab.root), before, "nothing written");

    // An object's bytes changed inside the zip: named, exit 3.
    let (object, _, local) = central(&seed.backup_zip)
        .into_iter()
        .find(|e| e.0.starts_with("objects/"))
        .unwrap();
    let mut bad = seed.backup_zip.clone();
    bad[local + 30 + object.len() + 10] ^= 1;
    let bad = lab.write("usb/bad.zip", &bad);
    let out = lab.run(None, &["verify", "--offline", s(&bad)]);
    out.fails(EXIT_INTEGRITY, &["integrity check failed"]);
    assert!(
        out.text()
            .lines()
            .any(|l| l.starts_with(&format!("FAILED  {object}: corrupted"))),
        "{out}"
    );
    // Another signer than the one expected.
    let other = MinisignKey::from_seed(5).fingerprint();
    let out = lab.run(None, &["verify", "--offline", "--expect", &other, s(&zip)]);
    out.fails(EXIT_INTEGRITY, &["integrity check failed"]);
    assert!(out.text().contains("not by the expected"), "{out}");
    // A zip bomb is reported, not followed.
    let bomb = with_aliases(&seed.backup_zip, &object, &[format!("{object}x")]);
    let bomb = lab.write("usb/bomb.zip", &bomb);
    let out = lab.run(None, &["verify", "--offline", s(&bomb)]);
    out.fails(EXIT_INTEGRITY, &["integrity check failed"]);
    assert!(out.text().contains("overlap"), "{out}");
}
