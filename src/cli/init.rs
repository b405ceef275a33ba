//! `carnet init`: create a vault, with a new passphrase-protected identity or an external one.

use super::Ctx;
use super::args::InitArgs;
use crate::catalog::Root;
use crate::error::Error;
use crate::ids;
use crate::keys::{self, Unlocked};
use crate::manifest::Patient;
use crate::nir::Nir;
use crate::vault::{Config, KeyMode, Vault};

pub fn run(ctx: &Ctx, a: InitArgs) -> anyhow::Result<()> {
    let dir = &ctx.vault_dir;
    // Check everything the user typed before asking for a passphrase or touching the disk.
    let nir = a.nir.as_deref().map(str::parse::<Nir>).transpose()?;
    let name = a
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if Vault::is_vault(dir) {
        return Err(Error::VaultExists(dir.clone()).into());
    }
    if !crate::vault::is_fresh_dir(dir)? {
        return Err(Error::NotEmpty(dir.clone()).into());
    }

    let (key_mode, unlocked, identity_file) = match &ctx.keys.identity {
        Some(path) => {
            let ids = keys::load_identity_path(path, &ctx.keys.passphrase)?;
            (KeyMode::External, Unlocked::patient(ids), None)
        }
        None => {
            let pass = ctx.keys.passphrase.get("New vault passphrase: ", true)?;
            let (id, text) = keys::new_identity_file();
            let sealed =
                keys::encrypt_with_passphrase(text.as_bytes(), pass, super::scrypt_log_n())?;
            (
                KeyMode::Passphrase,
                Unlocked::patient(vec![id]),
                Some(sealed),
            )
        }
    };
    let recipients = unlocked.recipients();
    let vault_id = ids::random_id();
    let config = Config {
        format: crate::FORMAT_VERSION,
        vault_id: vault_id.clone(),
        key: key_mode,
        recipients: recipients.clone(),
        // Set by Vault::create, which makes the keyring.
        signing_key: String::new(),
    };
    let patient = Patient {
        name,
        nir: nir.map(|n| n.as_str().to_string()),
    };
    let mut manifest = Root::new(vault_id, recipients.clone(), patient);
    let vault = Vault::create(
        dir,
        config,
        identity_file.as_deref(),
        &mut manifest,
        &unlocked,
        ctx.now,
    )?;
    let fingerprint = vault.fingerprint()?;
    if a.json {
        return super::print_json(&serde_json::json!({
            "vault": dir.display().to_string(),
            "fingerprint": fingerprint,
            "recipients": recipients,
            "key_mode": key_mode,
            "identity_file": match key_mode {
                KeyMode::Passphrase => Some(dir.join(crate::vault::IDENTITY)),
                KeyMode::External => ctx.keys.identity.clone(),
            }
            .map(|p| p.display().to_string()),
        }));
    }

    eprintln!("Created a vault in {}", dir.display());
    eprintln!("Public key: {}", recipients.join(", "));
    eprintln!(
        "Signing key fingerprint (professionals check your grants against it): {fingerprint}"
    );
    match key_mode {
        KeyMode::Passphrase => eprintln!(
            "Your identity is in {}, protected by your passphrase. Without the passphrase \
             nothing can be recovered: write it down somewhere safe.",
            dir.join(crate::vault::IDENTITY).display()
        ),
        KeyMode::External => eprintln!(
            "Open it with -i {} (or CARNET_IDENTITY). Keep that file safe: it is the only key.",
            ctx.keys
                .identity
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    }
    Ok(())
}
