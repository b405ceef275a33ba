//! Issue 9, item 1: a mirror's own changes are never deleted. A patient adds a document on the
//! `backup --to` stick at the doctor's; the next `backup --to` from the laptop must refuse and
//! name it (without the key: its object file; with it: its title), leaving the mirror as it was;
//! `--merge` brings it into the vault, `--force` drops it, and an ordinary mirror that is merely
//! behind is updated without a false alarm.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::backup::{
    EXIT_FAILURE, EXIT_INTEGRITY, KeyMode, Out, Sandbox, assert_same_files, files, flip_middle,
    objects, offline,
};
use crate::util::hint;

const SCAN: &[u8] = b"Radio du genou gauche: pas de fracture\n";

/// A vault with three documents, mirrored (without the key) to `root/mirror`.
fn mirrored(mode: KeyMode) -> (Sandbox, PathBuf) {
    let s = Sandbox::new(mode);
    s.add_sample();
    let m = s.path("mirror");
    s.backup(&["--to", m.to_str().unwrap()]);
    (s, m)
}

/// Adds "Radio genou" on the mirror, as the patient would at the doctor's; returns the
/// document's object (`objects/xx/ID.age`).
fn add_on_mirror(s: &Sandbox, m: &Path) -> String {
    let before = objects(m);
    let p = s.write("genou.txt", SCAN);
    s.keyed_ok(m, &["add", p.to_str().unwrap(), "--title", "Radio genou"]);
    let added: Vec<String> = objects(m)
        .into_iter()
        .filter(|o| !before.contains(o))
        .collect();
    assert_eq!(added.len(), 1, "one document object added on the mirror");
    added.into_iter().next().unwrap()
}

fn titles(s: &Sandbox, dir: &Path) -> Vec<String> {
    let mut t: Vec<String> = s
        .ls(dir)
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

/// The mirror's files, without the lock (a reader may create it).
fn mirror_files(m: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut f = files(m);
    f.remove("lock");
    f
}

/// The refusal every case shares: exit 1, one `error:` line and a hint to --merge or --force.
#[track_caller]
fn assert_refusal(o: &Out, needles: &[&str], what: &str) {
    let mut all = vec!["changes of its own"];
    all.extend_from_slice(needles);
    o.assert_refused(EXIT_FAILURE, &all, what);
    let h = hint(&o.stderr);
    assert!(
        h.contains("--merge") && h.contains("--force"),
        "{what}: {o}"
    );
}

#[test]
fn a_document_added_on_the_mirror_stops_a_keyless_update_naming_its_object() {
    let (s, m) = mirrored(KeyMode::Passphrase);
    let obj = add_on_mirror(&s, &m);
    let mirror_before = mirror_files(&m);
    let vault_before = files(&s.vault);
    let o = s.keyless_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(&o, &[&obj, "ahead"], "keyless update");
    assert_same_files(&mirror_files(&m), &mirror_before, "the mirror was changed");
    assert_same_files(&files(&s.vault), &vault_before, "the vault was changed");
    assert!(titles(&s, &m).contains(&"Radio genou".to_string()));
    offline(&m, &[]).assert_passes();
}

fn refused_with_the_key_naming_the_title(mode: KeyMode) {
    let (s, m) = mirrored(mode);
    add_on_mirror(&s, &m);
    let mirror_before = mirror_files(&m);
    let log_before = s.log(&s.vault).len();
    let o = s.keyed_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(&o, &["\"Radio genou\"", "1 document"], "with the key");
    assert_same_files(&mirror_files(&m), &mirror_before, "the mirror was changed");
    assert_eq!(
        s.log(&s.vault).len(),
        log_before,
        "a refused backup is not logged"
    );
}

#[test]
fn with_the_passphrase_the_refusal_names_the_documents_title() {
    refused_with_the_key_naming_the_title(KeyMode::Passphrase);
}

#[test]
fn with_an_identity_file_the_refusal_names_the_documents_title() {
    refused_with_the_key_naming_the_title(KeyMode::External);
}

#[test]
fn a_mirror_changed_on_its_own_and_left_behind_is_caught_with_the_key() {
    // Both sides changed since the last mirror, the vault more: the mirror's log is shorter,
    // yet not a prefix of the vault's.
    let (s, m) = mirrored(KeyMode::Passphrase);
    add_on_mirror(&s, &m);
    s.add("a.txt", b"analyse 1\n");
    s.add("b.txt", b"analyse 2\n");
    s.add("c.txt", b"analyse 3\n");
    let before = mirror_files(&m);
    let o = s.keyed_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(&o, &["\"Radio genou\""], "diverged, behind");
    assert_same_files(&mirror_files(&m), &before, "the mirror was changed");
}

#[test]
fn merge_brings_the_mirrors_document_into_the_vault_then_updates_the_mirror() {
    let (s, m) = mirrored(KeyMode::Passphrase);
    add_on_mirror(&s, &m);
    // The vault moved on meanwhile too.
    s.add("analyse.txt", b"Analyse: ferritine basse\n");
    let o = s.keyed_ok(
        &s.vault,
        &["backup", "--to", m.to_str().unwrap(), "--merge", "--json"],
    );
    let rep = o.json();
    let merged = rep["merged"].as_array().expect("merged in the report");
    assert_eq!(merged.len(), 1, "{rep}");
    assert_eq!(merged[0]["title"], "Radio genou", "{rep}");
    assert_eq!(rep["logged"], true, "{rep}");

    let want = {
        let mut t = vec![
            "Radio genou".to_string(),
            "analyse".to_string(),
            "bilan".to_string(),
            "ordonnance".to_string(),
            "radio".to_string(),
        ];
        t.sort();
        t
    };
    assert_eq!(titles(&s, &s.vault), want, "the vault gained the document");
    assert_eq!(titles(&s, &m), want, "the mirror kept it and got the rest");
    // Byte for byte, from the vault.
    let id = merged[0]["id"].as_str().unwrap();
    let cat = s.keyed_ok(&s.vault, &["cat", id]);
    assert_eq!(cat.stdout, SCAN, "the merged document's content");
    // One logged import, naming the mirror.
    let log = s.log(&s.vault);
    let entry = log
        .iter()
        .find(|e| e["details"]["merged_from"].is_string())
        .expect("an entry with merged_from");
    assert_eq!(entry["action"], "add", "{entry}");
    assert_eq!(entry["documents"][0], id, "{entry}");
    assert_eq!(entry["details"]["merged_from"], m.to_str().unwrap());

    s.assert_deep_ok(&s.vault);
    offline(&m, &[]).assert_passes();
    // The mirror is an ordinary mirror again.
    let again = s.backup(&["--to", m.to_str().unwrap()]);
    assert_eq!(again["removed"], 0, "{again}");
    s.assert_deep_ok(&m);
}

#[test]
fn a_keyed_verify_on_the_mirror_is_a_change_of_its_own() {
    // A keyed `verify` on the mirror appends to its log (it is part of the record).
    let (s, m) = mirrored(KeyMode::Passphrase);
    s.keyed_ok(&m, &["verify"]);
    let before = mirror_files(&m);
    let o = s.keyless_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(&o, &["log", "ahead"], "keyless");
    assert_same_files(&mirror_files(&m), &before, "the mirror was changed");
    s.keyed_ok(&s.vault, &["verify"]);
    let o = s.keyless_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(&o, &["log"], "keyless, the vault moved on as well");
    let o = s.keyed_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(&o, &["1 log entry"], "with the key");
    s.backup(&["--to", m.to_str().unwrap(), "--force"]);
    offline(&m, &[]).assert_passes();
}

#[test]
fn a_mirror_log_newer_than_its_index_is_seen_without_the_key() {
    // A command interrupted on the mirror after its log entry, before its index: the index
    // alone says nothing changed; the log files tell.
    let (s, m) = mirrored(KeyMode::Passphrase);
    let index = fs::read(m.join("index.json")).unwrap();
    let sig = fs::read(m.join("index.json.minisig")).unwrap();
    add_on_mirror(&s, &m);
    fs::write(m.join("index.json"), index).unwrap();
    fs::write(m.join("index.json.minisig"), sig).unwrap();
    let before = mirror_files(&m);
    let o = s.keyless_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(
        &o,
        &["its log changed after its index was written"],
        "stale index",
    );
    assert_same_files(&mirror_files(&m), &before, "the mirror was changed");
}

#[test]
fn merge_refuses_a_damaged_object_and_changes_nothing() {
    let (s, m) = mirrored(KeyMode::Passphrase);
    let obj = add_on_mirror(&s, &m);
    flip_middle(&m.join(&obj));
    let vault_before = files(&s.vault);
    let o = s.keyed_run(
        &s.vault,
        &["backup", "--to", m.to_str().unwrap(), "--merge"],
    );
    o.assert_refused(EXIT_INTEGRITY, &[&obj, "Radio genou"], "damaged object");
    let mut after = files(&s.vault);
    let mut before = vault_before;
    after.remove("lock");
    before.remove("lock");
    after.retain(|k, _| !k.starts_with("tmp/"));
    before.retain(|k, _| !k.starts_with("tmp/"));
    assert_same_files(&after, &before, "the vault was changed");
    assert!(m.join(&obj).exists(), "the mirror keeps its object");
}

#[test]
fn merge_needs_the_key_and_asks_for_nothing_without_a_terminal() {
    let (s, m) = mirrored(KeyMode::Passphrase);
    add_on_mirror(&s, &m);
    let before = mirror_files(&m);
    let o = s.keyless_run(
        &s.vault,
        &["backup", "--to", m.to_str().unwrap(), "--merge"],
    );
    o.assert_refused(EXIT_FAILURE, &[], "merge without the key");
    assert!(hint(&o.stderr).contains("CARNET_PASSPHRASE"), "{o}");
    assert_same_files(&mirror_files(&m), &before, "the mirror was changed");
}

#[test]
fn force_overwrites_the_mirrors_own_document() {
    let (s, m) = mirrored(KeyMode::Passphrase);
    let obj = add_on_mirror(&s, &m);
    let rep = s.backup(&["--to", m.to_str().unwrap(), "--force"]);
    assert!(rep["removed"].as_u64().unwrap() >= 1, "{rep}");
    assert!(!m.join(&obj).exists(), "--force drops {obj}");
    assert!(!titles(&s, &m).contains(&"Radio genou".to_string()));
    assert_same_files(
        &{
            let mut f = mirror_files(&m);
            f.retain(|k, _| k.starts_with("objects/"));
            f
        },
        &{
            let mut f = files(&s.vault);
            f.retain(|k, _| k.starts_with("objects/"));
            f
        },
        "the mirror's objects are the vault's",
    );
    offline(&m, &[]).assert_passes();
}

#[test]
fn a_view_on_the_mirror_is_a_change_of_its_own_too() {
    // The access log is part of the record: a document shown at the doctor's is logged there.
    let (s, m) = mirrored(KeyMode::Passphrase);
    let id = s.ls(&m)[0]["id"].as_str().unwrap().to_string();
    s.keyed_ok(&m, &["show", &id]);
    let o = s.keyed_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(&o, &["no document would be lost"], "a view");
    let rep = s.keyed_ok(
        &s.vault,
        &["backup", "--to", m.to_str().unwrap(), "--merge", "--json"],
    );
    assert_eq!(rep.json()["merged"], serde_json::json!([]), "{rep}");
    offline(&m, &[]).assert_passes();
}

#[test]
fn a_mirror_that_is_only_behind_is_updated_without_a_false_alarm() {
    let (s, m) = mirrored(KeyMode::Passphrase);
    let mm = m.to_str().unwrap();
    // Every kind of change on the vault side, and many entries (past a log segment).
    let id = s.add("a.txt", b"analyse\n");
    s.keyed_ok(&s.vault, &["rm", "--yes", &id]);
    s.add_many("lot", 3, 100, 9);
    for _ in 0..3 {
        s.keyed_ok(&s.vault, &["verify"]);
    }
    let rep = s.backup(&["--to", mm]);
    assert!(rep["copied"].as_u64().unwrap() >= 1, "{rep}");
    offline(&m, &[]).assert_passes();
    s.add("b.txt", b"analyse 2\n");
    let o = s.keyed_ok(&s.vault, &["backup", "--to", mm, "--json"]);
    assert_eq!(o.json()["logged"], true);
    offline(&m, &[]).assert_passes();
    assert_eq!(titles(&s, &m), titles(&s, &s.vault));
    // Many entries later (a new log segment), with and without the key.
    let shown = s.ls(&s.vault)[0]["id"].as_str().unwrap().to_string();
    for _ in 0..260 {
        s.keyed_ok(&s.vault, &["show", &shown]);
    }
    s.backup(&["--to", mm]);
    s.add("c.txt", b"analyse 3\n");
    s.keyed_ok(&s.vault, &["backup", "--to", mm]);
    offline(&m, &[]).assert_passes();
    assert_eq!(titles(&s, &m), titles(&s, &s.vault));
}

#[test]
fn merge_does_not_bring_back_a_document_the_vault_removed() {
    // Only what was added on the mirror is imported: a document the vault removed after the
    // last mirror, still on the stick, stays removed.
    let (s, m) = mirrored(KeyMode::Passphrase);
    add_on_mirror(&s, &m);
    let gone = s.ls(&s.vault)[0].clone();
    s.keyed_ok(&s.vault, &["rm", "--yes", gone["id"].as_str().unwrap()]);
    let rep = s
        .keyed_ok(
            &s.vault,
            &["backup", "--to", m.to_str().unwrap(), "--merge", "--json"],
        )
        .json();
    let merged: Vec<&str> = rep["merged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(merged, ["Radio genou"], "{rep}");
    let title = gone["title"].as_str().unwrap().to_string();
    assert!(!titles(&s, &s.vault).contains(&title), "{title} came back");
    assert!(
        !titles(&s, &m).contains(&title),
        "{title} stays on the mirror"
    );
    assert_eq!(titles(&s, &m), titles(&s, &s.vault));
    offline(&m, &[]).assert_passes();
}

#[test]
fn a_note_written_on_the_mirror_is_named_and_merged() {
    let (s, m) = mirrored(KeyMode::Passphrase);
    s.keyed_ok(
        &m,
        &["note", "Douleur thoracique ce matin", "--title", "Douleur"],
    );
    let before = mirror_files(&m);
    let o = s.keyed_run(&s.vault, &["backup", "--to", m.to_str().unwrap()]);
    assert_refusal(
        &o,
        &["Douleur"],
        "a note on the mirror is a document that would be lost",
    );
    assert_same_files(&mirror_files(&m), &before, "the mirror was changed");
    let rep = s
        .keyed_ok(
            &s.vault,
            &["backup", "--to", m.to_str().unwrap(), "--merge", "--json"],
        )
        .json();
    assert_eq!(rep["merged"][0]["title"], "Douleur", "{rep}");
    assert!(titles(&s, &s.vault).contains(&"Douleur".to_string()));
    s.assert_deep_ok(&s.vault);
}

#[test]
fn merge_refuses_corrections_and_hiding_made_on_the_mirror() {
    let (s, m) = mirrored(KeyMode::Passphrase);
    let first = s.ls(&m)[0]["id"].as_str().unwrap().to_string();
    s.keyed_ok(&m, &["hide", &first]);
    let before = mirror_files(&m);
    let vault_before = files(&s.vault);
    let o = s.keyed_run(
        &s.vault,
        &["backup", "--to", m.to_str().unwrap(), "--merge"],
    );
    assert_eq!(o.code, Some(EXIT_FAILURE), "{}", o.stderr);
    assert!(o.stderr.contains("cannot carry over: hide"), "{}", o.stderr);
    assert_same_files(&mirror_files(&m), &before, "the mirror was changed");
    let mut after = files(&s.vault);
    let mut vb = vault_before;
    after.remove("lock");
    vb.remove("lock");
    assert_same_files(&after, &vb, "the vault was changed");
}
