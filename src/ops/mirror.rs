//! A mirror's own changes: before `backup --to DIR` makes the mirror a copy of the vault, find
//! what the mirror holds that the vault does not (a document added on the stick at the
//! doctor's), so that the update refuses instead of deleting it; and `--merge`, which imports
//! those documents into the vault first.
//!
//! The rule: the update is safe when the vault's log extends the mirror's. Logs are
//! hash-chained and append-only (a segment only grows; full ones never change), so:
//! - with the key, exactly: every entry of the mirror's log must be in the vault's log (same
//!   sequence number, same hash); the mirror's entries that are not are its own changes, and the
//!   documents its own `add` entries added (and the vault does not hold, by plaintext SHA-256)
//!   are the ones an update would delete;
//! - without the key, from the two signed indexes: the mirror is ahead when its `log_seq` is
//!   greater; it has diverged when a log segment it has finished (not its last) differs from the
//!   vault's, when its last segment differs at the same `log_seq`, or when the vault's copy of
//!   that segment is smaller (it can only have grown). A mirror that changed on its own and fell
//!   behind within the same last segment is only told apart with the key.
//!
//! A mirror without a valid signed index (a first or interrupted update, which removes the index
//! first) claims nothing and is completed as before.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::domain::Action;
use crate::error::Error;
use crate::fsutil;
use crate::index::{self, Index};
use crate::keys::Unlocked;
use crate::log::{self, Entry};
use crate::manifest::Document;
use crate::txn::{Notice, Op};
use crate::vault::{self, Vault};

/// How many names an error lists before "and N more".
const SHOWN: usize = 5;

/// A copy of the identities, for the library calls that take them by value.
pub fn dup(keys: &Unlocked) -> Unlocked {
    Unlocked {
        identities: keys.identities.clone(),
        actor: keys.actor.clone(),
        slot: keys.slot.clone(),
        passphrase: keys.passphrase.as_ref().map(|p| {
            age::secrecy::SecretString::from(
                age::secrecy::ExposeSecret::expose_secret(p).to_owned(),
            )
        }),
        sealed: keys.sealed.clone(),
        spare: keys.spare.clone(),
        from_session: keys.from_session,
    }
}

/// Refuses (exit 1) when updating the mirror `dir` would lose changes made on it, naming the
/// documents (with the key) or the object files (without) that would be deleted.
pub fn refuse_own_changes(
    vault: &Vault,
    keys: Option<&Unlocked>,
    dir: &Path,
) -> anyhow::Result<()> {
    if !dir.join(vault::CONFIG).exists() {
        return Ok(());
    }
    // The vault's index and log are read under the shared lock: a concurrent commit rewrites
    // the index parts before their top, and reading in between would look like damage.
    let _shared = fsutil::Lock::shared(&vault.path(vault::LOCK))?;
    let Some(theirs) = signed_index(vault, dir) else {
        return Ok(());
    };
    let ours = index::read_signed(&vault.dir, &vault.config.signing_key)?;
    // With the key the logs themselves decide; a mirror too damaged to read that way falls
    // back to its signed index (and is then repaired by the update, as before).
    let keyed = keys.and_then(|k| keyed_loss(vault, k, dir).ok());
    if rekeyed_since(vault, dir) {
        return Err(Error::input(
            format!(
                "the vault was re-encrypted (`carnet rekey` or `carnet key rm`) since the mirror {} was made: its files are under the old keys",
                dir.display()
            ),
            format!(
                "replace it with --force (it then opens with the new keys only): carnet backup --to {} --force",
                dir.display()
            ),
        )
        .into());
    }
    let what = match keyed {
        Some(None) => return Ok(()),
        Some(Some(loss)) => loss.describe(),
        None => {
            let Some(why) = log_moved(dir, &ours, &theirs).or_else(|| diverged(&ours, &theirs))
            else {
                return Ok(());
            };
            // The objects on the mirror's disk, not only those its index lists: a command
            // run there after its index was written added some the index does not name.
            let files: Vec<String> = index::walk(dir)
                .into_iter()
                .map(|(rel, _)| rel)
                .filter(|r| r.starts_with("objects/") && !ours.files.contains_key(r))
                .collect();
            if files.is_empty() {
                format!("{why} (no object would be lost, but its log entries would)")
            } else {
                format!(
                    "{why}: updating it would delete {} object file{} the vault does not have{}",
                    files.len(),
                    plural(files.len()),
                    listed(files.iter().cloned())
                )
            }
        }
    };
    Err(Error::input(
        format!(
            "the mirror {} has changes of its own: {what}",
            dir.display()
        ),
        format!(
            "bring them into the vault with `carnet backup --to {} --merge` (needs the key), or \
             overwrite the mirror with --force",
            dir.display()
        ),
    )
    .into())
}

/// Whether the mirror's config names other recipients than the vault's: the vault was
/// re-encrypted since (same vault, same signing key), so its log cannot be compared file by file.
fn rekeyed_since(vault: &Vault, dir: &Path) -> bool {
    let Ok(bytes) = fsutil::read_limited(&dir.join(vault::CONFIG), 1 << 20) else {
        return false;
    };
    let Ok(theirs) = std::str::from_utf8(&bytes)
        .map_err(|_| ())
        .and_then(|t| toml::from_str::<crate::config::Config>(t).map_err(|_| ()))
    else {
        return false;
    };
    theirs.vault_id == vault.config.vault_id
        && theirs.signing_key == vault.config.signing_key
        && theirs.recipients != vault.config.recipients
}

/// The mirror's signed index, when it has one that verifies with the vault's signing key.
fn signed_index(vault: &Vault, dir: &Path) -> Option<Index> {
    if !dir.join(index::INDEX).exists() {
        return None;
    }
    // A top whose parts no longer match it (a command ran on the mirror after it) still says
    // which log the mirror had: that is what the check needs.
    index::read_signed(dir, &vault.config.signing_key)
        .or_else(|_| index::read_top(dir, &vault.config.signing_key))
        .ok()
        .filter(|i| i.vault_id == vault.config.vault_id)
}

/// Keyless: why the vault's log does not extend the mirror's, judged from the log segments'
/// sizes and hashes in both signed indexes; `None` when it may.
fn diverged(ours: &Index, theirs: &Index) -> Option<String> {
    if theirs.log_seq > ours.log_seq {
        let n = theirs.log_seq - ours.log_seq;
        return Some(format!(
            "its log is {n} entr{} ahead of the vault's",
            if n == 1 { "y" } else { "ies" }
        ));
    }
    let segs: Vec<(&String, &index::FileEntry)> = theirs
        .files
        .iter()
        .filter(|(r, _)| r.starts_with("log/"))
        .collect();
    let last = segs.last().map(|(r, _)| *r);
    for (rel, e) in &segs {
        let differs = match ours.files.get(*rel) {
            None => true,
            Some(o) if o == *e => false,
            Some(_) if Some(*rel) != last => true,
            Some(_) if theirs.log_seq == ours.log_seq => true,
            Some(o) => o.size < e.size,
        };
        if differs {
            // Without the key, earlier entries sealed since (`hide --from guardians`) cannot be
            // told from the mirror's own: a keyed update compares the entries themselves.
            return Some(format!(
                "its log differs from the vault's ({rel}; if documents were hidden from guardians since, run the update with the vault's key, which tells sealed entries apart)"
            ));
        }
    }
    None
}

/// Keyless: has the mirror's log changed since its index was written? Some commands (a keyed
/// `verify`) append to the log without rewriting the index, and a command interrupted on the
/// mirror leaves it stale, so the index alone would miss them. Full segments the index lists
/// at their size are taken as listed (they never change); the last one, and any other, is
/// hashed. A segment the vault holds identically is no change of the mirror's own.
fn log_moved(dir: &Path, ours: &Index, theirs: &Index) -> Option<String> {
    let Ok((segs, _)) = log::list_segments(dir) else {
        return Some("its log cannot be read".into());
    };
    let last = segs.last().copied();
    for n in segs {
        let rel = format!("{}/{n:08}.age", log::DIR);
        let path = log::segment_path(dir, n);
        let listed = theirs.files.get(&rel);
        let trusted = Some(n) != last
            && listed.is_some_and(|e| fs::metadata(&path).is_ok_and(|m| m.len() == e.size));
        if trusted {
            continue;
        }
        let actual = index::hash_file(&path).ok();
        if actual.as_ref() != listed && actual.as_ref() != ours.files.get(&rel) {
            return Some(format!(
                "its log changed after its index was written ({rel}: a command run on the \
                 mirror, or damage)"
            ));
        }
    }
    None
}

/// What an update would lose: the mirror's own log entries and the documents they added.
struct Loss {
    entries: usize,
    documents: Vec<Document>,
    /// The objects of added documents whose metadata could not be read.
    objects: Vec<String>,
}

impl Loss {
    fn describe(&self) -> String {
        let head = format!(
            "{} log entr{} the vault does not have",
            self.entries,
            if self.entries == 1 { "y" } else { "ies" }
        );
        if !self.documents.is_empty() {
            let names = self
                .documents
                .iter()
                .map(|d| format!("\"{}\" ({})", crate::text::clean(&d.title), d.date));
            format!(
                "{head}; updating it would delete {} document{} added there: {}",
                self.documents.len(),
                plural(self.documents.len()),
                listed(names).trim_start_matches(": ")
            )
        } else if !self.objects.is_empty() {
            format!(
                "{head}; updating it would delete {} document object{} added there{}",
                self.objects.len(),
                plural(self.objects.len()),
                listed(self.objects.iter().map(|o| index::object_rel(o)))
            )
        } else {
            format!("{head} (no document would be lost, but its log entries would)")
        }
    }
}

/// With the key: `None` when the vault's log holds every entry of the mirror's.
fn keyed_loss(vault: &Vault, keys: &Unlocked, dir: &Path) -> anyhow::Result<Option<Loss>> {
    let mirror = Vault::open(dir)?;
    let own = own_entries(vault, keys, &mirror)?;
    if own.is_empty() {
        return Ok(None);
    }
    let (documents, objects) = match added_here(vault, keys, &mirror, &own) {
        Ok(docs) => (docs, Vec::new()),
        Err(_) => (
            Vec::new(),
            own.iter()
                .filter(|e| matches!(e.action, Action::Add | Action::Note))
                .flat_map(|e| e.objects_added.iter().cloned())
                .filter(|o| crate::ids::is_full_id(o))
                .collect(),
        ),
    };
    Ok(Some(Loss {
        entries: own.len(),
        documents,
        objects,
    }))
}

/// The entries of the mirror's log that the vault's log does not hold (same sequence number
/// and hash). Logs only grow, so the segments before the last one identical in both are the
/// same history: the search walks back from the end and decrypts only the segments after it
/// (a lifetime log on a slow stick is not read whole on every update).
fn own_entries(vault: &Vault, keys: &Unlocked, mirror: &Vault) -> anyhow::Result<Vec<Entry>> {
    let ring = vault.load_keyring(keys)?;
    let mirror_ring = mirror.load_keyring(keys)?;
    let (theirs, _) = log::list_segments(&mirror.dir)?;
    let (ours, _) = log::list_segments(&vault.dir)?;
    let same = |n: u64| {
        let a = index::hash_file(&log::segment_path(&vault.dir, n));
        let b = index::hash_file(&log::segment_path(&mirror.dir, n));
        matches!((a, b), (Ok(a), Ok(b)) if a == b)
    };
    let first = match theirs.iter().rposition(|&n| same(n)) {
        Some(i) if i + 1 == theirs.len() => return Ok(Vec::new()),
        Some(i) => theirs[i + 1],
        None => theirs.first().copied().unwrap_or_default(),
    };
    let mut known: HashMap<u64, String> = HashMap::new();
    for &n in ours.iter().filter(|&&n| n >= first) {
        for l in log::read_segment(&vault.dir, n, keys, &ring)? {
            known.insert(l.entry.seq, l.hash);
        }
    }
    let mut own = Vec::new();
    let mut sealed = 0usize;
    for &n in theirs.iter().filter(|&&n| n >= first) {
        for l in log::read_segment(&mirror.dir, n, keys, &mirror_ring)? {
            if known.get(&l.entry.seq) != Some(&l.hash) {
                sealed += usize::from(l.opaque);
                own.push(l.entry);
            }
        }
    }
    // An entry of its own this key cannot read (sealed to a key made on the mirror, or hidden
    // from the guardian running this): what it added or hid cannot be told, so nothing may be
    // merged or overwritten on the strength of the rest.
    if sealed > 0 {
        return Err(Error::input(
            format!(
                "the mirror {} holds {sealed} change(s) of its own sealed from this key (documents hidden from guardians there): updating or merging would lose them",
                mirror.dir.display()
            ),
            format!(
                "open the mirror as a vault (carnet --vault {}) with the key that made them, unhide or export those documents, then merge; or overwrite the mirror with --force",
                mirror.dir.display()
            ),
        )
        .into());
    }
    Ok(own)
}

/// The documents the mirror's own `add` entries added that it still holds and the vault does
/// not (by plaintext SHA-256), one per content, in the order they were added.
fn added_here(
    vault: &Vault,
    keys: &Unlocked,
    mirror: &Vault,
    own: &[Entry],
) -> anyhow::Result<Vec<Document>> {
    let ids: Vec<String> = own
        .iter()
        .filter(|e| matches!(e.action, Action::Add | Action::Note))
        .flat_map(|e| e.documents.iter().cloned())
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let msnap = mirror.snapshot(dup(keys))?;
    let found = msnap.documents_by_id(mirror, &ids)?;
    let snap = vault.snapshot(dup(keys))?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for id in &ids {
        let Some(d) = found.get(id) else { continue };
        if seen.insert(d.sha256.clone()) && snap.find_by_sha256(vault, &d.sha256)?.is_none() {
            out.push(d.clone());
        }
    }
    Ok(out)
}

#[derive(Serialize)]
pub struct Merged {
    pub id: String,
    pub title: String,
}

/// `backup --to DIR --merge`: imports into the vault, in one `add` entry with the detail
/// `merged_from`, the documents added on the mirror that the vault does not have. Their
/// ciphertext is copied as it is (the mirror's objects are encrypted to the same recipients),
/// each checked against the mirror's record of its size and BLAKE3 first.
pub fn merge(
    vault: &Vault,
    keys: &Unlocked,
    dir: &Path,
    now: jiff::Timestamp,
) -> anyhow::Result<(Vec<Merged>, Vec<Notice>)> {
    if !dir.join(vault::CONFIG).exists() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mirror = Vault::open(dir)?;
    if mirror.config.recipients != vault.config.recipients {
        return Err(Error::input(
            format!(
                "the mirror {} encrypts to other keys than the vault",
                dir.display()
            ),
            "its documents cannot be imported as they are: add them with `carnet add` from the \
             mirror's export, or overwrite the mirror with --force",
        )
        .into());
    }
    // Read under the shared lock (released before the merge's own commit takes it to write).
    let docs = {
        let _shared = fsutil::Lock::shared(&vault.path(vault::LOCK))?;
        let own = own_entries(vault, keys, &mirror)?;
        // Corrections and visibility changes made on the mirror to documents cannot be carried
        // over by copying documents: merging would silently drop them (a hidden document would
        // come back visible).
        let changed: Vec<String> = own
            .iter()
            .filter(|e| {
                matches!(
                    e.action,
                    Action::Edit | Action::Replace | Action::Hide | Action::Unhide
                )
            })
            .map(|e| format!("{} (entry {})", e.action, e.seq))
            .collect();
        if !changed.is_empty() {
            return Err(Error::input(
                format!(
                    "the mirror {} holds changes --merge cannot carry over: {}",
                    dir.display(),
                    changed.join(", ")
                ),
                "open the mirror as a vault (carnet --vault DIR) and redo them in this vault, \
                 then overwrite the mirror with --force",
            )
            .into());
        }
        added_here(vault, keys, &mirror, &own)?
    };
    if docs.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let txn = vault.begin(dup(keys), now)?;
    let mut op = Op::new(Action::Add);
    let mut merged = Vec::new();
    for mut d in docs {
        // Checked again under the lock: another command may have added the same content.
        if txn.snap.find_by_sha256(vault, &d.sha256)?.is_some() {
            continue;
        }
        // Every stored version comes along: corrections keep their history.
        let mut renamed: std::collections::HashMap<String, String> = Default::default();
        for v in d.stored_objects() {
            let tmp = copy_object(&mirror, v, &vault.tmp_dir())?;
            // Ids are random: a clash means nothing, but it must not overwrite.
            let name = if vault.object_path(&v.object).exists() {
                crate::ids::random_id()
            } else {
                v.object.clone()
            };
            renamed.insert(v.object.clone(), name.clone());
            op.add.push((tmp, name));
        }
        if txn.snap.document(vault, &d.id)?.is_some() {
            d.id = crate::ids::DocId::random();
        }
        let id = d.id.clone();
        for v in d.history.iter_mut() {
            v.id = id.clone();
            if let Some(n) = renamed.get(&v.object) {
                v.object = n.clone();
            }
        }
        if let Some(n) = renamed.get(&d.object) {
            d.object = n.clone();
        }
        merged.push(Merged {
            id: d.id.to_string(),
            title: d.title.clone(),
        });
        op.documents.push(d.id.to_string());
        op.put.push(d);
    }
    if merged.is_empty() {
        return Ok((merged, Vec::new()));
    }
    let count = merged.len();
    let mut op = op
        .detail("merged_from", dir.display().to_string())
        .detail("count", count);
    // A document merged into a category hidden from guardians is sealed like one added.
    crate::ops::seal::settle(vault, &txn.snap, &mut op)?;
    let notices = txn.commit(op)?.notices;
    Ok((merged, notices))
}

/// Copies a document's object from the mirror into the vault's `tmp/`, refusing it unless its
/// size and BLAKE3 are the ones the mirror's metadata records.
fn copy_object(mirror: &Vault, d: &Document, tmp_dir: &Path) -> anyhow::Result<tempfile::TempPath> {
    let src = mirror.object_path(&d.object);
    let damaged = || {
        Error::Integrity(format!(
            "{} does not match the mirror's record of \"{}\" (damaged)",
            src.display(),
            crate::text::clean(&d.title)
        ))
    };
    let mut input = fsutil::open_regular(&src).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => anyhow::Error::from(damaged()),
        _ => anyhow::Error::from(e).context(format!("cannot read {}", src.display())),
    })?;
    let mut tmp = fsutil::private_tempfile(tmp_dir)
        .with_context(|| format!("cannot write in {}", tmp_dir.display()))?;
    let want = index::FileEntry {
        size: d.object_size,
        blake3: d.object_blake3.clone(),
    };
    // Bounded: a file growing without end must not fill the disk before the check fails.
    index::copy_verified(&mut input, &mut tmp, &want, &mut |_| {}).map_err(|e| match e {
        index::CopyError::Read(e) => {
            anyhow::Error::from(e).context(format!("cannot read {}", src.display()))
        }
        index::CopyError::Write(e) => anyhow::Error::from(e).context("cannot write in the vault"),
        index::CopyError::Larger | index::CopyError::Differs => damaged().into(),
    })?;
    tmp.as_file()
        .sync_all()
        .context("cannot write in the vault")?;
    Ok(tmp.into_temp_path())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// ": a, b, c and 2 more", or nothing for an empty list.
fn listed(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    if all.is_empty() {
        return String::new();
    }
    let mut s = format!(": {}", all[..all.len().min(SHOWN)].join(", "));
    if all.len() > SHOWN {
        s.push_str(&format!(" and {} more", all.len() - SHOWN));
    }
    s
}
