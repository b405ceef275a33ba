//! `carnet rm`: remove documents; asks first unless `--yes`.

use std::fs;

use super::Ctx;
use crate::args::RmArgs;
use crate::error::Error;
use crate::ids;

pub fn run(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let manifest = vault.load_manifest(&keys)?;
    let mut targets: Vec<String> = Vec::new();
    for p in &a.ids {
        let id = manifest.resolve(p)?;
        if !targets.contains(&id) {
            targets.push(id);
        }
    }
    if !a.yes {
        for id in &targets {
            if let Some(d) = manifest.get(id) {
                eprintln!("  {}  {}  {}", ids::short(id), d.date, d.title);
            }
        }
        match crate::ui::confirm(&format!(
            "Remove {} document(s) from the vault?",
            targets.len()
        )) {
            Some(true) => {}
            Some(false) => {
                eprintln!("nothing removed");
                return Ok(());
            }
            None => {
                return Err(Error::input(
                    "refusing to remove documents without confirmation",
                    "there is no terminal to ask: pass --yes",
                )
                .into());
            }
        }
    }

    let lock = vault.lock()?;
    // Re-read under the lock: another command may have changed the vault meanwhile.
    let mut manifest = vault.load_manifest(&keys)?;
    let mut removed = Vec::new();
    manifest.documents.retain(|d| {
        if targets.contains(&d.id) {
            removed.push(d.clone());
            false
        } else {
            true
        }
    });
    if removed.is_empty() {
        return Err(Error::UnknownId(a.ids.join(" ")).into());
    }
    vault.save_manifest(&mut manifest, &lock)?;
    // The manifest no longer names these objects; deleting them can only leave orphans behind
    // on a crash, never a manifest pointing at nothing.
    for d in &removed {
        let _ = fs::remove_file(vault.object_path(&d.object));
    }
    drop(lock);
    for d in &removed {
        println!("removed {}  {}", ids::short(&d.id), d.title);
    }
    Ok(())
}
