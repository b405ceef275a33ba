//! `carnet key ls`, `carnet key add --recovery`, `carnet passphrase`: the keys that open the
//! vault. The recovery key's secret goes to the user once (a 0600 file, or the terminal).

use std::io::{IsTerminal, Write};

use age::secrecy::SecretString;
use anyhow::Context;
use zeroize::Zeroizing;

use super::Ctx;
use super::args::{JsonArg, KeyAddArgs, KeyCommand, RekeyArgs};
use super::ui;
use crate::error::Error;
use crate::ops::keys;

pub fn run(ctx: &Ctx, c: KeyCommand) -> anyhow::Result<()> {
    match c {
        KeyCommand::Ls(a) => list(ctx, a),
        KeyCommand::Add(a) => add(ctx, a),
        KeyCommand::Rm(a) => rekey(ctx, Some(&a.name), a.rekey),
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
    if name.is_empty() || name.chars().any(|c| c.is_control() || c == ':') {
        return Err(Error::input(
            "the key's name is empty or holds a control character or ':'",
            "give --name a word",
        )
        .into());
    }
    if a.guardian {
        return add_guardian(ctx, &a, name);
    }
    if let Some(out) = &a.output {
        check_new_key_file(out, &ctx.vault_dir, "-o ~/recovery.key")?;
    }
    if a.output.is_none() && !a.json && std::io::stdout().is_terminal() {
        eprintln!(
            "The recovery key follows. Print it or copy it somewhere offline now: it is shown once."
        );
    }
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let made = keys::add(
        &vault,
        keys,
        keys::NewSlot::Recovery,
        &name,
        super::scrypt_log_n(),
        ctx.now,
    )?;
    super::print_notices(&made.notices);
    let identity_file = made
        .identity_file
        .ok_or_else(|| anyhow::anyhow!("no recovery key was made"))?;
    let written = match &a.output {
        Some(path) => {
            write_key_file(path, &identity_file).with_context(|| {
                format!(
                    "the recovery key is added to the vault but could not be written to {}: \
                     remove it with `carnet key rm {}` and add another",
                    path.display(),
                    made.slot.name
                )
            })?;
            Some(path.display().to_string())
        }
        None => None,
    };
    if a.json {
        let identity = if written.is_none() {
            Some(identity_file.as_str())
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
            print!("{}", identity_file.as_str());
            eprintln!(
                "Store this recovery key offline, away from the vault. It opens the vault: save \
                 it to a file and run carnet -i FILE ls"
            );
        }
    }
    Ok(())
}

fn add_guardian(ctx: &Ctx, a: &KeyAddArgs, name: String) -> anyhow::Result<()> {
    let recipient = match (&a.card, &a.recipient) {
        (Some(card), _) => crate::ops::pro::read_card(card)?.recipient,
        (None, Some(r)) => r.clone(),
        (None, None) => {
            return Err(Error::input(
                "a guardian needs their key",
                "give --card FILE (from `carnet keygen --card`) or --recipient age1…",
            )
            .into());
        }
    };
    // Checked before any key is asked for.
    crate::pro::check_recipient(&recipient)?;
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let made = keys::add(
        &vault,
        keys,
        keys::NewSlot::Guardian { recipient },
        &name,
        super::scrypt_log_n(),
        ctx.now,
    )?;
    super::print_notices(&made.notices);
    if a.json {
        return super::print_json(&serde_json::json!({
            "role": "guardian",
            "name": made.slot.name,
            "recipient": made.slot.recipient,
        }));
    }
    eprintln!(
        "Added the guardian {:?}: they open the vault with their own key (carnet -i THEIR_KEY ls), \
         and the log names them guardian:{}.",
        ui::clean(&made.slot.name),
        ui::clean(&made.slot.name)
    );
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

/// `carnet key rm NAME` and `carnet rekey`: the vault re-encrypted for a new identity.
pub fn rekey(ctx: &Ctx, remove: Option<&str>, a: RekeyArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let external = vault.config.key == crate::config::KeyMode::External;
    match (&a.output, external) {
        (Some(_), false) => {
            return Err(Error::input(
                "-o is for vaults opened with an identity file; this one keeps its key under your passphrase",
                "drop -o: the passphrase stays the same",
            )
            .into());
        }
        (Some(out), true) => check_new_key_file(out, &vault.dir, "-o ~/carnet.key")?,
        _ => {}
    }
    // Not from an unlocked session: the passphrase that seals the new vault identity is the
    // one typed now (checked by opening identity.age), never a new one chosen by mistake.
    let mut keys = vault.unlock(&crate::vault::KeyOpts {
        session: None,
        ..ctx.keys.clone()
    })?;
    let mut new_passphrase_asked = false;
    let new_key = if external {
        crate::ops::rekey::NewKey::External {
            keep: a.output.clone().map(|out| -> crate::ops::rekey::Keeper {
                Box::new(move |text: &str| write_key_file(&out, text))
            }),
        }
    } else {
        let kept = keys.passphrase.take();
        new_passphrase_asked = kept.is_none();
        let json = a.json;
        crate::ops::rekey::NewKey::Passphrase {
            get: Box::new(move || match kept {
                Some(p) => Ok(p),
                // Opened with the recovery key: the lost passphrase is replaced here too.
                None => {
                    if !json {
                        eprintln!(
                            "The vault was opened without its passphrase: choose one for the new vault key."
                        );
                    }
                    new_passphrase()
                }
            }),
            log_n: super::scrypt_log_n(),
        }
    };
    let bar = std::cell::OnceCell::new();
    let progress = |done: u64, total: u64| {
        bar.get_or_init(|| ui::bytes_bar(total, "re-encrypting"))
            .set_position(done);
    };
    // The crash tests' hook, in debug builds only: a release carnet never kills itself.
    let kill_at = std::env::var("CARNET_TEST_KILL_AT")
        .ok()
        .filter(|_| cfg!(debug_assertions))
        .and_then(|v| v.parse().ok());
    let report = crate::ops::rekey::rekey(
        &vault,
        keys,
        crate::ops::rekey::Request {
            remove,
            new_key,
            progress: &progress,
            kill_at,
        },
        ctx.now,
    )?;
    if let Some(b) = bar.get() {
        b.finish_and_clear();
    }
    // A kept key (`carnet unlock`) is the old vault identity: after a suspected leak it must
    // not wait for its timeout.
    if let Some(s) = &ctx.keys.session {
        let _ = s.remove(&vault.config.vault_id);
    }
    super::print_notices(&report.notices);
    if a.json {
        return super::print_json(&report);
    }
    let what = match &report.removed {
        Some(r) => format!(
            "Removed the {} key {:?}; re-encrypted",
            serde_json::to_value(r.role)?.as_str().unwrap_or("?"),
            ui::clean(&r.name)
        ),
        None => "Re-encrypted".to_string(),
    };
    eprintln!(
        "{what} {} objects and {} log segment{} for a new vault key ({}).",
        report.objects,
        report.segments,
        if report.segments == 1 { "" } else { "s" },
        report.recipient
    );
    match &a.output {
        Some(out) => eprintln!(
            "The new identity is in {} (0600): use it with -i from now on; the old one opens nothing the vault holds.",
            out.display()
        ),
        None if new_passphrase_asked => eprintln!(
            "The vault now opens with the new passphrase you chose. Backups made before still open with the old keys."
        ),
        None if external => eprintln!(
            "Your key still opens the vault. Backups made before still open with the old keys."
        ),
        None => eprintln!(
            "Your passphrase is unchanged. Backups made before still open with the old keys."
        ),
    }
    Ok(())
}

/// Refuses a file to write a key to that exists (a key is never written over another file) or
/// lies inside the vault it opens; `example` is the option as the hint shows it.
pub fn check_new_key_file(
    out: &std::path::Path,
    vault_dir: &std::path::Path,
    example: &str,
) -> anyhow::Result<()> {
    if crate::fsutil::would_be_inside(out, vault_dir) {
        return Err(Error::input(
            format!("{} is inside the vault folder", out.display()),
            format!("write the key outside the vault (it opens it): {example}"),
        )
        .into());
    }
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::input(
            format!("{} already exists", out.display()),
            "choose a new file: a key is never written over another file",
        )
        .into());
    }
    Ok(())
}

/// Writes a key file the user asked for: created new (0600), flushed, its folder flushed.
pub fn write_key_file(out: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let mut f = crate::fsutil::create_new_private(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    crate::fsutil::sync_dir(crate::fsutil::parent_dir(out))
        .with_context(|| format!("cannot flush {}", out.display()))
}
