//! Helpers for the integrity tests: throwaway vaults driven through the real `carnet` binary,
//! copies of them to tamper with, and the two kinds of tampering the threat model names:
//! what someone who holds the key can do (decrypt a log segment, edit it, re-encrypt it), and
//! what someone who only knows the public recipient can do (encrypt new files to it).
//!
//! Only the `age`, `hmac`, `hkdf`, `sha2` and `serde_json` crates are used to touch the vault,
//! never carnet's own code, so a format bug cannot hide itself.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Deref;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use serde_json::Value;

use sha2::{Digest, Sha256};

use super::{is_document_object as shard_free, shard_objects as shard_objects_of};

pub use super::{EXIT_INTEGRITY, KeyMode, Out, TestCommand, copy_dir, flip_middle, replace_dir};

/// A vault in a temp folder (`root/vault`, scratch in `root/work`, key in `root/key.txt`) with
/// the tools to tamper with it. Derefs to the one test `Vault` for its paths and key.
pub struct Vault {
    v: super::Vault,
    /// The identity that opens the vault (external mode), for the key-holder tampering.
    age_identity: Option<age::x25519::Identity>,
}

impl Deref for Vault {
    type Target = super::Vault;
    fn deref(&self) -> &super::Vault {
        &self.v
    }
}

const PREFIX: &str = "carnet-integrity-";
/// The shared fixtures live for the whole run (a `static` is never dropped): they get their own
/// prefix so that the next run can clear them away.
const FIXTURE_PREFIX: &str = "carnet-integrity-fixture-";

fn temp_root_with(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("cannot create a temp dir")
}

fn temp_root() -> tempfile::TempDir {
    temp_root_with(PREFIX)
}

/// Removes fixtures left by earlier runs (older than an hour, so never a concurrent run's).
fn clear_old_fixtures() {
    let Ok(rd) = fs::read_dir(env!("CARGO_TARGET_TMPDIR")) else {
        return;
    };
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if old && e.file_name().to_string_lossy().starts_with(FIXTURE_PREFIX) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

impl Vault {
    /// A new vault (`carnet init`) opened by a fresh age identity file.
    pub fn new() -> Vault {
        Vault::with_mode(KeyMode::External)
    }

    pub fn with_mode(mode: KeyMode) -> Vault {
        Vault::create(mode, temp_root())
    }

    fn create(mode: KeyMode, tmp: tempfile::TempDir) -> Vault {
        let v = super::Vault::blank(mode, tmp);
        let age_identity = (mode == KeyMode::External).then(|| {
            let text = fs::read_to_string(&v.key_file).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
                .expect("an identity file");
            age::x25519::Identity::from_str(line).unwrap()
        });
        let v = Vault { v, age_identity };
        v.ok(&["init", "--name", "Marie Dupont"]);
        v
    }

    /// A copy of this vault (the folder, byte for byte) in a new temp folder, same key.
    pub fn copy(&self) -> Vault {
        self.copy_into(temp_root())
    }

    fn copy_into(&self, tmp: tempfile::TempDir) -> Vault {
        let mut v = super::Vault::blank(KeyMode::Passphrase, tmp);
        copy_dir(&self.dir, &v.dir);
        if self.key_file.exists() {
            fs::copy(&self.key_file, &v.key_file).unwrap();
        }
        v.mode = self.mode;
        v.passphrase = self.passphrase.clone();
        v.identity = self.identity.as_ref().map(|_| v.key_file.clone());
        Vault {
            v,
            age_identity: self.age_identity.clone(),
        }
    }

    /// `carnet --vault DIR [-i KEY] ARGS…`, ready to run.
    pub fn cmd(&self, args: &[&str]) -> TestCommand {
        let mut c = self.v.cmd();
        c.args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.v.run(args)
    }

    /// Runs and asserts exit 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Out {
        self.v.ok(args)
    }

    pub fn verify(&self) -> Out {
        self.run(&["verify"])
    }

    /// Writes `content` to `work/name` and adds it; returns the new document id.
    pub fn add(&self, name: &str, content: &[u8]) -> String {
        let p = self.v.write(name, content);
        self.v.add(&p, &[])
    }

    /// `carnet log --json EXTRA…`, parsed.
    pub fn log(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["log", "--json"];
        args.extend_from_slice(extra);
        let o = self.ok(&args);
        serde_json::from_slice::<Vec<Value>>(&o.stdout).expect("log --json prints an array")
    }

    /// `carnet ls --json`: the document ids.
    pub fn doc_ids(&self) -> Vec<String> {
        let o = self.ok(&["ls", "--json"]);
        let v: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
        v.iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Every file of the vault, relative, sorted (`lock` included).
    pub fn files(&self) -> Vec<String> {
        super::files(&self.dir).into_keys().collect()
    }

    /// The document objects on disk, relative (`objects/xx/ID.age`), leaving out the metadata
    /// shards.
    pub fn objects(&self) -> Vec<String> {
        let shards = self.shard_objects();
        self.files()
            .into_iter()
            .filter(|f| f.starts_with("objects/") && shard_free(f, &shards))
            .collect()
    }

    /// The objects holding the metadata shards (format 2), as the key reads them.
    pub fn shard_objects(&self) -> std::collections::BTreeSet<String> {
        let pass = (self.mode == KeyMode::Passphrase).then_some(super::PASSPHRASE);
        let key = (self.mode == KeyMode::External).then_some(self.key_file.as_path());
        shard_objects_of(&self.dir, pass, key).unwrap_or_default()
    }

    /// The log segments on disk, relative (`log/NNNNNNNN.age`).
    pub fn segments(&self) -> Vec<String> {
        self.files()
            .into_iter()
            .filter(|f| f.starts_with("log/"))
            .collect()
    }

    /// Every file's bytes except the lock: to check that a refused command wrote nothing.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = super::files(&self.dir);
        files.remove("lock");
        files
    }

    /// Asserts the vault holds exactly the files and bytes of `before` (ignoring the lock).
    #[track_caller]
    pub fn assert_unchanged(&self, before: &BTreeMap<String, Vec<u8>>, what: &str) {
        super::assert_same_files(
            &self.snapshot(),
            before,
            &format!("{what}: the vault was written to"),
        );
    }

    // ---- what anyone with the public recipient can do ----

    /// The recipient, as anyone can read it from the plaintext config.
    pub fn recipient(&self) -> age::x25519::Recipient {
        let text = fs::read_to_string(self.path("carnet.toml")).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("recipients"))
            .expect("carnet.toml names its recipients");
        let r = line.split('"').nth(1).unwrap();
        age::x25519::Recipient::from_str(r).unwrap()
    }

    /// The vault id, from the plaintext config.
    pub fn vault_id(&self) -> String {
        let text = fs::read_to_string(self.path("carnet.toml")).unwrap();
        let line = text.lines().find(|l| l.starts_with("vault_id")).unwrap();
        line.split('"').nth(1).unwrap().to_string()
    }

    /// Encrypts to the vault's public recipient, as `age -r RECIPIENT` does.
    pub fn encrypt_to_recipient(&self, plain: &[u8]) -> Vec<u8> {
        age::encrypt(&self.recipient(), plain).unwrap()
    }

    // ---- what someone holding the key can do ----

    pub fn identity(&self) -> &age::x25519::Identity {
        self.age_identity
            .as_ref()
            .expect("key-holder tampering needs an external-identity vault")
    }

    /// Decrypts a vault file with the identity, as `age -d -i KEY` does.
    pub fn decrypt(&self, rel: &str) -> Vec<u8> {
        let bytes = fs::read(self.path(rel)).unwrap();
        age::decrypt(self.identity(), &bytes).unwrap()
    }

    /// The JSON lines of a log segment.
    pub fn segment_lines(&self, rel: &str) -> Vec<String> {
        String::from_utf8(self.decrypt(rel))
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Re-encrypts `lines` to the recipient and puts them in place of the segment.
    pub fn write_segment_lines(&self, rel: &str, lines: &[String]) {
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        fs::write(self.path(rel), self.encrypt_to_recipient(text.as_bytes())).unwrap();
    }

    /// Decrypts, edits and re-encrypts a segment.
    pub fn edit_segment(&self, rel: &str, edit: impl FnOnce(&mut Vec<String>)) {
        let mut lines = self.segment_lines(rel);
        edit(&mut lines);
        self.write_segment_lines(rel, &lines);
    }
}

/// Asserts an integrity failure (exit 3) with a `FAILED` line that names `needle`.
#[track_caller]
pub fn assert_detected(out: &Out, needle: &str) {
    assert_eq!(
        out.code,
        Some(EXIT_INTEGRITY),
        "expected exit 3 naming {needle}:\n{out}"
    );
    assert!(
        out.failed_lines().iter().any(|l| l.contains(needle)),
        "no FAILED line names {needle}:\n{out}"
    );
}

/// Asserts exit 3 with `needle` in the message, wherever it is printed: commands other than
/// `verify` (and `verify` when it cannot even open the vault) say it in `error:` on stderr.
#[track_caller]
pub fn assert_refused(out: &Out, needle: &str) {
    assert_eq!(out.code, Some(EXIT_INTEGRITY), "expected exit 3:\n{out}");
    assert!(
        out.text().contains(needle) || out.stderr.contains(needle),
        "the message does not name {needle}:\n{out}"
    );
}

/// A random 128-bit id in lowercase hex, like carnet's object names.
pub fn random_id() -> String {
    let b: [u8; 16] = rand::random();
    hex::encode(b)
}

// ---- a vault with a two-segment log, built once ----

/// The shared fixtures: built once per test run, copied by each test that needs them.
pub struct Big {
    /// A vault whose log holds exactly 256 entries: segment 0 is full.
    pub at_256: Vault,
    /// The same vault later: 280 entries, over `log/00000000.age` and `log/00000001.age`.
    pub at_280: Vault,
    /// A document id in it.
    pub doc: String,
}

/// Built with real `carnet show` calls (about 10 ms each in release, 35 ms in debug).
pub fn big() -> &'static Big {
    static BIG: OnceLock<Big> = OnceLock::new();
    BIG.get_or_init(|| {
        clear_old_fixtures();
        let v = Vault::create(KeyMode::External, temp_root_with(FIXTURE_PREFIX));
        let doc = v.add("compte-rendu.txt", b"Compte rendu de cardiologie\n");
        v.add("ordonnance.txt", b"Ordonnance: paracetamol\n");
        // init, add, add: 3 entries so far.
        for _ in 3..256 {
            v.ok(&["show", &doc]);
        }
        let at_256 = v.copy_into(temp_root_with(FIXTURE_PREFIX));
        for _ in 256..280 {
            v.ok(&["show", &doc]);
        }
        Big {
            at_256,
            at_280: v,
            doc,
        }
    })
}

// ---- forging with the primitives, as carnet's format describes ----

type HmacSha256 = hmac::Hmac<Sha256>;

/// HMAC-SHA256 with carnet's domain separation: `label || 0 || data`.
pub fn mac(key: &[u8; 32], label: &str, data: &[u8]) -> String {
    use hmac::{Mac, digest::KeyInit};
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap();
    m.update(label.as_bytes());
    m.update(&[0]);
    m.update(data);
    hex::encode(m.finalize().into_bytes())
}

/// The keyring binding of `keys.age` for an identity whose secret string is `secret`.
pub fn binding(secret: &str, vault_id: &str, mac_key: &[u8; 32], signing: &[u8; 32]) -> String {
    use hmac::{Mac, digest::KeyInit};
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"carnet keyring binding v1"), secret.as_bytes());
    let mut k = [0u8; 32];
    hk.expand(vault_id.as_bytes(), &mut k).unwrap();
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(&k).unwrap();
    m.update(b"carnet-keyring-v1\0");
    m.update(vault_id.as_bytes());
    m.update(&[0]);
    m.update(mac_key);
    m.update(signing);
    hex::encode(m.finalize().into_bytes())
}

/// Replaces keys.age, the manifest, the log and the head with a complete, self-consistent
/// vault history made from scratch: a keyring with a new MAC key, a manifest listing one
/// document whose object is also made here, and a two-entry log (`init`, `add`) authenticated
/// with that key, chained, and named by the head.
///
/// `binding_secret` is the identity secret used for the keyring binding. Someone who only knows
/// the public recipient has no such secret and must use one of their own; the vault owner's
/// secret gives the control case, which carnet must accept (it proves the forgery itself is
/// well formed, so a refusal is due to the binding and nothing else).
pub fn forge_history(v: &Vault, binding_secret: &str) -> String {
    let vault_id = v.vault_id();
    let recipient = v.recipient().to_string();
    let mac_key: [u8; 32] = rand::random();
    // Whoever holds the binding secret can read the real keyring and keep its signing key (the
    // one carnet.toml names, which signs index.json); an attacker can only make up a new one.
    let signing: [u8; 32] = binding_secret
        .parse::<age::x25519::Identity>()
        .ok()
        .and_then(|id| {
            let bytes = fs::read(v.path("keys.age")).ok()?;
            let d = age::Decryptor::new(&bytes[..]).ok()?;
            let mut r = d.decrypt(std::iter::once(&id as &dyn age::Identity)).ok()?;
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut plain).ok()?;
            let k: Value = serde_json::from_slice(&plain).ok()?;
            hex::decode(k["signing_key"].as_str()?)
                .ok()?
                .try_into()
                .ok()
        })
        .unwrap_or_else(rand::random);
    let keyring = serde_json::json!({
        "format": 1,
        "vault_id": vault_id,
        "mac_key": hex::encode(mac_key),
        "signing_key": hex::encode(signing),
        "bindings": { recipient.clone(): binding(binding_secret, &vault_id, &mac_key, &signing) },
    });
    fs::write(
        v.path("keys.age"),
        v.encrypt_to_recipient(keyring.to_string().as_bytes()),
    )
    .unwrap();

    // Wipe the real history: objects, log.
    fs::remove_dir_all(v.path("objects")).unwrap();
    fs::create_dir(v.path("objects")).unwrap();
    fs::remove_dir_all(v.path("log")).unwrap();
    fs::create_dir(v.path("log")).unwrap();

    let plain = b"Faux certificat medical\n";
    let object_name = random_id();
    let object = v.encrypt_to_recipient(plain);
    let fan = v.path(&format!("objects/{}", &object_name[..2]));
    fs::create_dir_all(&fan).unwrap();
    fs::write(fan.join(format!("{object_name}.age")), &object).unwrap();
    let doc_id = random_id();
    let now = "2026-01-02T03:04:05Z";
    let manifest_for = |docs: Value, generation: u64| {
        serde_json::json!({
            "format": 1,
            "vault_id": vault_id,
            "generation": generation,
            "patient": {},
            "recipients": [recipient],
            "documents": docs,
        })
        .to_string()
    };
    let m1 = manifest_for(serde_json::json!([]), 1);
    let m2 = manifest_for(
        serde_json::json!([{
            "id": doc_id,
            "title": "Certificat",
            "category": "autre",
            "date": "2026-01-01",
            "author": null,
            "tags": [],
            "media_type": "text/plain",
            "size": plain.len(),
            "sha256": hex::encode(Sha256::digest(plain)),
            "added_at": now,
            "original_name": "certificat.txt",
            "object": object_name,
            "object_size": object.len(),
            "object_blake3": blake3::hash(&object).to_hex().to_string(),
        }]),
        2,
    );
    fs::write(
        v.path("manifest.age"),
        v.encrypt_to_recipient(m2.as_bytes()),
    )
    .unwrap();
    let sha = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    let genesis = "0".repeat(64);
    let e1 = serde_json::json!({
        "seq": 1, "time": now, "actor": "patient", "action": "init", "documents": [],
        "details": {}, "version": "0.1.0", "prev": genesis,
        "manifest_sha256": sha(&m1), "manifest_generation": 1,
    })
    .to_string();
    let e2 = serde_json::json!({
        "seq": 2, "time": now, "actor": "patient", "action": "add", "documents": [doc_id],
        "details": {"count": 1, "duplicates": 0}, "version": "0.1.0", "prev": sha(&e1),
        "manifest_sha256": sha(&m2), "manifest_generation": 2, "objects_added": [object_name],
    })
    .to_string();
    let line = |e: &str| {
        format!(
            r#"{{"entry":{e},"mac":"{}"}}"#,
            mac(&mac_key, "carnet log entry v1", e.as_bytes())
        )
    };
    let log = format!("{}\n{}\n", line(&e1), line(&e2));
    fs::write(
        v.path("log/00000000.age"),
        v.encrypt_to_recipient(log.as_bytes()),
    )
    .unwrap();
    let head = serde_json::json!({
        "vault_id": vault_id, "log_seq": 2, "log_hash": sha(&e2),
        "manifest_sha256": sha(&m2), "manifest_generation": 2,
        "config_sha256": hex::encode(Sha256::digest(fs::read(v.path("carnet.toml")).unwrap())),
    })
    .to_string();
    let stored = format!(
        r#"{{"head":{head},"mac":"{}"}}"#,
        mac(&mac_key, "carnet head v1", head.as_bytes())
    );
    fs::write(
        v.path("head.age"),
        v.encrypt_to_recipient(stored.as_bytes()),
    )
    .unwrap();
    sign_index(v, &vault_id, 2, &signing);
    doc_id
}

/// Writes and signs the index of the vault as it stands (format 2: a top and one part per
/// fan), as whoever holds the keyring's signing key can: `verify` compares the index with the
/// log, so a forged history needs a matching index to be well formed.
fn sign_index(v: &Vault, vault_id: &str, log_seq: u64, signing: &[u8; 32]) {
    let entry = |rel: &str| {
        let bytes = fs::read(v.path(rel)).unwrap();
        serde_json::json!({"size": bytes.len(), "blake3": blake3::hash(&bytes).to_hex().to_string()})
    };
    let mut files = serde_json::Map::new();
    let mut fans: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for rel in v.files() {
        if rel.starts_with("index") || rel == "lock" || rel.starts_with("tmp/") {
            continue;
        }
        match rel.strip_prefix("objects/") {
            Some(o) => {
                fans.entry(o[..2].to_string())
                    .or_default()
                    .insert(rel.clone(), entry(&rel));
            }
            None => {
                files.insert(rel.clone(), entry(&rel));
            }
        }
    }
    let _ = fs::remove_dir_all(v.path("index"));
    fs::create_dir(v.path("index")).unwrap();
    let mut parts = serde_json::Map::new();
    for (fan, objects) in fans {
        let rel = format!("index/{fan}.json");
        let part =
            serde_json::json!({"format": 2, "vault_id": vault_id, "fan": fan, "files": objects});
        fs::write(v.path(&rel), part.to_string()).unwrap();
        parts.insert(rel.clone(), entry(&rel));
    }
    let top = serde_json::json!({
        "format": 2, "vault_id": vault_id, "log_seq": log_seq, "documents": 1,
        "files": files, "parts": parts,
    })
    .to_string();
    let sig = super::grants::MinisignKey::from_secret(*signing).sign(
        top.as_bytes(),
        &format!("carnet index {vault_id} seq {log_seq}"),
    );
    fs::write(v.path("index.json"), &top).unwrap();
    fs::write(v.path("index.json.minisig"), sig).unwrap();
}
