//! Issue 3, "Must be shown by tests": every action leaves an entry in the access log, and
//! `carnet verify` detects every kind of tampering the threat model names (point 2), while a
//! crash at any step of a command leaves a vault that verifies and recovers (point 7).
//!
//! Everything runs the real binary. Tampering is done the two ways the threat model allows:
//! with only the public recipient from `carnet.toml` (encrypt new files to it), or, for edits
//! that need to read the log, with the key (decrypt, edit, re-encrypt), which shows that the
//! MACs and the hash chain catch what age alone cannot.

use std::fs;

use crate::util::integrity::{
    EXIT_INTEGRITY, KeyMode, Vault, assert_detected, assert_refused, big, flip_middle,
    forge_history, random_id, replace_dir,
};
use serde_json::Value;

/// A vault with a few documents and views, the base of most tampering tests.
fn vault_with_docs() -> (Vault, Vec<String>) {
    vault_with_docs_in(KeyMode::External)
}

fn vault_with_docs_in(mode: KeyMode) -> (Vault, Vec<String>) {
    let v = Vault::with_mode(mode);
    let a = v.add("ordonnance.txt", b"Ordonnance: amoxicilline 1 g\n");
    let b = v.add("bilan.txt", b"Bilan sanguin: normal\n");
    let c = v.add("radio.txt", b"Radio du thorax: rien a signaler\n");
    v.ok(&["show", &a]);
    v.ok(&["cat", &b]);
    (v, vec![a, b, c])
}

fn actions(log: &[Value]) -> Vec<&str> {
    log.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

fn docs(e: &Value) -> Vec<&str> {
    e["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. The log: one entry per command that reads or changes the vault.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_command_leaves_its_entry() {
    let start = jiff::Timestamp::now();
    let v = Vault::new();
    let pa = v.work.join("ordonnance.txt");
    let pb = v.work.join("bilan.txt");
    fs::write(&pa, b"Ordonnance\n").unwrap();
    fs::write(&pb, b"Bilan\n").unwrap();
    let o = v.ok(&["add", "--json", pa.to_str().unwrap(), pb.to_str().unwrap()]);
    let added: Vec<Value> = serde_json::from_str(&o.text()).unwrap();
    let a = added[0]["id"].as_str().unwrap().to_string();
    let b = added[1]["id"].as_str().unwrap().to_string();
    v.ok(&["show", &a]);
    v.ok(&["cat", &b]);
    let out_dir = v.work.join("export");
    v.ok(&["export", &a[..6], "-o", out_dir.to_str().unwrap()]);
    v.ok(&["rm", "--yes", &a]);
    v.ok(&["verify"]);
    // A command that fails before doing anything leaves no entry.
    let miss = v.run(&["show", "ffffffff"]);
    assert_eq!(miss.code, Some(1), "{miss}");

    let log = v.log(&[]);
    let end = jiff::Timestamp::now();
    assert_eq!(
        actions(&log),
        ["init", "add", "view", "view", "export", "rm", "verify"]
    );
    let mut last_time = start;
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "seq must be 1..n, contiguous: {e}");
        assert_eq!(e["actor"], "patient", "{e}");
        assert!(e["details"].is_object(), "{e}");
        assert!(e["documents"].is_array(), "{e}");
        let t: jiff::Timestamp = e["time"].as_str().unwrap().parse().unwrap();
        assert!(
            t >= last_time && t <= end,
            "times are UTC, in order, taken when the command ran: {e}"
        );
        last_time = t;
    }
    assert!(docs(&log[0]).is_empty());
    assert_eq!(
        docs(&log[1]),
        [a.as_str(), b.as_str()],
        "add names the ids added"
    );
    assert_eq!(log[1]["details"]["count"], 2);
    assert_eq!(
        docs(&log[2]),
        [a.as_str()],
        "show is a view of its document"
    );
    assert_eq!(log[2]["details"]["what"], "metadata");
    assert_eq!(docs(&log[3]), [b.as_str()], "cat is a view of its document");
    assert_eq!(log[3]["details"]["what"], "content");
    assert_eq!(
        docs(&log[4]),
        [a.as_str()],
        "export names what was exported"
    );
    let target = fs::canonicalize(&out_dir).unwrap();
    assert_eq!(log[4]["details"]["target"], target.to_str().unwrap());
    assert_eq!(docs(&log[5]), [a.as_str()], "rm names what was removed");
    assert_eq!(
        log[5]["details"]["titles"],
        serde_json::json!(["ordonnance"])
    );
    assert!(docs(&log[6]).is_empty());
    assert_eq!(log[6]["details"]["deep"], false);
    assert_eq!(log[6]["details"]["log_entries"], 6);
}

#[test]
fn log_filters_select_entries() {
    let v = Vault::new();
    let a = v.add("compte-rendu.txt", b"Compte rendu cardiologie\n");
    let b = v.add("bilan.txt", b"Bilan\n");
    v.ok(&["show", &a]);
    v.ok(&["cat", &b]);
    v.ok(&["show", &b]);
    v.ok(&["rm", "--yes", &a]);
    let all = v.log(&[]);
    assert_eq!(all.len(), 7);

    let views = v.log(&["--action", "view"]);
    assert_eq!(views.len(), 3);
    assert!(views.iter().all(|e| e["action"] == "view"));
    assert_eq!(v.log(&["--action", "rm"]).len(), 1);
    assert!(v.log(&["--action", "export"]).is_empty());

    // --doc takes a prefix, and still finds a removed document (its title is in the log).
    let about_a = v.log(&["--doc", &a[..5]]);
    let seqs: Vec<u64> = about_a.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [2, 4, 7], "add, show and rm of {a}");
    let about_b = v.log(&["--doc", &b[..8], "--action", "view"]);
    let seqs: Vec<u64> = about_b.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [5, 6]);
    let unknown = v.run(&["log", "--doc", "0000ffff"]);
    assert_eq!(unknown.code, Some(1), "{unknown}");

    // Dates are local days.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .date();
    let yesterday = today.yesterday().unwrap().to_string();
    let tomorrow = today.tomorrow().unwrap().to_string();
    let today = today.to_string();
    assert_eq!(v.log(&["--since", &today]).len(), 7);
    assert_eq!(v.log(&["--until", &today]).len(), 7);
    assert_eq!(v.log(&["--since", &today, "--until", &today]).len(), 7);
    assert!(v.log(&["--since", &tomorrow]).is_empty());
    assert!(v.log(&["--until", &yesterday]).is_empty());
    assert_eq!(v.log(&["--since", &yesterday, "--action", "add"]).len(), 2);

    // The table names actor, action and the document by title and short id.
    let table = v.ok(&["log", "--action", "view", "--doc", &b[..6]]).text();
    assert_eq!(table.lines().count(), 2, "{table}");
    for line in table.lines() {
        assert!(line.contains("patient"), "{line}");
        assert!(line.contains("view"), "{line}");
        assert!(line.contains(&format!("bilan ({})", &b[..8])), "{line}");
    }
    // Reading the log does not add to it.
    assert_eq!(v.log(&[]).len(), 7);
}

// ---------------------------------------------------------------------------------------------
// 2. verify on a sound vault.
// ---------------------------------------------------------------------------------------------

#[test]
fn verify_passes_on_a_sound_vault_and_logs_itself() {
    let (v, _) = vault_with_docs();
    let n = v.log(&[]).len();
    let o = v.verify();
    assert!(o.success(), "{o}");
    assert!(o.failed_lines().is_empty(), "{o}");
    assert!(o.text().contains("ok: 3 documents"), "{o}");
    let log = v.log(&[]);
    assert_eq!(log.len(), n + 1, "verify appends one entry");
    let last = log.last().unwrap();
    assert_eq!(last["action"], "verify");
    assert_eq!(last["details"]["deep"], false);
    assert_eq!(last["details"]["documents"], 3);
    assert_eq!(last["details"]["log_entries"], n as u64);

    let o = v.ok(&["verify", "--deep"]);
    assert!(
        o.text().contains("every document decrypted and checked"),
        "{o}"
    );
    let log = v.log(&[]);
    assert_eq!(log.len(), n + 2);
    assert_eq!(log.last().unwrap()["details"]["deep"], true);

    let o = v.ok(&["verify", "--json"]);
    let r: Value = serde_json::from_str(&o.text()).unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["documents"], 3);
    assert_eq!(r["problems"], serde_json::json!([]));

    // The same in a passphrase vault.
    let (p, _) = vault_with_docs_in(KeyMode::Passphrase);
    p.ok(&["verify", "--deep"]);
    assert_eq!(p.log(&[]).last().unwrap()["action"], "verify");
}

// ---------------------------------------------------------------------------------------------
// 3. Detection: exit 3, a FAILED line naming the file or entry, and nothing appended.
// ---------------------------------------------------------------------------------------------

/// Runs `verify` on a tampered copy and checks it fails naming `needle`, writing nothing.
#[track_caller]
fn expect_detected(v: &Vault, needle: &str) {
    let before = v.snapshot();
    let o = v.verify();
    assert_detected(&o, needle);
    v.assert_unchanged(
        &before,
        &format!("verify of a vault with {needle} tampered"),
    );
    let j = v.run(&["verify", "--json"]);
    assert_eq!(j.code, Some(EXIT_INTEGRITY), "{j}");
    let r: Value = serde_json::from_str(&j.text()).expect("verify --json reports in JSON");
    assert_eq!(r["ok"], false, "{j}");
    assert!(
        r["problems"].as_array().unwrap().iter().any(|p| p["path"]
            .as_str()
            .unwrap()
            .contains(needle)
            || p["message"].as_str().unwrap().contains(needle)),
        "no problem in the JSON names {needle}: {j}"
    );
}

/// For each file of the vault, on a fresh copy: flip its middle byte; verify must fail.
fn flip_each_file(mode: KeyMode, skip: &[&str]) {
    let (v, _) = vault_with_docs_in(mode);
    let files = v.files();
    assert!(files.iter().any(|f| f.starts_with("objects/")));
    assert!(files.contains(&"log/00000000.age".to_string()));
    if mode == KeyMode::Passphrase {
        assert!(files.contains(&"identity.age".to_string()));
    }
    let mut tried = 0;
    for f in &files {
        if f == "lock" || skip.contains(&f.as_str()) {
            // `lock` is an empty file that only serialises writers.
            continue;
        }
        let c = v.copy();
        flip_middle(&c.path(f));
        let before = c.snapshot();
        let o = c.verify();
        if f == "carnet.toml" {
            // The config is read before anything else; its damage is named on stderr (or,
            // for a changed vault id, through keys.age: see the ignored test below).
            assert_eq!(o.code, Some(EXIT_INTEGRITY), "flipped {f}:\n{o}");
        } else {
            assert_detected(&o, f);
        }
        c.assert_unchanged(&before, &format!("verify after flipping {f}"));
        tried += 1;
    }
    assert!(tried >= 6, "only {tried} files tried");
}

#[test]
fn one_flipped_byte_in_any_file_is_detected() {
    flip_each_file(KeyMode::External, &[]);
}

#[test]
fn one_flipped_byte_in_any_file_is_detected_passphrase_vault() {
    // identity.age: see `flipped_identity_file_is_an_integrity_failure` (ignored, a bug).
    flip_each_file(KeyMode::Passphrase, &["identity.age"]);
}

#[test]
fn flipped_identity_file_is_an_integrity_failure() {
    let (v, _) = vault_with_docs_in(KeyMode::Passphrase);
    flip_middle(&v.path("identity.age"));
    let o = v.verify();
    assert_refused(&o, "identity.age");
    assert!(!o.stderr.contains("wrong passphrase"), "{o}");
}

#[test]
fn flipped_config_vault_id_names_the_config() {
    let (v, _) = vault_with_docs();
    flip_middle(&v.path("carnet.toml")); // the middle byte falls in vault_id
    let o = v.verify();
    assert_refused(&o, "carnet.toml");
}

/// Flips the lowest bit of the first byte of `needle`'s value in carnet.toml.
fn flip_config_field(v: &Vault, needle: &str) {
    let p = v.path("carnet.toml");
    let mut b = fs::read(&p).unwrap();
    let text = String::from_utf8(b.clone()).unwrap();
    let i = text.find(needle).unwrap() + needle.len();
    b[i] ^= 0x01;
    fs::write(&p, b).unwrap();
}

#[test]
fn flipped_config_format_is_detected() {
    let (v, _) = vault_with_docs();
    // Claiming an older format (a downgrade), or one that never existed.
    for claim in ["format = 1", "format = 0"] {
        let c = v.copy();
        let p = c.path("carnet.toml");
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.contains("format = 2"));
        fs::write(&p, text.replace("format = 2", claim)).unwrap();
        assert_refused(&c.verify(), "carnet.toml");
    }
}

#[test]
fn flipped_config_recipient_is_an_integrity_failure() {
    let (v, _) = vault_with_docs();
    flip_config_field(&v, "recipients = [\"age1");
    assert_refused(&v.verify(), "carnet.toml");
}

#[test]
fn flipped_config_comment_is_detected() {
    let (v, _) = vault_with_docs();
    flip_config_field(&v, "# carnet");
    assert_refused(&v.verify(), "carnet.toml");
}

/// For each file of the vault, on a fresh copy: delete it; verify must fail naming it.
fn delete_each_file(mode: KeyMode) {
    let (v, _) = vault_with_docs_in(mode);
    for f in v.files() {
        if f == "lock" || f == "carnet.toml" {
            // `lock` is recreated by the next writer and holds nothing; carnet.toml: see
            // `deleted_config_is_an_integrity_failure` (ignored, a bug).
            continue;
        }
        let c = v.copy();
        fs::remove_file(c.path(&f)).unwrap();
        let before = c.snapshot();
        let o = c.verify();
        match f.as_str() {
            // Without it the vault cannot be unlocked: verify stops with an error naming it.
            "identity.age" => assert_refused(&o, "identity.age is missing"),
            // The only segment: reported as the log being missing.
            "log/00000000.age" => assert_detected(&o, "log"),
            _ => assert_detected(&o, &f),
        }
        c.assert_unchanged(&before, &format!("verify after deleting {f}"));
    }
}

#[test]
fn any_deleted_file_is_detected() {
    delete_each_file(KeyMode::External);
}

#[test]
fn any_deleted_file_is_detected_passphrase_vault() {
    delete_each_file(KeyMode::Passphrase);
}

#[test]
fn deleted_config_is_an_integrity_failure() {
    let (v, _) = vault_with_docs();
    fs::remove_file(v.path("carnet.toml")).unwrap();
    assert_refused(&v.verify(), "carnet.toml");
}

#[test]
fn extra_files_are_detected() {
    let (v, _) = vault_with_docs();
    // An object made by someone who only knows the public recipient, where carnet puts objects.
    let c = v.copy();
    let id = format!("ab{}", &random_id()[2..]);
    fs::create_dir_all(c.path("objects/ab")).unwrap();
    let rel = format!("objects/ab/{id}.age");
    fs::write(
        c.path(&rel),
        c.encrypt_to_recipient(b"Certificat d'aptitude (faux)\n"),
    )
    .unwrap();
    expect_detected(&c, &rel);
    // The same next to a real object, in its fan-out folder.
    let c = v.copy();
    let real = c.objects()[0].clone();
    let fan = &real["objects/".len().."objects/xx".len()];
    let rel = format!("objects/{fan}/{fan}{}.age", &random_id()[2..]);
    fs::write(c.path(&rel), c.encrypt_to_recipient(b"autre\n")).unwrap();
    expect_detected(&c, &rel);
    // A copy of a real object under another name.
    let c = v.copy();
    let rel = format!("objects/{fan}/{fan}{}.age", &random_id()[2..]);
    fs::copy(c.path(&real), c.path(&rel)).unwrap();
    expect_detected(&c, &rel);
    // Stray files elsewhere.
    for rel in ["notes.txt", "log/00000000.age.bak", "objects/stray.age"] {
        let c = v.copy();
        fs::write(c.path(rel), b"x").unwrap();
        expect_detected(&c, rel);
    }
    // A log segment made with the public key, after the real one.
    let c = v.copy();
    fs::write(
        c.path("log/00000001.age"),
        c.encrypt_to_recipient(b"{\"entry\":{},\"mac\":\"00\"}\n"),
    )
    .unwrap();
    expect_detected(&c, "log/00000001.age");
}

#[test]
fn objects_replaced_or_swapped_are_detected() {
    let (v, _) = vault_with_docs();
    let objs = v.objects();
    // Replaced by a file encrypted to the public recipient.
    let c = v.copy();
    fs::write(
        c.path(&objs[0]),
        c.encrypt_to_recipient(b"Ordonnance: morphine 100 mg\n"),
    )
    .unwrap();
    expect_detected(&c, &objs[0]);
    // Two objects exchanged.
    let c = v.copy();
    let a = fs::read(c.path(&objs[0])).unwrap();
    let b = fs::read(c.path(&objs[1])).unwrap();
    fs::write(c.path(&objs[0]), &b).unwrap();
    fs::write(c.path(&objs[1]), &a).unwrap();
    expect_detected(&c, &objs[0]);
    expect_detected(&c, &objs[1]);
    // Truncated by one byte, and with a byte appended.
    let c = v.copy();
    let mut t = fs::read(c.path(&objs[2])).unwrap();
    t.pop();
    fs::write(c.path(&objs[2]), &t).unwrap();
    expect_detected(&c, &objs[2]);
    let c = v.copy();
    let mut t = fs::read(c.path(&objs[2])).unwrap();
    t.push(0);
    fs::write(c.path(&objs[2]), &t).unwrap();
    expect_detected(&c, &objs[2]);
}

const SEG0: &str = "log/00000000.age";
const SEG1: &str = "log/00000001.age";

#[test]
fn log_entry_removed_from_the_middle_is_detected() {
    let (v, _) = vault_with_docs();
    let lines = v.segment_lines(SEG0);
    assert_eq!(lines.len(), 6, "init, 3 adds, show, cat");
    let c = v.copy();
    c.edit_segment(SEG0, |l| {
        l.remove(2); // seq 3
    });
    // The entry after the gap is now line 3 of the segment.
    expect_detected(&c, &format!("{SEG0} entry 3"));
    let o = c.verify();
    assert!(o.text().contains("entries removed before it"), "{o}");
    // The first entry removed.
    let c = v.copy();
    c.edit_segment(SEG0, |l| {
        l.remove(0);
    });
    expect_detected(&c, &format!("{SEG0} entry 1"));
}

#[test]
fn last_log_entries_cut_off_are_detected() {
    let (v, _) = vault_with_docs();
    for cut in [1, 2, 5] {
        let c = v.copy();
        c.edit_segment(SEG0, |l| l.truncate(l.len() - cut));
        expect_detected(&c, "log");
        let o = c.verify();
        assert!(o.text().contains("cut off"), "cut {cut}:\n{o}");
    }
    // Cut to nothing at all: an empty segment. Refused, though only when verify tries to
    // append its own entry (see the ignored test below).
    let c = v.copy();
    c.edit_segment(SEG0, |l| l.clear());
    let before = c.snapshot();
    assert_refused(&c.verify(), SEG0);
    c.assert_unchanged(&before, "verify of an emptied log");
}

#[test]
fn emptied_log_is_reported_by_verify() {
    let (v, _) = vault_with_docs();
    v.edit_segment(SEG0, |l| l.clear());
    expect_detected(&v, "log");
}

#[test]
fn swapped_or_repeated_log_entries_are_detected() {
    let (v, _) = vault_with_docs();
    // Two entries in the middle swapped.
    let c = v.copy();
    c.edit_segment(SEG0, |l| l.swap(2, 3));
    expect_detected(&c, &format!("{SEG0} entry 3"));
    let o = c.verify();
    assert!(o.text().contains("reordered"), "{o}");
    // The last two swapped.
    let c = v.copy();
    c.edit_segment(SEG0, |l| {
        let n = l.len();
        l.swap(n - 2, n - 1)
    });
    expect_detected(&c, &format!("{SEG0} entry 5"));
    // An entry repeated (replayed) at the end.
    let c = v.copy();
    c.edit_segment(SEG0, |l| {
        let x = l[3].clone();
        l.push(x)
    });
    expect_detected(&c, &format!("{SEG0} entry 7"));
    // An entry of another vault with the same key spliced in at the right place.
    let other = {
        let o = v.copy();
        o.ok(&["show", &o.doc_ids()[0]]);
        o
    };
    let c = v.copy();
    c.ok(&["show", &c.doc_ids()[1]]);
    let theirs = other.segment_lines(SEG0).last().unwrap().clone();
    c.edit_segment(SEG0, |l| *l.last_mut().unwrap() = theirs);
    expect_detected(&c, "log");
}

#[test]
fn entries_made_with_only_the_public_key_are_detected() {
    let (v, ids) = vault_with_docs();
    let lines = v.segment_lines(SEG0);
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    // A plausible next entry: right seq, right prev (the forger cannot compute it, but give
    // them the best case), a made-up MAC.
    let mut forged = last["entry"].clone();
    forged["seq"] = (lines.len() as u64 + 1).into();
    forged["action"] = "view".into();
    forged["documents"] = serde_json::json!([ids[0]]);
    let forged_line = serde_json::json!({"entry": forged, "mac": "00".repeat(32)}).to_string();

    // (a) Appended in a new segment: they cannot decrypt the real one to add to it.
    let c = v.copy();
    fs::write(
        c.path(SEG1),
        c.encrypt_to_recipient(format!("{forged_line}\n").as_bytes()),
    )
    .unwrap();
    expect_detected(&c, &format!("{SEG1} entry 1"));
    let o = c.verify();
    assert!(o.text().contains("MAC"), "{o}");
    expect_detected(&c, SEG0); // no longer the last segment, and not full

    // (b) The whole segment replaced by a forged one.
    let c = v.copy();
    let mut text = String::new();
    for l in &lines {
        let mut j: Value = serde_json::from_str(l).unwrap();
        j["mac"] = "ab".repeat(32).into();
        text.push_str(&j.to_string());
        text.push('\n');
    }
    text.push_str(&forged_line);
    text.push('\n');
    fs::write(c.path(SEG0), c.encrypt_to_recipient(text.as_bytes())).unwrap();
    for i in 1..=lines.len() + 1 {
        expect_detected(&c, &format!("{SEG0} entry {i}"));
    }

    // (c) A forged head naming the forged entry.
    let c = v.copy();
    let head = serde_json::json!({
        "head": {"vault_id": v.vault_id(), "log_seq": 1, "log_hash": "00".repeat(32),
                 "manifest_sha256": "00".repeat(32), "manifest_generation": 1},
        "mac": "00".repeat(32),
    });
    fs::write(
        c.path("head.age"),
        c.encrypt_to_recipient(head.to_string().as_bytes()),
    )
    .unwrap();
    expect_detected(&c, "head.age");

    // (d) A forged manifest naming one more document shard, with its shard and object.
    let c = v.copy();
    let object = random_id();
    let cipher = c.encrypt_to_recipient(b"Faux\n");
    let put = |id: &str, bytes: &[u8]| {
        fs::create_dir_all(c.path(&format!("objects/{}", &id[..2]))).unwrap();
        fs::write(c.path(&format!("objects/{}/{id}.age", &id[..2])), bytes).unwrap();
    };
    put(&object, &cipher);
    let mut m: Value = serde_json::from_slice(&v.decrypt("manifest.age")).unwrap();
    let (key, real) = {
        let t = m["shards"]["documents"].as_object().unwrap();
        let (k, r) = t.iter().next().unwrap();
        (k.clone(), r["object"].as_str().unwrap().to_string())
    };
    let rel = format!("objects/{}/{real}.age", &real[..2]);
    let mut shard: Value = serde_json::from_slice(&v.decrypt(&rel)).unwrap();
    let mut d = shard["documents"][0].clone();
    d["id"] = format!("{key}{}", &random_id()[2..]).into();
    d["object"] = object.clone().into();
    d["object_size"] = cipher.len().into();
    d["object_blake3"] = blake3::hash(&cipher).to_hex().to_string().into();
    shard["documents"].as_array_mut().unwrap().push(d);
    let shard_cipher = c.encrypt_to_recipient(shard.to_string().as_bytes());
    let shard_id = random_id();
    put(&shard_id, &shard_cipher);
    let count = shard["documents"].as_array().unwrap().len();
    m["shards"]["documents"][&key] = serde_json::json!({
        "object": shard_id, "size": shard_cipher.len(),
        "blake3": blake3::hash(&shard_cipher).to_hex().to_string(), "count": count,
    });
    fs::write(
        c.path("manifest.age"),
        c.encrypt_to_recipient(m.to_string().as_bytes()),
    )
    .unwrap();
    expect_detected(&c, "manifest.age");
}

#[test]
fn a_whole_history_forged_with_only_the_public_key_is_refused() {
    let (v, _) = vault_with_docs();
    // Control: the same forgery bound with the owner's own secret is accepted, so the forged
    // files are well formed and the refusal below is due to the keyring binding alone.
    let control = v.copy();
    let owner_secret = {
        use age::secrecy::ExposeSecret;
        control.identity().to_string().expose_secret().to_string()
    };
    let id = forge_history(&control, &owner_secret);
    let o = control.verify();
    assert!(o.success(), "control forgery should verify:\n{o}");
    assert_eq!(control.doc_ids(), [id]);

    let c = v.copy();
    let attacker = age::x25519::Identity::generate();
    let attacker_secret = {
        use age::secrecy::ExposeSecret;
        attacker.to_string().expose_secret().to_string()
    };
    forge_history(&c, &attacker_secret);
    expect_detected(&c, "keys.age");
    let o = c.verify();
    assert!(o.text().contains("not bound to your identity"), "{o}");
    // Every other command refuses it too.
    let before = c.snapshot();
    assert_refused(&c.run(&["ls"]), "keys.age");
    assert_refused(&c.run(&["log"]), "keys.age");
    c.assert_unchanged(&before, "commands on a forged vault");
}

#[test]
fn older_manifest_is_detected() {
    let (v, ids) = vault_with_docs();
    let old = fs::read(v.path("manifest.age")).unwrap();
    // The manifest of before an add.
    let c = v.copy();
    c.add("nouveau.txt", b"nouveau\n");
    fs::write(c.path("manifest.age"), &old).unwrap();
    expect_detected(&c, "manifest.age");
    // The manifest of before an rm: the removed document would come back.
    let c = v.copy();
    c.ok(&["rm", "--yes", &ids[0]]);
    let obj = v
        .objects()
        .into_iter()
        .find(|o| !c.path(o).exists())
        .unwrap();
    fs::write(c.path("manifest.age"), &old).unwrap();
    fs::copy(v.path(&obj), c.path(&obj)).unwrap();
    expect_detected(&c, "manifest.age");
    // Older by several commands, log and head current.
    let c = v.copy();
    c.add("un.txt", b"1\n");
    c.add("deux.txt", b"2\n");
    fs::write(c.path("manifest.age"), &old).unwrap();
    expect_detected(&c, "manifest.age");
}

#[test]
fn older_log_is_detected() {
    let (v, ids) = vault_with_docs();
    let old_log = v.work.join("old-log");
    crate::util::integrity::copy_dir(&v.path("log"), &old_log);
    let old_head = fs::read(v.path("head.age")).unwrap();
    // Views only: the manifest does not change, the head does.
    let c = v.copy();
    c.ok(&["show", &ids[0]]);
    c.ok(&["cat", &ids[1]]);
    replace_dir(&old_log, &c.path("log"));
    expect_detected(&c, "log");
    assert!(c.verify().text().contains("cut off"));
    // A change to the manifest, then the log put back: log older than manifest and head.
    let c = v.copy();
    c.add("nouveau.txt", b"nouveau\n");
    replace_dir(&old_log, &c.path("log"));
    expect_detected(&c, "log");
    // Log and head both put back, the manifest current.
    let c = v.copy();
    c.add("nouveau.txt", b"nouveau\n");
    c.ok(&["show", &ids[2]]);
    replace_dir(&old_log, &c.path("log"));
    fs::write(c.path("head.age"), &old_head).unwrap();
    expect_detected(&c, "manifest.age");
}

#[test]
fn older_head_is_detected() {
    let (v, ids) = vault_with_docs();
    let old_head = fs::read(v.path("head.age")).unwrap();
    // Two views later: the log goes two entries past the head.
    let c = v.copy();
    c.ok(&["show", &ids[0]]);
    c.ok(&["show", &ids[1]]);
    fs::write(c.path("head.age"), &old_head).unwrap();
    expect_detected(&c, "log");
    // After an add and a view.
    let c = v.copy();
    c.add("nouveau.txt", b"nouveau\n");
    c.ok(&["show", &ids[1]]);
    fs::write(c.path("head.age"), &old_head).unwrap();
    let o = c.verify();
    assert_eq!(o.code, Some(EXIT_INTEGRITY), "{o}");
    assert!(!o.failed_lines().is_empty(), "{o}");
    // Another vault's head, sealed with another key.
    let other = Vault::new();
    let c = v.copy();
    fs::copy(other.path("head.age"), c.path("head.age")).unwrap();
    expect_detected(&c, "head.age");
}

#[test]
fn head_one_entry_behind_is_reported_not_silent() {
    // One entry behind is exactly what a crash between log and head leaves, so it cannot be
    // refused; but verify must say it, and recovery must rebuild the head.
    let (v, ids) = vault_with_docs();
    let old_head = fs::read(v.path("head.age")).unwrap();
    let c = v.copy();
    c.ok(&["show", &ids[0]]);
    fs::write(c.path("head.age"), &old_head).unwrap();
    let o = c.verify();
    assert!(o.success(), "{o}");
    assert!(o.stderr.contains("was interrupted"), "{o}");
    assert!(c.verify().success());
}

// ---- a log over two segments ----

#[test]
fn two_segment_log_verifies() {
    let b = big();
    let c = b.at_280.copy();
    assert_eq!(c.segments(), [SEG0, SEG1]);
    assert_eq!(c.segment_lines(SEG0).len(), 256);
    assert_eq!(c.segment_lines(SEG1).len(), 24);
    let o = c.verify();
    assert!(o.success(), "{o}");
    assert!(o.text().contains("280 log entries"), "{o}");
    let log = c.log(&[]);
    assert_eq!(log.len(), 281);
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e["seq"] == i as u64 + 1)
    );
}

/// `log -n N` reads only the end of the log (whole segments, backwards) and gives the same
/// entries as the whole log's last N, across a segment boundary and with filters; a log cut
/// short of the entry the head names is refused as with the whole log.
#[test]
fn log_last_entries_match_the_whole_log_across_segments() {
    let b = big();
    let c = b.at_280.copy();
    let all = c.log(&[]);
    for n in [1usize, 20, 24, 25, 30, 300] {
        let last = c.log(&["-n", &n.to_string()]);
        let want = &all[all.len().saturating_sub(n)..];
        assert_eq!(last, want, "log -n {n}");
    }
    let adds = c.log(&["-n", "1", "--action", "add"]);
    assert_eq!(adds.len(), 1);
    assert_eq!(
        adds[0]["seq"], 3,
        "the last add, found in the first segment"
    );
    // Reading the end of the log adds nothing to it.
    assert_eq!(c.log(&[]).len(), all.len());
    // The last segment cut back by one entry: the head names an entry the log no longer has.
    let cut = b.at_280.copy();
    cut.edit_segment(SEG1, |l| {
        l.pop();
    });
    let o = cut.cmd(&["log", "-n", "5"]).run();
    assert_eq!(o.code, Some(EXIT_INTEGRITY), "{o}");
}

#[test]
fn two_segment_log_tampering_is_detected() {
    let b = big();
    let v = &b.at_280;
    // The first segment deleted.
    let c = v.copy();
    fs::remove_file(c.path(SEG0)).unwrap();
    expect_detected(&c, SEG0);
    // The last segment deleted: the log is cut off at 256.
    let c = v.copy();
    fs::remove_file(c.path(SEG1)).unwrap();
    expect_detected(&c, "log");
    assert!(c.verify().text().contains("cut off"));
    // An entry removed from the middle of the full first segment.
    let c = v.copy();
    c.edit_segment(SEG0, |l| {
        l.remove(100);
    });
    expect_detected(&c, &format!("{SEG0} entry 101"));
    expect_detected(&c, "holds 255 entries");
    // The first entry of the second segment removed.
    let c = v.copy();
    c.edit_segment(SEG1, |l| {
        l.remove(0);
    });
    expect_detected(&c, &format!("{SEG1} entry 1"));
    // The last entry of the first segment moved to the second.
    let c = v.copy();
    let mut s0 = c.segment_lines(SEG0);
    let moved = s0.pop().unwrap();
    c.write_segment_lines(SEG0, &s0);
    c.edit_segment(SEG1, |l| l.insert(0, moved));
    // The chain still holds; what gives it away is a short segment before the last one.
    expect_detected(&c, SEG0);
    expect_detected(&c, "holds 255 entries");
    // The two segments swapped.
    let c = v.copy();
    fs::rename(c.path(SEG0), c.path("log/tmp")).unwrap();
    fs::rename(c.path(SEG1), c.path(SEG0)).unwrap();
    fs::rename(c.path("log/tmp"), c.path(SEG1)).unwrap();
    expect_detected(&c, SEG0);
    // A segment byte flipped.
    for s in [SEG0, SEG1] {
        let c = v.copy();
        flip_middle(&c.path(s));
        expect_detected(&c, s);
    }
    // The second segment replaced by an older copy of itself.
    let c = v.copy();
    let old = fs::read(c.path(SEG1)).unwrap();
    c.ok(&["show", &b.doc]);
    c.ok(&["show", &b.doc]);
    fs::write(c.path(SEG1), old).unwrap();
    expect_detected(&c, "log");
}

// ---------------------------------------------------------------------------------------------
// 4. Crashes (threat model 7): every state an interrupted command can leave verifies, and the
//    next write finishes or undoes it.
// ---------------------------------------------------------------------------------------------

/// A vault before and after one command, to assemble what a crash in between leaves on disk.
struct BeforeAfter {
    before: Vault,
    after: Vault,
}

impl BeforeAfter {
    fn new(v: &Vault, command: impl FnOnce(&Vault)) -> BeforeAfter {
        let before = v.copy();
        let after = v.copy();
        command(&after);
        BeforeAfter { before, after }
    }

    /// `before` with `files` taken from `after` (a file missing from `after` is removed).
    fn before_with(&self, files: &[&str]) -> Vault {
        let c = self.before.copy();
        for f in files {
            let from = self.after.path(f);
            if from.exists() {
                if let Some(p) = c.path(f).parent() {
                    fs::create_dir_all(p).unwrap();
                }
                fs::copy(from, c.path(f)).unwrap();
            } else {
                fs::remove_file(c.path(f)).unwrap();
            }
        }
        c
    }

    /// `after` with `files` taken from `before` (a file missing from `before` is removed).
    fn after_with(&self, files: &[&str]) -> Vault {
        let c = self.after.copy();
        for f in files {
            let from = self.before.path(f);
            if from.exists() {
                if let Some(p) = c.path(f).parent() {
                    fs::create_dir_all(p).unwrap();
                }
                fs::copy(from, c.path(f)).unwrap();
            } else {
                fs::remove_file(c.path(f)).unwrap();
            }
        }
        c
    }

    fn new_objects(&self) -> Vec<String> {
        let old = self.before.objects();
        self.after
            .objects()
            .into_iter()
            .filter(|o| !old.contains(o))
            .collect()
    }

    fn gone_objects(&self) -> Vec<String> {
        let new = self.after.objects();
        self.before
            .objects()
            .into_iter()
            .filter(|o| !new.contains(o))
            .collect()
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// After recovery: the vault verifies (deep too) with no note of an interruption, lists exactly
/// `want`, holds exactly their objects, and its log says what happened.
#[track_caller]
fn assert_settled(c: &Vault, label: &str, want: &[String], rolled_back: Option<u64>) {
    let o = c.verify();
    assert!(o.success(), "{label}: verify after recovery:\n{o}");
    assert!(
        !o.stderr.contains("was interrupted"),
        "{label}: still pending:\n{o}"
    );
    c.ok(&["verify", "--deep"]);
    assert_eq!(
        sorted(c.doc_ids()),
        sorted(want.to_vec()),
        "{label}: documents listed"
    );
    assert_eq!(
        c.objects().len(),
        want.len(),
        "{label}: objects on disk {:?}",
        c.objects()
    );
    let log = c.log(&[]);
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e["seq"] == i as u64 + 1)
    );
    let interrupted: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "interrupted")
        .collect();
    match rolled_back {
        Some(seq) => {
            assert_eq!(interrupted.len(), 1, "{label}: {log:?}");
            assert_eq!(interrupted[0]["details"]["seq"], seq, "{label}");
            let undone = &log[seq as usize - 1];
            assert_eq!(
                interrupted[0]["details"]["action"], undone["action"],
                "{label}"
            );
        }
        None => assert!(interrupted.is_empty(), "{label}: {log:?}"),
    }
}

/// Checks a crash state both ways: `verify` first (it writes its own entry, so it recovers),
/// and another write (`add`) first.
#[track_caller]
fn assert_recovers(state: &Vault, label: &str, want: &[String], rolled_back: Option<u64>) {
    let c = state.copy();
    let o = c.verify();
    assert!(o.success(), "{label}: verify right after the crash:\n{o}");
    assert!(
        o.stderr.contains("was interrupted"),
        "{label}: verify must note the interrupted command:\n{o}"
    );
    assert_settled(&c, label, want, rolled_back);

    let c = state.copy();
    let p = c.work.join("apres.txt");
    fs::write(&p, b"added after the crash\n").unwrap();
    let o = c.ok(&["add", "--json", p.to_str().unwrap()]);
    let note = if rolled_back.is_some() {
        "rolled back"
    } else {
        "finished"
    };
    assert!(o.stderr.contains(note), "{label}: expected `{note}`:\n{o}");
    let added: Vec<Value> = serde_json::from_str(&o.text()).unwrap();
    let mut want = want.to_vec();
    want.push(added[0]["id"].as_str().unwrap().to_string());
    assert_settled(&c, label, &want, rolled_back);
}

#[test]
fn interrupted_add_recovers_at_every_step() {
    let (v, ids) = vault_with_docs();
    let mut new_id = String::new();
    let ba = BeforeAfter::new(&v, |a| new_id = a.add("irm.txt", b"IRM du genou\n"));
    let objs = ba.new_objects();
    assert_eq!(objs.len(), 1);
    let obj = objs[0].as_str();
    let add_seq = ba.after.log(&[]).last().unwrap()["seq"].as_u64().unwrap();
    let with_new = {
        let mut w = ids.clone();
        w.push(new_id.clone());
        w
    };

    // 1. The log entry written, nothing else (the encrypted file still in tmp/).
    let s = ba.before_with(&[SEG0]);
    fs::copy(ba.after.path(obj), s.path("tmp/.tmp-Ab12Cd")).unwrap();
    assert_recovers(&s, "add: log written", &ids, Some(add_seq));
    // 2. The object moved into place too.
    let s = ba.before_with(&[SEG0, obj]);
    let o = s.copy().verify();
    assert!(o.stderr.contains("will be removed"), "{o}");
    assert_recovers(&s, "add: object placed", &ids, Some(add_seq));
    // 3. The manifest written: only the head is old. Finishing keeps the document.
    let s = ba.after_with(&["head.age"]);
    assert_recovers(&s, "add: manifest written", &with_new, None);
}

#[test]
fn interrupted_rm_recovers_at_every_step() {
    let (v, ids) = vault_with_docs();
    let victim = ids[1].clone();
    let ba = BeforeAfter::new(&v, |a| {
        a.ok(&["rm", "--yes", &victim]);
    });
    let gone = ba.gone_objects();
    assert_eq!(gone.len(), 1);
    let rm_seq = ba.after.log(&[]).last().unwrap()["seq"].as_u64().unwrap();
    let rest: Vec<String> = ids.iter().filter(|i| **i != victim).cloned().collect();

    // 1. The log entry written, nothing else: undone, the document stays.
    let s = ba.before_with(&[SEG0]);
    assert_recovers(&s, "rm: log written", &ids, Some(rm_seq));
    // 3. Manifest and removal done, head old: finished.
    let s = ba.after_with(&["head.age"]);
    assert_recovers(&s, "rm: object removed", &rest, None);
}

#[test]
fn interrupted_rm_before_object_removal_verifies() {
    let (v, ids) = vault_with_docs();
    let victim = ids[1].clone();
    let ba = BeforeAfter::new(&v, |a| {
        a.ok(&["rm", "--yes", &victim]);
    });
    let gone = ba.gone_objects();
    let rest: Vec<String> = ids.iter().filter(|i| **i != victim).cloned().collect();
    // 2. The manifest written, the object not yet removed, the head old.
    let s = ba.after_with(&["head.age", &gone[0]]);
    assert_recovers(&s, "rm: manifest written", &rest, None);
}

#[test]
fn interrupted_view_recovers() {
    // A view changes no manifest: log written, head old.
    let (v, ids) = vault_with_docs();
    let ba = BeforeAfter::new(&v, |a| {
        a.ok(&["show", &ids[0]]);
    });
    let s = ba.after_with(&["head.age"]);
    assert_recovers(&s, "show: log written", &ids, None);
}

#[test]
fn interrupted_commands_at_a_segment_boundary_recover() {
    // Entry 257 is the first of log/00000001.age: the crash leaves a new segment file whose
    // only entry the head does not name yet.
    let b = big();
    let v = &b.at_256;
    // A view: finished.
    let ba = BeforeAfter::new(v, |a| {
        a.ok(&["show", &b.doc]);
    });
    assert_eq!(ba.after.segments(), [SEG0, SEG1]);
    let ids = sorted(v.doc_ids());
    let s = ba.after_with(&["head.age"]);
    assert_recovers(&s, "show at 257: log written", &ids, None);
    // An add with only its log entry written: undone.
    let ba = BeforeAfter::new(v, |a| {
        a.add("irm.txt", b"IRM\n");
    });
    let s = ba.before_with(&[SEG1]);
    assert_recovers(&s, "add at 257: log written", &ids, Some(257));
}

#[test]
fn concurrent_commands_each_leave_one_entry() {
    // Two commands at once never lose an update: here, log entries. Each process appends its
    // entry under the vault lock; none may be lost or duplicated.
    let (v, ids) = vault_with_docs();
    let n = v.log(&[]).len();
    let mut children = Vec::new();
    for i in 0..8 {
        let args: Vec<String> = if i % 4 == 3 {
            let p = v.work.join(format!("concurrent-{i}.txt"));
            fs::write(&p, format!("document {i}\n")).unwrap();
            vec!["add".into(), p.to_str().unwrap().into()]
        } else {
            vec!["show".into(), ids[i % 3].clone()]
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        children.push(
            v.cmd(&args)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let log = v.log(&[]);
    assert_eq!(log.len(), n + 8, "one entry per command");
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e["seq"] == i as u64 + 1)
    );
    assert_eq!(
        actions(&log[n..]).iter().filter(|a| **a == "add").count(),
        2
    );
    assert_eq!(v.doc_ids().len(), 5);
    assert!(v.verify().success());
}

#[test]
fn crash_inside_an_atomic_replace_leaves_a_vault_that_verifies() {
    let (v, _) = vault_with_docs();
    // Half of a new manifest, where the vault stages its atomic writes (tmp/, prefix `.tmp-`).
    let c = v.copy();
    let m = fs::read(c.path("manifest.age")).unwrap();
    fs::write(c.path("tmp/.tmp-Qx3kP9"), &m[..m.len() / 2]).unwrap();
    let o = c.verify();
    assert!(
        o.success(),
        "temp file of an interrupted manifest write:\n{o}"
    );
    // Half of a log segment.
    let c = v.copy();
    let s = fs::read(c.path(SEG0)).unwrap();
    fs::write(c.path("tmp/.tmp-Zr81Lm"), &s[..s.len() / 2]).unwrap();
    let o = c.verify();
    assert!(o.success(), "temp file of an interrupted log write:\n{o}");
}

// ---------------------------------------------------------------------------------------------
// 5. Log failures are never silent, and a damaged log stops every command.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_log_entry_that_cannot_be_written_fails_the_command() {
    // The next entry (257) opens log/00000001.age. A folder in its place makes the write fail
    // even for root; the failing command must neither act nor report success.
    let b = big();
    let c = b.at_256.copy();
    assert_eq!(c.segment_lines(SEG0).len(), 256);
    assert_eq!(c.segments(), [SEG0]);
    fs::create_dir(c.path(SEG1)).unwrap();
    let docs_before = sorted(c.doc_ids());
    let objects_before = c.objects();

    let failed = |o: &crate::util::integrity::Out, what: &str| {
        assert!(!o.success(), "{what} succeeded without its log entry:\n{o}");
        assert!(
            o.stderr.contains("access log"),
            "{what}: must say why:\n{o}"
        );
    };
    let o = c.run(&["show", &b.doc]);
    failed(&o, "show");
    assert!(o.text().is_empty(), "show printed the metadata:\n{o}");
    let o = c.run(&["cat", &b.doc]);
    failed(&o, "cat");
    assert!(o.text().is_empty(), "cat released the content:\n{o}");
    let out = c.work.join("export");
    let o = c.run(&["export", &b.doc, "-o", out.to_str().unwrap()]);
    failed(&o, "export");
    let exported = fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(exported, 0, "export wrote files:\n{o}");
    let p = c.work.join("nouveau.txt");
    fs::write(&p, b"nouveau\n").unwrap();
    let o = c.run(&["add", p.to_str().unwrap()]);
    failed(&o, "add");
    assert!(!o.text().contains("added"), "{o}");
    let o = c.run(&["rm", "--yes", &b.doc]);
    failed(&o, "rm");
    assert!(!o.text().contains("removed"), "{o}");

    assert_eq!(sorted(c.doc_ids()), docs_before);
    assert_eq!(c.objects(), objects_before);
    let tmp_left = fs::read_dir(c.path("tmp")).unwrap().count();
    assert_eq!(tmp_left, 0, "temp files left behind");
    // Take the obstacle away: the vault is as it was, 256 entries, and sound.
    fs::remove_dir(c.path(SEG1)).unwrap();
    assert_eq!(c.log(&[]).len(), 256);
    let o = c.verify();
    assert!(o.success(), "{o}");
    assert_eq!(c.log(&[]).len(), 257);
}

/// Runs each command on the tampered vault: each must exit 3 and write nothing.
#[track_caller]
fn assert_all_refuse(c: &Vault, label: &str, doc: &str, with_log: bool) {
    let out = c.work.join("export");
    let p = c.work.join("nouveau.txt");
    fs::write(&p, b"nouveau\n").unwrap();
    let mut commands: Vec<Vec<&str>> = vec![
        vec!["show", doc],
        vec!["cat", doc],
        vec!["export", doc, "-o", out.to_str().unwrap()],
        vec!["add", p.to_str().unwrap()],
        vec!["rm", "--yes", doc],
        vec!["verify"],
        vec!["verify", "--deep"],
    ];
    if with_log {
        commands.push(vec!["log"]);
    }
    let before = c.snapshot();
    for args in commands {
        let o = c.run(&args);
        assert_eq!(
            o.code,
            Some(EXIT_INTEGRITY),
            "{label}: carnet {args:?} must refuse:\n{o}"
        );
        let acted = o.text().lines().any(|l| {
            l.starts_with("added ") || l.starts_with("removed ") || l.starts_with("title:")
        }) || o.text().contains("Ordonnance");
        assert!(!acted, "{label}: carnet {args:?} acted:\n{o}");
        c.assert_unchanged(&before, &format!("{label}: carnet {args:?}"));
    }
}

#[test]
fn commands_refuse_a_damaged_log_and_append_nothing() {
    let (v, ids) = vault_with_docs();
    let doc = ids[0].as_str();
    let c = v.copy();
    flip_middle(&c.path(SEG0));
    assert_all_refuse(&c, "flipped segment", doc, true);

    let c = v.copy();
    c.edit_segment(SEG0, |l| l.truncate(l.len() - 2));
    assert_all_refuse(&c, "last entries cut", doc, true);

    let c = v.copy();
    fs::write(
        c.path(SEG1),
        c.encrypt_to_recipient(b"{\"entry\":{\"seq\":7},\"mac\":\"00\"}\n"),
    )
    .unwrap();
    assert_all_refuse(&c, "forged segment", doc, true);

    let c = v.copy();
    fs::remove_file(c.path(SEG0)).unwrap();
    assert_all_refuse(&c, "log deleted", doc, true);

    // The head two entries behind: the log itself is sound, so `carnet log` may show it.
    let old_head = fs::read(v.path("head.age")).unwrap();
    let c = v.copy();
    c.ok(&["show", doc]);
    c.ok(&["show", doc]);
    fs::write(c.path("head.age"), &old_head).unwrap();
    assert_all_refuse(&c, "older head", doc, false);

    let old_manifest = fs::read(v.path("manifest.age")).unwrap();
    let c = v.copy();
    c.add("nouveau.txt", b"nouveau\n");
    fs::write(c.path("manifest.age"), &old_manifest).unwrap();
    assert_all_refuse(&c, "older manifest", doc, true);
}

#[test]
fn appending_after_an_edit_inside_the_log_keeps_the_evidence() {
    // Commands check the end of the log (last segment against head.age), not the whole chain
    // on every run. An entry removed from the middle must then survive later appends, so that
    // verify still finds it.
    let (v, ids) = vault_with_docs();
    let c = v.copy();
    c.edit_segment(SEG0, |l| {
        l.remove(2);
    });
    // (Today `show` and `cat` accept it and append; refusing would be fine too.)
    let _ = c.run(&["show", &ids[0]]);
    let _ = c.run(&["cat", &ids[1]]);
    let o = c.verify();
    assert_detected(&o, &format!("{SEG0} entry 3"));
    assert!(o.text().contains("entries removed before it"), "{o}");
    assert_refused(&c.run(&["log"]), "entries removed before it");
}
