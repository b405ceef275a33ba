//! Depositing documents into a patient's vault (`carnet deposit`), the professional's side: no
//! vault, only the patient's card (checked: its signature binds the recipients to the
//! fingerprint the professional compares) and the professional's own key and card. Each file is
//! read twice — once to hash it (the zip needs its size and CRC-32 before its bytes, and the
//! terms its SHA-256), once to seal it — and refused if it changed in between. The deposit is
//! written beside its destination and renamed into place only when complete.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::card::PatientCard;
use crate::deposit::{self, DepositDocument, DepositTerms, Outgoing, PatientRef, Sender};
use crate::error::Error;
use crate::fsutil;
use crate::keys::ProKey;
use crate::ops::import::{DateSource, document_date};

/// What to deposit, resolved by the caller (category and date parsed).
#[derive(Debug, Clone)]
pub struct Request {
    /// The patient's card (`carnet card`).
    pub to: PathBuf,
    pub files: Vec<PathBuf>,
    /// The professional's own contact card (it must match the key).
    pub card: PathBuf,
    pub title: Option<String>,
    pub category: Option<&'static str>,
    pub date: Option<jiff::civil::Date>,
    pub note: Option<String>,
    pub output: PathBuf,
    pub force: bool,
}

/// What was deposited, for the professional to read or a script to parse.
#[derive(Debug, Clone, Serialize)]
pub struct Deposited {
    pub id: String,
    pub output: String,
    pub patient: Option<String>,
    /// The patient's key fingerprint, to compare with them.
    pub patient_fingerprint: String,
    pub vault_id: String,
    pub documents: Vec<DepositDocument>,
    /// SHA-256 of the deposit file (the ciphertext).
    pub sha256: String,
}

/// One file, hashed in a first pass.
struct Hashed {
    path: PathBuf,
    size: u64,
    crc32: u32,
    sha256: String,
    head: Vec<u8>,
    mtime: Option<jiff::civil::Date>,
}

/// A file named on the command line: a link is the professional's explicit choice and is
/// followed, but only to a regular file (a FIFO would block the deposit forever).
fn open_file(path: &Path) -> io::Result<std::fs::File> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    std::fs::File::open(path)
}

fn hash_file(path: &Path) -> anyhow::Result<Hashed> {
    let f = open_file(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => anyhow::Error::from(Error::input(
            format!("{} does not exist", path.display()),
            "check the path; nothing was written",
        )),
        _ => anyhow::Error::from(e).context(format!("cannot read {}", path.display())),
    })?;
    let mtime = f
        .metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(crate::dates::local_date);
    let mut r = io::BufReader::with_capacity(256 * 1024, f);
    let (mut sha, mut crc) = (Sha256::new(), crc32fast::Hasher::new());
    let mut head = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if head.len() < crate::media::SNIFF_LEN {
            let take = n.min(crate::media::SNIFF_LEN - head.len());
            head.extend_from_slice(&buf[..take]);
        }
        sha.update(&buf[..n]);
        crc.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Hashed {
        path: path.to_path_buf(),
        size,
        crc32: crc.finalize(),
        sha256: hex::encode(sha.finalize()),
        head,
        mtime,
    })
}

/// Writes the deposit at `now` (whole seconds: the terms print them). `progress(done, total)`
/// follows the bytes sealed.
pub fn deposit(
    req: &Request,
    key: &ProKey,
    now: jiff::Timestamp,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Deposited> {
    let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    if req.files.len() > deposit::MAX_DOCUMENTS {
        return Err(Error::input(
            format!(
                "{} files is more than one deposit holds ({})",
                req.files.len(),
                deposit::MAX_DOCUMENTS
            ),
            "deposit them in several goes",
        )
        .into());
    }
    if req.title.is_some() && req.files.len() > 1 {
        return Err(Error::input(
            format!(
                "--title names one document, and {} files were given",
                req.files.len()
            ),
            "deposit the files one at a time, or leave --title out",
        )
        .into());
    }
    if !req.force && req.output.exists() {
        return Err(Error::input(
            format!("{} already exists", req.output.display()),
            "choose another file, or pass --force to replace it",
        )
        .into());
    }
    // The patient's carnet refuses longer ones as hostile: say so here instead.
    if req
        .note
        .as_ref()
        .is_some_and(|n| n.len() > deposit::MAX_NOTE)
    {
        return Err(Error::input(
            format!("the note is longer than {} bytes", deposit::MAX_NOTE),
            "shorten it, or deposit the text as a document",
        )
        .into());
    }
    if req
        .title
        .as_ref()
        .is_some_and(|t| t.len() > deposit::MAX_TITLE)
    {
        return Err(Error::input(
            format!("the title is longer than {} bytes", deposit::MAX_TITLE),
            "shorten it",
        )
        .into());
    }
    let patient = PatientCard::read(&req.to)?;
    let card = crate::ops::pro::read_card(&req.card)?;
    // Refuses a key without a signing key, with the message that says what to do.
    let sender = Sender::from_card(&card, key)?;
    let signing = key
        .signing
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
    let recipients = patient
        .recipients
        .iter()
        .map(|r| crate::keys::parse_recipient(r))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let today = now.to_zoned_datetime(jiff::tz::TimeZone::system()).date();
    let mut hashed = Vec::with_capacity(req.files.len());
    for f in &req.files {
        hashed.push(hash_file(f)?);
    }
    let mut taken = std::collections::HashSet::new();
    let mut documents = Vec::with_capacity(hashed.len());
    for h in &hashed {
        let (date, _): (jiff::civil::Date, DateSource) =
            document_date(req.date, &h.path, h.mtime, today);
        let title = req.title.clone().unwrap_or_else(|| {
            h.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "sans titre".to_string())
        });
        let category = req.category.unwrap_or(crate::category::DEFAULT);
        let media_type = crate::media::detect(&h.head, &h.path);
        let ext = h
            .path
            .extension()
            .and_then(|e| e.to_str())
            .map(crate::naming::sanitize)
            .filter(|e| !e.is_empty() && e.len() <= 10)
            .or_else(|| crate::media::extension_for(&media_type).map(str::to_string));
        let stem = crate::naming::sanitize(&format!("{date} {title}"));
        let base = format!("documents/{category}/{stem}");
        let mut n = 1;
        let path = loop {
            let candidate = match (n, &ext) {
                (1, Some(e)) => format!("{base}.{e}"),
                (1, None) => base.clone(),
                (n, Some(e)) => format!("{base} ({n}).{e}"),
                (n, None) => format!("{base} ({n})"),
            };
            if taken.insert(candidate.to_lowercase()) {
                break candidate;
            }
            n += 1;
        };
        documents.push(DepositDocument {
            title,
            category: category.to_string(),
            date,
            media_type,
            size: h.size,
            sha256: h.sha256.clone(),
            path,
        });
    }
    let terms = DepositTerms {
        format: deposit::DEPOSIT_FORMAT.into(),
        id: crate::ids::random_id(),
        created: now,
        vault_id: patient.vault_id.clone(),
        note: req.note.clone(),
        patient: PatientRef {
            name: patient.name.clone(),
            fingerprint: patient.fingerprint.clone(),
        },
        professional: sender,
        documents,
    };
    let signed = deposit::sign(
        deposit::DEPOSIT_TERMS,
        "deposit",
        &terms,
        signing,
        &format!("carnet deposit {} for vault {}", terms.id, terms.vault_id),
    )?;
    let outgoing: Vec<Outgoing<'_>> = terms
        .documents
        .iter()
        .zip(&hashed)
        .map(|(d, h)| Outgoing {
            path: &d.path,
            size: h.size,
            crc32: h.crc32,
            sha256: &h.sha256,
            date: d.date,
        })
        .collect();
    let total: u64 = hashed.iter().map(|h| h.size).sum();
    let dir = fsutil::parent_dir(&req.output);
    let tmp = fsutil::private_tempfile(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let out = crate::crypto::HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, tmp));
    let mut open = |i: usize| -> io::Result<Box<dyn Read>> {
        Ok(Box::new(io::BufReader::with_capacity(
            256 * 1024,
            open_file(&hashed[i].path)?,
        )))
    };
    let out = deposit::write(
        out,
        &recipients,
        &signed,
        &deposit::deposit_readme(&terms),
        &outgoing,
        &mut open,
        &|n| progress(n, total),
    )?;
    let (out, sha256) = out.finish();
    let tmp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the deposit")?;
    fsutil::persist(tmp, &req.output, req.force)?;
    Ok(Deposited {
        id: terms.id.clone(),
        output: req.output.display().to_string(),
        patient: terms.patient.name.clone(),
        patient_fingerprint: terms.patient.fingerprint.clone(),
        vault_id: terms.vault_id.clone(),
        documents: terms.documents,
        sha256,
    })
}
