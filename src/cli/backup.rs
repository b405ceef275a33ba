//! `carnet backup` and `carnet restore`: the target checked, a mirror's own changes refused or
//! merged (`ops::mirror`), the copy made (`ops::backup`, `ops::restore`), logged when the key is
//! at hand, and reported.

use std::io::IsTerminal;

use serde::Serialize;

use super::Ctx;
use super::args::{BackupArgs, RestoreArgs};
use super::ui;
use crate::error::Error;
use crate::ops::{backup, restore};
use crate::txn::Op;
use crate::vault::Vault;

#[derive(Serialize, Default)]
struct BackupReport {
    output: String,
    files: usize,
    bytes: u64,
    copied: usize,
    removed: usize,
    logged: bool,
    /// `--merge`: the documents imported from the mirror into the vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    merged: Option<Vec<crate::ops::mirror::Merged>>,
}

/// The key is "at hand" when the user gave one without being asked, or the vault is unlocked
/// (`carnet unlock`): then the backup is logged.
fn key_at_hand(ctx: &Ctx, vault: &Vault) -> bool {
    ctx.keys.identity.is_some()
        || ctx.passphrase_file.is_some()
        || std::env::var_os("CARNET_PASSPHRASE").is_some()
        || ctx
            .keys
            .session
            .as_ref()
            .is_some_and(|s| s.unlocked_until(&vault.config).is_some())
}

fn log_action(ctx: &Ctx, vault: &Vault, op: Op) -> anyhow::Result<bool> {
    if !key_at_hand(ctx, vault) {
        return Ok(false);
    }
    let keys = vault.unlock(&ctx.keys)?;
    log_with(ctx, vault, keys, op)
}

fn log_with(ctx: &Ctx, vault: &Vault, keys: crate::keys::Unlocked, op: Op) -> anyhow::Result<bool> {
    super::print_notices(&vault.begin(keys, ctx.now)?.commit(op)?.notices);
    Ok(true)
}

pub fn run(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let target = a
        .output
        .as_ref()
        .map(|p| p.display().to_string())
        .or_else(|| a.to.as_ref().map(|p| p.display().to_string()))
        .unwrap_or_default();
    // Check the target before anything is logged: a refused backup leaves no trace.
    match (&a.output, &a.to) {
        (Some(out), _) if out.as_os_str() == "-" => check_stdout_target(a.force, a.json)?,
        (Some(out), _) => backup::check_file_target(out, a.force)?,
        (None, Some(dir)) => backup::check_mirror_target(&vault, dir)?,
        (None, None) => {}
    }
    let op = Op::new(crate::domain::Action::Backup).detail("target", target.clone());
    let mut merged = None;
    let logged = match &a.to {
        Some(dir) if a.merge => {
            // The key is needed to read the mirror's documents: asked for if not at hand.
            let keys = vault.unlock(&ctx.keys)?;
            let (docs, notices) = crate::ops::mirror::merge(&vault, &keys, dir, ctx.now)?;
            super::print_notices(&notices);
            merged = Some(docs);
            log_with(ctx, &vault, crate::ops::mirror::dup(&keys), op)?
        }
        Some(dir) if !a.force => {
            // A mirror's own changes stop the update before anything is logged or written.
            let keys = key_at_hand(ctx, &vault)
                .then(|| vault.unlock(&ctx.keys))
                .transpose()?;
            crate::ops::mirror::refuse_own_changes(&vault, keys.as_ref(), dir)?;
            match keys {
                Some(k) => log_with(ctx, &vault, k, op)?,
                None => false,
            }
        }
        _ => log_action(ctx, &vault, op)?,
    };
    let mut stdout = std::io::stdout().lock();
    let dest = match (&a.output, &a.to) {
        (Some(out), _) if out.as_os_str() == "-" => backup::Target::Stream(&mut stdout),
        (Some(out), _) => backup::Target::File {
            out: out.clone(),
            force: a.force,
        },
        (None, Some(dir)) => backup::Target::Mirror {
            dir: dir.clone(),
            check: a.check,
        },
        (None, None) => unreachable!("clap requires --output or --to"),
    };
    let label = if a.to.is_some() {
        "Mirroring"
    } else {
        "Backing up"
    };
    let bar = std::cell::OnceCell::new();
    let progress = |n: u64, total: u64| {
        bar.get_or_init(|| ui::bytes_bar(total, label))
            .set_position(n);
    };
    let copied = backup::backup(&vault, dest, &progress)?;
    if let Some(b) = bar.get() {
        b.finish_and_clear();
    }
    let report = BackupReport {
        output: target,
        files: copied.files,
        bytes: copied.bytes,
        copied: copied.copied,
        removed: copied.removed,
        logged,
        merged,
    };
    if a.json {
        return super::print_json(&report);
    }
    if let Some(m) = &report.merged {
        match m.len() {
            0 => eprintln!("Nothing to merge: every document added on the mirror is in the vault"),
            n => eprintln!(
                "Merged {n} document{} from the mirror into the vault",
                if n == 1 { "" } else { "s" }
            ),
        }
        for d in m {
            crate::outln!(
                "merged {}  {}",
                crate::ids::short(&d.id),
                ui::clean(&d.title)
            );
        }
    }
    eprintln!(
        "Backed up {} files ({}){}{}",
        report.files,
        ui::human_size(report.bytes),
        if a.to.is_some() {
            format!(": {} copied, {} removed", report.copied, report.removed)
        } else {
            String::new()
        },
        if logged {
            "; logged"
        } else {
            "; not logged (no key given: see FORMAT.md)"
        }
    );
    Ok(())
}

#[derive(Serialize)]
struct RestoreReport {
    vault: String,
    files: usize,
    bytes: u64,
    logged: bool,
}

/// `-o -`: the zip goes to standard output, so no JSON report can, and never to a terminal
/// (checked before the backup is logged: a zip sprayed on a screen is no backup).
fn check_stdout_target(force: bool, json: bool) -> anyhow::Result<()> {
    if json {
        return Err(Error::input(
            "--json and -o - would both write to standard output",
            "write the backup to a file with -o FILE to get the JSON report",
        )
        .into());
    }
    if !force && std::io::stdout().is_terminal() {
        return Err(Error::input(
            "a backup is binary and standard output is a terminal: it would garble the screen",
            "redirect it (-o - > FILE), write it with -o FILE, or pass --force",
        )
        .into());
    }
    Ok(())
}

pub fn restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<()> {
    let target = &ctx.vault_dir;
    let done = restore::restore(&a.source, target)?;
    let vault = Vault::open(target)?;
    let logged = log_action(
        ctx,
        &vault,
        Op::new(crate::domain::Action::Restore).detail("source", a.source.display().to_string()),
    )?;
    if a.json {
        return super::print_json(&RestoreReport {
            vault: target.display().to_string(),
            files: done.files,
            bytes: done.bytes,
            logged,
        });
    }
    eprintln!(
        "Restored {} files ({}) into {}. Check it with `carnet verify --deep`.",
        done.files,
        ui::human_size(done.bytes),
        target.display()
    );
    Ok(())
}
