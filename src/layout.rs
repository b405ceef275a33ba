//! Where things live in a vault folder: the file and folder names FORMAT.md gives, the paths
//! built from them, and `Store`, the view of a vault folder that the metadata and index code
//! need (its place and its config), so that they do not depend on `vault`.

use std::path::{Path, PathBuf};

use crate::config::Config;

pub const CONFIG: &str = "carnet.toml";
pub const IDENTITY: &str = "identity.age";
pub const MANIFEST: &str = "manifest.age";
pub const KEYS: &str = "keys.age";
pub const OBJECTS: &str = "objects";
pub const TMP: &str = "tmp";
pub const LOCK: &str = "lock";
/// `carnet.toml`, renamed while `carnet destroy` deletes the vault.
pub const DESTROYING: &str = "carnet.toml.destroying";

/// Where an object lives: fanned out by its first two characters, like git, so that no folder
/// grows to hundreds of thousands of entries.
pub fn object_path(dir: &Path, object: &str) -> PathBuf {
    dir.join(OBJECTS)
        .join(&object[..2.min(object.len())])
        .join(format!("{object}.age"))
}

/// The staging folder, made again when missing: git and sync tools drop empty folders, and
/// every write stages its files here.
pub fn tmp_dir(dir: &Path) -> PathBuf {
    let tmp = dir.join(TMP);
    crate::fsutil::ensure_dir(&tmp);
    tmp
}

/// A vault folder as seen by the code that reads and writes its metadata and index. `Sync`:
/// whole-vault reads decrypt shards on two threads.
pub trait Store: Sync {
    fn dir(&self) -> &Path;
    fn config(&self) -> &Config;

    fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    fn object_path(&self, object: &str) -> PathBuf {
        object_path(self.dir(), object)
    }

    fn tmp_dir(&self) -> PathBuf {
        tmp_dir(self.dir())
    }

    /// Replaces a derived file (the signed index) atomically but without fsync: it is not part
    /// of the commit, and a crash that loses it leaves a stale index the next write rebuilds.
    fn write_derived(&self, dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        crate::fsutil::replace_in(&self.tmp_dir(), dest, bytes)
    }
}
