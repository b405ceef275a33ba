//! The keys that open the vault (`carnet key ls`, `carnet key add --recovery`, `carnet
//! passphrase`): the patient's own (the passphrase-protected `identity.age`, or an identity file
//! kept outside), and a recovery key, through its slot (see `slots`).

use age::secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::config::KeyMode;
use crate::domain::Action;
use crate::error::Error;
use crate::keys::{self, Unlocked};
use crate::slots::{self, Role, Slot};
use crate::txn::{Notice, Op};
use crate::vault::Vault;

/// One key that opens the vault, as `key ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// `patient` or `recovery`.
    pub role: String,
    pub name: String,
    /// `X25519` (age).
    pub kind: &'static str,
    pub recipient: String,
    /// How the patient's key is kept: `passphrase` (identity.age) or `external` (-i FILE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_at: Option<jiff::Timestamp>,
}

/// Every key: the patient's, then the slots.
pub fn list(vault: &Vault, root: &crate::catalog::Root) -> Vec<KeyView> {
    let kept = match vault.config.key {
        KeyMode::Passphrase => "passphrase",
        KeyMode::External => "external",
    };
    let mut out: Vec<KeyView> = vault
        .config
        .recipients
        .iter()
        .map(|r| KeyView {
            role: "patient".into(),
            name: root
                .patient
                .name
                .clone()
                .unwrap_or_else(|| "patient".into()),
            kind: "X25519",
            recipient: r.clone(),
            kept: Some(kept),
            added_at: None,
        })
        .collect();
    out.extend(root.slots.iter().map(|s| KeyView {
        role: match s.role {
            Role::Recovery => "recovery".into(),
        },
        name: s.name.clone(),
        kind: "X25519",
        recipient: s.recipient.clone(),
        kept: None,
        added_at: Some(s.added_at),
    }));
    out
}

/// A recovery key, made once: its secret is shown to the patient and never kept by carnet.
pub struct RecoveryKey {
    /// The identity file's text (`AGE-SECRET-KEY-1…` with comments).
    pub identity_file: Zeroizing<String>,
    pub slot: Slot,
    pub notices: Vec<Notice>,
}

/// Adds a recovery key: a new identity whose slot holds the vault identity. One at a time.
pub fn add_recovery(
    vault: &Vault,
    keys: Unlocked,
    name: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<RecoveryKey> {
    let txn = vault.begin(keys, now)?;
    txn.root().check_writable()?;
    let mut root = txn.root().clone();
    if let Some(s) = root.slots.iter().find(|s| s.role == Role::Recovery) {
        return Err(Error::input(
            format!("the vault already has a recovery key ({})", s.name),
            "keep using it; replacing it comes with `carnet key rm`, which re-encrypts the vault",
        )
        .into());
    }
    let vault_identity = txn
        .snap
        .keys
        .identities
        .iter()
        .find(|i| vault.config.recipients.contains(&i.to_public().to_string()))
        .ok_or_else(|| Error::Integrity("the vault's identity is not at hand".into()))?;
    let (recovery, identity_file) = keys::new_identity_file();
    let recipient = recovery.to_public();
    let sealed = slots::seal(vault_identity, &recipient)?;
    let object = slots::object_id(&recipient.to_string());
    let mut tmp = crate::fsutil::private_tempfile(&vault.tmp_dir())?;
    std::io::Write::write_all(&mut tmp, &sealed)?;
    tmp.as_file().sync_all()?;
    let slot = Slot {
        role: Role::Recovery,
        name: name.to_string(),
        recipient: recipient.to_string(),
        added_at: now,
        object: object.clone(),
        size: sealed.len() as u64,
        blake3: blake3::hash(&sealed).to_hex().to_string(),
    };
    root.slots.push(slot.clone());
    let mut op = Op::new(Action::KeyAdd)
        .detail("role", "recovery")
        .detail("name", name.to_string())
        .detail("recipient", slot.recipient.clone());
    op.root = Some(root);
    op.add.push((tmp.into_temp_path(), object));
    let notices = txn.commit(op)?.notices;
    Ok(RecoveryKey {
        identity_file,
        slot,
        notices,
    })
}

/// Sets a new vault passphrase (passphrase mode): `identity.age` re-encrypted, logged. Works
/// when opened with the recovery key, which is how a forgotten passphrase is replaced.
pub fn change_passphrase(
    vault: &Vault,
    keys: Unlocked,
    new: SecretString,
    log_n: u8,
    now: jiff::Timestamp,
) -> anyhow::Result<Vec<Notice>> {
    if vault.config.key != KeyMode::Passphrase {
        return Err(Error::input(
            "this vault is opened with an identity file, not a passphrase",
            "keep that file safe; add a second key with `carnet key add --recovery`",
        )
        .into());
    }
    if new.expose_secret().trim().is_empty() {
        return Err(Error::EmptyPassphrase.into());
    }
    let txn = vault.begin(keys, now)?;
    let id = txn
        .snap
        .keys
        .identities
        .iter()
        .find(|i| vault.config.recipients.contains(&i.to_public().to_string()))
        .ok_or_else(|| Error::Integrity("the vault's identity is not at hand".into()))?;
    let text = Zeroizing::new(format!(
        "# public key: {}\n{}\n",
        id.to_public(),
        id.to_string().expose_secret()
    ));
    let sealed = keys::encrypt_with_passphrase(text.as_bytes(), new, log_n)?;
    // Under the lock, before the log entry: a crash in between leaves the new passphrase in
    // force and the change unlogged, never a vault that opens with neither.
    vault.write(&vault.path(crate::vault::IDENTITY), &sealed)?;
    Ok(txn.commit(Op::new(Action::Passphrase))?.notices)
}
