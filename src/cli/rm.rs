//! `carnet rm`: remove documents; asks first unless `--yes`.

use super::Ctx;
use super::args::RmArgs;
use crate::error::Error;
use crate::ids;

/// One document removed, as `rm --json` lists it.
#[derive(serde::Serialize)]
struct Removed<'a> {
    id: &'a str,
    short_id: &'a str,
    title: &'a str,
}

pub fn run(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    // Shared while the root and shards are read: a concurrent commit removes the shards it
    // replaces.
    let shared = crate::fsutil::Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(&ctx.keys)?;
    // A closed record would refuse the commit: say so before asking for confirmation.
    snap.root.check_writable()?;
    let mut targets: Vec<String> = Vec::new();
    for p in &a.ids {
        let d = snap.resolve(&vault, p)?;
        if !a.yes {
            eprintln!(
                "  {}  {}  {}",
                ids::short(&d.id),
                d.date,
                super::ui::clean(&d.title)
            );
        }
        if !targets.iter().any(|t| *t == d.id) {
            targets.push(d.id.into());
        }
    }
    drop(shared);
    if !a.yes {
        let question = format!("Remove {} document(s) from the vault?", targets.len());
        match super::ui::confirm(&question) {
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
    let removed = crate::ops::remove::remove(&vault, snap.keys, &targets, ctx.now)?;
    super::print_notices(&removed.notices);
    if a.json {
        let removed: Vec<Removed> = removed
            .documents
            .iter()
            .map(|d| Removed {
                id: &d.id,
                short_id: ids::short(&d.id),
                title: &d.title,
            })
            .collect();
        return super::print_json(&serde_json::json!({ "removed": removed }));
    }
    for d in &removed.documents {
        crate::outln!(
            "removed {}  {}",
            ids::short(&d.id),
            super::ui::clean(&d.title)
        );
    }
    Ok(())
}
