//! `carnet unlock` and `carnet lock`: the vault's key checked once and kept in the operating
//! system's secret store for a while (`session`), then forgotten. Neither is logged: unlocking
//! opens no document (like `ls`, it only proves the key), and a log entry could not say more
//! than "the passphrase was typed", which every later command's own entry already implies.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::error::Error;
use crate::session::{MAX_FOR, Session, Source};
use crate::vault::{KeyOpts, Vault};

/// What `unlock` did, for the CLI to report.
#[derive(Debug, Serialize)]
pub struct Unlocked {
    pub vault_id: String,
    /// Who the commands are logged as meanwhile (`patient`, `recovery`).
    pub actor: String,
    pub expires: Timestamp,
}

/// Checks `keys` against the whole vault (identity, keyring binding, head and manifest, as
/// every read does) and keeps the identity that opens it in `session` for `duration`. The key
/// already kept, if any, is not used: unlocking again asks for the passphrase again.
pub fn unlock(
    vault: &Vault,
    keys: &KeyOpts,
    session: &Session,
    duration: SignedDuration,
) -> anyhow::Result<Unlocked> {
    // Refused before the passphrase is asked, not after scrypt.
    if duration <= SignedDuration::ZERO || duration > MAX_FOR {
        return Err(Error::input(
            "an unlock lasts from one second to 24 hours",
            "give --for a duration such as 15m or 8h",
        )
        .into());
    }
    // Whole seconds: what is shown and stored, and what the kernel's timeout counts in.
    let expires = session
        .now()
        .checked_add(duration)
        .and_then(|t| Timestamp::from_second(t.as_second()))
        .map_err(|_| Error::input("--for ends past the year 9999", "give a shorter --for"))?;
    let checked = KeyOpts {
        session: None,
        ..keys.clone()
    };
    let unlocked = vault.unlock(&checked)?;
    let identity = unlocked
        .identities
        .iter()
        .find(|i| vault.config.recipients.contains(&i.to_public().to_string()))
        .cloned()
        .ok_or_else(|| Error::Integrity("no identity given opens this vault".into()))?;
    // Everything a read checks: a key whose keyring binding or head fails is not kept. The
    // actor is the snapshot's: a slot's key acts in the role the root gives it.
    let snap = vault.snapshot(unlocked)?;
    let actor = snap.keys.actor.clone();
    session.store(
        &vault.config,
        (&identity, snap.keys.sealed.as_ref()),
        &actor,
        snap.keys.slot.as_deref(),
        &Source::of(keys.identity.as_deref()),
        expires,
    )?;
    Ok(Unlocked {
        vault_id: vault.config.vault_id.clone(),
        actor: actor.as_string(),
        expires,
    })
}

/// Forgets the key `unlock` kept for this vault; whether there was one.
pub fn lock(vault: &Vault, session: &Session) -> anyhow::Result<bool> {
    session.remove(&vault.config.vault_id)
}
