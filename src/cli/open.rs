//! `carnet open`: the professional's side. The bundle decrypted and authenticated (`grant`),
//! the patient's key checked against the professional's memory and the grant's validity
//! against the clock, the terms shown, the documents extracted (`ops::open`).

use std::path::PathBuf;

use serde::Serialize;

use super::Ctx;
use super::args::OpenArgs;
use super::ui;
use crate::dates;
use crate::domain::GrantStatus;
use crate::error::Error;
use crate::grant::{self, BundleError, Terms};
use crate::keys;
use crate::ops::open;

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
    /// `passcode` or `emergency` for a bundle opened with a passcode; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    documents: &'a [grant::TermsDocument],
    extracted_to: Option<String>,
    /// The receipt written for the patient (`--receipt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<String>,
}

pub fn run(ctx: &Ctx, a: OpenArgs) -> anyhow::Result<()> {
    let by_passcode = a.passcode || a.passcode_file.is_some();
    let key_path = match &ctx.keys.identity {
        Some(k) if !by_passcode => Some(k),
        // A passcode opens the bundle: an identity in CARNET_IDENTITY is not needed.
        _ if by_passcode => None,
        _ => {
            return Err(Error::input(
                "no key given",
                "pass your key file with -i KEYFILE (or CARNET_IDENTITY); an emergency bundle or an access code opens with --passcode",
            )
            .into());
        }
    };
    if !a.file.is_file() {
        return Err(Error::input(
            format!("{} is not a file", a.file.display()),
            "give the bundle you received",
        )
        .into());
    }
    if let Some(dir) = &a.output {
        open::remove_stale_staging(dir);
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
    let (pro_key, passcode) = match key_path {
        Some(k) => (Some(keys::load_pro_key(k, &ctx.keys.passphrase)?), None),
        None => (
            None,
            Some(super::passcode::read(a.passcode_file.as_deref())?),
        ),
    };
    let opener = match (&passcode, &pro_key) {
        (Some(p), _) => grant::Opener::Passcode(p),
        (None, Some(k)) => grant::Opener::Keys(&k.identity),
        (None, None) => {
            return Err(Error::input("no key given", "pass your key file with -i KEYFILE").into());
        }
    };
    let mut opened = grant::open_bundle_by(&a.file, opener).map_err(open::to_error)?;
    let terms = opened.terms.clone();

    if let Some(expected) = &from
        && *expected != terms.patient.fingerprint
    {
        return Err(open::to_error(BundleError::WrongSigner {
            found: terms.patient.fingerprint.clone(),
            expected: expected.clone(),
        }));
    }
    let known = known_patients_path().map(open::Known::load).transpose()?;
    let trust = match &known {
        Some(k) => k.trust(&terms, a.from.is_some())?,
        None if terms.patient.name.is_none() && terms.patient.vault_id.is_none() => {
            open::Trust::Unnamed
        }
        // No folder to remember keys in (no HOME): every bundle is a first.
        None => open::Trust::First,
    };
    match &trust {
        open::Trust::Unnamed if a.from.is_none() => eprintln!(
            "warning: this bundle names no patient, so its key cannot be remembered; \
             check its fingerprint {} with the patient, or use --from",
            terms.patient.fingerprint
        ),
        open::Trust::Homonym { other } => eprintln!(
            "note: another patient named {} is known, with the key {}; this bundle comes from \
             another vault: a new patient (check the fingerprint {} with them)",
            ui::clean(terms.patient.name.as_deref().unwrap_or_default()),
            ui::clean(other),
            terms.patient.fingerprint
        ),
        open::Trust::Changed { from } => eprintln!(
            "note: {}'s key changes from {} to {} (checked with --from)",
            ui::clean(terms.patient.name.as_deref().unwrap_or_default()),
            ui::clean(from),
            terms.patient.fingerprint
        ),
        _ => {}
    }

    let status = terms.status(ctx.now);
    opened.check_entries().map_err(open::to_error)?;
    if !a.json {
        print_terms(&terms, &status);
    }
    // Made before extraction: a receipt that cannot be made stops before any file is written.
    // A bundle opened with a passcode (an emergency bundle) can still get a receipt: the
    // professional's key, given with -i, then only signs it, and their card names them.
    let signer = match (&pro_key, &ctx.keys.identity, &a.receipt) {
        (None, Some(k), Some(_)) => {
            let card = crate::ops::pro::read_card(&k.with_extension("card.toml"))?;
            Some((keys::load_pro_key(k, &ctx.keys.passphrase)?, card))
        }
        _ => None,
    };
    let receipt = match &a.receipt {
        Some(_) if status == GrantStatus::Active => match (&pro_key, &signer) {
            (Some(k), _) => Some(crate::ops::receipt::prepare(&terms, k, None, ctx.now)?),
            (None, Some((k, card))) => Some(crate::ops::receipt::prepare(
                &terms,
                k,
                Some(card),
                ctx.now,
            )?),
            (None, None) => {
                return Err(Error::input(
                    "a receipt is signed with your key, and none was given",
                    "add -i KEYFILE (the key `carnet keygen` made you) to sign it, or leave --receipt out",
                )
                .into());
            }
        },
        _ => None,
    };
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
            kind: terms.kind.as_deref(),
            documents: &terms.documents,
            receipt: extracted_to
                .as_ref()
                .and(a.receipt.as_ref())
                .map(|p| p.display().to_string()),
            extracted_to,
        })
    };
    if a.json && status != GrantStatus::Active {
        // Scripts get the terms (with the status) even when the grant is refused.
        report(None)?;
    }
    match status {
        GrantStatus::Expired => {
            return Err(open::to_error(BundleError::Expired(dates::show_local(
                terms.expires,
            ))));
        }
        GrantStatus::NotYetValid => {
            return Err(open::to_error(BundleError::NotYetValid(dates::show_local(
                terms.not_before,
            ))));
        }
        _ => {}
    }

    let mut extracted = None;
    if let Some(dir) = &a.output {
        let bar = std::cell::OnceCell::new();
        let progress = |n: u64, total: u64| {
            if total >= ui::BIG_FILE {
                bar.get_or_init(|| ui::bytes_bar(total, "Extracting"))
                    .set_position(n);
            }
        };
        open::extract(&mut opened, dir, a.force, &progress)?;
        if let Some(b) = bar.get() {
            b.finish_and_clear();
        }
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
    if let (Some(r), Some(path)) = (&receipt, &a.receipt) {
        crate::ops::receipt::write(r, path, a.force)?;
        if !a.json {
            eprintln!(
                "Wrote a receipt for the patient to {}: send it to them (they record it with `carnet receive`).",
                path.display()
            );
        }
    } else if terms.kind.as_deref() == Some(grant::KIND_EMERGENCY) && !a.json {
        // The patient is told afterwards who looked (CSP L1111-17): say how.
        eprintln!(
            "note: tell the patient you opened their emergency bundle: run `carnet open {} \
             --passcode -i YOUR_KEY --receipt receipt.age` and send them receipt.age",
            ui::clean(&a.file.display().to_string())
        );
    }
    if let Some(k) = known.filter(|_| trust.remembers()) {
        let shown = ui::clean(terms.patient.name.as_deref().unwrap_or_default());
        let path = k.path().to_path_buf();
        match k.remember(&terms, ctx.now) {
            Ok(()) => eprintln!(
                "note: key {} remembered for {shown}",
                terms.patient.fingerprint
            ),
            Err(_) => eprintln!(
                "warning: could not remember {shown}'s key in {}",
                path.display()
            ),
        }
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
    let to = match t.kind.as_deref() {
        Some(grant::KIND_EMERGENCY) => "anyone holding the passcode (emergency bundle)".to_string(),
        Some(grant::KIND_PASSCODE) => "anyone holding the passcode (access code)".to_string(),
        _ => to.join(", "),
    };
    let _ = writeln!(s, "  for:         {to}");
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

/// Where the professional's memory of patients' keys lives: `CARNET_KNOWN_PATIENTS`, else
/// `$XDG_CONFIG_HOME/carnet/known-patients.toml` (or `~/.config/...`).
pub(super) fn known_patients_path() -> Option<PathBuf> {
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
