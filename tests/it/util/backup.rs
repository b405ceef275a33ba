//! Helpers for the backup tests: a throwaway vault driven through the real `carnet` binary,
//! run with or without its key, and ways to look at, damage and forge backups.
//!
//! Keyless runs get no `CARNET_PASSPHRASE`, no `CARNET_IDENTITY`, no `-i`, stdin from
//! /dev/null and (through `setsid`, when present) no controlling terminal, so any attempt to
//! ask for the key fails instead of hanging.
//!
//! Hostile zips are written with the tests' own forger (`util::zip`); carnet's own code is never
//! used to touch a backup.
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use super::zip::{Forge, ZipEntry, forge, zip_names, zip_read, zip_write};
pub use super::{
    EXIT_FAILURE, EXIT_INTEGRITY, EXIT_USAGE, KeyMode, Out, TestCommand, assert_same_files,
    carnet_via, copy_dir, files, flip_middle, pseudo_random, tree,
};

/// carnet with a clean environment, stdin from /dev/null, no key; `--vault dir`.
/// With `detach`, started through `setsid` so it has no controlling terminal either.
pub fn carnet_in(dir: &Path, detach: bool) -> TestCommand {
    let setsid = "/usr/bin/setsid";
    let wrapper: &[&str] = if detach && Path::new(setsid).exists() {
        &[setsid, "-w"]
    } else {
        &[]
    };
    let mut c = carnet_via(wrapper);
    c.arg("--vault").arg(dir);
    c
}

/// A vault in a temp folder (`root/vault`, scratch space in `root/work`, key in
/// `root/key.txt`), driven with or without its key.
pub struct Sandbox {
    v: super::Vault,
    pub root: PathBuf,
    pub vault: PathBuf,
}

impl Deref for Sandbox {
    type Target = super::Vault;
    fn deref(&self) -> &super::Vault {
        &self.v
    }
}

impl Sandbox {
    /// A new vault (`init`) opened by the given kind of key.
    pub fn new(mode: KeyMode) -> Sandbox {
        let v = super::Vault::blank(mode, super::temp_dir("carnet-backup-"));
        let s = Sandbox {
            root: v.root().to_path_buf(),
            vault: v.dir.clone(),
            v,
        };
        s.keyed_ok(&s.vault, &["init"]);
        s
    }

    /// A path under the sandbox root (not created).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// carnet on `dir` with the key (passphrase in the environment, or `-i key.txt`).
    pub fn keyed(&self, dir: &Path) -> TestCommand {
        self.v.cmd_on(dir, &[])
    }

    /// carnet on `dir` with no key, no passphrase and no terminal.
    pub fn keyless(&self, dir: &Path) -> TestCommand {
        let mut c = carnet_in(dir, true);
        c.current_dir(&self.root);
        c
    }

    pub fn keyed_run(&self, dir: &Path, args: &[&str]) -> Out {
        let mut c = self.keyed(dir);
        c.args(args);
        c.run()
    }

    pub fn keyless_run(&self, dir: &Path, args: &[&str]) -> Out {
        let mut c = self.keyless(dir);
        c.args(args);
        c.run()
    }

    #[track_caller]
    pub fn keyed_ok(&self, dir: &Path, args: &[&str]) -> Out {
        let o = self.keyed_run(dir, args);
        o.assert_ok("with the key");
        o
    }

    #[track_caller]
    pub fn keyless_ok(&self, dir: &Path, args: &[&str]) -> Out {
        let o = self.keyless_run(dir, args);
        o.assert_ok("no key");
        o
    }

    /// Writes `bytes` to `work/rel` and adds it to the vault; returns the document id.
    pub fn add(&self, rel: &str, bytes: &[u8]) -> String {
        let p = self.v.write(rel, bytes);
        let ids = self.add_path(&p);
        assert_eq!(ids.len(), 1, "one document added from {rel}");
        ids.into_iter().next().unwrap()
    }

    /// `add --json PATH`; the ids of the documents added.
    pub fn add_path(&self, p: &Path) -> Vec<String> {
        self.v.add_all(p, &[])
    }

    /// Adds a folder of `n` pseudo-random documents of `size` bytes in one `add`.
    pub fn add_many(&self, name: &str, n: usize, size: usize, seed: u64) -> Vec<String> {
        let d = self.work.join(name);
        fs::create_dir_all(&d).unwrap();
        for i in 0..n {
            fs::write(
                d.join(format!("doc{i:04}.txt")),
                pseudo_random(size, seed * 1_000_003 + i as u64),
            )
            .unwrap();
        }
        let ids = self.add_path(&d);
        assert_eq!(ids.len(), n, "every document of {name} added");
        ids
    }

    /// A small vault's content: three documents.
    pub fn add_sample(&self) -> Vec<String> {
        vec![
            self.add(
                "ordonnance.txt",
                b"Ordonnance: amoxicilline 1 g matin et soir\n",
            ),
            self.add("bilan.txt", b"Bilan sanguin: normal\n"),
            self.add("radio.bin", &pseudo_random(50_000, 7)),
        ]
    }

    /// `ls --json` of a vault (needs the key).
    pub fn ls(&self, dir: &Path) -> Value {
        self.keyed_ok(dir, &["ls", "--json"]).json()
    }

    /// `log --json` of a vault (needs the key).
    pub fn log(&self, dir: &Path) -> Vec<Value> {
        self.keyed_ok(dir, &["log", "--json"])
            .json()
            .as_array()
            .expect("log --json prints an array")
            .clone()
    }

    /// `verify --deep` passes on `dir` (needs the key).
    #[track_caller]
    pub fn assert_deep_ok(&self, dir: &Path) {
        let o = self.keyed_run(dir, &["verify", "--deep"]);
        o.assert_ok(&format!("verify --deep on {}", dir.display()));
        assert!(o.text().starts_with("ok: "), "verify --deep: {o}");
    }

    /// Runs `backup ARGS --json` without the key and returns the report.
    #[track_caller]
    pub fn backup(&self, args: &[&str]) -> Value {
        let mut all = vec!["backup", "--json"];
        all.extend_from_slice(args);
        self.keyless_ok(&self.vault, &all).json()
    }
}

/// Both forms of `verify --offline` on the same folder.
pub struct Offline {
    pub code: Option<i32>,
    /// `(path, message)` from the `FAILED` lines.
    pub failed: Vec<(String, String)>,
    pub plain: Out,
    pub json: Value,
}

impl Offline {
    #[track_caller]
    pub fn assert_passes(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "verify --offline should pass\n{}",
            self.plain
        );
        assert!(self.failed.is_empty(), "{}", self.plain);
        assert!(self.plain.text().starts_with("ok: "), "{}", self.plain);
    }

    /// Exit 3, with `path` named on a FAILED line whose message contains `msg`.
    #[track_caller]
    pub fn assert_fails_naming(&self, path: &str, msg: &str) {
        assert_eq!(
            self.code,
            Some(EXIT_INTEGRITY),
            "verify --offline should fail with exit 3\n{}",
            self.plain
        );
        assert!(
            self.failed
                .iter()
                .any(|(p, m)| p == path && m.contains(msg)),
            "verify --offline should name {path} ({msg:?})\n{}",
            self.plain
        );
    }
}

pub fn offline(dir: &Path, extra: &[&str]) -> Offline {
    let mut args = vec!["verify", "--offline"];
    args.extend_from_slice(extra);
    let plain = carnet_in(dir, true).args(&args).run();
    args.push("--json");
    let js = carnet_in(dir, true).args(&args).run();
    assert_eq!(
        plain.code, js.code,
        "verify --offline and --json disagree on the exit code\n{plain}\n{js}"
    );
    let json = js.json();
    let failed = plain.failed();
    let json_problems: Vec<(String, String)> = json["problems"]
        .as_array()
        .expect("problems is an array")
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_string(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut a = failed.clone();
    let mut b = json_problems;
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "FAILED lines and --json problems disagree\n{plain}\n{js}"
    );
    assert_eq!(
        json["ok"].as_bool(),
        Some(plain.code == Some(0)),
        "--json ok disagrees with the exit code\n{js}"
    );
    Offline {
        code: plain.code,
        failed,
        plain,
        json,
    }
}

/// The key fingerprint `--expect` takes, computed from `carnet.toml` alone: `SHA256:` and the
/// first 16 bytes of SHA-256 of the Ed25519 public key, in hex, in groups of four.
pub fn fingerprint(vault: &Path) -> String {
    let toml_text = fs::read_to_string(vault.join("carnet.toml")).unwrap();
    let cfg: toml::Table = toml::from_str(&toml_text).unwrap();
    let key = cfg["signing_key"]
        .as_str()
        .expect("signing_key in carnet.toml");
    let b = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("signing_key is base64");
    assert_eq!(b.len(), 42, "a minisign public key: Ed + key id + key");
    assert_eq!(&b[..2], b"Ed");
    let d = Sha256::digest(&b[10..]);
    let hex = hex::encode(&d[..16]);
    let groups: Vec<&str> = (0..32).step_by(4).map(|i| &hex[i..i + 4]).collect();
    format!("SHA256:{}", groups.join(":"))
}

/// The document objects of a vault or mirror (`objects/xx/ID.age`), relative, leaving out the
/// metadata shards (told apart with the test passphrase, or the key file beside `dir`).
pub fn objects(dir: &Path) -> Vec<String> {
    let shards = super::shard_objects(dir, Some(super::PASSPHRASE), None)
        .or_else(|| {
            let key = dir.parent()?.join("key.txt");
            super::shard_objects(dir, None, Some(&key))
        })
        .unwrap_or_default();
    files(dir)
        .into_keys()
        .filter(|p| p.starts_with("objects/") && super::is_document_object(p, &shards))
        .collect()
}

/// Counts `objects/xx/*.age` without reading them (cheap enough to poll).
pub fn count_objects(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir.join("objects")) else {
        return 0;
    };
    rd.flatten()
        .map(|fan| {
            fs::read_dir(fan.path())
                .map(|r| {
                    r.flatten()
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".age"))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}
