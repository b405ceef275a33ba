//! Key slots: the vault's identity wrapped for a second key (a recovery key now; guardians
//! next), so that the vault opens without the passphrase or the patient's identity file.
//!
//! A slot is an ordinary object (`objects/xx/ID.age`): the vault identity's secret, age-encrypted
//! to the slot's recipient only. Its id is derived from that recipient, so a key finds its slot
//! before anything else can be decrypted; the root records it (role, name, recipient, size,
//! BLAKE3), so indexing, backups, mirrors, crash recovery and `verify` treat it like any object.

use std::str::FromStr;

use age::secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto;

/// An identity file is a few hundred bytes; a slot holds one identity.
const MAX_SLOT_PLAIN: u64 = 4096;

/// What a slot's key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Opens the vault when the passphrase or the identity file is lost; acts as `recovery`.
    Recovery,
    /// A legal representative (a minor's parent): opens the vault with their own key and acts
    /// as `guardian:NAME`; cannot change the vault's keys.
    Guardian,
    /// The patient's own key when it is not an age X25519 identity (an SSH key, a hardware
    /// key behind an age plugin): the vault's identity is then its own, held in this slot.
    Patient,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Recovery => "recovery",
            Role::Guardian => "guardian",
            Role::Patient => "patient",
        }
    }

    /// Who acts when this slot's key opens the vault.
    pub fn actor(self, name: &str) -> crate::domain::Actor {
        match self {
            Role::Recovery => crate::domain::Actor::Recovery,
            Role::Guardian => crate::domain::Actor::Guardian(name.to_string()),
            Role::Patient => crate::domain::Actor::Patient,
        }
    }
}

/// A slot as the root records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Slot {
    pub role: Role,
    pub name: String,
    /// The slot key's public recipient (`age1…`).
    pub recipient: String,
    pub added_at: jiff::Timestamp,
    pub object: String,
    pub size: u64,
    pub blake3: String,
}

/// The object id of the slot for `recipient`: derived, so the key finds it unaided.
pub fn object_id(recipient: &str) -> String {
    let h = Sha256::digest(format!("carnet key slot v1\0{recipient}").as_bytes());
    hex::encode(&h[..16])
}

/// The object id of a slot that also holds the sealed key (what is hidden from guardians):
/// another name, so that making the sealed key writes new slots rather than rewriting objects.
pub fn object_id_with_sealed(recipient: &str) -> String {
    let h = Sha256::digest(format!("carnet key slot v2\0{recipient}").as_bytes());
    hex::encode(&h[..16])
}

/// Where the slot of `recipient` is, for a slot holding the sealed key or not.
pub fn object_id_for(recipient: &str, with_sealed: bool) -> String {
    if with_sealed {
        object_id_with_sealed(recipient)
    } else {
        object_id(recipient)
    }
}

/// The vault identity `vault`, sealed to `to` (an age X25519 recipient or an SSH key).
pub fn seal(vault: &age::x25519::Identity, to: &dyn age::Recipient) -> anyhow::Result<Vec<u8>> {
    seal_with(vault, None, to)
}

/// The vault identity and, for the patient's and recovery keys, the sealed key (one identity per
/// line, as an age identity file), sealed to `to`.
pub fn seal_with(
    vault: &age::x25519::Identity,
    sealed: Option<&age::x25519::Identity>,
    to: &dyn age::Recipient,
) -> anyhow::Result<Vec<u8>> {
    let mut secret = Zeroizing::new(format!("{}\n", vault.to_string().expose_secret()));
    if let Some(c) = sealed {
        secret.push_str(c.to_string().expose_secret());
        secret.push('\n');
    }
    let enc = age::Encryptor::with_recipients(std::iter::once(to))?;
    let mut out = Vec::with_capacity(secret.len() + 512);
    let mut w = enc.wrap_output(&mut out)?;
    std::io::Write::write_all(&mut w, secret.as_bytes())?;
    w.finish()?;
    Ok(out)
}

/// The identities a slot holds (the vault's, then the sealed key's if any), if one of `keys`
/// opens it.
pub fn open(bytes: &[u8], keys: &[&dyn age::Identity]) -> Option<Vec<age::x25519::Identity>> {
    let plain =
        Zeroizing::new(crypto::open_bytes(bytes, keys.iter().copied(), MAX_SLOT_PLAIN).ok()?);
    let text = std::str::from_utf8(&plain).ok()?;
    let ids: Option<Vec<age::x25519::Identity>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| age::x25519::Identity::from_str(l).ok())
        .collect();
    ids.filter(|v| !v.is_empty() && v.len() <= 2)
}

/// A new slot for `recipient` holding `vault`: its record for the root and its sealed bytes
/// (written by the caller as the object `record.object`).
pub fn make(
    vault: &age::x25519::Identity,
    role: Role,
    name: &str,
    recipient: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<(Slot, Vec<u8>)> {
    make_with(vault, None, role, name, recipient, now)
}

/// `make`, the slot also holding the sealed key `sealed` (never for a guardian).
pub fn make_with(
    vault: &age::x25519::Identity,
    sealed: Option<&age::x25519::Identity>,
    role: Role,
    name: &str,
    recipient: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<(Slot, Vec<u8>)> {
    let sealed = sealed.filter(|_| role != Role::Guardian);
    let to = crate::keys::parse_any_recipient(recipient)?;
    let with_sealed = sealed.is_some();
    let sealed = seal_with(vault, sealed, &*to)?;
    Ok((
        Slot {
            role,
            name: name.to_string(),
            recipient: recipient.to_string(),
            added_at: now,
            object: object_id_for(recipient, with_sealed),
            size: sealed.len() as u64,
            blake3: blake3::hash(&sealed).to_hex().to_string(),
        },
        sealed,
    ))
}
