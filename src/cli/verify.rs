//! `carnet verify`: check the whole vault; exit 3 when anything fails.

use std::io::Write;

use anyhow::Context;

use super::Ctx;
use super::args::VerifyArgs;
use super::ui;
use crate::error::Error;
use crate::ops::check;
use crate::verify;

pub fn run(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    if a.offline {
        return offline(ctx, a);
    }
    let vault = ctx.open_vault()?;
    let keys = match vault.unlock(&ctx.keys) {
        Ok(k) => k,
        Err(e) => {
            // A damaged identity file is reported as damage (exit 3), not as a wrong passphrase.
            let Some(report) = verify::identity_damage(&vault, &e) else {
                return Err(e);
            };
            print_report(&report, a.json, "")?;
            return Err(failed(&report));
        }
    };
    let bar = ui::count_bar(0, if a.deep { "Decrypting" } else { "Checking" });
    let report = check::check(&vault, &keys, a.deep, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let ok_line = format!(
        "ok: {} documents, {} log entries{}",
        report.documents,
        report.log_entries,
        if a.deep {
            ", every document decrypted and checked"
        } else {
            ""
        }
    );
    print_report(&report, a.json, &ok_line)?;
    if report.ok {
        // The report is out first, so a read-only vault still shows its result.
        let notices = check::record(&vault, keys, &report, ctx.now)
            .context("the vault is sound, but the check could not be recorded in the access log")?;
        super::print_notices(&notices);
    }
    if !report.ok {
        return Err(failed(&report));
    }
    Ok(())
}

/// `verify --offline`: no key, no passphrase; a hashing job over the signed index.
fn offline(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    let bar = ui::bytes_bar(0, "Hashing");
    let progress = |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    };
    // A backup file is checked in place; a vault or a mirror folder against its index.
    let target = a.source.as_deref().unwrap_or(&ctx.vault_dir);
    let report = if target.is_file() {
        crate::ops::restore::verify_zip(target, a.expect.as_deref(), &progress)?
    } else {
        verify::verify_offline(target, a.expect.as_deref(), &progress)?
    };
    bar.finish_and_clear();
    let ok_line = format!(
        "ok: {} files checked against the signed index",
        report.objects_checked
    );
    print_report(&report, a.json, &ok_line)?;
    if !report.ok {
        return Err(failed(&report));
    }
    Ok(())
}

/// One `FAILED  path: message` line per problem on stdout, notes on stderr, and `ok_line` when
/// all holds; or the whole report as JSON.
fn print_report(report: &verify::Report, json: bool, ok_line: &str) -> anyhow::Result<()> {
    if json {
        return super::print_json(report);
    }
    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        // Paths are whatever names were found in the folder.
        writeln!(
            out,
            "FAILED  {}: {}",
            ui::clean(&p.path),
            ui::clean(&p.message)
        )?;
    }
    for n in &report.notes {
        eprintln!("note: {}", ui::clean(n));
    }
    if report.ok {
        writeln!(out, "{ok_line}")?;
    }
    Ok(())
}

fn failed(report: &verify::Report) -> anyhow::Error {
    match &report.hint {
        Some(h) => Error::VerifyFailedHint(report.problems.len(), h.clone()).into(),
        None => Error::VerifyFailed(report.problems.len()).into(),
    }
}
