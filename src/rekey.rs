//! Re-encryption's staging folder (`tmp/rekey/`): the whole vault written again under new keys
//! beside the old one, then moved into place by renames. The `COMMIT` marker is the commit
//! point: without it the staging folder is an abandoned attempt (deleted, the vault keeps its
//! keys); with it every later command first finishes the moves, which need no key. So a kill at
//! any point leaves either the old vault or one that the next command completes.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fsutil;
use crate::layout::{CONFIG, TMP};

/// The staging folder, inside `tmp/` so that every check, index and backup already leaves it
/// out, and on the vault's own file system so that moving a file is a rename.
pub const STAGING: &str = "rekey";
/// Present once everything staged is on disk: from then on the new keys are the vault's.
const COMMIT: &str = "COMMIT";
/// The marker is a few hundred bytes.
const MAX_COMMIT: u64 = 1 << 20;

/// What the marker records: the vault it belongs to, and the files of the old vault that the
/// new one no longer has (a removed key's slot), deleted once everything is moved.
#[derive(Debug, Serialize, Deserialize)]
struct Commit {
    format: u32,
    vault_id: String,
    #[serde(default)]
    remove: Vec<String>,
}

/// Where a vault's re-encryption stands on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    None,
    /// Staged files without the marker: a re-encryption running (it holds the lock) or killed.
    Uncommitted,
    /// The marker is there: the moves must be finished before anything reads the vault.
    Committed,
}

fn staging_dir(vault: &Path) -> PathBuf {
    vault.join(TMP).join(STAGING)
}

pub fn state(vault: &Path) -> State {
    let dir = staging_dir(vault);
    if dir.join(COMMIT).is_file() {
        State::Committed
    } else if fs::symlink_metadata(&dir).is_ok() {
        State::Uncommitted
    } else {
        State::None
    }
}

/// Deletes an uncommitted staging folder (the caller holds the writers' lock, so no
/// re-encryption is running). Returns whether it held anything: an empty one is the tail of
/// a finished re-encryption (killed between its marker and its folder) or one that had not
/// staged a file yet, and is not worth a word.
pub fn discard(vault: &Path) -> anyhow::Result<bool> {
    if state(vault) != State::Uncommitted {
        return Ok(false);
    }
    let dir = staging_dir(vault);
    let held = !fsutil::is_empty_dir(&dir).unwrap_or(false);
    fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    Ok(held)
}

/// A staging folder being filled. Files are written without flushing one by one: `commit`
/// flushes them all at once before writing the marker.
pub struct Staging {
    dir: PathBuf,
    /// Set once the marker is written: from then on the folder is the new vault's.
    committed: bool,
    /// Called after every file staged or moved: the test hook that kills the process there.
    tick: Box<dyn Fn() + Send + Sync>,
}

impl Staging {
    /// Starts an empty staging folder (an earlier, abandoned one is deleted first).
    pub fn create(vault: &Path, tick: Box<dyn Fn() + Send + Sync>) -> anyhow::Result<Staging> {
        let dir = staging_dir(vault);
        if fs::symlink_metadata(&dir).is_ok() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        fsutil::create_private_dir(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Staging {
            dir,
            committed: false,
            tick,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new file at `rel` (vault-relative, `/`-separated), its folders made as needed.
    pub fn create_file(&mut self, rel: &str) -> anyhow::Result<fs::File> {
        let path = self.dir.join(rel);
        fsutil::create_private_dir(fsutil::parent_dir(&path))
            .with_context(|| format!("cannot create {}", fsutil::parent_dir(&path).display()))?;
        fsutil::create_new_private(&path)
            .with_context(|| format!("cannot create {}", path.display()))
    }

    /// Marks a file written through `create_file` as complete.
    pub fn done(&self) {
        (self.tick)();
    }

    /// Writes a file without marking it complete (the caller checks it first, then `done`).
    pub fn write_quiet(&mut self, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut f = self.create_file(rel)?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", self.dir.join(rel).display()))
    }

    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut f = self.create_file(rel)?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", self.dir.join(rel).display()))?;
        self.done();
        Ok(())
    }

    /// Makes everything staged durable, then writes the marker: the commit point. `remove`
    /// names the old vault's files (vault-relative) that the new one does not have.
    pub fn commit(mut self, vault_id: &str, remove: Vec<String>) -> anyhow::Result<()> {
        if !fsutil::sync_filesystem(&self.dir)
            .with_context(|| format!("cannot flush {}", self.dir.display()))?
        {
            // Every staged file, not only those written here: the index writer stages its own.
            for (_, p) in crate::index::walk(&self.dir) {
                fs::File::open(&p)
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("cannot flush {}", p.display()))?;
            }
            for d in folders_of(&self.dir) {
                fsutil::sync_dir(&d).with_context(|| format!("cannot flush {}", d.display()))?;
            }
        }
        let marker = serde_json::to_vec(&Commit {
            format: 1,
            vault_id: vault_id.to_string(),
            remove,
        })?;
        fsutil::write_atomic_in(&self.dir, &self.dir.join(COMMIT), &marker)?;
        self.committed = true;
        (self.tick)();
        Ok(())
    }
}

impl Drop for Staging {
    /// A re-encryption that fails before its commit point (a damaged object, a full disk)
    /// leaves nothing behind; one that is killed is dropped by the next change instead.
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Every folder under `dir`, deepest first, and `dir` itself.
fn folders_of(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .contents_first(true)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    out.dedup();
    out
}

/// Where a staged file goes, in order: objects first, the log, then the small files with the
/// config and the head last (the head commits to everything before it), then the index.
fn rank(rel: &str) -> u8 {
    match rel.split('/').next().unwrap_or_default() {
        "objects" => 0,
        "log" => 1,
        CONFIG => 3,
        crate::log::HEAD => 4,
        "index" | crate::index::INDEX | crate::index::SIGNATURE => 5,
        _ => 2,
    }
}

/// Finishes a committed re-encryption: moves every staged file into place, deletes what the
/// marker says the new vault no longer has, then the staging folder. Needs no key; the caller
/// holds the writers' lock. Idempotent: a kill in the middle is finished by the next call.
/// `tick` runs after each move (the test hook).
pub fn finish(vault: &Path, tick: &dyn Fn()) -> anyhow::Result<()> {
    let dir = staging_dir(vault);
    let marker_path = dir.join(COMMIT);
    let bytes = fsutil::read_limited(&marker_path, MAX_COMMIT)
        .with_context(|| format!("cannot read {}", marker_path.display()))?;
    let marker: Commit = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Integrity(format!(
            "{}: not a re-encryption marker carnet wrote: {e}",
            marker_path.display()
        ))
    })?;
    // A staging folder is only ever this vault's: one copied from another vault is refused.
    let config = [dir.join(CONFIG), vault.join(CONFIG)]
        .iter()
        .find_map(|p| fsutil::read_limited(p, MAX_COMMIT).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| toml::from_str::<crate::config::Config>(&t).ok());
    if config.is_none_or(|c| c.vault_id != marker.vault_id) {
        return Err(Error::Integrity(format!(
            "{} belongs to another vault",
            marker_path.display()
        ))
        .into());
    }
    let mut staged: Vec<(String, PathBuf)> = crate::index::walk(&dir)
        .into_iter()
        .filter(|(rel, _)| rel != COMMIT)
        .collect();
    // Only the vault's own file names move: anything else (the index writer's own temp
    // folder) stays behind and goes with the staging folder.
    staged.retain(|(rel, _)| crate::index::is_vault_path(rel));
    staged.sort_by_key(|(rel, _)| rank(rel));
    let mut touched: Vec<PathBuf> = Vec::new();
    for (rel, from) in &staged {
        let to = vault.join(rel);
        let parent = fsutil::parent_dir(&to).to_path_buf();
        if !parent.is_dir() {
            fsutil::create_private_dir(&parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::rename(from, &to).with_context(|| format!("cannot move {}", to.display()))?;
        if !touched.contains(&parent) {
            touched.push(parent);
        }
        tick();
    }
    for d in &touched {
        fsutil::sync_dir(d).with_context(|| format!("cannot flush {}", d.display()))?;
    }
    for rel in marker
        .remove
        .iter()
        .filter(|r| crate::index::is_vault_path(r))
    {
        let path = vault.join(rel);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(anyhow::Error::from(e).context(format!("cannot remove {rel}")));
            }
            _ => {}
        }
        let parent = fsutil::parent_dir(&path);
        // A fan folder the removal emptied goes too, as after any removal; either way the
        // removal is flushed, so that a power cut cannot bring the old file back after the
        // marker is gone.
        if parent != vault && fsutil::is_empty_dir(parent).unwrap_or(false) {
            let _ = fs::remove_dir(parent);
            let up = fsutil::parent_dir(parent);
            fsutil::sync_dir(up).with_context(|| format!("cannot flush {}", up.display()))?;
        } else {
            fsutil::sync_dir(parent)
                .with_context(|| format!("cannot flush {}", parent.display()))?;
        }
    }
    // Temporary files of commands killed before the re-encryption hold ciphertext for the old
    // keys: under the writers' lock nothing else is being written, so they go now.
    remove_entries(&vault.join(TMP), STAGING);
    // Everything but the marker first, then the marker, then the folder: an empty staging
    // folder without its marker would read as an attempt that never committed.
    remove_entries(&dir, COMMIT);
    fs::remove_file(&marker_path)
        .with_context(|| format!("cannot remove {}", marker_path.display()))?;
    fs::remove_dir(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    fsutil::sync_dir(&vault.join(TMP))
        .with_context(|| format!("cannot flush {}", vault.join(TMP).display()))?;
    Ok(())
}

/// Removes everything in `dir` but the entry named `keep` (best effort: what stays is
/// ciphertext, swept later).
fn remove_entries(dir: &Path, keep: &str) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name() == keep {
            continue;
        }
        let p = e.path();
        let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
    }
}
