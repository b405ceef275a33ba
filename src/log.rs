//! The access log: an append-only, hash-chained, MAC-authenticated list of every action,
//! stored encrypted in segments, and the head record that binds it to the manifest.
//!
//! Segments `log/NNNNNNNN.age` are numbered from 0 and hold consecutive entries as JSON lines
//! `{"entry":{…},"mac":"…"}`, or `{"sealed":{…},"mac":"…"}` for an entry naming a document
//! hidden from guardians (its clear fields, and the original line encrypted to the sealed key);
//! a segment ends after 256 entries or 256 KiB. Appending rewrites
//! only the last segment, so its cost does not depend on the length of the log; full segments
//! never change.
//! Each entry names the SHA-256 of the previous entry's exact bytes (`prev`) and of the manifest
//! at that point; `head.age` names the last entry and the current manifest, so neither the log
//! nor the manifest can be truncated, swapped or rolled back alone.

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::crypto;
use crate::domain::{Action, Actor};
use crate::error::Error;
use crate::keyring::Keyring;
use crate::keys::Unlocked;

pub const DIR: &str = "log";
pub const HEAD: &str = "head.age";
pub const SEGMENT_ENTRIES: u64 = 256;
/// A segment also ends once its text passes this size: a folder import's entry lists every
/// document it added, and the entries after it must not rewrite megabytes each.
pub const SEGMENT_BYTES: usize = 256 << 10;
/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const MAC_ENTRY: &str = "carnet log entry v1";
const MAC_SEALED: &str = "carnet sealed log entry v1";
const MAC_HEAD: &str = "carnet head v1";
/// A segment is at most 256 entries of a few hundred bytes; this bounds a hostile one.
const MAX_SEGMENT: u64 = 64 << 20;
const MAX_HEAD: u64 = 1 << 16;

/// One action on the vault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub time: jiff::Timestamp,
    /// Who acted: the patient (the vault's own identity); later guardians, recovery keys,
    /// professionals' deposits, emergency access.
    pub actor: Actor,
    pub action: Action,
    #[serde(default)]
    pub documents: Vec<String>,
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
    /// The carnet version that wrote the entry.
    pub version: String,
    pub prev: String,
    pub manifest_sha256: String,
    pub manifest_generation: u64,
    /// Objects this action puts in `objects/` or takes out: lets an interrupted action be
    /// finished or rolled back, and `verify` tell leftovers from intruders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects_removed: Vec<String>,
}

impl Entry {
    /// The config an `upgrade` entry commits to (it rewrites `carnet.toml` with the new format).
    pub fn upgrade_config(&self) -> Option<&str> {
        if self.action != Action::Upgrade {
            return None;
        }
        self.details.get("config_sha256").and_then(|v| v.as_str())
    }
}

/// An entry as read back: parsed, with the exact bytes it was authenticated over.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The entry; for an opaque one, only its clear fields (seq, prev, manifest, objects) are
    /// real: the action and actor say `sealed`, the time is the epoch and means nothing, and
    /// it names no documents.
    pub entry: Entry,
    /// The line as stored in its segment (a stub's, for a sealed entry).
    pub line: String,
    /// SHA-256 of the original entry's exact bytes, which the next entry's `prev` names.
    pub hash: String,
    /// Stored as a stub (encrypted to the sealed key).
    pub sealed: bool,
    /// A stub this key could not open (no sealed key, or another one): nothing to show.
    pub opaque: bool,
    /// The original line a stub holds, once opened: what re-sealing encrypts again.
    inner: Option<String>,
}

impl Logged {
    /// The entry's action as messages name it; an opaque entry's is not known.
    pub fn action_shown(&self) -> String {
        if self.opaque {
            "a command".into()
        } else {
            format!("`{}`", self.entry.action)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    entry: &'a RawValue,
    mac: String,
}

/// Either form of a line, told apart by which field it has.
#[derive(Deserialize)]
struct AnyLine<'a> {
    #[serde(borrow, default)]
    entry: Option<&'a RawValue>,
    #[serde(borrow, default)]
    sealed: Option<&'a RawValue>,
    mac: String,
}

#[derive(Serialize)]
struct SealedLine<'a> {
    sealed: &'a RawValue,
    mac: String,
}

/// The clear part of a sealed line: what the chain and crash recovery need (random ids only),
/// and the original line encrypted to the sealed key.
#[derive(Serialize, Deserialize)]
struct Stub {
    seq: u64,
    prev: String,
    hash: String,
    manifest_sha256: String,
    manifest_generation: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    objects_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    objects_removed: Vec<String>,
    /// Standard padded base64 of an age file to the sealed key.
    age: String,
}

impl Stub {
    /// The first clear field that differs from `e`'s, if any.
    fn differs_from(&self, e: &Entry) -> Option<&'static str> {
        if self.seq != e.seq {
            Some("seq")
        } else if self.prev != e.prev {
            Some("prev")
        } else if self.manifest_sha256 != e.manifest_sha256 {
            Some("manifest_sha256")
        } else if self.manifest_generation != e.manifest_generation {
            Some("manifest_generation")
        } else if self.objects_added != e.objects_added {
            Some("objects_added")
        } else if self.objects_removed != e.objects_removed {
            Some("objects_removed")
        } else {
            None
        }
    }

    /// What a reader without the sealed key knows of the entry.
    fn placeholder(&self) -> Entry {
        Entry {
            seq: self.seq,
            time: jiff::Timestamp::UNIX_EPOCH,
            actor: Actor::Sealed,
            action: Action::Sealed,
            documents: Vec::new(),
            details: Default::default(),
            version: String::new(),
            prev: self.prev.clone(),
            manifest_sha256: self.manifest_sha256.clone(),
            manifest_generation: self.manifest_generation,
            objects_added: self.objects_added.clone(),
            objects_removed: self.objects_removed.clone(),
        }
    }
}

/// Serializes and authenticates an entry as one log line (without the newline).
pub fn seal_entry(entry: &Entry, ring: &Keyring) -> anyhow::Result<Logged> {
    let raw = serde_json::to_string(entry)?;
    let mac = hex::encode(ring.mac(MAC_ENTRY, raw.as_bytes()));
    let raw_value = RawValue::from_string(raw.clone())?;
    let line = serde_json::to_string(&Line {
        entry: &raw_value,
        mac,
    })?;
    Ok(Logged {
        entry: entry.clone(),
        line,
        hash: hex::encode(Sha256::digest(raw.as_bytes())),
        sealed: false,
        opaque: false,
        inner: None,
    })
}

/// The stub form of a clear entry: the same entry and hash, its line encrypted to `to` (the
/// sealed key's recipient) behind the clear fields.
pub fn seal_line(
    logged: &Logged,
    ring: &Keyring,
    to: &age::x25519::Recipient,
) -> anyhow::Result<Logged> {
    if logged.sealed {
        anyhow::bail!("log entry {} is sealed already", logged.entry.seq);
    }
    stub_of(logged, &logged.line, ring, to)
}

/// A sealed entry encrypted again, to a new sealed key `to`; it must have been opened.
pub fn reseal_line(
    logged: &Logged,
    ring: &Keyring,
    to: &age::x25519::Recipient,
) -> anyhow::Result<Logged> {
    let inner = match (&logged.inner, logged.opaque) {
        (Some(inner), false) => inner,
        (_, true) => anyhow::bail!(
            "log entry {} is sealed to a key this one does not hold: it cannot be sealed again",
            logged.entry.seq
        ),
        (None, false) => anyhow::bail!("log entry {} is not sealed", logged.entry.seq),
    };
    stub_of(logged, inner, ring, to)
}

/// Builds the stub line for `logged`, whose original clear line is `clear`.
fn stub_of(
    logged: &Logged,
    clear: &str,
    ring: &Keyring,
    to: &age::x25519::Recipient,
) -> anyhow::Result<Logged> {
    let e = &logged.entry;
    let age = crypto::seal_bytes(clear.as_bytes(), std::slice::from_ref(to))
        .context("cannot encrypt a log entry to the sealed key")?;
    let stub = Stub {
        seq: e.seq,
        prev: e.prev.clone(),
        hash: logged.hash.clone(),
        manifest_sha256: e.manifest_sha256.clone(),
        manifest_generation: e.manifest_generation,
        objects_added: e.objects_added.clone(),
        objects_removed: e.objects_removed.clone(),
        age: B64.encode(age),
    };
    let raw = serde_json::to_string(&stub)?;
    let mac = hex::encode(ring.mac(MAC_SEALED, raw.as_bytes()));
    let raw_value = RawValue::from_string(raw)?;
    let line = serde_json::to_string(&SealedLine {
        sealed: &raw_value,
        mac,
    })?;
    Ok(Logged {
        entry: e.clone(),
        line,
        hash: logged.hash.clone(),
        sealed: true,
        opaque: false,
        inner: Some(clear.to_string()),
    })
}

/// Parses and authenticates one line; a stub is opened with the sealed key when `keys` holds
/// it, and is opaque otherwise. Errors say what is wrong, for `verify` to report.
pub fn open_line(line: &str, ring: &Keyring, keys: &Unlocked) -> Result<Logged, String> {
    // A line is never larger than the segment that holds it.
    if line.len() as u64 > MAX_SEGMENT {
        return Err("longer than a log segment".into());
    }
    let l: AnyLine = serde_json::from_str(line).map_err(|_| "not a log line".to_string())?;
    match (l.entry, l.sealed) {
        (Some(raw), None) => open_clear(line, raw.get(), &l.mac, ring),
        (None, Some(stub)) => open_stub(line, stub.get(), &l.mac, ring, keys),
        _ => Err("not a log line".into()),
    }
}

const MAC_MISMATCH: &str = "its MAC does not match (altered, or written without the vault's key)";

/// Sequence numbers count commands: anything near `u64::MAX` is forged, and the arithmetic on
/// it (the next entry, the one after the head) must never overflow.
pub const MAX_SEQ: u64 = 1 << 53;

fn check_seq(seq: u64) -> Result<(), String> {
    if seq == 0 || seq > MAX_SEQ {
        return Err(format!("its sequence number {seq} is impossible"));
    }
    Ok(())
}

fn open_clear(line: &str, raw: &str, mac: &str, ring: &Keyring) -> Result<Logged, String> {
    if !ring.verify_mac(MAC_ENTRY, raw.as_bytes(), mac) {
        return Err(MAC_MISMATCH.into());
    }
    let entry: Entry = serde_json::from_str(raw).map_err(|e| format!("unreadable entry: {e}"))?;
    check_seq(entry.seq)?;
    Ok(Logged {
        entry,
        line: line.to_string(),
        hash: hex::encode(Sha256::digest(raw.as_bytes())),
        sealed: false,
        opaque: false,
        inner: None,
    })
}

fn open_stub(
    line: &str,
    raw: &str,
    mac: &str,
    ring: &Keyring,
    keys: &Unlocked,
) -> Result<Logged, String> {
    if !ring.verify_mac(MAC_SEALED, raw.as_bytes(), mac) {
        return Err(MAC_MISMATCH.into());
    }
    let stub: Stub =
        serde_json::from_str(raw).map_err(|e| format!("unreadable sealed entry: {e}"))?;
    check_seq(stub.seq)?;
    if stub.hash.len() != 64 || !stub.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("its sealed entry's hash is not a SHA-256".into());
    }
    let opaque = Logged {
        entry: stub.placeholder(),
        line: line.to_string(),
        hash: stub.hash.clone(),
        sealed: true,
        opaque: true,
        inner: None,
    };
    // The sealed key, or a spare one beside the vault's: a first `hide` interrupted after it
    // sealed entries leaves its key in identity.age, which the next one takes up again.
    let candidates: Vec<&dyn age::Identity> = keys
        .sealed
        .iter()
        .chain(keys.spare.iter())
        .map(|c| c as &dyn age::Identity)
        .collect();
    if candidates.is_empty() {
        return Ok(opaque);
    }
    let age = B64
        .decode(&stub.age)
        .map_err(|_| "its sealed entry is not base64".to_string())?;
    let plain = match crypto::open_bytes(&age, candidates.into_iter(), MAX_SEGMENT) {
        Ok(p) => p,
        // Sealed to another key than the one held: as unreadable as without one.
        Err(crypto::OpenError::NoMatchingKey) => return Ok(opaque),
        Err(e) => return Err(format!("its sealed entry does not decrypt: {e}")),
    };
    let text = String::from_utf8(plain).map_err(|_| "its sealed entry is not text".to_string())?;
    let l: Line = serde_json::from_str(&text)
        .map_err(|_| "its sealed entry is not a log line".to_string())?;
    let inner = open_clear(&text, l.entry.get(), &l.mac, ring)
        .map_err(|e| format!("the entry it seals: {e}"))?;
    if inner.hash != stub.hash {
        return Err("the entry it seals is not the one its hash names".into());
    }
    if let Some(field) = stub.differs_from(&inner.entry) {
        return Err(format!(
            "the entry it seals has another {field} than its clear fields say"
        ));
    }
    Ok(Logged {
        entry: inner.entry,
        line: line.to_string(),
        hash: stub.hash,
        sealed: true,
        opaque: false,
        inner: Some(text),
    })
}

/// Does a segment holding `lines` take no more entries? Then the next entry starts a new one.
pub fn segment_full(lines: &[Logged]) -> bool {
    lines.len() as u64 >= SEGMENT_ENTRIES
        || lines.iter().map(|l| l.line.len() + 1).sum::<usize>() >= SEGMENT_BYTES
}

/// `segment_full` for lines as read back from a segment.
pub fn lines_fill_segment(lines: &[String]) -> bool {
    lines.len() as u64 >= SEGMENT_ENTRIES
        || lines.iter().map(|l| l.len() + 1).sum::<usize>() >= SEGMENT_BYTES
}

pub fn segment_path(vault: &Path, n: u64) -> PathBuf {
    vault.join(DIR).join(format!("{n:08}.age"))
}

/// The segment numbers present in `log/`, sorted, and any file that is not a segment.
pub fn list_segments(vault: &Path) -> anyhow::Result<(Vec<u64>, Vec<PathBuf>)> {
    let dir = vault.join(DIR);
    let mut segs = Vec::new();
    let mut strays = Vec::new();
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((segs, strays)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for ent in rd {
        let ent = ent.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = ent.file_name();
        let n = name
            .to_str()
            .and_then(|s| s.strip_suffix(".age"))
            .filter(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok());
        match n {
            Some(n) if ent.file_type().is_ok_and(|t| t.is_file()) => segs.push(n),
            _ => strays.push(ent.path()),
        }
    }
    segs.sort_unstable();
    Ok((segs, strays))
}

/// Decrypts a segment into its lines; each still needs `open_line`.
pub fn read_segment_lines(path: &Path, keys: &Unlocked) -> Result<Vec<String>, String> {
    let bytes = crate::fsutil::read_limited(path, crypto::max_sealed_len(MAX_SEGMENT))
        .map_err(|e| format!("cannot read it: {e}"))?;
    let plain =
        crypto::open_bytes(&bytes, keys.as_dyn(), MAX_SEGMENT).map_err(|e| e.to_string())?;
    let text = String::from_utf8(plain).map_err(|_| "not text".to_string())?;
    Ok(text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Reads and authenticates a whole segment, failing at the first problem.
pub fn read_segment(
    vault: &Path,
    n: u64,
    keys: &Unlocked,
    ring: &Keyring,
) -> Result<Vec<Logged>, Error> {
    let path = segment_path(vault, n);
    let lines = read_segment_lines(&path, keys)
        .map_err(|e| Error::Integrity(format!("{}: {e}", path.display())))?;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            open_line(l, ring, keys)
                .map_err(|e| Error::Integrity(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Writes a segment atomically.
pub fn write_segment(
    vault: &Path,
    n: u64,
    lines: &[Logged],
    recipients: &[age::x25519::Recipient],
) -> anyhow::Result<()> {
    let mut text = String::with_capacity(lines.iter().map(|l| l.line.len() + 1).sum());
    for l in lines {
        text.push_str(&l.line);
        text.push('\n');
    }
    let sealed =
        crypto::seal_bytes(text.as_bytes(), recipients).context("cannot encrypt the log")?;
    crate::fsutil::write_atomic_in(
        &vault.join(crate::layout::TMP),
        &segment_path(vault, n),
        &sealed,
    )
    .context("cannot write the access log")
}

/// Replaces every clear entry naming one of `ids` by its stub sealed to `to`, rewriting (each
/// atomically, encrypted to `recipients`) only the segments that hold one; every other line is
/// kept byte for byte, and the chain is unchanged (a stub keeps its entry's hash). Returns the
/// segments rewritten. The caller holds the writers' lock; a writer holding the last segment
/// in memory must read it again.
pub fn redact(
    dir: &Path,
    keys: &Unlocked,
    ring: &Keyring,
    recipients: &[age::x25519::Recipient],
    to: &age::x25519::Recipient,
    ids: &BTreeSet<String>,
) -> anyhow::Result<Vec<u64>> {
    let (segs, _) = list_segments(dir)?;
    let mut rewritten = Vec::new();
    for n in segs {
        let mut lines = read_segment(dir, n, keys, ring)?;
        let mut changed = false;
        for l in &mut lines {
            if !l.sealed && l.entry.documents.iter().any(|d| ids.contains(d)) {
                *l = seal_line(l, ring, to)?;
                changed = true;
            }
        }
        if changed {
            write_segment(dir, n, &lines, recipients)?;
            rewritten.push(n);
        }
    }
    Ok(rewritten)
}

/// `head.age`: the last log entry and the manifest it goes with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Head {
    pub vault_id: String,
    pub log_seq: u64,
    pub log_hash: String,
    pub manifest_sha256: String,
    pub manifest_generation: u64,
    /// SHA-256 of `carnet.toml`'s exact bytes: the plaintext config cannot change unnoticed.
    pub config_sha256: String,
}

/// The stored form: the exact bytes that were authenticated, and their MAC.
#[derive(Serialize, Deserialize)]
struct StoredHead<'a> {
    #[serde(borrow)]
    head: &'a RawValue,
    mac: String,
}

pub fn seal_head(
    head: &Head,
    ring: &Keyring,
    recipients: &[age::x25519::Recipient],
) -> anyhow::Result<Vec<u8>> {
    let raw = serde_json::to_string(head)?;
    let mac = hex::encode(ring.mac(MAC_HEAD, raw.as_bytes()));
    let raw_value = RawValue::from_string(raw)?;
    let text = serde_json::to_string(&StoredHead {
        head: &raw_value,
        mac,
    })?;
    Ok(crypto::seal_bytes(text.as_bytes(), recipients)?)
}

pub fn read_head(vault: &Path, keys: &Unlocked, ring: &Keyring) -> Result<Head, Error> {
    let path = vault.join(HEAD);
    let bad = |why: String| Error::Integrity(format!("{}: {why}", path.display()));
    let bytes = crate::fsutil::read_limited(&path, crypto::max_sealed_len(MAX_HEAD)).map_err(
        |e| match e.kind() {
            ErrorKind::NotFound => bad("missing".into()),
            _ => bad(format!("cannot read it: {e}")),
        },
    )?;
    let plain =
        crypto::open_bytes(&bytes, keys.as_dyn(), MAX_HEAD).map_err(|e| bad(e.to_string()))?;
    let s: StoredHead =
        serde_json::from_slice(&plain).map_err(|_| bad("not a head record".into()))?;
    if !ring.verify_mac(MAC_HEAD, s.head.get().as_bytes(), &s.mac) {
        return Err(bad(
            "its MAC does not match (altered, or written without the vault's key)".into(),
        ));
    }
    let head: Head =
        serde_json::from_str(s.head.get()).map_err(|e| bad(format!("unreadable: {e}")))?;
    check_seq(head.log_seq).map_err(bad)?;
    Ok(head)
}

/// The end of the log: whole segments read backwards until `n` entries that are not opaque
/// pass `keep` (or the log begins), authenticated and checked to chain to each other and to
/// the head. The cost depends on `n`, not on the length of the log; `carnet verify` checks the
/// whole chain.
pub fn read_tail(
    dir: &Path,
    keys: &Unlocked,
    ring: &Keyring,
    head: &Head,
    n: usize,
    keep: impl Fn(&Entry) -> bool,
) -> anyhow::Result<Vec<Logged>> {
    let (segs, _) = list_segments(dir)?;
    let mut out: Vec<Logged> = Vec::new();
    let mut kept = 0;
    for &s in segs.iter().rev() {
        if kept >= n && !out.is_empty() {
            break;
        }
        let mut seg = read_segment(dir, s, keys, ring)?;
        // Opaque entries are never shown: they do not count towards the `n` wanted.
        kept += seg.iter().filter(|l| !l.opaque && keep(&l.entry)).count();
        seg.append(&mut out);
        out = seg;
    }
    for w in out.windows(2) {
        if w[1].entry.seq != w[0].entry.seq + 1 || w[1].entry.prev != w[0].hash {
            return Err(Error::Integrity(format!(
                "the access log is broken after entry {} (run `carnet verify`)",
                w[0].entry.seq
            ))
            .into());
        }
    }
    let ends_at_head = out
        .iter()
        .any(|l| l.entry.seq == head.log_seq && l.hash == head.log_hash);
    if !ends_at_head {
        return Err(Error::Integrity(
            "the access log does not reach the entry head.age names (entries cut off or replaced)"
                .into(),
        )
        .into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            time: jiff::Timestamp::UNIX_EPOCH,
            actor: Actor::Patient,
            action: Action::View,
            documents: vec!["abcd".into()],
            details: Default::default(),
            version: "test".into(),
            prev: GENESIS.into(),
            manifest_sha256: "00".into(),
            manifest_generation: 1,
            objects_added: vec![],
            objects_removed: vec![],
        }
    }

    /// The patient (holding the sealed key `c`) and a guardian (vault identity only).
    fn readers() -> (Unlocked, Unlocked, age::x25519::Identity) {
        let vault_id = age::x25519::Identity::generate();
        let c = age::x25519::Identity::generate();
        let mut patient = Unlocked::patient(vec![vault_id.clone()]);
        patient.sealed = Some(c.clone());
        let guardian = Unlocked::patient(vec![vault_id]);
        (patient, guardian, c)
    }

    /// An entry with every clear field set, so that a stub that drops or mixes one shows.
    fn busy_entry(seq: u64) -> Entry {
        let mut e = entry(seq);
        e.action = Action::Add;
        e.documents = vec!["doc-secret".into()];
        e.details
            .insert("titles".into(), serde_json::json!(["IVG"]));
        e.prev = "ab".repeat(32);
        e.manifest_sha256 = "cd".repeat(32);
        e.manifest_generation = 7;
        e.objects_added = vec!["obj-new".into()];
        e.objects_removed = vec!["obj-old".into()];
        e
    }

    /// The stub JSON of a sealed line, and the line rebuilt from an edited stub with a valid
    /// MAC: what someone holding the MAC key (not the sealed key) could write.
    fn stub_json(line: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["sealed"].clone()
    }

    fn remac(stub: &serde_json::Value, ring: &Keyring) -> String {
        let raw = serde_json::to_string(stub).unwrap();
        let mac = hex::encode(ring.mac(MAC_SEALED, raw.as_bytes()));
        format!("{{\"sealed\":{raw},\"mac\":\"{mac}\"}}")
    }

    #[test]
    fn an_impossible_sequence_number_is_refused_not_overflowed() {
        // Attack finding: a guardian holds the MAC key and can write an entry numbered near
        // u64::MAX; the arithmetic on the next number then panicked.
        let ring = Keyring::generate();
        let keys = Unlocked::patient(vec![age::x25519::Identity::generate()]);
        for seq in [0, MAX_SEQ + 1, u64::MAX] {
            let l = seal_entry(&entry(seq), &ring).unwrap();
            let e = open_line(&l.line, &ring, &keys).unwrap_err();
            assert!(e.contains("impossible"), "{seq}: {e}");
        }
        let l = seal_entry(&entry(MAX_SEQ), &ring).unwrap();
        assert!(open_line(&l.line, &ring, &keys).is_ok());
    }

    #[test]
    fn lines_round_trip_and_resist_edits() {
        let ring = Keyring::generate();
        let (keys, _, _) = readers();
        let l = seal_entry(&entry(1), &ring).unwrap();
        let back = open_line(&l.line, &ring, &keys).unwrap();
        assert_eq!(back.entry, entry(1));
        assert_eq!(back.hash, l.hash);
        assert!(!back.sealed && !back.opaque);
        let edited = l.line.replace("\"view\"", "\"export\"");
        assert!(
            open_line(&edited, &ring, &keys)
                .unwrap_err()
                .contains("MAC")
        );
        let other = Keyring::generate();
        assert!(open_line(&l.line, &other, &keys).is_err());
    }

    #[test]
    fn sealed_lines_open_with_the_sealed_key() {
        let ring = Keyring::generate();
        let (patient, _, c) = readers();
        let clear = seal_entry(&busy_entry(5), &ring).unwrap();
        let stub = seal_line(&clear, &ring, &c.to_public()).unwrap();
        assert!(stub.line.starts_with("{\"sealed\":"), "{}", stub.line);
        // Nothing of what the entry names is in clear.
        for secret in ["doc-secret", "IVG", "\"add\"", "patient"] {
            assert!(!stub.line.contains(secret), "{secret} in {}", stub.line);
        }
        let s = stub_json(&stub.line);
        assert_eq!(s["seq"], 5);
        assert_eq!(s["hash"], clear.hash.as_str());
        assert_eq!(s["objects_removed"], serde_json::json!(["obj-old"]));
        let back = open_line(&stub.line, &ring, &patient).unwrap();
        assert_eq!(back.entry, busy_entry(5));
        assert_eq!(back.hash, clear.hash);
        assert_eq!(back.line, stub.line);
        assert!(back.sealed && !back.opaque);
        // The age file holds the original line, byte for byte.
        let age = B64.decode(s["age"].as_str().unwrap()).unwrap();
        let plain = crypto::open_bytes(&age, patient.as_dyn(), 1 << 20).unwrap();
        assert_eq!(plain, clear.line.as_bytes());
        // Empty object lists are left out, as in the entry.
        let bare = seal_line(
            &seal_entry(&entry(2), &ring).unwrap(),
            &ring,
            &c.to_public(),
        )
        .unwrap();
        assert!(!bare.line.contains("objects_"), "{}", bare.line);
        assert!(seal_line(&stub, &ring, &c.to_public()).is_err());
    }

    #[test]
    fn sealed_lines_are_opaque_without_the_sealed_key() {
        let ring = Keyring::generate();
        let (_, guardian, c) = readers();
        let clear = seal_entry(&busy_entry(5), &ring).unwrap();
        let stub = seal_line(&clear, &ring, &c.to_public()).unwrap();
        let mut other_c = readers().0;
        other_c.identities = guardian.identities.clone();
        for keys in [&guardian, &other_c] {
            let back = open_line(&stub.line, &ring, keys).unwrap();
            assert!(back.sealed && back.opaque);
            assert_eq!(back.hash, clear.hash);
            let e = &back.entry;
            assert_eq!((e.seq, &e.prev), (5, &"ab".repeat(32)));
            assert_eq!(
                (&e.manifest_sha256, e.manifest_generation),
                (&"cd".repeat(32), 7)
            );
            assert_eq!(e.objects_added, vec!["obj-new".to_string()]);
            assert_eq!(e.objects_removed, vec!["obj-old".to_string()]);
            assert_eq!((&e.action, &e.actor), (&Action::Sealed, &Actor::Sealed));
            assert!(e.documents.is_empty() && e.details.is_empty());
            assert_eq!(e.time, jiff::Timestamp::UNIX_EPOCH);
            assert_eq!(back.action_shown(), "a command");
        }
        // Even opaque, the stub is authenticated.
        assert!(
            open_line(&stub.line, &Keyring::generate(), &guardian)
                .unwrap_err()
                .contains("MAC")
        );
    }

    #[test]
    fn edited_stubs_are_refused() {
        let ring = Keyring::generate();
        let (patient, guardian, c) = readers();
        let clear = seal_entry(&busy_entry(5), &ring).unwrap();
        let stub = seal_line(&clear, &ring, &c.to_public()).unwrap();
        let s = stub_json(&stub.line);
        let age = s["age"].as_str().unwrap();
        let mid = age.len() / 2;
        let flipped = if &age[mid..mid + 1] == "A" { "B" } else { "A" };
        let edits = [
            (
                "age",
                stub.line
                    .replacen(&age[mid..], &format!("{flipped}{}", &age[mid + 1..]), 1),
            ),
            ("seq", stub.line.replacen("\"seq\":5", "\"seq\":6", 1)),
            (
                "generation",
                stub.line
                    .replacen("\"manifest_generation\":7", "\"manifest_generation\":8", 1),
            ),
            (
                "hash",
                stub.line
                    .replacen(&clear.hash, &format!("0{}", &clear.hash[1..]), 1),
            ),
        ];
        for (what, line) in edits {
            assert_ne!(line, stub.line, "{what} not edited");
            for keys in [&patient, &guardian] {
                let e = open_line(&line, &ring, keys).unwrap_err();
                assert!(e.contains("MAC"), "{what}: {e}");
            }
        }
        // A clear line's MAC does not pass for a stub's (domains differ).
        let raw = serde_json::to_string(&s).unwrap();
        let wrong = hex::encode(ring.mac(MAC_ENTRY, raw.as_bytes()));
        let line = format!("{{\"sealed\":{raw},\"mac\":\"{wrong}\"}}");
        assert!(
            open_line(&line, &ring, &guardian)
                .unwrap_err()
                .contains("MAC")
        );
        // Both forms at once is no line.
        let both = stub.line.replacen(
            "{\"sealed\":",
            &format!(
                "{{\"entry\":{},\"sealed\":",
                serde_json::to_string(&entry(1)).unwrap()
            ),
            1,
        );
        assert_eq!(
            open_line(&both, &ring, &guardian).unwrap_err(),
            "not a log line"
        );
    }

    #[test]
    fn stubs_that_disagree_with_what_they_seal_are_refused() {
        let ring = Keyring::generate();
        let (patient, guardian, c) = readers();
        let clear = seal_entry(&busy_entry(5), &ring).unwrap();
        let stub = seal_line(&clear, &ring, &c.to_public()).unwrap();
        let cases: [(&str, serde_json::Value, &str); 4] = [
            ("seq", serde_json::json!(6), "another seq"),
            ("prev", serde_json::json!("ef".repeat(32)), "another prev"),
            (
                "objects_added",
                serde_json::json!([]),
                "another objects_added",
            ),
            (
                "hash",
                serde_json::json!("ef".repeat(32)),
                "not the one its hash names",
            ),
        ];
        for (field, value, want) in cases {
            let mut s = stub_json(&stub.line);
            s[field] = value;
            let line = remac(&s, &ring);
            let e = open_line(&line, &ring, &patient).unwrap_err();
            assert!(e.contains(want), "{field}: {e}");
            // Without the sealed key nothing shows it: the MAC is the vault's.
            assert!(open_line(&line, &ring, &guardian).unwrap().opaque);
        }
        // The unedited stub, re-MACed the same way, opens: the edits are what is refused.
        assert!(
            !open_line(&remac(&stub_json(&stub.line), &ring), &ring, &patient)
                .unwrap()
                .opaque
        );
        // An inner line with another MAC key.
        let foreign = seal_entry(&busy_entry(5), &Keyring::generate()).unwrap();
        let mut s = stub_json(&stub.line);
        s["age"] = B64
            .encode(crypto::seal_bytes(foreign.line.as_bytes(), &[c.to_public()]).unwrap())
            .into();
        let e = open_line(&remac(&s, &ring), &ring, &patient).unwrap_err();
        assert!(e.contains("the entry it seals") && e.contains("MAC"), "{e}");
    }

    #[test]
    fn resealing_moves_a_stub_to_a_new_sealed_key() {
        let ring = Keyring::generate();
        let (patient, guardian, c) = readers();
        let clear = seal_entry(&busy_entry(5), &ring).unwrap();
        let stub = seal_line(&clear, &ring, &c.to_public()).unwrap();
        let opened = open_line(&stub.line, &ring, &patient).unwrap();
        let c2 = age::x25519::Identity::generate();
        let moved = reseal_line(&opened, &ring, &c2.to_public()).unwrap();
        let mut patient2 = Unlocked::patient(patient.identities.clone());
        patient2.sealed = Some(c2);
        let back = open_line(&moved.line, &ring, &patient2).unwrap();
        assert_eq!((back.entry, back.hash), (busy_entry(5), clear.hash.clone()));
        assert!(open_line(&moved.line, &ring, &patient).unwrap().opaque);
        let opaque = open_line(&stub.line, &ring, &guardian).unwrap();
        assert!(reseal_line(&opaque, &ring, &c.to_public()).is_err());
        assert!(reseal_line(&clear, &ring, &c.to_public()).is_err());
    }

    /// A log of three short segments: entries 1-2, 3-4, 5-6, chained; 1 and 5 name "a".
    fn small_log(dir: &Path, ring: &Keyring, to: &[age::x25519::Recipient]) -> (Vec<Logged>, Head) {
        fs::create_dir_all(dir.join(DIR)).unwrap();
        fs::create_dir_all(dir.join(crate::layout::TMP)).unwrap();
        let docs = ["a", "b", "x", "y", "a", "z"];
        let mut all: Vec<Logged> = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            let mut e = entry(i as u64 + 1);
            e.documents = vec![d.to_string()];
            e.prev = all.last().map_or(GENESIS.to_string(), |l| l.hash.clone());
            all.push(seal_entry(&e, ring).unwrap());
        }
        for n in 0..3 {
            write_segment(dir, n as u64, &all[2 * n..2 * n + 2], to).unwrap();
        }
        let last = all.last().unwrap();
        let head = Head {
            vault_id: "v".into(),
            log_seq: last.entry.seq,
            log_hash: last.hash.clone(),
            manifest_sha256: last.entry.manifest_sha256.clone(),
            manifest_generation: 1,
            config_sha256: String::new(),
        };
        (all, head)
    }

    #[test]
    fn redact_seals_only_the_entries_naming_the_ids() {
        let ring = Keyring::generate();
        let (patient, guardian, c) = readers();
        let to = vec![patient.identities[0].to_public()];
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (all, head) = small_log(dir, &ring, &to);
        let before: Vec<Vec<u8>> = (0..3)
            .map(|n| fs::read(segment_path(dir, n)).unwrap())
            .collect();
        let ids = BTreeSet::from(["a".to_string()]);
        let done = redact(dir, &patient, &ring, &to, &c.to_public(), &ids).unwrap();
        assert_eq!(done, vec![0, 2]);
        assert_eq!(fs::read(segment_path(dir, 1)).unwrap(), before[1]);
        assert_ne!(fs::read(segment_path(dir, 0)).unwrap(), before[0]);
        for (n, sealed_at) in [(0u64, 0usize), (2, 0)] {
            let lines = read_segment_lines(&segment_path(dir, n), &patient).unwrap();
            assert!(lines[sealed_at].starts_with("{\"sealed\":"));
            assert_eq!(
                lines[1 - sealed_at],
                all[2 * n as usize + 1 - sealed_at].line
            );
        }
        // The patient reads the same entries and chain; the guardian the same chain.
        let read = read_tail(dir, &patient, &ring, &head, usize::MAX, |_| true).unwrap();
        assert_eq!(read.len(), 6);
        for (r, a) in read.iter().zip(&all) {
            assert_eq!((&r.entry, &r.hash), (&a.entry, &a.hash));
            assert_eq!(r.sealed, a.entry.documents == ["a"]);
        }
        let seen = read_tail(dir, &guardian, &ring, &head, usize::MAX, |_| true).unwrap();
        let hashes: Vec<&str> = seen.iter().map(|l| l.hash.as_str()).collect();
        let want: Vec<&str> = all.iter().map(|l| l.hash.as_str()).collect();
        assert_eq!(hashes, want);
        let opaque: Vec<u64> = seen
            .iter()
            .filter(|l| l.opaque)
            .map(|l| l.entry.seq)
            .collect();
        assert_eq!(opaque, vec![1, 5]);
        assert!(
            seen.iter()
                .all(|l| l.opaque || !l.entry.documents.contains(&"a".to_string()))
        );
        // The last two shown entries are 4 and 6: the tail reads back past segment 2, whose
        // entry 5 does not count.
        let tail = read_tail(dir, &guardian, &ring, &head, 2, |_| true).unwrap();
        assert_eq!(tail.first().map(|l| l.entry.seq), Some(3));
        // Done again, nothing is left to seal.
        assert!(
            redact(dir, &patient, &ring, &to, &c.to_public(), &ids)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn segments_end_at_256_entries_or_256_kib() {
        let ring = Keyring::generate();
        let small = seal_entry(&entry(1), &ring).unwrap();
        assert!(!segment_full(&vec![small.clone(); 255]));
        assert!(segment_full(&vec![small; 256]));
        let mut big = entry(1);
        big.documents = vec!["0123456789abcdef0123456789abcdef".into(); 9000];
        let big = seal_entry(&big, &ring).unwrap();
        assert!(segment_full(&[big]));
    }
}
