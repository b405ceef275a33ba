//! `carnet export --fhir`: the emergency profile as an FHIR R4 International Patient Summary
//! (`ips`), and with `documents` every document not hidden from professionals as a
//! DocumentReference whose file is written next to the JSON. Logged (`export`, format
//! `fhir-ips`) before anything is written; the JSON is written atomically, each document
//! checked against its recorded SHA-256 before it is renamed into place.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use serde::Serialize;
use sha1::Digest as _;

use crate::crypto::{self, OpenError};
use crate::domain::Action;
use crate::error::Error;
use crate::fsutil;
use crate::manifest::Document;
use crate::txn::{Notice, Op};
use crate::vault::{KeyOpts, Vault};

#[derive(Debug, Clone)]
pub struct Request {
    /// The JSON file.
    pub output: PathBuf,
    /// Also every document not hidden from professionals, next to the JSON.
    pub documents: bool,
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub id: String,
    pub title: String,
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Serialize)]
pub struct Report {
    pub output: PathBuf,
    /// The profile version exported; None when the vault has no profile (the Bundle then says
    /// so in each required section's `emptyReason`).
    pub profile_version: Option<u32>,
    pub resources: usize,
    pub documents: Vec<Written>,
    /// Documents hidden from professionals, left out.
    pub hidden_left_out: usize,
    #[serde(skip)]
    pub notices: Vec<Notice>,
}

pub fn export(
    vault: &Vault,
    keys: &KeyOpts,
    req: &Request,
    now: jiff::Timestamp,
) -> anyhow::Result<Report> {
    let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    let shared = fsutil::Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(keys)?;
    let (profile, version) = super::profile::current_in(vault, &snap)?;
    let mut hidden = 0;
    let docs: Vec<Document> = if req.documents {
        snap.sorted_documents(vault)?
            .into_iter()
            .filter(|d| {
                let h = snap.root.hidden_from_pros(d);
                hidden += usize::from(h);
                !h
            })
            .collect()
    } else {
        Vec::new()
    };
    drop(shared);

    let dir = fsutil::parent_dir(&req.output).to_path_buf();
    let json_name = req
        .output
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut taken: HashSet<String> = HashSet::from([json_name]);
    let plan: Vec<(Document, String)> = docs
        .into_iter()
        .map(|d| {
            let name = unique_name(&crate::naming::file_name(&d), &mut taken);
            (d, name)
        })
        .collect();
    if !req.force {
        let clash = std::iter::once(req.output.clone())
            .chain(plan.iter().map(|(_, n)| dir.join(n)))
            .find(|p| p.exists());
        if let Some(p) = clash {
            return Err(Error::input(
                format!("{} already exists", p.display()),
                "choose another file name or folder, or pass --force to overwrite",
            )
            .into());
        }
    }
    fsutil::create_missing(&dir)?;
    let target = std::fs::canonicalize(&dir)
        .unwrap_or_else(|_| dir.clone())
        .join(req.output.file_name().unwrap_or_default());
    let mut op = Op::new(Action::Export)
        .documents(plan.iter().map(|(d, _)| d.id.to_string()).collect())
        .detail("format", "fhir-ips")
        .detail("target", target.display().to_string());
    if let Some(v) = &version {
        op = op.detail("profile_version", v.version);
    }
    let done = vault.begin(snap.keys, now)?.commit(op)?;
    let snap = done.snap;

    let mut refs = Vec::new();
    let mut written = Vec::new();
    for (d, name) in &plan {
        let dest = dir.join(name);
        let sha1 = export_one(vault, &snap.keys, d, &dest, req.force)?;
        let (class_code, class_label) = crate::ips::class_of(&d.category);
        refs.push(crate::ips::DocRef {
            title: d.title.clone(),
            class_code,
            class_label,
            date: d.date,
            added_at: d.added_at,
            media_type: d.media_type.clone(),
            size: d.size,
            sha1_base64: base64::engine::general_purpose::STANDARD.encode(sha1),
            file_name: name.clone(),
        });
        written.push(Written {
            id: d.id.to_string(),
            title: d.title.clone(),
            path: dest,
            size: d.size,
        });
    }
    let bundle = crate::ips::bundle(&crate::ips::Input {
        patient: &snap.root.patient,
        profile: &profile,
        documents: &refs,
        now,
    });
    let resources = bundle["entry"].as_array().map_or(0, Vec::len);
    let text = zeroize::Zeroizing::new(
        serde_json::to_vec_pretty(&bundle).context("cannot encode the FHIR Bundle")?,
    );
    let tmp = fsutil::private_tempfile(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut w = std::io::BufWriter::new(tmp);
    w.write_all(&text)
        .and_then(|()| w.write_all(b"\n"))
        .with_context(|| format!("cannot write {}", req.output.display()))?;
    let tmp = w.into_inner().map_err(|e| e.into_error())?;
    fsutil::persist(tmp, &req.output, req.force)?;
    Ok(Report {
        output: req.output.clone(),
        profile_version: version.map(|v| v.version),
        resources,
        documents: written,
        hidden_left_out: hidden,
        notices: done.notices,
    })
}

/// A writer that SHA-1s what passes through (FHIR's `Attachment.hash` is SHA-1).
struct Sha1Writer<W> {
    inner: W,
    hash: sha1::Sha1,
}

impl<W: Write> Write for Sha1Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts one document beside its destination, checks its SHA-256, renames it into place;
/// returns its SHA-1.
fn export_one(
    vault: &Vault,
    keys: &crate::keys::Unlocked,
    d: &Document,
    dest: &Path,
    force: bool,
) -> anyhow::Result<[u8; 20]> {
    let dir = fsutil::parent_dir(dest);
    let reader = vault.open_object(d, keys)?;
    let tmp = fsutil::private_tempfile(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut sink = crypto::HashingWriter::new(Sha1Writer {
        inner: std::io::BufWriter::with_capacity(256 * 1024, tmp),
        hash: sha1::Sha1::new(),
    });
    crypto::copy_plain(reader, &mut sink, &|_| {}).map_err(|e| match e {
        OpenError::Io(e) => {
            anyhow::Error::from(e).context(format!("cannot write {}", dest.display()))
        }
        e => Error::Integrity(format!("{}: {e}", vault.object_path(&d.object).display())).into(),
    })?;
    let (out, sha) = sink.finish();
    if sha != d.sha256 {
        return Err(
            Error::Integrity(format!("{} does not match its recorded SHA-256", d.title)).into(),
        );
    }
    let sha1: [u8; 20] = out.hash.finalize().into();
    let tmp = out
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the exported file")?;
    fsutil::persist(tmp, dest, force)?;
    Ok(sha1)
}

fn unique_name(name: &str, taken: &mut HashSet<String>) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let mut candidate = name.to_string();
    let mut n = 2;
    while !taken.insert(candidate.to_lowercase()) {
        candidate = format!("{stem} ({n}){ext}");
        n += 1;
    }
    candidate
}
