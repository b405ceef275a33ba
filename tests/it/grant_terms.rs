//! The terms a patient writes into a grant: when it starts and ends, and the key fingerprint
//! the professional checks it against.

use crate::util;

use serde_json::Value;
use util::*;

/// A vault with one document and one professional (`dr-test`); returns the pro's key file.
fn patient_with_pro(v: &Vault) -> std::path::PathBuf {
    let doc = v.write("cr.txt", b"compte rendu\n");
    v.add(&doc, &["--category", "compte-rendu"]);
    let key = v.work.join("pro.key");
    v.ok(&[
        "keygen",
        "--name",
        "Dr Test",
        "--unprotected",
        "-o",
        key.to_str().unwrap(),
    ]);
    let card = v.work.join("pro.card.toml");
    v.ok(&["pro", "add", "--card", card.to_str().unwrap()]);
    key
}

fn grant_json(v: &Vault, extra: &[&str]) -> Value {
    let out_file = v.work.join("b.age");
    let mut args = vec![
        "grant",
        "--to",
        "test",
        "--all",
        "--json",
        "--force",
        "-o",
        out_file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = v.ok(&args);
    serde_json::from_slice(&out.stdout).expect("grant --json prints JSON")
}

#[test]
fn a_duration_runs_from_not_before() {
    let v = Vault::init();
    patient_with_pro(&v);
    let g = grant_json(
        &v,
        &["--not-before", "2099-01-01T00:00:00Z", "--expires", "3d"],
    );
    assert_eq!(g["not_before"], "2099-01-01T00:00:00Z");
    assert_eq!(g["expires"], "2099-01-04T00:00:00Z");
}

#[test]
fn a_grant_shorter_than_an_hour_gets_a_note_about_units() {
    let v = Vault::init();
    patient_with_pro(&v);
    let out_file = v.work.join("b.age");
    let out = v.ok(&[
        "grant",
        "--to",
        "test",
        "--all",
        "--expires",
        "6m",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("lasts less than an hour") && stderr.contains("m is minutes"),
        "{stderr}"
    );
}

#[test]
fn the_fingerprint_command_shows_the_key_grants_are_signed_with() {
    let v = Vault::init();
    let key = patient_with_pro(&v);
    let g = grant_json(&v, &["--expires", "1d"]);
    // Read without the key: a patient can read it to a professional over the phone.
    let mut c = v.cmd();
    c.env_remove("CARNET_PASSPHRASE").arg("fingerprint");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fp = text(&out.stdout).trim().to_string();
    assert_eq!(fp, g["patient_fingerprint"].as_str().unwrap());
    // The professional pins it, typed any way people dictate it.
    let dictated = fp.trim_start_matches("SHA256:").replace(':', " ");
    let bundle = v.work.join("b.age");
    let known = v.work.join("known.toml");
    let out = carnet()
        .env("CARNET_KNOWN_PATIENTS", &known)
        .args([
            "open",
            bundle.to_str().unwrap(),
            "-i",
            key.to_str().unwrap(),
            "--list",
            "--from",
            &dictated,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn opened_documents_and_their_folders_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let v = Vault::init();
    let key = patient_with_pro(&v);
    grant_json(&v, &["--expires", "1d"]);
    let bundle = v.work.join("b.age");
    let target = v.work.join("recu/dupont");
    // Plaintext left by an interrupted open, in a folder the professional reuses.
    let stale = target.join(".carnet-open-old");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("leftover.txt"), b"plaintext").unwrap();
    let out = carnet()
        .env("CARNET_KNOWN_PATIENTS", v.work.join("known.toml"))
        .args([
            "open",
            bundle.to_str().unwrap(),
            "-i",
            key.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!stale.exists(), "the stale staging folder is removed");
    for entry in walkdir::WalkDir::new(&target).min_depth(1) {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        let want = if entry.file_type().is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(mode, want, "{}", entry.path().display());
    }
}
