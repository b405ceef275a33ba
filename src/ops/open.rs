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

/// Patients already seen (trust on first use), by vault: two patients with the same name are two
/// patients, and a bundle claiming a known vault with another key is refused.
#[derive(Default, Serialize, Deserialize)]
struct KnownPatients {
    /// carnet 0.1 remembered name → fingerprint; still read, replaced entry by entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    patients: BTreeMap<String, String>,
    #[serde(default, rename = "patient", skip_serializing_if = "Vec::is_empty")]
    entries: Vec<KnownPatient>,
}

/// One patient's vault as a professional remembers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KnownPatient {
    /// The vault the bundles came from (absent for bundles made before carnet named it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<jiff::Timestamp>,
}

/// What the professional's memory says of a bundle's patient key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The bundle names neither a vault nor a patient: nothing to remember it by.
    Unnamed,
    /// The key remembered for this vault (or, for older bundles, this patient).
    Known,
    /// A patient seen for the first time: the key is remembered once the bundle passes.
    First,
    /// A first bundle from a vault whose patient has the name of another known patient: a
    /// homonym, remembered as a new patient.
    Homonym { other: String },
    /// Another key than the one remembered, accepted because `--from` named it.
    Changed { from: String },
}

impl Trust {
    /// Does opening the bundle change the memory?
    pub fn remembers(&self) -> bool {
        !matches!(self, Trust::Unnamed | Trust::Known)
    }
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
        let patients = match crate::fsutil::read_limited(&path, 16 << 20) {
            Ok(b) => std::str::from_utf8(&b)
                .map_err(|_| "not UTF-8 text".to_string())
                .and_then(|s| toml::from_str(s).map_err(|e| e.message().to_string()))
                .map_err(|why| {
                    Error::input(
                        format!("{} is not readable: {why}", path.display()),
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

    /// Every patient remembered, those of the old name-only memory included (no vault id).
    pub fn list(&self) -> Vec<KnownPatient> {
        let mut out = self.patients.entries.clone();
        for (name, fp) in &self.patients.patients {
            out.push(KnownPatient {
                vault_id: None,
                name: Some(name.clone()),
                fingerprint: fp.clone(),
                first_seen: None,
                last_seen: None,
            });
        }
        out
    }

    /// Trust on first use. A known vault with another key, or (for bundles that name no vault)
    /// a known name with another key, is refused (exit 3) unless `from_checked` (`--from`
    /// named the new key, checked with the patient).
    pub fn trust(&self, t: &Terms, from_checked: bool) -> Result<Trust, Error> {
        let p = &t.patient;
        let changed = |fp: &str| -> Result<Trust, Error> {
            if from_checked {
                return Ok(Trust::Changed {
                    from: fp.to_string(),
                });
            }
            Err(Error::BadBundle(format!(
                "bundles from {} were signed by {}, this one by {}: refused",
                crate::text::clean(p.name.as_deref().unwrap_or("this patient's vault")),
                crate::text::clean(fp),
                p.fingerprint
            )))
        };
        let same_name = |e: &KnownPatient| e.name.is_some() && e.name == p.name;
        if let Some(v) = &p.vault_id {
            if let Some(e) = self
                .patients
                .entries
                .iter()
                .find(|e| e.vault_id.as_ref() == Some(v))
            {
                return if e.fingerprint == p.fingerprint {
                    Ok(Trust::Known)
                } else {
                    changed(&e.fingerprint)
                };
            }
            // A vault seen before carnet named vaults: its key, remembered by name.
            let legacy = p.name.as_ref().and_then(|n| self.patients.patients.get(n));
            if legacy == Some(&p.fingerprint) {
                return Ok(Trust::First);
            }
            let other = self
                .patients
                .entries
                .iter()
                .find(|e| same_name(e))
                .map(|e| e.fingerprint.clone())
                .or_else(|| legacy.cloned());
            return Ok(match other {
                Some(other) => Trust::Homonym { other },
                None => Trust::First,
            });
        }
        // An older bundle: it names no vault, only the patient.
        if self.list().iter().any(|e| e.fingerprint == p.fingerprint) {
            return Ok(Trust::Known);
        }
        let Some(name) = &p.name else {
            return Ok(Trust::Unnamed);
        };
        match self.list().iter().find(|e| e.name.as_ref() == Some(name)) {
            Some(e) => changed(&e.fingerprint),
            None => Ok(Trust::First),
        }
    }

    /// Records the bundle's key for its vault (call only once the bundle passed every check:
    /// a refused bundle pins nothing).
    pub fn remember(mut self, t: &Terms, now: jiff::Timestamp) -> anyhow::Result<()> {
        let p = &t.patient;
        if p.vault_id.is_none() && p.name.is_none() {
            return Ok(());
        }
        // The name-only entry this bundle supersedes (same patient, same key or a key change
        // the professional checked).
        if let Some(n) = &p.name
            && p.vault_id.is_some()
        {
            self.patients.patients.remove(n);
        }
        let slot = self
            .patients
            .entries
            .iter_mut()
            .find(|e| match &p.vault_id {
                Some(v) => e.vault_id.as_ref() == Some(v),
                None => e.vault_id.is_none() && e.name == p.name,
            });
        match slot {
            Some(e) => {
                e.fingerprint = p.fingerprint.clone();
                e.name = p.name.clone();
                e.last_seen = Some(now);
            }
            None => self.patients.entries.push(KnownPatient {
                vault_id: p.vault_id.clone(),
                name: p.name.clone(),
                fingerprint: p.fingerprint.clone(),
                first_seen: Some(now),
                last_seen: Some(now),
            }),
        }
        self.save()
    }

    /// Forgets every patient remembered with this key fingerprint; returns them.
    pub fn forget(mut self, fingerprint: &str) -> anyhow::Result<Vec<KnownPatient>> {
        let gone: Vec<KnownPatient> = self
            .list()
            .into_iter()
            .filter(|e| e.fingerprint == fingerprint)
            .collect();
        self.patients
            .entries
            .retain(|e| e.fingerprint != fingerprint);
        self.patients.patients.retain(|_, fp| fp != fingerprint);
        if !gone.is_empty() {
            self.save()?;
        }
        Ok(gone)
    }

    fn save(&self) -> anyhow::Result<()> {
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
        BundleError::Plugin(_) => Error::input(
            e.to_string(),
            "check that the key's device is plugged in and its plugin (age-plugin-…) works, then try again",
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
    let staging = crate::fsutil::private_tempdir(dir, ".carnet-open-")
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
