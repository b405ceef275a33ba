//! The signed index (`index.json` + `index.json.minisig`): every file of the vault with its size
//! and BLAKE3, signed by the vault's key, so that backups and cron jobs can check a vault, a
//! backup or a mirror without the key.
//!
//! What it proves: that files match what the holder of the vault's signing key last wrote.
//! Its public key sits in `carnet.toml`; a check that must resist someone who can rewrite the
//! whole folder pins the key fingerprint (`verify --offline --expect SHA256:…`). The keyed
//! `verify` checks the index against the authenticated log and manifest.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use anyhow::Context;

use crate::keyring::Keyring;
use crate::layout::{self, Store};
use crate::log;

pub const INDEX: &str = "index.json";
pub const SIGNATURE: &str = "index.json.minisig";
/// The signed top kept in `tmp/` while its successor and the successor's signature are renamed
/// into place (see `write_top`).
const PREVIOUS: &str = "index.json.previous";
const MAX_INDEX: u64 = 512 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub size: u64,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Index {
    pub format: u32,
    pub vault_id: String,
    /// The log sequence number the index was written at, so a reader can tell older from newer.
    pub log_seq: u64,
    /// Vault-relative paths with `/` separators. In format 2 the top lists the files besides
    /// objects; `complete` adds the objects and the parts themselves.
    pub files: BTreeMap<String, FileEntry>,
    /// Format 2: the parts (`index/xx.json`) holding the objects of each fan.
    #[serde(default)]
    pub parts: BTreeMap<String, FileEntry>,
    /// Format 2: how many documents the vault holds (objects also hold metadata shards, so
    /// counting them would not tell).
    #[serde(default)]
    pub documents: Option<usize>,
}

/// Size and BLAKE3 of a file, streamed in fixed-size buffers.
pub fn hash_file(path: &Path) -> std::io::Result<FileEntry> {
    // Vault files are regular files; a link or device in their place is not followed.
    if !fs::symlink_metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut f = fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok(FileEntry {
        size: n,
        blake3: h.finalize().to_hex().to_string(),
    })
}

/// Why a copy checked against an index entry failed.
#[derive(Debug)]
pub enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
    /// More bytes than the entry says: the copy stopped there.
    Larger,
    /// The size or the BLAKE3 differ from the entry.
    Differs,
}

/// Copies `r` to `w`, reading at most one byte more than `want.size` (a source larger than its
/// entry is refused without copying it all), hashing on the way, and succeeds only when size
/// and BLAKE3 are the entry's. The one copy every backup, mirror and restore makes: a file is
/// never taken for what its index says without being checked. `progress` gets each chunk's size.
pub fn copy_verified(
    r: &mut dyn Read,
    w: &mut dyn std::io::Write,
    want: &FileEntry,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, CopyError> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    let mut limited = r.take(want.size.saturating_add(1));
    loop {
        let k = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        n += k as u64;
        if n > want.size {
            return Err(CopyError::Larger);
        }
        h.update(&buf[..k]);
        w.write_all(&buf[..k]).map_err(CopyError::Write)?;
        progress(k as u64);
    }
    if n != want.size || h.finalize().to_hex().as_str() != want.blake3 {
        return Err(CopyError::Differs);
    }
    Ok(n)
}

/// The metadata files every vault has, besides objects and log segments.
fn metadata_files(v: &dyn Store) -> Vec<&'static str> {
    let mut names = vec![layout::CONFIG, layout::KEYS, layout::MANIFEST, log::HEAD];
    if v.config().key == crate::config::KeyMode::Passphrase {
        names.push(layout::IDENTITY);
    }
    names
}

/// The folder of the index parts (format 2): one JSON file per object fan.
pub const PARTS: &str = "index";

/// One part of a format-2 index: the objects of one fan (`objects/xx/`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Part {
    pub format: u32,
    pub vault_id: String,
    pub fan: String,
    pub files: BTreeMap<String, FileEntry>,
}

pub fn part_rel(fan: &str) -> String {
    format!("{PARTS}/{fan}.json")
}

fn fan_of(object: &str) -> &str {
    &object[..2]
}

/// Every file of the vault except objects, as it stands: the metadata files, hashed now, and
/// the log segments. Full segments never change, so their entries are carried over from
/// `previous` (an index this vault signed) rather than hashed again.
fn files_besides_objects(
    v: &dyn Store,
    previous: Option<&Index>,
) -> anyhow::Result<BTreeMap<String, FileEntry>> {
    let mut files = BTreeMap::new();
    for name in metadata_files(v) {
        files.insert(name.to_string(), hash_file(&v.path(name))?);
    }
    let (segs, _) = log::list_segments(v.dir())?;
    let last = segs.last().copied();
    for n in segs {
        let rel = format!("{}/{n:08}.age", log::DIR);
        let reuse = previous
            .filter(|_| Some(n) != last)
            .and_then(|p| p.files.get(&rel))
            .cloned();
        let entry = match reuse {
            Some(e) => e,
            None => hash_file(&log::segment_path(v.dir(), n))?,
        };
        files.insert(rel, entry);
    }
    Ok(files)
}

/// What the index of the vault must say: every file but the index itself, given the objects
/// the metadata names (object id → size and BLAKE3). `verify` compares it with the signed one.
pub fn expected_files(
    v: &dyn Store,
    objects: &BTreeMap<String, FileEntry>,
) -> anyhow::Result<BTreeMap<String, FileEntry>> {
    let mut files = files_besides_objects(v, None)?;
    for (o, e) in objects {
        files.insert(object_rel(o), e.clone());
    }
    Ok(files)
}

pub fn object_rel(object: &str) -> String {
    format!("{}/{}/{object}.age", layout::OBJECTS, &object[..2])
}

/// The top of a format-2 index as written: files besides objects, and the parts.
#[derive(Serialize)]
struct Top<'a> {
    format: u32,
    vault_id: &'a str,
    log_seq: u64,
    documents: usize,
    files: &'a BTreeMap<String, FileEntry>,
    parts: &'a BTreeMap<String, FileEntry>,
}

fn write_part(
    v: &dyn Store,
    fan: &str,
    files: &BTreeMap<String, FileEntry>,
) -> anyhow::Result<FileEntry> {
    let part = Part {
        format: crate::FORMAT_VERSION,
        vault_id: v.config().vault_id.clone(),
        fan: fan.to_string(),
        files: files.clone(),
    };
    let json = serde_json::to_vec_pretty(&part)?;
    let dir = v.path(PARTS);
    if !dir.is_dir() {
        crate::fsutil::create_private_dir(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    v.write_derived(&v.path(&part_rel(fan)), &json)?;
    Ok(FileEntry {
        size: json.len() as u64,
        blake3: blake3::hash(&json).to_hex().to_string(),
    })
}

/// Signs and writes the top of the index (after its parts: a reader checks the parts against
/// the top, and a crash in between leaves a mismatch that the next write repairs).
fn write_top(
    v: &dyn Store,
    ring: &Keyring,
    log_seq: u64,
    documents: usize,
    files: &BTreeMap<String, FileEntry>,
    parts: &BTreeMap<String, FileEntry>,
) -> anyhow::Result<()> {
    let top = Top {
        format: crate::FORMAT_VERSION,
        vault_id: &v.config().vault_id,
        log_seq,
        documents,
        files,
        parts,
    };
    let json = serde_json::to_string_pretty(&top)?;
    let sig = crate::sign::sign(
        ring,
        json.as_bytes(),
        "signature from carnet vault key",
        &format!("carnet index {} seq {}", v.config().vault_id, log_seq),
    );
    // The top and its signature are two renames: until both are in place, the signed top
    // before them stays in `tmp/` (which checks ignore), so that a reader finds a top its
    // signature signs whatever the moment of an interruption (`read_top`).
    // A hard link only: it copies nothing, never follows a link at `index.json` nor opens a
    // FIFO, and fails on a name already taken. Where the file system has none (FAT), nothing is
    // kept, and an interruption between the two renames is reported as before.
    let prev = v.tmp_dir().join(PREVIOUS);
    let _ = std::fs::remove_file(&prev);
    let kept = std::fs::hard_link(v.path(INDEX), &prev).is_ok();
    v.write_derived(&v.path(INDEX), json.as_bytes())?;
    v.write_derived(&v.path(SIGNATURE), sig.as_bytes())?;
    if kept {
        let _ = std::fs::remove_file(&prev);
    }
    Ok(())
}

/// Writes the whole index from the objects the metadata names: after an upgrade, a recovery,
/// or when the previous index cannot be trusted. Costs one pass over the objects' records.
pub fn rebuild(
    v: &dyn Store,
    ring: &Keyring,
    log_seq: u64,
    documents: usize,
    objects: &BTreeMap<String, FileEntry>,
) -> anyhow::Result<()> {
    let mut fans: BTreeMap<&str, BTreeMap<String, FileEntry>> = BTreeMap::new();
    for (o, e) in objects {
        fans.entry(fan_of(o))
            .or_default()
            .insert(object_rel(o), e.clone());
    }
    let mut parts = BTreeMap::new();
    for (fan, files) in &fans {
        parts.insert(part_rel(fan), write_part(v, fan, files)?);
    }
    // Parts of fans that no longer hold objects.
    if let Ok(rd) = fs::read_dir(v.path(PARTS)) {
        for e in rd.flatten() {
            let rel = format!("{PARTS}/{}", e.file_name().to_string_lossy());
            if !parts.contains_key(&rel) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let files = files_besides_objects(v, None)?;
    write_top(v, ring, log_seq, documents, &files, &parts)
}

/// Objects added to one fan (with their entries) and removed from it.
type FanChanges<'a> = (Vec<(&'a String, &'a FileEntry)>, Vec<&'a String>);

/// Brings the index from `base_seq` to `log_seq` by rewriting only the parts whose objects
/// changed and the top: the cost of a one-document change does not grow with the vault.
/// Returns false (nothing written) when the index on disk is not the signed format-2 index of
/// `base_seq`; the caller then rebuilds it.
pub fn update(
    v: &dyn Store,
    ring: &Keyring,
    base_seq: u64,
    log_seq: u64,
    documents: usize,
    added: &BTreeMap<String, FileEntry>,
    removed: &[String],
) -> anyhow::Result<bool> {
    let Ok(prev) = read_top(v.dir(), &v.config().signing_key) else {
        return Ok(false);
    };
    if prev.format < 2 || prev.log_seq != base_seq || prev.vault_id != v.config().vault_id {
        return Ok(false);
    }
    let mut parts = prev.parts.clone();
    let mut touched: BTreeMap<&str, FanChanges> = BTreeMap::new();
    for (o, e) in added {
        touched.entry(fan_of(o)).or_default().0.push((o, e));
    }
    for o in removed {
        touched.entry(fan_of(o)).or_default().1.push(o);
    }
    for (fan, (adds, dels)) in touched {
        let rel = part_rel(fan);
        let mut files = match parts.get(&rel) {
            Some(want) => match read_part(v.dir(), &rel, want, &v.config().vault_id, fan) {
                Ok(p) => p.files,
                Err(_) => return Ok(false),
            },
            None => BTreeMap::new(),
        };
        for o in dels {
            files.remove(&object_rel(o));
        }
        for (o, e) in adds {
            files.insert(object_rel(o), e.clone());
        }
        if files.is_empty() {
            parts.remove(&rel);
            match fs::remove_file(v.path(&rel)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {rel}")),
            }
        } else {
            parts.insert(rel, write_part(v, fan, &files)?);
        }
    }
    let files = files_besides_objects(v, Some(&prev))?;
    write_top(v, ring, log_seq, documents, &files, &parts)?;
    Ok(true)
}

/// Reads one part and checks it against the entry the signed top gives it.
fn read_part(
    dir: &Path,
    rel: &str,
    want: &FileEntry,
    vault_id: &str,
    fan: &str,
) -> Result<Part, String> {
    let bytes = crate::fsutil::read_limited(&dir.join(rel), want.size)
        .map_err(|e| format!("{rel}: {e}"))?;
    parse_part(&bytes, rel, want, vault_id, fan)
}

fn parse_part(
    bytes: &[u8],
    rel: &str,
    want: &FileEntry,
    vault_id: &str,
    fan: &str,
) -> Result<Part, String> {
    if bytes.len() as u64 != want.size || blake3::hash(bytes).to_hex().as_str() != want.blake3 {
        return Err(format!(
            "{rel}: not the part the signed index names (altered or out of date)"
        ));
    }
    let p: Part = serde_json::from_slice(bytes).map_err(|e| format!("{rel}: unreadable: {e}"))?;
    if p.vault_id != vault_id || p.fan != fan {
        return Err(format!("{rel}: belongs to another vault or fan"));
    }
    if let Some(bad) = p
        .files
        .keys()
        .find(|k| !is_vault_path(k) || !k.starts_with(&format!("{}/{fan}/", layout::OBJECTS)))
    {
        return Err(format!(
            "{rel}: names {:?}, which is not an object of its fan",
            crate::text::clean(bad)
        ));
    }
    Ok(p)
}

/// Completes a signed index read from a backup or a folder: a format-2 index lists its parts,
/// each read through `read` (bounded by the size the top gives), checked against the top, and
/// merged in, so that `files` then names every file including the parts. Format 1: unchanged.
pub fn complete(
    idx: &mut Index,
    mut read: impl FnMut(&str, u64) -> Result<Vec<u8>, String>,
) -> Result<(), String> {
    let parts = idx.parts.clone();
    for (rel, want) in &parts {
        let fan = rel
            .strip_prefix(&format!("{PARTS}/"))
            .and_then(|f| f.strip_suffix(".json"))
            .filter(|_| is_vault_path(rel))
            .ok_or_else(|| {
                format!(
                    "the index names {:?}, which is not an index part",
                    crate::text::clean(rel)
                )
            })?;
        let bytes = read(rel, want.size)?;
        let p = parse_part(&bytes, rel, want, &idx.vault_id, fan)?;
        for (k, e) in p.files {
            if idx.files.insert(k.clone(), e).is_some() {
                return Err(format!("{k} is listed twice in the index"));
            }
        }
        idx.files.insert(rel.clone(), want.clone());
    }
    Ok(())
}

/// Whether `index.json` itself is what its signature signs (`read_top` may have fallen back to
/// the previous top an interrupted write left in `tmp/`).
pub fn top_is_signed(dir: &Path, signing_key: &str) -> bool {
    let (Ok(key), Ok(json), Ok(sig)) = (
        crate::sign::decode_public(signing_key),
        crate::fsutil::read_limited(&dir.join(INDEX), MAX_INDEX),
        crate::fsutil::read_limited(&dir.join(SIGNATURE), 4096),
    ) else {
        return false;
    };
    std::str::from_utf8(&sig).is_ok_and(|sig| crate::sign::verify(&key, &json, sig).is_ok())
}

/// Reads and checks the signed top of the index alone (its parts unread).
pub fn read_top(dir: &Path, signing_key: &str) -> Result<Index, Error> {
    let bad = |what: &str, why: String| Error::Integrity(format!("{what}: {why}"));
    let key = crate::sign::decode_public(signing_key)
        .map_err(|e| bad(layout::CONFIG, format!("bad signing key: {e}")))?;
    let read = |name: &str, limit: u64| -> Result<String, Error> {
        let f = crate::fsutil::open_regular(&dir.join(name)).map_err(|e| match e.kind() {
            ErrorKind::NotFound => bad(
                name,
                "missing (an interrupted backup, or a vault written by an older carnet)".into(),
            ),
            _ => bad(name, e.to_string()),
        })?;
        let mut s = String::new();
        f.take(limit)
            .read_to_string(&mut s)
            .map_err(|e| bad(name, e.to_string()))?;
        Ok(s)
    };
    let json = read(INDEX, MAX_INDEX)?;
    let sig = read(SIGNATURE, 4096)?;
    let json = match crate::sign::verify(&key, json.as_bytes(), &sig) {
        Ok(_) => json,
        // Interrupted between the top's rename and its signature's: the signature still signs
        // the top before, kept in `tmp/`; it is that top (older, so "behind the head", which
        // the next write rewrites) that the signature vouches for. Nothing else is trusted.
        Err(e) => match read(&format!("{}/{PREVIOUS}", layout::TMP), MAX_INDEX) {
            Ok(prev) if crate::sign::verify(&key, prev.as_bytes(), &sig).is_ok() => prev,
            _ => return Err(bad(SIGNATURE, e)),
        },
    };
    serde_json::from_str(&json).map_err(|e| bad(INDEX, format!("unreadable: {e}")))
}

/// Reads an index and checks its signature against `signing_key` (minisign public key), then
/// its parts (format 2): `files` names every file of the vault but the index's top.
pub fn read_signed(dir: &Path, signing_key: &str) -> Result<Index, Error> {
    let mut idx = read_top(dir, signing_key)?;
    complete(&mut idx, |rel, size| {
        crate::fsutil::read_limited(&dir.join(rel), size).map_err(|e| match e.kind() {
            ErrorKind::NotFound => format!("{rel}: missing"),
            _ => format!("{rel}: {e}"),
        })
    })
    .map_err(|e| Error::Integrity(format!("{INDEX}: {e}")))?;
    Ok(idx)
}

/// Files a vault may hold that the index does not list.
pub fn is_unindexed(rel: &str) -> bool {
    rel == INDEX || rel == SIGNATURE || rel == layout::LOCK || rel.starts_with("tmp/")
}

/// Files and folders that operating systems and sync tools add to any folder they show or
/// sync (Finder, Windows Explorer, Syncthing, Resilio, Dropbox, git). They are not part of the
/// vault: checks note them without failing, and backups and mirrors neither copy nor delete
/// them. Returns the name to report: the tool's folder for anything inside one. FORMAT.md
/// lists the same names.
pub fn system_file(rel: &str) -> Option<&str> {
    let first = rel.split('/').next().unwrap_or_default();
    let name = rel.rsplit('/').next().unwrap_or_default();
    if matches!(first, ".stfolder" | ".sync" | ".git") || first.starts_with(".dropbox") {
        return Some(first);
    }
    let os_file = name == ".DS_Store"
        || name.starts_with("._")
        || name == ".stignore"
        || name.eq_ignore_ascii_case("Thumbs.db")
        || name.eq_ignore_ascii_case("desktop.ini");
    os_file.then_some(rel)
}

/// Every file under `dir`, vault-relative with `/`, skipping folders.
pub fn walk(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap_or(e.path())
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        out.push((rel, e.path().to_path_buf()));
    }
    out
}

/// Is `rel` a path a vault can hold? Anything else in a backup is hostile or foreign.
pub fn is_vault_path(rel: &str) -> bool {
    let segs: Vec<&str> = rel.split('/').collect();
    let hexname = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    match segs.as_slice() {
        [name] => [
            layout::CONFIG,
            layout::IDENTITY,
            layout::KEYS,
            layout::MANIFEST,
            crate::log::HEAD,
            INDEX,
            SIGNATURE,
        ]
        .contains(name),
        ["index", part] => part.strip_suffix(".json").is_some_and(|f| hexname(f, 2)),
        ["log", seg] => seg
            .strip_suffix(".age")
            .is_some_and(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())),
        ["objects", fan, obj] => {
            obj.strip_suffix(".age")
                .is_some_and(|o| hexname(o, 32) && o.starts_with(fan))
                && hexname(fan, 2)
        }
        _ => false,
    }
}
