//! `carnet close` and `carnet reopen`: `ops::closure`, and the record's state printed.

use super::Ctx;
use super::args::{CloseArgs, JsonArg};
use super::ui;
use crate::dates;
use crate::ops::closure;

pub fn close(ctx: &Ctx, a: CloseArgs) -> anyhow::Result<()> {
    let reason = a
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let state = closure::close(&vault, keys, reason, ctx.now)?;
    super::print_notices(&state.notices);
    if a.json {
        return super::print_json(&state);
    }
    let since = state.closed_at.map(dates::show_local).unwrap_or_default();
    if state.changed {
        eprintln!(
            "Closed the record on {since}: it is read-only until `carnet reopen`. Reading, \
             export, backup and verify still work."
        );
    } else {
        eprintln!(
            "the record is already closed, since {since}{}",
            state
                .reason
                .as_deref()
                .map(|r| format!(" ({})", ui::clean(r)))
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub fn reopen(ctx: &Ctx, a: JsonArg) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let state = closure::reopen(&vault, keys, ctx.now)?;
    super::print_notices(&state.notices);
    if a.json {
        return super::print_json(&state);
    }
    if state.changed {
        eprintln!(
            "Reopened the record (closed since {}): it can be changed again.",
            state.closed_at.map(dates::show_local).unwrap_or_default()
        );
    } else {
        eprintln!("the record is not closed");
    }
    Ok(())
}
