//! A lost or copied vault gives nothing away: no name, NIR, title, tag, author, category, date,
//! file name, plaintext hash or document byte appears in clear in any file (or file name) of
//! the vault; and every file is private to its owner.

use crate::util;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};
use util::*;

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn vault_files_hold_no_metadata_or_content_in_clear() {
    let v = Vault::new();
    v.ok(&[
        "init",
        "--name",
        "Zéphyrine Marqueterie-Quist",
        "--nir",
        "1 37 04 76 243 484 15",
    ]);
    let line = "LUMBAGO-SECRET-7741 diagnostic confidentiel du patient. ";
    let content = line.repeat(4000);
    let doc = v.write("radiographie-Xylophone-Q7.txt", content.as_bytes());
    v.add(
        &doc,
        &[
            "--title",
            "Titre-Quetzal-Harmonica",
            "--tag",
            "tag-Ornithorynque",
            "--author",
            "Dr Wenceslas Plouzané",
            "--category",
            "plan-de-soins",
            "--date",
            "1987-03-29",
        ],
    );
    // A second document through a category folder, binary this time.
    let scan = {
        let mut b = b"BINARY-SCAN-MARKER-5527".repeat(3000);
        b.extend_from_slice(&[0, 1, 2, 255]);
        b
    };
    v.write("import/synthese/Synthese-Zanzibar.bin", &scan);
    v.ok(&["add", s(&v.work.join("import"))]);
    assert_eq!(v.ls(&[]).len(), 2);

    let sha = Sha256::digest(content.as_bytes());
    let sha_scan = Sha256::digest(&scan);
    let markers: Vec<(&str, Vec<u8>)> = vec![
        ("patient name", "Zéphyrine Marqueterie-Quist".into()),
        ("patient first name", "Zéphyrine".into()),
        ("patient last name", "Marqueterie".into()),
        ("NIR", "137047624348415".into()),
        ("NIR as typed", "1 37 04 76 243 484 15".into()),
        ("title", "Titre-Quetzal-Harmonica".into()),
        ("tag", "tag-Ornithorynque".into()),
        ("author", "Wenceslas".into()),
        ("category", "plan-de-soins".into()),
        ("folder category", "synthese".into()),
        ("date", "1987-03-29".into()),
        ("original file name", "Xylophone-Q7".into()),
        ("folder file name", "Zanzibar".into()),
        ("document text", "LUMBAGO-SECRET-7741".into()),
        ("document bytes", line.as_bytes()[20..].to_vec()),
        ("binary document bytes", "BINARY-SCAN-MARKER-5527".into()),
        ("plaintext SHA-256 (hex)", hex::encode(sha).into_bytes()),
        ("plaintext SHA-256 (raw)", sha.to_vec()),
        ("binary SHA-256 (hex)", hex::encode(sha_scan).into_bytes()),
    ];

    let files = files_under(&v.dir);
    assert!(
        files.len() >= 5,
        "expected config, identity, manifest, objects: {files:?}"
    );
    let mut leaks = Vec::new();
    for (rel, _) in snapshot(&v.dir) {
        let name = rel.to_string_lossy();
        for (what, m) in &markers {
            if find(name.as_bytes(), m).is_some() {
                leaks.push(format!("the {what} is in the path {name}"));
            }
        }
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for (what, m) in &markers {
            if let Some(at) = find(&bytes, m) {
                leaks.push(format!("the {what} is in {} at byte {at}", f.display()));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "found in clear:\n  {}",
        leaks.join("\n  ")
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Runs carnet under `umask 000`, so that only carnet's own choices set the permissions.
fn run_with_open_umask(v: &Vault, args: &[&str]) {
    let bin = bin();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(&bin)
        .arg("--vault")
        .arg(&v.dir)
        .args(args)
        .env_remove("CARNET_VAULT")
        .env_remove("CARNET_IDENTITY")
        .env("CARNET_PASSPHRASE", PASSPHRASE)
        .env("CARNET_SCRYPT_LOG_N", "10")
        .stdin(std::process::Stdio::null());
    TestCommand::from(c).ok();
}

fn assert_private(dir: &Path) {
    let mut wrong = Vec::new();
    for (rel, e) in snapshot(dir) {
        let p = dir.join(&rel);
        let (want, m) = match e {
            Entry::Dir => (0o700, mode(&p)),
            Entry::File(_) => (0o600, mode(&p)),
            Entry::Symlink(_) => {
                wrong.push(format!("unexpected symlink {}", p.display()));
                continue;
            }
        };
        if m != want {
            wrong.push(format!("{} is {m:o}, want {want:o}", p.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn vault_files_are_0600_and_folders_0700_whatever_the_umask() {
    let v = Vault::new();
    run_with_open_umask(&v, &["init", "--name", "Marie Dupont"]);
    let a = v.write("a.txt", b"premier document\n");
    v.write("dossier/imagerie/b.bin", &pseudo_random(100_000, 21));
    run_with_open_umask(&v, &["add", s(&a)]);
    run_with_open_umask(&v, &["add", s(&v.work.join("dossier"))]);
    assert_eq!(v.objects().len(), 2);
    assert_private(&v.dir);
}

#[test]
fn init_makes_an_existing_empty_folder_private() {
    let v = Vault::new();
    std::fs::create_dir(&v.dir).unwrap();
    std::fs::set_permissions(&v.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    v.ok(&["init"]);
    v.add(&v.write("a.txt", b"x\n"), &[]);
    assert_private(&v.dir);
}
