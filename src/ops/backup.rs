//! Backing up (`carnet backup`), without the key: one stored zip of the vault's files, or a
//! mirror folder kept up to date. Both are taken under the vault's shared lock so that a
//! concurrent command cannot tear them, and every file is checked against the signed index
//! while it is copied. A mirror's signed index is removed first and written last, so an
//! interrupted mirror never claims a state it does not hold; its copies are made durable with
//! one flush for the whole batch.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::Error;
use crate::fsutil;
use crate::index::{self, FileEntry, Index};
use crate::vault::{self, Vault};
use crate::zipsafe::{self, NewEntry, StoredZipWriter};

/// Where the backup goes.
pub enum Target<'a> {
    /// A zip file; `force` overwrites an existing one.
    File { out: PathBuf, force: bool },
    /// A zip written to a stream (the CLI's standard output).
    Stream(&'a mut dyn Write),
    /// A mirror folder; `check` re-hashes every object already there.
    Mirror { dir: PathBuf, check: bool },
}

/// What a backup copied.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    pub files: usize,
    pub bytes: u64,
    /// Mirror: files written because they were missing or different.
    pub copied: usize,
    /// Mirror: files the vault no longer has.
    pub removed: usize,
}

/// Backs the vault up to `target` as it stands under the shared lock. `progress(done, total)`
/// follows the bytes.
pub fn backup(
    vault: &Vault,
    target: Target<'_>,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Copied> {
    // Shared: writers wait until the copy is complete, other readers do not.
    let _lock = fsutil::Lock::shared(&vault.path(vault::LOCK))?;
    let idx = index::read_signed(&vault.dir, &vault.config.signing_key)?;
    match target {
        Target::File { out, force } => to_file(vault, &idx, Some(&out), None, force, progress),
        Target::Stream(w) => to_file(vault, &idx, None, Some(w), false, progress),
        Target::Mirror { dir, check } => to_mirror(vault, &idx, &dir, check, progress),
    }
}

/// The files to copy, in the order that makes a partial copy least misleading: objects first,
/// then the log, then the metadata that names them.
fn plan(idx: &Index) -> Vec<(&String, &FileEntry)> {
    let rank = |rel: &str| {
        if rel.starts_with("objects/") {
            0
        } else if rel.starts_with("log/") {
            1
        } else if rel == vault::CONFIG {
            // First: a half-made mirror is then recognisably a vault missing its index.
            -1
        } else {
            2
        }
    };
    let mut v: Vec<_> = idx.files.iter().collect();
    v.sort_by_key(|(rel, _)| (rank(rel), (*rel).clone()));
    v
}

fn to_file(
    vault: &Vault,
    idx: &Index,
    out: Option<&Path>,
    stream: Option<&mut dyn Write>,
    force: bool,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Copied> {
    let mut rep = Copied::default();
    let total: u64 = idx
        .files
        .values()
        .fold(0u64, |t, e| t.saturating_add(e.size));
    let write_zip = |w: &mut dyn Write, rep: &mut Copied| -> anyhow::Result<()> {
        let mut zip = StoredZipWriter::new(w);
        let mut names: Vec<String> = plan(idx).into_iter().map(|(r, _)| r.clone()).collect();
        names.push(index::INDEX.into());
        names.push(index::SIGNATURE.into());
        for rel in names {
            let open = || {
                fs::File::open(vault.dir.join(&rel)).with_context(|| format!("cannot read {rel}"))
            };
            // Size and CRC-32 go in the entry's local header, before the data, so that
            // streaming readers (Java, BusyBox unzip, bsdtar from a pipe) can read the
            // backup: a first pass over the (ciphertext) file computes them.
            let (crc32, size) =
                zipsafe::crc32_of(&mut open()?).with_context(|| format!("cannot read {rel}"))?;
            zip.start(&NewEntry {
                name: &rel,
                size,
                crc32,
                mode: 0o600,
                modified: None,
            })?;
            let mut f = open()?;
            let mut done = |k: u64| {
                rep.bytes += k;
                progress(rep.bytes, total);
            };
            match idx.files.get(&rel) {
                Some(want) => {
                    index::copy_verified(&mut f, &mut zip, want, &mut done)
                        .map_err(|e| copy_failed(&rel, e))?;
                }
                // The index itself, signed: copied as it is.
                None => {
                    let n = io::copy(&mut f, &mut zip)
                        .with_context(|| format!("cannot back up {rel}"))?;
                    done(n);
                }
            }
            rep.files += 1;
        }
        zip.finish()?;
        Ok(())
    };
    if let Some(w) = stream {
        write_zip(w, &mut rep)?;
        w.flush()?;
    } else if let Some(out) = out {
        if out.exists() && !force {
            return Err(Error::input(
                format!("{} already exists", out.display()),
                "choose another file, or pass --force",
            )
            .into());
        }
        let tmp = fsutil::private_tempfile(fsutil::parent_dir(out))
            .with_context(|| format!("cannot write in {}", fsutil::parent_dir(out).display()))?;
        let mut w = io::BufWriter::with_capacity(256 * 1024, tmp);
        write_zip(&mut w, &mut rep)?;
        let tmp = w
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write the backup")?;
        fsutil::persist(tmp, out, force)?;
    }
    Ok(rep)
}

/// A backup must hold what its signed index says, or restoring it would fail later: a file that
/// differs means the index is stale (a crash after a change) or the vault is damaged.
fn copy_failed(rel: &str, e: index::CopyError) -> anyhow::Error {
    match e {
        index::CopyError::Read(e) => anyhow::Error::from(e).context(format!("cannot read {rel}")),
        index::CopyError::Write(e) => {
            anyhow::Error::from(e).context(format!("cannot back up {rel}"))
        }
        index::CopyError::Larger | index::CopyError::Differs => Error::Integrity(format!(
            "{rel} does not match the vault's signed index (index out of date after an interrupted \
             command, or the file is damaged): run `carnet verify` with the key, then back up again"
        ))
        .into(),
    }
}

/// Copies `src` to `dest` through a temp file in `tmp_dir`, so a reader never sees half a file,
/// checking it against its index entry when there is one. Without `durable` the copy is only
/// renamed into place: the caller flushes the whole batch at once.
fn copy_atomic(
    src: &Path,
    dest: &Path,
    tmp_dir: &Path,
    want: Option<(&str, &FileEntry)>,
    durable: bool,
) -> anyhow::Result<u64> {
    let mut input =
        fsutil::open_regular(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut tmp = fsutil::private_tempfile(tmp_dir)
        .with_context(|| format!("cannot write in {}", tmp_dir.display()))?;
    let n = match want {
        Some((rel, want)) => index::copy_verified(&mut input, &mut tmp, want, &mut |_| {})
            .map_err(|e| copy_failed(rel, e))?,
        None => io::copy(&mut input, &mut tmp)
            .with_context(|| format!("cannot copy {}", src.display()))?,
    };
    if let Some(p) = dest.parent()
        && !p.is_dir()
    {
        fsutil::create_private_dir(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    if durable {
        fsutil::persist(tmp, dest, true)?;
    } else {
        tmp.persist(dest)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", dest.display()))?;
    }
    Ok(n)
}

/// Refuses a backup file that is a folder, or exists without `force`, before anything is logged.
pub fn check_file_target(out: &Path, force: bool) -> anyhow::Result<()> {
    if out.is_dir() {
        return Err(Error::input(
            format!("{} is a folder", out.display()),
            "give a file name, or use --to DIR for a mirror folder",
        )
        .into());
    }
    if out.exists() && !force {
        return Err(Error::input(
            format!("{} already exists", out.display()),
            "choose another file, or pass --force",
        )
        .into());
    }
    let parent = fsutil::parent_dir(out);
    if !parent.is_dir() {
        return Err(Error::input(
            format!("{} does not exist", parent.display()),
            "create the folder first",
        )
        .into());
    }
    Ok(())
}

/// A mirror goes into an empty folder, or one that already mirrors this vault (possibly
/// interrupted); never into the vault itself or a folder of other files.
pub fn check_mirror_target(vault: &Vault, dir: &Path) -> anyhow::Result<()> {
    if let (Ok(d), Ok(v)) = (fs::canonicalize(dir), fs::canonicalize(&vault.dir))
        && (d.starts_with(&v) || v.starts_with(&d))
    {
        return Err(Error::input(
            format!(
                "{} is the vault itself, or inside it, or holds it",
                dir.display()
            ),
            "mirror to another folder, e.g. on a USB stick",
        )
        .into());
    }
    if !dir.exists() || vault::is_fresh_dir(dir)? {
        return Ok(());
    }
    // A link inside the mirror would send copies (and chmods) somewhere else entirely.
    let link = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .flatten()
        .find(|e| e.file_type().is_symlink());
    if let Some(l) = link {
        return Err(Error::input(
            format!(
                "{} holds a symbolic link ({}): refusing to write through it",
                dir.display(),
                l.path().display()
            ),
            "remove the link, or mirror to an empty folder",
        )
        .into());
    }
    if dir.join(vault::CONFIG).exists() {
        return match Vault::open(dir) {
            Ok(m) if m.config.vault_id == vault.config.vault_id => Ok(()),
            Ok(_) => Err(Error::input(
                format!("{} mirrors another vault", dir.display()),
                "choose an empty folder for this vault's mirror",
            )
            .into()),
            Err(e) => Err(e),
        };
    }
    // Without a config it can only be a first mirror that was interrupted: vault files only.
    let foreign = index::walk(dir).into_iter().find(|(r, _)| {
        !index::is_vault_path(r)
            && !r.starts_with("tmp/")
            && r != vault::LOCK
            && index::system_file(r).is_none()
    });
    if let Some((rel, _)) = foreign {
        return Err(Error::input(
            format!(
                "{} is not empty and is not a mirror of this vault (it holds {rel})",
                dir.display()
            ),
            "choose an empty folder for the mirror",
        )
        .into());
    }
    Ok(())
}

fn to_mirror(
    vault: &Vault,
    idx: &Index,
    dir: &Path,
    check: bool,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Copied> {
    let mut rep = Copied::default();
    let tmp_dir = dir.join(vault::TMP);
    for d in [
        dir.to_path_buf(),
        tmp_dir.clone(),
        dir.join(vault::OBJECTS),
        dir.join(crate::log::DIR),
    ] {
        fsutil::create_private_dir(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    // After a re-encryption (`carnet rekey`, `key rm`) every object keeps its name with a new
    // ciphertext, often of the same size: a mirror whose config is not the vault's has every
    // object hashed rather than trusted by name and size.
    let config = |d: &Path| fsutil::read_limited(&d.join(vault::CONFIG), 1 << 20).ok();
    let check = check || config(dir) != config(&vault.dir);
    // Objects in the mirror changed since the last complete run (its index's time) are hashed
    // again rather than trusted by name and size, so damage in place gets repaired.
    let stamp = fs::metadata(dir.join(index::INDEX))
        .and_then(|m| m.modified())
        .ok();
    // From here until the new index lands, the mirror claims nothing.
    for name in [index::SIGNATURE, index::INDEX] {
        match fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot update {}", dir.display())),
        }
    }
    fsutil::sync_dir(dir)?;
    let total: u64 = idx
        .files
        .values()
        .fold(0u64, |t, e| t.saturating_add(e.size));
    let mut seen = 0u64;
    let mut copied = Vec::new();
    for (rel, want) in plan(idx) {
        let dest = dir.join(rel);
        // Objects are written once and only a re-encryption changes them (see `check`): same
        // name and size means same object. Everything else is small: compare the content.
        let same = match fs::metadata(&dest) {
            Ok(m) if m.len() == want.size && rel.starts_with("objects/") => {
                let touched = check
                    || match (m.modified(), stamp) {
                        (Ok(t), Some(s)) => t > s,
                        // No index to date the mirror (an interrupted update, perhaps of a
                        // re-encryption whose config already landed): nothing is trusted.
                        _ => true,
                    };
                !touched || index::hash_file(&dest).is_ok_and(|h| h == *want)
            }
            Ok(m) if m.len() == want.size => index::hash_file(&dest).is_ok_and(|h| h == *want),
            _ => false,
        };
        if !same {
            copy_atomic(
                &vault.dir.join(rel),
                &dest,
                &tmp_dir,
                Some((rel.as_str(), want)),
                false,
            )?;
            copied.push(dest);
            rep.copied += 1;
        }
        rep.files += 1;
        rep.bytes += want.size;
        seen += want.size;
        progress(seen, total);
    }
    // One flush for the whole batch (a first mirror of 100,000 documents must not wait for
    // 100,000 fsyncs), before the index can claim any of it.
    if !copied.is_empty()
        && !fsutil::sync_filesystem(dir)
            .with_context(|| format!("cannot flush {}", dir.display()))?
    {
        let mut folders = BTreeSet::new();
        for p in &copied {
            fs::File::open(p)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot flush {}", p.display()))?;
            folders.insert(fsutil::parent_dir(p).to_path_buf());
        }
        for f in folders {
            fsutil::sync_dir(&f).with_context(|| format!("cannot flush {}", f.display()))?;
        }
    }
    // Files the vault no longer has (removed documents); what a sync tool keeps there (its
    // `.stfolder` marker, a git history) is not the vault's to remove.
    let keep: BTreeSet<&str> = idx.files.keys().map(String::as_str).collect();
    for (rel, path) in index::walk(dir) {
        if !keep.contains(rel.as_str())
            && !index::is_unindexed(&rel)
            && index::system_file(&rel).is_none()
        {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            rep.removed += 1;
        }
    }
    copy_atomic(
        &vault.dir.join(index::INDEX),
        &dir.join(index::INDEX),
        &tmp_dir,
        None,
        true,
    )?;
    copy_atomic(
        &vault.dir.join(index::SIGNATURE),
        &dir.join(index::SIGNATURE),
        &tmp_dir,
        None,
        true,
    )?;
    Ok(rep)
}
