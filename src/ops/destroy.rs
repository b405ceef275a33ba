//! Destroying the record (`carnet destroy`; CSP R1111-36: deletion on request, closed or not).
//!
//! Crypto-shredding: the files that make the ciphertext readable go first — `identity.age` (the
//! vault's identity, passphrase mode) and `keys.age` (the keyring: MAC and signing keys) are
//! overwritten with random bytes of the same length, flushed, and deleted — then every other
//! file of the vault, then its folder. Files that are not the vault's (something the user put
//! in the folder) are left, and reported, with the folder that holds them.
//!
//! Under the writers' lock, the first step renames `carnet.toml` to `carnet.toml.destroying`:
//! from then on no carnet command takes the folder for a vault, and if the destruction is
//! interrupted (a crash, a full disk), `carnet destroy` finishes it (the user had confirmed).
//!
//! Overwriting is best effort: on SSDs, copy-on-write file systems, snapshots and sync
//! folders the old blocks may survive; the encryption is what protects them. Backups and
//! mirrors are untouched: the report lists those the log knows of.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use rand::RngCore;
use serde::Serialize;

use crate::config::KeyMode;
use crate::domain::Action;
use crate::error::Error;
use crate::fsutil::{self, Lock};
use crate::keys::Unlocked;
use crate::layout::{CONFIG, IDENTITY, KEYS};
use crate::vault::Vault;

/// `carnet.toml`, renamed when destruction starts: the folder is no longer a vault, and an
/// interrupted destruction is recognised.
const MARKER: &str = crate::layout::DESTROYING;

/// What the user must type to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The patient's name, as recorded (`carnet init --name`).
    PatientName(String),
    /// The vault's key fingerprint, when the record holds no name (`carnet fingerprint`).
    Fingerprint(String),
}

impl Expected {
    /// Does `typed` confirm? Names compare exactly, spaces aside (a doubled or trailing space
    /// is no reason to refuse); fingerprints as `parse_fingerprint` reads them.
    pub fn is_confirmed_by(&self, typed: &str) -> bool {
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        match self {
            Expected::PatientName(n) => !n.trim().is_empty() && words(n) == words(typed),
            Expected::Fingerprint(f) => {
                crate::keyring::parse_fingerprint(typed).is_ok_and(|t| &t == f)
            }
        }
    }
}

/// A place the log says holds a copy of the vault: a backup's or mirror's target, or the
/// backup a restore came from.
#[derive(Debug, Clone, Serialize)]
pub struct KnownCopy {
    /// As logged: a path, or `-` for standard output (piped to another program).
    pub target: String,
    /// The last time it was written (or restored from).
    pub last_at: jiff::Timestamp,
    /// How many log entries name it.
    pub count: usize,
}

/// The record, confirmed or not yet, locked against every writer until destroyed or dropped.
pub struct Plan<'v> {
    vault: &'v Vault,
    _lock: Lock,
    pub expected: Expected,
    /// The copies the log knows of; backups made without the key at hand are not logged.
    pub copies: Vec<KnownCopy>,
}

/// What was destroyed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub vault: String,
    /// The key files overwritten with random bytes before they were deleted.
    pub shredded: Vec<String>,
    /// Every file deleted (the shredded ones included).
    pub files_removed: usize,
    pub folder_removed: bool,
    /// Files in the folder that were not the vault's, left in place (so was the folder).
    pub left: Vec<String>,
    /// Copies the log knows of: they still hold the encrypted record.
    pub copies: Vec<KnownCopy>,
    /// The vault was opened by an identity file outside it (`init -i`), which destroy does not
    /// touch: it still opens every copy.
    pub identity_outside: bool,
}

/// Locks the vault, authenticates it and reads what the confirmation needs (the patient's
/// name) and the copies its log knows of. Nothing is changed.
pub fn prepare(vault: &Vault, keys: Unlocked) -> anyhow::Result<Plan<'_>> {
    let lock = vault.lock()?;
    let snap = vault.snapshot(keys)?;
    // Destroying shreds the keys: like changing them, it is the patient's decision.
    crate::ops::rekey::check_may_manage_keys(&snap.keys)?;
    let expected = match snap.root.patient.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => Expected::PatientName(n.to_string()),
        _ => Expected::Fingerprint(vault.fingerprint()?),
    };
    let copies = known_copies(vault, &snap).unwrap_or_default();
    Ok(Plan {
        vault,
        _lock: lock,
        expected,
        copies,
    })
}

/// The copies named by `backup` and `restore` entries, most recent first. A log that cannot
/// be read names none (destroying must not depend on it).
fn known_copies(vault: &Vault, snap: &crate::catalog::Snapshot) -> anyhow::Result<Vec<KnownCopy>> {
    let copy_of = |e: &crate::log::Entry| -> Option<String> {
        let key = match e.action {
            Action::Backup => "target",
            Action::Restore => "source",
            _ => return None,
        };
        e.details.get(key)?.as_str().map(str::to_string)
    };
    let entries = crate::log::read_tail(
        &vault.dir,
        &snap.keys,
        &snap.ring,
        &snap.head,
        usize::MAX,
        |e| copy_of(e).is_some(),
    )?;
    let mut by_target: BTreeMap<String, KnownCopy> = BTreeMap::new();
    for l in &entries {
        let Some(target) = copy_of(&l.entry) else {
            continue;
        };
        let c = by_target.entry(target.clone()).or_insert(KnownCopy {
            target,
            last_at: l.entry.time,
            count: 0,
        });
        c.count += 1;
        c.last_at = c.last_at.max(l.entry.time);
    }
    let mut copies: Vec<KnownCopy> = by_target.into_values().collect();
    copies.sort_by_key(|c| std::cmp::Reverse(c.last_at));
    Ok(copies)
}

impl Plan<'_> {
    /// Destroys the record if `typed` confirms it; otherwise refuses, the vault untouched.
    pub fn destroy(self, typed: &str) -> anyhow::Result<Report> {
        if !self.expected.is_confirmed_by(typed) {
            let (what, hint) = match &self.expected {
                Expected::PatientName(n) => (
                    "the patient's name",
                    format!("type the name exactly as the record holds it: {n:?}"),
                ),
                Expected::Fingerprint(f) => (
                    "the vault's fingerprint",
                    format!("this record holds no patient name: type its fingerprint, {f}"),
                ),
            };
            return Err(Error::input(
                format!("{:?} is not {what}: nothing was destroyed", typed.trim()),
                hint,
            )
            .into());
        }
        let dir = &self.vault.dir;
        fs::rename(dir.join(CONFIG), dir.join(MARKER))
            .with_context(|| format!("cannot start destroying {}", dir.display()))?;
        fsutil::sync_dir(dir).with_context(|| format!("cannot flush {}", dir.display()))?;
        let mut report = erase(dir)?;
        report.copies = self.copies;
        report.identity_outside = self.vault.config.key == KeyMode::External;
        Ok(report)
    }
}

/// Does an interrupted destruction still hold a key (`identity.age` or `keys.age`)? Then it had
/// not started shredding, and the marker alone (a rename anyone with write access can make)
/// must not be taken as the patient's confirmation.
pub fn keys_remain(dir: &Path) -> bool {
    dir.join(IDENTITY).exists() || dir.join(KEYS).exists()
}

/// Is `dir` a vault whose destruction was interrupted?
pub fn interrupted(dir: &Path) -> bool {
    !dir.join(CONFIG).exists() && dir.join(MARKER).is_file()
}

/// Finishes an interrupted destruction (the user confirmed it when it started).
pub fn finish(dir: &Path) -> anyhow::Result<Report> {
    // Another `destroy` may be finishing it too: take the lock if it is still there.
    let _lock = match dir.join(crate::layout::LOCK).is_file() {
        true => Some(Lock::acquire(&dir.join(crate::layout::LOCK))?),
        false => None,
    };
    erase(dir)
}

/// Shreds the keys, deletes the vault's files (the marker last), then the folder if nothing
/// else is in it.
fn erase(dir: &Path) -> anyhow::Result<Report> {
    let mut shredded = Vec::new();
    for name in [IDENTITY, KEYS] {
        let path = dir.join(name);
        if shred(&path).with_context(|| format!("cannot overwrite {}", path.display()))? {
            shredded.push(name.to_string());
        }
    }
    fsutil::sync_dir(dir).with_context(|| format!("cannot flush {}", dir.display()))?;
    let mut files_removed = shredded.len();
    let mut left = Vec::new();
    for (rel, path) in crate::index::walk(dir) {
        if rel == MARKER {
            continue;
        }
        if crate::index::is_vault_path(&rel) || crate::index::is_unindexed(&rel) {
            match fs::remove_file(&path) {
                Ok(()) => files_removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        } else {
            left.push(rel);
        }
    }
    // Folders emptied, deepest first; one holding a file left behind stays.
    for e in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .contents_first(true)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if e.file_type().is_dir() {
            let _ = fs::remove_dir(e.path());
        }
    }
    let marker = dir.join(MARKER);
    match fs::remove_file(&marker) {
        Ok(()) => files_removed += 1,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", marker.display())),
    }
    let folder_removed = left.is_empty() && fs::remove_dir(dir).is_ok();
    let _ = fsutil::sync_dir(fsutil::parent_dir(dir));
    Ok(Report {
        vault: dir.display().to_string(),
        shredded,
        files_removed,
        folder_removed,
        left,
        copies: Vec::new(),
        identity_outside: false,
    })
}

/// Overwrites a regular file with random bytes of its length, flushes it, and deletes it. A
/// link in its place is deleted, never followed (it could point at any file of the user's).
/// Returns false when there was no such file.
fn shred(path: &Path) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.is_file() {
        let mut o = fs::OpenOptions::new();
        o.write(true);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        }
        let mut f = o.open(path)?;
        if f.metadata()?.is_file() {
            let mut buf = vec![0u8; 64 << 10];
            let mut left = meta.len();
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                rand::thread_rng().fill_bytes(&mut buf[..n]);
                f.write_all(&buf[..n])?;
                left -= n as u64;
            }
            f.sync_all()?;
        }
    }
    fs::remove_file(path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_is_exact_but_for_spaces() {
        let name = Expected::PatientName("Marie Dupont".into());
        assert!(name.is_confirmed_by("Marie Dupont"));
        assert!(name.is_confirmed_by("  Marie   Dupont "));
        assert!(!name.is_confirmed_by("marie dupont"));
        assert!(!name.is_confirmed_by("Marie"));
        assert!(!name.is_confirmed_by(""));
        let fp = Expected::Fingerprint("SHA256:5ac6:171f:a027:2d6f:6705:278a:3689:fc1c".into());
        assert!(fp.is_confirmed_by("5ac6171fa0272d6f6705278a3689fc1c"));
        assert!(!fp.is_confirmed_by("5ac6171fa0272d6f6705278a3689fc1d"));
        assert!(!fp.is_confirmed_by("Marie Dupont"));
    }

    #[test]
    fn shredding_overwrites_then_deletes_and_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("keys.age");
        fs::write(&key, b"secret").unwrap();
        assert!(shred(&key).unwrap());
        assert!(!key.exists());
        assert!(!shred(&key).unwrap());
        let target = dir.path().join("precious");
        fs::write(&target, b"keep me").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&target, &key).unwrap();
            assert!(shred(&key).unwrap());
            assert_eq!(fs::read(&target).unwrap(), b"keep me");
        }
    }
}
