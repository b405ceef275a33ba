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
use crate::keyring::Keyring;
use crate::log;
use crate::manifest::Manifest;
use crate::vault::{self, Vault};

pub const INDEX: &str = "index.json";
pub const SIGNATURE: &str = "index.json.minisig";
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
    /// Vault-relative paths with `/` separators.
    pub files: BTreeMap<String, FileEntry>,
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

/// The metadata files every vault has, besides objects and log segments.
fn metadata_files(v: &Vault) -> Vec<&'static str> {
    let mut names = vec![vault::CONFIG, vault::KEYS, vault::MANIFEST, log::HEAD];
    if v.config.key == vault::KeyMode::Passphrase {
        names.push(vault::IDENTITY);
    }
    names
}

/// Builds the index of the vault as it now stands. Objects come from the manifest (their
/// BLAKE3 was taken when they were written); full log segments never change, so their entries
/// are carried over from `previous`; the rest is hashed now.
pub fn build(
    v: &Vault,
    m: &Manifest,
    log_seq: u64,
    previous: Option<&Index>,
) -> anyhow::Result<Index> {
    let mut files = BTreeMap::new();
    for name in metadata_files(v) {
        files.insert(name.to_string(), hash_file(&v.path(name))?);
    }
    let (segs, _) = log::list_segments(&v.dir)?;
    let last = segs.last().copied();
    for n in segs {
        let rel = format!("{}/{n:08}.age", log::DIR);
        let reuse = previous
            .filter(|_| Some(n) != last)
            .and_then(|p| p.files.get(&rel))
            .cloned();
        let entry = match reuse {
            Some(e) => e,
            None => hash_file(&log::segment_path(&v.dir, n))?,
        };
        files.insert(rel, entry);
    }
    for d in &m.documents {
        files.insert(
            object_rel(&d.object),
            FileEntry {
                size: d.object_size,
                blake3: d.object_blake3.clone(),
            },
        );
    }
    Ok(Index {
        format: crate::FORMAT_VERSION,
        vault_id: v.config.vault_id.clone(),
        log_seq,
        files,
    })
}

pub fn object_rel(object: &str) -> String {
    format!("{}/{}/{object}.age", vault::OBJECTS, &object[..2])
}

/// Writes the index and its signature (index first: a reader checks the pair, and a crash
/// between the two leaves a mismatch that the next write repairs).
pub fn write(v: &Vault, ring: &Keyring, index: &Index) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(index)?;
    let sig = crate::sign::sign(
        ring,
        json.as_bytes(),
        "signature from carnet vault key",
        &format!("carnet index {} seq {}", index.vault_id, index.log_seq),
    );
    v.write_derived(&v.path(INDEX), json.as_bytes())?;
    v.write_derived(&v.path(SIGNATURE), sig.as_bytes())
}

/// Reads an index and checks its signature against `signing_key` (minisign public key).
pub fn read_signed(dir: &Path, signing_key: &str) -> Result<Index, Error> {
    let bad = |what: &str, why: String| Error::Integrity(format!("{what}: {why}"));
    let key = crate::sign::decode_public(signing_key)
        .map_err(|e| bad(vault::CONFIG, format!("bad signing key: {e}")))?;
    let read = |name: &str, limit: u64| -> Result<String, Error> {
        let f = fs::File::open(dir.join(name)).map_err(|e| match e.kind() {
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
    crate::sign::verify(&key, json.as_bytes(), &sig).map_err(|e| bad(SIGNATURE, e))?;
    serde_json::from_str(&json).map_err(|e| bad(INDEX, format!("unreadable: {e}")))
}

/// Files a vault may hold that the index does not list.
pub fn is_unindexed(rel: &str) -> bool {
    rel == INDEX || rel == SIGNATURE || rel == vault::LOCK || rel.starts_with("tmp/")
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
            vault::CONFIG,
            vault::IDENTITY,
            vault::KEYS,
            vault::MANIFEST,
            crate::log::HEAD,
            INDEX,
            SIGNATURE,
        ]
        .contains(name),
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
