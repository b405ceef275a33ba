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
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::catalog::Root;
use crate::crypto::{self, OpenError};
use crate::domain::{Action, Actor};
use crate::error::Error;
use crate::fsutil::{self, Lock};
use crate::index::FileEntry;
use crate::keyring::Keyring;
use crate::keys::{self, PassphraseSource, Unlocked};
use crate::log::{self, Entry, Head, Logged};
use crate::manifest::{Document, Manifest};

pub const CONFIG: &str = "carnet.toml";
pub const IDENTITY: &str = "identity.age";
pub const MANIFEST: &str = "manifest.age";
pub const KEYS: &str = "keys.age";
pub const OBJECTS: &str = "objects";
pub const TMP: &str = "tmp";
pub const LOCK: &str = "lock";

/// `carnet.toml`, `identity.age` and `keys.age` are a few hundred bytes; allow plenty.
const MAX_CONFIG: u64 = 1 << 20;
const MAX_SMALL: u64 = 2 << 20;
/// The manifest is metadata only; anything larger is not a manifest we wrote.
const MAX_MANIFEST: u64 = 512 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    /// The identity lives in `identity.age`, protected by the patient's passphrase.
    Passphrase,
    /// The identity lives outside the vault and is given with `-i FILE`.
    External,
}

/// `carnet.toml`. Holds nothing private: recipients are public keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub format: u32,
    pub vault_id: String,
    pub key: KeyMode,
    pub recipients: Vec<String>,
    /// The vault's signing key (minisign format): checks the signed index without the key.
    pub signing_key: String,
}

/// How the user asked to unlock: `-i FILE` or a passphrase source.
#[derive(Debug, Clone, Default)]
pub struct KeyOpts {
    pub identity: Option<PathBuf>,
    pub passphrase: PassphraseSource,
}

pub struct Vault {
    pub dir: PathBuf,
    pub config: Config,
    /// SHA-256 of `carnet.toml` as read, compared with the one the head authenticates.
    pub config_sha256: String,
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
    fn sweep_tmp(&self) {
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

    fn config_text(config: &Config) -> anyhow::Result<String> {
        Ok(format!(
            "# carnet vault: see FORMAT.md. Public data only; everything else is encrypted.\n{}",
            toml::to_string(config).context("cannot encode the config")?
        ))
    }

    /// Opens an existing vault's config; does not need the key.
    pub fn open(dir: &Path) -> anyhow::Result<Vault> {
        let cfg_path = dir.join(CONFIG);
        let text = match fsutil::read_limited(&cfg_path, MAX_CONFIG) {
            Ok(b) => String::from_utf8(b)
                .map_err(|_| Error::Integrity(format!("{} is not text", cfg_path.display())))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
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
        })
    }

    /// Creates the vault folder tree, its identity file, first manifest and config.
    pub fn create(
        dir: &Path,
        config: Config,
        identity_file: Option<&[u8]>,
        manifest: &mut Root,
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
        let text = Vault::config_text(&config)?;
        let vault = Vault {
            dir: dir.to_path_buf(),
            config,
            config_sha256: hex::encode(Sha256::digest(text.as_bytes())),
        };
        if let Some(bytes) = identity_file {
            vault.write(&vault.path(IDENTITY), bytes)?;
        }
        vault.write_genesis(manifest, keys, &ring, now)?;
        // The config is written last: a folder without it is not yet a vault, so an
        // interrupted init can simply be run again after emptying the folder.
        vault.write(&vault.path(CONFIG), text.as_bytes())?;
        crate::index::rebuild(&vault, &ring, 1, 0, &BTreeMap::new())?;
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

    /// Gets the identities that open this vault, from `-i FILE` or the passphrase.
    pub fn unlock(&self, opts: &KeyOpts) -> anyhow::Result<Unlocked> {
        let (identities, source) = match (&opts.identity, self.config.key) {
            (Some(path), _) => (
                keys::load_identity_path(path, &opts.passphrase)?,
                path.clone(),
            ),
            (None, KeyMode::External) => return Err(Error::IdentityRequired.into()),
            (None, KeyMode::Passphrase) => {
                let path = self.path(IDENTITY);
                let bytes = zeroize::Zeroizing::new(self.read_file(IDENTITY, MAX_SMALL)?);
                (
                    keys::read_identity_file(&bytes, &path, &opts.passphrase)?,
                    path,
                )
            }
        };
        let unlocked = Unlocked { identities };
        let mine = unlocked.recipients();
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
            .flat_map(|d| [&d.id, &d.object])
            .chain(root.grants.iter().map(|g| &g.id))
            .find(|id| !crate::ids::is_full_id(id));
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
        let keys = self.unlock(opts)?;
        self.snapshot(keys)
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
                    && (config_ok || upgrade_config(&p.entry) == Some(&self.config_sha256))
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

    /// Locks the vault for writing and reads it; finishes or rolls back a command that was
    /// interrupted (crash, kill -9, full disk) so that every write starts from a clean state.
    /// `now` is the time the entries of this write record (the CLI's clock, or `CARNET_NOW`).
    pub fn begin(&self, keys: Unlocked, now: jiff::Timestamp) -> anyhow::Result<Txn<'_>> {
        let lock = self.lock()?;
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
            notices: Vec::new(),
            now,
        };
        txn.recover()?;
        txn.upgrade()?;
        Ok(txn)
    }

    /// Where an object lives: fanned out by its first two characters, like git, so that no
    /// folder grows to hundreds of thousands of entries.
    pub fn object_path(&self, object: &str) -> PathBuf {
        self.dir
            .join(OBJECTS)
            .join(&object[..2])
            .join(format!("{object}.age"))
    }

    /// The staging folder, made again when missing: git and sync tools drop empty folders,
    /// and every write (add, grant, each commit) stages its files here.
    pub fn tmp_dir(&self) -> PathBuf {
        let dir = self.path(TMP);
        fsutil::ensure_dir(&dir);
        dir
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
        let path = self.object_path(&doc.object);
        let mut f = fs::File::open(&path).map_err(|e| match e.kind() {
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

/// The default vault folder: `$XDG_DATA_HOME/carnet`, else `~/.local/share/carnet`.
pub fn default_dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("carnet"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            Error::input(
                "no vault folder given and HOME is not set",
                "pass --vault DIR or set CARNET_VAULT",
            )
        })?;
    Ok(PathBuf::from(home).join(".local/share/carnet"))
}

/// `manifest.age` as read: the root (format 2, or converted from format 1), the documents of a
/// format-1 manifest, and the SHA-256 of the plaintext.
pub struct ReadManifest {
    pub root: Root,
    pub legacy: Option<Vec<Document>>,
    pub sha256: String,
}

/// The config an `upgrade` entry commits to (it rewrites `carnet.toml` with the new format).
fn upgrade_config(e: &Entry) -> Option<&str> {
    if e.action != Action::Upgrade {
        return None;
    }
    e.details.get("config_sha256").and_then(|v| v.as_str())
}

/// An authenticated, consistent view of the vault.
pub struct Snapshot {
    pub keys: Unlocked,
    pub ring: Keyring,
    pub head: Head,
    /// Patient, recipients, professionals, grants and (format 2) the shard table.
    pub root: Root,
    /// The documents of a format-1 manifest; format 2 keeps them in shards, read on demand.
    pub legacy: Option<Vec<Document>>,
    pub manifest_sha256: String,
    /// The entry of a command interrupted after it wrote the manifest; the next write finishes it.
    pub pending: Option<Logged>,
}

/// What one command does to the vault, committed as one log entry.
pub struct Op {
    pub action: Action,
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
    /// A new `carnet.toml`, written after the manifest and before the head (the upgrade).
    config: Option<String>,
}

impl Op {
    pub fn new(action: Action) -> Op {
        Op {
            action,
            documents: Vec::new(),
            details: Default::default(),
            put: Vec::new(),
            delete: Vec::new(),
            root: None,
            add: Vec::new(),
            remove: Vec::new(),
            config: None,
        }
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
                "finished rolling back `{}` (log entry {})",
                before.entry.action, before.entry.seq
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
            if let Some(want) = upgrade_config(e) {
                self.finish_upgrade_config(want)?;
            }
            self.write_head(&last)?;
            self.snap.pending = None;
            self.rebuild_index_or_warn();
            self.notices.push(Notice::Note(format!(
                "finished `{}` (log entry {}), which had been interrupted",
                e.action, e.seq
            )));
            Ok(())
        } else if self.snap.manifest_sha256 == head.manifest_sha256
            && self.config_sha256 == head.config_sha256
        {
            // It stopped before its manifest: undo what it put in place, and say so in the log.
            for o in &e.objects_added {
                remove_if_exists(&self.vault.object_path(o))?;
            }
            // The log has moved on by the abandoned entry; the manifest has not. The
            // `interrupted` entry chains after it and its head is written as usual.
            self.snap.head.log_seq = last.entry.seq;
            self.snap.head.log_hash = last.hash.clone();
            let (seq, action) = (e.seq, e.action.to_string());
            self.notices.push(Notice::Note(format!(
                "rolled back `{action}` (log entry {seq}), which had been interrupted"
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
        let text = Vault::config_text(&config)?;
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
        let text = Vault::config_text(&config)?;
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
        let entry = self.append(op)?;
        Ok(Committed {
            entry,
            snap: self.snap,
            notices: self.notices,
        })
    }

    fn append(&mut self, mut op: Op) -> anyhow::Result<Entry> {
        let base_seq = self.snap.head.log_seq;
        // Objects the index must list from now on: new documents' and new shards'.
        let mut indexed: BTreeMap<String, FileEntry> = op
            .put
            .iter()
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
            let mut root = plan.root;
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
            let json = zeroize::Zeroizing::new(
                serde_json::to_vec(&root).context("cannot encode the manifest")?,
            );
            let sha = hex::encode(Sha256::digest(&json[..]));
            let sealed = crypto::seal_bytes(&json, &self.recipients)
                .context("cannot encrypt the manifest")?;
            Some((root, sha, sealed))
        } else {
            None
        };
        let (sha, generation) = match &sealed_manifest {
            Some((m, sha, _)) => (sha.clone(), m.generation),
            None => (self.snap.manifest_sha256.clone(), self.snap.root.generation),
        };
        let entry = Entry {
            seq: self.snap.head.log_seq + 1,
            time: self.now,
            actor: Actor::Patient,
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
        let logged = log::seal_entry(&entry, &self.snap.ring)?;
        if log::segment_full(&self.tail) {
            self.tail.clear();
            self.tail_seg += 1;
        }
        self.tail.push(logged.clone());
        log::write_segment(&self.vault.dir, self.tail_seg, &self.tail, &self.recipients)?;

        self.place_objects(std::mem::take(&mut op.add))?;
        if let Some((m, sha, sealed)) = sealed_manifest {
            self.vault.write(&self.vault.path(MANIFEST), &sealed)?;
            self.snap.root = m;
            self.snap.legacy = None;
            self.snap.manifest_sha256 = sha;
        }
        if let Some(text) = &op.config {
            self.vault
                .write(&self.vault.path(CONFIG), text.as_bytes())?;
            self.config_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        }
        for o in &op.remove {
            remove_if_exists(&self.vault.object_path(o))?;
        }
        self.write_head(&logged)?;
        if op.config.is_some() {
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

impl Snapshot {
    /// Every object the vault's metadata names, with the size and BLAKE3 recorded for it: the
    /// documents' objects and the shards'.
    pub fn objects(&self, vault: &Vault) -> Result<BTreeMap<String, FileEntry>, Error> {
        let mut out = BTreeMap::new();
        for d in self.documents(vault)? {
            out.insert(
                d.object.clone(),
                FileEntry {
                    size: d.object_size,
                    blake3: d.object_blake3.clone(),
                },
            );
        }
        for r in self.root.shard_objects() {
            out.insert(
                r.object.clone(),
                FileEntry {
                    size: r.size,
                    blake3: r.blake3.clone(),
                },
            );
        }
        Ok(out)
    }
}

fn remove_if_exists(p: &Path) -> anyhow::Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
    }
}
