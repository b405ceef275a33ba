//! `carnet destroy`: the confirmation (typed on a terminal, `--confirm` in scripts),
//! `ops::destroy`, and what remains elsewhere said plainly.

use std::io::IsTerminal;

use super::Ctx;
use super::args::DestroyArgs;
use super::ui;
use crate::dates;
use crate::error::Error;
use crate::ops::destroy::{self, Expected, Report};

pub fn run(ctx: &Ctx, a: DestroyArgs) -> anyhow::Result<()> {
    let dir = &ctx.vault_dir;
    if destroy::interrupted(dir) {
        // The keys still there: the patient confirms again (a typed "destroy" on a terminal,
        // --confirm in a script), since the marker could have been made by anyone.
        if destroy::keys_remain(dir) {
            let can_ask = std::io::stdin().is_terminal() && ui::stderr_is_terminal();
            let confirmed = match &a.confirm {
                Some(_) => true,
                None if can_ask => {
                    eprintln!(
                        "{} holds a destruction that was interrupted before its keys were erased.",
                        dir.display()
                    );
                    ui::ask_line("Type destroy to finish it: ")
                        .is_some_and(|t| t.trim() == "destroy")
                }
                None => false,
            };
            if !confirmed {
                return Err(Error::input(
                    format!(
                        "{} holds an interrupted destruction, and its keys are still there",
                        dir.display()
                    ),
                    "to finish it, run `carnet destroy --confirm \"PATIENT NAME\"` (or on a terminal); \
                     if you did not start it, rename carnet.toml.destroying back to carnet.toml",
                )
                .into());
            }
        }
        eprintln!(
            "note: finishing the destruction of {}, which was interrupted",
            dir.display()
        );
        let report = destroy::finish(dir)?;
        return print(ctx, &report, a.json);
    }
    let can_ask = std::io::stdin().is_terminal() && ui::stderr_is_terminal();
    if a.confirm.is_none() && !can_ask {
        // Checked before anything is opened or asked: a script must say what it destroys.
        return Err(Error::Usage {
            msg: "refusing to destroy the record without confirmation".into(),
            hint: "there is no terminal to ask: pass --confirm \"PATIENT NAME\" (the name the \
                   record holds; its fingerprint when it holds none)"
                .into(),
        }
        .into());
    }
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let plan = destroy::prepare(&vault, keys)?;
    let typed = match a.confirm {
        Some(t) => t,
        None => {
            let (what, value) = match &plan.expected {
                Expected::PatientName(n) => ("the patient's name", ui::clean(n)),
                Expected::Fingerprint(f) => ("the vault's fingerprint", f.clone()),
            };
            eprintln!(
                "This destroys the record in {}: every document, the access log and the keys. \
                 It cannot be undone.",
                dir.display()
            );
            ui::ask_line(&format!("Type {what} ({value}) to confirm: ")).unwrap_or_default()
        }
    };
    let report = plan.destroy(&typed)?;
    print(ctx, &report, a.json)
}

fn print(ctx: &Ctx, r: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        return super::print_json(r);
    }
    eprintln!(
        "Destroyed the record in {}: its keys ({}) overwritten, then {} file(s) deleted{}.",
        ui::clean(&r.vault),
        if r.shredded.is_empty() {
            "already gone".to_string()
        } else {
            r.shredded.join(", ")
        },
        r.files_removed,
        if r.folder_removed {
            ", and the folder"
        } else {
            ""
        }
    );
    if !r.left.is_empty() {
        eprintln!(
            "note: the folder is kept: it holds files that were not the vault's: {}",
            r.left
                .iter()
                .map(|f| ui::clean(f))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let key = if r.identity_outside || ctx.keys.identity.is_some() {
        "your identity file"
    } else {
        "your passphrase"
    };
    if r.copies.is_empty() {
        eprintln!(
            "carnet knows of no backup or mirror of this record (backups made without the key \
             are not logged). Any made earlier still hold the encrypted record, and {key} still \
             opens them: delete them too."
        );
    } else {
        eprintln!(
            "These backups and mirrors still hold the encrypted record, and {key} still opens \
             them: delete them too."
        );
        for c in &r.copies {
            let target = if c.target == "-" {
                "standard output (piped to another program, e.g. restic)".to_string()
            } else {
                ui::clean(&c.target)
            };
            eprintln!("  {target}  (last {})", dates::show_local(c.last_at));
        }
    }
    if r.identity_outside {
        eprintln!("The identity file outside the vault (-i) was not touched.");
    }
    Ok(())
}
