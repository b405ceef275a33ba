//! `carnet key ls`, `carnet key add --recovery`, `carnet passphrase`: the keys that open the
//! vault. The recovery key's secret goes to the user once (a 0600 file, or the terminal).

use std::io::{IsTerminal, Write};

use age::secrecy::SecretString;
use anyhow::Context;
use zeroize::Zeroizing;

use super::Ctx;
use super::args::{JsonArg, KeyAddArgs, KeyCommand};
use super::ui;
use crate::error::Error;
use crate::ops::keys;

pub fn run(ctx: &Ctx, c: KeyCommand) -> anyhow::Result<()> {
    match c {
        KeyCommand::Ls(a) => list(ctx, a),
        KeyCommand::Add(a) => add(ctx, a),
    }
}

fn list(ctx: &Ctx, a: JsonArg) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let _lock = crate::fsutil::Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(&ctx.keys)?;
    let views = keys::list(&vault, &snap.root);
    if a.json {
        return super::print_json(&views);
    }
    let mut out = std::io::stdout().lock();
    for k in &views {
        writeln!(
            out,
            "{:<9} {:<20} {} {}{}",
            k.role,
            ui::clean(&k.name),
            k.kind,
            k.recipient,
            match (k.kept, k.added_at) {
                (Some(kept), _) => format!("  ({kept})"),
                (None, Some(t)) => format!("  (added {})", crate::dates::show_local(t)),
                _ => String::new(),
            }
        )?;
    }
    Ok(())
}

fn add(ctx: &Ctx, a: KeyAddArgs) -> anyhow::Result<()> {
    let name = a
        .name
        .as_deref()
        .map(str::trim)
        .unwrap_or("recovery")
        .to_string();
    if name.is_empty() {
        return Err(Error::input("the key's name is empty", "give --name a word").into());
    }
    if let Some(out) = &a.output
        && std::fs::symlink_metadata(out).is_ok()
    {
        return Err(Error::input(
            format!("{} already exists", out.display()),
            "choose a new file: a key is never written over another file",
        )
        .into());
    }
    if a.output.is_none() && !a.json && std::io::stdout().is_terminal() {
        eprintln!(
            "The recovery key follows. Print it or copy it somewhere offline now: it is shown once."
        );
    }
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let made = keys::add_recovery(&vault, keys, &name, ctx.now)?;
    super::print_notices(&made.notices);
    let written = match &a.output {
        Some(path) => {
            let mut f = crate::fsutil::create_new_private(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            f.write_all(made.identity_file.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| {
                    format!(
                        "the recovery key is added to the vault but could not be written to {}: \
                         remove it with `carnet key rm` once that exists, or add another",
                        path.display()
                    )
                })?;
            Some(path.display().to_string())
        }
        None => None,
    };
    if a.json {
        let identity = if written.is_none() {
            Some(made.identity_file.as_str())
        } else {
            None
        };
        return super::print_json(&serde_json::json!({
            "role": "recovery",
            "name": made.slot.name,
            "recipient": made.slot.recipient,
            "file": written,
            "identity": identity,
        }));
    }
    match written {
        Some(path) => eprintln!(
            "Wrote the recovery key to {path} (0600). Print it, store it offline away from the \
             vault, then delete the file. It opens the vault: carnet -i {path} ls"
        ),
        None => {
            print!("{}", made.identity_file.as_str());
            eprintln!(
                "Store this recovery key offline, away from the vault. It opens the vault: save \
                 it to a file and run carnet -i FILE ls"
            );
        }
    }
    Ok(())
}

/// The new passphrase: `CARNET_NEW_PASSPHRASE`, or the terminal (twice).
fn new_passphrase() -> anyhow::Result<SecretString> {
    let pass = match std::env::var("CARNET_NEW_PASSPHRASE") {
        Ok(p) => Zeroizing::new(p),
        Err(_) => {
            if !std::io::stdin().is_terminal() {
                return Err(Error::input(
                    "a new passphrase is needed and there is no terminal to ask for it",
                    "set CARNET_NEW_PASSPHRASE",
                )
                .into());
            }
            let first = Zeroizing::new(
                rpassword::prompt_password("New passphrase: ")
                    .context("cannot read the passphrase")?,
            );
            let second = Zeroizing::new(
                rpassword::prompt_password("Confirm new passphrase: ")
                    .context("cannot read the passphrase")?,
            );
            if *first != *second {
                return Err(Error::input(
                    "the two passphrases differ",
                    "run the command again and type the same passphrase twice",
                )
                .into());
            }
            first
        }
    };
    if pass.trim().is_empty() {
        return Err(Error::EmptyPassphrase.into());
    }
    if pass.chars().count() < 12 {
        eprintln!(
            "warning: this passphrase is short; anyone holding a copy of the vault can try \
             guesses offline. Several words (e.g. four random ones) are much stronger."
        );
    }
    Ok(SecretString::from(pass.as_str()))
}

pub fn passphrase(ctx: &Ctx, a: JsonArg) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    if vault.config.key != crate::config::KeyMode::Passphrase {
        return Err(Error::input(
            "this vault is opened with an identity file, not a passphrase",
            "keep that file safe; add a second key with `carnet key add --recovery`",
        )
        .into());
    }
    let keys = vault.unlock(&ctx.keys)?;
    let new = new_passphrase()?;
    let notices = keys::change_passphrase(&vault, keys, new, super::scrypt_log_n(), ctx.now)?;
    super::print_notices(&notices);
    if a.json {
        return super::print_json(&serde_json::json!({ "changed": true }));
    }
    eprintln!("The vault passphrase is changed. Backups made before still open with the old one.");
    Ok(())
}
