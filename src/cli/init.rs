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

    if let Some(out) = &a.recovery {
        super::keys::check_new_key_file(out, dir, "--recovery ~/recovery.key")?;
    }
    // The patient's key when it is not the vault's identity: an SSH or hardware key, which opens
    // its slot (kind, recipient).
    let mut patient_key: Option<(keys::KeyKind, String)> = None;
    let mut opening: Option<keys::AnyIdentity> = None;
    let (key_mode, unlocked, identity_file) = match &ctx.keys.identity {
        Some(path) => match keys::load_opening_key(path, &ctx.keys.passphrase)? {
            keys::OpeningKey::X25519(ids) => (KeyMode::External, Unlocked::patient(ids), None),
            keys::OpeningKey::Other(any) => {
                let (Some(kind), Some(recipient)) = (any.kinds.first(), any.recipients.first())
                else {
                    return Err(Error::input(
                        format!("{} does not say which public key it is", path.display()),
                        "add the plugin's recipient to the file as a comment: # recipient: age1…",
                    )
                    .into());
                };
                if matches!(kind, keys::KeyKind::Plugin(_)) && a.recovery.is_none() {
                    return Err(Error::input(
                        "a hardware key cannot be copied: lost or broken, it would take the record with it",
                        "add a recovery key kept offline: --recovery FILE",
                    )
                    .into());
                }
                patient_key = Some((kind.clone(), recipient.clone()));
                opening = Some(any);
                let (id, _) = keys::new_identity_file();
                (KeyMode::External, Unlocked::patient(vec![id]), None)
            }
        },
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
    manifest.requires = crate::catalog::FEATURES
        .iter()
        .map(|f| f.to_string())
        .collect();
    let vault_identity = &unlocked.identities[0];
    let mut sealed = Vec::new();
    if let Some((_, recipient)) = &patient_key {
        let (slot, bytes) = crate::slots::make(
            vault_identity,
            crate::slots::Role::Patient,
            "patient",
            recipient,
            ctx.now,
        )?;
        // The recipient of a plugin key comes from a comment in its file: a vault is only made
        // once the key has opened its own slot.
        let opens = opening
            .as_ref()
            .and_then(|any| crate::slots::open(&bytes, &any.as_dyn()))
            .is_some_and(|ids| {
                ids.first().map(|i| i.to_public()) == Some(vault_identity.to_public())
            });
        if !opens {
            return Err(Error::input(
                format!(
                    "{} does not open what is sealed to the recipient it names",
                    ctx.keys
                        .identity
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
                "check the `# recipient:` line of the identity file (the plugin prints it)",
            )
            .into());
        }
        sealed.push((slot.object.clone(), bytes));
        manifest.slots.push(slot);
    }
    let recovery = match &a.recovery {
        Some(_) => {
            let (key, text) = keys::new_identity_file();
            let (slot, bytes) = crate::slots::make(
                vault_identity,
                crate::slots::Role::Recovery,
                "recovery",
                &key.to_public().to_string(),
                ctx.now,
            )?;
            sealed.push((slot.object.clone(), bytes));
            manifest.slots.push(slot);
            Some(text)
        }
        None => None,
    };
    // The recovery key is written before the vault exists: a vault whose only copyable key
    // failed to reach the disk must not be made.
    if let (Some(out), Some(text)) = (&a.recovery, &recovery) {
        super::keys::write_key_file(out, text)?;
    }
    let vault = Vault::create(
        dir,
        config,
        identity_file.as_deref(),
        &mut manifest,
        &sealed,
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
    if let Some((kind, _)) = &patient_key {
        eprintln!("Your {kind} key opens the vault through its own key slot.");
    }
    if let Some(out) = &a.recovery {
        eprintln!(
            "Wrote a recovery key to {} (0600): print it, store it offline away from the vault, then delete the file.",
            out.display()
        );
    }
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
            "Open it with -i {} (or CARNET_IDENTITY). Keep that file safe{}",
            ctx.keys
                .identity
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            if a.recovery.is_some() {
                "; the recovery key opens the vault too."
            } else {
                ": it is the only key."
            }
        ),
    }
    Ok(())
}
