//! Keys and unlocking: the vault's age identity, passphrases, and external identity files; and
//! professionals' keys of any kind age knows (X25519, SSH, age plugins), with their recipients.
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

    /// A message for the user from an age plugin ("touch your YubiKey"): the library never
    /// prints, so the asker shows it (on stderr) or drops it.
    fn message(&self, _text: &str) {}

    /// A secret an age plugin asks for (a hardware key's PIN), from the user's terminal only:
    /// never the vault's passphrase from a file or the environment, which a plugin found on
    /// PATH must not receive. By default there is none.
    fn pin(&self, _prompt: &str) -> anyhow::Result<SecretString> {
        Err(Error::NoTerminal.into())
    }
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

    fn message(&self, text: &str) {
        if let Some(a) = &self.asker {
            a.message(text);
        }
    }

    fn pin(&self, prompt: &str) -> anyhow::Result<SecretString> {
        match &self.asker {
            Some(a) => a.pin(prompt),
            None => Err(Error::NoTerminal.into()),
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
    /// The key of what is hidden from guardians (documents, their metadata and log entries),
    /// held by the patient and recovery keys, never by a guardian's; set once the root is read.
    pub sealed: Option<age::x25519::Identity>,
    /// Identities found beside the vault's (in `identity.age` or a slot): the sealed key is one
    /// of them, recognised when the root names its recipient.
    pub spare: Vec<age::x25519::Identity>,
    /// Taken from a `carnet unlock` session (which may predate the sealed key), not from the
    /// key itself.
    pub from_session: bool,
}

impl Unlocked {
    /// The patient's own identities.
    pub fn patient(identities: Vec<age::x25519::Identity>) -> Unlocked {
        Unlocked {
            identities,
            actor: crate::domain::Actor::Patient,
            slot: None,
            passphrase: None,
            sealed: None,
            spare: Vec::new(),
            from_session: false,
        }
    }

    /// Every identity held: the vault's, and the sealed key when this key holds it.
    pub fn as_dyn(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.identities
            .iter()
            .chain(self.sealed.iter())
            .chain(self.spare.iter())
            .map(|i| i as &dyn age::Identity)
    }

    /// The vault's own identity among those held: the one whose recipient the vault's config
    /// lists (`recipients`).
    pub fn vault_identity(
        &self,
        recipients: &[String],
    ) -> Result<&age::x25519::Identity, crate::error::Error> {
        self.identities
            .iter()
            .find(|i| recipients.contains(&i.to_public().to_string()))
            .ok_or_else(|| {
                crate::error::Error::Integrity("the vault's identity is not at hand".into())
            })
    }

    /// Does this key hold the identity of `recipient` (the sealed key's, say)?
    pub fn holds(&self, recipient: &str) -> bool {
        self.identities
            .iter()
            .chain(self.sealed.iter())
            .chain(self.spare.iter())
            .any(|i| i.to_public().to_string() == recipient)
    }

    /// Takes the sealed key from the spare identities, when one is `recipient`'s.
    pub fn find_sealed(&mut self, recipient: &str) {
        if self
            .sealed
            .as_ref()
            .is_some_and(|i| i.to_public().to_string() == recipient)
        {
            return;
        }
        self.sealed = self
            .spare
            .iter()
            .find(|i| i.to_public().to_string() == recipient)
            .cloned();
    }

    /// The recipient of the sealed key, when this key holds it.
    pub fn sealed_recipient(&self) -> Option<age::x25519::Recipient> {
        self.sealed.as_ref().map(|i| i.to_public())
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
/// The plaintext of `identity.age`: the vault identity, and the sealed key on a second line when
/// the vault has one (what is hidden from guardians).
pub fn vault_identity_text(
    vault: &age::x25519::Identity,
    sealed: Option<&age::x25519::Identity>,
) -> Zeroizing<String> {
    let mut text = Zeroizing::new(format!(
        "# public key: {}\n{}\n",
        vault.to_public(),
        vault.to_string().expose_secret()
    ));
    if let Some(c) = sealed {
        text.push_str(c.to_string().expose_secret());
        text.push('\n');
    }
    text
}

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

/// A professional's key: the identity that opens bundles, and the Ed25519 key that signs
/// deposits and receipts. `carnet keygen` writes both in one file, the signing seed on a comment
/// line that age ignores; a plain `age-keygen` file, an SSH private key or a plugin identity
/// opens bundles but has no signing key.
pub struct ProKey {
    pub identity: AnyIdentity,
    pub signing: Option<ed25519_dalek::SigningKey>,
}

/// Loads a professional's key file, bounded in size: an age identity file (plain or
/// passphrase-protected), an SSH private key, or an age plugin identity (see `read_any_identity`).
pub fn load_pro_key(path: &Path, pass: &PassphraseSource) -> anyhow::Result<ProKey> {
    let bytes = read_key_file(path)?;
    if !is_age_encrypted(&bytes) && pem_label(&bytes).is_some() {
        return Ok(ProKey {
            identity: read_ssh_identity(&bytes, path, pass)?,
            signing: None,
        });
    }
    // Decrypted once: the identities and the signing line come from the same plaintext, so
    // a protected key asks for its passphrase once.
    let (text, _) = identity_text(&bytes, path, pass)?;
    let identity = parse_age_identities(&text, path, pass)?;
    let mut signing = None;
    let plain = std::str::from_utf8(&text).map_err(|_| not_any_identity(path))?;
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
    Ok(ProKey { identity, signing })
}

fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let f = std::fs::File::open(path).map_err(|e| -> anyhow::Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::input(
                format!("no identity file at {}", path.display()),
                "check the path given with -i (or in CARNET_IDENTITY)",
            )
            .into()
        } else {
            anyhow::Error::from(e)
                .context(format!("cannot read the identity file {}", path.display()))
        }
    })?;
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(MAX_IDENTITY_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the identity file {}", path.display()))?;
    if bytes.len() as u64 > MAX_IDENTITY_FILE {
        return Err(Error::input(
            format!(
                "{} is larger than {} KiB: not an identity file",
                path.display(),
                MAX_IDENTITY_FILE / 1024
            ),
            "give your key file (a few lines): the one `carnet keygen` or `age-keygen` made, or an SSH private key",
        )
        .into());
    }
    Ok(bytes)
}

/// Parses a recipient as stored in the vault config (`age1…`).
pub fn parse_recipient(s: &str) -> anyhow::Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(s).map_err(|e| anyhow!("invalid recipient {s:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Any age identity or recipient: X25519, SSH, and age plugins (hardware keys).

/// What kind of key an identity or a recipient is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// A native age key: `AGE-SECRET-KEY-1…`, recipient `age1…`.
    X25519,
    /// An OpenSSH Ed25519 key (`ssh-ed25519 …`).
    SshEd25519,
    /// An SSH RSA key (`ssh-rsa …`).
    SshRsa,
    /// A key behind an age plugin (`AGE-PLUGIN-NAME-1…`, recipient `age1name1…`), usually a
    /// hardware key; the plugin's name (`yubikey`), run as `age-plugin-NAME` from PATH.
    Plugin(String),
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::X25519 => f.write_str("X25519"),
            KeyKind::SshEd25519 => f.write_str("ssh-ed25519"),
            KeyKind::SshRsa => f.write_str("ssh-rsa"),
            KeyKind::Plugin(name) => write!(f, "plugin:{name}"),
        }
    }
}

/// The identities of one identity file, of any kind age knows, ready to decrypt.
pub struct AnyIdentity {
    pub identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// The recipients these identities answer to, where they can be known without the key's
    /// holder: X25519 and SSH public keys, and for plugin identities the recipient the file
    /// names in a comment (`# recipient: age1…`, `#    Recipient: age1yubikey1…`). Canonical
    /// form (`canonical_recipient`).
    pub recipients: Vec<String>,
    /// The kind of each identity, in file order.
    pub kinds: Vec<KeyKind>,
}

impl std::fmt::Debug for AnyIdentity {
    // The identities are secrets: only what is public is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnyIdentity")
            .field("recipients", &self.recipients)
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl AnyIdentity {
    /// The identities as age's decryptor takes them.
    pub fn as_dyn(&self) -> Vec<&dyn age::Identity> {
        self.identities
            .iter()
            .map(|i| i.as_ref() as &dyn age::Identity)
            .collect()
    }

    /// Whether `recipient` (as a directory or a card writes it: an SSH key with its comment, an
    /// X25519 key in any case) is one of ours, as far as `recipients` knows.
    pub fn answers_to(&self, recipient: &str) -> bool {
        canonical_recipient(recipient).is_some_and(|r| self.recipients.contains(&r))
    }
}

/// The age callbacks of the library: a passphrase or a PIN asked for by an SSH key or a plugin
/// goes through the `PassphraseSource` (the CLI's terminal or CARNET_PASSPHRASE), a plugin's
/// message to the asker; nothing is printed or read here.
#[derive(Clone)]
struct Asker(PassphraseSource);

impl age::Callbacks for Asker {
    fn display_message(&self, message: &str) {
        self.0.message(message);
    }

    // A yes/no question from a plugin has no answer without a terminal of our own: "no".
    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }

    // Only plugins ask here (X25519 lines need nothing): their PIN comes from the terminal,
    // never from CARNET_PASSPHRASE or --passphrase-file (see `Passphrase::pin`).
    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        self.0
            .pin(&format!("{}: ", description.trim_end_matches(':')))
            .ok()
    }
}

/// The label of a PEM block the file starts with (`OPENSSH PRIVATE KEY`), if it does.
fn pem_label(bytes: &[u8]) -> Option<&str> {
    let text = bytes.trim_ascii_start();
    let rest = text.strip_prefix(b"-----BEGIN ")?;
    let end = rest.windows(5).position(|w| w == b"-----")?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// Reads an identity file of any kind age knows, and prepares its identities:
/// - an age identity file: `AGE-SECRET-KEY-1…` (X25519) and `AGE-PLUGIN-NAME-1…` (a plugin's,
///   run as `age-plugin-NAME` from PATH) lines, `#` comments; plain or passphrase-protected
///   (`age -p`, binary or armored);
/// - an SSH private key: OpenSSH `ssh-ed25519` or `ssh-rsa`, or a PKCS#1 RSA key; one
///   protected by a passphrase asks for it through `pass` (once, here).
///
/// `path` is only used in messages.
pub fn read_any_identity(
    bytes: &[u8],
    path: &Path,
    pass: &PassphraseSource,
) -> anyhow::Result<AnyIdentity> {
    if !is_age_encrypted(bytes) && pem_label(bytes).is_some() {
        return read_ssh_identity(bytes, path, pass);
    }
    let (text, _) = identity_text(bytes, path, pass)?;
    parse_age_identities(&text, path, pass)
}

/// A key given with `-i` to open a vault: age X25519 identities (the vault's own, or a slot's),
/// or another kind (SSH, a plugin's hardware key), which can only open a key slot.
pub enum OpeningKey {
    X25519(Vec<age::x25519::Identity>),
    Other(AnyIdentity),
}

/// Loads a key given with `-i` to open a vault, asking a passphrase at most once.
pub fn load_opening_key(path: &Path, pass: &PassphraseSource) -> anyhow::Result<OpeningKey> {
    let bytes = read_key_file(path)?;
    // Plugin lines are only looked for in a plain file: a passphrase-protected one is an age
    // identity file, which carnet and `age-keygen` write with X25519 keys.
    let plugin = !is_age_encrypted(&bytes) && bytes.windows(11).any(|w| w == b"AGE-PLUGIN-");
    if plugin || pem_label(&bytes).is_some() {
        return Ok(OpeningKey::Other(read_any_identity(&bytes, path, pass)?));
    }
    Ok(OpeningKey::X25519(read_identity_file(&bytes, path, pass)?))
}

/// Loads an identity file of any kind from disk, bounded in size (see `read_any_identity`).
pub fn load_any_identity(path: &Path, pass: &PassphraseSource) -> anyhow::Result<AnyIdentity> {
    let bytes = read_key_file(path)?;
    read_any_identity(&bytes, path, pass)
}

/// An SSH private key (PEM-armored). Its public key is in the clear even when the key is
/// protected, so the recipient is known before the passphrase is asked.
fn read_ssh_identity(
    bytes: &[u8],
    path: &Path,
    pass: &PassphraseSource,
) -> anyhow::Result<AnyIdentity> {
    let shown = path.display();
    let label = pem_label(bytes).unwrap_or_default();
    if !matches!(label, "OPENSSH PRIVATE KEY" | "RSA PRIVATE KEY") {
        return Err(Error::input(
            format!("{shown} is a {label} file, which age cannot use as an identity"),
            "give an OpenSSH ssh-ed25519 or ssh-rsa private key (`ssh-keygen -t ed25519`), an age identity file, or the key `carnet keygen` made",
        )
        .into());
    }
    let text = bytes.trim_ascii_start();
    let id = age::ssh::Identity::from_buffer(text, Some(shown.to_string())).map_err(|_| {
        Error::input(
            format!("{shown} is not a valid SSH private key (damaged or cut short)"),
            "give the private key file as `ssh-keygen` wrote it (~/.ssh/id_ed25519), not its .pub",
        )
    })?;
    let unsupported = |u: &age::ssh::UnsupportedKey| -> Error {
        match u {
            age::ssh::UnsupportedKey::EncryptedPem => Error::input(
                format!(
                    "{shown} is an RSA key protected in the old PEM format, which age cannot read"
                ),
                "convert it to the OpenSSH format (same key, same passphrase): ssh-keygen -p -o -f FILE",
            ),
            age::ssh::UnsupportedKey::EncryptedSsh(cipher) => Error::input(
                format!(
                    "{shown} is protected with the cipher {cipher}, which age does not support"
                ),
                "set its passphrase again with `ssh-keygen -p -f FILE` (aes256-ctr, which age reads)",
            ),
            age::ssh::UnsupportedKey::Hardware(kind) => Error::input(
                format!(
                    "{shown} is an SSH key held by a security key ({kind}), which age cannot use"
                ),
                "use an age plugin for the device (age-plugin-yubikey), or a key from `carnet keygen`",
            ),
            age::ssh::UnsupportedKey::Type(kind) => Error::input(
                format!(
                    "{shown} is an SSH key of type {kind}; age opens only ssh-ed25519 and ssh-rsa keys"
                ),
                "make one with `ssh-keygen -t ed25519`, or use the key `carnet keygen` makes",
            ),
        }
    };
    if let age::ssh::Identity::Unsupported(u) = &id {
        return Err(unsupported(u).into());
    }
    let recipient = age::ssh::Recipient::try_from(id.clone()).map_err(|e| {
        Error::input(
            format!("{shown}: its public key cannot be used by age ({e:?})"),
            "make a new key with `ssh-keygen -t ed25519`",
        )
    })?;
    let recipient = recipient.to_string();
    let kind = if recipient.starts_with("ssh-rsa ") {
        KeyKind::SshRsa
    } else {
        KeyKind::SshEd25519
    };
    let key = match id {
        age::ssh::Identity::Unencrypted(key) => key,
        age::ssh::Identity::Encrypted(enc) => {
            let passphrase = pass.get(&format!("Passphrase for the SSH key {shown}: "), false)?;
            // bcrypt-pbkdf, as many rounds as the key asks: a moment, shown like scrypt's.
            pass.working(true);
            let key = enc.decrypt(passphrase);
            pass.working(false);
            key.map_err(|_| {
                Error::input(
                    format!("wrong passphrase for the SSH key {shown}"),
                    "it is the passphrase `ssh` asks for this key; scripts set CARNET_PASSPHRASE or --passphrase-file",
                )
            })?
        }
        age::ssh::Identity::Unsupported(u) => return Err(unsupported(&u).into()),
    };
    Ok(AnyIdentity {
        identities: vec![Box::new(age::ssh::Identity::Unencrypted(key))],
        recipients: vec![recipient],
        kinds: vec![kind],
    })
}

/// The recipient a comment line of a plugin's identity file names, as age-plugin-yubikey
/// (`#    Recipient: age1yubikey1…`) and the age-plugin crate (`# recipient: age1…`) write them.
fn comment_recipient(comment: &str) -> Option<String> {
    let (key, value) = comment.trim().split_once(':')?;
    if !key.trim().eq_ignore_ascii_case("recipient") {
        return None;
    }
    let value = value.trim();
    value
        .parse::<age::plugin::Recipient>()
        .ok()
        .map(|r| r.to_string())
}

/// The identity lines of an age identity file (plaintext), checked line by line so that a bad
/// file is named precisely, then prepared by the age crate (`IdentityFile`), which finds each
/// plugin's binary on PATH.
fn parse_age_identities(
    text: &[u8],
    path: &Path,
    pass: &PassphraseSource,
) -> anyhow::Result<AnyIdentity> {
    let text = std::str::from_utf8(text).map_err(|_| not_any_identity(path))?;
    let mut clean = Zeroizing::new(String::new());
    let mut kinds = Vec::new();
    let mut recipients = Vec::new();
    let mut named = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            named.extend(comment_recipient(comment));
            continue;
        }
        if let Ok(id) = age::x25519::Identity::from_str(line) {
            kinds.push(KeyKind::X25519);
            recipients.push(id.to_public().to_string());
        } else if let Ok(id) = line.parse::<age::plugin::Identity>() {
            kinds.push(KeyKind::Plugin(id.plugin().to_string()));
        } else {
            return Err(bad_identity_line(path, n + 1, line).into());
        }
        clean.push_str(line);
        clean.push('\n');
    }
    if kinds.is_empty() {
        return Err(not_any_identity(path).into());
    }
    if kinds.iter().any(|k| matches!(k, KeyKind::Plugin(_))) {
        for r in named {
            if !recipients.contains(&r) {
                recipients.push(r);
            }
        }
    }
    let identities = age::IdentityFile::from_buffer(clean.as_bytes())
        .map_err(|_| not_any_identity(path))?
        .with_callbacks(Asker(pass.clone()))
        .into_identities()
        .map_err(|e| match e {
            age::DecryptError::PluginResolve(age::plugin::ResolveError::MissingPlugin {
                binary_name,
            }) => Error::input(
                format!(
                    "{} is a key of the age plugin {binary_name}, which is not installed",
                    path.display()
                ),
                format!("install {binary_name} (it must be on PATH), then try again"),
            ),
            e => Error::input(
                format!("{}: {e}", path.display()),
                "check the plugin named in the identity file",
            ),
        })?;
    Ok(AnyIdentity {
        identities,
        recipients,
        kinds,
    })
}

/// A line that is no identity. The line itself is never shown: it may be most of a secret key.
fn bad_identity_line(path: &Path, n: usize, line: &str) -> Error {
    let shown = path.display();
    let public = line.starts_with("age1") || line.starts_with("ssh-") || line.starts_with("ecdsa-");
    if public {
        Error::input(
            format!("{shown} holds a public key (line {n}), not a secret one"),
            "give your secret key file: an age identity (AGE-SECRET-KEY-1…), an SSH private key (~/.ssh/id_ed25519, not its .pub), or a plugin identity (AGE-PLUGIN-…)",
        )
    } else {
        Error::input(
            format!("line {n} of {shown} is not an identity carnet can use"),
            "an identity file holds AGE-SECRET-KEY-1… or AGE-PLUGIN-… lines (and # comments), or is an SSH private key",
        )
    }
}

fn not_any_identity(path: &Path) -> Error {
    Error::input(
        format!(
            "{} is not an age identity file nor an SSH private key",
            path.display()
        ),
        "give the key `carnet keygen` made, an `age-keygen` file, an SSH private key (~/.ssh/id_ed25519) or a plugin identity",
    )
}

/// The kind of a recipient string, checked for form only: a plugin recipient is accepted
/// without its plugin installed (it is needed to encrypt, not to be written down).
pub fn check_any_recipient(s: &str) -> Result<KeyKind, Error> {
    let s = s.trim();
    if age::x25519::Recipient::from_str(s).is_ok() {
        return Ok(KeyKind::X25519);
    }
    match s.parse::<age::ssh::Recipient>() {
        Ok(r) if r.to_string().starts_with("ssh-rsa ") => return Ok(KeyKind::SshRsa),
        Ok(_) => return Ok(KeyKind::SshEd25519),
        Err(e) => {
            let shown = crate::text::ellipsize(s, 40);
            let hint = "make an ssh-ed25519 key (`ssh-keygen -t ed25519`), or use an age key (`carnet keygen`)";
            match e {
                age::ssh::ParseRecipientKeyError::RsaModulusTooSmall => {
                    return Err(Error::input(
                        format!("{shown:?} is an RSA key under 2048 bits, too weak for age"),
                        hint,
                    ));
                }
                age::ssh::ParseRecipientKeyError::RsaModulusTooLarge => {
                    return Err(Error::input(
                        format!("{shown:?} is an RSA key larger than age supports"),
                        hint,
                    ));
                }
                age::ssh::ParseRecipientKeyError::Unsupported(kind)
                    if kind == "ssh-ed25519" || kind == "ssh-rsa" =>
                {
                    // age reports a key of a type it knows but cannot decode this way.
                    return Err(Error::input(
                        format!(
                            "{shown:?} is not a valid {kind} public key (damaged or cut short)"
                        ),
                        "copy the whole line of the .pub file again",
                    ));
                }
                age::ssh::ParseRecipientKeyError::Unsupported(kind) => {
                    return Err(Error::input(
                        format!(
                            "{shown:?} is an SSH key of type {kind}; age encrypts only to ssh-ed25519 and ssh-rsa keys"
                        ),
                        hint,
                    ));
                }
                _ => {}
            }
        }
    }
    if let Ok(r) = s.parse::<age::plugin::Recipient>() {
        return Ok(KeyKind::Plugin(r.plugin().to_string()));
    }
    Err(Error::input(
        format!(
            "{:?} is not an age recipient or SSH public key, nor a plugin recipient",
            crate::text::ellipsize(s, 40)
        ),
        "give an age1… key (from the professional's card or `age-keygen -y`), an ssh-ed25519/ssh-rsa public key, or a plugin's recipient (age1yubikey1…)",
    ))
}

/// A recipient in the one form carnet compares: X25519 in lower case, an SSH key without its
/// comment, a plugin recipient as written. `None` if it is none of them.
pub fn canonical_recipient(s: &str) -> Option<String> {
    let s = s.trim();
    if let Ok(r) = age::x25519::Recipient::from_str(s) {
        return Some(r.to_string());
    }
    if let Ok(r) = s.parse::<age::ssh::Recipient>() {
        return Some(r.to_string());
    }
    s.parse::<age::plugin::Recipient>()
        .ok()
        .map(|r| r.to_string())
}

/// Parses a recipient to encrypt to: `age1…` (X25519), `ssh-ed25519 …` / `ssh-rsa …` (a
/// comment after the key is allowed), or a plugin's `age1NAME1…`, whose plugin
/// (`age-plugin-NAME`) must then be on PATH.
pub fn parse_any_recipient(s: &str) -> anyhow::Result<Box<dyn age::Recipient + Send + Sync>> {
    let s = s.trim();
    if let Ok(r) = age::x25519::Recipient::from_str(s) {
        return Ok(Box::new(r));
    }
    if let Ok(r) = s.parse::<age::ssh::Recipient>() {
        return Ok(Box::new(r));
    }
    let kind = check_any_recipient(s)?;
    let r = s
        .parse::<age::plugin::Recipient>()
        .map_err(|e| anyhow!("invalid plugin recipient: {e}"))?;
    let plugin = age::plugin::RecipientPluginV1::new(
        r.plugin(),
        std::slice::from_ref(&r),
        &[],
        age::NoCallbacks,
    )
    .map_err(|e| match e {
        age::plugin::ResolveError::MissingPlugin { binary_name } => Error::input(
            format!(
                "encrypting to {} needs the age plugin {binary_name}, which is not installed",
                crate::text::ellipsize(s, 40)
            ),
            format!(
                "install {binary_name} (it must be on PATH), or ask for an age1… or SSH key instead"
            ),
        ),
        e => Error::input(format!("{kind} recipient: {e}"), "check the recipient"),
    })?;
    Ok(Box::new(plugin))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that knows the vault's passphrase (as CARNET_PASSPHRASE would) and has no
    /// terminal.
    struct Known;
    impl Passphrase for Known {
        fn get(&self, _: &str, _: bool) -> anyhow::Result<SecretString> {
            Ok(SecretString::from("the vault's passphrase"))
        }
    }

    #[test]
    fn a_plugin_asking_for_a_pin_never_gets_the_vaults_passphrase() {
        use age::Callbacks;
        let asker = Asker(PassphraseSource::new(Known));
        assert!(asker.request_passphrase("Enter PIN for YubiKey").is_none());
    }

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

    fn message(e: anyhow::Error) -> (String, String) {
        let err = e.downcast::<Error>().expect("a user-facing error");
        (err.to_string(), err.hint().unwrap_or_default())
    }

    fn any(text: &str) -> anyhow::Result<AnyIdentity> {
        read_any_identity(
            text.as_bytes(),
            Path::new("key.txt"),
            &PassphraseSource::default(),
        )
    }

    #[test]
    fn an_age_identity_file_gives_its_recipients_and_kinds() {
        let (id, text) = new_identity_file();
        let two = format!("{}\n  {}  \n", text.as_str(), {
            let other = age::x25519::Identity::generate();
            other.to_string().expose_secret().to_string()
        });
        let loaded = any(&two).unwrap();
        assert_eq!(loaded.identities.len(), 2);
        assert_eq!(loaded.kinds, vec![KeyKind::X25519, KeyKind::X25519]);
        assert_eq!(loaded.recipients[0], id.to_public().to_string());
        assert!(loaded.answers_to(&id.to_public().to_string().to_uppercase()));
        // A carnet keygen file's signing line is a comment: still one identity.
        let keygen = format!("{}{SIGNING_LINE} {}\n", text.as_str(), "00".repeat(32));
        assert_eq!(any(&keygen).unwrap().kinds, vec![KeyKind::X25519]);
    }

    #[test]
    fn a_plugin_identity_names_its_missing_plugin_and_its_commented_recipient() {
        let id = age::plugin::Identity::default_for_plugin("carnetnosuchplugin").unwrap();
        let e = any(&format!("{id}\n")).err().unwrap();
        let (msg, hint) = message(e);
        assert_eq!(
            msg,
            "key.txt is a key of the age plugin age-plugin-carnetnosuchplugin, which is not installed"
        );
        assert_eq!(
            hint,
            "install age-plugin-carnetnosuchplugin (it must be on PATH), then try again"
        );
        // Both ways plugins write their recipient in a comment.
        let r = "age1yubikey1q2w3e";
        assert_eq!(comment_recipient(&format!("    Recipient: {r}")), None);
        let valid = "age1unencrypted1k5fr0r";
        assert_eq!(
            comment_recipient(&format!("    Recipient: {valid}")).as_deref(),
            Some(valid)
        );
        assert_eq!(
            comment_recipient(&format!(" recipient: {valid}")).as_deref(),
            Some(valid)
        );
        assert_eq!(comment_recipient(&format!(" public key: {valid}")), None);
    }

    #[test]
    fn bad_identity_files_say_what_they_are_without_showing_the_line() {
        let (msg, hint) = message(
            any("AGE-SECRET-KEY-1NOTAKEYATALL-secretish\n")
                .err()
                .unwrap(),
        );
        assert_eq!(msg, "line 1 of key.txt is not an identity carnet can use");
        assert!(!msg.contains("secretish") && hint.contains("AGE-PLUGIN-"));
        let public = age::x25519::Identity::generate().to_public().to_string();
        let (msg, hint) = message(any(&format!("# a comment\n{public}\n")).err().unwrap());
        assert_eq!(msg, "key.txt holds a public key (line 2), not a secret one");
        assert!(hint.contains("not its .pub"), "{hint}");
        let (msg, _) = message(any("# only comments\n\n").err().unwrap());
        assert_eq!(
            msg,
            "key.txt is not an age identity file nor an SSH private key"
        );
        let (msg, _) = message(any("-----BEGIN PRIVATE KEY-----\nAAAA\n").err().unwrap());
        assert_eq!(
            msg,
            "key.txt is a PRIVATE KEY file, which age cannot use as an identity"
        );
        let (msg, hint) = message(
            any("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
                .err()
                .unwrap(),
        );
        assert_eq!(
            msg,
            "key.txt is not a valid SSH private key (damaged or cut short)"
        );
        assert!(hint.contains("not its .pub"), "{hint}");
    }

    #[test]
    fn recipients_of_every_kind_are_told_apart() {
        let x = age::x25519::Identity::generate().to_public().to_string();
        assert_eq!(check_any_recipient(&x).unwrap(), KeyKind::X25519);
        // An ssh-ed25519 public key (made by ssh-keygen), with a comment.
        let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINAyH8G8sbfOpdyIf5f9PKGzxN+WjEGlysadh/dYQnx5 alice@example";
        assert_eq!(check_any_recipient(ssh).unwrap(), KeyKind::SshEd25519);
        let canonical = canonical_recipient(ssh).unwrap();
        assert!(!canonical.contains("alice"), "{canonical}");
        assert_eq!(canonical_recipient(&canonical).unwrap(), canonical);
        assert_eq!(
            check_any_recipient("age1unencrypted1k5fr0r").unwrap(),
            KeyKind::Plugin("unencrypted".into())
        );
        assert_eq!(
            KeyKind::Plugin("yubikey".into()).to_string(),
            "plugin:yubikey"
        );
        let e = check_any_recipient("ecdsa-sha2-nistp256 AAAA").unwrap_err();
        assert!(e.to_string().contains("is not an age recipient"), "{e}");
        // A damaged ed25519 key is damaged, not "of an unsupported type".
        let bad =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDuVHRLqzyoDbR6R+5fsb1tjsZhU3ImdEfqtM5g3H8de";
        let e = check_any_recipient(bad).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a valid ssh-ed25519 public key"),
            "{e}"
        );
        assert!(parse_any_recipient(&x).is_ok() && parse_any_recipient(ssh).is_ok());
    }

    #[test]
    fn garbage_is_not_an_identity() {
        let e = read_identity_file(b"hello\n", Path::new("f"), &PassphraseSource::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("not an age X25519 identity file"));
    }
}
