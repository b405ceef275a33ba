//! Adding documents (`carnet add`): files or folder trees encrypted into the vault, content
//! already there skipped.
//!
//! Each file is encrypted into `tmp/` without holding the lock, so a long import never blocks
//! other commands; then, under the lock, the metadata is re-read, duplicates are dropped, the
//! new objects are renamed into place and the metadata replaced, as one logged commit. Nothing
//! is reported as added before that last step is durable. Small files are sealed inline on two
//! workers; large ones stream through `crypto::seal`'s pipeline, memory bounded.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use walkdir::WalkDir;

use crate::category;
use crate::crypto::{self, Sealed};
use crate::dates;
use crate::domain::Action;
use crate::error::Error;
use crate::fsutil;
use crate::ids;
use crate::keys::Unlocked;
use crate::manifest::Document;
use crate::media;
use crate::txn::{Notice, Op};
use crate::vault::Vault;

pub use super::Progress;

/// What the user asked to add, resolved (category parsed, date parsed, tags cleaned).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub category: Option<&'static str>,
    pub date: Option<jiff::civil::Date>,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub title: Option<String>,
    /// A patient's note (`carnet note`): logged as `note`, stored as Markdown.
    pub note: bool,
}

/// One file to add, with the category its folder gave it.
pub struct Input {
    /// The file, or `-` for a stream.
    pub path: PathBuf,
    folder_category: Option<&'static str>,
    /// Found in a subfolder of an imported folder (whose name may have been meant as a category).
    in_subfolder: bool,
    /// The content, when it does not come from `path` (standard input, a note's text): read
    /// once, streamed, never written anywhere in clear.
    reader: Option<Box<dyn Read + Send>>,
}

impl Input {
    /// A document read from a stream (`add -`, `note`); `--title` is then required.
    pub fn stream(reader: Box<dyn Read + Send>) -> Input {
        Input {
            path: PathBuf::from("-"),
            folder_category: None,
            in_subfolder: false,
            reader: Some(reader),
        }
    }
}

/// The files an import will take, and those it leaves out (with why).
pub struct Collected {
    pub inputs: Vec<Input>,
    pub skipped: Vec<Skipped>,
}

struct Encrypted {
    input: Input,
    sealed: Sealed,
    /// Closed (a path, not an open file): a folder of thousands of files must not exhaust the
    /// open-file limit while it waits for the commit.
    tmp: tempfile::TempPath,
    mtime_date: Option<jiff::civil::Date>,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    /// Its content is already in the vault (or earlier in this import): stored once.
    Duplicate,
}

/// Where a new document's date came from, when `--date` was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateSource {
    /// `--date`.
    Given,
    /// A date written in the file name (`2025-03-14 compte rendu.pdf`, `20250314_scan.pdf`).
    FileName,
    /// The file's modification time: often the day it was copied or downloaded, not the
    /// document's date, hence counted in the report.
    Mtime,
    /// No date anywhere (no readable modification time): the day of the import.
    Today,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub path: PathBuf,
    pub status: Status,
    pub id: String,
    pub title: String,
    /// A duplicate whose existing document has other metadata than this command asked for
    /// (the fix is `carnet edit`, not adding it again).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub differs: bool,
    /// The date given to a document added, and where it came from (absent for duplicates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<jiff::civil::Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_source: Option<DateSource>,
}

pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// Files in subfolders not named after a category, filed under the default category.
    pub uncategorised: usize,
    pub notices: Vec<Notice>,
}

impl Report {
    /// How many documents added took their date from `source`.
    pub fn dated_by(&self, source: DateSource) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.date_source == Some(source))
            .count()
    }
}

/// Adds `collected.inputs` to the vault, opened by `keys` (already authenticated: a recipient
/// slipped into the config must be refused before anything is encrypted to it).
pub fn import(
    vault: &Vault,
    keys: Unlocked,
    collected: Collected,
    req: &Request,
    now: jiff::Timestamp,
    progress: &dyn Progress,
) -> anyhow::Result<Report> {
    let inputs = collected.inputs;
    if inputs.is_empty() {
        return Err(Error::input(
            "no files to add",
            "give files, or folders that contain files",
        )
        .into());
    }
    if req.title.is_some() && inputs.len() > 1 {
        return Err(Error::input(
            format!(
                "--title names one document, and {} files were given",
                inputs.len()
            ),
            "add the files one at a time, or leave --title out",
        )
        .into());
    }
    if inputs.iter().any(|i| i.reader.is_some()) && req.title.is_none() {
        return Err(Error::input(
            "a document read from standard input needs a title",
            "pass --title \"...\"",
        )
        .into());
    }
    let explicit_category = req.category;
    let (date, author, tags, title) = (req.date, &req.author, &req.tags, &req.title);
    let uncategorised = inputs
        .iter()
        .filter(|i| explicit_category.is_none() && i.in_subfolder && i.folder_category.is_none())
        .count();
    // Read once before encrypting: a file going to a category hidden from guardians is
    // encrypted for the sealed key from the start (`Txn` checks again under the lock).
    let pre = vault.snapshot(crate::ops::mirror::dup(&keys))?;
    let recipients: Vec<Vec<age::x25519::Recipient>> = inputs
        .iter()
        .map(|i| {
            let category = explicit_category
                .or(i.folder_category)
                .unwrap_or(category::DEFAULT);
            crate::ops::seal::recipients_for(vault, &pre, category)
        })
        .collect::<anyhow::Result<_>>()?;
    drop(pre);
    // One staging folder per import (see `Vault::sweep_tmp`): removed on any error, and if the
    // process is killed, swept once it has sat untouched for an hour.
    let staging = crate::fsutil::private_tempdir(&vault.tmp_dir(), ".add-")
        .with_context(|| format!("cannot write in {}", vault.tmp_dir().display()))?;
    progress.start(inputs.len() as u64);
    let done = encrypt_all(staging.path(), inputs, &recipients, progress)?;

    let txn = vault.begin(keys, now)?;
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::system()).date();
    let mut outcomes = Vec::new();
    let mut op = Op::new(if req.note { Action::Note } else { Action::Add });
    let mut duplicates = 0u64;
    // Checked against the vault as re-read under the lock, and against this batch. A large
    // import reads every digest once; a few files look up their own digest shard.
    let known = if done.len() > 64 {
        Some(txn.snap.digests(vault)?)
    } else {
        None
    };
    let mut batch: HashMap<String, usize> = HashMap::new();
    let mut existing_ids = Vec::new();
    for e in done {
        let sha = hex::encode(e.sealed.sha256);
        let existing = match &known {
            Some(k) => k.get(&sha).cloned(),
            None => txn.snap.find_by_sha256(vault, &sha)?.map(|d| d.id.into()),
        };
        if let Some(i) = batch.get(&sha) {
            duplicates += 1;
            let (id, title) = (op.put[*i].id.clone(), op.put[*i].title.clone());
            outcomes.push(Outcome {
                path: e.input.path,
                status: Status::Duplicate,
                id: id.to_string(),
                title,
                differs: false,
                date: None,
                date_source: None,
            });
            continue;
        }
        if let Some(id) = existing {
            duplicates += 1;
            existing_ids.push(id.clone());
            outcomes.push(Outcome {
                path: e.input.path,
                status: Status::Duplicate,
                id: id.to_string(),
                title: String::new(),
                differs: false,
                date: None,
                date_source: None,
            });
            continue;
        }
        let object = ids::random_id();
        let (doc_date, date_source) = document_date(date, &e.input.path, e.mtime_date, today);
        let doc = Document {
            id: ids::DocId::random(),
            title: title
                .clone()
                .unwrap_or_else(|| default_title(&e.input.path)),
            category: explicit_category
                .or(e.input.folder_category)
                .unwrap_or(category::DEFAULT)
                .to_string(),
            date: doc_date,
            author: author.clone(),
            tags: tags.clone(),
            media_type: if req.note {
                "text/markdown".to_string()
            } else {
                media::detect(&e.sealed.head, &e.input.path)
            },
            size: e.sealed.size,
            sha256: sha.clone(),
            crc32: Some(e.sealed.crc32),
            added_at: now,
            original_name: match e.input.reader {
                Some(_) => None,
                None => e
                    .input
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned()),
            },
            object: object.clone(),
            object_size: e.sealed.cipher_size,
            object_blake3: hex::encode(e.sealed.cipher_blake3),
            version: 1,
            revision: None,
            history: Vec::new(),
            visibility: Vec::new(),
            source: None,
        };
        outcomes.push(Outcome {
            path: e.input.path,
            status: Status::Added,
            id: doc.id.to_string(),
            title: doc.title.clone(),
            differs: false,
            date: Some(doc_date),
            date_source: Some(date_source),
        });
        op.documents.push(doc.id.to_string());
        op.add.push((e.tmp, object));
        batch.insert(sha, op.put.len());
        op.put.push(doc);
    }
    // Titles of the documents already there, reading each shard once.
    let titles = txn.snap.documents_by_id(vault, &existing_ids)?;
    for o in outcomes.iter_mut().filter(|o| o.title.is_empty()) {
        if let Some(d) = titles.get(&o.id) {
            o.title = d.title.clone();
            o.differs = req.title.as_ref().is_some_and(|t| *t != d.title)
                || req.category.is_some_and(|c| c != d.category)
                || req.date.is_some_and(|x| x != d.date)
                || req
                    .author
                    .as_ref()
                    .is_some_and(|a| Some(a) != d.author.as_ref());
        }
    }
    let mut notices = Vec::new();
    if !op.add.is_empty() {
        let count = op.add.len();
        op = op.detail("count", count).detail("duplicates", duplicates);
        crate::ops::seal::settle(vault, &txn.snap, &mut op)?;
        notices = txn.commit(op)?.notices;
    }
    Ok(Report {
        outcomes,
        uncategorised,
        notices,
    })
}

/// One file or stream encrypted into the vault's `tmp/`, ready to become a new version's object.
pub struct Staged {
    pub tmp: tempfile::TempPath,
    pub object: String,
    pub size: u64,
    pub sha256: String,
    pub crc32: u32,
    pub media_type: String,
    pub original_name: Option<String>,
    pub object_size: u64,
    pub object_blake3: String,
}

/// Encrypts one input (`carnet replace`), without the lock.
pub fn stage_one(
    vault: &Vault,
    input: Input,
    recipients: &[age::x25519::Recipient],
    progress: &dyn Progress,
) -> anyhow::Result<Staged> {
    if input.reader.is_none() {
        match fs::metadata(&input.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::input(
                    format!("{} does not exist", input.path.display()),
                    "check the path; nothing was changed",
                )
                .into());
            }
            Ok(meta) if !meta.is_file() => {
                return Err(Error::input(
                    format!("{} is not a regular file", input.path.display()),
                    "give one file (or `-` for standard input)",
                )
                .into());
            }
            _ => {}
        }
    }
    progress.start(1);
    let e = encrypt_one(&vault.tmp_dir(), input, recipients, progress)?;
    progress.file_done();
    Ok(Staged {
        object: ids::random_id(),
        size: e.sealed.size,
        sha256: hex::encode(e.sealed.sha256),
        crc32: e.sealed.crc32,
        media_type: media::detect(&e.sealed.head, &e.input.path),
        original_name: match e.input.reader {
            Some(_) => None,
            None => e
                .input
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
        },
        object_size: e.sealed.cipher_size,
        object_blake3: hex::encode(e.sealed.cipher_blake3),
        tmp: e.tmp,
    })
}

impl Input {
    /// A file named on the command line.
    pub fn file(path: PathBuf) -> Input {
        Input {
            path,
            folder_category: None,
            in_subfolder: false,
            reader: None,
        }
    }
}

/// A new document's date: `--date`, else a date in the file name, else the file's
/// modification date, else today. A year up to next year is taken from a name (a document
/// dated ahead, a new-year scan); beyond that the digits are not a date.
pub(crate) fn document_date(
    given: Option<jiff::civil::Date>,
    path: &Path,
    mtime: Option<jiff::civil::Date>,
    today: jiff::civil::Date,
) -> (jiff::civil::Date, DateSource) {
    if let Some(d) = given {
        return (d, DateSource::Given);
    }
    let max_year = today.year().saturating_add(1);
    let named = path
        .file_name()
        .and_then(|n| dates::from_file_name(&n.to_string_lossy(), max_year));
    match (named, mtime) {
        (Some(d), _) => (d, DateSource::FileName),
        (None, Some(d)) => (d, DateSource::Mtime),
        (None, None) => (today, DateSource::Today),
    }
}

fn default_title(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sans titre".to_string())
}

/// A file or folder left out of a folder import, and why.
pub type Skipped = (PathBuf, &'static str);

/// Expands folders; checks every path exists before any work starts. The vault's own folder is
/// never imported into itself.
pub fn collect(paths: &[PathBuf], vault_dir: &Path) -> anyhow::Result<Collected> {
    let vault_canon = fs::canonicalize(vault_dir).ok();
    let mut inputs = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    for p in paths {
        let meta = fs::symlink_metadata(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::Error::from(Error::input(
                format!("{} does not exist", p.display()),
                "check the path; nothing was added",
            )),
            _ => anyhow::Error::from(e).context(format!("cannot read {}", p.display())),
        })?;
        if meta.is_dir() {
            let mut walk = WalkDir::new(p)
                .follow_links(false)
                .sort_by_file_name()
                .into_iter();
            while let Some(entry) = walk.next() {
                let entry =
                    entry.with_context(|| format!("cannot read the folder {}", p.display()))?;
                let ft = entry.file_type();
                let hidden =
                    entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.');
                if hidden {
                    // .DS_Store, .git, editor swap files: not documents.
                    skipped.push((entry.path().to_path_buf(), "hidden"));
                    if ft.is_dir() {
                        walk.skip_current_dir();
                    }
                    continue;
                }
                if ft.is_dir() {
                    if vault_canon.is_some() && fs::canonicalize(entry.path()).ok() == vault_canon {
                        skipped.push((entry.path().to_path_buf(), "it is the vault itself"));
                        walk.skip_current_dir();
                    }
                } else if ft.is_symlink() {
                    skipped.push((
                        entry.path().to_path_buf(),
                        "symbolic links are not followed",
                    ));
                } else if !ft.is_file() {
                    skipped.push((entry.path().to_path_buf(), "not a regular file"));
                } else {
                    let folder_category = category_from_folders(p, entry.path());
                    inputs.push(Input {
                        path: entry.path().to_path_buf(),
                        folder_category,
                        in_subfolder: entry.depth() >= 2,
                        reader: None,
                    });
                }
            }
        } else if meta.file_type().is_symlink() {
            // A link named on the command line is the user's explicit choice: follow it.
            let target = fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
            if !target.is_file() {
                return Err(Error::input(
                    format!("{} is not a regular file", p.display()),
                    "give files or folders",
                )
                .into());
            }
            inputs.push(Input {
                path: p.clone(),
                folder_category: None,
                in_subfolder: false,
                reader: None,
            });
        } else if meta.is_file() {
            inputs.push(Input {
                path: p.clone(),
                folder_category: None,
                in_subfolder: false,
                reader: None,
            });
        } else {
            return Err(Error::input(
                format!("{} is not a regular file", p.display()),
                "give files or folders",
            )
            .into());
        }
    }
    Ok(Collected { inputs, skipped })
}

/// The innermost folder between `root` and `file` named after a category slug.
fn category_from_folders(root: &Path, file: &Path) -> Option<&'static str> {
    let rel = file.strip_prefix(root).ok()?;
    let mut found = root
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(category::lookup_folder);
    let parent = rel.parent()?;
    for comp in parent.components() {
        if let Some(c) = comp.as_os_str().to_str().and_then(category::lookup_folder) {
            found = Some(c);
        }
    }
    found.map(|c| c.slug)
}

/// Encrypts every input on two workers (this machine's cores are few; a big file's own
/// pipeline uses more threads), keeping the inputs' order. Stops at the first error.
fn encrypt_all(
    tmp_dir: &Path,
    inputs: Vec<Input>,
    recipients: &[Vec<age::x25519::Recipient>],
    progress: &dyn Progress,
) -> anyhow::Result<Vec<Encrypted>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let n = inputs.len();
    let slots: Vec<Mutex<Option<Input>>> =
        inputs.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let results: Vec<Mutex<Option<anyhow::Result<Encrypted>>>> =
        (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = if n > 1 { 2 } else { 1 };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = slots.get(i) else { break };
                    let Some(input) = slot.lock().ok().and_then(|mut g| g.take()) else {
                        break;
                    };
                    let to = recipients.get(i).map(Vec::as_slice).unwrap_or_default();
                    let r = encrypt_one(tmp_dir, input, to, progress);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut g) = results[i].lock() {
                        *g = Some(r);
                    }
                    progress.file_done();
                }
            });
        }
    });
    let mut out = Vec::with_capacity(n);
    for r in results {
        match r.into_inner().ok().flatten() {
            Some(Ok(e)) => out.push(e),
            Some(Err(e)) => return Err(e),
            // Skipped after another file failed: that error is returned above.
            None => {}
        }
    }
    if failed.load(Ordering::Relaxed) {
        return Err(anyhow::anyhow!("cannot encrypt the files"));
    }
    Ok(out)
}

fn encrypt_one(
    tmp_dir: &Path,
    input: Input,
    recipients: &[age::x25519::Recipient],
    progress: &dyn Progress,
) -> anyhow::Result<Encrypted> {
    let path = &input.path;
    if input.reader.is_some() {
        return encrypt_stream(tmp_dir, input, recipients, progress);
    }
    let file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mtime_date = meta.modified().ok().and_then(dates::local_date);
    let tmp = fsutil::private_tempfile(tmp_dir)
        .with_context(|| format!("cannot write in {}", tmp_dir.display()))?;
    let bytes = progress.file(path, meta.len());
    let out = std::io::BufWriter::with_capacity(256 * 1024, tmp);
    let (sealed, out) = if meta.len() < crypto::SMALL {
        // Read whole (bounded: the file may grow meanwhile), then sealed without threads.
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
        (&file)
            .take(crypto::SMALL)
            .read_to_end(&mut plain)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if plain.len() as u64 >= crypto::SMALL {
            // It grew past the threshold since we looked: stream it after all.
            let mut f = file;
            std::io::Seek::rewind(&mut f)
                .with_context(|| format!("cannot read {}", path.display()))?;
            crypto::seal(f, recipients, out, &|n| bytes(n))
        } else {
            crypto::seal_small(&plain, recipients, out)
        }
    } else {
        crypto::seal(file, recipients, out, &|n| bytes(n))
    }
    .with_context(|| format!("cannot encrypt {}", path.display()))?;
    drop(bytes);
    let tmp = staged(out)?;
    Ok(Encrypted {
        input,
        sealed,
        tmp,
        mtime_date,
    })
}

/// Seals a stream: read whole when small (no threads), else streamed through the pipeline.
fn encrypt_stream(
    tmp_dir: &Path,
    mut input: Input,
    recipients: &[age::x25519::Recipient],
    progress: &dyn Progress,
) -> anyhow::Result<Encrypted> {
    let Some(reader) = input.reader.take() else {
        return Err(anyhow::anyhow!("no stream to read"));
    };
    let tmp = fsutil::private_tempfile(tmp_dir)
        .with_context(|| format!("cannot write in {}", tmp_dir.display()))?;
    let bytes = progress.file(&input.path, 0);
    let out = std::io::BufWriter::with_capacity(256 * 1024, tmp);
    let mut head = zeroize::Zeroizing::new(Vec::new());
    let mut reader = reader;
    (&mut reader)
        .take(crypto::SMALL)
        .read_to_end(&mut head)
        .context("cannot read standard input")?;
    let (sealed, out) = if (head.len() as u64) < crypto::SMALL {
        crypto::seal_small(&head, recipients, out)
    } else {
        // Borrowed, not moved out: the head stays in its zeroized buffer.
        let rest = head.as_slice().chain(reader);
        crypto::seal(rest, recipients, out, &|n| bytes(n))
    }
    .context("cannot encrypt standard input")?;
    drop(bytes);
    let tmp = staged(out)?;
    Ok(Encrypted {
        input,
        sealed,
        tmp,
        mtime_date: None,
    })
}

/// The encrypted file, flushed and closed (a path: see `Encrypted::tmp`).
fn staged(out: std::io::BufWriter<tempfile::NamedTempFile>) -> anyhow::Result<tempfile::TempPath> {
    Ok(out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the encrypted file")?
        .into_temp_path())
}
