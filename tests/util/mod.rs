//! Shared helpers for the integration tests: a throwaway vault, and ways to run the real
//! `carnet` binary against it and look at what it left on disk.
//!
//! Every test binary uses only part of this module.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::prelude::*;

mod shared;
use serde_json::Value;
pub use shared::*;

/// The passphrase every test vault is created with.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// A temporary folder holding a vault (`dir`, created by `init`) and a scratch folder for the
/// files the test adds (`work`), both removed when the value is dropped.
pub struct Vault {
    tmp: tempfile::TempDir,
    /// The vault folder, passed as `--vault`.
    pub dir: PathBuf,
    /// Scratch space outside the vault for input files and exports.
    pub work: PathBuf,
    /// Sent as `CARNET_PASSPHRASE` when set.
    pub passphrase: Option<String>,
    /// Passed as `-i FILE` when set.
    pub identity: Option<PathBuf>,
}

impl Vault {
    /// A vault folder that does not exist yet.
    pub fn new() -> Vault {
        let tmp = tempfile::Builder::new()
            .prefix("carnet-test-")
            .tempdir()
            .expect("cannot create a temp dir");
        let dir = tmp.path().join("vault");
        let work = tmp.path().join("work");
        fs::create_dir(&work).unwrap();
        Vault {
            tmp,
            dir,
            work,
            passphrase: Some(PASSPHRASE.to_string()),
            identity: None,
        }
    }

    /// A new, empty vault opened by `PASSPHRASE`.
    pub fn init() -> Vault {
        let v = Vault::new();
        v.ok(&["init"]);
        v
    }

    /// The temp folder that holds both `dir` and `work`.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// `carnet --vault DIR` with a clean environment: no CARNET_VAULT / CARNET_IDENTITY from the
    /// caller, the test passphrase, cheap scrypt, stdin from /dev/null (never a terminal).
    pub fn cmd(&self) -> Command {
        self.cmd_via(&[])
    }

    /// Like `cmd`, with carnet started through `wrapper` (e.g. `["setpriv", ...]`).
    pub fn cmd_via(&self, wrapper: &[&str]) -> Command {
        let mut c = match wrapper.split_first() {
            None => carnet(),
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args)
                    .arg(assert_cmd::cargo::cargo_bin("carnet"))
                    .env_remove("CARNET_VAULT")
                    .env_remove("CARNET_IDENTITY")
                    .env_remove("CARNET_PASSPHRASE")
                    .env("CARNET_SCRYPT_LOG_N", "10")
                    .stdin(Stdio::null());
                c
            }
        };
        c.arg("--vault").arg(&self.dir);
        if let Some(id) = &self.identity {
            c.arg("-i").arg(id);
        }
        if let Some(p) = &self.passphrase {
            c.env("CARNET_PASSPHRASE", p);
        }
        c.current_dir(self.root());
        c
    }

    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        c.output().expect("cannot run carnet")
    }

    /// Runs and asserts success (exit 0), showing stderr when it fails.
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        let out = self.run(args);
        assert_success(&out, args);
        out
    }

    /// Writes a file under `work` (creating folders) and returns its path.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.work.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, bytes).unwrap();
        p
    }

    /// `carnet add --json PATH EXTRA...`; returns the full ids of the documents added.
    pub fn add_all(&self, path: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<std::ffi::OsString> = vec!["add".into(), "--json".into(), path.into()];
        args.extend(extra.iter().map(Into::into));
        let out = self.ok(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("add --json did not print JSON ({e}): {}", text(&out.stdout))
        });
        v.as_array()
            .expect("add --json prints an array")
            .iter()
            .filter(|o| o["status"] == "added")
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Adds one file and returns its full id.
    pub fn add(&self, path: &Path, extra: &[&str]) -> String {
        let ids = self.add_all(path, extra);
        assert_eq!(ids.len(), 1, "expected one document added from {path:?}");
        ids.into_iter().next().unwrap()
    }

    /// `carnet ls --json ARGS...`
    pub fn ls(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["ls", "--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("ls --json did not print JSON ({e}): {}", text(&out.stdout))
        });
        v.as_array().expect("ls --json prints an array").clone()
    }

    /// The titles `ls --json ARGS` prints, in order.
    pub fn ls_titles(&self, args: &[&str]) -> Vec<String> {
        self.ls(args)
            .iter()
            .map(|d| d["title"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every file and folder under the vault, with file contents.
    pub fn snapshot(&self) -> Snapshot {
        snapshot(&self.dir)
    }

    /// The document objects (`objects/xx/*.age`), leaving out the metadata shards.
    pub fn objects(&self) -> Vec<PathBuf> {
        let objects = self.dir.join("objects");
        if !objects.exists() {
            return Vec::new();
        }
        let shards = shard_objects(
            &self.dir,
            self.passphrase.as_deref(),
            self.identity.as_deref(),
        )
        .unwrap_or_default();
        files_under(&objects)
            .into_iter()
            .filter(|p| is_document_object(&p.to_string_lossy(), &shards))
            .collect()
    }
}

/// The carnet binary, with the caller's CARNET_* settings removed and scrypt kept cheap.
pub fn carnet() -> Command {
    let mut c = Command::cargo_bin("carnet").expect("the carnet binary is built by cargo test");
    c.env_remove("CARNET_VAULT")
        .env_remove("CARNET_IDENTITY")
        .env_remove("CARNET_PASSPHRASE")
        .env("CARNET_SCRYPT_LOG_N", "10")
        .stdin(Stdio::null());
    c
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn assert_success<S: AsRef<std::ffi::OsStr>>(out: &Output, args: &[S]) {
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    assert!(
        out.status.success(),
        "carnet {} failed with {}\nstdout: {}\nstderr: {}",
        shown.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Asserts a clean failure: exit code 1, nothing on stdout, and on stderr exactly one
/// `error: ...` line containing every needle, optionally followed by one `hint: ...` line.
/// Returns stderr.
pub fn assert_error(out: &Output, needles: &[&str]) -> String {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit code 1, got {}; stderr: {err}",
        out.status
    );
    assert!(
        out.stdout.is_empty(),
        "nothing should reach stdout on error, got: {}",
        text(&out.stdout)
    );
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        matches!(lines.len(), 1 | 2),
        "expected `error:` and at most a `hint:` line, got:\n{err}"
    );
    assert!(
        lines[0].starts_with("error: "),
        "first line is not `error: ...`:\n{err}"
    );
    if let Some(h) = lines.get(1) {
        assert!(
            h.starts_with("hint: "),
            "second line is not `hint: ...`:\n{err}"
        );
    }
    for n in needles {
        assert!(
            lines[0].contains(n),
            "the error line should contain {n:?}; stderr:\n{err}"
        );
    }
    err
}

/// The `hint: ...` line of an error, which must exist.
pub fn hint(stderr: &str) -> &str {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("hint: "))
        .unwrap_or_else(|| panic!("no hint line in:\n{stderr}"))
}

/// All regular files under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, e)| matches!(e, Entry::File(_)))
        .map(|(p, _)| dir.join(p))
        .collect()
}

/// Compares two byte strings without dumping megabytes into the failure message.
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

/// The first 8 characters of an id, as carnet prints it.
pub fn short(id: &str) -> &str {
    &id[..8]
}

/// Finds a program on PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// The reference Go `age` CLI tools, or `None` when CARNET_SKIP_AGE_INTEROP=1.
/// Fails the test when they are missing: interoperability must not pass by being skipped.
pub fn require_age_tool(prog: &str) -> Option<PathBuf> {
    if std::env::var("CARNET_SKIP_AGE_INTEROP").as_deref() == Ok("1") {
        eprintln!("CARNET_SKIP_AGE_INTEROP=1: skipping the test that needs `{prog}`");
        return None;
    }
    Some(which(prog).unwrap_or_else(|| {
        panic!(
            "`{prog}` is not on PATH: install the reference age CLI \
             (`apt-get install -y age` on Debian), or set CARNET_SKIP_AGE_INTEROP=1 to skip \
             the interoperability tests"
        )
    }))
}

/// Writes a new age X25519 identity file (the `age-keygen` layout) in `dir`.
pub fn new_identity_file(dir: &Path, name: &str) -> PathBuf {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let p = dir.join(name);
    fs::write(
        &p,
        format!(
            "# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        ),
    )
    .unwrap();
    p
}
