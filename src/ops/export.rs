//! Exporting (`carnet export`): documents decrypted into a folder under readable, safe file
//! names. The export is logged before any document is written; each file is decrypted to a temp
//! file inside the target folder, checked against its recorded SHA-256, and only then renamed
//! into place: a damaged object never leaves a half-written file behind.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::Progress;
use crate::crypto::{self, OpenError};
use crate::domain::Action;
use crate::error::Error;
use crate::fsutil;
use crate::manifest::Document;
use crate::naming::file_name;
use crate::txn::{Notice, Op};
use crate::vault::{KeyOpts, Vault};

/// Which documents to export.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Category(&'static str),
    /// Id prefixes, as typed.
    Ids(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub selection: Selection,
    pub output: PathBuf,
    /// Overwrite files already in the folder.
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub id: String,
    pub title: String,
    pub path: PathBuf,
    pub size: u64,
}

pub struct Report {
    pub written: Vec<Written>,
    pub notices: Vec<Notice>,
}

pub fn export(
    vault: &Vault,
    keys: &KeyOpts,
    req: &Request,
    now: jiff::Timestamp,
    progress: &dyn Progress,
) -> anyhow::Result<Report> {
    // The selection is read under the shared lock (a commit removes the shards it replaces),
    // released before the export's own commit takes the lock for writing.
    let shared = fsutil::Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(keys)?;
    let docs: Vec<Document> = match &req.selection {
        Selection::All => snap.sorted_documents(vault)?,
        Selection::Category(c) => snap
            .sorted_documents(vault)?
            .into_iter()
            .filter(|d| d.category == *c)
            .collect(),
        Selection::Ids(ids) => {
            let mut seen = HashSet::new();
            let mut v = Vec::new();
            for p in ids {
                let d = snap.resolve(vault, p)?;
                if seen.insert(d.id.clone()) {
                    v.push(d);
                }
            }
            v
        }
    };
    drop(shared);
    if docs.is_empty() {
        return Err(Error::input(
            "nothing to export: no document matches",
            "list the documents with `carnet ls`",
        )
        .into());
    }

    // Name every file first, so a clash with an existing file stops the export before any write.
    let mut taken = HashSet::new();
    let plan: Vec<(Document, PathBuf)> = docs
        .into_iter()
        .map(|d| {
            let name = unique_name(&file_name(&d), &mut taken);
            let dest = req.output.join(name);
            (d, dest)
        })
        .collect();
    if !req.force
        && let Some((_, p)) = plan.iter().find(|(_, p)| p.exists())
    {
        return Err(Error::input(
            format!("{} already exists", p.display()),
            "choose another folder, or pass --force to overwrite",
        )
        .into());
    }
    // File names are titles: the folders carnet makes for them are private, like the files.
    fsutil::create_missing(&req.output)?;
    let ids: Vec<String> = plan.iter().map(|(d, _)| d.id.to_string()).collect();
    let target = fs::canonicalize(&req.output).unwrap_or_else(|_| req.output.clone());
    let done = vault.begin(snap.keys, now)?.commit(
        Op::new(Action::Export)
            .documents(ids)
            .detail("target", target.display().to_string()),
    )?;
    let snap = done.snap;

    let mut written = Vec::new();
    progress.start(plan.len() as u64);
    for (d, dest) in plan {
        export_one(vault, &snap.keys, &d, &dest, req.force, progress)?;
        written.push(Written {
            id: d.id.to_string(),
            title: d.title.clone(),
            path: dest,
            size: d.size,
        });
        progress.file_done();
    }
    Ok(Report {
        written,
        notices: done.notices,
    })
}

fn export_one(
    vault: &crate::vault::Vault,
    keys: &crate::keys::Unlocked,
    d: &Document,
    dest: &Path,
    force: bool,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let reader = vault.open_object(d, keys)?;
    let tmp = fsutil::private_tempfile(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut sink = crypto::HashingWriter::new(std::io::BufWriter::with_capacity(256 * 1024, tmp));
    let bytes = progress.file(dest, d.size);
    crypto::copy_plain(reader, &mut sink, &|n| bytes(n)).map_err(|e| match e {
        OpenError::Io(e) => {
            anyhow::Error::from(e).context(format!("cannot write {}", dest.display()))
        }
        e => Error::Integrity(format!("{}: {e}", vault.object_path(&d.object).display())).into(),
    })?;
    drop(bytes);
    let (out, sha) = sink.finish();
    if sha != d.sha256 {
        return Err(
            Error::Integrity(format!("{} does not match its recorded SHA-256", d.title)).into(),
        );
    }
    let tmp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the exported file")?;
    fsutil::persist(tmp, dest, force)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashing_names_are_numbered() {
        let mut t = HashSet::new();
        assert_eq!(unique_name("a.pdf", &mut t), "a.pdf");
        assert_eq!(unique_name("a.pdf", &mut t), "a (2).pdf");
        assert_eq!(unique_name("A.pdf", &mut t), "A (3).pdf");
    }
}
