//! Format 2 and the way from format 1: a vault made by carnet 0.1.0 (format 1, kept in
//! tests/data/format1) is read as it is, upgraded by its first write, and every crash point of
//! that upgrade leaves a vault that verifies; its bundle still opens and its backup restores.
//! And the metadata shards format 2 adds are each covered by `verify`: flipped, replaced by an
//! older copy, swapped in from another vault, or dropped.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::util::*;

const FIXTURE: &str = "tests/data/format1";
/// The fixture's grant is valid from 2026-12-06T04:30Z for 7 days.
const FIXTURE_NOW: &str = "2026-12-07T12:00:00Z";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)
}

/// A copy of the format-1 vault in a fresh test folder (with the `tmp/` git does not keep).
fn format1_vault() -> Vault {
    let v = Vault::new();
    copy_dir(&fixture().join("vault"), &v.dir);
    v
}

fn config_format(v: &Vault) -> String {
    fs::read_to_string(v.dir.join("carnet.toml"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("format"))
        .unwrap()
        .to_string()
}

fn verify_json(v: &Vault) -> (Option<i32>, serde_json::Value) {
    let out = v.run(&["verify", "--json"]);
    (out.code, out.json())
}

#[test]
fn a_format1_vault_is_read_as_it_is_then_upgraded_by_its_first_write() {
    let v = format1_vault();
    let before = v.snapshot();
    // Reading commands work on format 1 and change nothing.
    assert_eq!(v.ls_titles(&[]), ["Radio thorax", "ordonnance"]);
    let radio = &v.ls(&["--category", "imagerie"])[0];
    assert_eq!(radio["author"], "Cabinet de radiologie");
    assert_eq!(radio["tags"][0], "poumon");
    let log = v.ok(&["log"]).text();
    assert!(
        log.contains("bilan-sanguin"),
        "removed titles stay in the log:\n{log}"
    );
    assert!(v.ok(&["grants"]).text().contains("jeanne-martin"));
    assert!(v.ok(&["pro", "ls"]).text().contains("Jeanne Martin"));
    v.ok(&["verify", "--offline"]);
    assert_same(
        &before,
        &v.snapshot(),
        "the format-1 vault after reading commands",
    );
    assert_eq!(config_format(&v), "format = 1");

    // The first write upgrades it, says so, and the document reads back byte for byte.
    let out = v.ok(&["cat", "c0e5"]);
    assert_bytes_eq(
        &out.stdout,
        &fs::read("examples/sample-record/ordonnance.txt").unwrap(),
        "ordonnance after the upgrade",
    );
    assert!(
        out.stderr
            .clone()
            .contains("upgraded the vault to format 2"),
        "{}",
        out.stderr.clone()
    );
    assert_eq!(config_format(&v), "format = 2");
    let (code, report) = verify_json(&v);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["documents"], 2);
    v.ok(&["verify", "--offline"]);
    assert!(v.dir.join("index").is_dir(), "format 2 writes index parts");
    assert_eq!(v.ls_titles(&[]), ["Radio thorax", "ordonnance"]);
    let log = v.ok(&["log", "--action", "upgrade", "--json"]).text();
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(log[0]["details"]["from"], 1);
    assert_eq!(log[0]["details"]["to"], 2);
    // The digest shards were built: the same content is still found as a duplicate.
    let dup = v.write(
        "copie.txt",
        &fs::read("examples/sample-record/ordonnance.txt").unwrap(),
    );
    let out = v.ok(&["add".as_ref(), dup.as_os_str()]);
    assert!(out.stderr.clone().contains("already in vault as c0e5ac35"));
    // And a second write does not upgrade again.
    let out = v.ok(&["show", "c81d"]);
    assert!(!out.stderr.clone().contains("upgraded"));
}

/// The identity of the fixture vault, from `identity.age` and the test passphrase, as
/// `age -d -i identity.age` would give it.
fn fixture_identity(v: &Vault) -> age::x25519::Identity {
    let scrypt = age::scrypt::Identity::new(PASSPHRASE.to_string().into());
    let key = decrypt(&fs::read(v.dir.join("identity.age")).unwrap(), &scrypt);
    let line = String::from_utf8(key)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    line.parse().unwrap()
}

fn decrypt(bytes: &[u8], id: &dyn age::Identity) -> Vec<u8> {
    let d = age::Decryptor::new(bytes).unwrap();
    let mut r = d.decrypt(std::iter::once(id)).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

fn encrypt(plain: &[u8], to: &age::x25519::Recipient) -> Vec<u8> {
    let e = age::Encryptor::with_recipients(std::iter::once(to as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = e.wrap_output(&mut out).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap();
    out
}

/// Every crash point of the upgrade, built exactly: the upgraded vault's files mixed with the
/// format-1 vault's in the order the upgrade writes them (log entry and shards, then the root,
/// then carnet.toml, then the head). Each state verifies, and the next write completes or undoes
/// the upgrade so that the vault verifies again with both documents intact.
#[test]
fn an_upgrade_interrupted_at_any_step_leaves_a_vault_that_verifies() {
    let old = format1_vault();
    let new = format1_vault();
    new.ok(&["show", "c0e5"]);
    // The upgraded log holds the upgrade and the view that caused it: keep the upgrade only,
    // as it stood right after the upgrade wrote its entry.
    let id = fixture_identity(&new);
    let seg = "log/00000000.age";
    let lines = String::from_utf8(decrypt(&fs::read(new.dir.join(seg)).unwrap(), &id)).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert!(lines[lines.len() - 2].contains("\"action\":\"upgrade\""));
    let upgrade_only = format!("{}\n", lines[..lines.len() - 1].join("\n"));
    let upgrade_segment = encrypt(upgrade_only.as_bytes(), &id.to_public());
    let new_objects: Vec<PathBuf> = files_under(&new.dir.join("objects"))
        .into_iter()
        .filter(|p| !old.dir.join(p.strip_prefix(&new.dir).unwrap()).exists())
        .collect();
    assert!(!new_objects.is_empty());

    let steps: [&[&str]; 3] = [&[], &["manifest.age"], &["manifest.age", "carnet.toml"]];
    for (n, replaced) in steps.iter().enumerate() {
        let v = format1_vault();
        fs::write(v.dir.join(seg), &upgrade_segment).unwrap();
        for o in &new_objects {
            let dest = v.dir.join(o.strip_prefix(&new.dir).unwrap());
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(o, dest).unwrap();
        }
        for f in replaced.iter() {
            fs::copy(new.dir.join(f), v.dir.join(f)).unwrap();
        }
        // Reading works in the middle of the upgrade, and changes nothing.
        let before = v.snapshot();
        assert_eq!(
            v.ls_titles(&[]),
            ["Radio thorax", "ordonnance"],
            "crash point {n}"
        );
        assert_same(
            &before,
            &v.snapshot(),
            "a listing in the middle of an upgrade",
        );
        // `verify` checks the state as it is (an interrupted command is a note, not damage),
        // then, as the first write, finishes or undoes and redoes the upgrade.
        let out = v.run(&["verify", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let err = out.stderr.clone();
        assert_eq!(out.code, Some(0), "crash point {n}: {report}\n{err}");
        assert!(
            report["notes"].to_string().contains("interrupted"),
            "crash point {n}: {report}"
        );
        assert!(
            err.contains("finished `upgrade`") || err.contains("rolled back `upgrade`"),
            "crash point {n}: {err}"
        );
        assert_eq!(config_format(&v), "format = 2", "crash point {n}");
        let (code, report) = verify_json(&v);
        assert_eq!(
            code,
            Some(0),
            "crash point {n} after the next write: {report}"
        );
        assert_eq!(report["documents"], 2, "crash point {n}");
        v.ok(&["verify", "--offline"]);
        let out = v.ok(&["cat", "c81d"]);
        assert_eq!(
            sha256_hex(&out.stdout),
            sha256_hex(&fs::read("examples/sample-record/radio-thorax.png").unwrap()),
            "crash point {n}"
        );
    }
}

#[test]
fn a_format1_bundle_opens_and_a_format1_backup_restores() {
    let v = Vault::new();
    let out = v.work.join("ouvert");
    let mut c = carnet();
    c.env("CARNET_NOW", FIXTURE_NOW)
        .env("CARNET_KNOWN_PATIENTS", v.work.join("known.toml"))
        .current_dir(v.root())
        .arg("open")
        .arg("-i")
        .arg(fixture().join("jeanne.key"))
        .arg(fixture().join("grant.age"))
        .arg("-o")
        .arg(&out);
    c.ok();
    assert_bytes_eq(
        &fs::read(out.join("documents/autre/2026-12-06 ordonnance.txt")).unwrap(),
        &fs::read("examples/sample-record/ordonnance.txt").unwrap(),
        "the format-1 bundle's document",
    );

    v.ok(&["restore".as_ref(), fixture().join("backup.zip").as_os_str()]);
    v.ok(&["verify"]);
    assert_eq!(v.ls_titles(&[]), ["Radio thorax", "ordonnance"]);
    assert_eq!(
        config_format(&v),
        "format = 2",
        "verify logged, and so upgraded"
    );
}

/// The shard objects of `v`, and every object, relative to the vault.
fn shards(v: &Vault) -> BTreeSet<String> {
    shard_objects(&v.dir, v.passphrase.as_deref(), v.identity.as_deref()).unwrap()
}

fn object_path(v: &Vault, id: &str) -> PathBuf {
    v.dir
        .join("objects")
        .join(&id[..2])
        .join(format!("{id}.age"))
}

fn assert_verify_fails(v: &Vault, path: &str, what: &str) {
    let (code, report) = verify_json(v);
    assert_eq!(code, Some(EXIT_INTEGRITY), "{what}: {report}");
    assert!(
        report["problems"].to_string().contains(path),
        "{what}: the report should name {path}: {report}"
    );
}

fn vault_with_documents(n: u64) -> Vault {
    let v = Vault::init();
    for i in 0..n {
        v.write(&format!("docs/doc-{i}.txt"), &pseudo_random(200, i));
    }
    v.ok(&["add".as_ref(), v.work.join("docs").as_os_str()]);
    v
}

#[test]
fn a_flipped_byte_in_any_shard_is_reported() {
    let v = vault_with_documents(3);
    let all = shards(&v);
    // Three documents fill up to three document shards and three digest shards: fewer when
    // two random ids (or two keyed digests) share their first byte, which happens (~2 %).
    assert!(
        (2..=6).contains(&all.len()),
        "three documents: document and digest shards, got {}",
        all.len()
    );
    for id in &all {
        let c = Vault::new();
        copy_dir(&v.dir, &c.dir);
        let p = object_path(&c, id);
        let mut bytes = fs::read(&p).unwrap();
        let at = bytes.len() - 20;
        bytes[at] ^= 0x40;
        fs::write(&p, bytes).unwrap();
        assert_verify_fails(&c, id, "a flipped byte in a shard");
    }
}

#[test]
fn a_dropped_shard_is_reported() {
    let v = vault_with_documents(2);
    for id in shards(&v) {
        let c = Vault::new();
        copy_dir(&v.dir, &c.dir);
        fs::remove_file(object_path(&c, &id)).unwrap();
        assert_verify_fails(&c, &id, "a dropped shard");
    }
}

#[test]
fn a_shard_swapped_in_from_another_vault_is_reported() {
    let a = vault_with_documents(2);
    let b = vault_with_documents(2);
    let theirs = shards(&b).into_iter().next().unwrap();
    let mine = shards(&a).into_iter().next().unwrap();
    fs::copy(object_path(&b, &theirs), object_path(&a, &mine)).unwrap();
    assert_verify_fails(&a, &mine, "a shard from another vault");
}

/// An older copy of a shard put back in place of the current one (a sync folder or a backup
/// restoring one file): documents added after it would vanish silently if it were accepted.
#[test]
fn an_older_copy_of_a_shard_is_reported() {
    let v = vault_with_documents(8);
    // Add documents until one lands in a shard that already existed, which is then replaced.
    let mut found = None;
    for i in 0..200 {
        let before = shards(&v);
        let saved: Vec<(String, Vec<u8>)> = before
            .iter()
            .map(|id| (id.clone(), fs::read(object_path(&v, id)).unwrap()))
            .collect();
        let f = v.write(&format!("plus-{i}.txt"), &pseudo_random(300, 1000 + i));
        v.add(&f, &[]);
        let after = shards(&v);
        let gone: Vec<&(String, Vec<u8>)> =
            saved.iter().filter(|(id, _)| !after.contains(id)).collect();
        let new: Vec<&String> = after.difference(&before).collect();
        if let (Some((_, old_bytes)), Some(current)) = (gone.first(), new.first()) {
            found = Some(((*current).clone(), old_bytes.clone()));
            break;
        }
    }
    let (current, old_bytes) = found.expect("no shard was ever replaced in 200 additions");
    fs::write(object_path(&v, &current), old_bytes).unwrap();
    assert_verify_fails(&v, &current, "an older copy of a shard");
}

#[test]
fn a_change_to_one_document_rewrites_only_its_shards() {
    let v = vault_with_documents(40);
    let before = shards(&v);
    let f = v.write("nouveau.txt", b"un document de plus\n");
    v.add(&f, &[]);
    let after = shards(&v);
    // One document shard and one digest shard at most are written anew.
    let new: Vec<&String> = after.difference(&before).collect();
    assert_eq!(
        new.len(),
        2,
        "an add writes one document and one digest shard"
    );
    // A view rewrites no shard at all.
    let id = v.ls(&[])[0]["id"].as_str().unwrap().to_string();
    v.ok(&["show", short(&id)]);
    assert_eq!(shards(&v), after);
}

/// The index parts are rewritten before their signed top, without fsync: a crash in between
/// leaves parts newer than a top that is behind the head. The keyed `verify` calls that an
/// index out of date (a note, exit 0), not damage, and the next write rebuilds it.
#[test]
fn an_index_update_interrupted_between_its_parts_and_its_top_is_out_of_date_not_damage() {
    let v = vault_with_documents(3);
    let top = fs::read(v.dir.join("index.json")).unwrap();
    let sig = fs::read(v.dir.join("index.json.minisig")).unwrap();
    let f = v.write("encore.txt", b"un autre document\n");
    v.add(&f, &[]);
    // The crash state: the new parts, the old top.
    fs::write(v.dir.join("index.json"), top).unwrap();
    fs::write(v.dir.join("index.json.minisig"), sig).unwrap();
    let out = v.run(&["verify", "--json"]);
    let report = out.json();
    assert_eq!(out.code, Some(0), "{report}\n{}", out.stderr);
    assert!(
        report["notes"].to_string().contains("out of date"),
        "{report}"
    );
    // `verify` logged its check, and so rewrote the index: keyless checks pass again.
    v.ok(&["verify", "--offline"]);
}

/// Older copies of `head.age` and `manifest.age` put back after an `add` (a sync tool's previous
/// version, a restored file) look like an `add` interrupted before its manifest. The signed
/// index, written after the head, says the add had completed: `verify` reports the older copies
/// and no write undoes the add (which would delete the document it reported as added).
#[test]
fn older_head_and_manifest_put_back_never_undo_a_completed_add() {
    let v = vault_with_documents(2);
    let old = v.ls(&[])[0]["id"].as_str().unwrap().to_string();
    let head = fs::read(v.dir.join("head.age")).unwrap();
    let root = fs::read(v.dir.join("manifest.age")).unwrap();
    let f = v.write("nouveau.txt", b"le document le plus recent\n");
    v.add(&f, &[]);
    let objects = v.objects();
    fs::write(v.dir.join("head.age"), head).unwrap();
    fs::write(v.dir.join("manifest.age"), root).unwrap();
    let (code, report) = verify_json(&v);
    assert_eq!(code, Some(EXIT_INTEGRITY), "{report}");
    assert!(
        report["problems"]
            .to_string()
            .contains("older than the access log"),
        "{report}"
    );
    // A write would have rolled the add back: it refuses instead.
    let out = v.run(&["show", short(&old)]);
    assert_eq!(out.code, Some(EXIT_INTEGRITY), "{out}");
    assert!(out.stderr.contains("older than the access log"), "{out}");
    for o in &objects {
        assert!(o.exists(), "{} was deleted", o.display());
    }
}

#[test]
fn notes_corrections_and_hiding_work_on_a_vault_upgraded_from_format1() {
    let v = format1_vault();
    let docs = v.ls(&[]);
    let id = docs[0]["id"].as_str().unwrap().to_string();
    let original = v.ok(&["cat", &id, "--force"]).stdout;
    v.ok(&["note", "Note sur un carnet ancien"]);
    assert!(
        config_format(&v).contains('2'),
        "the first write upgraded it"
    );
    v.ok(&["edit", &id, "--title", "Titre corrigé", "--reason", "faute"]);
    let g = v.write("new.bin", b"contenu corrige");
    v.ok(&["replace", &id, g.to_str().unwrap()]);
    assert_eq!(
        v.ok(&["cat", &id, "--version", "1", "--force"]).stdout,
        original
    );
    assert_eq!(v.ok(&["cat", &id, "--force"]).stdout, b"contenu corrige");
    let h = v.ok(&["history", &id, "--json"]).json();
    assert_eq!(h.as_array().unwrap().len(), 3);
    v.ok(&["hide", &id]);
    let hidden = v.ls(&["--hidden"]);
    assert_eq!(hidden.len(), 1);
    assert_eq!(hidden[0]["title"], "Titre corrigé");
    let (code, report) = verify_json(&v);
    assert_eq!(code, Some(0), "{report}");
    v.ok(&["verify", "--deep"]);
}
