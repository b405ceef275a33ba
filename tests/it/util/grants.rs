//! Helpers for the consent-grant tests (`tests/grants.rs`): a throwaway "lab" holding patients'
//! vaults and professionals' keys, ways to run the real `carnet` binary in it, and the tools to
//! take a bundle apart and build hostile ones.
//!
//! Bundles are taken apart and rebuilt without carnet's own code: the `age` crate (as the `age`
//! CLI would), the tests' zip forger (`util::zip`, so that duplicate, absolute, `..`, symlink
//! and mis-sized entries can be written at all), and a minisign signer built on `ed25519-dalek`
//! (so that a "patient" other than the vault's own can sign terms).

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use super::zip::{ZipEntry, zip_read, zip_write};
pub use super::{
    EXIT_FAILURE, EXIT_INTEGRITY, EXIT_USAGE, EXIT_VALIDITY, Out, TestCommand, Tool,
    assert_bytes_eq, assert_same, carnet, files, pseudo_random, require_tool, s, sha256_hex,
    snapshot,
};

/// The patients' vault passphrase, and the passphrase of protected professional keys (kept
/// different, so that a mix-up shows).
pub const PATIENT_PASS: &str = "patient passphrase for grant tests";
pub const PRO_PASS: &str = "professional passphrase for grant tests";

/// The paths every command of a test shares: the temp root (also the working directory) and
/// the professional's remembered-patients file, kept apart from any extraction target.
#[derive(Clone)]
pub struct Env {
    pub root: PathBuf,
    pub known: PathBuf,
}

impl Env {
    /// `carnet` with a clean environment: no CARNET_VAULT / CARNET_IDENTITY /
    /// CARNET_PASSPHRASE from the caller, cheap scrypt, this test's known-patients file, stdin
    /// from /dev/null, run in the temp root.
    pub fn cmd(&self) -> TestCommand {
        let mut c = carnet();
        c.env("CARNET_KNOWN_PATIENTS", &self.known)
            .current_dir(&self.root);
        c
    }

    /// Runs carnet with `args`, and `passphrase` as CARNET_PASSPHRASE when given.
    pub fn run<S: AsRef<OsStr>>(&self, passphrase: Option<&str>, args: &[S]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        if let Some(p) = passphrase {
            c.env("CARNET_PASSPHRASE", p);
        }
        c.run()
    }

    /// A path under the root, its parent folders created.
    pub fn path(&self, rel: &str) -> PathBuf {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        p
    }

    /// Writes a file under the root and returns its path.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        fs::write(&p, bytes).unwrap();
        p
    }

    /// `carnet keygen --name NAME -o keys/FILE EXTRA...`; unprotected keys are plain identity
    /// files (for the age CLI and for taking bundles apart), protected ones use PRO_PASS.
    pub fn keygen(&self, name: &str, file: &str, unprotected: bool, extra: &[&str]) -> Pro {
        let key = self.path(&format!("keys/{file}"));
        let mut args: Vec<String> = vec![
            "keygen".into(),
            "--name".into(),
            name.into(),
            "-o".into(),
            key.to_str().unwrap().into(),
        ];
        if unprotected {
            args.push("--unprotected".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = self.run(Some(PRO_PASS), &args).ok();
        let card = key.with_extension("card.toml");
        let recipient = out.text().trim().to_string();
        assert!(recipient.starts_with("age1"), "keygen prints the recipient");
        Pro {
            key,
            card,
            recipient,
            passphrase: (!unprotected).then(|| PRO_PASS.to_string()),
        }
    }

    /// A new vault under `patients/DIR`, initialised with `--name NAME`.
    pub fn patient(&self, dir: &str, name: &str) -> Patient {
        let p = Patient {
            env: self.clone(),
            vault: self.root.join("patients").join(dir),
        };
        p.ok(&["init", "--name", name]);
        p
    }

    /// `carnet open BUNDLE -i KEY ARGS...` as professional `pro`.
    pub fn open<S: AsRef<OsStr>>(&self, pro: &Pro, bundle: &Path, args: &[S]) -> Out {
        let mut all: Vec<std::ffi::OsString> = vec![
            "open".into(),
            bundle.into(),
            "-i".into(),
            pro.key.clone().into(),
        ];
        all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        self.run(pro.passphrase.as_deref(), &all)
    }
}

/// A temp folder holding everything a test makes; removed when dropped.
pub struct Lab {
    _tmp: tempfile::TempDir,
    pub env: Env,
}

impl Lab {
    pub fn new() -> Lab {
        let tmp = tempfile::Builder::new()
            .prefix("carnet-grants-")
            .tempdir()
            .expect("cannot create a temp dir");
        let root = tmp.path().to_path_buf();
        let known = root.join("pro-config").join("known-patients.toml");
        Lab {
            _tmp: tmp,
            env: Env { root, known },
        }
    }
}

impl std::ops::Deref for Lab {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

/// A professional's key, as `carnet keygen` wrote it.
#[derive(Clone)]
pub struct Pro {
    pub key: PathBuf,
    pub card: PathBuf,
    pub recipient: String,
    /// Set for a passphrase-protected key.
    pub passphrase: Option<String>,
}

impl Pro {
    /// The age identity of an unprotected key file.
    pub fn identity(&self) -> age::x25519::Identity {
        assert!(
            self.passphrase.is_none(),
            "only unprotected keys are read here"
        );
        let text = fs::read_to_string(&self.key).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .expect("an unprotected key holds an AGE-SECRET-KEY line");
        age::x25519::Identity::from_str(line).unwrap()
    }

    pub fn card(&self) -> toml::Table {
        toml::from_str(&fs::read_to_string(&self.card).unwrap()).expect("the card is TOML")
    }
}

/// A patient's vault, driven with PATIENT_PASS.
pub struct Patient {
    pub env: Env,
    pub vault: PathBuf,
}

impl Patient {
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        let mut all: Vec<std::ffi::OsString> = vec!["--vault".into(), self.vault.clone().into()];
        all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        self.env.run(Some(PATIENT_PASS), &all)
    }

    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.run(args).ok()
    }

    /// Writes `bytes` to a scratch file named `file` and adds it; returns the document id.
    pub fn add(&self, file: &str, bytes: &[u8], extra: &[&str]) -> String {
        let stem = self
            .vault
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let p = self.env.write(&format!("inputs/{stem}/{file}"), bytes);
        let mut args: Vec<std::ffi::OsString> = vec!["add".into(), "--json".into(), p.into()];
        args.extend(extra.iter().map(Into::into));
        let v = self.ok(&args).json();
        let added: Vec<&Value> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["status"] == "added")
            .collect();
        assert_eq!(added.len(), 1, "one document added: {v}");
        added[0]["id"].as_str().unwrap().to_string()
    }

    /// `pro add --card` for `pro`; returns the handle printed.
    pub fn add_pro(&self, pro: &Pro) -> String {
        let out = self.ok(&[
            OsStr::new("pro"),
            OsStr::new("add"),
            OsStr::new("--card"),
            pro.card.as_os_str(),
        ]);
        out.text().trim().to_string()
    }

    /// `grant ... --json`: returns the JSON report.
    pub fn grant(&self, args: &[&str]) -> Value {
        let mut all = vec!["grant", "--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    pub fn log(&self) -> Vec<Value> {
        self.ok(&["log", "--json"])
            .json()
            .as_array()
            .expect("log --json prints an array")
            .clone()
    }

    pub fn grants(&self, extra: &[&str]) -> Vec<Value> {
        let mut all = vec!["grants", "--json"];
        all.extend_from_slice(extra);
        self.ok(&all)
            .json()
            .as_array()
            .expect("grants --json prints an array")
            .clone()
    }

    /// The log entries with this action.
    pub fn log_actions(&self, action: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|e| e["action"] == action)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// age, as the age CLI does it

/// Decrypts an age file (binary or armored) with `id`.
pub fn age_decrypt(file: &[u8], id: &age::x25519::Identity) -> Vec<u8> {
    let r = age::armor::ArmoredReader::new(file);
    let d = age::Decryptor::new(r).expect("an age file");
    let mut r = d
        .decrypt(std::iter::once(id as &dyn age::Identity))
        .expect("decryptable with this identity");
    let mut out = Vec::new();
    r.read_to_end(&mut out).expect("an intact age payload");
    out
}

/// Encrypts `plain` to one age recipient (`age1...`), optionally armored.
pub fn age_encrypt(recipient: &str, plain: &[u8], armor: bool) -> Vec<u8> {
    let r = age::x25519::Recipient::from_str(recipient).expect("an age1 recipient");
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let armored = age::armor::ArmoredWriter::wrap_output(Vec::new(), format).unwrap();
    let mut w = enc.wrap_output(armored).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap().finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// minisign signatures, by a key of our own

/// An Ed25519 key signing in minisign's format, with carnet's key id (first 8 bytes of the
/// SHA-256 of the public key) and fingerprint (`SHA256:` + 16 bytes of it, hex in groups of 4).
pub struct MinisignKey {
    sk: ed25519_dalek::SigningKey,
}

impl MinisignKey {
    pub fn from_seed(seed: u8) -> MinisignKey {
        MinisignKey {
            sk: ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
        }
    }

    /// The key of a vault's keyring (its `signing_key`), which signs the vault's index.
    pub fn from_secret(secret: [u8; 32]) -> MinisignKey {
        MinisignKey {
            sk: ed25519_dalek::SigningKey::from_bytes(&secret),
        }
    }

    fn pk(&self) -> [u8; 32] {
        self.sk.verifying_key().to_bytes()
    }

    fn key_id(&self) -> [u8; 8] {
        Sha256::digest(self.pk())[..8].try_into().unwrap()
    }

    pub fn public(&self) -> String {
        use base64::Engine;
        let mut b = b"Ed".to_vec();
        b.extend_from_slice(&self.key_id());
        b.extend_from_slice(&self.pk());
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    pub fn fingerprint(&self) -> String {
        let hex = hex::encode(&Sha256::digest(self.pk())[..16]);
        let groups: Vec<&str> = (0..hex.len()).step_by(4).map(|i| &hex[i..i + 4]).collect();
        format!("SHA256:{}", groups.join(":"))
    }

    /// A minisign signature file for `msg`.
    pub fn sign(&self, msg: &[u8], trusted: &str) -> String {
        use base64::Engine;
        use ed25519_dalek::Signer;
        let b64 = base64::engine::general_purpose::STANDARD;
        let sig = self.sk.sign(msg).to_bytes();
        let mut first = b"Ed".to_vec();
        first.extend_from_slice(&self.key_id());
        first.extend_from_slice(&sig);
        let mut global = sig.to_vec();
        global.extend_from_slice(trusted.as_bytes());
        let global = self.sk.sign(&global).to_bytes();
        format!(
            "untrusted comment: signature from a test key\n{}\ntrusted comment: {trusted}\n{}\n",
            b64.encode(first),
            b64.encode(global)
        )
    }
}

/// An `ssh-ed25519` public key line (a valid curve point, from a seeded Ed25519 key).
pub fn ssh_ed25519_line(seed: u8, comment: &str) -> String {
    use base64::Engine;
    let pk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
        .verifying_key()
        .to_bytes();
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&pk);
    format!(
        "ssh-ed25519 {} {comment}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// An unencrypted OpenSSH private key file (`openssh-key-v1`) for the same seeded Ed25519 key
/// as `ssh_ed25519_line`, so that the `age` CLI can decrypt with it (no ssh-keygen needed).
pub fn ssh_ed25519_private_key(seed: u8, comment: &str) -> String {
    use base64::Engine;
    fn string(v: &mut Vec<u8>, b: &[u8]) {
        v.extend_from_slice(&(b.len() as u32).to_be_bytes());
        v.extend_from_slice(b);
    }
    let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let pk = sk.verifying_key().to_bytes();
    let mut public = Vec::new();
    string(&mut public, b"ssh-ed25519");
    string(&mut public, &pk);
    let mut private = Vec::new();
    private.extend_from_slice(&[0x5e, 0xed, 0x5e, 0xed, 0x5e, 0xed, 0x5e, 0xed]);
    string(&mut private, b"ssh-ed25519");
    string(&mut private, &pk);
    let mut full = [seed; 32].to_vec();
    full.extend_from_slice(&pk);
    string(&mut private, &full);
    string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut blob = b"openssh-key-v1\0".to_vec();
    string(&mut blob, b"none");
    string(&mut blob, b"none");
    string(&mut blob, b"");
    blob.extend_from_slice(&1u32.to_be_bytes());
    string(&mut blob, &public);
    string(&mut blob, &private);
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    let lines: Vec<&str> = (0..b64.len())
        .step_by(70)
        .map(|i| &b64[i..(i + 70).min(b64.len())])
        .collect();
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

// ---------------------------------------------------------------------------------------------
// Bundles taken apart

/// A decrypted bundle: its zip entries, and its terms parsed.
pub struct Unpacked {
    pub entries: Vec<ZipEntry>,
}

impl Unpacked {
    /// Decrypts `bundle` with `pro`'s (unprotected) key and reads the zip.
    pub fn of(bundle: &Path, pro: &Pro) -> Unpacked {
        let zip = age_decrypt(&fs::read(bundle).unwrap(), &pro.identity());
        Unpacked {
            entries: zip_read(&zip),
        }
    }

    pub fn get(&self, name: &str) -> &ZipEntry {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no entry {name} in the bundle"))
    }

    pub fn get_mut(&mut self, name: &str) -> &mut ZipEntry {
        self.entries
            .iter_mut()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no entry {name} in the bundle"))
    }

    pub fn terms_text(&self) -> String {
        String::from_utf8(self.get("grant.toml").data.clone()).unwrap()
    }

    pub fn terms(&self) -> toml::Table {
        toml::from_str(&self.terms_text()).expect("grant.toml is TOML")
    }

    /// The `[[documents]]` of the terms.
    pub fn documents(&self) -> Vec<toml::Table> {
        self.terms()["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_table().unwrap().clone())
            .collect()
    }

    /// The zip path of the document with this title.
    pub fn path_of(&self, title: &str) -> String {
        self.documents()
            .iter()
            .find(|d| d["title"].as_str() == Some(title))
            .unwrap_or_else(|| panic!("no document titled {title}"))["path"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Re-zips and re-encrypts to `recipient` (what anyone holding the card can do).
    pub fn seal(&self, recipient: &str, out: &Path) {
        fs::write(
            out,
            age_encrypt(recipient, &zip_write(&self.entries), false),
        )
        .unwrap();
    }
}
