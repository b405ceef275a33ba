//! `carnet cat`: stream a document's plaintext to stdout, checking its hash on the way.

use std::io::IsTerminal;

use super::Ctx;
use super::args::CatArgs;
use crate::error::Error;
use crate::media;
use crate::ops::view;

pub fn run(ctx: &Ctx, a: CatArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let stdout = std::io::stdout();
    let to_terminal = stdout.is_terminal();
    let content = view::cat(&vault, keys, &a.id, a.version, ctx.now, |d| {
        if !a.force && !media::is_text(&d.media_type) && to_terminal {
            return Err(Error::input(
                format!(
                    "{} is binary ({}); it would garble the terminal",
                    d.title, d.media_type
                ),
                format!(
                    "redirect it to a file (carnet cat {} > file), use `carnet export`, or pass --force",
                    crate::ids::short(&d.id)
                ),
            ));
        }
        Ok(())
    })?;
    super::print_notices(&content.notices);
    content.copy_to(&mut stdout.lock())?;
    Ok(())
}
