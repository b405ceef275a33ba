//! Consent grants as files: the signed terms, writing a bundle (age-encrypted zip) and opening
//! one safely.
//!
//! A bundle is an age file (to the professionals' recipients) holding a stored zip:
//! `grant.toml` (the terms), `grant.toml.minisig` (their signature by the patient's key),
//! `LISEZMOI-README.txt`, and the documents under `documents/<category>/<date> <title>.<ext>`.
//! Opening never trusts the zip: only entries named in the signed terms are written, with the
//! sizes and SHA-256 the terms give, into a staging folder renamed into place at the end.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::zipsafe::{BadZip, Limits, NewEntry, SafeZip, StoredZipWriter};

pub const TERMS: &str = "grant.toml";
pub const SIGNATURE: &str = "grant.toml.minisig";
pub const README: &str = "LISEZMOI-README.txt";
pub const FORMAT: &str = "carnet-grant/1";
/// `kind` of a bundle encrypted to a generated passcode instead of professionals' keys (an
/// access code: `grant --passcode`), and of the emergency bundle (`carnet emergency`). A grant
/// to professionals has no `kind`.
pub const KIND_PASSCODE: &str = "passcode";
pub const KIND_EMERGENCY: &str = "emergency";
/// Bounds on what a hostile bundle can make `open` read or hold.
pub const MAX_DOCUMENTS: usize = 10_000;
const MAX_TERMS: u64 = 8 << 20;
const MAX_SIGNATURE: u64 = 4096;
const MAX_README: u64 = 64 << 10;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Terms {
    pub format: String,
    pub id: String,
    /// `passcode` or `emergency` for bundles opened with a passcode (then `recipients` is
    /// empty); absent for a grant to professionals. Older carnet builds ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    pub issued: jiff::Timestamp,
    pub not_before: jiff::Timestamp,
    pub expires: jiff::Timestamp,
    pub patient: TermsPatient,
    pub recipients: Vec<TermsRecipient>,
    pub documents: Vec<TermsDocument>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TermsPatient {
    #[serde(default)]
    pub name: Option<String>,
    /// The vault the bundle comes from: what a professional remembers the key by (bundles
    /// made before carnet wrote it name only the patient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_id: Option<String>,
    /// The patient's signing key, minisign format.
    pub signing_key: String,
    pub fingerprint: String,
    /// The vault's age recipients: where the professional's receipt goes (`open --receipt`,
    /// with `vault_id`). Absent from bundles made before receipts existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TermsRecipient {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adeli: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    pub recipient: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TermsDocument {
    pub id: String,
    pub title: String,
    pub category: String,
    pub date: jiff::civil::Date,
    #[serde(default)]
    pub author: Option<String>,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub path: String,
}

use crate::domain::GrantStatus;

impl Terms {
    pub fn status(&self, now: jiff::Timestamp) -> GrantStatus {
        if now < self.not_before {
            GrantStatus::NotYetValid
        } else if now >= self.expires {
            GrantStatus::Expired
        } else {
            GrantStatus::Active
        }
    }
}

impl Terms {
    /// Opened with a passcode rather than a professional's key.
    pub fn by_passcode(&self) -> bool {
        matches!(self.kind.as_deref(), Some(KIND_PASSCODE | KIND_EMERGENCY))
    }
}

/// The plain-text note that travels in every bundle, in French and English.
pub fn readme(t: &Terms) -> String {
    if t.by_passcode() {
        return readme_passcode(t);
    }
    let who = t.patient.name.as_deref().unwrap_or("(sans nom / unnamed)");
    let purpose = t.purpose.as_deref().unwrap_or("-");
    format!(
        "Partage de documents médicaux / Shared medical documents\n\
         ========================================================\n\n\
         Patient : {who}\n\
         Clé du patient / patient key : {fp}\n\
         Motif / purpose : {purpose}\n\
         Valable du / valid from : {nb}\n\
         Jusqu'au / until : {ex}\n\
         Documents : {n}\n\n\
         FR — Ce fichier est un partage consenti par le patient, chiffré pour vous seul(e).\n\
         Ouvrez-le avec carnet, qui vérifie la signature, l'intégrité et la validité :\n\
         \x20   carnet open FICHIER -i VOTRE_CLE -o DOSSIER\n\
         ou avec les outils standard age et unzip :\n\
         \x20   age -d -i VOTRE_CLE FICHIER > partage.zip && unzip partage.zip\n\
         Les conditions signées sont dans grant.toml (signature : grant.toml.minisig,\n\
         vérifiable avec minisign -Vm grant.toml -P CLE_DU_PATIENT).\n\
         La date d'expiration exprime le consentement du patient ; une fois ouvert, ce\n\
         partage ne peut pas être repris techniquement. Respectez-la.\n\n\
         EN — This file was shared with the patient's consent, encrypted for you only.\n\
         Open it with carnet, which checks the signature, integrity and validity:\n\
         \x20   carnet open FILE -i YOUR_KEY -o FOLDER\n\
         or with the standard age and unzip tools:\n\
         \x20   age -d -i YOUR_KEY FILE > share.zip && unzip share.zip\n\
         The signed terms are in grant.toml (signature: grant.toml.minisig, which\n\
         minisign -Vm grant.toml -P PATIENT_KEY checks).\n\
         The expiry date states the patient's consent; once opened, nothing technical can\n\
         take this share back. Please honour it.\n",
        fp = t.patient.fingerprint,
        nb = t.not_before,
        ex = t.expires,
        n = t.documents.len(),
    )
}

/// The note of a bundle opened with a passcode (an emergency bundle or an access code).
fn readme_passcode(t: &Terms) -> String {
    let who = t.patient.name.as_deref().unwrap_or("(sans nom / unnamed)");
    let (titre, title) = if t.kind.as_deref() == Some(KIND_EMERGENCY) {
        ("Dossier d'urgence", "Emergency record")
    } else {
        ("Partage par code d'accès", "Shared with an access code")
    };
    format!(
        "{titre} / {title}\n\
         ==========================================\n\n\
         Patient : {who}\n\
         Clé du patient / patient key : {fp}\n\
         Motif / purpose : {purpose}\n\
         Valable du / valid from : {nb}\n\
         Jusqu'au / until : {ex}\n\
         Documents : {n}\n\n\
         FR — Ce fichier est chiffré par un code d'accès (des mots) que le patient vous a donné\n\
         (sur sa carte d'urgence, ou séparément). Ouvrez-le avec carnet, qui vérifie la\n\
         signature, l'intégrité et la validité :\n\
         \x20   carnet open FICHIER --passcode -o DOSSIER\n\
         ou avec les outils standard age et unzip (age demande le code) :\n\
         \x20   age -d FICHIER > dossier.zip && unzip dossier.zip\n\
         Le résumé lisible est dans documents/synthese/ (texte), à côté du résumé FHIR (IPS).\n\
         Les conditions signées sont dans grant.toml (signature : grant.toml.minisig).\n\n\
         EN — This file is encrypted with an access code (words) the patient gave you (on\n\
         their emergency card, or separately). Open it with carnet, which checks the\n\
         signature, integrity and validity:\n\
         \x20   carnet open FILE --passcode -o FOLDER\n\
         or with the standard age and unzip tools (age asks for the code):\n\
         \x20   age -d FILE > record.zip && unzip record.zip\n\
         The readable summary is in documents/synthese/ (text), beside the FHIR summary (IPS).\n\
         The signed terms are in grant.toml (signature: grant.toml.minisig).\n",
        fp = t.patient.fingerprint,
        purpose = t.purpose.as_deref().unwrap_or("-"),
        nb = t.not_before,
        ex = t.expires,
        n = t.documents.len(),
    )
}

/// Checks that a path from the terms is a plain relative path under `documents/`, so that no
/// signed-but-hostile terms can make `open` write outside its target.
pub fn check_entry_path(p: &str) -> Result<(), String> {
    if p.len() > 1024 {
        return Err(format!("unsafe path {p:?}"));
    }
    // File systems refuse longer names: the bundle cannot be what carnet wrote.
    if let Some(long) = p.split('/').find(|s| s.len() > 255) {
        return Err(format!(
            "a file name in the terms is {} bytes long, more than any file system takes ({}…)",
            long.len(),
            crate::text::ellipsize(long, 24)
        ));
    }
    crate::zipsafe::check_name(p).map_err(|why| format!("unsafe path {p:?} ({why})"))?;
    if p.chars().any(crate::text::is_unsafe) {
        return Err(format!("unsafe path {p:?}"));
    }
    if p.split('/').count() < 2 || !p.starts_with("documents/") {
        return Err(format!(
            "unexpected path {p:?} (documents live under documents/)"
        ));
    }
    Ok(())
}

/// A source of document content for the bundle writer: yields plaintext readers in order.
pub trait DocumentSource: Send {
    fn open(&mut self, index: usize) -> anyhow::Result<Box<dyn Read + Send + '_>>;
    /// The document's CRC-32 when already known (recorded while adding it); otherwise the
    /// writer computes it in a first pass, since the zip entry's header comes before its data.
    fn crc32(&self, _index: usize) -> Option<u32> {
        None
    }
}

/// Noon on the document's date: what zip tools show as the file's date.
fn zip_time(d: jiff::civil::Date) -> Option<jiff::civil::DateTime> {
    Some(d.at(12, 0, 0, 0))
}

/// Streams a bundle into `out`: age (optionally armored) around a stored zip. Returns `out`.
/// Terms with their exact TOML text and its signature.
pub struct SignedTerms {
    pub terms: Terms,
    pub toml: String,
    pub signature: String,
}

impl TermsPatient {
    /// The patient as a vault's bundles name them: name, vault, signing key and fingerprint, and
    /// the vault's recipients (where a receipt goes).
    pub fn of(
        name: Option<String>,
        config: &crate::config::Config,
        ring: &crate::keyring::Keyring,
    ) -> TermsPatient {
        let key = ring.verifying_key();
        TermsPatient {
            name,
            vault_id: Some(config.vault_id.clone()),
            signing_key: crate::sign::encode_public(&key),
            fingerprint: crate::keyring::fingerprint(&key),
            recipients: config.recipients.clone(),
        }
    }
}

impl SignedTerms {
    /// The terms as TOML under a one-line `# heading`, and the patient's signature over exactly
    /// those bytes (`what` goes in the signature's trusted comment: "carnet grant", …).
    pub fn sign(
        terms: Terms,
        heading: &str,
        what: &str,
        ring: &crate::keyring::Keyring,
    ) -> anyhow::Result<SignedTerms> {
        use anyhow::Context as _;
        let toml = format!(
            "# {heading}: terms signed by the patient (see {SIGNATURE})\n{}",
            toml::to_string(&terms).context("cannot encode the terms")?
        );
        let signature = crate::sign::sign(
            ring,
            toml.as_bytes(),
            &format!(
                "signature from carnet patient key {}",
                terms.patient.fingerprint
            ),
            &format!("{what} {} expires {}", terms.id, terms.expires),
        );
        Ok(SignedTerms {
            terms,
            toml,
            signature,
        })
    }
}

pub fn write_bundle<W: Write>(
    out: W,
    recipients: &[Box<dyn age::Recipient + Send>],
    armor: bool,
    signed: &SignedTerms,
    docs: &mut dyn DocumentSource,
    progress: &dyn Fn(u64),
) -> anyhow::Result<W> {
    let enc = age::Encryptor::with_recipients(
        recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )?;
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let armored = age::armor::ArmoredWriter::wrap_output(out, format)?;
    let stream = enc.wrap_output(armored)?;
    let terms = &signed.terms;
    // Each entry's CRC-32 goes in its local header, before its data: documents without a
    // recorded one are read (decrypted, never written anywhere) once to compute it.
    let mut crcs = Vec::with_capacity(terms.documents.len());
    for (i, d) in terms.documents.iter().enumerate() {
        let crc = match docs.crc32(i) {
            Some(c) => c,
            None => {
                let (crc, n) = crate::zipsafe::crc32_of(&mut docs.open(i)?)?;
                if n != d.size {
                    anyhow::bail!(Error::Integrity(format!(
                        "{} is {n} bytes, the manifest says {}",
                        d.title, d.size
                    )));
                }
                crc
            }
        };
        crcs.push(crc);
    }
    let mut zip = StoredZipWriter::new(stream);
    let now = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    zip.add_bytes(TERMS, signed.toml.as_bytes(), 0o644, zip_time(now))?;
    zip.add_bytes(SIGNATURE, signed.signature.as_bytes(), 0o644, zip_time(now))?;
    zip.add_bytes(README, readme(terms).as_bytes(), 0o644, zip_time(now))?;
    // Decrypting the vault's objects and encrypting the bundle each take a core: a reader
    // thread decrypts into recycled buffers while this one zips and encrypts.
    const CHUNK: usize = 256 * 1024;
    let expected: Vec<(String, String)> = terms
        .documents
        .iter()
        .map(|d| (d.sha256.clone(), d.title.clone()))
        .collect();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<anyhow::Result<Vec<u8>>>(8);
        let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(10);
        s.spawn(move || {
            for (i, (want, title)) in expected.iter().enumerate() {
                let mut r = match docs.open(i) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                // Anyone can encrypt to the vault's public key, so an object replaced by one of
                // the same size decrypts fine: check the plaintext against the signed hash
                // before the document's end reaches the bundle.
                let mut hash = Sha256::new();
                loop {
                    let mut buf = back_rx.try_recv().unwrap_or_default();
                    buf.resize(CHUNK, 0);
                    match crate::crypto::read_full(&mut r, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            hash.update(&buf);
                            if tx.send(Ok(buf)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.into()));
                            return;
                        }
                    }
                }
                if hex::encode(hash.finalize()) != *want {
                    let _ = tx.send(Err(Error::Integrity(format!(
                        "{title} does not match its recorded SHA-256 (its object was replaced?)"
                    ))
                    .into()));
                    return;
                }
                // An empty buffer marks the end of a document.
                if tx.send(Ok(Vec::new())).is_err() {
                    return;
                }
            }
        });
        let mut done = 0u64;
        for (d, &crc32) in terms.documents.iter().zip(&crcs) {
            zip.start(&NewEntry {
                name: &d.path,
                size: d.size,
                crc32,
                mode: 0o644,
                modified: zip_time(d.date),
            })?;
            let mut n = 0u64;
            loop {
                let buf = rx
                    .recv()
                    .map_err(|_| anyhow::anyhow!("the document reader stopped"))??;
                if buf.is_empty() {
                    break;
                }
                n += buf.len() as u64;
                if n > d.size {
                    break;
                }
                zip.write_all(&buf)?;
                done += buf.len() as u64;
                progress(done);
                let _ = back_tx.try_send(buf);
            }
            if n != d.size {
                anyhow::bail!(Error::Integrity(format!(
                    "{} is {n} bytes, the manifest says {}",
                    d.title, d.size
                )));
            }
        }
        Ok(())
    })?;
    let stream = zip.finish()?;
    let armored = stream.finish()?;
    Ok(armored.finish()?)
}

/// Why a bundle was refused; mapped to exit codes by the caller.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("this bundle is not addressed to your key")]
    NotForYou,
    /// A bundle encrypted to a passcode, opened with a key.
    #[error("this bundle opens with a passcode, not with a key")]
    NeedsPasscode,
    /// A bundle encrypted to keys, opened with a passcode.
    #[error("this bundle opens with a professional's key, not with a passcode")]
    NeedsKey,
    #[error("wrong passcode (or the bundle's header was damaged)")]
    WrongPasscode,
    #[error("the bundle asks for scrypt work 2^{0}, more than the 2^20 carnet accepts")]
    ExcessiveWork(u8),
    #[error("this is not an age file: {0}")]
    NotAge(String),
    /// An age plugin (a hardware key) failed or refused: not damage, and not a wrong key.
    #[error("the age plugin failed: {0}")]
    Plugin(String),
    #[error("the armor has trailing spaces on its lines (a mail client added them)")]
    TrailingSpaces,
    #[error("the bundle is damaged or was altered: {0}")]
    Damaged(String),
    #[error("the signature does not hold: {0}")]
    BadSignature(String),
    #[error("signed by {found}, not by the expected {expected}")]
    WrongSigner { found: String, expected: String },
    #[error("the grant expired on {0}")]
    Expired(String),
    #[error("the grant is not valid before {0}")]
    NotYetValid(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// An opened, authenticated bundle ready to list or extract.
pub struct Opened<R: Read + Seek> {
    pub terms: Terms,
    pub terms_toml: String,
    pub signature: String,
    path: PathBuf,
    zip: SafeZip<R>,
}

fn damaged(s: impl Into<String>) -> BundleError {
    BundleError::Damaged(s.into())
}

/// What a bundle zip may hold: the terms, their signature, the README and the documents.
const LIMITS: Limits = Limits {
    max_entries: MAX_DOCUMENTS + 3,
    max_trailing: 0,
};

fn zip_refused(e: BadZip, what: &str) -> BundleError {
    match e {
        BadZip::TooManyEntries { count, .. } => {
            damaged(format!("{count} entries is more than {what} can hold"))
        }
        e => damaged(e.to_string()),
    }
}

fn read_entry<R: Read + Seek>(
    z: &mut SafeZip<R>,
    name: &str,
    limit: u64,
) -> Result<String, BundleError> {
    let Some(e) = z.get(name) else {
        return Err(damaged(format!(
            "{name} is missing: not a carnet grant bundle"
        )));
    };
    if e.size > limit {
        return Err(damaged(format!("{name} is too large")));
    }
    z.read_text(name, limit)
        .map_err(|e| damaged(format!("cannot read {name}: {e}")))
}

/// Decrypts a bundle file and authenticates its terms. The plaintext is never written to disk:
/// age's reader is seekable, so the zip is read in place.
pub fn open_bundle(
    path: &Path,
    identities: &[age::x25519::Identity],
) -> Result<Opened<impl Read + Seek + use<>>, BundleError> {
    let ids: Vec<&dyn age::Identity> = identities.iter().map(|i| i as &dyn age::Identity).collect();
    open_bundle_unexplained(path, &ids, false).map_err(|e| explain(path, e))
}

/// What opens a bundle: the professional's identities, or a passcode (an emergency bundle,
/// an access code), as normalised by `passcode::normalize`.
pub enum Opener<'a> {
    /// Any identity file's: X25519, SSH or plugin (`keys::load_any_identity`).
    Keys(&'a crate::keys::AnyIdentity),
    Passcode(&'a age::secrecy::SecretString),
}

/// Like `open_bundle`, with either kind of secret.
pub fn open_bundle_by(
    path: &Path,
    opener: Opener<'_>,
) -> Result<Opened<impl Read + Seek + use<>>, BundleError> {
    let result = match opener {
        Opener::Keys(ids) => open_bundle_unexplained(path, &ids.as_dyn(), false),
        Opener::Passcode(p) => {
            let id = crate::passcode::identity(p);
            open_bundle_unexplained(path, &[&id as &dyn age::Identity], true)
        }
    };
    result.map_err(|e| explain(path, e))
}

/// Damage in an armored bundle is first checked for what mail clients do to armor (spaces at
/// the ends of lines), so that the professional hears the real cause.
pub fn explain(path: &Path, e: BundleError) -> BundleError {
    match e {
        BundleError::Damaged(_) if crate::armor::mail_damaged(path) => BundleError::TrailingSpaces,
        e => e,
    }
}

fn open_bundle_unexplained(
    path: &Path,
    identities: &[&dyn age::Identity],
    by_passcode: bool,
) -> Result<Opened<impl Read + Seek + use<>>, BundleError> {
    let mut zip = decrypt_zip(path, identities, by_passcode, &LIMITS, "a grant")?;
    let terms_toml = read_entry(&mut zip, TERMS, MAX_TERMS)?;
    let signature = read_entry(&mut zip, SIGNATURE, MAX_SIGNATURE)?;
    let terms: Terms = toml::from_str(&terms_toml)
        .map_err(|e| damaged(format!("{TERMS} is not valid: {}", e.message())))?;
    if terms.format != FORMAT {
        return Err(damaged(format!("unknown grant format {:?}", terms.format)));
    }
    let key = crate::sign::decode_public(&terms.patient.signing_key)
        .map_err(BundleError::BadSignature)?;
    crate::sign::verify(&key, terms_toml.as_bytes(), &signature)
        .map_err(BundleError::BadSignature)?;
    if crate::keyring::fingerprint(&key) != terms.patient.fingerprint {
        return Err(BundleError::BadSignature(
            "the fingerprint in the terms is not that of the signing key".into(),
        ));
    }
    Ok(Opened {
        path: path.to_path_buf(),
        terms,
        terms_toml,
        signature,
        zip,
    })
}

/// Decrypts an age file (binary or armored) holding a stored zip, and opens the zip with the
/// checked reader: shared by bundles, deposits and receipts. The plaintext is never written to
/// disk (age's reader is seekable). Damage in an armored file is explained by the caller.
/// `by_passcode`: the secret is a passcode (an emergency bundle, an access code), and the
/// header says which kind of secret the file wants. `what` names the kind of file in messages.
pub fn decrypt_zip(
    path: &Path,
    identities: &[&dyn age::Identity],
    by_passcode: bool,
    limits: &Limits,
    what: &str,
) -> Result<SafeZip<impl Read + Seek + use<>>, BundleError> {
    let mut f = fs::File::open(path)?;
    let start = crate::armor::start(&mut f)?;
    let mut magic = [0u8; 21];
    let got = crate::crypto::read_full(&mut f, &mut magic)?;
    // Something that starts like an age file but does not parse is a damaged bundle, not a
    // wrong file.
    let looks_like_age =
        crate::armor::near_magic(&magic[..got]) || magic[..got].starts_with(b"-----BEGIN AGE");
    let reader = |f: fs::File| -> io::Result<_> {
        Ok(age::armor::ArmoredReader::new(BufReader::new(
            crate::armor::Offset::new(f, start)?,
        )))
    };
    let dec = age::Decryptor::new_buffered(reader(f)?).map_err(|e| {
        if looks_like_age {
            damaged(format!("truncated or damaged age header ({e})"))
        } else {
            BundleError::NotAge(e.to_string())
        }
    })?;
    // Which secret opens it shows in the header: say so rather than "not for you".
    match (dec.is_scrypt(), by_passcode) {
        (true, false) => return Err(BundleError::NeedsPasscode),
        (false, true) => return Err(BundleError::NeedsKey),
        _ => {}
    }
    let reader = dec
        .decrypt(identities.iter().copied())
        .map_err(|e| match e {
            age::DecryptError::ExcessiveWork { required, .. } => {
                BundleError::ExcessiveWork(required)
            }
            age::DecryptError::DecryptionFailed if by_passcode => BundleError::WrongPasscode,
            e @ (age::DecryptError::Plugin(_) | age::DecryptError::PluginResolve(_)) => {
                BundleError::Plugin(e.to_string())
            }
            age::DecryptError::NoMatchingKeys => {
                let header_damaged = fs::File::open(path)
                    .and_then(reader)
                    .is_ok_and(crate::armor::header_is_damaged);
                if header_damaged {
                    damaged("its age header names no recipient carnet writes")
                } else {
                    BundleError::NotForYou
                }
            }
            e => damaged(e.to_string()),
        })?;
    SafeZip::open(BufReader::with_capacity(256 * 1024, reader), limits)
        .map_err(|e| zip_refused(e, what))
}

impl<R: Read + Seek> Opened<R> {
    /// Checks every entry of the zip against the terms: names, kinds, sizes, no extras, no
    /// duplicates, every document present.
    pub fn check_entries(&mut self) -> Result<(), BundleError> {
        self.check_entries_unexplained()
            .map_err(|e| explain(&self.path, e))
    }

    fn check_entries_unexplained(&mut self) -> Result<(), BundleError> {
        if self.terms.documents.len() > MAX_DOCUMENTS {
            return Err(damaged("too many documents"));
        }
        let mut expected: HashSet<&str> = HashSet::new();
        for d in &self.terms.documents {
            check_entry_path(&d.path).map_err(damaged)?;
            if !expected.insert(d.path.as_str()) {
                return Err(damaged(format!("{} is listed twice in the terms", d.path)));
            }
        }
        // Names, kinds, duplicates, overlaps and headers were checked when the zip was opened:
        // what is left is whether the zip holds what the terms say, and nothing else.
        let mut seen: HashSet<&str> = HashSet::new();
        for e in self.zip.entries() {
            let name = e.name.as_str();
            seen.insert(name);
            let known = matches!(name, TERMS | SIGNATURE | README);
            if !known && !expected.contains(name) {
                return Err(damaged(format!(
                    "entry {name:?} is not in the signed terms"
                )));
            }
            if name == README && e.size > MAX_README {
                return Err(damaged("the README is too large"));
            }
            if let Some(d) = self.terms.documents.iter().find(|d| d.path == name)
                && e.size != d.size
            {
                return Err(damaged(format!(
                    "{name} is {} bytes, the terms say {}",
                    e.size, d.size
                )));
            }
        }
        for d in &self.terms.documents {
            if !seen.contains(d.path.as_str()) {
                return Err(damaged(format!(
                    "{} is in the terms but not in the bundle",
                    d.path
                )));
            }
        }
        Ok(())
    }

    /// Writes the terms, signature, README and every document into `dir` (a fresh staging
    /// folder), checking each document's size and SHA-256 as it streams.
    pub fn extract_to(
        &mut self,
        dir: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<Vec<PathBuf>, BundleError> {
        self.extract_to_unexplained(dir, progress)
            .map_err(|e| explain(&self.path, e))
    }

    fn extract_to_unexplained(
        &mut self,
        dir: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<Vec<PathBuf>, BundleError> {
        let mut written = Vec::new();
        for (name, body) in [
            (TERMS, self.terms_toml.clone()),
            (SIGNATURE, self.signature.clone()),
        ] {
            write_private(&dir.join(name), body.as_bytes())?;
            written.push(PathBuf::from(name));
        }
        if self.zip.get(README).is_some() {
            let text = read_entry(&mut self.zip, README, MAX_README)?;
            write_private(&dir.join(README), text.as_bytes())?;
            written.push(PathBuf::from(README));
        }
        let mut done = 0u64;
        let docs = self.terms.documents.clone();
        let mut buf = vec![0u8; 256 * 1024];
        for d in &docs {
            let dest = dir.join(&d.path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut r = self
                .zip
                .reader(&d.path)
                .map_err(|e| damaged(format!("{}: {e}", d.path)))?;
            // Health data: readable by the professional's account only, like `carnet export`.
            let mut out = crate::fsutil::create_new_private(&dest)?;
            let mut h = Sha256::new();
            let mut n = 0u64;
            loop {
                let k = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(damaged(format!("{}: {e}", d.path))),
                };
                n += k as u64;
                if n > d.size {
                    return Err(damaged(format!("{} is larger than the terms say", d.path)));
                }
                h.update(&buf[..k]);
                out.write_all(&buf[..k])?;
                done += k as u64;
                progress(done);
            }
            if n != d.size || hex::encode(h.finalize()) != d.sha256 {
                return Err(damaged(format!(
                    "{} does not match the SHA-256 in the signed terms",
                    d.path
                )));
            }
            out.sync_all()?;
            written.push(PathBuf::from(&d.path));
        }
        Ok(written)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = crate::fsutil::create_new_private(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_must_stay_under_documents() {
        assert!(check_entry_path("documents/imagerie/2024-01-02 Radio.png").is_ok());
        for bad in [
            "../x",
            "/etc/passwd",
            "documents/../../x",
            "documents\\x",
            "documents/",
            "grant.toml",
            "documents/a/./b",
            "",
        ] {
            assert!(check_entry_path(bad).is_err(), "{bad}");
        }
    }
}
