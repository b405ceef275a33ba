//! `carnet unlock` and `carnet lock`: after unlock, commands open the vault with no key given;
//! after lock or expiry (carnet's clock, `CARNET_NOW`: no test sleeps) they ask again; a wrong
//! passphrase keeps nothing; one vault's unlock opens no other; nothing of the key reaches a
//! file. Each test vault has its own random id, which names its entry in the kernel keyring,
//! so tests running side by side never see each other's.

use std::fs;

use crate::util::unlock::{Locked, kernel_keyring, keyless, keyless_on, vault_secret};
use crate::util::*;

/// What a command says when it needs the passphrase and has none (stdin is not a terminal).
const NEEDS_PASSPHRASE: &str = "error: a passphrase is needed and there is no terminal to ask for it\n\
hint: set CARNET_PASSPHRASE or pass --passphrase-file FILE\n";

#[track_caller]
fn asks_for_the_passphrase(out: &Out) {
    out.assert_code(EXIT_FAILURE, "");
    assert_eq!(out.stderr, NEEDS_PASSPHRASE, "{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

const T0: &str = "2026-03-14T09:00:00Z";

#[test]
fn after_unlock_commands_need_no_passphrase_and_after_lock_they_ask_again() {
    if !kernel_keyring() {
        return;
    }
    let v = Vault::init();
    let id = v.add(&v.write("bilan.txt", b"glycemie 0.9"), &[]);
    asks_for_the_passphrase(&keyless(&v).args(["ls"]).run());

    let _guard = Locked(&v);
    let out = v.ok(&["unlock"]);
    assert!(out.stderr.starts_with("Unlocked until "), "{out}");
    assert!(out.stdout.is_empty(), "{out}");

    let listed = keyless(&v).args(["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["id"], id.as_str());
    let shown = keyless(&v).args(["show", &id]).ok();
    assert!(shown.text().contains("bilan"), "{shown}");
    let cat = keyless(&v).args(["cat", &id]).ok();
    assert_eq!(cat.stdout, b"glycemie 0.9");
    // The reads are logged as the patient's, as with the passphrase.
    let log = keyless(&v).args(["log", "--json"]).ok().json();
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "patient", "{log}");
    // Quiet by default; --verbose says where the key came from.
    let quiet = keyless(&v).args(["ls"]).ok();
    assert!(quiet.stderr.is_empty(), "{quiet}");
    let verbose = keyless(&v).args(["-v", "ls"]).ok();
    assert!(
        verbose
            .stderr
            .starts_with("note: using the key kept by `carnet unlock` (until "),
        "{verbose}"
    );

    let out = keyless(&v).args(["lock"]).ok();
    assert_eq!(out.stderr, "Locked: the key is needed again.\n", "{out}");
    asks_for_the_passphrase(&keyless(&v).args(["ls"]).run());
    asks_for_the_passphrase(&keyless(&v).args(["show", &id]).run());
    // Locking again is not an error, and says there was nothing to lock.
    let again = keyless(&v).args(["lock", "--json"]).ok().json();
    assert_eq!(again["locked"], false);
    let out = keyless(&v).args(["lock"]).ok();
    assert_eq!(
        out.stderr, "The vault was not unlocked; nothing to do.\n",
        "{out}"
    );
}

#[test]
fn an_unlock_expires_at_its_time_by_carnets_clock() {
    if !kernel_keyring() {
        return;
    }
    let v = Vault::init();
    let _guard = Locked(&v);
    let j = v
        .cmd()
        .env("CARNET_NOW", T0)
        .args(["unlock", "--for", "15m", "--json"])
        .ok()
        .json();
    assert_eq!(j["expires"], "2026-03-14T09:15:00Z");
    assert_eq!(j["actor"], "patient");
    assert_eq!(j["vault_id"].as_str().unwrap().len(), 32);
    let at = |t: &str| {
        let mut c = keyless(&v);
        c.env("CARNET_NOW", t);
        c
    };
    at("2026-03-14T09:14:59Z").args(["ls"]).ok();
    let out = at("2026-03-14T09:15:00Z").args(["-v", "ls"]).run();
    out.assert_code(EXIT_FAILURE, "expired");
    assert_eq!(
        out.stderr,
        format!(
            "note: the vault's unlock has expired (and was removed); the key is needed again\n\
             {NEEDS_PASSPHRASE}"
        ),
        "{out}"
    );
    // Removed, not merely refused: a clock set back does not bring it back.
    asks_for_the_passphrase(&at("2026-03-14T09:01:00Z").args(["ls"]).run());
}

#[test]
fn a_wrong_passphrase_at_unlock_keeps_nothing() {
    if !kernel_keyring() {
        return;
    }
    let v = Vault::init();
    let _guard = Locked(&v);
    let out = v
        .cmd()
        .env("CARNET_PASSPHRASE", "not the passphrase")
        .arg("unlock")
        .run();
    assert_error(&out, &["wrong passphrase"]);
    asks_for_the_passphrase(&keyless(&v).args(["ls"]).run());
    let j = keyless(&v).args(["lock", "--json"]).ok().json();
    assert_eq!(j["locked"], false, "nothing was kept");
}

#[test]
fn unlocking_one_vault_opens_no_other() {
    if !kernel_keyring() {
        return;
    }
    let a = Vault::init();
    let b = Vault::init();
    let _guard = Locked(&a);
    a.ok(&["unlock"]);
    keyless(&a).args(["ls"]).ok();
    asks_for_the_passphrase(&keyless(&b).args(["ls"]).run());
    // Nor does locking the other vault lock this one.
    let j = keyless(&b).args(["lock", "--json"]).ok().json();
    assert_eq!(j["locked"], false);
    keyless(&a).args(["ls"]).ok();
    // A copy of the vault is the same vault (same id, same key): it opens too.
    let copy = a.root().join("copy");
    copy_dir(&a.dir, &copy);
    keyless_on(&a, &copy).args(["ls"]).ok();
}

#[test]
fn nothing_of_the_key_reaches_the_disk() {
    if !kernel_keyring() {
        return;
    }
    let v = Vault::init();
    let id = v.add(&v.write("ordonnance.txt", b"amoxicilline"), &[]);
    let secret = vault_secret(&v);
    let (home, tmp) = (v.root().join("home"), v.root().join("tmp"));
    fs::create_dir(&home).unwrap();
    fs::create_dir(&tmp).unwrap();
    let in_sandbox = |mut c: TestCommand| {
        c.env("HOME", &home)
            .env("TMPDIR", &tmp)
            .env("XDG_RUNTIME_DIR", &tmp)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CACHE_HOME");
        c
    };
    let before = snapshot(v.root());
    let _guard = Locked(&v);
    in_sandbox(v.cmd()).args(["unlock", "--for", "5m"]).ok();
    in_sandbox(keyless(&v)).args(["ls"]).ok();
    in_sandbox(keyless(&v)).args(["lock"]).ok();
    let after = snapshot(v.root());
    // unlock, ls and lock write nothing at all: not in the vault (no log entry either), HOME
    // or TMPDIR.
    assert_same(&before, &after, "the vault's folder, HOME and TMPDIR");

    // A command that does write (a logged read) writes nothing of the key either.
    in_sandbox(v.cmd()).args(["unlock", "--for", "5m"]).ok();
    in_sandbox(keyless(&v)).args(["cat", &id]).ok();
    in_sandbox(keyless(&v)).args(["lock"]).ok();
    let written = snapshot(v.root());
    let changed: Vec<_> = written
        .iter()
        .filter(|(p, e)| before.get(*p) != Some(*e))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        !changed.is_empty() && changed.iter().all(|p| p.starts_with("vault/")),
        "only the vault's log and head change: {changed:?}"
    );
    for (path, e) in &written {
        if let Entry::File(bytes) = e {
            let text = String::from_utf8_lossy(bytes);
            for s in [secret.as_str(), &secret.to_lowercase()] {
                assert!(
                    !text.contains(s),
                    "{} holds the vault's secret key",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn an_external_key_unlocked_once_opens_the_vault_without_i() {
    if !kernel_keyring() {
        return;
    }
    let v = Vault::blank(KeyMode::External, temp_dir("carnet-test-"));
    v.ok(&["init"]);
    let _guard = Locked(&v);
    v.ok(&["unlock"]);
    let out = keyless(&v).args(["-v", "ls"]).ok();
    assert!(out.stderr.starts_with("note: using the key kept"), "{out}");
    // Naming the same key with -i uses what was kept; another key is used as given.
    let same = v.cmd().args(["-v", "ls"]).ok();
    assert!(
        same.stderr.starts_with("note: using the key kept"),
        "{same}"
    );
    let other = new_identity_file(v.root(), "other.key");
    let out = keyless(&v).arg("-i").arg(&other).args(["-v", "ls"]).run();
    assert!(
        out.stderr
            .starts_with("note: the vault is unlocked with another key than the one -i names"),
        "{out}"
    );
    out.assert_code(EXIT_FAILURE, "another key");
    assert!(out.stderr.contains("does not open this vault"), "{out}");
}

#[test]
fn unlock_refuses_a_duration_it_cannot_keep_before_asking_for_the_key() {
    if !kernel_keyring() {
        return;
    }
    let v = Vault::init();
    for (d, needle) in [
        ("0s", "from one second to 24 hours"),
        ("25h", "from one second to 24 hours"),
        ("2w", "from one second to 24 hours"),
        ("soon", "cannot read \"soon\" as a duration"),
        ("2026-12-31", "as a duration"),
    ] {
        // No key given: a duration refused after the passphrase would say "passphrase".
        let out = keyless(&v).args(["unlock", "--for", d]).run();
        assert_error(&out, &[needle]);
    }
}

#[test]
fn an_unlocked_vault_logs_its_backups_as_with_the_key_at_hand() {
    if !kernel_keyring() {
        return;
    }
    let v = Vault::init();
    let _guard = Locked(&v);
    let backup = |name: &str| {
        let out = v.root().join(name);
        keyless(&v)
            .args(["backup", "--json", "-o"])
            .arg(&out)
            .ok()
            .json()
    };
    assert_eq!(backup("before.zip")["logged"], false);
    v.ok(&["unlock"]);
    assert_eq!(backup("unlocked.zip")["logged"], true);
    keyless(&v).arg("lock").ok();
    assert_eq!(backup("after.zip")["logged"], false);
}
