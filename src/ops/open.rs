//! Opening a bundle (`carnet open`), the professional's side: the patient's key remembered on
//! first use and checked afterwards, and the documents extracted safely (into a staging folder
//! inside the target, never through a link, nothing left behind when refused). Decryption,
//! signature and entry checks are `grant`'s; this module decides trust and writes files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::grant::{self, BundleError, Terms};

/// Patients already seen, by name → key fingerprint (trust on first use).
#[derive(Default, Serialize, Deserialize)]
struct KnownPatients {
    #[serde(default)]
    patients: BTreeMap<String, String>,
}

/// What the professional's memory says of a bundle's patient key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The bundle names no patient: nothing to remember it by.
    Unnamed,
    /// The key remembered for this patient.
    Known,
    /// A patient seen for the first time: the key is remembered once the bundle passes.
    First,
    /// Another key than the one remembered, accepted because `--from` named it.
    Changed { from: String },
}

/// The professional's memory of patients' keys (`known-patients.toml`).
pub struct Known {
    path: PathBuf,
    patients: KnownPatients,
}

impl Known {
    /// Reads the memory at `path` (missing: empty). A file that cannot be parsed is an error:
    /// carnet will not silently forget the keys it remembers.
    pub fn load(path: PathBuf) -> anyhow::Result<Known> {
        let patients = match fs::read_to_string(&path) {
            Ok(s) => toml::from_str(&s).map_err(|e| {
                Error::input(
                    format!("{} is not readable: {}", path.display(), e.message()),
                    "fix or move the file: carnet will not forget the keys it remembers",
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KnownPatients::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Known { path, patients })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Trust on first use. A patient's name seen before with another key is refused (exit 3)
    /// unless `from_checked` (`--from` named the new key, checked with the patient).
    pub fn trust(&self, t: &Terms, from_checked: bool) -> Result<Trust, Error> {
        let Some(name) = &t.patient.name else {
            return Ok(Trust::Unnamed);
        };
        match self.patients.patients.get(name) {
            Some(fp) if *fp == t.patient.fingerprint => Ok(Trust::Known),
            Some(fp) if !from_checked => Err(Error::BadBundle(format!(
                "bundles from {} were signed by {}, this one by {}: refused",
                crate::text::clean(name),
                crate::text::clean(fp),
                t.patient.fingerprint
            ))),
            Some(fp) => Ok(Trust::Changed { from: fp.clone() }),
            None => Ok(Trust::First),
        }
    }

    /// Records the bundle's key for its patient (call only once the bundle passed every check:
    /// a refused bundle pins nothing).
    pub fn remember(mut self, t: &Terms) -> anyhow::Result<()> {
        let Some(name) = t.patient.name.clone() else {
            return Ok(());
        };
        self.patients
            .patients
            .insert(name, t.patient.fingerprint.clone());
        if let Some(p) = self.path.parent() {
            crate::fsutil::create_private_dir(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
        }
        let text = toml::to_string(&self.patients).context("cannot encode the known patients")?;
        crate::fsutil::write_atomic(&self.path, text.as_bytes())
    }
}

/// The error a user reads for each way a bundle is refused (exit codes: 1 not for you, 3
/// damaged, 4 expired or not yet valid).
pub fn to_error(e: BundleError) -> anyhow::Error {
    match e {
        BundleError::NotForYou => Error::input(
            "this bundle is not addressed to your key",
            "open it with the key whose card you gave the patient (-i KEYFILE); if that is the key, the bundle was damaged on the way: ask for it again",
        )
        .into(),
        BundleError::NeedsPasscode => Error::input(
            e.to_string(),
            "open it with `carnet open FILE --passcode` and the words the patient gave you (on their card, or separately)",
        )
        .into(),
        BundleError::NeedsKey => Error::input(
            e.to_string(),
            "open it with the key whose card you gave the patient: carnet open FILE -i KEYFILE",
        )
        .into(),
        BundleError::WrongPasscode => Error::input(
            "wrong passcode: the bundle does not open with it",
            "type the 8 words again as the patient gave them (case, accents, spaces and dashes do not matter)",
        )
        .into(),
        BundleError::NotAge(m) => Error::input(
            format!("this is not a carnet bundle (not an age file: {m})"),
            "check the file",
        )
        .into(),
        BundleError::Expired(_) => Error::GrantValidity(e.to_string()).into(),
        BundleError::NotYetValid(_) => Error::GrantNotYetValid(e.to_string()).into(),
        BundleError::Io(e) => anyhow::Error::from(e),
        e => Error::BadBundle(e.to_string()).into(),
    }
}

/// A staging folder left in `dir` by an interrupted open holds plaintext nobody asked to keep.
pub fn remove_stale_staging(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".carnet-open-")
                && e.file_type().is_ok_and(|t| t.is_dir())
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Extracts the bundle into `dir`: a refused bundle leaves nothing behind (not even the
/// folders created for it), and nothing is ever written outside `dir`.
pub fn extract<R: std::io::Read + std::io::Seek>(
    opened: &mut grant::Opened<R>,
    dir: &Path,
    force: bool,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<()> {
    let created = crate::fsutil::create_missing(dir)?;
    let result = extract_staged(opened, dir, force, progress);
    if result.is_err() {
        crate::fsutil::remove_created(&created);
    }
    result
}

/// Extracts into a hidden staging folder inside `dir` (so no plaintext ever lands outside the
/// folder the professional chose, even after a crash), then moves each file into place.
fn extract_staged<R: std::io::Read + std::io::Seek>(
    opened: &mut grant::Opened<R>,
    dir: &Path,
    force: bool,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<()> {
    if !force && !crate::fsutil::is_empty_dir(dir)? {
        return Err(Error::input(
            format!("{} is not empty", dir.display()),
            "pass --force to write into it",
        )
        .into());
    }
    let staging = tempfile::Builder::new()
        .prefix(".carnet-open-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let total: u64 = opened
        .terms
        .documents
        .iter()
        .fold(0u64, |t, d| t.saturating_add(d.size));
    let files = opened
        .extract_to(staging.path(), &|n| progress(n, total))
        .map_err(to_error)?;
    for rel in files {
        // With --force the target may hold links: never write through one.
        let mut at = dir.to_path_buf();
        for comp in rel.components() {
            at.push(comp);
            if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::input(
                    format!(
                        "{} is a symbolic link: refusing to write through it",
                        at.display()
                    ),
                    "extract into a new folder",
                )
                .into());
            }
        }
        let dest = dir.join(&rel);
        if let Some(p) = dest.parent() {
            // Folder names are document titles: private, like the files.
            crate::fsutil::create_private_dir(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
        }
        fs::rename(staging.path().join(&rel), &dest)
            .with_context(|| format!("cannot write {}", dest.display()))?;
    }
    crate::fsutil::sync_dir(dir)?;
    Ok(())
}
