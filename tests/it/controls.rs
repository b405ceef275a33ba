//! The patient closes, reopens and destroys the record (issue 10; CSP R1111-36: closure, then
//! deletion on request). A closed record refuses every change — whichever command asks — with
//! exit 1 and a hint naming `carnet reopen`, and the vault stays byte for byte as it was, while
//! reading, export, backup, verify and the log keep working. `destroy` leaves nothing of the
//! vault, refuses without the exact confirmation, and says which backups still hold it. All of
//! it on a new vault and on one upgraded from format 1.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

const NAME: &str = "Marie Dupont";
/// The format-1 fixture's patient (tests/data/format1/README.md).
const FIXTURE_NAME: &str = "Marie Dupont";
/// When the tests close the record: the hint names this day.
const CLOSED_AT: &str = "2026-12-07T09:30:00Z";

fn fixture_vault() -> Vault {
    let v = Vault::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format1/vault"),
        &v.dir,
    );
    v
}

fn new_vault() -> Vault {
    let v = Vault::new();
    v.ok(&["init", "--name", NAME]);
    v
}

fn recipient() -> String {
    age::x25519::Identity::generate().to_public().to_string()
}

/// What the write commands act on: a document, two professionals (one blocked) and a grant.
struct Sample {
    doc: String,
    grant: String,
}

fn sample(v: &Vault) -> Sample {
    let doc = v.add(
        &v.write("bilan.txt", b"bilan sanguin\n"),
        &["--date", "2026-01-05"],
    );
    for (name, handle) in [("Dr Luc Petit", "luc-petit"), ("Paul Roux", "paul-roux")] {
        v.ok(&[
            "pro",
            "add",
            "--name",
            name,
            "--key",
            &recipient(),
            "--handle",
            handle,
        ]);
    }
    v.ok(&["pro", "block", "paul-roux"]);
    let bundle = v.work.join("first.age");
    let g = v
        .ok(&[
            "grant",
            "--to",
            "luc-petit",
            "--all",
            "--expires",
            "7d",
            "-o",
            s(&bundle),
            "--json",
        ])
        .json();
    Sample {
        doc,
        grant: g["id"].as_str().unwrap().to_string(),
    }
}

fn actions(v: &Vault) -> Vec<String> {
    v.ok(&["log", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// Closes the record at CLOSED_AT, in UTC so that the day the hint names is known.
fn close(v: &Vault, reason: &str) -> Value {
    let mut c = v.cmd();
    c.args(["close", "--reason", reason, "--json"])
        .env("CARNET_NOW", CLOSED_AT)
        .env("TZ", "UTC");
    c.ok().json()
}

/// Every command that changes the record, each refused on a closed one without a trace.
fn assert_every_write_is_refused(v: &Vault, x: &Sample) {
    let folder = v.work.join("more");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("2026-02-01 radio.txt"), b"radio\n").unwrap();
    let new_doc = v.write("new.txt", b"nouveau\n");
    let bundle = v.work.join("refused.age");
    let key = recipient();
    let writes: Vec<Vec<&str>> = vec![
        vec!["add", s(&new_doc)],
        vec!["add", s(&folder)],
        vec!["rm", "--yes", &x.doc],
        vec![
            "grant",
            "--to",
            "luc",
            "--all",
            "--expires",
            "7d",
            "-o",
            s(&bundle),
        ],
        vec!["pro", "add", "--name", "Dr Anne Vidal", "--key", &key],
        vec!["pro", "rm", "luc-petit"],
        vec!["pro", "unblock", "paul-roux"],
        vec!["note", "une note"],
        vec!["edit", &x.doc, "--title", "autre titre"],
        vec!["replace", &x.doc, s(&new_doc)],
        vec!["hide", &x.doc],
        vec!["hide", "--category", "imagerie"],
        vec!["unhide", "--category", "imagerie"],
        vec!["key", "add", "--recovery", "-o", "never.key"],
    ];
    for args in writes {
        let before = v.snapshot();
        let mut c = v.cmd();
        c.args(&args).env("TZ", "UTC");
        let out = c.run();
        let what = args.join(" ");
        out.assert_refused(EXIT_FAILURE, &["the record is closed"], &what);
        assert_eq!(
            hint(&out.stderr),
            "the record was closed on 2026-12-07; run `carnet reopen` to change it",
            "{what}{out}"
        );
        assert!(out.stdout.is_empty(), "{what}{out}");
        assert_same(&before, &v.snapshot(), &format!("the vault after `{what}`"));
    }
    assert!(!bundle.exists(), "no bundle leaves a closed record");
}

/// Reading, exporting, backing up, checking and the log all work on a closed record.
fn assert_reads_work(v: &Vault, x: &Sample) {
    assert_eq!(v.ls_titles(&[]), ["bilan"]);
    v.ok(&["show", &x.doc]);
    assert_eq!(v.ok(&["cat", &x.doc]).stdout, b"bilan sanguin\n");
    let out = v.work.join("export");
    v.ok(&["export", &x.doc, "-o", s(&out)]);
    assert_eq!(
        fs::read(out.join("2026-01-05 bilan.txt")).unwrap(),
        b"bilan sanguin\n"
    );
    v.ok(&["backup", "-o", s(&v.work.join("closed.zip"))]);
    v.ok(&["backup", "--to", s(&v.work.join("mirror"))]);
    v.ok(&["verify", "--deep"]);
    v.ok(&["verify", "--offline"]);
    v.ok(&["grants"]);
    v.ok(&["pro", "ls"]);
    let log = actions(v);
    assert!(log.contains(&"close".to_string()), "{log:?}");
}

fn close_refuses_writes_then_reopen(v: &Vault, x: &Sample) {
    let state = close(v, "je déménage");
    assert_eq!(state["closed"], true);
    assert_eq!(state["changed"], true);
    assert_eq!(state["closed_at"], CLOSED_AT);
    assert_eq!(state["reason"], "je déménage");
    // Closing again changes nothing and logs nothing.
    let n = actions(v).len();
    let again = close(v, "autre raison");
    assert_eq!(again["changed"], false);
    assert_eq!(again["reason"], "je déménage");
    assert_eq!(actions(v).len(), n);

    assert_every_write_is_refused(v, x);
    assert_reads_work(v, x);
    let closing = v.ok(&["log", "--json", "--action", "close"]).json();
    assert_eq!(closing[0]["details"]["reason"], "je déménage");

    // Reopened: logged, and changes work again.
    let state = v.ok(&["reopen", "--json"]).json();
    assert_eq!(state["closed"], false);
    assert_eq!(state["changed"], true);
    assert_eq!(state["closed_at"], CLOSED_AT);
    assert_eq!(actions(v).last().unwrap(), "reopen");
    assert_eq!(v.ok(&["reopen", "--json"]).json()["changed"], false);
    v.add(&v.write("after.txt", b"apres\n"), &[]);
    v.ok(&["pro", "unblock", "paul-roux"]);
    v.ok(&["revoke", &x.grant]);
    v.ok(&["verify", "--deep"]);
}

#[test]
fn a_closed_record_refuses_every_change_and_reopens() {
    let v = new_vault();
    let x = sample(&v);
    close_refuses_writes_then_reopen(&v, &x);
}

#[test]
fn a_record_upgraded_from_format_1_closes_and_reopens_too() {
    let v = fixture_vault();
    // Its first write (here, the sample's add) upgrades it; the fixture's own documents stay.
    let x = sample(&v);
    v.ok(&["rm", "--yes", "c0e5", "c81d"]);
    assert_eq!(
        v.ok(&["log", "--json", "--action", "upgrade"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    close_refuses_writes_then_reopen(&v, &x);
}

#[test]
fn close_and_reopen_explain_themselves_without_json() {
    let v = new_vault();
    let out = v.ok(&["close"]);
    assert!(
        out.stderr.contains("read-only until `carnet reopen`"),
        "{out}"
    );
    assert!(v.ok(&["close"]).stderr.contains("already closed"));
    let out = v.ok(&["reopen"]);
    assert!(out.stderr.starts_with("Reopened the record"), "{out}");
    assert!(v.ok(&["reopen"]).stderr.contains("not closed"));
}

// ---- destroy ----

/// `carnet destroy ARGS` with a terminal (`script`, util-linux), `typed` as what the user types.
fn destroy_on_terminal(v: &Vault, typed: &str) -> std::process::Output {
    use std::io::Write;
    let script =
        which("script").expect("`script` (util-linux) is needed to give carnet a terminal");
    let line = format!(
        "'{}' --vault '{}' destroy",
        bin().display(),
        v.dir.display()
    );
    let mut child = Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .current_dir(v.root())
        .env_remove("CARNET_VAULT")
        .env_remove("CARNET_IDENTITY")
        .env_remove("CARNET_NOW")
        .env("CARNET_PASSPHRASE", PASSPHRASE)
        .env("CARNET_SCRYPT_LOG_N", "10")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{typed}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn assert_gone(dir: &Path) {
    assert!(
        fs::symlink_metadata(dir).is_err(),
        "{} should be gone; it holds {:?}",
        dir.display(),
        tree(dir)
    );
}

/// The vault's files, but for the writers' lock: `destroy` takes it before it can check the
/// name, which creates it in a vault that never had a writer (the format-1 fixture).
fn unlocked_snapshot(v: &Vault) -> Snapshot {
    let mut snap = v.snapshot();
    snap.remove(Path::new("lock"));
    snap
}

fn destroy_refusals(v: &Vault, name: &str) {
    let before = unlocked_snapshot(v);
    // In a script, without --confirm: a usage error, before anything is opened.
    let out = v.run(&["destroy"]);
    out.assert_refused(EXIT_USAGE, &["without confirmation"], "destroy in a script");
    assert!(hint(&out.stderr).contains("--confirm"), "{out}");
    assert_same(
        &before,
        &unlocked_snapshot(v),
        "the vault after `destroy` in a script",
    );
    // A name that is not the record's: refused, and the hint says which it is.
    for wrong in ["Marie", "marie dupont", "Jeanne Martin", ""] {
        let out = v.run(&["destroy", "--confirm", wrong]);
        let err = assert_error(
            &out,
            &["is not the patient's name", "nothing was destroyed"],
        );
        assert!(hint(&err).contains(&format!("{name:?}")), "{err}");
        assert_same(
            &before,
            &unlocked_snapshot(v),
            "the vault after a wrong confirmation",
        );
    }
    // On a terminal, the name typed at the prompt is checked the same way.
    let out = destroy_on_terminal(v, "Marie Dupond");
    assert_eq!(
        out.status.code(),
        Some(EXIT_FAILURE),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("is not the patient's name"));
    assert_same(
        &before,
        &unlocked_snapshot(v),
        "the vault after a wrong name typed",
    );
}

/// Destroys `v` (confirmed by `name`) and checks the report: keys shredded, every file and the
/// folder gone, and the copies it knows of listed. Returns the report.
fn destroy(v: &Vault, name: &str) -> Value {
    let report = v.ok(&["destroy", "--confirm", name, "--json"]).json();
    assert_gone(&v.dir);
    assert_eq!(
        report["shredded"],
        serde_json::json!(["identity.age", "keys.age"])
    );
    assert_eq!(report["folder_removed"], true);
    assert_eq!(report["left"], serde_json::json!([]));
    assert_eq!(report["identity_outside"], false);
    assert!(report["files_removed"].as_u64().unwrap() > 5, "{report}");
    report
}

fn targets(report: &Value) -> Vec<String> {
    let mut t: Vec<String> = report["copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["target"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

#[test]
fn destroy_leaves_nothing_and_names_the_backups_that_still_hold_the_record() {
    let v = new_vault();
    sample(&v);
    let zip = v.work.join("b.zip");
    let mirror = v.work.join("mirror");
    v.ok(&["backup", "-o", s(&zip)]);
    v.ok(&["backup", "--to", s(&mirror)]);
    destroy_refusals(&v, NAME);
    // A closed record can be destroyed (closure, then deletion on request).
    v.ok(&["close"]);
    let report = destroy(&v, NAME);
    assert_eq!(targets(&report), [s(&zip), s(&mirror)]);
    // As the report says: the backup still holds the record, and the passphrase opens it.
    let restored = v.root().join("restored");
    v.cmd_on(&restored, &[]).args(["restore", s(&zip)]).ok();
    assert_eq!(
        v.cmd_on(&restored, &[])
            .args(["ls"])
            .ok()
            .text()
            .lines()
            .count(),
        2
    );
}

#[test]
fn destroy_on_a_terminal_asks_for_the_name() {
    let v = new_vault();
    let out = destroy_on_terminal(&v, NAME);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!("Type the patient's name ({NAME})")),
        "{shown}"
    );
    assert!(shown.contains("knows of no backup"), "{shown}");
    assert_gone(&v.dir);
}

#[test]
fn a_record_upgraded_from_format_1_is_destroyed_too() {
    let v = fixture_vault();
    destroy_refusals(&v, FIXTURE_NAME);
    let report = destroy(&v, FIXTURE_NAME);
    // The fixture was backed up once, when it was made: the log remembers where.
    assert_eq!(targets(&report).len(), 1, "{report}");
    assert!(targets(&report)[0].ends_with("backup.zip"), "{report}");
}

#[test]
fn a_record_without_a_name_is_confirmed_by_its_fingerprint() {
    let v = Vault::init();
    let fingerprint = v.ok(&["fingerprint"]).text().trim().to_string();
    let out = v.run(&["destroy", "--confirm", NAME]);
    let err = assert_error(&out, &["is not the vault's fingerprint"]);
    assert!(hint(&err).contains(&fingerprint), "{err}");
    destroy(&v, &fingerprint);
}

#[test]
fn destroy_keeps_files_that_are_not_the_vault_s_and_the_folder_holding_them() {
    let v = new_vault();
    fs::write(v.dir.join("mes notes.txt"), b"not carnet's").unwrap();
    let report = v.ok(&["destroy", "--confirm", NAME, "--json"]).json();
    assert_eq!(report["folder_removed"], false);
    assert_eq!(report["left"], serde_json::json!(["mes notes.txt"]));
    assert_eq!(
        tree(&v.dir).into_iter().collect::<Vec<_>>(),
        ["mes notes.txt"]
    );
}

#[test]
fn an_interrupted_destroy_is_recognised_and_finished() {
    let v = new_vault();
    sample(&v);
    // As if destroy had been killed after its first steps: config renamed, keys shredded.
    fs::rename(
        v.dir.join("carnet.toml"),
        v.dir.join("carnet.toml.destroying"),
    )
    .unwrap();
    fs::remove_file(v.dir.join("identity.age")).unwrap();
    fs::remove_file(v.dir.join("keys.age")).unwrap();
    let out = v.run(&["ls"]);
    let err = assert_error(&out, &["was being destroyed"]);
    assert!(hint(&err).contains("carnet destroy"), "{err}");
    let out = v.ok(&["destroy"]);
    assert!(out.stderr.contains("finishing the destruction"), "{out}");
    assert_gone(&v.dir);
}

#[test]
fn destroy_refuses_a_folder_that_is_not_a_vault() {
    let v = Vault::new();
    fs::create_dir_all(&v.dir).unwrap();
    let precious: PathBuf = v.dir.join("precious.txt");
    fs::write(&precious, b"keep").unwrap();
    let out = v.run(&["destroy", "--confirm", NAME]);
    assert_error(&out, &["no vault"]);
    assert_eq!(fs::read(&precious).unwrap(), b"keep");
}

#[test]
fn a_destroy_marker_alone_is_not_a_confirmation() {
    let v = new_vault();
    sample(&v);
    // Anyone with write access can rename the config: the keys are all there.
    fs::rename(
        v.dir.join("carnet.toml"),
        v.dir.join("carnet.toml.destroying"),
    )
    .unwrap();
    let before = snapshot(&v.dir);
    let out = v.run(&["destroy"]);
    let err = assert_error(&out, &["interrupted destruction", "keys are still there"]);
    assert!(
        hint(&err).contains("rename carnet.toml.destroying back"),
        "{err}"
    );
    assert_same(&before, &snapshot(&v.dir), "a refused finish");
    // Renamed back, the vault is whole.
    fs::rename(
        v.dir.join("carnet.toml.destroying"),
        v.dir.join("carnet.toml"),
    )
    .unwrap();
    v.ok(&["verify"]);
}

#[test]
fn a_closed_record_still_lets_the_patient_withdraw_consent() {
    let v = new_vault();
    let x = sample(&v);
    close(&v, "fermé");
    let j = v.ok(&["revoke", &x.grant, "--json"]).json();
    assert_eq!(j["changed"], true, "{j}");
    let j = v.ok(&["pro", "block", "luc", "--json"]).json();
    assert_eq!(j["changed"], true, "{j}");
    let log = actions(&v);
    assert!(
        log.ends_with(&["revoke".to_string(), "pro-block".to_string()]),
        "{log:?}"
    );
    v.ok(&["verify"]);
}
