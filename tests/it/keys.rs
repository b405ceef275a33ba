//! The keys that open a vault: a recovery key (opens it when the passphrase is lost, acts as
//! `recovery`), `key ls`, and `carnet passphrase`.

use std::fs;

use crate::util::*;

#[test]
fn a_recovery_key_opens_the_vault_when_the_passphrase_is_lost_and_sets_a_new_one() {
    let v = Vault::init();
    let id = v.add(&v.write("a.txt", b"bilan"), &[]);
    let key = v.root().join("recovery.key");
    let j = v
        .ok(&[
            "key",
            "add",
            "--recovery",
            "-o",
            key.to_str().unwrap(),
            "--json",
        ])
        .json();
    assert_eq!(j["role"], "recovery");
    assert!(j["identity"].is_null(), "the secret went to the file only");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let listed = v.ok(&["key", "ls", "--json"]).json();
    let roles: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["patient", "recovery"]);
    v.ok(&["verify"]);

    // The passphrase is "lost": the recovery key alone opens the vault.
    let recovery = |args: &[&str]| {
        let mut c = carnet();
        c.arg("--vault").arg(&v.dir).arg("-i").arg(&key);
        c.args(args);
        c.env_remove("CARNET_PASSPHRASE");
        c.run()
    };
    assert_eq!(recovery(&["cat", &id]).ok().stdout, b"bilan");
    let views = recovery(&["log", "--json", "--action", "view"]).ok().json();
    assert_eq!(views[0]["actor"], "recovery", "the log says who read it");

    // ... and sets a new passphrase; the old one no longer opens the vault.
    let mut c = carnet();
    c.arg("--vault")
        .arg(&v.dir)
        .arg("-i")
        .arg(&key)
        .arg("passphrase");
    c.env_remove("CARNET_PASSPHRASE").env(
        "CARNET_NEW_PASSPHRASE",
        "a brand new passphrase for the vault",
    );
    c.ok();
    v.run(&["ls"]).fails(EXIT_FAILURE, &["wrong passphrase"]);
    let mut c = carnet();
    c.arg("--vault").arg(&v.dir).arg("ls");
    c.env("CARNET_PASSPHRASE", "a brand new passphrase for the vault");
    c.ok();
    let changes = recovery(&["log", "--json", "--action", "passphrase"])
        .ok()
        .json();
    assert_eq!(changes[0]["actor"], "recovery");
    recovery(&["verify"]).ok();
}

#[test]
fn key_refusals_leave_the_vault_as_it_was() {
    let v = Vault::init();
    let key = v.root().join("r.key");
    fs::write(&key, b"precious").unwrap();
    let before = v.snapshot();
    v.run(&["key", "add", "--recovery", "-o", key.to_str().unwrap()])
        .fails(EXIT_FAILURE, &["already exists"]);
    v.run(&["key", "add"])
        .assert_code(EXIT_USAGE, "key add without a kind");
    v.run(&["passphrase"])
        .fails(EXIT_FAILURE, &["no terminal to ask"]);
    assert_same(&before, &v.snapshot(), "refused key changes");
    assert_eq!(fs::read(&key).unwrap(), b"precious");

    let k2 = v.root().join("r2.key");
    v.ok(&["key", "add", "--recovery", "-o", k2.to_str().unwrap()]);
    let before = v.snapshot();
    v.run(&[
        "key",
        "add",
        "--recovery",
        "-o",
        v.root().join("r3.key").to_str().unwrap(),
    ])
    .fails(EXIT_FAILURE, &["already has a recovery key"]);
    assert_same(&before, &v.snapshot(), "a second recovery key");
    assert!(!v.root().join("r3.key").exists());

    // An identity file vault has no passphrase to change.
    let ext = Vault::blank(KeyMode::External, temp_dir("carnet-keys-"));
    ext.ok(&["init"]);
    let mut c = ext.cmd();
    c.arg("passphrase")
        .env("CARNET_NEW_PASSPHRASE", "whatever passphrase here");
    c.run()
        .fails(EXIT_FAILURE, &["identity file, not a passphrase"]);
}

#[test]
fn an_altered_or_missing_recovery_slot_is_reported_by_verify() {
    let v = Vault::init();
    let key = v.root().join("r.key");
    v.ok(&["key", "add", "--recovery", "-o", key.to_str().unwrap()]);
    let listed = v.ok(&["key", "ls", "--json"]).json();
    let recipient = listed[1]["recipient"].as_str().unwrap().to_string();
    let id = slot_object_id(&recipient);
    let path = v
        .dir
        .join("objects")
        .join(&id[..2])
        .join(format!("{id}.age"));
    assert!(path.is_file(), "the slot is where its key looks: {path:?}");
    let saved = fs::read(&path).unwrap();
    flip_middle(&path);
    v.run(&["verify"])
        .assert_code(EXIT_INTEGRITY, "an altered slot");
    fs::remove_file(&path).unwrap();
    let out = v.run(&["verify"]);
    out.assert_code(EXIT_INTEGRITY, "a missing slot");
    assert!(out.text().contains("recovery key slot"), "{}", out.text());
    fs::write(&path, saved).unwrap();
    v.ok(&["verify"]);
}

/// Where a recovery key's slot lives (FORMAT.md: SHA-256 of "carnet key slot v1\0" and the
/// recipient, first 16 bytes, hex).
fn slot_object_id(recipient: &str) -> String {
    let h = sha256_hex(format!("carnet key slot v1\0{recipient}").as_bytes());
    h[..32].to_string()
}

#[test]
fn a_terminal_is_told_while_the_passphrase_is_checked() {
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let v = Vault::init();
    let out = v.on_terminal(&script, "ls", &[]);
    out.assert_ok("ls on a terminal");
    let shown = text(&out.stdout);
    assert!(shown.contains("unlocking…"), "{shown}");
    assert!(
        shown.contains("\r\x1b[2K"),
        "the line is cleared once unlocked: {shown:?}"
    );
    // Not on a pipe: scripts see nothing of it.
    let piped = v.ok(&["ls"]);
    assert!(!piped.stderr.contains("unlocking"), "{}", piped.stderr);
}
