//! `carnet keygen`: a professional's age identity (with a signing key) and contact card.

use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use anyhow::Context;
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use super::Ctx;
use super::args::KeygenArgs;
use crate::error::Error;
use crate::fsutil;
use crate::keys;
use crate::pro::{self, Card};
use crate::sign;

pub fn run(ctx: &Ctx, a: KeygenArgs) -> anyhow::Result<()> {
    let name = a.name.trim().to_string();
    if name.is_empty() {
        return Err(Error::input(
            "the name is empty",
            "give the name patients know you by, e.g. \"Dr Jeanne Martin\"",
        )
        .into());
    }
    let rpps = a
        .rpps
        .as_deref()
        .map(super::rpps_with_warning)
        .transpose()?;
    let adeli = a.adeli.as_deref().map(pro::check_adeli).transpose()?;
    let card_path = a
        .card
        .clone()
        .unwrap_or_else(|| default_card_path(&a.output));
    for p in [&a.output, &card_path] {
        if p.exists() {
            return Err(Error::input(
                format!("{} already exists", p.display()),
                "keys are never overwritten: choose another path or move the old file away",
            )
            .into());
        }
    }

    let id = age::x25519::Identity::generate();
    let signing = SigningKey::from_bytes(&rand::random());
    let verifying = signing.verifying_key();
    // The signing key rides in a comment line: the age CLI ignores it, so the file stays a
    // standard identity file, and it shares the identity's passphrase protection.
    let text = Zeroizing::new(format!(
        "# carnet professional identity: {name}\n# created: {}\n# public key: {}\n# carnet-signing-key: {}\n{}\n",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        id.to_public(),
        hex::encode(signing.to_bytes()),
        id.to_string().expose_secret()
    ));
    let bytes: Zeroizing<Vec<u8>> = if a.unprotected {
        Zeroizing::new(text.as_bytes().to_vec())
    } else {
        let pass = ctx
            .keys
            .passphrase
            .get("Passphrase for the new key: ", true)?;
        Zeroizing::new(keys::encrypt_with_passphrase(
            text.as_bytes(),
            pass,
            super::scrypt_log_n(),
        )?)
    };
    write_new(&a.output, &bytes)?;

    let card = Card {
        carnet_card: 1,
        name: name.clone(),
        rpps,
        adeli,
        profession: a.profession.clone(),
        specialty: a.specialty.clone(),
        recipient: id.to_public().to_string(),
        signing_key: Some(sign::encode_public(&verifying)),
        fingerprint: Some(crate::keyring::fingerprint(&verifying)),
    };
    let card_text = format!(
        "# carnet contact card: send it to your patients (it holds only public keys)\n{}",
        toml::to_string(&card).context("cannot encode the card")?
    );
    if let Err(e) = write_new(&card_path, card_text.as_bytes()) {
        // Half a key pair is useless: take the key back so the command can simply be re-run.
        let _ = std::fs::remove_file(&a.output);
        return Err(e);
    }
    if a.json {
        return super::print_json(&serde_json::json!({
            "recipient": card.recipient,
            "fingerprint": card.fingerprint,
            "key_file": a.output.display().to_string(),
            "card_file": card_path.display().to_string(),
            "protected": !a.unprotected,
        }));
    }
    eprintln!(
        "Wrote your key to {} ({}) and your contact card to {}.",
        a.output.display(),
        if a.unprotected {
            "not protected: keep it private"
        } else {
            "protected by your passphrase"
        },
        card_path.display()
    );
    eprintln!(
        "Send the card to your patients; open their bundles with `carnet open FILE -i {}`.",
        a.output.display()
    );
    crate::outln!("{}", id.to_public());
    Ok(())
}

fn default_card_path(key: &Path) -> PathBuf {
    key.with_extension("card.toml")
}

/// Writes a new private file atomically (never half a key on disk), refusing to replace one.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = fsutil::parent_dir(path);
    let mut tmp = fsutil::private_tempfile(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    fsutil::persist(tmp, path, false)
}
