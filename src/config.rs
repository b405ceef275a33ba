//! `carnet.toml`: the vault's plaintext config (public data only), and how it is written.

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    /// The identity lives in `identity.age`, protected by the patient's passphrase.
    Passphrase,
    /// The identity lives outside the vault and is given with `-i FILE`.
    External,
}

/// `carnet.toml`. Holds nothing private: recipients are public keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub format: u32,
    pub vault_id: String,
    pub key: KeyMode,
    pub recipients: Vec<String>,
    /// The vault's signing key (minisign format): checks the signed index without the key.
    pub signing_key: String,
}

/// The exact text of `carnet.toml` for `config` (the head authenticates these bytes).
pub fn text(config: &Config) -> anyhow::Result<String> {
    Ok(format!(
        "# carnet vault: see FORMAT.md. Public data only; everything else is encrypted.\n{}",
        toml::to_string(config).context("cannot encode the config")?
    ))
}
