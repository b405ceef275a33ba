//! `carnet backup` and `carnet restore`: copies of the vault made and checked without the key.
//!
//! A backup file is a stored zip of the vault's files (everything in it is already encrypted),
//! taken under the vault lock so that a concurrent command cannot tear it. A mirror folder is
//! kept up to date by copying only what changed; its signed index is removed first and written
//! last, so an interrupted mirror never claims a state it does not hold. Restore checks every
//! file against the signed index before anything appears at the target.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Seek, Write};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::Ctx;
use super::args::{BackupArgs, RestoreArgs};
use super::ui;
use crate::error::Error;
use crate::fsutil;
use crate::index::{self, FileEntry, Index};
use crate::txn::Op;
use crate::vault::{self, Vault};
use crate::zipsafe::{self, BadZip, Limits, NewEntry, SafeZip, StoredZipWriter};

/// Entries a backup may hold beyond the files its index lists.
const MAX_ENTRIES: usize = 4_000_000;

#[derive(Serialize, Default)]
struct BackupReport {
    output: String,
    files: usize,
    bytes: u64,
    copied: usize,
    removed: usize,
    logged: bool,
    /// `--merge`: the documents imported from the mirror into the vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    merged: Option<Vec<crate::ops::mirror::Merged>>,
}

/// The key is "at hand" when the user gave one without being asked: then the backup is logged.
fn key_at_hand(ctx: &Ctx) -> bool {
    ctx.keys.identity.is_some()
        || ctx.passphrase_file.is_some()
        || std::env::var_os("CARNET_PASSPHRASE").is_some()
}

fn log_action(ctx: &Ctx, vault: &Vault, op: Op) -> anyhow::Result<bool> {
    if !key_at_hand(ctx) {
        return Ok(false);
    }
    let keys = vault.unlock(&ctx.keys)?;
    log_with(ctx, vault, keys, op)
}

fn log_with(ctx: &Ctx, vault: &Vault, keys: crate::keys::Unlocked, op: Op) -> anyhow::Result<bool> {
    super::print_notices(&vault.begin(keys, ctx.now)?.commit(op)?.notices);
    Ok(true)
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

pub fn run(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let target = a
        .output
        .as_ref()
        .map(|p| p.display().to_string())
        .or_else(|| a.to.as_ref().map(|p| p.display().to_string()))
        .unwrap_or_default();
    // Check the target before anything is logged: a refused backup leaves no trace.
    match (&a.output, &a.to) {
        (Some(out), _) => check_file_target(out, a.force, a.json)?,
        (None, Some(dir)) => check_mirror_target(&vault, dir)?,
        (None, None) => {}
    }
    let op = Op::new(crate::domain::Action::Backup).detail("target", target.clone());
    let mut merged = None;
    let logged = match &a.to {
        Some(dir) if a.merge => {
            // The key is needed to read the mirror's documents: asked for if not at hand.
            let keys = vault.unlock(&ctx.keys)?;
            let (docs, notices) = crate::ops::mirror::merge(&vault, &keys, dir, ctx.now)?;
            super::print_notices(&notices);
            merged = Some(docs);
            log_with(ctx, &vault, crate::ops::mirror::dup(&keys), op)?
        }
        Some(dir) if !a.force => {
            // A mirror's own changes stop the update before anything is logged or written.
            let keys = key_at_hand(ctx)
                .then(|| vault.unlock(&ctx.keys))
                .transpose()?;
            crate::ops::mirror::refuse_own_changes(&vault, keys.as_ref(), dir)?;
            match keys {
                Some(k) => log_with(ctx, &vault, k, op)?,
                None => false,
            }
        }
        _ => log_action(ctx, &vault, op)?,
    };
    // Shared: writers wait until the copy is complete, other readers do not.
    let lock = crate::fsutil::Lock::shared(&vault.path(vault::LOCK))?;
    let idx = index::read_signed(&vault.dir, &vault.config.signing_key)?;
    let mut report = match (&a.output, &a.to) {
        (Some(out), _) => to_file(&vault, &idx, out, a.force)?,
        (None, Some(dir)) => to_mirror(&vault, &idx, dir, a.check)?,
        (None, None) => unreachable!("clap requires --output or --to"),
    };
    drop(lock);
    report.output = target;
    report.logged = logged;
    report.merged = merged;
    if a.json {
        return super::print_json(&report);
    }
    if let Some(m) = &report.merged {
        match m.len() {
            0 => eprintln!("Nothing to merge: every document added on the mirror is in the vault"),
            n => eprintln!(
                "Merged {n} document{} from the mirror into the vault",
                if n == 1 { "" } else { "s" }
            ),
        }
        for d in m {
            crate::outln!(
                "merged {}  {}",
                crate::ids::short(&d.id),
                ui::clean(&d.title)
            );
        }
    }
    eprintln!(
        "Backed up {} files ({}){}{}",
        report.files,
        ui::human_size(report.bytes),
        if a.to.is_some() {
            format!(": {} copied, {} removed", report.copied, report.removed)
        } else {
            String::new()
        },
        if logged {
            "; logged"
        } else {
            "; not logged (no key given: see FORMAT.md)"
        }
    );
    Ok(())
}

fn to_file(vault: &Vault, idx: &Index, out: &Path, force: bool) -> anyhow::Result<BackupReport> {
    let mut rep = BackupReport::default();
    let to_stdout = out.as_os_str() == "-";
    let total: u64 = idx.files.values().map(|e| e.size).sum();
    let bar = ui::bytes_bar(total, "Backing up");
    let write_zip = |w: &mut dyn Write, rep: &mut BackupReport| -> anyhow::Result<()> {
        let mut zip = StoredZipWriter::new(w);
        let mut buf = vec![0u8; 256 * 1024];
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
            let mut h = blake3::Hasher::new();
            let mut n = 0u64;
            loop {
                let k = f
                    .read(&mut buf)
                    .with_context(|| format!("cannot read {rel}"))?;
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
                zip.write_all(&buf[..k])
                    .with_context(|| format!("cannot back up {rel}"))?;
                n += k as u64;
                rep.bytes += k as u64;
                bar.set_position(rep.bytes);
            }
            if let Some(want) = idx.files.get(&rel) {
                check_copied(&rel, want, n, &h)?;
            }
            rep.files += 1;
        }
        zip.finish()?;
        Ok(())
    };
    if to_stdout {
        let mut out = io::stdout().lock();
        write_zip(&mut out, &mut rep)?;
        out.flush()?;
    } else {
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
    bar.finish_and_clear();
    Ok(rep)
}

/// A backup must hold what its signed index says, or restoring it would fail later: a file that
/// differs means the index is stale (a crash after a change) or the vault is damaged.
fn check_copied(rel: &str, want: &FileEntry, n: u64, h: &blake3::Hasher) -> anyhow::Result<()> {
    if n != want.size || h.finalize().to_hex().as_str() != want.blake3 {
        return Err(Error::Integrity(format!(
            "{rel} does not match the vault's signed index (index out of date after an interrupted \
             command, or the file is damaged): run `carnet verify` with the key, then back up again"
        ))
        .into());
    }
    Ok(())
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
    let input = fs::File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut tmp = fsutil::private_tempfile(tmp_dir)
        .with_context(|| format!("cannot write in {}", tmp_dir.display()))?;
    let mut h = blake3::Hasher::new();
    let mut reader = io::BufReader::with_capacity(256 * 1024, input);
    let mut n = 0u64;
    loop {
        let buf = reader
            .fill_buf()
            .with_context(|| format!("cannot read {}", src.display()))?;
        if buf.is_empty() {
            break;
        }
        h.update(buf);
        tmp.write_all(buf)
            .with_context(|| format!("cannot copy {}", src.display()))?;
        let k = buf.len();
        n += k as u64;
        reader.consume(k);
    }
    if let Some((rel, want)) = want {
        check_copied(rel, want, n, &h)?;
    }
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

fn check_file_target(out: &Path, force: bool, json: bool) -> anyhow::Result<()> {
    if out.as_os_str() == "-" {
        if json {
            return Err(Error::input(
                "--json and -o - would both write to standard output",
                "write the backup to a file with -o FILE to get the JSON report",
            )
            .into());
        }
        // Checked before the backup is logged: a zip sprayed on a screen is no backup.
        if !force && io::stdout().is_terminal() {
            return Err(Error::input(
                "a backup is binary and standard output is a terminal: it would garble the screen",
                "redirect it (-o - > FILE), write it with -o FILE, or pass --force",
            )
            .into());
        }
        return Ok(());
    }
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
fn check_mirror_target(vault: &Vault, dir: &Path) -> anyhow::Result<()> {
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

fn to_mirror(vault: &Vault, idx: &Index, dir: &Path, check: bool) -> anyhow::Result<BackupReport> {
    let mut rep = BackupReport::default();
    let tmp_dir = dir.join(vault::TMP);
    for d in [
        dir.to_path_buf(),
        tmp_dir.clone(),
        dir.join(vault::OBJECTS),
        dir.join(crate::log::DIR),
    ] {
        fsutil::create_private_dir(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
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
    let total: u64 = idx.files.values().map(|e| e.size).sum();
    let bar = ui::bytes_bar(total, "Mirroring");
    let mut seen = 0u64;
    let mut copied = Vec::new();
    for (rel, want) in plan(idx) {
        let dest = dir.join(rel);
        // Objects are written once and never change: same name and size means same object.
        // Everything else is small: compare the content.
        let same = match fs::metadata(&dest) {
            Ok(m) if m.len() == want.size && rel.starts_with("objects/") => {
                let touched = check
                    || match (m.modified(), stamp) {
                        (Ok(t), Some(s)) => t > s,
                        _ => false,
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
        bar.set_position(seen);
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
    bar.finish_and_clear();
    Ok(rep)
}

#[derive(Serialize)]
struct RestoreReport {
    vault: String,
    files: usize,
    bytes: u64,
    logged: bool,
}

pub fn restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<()> {
    let target = &ctx.vault_dir;
    if target.exists() && !vault::is_fresh_dir(target)? {
        return Err(Error::input(
            format!("{} is not empty", target.display()),
            "restore into a new or empty folder (--vault DIR)",
        )
        .into());
    }
    let parent = fsutil::parent_dir(target).to_path_buf();
    sweep_stale_staging(&parent);
    let created = fsutil::create_missing(&parent)?;
    let result = restore_staged(ctx, &a, target, &parent);
    if result.is_err() {
        fsutil::remove_created(&created);
    }
    result
}

/// Removes the staging folders that killed restores left in `parent` (a copy of a whole vault
/// each). Only those untouched for an hour: another restore into the same parent may be
/// filling one right now.
fn sweep_stale_staging(parent: &Path) {
    let Ok(rd) = fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let staging = e
            .file_name()
            .to_string_lossy()
            .starts_with(".carnet-restore-")
            && e.file_type().is_ok_and(|t| t.is_dir());
        if staging && fsutil::untouched_for(&e.path(), std::time::Duration::from_secs(3600)) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn restore_staged(ctx: &Ctx, a: &RestoreArgs, target: &Path, parent: &Path) -> anyhow::Result<()> {
    let staging = tempfile::Builder::new()
        .prefix(".carnet-restore-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    // Whatever stands at carnet.toml (even a link or a FIFO) makes it a mirror to check.
    if a.source.is_dir() && fs::symlink_metadata(a.source.join(vault::CONFIG)).is_err() {
        return Err(Error::input(
            format!(
                "{} is not a carnet mirror (it has no {})",
                a.source.display(),
                vault::CONFIG
            ),
            "give the mirror folder made by `carnet backup --to`, or a backup file",
        )
        .into());
    }
    if !a.source.exists() {
        return Err(Error::input(
            format!("{} does not exist", a.source.display()),
            "check the path",
        )
        .into());
    }
    let (files, bytes) = if a.source.is_dir() {
        restore_from_dir(&a.source, staging.path())?
    } else {
        let f = fs::File::open(&a.source)
            .with_context(|| format!("cannot read {}", a.source.display()))?;
        restore_from_zip(BufReader::new(f), staging.path())?
    };
    for d in [vault::TMP, vault::OBJECTS, crate::log::DIR] {
        fsutil::create_private_dir(&staging.path().join(d))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o700))?;
    }
    if target.exists() {
        fs::remove_dir_all(target)
            .with_context(|| format!("cannot replace {}", target.display()))?;
    }
    let kept = staging.keep();
    fs::rename(&kept, target)
        .with_context(|| format!("cannot move the restored vault to {}", target.display()))?;
    fsutil::sync_dir(parent)?;
    let vault = Vault::open(target)?;
    let logged = log_action(
        ctx,
        &vault,
        Op::new(crate::domain::Action::Restore).detail("source", a.source.display().to_string()),
    )?;
    if a.json {
        return super::print_json(&RestoreReport {
            vault: target.display().to_string(),
            files,
            bytes,
            logged,
        });
    }
    eprintln!(
        "Restored {files} files ({}) into {}. Check it with `carnet verify --deep`.",
        ui::human_size(bytes),
        target.display()
    );
    Ok(())
}

/// Reads the config and signed index out of a backup's own bytes, before trusting anything.
fn signed_index_from(config: &str, index_json: &str, signature: &str) -> anyhow::Result<Index> {
    let cfg: vault::Config = toml::from_str(config).map_err(|e| {
        Error::BadBackup(format!(
            "the backup's {} is not valid: {}",
            vault::CONFIG,
            e.message()
        ))
    })?;
    let key = crate::sign::decode_public(&cfg.signing_key)
        .map_err(|e| Error::BadBackup(format!("the backup's signing key is not valid: {e}")))?;
    crate::sign::verify(&key, index_json.as_bytes(), signature)
        .map_err(|e| Error::BadBackup(format!("the backup's index does not verify: {e}")))?;
    let idx: Index = serde_json::from_str(index_json)
        .map_err(|e| Error::BadBackup(format!("the backup's index is unreadable: {e}")))?;
    if idx.vault_id != cfg.vault_id {
        return Err(Error::BadBackup("the backup's index belongs to another vault".into()).into());
    }
    Ok(idx)
}

fn read_zip_text<R: Read + Seek>(
    z: &mut SafeZip<R>,
    name: &str,
    limit: u64,
) -> anyhow::Result<String> {
    let Some(e) = z.get(name) else {
        return Err(
            Error::BadBackup(format!("the backup has no {name}: not a carnet backup")).into(),
        );
    };
    if e.size > limit {
        return Err(Error::BadBackup(format!("the backup's {name} is too large")).into());
    }
    z.read_text(name, limit)
        .map_err(|e| Error::BadBackup(format!("cannot read {name} from the backup: {e}")).into())
}

/// Copies from `r`, at most `want.size` bytes, hashing; fails unless size and BLAKE3 match.
fn copy_checked(r: &mut dyn Read, dest: &Path, want: &FileEntry, rel: &str) -> anyhow::Result<u64> {
    if let Some(p) = dest.parent() {
        fsutil::create_private_dir(p)?;
    }
    let mut out = fsutil::create_new_private(dest)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    let mut limited = r.take(want.size + 1);
    loop {
        let k = limited
            .read(&mut buf)
            .map_err(|e| Error::BadBackup(format!("{rel}: cannot read it from the backup: {e}")))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        if n > want.size {
            return Err(Error::BadBackup(format!(
                "{rel} is larger in the backup than its index says"
            ))
            .into());
        }
        h.update(&buf[..k]);
        out.write_all(&buf[..k])?;
    }
    if n != want.size || h.finalize().to_hex().as_str() != want.blake3 {
        return Err(Error::BadBackup(format!(
            "{rel} in the backup does not match its signed index (damaged or altered)"
        ))
        .into());
    }
    out.sync_all()?;
    Ok(n)
}

/// Puts the checked index and its signature beside the restored files, private like them.
fn write_index_pair(staging: &Path, index_json: &str, signature: &str) -> anyhow::Result<()> {
    for (name, text) in [(index::INDEX, index_json), (index::SIGNATURE, signature)] {
        let mut f = fsutil::create_new_private(&staging.join(name))?;
        f.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// Opens a backup zip through the one checked reader: names, kinds, duplicates, overlaps and
/// local headers are refused before anything is read, and every entry must be a vault file.
fn open_backup_zip<R: Read + Seek>(r: R) -> anyhow::Result<SafeZip<R>> {
    let limits = Limits {
        max_entries: MAX_ENTRIES,
        max_trailing: 0,
    };
    let z = SafeZip::open(r, &limits).map_err(|e| match e {
        BadZip::TooManyEntries { count, .. } => Error::BadBackup(format!(
            "the backup has {count} entries, more than a vault can"
        )),
        BadZip::Duplicate => {
            Error::BadBackup("the backup names a file twice (hostile or damaged)".into())
        }
        BadZip::BadName { name, .. } => Error::BadBackup(format!(
            "the backup holds {name:?}, which is not a vault file (hostile or foreign)"
        )),
        BadZip::Unreadable(m) => Error::BadBackup(format!(
            "not a readable backup (truncated or damaged?): {m}"
        )),
        e => Error::BadBackup(e.to_string()),
    })?;
    if let Some(e) = z.entries().iter().find(|e| !index::is_vault_path(&e.name)) {
        return Err(Error::BadBackup(format!(
            "the backup holds {:?}, which is not a vault file (hostile or foreign)",
            e.name
        ))
        .into());
    }
    Ok(z)
}

/// Adds a format-2 index's parts, read from the backup itself and checked against the signed
/// top, so that the index names every file of the backup.
fn complete_from_zip<R: Read + Seek>(
    z: &mut crate::zipsafe::SafeZip<R>,
    idx: &mut Index,
) -> anyhow::Result<()> {
    index::complete(idx, |rel, size| {
        let f = z
            .reader(rel)
            .map_err(|_| format!("{rel} is missing from the backup (truncated?)"))?;
        let mut bytes = Vec::new();
        f.take(size + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {rel} from the backup: {e}"))?;
        Ok(bytes)
    })
    .map_err(|e| Error::BadBackup(format!("the backup's index: {e}")).into())
}

fn restore_from_zip<R: Read + Seek>(r: R, staging: &Path) -> anyhow::Result<(usize, u64)> {
    let mut z = open_backup_zip(r)?;
    let names: BTreeSet<String> = z.entries().iter().map(|e| e.name.clone()).collect();
    let config = read_zip_text(&mut z, vault::CONFIG, 1 << 20)?;
    let index_json = read_zip_text(&mut z, index::INDEX, 512 << 20)?;
    let signature = read_zip_text(&mut z, index::SIGNATURE, 4096)?;
    let mut idx = signed_index_from(&config, &index_json, &signature)?;
    complete_from_zip(&mut z, &mut idx)?;
    for name in &names {
        if !idx.files.contains_key(name) && name != index::INDEX && name != index::SIGNATURE {
            return Err(Error::BadBackup(format!(
                "the backup holds {name}, which its signed index does not list"
            ))
            .into());
        }
    }
    let mut bytes = 0;
    for (rel, want) in &idx.files {
        if z.get(rel).is_none() {
            return Err(
                Error::BadBackup(format!("{rel} is missing from the backup (truncated?)")).into(),
            );
        }
        let mut f = z
            .reader(rel)
            .map_err(|e| Error::BadBackup(format!("{rel}: {e}")))?;
        bytes += copy_checked(&mut f, &staging.join(rel), want, rel)?;
    }
    write_index_pair(staging, &index_json, &signature)?;
    Ok((idx.files.len() + 2, bytes))
}

/// Reads a small text file of a mirror, refusing anything larger than an index can be (a link
/// to /dev/zero must not fill memory).
fn read_bounded(path: &Path) -> io::Result<String> {
    let f = fsutil::open_regular(path)?;
    let mut s = String::new();
    f.take(512 << 20).read_to_string(&mut s)?;
    Ok(s)
}

fn restore_from_dir(src: &Path, staging: &Path) -> anyhow::Result<(usize, u64)> {
    let read = |name: &str| {
        read_bounded(&src.join(name))
            .map_err(|e| Error::BadBackup(format!("{}: {e}", src.join(name).display())))
    };
    let config = read(vault::CONFIG)?;
    let index_json = read(index::INDEX)?;
    let signature = read(index::SIGNATURE)?;
    let mut idx = signed_index_from(&config, &index_json, &signature)?;
    index::complete(&mut idx, |rel, size| {
        fsutil::read_limited(&src.join(rel), size).map_err(|e| format!("{rel}: {e}"))
    })
    .map_err(|e| Error::BadBackup(format!("{}: {e}", src.display())))?;
    // Only the files the index lists are copied: what a sync tool added stays behind.
    for (rel, _) in index::walk(src) {
        if !idx.files.contains_key(&rel)
            && !index::is_unindexed(&rel)
            && index::system_file(&rel).is_none()
        {
            return Err(Error::BadBackup(format!(
                "{rel} in {} is not in its signed index",
                src.display()
            ))
            .into());
        }
    }
    let mut bytes = 0;
    for (rel, want) in &idx.files {
        if !index::is_vault_path(rel) {
            return Err(Error::BadBackup(format!(
                "the index lists {rel:?}, which is not a vault file"
            ))
            .into());
        }
        let mut f = fsutil::open_regular(&src.join(rel))
            .map_err(|e| Error::BadBackup(format!("{rel}: {e}")))?;
        bytes += copy_checked(&mut f, &staging.join(rel), want, rel)?;
    }
    write_index_pair(staging, &index_json, &signature)?;
    Ok((idx.files.len() + 2, bytes))
}

/// `verify --offline FILE.zip`: checks a backup file in place, without the key and without
/// restoring it (like `restic check`): its signed index, then every listed entry's size and
/// BLAKE3, read through the checked zip reader. Nothing is written.
pub fn verify_zip(
    path: &Path,
    expect: Option<&str>,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<crate::verify::Report> {
    use crate::verify::{Problem, Report};
    let mut report = Report::default();
    let problem = |report: &mut Report, path: &str, message: String| {
        report.problems.push(Problem {
            path: path.to_string(),
            message,
        })
    };
    let file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let shown = path.display().to_string();
    // A backup that cannot be opened, or whose index does not verify, is one problem: the
    // backup itself; its entries cannot be judged without a trusted index.
    let opened = (|| -> anyhow::Result<_> {
        let mut z = open_backup_zip(BufReader::new(file))?;
        let config = read_zip_text(&mut z, vault::CONFIG, 1 << 20)?;
        let index_json = read_zip_text(&mut z, index::INDEX, 512 << 20)?;
        let signature = read_zip_text(&mut z, index::SIGNATURE, 4096)?;
        let cfg: vault::Config = toml::from_str(&config).map_err(|e| {
            Error::BadBackup(format!(
                "its {} is not valid: {}",
                vault::CONFIG,
                e.message()
            ))
        })?;
        let fp = crate::sign::decode_public(&cfg.signing_key)
            .map(|k| crate::keyring::fingerprint(&k))
            .map_err(|e| Error::BadBackup(format!("its signing key is not valid: {e}")))?;
        let mut idx = signed_index_from(&config, &index_json, &signature)?;
        complete_from_zip(&mut z, &mut idx)?;
        Ok((z, idx, fp))
    })();
    let (mut z, idx, fp) = match opened {
        Ok(x) => x,
        Err(e) => match e.downcast_ref::<Error>() {
            Some(Error::BadBackup(msg)) => {
                problem(&mut report, &shown, msg.clone());
                return Ok(report);
            }
            _ => return Err(e),
        },
    };
    if let Some(want) = expect.map(crate::keyring::parse_fingerprint).transpose()?
        && want != fp
    {
        let (message, hint) = crate::verify::wrong_signer(&fp, &want);
        problem(&mut report, vault::CONFIG, message);
        report.hint = Some(hint);
        return Ok(report);
    }
    let names: Vec<String> = z.entries().iter().map(|e| e.name.clone()).collect();
    for name in names {
        if !idx.files.contains_key(&name) && name != index::INDEX && name != index::SIGNATURE {
            problem(
                &mut report,
                &name,
                "unexpected file: not in the signed index".into(),
            );
        }
    }
    let total: u64 = idx.files.values().map(|e| e.size).sum();
    let mut done = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    for (rel, want) in &idx.files {
        if z.get(rel).is_none() {
            problem(&mut report, rel, "missing".into());
            continue;
        }
        let mut h = blake3::Hasher::new();
        let mut n = 0u64;
        let read = (|| -> io::Result<()> {
            let mut r = z.reader(rel).map_err(io::Error::other)?;
            loop {
                let k = match r.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                h.update(&buf[..k]);
                n += k as u64;
                progress(done + n, total);
            }
        })();
        done += want.size;
        let msg = match read {
            Err(e) => Some(format!("corrupted: {e}")),
            Ok(()) if n != want.size => {
                Some(format!("corrupted: {n} bytes, {} expected", want.size))
            }
            Ok(()) if h.finalize().to_hex().as_str() != want.blake3 => {
                Some("corrupted: its content changed".to_string())
            }
            Ok(()) => None,
        };
        if let Some(m) = msg {
            problem(&mut report, rel, m);
        }
    }
    report.objects_checked = idx.files.len();
    // Format 2 counts documents in the signed index; format 1 had one object per document.
    report.documents = idx.documents.unwrap_or_else(|| {
        idx.files
            .keys()
            .filter(|r| r.starts_with("objects/"))
            .count()
    });
    report.log_entries = idx.log_seq;
    report.ok = report.problems.is_empty();
    Ok(report)
}
