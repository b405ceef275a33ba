//! `carnet rm`: remove documents; asks first unless `--yes`.

use super::Ctx;
use super::args::RmArgs;
use crate::error::Error;
use crate::ids;
use crate::txn::Op;

/// One document removed, as `rm --json` lists it.
#[derive(serde::Serialize)]
struct Removed<'a> {
    id: &'a str,
    short_id: &'a str,
    title: &'a str,
}

pub fn run(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
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
        if !targets.contains(&d.id) {
            targets.push(d.id);
        }
    }
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

    // Re-read under the lock: another command may have changed the vault meanwhile.
    let txn = vault.begin(snap.keys, ctx.now)?;
    let found = txn.snap.documents_by_id(&vault, &targets)?;
    let removed: Vec<_> = targets
        .iter()
        .filter_map(|id| found.get(id).cloned())
        .collect();
    if removed.is_empty() {
        return Err(Error::UnknownId(a.ids.join(" ")).into());
    }
    // Titles go into the (encrypted) log so that its history stays readable after removal.
    let titles: Vec<String> = removed.iter().map(|d| d.title.clone()).collect();
    let mut op = Op::new(crate::domain::Action::Rm)
        .documents(removed.iter().map(|d| d.id.clone()).collect())
        .detail("titles", titles);
    op.delete = removed.iter().map(|d| d.id.clone()).collect();
    op.remove = removed.iter().map(|d| d.object.clone()).collect();
    super::print_notices(&txn.commit(op)?.notices);
    if a.json {
        let removed: Vec<Removed> = removed
            .iter()
            .map(|d| Removed {
                id: &d.id,
                short_id: ids::short(&d.id),
                title: &d.title,
            })
            .collect();
        return super::print_json(&serde_json::json!({ "removed": removed }));
    }
    for d in &removed {
        crate::outln!(
            "removed {}  {}",
            ids::short(&d.id),
            super::ui::clean(&d.title)
        );
    }
    Ok(())
}
