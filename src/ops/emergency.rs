//! Emergency access (`carnet emergency`): the emergency bundle — the profile as an FHIR
//! International Patient Summary and as readable text, plus the documents the patient
//! includes (never hidden ones) — signed like a grant and encrypted to a generated passcode;
//! and the patient's objection (`--opt-out`, CSP L1111-17), kept in the root, which makes the
//! bundle refuse to be made until `--opt-in`.
//!
//! Like a grant, the bundle is staged, then recorded (the root's grants, `to = emergency`, and
//! an `emergency` log entry with its hash) before it is returned for delivery.

use std::io::{BufReader, Read};
use std::path::PathBuf;

use age::secrecy::SecretString;
use anyhow::Context;

use crate::domain::Action;
use crate::error::Error;
use crate::fsutil;
use crate::grant::{self, DocumentSource, Terms, TermsDocument, TermsPatient};
use crate::ids;
use crate::keys::Unlocked;
use crate::manifest::{Document, GrantRecord};
use crate::profile::Essential;
use crate::txn::{Notice, Op};
use crate::vault::{KeyOpts, Vault};

/// The bundle's purpose, as its signed terms say.
pub const PURPOSE: &str = "Accès d'urgence / emergency access";

pub struct Request {
    /// Document id prefixes to include.
    pub include: Vec<String>,
    pub expires: jiff::Timestamp,
    /// The generated passcode, and the scrypt cost 2^N.
    pub passcode: SecretString,
    pub scrypt_log_n: u8,
    /// Where to stage the bundle (beside its destination).
    pub stage_in: PathBuf,
    /// Where the bundle goes, as the log records it.
    pub output_name: String,
    pub card: Option<CardRequest>,
}

/// What the printed card shows.
pub struct CardRequest {
    pub show: Vec<Essential>,
    pub passcode_on_card: bool,
    /// Where the bundle is, in the patient's words.
    pub location: String,
    /// The bundle's file name, for the instructions.
    pub file_name: String,
    /// Where the card goes, as the log records it.
    pub output_name: String,
}

pub struct Issued {
    pub record: GrantRecord,
    pub fingerprint: String,
    pub bundle_sha256: String,
    /// The sealed bundle (ciphertext), deleted when dropped unless persisted.
    pub bundle: tempfile::NamedTempFile,
    /// The card's PDF, when asked for (the caller writes it); it holds the passcode.
    pub card: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// The essentials the card and its QR code show in clear.
    pub shown: Vec<String>,
    pub profile_version: u32,
    pub included: Vec<(String, String)>,
    pub notices: Vec<Notice>,
}

/// Refuses while the patient objects to emergency access.
fn check_not_opted_out(root: &crate::catalog::Root) -> Result<(), Error> {
    match &root.emergency_opt_out {
        Some(o) => Err(Error::input(
            format!(
                "you objected to emergency access on {}: no emergency bundle or card is made",
                crate::dates::local_day(o.at)
            ),
            "lift the objection with `carnet emergency --opt-in`",
        )),
        None => Ok(()),
    }
}

/// In-memory entries (the summaries) first, then vault documents.
struct Sources<'a> {
    memory: Vec<zeroize::Zeroizing<Vec<u8>>>,
    vault: &'a Vault,
    keys: &'a Unlocked,
    docs: Vec<Document>,
}

impl DocumentSource for Sources<'_> {
    fn open(&mut self, index: usize) -> anyhow::Result<Box<dyn Read + Send + '_>> {
        if let Some(m) = self.memory.get(index) {
            return Ok(Box::new(std::io::Cursor::new(&m[..])));
        }
        let d = &self.docs[index - self.memory.len()];
        let r = self.vault.open_object(d, self.keys)?;
        Ok(Box::new(BufReader::with_capacity(256 * 1024, r)))
    }

    fn crc32(&self, index: usize) -> Option<u32> {
        match self.memory.get(index) {
            Some(m) => Some(crc32fast::hash(m)),
            None => self.docs[index - self.memory.len()].crc32,
        }
    }
}

pub fn issue(
    vault: &Vault,
    keys: &KeyOpts,
    req: &Request,
    now: jiff::Timestamp,
) -> anyhow::Result<Issued> {
    let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    if req.expires <= now {
        return Err(Error::input(
            "the emergency bundle would already be expired",
            "give --expires a future date or a duration such as 365d",
        )
        .into());
    }
    let shared = fsutil::Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(keys)?;
    snap.root.check_writable()?;
    check_not_opted_out(&snap.root)?;
    let (profile, version) = super::profile::current_in(vault, &snap)?;
    let Some(version) = version else {
        return Err(Error::input(
            "there is no emergency profile to put in the bundle",
            "write one first with `carnet profile edit` (or `carnet profile import examples/profile.toml`)",
        )
        .into());
    };
    let mut docs: Vec<Document> = Vec::new();
    for p in &req.include {
        let d = snap.resolve(vault, p)?;
        // The emergency bundle opens for anyone holding the card: never hidden documents.
        if snap.root.hidden_from_pros(&d) {
            return Err(Error::input(
                format!(
                    "{} ({}) is hidden from professionals: it never goes in the emergency bundle",
                    ids::short(&d.id),
                    crate::text::clean(&d.title)
                ),
                "leave it out, or make it visible first with `carnet unhide`",
            )
            .into());
        }
        if !docs.iter().any(|w| w.id == d.id) {
            docs.push(d);
        }
    }
    docs.sort_by_key(|d| (d.date, d.added_at));

    let name = snap.root.patient.name.clone();
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::system()).date();
    let ips = crate::ips::bundle(&crate::ips::Input {
        patient: &snap.root.patient,
        profile: &profile,
        documents: &[],
        now,
    });
    let ips = zeroize::Zeroizing::new(
        serde_json::to_vec_pretty(&ips).context("cannot encode the FHIR Bundle")?,
    );
    let summary = zeroize::Zeroizing::new(
        crate::profile::summary_text(name.as_deref(), &profile, Some(version.version), version.at)
            .into_bytes(),
    );
    let memory_doc = |title: &str, ext: &str, media: &str, bytes: &[u8]| TermsDocument {
        id: ids::random_id(),
        title: title.to_string(),
        category: "synthese".into(),
        date: today,
        author: name.clone(),
        media_type: media.into(),
        size: bytes.len() as u64,
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
        path: format!("documents/synthese/{today} {title}.{ext}"),
    };
    let mut documents = vec![
        memory_doc(
            "Résumé d'urgence",
            "txt",
            "text/plain; charset=utf-8",
            &summary,
        ),
        memory_doc(
            "Résumé d'urgence (IPS FHIR)",
            "json",
            "application/fhir+json",
            &ips,
        ),
    ];
    let mut taken: std::collections::HashSet<String> =
        documents.iter().map(|d| d.path.to_lowercase()).collect();
    for d in &docs {
        let base = format!("documents/{}/{}", d.category, crate::naming::file_name(d));
        let mut path = base.clone();
        let mut n = 2;
        while !taken.insert(path.to_lowercase()) {
            path = match base.rfind('.') {
                Some(i) if i > base.rfind('/').unwrap_or(0) => {
                    format!("{} ({n}){}", &base[..i], &base[i..])
                }
                _ => format!("{base} ({n})"),
            };
            n += 1;
        }
        documents.push(TermsDocument {
            id: d.id.to_string(),
            title: d.title.clone(),
            category: d.category.clone(),
            date: d.date,
            author: d.author.clone(),
            media_type: d.media_type.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            path,
        });
    }

    let key = snap.ring.verifying_key();
    let fingerprint = crate::keyring::fingerprint(&key);
    let terms = Terms {
        format: grant::FORMAT.into(),
        id: ids::random_id(),
        kind: Some(grant::KIND_EMERGENCY.into()),
        purpose: Some(PURPOSE.into()),
        issued: now,
        not_before: now,
        expires: req.expires,
        patient: TermsPatient::of(name.clone(), &vault.config, &snap.ring),
        recipients: Vec::new(),
        documents,
    };
    let signed = grant::SignedTerms::sign(
        terms.clone(),
        "carnet emergency bundle",
        "carnet emergency",
        &snap.ring,
    )?;
    let recipients: Vec<Box<dyn age::Recipient + Send>> = vec![Box::new(
        crate::passcode::recipient(&req.passcode, req.scrypt_log_n),
    )];
    let mut source = Sources {
        memory: vec![summary, ips],
        vault,
        keys: &snap.keys,
        docs: docs.clone(),
    };
    let tmp = fsutil::private_tempfile(&req.stage_in)
        .with_context(|| format!("cannot write in {}", req.stage_in.display()))?;
    let out = crate::crypto::HashingWriter::new(std::io::BufWriter::with_capacity(256 * 1024, tmp));
    let out = grant::write_bundle(out, &recipients, false, &signed, &mut source, &|_| {})?;
    let (out, bundle_sha256) = out.finish();
    let tmp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the bundle")?;

    let (card, shown) = match &req.card {
        Some(c) => {
            let shown = crate::profile::essentials(&profile, &c.show);
            let code = age::secrecy::ExposeSecret::expose_secret(&req.passcode);
            let until = crate::dates::local_day(req.expires);
            let pdf = crate::emergency_card::pdf(&crate::emergency_card::Card {
                name: name.as_deref().unwrap_or("(sans nom / unnamed)"),
                essentials: &shown,
                passcode: c.passcode_on_card.then_some(code),
                location: &c.location,
                file_name: &c.file_name,
                until: &until,
            })?;
            (Some(zeroize::Zeroizing::new(pdf)), shown)
        }
        None => (None, Vec::new()),
    };

    let record = GrantRecord {
        id: terms.id.clone(),
        to: vec![grant::KIND_EMERGENCY.to_string()],
        documents: docs.iter().map(|d| d.id.to_string()).collect(),
        purpose: terms.purpose.clone(),
        issued_at: now,
        not_before: now,
        expires: req.expires,
        bundle_sha256: bundle_sha256.clone(),
        revoked_at: None,
        opened: Vec::new(),
        sealed: docs.iter().any(|d| snap.root.hidden_from_guardians(d)),
    };
    drop(shared);
    let txn = vault.begin(snap.keys, now)?;
    check_not_opted_out(txn.root())?;
    let mut root = txn.root().clone();
    root.grants.push(record.clone());
    let mut op = Op::new(Action::Emergency)
        .documents(record.documents.clone())
        .detail("op", "bundle")
        .detail("grant", record.id.clone())
        .detail("to", grant::KIND_EMERGENCY)
        .detail("expires", req.expires.to_string())
        .detail("bundle_sha256", bundle_sha256.clone())
        .detail("output", req.output_name.clone())
        .detail("profile_version", version.version);
    if let Some(c) = &req.card {
        op = op
            .detail("card", c.output_name.clone())
            .detail("passcode_on_card", c.passcode_on_card)
            .detail("shown", shown.len());
    }
    op.root = Some(root);
    let notices = txn.commit(op).map(|c| c.notices).map_err(|e| {
        e.context(
            "the emergency bundle could not be recorded in the access log, so nothing was written",
        )
    })?;
    Ok(Issued {
        record,
        fingerprint,
        bundle_sha256,
        bundle: tmp,
        card,
        shown,
        profile_version: version.version,
        included: docs
            .iter()
            .map(|d| (d.id.to_string(), d.title.clone()))
            .collect(),
        notices,
    })
}

/// What `--opt-out` / `--opt-in` did.
pub struct Choice {
    /// Whether the patient now objects to emergency access.
    pub opted_out: bool,
    pub since: Option<jiff::Timestamp>,
    /// False when it already was so (nothing logged).
    pub changed: bool,
    pub notices: Vec<Notice>,
}

/// Records the patient's objection to emergency access (`object`), or lifts it.
pub fn set_opt_out(
    vault: &Vault,
    keys: &KeyOpts,
    object: bool,
    now: jiff::Timestamp,
) -> anyhow::Result<Choice> {
    let snap = vault.read(keys)?;
    snap.root.check_writable()?;
    let txn = vault.begin(snap.keys, now)?;
    let current = txn.root().emergency_opt_out.clone();
    if current.is_some() == object {
        return Ok(Choice {
            opted_out: object,
            since: current.map(|o| o.at),
            changed: false,
            notices: Vec::new(),
        });
    }
    let mut root = txn.root().clone();
    root.emergency_opt_out = object.then_some(crate::catalog::OptOut { at: now });
    let mut op = Op::new(Action::Emergency).detail("op", if object { "opt-out" } else { "opt-in" });
    if let Some(o) = &current {
        op = op.detail("opted_out_at", o.at.to_string());
    }
    op.root = Some(root);
    let done = txn.commit(op)?;
    Ok(Choice {
        opted_out: object,
        since: object.then_some(now),
        changed: true,
        notices: done.notices,
    })
}

/// The default essentials of the card: allergies, blood group, contacts.
pub const DEFAULT_SHOW: [Essential; 3] = [
    Essential::Allergies,
    Essential::BloodGroup,
    Essential::Contacts,
];
