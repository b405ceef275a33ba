//! Durable file-system primitives: atomic replace, private permissions, the writer lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Creates `dir` (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir)?;
    // Tighten a folder that already existed (a umask-made 0755). File systems without Unix
    // permissions (a FAT-formatted USB stick) refuse chmod; the vault must still work there,
    // and its content is encrypted anyway.
    #[cfg(unix)]
    match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
            ) => {}
        r => r?,
    }
    Ok(())
}

/// Makes `dir` again (0700, not its parents) when it is missing. Best effort: an error here
/// (a read-only stick) shows up, with its path, at the write that needed the folder.
pub fn ensure_dir(dir: &Path) {
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    b.mode(0o700);
    let _ = b.create(dir);
}

/// Opens a new file that only the owner can read, failing if it exists.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path)
}

/// A temporary file in `dir`, created 0600, removed on drop unless persisted.
pub fn private_tempfile(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".tmp-");
    #[cfg(unix)]
    b.permissions(fs::Permissions::from_mode(0o600));
    b.tempfile_in(dir)
}

/// A staging folder in `dir`, `0700` like every folder carnet makes (not the umask's `0755`),
/// removed when dropped.
pub fn private_tempdir(dir: &Path, prefix: &str) -> io::Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    #[cfg(unix)]
    b.permissions(fs::Permissions::from_mode(0o700));
    b.tempdir_in(dir)
}

/// Flushes a directory entry so a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Moves a finished temp file to `dest` durably: fsync the data, rename, fsync the folder.
/// With `overwrite` false an existing `dest` is an error and is left untouched.
pub fn persist(tmp: tempfile::NamedTempFile, dest: &Path, overwrite: bool) -> anyhow::Result<()> {
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot flush {}", tmp.path().display()))?;
    if overwrite {
        tmp.persist(dest)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", dest.display()))?;
    } else {
        tmp.persist_noclobber(dest)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", dest.display()))?;
    }
    let parent = parent_dir(dest);
    sync_dir(parent).with_context(|| format!("cannot flush {}", parent.display()))?;
    Ok(())
}

/// The folder holding `path`; `.` for a bare file name (whose `parent()` is empty).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether a file created at `path` would be inside `dir` (both resolved as far as they exist):
/// a key must never be written into the vault it opens.
pub fn would_be_inside(path: &Path, dir: &Path) -> bool {
    match (fs::canonicalize(parent_dir(path)), fs::canonicalize(dir)) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}

/// Replaces `dest` with `bytes` atomically: readers see the old file or the new one, never half.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_in(parent_dir(dest), dest, bytes)
}

/// Like `write_atomic`, with the temp file in `dir` (same file system as `dest`): a vault keeps
/// its temp files in `tmp/`, so a crash mid-write leaves nothing among the files it checks.
pub fn write_atomic_in(dir: &Path, dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp =
        private_tempfile(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    persist(tmp, dest, true)
}

/// Makes every file and folder entry written so far on `path`'s file system durable, with one
/// `syncfs` on Linux. Returns false where that is not available, so the caller syncs file by file.
pub fn sync_filesystem(path: &Path) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        let f = File::open(path)?;
        rustix::fs::syncfs(&f)?;
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Ok(false)
    }
}

/// Renames a finished temp file to `dest` (never over an existing file), without flushing:
/// the caller makes the batch durable at once.
pub fn rename_new(tmp: tempfile::TempPath, dest: &Path) -> anyhow::Result<()> {
    tmp.persist_noclobber(dest)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(())
}

/// Replaces `dest` atomically (readers never see half a file) without waiting for the disk:
/// for derived files that the next write rebuilds anyway if a crash loses them.
pub fn replace_in(dir: &Path, dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp =
        private_tempfile(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist(dest)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(())
}

/// An exclusive lock on the vault held until dropped; the OS releases it if the process dies,
/// so a crash never leaves a stale lock behind.
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

/// Who is told that a command waits for the vault's lock (another carnet holds it: a long
/// `rekey`, a backup): set once by the CLI, which decides whether to say so. The library prints
/// nothing itself.
static ON_WAIT: std::sync::OnceLock<Box<WaitNotice>> = std::sync::OnceLock::new();

type WaitNotice = dyn Fn(&Path) + Send + Sync;

/// Sets what is done when a lock is busy, before waiting for it (the first call wins).
pub fn on_lock_wait(f: impl Fn(&Path) + Send + Sync + 'static) {
    let _ = ON_WAIT.set(Box::new(f));
}

/// Takes the lock on `file`, telling `ON_WAIT` first when another process holds it.
fn lock_or_wait(file: &File, path: &Path, shared: bool) -> io::Result<()> {
    let tried = if shared {
        file.try_lock_shared()
    } else {
        file.try_lock()
    };
    match tried {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => {
            if let Some(f) = ON_WAIT.get() {
                f(path);
            }
            if shared {
                file.lock_shared()
            } else {
                file.lock()
            }
        }
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

impl Lock {
    pub fn acquire(path: &Path) -> anyhow::Result<Lock> {
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        o.mode(0o600);
        let file = o
            .open(path)
            .with_context(|| format!("cannot open the vault lock {}", path.display()))?;
        // Blocking is right here: writers hold the lock for milliseconds (manifest swap only),
        // so a second `carnet add` simply waits its turn.
        lock_or_wait(&file, path, false)
            .with_context(|| format!("cannot lock the vault ({})", path.display()))?;
        Ok(Lock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// A shared lock for readers that need a still picture of the whole vault (keyless checks,
    /// backups): writers wait, other readers do not. `None` when the lock file cannot be opened
    /// for writing, as on a read-only stick, where no writer can run either.
    pub fn shared(path: &Path) -> anyhow::Result<Option<Lock>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::PermissionDenied
                        | io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot open the vault lock {}", path.display()));
            }
        };
        lock_or_wait(&file, path, true)
            .with_context(|| format!("cannot lock the vault ({})", path.display()))?;
        Ok(Some(Lock {
            _file: file,
            path: path.to_path_buf(),
        }))
    }
}

/// Creates the missing folders down to `dir`, returning those it made (shallowest first), so
/// that a refused operation can take them back with `remove_created`.
pub fn create_missing(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut p = dir.to_path_buf();
    while !p.as_os_str().is_empty() && !p.exists() {
        missing.push(p.clone());
        match p.parent() {
            Some(q) => p = q.to_path_buf(),
            None => break,
        }
    }
    missing.reverse();
    for m in &missing {
        let mut b = fs::DirBuilder::new();
        #[cfg(unix)]
        b.mode(0o700);
        b.create(m)
            .with_context(|| format!("cannot create {}", m.display()))?;
    }
    Ok(missing)
}

/// Removes folders made by `create_missing`, deepest first (only if still empty).
pub fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

/// Reads a whole file that should be small, refusing one larger than `limit` (an error of
/// kind `InvalidData`) instead of filling memory with whatever was put in its place.
/// Vault files are regular files: a link or a FIFO in one's place is refused, never followed.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let f = open_regular(path)?;
    let mut bytes = Vec::new();
    f.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Opens `path` for reading only if it is a regular file, and never through a link: a FIFO
/// put in a file's place would block the reader forever, and a link would copy whatever file
/// it points to. The kind is checked before opening (without following a link), the open
/// itself refuses a link and does not wait on a FIFO, and the handle is checked again (the
/// name could be swapped in between).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let not_regular = |t: fs::FileType| {
        let kind = if t.is_symlink() {
            "a symbolic link"
        } else if t.is_dir() {
            "a folder"
        } else {
            "a special file (FIFO, socket or device)"
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{kind}, not a regular file"),
        )
    };
    let before = fs::symlink_metadata(path)?;
    if !before.is_file() {
        return Err(not_regular(before.file_type()));
    }
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(target_os = "linux")]
    o.custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32);
    let f = o.open(path)?;
    let after = f.metadata()?;
    if !after.is_file() {
        return Err(not_regular(after.file_type()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (before.dev(), before.ino()) != (after.dev(), after.ino()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "replaced while being opened",
            ));
        }
    }
    Ok(f)
}

/// True when nothing under `path` (itself included, links not followed) was modified within
/// `age`: a folder a live command is still writing into always has something fresh.
pub fn untouched_for(path: &Path, age: std::time::Duration) -> bool {
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .all(|e| {
            e.ok()
                .and_then(|e| e.metadata().ok())
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed > age)
        })
}

/// True when `dir` does not exist or has no entries.
pub fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}
