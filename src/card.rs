//! The patient's public card (`carnet card`): what a professional needs to deposit documents
//! into the patient's vault and to send receipts back — the name, the vault's recipients, its
//! signing key and fingerprint, and the vault id. Public keys only, no secret.
//!
//! The card travels by email or USB like a professional's card, so anyone on the way could
//! swap its recipients for their own. It is therefore signed by the vault's key: once the
//! professional has checked the fingerprint with the patient (read aloud, or the QR code of
//! `carnet card --qr`), the signature proves the recipients are the patient's too.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::keyring::Keyring;

/// The card's layout version (`carnet_patient_card = 1`).
pub const VERSION: u32 = 1;
/// A card is a few lines of TOML; this bounds a hostile one.
const MAX_CARD: u64 = 64 << 10;
/// A vault has a handful of recipients; a card naming more is not one carnet wrote.
const MAX_RECIPIENTS: usize = 64;
const DOMAIN: &[u8] = b"carnet patient card v1\0";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PatientCard {
    pub carnet_patient_card: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub vault_id: String,
    /// The vault's age recipients: deposits and receipts are encrypted to all of them.
    pub recipients: Vec<String>,
    /// The vault's signing key (minisign format) and its fingerprint.
    pub signing_key: String,
    pub fingerprint: String,
    /// Ed25519 signature (base64) of the fields above by the signing key (see `message`).
    pub signature: String,
}

impl PatientCard {
    /// The patient's card, signed by the vault's key.
    pub fn new(
        name: Option<String>,
        vault_id: String,
        recipients: Vec<String>,
        ring: &Keyring,
    ) -> PatientCard {
        let key = ring.verifying_key();
        let mut card = PatientCard {
            carnet_patient_card: VERSION,
            name,
            vault_id,
            recipients,
            signing_key: crate::sign::encode_public(&key),
            fingerprint: crate::keyring::fingerprint(&key),
            signature: String::new(),
        };
        card.signature = B64.encode(ring.sign(&card.message()).to_bytes());
        card
    }

    /// What the signature covers: every field but the signature, unambiguously joined (NUL
    /// cannot occur in a TOML basic string's value as carnet writes it, and is checked).
    fn message(&self) -> Vec<u8> {
        let mut m = DOMAIN.to_vec();
        for part in [
            self.vault_id.as_str(),
            self.name.as_deref().unwrap_or(""),
            &self.recipients.join("\n"),
            &self.signing_key,
        ] {
            m.extend_from_slice(part.as_bytes());
            m.push(0);
        }
        m
    }

    /// The card as a file: a comment saying what it is, then TOML.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(format!(
            "# carnet patient card: public keys only. A professional deposits documents with\n\
             # `carnet deposit --to THIS_FILE`; check the fingerprint with the patient first.\n{}",
            toml::to_string(self).context("cannot encode the card")?
        ))
    }

    /// Checks everything a professional relies on: the layout, the vault id, the recipients,
    /// the fingerprint (that of the signing key) and the signature over the rest.
    pub fn check(&self) -> Result<(), String> {
        if self.carnet_patient_card != VERSION {
            return Err(format!(
                "card version {} is not one this carnet reads",
                self.carnet_patient_card
            ));
        }
        if !crate::ids::is_full_id(&self.vault_id) {
            return Err("its vault id is not a carnet id".into());
        }
        if self.recipients.is_empty() || self.recipients.len() > MAX_RECIPIENTS {
            return Err("it names no usable recipient".into());
        }
        for r in &self.recipients {
            r.parse::<age::x25519::Recipient>().map_err(|_| {
                format!(
                    "{:?} is not an age recipient",
                    crate::text::ellipsize(r, 40)
                )
            })?;
        }
        if [&self.vault_id, &self.signing_key]
            .into_iter()
            .chain(self.name.as_ref())
            .any(|s| s.contains('\0'))
        {
            return Err("a field holds a NUL character".into());
        }
        let key = crate::sign::decode_public(&self.signing_key)?;
        if crate::keyring::fingerprint(&key) != self.fingerprint {
            return Err("the fingerprint is not that of the signing key".into());
        }
        let sig = B64
            .decode(self.signature.trim())
            .ok()
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
            .ok_or("its signature is malformed")?;
        key.verify_strict(&self.message(), &sig)
            .map_err(|_| "its signature does not hold (the card was altered)".to_string())
    }

    /// Reads and checks a card file (bounded).
    pub fn read(path: &Path) -> anyhow::Result<PatientCard> {
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut text = String::new();
        f.take(MAX_CARD)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let hint = "ask the patient for the card `carnet card -o FILE` writes";
        let card: PatientCard = toml::from_str(&text).map_err(|e| {
            Error::input(
                format!(
                    "{} is not a carnet patient card: {}",
                    path.display(),
                    e.message()
                ),
                hint,
            )
        })?;
        card.check().map_err(|why| {
            Error::BadBundle(format!(
                "{} is not a valid patient card: {why}",
                path.display()
            ))
        })?;
        Ok(card)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_signed_and_checked() {
        let ring = Keyring::generate();
        let id = age::x25519::Identity::generate();
        let card = PatientCard::new(
            Some("Marie Dupont".into()),
            crate::ids::random_id(),
            vec![id.to_public().to_string()],
            &ring,
        );
        card.check().unwrap();
        let back: PatientCard = toml::from_str(&card.to_toml().unwrap()).unwrap();
        assert_eq!(back, card);
        let mut swapped = card.clone();
        swapped.recipients = vec![age::x25519::Identity::generate().to_public().to_string()];
        assert!(swapped.check().unwrap_err().contains("altered"));
        let mut renamed = card.clone();
        renamed.name = Some("Marie Dupond".into());
        assert!(renamed.check().is_err());
        let mut other_fp = card;
        other_fp.fingerprint = crate::keyring::fingerprint(&Keyring::generate().verifying_key());
        assert!(other_fp.check().unwrap_err().contains("fingerprint"));
    }
}
