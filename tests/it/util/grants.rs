//! Helpers for the consent-grant tests (`tests/grants.rs`): a throwaway "lab" holding patients'
//! vaults and professionals' keys, ways to run the real `carnet` binary in it, and the tools to
//! take a bundle apart and build hostile ones.
//!
//! Bundles are taken apart and rebuilt without carnet's own code: the `age` crate (as the `age`
//! CLI would), a minimal stored-zip reader and writer written here (so that duplicate, absolute,
//! `..`, symlink and mis-sized entries can be written at all), and a minisign signer built on
//! `ed25519-dalek` (so that a "patient" other than the vault's own can sign terms).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use assert_cmd::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Exit codes (src/error.rs).
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTEGRITY: i32 = 3;
pub const EXIT_VALIDITY: i32 = 4;

/// The patients' vault passphrase, and the passphrase of protected professional keys (kept
/// different, so that a mix-up shows).
pub const PATIENT_PASS: &str = "patient passphrase for grant tests";
pub const PRO_PASS: &str = "professional passphrase for grant tests";

// ---------------------------------------------------------------------------------------------
// Running carnet

/// What one run of carnet gave back.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub shown: String,
}

impl Out {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn describe(&self) -> String {
        let mut so = self.stdout_str();
        if so.len() > 2000 {
            so.truncate(2000);
            so.push('…');
        }
        format!(
            "carnet {}\nexit {:?}\n--- stdout\n{so}\n--- stderr\n{}",
            self.shown, self.code, self.stderr
        )
    }

    /// Asserts success and returns self.
    pub fn ok(self) -> Out {
        assert_eq!(self.code, Some(0), "expected success:\n{}", self.describe());
        self
    }

    /// Asserts exit `code` and an `error: ...` line (the first line of stderr starting with
    /// `error: `) holding every needle; returns that line.
    pub fn fails(&self, code: i32, needles: &[&str]) -> String {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}:\n{}",
            self.describe()
        );
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no `error: ` line:\n{}", self.describe()))
            .to_string();
        for n in needles {
            assert!(
                line.contains(n),
                "the error should mention {n:?}:\n{}",
                self.describe()
            );
        }
        assert!(
            !self.stderr.contains("Stack backtrace") && !self.stderr.contains("panicked"),
            "no backtrace or panic expected:\n{}",
            self.describe()
        );
        line
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }
}

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
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("carnet").expect("the carnet binary is built by cargo");
        c.env_remove("CARNET_VAULT")
            .env_remove("CARNET_IDENTITY")
            .env_remove("CARNET_PASSPHRASE")
            .env("CARNET_SCRYPT_LOG_N", "10")
            .env("CARNET_KNOWN_PATIENTS", &self.known)
            .stdin(Stdio::null())
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
        let o = c.output().expect("cannot run carnet");
        Out {
            code: o.status.code(),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            shown: args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        }
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
        let recipient = out.stdout_str().trim().to_string();
        assert!(recipient.starts_with("age1"), "keygen prints the recipient");
        Pro {
            name: name.to_string(),
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

    /// The patient fingerprints the professional remembers, by patient name.
    pub fn known_patients(&self) -> BTreeMap<String, String> {
        let Ok(text) = fs::read_to_string(&self.known) else {
            return BTreeMap::new();
        };
        let t: toml::Table = toml::from_str(&text).expect("known-patients file is TOML");
        t.get("patients")
            .and_then(|p| p.as_table())
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default()
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
    pub name: String,
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
        out.stdout_str().trim().to_string()
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
// Files and bytes

#[path = "../util/shared.rs"]
mod shared;
pub use shared::*;

/// The regular files under `dir`, relative, with their bytes.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .filter_map(|(p, e)| match e {
            Entry::File(b) => Some((p.to_str().unwrap().to_string(), b)),
            _ => None,
        })
        .collect()
}

/// Compares byte strings without dumping megabytes.
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: got {} bytes, want {}; first difference at offset {first}",
        got.len(),
        want.len()
    );
}

/// Finds a program on PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// A reference tool (`age`, `unzip`, `minisign`), or `None` when CARNET_SKIP_AGE_INTEROP=1.
/// A missing tool fails the test: interoperability must not pass by being skipped.
pub fn require_tool(prog: &str, apt_package: &str) -> Option<PathBuf> {
    if std::env::var("CARNET_SKIP_AGE_INTEROP").as_deref() == Ok("1") {
        eprintln!("CARNET_SKIP_AGE_INTEROP=1: skipping the test that needs `{prog}`");
        return None;
    }
    Some(which(prog).unwrap_or_else(|| {
        panic!(
            "`{prog}` is not on PATH: install it with `apt-get install -y {apt_package}` (CI \
             does), or set CARNET_SKIP_AGE_INTEROP=1 to skip the interoperability tests"
        )
    }))
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
// A minimal stored zip, read and written by hand

/// A zip entry as it will be written: any name (even hostile), any unix mode, any method, and
/// optionally sizes that lie about the data.
#[derive(Debug, Clone, PartialEq)]
pub struct ZipEntry {
    pub name: String,
    pub data: Vec<u8>,
    /// Unix mode (file type and permissions), written in the high 16 bits of external attrs.
    pub mode: u32,
    /// 0 = stored, 8 = deflated.
    pub method: u16,
    /// Sizes written in both headers instead of the data's length.
    pub declared_size: Option<u32>,
}

impl ZipEntry {
    pub fn file(name: &str, data: &[u8]) -> ZipEntry {
        ZipEntry {
            name: name.to_string(),
            data: data.to_vec(),
            mode: 0o100644,
            method: 0,
            declared_size: None,
        }
    }

    pub fn symlink(name: &str, target: &str) -> ZipEntry {
        ZipEntry {
            mode: 0o120777,
            ..ZipEntry::file(name, target.as_bytes())
        }
    }
}

fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    for (i, slot) in t.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    t
}

pub fn crc32(data: &[u8]) -> u32 {
    let t = crc_table();
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn le16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn le32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn rd16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}
fn rd32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Writes a zip (no data descriptors, no ZIP64) holding exactly `entries`, in order, names
/// flagged UTF-8.
pub fn zip_write(entries: &[ZipEntry]) -> Vec<u8> {
    assert!(entries.len() < 0xffff, "no ZIP64 here");
    let mut out = Vec::new();
    let mut central = Vec::new();
    // 2024-03-01 12:00:00 in DOS format.
    let (time, date) = (12u16 << 11, ((2024u16 - 1980) << 9) | (3 << 5) | 1);
    for e in entries {
        let offset = out.len() as u32;
        let crc = crc32(&e.data);
        let size = e.declared_size.unwrap_or(e.data.len() as u32);
        let name = e.name.as_bytes();
        le32(&mut out, 0x0403_4b50);
        le16(&mut out, 20);
        le16(&mut out, 0x0800);
        le16(&mut out, e.method);
        le16(&mut out, time);
        le16(&mut out, date);
        le32(&mut out, crc);
        le32(&mut out, size);
        le32(&mut out, size);
        le16(&mut out, name.len() as u16);
        le16(&mut out, 0);
        out.extend_from_slice(name);
        out.extend_from_slice(&e.data);

        le32(&mut central, 0x0201_4b50);
        le16(&mut central, (3 << 8) | 20);
        le16(&mut central, 20);
        le16(&mut central, 0x0800);
        le16(&mut central, e.method);
        le16(&mut central, time);
        le16(&mut central, date);
        le32(&mut central, crc);
        le32(&mut central, size);
        le32(&mut central, size);
        le16(&mut central, name.len() as u16);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le32(&mut central, e.mode << 16);
        le32(&mut central, offset);
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    le32(&mut out, 0x0605_4b50);
    le16(&mut out, 0);
    le16(&mut out, 0);
    le16(&mut out, entries.len() as u16);
    le16(&mut out, entries.len() as u16);
    le32(&mut out, cd_size);
    le32(&mut out, cd_offset);
    le16(&mut out, 0);
    out
}

/// Reads the entries of a stored zip through its central directory (as carnet writes them:
/// sizes in the central directory, no ZIP64).
pub fn zip_read(z: &[u8]) -> Vec<ZipEntry> {
    let eocd = (0..=z.len() - 22)
        .rev()
        .find(|&i| z[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .expect("end of central directory");
    let count = rd16(z, eocd + 10);
    let mut at = rd32(z, eocd + 16);
    let mut entries = Vec::new();
    for _ in 0..count {
        assert_eq!(rd32(z, at), 0x0201_4b50, "central directory entry");
        let method = rd16(z, at + 10) as u16;
        let csize = rd32(z, at + 20);
        let (n, x, c) = (rd16(z, at + 28), rd16(z, at + 30), rd16(z, at + 32));
        let mode = (rd32(z, at + 38) >> 16) as u32;
        let local = rd32(z, at + 42);
        let name = String::from_utf8(z[at + 46..at + 46 + n].to_vec()).unwrap();
        assert_eq!(rd32(z, local), 0x0403_4b50, "local header of {name}");
        let data_at = local + 30 + rd16(z, local + 26) + rd16(z, local + 28);
        entries.push(ZipEntry {
            name,
            data: z[data_at..data_at + csize].to_vec(),
            mode,
            method,
            declared_size: None,
        });
        at += 46 + n + x + c;
    }
    entries
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
