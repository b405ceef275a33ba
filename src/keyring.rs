//! The vault's secret keys (`keys.age`): a MAC key that authenticates the log and the head,
//! and an Ed25519 key that signs what the patient shares.
//!
//! Anyone can encrypt to a public age key, so decrypting `keys.age` proves nothing by itself.
//! Each identity that opens the vault therefore holds a *binding*: an HMAC over the keys, under
//! a key derived (HKDF-SHA256) from that identity's own secret. A keyring written by someone
//! who only knows the public recipient has no valid binding and is refused.

use std::collections::BTreeMap;

use age::secrecy::ExposeSecret;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Mac, digest::KeyInit};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto;
use crate::error::Error;
use crate::keys::Unlocked;

type HmacSha256 = hmac::Hmac<Sha256>;

const BINDING_SALT: &[u8] = b"carnet keyring binding v1";
const MAX_KEYRING: u64 = 1 << 20;

pub struct Keyring {
    mac_key: Zeroizing<[u8; 32]>,
    signing: SigningKey,
}

#[derive(Serialize, Deserialize)]
struct KeyringFile {
    format: u32,
    vault_id: String,
    mac_key: String,
    signing_key: String,
    /// Recipient (`age1…`) → hex HMAC binding, for every identity that opens the vault.
    bindings: BTreeMap<String, String>,
}

impl Keyring {
    pub fn generate() -> Keyring {
        Keyring {
            mac_key: Zeroizing::new(rand::random()),
            signing: SigningKey::from_bytes(&rand::random()),
        }
    }

    fn binding_message(&self, vault_id: &str) -> Zeroizing<Vec<u8>> {
        let mut m = Zeroizing::new(Vec::with_capacity(128));
        m.extend_from_slice(b"carnet-keyring-v1\0");
        m.extend_from_slice(vault_id.as_bytes());
        m.push(0);
        m.extend_from_slice(&self.mac_key[..]);
        m.extend_from_slice(&self.signing.to_bytes());
        m
    }

    fn binding_mac(identity: &age::x25519::Identity, vault_id: &str) -> HmacSha256 {
        let secret = identity.to_string();
        let hk = hkdf::Hkdf::<Sha256>::new(Some(BINDING_SALT), secret.expose_secret().as_bytes());
        let mut k = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit, so expand cannot fail.
        let _ = hk.expand(vault_id.as_bytes(), &mut k[..]);
        <HmacSha256 as KeyInit>::new_from_slice(&k[..]).expect("HMAC takes any key length")
    }

    /// Encrypts the keyring to `recipients`, bound to every identity in `keys`.
    pub fn seal(
        &self,
        vault_id: &str,
        keys: &Unlocked,
        recipients: &[age::x25519::Recipient],
    ) -> anyhow::Result<Vec<u8>> {
        let msg = self.binding_message(vault_id);
        let mut bindings = BTreeMap::new();
        for id in &keys.identities {
            let mut mac = Self::binding_mac(id, vault_id);
            mac.update(&msg);
            bindings.insert(
                id.to_public().to_string(),
                hex::encode(mac.finalize().into_bytes()),
            );
        }
        let file = KeyringFile {
            // The keyring's own layout has not changed since format 1.
            format: 1,
            vault_id: vault_id.to_string(),
            mac_key: hex::encode(&self.mac_key[..]),
            signing_key: hex::encode(self.signing.to_bytes()),
            bindings,
        };
        let json = Zeroizing::new(serde_json::to_vec(&file)?);
        Ok(crypto::seal_bytes(&json, recipients)?)
    }

    /// Decrypts and authenticates `keys.age`; `what` names the file in errors.
    pub fn open(
        bytes: &[u8],
        vault_id: &str,
        keys: &Unlocked,
        what: &str,
    ) -> Result<Keyring, Error> {
        let damaged = |why: &str| Error::Integrity(format!("{what}: {why}"));
        let plain = Zeroizing::new(
            crypto::open_bytes(bytes, keys.as_dyn(), MAX_KEYRING)
                .map_err(|e| damaged(&e.to_string()))?,
        );
        let file: KeyringFile =
            serde_json::from_slice(&plain).map_err(|_| damaged("not a carnet keyring"))?;
        let file = Zeroizing::new(file);
        if file.vault_id != vault_id {
            return Err(damaged("it belongs to another vault"));
        }
        let mut mac_key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(&file.mac_key, &mut mac_key[..])
            .map_err(|_| damaged("bad MAC key"))?;
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(&file.signing_key, &mut seed[..])
            .map_err(|_| damaged("bad signing key"))?;
        let ring = Keyring {
            mac_key,
            signing: SigningKey::from_bytes(&seed),
        };
        let msg = ring.binding_message(vault_id);
        let bound = keys.identities.iter().any(|id| {
            let Some(tag) = file.bindings.get(&id.to_public().to_string()) else {
                return false;
            };
            let Ok(tag) = hex::decode(tag) else {
                return false;
            };
            let mut mac = Self::binding_mac(id, vault_id);
            mac.update(&msg);
            mac.verify_slice(&tag).is_ok()
        });
        if !bound {
            return Err(damaged(
                "it is not bound to your identity (written by someone else?)",
            ));
        }
        Ok(ring)
    }

    /// HMAC-SHA256 under the vault's MAC key, with a domain label so that a tag made for one
    /// kind of record can never pass for another.
    pub fn mac(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        let mut m =
            <HmacSha256 as KeyInit>::new_from_slice(&self.mac_key[..]).expect("any key length");
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().into()
    }

    pub fn verify_mac(&self, domain: &str, data: &[u8], tag_hex: &str) -> bool {
        let Ok(tag) = hex::decode(tag_hex) else {
            return false;
        };
        let mut m =
            <HmacSha256 as KeyInit>::new_from_slice(&self.mac_key[..]).expect("any key length");
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(data);
        m.verify_slice(&tag).is_ok()
    }

    pub fn sign(&self, data: &[u8]) -> ed25519_dalek::Signature {
        self.signing.sign(data)
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }
}

impl zeroize::Zeroize for KeyringFile {
    fn zeroize(&mut self) {
        self.mac_key.zeroize();
        self.signing_key.zeroize();
    }
}

/// A short, readable fingerprint of a signing key: `SHA256:` and 32 hex digits in groups.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let d = Sha256::digest(key.to_bytes());
    let hex = hex::encode(&d[..16]);
    let groups: Vec<&str> = (0..hex.len()).step_by(4).map(|i| &hex[i..i + 4]).collect();
    format!("SHA256:{}", groups.join(":"))
}

/// Reads a fingerprint as people type or dictate it: with or without `SHA256:`, colons or
/// spaces, any case. Returns it in the canonical form, or an error for anything else.
pub fn parse_fingerprint(s: &str) -> Result<String, Error> {
    let t = s.trim();
    let t = t
        .strip_prefix("SHA256:")
        .or_else(|| t.strip_prefix("sha256:"))
        .unwrap_or(t);
    let hex: String = t
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect::<String>()
        .to_lowercase();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::input(
            format!("{s:?} is not a key fingerprint"),
            "a fingerprint is 32 hexadecimal digits, e.g. SHA256:5ac6:171f:a027:2d6f:6705:278a:3689:fc1c",
        ));
    }
    let groups: Vec<&str> = (0..32).step_by(4).map(|i| &hex[i..i + 4]).collect();
    Ok(format!("SHA256:{}", groups.join(":")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_parse_as_dictated() {
        let want = "SHA256:5ac6:171f:a027:2d6f:6705:278a:3689:fc1c";
        for s in [
            want,
            "5ac6:171f:a027:2d6f:6705:278a:3689:fc1c",
            "sha256:5AC6171FA0272D6F6705278A3689FC1C",
            " 5ac6 171f a027 2d6f 6705 278a 3689 fc1c ",
        ] {
            assert_eq!(super::parse_fingerprint(s).unwrap(), want, "{s}");
        }
        assert!(super::parse_fingerprint("SHA256:5ac6").is_err());
    }

    use super::*;

    fn unlocked() -> Unlocked {
        Unlocked::patient(vec![age::x25519::Identity::generate()])
    }

    #[test]
    fn sealed_keyring_opens_for_its_owner() {
        let me = unlocked();
        let ring = Keyring::generate();
        let bytes = ring
            .seal("v1", &me, &[me.identities[0].to_public()])
            .unwrap();
        let back = Keyring::open(&bytes, "v1", &me, "keys.age").unwrap();
        assert_eq!(back.verifying_key(), ring.verifying_key());
        assert_eq!(back.mac("x", b"y"), ring.mac("x", b"y"));
        assert!(Keyring::open(&bytes, "v2", &me, "keys.age").is_err());
    }

    #[test]
    fn keyring_forged_with_the_public_key_only_is_refused() {
        let me = unlocked();
        // The forger knows my recipient but not my secret: they bind with their own identity.
        let forger = unlocked();
        let ring = Keyring::generate();
        let mut forged: KeyringFile = {
            let b = ring
                .seal("v1", &forger, &[forger.identities[0].to_public()])
                .unwrap();
            let p = crypto::open_bytes(&b, forger.as_dyn(), 1 << 20).unwrap();
            serde_json::from_slice(&p).unwrap()
        };
        let tag = forged.bindings.values().next().unwrap().clone();
        forged.bindings = BTreeMap::from([(me.identities[0].to_public().to_string(), tag)]);
        let bytes = crypto::seal_bytes(
            &serde_json::to_vec(&forged).unwrap(),
            &[me.identities[0].to_public()],
        )
        .unwrap();
        let e = Keyring::open(&bytes, "v1", &me, "keys.age").err().unwrap();
        assert!(e.to_string().contains("not bound"), "{e}");
    }

    #[test]
    fn macs_are_domain_separated() {
        let ring = Keyring::generate();
        let t = hex::encode(ring.mac("log", b"data"));
        assert!(ring.verify_mac("log", b"data", &t));
        assert!(!ring.verify_mac("head", b"data", &t));
        assert!(!ring.verify_mac("log", b"dato", &t));
    }
}
