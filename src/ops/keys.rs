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
use crate::ops::seal;
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
    // With the patient's key in a slot (SSH, hardware), the vault's recipient is its own
    // identity, not a key anyone holds: the slot is what to show.
    let own_slot = root.slots.iter().any(|s| s.role == Role::Patient);
    let mut out: Vec<KeyView> = vault
        .config
        .recipients
        .iter()
        .filter(|_| !own_slot)
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
        role: s.role.as_str().into(),
        name: s.name.clone(),
        kind: recipient_kind(&s.recipient),
        recipient: s.recipient.clone(),
        kept: None,
        added_at: Some(s.added_at),
    }));
    out
}

/// The kind of key `key add` adds.
pub enum NewSlot {
    /// A new identity made here, shown to the patient once and never kept by carnet.
    Recovery,
    /// A legal representative's own key (an age recipient or SSH public key).
    Guardian { recipient: String },
}

/// A key added: its slot, and for a recovery key the identity file's text to hand over once.
pub struct Added {
    /// The identity file's text (`AGE-SECRET-KEY-1…` with comments), for a recovery key.
    pub identity_file: Option<Zeroizing<String>>,
    pub slot: Slot,
    pub notices: Vec<Notice>,
}

/// Adds a key through a slot holding the vault identity. One recovery key at a time; guardians
/// by name. Only the patient (or the recovery key) adds keys.
pub fn add(
    vault: &Vault,
    keys: Unlocked,
    kind: NewSlot,
    name: &str,
    log_n: u8,
    now: jiff::Timestamp,
) -> anyhow::Result<Added> {
    let mut txn = vault.begin(keys, now)?;
    crate::ops::rekey::check_may_manage_keys(&txn.snap.keys)?;
    txn.root().check_writable()?;
    let mut root = txn.root().clone();
    let (role, recipient, identity_file): (Role, String, Option<Zeroizing<String>>) = match kind {
        NewSlot::Recovery => {
            if let Some(s) = root.slots.iter().find(|s| s.role == Role::Recovery) {
                return Err(Error::input(
                    format!("the vault already has a recovery key ({})", s.name),
                    "to replace it, remove it first: `carnet key rm NAME` (which re-encrypts the vault)",
                )
                .into());
            }
            let (recovery, text) = keys::new_identity_file();
            (Role::Recovery, recovery.to_public().to_string(), Some(text))
        }
        NewSlot::Guardian { recipient } => {
            crate::pro::check_recipient(recipient.trim())?;
            // The form the key finds its slot by (an SSH key without its comment).
            let recipient = keys::canonical_recipient(&recipient).ok_or_else(|| {
                Error::input(
                    "not a recipient carnet knows",
                    "give an age1… or ssh-ed25519 key",
                )
            })?;
            if vault.config.recipients.contains(&recipient)
                || root.slots.iter().any(|s| s.recipient == recipient)
            {
                return Err(Error::input(
                    "this key already opens the vault",
                    "`carnet key ls` lists the keys",
                )
                .into());
            }
            (Role::Guardian, recipient, None)
        }
    };
    if let Some(s) = root.slots.iter().find(|s| s.name == name) {
        return Err(Error::input(
            format!(
                "the vault already has a key named {:?} ({})",
                crate::text::clean(name),
                s.role.as_str()
            ),
            "choose another --name",
        )
        .into());
    }
    let vault_identity = txn
        .snap
        .keys
        .vault_identity(&vault.config.recipients)?
        .clone();
    // What is already hidden from guardians must be sealed from the new guardian's key: on a
    // vault that hid it before the sealed key existed, it is made now and those documents move.
    let mut sealing = seal::Changes::default();
    if role == Role::Guardian {
        let hidden = hidden_from_guardians(vault, &txn.snap)?;
        let rules = root
            .hidden_categories
            .keys()
            .filter(|c| root.category_hidden_from_guardians(c))
            .count();
        if hidden.len() + rules > 0 && !seal::can_seal(vault, &root) {
            return Err(Error::input(
                format!(
                    "{} document(s) and {rules} category rule(s) are hidden from guardians, and in this vault a guardian's key would open them: it opens with your own age identity file, which a guardian's slot would hold",
                    hidden.len()
                ),
                "keep a minor's record in a vault that opens with a passphrase (`carnet init`) or an SSH or hardware key, or unhide them first (`carnet unhide --from guardians`)",
            )
            .into());
        }
        if hidden.len() + rules > 0 && root.sealed.is_none() {
            seal::make_key(vault, &mut txn.snap, &mut root, log_n, now, &mut sealing)?;
            let docs = hidden.into_iter().map(|d| (d, false)).collect();
            seal::place(vault, &txn.snap, &root, docs, &mut sealing)?;
        }
    }
    let (slot, sealed) = slots::make_with(
        &vault_identity,
        txn.snap
            .keys
            .sealed
            .as_ref()
            .filter(|_| root.sealed.is_some()),
        role,
        name,
        &recipient,
        now,
    )?;
    let object = slot.object.clone();
    let mut tmp = crate::fsutil::private_tempfile(&vault.tmp_dir())?;
    std::io::Write::write_all(&mut tmp, &sealed)?;
    tmp.as_file().sync_all()?;
    root.slots.push(slot.clone());
    let mut op = Op::new(Action::KeyAdd)
        .detail("role", role.as_str())
        .detail("name", name.to_string())
        .detail("recipient", slot.recipient.clone());
    op.root = Some(root);
    op.add.push((tmp.into_temp_path(), object));
    op.put = sealing.put;
    op.add.extend(sealing.add);
    op.remove = sealing.remove;
    op.seal_past = sealing.newly_sealed;
    op.identity = sealing.identity;
    let notices = txn.commit(op)?.notices;
    Ok(Added {
        identity_file,
        slot,
        notices,
    })
}

/// The documents hidden from guardians (by themselves or by their category's rule).
fn hidden_from_guardians(
    vault: &Vault,
    snap: &crate::catalog::Snapshot,
) -> anyhow::Result<Vec<crate::manifest::Document>> {
    Ok(snap
        .documents(vault)?
        .into_iter()
        .filter(|d| snap.root.hidden_from_guardians(d))
        .collect())
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
    crate::ops::rekey::check_may_manage_keys(&txn.snap.keys)?;
    let id = txn.snap.keys.vault_identity(&vault.config.recipients)?;
    // The key of what is hidden from guardians stays in the file beside the vault's (or one
    // left there by an interrupted first `hide`, which the next one takes up again).
    let keys_held = &txn.snap.keys;
    let text = keys::vault_identity_text(id, keys_held.sealed.as_ref().or(keys_held.spare.first()));
    let sealed = keys::encrypt_with_passphrase(text.as_bytes(), new, log_n)?;
    // Written by the commit right after its log entry: a crash in between is an interrupted
    // command, which the next write finishes (the entry changes no metadata), so the vault
    // opens with the old passphrase or the new one, never neither, and no check mistakes the
    // new file for an altered one.
    let mut op = Op::new(Action::Passphrase);
    op.identity = Some(sealed);
    Ok(txn.commit(op)?.notices)
}

/// What kind of key a recipient is, as `key ls` shows it.
fn recipient_kind(r: &str) -> &'static str {
    if r.parse::<age::x25519::Recipient>().is_ok() {
        "X25519"
    } else if r.starts_with("ssh-ed25519 ") {
        "SSH ed25519"
    } else if r.starts_with("ssh-rsa ") {
        "SSH RSA"
    } else {
        "plugin"
    }
}
