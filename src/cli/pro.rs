//! `carnet pro`: the arguments resolved into a request, `ops::pro`, and its report printed.

use std::io::Write;

use super::Ctx;
use super::args::{JsonArg, ProAddArgs, ProCommand, ProWho};
use super::ui;
use crate::ops::pro::{self, AddRequest, Change, Source};

pub fn run(ctx: &Ctx, cmd: ProCommand) -> anyhow::Result<()> {
    match cmd {
        ProCommand::Add(a) => add(ctx, a),
        ProCommand::Ls(a) => ls(ctx, a),
        ProCommand::Rm(w) => change(ctx, w, Change::Rm),
        ProCommand::Block(w) => change(ctx, w, Change::Block),
        ProCommand::Unblock(w) => change(ctx, w, Change::Unblock),
    }
}

fn add(ctx: &Ctx, a: ProAddArgs) -> anyhow::Result<()> {
    let source = match a.card {
        Some(path) => Source::Card(path),
        // clap requires --key with --name, and one of --card and --key.
        None => Source::Manual {
            name: a.name.unwrap_or_default(),
            key: a.key.unwrap_or_default(),
        },
    };
    let checked = pro::check(AddRequest {
        source,
        rpps: a.rpps,
        adeli: a.adeli,
        profession: a.profession,
        handle: a.handle,
        medecin_traitant: a.role.is_some(),
    })?;
    super::print_notices(&checked.notices);
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let added = pro::add(&vault, keys, checked, ctx.now)?;
    super::print_notices(&added.notices);
    let p = &added.professional;
    if a.json {
        return super::print_json(p);
    }
    crate::outln!("{}", p.handle);
    eprintln!(
        "Added {} as `{}`{}",
        ui::clean(&p.name),
        p.handle,
        p.identifier()
            .map(|i| format!(" ({i})"))
            .unwrap_or_default()
    );
    Ok(())
}

fn ls(ctx: &Ctx, a: JsonArg) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let root = vault.read(&ctx.keys)?.root;
    let listed = pro::list(&root);
    if a.json {
        return super::print_json(&listed);
    }
    if listed.is_empty() {
        eprintln!("no professionals yet: add one with `carnet pro add --card FILE`");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<20}  {:<18}  {:<14}  NAME",
        "HANDLE", "IDENTIFIER", "PROFESSION"
    )?;
    for l in &listed {
        let p = l.professional;
        writeln!(
            out,
            "{:<20}  {:<18}  {:<14}  {}{}",
            p.handle,
            p.identifier().unwrap_or_else(|| "-".into()),
            ui::clean(p.profession.as_deref().unwrap_or("-")),
            ui::clean(&p.name),
            if p.blocked { "  [blocked]" } else { "" }
        )?;
    }
    Ok(())
}

fn change(ctx: &Ctx, w: ProWho, change: Change) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let done = pro::change(&vault, keys, &w.who, change, ctx.now)?;
    super::print_notices(&done.notices);
    if w.json {
        return super::print_json(&done);
    }
    let h = &done.handle;
    let msg = match (change, done.changed) {
        (Change::Rm, _) => {
            format!("Removed {h} from your directory (grants already issued stay in your log)")
        }
        (Change::Block, true) => {
            format!("Blocked {h}: no grant can be made to them until `carnet pro unblock {h}`")
        }
        (Change::Block, false) => format!("{h} is already blocked"),
        (Change::Unblock, true) => format!("Unblocked {h}"),
        (Change::Unblock, false) => format!("{h} is not blocked"),
    };
    eprintln!("{msg}");
    Ok(())
}
