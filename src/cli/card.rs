//! `carnet card`: the patient's public card printed as TOML or written to a file, and shown as
//! a QR code on a terminal (the fingerprint, which the professional compares with the card).

use std::io::Write;

use anyhow::Context;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use serde::Serialize;

use super::Ctx;
use super::args::CardArgs;
use super::ui;
use crate::card::PatientCard;
use crate::error::Error;
use crate::fsutil;

#[derive(Serialize)]
struct CardOutput<'a> {
    #[serde(flatten)]
    card: &'a PatientCard,
    output: Option<String>,
}

pub fn run(ctx: &Ctx, a: CardArgs) -> anyhow::Result<()> {
    if let Some(out) = &a.output
        && !a.force
        && out.exists()
    {
        return Err(Error::input(
            format!("{} already exists", out.display()),
            "choose another file, or pass --force to replace it",
        )
        .into());
    }
    let vault = ctx.open_vault()?;
    let card = crate::ops::card::card(&vault, &ctx.keys)?;
    let text = card.to_toml()?;
    if let Some(out) = &a.output {
        let dir = fsutil::parent_dir(out);
        let mut tmp = fsutil::private_tempfile(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        tmp.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
        fsutil::persist(tmp, out, a.force)?;
    }
    if a.json {
        return super::print_json(&CardOutput {
            card: &card,
            output: a.output.as_ref().map(|p| p.display().to_string()),
        });
    }
    if a.qr {
        crate::outln!("{}", qr(&card)?);
        crate::outln!("{}", card.fingerprint);
    } else if a.output.is_none() {
        // The name comes from the vault's root: shown as any stored text is.
        let safe: Vec<String> = text.lines().map(ui::clean).collect();
        crate::outln!("{}", safe.join("\n"));
    }
    if let Some(out) = &a.output {
        eprintln!(
            "Wrote your card to {}: send it to your professionals (it holds public keys only).",
            out.display()
        );
    } else if a.qr {
        eprintln!(
            "The professional scans this code and compares the fingerprint with the card you send \
             them (`carnet card -o patient.card.toml`)."
        );
    }
    Ok(())
}

/// The QR code, in Unicode half blocks (two rows of modules per line), light on dark as
/// `qrencode -t UTF8` draws it, with its quiet zone. It holds the name, the fingerprint and how
/// to get the card: a few dozen bytes, so it stays small enough for any terminal.
fn qr(card: &PatientCard) -> anyhow::Result<String> {
    let payload = format!(
        "carnet: {}\nempreinte / fingerprint: {}\ncarte / card: carnet card -o patient.card.toml",
        card.name.as_deref().unwrap_or("(sans nom / unnamed)"),
        card.fingerprint
    );
    let code = QrCode::new(payload.as_bytes()).map_err(|e| {
        Error::input(
            format!("cannot draw the QR code: {e}"),
            "send the card file instead (`carnet card -o FILE`)",
        )
    })?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}
