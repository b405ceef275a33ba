//! Snapshots of folders and byte helpers: what a test compares before and after a command.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One entry of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
}

/// Every path under a folder (relative), with file bytes; empty when the folder is missing.
pub type Snapshot = BTreeMap<PathBuf, Entry>;

pub fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    if fs::symlink_metadata(dir).is_ok() {
        out.insert(PathBuf::new(), Entry::Dir);
        walk(dir, dir, &mut out);
    }
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            out.insert(rel, Entry::Symlink(fs::read_link(&p).unwrap()));
        } else if ft.is_dir() {
            out.insert(rel, Entry::Dir);
            walk(root, &p, out);
        } else {
            out.insert(rel, Entry::File(fs::read(&p).unwrap()));
        }
    }
}

/// Asserts two snapshots are equal, naming the paths that differ (not dumping the bytes).
pub fn assert_same(before: &Snapshot, after: &Snapshot, what: &str) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    for (p, e) in before {
        match after.get(p) {
            None => diffs.push(format!("removed {}", p.display())),
            Some(a) if a != e => diffs.push(format!("changed {}", p.display())),
            _ => {}
        }
    }
    for p in after.keys() {
        if !before.contains_key(p) {
            diffs.push(format!("added {}", p.display()));
        }
    }
    panic!("{what} changed:\n  {}", diffs.join("\n  "));
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures are reproducible.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    // Any seed gives a distinct, non-zero state.
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xd1b5_4a32_d192_ed03;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// All regular files under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, e)| matches!(e, Entry::File(_)))
        .map(|(p, _)| dir.join(p))
        .collect()
}

/// The regular files under `dir`, relative with `/`, with their bytes (symlinks as
/// `-> target`); empty when the folder is missing.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .filter_map(|(p, e)| {
            let p = p.to_str().unwrap().to_string();
            match e {
                Entry::File(b) => Some((p, b)),
                Entry::Symlink(t) => Some((p, format!("-> {}", t.display()).into_bytes())),
                Entry::Dir => None,
            }
        })
        .collect()
}

/// Asserts two `files()` maps are equal, naming the paths that differ (not dumping bytes).
#[track_caller]
pub fn assert_same_files(
    got: &BTreeMap<String, Vec<u8>>,
    want: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    if got == want {
        return;
    }
    let mut diffs = Vec::new();
    for (p, b) in want {
        match got.get(p) {
            None => diffs.push(format!("missing {p}")),
            Some(g) if g != b => diffs.push(format!("changed {p}")),
            _ => {}
        }
    }
    diffs.extend(
        got.keys()
            .filter(|p| !want.contains_key(*p))
            .map(|p| format!("added {p}")),
    );
    panic!("{what}:\n  {}", diffs.join("\n  "));
}

/// Compares two byte strings without dumping megabytes into the failure message.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: got {} bytes, want {}; first difference at offset {first}",
        got.len(),
        want.len()
    );
}

/// Flips the lowest bit of the byte in the middle of a file.
pub fn flip_middle(path: &Path) {
    let mut b = fs::read(path).unwrap();
    assert!(!b.is_empty(), "{} is empty", path.display());
    let i = b.len() / 2;
    b[i] ^= 0x01;
    fs::write(path, b).unwrap();
}

/// Copies a folder tree (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in walkdir::WalkDir::new(from).min_depth(1) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            fs::create_dir_all(&dest).unwrap();
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Replaces the folder `to` by a copy of `from`.
pub fn replace_dir(from: &Path, to: &Path) {
    if to.exists() {
        fs::remove_dir_all(to).unwrap();
    }
    copy_dir(from, to);
}

/// Every path under `dir` (files and folders), relative, for "nothing was written" checks.
pub fn tree(dir: &Path) -> std::collections::BTreeSet<String> {
    snapshot(dir)
        .into_keys()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// The objects (ids) that hold a format-2 vault's metadata shards (and its emergency profile's
/// versions): a count of document objects
/// must leave them out, and only the key tells them apart (on disk they look like any object,
/// by design). Read as `age -d` + a JSON reader would, never with carnet's own code, so a format
/// bug cannot hide itself. None for a vault this key cannot open.
pub fn shard_objects(
    vault: &Path,
    passphrase: Option<&str>,
    identity: Option<&Path>,
) -> Option<std::collections::BTreeSet<String>> {
    use std::io::Read;
    let decrypt = |bytes: &[u8], ids: &[Box<dyn age::Identity + Send + Sync>]| -> Option<Vec<u8>> {
        let d = age::Decryptor::new(bytes).ok()?;
        let mut r = d
            .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .ok()?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).ok()?;
        Some(out)
    };
    let key_text = match (passphrase, identity) {
        (_, Some(path)) => fs::read(path).ok()?,
        (Some(p), None) => {
            let scrypt: Box<dyn age::Identity + Send + Sync> =
                Box::new(age::scrypt::Identity::new(p.to_string().into()));
            decrypt(&fs::read(vault.join("identity.age")).ok()?, &[scrypt])?
        }
        (None, None) => return None,
    };
    let ids = age::IdentityFile::from_buffer(&key_text[..])
        .ok()?
        .into_identities()
        .ok()?;
    let root = decrypt(&fs::read(vault.join("manifest.age")).ok()?, &ids)?;
    let root: serde_json::Value = serde_json::from_slice(&root).ok()?;
    let mut out = std::collections::BTreeSet::new();
    for kind in ["documents", "digests"] {
        if let Some(t) = root["shards"][kind].as_object() {
            out.extend(
                t.values()
                    .filter_map(|r| r["object"].as_str().map(str::to_string)),
            );
        }
    }
    // The emergency profile's versions are sealed objects of the metadata too.
    if let Some(versions) = root["profile"].as_array() {
        out.extend(
            versions
                .iter()
                .filter_map(|r| r["object"].as_str().map(str::to_string)),
        );
    }
    Some(out)
}

/// True for `objects/xx/ID.age` when ID is not in `shards`.
pub fn is_document_object(rel: &str, shards: &std::collections::BTreeSet<String>) -> bool {
    rel.rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".age"))
        .is_some_and(|id| !shards.contains(id))
}
