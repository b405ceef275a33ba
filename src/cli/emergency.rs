//! `carnet emergency`: the emergency bundle behind a generated passcode (printed once, on
//! stdout, with its caveats), the printable card, and the patient's objection
//! (`--opt-out` / `--opt-in`).

use std::io::Write;

use age::secrecy::ExposeSecret;
use anyhow::Context;
use serde::Serialize;
use zeroize::Zeroizing;

use super::Ctx;
use super::args::{EmergencyArgs, Essential as Show};
use crate::dates;
use crate::error::Error;
use crate::fsutil;
use crate::ops::emergency as op;
use crate::profile::Essential;

#[derive(Serialize)]
struct ChoiceReport {
    opted_out: bool,
    since: Option<String>,
    changed: bool,
}

#[derive(Serialize)]
struct BundleReport<'a> {
    id: &'a str,
    output: String,
    card: Option<String>,
    passcode: &'a str,
    passcode_on_card: bool,
    expires: String,
    profile_version: u32,
    documents: Vec<&'a str>,
    shown: &'a [String],
    bundle_sha256: &'a str,
    patient_fingerprint: &'a str,
}

fn essential(s: Show) -> Essential {
    match s {
        Show::Allergies => Essential::Allergies,
        Show::BloodGroup => Essential::BloodGroup,
        Show::Medications => Essential::Medications,
        Show::Conditions => Essential::Conditions,
        Show::Devices => Essential::Devices,
        Show::Contacts => Essential::Contacts,
        Show::Doctor => Essential::Doctor,
        Show::Directives => Essential::Directives,
    }
}

pub fn run(ctx: &Ctx, a: EmergencyArgs) -> anyhow::Result<()> {
    if a.opt_out || a.opt_in {
        let vault = ctx.open_vault()?;
        let c = op::set_opt_out(&vault, &ctx.keys, a.opt_out, ctx.now)?;
        super::print_notices(&c.notices);
        if a.json {
            return super::print_json(&ChoiceReport {
                opted_out: c.opted_out,
                since: c.since.map(|t| t.to_string()),
                changed: c.changed,
            });
        }
        match (c.opted_out, c.changed) {
            (true, true) => eprintln!(
                "Recorded: you object to emergency access. No emergency bundle or card can be made \
                 until `carnet emergency --opt-in`. Bundles and cards made before still open: \
                 destroy them."
            ),
            (true, false) => eprintln!("You already object to emergency access: nothing changed."),
            (false, true) => eprintln!("Your objection to emergency access is lifted."),
            (false, false) => eprintln!("You do not object to emergency access: nothing changed."),
        }
        return Ok(());
    }
    let Some(output) = a.output.clone() else {
        return Err(Error::input(
            "say where to write the emergency bundle",
            "pass -o FILE (or --opt-out / --opt-in)",
        )
        .into());
    };
    let now = jiff::Timestamp::from_second(ctx.now.as_second()).unwrap_or(ctx.now);
    let expires = dates::parse_when(&a.expires, now, true)?;
    for (path, what) in
        std::iter::once((&output, "bundle")).chain(a.card.iter().map(|c| (c, "card")))
    {
        if path.is_dir() {
            return Err(Error::input(
                format!("{} is a folder", path.display()),
                format!("give a file name for the {what}"),
            )
            .into());
        }
        if path.exists() && !a.force {
            return Err(Error::input(
                format!("{} already exists", path.display()),
                "choose another file, or pass --force",
            )
            .into());
        }
    }
    if a.card.as_ref().is_some_and(|c| *c == output) {
        return Err(Error::input(
            "the card and the bundle would be the same file",
            "give the card another name, e.g. --card carte.pdf",
        )
        .into());
    }
    let file_name = output
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "urgence.age".into());
    let show: Vec<Essential> = if a.show.is_empty() {
        op::DEFAULT_SHOW.to_vec()
    } else {
        a.show.iter().copied().map(essential).collect()
    };
    let req = op::Request {
        include: a.include.clone(),
        expires,
        passcode: crate::passcode::generate(),
        scrypt_log_n: super::scrypt_log_n(),
        stage_in: fsutil::parent_dir(&output).to_path_buf(),
        output_name: output.display().to_string(),
        card: a.card.as_ref().map(|c| op::CardRequest {
            show: show.clone(),
            passcode_on_card: !a.no_passcode_on_card,
            location: a
                .location
                .clone()
                .unwrap_or_else(|| format!("fichier / file {file_name}")),
            file_name: file_name.clone(),
            output_name: c.display().to_string(),
        }),
    };
    let vault = ctx.open_vault()?;
    let issued = op::issue(&vault, &ctx.keys, &req, ctx.now)?;
    super::print_notices(&issued.notices);
    let op::Issued {
        record,
        fingerprint,
        bundle_sha256,
        bundle,
        card,
        shown,
        profile_version,
        ..
    } = issued;
    let short = crate::ids::short(&record.id).to_string();
    fsutil::persist(bundle, &output, a.force).map_err(|e| {
        e.context(format!(
            "emergency bundle {short} is recorded in your log, but it could not be written; revoke it and make another"
        ))
    })?;
    if let (Some(pdf), Some(path)) = (&card, &a.card) {
        let dir = fsutil::parent_dir(path);
        let written = fsutil::private_tempfile(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))
            .and_then(|mut tmp| {
                tmp.write_all(pdf)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                fsutil::persist(tmp, path, a.force)
            });
        written.map_err(|e| {
            e.context(format!(
                "the emergency bundle {} is written, but not the card",
                output.display()
            ))
        })?;
    }
    let code = Zeroizing::new(req.passcode.expose_secret().to_string());
    if a.json {
        return super::print_json(&BundleReport {
            id: &record.id,
            output: output.display().to_string(),
            card: a.card.as_ref().map(|c| c.display().to_string()),
            passcode: &code,
            passcode_on_card: a.card.is_some() && !a.no_passcode_on_card,
            expires: expires.to_string(),
            profile_version,
            documents: record.documents.iter().map(String::as_str).collect(),
            shown: &shown,
            bundle_sha256: &bundle_sha256,
            patient_fingerprint: &fingerprint,
        });
    }
    crate::outln!("{}", code.as_str());
    eprintln!(
        "Emergency bundle {short} in {}: your emergency profile (version {profile_version}, as an \
         FHIR IPS and as text) and {} document(s), until {}.",
        output.display(),
        record.documents.len(),
        dates::local_day(expires)
    );
    if let Some(c) = &a.card {
        eprintln!(
            "Card in {} ({}); print it at 100% and cut it out.",
            c.display(),
            if a.no_passcode_on_card {
                "without the passcode: keep it apart"
            } else {
                "with the passcode"
            }
        );
    }
    eprintln!("{}", super::grant::PASSCODE_CAVEAT);
    eprintln!(
        "The bundle is a snapshot: make a new one when your profile changes (`carnet grants` lists it; `carnet revoke` records that it no longer holds)."
    );
    Ok(())
}
