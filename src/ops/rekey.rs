//! Re-encryption (`carnet rekey`, `carnet key rm NAME`): a new vault identity, and every file
//! of the vault written again for it with fresh file keys, so that a removed (or leaked) key
//! opens nothing the vault holds afterwards.
//!
//! The whole new vault is staged in `tmp/rekey/` (see `crate::rekey`) under the writers' lock:
//! objects re-encrypted as streams and checked against their recorded plaintext hashes, the
//! shards and the root naming the new ciphertexts, the log re-encrypted with its plaintext and
//! hash chain unchanged plus one entry for this command, the keyring bound to the new identity,
//! the head, the config, the identity and the index. Then the commit marker, then the moves.
//! The keyring's MAC and signing keys are kept: professionals know the vault by its signing
//! key, and the log's MACs stay valid.

use std::collections::BTreeMap;

use age::secrecy::SecretString;
use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::catalog::{Compartment, Root, Shard, ShardKind, ShardRef};
use crate::config::{Config, KeyMode};
use crate::crypto;
use crate::domain::{Action, Actor};
use crate::error::Error;
use crate::index::FileEntry;
use crate::keys::{self, Unlocked};
use crate::layout::{CONFIG, IDENTITY, KEYS, MANIFEST, Store};
use crate::log::{self, Entry, Head};
use crate::rekey::Staging;
use crate::slots::{Role, Slot};
use crate::txn::Notice;
use crate::vault::Vault;

/// Stores the new identity file's text durably (the user's `-o FILE`).
pub type Keeper = Box<dyn FnOnce(&str) -> anyhow::Result<()>>;

/// How the new vault identity is kept.
pub enum NewKey {
    /// Passphrase mode: `identity.age` sealed under the passphrase `get` gives (asked only
    /// once the request is known to be acceptable) at scrypt cost 2^log_n.
    Passphrase {
        get: Box<dyn FnOnce() -> anyhow::Result<SecretString>>,
        log_n: u8,
    },
    /// External mode: the new identity file's text is handed to `keep` before the commit
    /// point, which must store it durably (the caller writes the user's `-o FILE`). If `keep`
    /// fails, nothing changes. None when the patient's key opens a slot (an SSH or hardware
    /// key): the slot is sealed again and there is no new file to keep.
    External { keep: Option<Keeper> },
}

/// Objects up to this size are re-encrypted in memory, on the calling thread.
const SMALL: u64 = 1 << 20;

/// A document object written again: its plaintext's SHA-256, and the new file's size and hash.
struct Resealed {
    sha256: String,
    size: u64,
    blake3: String,
}

/// `NewKey` once resolved.
enum Kept {
    Passphrase(SecretString, u8),
    External(Keeper),
    /// The patient's own key opens a slot, sealed again like the others.
    Slot,
}

pub struct Request<'a> {
    /// The slot to remove, by name (`key rm NAME`); none for `rekey`.
    pub remove: Option<&'a str>,
    pub new_key: NewKey,
    /// Bytes of objects re-encrypted so far, of the total.
    pub progress: &'a dyn Fn(u64, u64),
    /// The test hook: kill the process after this many files staged or moved.
    pub kill_at: Option<u64>,
}

/// What the re-encryption did, for the report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The key removed (`key rm`), by role, name and recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
    /// The new vault recipient.
    pub recipient: String,
    /// Files written again: objects (documents, shards, slots, profile), log segments and the
    /// small metadata files.
    pub objects: usize,
    pub segments: usize,
    pub bytes: u64,
    #[serde(skip)]
    pub notices: Vec<Notice>,
}

#[derive(Debug, Serialize)]
pub struct Removed {
    pub role: Role,
    pub name: String,
    pub recipient: String,
}

/// Which keys this actor may change: the patient, or the holder of the recovery key (who
/// replaces a lost passphrase). A guardian opens the vault for a minor; changing its keys would
/// lock the minor out.
pub fn check_may_manage_keys(keys: &Unlocked) -> Result<(), Error> {
    match keys.actor {
        Actor::Patient | Actor::Recovery => Ok(()),
        _ => Err(Error::input(
            format!(
                "only the patient (or the recovery key) changes the vault's keys; this vault was opened as {}",
                keys.actor
            ),
            "ask the patient to run the command with their passphrase or identity file",
        )),
    }
}

/// Re-encrypts the vault for a new identity, removing the slot `req.remove` if given.
pub fn rekey(
    vault: &Vault,
    keys: Unlocked,
    req: Request<'_>,
    now: jiff::Timestamp,
) -> anyhow::Result<Report> {
    let held = vault.begin(keys, now)?.hold();
    let _lock = held.lock;
    let snap = held.snap;
    check_may_manage_keys(&snap.keys)?;
    let notices = held.notices;
    let root = &snap.root;

    let removed = match req.remove {
        None => None,
        Some(name) => {
            let s = root.slots.iter().find(|s| s.name == name).ok_or_else(|| {
                let names: Vec<&str> = root
                    .slots
                    .iter()
                    .filter(|s| s.role != Role::Patient)
                    .map(|s| s.name.as_str())
                    .collect();
                Error::input(
                    format!("the vault has no key named {:?}", crate::text::clean(name)),
                    if names.is_empty() {
                        "`carnet key ls` lists the keys; the patient's own key cannot be removed, only replaced (`carnet passphrase`, `carnet rekey`)".to_string()
                    } else {
                        format!("the keys you can remove: {}", names.join(", "))
                    },
                )
            })?;
            if s.role == Role::Patient {
                return Err(Error::input(
                    "the patient's own key cannot be removed",
                    "replace the vault's keys with `carnet rekey`; remove a recovery or guardian key by its name",
                )
                .into());
            }
            let hardware = root.slots.iter().any(|p| {
                p.role == Role::Patient
                    && matches!(
                        keys::check_any_recipient(&p.recipient),
                        Ok(keys::KeyKind::Plugin(_))
                    )
            });
            if hardware
                && s.role == Role::Recovery
                && !root
                    .slots
                    .iter()
                    .any(|o| o.role == Role::Recovery && o.name != s.name)
            {
                return Err(Error::input(
                    "your own key is a hardware key, which cannot be copied: this recovery key is the only copyable one",
                    "keep it; to replace it, re-encrypt with `carnet rekey` after a suspected leak",
                )
                .into());
            }
            if snap.keys.slot.as_deref() == Some(s.recipient.as_str()) {
                return Err(Error::input(
                    format!(
                        "the vault was opened with the key {:?}, which this would remove",
                        crate::text::clean(name)
                    ),
                    "open the vault with your passphrase or identity file to remove it (after `carnet passphrase` if you lost it)",
                )
                .into());
            }
            Some(s.clone())
        }
    };
    // Every shard is read once: the documents to re-encrypt come from them, the stray check
    // compares with what they name, and they are written again below.
    let mut shards: Vec<(Compartment, ShardKind, String, ShardRef, Shard)> = Vec::new();
    let mut tables = vec![(Compartment::Open, &root.shards)];
    if let Some(s) = &root.sealed {
        if snap.keys.sealed.is_none() {
            return Err(Error::input(
                "this key does not hold the key to what is hidden from guardians",
                "re-encrypt with the patient's own key",
            )
            .into());
        }
        tables.push((Compartment::Sealed, &s.shards));
    }
    for (place, t) in tables {
        for (kind, table) in [
            (ShardKind::Documents, &t.documents),
            (ShardKind::Digests, &t.digests),
        ] {
            for (key, r) in table {
                let shard = crate::catalog::read_shard(vault, &snap.keys, place, kind, key, r)?;
                shards.push((place, kind, key.clone(), r.clone(), shard));
            }
        }
    }
    let named: std::collections::BTreeSet<&str> = shards
        .iter()
        .flat_map(|(_, _, _, _, s)| s.documents.iter())
        .flat_map(|d| d.versions().map(|v| v.object.as_str()))
        .chain(root.shard_objects().map(|r| r.object.as_str()))
        .chain(root.slots.iter().map(|s| s.object.as_str()))
        .chain(root.profile.iter().map(|v| v.object.as_str()))
        .collect();
    let stray = stray_objects(vault, &named)?;
    if let Some(rel) = stray.first() {
        return Err(Error::Integrity(format!(
            "{} is not an object the vault names ({} such file(s)): re-encryption would leave it readable by the old keys",
            crate::text::clean(rel),
            stray.len()
        ))
        .into());
    }

    let new_key = match (vault.config.key, req.new_key) {
        (KeyMode::Passphrase, NewKey::Passphrase { get, log_n }) => Kept::Passphrase(get()?, log_n),
        (KeyMode::External, NewKey::External { keep }) => {
            match (keep, root.slots.iter().any(|s| s.role == Role::Patient)) {
                (None, true) => Kept::Slot,
                (Some(keep), false) => Kept::External(keep),
                (None, false) => {
                    return Err(Error::input(
                        "this vault is opened with an identity file, which re-encryption replaces",
                        "name the file for the new identity: -o FILE (the old one opens nothing afterwards)",
                    )
                    .into());
                }
                (Some(_), true) => {
                    return Err(Error::input(
                        "-o is not needed: your key opens the vault through its key slot, which is sealed again",
                        "drop -o",
                    )
                    .into());
                }
            }
        }
        _ => {
            return Err(Error::input(
                "this vault keeps its key in another way than the one given",
                "passphrase vaults get a passphrase; identity-file vaults an output file (-o)",
            )
            .into());
        }
    };
    let kill_at = req.kill_at;
    let ticks = std::sync::atomic::AtomicU64::new(0);
    let tick = move || {
        let n = ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if kill_at == Some(n) {
            kill_self();
        }
    };
    let tick = std::sync::Arc::new(tick);
    let staged_tick = {
        let t = tick.clone();
        Box::new(move || t()) as Box<dyn Fn() + Send + Sync>
    };
    let mut staging = Staging::create(&vault.dir, staged_tick)?;

    let (new_id, identity_text) = keys::new_identity_file();
    let new_recipients = vec![new_id.to_public()];
    let new_recipient = new_id.to_public().to_string();
    // What is hidden from guardians gets a new sealed key too: a removed recovery key held it.
    let new_sealed = root
        .sealed
        .as_ref()
        .map(|_| age::x25519::Identity::generate());
    let sealed_recipients: Vec<age::x25519::Recipient> =
        new_sealed.iter().map(|c| c.to_public()).collect();
    let to = |place: Compartment| match place {
        Compartment::Sealed => &sealed_recipients,
        Compartment::Open => &new_recipients,
    };
    let old = &snap.keys;

    // 1. Document objects, every stored version, streamed and checked.
    let mut objects: BTreeMap<String, FileEntry> = BTreeMap::new();
    let todo: Vec<(Compartment, &crate::manifest::Document)> = {
        let mut seen = std::collections::BTreeSet::new();
        shards
            .iter()
            .flat_map(|(place, _, _, _, s)| s.documents.iter().map(move |d| (*place, d)))
            .flat_map(|(place, d)| d.stored_objects().into_iter().map(move |v| (place, v)))
            .filter(|(_, d)| seen.insert(d.object.clone()))
            .collect()
    };
    let total: u64 = todo.iter().map(|(_, d)| d.object_size).sum();
    let mut done_bytes = 0u64;
    (req.progress)(0, total);
    for (place, d) in &todo {
        let new_recipients = to(*place);
        let f = vault.object_file(d)?;
        let plain = vault.decrypt_object(f, d, old, false)?;
        let rel = crate::index::object_rel(&d.object);
        let damaged = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                anyhow::Error::from(Error::Integrity(format!(
                    "{}: its content is damaged or truncated",
                    vault.object_path(&d.object).display()
                )))
            }
            _ => anyhow::Error::from(e).context(format!("cannot re-encrypt {rel}")),
        };
        let sealed = if d.object_size <= SMALL {
            // Most of a record is small files: sealed in memory, on this thread, rather than
            // through the streaming pipeline and its hashing threads (three thread starts and
            // hand-offs per object were most of the time on a busy machine).
            let mut buf = Zeroizing::new(Vec::with_capacity(d.object_size as usize));
            std::io::Read::read_to_end(&mut std::io::Read::take(plain, SMALL + 1), &mut buf)
                .map_err(damaged)?;
            let bytes = crypto::seal_bytes(&buf, new_recipients)?;
            staging.write_quiet(&rel, &bytes)?;
            Resealed {
                sha256: hex::encode(Sha256::digest(&buf[..])),
                size: bytes.len() as u64,
                blake3: blake3::hash(&bytes).to_hex().to_string(),
            }
        } else {
            let out = staging.create_file(&rel)?;
            let base = done_bytes;
            let progress = |n: u64| (req.progress)(base + n.min(d.object_size), total);
            let (sealed, out) = crypto::seal(
                plain,
                new_recipients,
                std::io::BufWriter::with_capacity(256 * 1024, out),
                &progress,
            )
            .map_err(damaged)?;
            out.into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("cannot write {rel}"))?;
            Resealed {
                sha256: hex::encode(sealed.sha256),
                size: sealed.cipher_size,
                blake3: hex::encode(sealed.cipher_blake3),
            }
        };
        if sealed.sha256 != d.sha256 {
            return Err(Error::Integrity(format!(
                "{}: not the content that was stored (its SHA-256 differs)",
                vault.object_path(&d.object).display()
            ))
            .into());
        }
        staging.done();
        done_bytes += d.object_size;
        (req.progress)(done_bytes, total);
        objects.insert(
            d.object.clone(),
            FileEntry {
                size: sealed.size,
                blake3: sealed.blake3,
            },
        );
    }

    // 2. The shards, naming the new ciphertexts; same object ids.
    let mut new_root: Root = root.clone();
    new_root.recipients = vec![new_recipient.clone()];
    new_root.generation = root.generation + 1;
    if let (Some(s), Some(c)) = (&mut new_root.sealed, &new_sealed) {
        s.recipient = c.to_public().to_string();
        for (o, e) in s.objects.iter_mut() {
            if let Some(n) = objects.get(o) {
                *e = n.clone();
            }
        }
    }
    for (place, kind, key, r, mut shard) in shards {
        for d in &mut shard.documents {
            restamp(d, &objects)?;
        }
        let json = Zeroizing::new(serde_json::to_vec(&shard)?);
        let sealed = crypto::seal_bytes(&json, to(place))?;
        staging.write(&crate::index::object_rel(&r.object), &sealed)?;
        let e = FileEntry {
            size: sealed.len() as u64,
            blake3: blake3::hash(&sealed).to_hex().to_string(),
        };
        let new_ref = ShardRef {
            object: r.object.clone(),
            size: e.size,
            blake3: e.blake3.clone(),
            count: r.count,
        };
        objects.insert(r.object.clone(), e);
        let tables = match (place, &mut new_root.sealed) {
            (Compartment::Sealed, Some(s)) => &mut s.shards,
            _ => &mut new_root.shards,
        };
        match kind {
            ShardKind::Documents => tables.documents.insert(key, new_ref),
            ShardKind::Digests => tables.digests.insert(key, new_ref),
        };
    }

    // 3. The emergency profile's versions.
    for v in &mut new_root.profile {
        let (_, plain) = crate::profile::read_with_plaintext(vault, old, v)?;
        let sealed = crypto::seal_bytes(&plain, &new_recipients)?;
        staging.write(&crate::index::object_rel(&v.object), &sealed)?;
        v.size = sealed.len() as u64;
        v.blake3 = blake3::hash(&sealed).to_hex().to_string();
        objects.insert(v.object.clone(), v.file_entry());
    }

    // 4. The slots that stay, each holding the new identity; the removed one is dropped.
    let mut slots: Vec<Slot> = Vec::new();
    for s in &root.slots {
        if removed.as_ref().is_some_and(|r| r.recipient == s.recipient) {
            continue;
        }
        let to = crate::pro::recipient(&s.recipient)?;
        // The patient's and recovery keys hold the sealed key too; a guardian's never.
        let holds = new_sealed.as_ref().filter(|_| s.role != Role::Guardian);
        if crate::slots::object_id_for(&s.recipient, holds.is_some()) != s.object {
            return Err(Error::Integrity(format!(
                "the key slot {:?} is not where its key looks for it (run `carnet verify`)",
                crate::text::clean(&s.name)
            ))
            .into());
        }
        let sealed = crate::slots::seal_with(&new_id, holds, &*to)?;
        staging.write(&crate::index::object_rel(&s.object), &sealed)?;
        let mut s = s.clone();
        s.size = sealed.len() as u64;
        s.blake3 = blake3::hash(&sealed).to_hex().to_string();
        objects.insert(s.object.clone(), FileEntry::from(&s));
        slots.push(s);
    }
    new_root.slots = slots;
    let stored = new_root.to_stored()?;
    new_root.requires = stored.requires.clone();
    let root_json = Zeroizing::new(serde_json::to_vec(&stored)?);
    let root_sha = hex::encode(Sha256::digest(&root_json[..]));

    // 5. The config and the entry for this command.
    // `begin` upgraded a format-1 vault on disk; the config read before it says format 1.
    let config = Config {
        format: crate::FORMAT_VERSION,
        recipients: vec![new_recipient.clone()],
        ..vault.config.clone()
    };
    let config_text = crate::config::text(&config)?;
    let (action, mut details) = match &removed {
        Some(s) => (
            Action::KeyRm,
            serde_json::json!({"role": s.role, "name": s.name, "recipient": s.recipient}),
        ),
        None => (Action::Rekey, serde_json::json!({})),
    };
    details["vault_recipient"] = new_recipient.clone().into();
    details["objects"] = objects.len().into();
    let entry = Entry {
        seq: snap.head.log_seq + 1,
        time: now,
        actor: old.actor.clone(),
        action,
        documents: vec![],
        details: match details {
            serde_json::Value::Object(m) => m,
            _ => Default::default(),
        },
        version: env!("CARGO_PKG_VERSION").into(),
        prev: snap.head.log_hash.clone(),
        manifest_sha256: root_sha.clone(),
        manifest_generation: new_root.generation,
        objects_added: vec![],
        objects_removed: removed.iter().map(|s| s.object.clone()).collect(),
    };
    let logged = log::seal_entry(&entry, &snap.ring)?;

    // 6. The log, segment by segment: the same lines, checked, under the new key.
    let segments = stage_log(
        &mut staging,
        vault,
        old,
        &snap.ring,
        &logged,
        &new_recipients,
        sealed_recipients.first(),
    )?;

    // 7. The small files: keyring, root, identity, config, head.
    let new_keys = Unlocked::patient(vec![new_id.clone()]);
    staging.write(
        KEYS,
        &snap
            .ring
            .seal(&vault.config.vault_id, &new_keys, &new_recipients)?,
    )?;
    staging.write(MANIFEST, &crypto::seal_bytes(&root_json, &new_recipients)?)?;
    let keep = match new_key {
        Kept::Passphrase(passphrase, log_n) => {
            let text = keys::vault_identity_text(&new_id, new_sealed.as_ref());
            staging.write(
                IDENTITY,
                &keys::encrypt_with_passphrase(text.as_bytes(), passphrase, log_n)?,
            )?;
            None
        }
        Kept::External(keep) => Some(keep),
        Kept::Slot => None,
    };
    staging.write(CONFIG, config_text.as_bytes())?;
    let head = Head {
        vault_id: vault.config.vault_id.clone(),
        log_seq: entry.seq,
        log_hash: logged.hash.clone(),
        manifest_sha256: root_sha,
        manifest_generation: new_root.generation,
        config_sha256: hex::encode(Sha256::digest(config_text.as_bytes())),
    };
    staging.write(
        log::HEAD,
        &log::seal_head(&head, &snap.ring, &new_recipients)?,
    )?;
    let documents = snap.document_count();
    let staged = StagedStore {
        dir: staging.dir().to_path_buf(),
        config,
    };
    crate::index::rebuild(&staged, &snap.ring, entry.seq, documents, &objects)
        .context("cannot write the new index")?;

    // 8. The new identity goes to its keeper before the commit point: after it, only the new
    // identity opens the vault.
    if let Some(keep) = keep {
        keep(&identity_text)?;
    }
    let mut remove: Vec<String> = removed
        .iter()
        .map(|s| crate::index::object_rel(&s.object))
        .collect();
    // Index parts of fans that no longer hold an object (the removed slot's).
    for (rel, _) in crate::index::walk(&vault.path(crate::index::PARTS)) {
        let rel = format!("{}/{rel}", crate::index::PARTS);
        if !staging.dir().join(&rel).exists() {
            remove.push(rel);
        }
    }
    staging.commit(&vault.config.vault_id, remove)?;
    let t = tick.clone();
    crate::rekey::finish(&vault.dir, &move || t())?;
    if let Some(j) = &vault.journal {
        j.record(crate::events::Event {
            action: entry.action.to_string(),
            time: entry.time,
            vault_id: vault.config.vault_id.clone(),
            actor: entry.actor.to_string(),
            count: 0,
            documents: vec![],
            titles: None,
            test: false,
        });
    }
    let mut notices = notices;
    if !root.professionals.is_empty() || !root.grants.is_empty() {
        notices.push(Notice::Note(
            "professionals encrypt deposits and receipts to the key on your card: send them your new card (`carnet card`); receipts for grants made before cannot be read any more".into(),
        ));
    }
    Ok(Report {
        removed: removed.map(|s| Removed {
            role: s.role,
            name: s.name,
            recipient: s.recipient,
        }),
        recipient: new_recipient,
        objects: objects.len(),
        segments,
        bytes: total,
        notices,
    })
}

/// The staging folder seen as a vault folder, for the index writer.
struct StagedStore {
    dir: std::path::PathBuf,
    config: Config,
}

impl Store for StagedStore {
    fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// Stages every log segment under `to`, the same lines (each checked) with `logged` appended,
/// and returns how many segments it wrote. With `new_sealed` (the sealed key changes) every
/// sealed entry is sealed again to it, which needs the old sealed key; without, sealed lines
/// are kept byte for byte like the others.
fn stage_log(
    staging: &mut Staging,
    vault: &Vault,
    old: &Unlocked,
    ring: &crate::keyring::Keyring,
    logged: &log::Logged,
    to: &[age::x25519::Recipient],
    new_sealed: Option<&age::x25519::Recipient>,
) -> anyhow::Result<usize> {
    let (segs, _) = log::list_segments(&vault.dir)?;
    let last = *segs
        .last()
        .ok_or_else(|| Error::Integrity("the access log is empty".into()))?;
    let mut segments = 0usize;
    for &n in &segs {
        let mut lines = Vec::new();
        for l in log::read_segment(&vault.dir, n, old, ring)? {
            lines.push(match new_sealed {
                Some(c) if l.sealed => log::reseal_line(&l, ring, c)?.line,
                _ => l.line,
            });
        }
        let append_here = n == last && !log::lines_fill_segment(&lines);
        if append_here {
            lines.push(logged.line.clone());
        }
        stage_segment(staging, n, &lines, to)?;
        segments += 1;
        if n == last && !append_here {
            stage_segment(staging, n + 1, std::slice::from_ref(&logged.line), to)?;
            segments += 1;
        }
    }
    Ok(segments)
}

fn stage_segment(
    staging: &mut Staging,
    n: u64,
    lines: &[String],
    to: &[age::x25519::Recipient],
) -> anyhow::Result<()> {
    let mut text = Zeroizing::new(String::with_capacity(
        lines.iter().map(|l| l.len() + 1).sum(),
    ));
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    let sealed = crypto::seal_bytes(text.as_bytes(), to)?;
    let path = log::segment_path(std::path::Path::new(""), n);
    let rel = path.to_string_lossy().replace('\\', "/");
    staging.write(&rel, &sealed)
}

/// Gives every version of `d` its object's new size and hash.
fn restamp(
    d: &mut crate::manifest::Document,
    objects: &BTreeMap<String, FileEntry>,
) -> anyhow::Result<()> {
    let stamp = |v: &mut crate::manifest::Document| -> Result<(), Error> {
        let e = objects.get(&v.object).ok_or_else(|| {
            Error::Integrity(format!(
                "{} names an object that was not re-encrypted",
                crate::ids::short(&v.id)
            ))
        })?;
        v.object_size = e.size;
        v.object_blake3 = e.blake3.clone();
        Ok(())
    };
    for v in &mut d.history {
        stamp(v)?;
    }
    Ok(stamp(d)?)
}

/// Files under `objects/` that the metadata does not name, and files in `log/` that are not
/// segments (system files aside): re-encryption would leave them readable by the old keys.
fn stray_objects(
    vault: &Vault,
    named: &std::collections::BTreeSet<&str>,
) -> anyhow::Result<Vec<String>> {
    let (_, log_strays) = log::list_segments(&vault.dir)?;
    let log_strays = log_strays.into_iter().map(|p| {
        p.strip_prefix(&vault.dir)
            .unwrap_or(&p)
            .display()
            .to_string()
    });
    Ok(crate::index::walk(&vault.path(crate::layout::OBJECTS))
        .into_iter()
        .map(|(rel, _)| format!("{}/{rel}", crate::layout::OBJECTS))
        .filter(|rel| crate::index::system_file(rel).is_none())
        .filter(|rel| {
            rel.strip_prefix("objects/")
                .and_then(|r| r.rsplit('/').next())
                .and_then(|n| n.strip_suffix(".age"))
                .is_none_or(|id| !named.contains(id))
        })
        .chain(log_strays.filter(|r| crate::index::system_file(r).is_none()))
        .collect())
}

/// The test hook's kill: SIGKILL, as a user's `kill -9` or a power cut would stop it (no
/// destructors, no buffered output flushed).
fn kill_self() {
    #[cfg(target_os = "linux")]
    {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
    std::process::abort();
}

impl From<&Slot> for FileEntry {
    fn from(s: &Slot) -> FileEntry {
        FileEntry {
            size: s.size,
            blake3: s.blake3.clone(),
        }
    }
}
