//! Issue 9, item 9: `verify` after damage names the root cause once, and only the consequences
//! that are real. Each case asserts the message a user reads and the absence of the misleading
//! ones it used to print (an "out of date" index, every healthy object "unexpected", a damaged
//! header read as a wrong key, a wrong fingerprint answered with "restore from a backup").

use std::fs;
use std::path::Path;

use crate::util::grants::MinisignKey;
use crate::util::integrity::{EXIT_INTEGRITY, KeyMode, Out, Vault, flip_middle};
use crate::util::{EXIT_FAILURE, hint};

/// Lines that misled users after damage; none of them is ever a consequence of one flipped
/// byte in a vault that was sound.
const MISLEADING: &[&str] = &[
    "index.json is out of date",
    "unexpected object",
    "none of the given keys",
    "does not hold",
];

fn vault_with_docs() -> Vault {
    let v = Vault::new();
    v.add("ordonnance.txt", b"Ordonnance: amoxicilline 1 g\n");
    v.add("bilan.txt", b"Bilan sanguin: normal\n");
    v.add("radio.txt", b"Radio du thorax: rien a signaler\n");
    v.verify().ok();
    v
}

/// Asserts exit 3 with exactly one `FAILED` line, for `path`, holding `message`, and none of
/// the misleading messages anywhere.
#[track_caller]
fn assert_only_problem(out: &Out, path: &str, message: &str) {
    assert_eq!(out.code, Some(EXIT_INTEGRITY), "expected exit 3:\n{out}");
    let failed = out.failed();
    assert_eq!(failed.len(), 1, "one problem expected:\n{out}");
    assert_eq!(failed[0].0, path, "{out}");
    assert!(
        failed[0].1.contains(message),
        "expected {message:?}:\n{out}"
    );
    assert_none_misleading(out);
}

#[track_caller]
fn assert_none_misleading(out: &Out) {
    let all = format!("{}{}", out.text(), out.stderr);
    for m in MISLEADING {
        assert!(!all.contains(m), "misleading {m:?} printed:\n{out}");
    }
}

/// Changes one character of the first stanza body of an age file (its third line) to another
/// base64 character: the header still parses, but the file key no longer unwraps.
fn flip_header(path: &Path) {
    let mut b = fs::read(path).unwrap();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            b.iter()
                .enumerate()
                .filter(|(_, c)| **c == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let at = starts[2] + 10;
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    fs::write(path, b).unwrap();
}

/// The first metadata shard of the given kind (`documents` or `digests`), as its object path.
fn shard_of_kind(v: &Vault, kind: &str) -> String {
    v.shard_objects()
        .into_iter()
        .map(|id| format!("objects/{}/{id}.age", &id[..2]))
        .find(|o| {
            let s: serde_json::Value = serde_json::from_slice(&v.decrypt(o)).unwrap();
            s["kind"] == kind
        })
        .unwrap_or_else(|| panic!("no {kind} shard"))
}

#[test]
fn a_damaged_manifest_is_the_one_problem_and_objects_are_not_called_foreign() {
    let v = vault_with_docs();
    for damage in [flip_middle as fn(&Path), flip_header] {
        let c = v.copy();
        damage(&c.path("manifest.age"));
        let out = c.verify();
        assert_only_problem(&out, "manifest.age", "damaged");
        let objects = c
            .files()
            .iter()
            .filter(|f| f.starts_with("objects/"))
            .count();
        assert!(
            out.stderr.contains(&format!(
                "note: {objects} file(s) in objects/ cannot be checked (the manifest is unreadable)"
            )),
            "{out}"
        );
    }
}

#[test]
fn a_flipped_header_byte_is_damage_not_a_wrong_key() {
    let v = vault_with_docs();
    for rel in ["manifest.age", "log/00000000.age", "head.age"] {
        let c = v.copy();
        flip_header(&c.path(rel));
        let out = c.verify();
        assert_only_problem(
            &out,
            rel,
            "damaged: its age header does not open with the vault's key",
        );
    }
    // keys.age is what the key opens first: the signed index tells damage from a wrong key.
    let c = v.copy();
    flip_header(&c.path("keys.age"));
    assert_only_problem(
        &c.verify(),
        "keys.age",
        "damaged: its age header does not open with the key given, and the file is not the one the signed index lists",
    );
}

#[test]
fn a_damaged_documents_shard_is_named_once() {
    let v = vault_with_docs();
    let c = v.copy();
    let shard = shard_of_kind(&c, "documents");
    flip_middle(&c.path(&shard));
    let out = c.verify();
    assert_only_problem(&out, &shard, "not the shard the manifest names");
    assert!(
        out.stderr.contains("cannot be checked (documents shard"),
        "{out}"
    );
}

#[test]
fn an_index_behind_the_head_is_out_of_date_and_not_damage() {
    let v = vault_with_docs();
    let c = v.copy();
    let old = c.copy();
    c.add("nouveau.txt", b"nouveau\n");
    // The index of before the add: what a crash between the head and the index leaves.
    fs::remove_dir_all(c.path("index")).unwrap();
    for f in ["index.json", "index.json.minisig"] {
        fs::copy(old.path(f), c.path(f)).unwrap();
    }
    crate::util::copy_dir(&old.path("index"), &c.path("index"));
    let out = c.verify().ok();
    assert!(
        out.stderr.contains(
            "note: index.json is out of date (an interrupted command); the next write refreshes it"
        ),
        "{out}"
    );
}

#[test]
fn a_file_that_differs_only_from_the_signed_index_is_named_as_altered() {
    // keys.age re-encrypted by someone with the key: it opens and says the same, yet it is not
    // the file carnet wrote. It used to pass as an "out of date" index.
    let v = vault_with_docs();
    let c = v.copy();
    let plain = c.decrypt("keys.age");
    fs::write(c.path("keys.age"), c.encrypt_to_recipient(&plain)).unwrap();
    assert_only_problem(
        &c.verify(),
        "keys.age",
        "not the file the signed index lists (altered after it was signed)",
    );
}

#[test]
fn a_damaged_index_part_is_named_not_the_index_twice() {
    let v = vault_with_docs();
    let c = v.copy();
    let part = c
        .files()
        .into_iter()
        .find(|f| f.starts_with("index/"))
        .unwrap();
    flip_middle(&c.path(&part));
    for out in [c.verify(), c.run(&["verify", "--offline"])] {
        assert_only_problem(
            &out,
            &part,
            "not the part the signed index names (altered or out of date)",
        );
        assert!(!out.text().contains("index.json: index.json"), "{out}");
    }
}

#[test]
fn a_wrong_expected_fingerprint_is_not_called_damage() {
    let v = vault_with_docs();
    let other = MinisignKey::from_seed(5).fingerprint();
    let out = v.run(&["verify", "--offline", "--expect", &other]);
    assert_only_problem(
        &out,
        "carnet.toml",
        "signed by a different key: wrong fingerprint, or another vault",
    );
    assert!(out.text().contains(&other), "{out}");
    let line = out.fails(EXIT_INTEGRITY, &["integrity check failed"]);
    assert!(!line.contains("restore"), "{out}");
    let h = hint(&out.stderr);
    assert!(
        h.contains("check the fingerprint given to --expect"),
        "{out}"
    );
    assert!(!h.contains("restore"), "{out}");
    // A fingerprint that is not one at all stays a typing error.
    v.run(&["verify", "--offline", "--expect", "SHA256:00"])
        .assert_code(EXIT_FAILURE, "malformed fingerprint");
}

#[test]
fn a_damaged_identity_file_is_not_a_wrong_passphrase() {
    let v = Vault::with_mode(KeyMode::Passphrase);
    v.add("ordonnance.txt", b"Ordonnance\n");
    // A wrong passphrase on a sound vault stays what it is.
    let wrong = v
        .cmd(&["verify"])
        .env("CARNET_PASSPHRASE", "not the passphrase")
        .run();
    wrong.fails(EXIT_FAILURE, &["wrong passphrase"]);
    let c = v.copy();
    flip_header(&c.path("identity.age"));
    let out = c.verify();
    assert_only_problem(
        &out,
        "identity.age",
        "damaged: the passphrase does not open it, and it is not the file the signed index lists",
    );
    assert!(!out.stderr.contains("wrong passphrase"), "{out}");
}
