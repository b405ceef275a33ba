//! `carnet deposit`: the professional's side of a deposit. The arguments resolved (category,
//! date, the key and card), `ops::deposit`, and what was written printed.

use std::path::PathBuf;

use super::Ctx;
use super::args::DepositArgs;
use super::ui;
use crate::category;
use crate::dates;
use crate::error::Error;
use crate::keys;
use crate::ops::deposit;

pub fn run(ctx: &Ctx, a: DepositArgs) -> anyhow::Result<()> {
    let Some(key_path) = &ctx.keys.identity else {
        return Err(Error::input(
            "no key given",
            "pass your key file with -i KEYFILE (or CARNET_IDENTITY), as made by `carnet keygen`",
        )
        .into());
    };
    let title = a.title.map(|s| s.trim().to_string());
    if title.as_deref() == Some("") {
        return Err(Error::input(
            "the title is empty",
            "give a title, or leave --title out to use the file name",
        )
        .into());
    }
    let note = a
        .note
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let req = deposit::Request {
        to: a.to,
        files: a.files,
        card: a.card.unwrap_or_else(|| default_card(key_path)),
        title,
        category: a.category.as_deref().map(category::parse).transpose()?,
        date: a.date.as_deref().map(dates::parse_date).transpose()?,
        note,
        output: a.output,
        force: a.force,
    };
    if !req.to.is_file() {
        return Err(Error::input(
            format!("{} is not a file", req.to.display()),
            "give the patient's card (they make it with `carnet card -o FILE`)",
        )
        .into());
    }
    if !req.card.is_file() {
        return Err(Error::input(
            format!("your contact card {} is not there", req.card.display()),
            "give the card `carnet keygen` wrote with --card FILE",
        )
        .into());
    }
    let key = keys::load_pro_key(key_path, &ctx.keys.passphrase)?;
    let bar = std::cell::OnceCell::new();
    let progress = |n: u64, total: u64| {
        if total >= ui::BIG_FILE {
            bar.get_or_init(|| ui::bytes_bar(total, "Sealing"))
                .set_position(n);
        }
    };
    let done = deposit::deposit(&req, &key, ctx.now, &progress)?;
    if let Some(b) = bar.get() {
        b.finish_and_clear();
    }
    if a.json {
        return super::print_json(&done);
    }
    crate::outln!("{}", done.id);
    eprintln!(
        "Deposited {} document(s) for {} in {}.",
        done.documents.len(),
        ui::clean(done.patient.as_deref().unwrap_or("the patient")),
        done.output
    );
    eprintln!(
        "Encrypted to the vault of key {}: check it with the patient; they add it with `carnet receive`.",
        done.patient_fingerprint
    );
    Ok(())
}

/// The card `carnet keygen` writes beside the key: KEYFILE with `.card.toml`.
fn default_card(key: &std::path::Path) -> PathBuf {
    key.with_extension("card.toml")
}
