//! A vault on disk: its layout, config, unlocking, the manifest, objects and the writer lock.
//!
//! Layout (see FORMAT.md):
//! ```text
//! carnet.toml     plaintext config: format version, vault id, recipients, key mode
//! identity.age    the vault's X25519 identity, passphrase-encrypted (passphrase mode only)
//! keys.age        the MAC and signing keys, bound to each identity that opens the vault
//! manifest.age    all metadata, age-encrypted JSON
//! head.age        the last log entry and current manifest, authenticated
//! log/NNNNNNNN.age    the access log, 256 entries per segment
//! objects/xx/ID.age   one age file per document, named by a random id
//! tmp/            ciphertext being written (renamed into place when complete)
//! lock            the writers' lock file (empty)
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, ErrorKind};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use sha2::{Digest, Sha256};

use crate::catalog::{ReadManifest, Root, Snapshot};
use crate::crypto::{self, OpenError};
use crate::domain::{Action, Actor};
use crate::error::Error;
use crate::fsutil::{self, Lock};
use crate::keyring::Keyring;
use crate::keys::{self, PassphraseSource, Unlocked};
use crate::log::{self, Entry, Head};
use crate::manifest::Manifest;

pub use crate::config::{Config, KeyMode};
pub use crate::layout::{CONFIG, IDENTITY, KEYS, LOCK, MANIFEST, OBJECTS, TMP};

/// `carnet.toml`, `identity.age` and `keys.age` are a few hundred bytes; allow plenty.
const MAX_CONFIG: u64 = 1 << 20;
const MAX_SMALL: u64 = 2 << 20;
/// The manifest is metadata only; anything larger is not a manifest we wrote.
const MAX_MANIFEST: u64 = 512 << 20;

/// How the user asked to unlock: `-i FILE` or a passphrase source, after the key kept by
/// `carnet unlock` when there is one.
#[derive(Debug, Clone, Default)]
pub struct KeyOpts {
    pub identity: Option<PathBuf>,
    pub passphrase: PassphraseSource,
    /// The unlocked sessions (`carnet unlock`), looked at first; `None` where the system has no
    /// store, and for `unlock` itself, which must check the key it is given.
    pub session: Option<crate::session::Session>,
}

pub struct Vault {
    pub dir: PathBuf,
    pub config: Config,
    /// SHA-256 of `carnet.toml` as read, compared with the one the head authenticates.
    pub config_sha256: String,
    /// Where each commit records what it did, when the CLI wants to know (its hooks).
    pub journal: Option<crate::events::Journal>,
    /// Opening finished a re-encryption that had been interrupted after its commit point.
    pub finished_rekey: bool,
}

impl crate::layout::Store for Vault {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

impl Vault {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether `dir` holds a vault: only its config is looked at, not its integrity.
    pub fn is_vault(dir: &Path) -> bool {
        dir.join(CONFIG).is_file()
    }

    /// Writes the first keyring, manifest, log entry (`init`) and head of a new vault.
    fn write_genesis(
        &self,
        manifest: &mut Root,
        keys: &Unlocked,
        ring: &Keyring,
        now: jiff::Timestamp,
    ) -> anyhow::Result<()> {
        fsutil::create_private_dir(&self.path(log::DIR))?;
        let recipients = self.recipients()?;
        self.write(
            &self.path(KEYS),
            &ring.seal(&self.config.vault_id, keys, &recipients)?,
        )?;
        manifest.generation = 1;
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&*manifest)?);
        let sha = hex::encode(Sha256::digest(&json[..]));
        self.write(
            &self.path(MANIFEST),
            &crypto::seal_bytes(&json, &recipients)?,
        )?;
        let entry = Entry {
            seq: 1,
            time: now,
            actor: Actor::Patient,
            action: Action::Init,
            documents: vec![],
            details: Default::default(),
            version: env!("CARGO_PKG_VERSION").into(),
            prev: log::GENESIS.into(),
            manifest_sha256: sha.clone(),
            manifest_generation: 1,
            objects_added: vec![],
            objects_removed: vec![],
        };
        let logged = log::seal_entry(&entry, ring)?;
        log::write_segment(&self.dir, 0, std::slice::from_ref(&logged), &recipients)?;
        let head = Head {
            vault_id: self.config.vault_id.clone(),
            log_seq: 1,
            log_hash: logged.hash,
            manifest_sha256: sha,
            manifest_generation: 1,
            config_sha256: self.config_sha256.clone(),
        };
        self.write(
            &self.path(log::HEAD),
            &log::seal_head(&head, ring, &recipients)?,
        )
    }

    /// Removes temp files an interrupted command left in `tmp/` (Ctrl-C during a large add).
    /// Only files untouched for an hour: a concurrent `add` may be encrypting into one right
    /// now, without the lock, and its writes keep it fresh.
    pub(crate) fn sweep_tmp(&self) {
        let Ok(rd) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        let hour = std::time::Duration::from_secs(3600);
        let stale = |p: &Path| {
            fs::symlink_metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > hour)
        };
        for e in rd.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                // An `add` stages a whole import in one folder: it is abandoned only when
                // nothing in it (not even the file being encrypted now) moved for an hour.
                let quiet = stale(&path)
                    && fs::read_dir(&path).is_ok_and(|rd| rd.flatten().all(|f| stale(&f.path())));
                if quiet {
                    let _ = fs::remove_dir_all(&path);
                }
            } else if stale(&path) {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// Replaces a derived file (the signed index) atomically but without fsync: it is not part
    /// of the commit, and a crash that loses it leaves a stale index the next write rebuilds.
    pub fn write_derived(&self, dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        fsutil::replace_in(&self.tmp_dir(), dest, bytes)
    }

    /// Replaces a file of the vault atomically, staging it in `tmp/`.
    pub fn write(&self, dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        fsutil::write_atomic_in(&self.tmp_dir(), dest, bytes)
    }

    /// Opens an existing vault's config; does not need the key.
    pub fn open(dir: &Path) -> anyhow::Result<Vault> {
        let finished_rekey = finish_rekey(dir)?;
        let cfg_path = dir.join(CONFIG);
        let text = match fsutil::read_limited(&cfg_path, MAX_CONFIG) {
            Ok(b) => String::from_utf8(b)
                .map_err(|_| Error::Integrity(format!("{} is not text", cfg_path.display())))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if dir.join(crate::layout::DESTROYING).is_file() {
                    return Err(Error::input(
                        format!(
                            "{} was being destroyed when `carnet destroy` was interrupted",
                            dir.display()
                        ),
                        "run `carnet destroy` again to finish; if you did not start it, rename \
                         carnet.toml.destroying back to carnet.toml",
                    )
                    .into());
                }
                if looks_like_vault(dir) {
                    return Err(
                        Error::Integrity(format!(
                            "{} is missing (lost, or an interrupted `carnet init`: then empty the folder and run it again)",
                            cfg_path.display()
                        ))
                        .into(),
                    );
                }
                return Err(Error::NoVault(dir.to_path_buf()).into());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", cfg_path.display())),
        };
        let config: Config = toml::from_str(&text).map_err(|e| {
            Error::Integrity(format!(
                "{} is not a valid carnet config: {}",
                cfg_path.display(),
                e.message()
            ))
        })?;
        if config.format > crate::FORMAT_VERSION {
            return Err(Error::NewerFormat {
                found: config.format,
                supported: crate::FORMAT_VERSION,
            }
            .into());
        }
        if config.format == 0 {
            return Err(Error::Integrity(format!(
                "{} names format 0, which does not exist",
                cfg_path.display()
            ))
            .into());
        }
        Ok(Vault {
            dir: dir.to_path_buf(),
            config,
            config_sha256: hex::encode(Sha256::digest(text.as_bytes())),
            journal: None,
            finished_rekey,
        })
    }

    /// Creates the vault folder tree, its identity file, first manifest and config.
    /// `slots` are the sealed slot objects the manifest already lists (the patient's SSH or
    /// hardware key, a recovery key made with the vault).
    pub fn create(
        dir: &Path,
        config: Config,
        identity_file: Option<&[u8]>,
        manifest: &mut Root,
        slots: &[(String, Vec<u8>)],
        keys: &Unlocked,
        now: jiff::Timestamp,
    ) -> anyhow::Result<Vault> {
        fsutil::create_private_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // Two `init` on one folder must not interleave: the second waits, then finds a vault.
        let _lock = Lock::acquire(&dir.join(LOCK))?;
        if Vault::is_vault(dir) {
            return Err(Error::VaultExists(dir.to_path_buf()).into());
        }
        if !is_fresh_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
            return Err(Error::NotEmpty(dir.to_path_buf()).into());
        }
        for sub in [OBJECTS, TMP] {
            fsutil::create_private_dir(&dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let ring = Keyring::generate();
        let mut config = config;
        config.signing_key = crate::sign::encode_public(&ring.verifying_key());
        let text = crate::config::text(&config)?;
        let vault = Vault {
            dir: dir.to_path_buf(),
            config,
            config_sha256: hex::encode(Sha256::digest(text.as_bytes())),
            journal: None,
            finished_rekey: false,
        };
        if let Some(bytes) = identity_file {
            vault.write(&vault.path(IDENTITY), bytes)?;
        }
        let mut objects = BTreeMap::new();
        for (object, bytes) in slots {
            let path = vault.object_path(object);
            fsutil::create_private_dir(fsutil::parent_dir(&path))
                .with_context(|| format!("cannot create {}", path.display()))?;
            vault.write(&path, bytes)?;
            objects.insert(
                object.clone(),
                crate::index::FileEntry {
                    size: bytes.len() as u64,
                    blake3: blake3::hash(bytes).to_hex().to_string(),
                },
            );
        }
        vault.write_genesis(manifest, keys, &ring, now)?;
        // The config is written last: a folder without it is not yet a vault, so an
        // interrupted init can simply be run again after emptying the folder.
        vault.write(&vault.path(CONFIG), text.as_bytes())?;
        crate::index::rebuild(&vault, &ring, 1, 0, &objects)?;
        Ok(vault)
    }

    /// The fingerprint of the vault's signing key, read from `carnet.toml` (no key needed; the
    /// keyed `verify` checks it is the keyring's own).
    pub fn fingerprint(&self) -> Result<String, Error> {
        crate::sign::decode_public(&self.config.signing_key)
            .map(|k| crate::keyring::fingerprint(&k))
            .map_err(|e| Error::Integrity(format!("{}: bad signing key: {e}", CONFIG)))
    }

    pub fn lock(&self) -> anyhow::Result<Lock> {
        Lock::acquire(&self.path(LOCK))
    }

    pub fn recipients(&self) -> anyhow::Result<Vec<age::x25519::Recipient>> {
        self.config
            .recipients
            .iter()
            .map(|r| keys::parse_recipient(r))
            .collect()
    }

    /// Gets the identities that open this vault: the key kept by `carnet unlock` when it is
    /// still valid (and is the one `-i` names, if any), else from `-i FILE` or the passphrase.
    pub fn unlock(&self, opts: &KeyOpts) -> anyhow::Result<Unlocked> {
        let wanted = crate::session::Source::of(opts.identity.as_deref());
        if let Some(kept) = opts
            .session
            .as_ref()
            .and_then(|s| s.load(&self.config, &wanted))
        {
            // `unlock` checked this identity against the whole vault; the keyring's binding,
            // which every read checks, still proves it is the vault's. The entry spares scrypt.
            return Ok(kept);
        }
        let (identities, source, passphrase) = match (&opts.identity, self.config.key) {
            (Some(path), _) => match keys::load_opening_key(path, &opts.passphrase)? {
                keys::OpeningKey::X25519(ids) => (ids, path.clone(), None),
                // An SSH or hardware key opens the vault only through its slot.
                keys::OpeningKey::Other(any) => {
                    let keys: Vec<&dyn age::Identity> = any.as_dyn();
                    return match self.open_slot(&keys, &any.recipients)? {
                        Some(u) => Ok(u),
                        None if any.recipients.is_empty() => Err(Error::input(
                            format!(
                                "{} does not say which public key it is, so its key slot cannot be found",
                                path.display()
                            ),
                            "add the plugin's recipient to the file as a comment: # recipient: age1…",
                        )
                        .into()),
                        None => Err(Error::WrongIdentity(path.clone()).into()),
                    };
                }
            },
            (None, KeyMode::External) => return Err(Error::IdentityRequired.into()),
            (None, KeyMode::Passphrase) => {
                let path = self.path(IDENTITY);
                let bytes = zeroize::Zeroizing::new(self.read_file(IDENTITY, MAX_SMALL)?);
                let (ids, pass) =
                    keys::read_identity_file_keeping_passphrase(&bytes, &path, &opts.passphrase)?;
                (ids, path, pass)
            }
        };
        // `identity.age` holds the sealed key after the vault's identity once something was
        // hidden from guardians: kept aside, and taken when the root names it.
        let (identities, spare): (Vec<_>, Vec<_>) = if identities
            .iter()
            .any(|i| self.config.recipients.contains(&i.to_public().to_string()))
        {
            identities
                .into_iter()
                .partition(|i| self.config.recipients.contains(&i.to_public().to_string()))
        } else {
            (identities, Vec::new())
        };
        let mut unlocked = Unlocked::patient(identities);
        unlocked.spare = spare;
        unlocked.passphrase = passphrase;
        let mine = unlocked.recipients();
        let as_dyn: Vec<&dyn age::Identity> = unlocked.as_dyn().collect();
        if !self.config.recipients.iter().any(|r| mine.contains(r))
            && let Some(recovered) = self.open_slot(&as_dyn, &mine)?
        {
            return Ok(recovered);
        }
        if !self.config.recipients.iter().any(|r| mine.contains(r)) {
            // Either the wrong key, or carnet.toml's recipients were changed: if the keyring
            // still opens with this identity, the key is right and the config was altered.
            let own_identity = self.config.key == KeyMode::Passphrase && opts.identity.is_none();
            let keyring_opens = self
                .read_file(KEYS, MAX_SMALL)
                .ok()
                .is_some_and(|b| crypto::open_bytes(&b, unlocked.as_dyn(), 1 << 20).is_ok());
            if own_identity || keyring_opens {
                return Err(Error::Integrity(format!(
                    "{}: its recipients are not the vault's (altered?)",
                    self.path(CONFIG).display()
                ))
                .into());
            }
            return Err(Error::WrongIdentity(source).into());
        }
        Ok(unlocked)
    }

    /// The vault identity, through the key slot of one of `recipients` (a recovery or guardian
    /// key), opened with `keys`, if the vault has such a slot and it holds this vault's identity.
    fn open_slot(
        &self,
        keys: &[&dyn age::Identity],
        recipients: &[String],
    ) -> anyhow::Result<Option<Unlocked>> {
        for r in recipients {
            // A slot that holds the sealed key too has its own name: looked for first.
            let mut found = None;
            for object in [
                crate::slots::object_id_with_sealed(r),
                crate::slots::object_id(r),
            ] {
                let path = self.object_path(&object);
                match fsutil::read_limited(&path, MAX_SMALL) {
                    Ok(b) => {
                        found = Some((path, b));
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(anyhow::Error::from(e)
                            .context(format!("cannot read the key slot {}", path.display())));
                    }
                }
            }
            let Some((path, bytes)) = found else {
                continue;
            };
            let Some(mut held) = crate::slots::open(&bytes, keys) else {
                return Err(Error::Integrity(format!(
                    "{}: the key slot for this key does not open (damaged?)",
                    path.display()
                ))
                .into());
            };
            let spare = held.split_off(1);
            let vault_identity = held.remove(0);
            if self
                .config
                .recipients
                .contains(&vault_identity.to_public().to_string())
            {
                // The role (recovery, guardian:NAME) is read from the root with the snapshot.
                return Ok(Some(Unlocked {
                    identities: vec![vault_identity],
                    actor: Actor::Recovery,
                    slot: Some(r.clone()),
                    passphrase: None,
                    sealed: None,
                    spare,
                    from_session: false,
                }));
            }
        }
        Ok(None)
    }

    /// Reads one of the vault's own files, bounded: a missing or oversized one is damage
    /// (exit 3), anything else an I/O error naming the file.
    fn read_file(&self, name: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
        let path = self.path(name);
        fsutil::read_limited(&path, limit).map_err(|e| match e.kind() {
            ErrorKind::NotFound => {
                Error::Integrity(format!("{} is missing", path.display())).into()
            }
            ErrorKind::InvalidData => Error::Integrity(format!("{}: {e}", path.display())).into(),
            _ => anyhow::Error::from(e).context(format!("cannot read {}", path.display())),
        })
    }

    pub fn load_keyring(&self, keys: &Unlocked) -> anyhow::Result<Keyring> {
        let path = self.path(KEYS);
        let bytes = self.read_file(KEYS, MAX_SMALL)?;
        Ok(Keyring::open(
            &bytes,
            &self.config.vault_id,
            keys,
            &path.display().to_string(),
        )?)
    }

    /// Decrypts the manifest, whichever format wrote it; returns the root, the documents of a
    /// format-1 manifest (format 2 keeps them in shards), and the SHA-256 of the plaintext
    /// (what the head and the log record).
    pub fn read_manifest(&self, keys: &Unlocked) -> anyhow::Result<ReadManifest> {
        let path = self.path(MANIFEST);
        let bytes = self.read_file(MANIFEST, crypto::max_sealed_len(MAX_MANIFEST))?;
        let plain = zeroize::Zeroizing::new(
            crypto::open_bytes(&bytes, keys.as_dyn(), MAX_MANIFEST).map_err(|e| match e {
                OpenError::Io(e) => {
                    anyhow::Error::from(e).context(format!("cannot read {}", path.display()))
                }
                e => Error::Integrity(format!("{}: {e}", path.display())).into(),
            })?,
        );
        let sha = hex::encode(Sha256::digest(&plain[..]));
        let unreadable = |e: serde_json::Error| {
            Error::Integrity(format!(
                "{} does not hold a valid manifest: {e}",
                path.display()
            ))
        };
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let v: Version = serde_json::from_slice(&plain).map_err(unreadable)?;
        if v.format > crate::FORMAT_VERSION {
            return Err(Error::NewerFormat {
                found: v.format,
                supported: crate::FORMAT_VERSION,
            }
            .into());
        }
        let (root, legacy) = if v.format >= 2 {
            let root: Root = serde_json::from_slice(&plain).map_err(unreadable)?;
            crate::catalog::check_root(&root, &path.display().to_string())?;
            (root, None)
        } else {
            let m: Manifest = serde_json::from_slice(&plain).map_err(unreadable)?;
            (Root::from_v1(&m), Some(m.documents))
        };
        // Ids become file names and are sliced for display: a manifest forged with the public
        // key must not reach those paths with anything but plain hex.
        let bad_id = legacy
            .iter()
            .flatten()
            .flat_map(|d| {
                d.versions()
                    .flat_map(|v| [v.id.as_str(), v.object.as_str()])
            })
            .chain(root.grants.iter().map(|g| g.id.as_str()))
            .find(|id| !crate::ids::is_full_id(id));
        if let Some(d) = legacy.iter().flatten().find(|d| !d.history_is_sound()) {
            return Err(Error::Integrity(format!(
                "{} holds an invalid version history for {}",
                path.display(),
                crate::ids::short(&d.id)
            ))
            .into());
        }
        if let Some(id) = bad_id {
            return Err(Error::Integrity(format!(
                "{} names an invalid id {:?}",
                path.display(),
                crate::text::clean(id)
            ))
            .into());
        }
        if root.vault_id != self.config.vault_id || root.recipients != self.config.recipients {
            return Err(Error::Integrity(format!(
                "{} does not match {} (vault id or recipients differ)",
                path.display(),
                CONFIG
            ))
            .into());
        }
        Ok(ReadManifest {
            root,
            legacy,
            sha256: sha,
        })
    }

    /// Unlocks and reads an authenticated snapshot: keyring, head, and the manifest the head
    /// names. Takes no lock (the manifest and head are replaced atomically).
    pub fn read(&self, opts: &KeyOpts) -> anyhow::Result<Snapshot> {
        let read = self.unlock(opts).and_then(|keys| self.snapshot(keys));
        match read {
            // Read without the lock while a re-encryption replaced the files: not damage.
            Err(_) if self.rekeyed_since_open() => Err(Error::input(
                "the vault was re-encrypted (`carnet rekey` or `carnet key rm`) while this command read it",
                "run the command again",
            )
            .into()),
            r => r,
        }
    }

    /// Whether a re-encryption has run (or is running) since this vault's config was read.
    fn rekeyed_since_open(&self) -> bool {
        // Only a committed one changes what a reader sees; an uncommitted staging folder
        // leaves every file of the vault as it was.
        crate::rekey::state(&self.dir) == crate::rekey::State::Committed
            || fsutil::read_limited(&self.path(CONFIG), MAX_CONFIG)
                .is_ok_and(|b| hex::encode(Sha256::digest(&b)) != self.config_sha256)
    }

    pub fn snapshot(&self, keys: Unlocked) -> anyhow::Result<Snapshot> {
        let ring = self.load_keyring(&keys)?;
        let head = log::read_head(&self.dir, &keys, &ring)?;
        if head.vault_id != self.config.vault_id {
            return Err(Error::Integrity(format!(
                "{} belongs to another vault",
                self.path(log::HEAD).display()
            ))
            .into());
        }
        let read = self.read_manifest(&keys)?;
        let mut keys = keys;
        if let Some(r) = &keys.slot {
            // A slot's key acts in the role the root gives it (recovery, guardian:NAME).
            let slot = read.root.slots.iter().find(|s| &s.recipient == r).ok_or_else(|| {
                Error::Integrity(format!(
                    "{}: this key's slot opens the vault but the manifest does not list it (left behind?)",
                    self.object_path(&crate::slots::object_id(r)).display()
                ))
            })?;
            keys.actor = slot.role.actor(&slot.name);
        }
        let mut read = read;
        if let Some(sealed) = &read.root.sealed {
            keys.find_sealed(&sealed.recipient);
            match &keys.sealed {
                Some(c) => read.root.open_sealed_grants(c)?,
                // A guardian never holds it; anyone else who does not was given a key from
                // before it existed.
                // identity.age (opened with the passphrase) and the patient's and recovery slots
                // are rewritten with the sealed key when it is made: one without it, or with
                // another, is an older copy put back or an altered root.
                None if !matches!(keys.actor, Actor::Guardian(_))
                    && (keys.passphrase.is_some()
                        || (keys.slot.is_some() && !keys.from_session)) =>
                {
                    return Err(Error::Integrity(format!(
                        "{} names a key for what is hidden from guardians that {} does not hold (an older copy put back, or altered?)",
                        self.path(MANIFEST).display(),
                        if keys.slot.is_some() { "this key's slot" } else { IDENTITY }
                    ))
                    .into());
                }
                None if !matches!(keys.actor, Actor::Guardian(_)) => {
                    return Err(Error::input(
                        "this key does not hold the key to what is hidden from guardians",
                        "if you ran `carnet unlock` before something was hidden, run `carnet lock` and try again",
                    )
                    .into());
                }
                None => {}
            }
        }
        let mut snap = Snapshot {
            keys,
            ring,
            head,
            root: read.root,
            legacy: read.legacy,
            manifest_sha256: read.sha256,
            pending: None,
        };
        let config_ok = snap.head.config_sha256 == self.config_sha256;
        if snap.manifest_sha256 != snap.head.manifest_sha256 || !config_ok {
            // Either a command was interrupted after writing the manifest (its log entry then
            // names this manifest, and for an upgrade this config), or a file was swapped.
            let (segs, _) = log::list_segments(&self.dir)?;
            let pending = match segs.last() {
                Some(&n) => log::read_segment(&self.dir, n, &snap.keys, &snap.ring)?.pop(),
                None => None,
            };
            let pending = pending.filter(|p| {
                p.entry.seq == snap.head.log_seq + 1
                    && p.entry.prev == snap.head.log_hash
                    && p.entry.manifest_sha256 == snap.manifest_sha256
                    && (config_ok || p.entry.upgrade_config() == Some(&self.config_sha256))
            });
            match pending {
                Some(p) => snap.pending = Some(p),
                None if !config_ok => {
                    return Err(Error::Integrity(format!(
                        "{} is not the config this vault was written with (altered?)",
                        self.path(CONFIG).display()
                    ))
                    .into());
                }
                None => {
                    return Err(Error::Integrity(format!(
                        "{} is not the manifest that {} names (replaced by another copy?)",
                        self.path(MANIFEST).display(),
                        self.path(log::HEAD).display()
                    ))
                    .into());
                }
            }
        }
        Ok(snap)
    }

    /// Where an object lives: fanned out by its first two characters, like git, so that no
    /// folder grows to hundreds of thousands of entries.
    pub fn object_path(&self, object: &str) -> PathBuf {
        crate::layout::object_path(&self.dir, object)
    }

    /// The staging folder, made again when missing: git and sync tools drop empty folders,
    /// and every write (add, grant, each commit) stages its files here.
    pub fn tmp_dir(&self) -> PathBuf {
        crate::layout::tmp_dir(&self.dir)
    }

    /// Why the command of log entry `e` must have completed, though the head does not name it:
    /// a real crash before its manifest never removed an object it lists as removed, and never
    /// let a signed index name its entry (the index comes after the head). `None` when nothing
    /// says so (then rolling it back is safe).
    pub fn completed_after(&self, e: &Entry) -> Option<String> {
        if let Some(o) = e
            .objects_removed
            .iter()
            .find(|o| !self.object_path(o).exists())
        {
            return Some(format!(
                "entry {} already removed {}",
                e.seq,
                crate::index::object_rel(o)
            ));
        }
        let signed = crate::index::read_top(&self.dir, &self.config.signing_key).ok()?;
        (signed.log_seq >= e.seq).then(|| {
            format!(
                "the signed index was written at entry {}, after entry {}",
                signed.log_seq, e.seq
            )
        })
    }

    /// Opens a document's object for streaming decryption.
    pub fn open_object<'a>(
        &self,
        doc: &crate::manifest::Document,
        keys: &'a Unlocked,
    ) -> anyhow::Result<impl std::io::Read + 'a> {
        self.open_object_checked(doc, keys, false)
    }

    /// Like `open_object`; with `check_ciphertext`, first hashes the ciphertext (BLAKE3, fast)
    /// through the same open file and compares it with the manifest, so that nothing from an
    /// object swapped on disk is released, not even before the plaintext hash fails at the end.
    pub fn open_object_checked<'a>(
        &self,
        doc: &crate::manifest::Document,
        keys: &'a Unlocked,
        check_ciphertext: bool,
    ) -> anyhow::Result<impl std::io::Read + 'a> {
        let f = self.object_file(doc)?;
        self.decrypt_object(f, doc, keys, check_ciphertext)
    }

    /// Opens a document's object file, refusing one whose size is not the stored one. The open
    /// file stays readable if the object is removed afterwards, so a caller can open it under
    /// the lock and decrypt it after.
    pub fn object_file(&self, doc: &crate::manifest::Document) -> anyhow::Result<fs::File> {
        let path = self.object_path(&doc.object);
        let f = fs::File::open(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => {
                anyhow::Error::from(Error::Integrity(format!("{} is missing", path.display())))
            }
            _ => anyhow::Error::from(e).context(format!("cannot read {}", path.display())),
        })?;
        // A swapped or truncated object usually changes size: refuse before releasing a byte.
        let len = f
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if len != doc.object_size {
            return Err(Error::Integrity(format!(
                "{} is {len} bytes, {} were stored",
                path.display(),
                doc.object_size
            ))
            .into());
        }
        Ok(f)
    }

    /// Decrypts an object file opened by `object_file` (see `open_object_checked`).
    pub fn decrypt_object<'a>(
        &self,
        mut f: fs::File,
        doc: &crate::manifest::Document,
        keys: &'a Unlocked,
        check_ciphertext: bool,
    ) -> anyhow::Result<impl std::io::Read + 'a> {
        let path = self.object_path(&doc.object);
        if check_ciphertext {
            let mut h = blake3::Hasher::new();
            std::io::copy(&mut f, &mut h)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if h.finalize().to_hex().as_str() != doc.object_blake3 {
                return Err(Error::Integrity(format!(
                    "{}: not the object that was stored",
                    path.display()
                ))
                .into());
            }
            std::io::Seek::rewind(&mut f)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        crypto::open(BufReader::with_capacity(256 * 1024, f), keys.as_dyn()).map_err(|e| match e {
            OpenError::Io(e) => {
                anyhow::Error::from(e).context(format!("cannot read {}", path.display()))
            }
            e => Error::Integrity(format!("{}: {e}", path.display())).into(),
        })
    }
}

/// A re-encryption killed after its commit point is finished before anything reads the vault:
/// the moves need no key, only the writers' lock. Costs one `stat` when there is none.
fn finish_rekey(dir: &Path) -> anyhow::Result<bool> {
    if crate::rekey::state(dir) != crate::rekey::State::Committed {
        return Ok(false);
    }
    let _lock = Lock::acquire(&dir.join(LOCK))?;
    if crate::rekey::state(dir) != crate::rekey::State::Committed {
        return Ok(false);
    }
    crate::rekey::finish(dir, &|| {}).context(
        "cannot finish the re-encryption that was interrupted (is the vault on a read-only disk?)",
    )?;
    Ok(true)
}

/// Does `dir` hold vault files even though `carnet.toml` is missing? Then the config was lost
/// (or a mirror interrupted), which is damage, not "no vault here".
fn looks_like_vault(dir: &Path) -> bool {
    let has_files = |sub: &str| fs::read_dir(dir.join(sub)).is_ok_and(|mut rd| rd.next().is_some());
    [KEYS, MANIFEST, log::HEAD, crate::index::INDEX]
        .iter()
        .any(|f| dir.join(f).exists())
        || has_files(OBJECTS)
        || has_files(log::DIR)
}

/// True when `dir` is missing, empty, or holds only a lock file left by an interrupted `init`.
pub fn is_fresh_dir(dir: &Path) -> std::io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                if e?.file_name() != LOCK {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}
