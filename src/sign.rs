//! Signatures in minisign's format (Ed25519), so that anyone can check a grant's terms with the
//! standard `minisign -V` tool as well as with `carnet open`.
//!
//! Public key: base64 of `"Ed" || key id (8 bytes) || Ed25519 key (32 bytes)`.
//! Signature file (four lines): an untrusted comment, base64 of `"Ed" || key id || signature of
//! the message`, a trusted comment, and base64 of the signature of `signature || trusted comment`.
//! The key id is the first 8 bytes of SHA-256 of the public key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::keyring::Keyring;

const ALG: &[u8; 2] = b"Ed";

pub fn key_id(key: &VerifyingKey) -> [u8; 8] {
    let d = Sha256::digest(key.to_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    id
}

/// The public key as minisign writes it on the second line of a `.pub` file.
pub fn encode_public(key: &VerifyingKey) -> String {
    let mut b = Vec::with_capacity(42);
    b.extend_from_slice(ALG);
    b.extend_from_slice(&key_id(key));
    b.extend_from_slice(&key.to_bytes());
    B64.encode(b)
}

pub fn decode_public(s: &str) -> Result<VerifyingKey, String> {
    let b = B64.decode(s.trim()).map_err(|_| "not base64".to_string())?;
    if b.len() != 42 || &b[..2] != ALG {
        return Err("not an Ed25519 minisign public key".into());
    }
    let pk: [u8; 32] = b[10..].try_into().map_err(|_| "bad length".to_string())?;
    let key = VerifyingKey::from_bytes(&pk).map_err(|_| "not a valid Ed25519 key".to_string())?;
    if b[2..10] != key_id(&key) {
        return Err("key id does not match the key".into());
    }
    Ok(key)
}

/// Signs `msg` with the vault's key; `trusted` must be a single line (it is signed too).
pub fn sign(ring: &Keyring, msg: &[u8], untrusted: &str, trusted: &str) -> String {
    sign_by(
        &ring.verifying_key(),
        &|m| ring.sign(m),
        msg,
        untrusted,
        trusted,
    )
}

/// Signs `msg` with a professional's key (deposits, receipts): the same format as the
/// vault's signatures, so `minisign -V` checks both.
pub fn sign_with(
    key: &ed25519_dalek::SigningKey,
    msg: &[u8],
    untrusted: &str,
    trusted: &str,
) -> String {
    use ed25519_dalek::Signer;
    sign_by(
        &key.verifying_key(),
        &|m| key.sign(m),
        msg,
        untrusted,
        trusted,
    )
}

fn sign_by(
    key: &VerifyingKey,
    sign: &dyn Fn(&[u8]) -> Signature,
    msg: &[u8],
    untrusted: &str,
    trusted: &str,
) -> String {
    let key = *key;
    let sig = sign(msg).to_bytes();
    let mut first = Vec::with_capacity(74);
    first.extend_from_slice(ALG);
    first.extend_from_slice(&key_id(&key));
    first.extend_from_slice(&sig);
    let mut global_msg = sig.to_vec();
    global_msg.extend_from_slice(trusted.as_bytes());
    let global = sign(&global_msg).to_bytes();
    format!(
        "untrusted comment: {}\n{}\ntrusted comment: {}\n{}\n",
        one_line(untrusted),
        B64.encode(first),
        one_line(trusted),
        B64.encode(global)
    )
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Checks a signature file against `msg` and `key`; returns the trusted comment.
pub fn verify(key: &VerifyingKey, msg: &[u8], sig_file: &str) -> Result<String, String> {
    let lines: Vec<&str> = sig_file.lines().collect();
    if lines.len() < 4 || !lines[0].starts_with("untrusted comment:") {
        return Err("not a minisign signature".into());
    }
    let first = B64
        .decode(lines[1].trim())
        .map_err(|_| "signature is not base64".to_string())?;
    if first.len() != 74 || &first[..2] != ALG {
        return Err("not an Ed25519 signature".into());
    }
    if first[2..10] != key_id(key) {
        return Err("signed by another key".into());
    }
    let sig = Signature::from_slice(&first[10..]).map_err(|_| "malformed signature".to_string())?;
    key.verify_strict(msg, &sig)
        .map_err(|_| "the signature does not match the content".to_string())?;
    let trusted = lines[2]
        .strip_prefix("trusted comment: ")
        .ok_or_else(|| "missing trusted comment".to_string())?;
    let global = B64
        .decode(lines[3].trim())
        .map_err(|_| "global signature is not base64".to_string())?;
    let global =
        Signature::from_slice(&global).map_err(|_| "malformed global signature".to_string())?;
    let mut global_msg = first[10..].to_vec();
    global_msg.extend_from_slice(trusted.as_bytes());
    key.verify_strict(&global_msg, &global)
        .map_err(|_| "the trusted comment was altered".to_string())?;
    Ok(trusted.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let ring = Keyring::generate();
        let key = ring.verifying_key();
        let s = sign(&ring, b"terms", "from carnet", "grant abc");
        assert_eq!(verify(&key, b"terms", &s).unwrap(), "grant abc");
        assert!(verify(&key, b"termz", &s).is_err());
        let other = Keyring::generate().verifying_key();
        assert_eq!(
            verify(&other, b"terms", &s).unwrap_err(),
            "signed by another key"
        );
        let altered = s.replace("grant abc", "grant abd");
        assert!(verify(&key, b"terms", &altered).is_err());
        assert_eq!(decode_public(&encode_public(&key)).unwrap(), key);
    }
}
