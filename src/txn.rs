//! Writing to a vault: one command's changes (`Op`) committed as one log entry by a `Txn` that
//! holds the writers' lock, in an order that a crash at any point leaves recoverable (log entry,
//! objects, manifest, removals, head, index); the recovery of an interrupted command (finished
//! or rolled back by the next write); and the upgrade of a format-1 vault.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::catalog::{Root, Snapshot};
use crate::crypto;
use crate::domain::{Action, Actor};
use crate::error::Error;
use crate::fsutil::{self, Lock};
use crate::index::FileEntry;
use crate::keys::Unlocked;
use crate::layout::{CONFIG, MANIFEST, OBJECTS};
use crate::log::{self, Entry, Head, Logged};
use crate::manifest::Document;
use crate::vault::Vault;

impl Vault {
    /// Locks the vault for writing and reads it; finishes or rolls back a command that was
    /// interrupted (crash, kill -9, full disk) so that every write starts from a clean state.
    /// `now` is the time the entries of this write record (the CLI's clock, or `CARNET_NOW`).
    pub fn begin(&self, keys: Unlocked, now: jiff::Timestamp) -> anyhow::Result<Txn<'_>> {
        let lock = self.lock()?;
        let mut notices = Vec::new();
        // Under the lock no re-encryption is running: a committed one is finished, an
        // uncommitted one was killed and is dropped (the vault kept its keys).
        match crate::rekey::state(&self.dir) {
            crate::rekey::State::Committed => crate::rekey::finish(&self.dir, &|| {})?,
            crate::rekey::State::Uncommitted => {
                if crate::rekey::discard(&self.dir)? {
                    notices.push(Notice::Note(
                    "dropped an interrupted re-encryption (`carnet rekey` or `carnet key rm`): \
                     the vault keeps its previous keys; run it again"
                        .into(),
                    ));
                }
            }
            crate::rekey::State::None => {}
        }
        self.check_config_unchanged()?;
        let snap = self.snapshot(keys)?;
        self.sweep_tmp();
        let (segs, _) = log::list_segments(&self.dir)?;
        let last_seg = *segs.last().ok_or_else(|| {
            Error::Integrity(format!("{} is empty", self.path(log::DIR).display()))
        })?;
        let tail = log::read_segment(&self.dir, last_seg, &snap.keys, &snap.ring)?;
        let recipients = self.recipients()?;
        let mut txn = Txn {
            vault: self,
            _lock: lock,
            recipients,
            tail_seg: last_seg,
            tail,
            config_sha256: self.config_sha256.clone(),
            snap,
            notices,
            now,
        };
        txn.recover()?;
        txn.upgrade()?;
        Ok(txn)
    }
}

/// The writers' lock and the vault as read under it, for an operation that commits in its own
/// way (re-encryption writes a whole new vault, see `rekey`).
pub struct Held {
    pub lock: Lock,
    pub snap: Snapshot,
    pub notices: Vec<Notice>,
}

impl Vault {
    /// Refuses to write with a config read before another command changed it (a re-encryption
    /// or an upgrade by another process while this one waited for the lock): its recipients
    /// would be the old ones.
    fn check_config_unchanged(&self) -> anyhow::Result<()> {
        let now = crate::fsutil::read_limited(&self.path(CONFIG), 1 << 20)
            .with_context(|| format!("cannot read {}", self.path(CONFIG).display()))?;
        if hex::encode(Sha256::digest(&now)) != self.config_sha256 {
            return Err(Error::input(
                format!(
                    "{} changed while this command was starting (another carnet re-encrypted or upgraded the vault)",
                    self.path(CONFIG).display()
                ),
                "run the command again",
            )
            .into());
        }
        Ok(())
    }
}

/// What one command does to the vault, committed as one log entry.
pub struct Op {
    pub action: Action,
    /// Who acted: the patient, unless a professional's deposit or receipt is recorded.
    pub actor: Actor,
    pub documents: Vec<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Documents to insert, or to replace (same id).
    pub put: Vec<Document>,
    /// Ids of documents to remove (their objects go in `remove`).
    pub delete: Vec<String>,
    /// The new root, when the command changes the patient, professionals or grants.
    pub root: Option<Root>,
    /// Encrypted files staged in `tmp/`, and the object names they take.
    pub add: Vec<(tempfile::TempPath, String)>,
    pub remove: Vec<String>,
    /// Documents newly sealed from guardians: the log entries that name them (this command's
    /// own too, on the first hide) are sealed (`log::redact`) once the root is written, before
    /// the head.
    pub seal_past: std::collections::BTreeSet<String>,
    /// A new `identity.age` (the sealed key made), written right after the log entry.
    pub identity: Option<Vec<u8>>,
    /// A new `carnet.toml`, written after the manifest and before the head (the upgrade).
    config: Option<String>,
}

impl Op {
    pub fn new(action: Action) -> Op {
        Op {
            action,
            actor: Actor::Patient,
            documents: Vec::new(),
            details: Default::default(),
            put: Vec::new(),
            delete: Vec::new(),
            root: None,
            add: Vec::new(),
            remove: Vec::new(),
            seal_past: Default::default(),
            identity: None,
            config: None,
        }
    }

    pub fn actor(mut self, actor: Actor) -> Op {
        self.actor = actor;
        self
    }

    pub fn documents(mut self, ids: Vec<String>) -> Op {
        self.documents = ids;
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Op {
        self.details.insert(key.to_string(), value.into());
        self
    }

    fn changes_metadata(&self) -> bool {
        self.root.is_some() || !self.put.is_empty() || !self.delete.is_empty()
    }

    /// Does it change anything but the log? Reads (`view`, `export`, `backup`, `verify`)
    /// only append their entry.
    fn changes_vault(&self) -> bool {
        self.changes_metadata()
            || !self.add.is_empty()
            || !self.remove.is_empty()
            || self.config.is_some()
            || self.identity.is_some()
    }
}

/// A write in progress: holds the vault lock until dropped.
pub struct Txn<'v> {
    vault: &'v Vault,
    _lock: Lock,
    recipients: Vec<age::x25519::Recipient>,
    tail_seg: u64,
    tail: Vec<Logged>,
    /// SHA-256 of `carnet.toml` as the head must record it (an upgrade rewrites the file).
    config_sha256: String,
    pub snap: Snapshot,
    /// What the user should hear about (an interrupted command finished, the upgrade).
    notices: Vec<Notice>,
    /// The time the entries of this write record.
    now: jiff::Timestamp,
}

/// Something worth telling the user that is not an error; the CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Note(String),
    Warning(String),
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Note(s) => write!(f, "note: {s}"),
            Notice::Warning(s) => write!(f, "warning: {s}"),
        }
    }
}

/// A committed command: its log entry, the vault as it now stands, and the notices.
pub struct Committed {
    pub entry: Entry,
    pub snap: Snapshot,
    pub notices: Vec<Notice>,
}

impl Txn<'_> {
    pub fn root(&self) -> &Root {
        &self.snap.root
    }

    /// Keeps the lock and the snapshot without committing through this transaction.
    pub fn hold(self) -> Held {
        Held {
            lock: self._lock,
            snap: self.snap,
            notices: self.notices,
        }
    }

    /// Seals every clear log entry naming one of `ids` to `to` (see `log::redact`), and reads
    /// the last segment again if it changed: the next append rewrites it from memory and would
    /// otherwise put the clear lines back.
    pub fn redact_log(
        &mut self,
        to: &age::x25519::Recipient,
        ids: &std::collections::BTreeSet<String>,
    ) -> anyhow::Result<Vec<u64>> {
        let done = log::redact(
            &self.vault.dir,
            &self.snap.keys,
            &self.snap.ring,
            &self.recipients,
            to,
            ids,
        )?;
        if done.contains(&self.tail_seg) {
            self.tail = log::read_segment(
                &self.vault.dir,
                self.tail_seg,
                &self.snap.keys,
                &self.snap.ring,
            )?;
        }
        Ok(done)
    }

    fn recover(&mut self) -> anyhow::Result<()> {
        let dir = &self.vault.dir;
        let head = self.snap.head.clone();
        let Some(last) = self.tail.last().cloned() else {
            return Err(Error::Integrity(format!(
                "{} is empty",
                log::segment_path(dir, self.tail_seg).display()
            ))
            .into());
        };
        if last.entry.seq == head.log_seq && last.hash == head.log_hash {
            return Ok(());
        }
        if let Some(before) = self.rolled_back_pair(&head, &last)? {
            // A crash came after a rollback's `interrupted` entry but before its head: the
            // rollback is complete on disk, only the head is behind.
            self.notices.push(Notice::Note(format!(
                "finished rolling back {} (log entry {})",
                before.action_shown(),
                before.entry.seq
            )));
            self.write_head(&last)?;
            self.rebuild_index_or_warn();
            return Ok(());
        }
        if last.entry.seq != head.log_seq + 1 || last.entry.prev != head.log_hash {
            return Err(Error::Integrity(format!(
                "the access log does not end where {} says (entries removed, added or replaced?)",
                self.vault.path(log::HEAD).display()
            ))
            .into());
        }
        let e = &last.entry;
        if self.snap.manifest_sha256 == e.manifest_sha256 {
            // The command got as far as its manifest: finish it.
            for o in &e.objects_added {
                if !self.vault.object_path(o).is_file() {
                    return Err(Error::Integrity(format!(
                        "{} is missing",
                        self.vault.object_path(o).display()
                    ))
                    .into());
                }
            }
            for o in &e.objects_removed {
                remove_if_exists(&self.vault.object_path(o))?;
            }
            if let Some(want) = e.upgrade_config() {
                self.finish_upgrade_config(want)?;
            }
            // A hide from guardians may have stopped before it sealed the earlier entries
            // (and its own): they are sealed now, whoever finishes it. Sealing needs only the
            // sealed key's public half. With the sealed key, every sealed document is known
            // (the one sealed shard); without it (a guardian), those the entry names that this
            // reader no longer finds. The log is read in this rare case only.
            if let Some(sealed) = &self.snap.root.sealed {
                let to = sealed.key()?;
                let ids = if self.snap.keys.sealed.is_some() {
                    self.snap.all_sealed_ids(self.vault)?
                } else if !matches!(e.action, Action::Hide | Action::KeyAdd) {
                    // Only these seal documents that had entries in clear (a `rm` finished here
                    // names documents this reader no longer finds for another reason).
                    Default::default()
                } else {
                    let seen = self.snap.documents_by_id(self.vault, &e.documents)?;
                    e.documents
                        .iter()
                        .filter(|d| !seen.contains_key(d.as_str()))
                        .cloned()
                        .collect()
                };
                if !ids.is_empty()
                    && let Err(err) = self.redact_log(&to, &ids)
                {
                    self.notices.push(Notice::Warning(format!(
                        "{err:#}: earlier log entries naming documents hidden from guardians are still readable with a guardian's key; run the same `carnet hide` again"
                    )));
                }
            }
            // Sealing keeps each entry's hash: the head names the same last entry.
            self.write_head(&last)?;
            self.snap.pending = None;
            self.rebuild_index_or_warn();
            let what = if e.action == Action::Passphrase {
                " (if the new passphrase does not open the vault, the old one does: run `carnet passphrase` again)"
            } else {
                ""
            };
            self.notices.push(Notice::Note(format!(
                "finished {} (log entry {}), which had been interrupted{what}",
                last.action_shown(),
                e.seq
            )));
            Ok(())
        } else if self.snap.manifest_sha256 == head.manifest_sha256
            && self.config_sha256 == head.config_sha256
        {
            // It stopped before its manifest: undo what it put in place, and say so in the log.
            // Unless the evidence says it had completed: then the head and the manifest are
            // older copies put back (a sync tool, a restored file), and undoing would delete
            // what the command added.
            if let Some(why) = self.vault.completed_after(e) {
                return Err(Error::Integrity(format!(
                    "{} and {} are older than the access log ({why}): put back from an older copy?",
                    self.vault.path(log::HEAD).display(),
                    self.vault.path(MANIFEST).display()
                ))
                .into());
            }
            for o in &e.objects_added {
                remove_if_exists(&self.vault.object_path(o))?;
            }
            // The log has moved on by the abandoned entry; the manifest has not. The
            // `interrupted` entry chains after it and its head is written as usual.
            self.snap.head.log_seq = last.entry.seq;
            self.snap.head.log_hash = last.hash.clone();
            // An opaque entry's action is not known here: it is recorded as `sealed`.
            let (seq, action) = (e.seq, e.action.to_string());
            self.notices.push(Notice::Note(format!(
                "rolled back {} (log entry {seq}), which had been interrupted",
                last.action_shown()
            )));
            self.append(
                Op::new(crate::domain::Action::Interrupted)
                    .detail("seq", seq)
                    .detail("action", action),
            )?;
            Ok(())
        } else {
            Err(Error::Integrity(format!(
                "{} matches neither {} nor the last log entry",
                self.vault.path(MANIFEST).display(),
                self.vault.path(log::HEAD).display()
            ))
            .into())
        }
    }

    /// An upgrade interrupted after its manifest: `carnet.toml` must say format 2 before the
    /// head commits to it. It is rewritten unless the crash came after that step.
    fn finish_upgrade_config(&mut self, want: &str) -> anyhow::Result<()> {
        if self.config_sha256 == want {
            return Ok(());
        }
        let mut config = self.vault.config.clone();
        config.format = crate::FORMAT_VERSION;
        let text = crate::config::text(&config)?;
        if hex::encode(Sha256::digest(text.as_bytes())) != want {
            return Err(Error::Integrity(format!(
                "{} is not the config the interrupted upgrade wrote",
                self.vault.path(CONFIG).display()
            ))
            .into());
        }
        self.vault
            .write(&self.vault.path(CONFIG), text.as_bytes())?;
        self.config_sha256 = want.to_string();
        Ok(())
    }

    /// Rewrites a format-1 vault as format 2, as one logged, crash-safe commit: the shards are
    /// new objects, then the root replaces the manifest, then `carnet.toml` says format 2, then
    /// the head commits to both. A crash before the manifest rolls back; after it, finishes.
    fn upgrade(&mut self) -> anyhow::Result<()> {
        let Some(docs) = self.snap.legacy.clone() else {
            return Ok(());
        };
        let mut config = self.vault.config.clone();
        config.format = crate::FORMAT_VERSION;
        let text = crate::config::text(&config)?;
        let sha = hex::encode(Sha256::digest(text.as_bytes()));
        let mut op = Op::new(crate::domain::Action::Upgrade)
            .detail("from", 1)
            .detail("to", crate::FORMAT_VERSION)
            .detail("config_sha256", sha);
        op.put = docs;
        op.root = Some(self.snap.root.clone());
        op.config = Some(text);
        self.append(op)?;
        self.notices.push(Notice::Note(format!(
            "upgraded the vault to format {} (see FORMAT.md); older carnet versions cannot open it",
            crate::FORMAT_VERSION
        )));
        Ok(())
    }

    /// When the log ends two entries past the head with an `interrupted` entry that undoes the
    /// one before it (both chained from the head, manifest unchanged), returns that entry.
    fn rolled_back_pair(&self, head: &Head, last: &Logged) -> anyhow::Result<Option<Logged>> {
        if last.entry.seq != head.log_seq + 2
            || last.entry.action != Action::Interrupted
            || last.entry.manifest_sha256 != head.manifest_sha256
            || self.snap.manifest_sha256 != head.manifest_sha256
            || last.entry.details.get("seq").and_then(|v| v.as_u64()) != Some(head.log_seq + 1)
        {
            return Ok(None);
        }
        let before = if self.tail.len() >= 2 {
            self.tail[self.tail.len() - 2].clone()
        } else if self.tail_seg > 0 {
            match log::read_segment(
                &self.vault.dir,
                self.tail_seg - 1,
                &self.snap.keys,
                &self.snap.ring,
            )?
            .pop()
            {
                Some(l) => l,
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        let chained = before.entry.seq == head.log_seq + 1
            && before.entry.prev == head.log_hash
            && last.entry.prev == before.hash;
        Ok(chained.then_some(before))
    }

    /// Writes the head naming `last` (the commit point) and makes it the snapshot's head.
    fn write_head(&mut self, last: &Logged) -> anyhow::Result<()> {
        let head = Head {
            vault_id: self.vault.config.vault_id.clone(),
            log_seq: last.entry.seq,
            log_hash: last.hash.clone(),
            manifest_sha256: last.entry.manifest_sha256.clone(),
            manifest_generation: last.entry.manifest_generation,
            config_sha256: self.config_sha256.clone(),
        };
        let sealed = log::seal_head(&head, &self.snap.ring, &self.recipients)?;
        self.vault.write(&self.vault.path(log::HEAD), &sealed)?;
        self.snap.head = head;
        Ok(())
    }

    /// Appends the entry for `op` and makes it take effect, in an order that a crash at any
    /// point leaves recoverable: log entry, objects, manifest, removals, head.
    /// Returns the entry written, the vault as it now stands (the lock is released) and notices.
    pub fn commit(mut self, op: Op) -> anyhow::Result<Committed> {
        // A closed record refuses every change, whichever command asks: enforced here, the one
        // path every write takes, so that a new command cannot forget it. Reading commands
        // still log their access; `reopen` is the one change a closed record accepts.
        // Withdrawing consent (revoking a grant, blocking a professional) only narrows access:
        // a closed record must not stand in its way.
        let narrows = matches!(op.action, Action::Revoke | Action::ProBlock);
        if op.changes_vault() && op.action != Action::Reopen && !narrows {
            self.snap.root.check_writable()?;
        }
        let titles = match &self.vault.journal {
            Some(j) if j.with_titles() => Some(self.titles(&op)),
            _ => None,
        };
        let entry = self.append(op)?;
        if let Some(j) = &self.vault.journal {
            j.record(crate::events::Event {
                action: entry.action.to_string(),
                time: entry.time,
                vault_id: self.vault.config.vault_id.clone(),
                actor: entry.actor.to_string(),
                count: entry.documents.len(),
                documents: entry.documents.clone(),
                titles,
                test: false,
            });
        }
        Ok(Committed {
            entry,
            snap: self.snap,
            notices: self.notices,
        })
    }

    /// The titles of the documents `op` names, for hooks that asked for them: new ones from
    /// the op, the others from the vault as it stood (a removed document is still there).
    /// Best effort: a title that cannot be read is left empty rather than failing a commit.
    fn titles(&self, op: &Op) -> Vec<String> {
        let missing: Vec<String> = op
            .documents
            .iter()
            .filter(|id| !op.put.iter().any(|d| d.id.as_str() == id.as_str()))
            .cloned()
            .collect();
        let stored = if missing.is_empty() {
            Default::default()
        } else {
            self.snap
                .documents_by_id(self.vault, &missing)
                .unwrap_or_default()
        };
        op.documents
            .iter()
            .map(|id| {
                op.put
                    .iter()
                    .find(|d| d.id.as_str() == id.as_str())
                    .map(|d| d.title.clone())
                    .or_else(|| stored.get(id).map(|d| d.title.clone()))
                    .unwrap_or_default()
            })
            .collect()
    }

    fn append(&mut self, mut op: Op) -> anyhow::Result<Entry> {
        let base_seq = self.snap.head.log_seq;
        // Objects the index must list from now on: every stored version of the documents put
        // (a merged document brings its earlier versions), the new shards (below), and any
        // other object the command adds (a key slot), hashed from its staged file.
        let mut indexed: BTreeMap<String, FileEntry> = op
            .put
            .iter()
            .flat_map(|d| d.stored_objects())
            .map(|d| {
                (
                    d.object.clone(),
                    FileEntry {
                        size: d.object_size,
                        blake3: d.object_blake3.clone(),
                    },
                )
            })
            .collect();
        for (tmp, name) in &op.add {
            if !indexed.contains_key(name) {
                let entry = crate::index::hash_file(tmp)
                    .with_context(|| format!("cannot read {}", tmp.display()))?;
                indexed.insert(name.clone(), entry);
            }
        }
        // What is hidden from guardians: this entry is sealed when it names a document sealed
        // before or after the change; the entries that named newly sealed documents are sealed
        // once the change is committed (below).
        let sealed_to = match (
            &self.snap.keys.sealed,
            op.root.as_ref().unwrap_or(&self.snap.root).sealed.as_ref(),
        ) {
            (Some(_), Some(s)) => Some(s.key()?),
            _ => None,
        };
        let mut sealed_ids = match &sealed_to {
            Some(_) => self.snap.sealed_ids(self.vault, &op.documents)?,
            None => Default::default(),
        };
        let sealed_manifest = if op.changes_metadata() {
            let base = op.root.take().unwrap_or_else(|| self.snap.root.clone());
            let plan = crate::catalog::plan(
                self.vault,
                &self.snap,
                base,
                &op.put,
                &op.delete,
                &self.recipients,
            )?;
            sealed_ids.extend(plan.sealed_ids);
            let mut root = plan.root;
            // A grant naming a sealed document is sealed with it, whichever command sealed the
            // document (hide, a category rule, an edit into such a category, a merge).
            if root.sealed_grants_open {
                for g in &mut root.grants {
                    if g.documents.iter().any(|d| sealed_ids.contains(d)) {
                        g.sealed = true;
                    }
                }
            }
            root.generation = self.snap.root.generation + 1;
            for s in plan.added {
                let r = s.reference;
                indexed.insert(
                    r.object.clone(),
                    FileEntry {
                        size: r.size,
                        blake3: r.blake3,
                    },
                );
                op.add.push((s.tmp, r.object));
            }
            op.remove.extend(plan.removed);
            let stored = root.to_stored()?;
            root.requires = stored.requires.clone();
            let json = zeroize::Zeroizing::new(
                serde_json::to_vec(&stored).context("cannot encode the manifest")?,
            );
            let sha = hex::encode(Sha256::digest(&json[..]));
            let sealed = crypto::seal_bytes(&json, &self.recipients)
                .context("cannot encrypt the manifest")?;
            Some((root, sha, sealed))
        } else {
            None
        };
        // Objects staged without a document or shard record (the emergency profile's
        // versions) are indexed from their files: they are small.
        for (tmp, name) in &op.add {
            if !indexed.contains_key(name) {
                let bytes =
                    fs::read(tmp).with_context(|| format!("cannot read {}", tmp.display()))?;
                indexed.insert(
                    name.clone(),
                    FileEntry {
                        size: bytes.len() as u64,
                        blake3: blake3::hash(&bytes).to_hex().to_string(),
                    },
                );
            }
        }
        let (sha, generation) = match &sealed_manifest {
            Some((m, sha, _)) => (sha.clone(), m.generation),
            None => (self.snap.manifest_sha256.clone(), self.snap.root.generation),
        };
        let entry = Entry {
            seq: self.snap.head.log_seq + 1,
            time: self.now,
            // A professional's deposit or receipt names its actor; otherwise the key that opened
            // the vault says who acted (the patient, or the holder of the recovery key).
            actor: if op.actor == Actor::Patient {
                self.snap.keys.actor.clone()
            } else {
                op.actor.clone()
            },
            action: op.action.clone(),
            documents: std::mem::take(&mut op.documents),
            details: std::mem::take(&mut op.details),
            version: env!("CARGO_PKG_VERSION").into(),
            prev: self.snap.head.log_hash.clone(),
            manifest_sha256: sha.clone(),
            manifest_generation: generation,
            objects_added: op.add.iter().map(|(_, name)| name.clone()).collect(),
            objects_removed: op.remove.clone(),
        };
        let mut logged = log::seal_entry(&entry, &self.snap.ring)?;
        let names_sealed = entry.documents.iter().any(|d| sealed_ids.contains(d));
        // Sealed to a key the vault has committed to, and only then: a key this very change
        // makes is not the vault's until its root is in place, and an entry sealed to it would
        // open for no one after a rollback. Such an entry is written in clear and sealed with
        // the earlier ones once the root names the key (below).
        let key_committed = self.snap.root.sealed.as_ref().map(|s| s.recipient.as_str())
            == sealed_to.as_ref().map(|c| c.to_string()).as_deref();
        match &sealed_to {
            Some(c) if names_sealed && key_committed => {
                logged = log::seal_line(&logged, &self.snap.ring, c)?;
            }
            Some(_) if names_sealed => {
                op.seal_past.extend(
                    entry
                        .documents
                        .iter()
                        .filter(|d| sealed_ids.contains(*d))
                        .cloned(),
                );
            }
            _ => {}
        }
        if log::segment_full(&self.tail) {
            self.tail.clear();
            self.tail_seg += 1;
        }
        self.tail.push(logged.clone());
        log::write_segment(&self.vault.dir, self.tail_seg, &self.tail, &self.recipients)?;
        if let Some(bytes) = &op.identity {
            self.vault
                .write(&self.vault.path(crate::layout::IDENTITY), bytes)?;
        }

        self.place_objects(std::mem::take(&mut op.add))?;
        let sealed_manifest_written = sealed_manifest.is_some();
        if let Some((m, sha, sealed)) = sealed_manifest {
            self.vault.write(&self.vault.path(MANIFEST), &sealed)?;
            self.snap.root = m;
            self.snap.legacy = None;
            self.snap.manifest_sha256 = sha;
        }
        // From here the change is decided (the manifest names it): a failure only delays it,
        // and the next command that writes completes it. Say so rather than "failed".
        let decided = sealed_manifest_written;
        let finish = |r: anyhow::Result<()>| {
            r.map_err(|e| {
                if decided {
                    e.context(
                        "the change is recorded and the next command that writes will complete it",
                    )
                } else {
                    e
                }
            })
        };
        if let Some(text) = &op.config {
            finish(self.vault.write(&self.vault.path(CONFIG), text.as_bytes()))?;
            self.config_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        }
        let mut emptied = std::collections::BTreeSet::new();
        for o in &op.remove {
            let path = self.vault.object_path(o);
            finish(remove_if_exists(&path))?;
            emptied.insert(fsutil::parent_dir(&path).to_path_buf());
        }
        // The removals reach the disk before the head commits to them (on file systems that do
        // not order metadata, a removed shard could otherwise come back after a crash).
        for dir in &emptied {
            finish(
                fsutil::sync_dir(dir).with_context(|| format!("cannot flush {}", dir.display())),
            )?;
        }
        // Once the manifest names the sealed key (the change is decided: an interruption from
        // here is finished, never rolled back), before the head: sealing earlier entries to a
        // key a rollback drops would lose them, and an interruption here reads as the
        // interrupted command it is. Sealed lines chain as the clear ones did; `hide` again
        // seals what was left if it was cut short.
        let mut redacted = false;
        if let (Some(c), false) = (&sealed_to, op.seal_past.is_empty()) {
            let ids = std::mem::take(&mut op.seal_past);
            match self.redact_log(c, &ids) {
                Ok(segs) => redacted = !segs.is_empty(),
                Err(e) => self.notices.push(Notice::Warning(format!(
                    "{e:#}: earlier log entries naming the documents now hidden from guardians are still readable with a guardian's key; run the same `carnet hide` again"
                ))),
            }
        }
        finish(self.write_head(&logged))?;
        if op.config.is_some() || redacted {
            self.rebuild_index_or_warn();
        } else {
            self.update_index_or_warn(base_seq, &indexed, &op.remove);
        }
        Ok(entry)
    }

    /// Renames new objects into `objects/` and makes them durable before the manifest can
    /// name them. Many objects (a folder import) are renamed first and flushed with one
    /// syncfs; a few are flushed one by one, which costs less than flushing the file system.
    fn place_objects(&self, add: Vec<(tempfile::TempPath, String)>) -> anyhow::Result<()> {
        let objects_dir = self.vault.path(OBJECTS);
        let batch = add.len() > 16;
        let mut fans = std::collections::BTreeSet::new();
        for (tmp, name) in add {
            let dest = self.vault.object_path(&name);
            let fan = dest.parent().unwrap_or(&objects_dir).to_path_buf();
            if !fans.contains(&fan) && !fan.is_dir() {
                fsutil::create_private_dir(&fan)
                    .with_context(|| format!("cannot create {}", fan.display()))?;
            }
            if !batch {
                fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("cannot flush {}", tmp.display()))?;
            }
            fsutil::rename_new(tmp, &dest)?;
            fans.insert(fan);
        }
        if fans.is_empty() {
            return Ok(());
        }
        let synced = batch
            && fsutil::sync_filesystem(&objects_dir)
                .with_context(|| format!("cannot flush {}", objects_dir.display()))?;
        if !synced {
            if batch {
                // No syncfs here: flush each object before the manifest can name it.
                for f in &fans {
                    for e in fs::read_dir(f)?.flatten() {
                        fs::File::open(e.path())?.sync_all()?;
                    }
                }
            }
            for f in fans.iter().chain(std::iter::once(&objects_dir)) {
                fsutil::sync_dir(f).with_context(|| format!("cannot flush {}", f.display()))?;
            }
        }
        Ok(())
    }

    /// The change is committed once the head is written: a failure to refresh the index after
    /// that must not report the command as failed (a retry would repeat it).
    fn update_index_or_warn(
        &mut self,
        base_seq: u64,
        added: &BTreeMap<String, FileEntry>,
        removed: &[String],
    ) {
        let updated = crate::index::update(
            self.vault,
            &self.snap.ring,
            base_seq,
            self.snap.head.log_seq,
            self.snap.document_count(),
            added,
            removed,
        );
        match updated {
            Ok(true) => {}
            Ok(false) => self.rebuild_index_or_warn(),
            Err(e) => self.notices.push(index_warning(&e)),
        }
    }

    /// Writes the index again after files changed outside a commit (earlier log entries
    /// sealed by a `hide` that had nothing else to do).
    pub fn reindex(&mut self) -> Vec<Notice> {
        self.rebuild_index_or_warn();
        std::mem::take(&mut self.notices)
    }

    fn rebuild_index_or_warn(&mut self) {
        if let Err(e) = self.rebuild_index() {
            self.notices.push(index_warning(&e));
        }
    }

    /// Writes the whole signed index from the metadata. It comes after the head: the head is
    /// the commit point, and the index only restates it for keyless checks.
    fn rebuild_index(&self) -> anyhow::Result<()> {
        let objects = self
            .snap
            .objects(self.vault)
            .context("cannot index the vault")?;
        crate::index::rebuild(
            self.vault,
            &self.snap.ring,
            self.snap.head.log_seq,
            self.snap.document_count(),
            &objects,
        )
        .context("cannot write the vault index")
    }
}

fn index_warning(e: &anyhow::Error) -> Notice {
    Notice::Warning(format!(
        "{e:#}; keyless checks will report the vault out of date until the next change"
    ))
}

fn remove_if_exists(p: &Path) -> anyhow::Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
    }
}
