//! Re-encryption: `carnet key rm NAME` and `carnet rekey`. Afterwards the removed key (and the
//! old vault identity) opens no file of the vault, checked with the reference `age -d`; the
//! documents, the log and the remaining keys are as before; and a kill at any point leaves a
//! vault that verifies and opens with the keys that remain.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::keyfiles::{add_guardian, files_opened_by, guardian_key, with_key};
use crate::util::*;

/// A vault with documents (one corrected, so with two versions), an emergency profile and a
/// recovery key written to `root/recovery.key`.
fn vault_with_recovery(mode: KeyMode) -> (Vault, PathBuf, Vec<(String, Vec<u8>)>) {
    let v = Vault::blank(mode, temp_dir("carnet-rekey-"));
    v.ok(&["init"]);
    let mut docs = Vec::new();
    for (name, bytes) in [
        ("bilan.txt", pseudo_random(200_000, 1)),
        ("ordonnance.txt", b"amoxicilline 1g".to_vec()),
    ] {
        let id = v.add(&v.write(name, &bytes), &[]);
        docs.push((id, bytes));
    }
    let fixed = b"amoxicilline 1g, 3 fois par jour".to_vec();
    v.ok(&[
        "replace",
        &docs[1].0,
        s(&v.write("v2.txt", &fixed)),
        "--reason",
        "dose",
    ]);
    docs[1].1 = fixed;
    v.ok(&[
        "profile",
        "import",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/profile.toml"),
    ]);
    let key = v.root().join("recovery.key");
    v.ok(&["key", "add", "--recovery", "-o", s(&key)]);
    (v, key, docs)
}

fn assert_documents(v: &Vault, docs: &[(String, Vec<u8>)]) {
    for (id, bytes) in docs {
        assert_bytes_eq(
            &v.ok(&["cat", id]).stdout,
            bytes,
            "a document after re-encryption",
        );
    }
}

#[test]
fn key_rm_leaves_no_file_that_the_removed_key_opens() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let (v, key, docs) = vault_with_recovery(KeyMode::Passphrase);
    let before = files_opened_by(&age, &v.dir, &key);
    assert!(
        before.iter().any(|f| f.starts_with("objects/")),
        "the recovery key's slot opens before: {before:?}"
    );
    let log_before = v.ok(&["log", "--json"]).json();

    let j = v.ok(&["key", "rm", "recovery", "--json"]).json();
    assert_eq!(j["removed"]["name"], "recovery");
    assert_eq!(j["removed"]["role"], "recovery");

    assert_eq!(
        files_opened_by(&age, &v.dir, &key),
        Vec::<String>::new(),
        "files the removed key still opens"
    );
    with_key(&v, &key, &["ls"]).fails(EXIT_FAILURE, &["does not open this vault"]);
    // What the vault holds is unchanged, and opens with the passphrase as before.
    assert_documents(&v, &docs);
    let history = v.ok(&["history", &docs[1].0, "--json"]).json();
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "both versions: {history}"
    );
    v.ok(&["profile", "show"]);
    let log_after = v.ok(&["log", "--json"]).json();
    let (before, after) = (
        log_before.as_array().unwrap(),
        log_after.as_array().unwrap(),
    );
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the earlier entries are unchanged"
    );
    let rm = after
        .iter()
        .find(|e| e["action"] == "key-rm")
        .expect("a key-rm entry");
    assert_eq!(rm["actor"], "patient");
    let keys = v.ok(&["key", "ls", "--json"]).json();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    v.ok(&["verify"]);
    let mut c = carnet();
    c.args(["--vault", s(&v.dir), "verify", "--offline"]);
    c.ok();
    assert!(
        !v.dir.join("tmp/rekey").exists(),
        "the staging folder is gone"
    );
}

#[test]
fn rekey_in_an_identity_file_vault_writes_a_new_identity_and_the_old_opens_nothing() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let (v, recovery, docs) = vault_with_recovery(KeyMode::External);
    let old = v.key_file.clone();
    let e = assert_error(&v.run(&["rekey"]), &["identity file"]);
    assert!(hint(&e).contains("-o FILE"), "{e}");
    let new = v.root().join("new.key");
    let j = v.ok(&["rekey", "-o", s(&new), "--json"]).json();
    assert!(j["removed"].is_null(), "{j}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&new).unwrap().permissions().mode() & 0o777,
        0o600
    );

    assert_eq!(files_opened_by(&age, &v.dir, &old), Vec::<String>::new());
    with_key(&v, &old, &["ls"]).fails(EXIT_FAILURE, &["does not open this vault"]);
    for (id, bytes) in &docs {
        assert_bytes_eq(
            &with_key(&v, &new, &["cat", id]).ok().stdout,
            bytes,
            "with the new key",
        );
    }
    // The recovery key stays, bound to the new vault identity.
    assert_eq!(
        with_key(&v, &recovery, &["cat", &docs[0].0]).ok().stdout,
        docs[0].1
    );
    let log = with_key(&v, &new, &["log", "--json", "--action", "rekey"])
        .ok()
        .json();
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    with_key(&v, &new, &["verify"]).ok();
}

#[test]
fn rekey_keeps_the_passphrase_and_from_the_recovery_key_sets_a_new_one() {
    let (v, recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    v.ok(&["rekey"]);
    assert_documents(&v, &docs);
    assert_eq!(
        with_key(&v, &recovery, &["cat", &docs[0].0]).ok().stdout,
        docs[0].1
    );

    // The passphrase is lost: the recovery key re-encrypts and sets a new one.
    let mut c = carnet();
    c.args(["--vault", s(&v.dir), "-i", s(&recovery), "rekey"])
        .env("CARNET_NEW_PASSPHRASE", "a whole new passphrase here");
    let said = c.ok().stderr;
    assert!(said.contains("new passphrase you chose"), "{said}");
    v.run(&["ls"]).fails(EXIT_FAILURE, &["wrong passphrase"]);
    let mut c = carnet();
    c.args(["--vault", s(&v.dir), "ls"])
        .env("CARNET_PASSPHRASE", "a whole new passphrase here");
    c.ok();
    let log = with_key(&v, &recovery, &["log", "--json", "--action", "rekey"])
        .ok()
        .json();
    assert_eq!(log[1]["actor"], "recovery", "{log}");
}

#[test]
fn key_rm_refusals_name_the_problem_and_change_nothing() {
    let (v, recovery, _) = vault_with_recovery(KeyMode::Passphrase);
    let before = v.snapshot();
    let e = assert_error(&v.run(&["key", "rm", "spare"]), &["no key named \"spare\""]);
    assert!(hint(&e).contains("recovery"), "{e}");
    // The key in use cannot remove itself: that would leave the user with no key.
    let e = assert_error(
        &with_key(&v, &recovery, &["key", "rm", "recovery"]),
        &["opened with the key \"recovery\""],
    );
    assert!(hint(&e).contains("passphrase"), "{e}");
    v.run(&["rekey", "-o", s(&v.root().join("x.key"))])
        .fails(EXIT_FAILURE, &["-o is for"]);
    v.run(&["key", "rm"]).assert_code(EXIT_USAGE, "no name");
    assert_same(&before, &v.snapshot(), "a refused key rm");
}

#[test]
fn a_second_recovery_key_can_be_added_once_the_first_is_removed() {
    let (v, first, docs) = vault_with_recovery(KeyMode::Passphrase);
    let second = v.root().join("second.key");
    v.run(&["key", "add", "--recovery", "-o", s(&second)])
        .fails(EXIT_FAILURE, &["already has a recovery key"]);
    v.ok(&["key", "rm", "recovery"]);
    v.ok(&["key", "add", "--recovery", "-o", s(&second)]);
    assert_eq!(
        with_key(&v, &second, &["cat", &docs[0].0]).ok().stdout,
        docs[0].1
    );
    with_key(&v, &first, &["ls"]).fails(EXIT_FAILURE, &["does not open this vault"]);
}

/// A re-encryption killed (SIGKILL) after `n` files staged or moved.
fn killed_at(v: &Vault, dir: &Path, n: u64) -> Out {
    let mut c = v.cmd_on(dir, &[]);
    c.args(["key", "rm", "recovery"])
        .env("CARNET_TEST_KILL_AT", n.to_string());
    c.run()
}

#[test]
fn a_kill_at_any_point_of_key_rm_leaves_a_vault_that_verifies_with_the_keys_that_remain() {
    let (v, recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    for i in 0..200 {
        v.write(
            &format!("lot/{i:03}.txt"),
            format!("compte rendu {i}").as_bytes(),
        );
    }
    v.ok(&["add", s(&v.work.join("lot"))]);
    let listing = v.ls(&[]);
    let base = v.root().join("base");
    copy_dir(&v.dir, &base);
    // Files staged, then moved: about twice the files of the vault, and a few more.
    let files = files_under(&v.dir).len() as u64;
    let span = 2 * files + 4;
    // Twenty points spread over the whole run (a fixed seed: a failure names its point).
    let mut points: Vec<u64> = (0..20u64)
        .map(|i| {
            let jitter = (i.wrapping_mul(2_654_435_761) ^ 0x5bd1) % (span / 20).max(1);
            1 + i * span / 20 + jitter
        })
        .collect();
    points.sort_unstable();
    let (mut old_keys, mut new_keys) = (0, 0);
    for n in points {
        let dir = v.root().join(format!("kill-{n}"));
        copy_dir(&base, &dir);
        let o = killed_at(&v, &dir, n);
        assert!(
            o.code.is_none() || o.code == Some(0),
            "killed at {n}: neither killed nor done\n{o}"
        );
        // The next command finishes or drops it; the vault verifies.
        let mut c = v.cmd_on(&dir, &[]);
        c.arg("verify");
        let checked = c.run();
        assert!(
            checked.success(),
            "killed at {n} of ~{span}: verify fails\n{checked}"
        );
        let mut c = v.cmd_on(&dir, &[]);
        c.args(["ls", "--json"]);
        assert_eq!(
            c.ok().json().as_array().unwrap(),
            &listing,
            "killed at {n}: the listing"
        );
        let mut c = v.cmd_on(&dir, &[]);
        c.args(["cat", &docs[0].0]);
        assert_eq!(c.ok().stdout, docs[0].1, "killed at {n}: a document");
        // Either the old key set works (recovery still opens it) or the new one (it does not).
        let mut c = carnet();
        c.args(["--vault", s(&dir), "-i", s(&recovery), "ls"]);
        if c.run().success() {
            old_keys += 1;
        } else {
            new_keys += 1;
            assert!(
                !dir.join("tmp/rekey").exists(),
                "killed at {n}: staging left"
            );
        }
        let mut c = carnet();
        c.args(["--vault", s(&dir), "verify", "--offline"]);
        let offline = c.run();
        assert!(
            offline.success(),
            "killed at {n}: verify --offline\n{offline}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
    assert!(
        old_keys > 0 && new_keys > 0,
        "kills before and after the commit point: {old_keys} / {new_keys}"
    );
}

/// `key ls --json` as `ROLE:FIELD` strings (`guardian:papa`, `patient:plugin`).
fn key_list(out: Out, field: &str) -> Vec<String> {
    out.ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            format!(
                "{}:{}",
                k["role"].as_str().unwrap(),
                k[field].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_guardian_opens_the_vault_with_their_key_is_logged_by_name_and_cannot_change_keys() {
    let (v, _recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    let (key, card) = guardian_key(v.root(), "papa");
    let j = v.ok(&add_guardian("papa", &card, &["--json"])).json();
    assert_eq!(j["role"], "guardian");
    let roles = key_list(v.run(&["key", "ls", "--json"]), "name");
    assert!(roles.contains(&"guardian:papa".to_string()), "{roles:?}");

    // The guardian reads and adds, as guardian:papa.
    assert_eq!(
        with_key(&v, &key, &["cat", &docs[0].0]).ok().stdout,
        docs[0].1
    );
    let note = v.write("vaccin.txt", b"rappel DTP");
    with_key(&v, &key, &["add", s(&note)]).ok();
    let log = v.ok(&["log", "--json"]).json();
    let by_guardian: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "guardian:papa")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(by_guardian, ["view", "add"], "{log}");

    // Keys are the patient's to change.
    let before = v.snapshot();
    for args in [
        &["key", "rm", "recovery"][..],
        &["rekey"],
        &["key", "add", "--recovery", "-o", "x.key"],
    ] {
        assert_error(&with_key(&v, &key, args), &["only the patient"]);
    }
    let mut c = carnet();
    c.args(["--vault", s(&v.dir), "-i", s(&key), "passphrase"])
        .env("CARNET_NEW_PASSPHRASE", "taking over the vault now");
    assert_error(&c.run(), &["only the patient"]);
    assert_same(&before, &v.snapshot(), "a guardian's refused key change");
}

#[test]
fn removing_a_guardian_re_encrypts_so_their_key_opens_nothing() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let (v, _recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    let (key, card) = guardian_key(v.root(), "maman");
    v.ok(&add_guardian("maman", &card, &[]));
    assert!(
        !files_opened_by(&age, &v.dir, &key).is_empty(),
        "the guardian's slot"
    );
    v.ok(&["key", "rm", "maman"]);
    assert_eq!(files_opened_by(&age, &v.dir, &key), Vec::<String>::new());
    with_key(&v, &key, &["ls"]).fails(EXIT_FAILURE, &["does not open this vault"]);
    assert_documents(&v, &docs);
    v.ok(&["verify"]);
}

#[test]
fn a_guardian_who_unlocks_still_acts_as_the_guardian() {
    if !crate::util::unlock::kernel_keyring() {
        return;
    }
    let (v, _recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    let (key, card) = guardian_key(v.root(), "papa");
    v.ok(&add_guardian("papa", &card, &[]));
    with_key(&v, &key, &["unlock", "--for", "10m"]).ok();
    let _locked = crate::util::unlock::Locked(&v);
    let mut c = crate::util::unlock::keyless(&v);
    c.args(["cat", &docs[0].0]);
    assert_eq!(c.ok().stdout, docs[0].1);
    // Key changes through the kept key are refused as well: the session kept the slot.
    let mut c = crate::util::unlock::keyless(&v);
    c.args([
        "key",
        "add",
        "--recovery",
        "-o",
        s(&v.root().join("r2.key")),
    ]);
    assert_error(&c.run(), &["only the patient", "guardian:papa"]);
    let views = v.ok(&["log", "--json", "--action", "view"]).json();
    assert_eq!(
        views.as_array().unwrap().last().unwrap()["actor"],
        "guardian:papa"
    );
}

#[test]
fn rekey_asks_for_the_passphrase_even_when_unlocked_and_ends_the_unlock() {
    if !crate::util::unlock::kernel_keyring() {
        return;
    }
    let (v, _recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    v.ok(&["unlock"]);
    let _locked = crate::util::unlock::Locked(&v);
    let mut c = crate::util::unlock::keyless(&v);
    c.arg("rekey");
    let e = assert_error(&c.run(), &["passphrase"]);
    assert!(!e.contains("new passphrase"), "never a new one: {e}");
    v.ok(&["rekey"]);
    // The kept key is the old vault identity: it opens nothing now, and is dropped.
    let mut c = crate::util::unlock::keyless(&v);
    c.args(["cat", &docs[0].0]);
    assert_error(&c.run(), &["passphrase"]);
    assert_documents(&v, &docs);
}

/// `ssh-keygen -t ed25519` without a passphrase in `dir`: the private key and the public line.
fn ssh_ed25519(keygen: &Path, dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let public = ssh_keygen(keygen, &key, "ed25519", "");
    (key, public)
}

#[test]
fn a_guardian_with_an_ssh_key_opens_the_vault_and_after_key_rm_opens_nothing() {
    // One tool at a time: a test is skipped once, for the first tool it lacks.
    let Some(keygen) = require_tool(Tool::SshKeygen) else {
        return;
    };
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let (v, _recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    let (key, public) = ssh_ed25519(&keygen, v.root(), "id_ed25519");
    v.ok(&[
        "key",
        "add",
        "--guardian",
        "--name",
        "maman",
        "--recipient",
        &public,
    ]);
    let listed = v.ok(&["key", "ls", "--json"]).json();
    let maman = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "maman")
        .unwrap();
    assert_eq!(maman["kind"], "SSH ed25519", "{listed}");
    assert_eq!(
        with_key(&v, &key, &["cat", &docs[0].0]).ok().stdout,
        docs[0].1
    );
    let views = v.ok(&["log", "--json", "--action", "view"]).json();
    assert_eq!(
        views.as_array().unwrap().last().unwrap()["actor"],
        "guardian:maman"
    );
    assert!(
        !files_opened_by(&age, &v.dir, &key).is_empty(),
        "the slot, for age -d -i id_ed25519"
    );

    v.ok(&["key", "rm", "maman"]);
    assert_eq!(files_opened_by(&age, &v.dir, &key), Vec::<String>::new());
    with_key(&v, &key, &["ls"]).fails(EXIT_FAILURE, &["does not open this vault"]);
}

#[test]
fn a_guardian_with_a_plugin_key_opens_the_vault_through_the_plugin() {
    let Some(plugin) = require_tool(Tool::AgePluginUnencrypted) else {
        return;
    };
    let (v, _recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    let identity = v.root().join("plugin.txt");
    let recipient = plugin_identity(&plugin, &identity);
    v.ok(&[
        "key",
        "add",
        "--guardian",
        "--name",
        "papa",
        "--recipient",
        &recipient,
    ]);
    assert_eq!(
        with_key(&v, &identity, &["cat", &docs[0].0]).ok().stdout,
        docs[0].1
    );
    let views = v.ok(&["log", "--json", "--action", "view"]).json();
    assert_eq!(
        views.as_array().unwrap().last().unwrap()["actor"],
        "guardian:papa"
    );
    // Re-encryption seals the slot again through the plugin; it still opens.
    v.ok(&["rekey"]);
    assert_eq!(
        with_key(&v, &identity, &["cat", &docs[1].0]).ok().stdout,
        docs[1].1
    );
}

/// carnet on the vault folder `dir` with `-i key`.
fn on(dir: &Path, key: &Path, args: &[&str]) -> Out {
    let mut c = carnet();
    c.arg("--vault").arg(dir).arg("-i").arg(key).args(args);
    c.run()
}

#[test]
fn a_vault_made_with_an_ssh_key_opens_with_it_and_re_encrypts_without_a_new_file() {
    // One tool at a time: a test is skipped once, for the first tool it lacks.
    let Some(keygen) = require_tool(Tool::SshKeygen) else {
        return;
    };
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let tmp = temp_dir("carnet-ssh-vault-");
    let (key, public) = ssh_ed25519(&keygen, tmp.path(), "id_ed25519");
    let dir = tmp.path().join("vault");
    on(&dir, &key, &["init", "--name", "Léa"]).ok();
    let doc = tmp.path().join("bilan.txt");
    fs::write(&doc, b"bilan sanguin").unwrap();
    let id = on(&dir, &key, &["add", s(&doc), "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let keys = on(&dir, &key, &["key", "ls", "--json"]).ok().json();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys[0]["role"], "patient");
    assert_eq!(keys[0]["kind"], "SSH ed25519");
    assert_eq!(
        keys[0]["recipient"].as_str().unwrap(),
        public.rsplit_once(' ').unwrap().0,
        "the slot is found by the key without its comment"
    );
    // The SSH key opens its slot and nothing else: the vault has an identity of its own.
    let opened = files_opened_by(&age, &dir, &key);
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(opened[0].starts_with("objects/"), "{opened:?}");

    assert_error(
        &on(&dir, &key, &["rekey", "-o", s(&tmp.path().join("n.key"))]),
        &["-o is not needed"],
    );
    on(&dir, &key, &["rekey"]).ok();
    assert_eq!(on(&dir, &key, &["cat", &id]).ok().stdout, b"bilan sanguin");
    let e = assert_error(
        &on(&dir, &key, &["key", "rm", "patient"]),
        &["patient's own key"],
    );
    assert!(hint(&e).contains("rekey"), "{e}");
    on(&dir, &key, &["verify"]).ok();
}

#[test]
fn a_vault_made_with_a_hardware_key_requires_a_recovery_key_and_keeps_it() {
    let Some(plugin) = require_tool(Tool::AgePluginUnencrypted) else {
        return;
    };
    let tmp = temp_dir("carnet-plugin-vault-");
    let key = tmp.path().join("yubikey.txt");
    plugin_identity(&plugin, &key);
    let dir = tmp.path().join("vault");
    let e = assert_error(
        &on(&dir, &key, &["init"]),
        &["hardware key cannot be copied"],
    );
    assert!(hint(&e).contains("--recovery FILE"), "{e}");
    assert!(!dir.join("carnet.toml").exists(), "no vault made");

    let recovery = tmp.path().join("recovery.key");
    on(&dir, &key, &["init", "--recovery", s(&recovery)]).ok();
    let roles = key_list(on(&dir, &key, &["key", "ls", "--json"]), "kind");
    assert_eq!(roles, ["patient:plugin", "recovery:X25519"]);
    let doc = tmp.path().join("vaccins.txt");
    fs::write(&doc, b"DTP 2026").unwrap();
    let id = on(&dir, &key, &["add", s(&doc), "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The hardware key is lost: the recovery key opens the vault.
    assert_eq!(on(&dir, &recovery, &["cat", &id]).ok().stdout, b"DTP 2026");
    // (The test plugin prints a message of its own on stderr first.)
    on(&dir, &key, &["key", "rm", "recovery"])
        .fails(EXIT_FAILURE, &["hardware key, which cannot be copied"]);
    on(&dir, &key, &["verify"]).ok();
}

#[test]
fn a_mirror_made_before_a_re_encryption_is_refused_then_replaced_whole() {
    let (v, _recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    for i in 0..40 {
        v.write(
            &format!("lot/{i:02}.txt"),
            format!("résultat {i}").as_bytes(),
        );
    }
    v.ok(&["add", s(&v.work.join("lot"))]);
    let m = v.root().join("mirror");
    v.ok(&["backup", "--to", s(&m)]);
    v.ok(&["rekey"]);
    let e = assert_error(
        &v.run(&["backup", "--to", s(&m)]),
        &["re-encrypted", "old keys"],
    );
    assert!(hint(&e).contains("--force"), "{e}");
    // The worst case, made certain: an object of the mirror whose old ciphertext has the new
    // one's size, and is older than the mirror's index (so not "touched" since).
    let object = files_under(&m.join("objects")).into_iter().next().unwrap();
    let rel = object.strip_prefix(&m).unwrap().to_path_buf();
    let mut old = fs::read(&object).unwrap();
    old.resize(fs::metadata(v.dir.join(&rel)).unwrap().len() as usize, 0);
    fs::write(&object, &old).unwrap();
    let touched = Command::new("touch")
        .args(["-d", "2020-01-01"])
        .arg(&object)
        .status();
    assert!(touched.unwrap().success());
    v.ok(&["backup", "--to", s(&m), "--force"]);
    assert_eq!(
        fs::read(&object).unwrap(),
        fs::read(v.dir.join(&rel)).unwrap(),
        "{rel:?}"
    );
    // Every object of the mirror is the new ciphertext, even those of the same size.
    let mut c = carnet();
    c.args(["--vault", s(&m), "verify", "--offline"]);
    c.ok();
    let restored = v.root().join("restored");
    let mut c = v.cmd_on(&restored, &[]);
    c.args(["restore", s(&m)]);
    c.ok();
    let mut c = v.cmd_on(&restored, &[]);
    c.arg("verify");
    c.ok();
    let mut c = v.cmd_on(&restored, &[]);
    c.args(["cat", &docs[0].0]);
    assert_eq!(c.ok().stdout, docs[0].1);
}

#[test]
fn rekey_of_a_format1_vault_leaves_a_format2_config() {
    let v = Vault::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format1/vault"),
        &v.dir,
    );
    v.ok(&["rekey"]);
    let config = fs::read_to_string(v.dir.join("carnet.toml")).unwrap();
    assert!(config.contains("format = 2"), "{config}");
    v.ok(&["verify"]);
    assert_eq!(v.ls(&[]).len(), 2);
}

#[test]
fn a_guardian_cannot_destroy_the_record() {
    let (v, _recovery, _) = vault_with_recovery(KeyMode::Passphrase);
    let (key, card) = guardian_key(v.root(), "papa");
    v.ok(&add_guardian("papa", &card, &[]));
    let before = v.snapshot();
    assert_error(
        &with_key(&v, &key, &["destroy", "--confirm", "Marie"]),
        &["only the patient", "guardian:papa"],
    );
    assert_same(&before, &v.snapshot(), "a guardian's refused destroy");
}

#[test]
fn a_recovery_key_is_never_written_inside_the_vault() {
    let v = Vault::init();
    let before = v.snapshot();
    let e = assert_error(
        &v.run(&["key", "add", "--recovery", "-o", s(&v.dir.join("r.key"))]),
        &["inside the vault folder"],
    );
    assert!(hint(&e).contains("outside"), "{e}");
    assert_same(&before, &v.snapshot(), "a refused key add");
    let fresh = v.root().join("fresh");
    fs::create_dir(&fresh).unwrap();
    let mut c = carnet();
    c.args([
        "--vault",
        s(&fresh),
        "init",
        "--recovery",
        s(&fresh.join("r.key")),
    ])
    .env("CARNET_PASSPHRASE", PASSPHRASE);
    assert_error(&c.run(), &["inside the vault folder"]);
    assert!(
        fs::read_dir(&fresh).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn the_new_identity_file_is_refused_inside_the_vault() {
    let (v, _recovery, _) = vault_with_recovery(KeyMode::External);
    let before = v.snapshot();
    let e = assert_error(
        &v.run(&["rekey", "-o", s(&v.dir.join("new.key"))]),
        &["inside the vault folder"],
    );
    assert!(hint(&e).contains("outside"), "{e}");
    assert_same(&before, &v.snapshot(), "a refused rekey");
}

#[test]
fn a_damaged_object_stops_the_re_encryption_and_the_vault_keeps_its_keys() {
    let (v, recovery, docs) = vault_with_recovery(KeyMode::Passphrase);
    let objects = v.objects();
    let victim = objects
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    let original = fs::read(&victim).unwrap();
    flip_middle(&victim);
    let o = v.run(&["key", "rm", "recovery"]);
    let e = o.fails(EXIT_INTEGRITY, &["damaged"]);
    assert!(
        e.contains(&victim.file_name().unwrap().to_string_lossy()[..8]),
        "{e}"
    );
    assert!(
        !v.dir.join("tmp/rekey").exists(),
        "a failed re-encryption leaves nothing"
    );
    fs::write(&victim, &original).unwrap();
    // Nothing was committed: the recovery key still opens the vault, which verifies.
    assert_eq!(
        with_key(&v, &recovery, &["cat", &docs[0].0]).ok().stdout,
        docs[0].1
    );
    v.ok(&["verify"]);
    assert!(
        !v.dir.join("tmp/rekey").exists(),
        "the abandoned staging is gone"
    );
}

#[test]
fn an_unlock_from_before_the_sealed_key_asks_to_lock_rather_than_reporting_damage() {
    // Review finding: on an SSH-key vault, an unlock session taken before the first hide from
    // guardians (it holds no sealed key) made every later command report the vault damaged.
    let Some(keygen) = require_tool(Tool::SshKeygen) else {
        return;
    };
    if !crate::util::unlock::kernel_keyring() {
        return;
    }
    let tmp = temp_dir("carnet-ssh-unlock-");
    let (key, _) = ssh_ed25519(&keygen, tmp.path(), "id_ed25519");
    let dir = tmp.path().join("vault");
    on(&dir, &key, &["init"]).ok();
    let doc = tmp.path().join("consultation.txt");
    fs::write(&doc, b"SECRET-CONTENT consultation").unwrap();
    let id = on(&dir, &key, &["add", s(&doc), "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    on(&dir, &key, &["unlock", "--for", "10m"]).ok();
    let lock = || {
        let mut c = carnet();
        c.arg("--vault").arg(&dir).arg("lock");
        c.run()
    };
    on(&dir, &key, &["hide", &id, "--from", "guardians"]).ok();
    let ls = on(&dir, &key, &["ls"]);
    let err = assert_error(&ls, &[]);
    assert_eq!(ls.code, Some(EXIT_FAILURE), "not damage{ls}");
    assert!(hint(&err).contains("carnet lock"), "{ls}");
    lock();
    assert_eq!(
        on(&dir, &key, &["cat", &id]).ok().stdout,
        b"SECRET-CONTENT consultation"
    );
    on(&dir, &key, &["verify"]).ok();
}
