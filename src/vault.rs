//! A vault on disk: its layout, config, unlocking, the manifest, objects and the writer lock.
//!
//! Layout (see FORMAT.md):
//! ```text
//! carnet.toml     plaintext config: format version, vault id, recipients, key mode
//! identity.age    the vault's X25519 identity, passphrase-encrypted (passphrase mode only)
//! manifest.age    all metadata, age-encrypted JSON
//! objects/xx/ID.age   one age file per document, named by a random id
//! tmp/            ciphertext being written (renamed into place when complete)
//! lock            the writers' lock file (empty)
//! ```

use std::fs;
use std::io::{BufReader, ErrorKind};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, OpenError};
use crate::error::Error;
use crate::fsutil::{self, Lock};
use crate::keys::{self, PassphraseSource, Unlocked};
use crate::manifest::Manifest;

pub const CONFIG: &str = "carnet.toml";
pub const IDENTITY: &str = "identity.age";
pub const MANIFEST: &str = "manifest.age";
pub const OBJECTS: &str = "objects";
pub const TMP: &str = "tmp";
pub const LOCK: &str = "lock";

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
}

impl Vault {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn is_vault(dir: &Path) -> bool {
        dir.join(CONFIG).is_file()
    }

    /// Opens an existing vault's config; does not need the key.
    pub fn open(dir: &Path) -> anyhow::Result<Vault> {
        let cfg_path = dir.join(CONFIG);
        let text = match fs::read_to_string(&cfg_path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => {
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
        Ok(Vault {
            dir: dir.to_path_buf(),
            config,
        })
    }

    /// Creates the vault folder tree, its identity file, first manifest and config.
    pub fn create(
        dir: &Path,
        config: Config,
        identity_file: Option<&[u8]>,
        manifest: &mut Manifest,
    ) -> anyhow::Result<Vault> {
        if Vault::is_vault(dir) {
            return Err(Error::VaultExists(dir.to_path_buf()).into());
        }
        if !fsutil::is_empty_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
            return Err(Error::NotEmpty(dir.to_path_buf()).into());
        }
        fsutil::create_private_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for sub in [OBJECTS, TMP] {
            fsutil::create_private_dir(&dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let vault = Vault {
            dir: dir.to_path_buf(),
            config,
        };
        if let Some(bytes) = identity_file {
            fsutil::write_atomic(&vault.path(IDENTITY), bytes)?;
        }
        let lock = vault.lock()?;
        vault.save_manifest(manifest, &lock)?;
        let text = format!(
            "# carnet vault: see FORMAT.md. Public data only; everything else is encrypted.\n{}",
            toml::to_string(&vault.config).context("cannot encode the config")?
        );
        // The config is written last: a folder without it is not yet a vault, so an
        // interrupted init can simply be run again after emptying the folder.
        fsutil::write_atomic(&vault.path(CONFIG), text.as_bytes())?;
        Ok(vault)
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
                let bytes = fs::read(&path).map_err(|e| match e.kind() {
                    ErrorKind::NotFound => anyhow::Error::from(Error::Integrity(format!(
                        "{} is missing",
                        path.display()
                    ))),
                    _ => anyhow::Error::from(e).context(format!("cannot read {}", path.display())),
                })?;
                (
                    keys::read_identity_file(&bytes, &path, &opts.passphrase)?,
                    path,
                )
            }
        };
        let unlocked = Unlocked { identities };
        let mine = unlocked.recipients();
        if !self.config.recipients.iter().any(|r| mine.contains(r)) {
            return Err(Error::WrongIdentity(source).into());
        }
        Ok(unlocked)
    }

    pub fn load_manifest(&self, keys: &Unlocked) -> anyhow::Result<Manifest> {
        let path = self.path(MANIFEST);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::Integrity(format!("{} is missing", path.display())).into());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let plain =
            crypto::open_bytes(&bytes, keys.as_dyn(), MAX_MANIFEST).map_err(|e| match e {
                OpenError::Io(e) => {
                    anyhow::Error::from(e).context(format!("cannot read {}", path.display()))
                }
                e => Error::Integrity(format!("{}: {e}", path.display())).into(),
            })?;
        let m: Manifest = serde_json::from_slice(&plain).map_err(|e| {
            Error::Integrity(format!(
                "{} does not hold a valid manifest: {e}",
                path.display()
            ))
        })?;
        if m.vault_id != self.config.vault_id || m.recipients != self.config.recipients {
            return Err(Error::Integrity(format!(
                "{} does not match {} (vault id or recipients differ)",
                path.display(),
                CONFIG
            ))
            .into());
        }
        if m.format > crate::FORMAT_VERSION {
            return Err(Error::NewerFormat {
                found: m.format,
                supported: crate::FORMAT_VERSION,
            }
            .into());
        }
        Ok(m)
    }

    /// Replaces the manifest atomically. Taking the lock guard proves the caller holds it.
    pub fn save_manifest(&self, m: &mut Manifest, _lock: &Lock) -> anyhow::Result<()> {
        m.generation += 1;
        let json =
            zeroize::Zeroizing::new(serde_json::to_vec(m).context("cannot encode the manifest")?);
        let sealed = crypto::seal_bytes(&json, &self.recipients()?)
            .context("cannot encrypt the manifest")?;
        fsutil::write_atomic(&self.path(MANIFEST), &sealed)
    }

    /// Where an object lives: fanned out by its first two characters, like git, so that no
    /// folder grows to hundreds of thousands of entries.
    pub fn object_path(&self, object: &str) -> PathBuf {
        self.dir
            .join(OBJECTS)
            .join(&object[..2])
            .join(format!("{object}.age"))
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.path(TMP)
    }

    /// Opens a document's object for streaming decryption.
    pub fn open_object<'a>(
        &self,
        object: &str,
        keys: &'a Unlocked,
    ) -> anyhow::Result<impl std::io::Read + 'a> {
        let path = self.object_path(object);
        let f = fs::File::open(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => {
                anyhow::Error::from(Error::Integrity(format!("{} is missing", path.display())))
            }
            _ => anyhow::Error::from(e).context(format!("cannot read {}", path.display())),
        })?;
        crypto::open(BufReader::with_capacity(256 * 1024, f), keys.as_dyn()).map_err(|e| match e {
            OpenError::Io(e) => {
                anyhow::Error::from(e).context(format!("cannot read {}", path.display()))
            }
            e => Error::Integrity(format!("{}: {e}", path.display())).into(),
        })
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
