//! Sharing (`carnet grant`): the chosen documents, signed terms and a README sealed into a
//! bundle for the chosen professionals, recorded in the access log BEFORE a byte of it can
//! leave: this module returns the bundle staged (ciphertext, in a private temporary file) only
//! once the grant is logged; the caller then delivers it. A grant is never released untraced.

use std::collections::HashSet;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use anyhow::Context;

use crate::domain::Action;
use crate::error::Error;
use crate::fsutil;
use crate::grant::{self, DocumentSource, Terms, TermsDocument, TermsPatient, TermsRecipient};
use crate::ids;
use crate::keys::Unlocked;
use crate::manifest::{Document, GrantRecord};
use crate::txn::{Notice, Op};
use crate::vault::{KeyOpts, Vault};

/// What to share, with whom, for how long: resolved and checked by the caller (times parsed,
/// categories known, expiry after the start and in the future).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Handles, RPPS or ADELI numbers of professionals in the directory.
    pub to: Vec<String>,
    /// Document id prefixes.
    pub docs: Vec<String>,
    pub categories: Vec<&'static str>,
    pub tags: Vec<String>,
    pub all: bool,
    /// Share documents hidden from professionals too (the patient's explicit choice).
    pub include_hidden: bool,
    pub purpose: Option<String>,
    pub not_before: jiff::Timestamp,
    pub expires: jiff::Timestamp,
    pub armor: bool,
    /// Where to stage the bundle (beside its destination, so that delivering it is a rename);
    /// the vault's `tmp/` when none (standard output).
    pub stage_in: Option<PathBuf>,
    /// Where the bundle goes, as the log records it (`-` for standard output).
    pub output_name: String,
    /// Instead of `to`: encrypt to this generated passcode (an access code, `grant
    /// --passcode`) at scrypt cost 2^N; the grant then lasts at most `MAX_PASSCODE_DAYS`.
    pub passcode: Option<(age::secrecy::SecretString, u8)>,
}

/// The longest an access code lasts: anyone holding the bundle and the passcode can read it,
/// and nothing limits guesses offline, so its window stays short.
pub const MAX_PASSCODE_DAYS: i64 = 31;

/// Refuses an access code that would last more than `MAX_PASSCODE_DAYS` from its start.
pub fn check_passcode_expiry(
    not_before: jiff::Timestamp,
    expires: jiff::Timestamp,
    now: jiff::Timestamp,
) -> Result<(), Error> {
    let start = not_before.max(now);
    if expires.duration_since(start) > jiff::SignedDuration::from_hours(24 * MAX_PASSCODE_DAYS) {
        return Err(Error::input(
            format!(
                "an access code lasts at most {MAX_PASSCODE_DAYS} days; this one would run until {}",
                crate::dates::show_local(expires)
            ),
            format!(
                "give --expires {MAX_PASSCODE_DAYS}d or less (for longer, add the professional with `carnet pro add` and grant to their key)"
            ),
        ));
    }
    Ok(())
}

/// A grant recorded in the log, its bundle staged and ready to deliver.
pub struct Issued {
    pub record: GrantRecord,
    /// The patient's signing key fingerprint, for the professional to check.
    pub fingerprint: String,
    pub bundle_sha256: String,
    /// The sealed bundle (ciphertext), deleted when dropped unless persisted.
    pub bundle: tempfile::NamedTempFile,
    pub notices: Vec<Notice>,
}

/// Streams each document's plaintext from its vault object.
struct VaultDocs<'a> {
    vault: &'a Vault,
    keys: &'a Unlocked,
    docs: Vec<Document>,
}

impl DocumentSource for VaultDocs<'_> {
    fn open(&mut self, index: usize) -> anyhow::Result<Box<dyn Read + Send + '_>> {
        let r = self.vault.open_object(&self.docs[index], self.keys)?;
        Ok(Box::new(BufReader::with_capacity(256 * 1024, r)))
    }

    fn crc32(&self, index: usize) -> Option<u32> {
        self.docs[index].crc32
    }
}

/// Issues a grant at `now` (whole seconds: the terms print them). `progress(done, total)`
/// follows the bytes sealed.
pub fn issue(
    vault: &Vault,
    keys: &KeyOpts,
    req: &Request,
    now: jiff::Timestamp,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Issued> {
    let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    let (not_before, expires) = (req.not_before, req.expires);
    if req.passcode.is_some() {
        if !req.to.is_empty() {
            return Err(Error::input(
                "a grant goes to professionals or behind a passcode, not both",
                "drop --to, or --passcode",
            )
            .into());
        }
        check_passcode_expiry(not_before, expires, now)?;
    }
    // Shared while documents are chosen and sealed: a concurrent commit removes the shards it
    // replaces and `rm` removes objects, which must not read as damage half-way.
    let shared = crate::fsutil::Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(keys)?;
    // A closed record would refuse the commit: say so before sealing a bundle in vain.
    snap.root.check_writable()?;
    let m = &snap.root;

    let mut pros = Vec::new();
    for who in &req.to {
        let p = m.professional_to_share(who)?;
        if p.blocked {
            return Err(Error::input(
                format!("{} is blocked: no grant can be made to them", p.handle),
                format!("unblock them first with `carnet pro unblock {}`", p.handle),
            )
            .into());
        }
        if !pros
            .iter()
            .any(|q: &&crate::pro::Professional| q.handle == p.handle)
        {
            pros.push(p);
        }
    }

    let mut wanted: Vec<Document> = Vec::new();
    for p in &req.docs {
        let d = snap.resolve(vault, p)?;
        if m.hidden_from_pros(&d) && !req.include_hidden {
            return Err(Error::input(
                format!(
                    "{} ({}) is hidden from professionals",
                    ids::short(&d.id),
                    crate::text::clean(&d.title)
                ),
                "share it anyway with --include-hidden, or make it visible with `carnet unhide`",
            )
            .into());
        }
        if !wanted.iter().any(|w| w.id == d.id) {
            wanted.push(d);
        }
    }
    let mut notices = Vec::new();
    if req.include_hidden && req.passcode.is_some() {
        notices.push(Notice::Warning(
            "documents hidden from professionals may be in this access code: whoever holds the bundle and the passcode reads them".into(),
        ));
    }
    if req.include_hidden {
        let others: Vec<&str> = pros
            .iter()
            .filter(|p| p.role.as_deref() != Some(crate::pro::MEDECIN_TRAITANT))
            .map(|p| p.handle.as_str())
            .collect();
        if !others.is_empty() {
            notices.push(Notice::Warning(format!(
                "documents hidden from professionals are shared with {}, who {} not your médecin traitant",
                others.join(", "),
                if others.len() == 1 { "is" } else { "are" }
            )));
        }
    }
    // Only a selection by category, tag or --all needs every document's metadata.
    let everything = if req.all || !req.categories.is_empty() || !req.tags.is_empty() {
        snap.documents(vault)?
    } else {
        Vec::new()
    };
    let mut chosen: Vec<&Document> = wanted.iter().collect();
    let (mut skipped_hidden, mut skipped_notes) = (0usize, 0usize);
    for d in &everything {
        if wanted.iter().any(|w| w.id == d.id) {
            continue;
        }
        let by_category = req.categories.contains(&d.category.as_str());
        if !(req.all || by_category || d.tags.iter().any(|t| req.tags.contains(t))) {
            continue;
        }
        if m.hidden_from_pros(d) && !req.include_hidden {
            skipped_hidden += 1;
            continue;
        }
        // The patient's own notes are shared when asked for by name or category, not swept
        // along with everything else.
        if d.category == crate::category::NOTE && req.all && !by_category {
            skipped_notes += 1;
            continue;
        }
        chosen.push(d);
    }
    if skipped_hidden > 0 {
        notices.push(Notice::Note(format!(
            "{skipped_hidden} document(s) hidden from professionals were left out (--include-hidden shares them)"
        )));
    }
    if skipped_notes > 0 {
        notices.push(Notice::Note(format!(
            "{skipped_notes} note(s) of your own were left out (share them with --category note-patient or --doc)"
        )));
    }
    if chosen.is_empty() && skipped_hidden > 0 {
        return Err(Error::input(
            format!("the {skipped_hidden} document(s) selected are hidden from professionals"),
            "share them anyway with --include-hidden, or make them visible with `carnet unhide`",
        )
        .into());
    }
    if chosen.is_empty() {
        return Err(Error::input(
            "no document matches this selection",
            "check it with `carnet ls`; nothing was shared",
        )
        .into());
    }
    chosen.sort_by_key(|d| (d.date, d.added_at));

    // Readable, unique paths inside the zip.
    let mut taken = HashSet::new();
    let documents: Vec<TermsDocument> = chosen
        .iter()
        .map(|d| {
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
            TermsDocument {
                id: d.id.to_string(),
                title: d.title.clone(),
                category: d.category.clone(),
                date: d.date,
                author: d.author.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                sha256: d.sha256.clone(),
                path,
            }
        })
        .collect();

    let key = snap.ring.verifying_key();
    let fingerprint = crate::keyring::fingerprint(&key);
    let terms = Terms {
        format: grant::FORMAT.into(),
        id: ids::random_id(),
        kind: req
            .passcode
            .as_ref()
            .map(|_| grant::KIND_PASSCODE.to_string()),
        purpose: req.purpose.clone(),
        issued: now,
        not_before,
        expires,
        patient: TermsPatient::of(m.patient.name.clone(), &vault.config, &snap.ring),
        recipients: pros
            .iter()
            .map(|p| TermsRecipient {
                name: p.name.clone(),
                rpps: p.rpps.clone(),
                adeli: p.adeli.clone(),
                profession: p.profession.clone(),
                recipient: p.recipient.clone(),
            })
            .collect(),
        documents,
    };
    let signed =
        grant::SignedTerms::sign(terms.clone(), "carnet grant", "carnet grant", &snap.ring)?;
    let recipients: Vec<Box<dyn age::Recipient + Send>> = match &req.passcode {
        // An scrypt recipient is always the file's only one.
        Some((p, log_n)) => vec![Box::new(crate::passcode::recipient(p, *log_n))],
        None => pros
            .iter()
            .map(|p| crate::pro::recipient(&p.recipient))
            .collect::<Result<Vec<_>, _>>()?,
    };

    let total: u64 = terms.documents.iter().map(|d| d.size).sum();
    let mut source = VaultDocs {
        vault,
        keys: &snap.keys,
        docs: chosen.iter().map(|d| (*d).clone()).collect(),
    };
    let progress = |n| progress(n, total);

    // The bundle (ciphertext) is staged in full first — beside FILE, or in the vault's tmp/
    // for standard output — so that the grant is logged, with the bundle's hash, before a
    // single byte of it leaves: a grant is never released without its trace.
    let stage_dir = req.stage_in.clone().unwrap_or_else(|| vault.tmp_dir());
    let tmp = fsutil::private_tempfile(&stage_dir)
        .with_context(|| format!("cannot write in {}", stage_dir.display()))?;
    let out = crate::crypto::HashingWriter::new(std::io::BufWriter::with_capacity(256 * 1024, tmp));
    let out = grant::write_bundle(out, &recipients, req.armor, &signed, &mut source, &progress)?;
    let (out, bundle_sha256) = out.finish();
    let tmp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the bundle")?;

    let to: Vec<String> = if req.passcode.is_some() {
        vec![grant::KIND_PASSCODE.to_string()]
    } else {
        pros.iter().map(|p| p.handle.clone()).collect()
    };
    let record = GrantRecord {
        id: terms.id.clone(),
        to,
        documents: terms.documents.iter().map(|d| d.id.clone()).collect(),
        purpose: terms.purpose.clone(),
        issued_at: now,
        not_before,
        expires,
        bundle_sha256: bundle_sha256.clone(),
        revoked_at: None,
        opened: Vec::new(),
        sealed: chosen.iter().any(|d| snap.root.hidden_from_guardians(d)),
    };
    let identifiers: Vec<String> = pros
        .iter()
        .map(|p| p.identifier().unwrap_or_else(|| p.name.clone()))
        .collect();
    drop(shared);
    let logged = (|| -> anyhow::Result<Vec<Notice>> {
        let txn = vault.begin(snap.keys, now)?;
        let mut root = txn.root().clone();
        root.grants.push(record.clone());
        let mut op = Op::new(Action::Grant)
            .documents(record.documents.clone())
            .detail("grant", record.id.clone())
            .detail(
                "to",
                match req.passcode {
                    // `to = passcode`: no one is named; whoever holds the passcode can open it.
                    Some(_) => serde_json::Value::from(grant::KIND_PASSCODE),
                    None => serde_json::Value::from(record.to.clone()),
                },
            )
            .detail("identifiers", identifiers)
            .detail("not_before", not_before.to_string())
            .detail("expires", expires.to_string())
            .detail("bundle_sha256", bundle_sha256.clone())
            .detail("output", req.output_name.clone());
        if let Some(p) = &record.purpose {
            op = op.detail("purpose", p.clone());
        }
        op.root = Some(root);
        Ok(txn.commit(op)?.notices)
    })();
    let notices = match logged {
        Ok(n) => notices.into_iter().chain(n).collect(),
        // The staged bundle is dropped (and deleted) with `tmp`: nothing was shared.
        Err(e) => {
            return Err(e.context(
                "the grant could not be recorded in the access log, so no bundle was written",
            ));
        }
    };
    Ok(Issued {
        record,
        fingerprint,
        bundle_sha256,
        bundle: tmp,
        notices,
    })
}
