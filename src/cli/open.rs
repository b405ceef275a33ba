//! `carnet open`: the professional's side. Decrypt, authenticate, check validity, extract safely.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::args::OpenArgs;
use super::ui;
use crate::dates;
use crate::domain::GrantStatus;
use crate::error::Error;
use crate::grant::{self, BundleError, Terms};
use crate::keys;

/// Patients already seen, by name → key fingerprint (trust on first use).
#[derive(Default, Serialize, Deserialize)]
struct KnownPatients {
    #[serde(default)]
    patients: BTreeMap<String, String>,
}

fn known_patients_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CARNET_KNOWN_PATIENTS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("carnet").join("known-patients.toml"))
}

fn to_error(e: BundleError) -> anyhow::Error {
    match e {
        BundleError::NotForYou => Error::input(
            "this bundle is not addressed to your key",
            "open it with the key whose card you gave the patient (-i KEYFILE); if that is the key, the bundle was damaged on the way: ask for it again",
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

#[derive(Serialize)]
struct OpenReport<'a> {
    grant: &'a str,
    status: GrantStatus,
    patient: Option<&'a str>,
    fingerprint: &'a str,
    purpose: Option<&'a str>,
    issued: String,
    not_before: String,
    expires: String,
    recipients: Vec<&'a str>,
    documents: &'a [grant::TermsDocument],
    extracted_to: Option<String>,
}

pub fn run(ctx: &Ctx, a: OpenArgs) -> anyhow::Result<()> {
    let Some(key_path) = &ctx.keys.identity else {
        return Err(Error::input(
            "no key given",
            "pass your key file with -i KEYFILE (or CARNET_IDENTITY)",
        )
        .into());
    };
    if !a.file.is_file() {
        return Err(Error::input(
            format!("{} is not a file", a.file.display()),
            "give the bundle you received",
        )
        .into());
    }
    if let Some(dir) = &a.output {
        remove_stale_staging(dir);
    }
    if let Some(dir) = &a.output
        && !a.force
        && dir.exists()
        && !crate::fsutil::is_empty_dir(dir)?
    {
        return Err(Error::input(
            format!("{} is not empty", dir.display()),
            "choose a new folder, or pass --force to write into it",
        )
        .into());
    }
    let from = a
        .from
        .as_deref()
        .map(crate::keyring::parse_fingerprint)
        .transpose()?;
    let identities = keys::load_identity_path(key_path, &ctx.keys.passphrase)?;
    let mut opened = grant::open_bundle(&a.file, &identities).map_err(to_error)?;
    let terms = opened.terms.clone();

    if let Some(expected) = &from
        && *expected != terms.patient.fingerprint
    {
        return Err(to_error(BundleError::WrongSigner {
            found: terms.patient.fingerprint.clone(),
            expected: expected.clone(),
        }));
    }
    let remember = check_known_patient(&terms, a.from.is_some())?;

    let status = terms.status(ctx.now);
    opened.check_entries().map_err(to_error)?;
    if !a.json {
        print_terms(&terms, &status);
    }
    let report = |extracted_to: Option<String>| -> anyhow::Result<()> {
        super::print_json(&OpenReport {
            grant: &terms.id,
            status: status.clone(),
            patient: terms.patient.name.as_deref(),
            fingerprint: &terms.patient.fingerprint,
            purpose: terms.purpose.as_deref(),
            issued: terms.issued.to_string(),
            not_before: terms.not_before.to_string(),
            expires: terms.expires.to_string(),
            recipients: terms.recipients.iter().map(|r| r.name.as_str()).collect(),
            documents: &terms.documents,
            extracted_to,
        })
    };
    if a.json && status != GrantStatus::Active {
        // Scripts get the terms (with the status) even when the grant is refused.
        report(None)?;
    }
    match status {
        GrantStatus::Expired => {
            return Err(to_error(BundleError::Expired(dates::show_local(
                terms.expires,
            ))));
        }
        GrantStatus::NotYetValid => {
            return Err(to_error(BundleError::NotYetValid(dates::show_local(
                terms.not_before,
            ))));
        }
        _ => {}
    }

    let mut extracted = None;
    if let Some(dir) = &a.output {
        extract(&mut opened, dir, a.force)?;
        extracted = Some(dir.display().to_string());
        if !a.json {
            eprintln!(
                "Extracted {} document(s) to {}",
                terms.documents.len(),
                dir.display()
            );
        }
    } else if !a.list && !a.json {
        eprintln!("Bundle checked. Extract the documents with -o DIR.");
    }
    if let Some(remember) = remember {
        remember();
    }
    if a.json {
        report(extracted)?;
    }
    Ok(())
}

fn print_terms(t: &Terms, status: &GrantStatus) {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Grant {} from {}",
        crate::ids::short(&t.id),
        t.patient.name.as_deref().unwrap_or("(unnamed patient)")
    );
    let _ = writeln!(
        s,
        "  patient key: {} (signature valid)",
        t.patient.fingerprint
    );
    let _ = writeln!(s, "  purpose:     {}", t.purpose.as_deref().unwrap_or("-"));
    let _ = writeln!(
        s,
        "  valid:       {} → {}  [{status}]",
        dates::show_local(t.not_before),
        dates::show_local(t.expires)
    );
    let to: Vec<String> = t
        .recipients
        .iter()
        .map(|r| match (&r.rpps, &r.adeli) {
            (Some(n), _) => format!("{} (RPPS {n})", r.name),
            (_, Some(n)) => format!("{} (ADELI {n})", r.name),
            _ => r.name.clone(),
        })
        .collect();
    let _ = writeln!(s, "  for:         {}", to.join(", "));
    let _ = writeln!(s, "  documents ({}):", t.documents.len());
    for d in &t.documents {
        let _ = writeln!(
            s,
            "    {}  {:<13} {:>10}  {}",
            d.date,
            d.category,
            ui::human_size(d.size),
            d.title
        );
    }
    // Everything here comes from the bundle: strip terminal control sequences.
    let safe: Vec<String> = s.lines().map(ui::clean).collect();
    println!("{}", safe.join("\n"));
}

/// Trust on first use. A patient's name seen before with another key is refused (exit 3)
/// unless `--from` names the new key, which the professional checked with the patient. Returns
/// a closure that records the key, to be called only once the bundle passed every check (a
/// refused bundle pins nothing).
fn check_known_patient(
    t: &Terms,
    from_checked: bool,
) -> anyhow::Result<Option<impl FnOnce() + use<>>> {
    let Some(name) = t.patient.name.clone() else {
        if !from_checked {
            eprintln!(
                "warning: this bundle names no patient, so its key cannot be remembered; \
                 check its fingerprint {} with the patient, or use --from",
                t.patient.fingerprint
            );
        }
        return Ok(None);
    };
    let Some(path) = known_patients_path() else {
        return Ok(None);
    };
    let mut known: KnownPatients = match fs::read_to_string(&path) {
        Ok(s) => toml::from_str(&s).map_err(|e| {
            Error::input(
                format!("{} is not readable: {}", path.display(), e.message()),
                "fix or move the file: carnet will not forget the keys it remembers",
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => KnownPatients::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let shown = ui::clean(&name);
    match known.patients.get(&name) {
        Some(fp) if *fp == t.patient.fingerprint => return Ok(None),
        Some(fp) if !from_checked => {
            return Err(Error::BadBundle(format!(
                "bundles from {shown} were signed by {}, this one by {}: refused",
                ui::clean(fp),
                t.patient.fingerprint
            ))
            .into());
        }
        Some(fp) => eprintln!(
            "note: {shown}'s key changes from {} to {} (checked with --from)",
            ui::clean(fp),
            t.patient.fingerprint
        ),
        None => {}
    }
    let fingerprint = t.patient.fingerprint.clone();
    Ok(Some(move || {
        known.patients.insert(name, fingerprint.clone());
        let saved = path
            .parent()
            .map(crate::fsutil::create_private_dir)
            .transpose()
            .ok()
            .and_then(|_| toml::to_string(&known).ok())
            .map(|text| crate::fsutil::write_atomic(&path, text.as_bytes()));
        match saved {
            Some(Ok(())) => eprintln!("note: key {fingerprint} remembered for {shown}"),
            _ => eprintln!(
                "warning: could not remember {shown}'s key in {}",
                path.display()
            ),
        }
    }))
}

/// A staging folder left in `dir` by an interrupted open holds plaintext nobody asked to keep.
fn remove_stale_staging(dir: &Path) {
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
fn extract<R: std::io::Read + std::io::Seek>(
    opened: &mut grant::Opened<R>,
    dir: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let created = crate::fsutil::create_missing(dir)?;
    let result = extract_staged(opened, dir, force);
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
    let total: u64 = opened.terms.documents.iter().map(|d| d.size).sum();
    let bar = if total >= ui::BIG_FILE {
        ui::bytes_bar(total, "Extracting")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let files = opened
        .extract_to(staging.path(), &|n| bar.set_position(n))
        .map_err(to_error)?;
    bar.finish_and_clear();
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
