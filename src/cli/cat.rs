//! `carnet cat`: stream a document's plaintext to stdout, checking its hash on the way.

use std::io::{IsTerminal, Write};

use super::Ctx;
use super::args::CatArgs;
use crate::crypto::{self, OpenError};
use crate::error::Error;
use crate::media;
use crate::txn::Op;

pub fn run(ctx: &Ctx, a: CatArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let snap = vault.read(&ctx.keys)?;
    let d = snap.resolve(&vault, &a.id)?;
    let id = d.id.clone();
    let stdout = std::io::stdout();
    if !a.force && !media::is_text(&d.media_type) && stdout.is_terminal() {
        return Err(Error::input(
            format!("{} is binary ({}); it would garble the terminal", d.title, d.media_type),
            format!("redirect it to a file (carnet cat {} > file), use `carnet export`, or pass --force", crate::ids::short(&d.id)),
        )
        .into());
    }
    // The view is logged before any byte is released: an access is never left untraced.
    let done = vault.begin(snap.keys, ctx.now)?.commit(
        Op::new(crate::domain::Action::View)
            .documents(vec![id.clone()])
            .detail("what", "content"),
    )?;
    super::print_notices(&done.notices);
    let snap = done.snap;
    let Some(d) = snap.document(&vault, &id)? else {
        return Err(Error::UnknownId(a.id).into());
    };
    // Anyone can encrypt to the vault's public key: an object swapped for another of the same
    // size would decrypt and stream before its plaintext hash is checked at the end. Checking
    // the ciphertext first means no foreign byte reaches stdout.
    let reader = vault.open_object_checked(&d, &snap.keys, true)?;
    let mut out = crypto::HashingWriter::new(stdout.lock());
    crypto::copy_plain(reader, &mut out, &|_| {}).map_err(|e| match e {
        OpenError::Io(e) => anyhow::Error::from(e),
        e => Error::Integrity(format!("{}: {e}", vault.object_path(&d.object).display())).into(),
    })?;
    out.flush()?;
    if out.finish().1 != d.sha256 {
        return Err(
            Error::Integrity(format!("{} does not match its recorded SHA-256", d.title)).into(),
        );
    }
    Ok(())
}
