//! The patient's card (`carnet card`): the public half of the vault, signed by its key, for
//! professionals who deposit documents or send receipts. Reading it changes nothing and logs
//! nothing, like the other listings.

use crate::card::PatientCard;
use crate::vault::{KeyOpts, Vault};

/// The vault's card: the name and recipients come from the authenticated root, not from the
/// plaintext config, so a recipient slipped into `carnet.toml` never reaches a card.
pub fn card(vault: &Vault, keys: &KeyOpts) -> anyhow::Result<PatientCard> {
    let snap = vault.read(keys)?;
    Ok(PatientCard::new(
        snap.root.patient.name.clone(),
        vault.config.vault_id.clone(),
        snap.root.recipients.clone(),
        &snap.ring,
    ))
}
