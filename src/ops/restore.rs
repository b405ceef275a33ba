//! Restoring (`carnet restore`) from a backup file or a mirror folder, without the key: every
//! file is checked against the backup's own signed index, in a staging folder beside the
//! target, before the vault appears; a refused restore leaves nothing behind. The same reader
//! checks a backup file in place (`verify --offline FILE.zip`).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::Path;

use anyhow::Context;

use crate::error::Error;
use crate::fsutil;
use crate::index::{self, FileEntry, Index};
use crate::vault;
use crate::zipsafe::{BadZip, Limits, SafeZip};

/// What a restore brought back.
#[derive(Debug, Clone)]
pub struct Restored {
    pub files: usize,
    pub bytes: u64,
}

/// Restores the backup at `source` (a zip file or a mirror folder) into `target`, which must be
/// missing or empty. The vault appears at `target` only once every file checked.
pub fn restore(source: &Path, target: &Path) -> anyhow::Result<Restored> {
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
    let result = restore_staged(source, target, &parent);
    if result.is_err() {
        fsutil::remove_created(&created);
    }
    result
}

fn restore_staged(source: &Path, target: &Path, parent: &Path) -> anyhow::Result<Restored> {
    let staging = crate::fsutil::private_tempdir(parent, ".carnet-restore-")
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    // Whatever stands at carnet.toml (even a link or a FIFO) makes it a mirror to check.
    if source.is_dir() && fs::symlink_metadata(source.join(vault::CONFIG)).is_err() {
        return Err(Error::input(
            format!(
                "{} is not a carnet mirror (it has no {})",
                source.display(),
                vault::CONFIG
            ),
            "give the mirror folder made by `carnet backup --to`, or a backup file",
        )
        .into());
    }
    if !source.exists() {
        return Err(Error::input(
            format!("{} does not exist", source.display()),
            "check the path",
        )
        .into());
    }
    let (files, bytes) = if source.is_dir() {
        restore_from_dir(source, staging.path())?
    } else {
        let f =
            fs::File::open(source).with_context(|| format!("cannot read {}", source.display()))?;
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
    Ok(Restored { files, bytes })
}

/// Entries a backup may hold beyond the files its index lists.
const MAX_ENTRIES: usize = 4_000_000;

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
    let n = index::copy_verified(r, &mut out, want, &mut |_| {}).map_err(|e| match e {
        index::CopyError::Read(e) => {
            Error::BadBackup(format!("{rel}: cannot read it from the backup: {e}")).into()
        }
        index::CopyError::Write(e) => {
            anyhow::Error::from(e).context(format!("cannot write {}", dest.display()))
        }
        index::CopyError::Larger => anyhow::Error::from(Error::BadBackup(format!(
            "{rel} is larger in the backup than its index says"
        ))),
        index::CopyError::Differs => anyhow::Error::from(Error::BadBackup(format!(
            "{rel} in the backup does not match its signed index (damaged or altered)"
        ))),
    })?;
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
        f.take(size.saturating_add(1))
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
    let total: u64 = idx
        .files
        .values()
        .fold(0u64, |t, e| t.saturating_add(e.size));
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
