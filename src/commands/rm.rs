//! `carnet rm`: remove documents; asks first unless `--yes`.

use super::Ctx;
use crate::args::RmArgs;
use crate::error::Error;
use crate::ids;
use crate::vault::Op;

pub fn run(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let snap = vault.read(&ctx.keys)?;
    let mut targets: Vec<String> = Vec::new();
    for p in &a.ids {
        let id = snap.manifest.resolve(p)?;
        if !targets.contains(&id) {
            targets.push(id);
        }
    }
    if !a.yes {
        for id in &targets {
            if let Some(d) = snap.manifest.get(id) {
                eprintln!(
                    "  {}  {}  {}",
                    ids::short(id),
                    d.date,
                    crate::ui::clean(&d.title)
                );
            }
        }
        let question = format!("Remove {} document(s) from the vault?", targets.len());
        match crate::ui::confirm(&question) {
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

    // Re-read under the lock: another command may have changed the vault meanwhile.
    let txn = vault.begin(snap.keys)?;
    let mut manifest = txn.manifest().clone();
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
    // Titles go into the (encrypted) log so that its history stays readable after removal.
    let titles: Vec<String> = removed.iter().map(|d| d.title.clone()).collect();
    let mut op = Op::new("rm")
        .documents(removed.iter().map(|d| d.id.clone()).collect())
        .detail("titles", titles);
    op.manifest = Some(manifest);
    op.remove = removed.iter().map(|d| d.object.clone()).collect();
    txn.commit(op)?;
    for d in &removed {
        crate::outln!(
            "removed {}  {}",
            ids::short(&d.id),
            crate::ui::clean(&d.title)
        );
    }
    Ok(())
}
