//! `carnet verify`: check the whole vault; exit 3 when anything fails.

use std::io::Write;

use super::Ctx;
use crate::args::VerifyArgs;
use crate::error::Error;
use crate::ui;
use crate::vault::Op;
use crate::verify;

pub fn run(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    if a.offline {
        return offline(ctx, a);
    }
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let bar = ui::count_bar(0, if a.deep { "Decrypting" } else { "Checking" });
    let report = verify::verify(&vault, &keys, a.deep, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    if report.ok {
        // Only a sound vault gets a `verify` entry: appending to a broken log would hide where
        // it broke.
        let op = Op::new("verify")
            .detail("deep", a.deep)
            .detail("documents", report.documents)
            .detail("log_entries", report.log_entries);
        vault.begin(keys)?.commit(op)?;
    }
    if a.json {
        super::print_json(&report)?;
    } else {
        let mut out = std::io::stdout().lock();
        for p in &report.problems {
            writeln!(out, "FAILED  {}: {}", p.path, p.message)?;
        }
        for n in &report.notes {
            eprintln!("note: {n}");
        }
        if report.ok {
            writeln!(
                out,
                "ok: {} documents, {} log entries{}",
                report.documents,
                report.log_entries,
                if a.deep {
                    ", every document decrypted and checked"
                } else {
                    ""
                }
            )?;
        }
    }
    if !report.ok {
        return Err(Error::VerifyFailed(report.problems.len()).into());
    }
    Ok(())
}

/// `verify --offline`: no key, no passphrase; a hashing job over the signed index.
fn offline(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    let bar = ui::bytes_bar(0, "Hashing");
    let report = verify::verify_offline(&ctx.vault_dir, a.expect.as_deref(), &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    print_report(&report, a.json, "files checked against the signed index")?;
    if !report.ok {
        return Err(Error::VerifyFailed(report.problems.len()).into());
    }
    Ok(())
}

fn print_report(report: &verify::Report, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        return super::print_json(report);
    }
    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        writeln!(out, "FAILED  {}: {}", p.path, p.message)?;
    }
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    if report.ok {
        writeln!(out, "ok: {} {what}", report.objects_checked)?;
    }
    Ok(())
}
