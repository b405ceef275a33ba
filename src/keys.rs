//! Keys and unlocking: the vault's age identity, passphrases, and external identity files.
//!
//! Secrets stay in `SecretString`/`Zeroizing` buffers and are wiped when dropped.

use std::io::{BufReader, Read};
use std::iter;
use std::path::Path;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::{Context, anyhow};
use zeroize::Zeroizing;

use crate::error::Error;

/// Something that gives a passphrase when the library needs one (to open `identity.age` or a
/// protected key, or to set a new one). The CLI reads `--passphrase-file`, `CARNET_PASSPHRASE`
/// or the terminal; the library never prompts or reads the environment itself.
pub trait Passphrase: Send + Sync {
    /// `prompt` names what is being opened; with `confirm` a new passphrase is being chosen
    /// (ask twice).
    fn get(&self, prompt: &str, confirm: bool) -> anyhow::Result<SecretString>;

    /// The passphrase is being checked (scrypt: a few seconds and 256 MiB): `true` before,
    /// `false` after, so that a terminal can say so instead of seeming to hang.
    fn working(&self, _busy: bool) {}
}

/// Where a passphrase comes from; without one, a passphrase is "needed and there is no
/// terminal to ask for it".
#[derive(Clone, Default)]
pub struct PassphraseSource {
    asker: Option<std::sync::Arc<dyn Passphrase>>,
}

impl std::fmt::Debug for PassphraseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassphraseSource")
    }
}

impl PassphraseSource {
    pub fn new(asker: impl Passphrase + 'static) -> PassphraseSource {
        PassphraseSource {
            asker: Some(std::sync::Arc::new(asker)),
        }
    }

    pub fn get(&self, prompt: &str, confirm: bool) -> anyhow::Result<SecretString> {
        match &self.asker {
            Some(a) => a.get(prompt, confirm),
            None => Err(Error::NoTerminal.into()),
        }
    }

    fn working(&self, busy: bool) {
        if let Some(a) = &self.asker {
            a.working(busy);
        }
    }
}

/// Identity files are a few lines; refuse to slurp a wrong multi-gigabyte file.
const MAX_IDENTITY_FILE: u64 = 1 << 20;
/// The scrypt cost of every passphrase carnet sets: 2^18 (256 MiB), what Go `age` uses. The
/// age crate's one-second calibration picks anything from 2^16 to 2^20 and more depending on
/// how busy the machine is, and each unlock then costs up to 1 GiB and several seconds.
const SCRYPT_LOG_N: u8 = 18;
/// The most scrypt work we accept when opening a passphrase-protected file: 2^20, the most
/// typage (the JavaScript age) opens, so a file carnet opens opens everywhere; more is a
/// file made to exhaust memory.
const MAX_SCRYPT_LOG_N: u8 = 20;

/// The identities that open a vault, and the recipients they correspond to.
pub struct Unlocked {
    pub identities: Vec<age::x25519::Identity>,
    /// Who opened it: the patient, or the holder of a recovery key (what the log records).
    pub actor: crate::domain::Actor,
    /// The recipient of the key whose slot opened the vault (a recovery or guardian key).
    pub slot: Option<String>,
    /// The passphrase that opened `identity.age`, kept so that re-encryption can seal the new
    /// vault identity under it without asking again.
    pub passphrase: Option<SecretString>,
}

impl Unlocked {
    /// The patient's own identities.
    pub fn patient(identities: Vec<age::x25519::Identity>) -> Unlocked {
        Unlocked {
            identities,
            actor: crate::domain::Actor::Patient,
            slot: None,
            passphrase: None,
        }
    }

    pub fn as_dyn(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.identities.iter().map(|i| i as &dyn age::Identity)
    }

    pub fn recipients(&self) -> Vec<String> {
        self.identities
            .iter()
            .map(|i| i.to_public().to_string())
            .collect()
    }
}

/// The scrypt cost of new passphrase-protected files: 2^18 unless `lowered` asks for less (the
/// CLI's test hook); never below 2^10 nor above 2^18.
pub fn scrypt_log_n(lowered: Option<u8>) -> u8 {
    lowered.map_or(SCRYPT_LOG_N, |n| n.clamp(10, SCRYPT_LOG_N))
}

/// Encrypts `plaintext` with a passphrase in age's own format (what `age -p` writes), at the
/// scrypt cost 2^`log_n` (see `scrypt_log_n`).
pub fn encrypt_with_passphrase(
    plaintext: &[u8],
    pass: SecretString,
    log_n: u8,
) -> anyhow::Result<Vec<u8>> {
    let mut r = age::scrypt::Recipient::new(pass);
    r.set_work_factor(log_n);
    let enc = age::Encryptor::with_recipients(iter::once(&r as &dyn age::Recipient))?;
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let mut w = enc.wrap_output(&mut out)?;
    std::io::Write::write_all(&mut w, plaintext)?;
    w.finish()?;
    Ok(out)
}

/// A new X25519 identity, as the text of an age identity file (the `age-keygen` layout).
pub fn new_identity_file() -> (age::x25519::Identity, Zeroizing<String>) {
    let id = age::x25519::Identity::generate();
    let text = Zeroizing::new(format!(
        "# created: {}\n# public key: {}\n{}\n",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        id.to_public(),
        id.to_string().expose_secret()
    ));
    (id, text)
}

fn is_age_encrypted(head: &[u8]) -> bool {
    head.starts_with(b"age-encryption.org/v1")
        || head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

/// Reads an identity file, plain or passphrase-protected (binary or armored age).
/// `path` is only used in messages.
pub fn read_identity_file(
    bytes: &[u8],
    path: &Path,
    pass: &PassphraseSource,
) -> anyhow::Result<Vec<age::x25519::Identity>> {
    let (text, _) = identity_text(bytes, path, pass)?;
    parse_identities(&text, path)
}

/// Like `read_identity_file`, also returning the passphrase that opened it (if one did).
pub fn read_identity_file_keeping_passphrase(
    bytes: &[u8],
    path: &Path,
    pass: &PassphraseSource,
) -> anyhow::Result<(Vec<age::x25519::Identity>, Option<SecretString>)> {
    let (text, passphrase) = identity_text(bytes, path, pass)?;
    Ok((parse_identities(&text, path)?, passphrase))
}

/// The plaintext of an identity file, decrypted first when passphrase-protected (then with the
/// passphrase that opened it).
fn identity_text(
    bytes: &[u8],
    path: &Path,
    pass: &PassphraseSource,
) -> anyhow::Result<(Zeroizing<Vec<u8>>, Option<SecretString>)> {
    let mut kept = None;
    let text: Zeroizing<Vec<u8>> = if is_age_encrypted(bytes) {
        let prompt = if path.file_name().is_some_and(|n| n == "identity.age") {
            "Vault passphrase: ".to_string()
        } else {
            format!("Passphrase for {}: ", path.display())
        };
        let passphrase = pass.get(&prompt, false)?;
        kept = Some(SecretString::from(passphrase.expose_secret().to_owned()));
        let mut id = age::scrypt::Identity::new(passphrase);
        id.set_max_work_factor(MAX_SCRYPT_LOG_N);
        let dec =
            age::Decryptor::new_buffered(age::armor::ArmoredReader::new(BufReader::new(bytes)))
                .map_err(|e| anyhow!("{} is not a valid age file: {e}", path.display()))?;
        if !dec.is_scrypt() {
            return Err(Error::input(
                format!("{} is encrypted to a key, not a passphrase", path.display()),
                "give the identity file itself, or the vault's identity.age",
            )
            .into());
        }
        pass.working(true);
        let decrypted = dec.decrypt(iter::once(&id as &dyn age::Identity));
        pass.working(false);
        let mut r = decrypted
            .map_err(|e| match e {
                age::DecryptError::ExcessiveWork { required, .. } => Error::input(
                    format!(
                        "{} asks for scrypt work 2^{required}, more than the 2^{MAX_SCRYPT_LOG_N} carnet opens",
                        path.display()
                    ),
                    "encrypt the identity again with a lower work factor, e.g. `age -p` (2^18)",
                ),
                // With the right passphrase a damaged header fails its MAC; a wrong one
                // cannot unwrap the file key at all.
                age::DecryptError::InvalidHeader | age::DecryptError::InvalidMac => {
                    Error::Integrity(format!(
                        "{} is damaged (its header does not authenticate)",
                        path.display()
                    ))
                }
                _ => Error::WrongPassphrase(path.to_path_buf()),
            })?;
        let mut buf = Zeroizing::new(Vec::new());
        // The passphrase was right (the file key unwrapped), so a failure here is damage.
        r.by_ref()
            .take(MAX_IDENTITY_FILE)
            .read_to_end(&mut buf)
            .map_err(|_| {
                Error::Integrity(format!(
                    "{} is damaged (its content does not authenticate)",
                    path.display()
                ))
            })?;
        buf
    } else {
        Zeroizing::new(bytes.to_vec())
    };
    Ok((text, kept))
}

fn parse_identities(text: &[u8], path: &Path) -> anyhow::Result<Vec<age::x25519::Identity>> {
    let text = std::str::from_utf8(text).map_err(|_| not_an_identity(path))?;
    let mut ids = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = age::x25519::Identity::from_str(line).map_err(|_| not_an_identity(path))?;
        ids.push(id);
    }
    if ids.is_empty() {
        return Err(not_an_identity(path).into());
    }
    Ok(ids)
}

fn not_an_identity(path: &Path) -> Error {
    Error::input(
        format!("{} is not an age X25519 identity file", path.display()),
        "create one with `age-keygen -o FILE` or `carnet keygen`",
    )
}

/// Loads an identity file from disk, bounded in size.
pub fn load_identity_path(
    path: &Path,
    pass: &PassphraseSource,
) -> anyhow::Result<Vec<age::x25519::Identity>> {
    let bytes = read_key_file(path)?;
    read_identity_file(&bytes, path, pass)
}

/// The comment line of a professional's key file that carries their signing seed (hex).
const SIGNING_LINE: &str = "# carnet-signing-key:";

/// A professional's key file (`carnet keygen`): the age identity, and the Ed25519 key that
/// signs deposits and receipts, carried on a comment line that age ignores. A plain
/// `age-keygen` file opens bundles but has no signing key.
pub struct ProKey {
    pub identities: Vec<age::x25519::Identity>,
    pub signing: Option<ed25519_dalek::SigningKey>,
}

/// Loads a professional's key file, bounded in size, plain or passphrase-protected.
pub fn load_pro_key(path: &Path, pass: &PassphraseSource) -> anyhow::Result<ProKey> {
    let bytes = read_key_file(path)?;
    let (text, _) = identity_text(&bytes, path, pass)?;
    let identities = parse_identities(&text, path)?;
    let mut signing = None;
    let plain = std::str::from_utf8(&text).map_err(|_| not_an_identity(path))?;
    for line in plain.lines().map(str::trim) {
        if let Some(hex_seed) = line.strip_prefix(SIGNING_LINE) {
            let mut seed = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(hex_seed.trim(), &mut seed[..]).map_err(|_| {
                Error::input(
                    format!("{}: its carnet signing key is damaged", path.display()),
                    "use the key file `carnet keygen` wrote, or make a new one",
                )
            })?;
            signing = Some(ed25519_dalek::SigningKey::from_bytes(&seed));
        }
    }
    Ok(ProKey {
        identities,
        signing,
    })
}

fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot read the identity file {}", path.display()))?;
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(MAX_IDENTITY_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the identity file {}", path.display()))?;
    if bytes.len() as u64 > MAX_IDENTITY_FILE {
        return Err(not_an_identity(path).into());
    }
    Ok(bytes)
}

/// Parses a recipient as stored in the vault config (`age1…`).
pub fn parse_recipient(s: &str) -> anyhow::Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(s).map_err(|e| anyhow!("invalid recipient {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_protected_identity_round_trips() {
        let (id, text) = new_identity_file();
        let pass = SecretString::from("correct horse");
        let mut r = age::scrypt::Recipient::new(pass);
        r.set_work_factor(10);
        let enc = age::Encryptor::with_recipients(iter::once(&r as &dyn age::Recipient)).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        std::io::Write::write_all(&mut w, text.as_bytes()).unwrap();
        w.finish().unwrap();
        let plain = read_identity_file(
            text.as_bytes(),
            Path::new("x"),
            &PassphraseSource::default(),
        )
        .unwrap();
        assert_eq!(plain[0].to_public().to_string(), id.to_public().to_string());
        assert!(is_age_encrypted(&out));
    }

    #[test]
    fn garbage_is_not_an_identity() {
        let e = read_identity_file(b"hello\n", Path::new("f"), &PassphraseSource::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("not an age X25519 identity file"));
    }
}
