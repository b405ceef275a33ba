//! `carnet revoke`: `ops::revoke`, and what a revocation can and cannot do, said plainly.

use super::Ctx;
use super::args::RevokeArgs;
use crate::dates;
use crate::ids;

pub fn run(ctx: &Ctx, a: RevokeArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let done = crate::ops::revoke::revoke(&vault, keys, &a.id, ctx.now)?;
    super::print_notices(&done.notices);
    if a.json {
        return super::print_json(&done);
    }
    if !done.changed {
        eprintln!(
            "grant {} was already revoked on {}",
            ids::short(&done.id),
            dates::show_local(done.revoked_at)
        );
        return Ok(());
    }
    eprintln!(
        "Revoked grant {} (to {}). This is recorded in your access log. A copy already sent or \
         opened cannot be recalled: carnet has no server to take it back. Tell the professional \
         that your consent is withdrawn.",
        ids::short(&done.id),
        done.to.join(", ")
    );
    Ok(())
}
