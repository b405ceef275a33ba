//! Access receipts, the professional's side (`carnet open --receipt`): a small file signed with
//! the professional's key and encrypted to the patient's vault (whose recipients the grant's
//! signed terms carry), saying which grant was opened, when, and which documents came out. The
//! patient records it with `carnet receive`. It is prepared before extraction, so that a
//! receipt that cannot be made stops `open` before any document is written.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::deposit::{self, PatientRef, ReceiptTerms, Sender};
use crate::error::Error;
use crate::fsutil;
use crate::grant::Terms;
use crate::keys::ProKey;

/// A receipt sealed in memory (a few kilobytes), ready to write.
pub struct Prepared {
    pub terms: ReceiptTerms,
    bytes: Vec<u8>,
}

/// Makes the receipt for the grant `t`, opened at `now` with `key`. A bundle opened with a
/// passcode (an emergency bundle, an access code) names no recipient: the professional is then
/// described by their own `card` (the one `carnet keygen` wrote), checked against the key.
pub fn prepare(
    t: &Terms,
    key: &ProKey,
    card: Option<&crate::pro::Card>,
    now: jiff::Timestamp,
) -> anyhow::Result<Prepared> {
    let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    let Some(signing) = &key.signing else {
        return Err(Error::input(
            "your key file has no carnet signing key, so it cannot sign a receipt",
            "make your key with `carnet keygen`, or open without --receipt",
        )
        .into());
    };
    let (Some(vault_id), false) = (&t.patient.vault_id, t.patient.recipients.is_empty()) else {
        return Err(Error::input(
            "this bundle names no key to send a receipt to (it was made by an older carnet)",
            "open it without --receipt",
        )
        .into());
    };
    let public = signing.verifying_key();
    let professional = if t.by_passcode() {
        let Some(card) = card else {
            return Err(Error::input(
                "a receipt for a bundle opened with a passcode names you by your contact card",
                "keep the card `carnet keygen` wrote beside your key (KEYFILE.card.toml)",
            )
            .into());
        };
        Sender::from_card(card, key)?
    } else {
        let Some(me) = t
            .recipients
            .iter()
            .find(|r| key.identity.answers_to(&r.recipient))
        else {
            return Err(Error::input(
                "your key is not among the bundle's recipients as its terms list them",
                "open it without --receipt",
            )
            .into());
        };
        // As the patient's directory knows them (the grant's terms), with the signing key.
        Sender {
            name: me.name.clone(),
            rpps: me.rpps.clone(),
            adeli: me.adeli.clone(),
            profession: me.profession.clone(),
            specialty: None,
            recipient: me.recipient.clone(),
            signing_key: crate::sign::encode_public(&public),
            fingerprint: crate::keyring::fingerprint(&public),
        }
    };
    let terms = ReceiptTerms {
        format: deposit::RECEIPT_FORMAT.into(),
        id: crate::ids::random_id(),
        grant: t.id.clone(),
        vault_id: vault_id.clone(),
        opened_at: now,
        patient: PatientRef {
            name: t.patient.name.clone(),
            fingerprint: t.patient.fingerprint.clone(),
        },
        professional,
        documents: t.documents.iter().map(|d| d.id.clone()).collect(),
    };
    let recipients = t
        .patient
        .recipients
        .iter()
        .map(|r| crate::keys::parse_recipient(r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let signed = deposit::sign(
        deposit::RECEIPT_TERMS,
        "receipt",
        &terms,
        signing,
        &format!("carnet receipt {} for grant {}", terms.id, terms.grant),
    )?;
    let bytes = deposit::write(
        Vec::new(),
        &recipients,
        &signed,
        &deposit::receipt_readme(&terms),
        &[],
        &mut |_| Err(std::io::Error::other("a receipt holds no document")),
        &|_| {},
    )?;
    Ok(Prepared { terms, bytes })
}

/// Writes the receipt at `path` atomically; an existing file is replaced only with `force`.
pub fn write(p: &Prepared, path: &Path, force: bool) -> anyhow::Result<()> {
    let dir = fsutil::parent_dir(path);
    let mut tmp = fsutil::private_tempfile(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(&p.bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    fsutil::persist(tmp, path, force)
}
