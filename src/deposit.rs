//! What professionals send back to a patient, as files: deposits (`carnet-deposit/1`, documents
//! with signed terms) and access receipts (`carnet-receipt/1`, who opened which grant, when).
//!
//! Both are age files encrypted to the patient's vault recipients, holding a stored zip written
//! like a bundle: the terms (TOML), their minisign signature by the professional's key, a
//! README, and for a deposit the documents under `documents/<category>/<date> <title>.<ext>`.
//! So the patient opens either with `age -d` and `unzip`, and checks it with `minisign -V`.
//!
//! Reading trusts nothing: the zip goes through the shared checked reader (`zipsafe`), the kind
//! is taken from the signed terms, and every entry must be one the terms name, with the size they
//! give; documents are hashed as they are read. Whether the signer is trusted (the patient's
//! directory) and what the vault does with it is `ops::receive`'s business.

use std::collections::HashSet;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Actor;
use crate::error::Error;
use crate::grant::BundleError;
use crate::zipsafe::{Limits, NewEntry, SafeZip, StoredZipWriter};

pub const DEPOSIT_FORMAT: &str = "carnet-deposit/1";
pub const RECEIPT_FORMAT: &str = "carnet-receipt/1";
pub const DEPOSIT_TERMS: &str = "deposit.toml";
pub const RECEIPT_TERMS: &str = "receipt.toml";
pub const README: &str = "LISEZMOI-README.txt";
/// Bounds on what a hostile deposit or receipt can make `receive` read or hold.
pub const MAX_DOCUMENTS: usize = 1000;
const MAX_RECEIPT_DOCUMENTS: usize = crate::grant::MAX_DOCUMENTS;
const MAX_TERMS: u64 = 1 << 20;
const MAX_SIGNATURE: u64 = 4096;
const MAX_README: u64 = 64 << 10;
pub const MAX_TITLE: usize = 1024;
pub const MAX_NOTE: usize = 4096;

/// The professional who signs, as their contact card describes them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sender {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adeli: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<String>,
    /// Their age recipient (from their card).
    pub recipient: String,
    /// The key that signs these terms (minisign format) and its fingerprint.
    pub signing_key: String,
    pub fingerprint: String,
}

impl Sender {
    /// The professional's card, checked against their key file: a deposit signed with one key
    /// must not carry another professional's card.
    pub fn from_card(card: &crate::pro::Card, key: &crate::keys::ProKey) -> Result<Sender, Error> {
        let signing = key.signing.as_ref().ok_or_else(|| {
            Error::input(
                "this key file has no carnet signing key (it was not made by `carnet keygen`)",
                "make your key and card with `carnet keygen`, and send patients the new card",
            )
        })?;
        let public = signing.verifying_key();
        let signing_key = crate::sign::encode_public(&public);
        let ours = key.identity.answers_to(&card.recipient);
        if !ours || card.signing_key.as_deref() != Some(signing_key.as_str()) {
            return Err(Error::input(
                "the contact card is not that of this key",
                "give the card `carnet keygen` wrote beside your key with --card FILE",
            ));
        }
        let rpps = card
            .rpps
            .as_deref()
            .map(|r| crate::pro::check_rpps(r).map(|(r, _)| r))
            .transpose()?;
        let adeli = card
            .adeli
            .as_deref()
            .map(crate::pro::check_adeli)
            .transpose()?;
        let name = card.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::input(
                "the name on your card is empty",
                "make a new card with `carnet keygen`",
            ));
        }
        Ok(Sender {
            name,
            rpps,
            adeli,
            profession: card.profession.clone(),
            specialty: card.specialty.clone(),
            recipient: card.recipient.trim().to_string(),
            signing_key,
            fingerprint: crate::keyring::fingerprint(&public),
        })
    }

    /// `RPPS 10005173140`, `ADELI 751234567`, or none.
    pub fn identifier(&self) -> Option<String> {
        self.rpps
            .as_ref()
            .map(|r| format!("RPPS {r}"))
            .or_else(|| self.adeli.as_ref().map(|a| format!("ADELI {a}")))
    }

    /// Who the log names as the actor: `pro:` and the RPPS or ADELI number, or the key's
    /// fingerprint for a professional who has neither.
    pub fn actor(&self) -> Actor {
        Actor::Professional(
            self.rpps
                .clone()
                .or_else(|| self.adeli.clone())
                .unwrap_or_else(|| self.fingerprint.clone()),
        )
    }

    /// "Dr Jeanne Martin (RPPS 10005173140)".
    pub fn describe(&self) -> String {
        match self.identifier() {
            Some(i) => format!("{} ({i})", self.name),
            None => self.name.clone(),
        }
    }

    fn check(&self) -> Result<ed25519_dalek::VerifyingKey, BundleError> {
        let key =
            crate::sign::decode_public(&self.signing_key).map_err(BundleError::BadSignature)?;
        if crate::keyring::fingerprint(&key) != self.fingerprint {
            return Err(BundleError::BadSignature(
                "the fingerprint in the terms is not that of the signing key".into(),
            ));
        }
        if let Some(r) = &self.rpps {
            crate::pro::check_rpps(r).map_err(|e| damaged(e.to_string()))?;
        }
        if let Some(a) = &self.adeli {
            crate::pro::check_adeli(a).map_err(|e| damaged(e.to_string()))?;
        }
        crate::pro::check_recipient(&self.recipient).map_err(|e| damaged(e.to_string()))?;
        if self.name.trim().is_empty() || self.name.len() > MAX_TITLE {
            return Err(damaged("the professional's name is empty or too long"));
        }
        Ok(key)
    }
}

/// The patient a deposit or receipt is for, as their card (or grant) names them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PatientRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub fingerprint: String,
}

/// The signed terms of a deposit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DepositTerms {
    pub format: String,
    pub id: String,
    pub created: jiff::Timestamp,
    /// The vault it is for: a deposit made for another patient is refused.
    pub vault_id: String,
    /// The professional's message to the patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub patient: PatientRef,
    pub professional: Sender,
    pub documents: Vec<DepositDocument>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DepositDocument {
    pub title: String,
    pub category: String,
    pub date: jiff::civil::Date,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub path: String,
}

/// The signed terms of an access receipt: the professional opened this grant at this time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReceiptTerms {
    pub format: String,
    pub id: String,
    pub grant: String,
    pub vault_id: String,
    pub opened_at: jiff::Timestamp,
    pub patient: PatientRef,
    pub professional: Sender,
    /// The ids of the documents extracted.
    pub documents: Vec<String>,
}

fn damaged(s: impl Into<String>) -> BundleError {
    BundleError::Damaged(s.into())
}

/// Terms as signed text, ready to write.
pub struct Signed {
    /// `deposit.toml` or `receipt.toml`.
    pub name: &'static str,
    pub toml: String,
    pub signature: String,
}

/// Encodes and signs `terms` with the professional's key.
pub fn sign<T: Serialize>(
    name: &'static str,
    what: &str,
    terms: &T,
    key: &ed25519_dalek::SigningKey,
    trusted: &str,
) -> anyhow::Result<Signed> {
    let toml = format!(
        "# carnet {what}: terms signed by the professional (see {name}.minisig)\n{}",
        toml::to_string(terms).map_err(|e| anyhow::anyhow!("cannot encode the terms: {e}"))?
    );
    let fp = crate::keyring::fingerprint(&key.verifying_key());
    let signature = crate::sign::sign_with(
        key,
        toml.as_bytes(),
        &format!("signature from carnet professional key {fp}"),
        trusted,
    );
    Ok(Signed {
        name,
        toml,
        signature,
    })
}

/// One document to write into a deposit: where it goes in the zip and what it must be.
pub struct Outgoing<'a> {
    pub path: &'a str,
    pub size: u64,
    pub crc32: u32,
    pub sha256: &'a str,
    pub date: jiff::civil::Date,
}

/// Streams a deposit or receipt into `out`: age (to the patient's recipients) around a stored
/// zip of the terms, their signature, the README and the documents, each read from `open(i)`
/// and checked against the SHA-256 hashed before (a file changed meanwhile is refused).
pub fn write<W: Write>(
    out: W,
    recipients: &[age::x25519::Recipient],
    signed: &Signed,
    readme: &str,
    docs: &[Outgoing<'_>],
    open: &mut dyn FnMut(usize) -> io::Result<Box<dyn Read>>,
    progress: &dyn Fn(u64),
) -> anyhow::Result<W> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))?;
    let mut zip = StoredZipWriter::new(enc.wrap_output(out)?);
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .at(12, 0, 0, 0);
    zip.add_bytes(signed.name, signed.toml.as_bytes(), 0o644, Some(today))?;
    let sig_name = format!("{}.minisig", signed.name);
    zip.add_bytes(&sig_name, signed.signature.as_bytes(), 0o644, Some(today))?;
    zip.add_bytes(README, readme.as_bytes(), 0o644, Some(today))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    for (i, d) in docs.iter().enumerate() {
        zip.start(&NewEntry {
            name: d.path,
            size: d.size,
            crc32: d.crc32,
            mode: 0o644,
            modified: Some(d.date.at(12, 0, 0, 0)),
        })?;
        let mut r = open(i)?;
        let mut h = Sha256::new();
        let mut n = 0u64;
        loop {
            let k = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            n += k as u64;
            if n > d.size {
                break;
            }
            h.update(&buf[..k]);
            zip.write_all(&buf[..k])?;
            done += k as u64;
            progress(done);
        }
        if n != d.size || hex::encode(h.finalize()) != d.sha256 {
            anyhow::bail!(Error::input(
                format!("{} changed while it was being deposited", d.path),
                "deposit it again once nothing writes to the file",
            ));
        }
    }
    Ok(zip.finish()?.finish()?)
}

/// The plain-text note that travels in every deposit, in French and English.
pub fn deposit_readme(t: &DepositTerms) -> String {
    format!(
        "Documents déposés par un professionnel de santé / Documents deposited by a health professional\n\
         ==============================================================================================\n\n\
         De / from : {from}\n\
         Clé du professionnel / professional's key : {fp}\n\
         Pour / for : {to} ({pfp})\n\
         Date : {created}\n\
         Documents : {n}\n\n\
         FR — Ajoutez ces documents à votre carnet avec :\n\
         \x20   carnet receive FICHIER\n\
         qui vérifie la signature du professionnel et chaque document. Sans carnet :\n\
         \x20   age -d -i VOTRE_CLE FICHIER > depot.zip && unzip depot.zip\n\
         Les conditions signées sont dans deposit.toml (signature : deposit.toml.minisig,\n\
         vérifiable avec minisign -Vm deposit.toml -P CLE_DU_PROFESSIONNEL).\n\n\
         EN — Add these documents to your carnet with:\n\
         \x20   carnet receive FILE\n\
         which checks the professional's signature and every document. Without carnet:\n\
         \x20   age -d -i YOUR_KEY FILE > deposit.zip && unzip deposit.zip\n\
         The signed terms are in deposit.toml (signature: deposit.toml.minisig, which\n\
         minisign -Vm deposit.toml -P PROFESSIONAL_KEY checks).\n",
        from = t.professional.describe(),
        fp = t.professional.fingerprint,
        to = t.patient.name.as_deref().unwrap_or("(sans nom / unnamed)"),
        pfp = t.patient.fingerprint,
        created = t.created,
        n = t.documents.len(),
    )
}

/// The plain-text note that travels in every receipt.
pub fn receipt_readme(t: &ReceiptTerms) -> String {
    format!(
        "Accusé d'ouverture / Access receipt\n\
         ===================================\n\n\
         {who} a ouvert le partage {grant} le {at} ({n} document(s)).\n\
         {who} opened grant {grant} on {at} ({n} document(s)).\n\n\
         carnet receive FICHIER / FILE\n",
        who = t.professional.describe(),
        grant = t.grant,
        at = t.opened_at,
        n = t.documents.len(),
    )
}

/// A decrypted, authenticated deposit or receipt: the kind comes from the signed terms.
pub enum Incoming<R: Read + Seek> {
    Deposit(Deposit<R>),
    Receipt(ReceiptTerms),
}

/// A deposit whose signature and entries passed; its documents are read with `reader`.
pub struct Deposit<R: Read + Seek> {
    pub terms: DepositTerms,
    zip: SafeZip<R>,
}

impl<R: Read + Seek> Deposit<R> {
    /// The bytes of a document, bounded by its size and checked against its CRC-32 (the
    /// SHA-256 is the caller's to check: it hashes while storing).
    pub fn reader(&mut self, index: usize) -> Result<impl Read + '_, BundleError> {
        let path = self
            .terms
            .documents
            .get(index)
            .map(|d| d.path.clone())
            .ok_or_else(|| damaged("no such document"))?;
        self.zip
            .reader(&path)
            .map_err(|e| damaged(format!("{path}: {e}")))
    }
}

/// The terms' common head: the kind and the signer, checked before the rest is parsed.
#[derive(Deserialize)]
struct Head {
    format: String,
    professional: Sender,
}

/// Decrypts `path` with the patient's identities and authenticates it: the zip's safety, the
/// professional's signature over the terms, and every entry against the terms. Whether that
/// professional is trusted is the caller's decision.
pub fn open(
    path: &Path,
    identities: &[age::x25519::Identity],
) -> Result<Incoming<impl Read + Seek + use<>>, BundleError> {
    let limits = Limits {
        max_entries: MAX_DOCUMENTS + 3,
        max_trailing: 0,
    };
    let ids: Vec<&dyn age::Identity> = identities.iter().map(|i| i as &dyn age::Identity).collect();
    let mut zip = crate::grant::decrypt_zip(path, &ids, false, &limits, "a deposit")
        .map_err(|e| crate::grant::explain(path, e))?;
    let name = match (zip.get(DEPOSIT_TERMS), zip.get(RECEIPT_TERMS)) {
        (Some(_), None) => DEPOSIT_TERMS,
        (None, Some(_)) => RECEIPT_TERMS,
        (Some(_), Some(_)) => return Err(damaged("it holds both deposit and receipt terms")),
        (None, None) => {
            return Err(damaged(format!(
                "neither {DEPOSIT_TERMS} nor {RECEIPT_TERMS} is in it: not a carnet deposit or receipt"
            )));
        }
    };
    let sig_name = format!("{name}.minisig");
    let toml_text = read_text(&mut zip, name, MAX_TERMS)?;
    let signature = read_text(&mut zip, &sig_name, MAX_SIGNATURE)?;
    let head: Head = toml::from_str(&toml_text)
        .map_err(|e| damaged(format!("{name} is not valid: {}", e.message())))?;
    let key = head.professional.check()?;
    crate::sign::verify(&key, toml_text.as_bytes(), &signature)
        .map_err(BundleError::BadSignature)?;
    // From here the terms are the professional's own words: the kind is what they signed.
    match (head.format.as_str(), name) {
        (DEPOSIT_FORMAT, DEPOSIT_TERMS) => {
            let terms: DepositTerms = toml::from_str(&toml_text)
                .map_err(|e| damaged(format!("{name} is not valid: {}", e.message())))?;
            check_deposit(&terms)?;
            let docs: Vec<(&str, u64)> = terms
                .documents
                .iter()
                .map(|d| (d.path.as_str(), d.size))
                .collect();
            check_entries(&zip, name, &sig_name, &docs)?;
            Ok(Incoming::Deposit(Deposit { terms, zip }))
        }
        (RECEIPT_FORMAT, RECEIPT_TERMS) => {
            let terms: ReceiptTerms = toml::from_str(&toml_text)
                .map_err(|e| damaged(format!("{name} is not valid: {}", e.message())))?;
            check_receipt(&terms)?;
            check_entries(&zip, name, &sig_name, &[])?;
            Ok(Incoming::Receipt(terms))
        }
        (f, _) => Err(damaged(format!("unknown format {f:?} in {name}"))),
    }
}

fn read_text<R: Read + Seek>(
    z: &mut SafeZip<R>,
    name: &str,
    limit: u64,
) -> Result<String, BundleError> {
    if z.get(name).is_none() {
        return Err(damaged(format!("{name} is missing")));
    }
    z.read_text(name, limit)
        .map_err(|e| damaged(format!("cannot read {name}: {e}")))
}

fn check_deposit(t: &DepositTerms) -> Result<(), BundleError> {
    if !crate::ids::is_full_id(&t.id) || !crate::ids::is_full_id(&t.vault_id) {
        return Err(damaged("the deposit's ids are not carnet ids"));
    }
    if t.documents.is_empty() || t.documents.len() > MAX_DOCUMENTS {
        return Err(damaged(format!(
            "a deposit holds 1 to {MAX_DOCUMENTS} documents, this one {}",
            t.documents.len()
        )));
    }
    if t.note.as_ref().is_some_and(|n| n.len() > MAX_NOTE) {
        return Err(damaged("the note is too long"));
    }
    let mut paths = HashSet::new();
    for d in &t.documents {
        crate::grant::check_entry_path(&d.path).map_err(damaged)?;
        if !paths.insert(d.path.as_str()) {
            return Err(damaged(format!("{} is listed twice in the terms", d.path)));
        }
        if d.title.trim().is_empty() || d.title.len() > MAX_TITLE {
            return Err(damaged(format!(
                "{}: its title is empty or too long",
                d.path
            )));
        }
        if crate::category::find(&d.category).is_none() {
            return Err(damaged(format!(
                "{}: unknown category {:?}",
                d.path,
                crate::text::ellipsize(&d.category, 40)
            )));
        }
        if d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(damaged(format!("{}: its SHA-256 is malformed", d.path)));
        }
    }
    Ok(())
}

fn check_receipt(t: &ReceiptTerms) -> Result<(), BundleError> {
    let ids_ok = [&t.id, &t.grant, &t.vault_id]
        .into_iter()
        .chain(&t.documents)
        .all(|i| crate::ids::is_full_id(i));
    if !ids_ok || t.documents.len() > MAX_RECEIPT_DOCUMENTS {
        return Err(damaged("the receipt's ids are not carnet ids"));
    }
    Ok(())
}

/// Every zip entry is the terms, their signature, the README or a document the terms list,
/// with the size they give; every document listed is there. Names, kinds, duplicates and
/// overlaps were refused when the zip was opened.
fn check_entries<R: Read + Seek>(
    zip: &SafeZip<R>,
    terms: &str,
    signature: &str,
    docs: &[(&str, u64)],
) -> Result<(), BundleError> {
    let mut seen = HashSet::new();
    for e in zip.entries() {
        let name = e.name.as_str();
        seen.insert(name);
        if name == terms || name == signature {
            continue;
        }
        if name == README {
            if e.size > MAX_README {
                return Err(damaged("the README is too large"));
            }
            continue;
        }
        match docs.iter().find(|(p, _)| *p == name) {
            None => {
                return Err(damaged(format!(
                    "entry {name:?} is not in the signed terms"
                )));
            }
            Some((_, size)) if *size != e.size => {
                return Err(damaged(format!(
                    "{name} is {} bytes, the terms say {size}",
                    e.size
                )));
            }
            Some(_) => {}
        }
    }
    if let Some((p, _)) = docs.iter().find(|(p, _)| !seen.contains(p)) {
        return Err(damaged(format!("{p} is in the terms but not in the file")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(key: &ed25519_dalek::SigningKey, rpps: Option<&str>) -> Sender {
        let public = key.verifying_key();
        Sender {
            name: "Dr Jeanne Martin".into(),
            rpps: rpps.map(str::to_string),
            adeli: None,
            profession: None,
            specialty: None,
            recipient: age::x25519::Identity::generate().to_public().to_string(),
            signing_key: crate::sign::encode_public(&public),
            fingerprint: crate::keyring::fingerprint(&public),
        }
    }

    fn receipt(s: Sender) -> ReceiptTerms {
        ReceiptTerms {
            format: RECEIPT_FORMAT.into(),
            id: crate::ids::random_id(),
            grant: crate::ids::random_id(),
            vault_id: crate::ids::random_id(),
            opened_at: jiff::Timestamp::UNIX_EPOCH,
            patient: PatientRef {
                name: None,
                fingerprint: "SHA256:x".into(),
            },
            professional: s,
            documents: vec![crate::ids::random_id()],
        }
    }

    /// Writes `terms` signed under the entry `name`, encrypted to `patient`; opens it back.
    fn round_trip(
        name: &'static str,
        terms: &ReceiptTerms,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<Incoming<impl Read + Seek + use<>>, BundleError> {
        let patient = age::x25519::Identity::generate();
        let signed = sign(name, "receipt", terms, key, "t").unwrap();
        let bytes = write(
            Vec::new(),
            &[patient.to_public()],
            &signed,
            "readme",
            &[],
            &mut |_| Err(io::Error::other("none")),
            &|_| {},
        )
        .unwrap();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes).unwrap();
        open(f.path(), &[patient])
    }

    #[test]
    fn the_kind_is_the_signed_format_and_must_match_its_entry() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let terms = receipt(sender(&key, Some("10005173140")));
        match round_trip(RECEIPT_TERMS, &terms, &key) {
            Ok(Incoming::Receipt(back)) => assert_eq!(back, terms),
            _ => panic!("a receipt reads back as a receipt"),
        }
        // Receipt terms under the deposit's name: refused, whatever the entry says.
        let e = round_trip(DEPOSIT_TERMS, &terms, &key).err().unwrap();
        assert!(e.to_string().contains("unknown format"), "{e}");
        // Signed by another key than the one the terms name.
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let e = round_trip(RECEIPT_TERMS, &terms, &other).err().unwrap();
        assert!(matches!(e, BundleError::BadSignature(_)), "{e}");
    }

    #[test]
    fn the_actor_is_the_number_else_the_fingerprint() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let s = sender(&key, Some("10005173140"));
        assert_eq!(s.actor().to_string(), "pro:10005173140");
        assert_eq!(s.describe(), "Dr Jeanne Martin (RPPS 10005173140)");
        let s = sender(&key, None);
        assert_eq!(s.actor().to_string(), format!("pro:{}", s.fingerprint));
        assert_eq!(s.describe(), "Dr Jeanne Martin");
    }
}
