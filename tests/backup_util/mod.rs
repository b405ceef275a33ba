//! Helpers for the backup tests: a throwaway vault driven through the real `carnet` binary,
//! run with or without its key, and ways to look at, damage and forge backups.
//!
//! Keyless runs get no `CARNET_PASSPHRASE`, no `CARNET_IDENTITY`, no `-i`, stdin from
//! /dev/null and (through `setsid`, when present) no controlling terminal, so any attempt to
//! ask for the key fails instead of hanging.
//!
//! Hostile zips are written with python3's `zipfile`, which writes whatever names, duplicates
//! and compression methods it is told to; carnet's own code is never used to touch a backup.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use age::secrecy::ExposeSecret;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const PASSPHRASE: &str = "backup tests passphrase";
/// Exit codes (src/error.rs, README).
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTEGRITY: i32 = 3;

/// How the test vault is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// `CARNET_PASSPHRASE`, with `identity.age` inside the vault.
    Passphrase,
    /// `init -i KEY`: an age identity file outside the vault.
    External,
}

/// The outcome of one run of carnet.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self}"))
    }

    /// `(path, message)` of each `FAILED  path: message` line on stdout.
    pub fn failed(&self) -> Vec<(String, String)> {
        self.text()
            .lines()
            .filter_map(|l| l.strip_prefix("FAILED  "))
            .map(|l| {
                let (p, m) = l
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("FAILED line without `path: message`: {l}"));
                (p.to_string(), m.to_string())
            })
            .collect()
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(self.code, Some(code), "{what}: wrong exit code\n{self}");
        self
    }

    #[track_caller]
    pub fn assert_ok(&self, what: &str) -> &Self {
        self.assert_code(0, what)
    }

    /// A refusal: the exit code, an `error:` line on stderr holding every needle.
    #[track_caller]
    pub fn assert_refused(&self, code: i32, needles: &[&str], what: &str) -> &Self {
        self.assert_code(code, what);
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{what}: no `error:` line\n{self}"));
        for n in needles {
            assert!(
                line.contains(n),
                "{what}: the error line should contain {n:?}\n{self}"
            );
        }
        self
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.text();
        if out.len() > 4000 {
            out = format!("({} bytes)", self.stdout.len());
        }
        write!(
            f,
            "exit {:?}\n--- stdout\n{out}\n--- stderr\n{}",
            self.code, self.stderr
        )
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_carnet"))
}

/// carnet with a clean environment, stdin from /dev/null, no key; `--vault dir`.
/// With `detach`, started through `setsid` so it has no controlling terminal either.
pub fn carnet_in(dir: &Path, detach: bool) -> Command {
    let setsid = Path::new("/usr/bin/setsid");
    let mut c = if detach && setsid.exists() {
        let mut c = Command::new(setsid);
        c.arg("-w").arg(bin());
        c
    } else {
        Command::new(bin())
    };
    c.env_remove("CARNET_VAULT")
        .env_remove("CARNET_IDENTITY")
        .env_remove("CARNET_PASSPHRASE")
        .env("CARNET_SCRYPT_LOG_N", "10")
        .stdin(Stdio::null())
        .arg("--vault")
        .arg(dir);
    c
}

pub fn run(mut c: Command) -> Out {
    let o = c.output().expect("cannot run carnet");
    Out {
        code: o.status.code(),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A vault in a temp folder: `root/vault`, scratch space in `root/work`, key in `root/key.txt`.
pub struct Sandbox {
    tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub vault: PathBuf,
    pub work: PathBuf,
    pub mode: KeyMode,
    pub key_file: PathBuf,
}

impl Sandbox {
    /// A new vault (`init`) opened by the given kind of key.
    pub fn new(mode: KeyMode) -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("carnet-backup-")
            .tempdir()
            .expect("cannot create a temp dir");
        let root = tmp.path().to_path_buf();
        let work = root.join("work");
        fs::create_dir(&work).unwrap();
        let key_file = root.join("key.txt");
        if mode == KeyMode::External {
            let id = age::x25519::Identity::generate();
            fs::write(
                &key_file,
                format!(
                    "# public key: {}\n{}\n",
                    id.to_public(),
                    id.to_string().expose_secret()
                ),
            )
            .unwrap();
        }
        let s = Sandbox {
            tmp,
            vault: root.join("vault"),
            root,
            work,
            mode,
            key_file,
        };
        s.keyed_ok(&s.vault, &["init"]);
        s
    }

    /// A path under the sandbox root (not created).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// carnet on `dir` with the key (passphrase in the environment, or `-i key.txt`).
    pub fn keyed(&self, dir: &Path) -> Command {
        let mut c = carnet_in(dir, false);
        match self.mode {
            KeyMode::Passphrase => {
                c.env("CARNET_PASSPHRASE", PASSPHRASE);
            }
            KeyMode::External => {
                c.arg("-i").arg(&self.key_file);
            }
        }
        c.current_dir(&self.root);
        c
    }

    /// carnet on `dir` with no key, no passphrase and no terminal.
    pub fn keyless(&self, dir: &Path) -> Command {
        let mut c = carnet_in(dir, true);
        c.current_dir(&self.root);
        c
    }

    pub fn keyed_run(&self, dir: &Path, args: &[&str]) -> Out {
        let mut c = self.keyed(dir);
        c.args(args);
        run(c)
    }

    pub fn keyless_run(&self, dir: &Path, args: &[&str]) -> Out {
        let mut c = self.keyless(dir);
        c.args(args);
        run(c)
    }

    #[track_caller]
    pub fn keyed_ok(&self, dir: &Path, args: &[&str]) -> Out {
        let o = self.keyed_run(dir, args);
        o.assert_ok(&format!("carnet {} (with the key)", args.join(" ")));
        o
    }

    #[track_caller]
    pub fn keyless_ok(&self, dir: &Path, args: &[&str]) -> Out {
        let o = self.keyless_run(dir, args);
        o.assert_ok(&format!("carnet {} (no key)", args.join(" ")));
        o
    }

    /// Writes `bytes` to `work/rel` and adds it to the vault; returns the document id.
    pub fn add(&self, rel: &str, bytes: &[u8]) -> String {
        let p = self.work.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        let ids = self.add_path(&p);
        assert_eq!(ids.len(), 1, "one document added from {rel}");
        ids.into_iter().next().unwrap()
    }

    /// `add --json PATH`; the ids of the documents added.
    pub fn add_path(&self, p: &Path) -> Vec<String> {
        let o = self.keyed_ok(&self.vault, &["add", "--json", p.to_str().unwrap()]);
        o.json()
            .as_array()
            .expect("add --json prints an array")
            .iter()
            .filter(|d| d["status"] == "added")
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
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

    /// `verify --offline` on `dir`, plain and `--json`, checked to agree.
    pub fn offline(&self, dir: &Path, extra: &[&str]) -> Offline {
        offline(dir, extra)
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
    /// The paths named as failing.
    pub fn paths(&self) -> BTreeSet<String> {
        self.failed.iter().map(|(p, _)| p.clone()).collect()
    }

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
    let mut c = carnet_in(dir, true);
    c.args(&args);
    let plain = run(c);
    args.push("--json");
    let mut c = carnet_in(dir, true);
    c.args(&args);
    let js = run(c);
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

/// Every regular file under `dir`, vault-relative with `/`, with its bytes.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if dir.exists() {
        collect(dir, dir, &mut out);
    }
    out
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            collect(root, &e.path(), out);
        } else {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = if ft.is_symlink() {
                format!("-> {}", fs::read_link(e.path()).unwrap().display()).into_bytes()
            } else {
                fs::read(e.path()).unwrap()
            };
            out.insert(rel, bytes);
        }
    }
}

/// Every path under `dir` (files and folders), relative, for "nothing was written" checks.
pub fn tree(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The document objects of a vault or mirror (`objects/xx/ID.age`), relative, leaving out the
/// metadata shards (told apart with the sandbox's passphrase, or its key file beside `dir`).
pub fn objects(dir: &Path) -> Vec<String> {
    let shards = shared::shard_objects(dir, Some(PASSPHRASE), None)
        .or_else(|| {
            let key = dir.parent()?.join("key.txt");
            shared::shard_objects(dir, None, Some(&key))
        })
        .unwrap_or_default();
    files(dir)
        .into_keys()
        .filter(|p| p.starts_with("objects/") && shared::is_document_object(p, &shards))
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

/// Flips one bit in the middle of a file.
pub fn flip_middle(p: &Path) {
    let mut b = fs::read(p).unwrap();
    assert!(!b.is_empty(), "{} is empty", p.display());
    let i = b.len() / 2;
    b[i] ^= 0x01;
    fs::write(p, b).unwrap();
}

/// The entry names of a zip, in order (python3's `zipfile`).
pub fn zip_names(zip: &Path) -> Vec<String> {
    let out = python(
        "import json, sys, zipfile\n\
         print(json.dumps([i.filename for i in zipfile.ZipFile(sys.argv[1]).infolist()]))",
        &[zip.to_str().unwrap()],
    );
    serde_json::from_str(&out).unwrap()
}

/// One entry to append to a forged zip.
#[derive(Default, Clone)]
pub struct Extra {
    pub name: String,
    pub data: Vec<u8>,
    pub deflate: bool,
    /// Written as a symlink whose target is `data`.
    pub symlink: bool,
}

impl Extra {
    pub fn file(name: &str, data: &[u8]) -> Extra {
        Extra {
            name: name.into(),
            data: data.to_vec(),
            ..Default::default()
        }
    }
}

/// How to derive a forged backup from a real one.
#[derive(Default)]
pub struct Forge<'a> {
    /// Entries whose middle byte is flipped.
    pub flip: &'a [&'a str],
    /// Entries left out.
    pub drop: &'a [&'a str],
    /// Entries appended at the end (names taken literally).
    pub add: Vec<Extra>,
}

/// Rewrites the zip `src` into `dest` (stored, like carnet's), applying `f`.
pub fn forge(src: &Path, dest: &Path, f: &Forge) {
    let add: Vec<Value> = f
        .add
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name, "data": hex::encode(&e.data),
                "deflate": e.deflate, "symlink": e.symlink,
            })
        })
        .collect();
    let spec = serde_json::json!({
        "src": src, "dest": dest, "flip": f.flip, "drop": f.drop, "add": add,
    });
    python(
        r#"
import json, sys, warnings, zipfile
warnings.simplefilter("ignore")  # duplicate names are the point of some tests
s = json.loads(sys.argv[1])
def info(name, mode, deflate=False):
    zi = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    zi.create_system = 3
    zi.external_attr = mode << 16
    zi.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    return zi
with zipfile.ZipFile(s["src"]) as zin, zipfile.ZipFile(s["dest"], "w") as zout:
    for i in zin.infolist():
        if i.filename in s["drop"]:
            continue
        data = bytearray(zin.read(i.filename))
        if i.filename in s["flip"]:
            data[len(data) // 2] ^= 1
        zout.writestr(info(i.filename, 0o100600), bytes(data))
    for e in s["add"]:
        mode = 0o120777 if e["symlink"] else 0o100600
        zout.writestr(info(e["name"], mode, e["deflate"]), bytes.fromhex(e["data"]))
"#,
        &[&spec.to_string()],
    );
}

/// Runs a python3 script with arguments; returns its stdout; fails the test on error.
pub fn python(script: &str, args: &[&str]) -> String {
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 is needed to forge zip files");
    assert!(
        o.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[path = "../util/shared.rs"]
mod shared;
pub use shared::pseudo_random;

/// Asserts two `files()` maps are equal, naming the paths that differ (not dumping bytes).
#[track_caller]
pub fn assert_same_files(
    got: &BTreeMap<String, Vec<u8>>,
    want: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    if got == want {
        return;
    }
    let mut diffs = Vec::new();
    for (p, b) in want {
        match got.get(p) {
            None => diffs.push(format!("missing {p}")),
            Some(g) if g != b => diffs.push(format!("changed {p}")),
            _ => {}
        }
    }
    diffs.extend(
        got.keys()
            .filter(|p| !want.contains_key(*p))
            .map(|p| format!("added {p}")),
    );
    panic!("{what}:\n  {}", diffs.join("\n  "));
}
