//! The one helper module of the integration tests: how to run the real `carnet` binary (a
//! `TestCommand` whose failures show everything needed to reproduce them), one throwaway vault
//! type, snapshots of folders, the zip forger, and the reference tools (`require_tool`: a test
//! that runs `age`, `unzip`… is skipped without it, or fails under CARNET_REQUIRE_INTEROP=1).
//! The suites' own vocabularies (`backup`, `grants`, `integrity`) are built on these pieces.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

pub mod backup;
mod files;
pub mod grants;
pub mod integrity;
pub mod keyfiles;
pub mod tools;
pub mod unlock;
pub mod zip;

pub use files::*;
use serde_json::Value;
pub use tools::{Tool, kill_at, plugin_identity, require_tool, ssh_keygen};

/// The passphrase every passphrase-mode test vault is created with.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// Exit codes (src/error.rs, README).
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTEGRITY: i32 = 3;
pub const EXIT_VALIDITY: i32 = 4;

// ---------------------------------------------------------------------------------------------
// Running carnet

/// The carnet binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_carnet"))
}

/// The carnet binary, with the caller's CARNET_* settings removed, scrypt kept cheap and stdin
/// from /dev/null (never a terminal, so a prompt fails instead of hanging).
pub fn carnet() -> TestCommand {
    carnet_via(&[])
}

/// Like `carnet()`, started through `wrapper` (e.g. `["setsid", "-w"]`).
pub fn carnet_via(wrapper: &[&str]) -> TestCommand {
    let mut c = match wrapper.split_first() {
        None => Command::new(bin()),
        Some((prog, args)) => {
            let mut c = Command::new(prog);
            c.args(args).arg(bin());
            c
        }
    };
    c.env_remove("CARNET_VAULT")
        .env_remove("CARNET_IDENTITY")
        .env_remove("CARNET_PASSPHRASE")
        .env_remove("CARNET_NOW")
        .env("CARNET_SCRYPT_LOG_N", "10")
        .stdin(Stdio::null());
    TestCommand { cmd: c }
}

/// A `Command` (it derefs to one, for `arg`, `env`, `spawn`…) that runs into an `Out`, and
/// whose failed expectations print the command line, working folder, exit code, stdout and
/// stderr (after ripgrep's tests/util.rs).
pub struct TestCommand {
    cmd: Command,
}

impl Deref for TestCommand {
    type Target = Command;
    fn deref(&self) -> &Command {
        &self.cmd
    }
}

impl DerefMut for TestCommand {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.cmd
    }
}

impl TestCommand {
    pub fn arg<A: AsRef<OsStr>>(&mut self, arg: A) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = A>, A: AsRef<OsStr>>(&mut self, args: I) -> &mut Self {
        self.cmd.args(args);
        self
    }

    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Self {
        self.cmd.env(key, val);
        self
    }

    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Self {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Starts it with stdout and stderr captured, for commands run side by side.
    pub fn start(&mut self) -> Spawned {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", shell_line(&self.cmd)));
        Spawned {
            child,
            cmd: shell_line(&self.cmd),
            cwd: cwd_of(&self.cmd),
        }
    }

    /// Runs to completion whatever the exit code.
    pub fn run(&mut self) -> Out {
        let o = self
            .cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", shell_line(&self.cmd)));
        Out::new(&self.cmd, o)
    }

    /// Runs and asserts exit 0.
    #[track_caller]
    pub fn ok(&mut self) -> Out {
        self.run().ok()
    }
}

impl From<Command> for TestCommand {
    /// Any program (a shell wrapper, `script`) with the same failure reports.
    fn from(cmd: Command) -> TestCommand {
        TestCommand { cmd }
    }
}

/// A command started by `TestCommand::start`.
pub struct Spawned {
    pub child: Child,
    cmd: String,
    cwd: PathBuf,
}

impl Spawned {
    /// Waits for it to end and collects what it printed.
    pub fn wait(self) -> Out {
        let o = self
            .child
            .wait_with_output()
            .expect("cannot wait for carnet");
        Out::from_parts(self.cmd, self.cwd, o)
    }
}

fn cwd_of(c: &Command) -> PathBuf {
    c.get_current_dir()
        .map(Path::to_path_buf)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default()
}

/// The command as one could paste it into a shell: CARNET_* variables set, program, arguments.
fn shell_line(c: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
        {
            s.into_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let mut parts: Vec<String> = c
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), quote(v?))))
        .collect();
    parts.push(quote(c.get_program()));
    parts.extend(c.get_args().map(quote));
    parts.join(" ")
}

/// What one run of a command gave back, and how it was started.
pub struct Out {
    /// The command line, shell-quoted.
    pub cmd: String,
    pub cwd: PathBuf,
    pub status: ExitStatus,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    fn new(c: &Command, o: Output) -> Out {
        Out::from_parts(shell_line(c), cwd_of(c), o)
    }

    fn from_parts(cmd: String, cwd: PathBuf, o: Output) -> Out {
        Out {
            cmd,
            cwd,
            status: o.status,
            code: o.status.code(),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self}"))
    }

    /// `(path, message)` of each `FAILED  path: message` line `verify` prints on stdout.
    pub fn failed(&self) -> Vec<(String, String)> {
        self.failed_lines()
            .iter()
            .map(|l| {
                let l = &l["FAILED  ".len()..];
                let (p, m) = l
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("FAILED line without `path: message`: {l}"));
                (p.to_string(), m.to_string())
            })
            .collect()
    }

    /// The `FAILED  path: message` lines, whole.
    pub fn failed_lines(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.starts_with("FAILED  "))
            .map(str::to_string)
            .collect()
    }

    /// Asserts exit 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Out {
        self.assert_ok("");
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "{what}{}expected exit {code}\n{self}",
            if what.is_empty() { "" } else { ": " }
        );
        self
    }

    #[track_caller]
    pub fn assert_ok(&self, what: &str) -> &Self {
        self.assert_code(0, what)
    }

    /// Asserts exit `code`, an `error: ...` line on stderr holding every needle, and no panic;
    /// returns that line.
    #[track_caller]
    pub fn fails(&self, code: i32, needles: &[&str]) -> String {
        self.assert_code(code, "");
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no `error: ` line\n{self}"))
            .to_string();
        for n in needles {
            assert!(line.contains(n), "the error should mention {n:?}\n{self}");
        }
        assert!(
            !self.stderr.contains("Stack backtrace") && !self.stderr.contains("panicked"),
            "no backtrace or panic expected\n{self}"
        );
        line
    }

    /// `fails`, for chaining, with `what` naming the case in the failure message.
    #[track_caller]
    pub fn assert_refused(&self, code: i32, needles: &[&str], what: &str) -> &Self {
        self.assert_code(code, what);
        self.fails(code, needles);
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
            "\n===== command\n{}\n===== cwd\n{}\n===== status\n{}\n===== stdout\n{out}\n===== stderr\n{}=====",
            self.cmd,
            self.cwd.display(),
            self.status,
            self.stderr
        )
    }
}

pub fn text(b: impl AsRef<[u8]>) -> String {
    String::from_utf8_lossy(b.as_ref()).into_owned()
}

/// Asserts a clean failure: exit code 1, nothing on stdout, and on stderr exactly one
/// `error: ...` line containing every needle, optionally followed by one `hint: ...` line.
/// Returns stderr.
#[track_caller]
pub fn assert_error(out: &Out, needles: &[&str]) -> String {
    let err = out.stderr.clone();
    out.assert_code(EXIT_FAILURE, "");
    assert!(
        out.stdout.is_empty(),
        "nothing should reach stdout on error{out}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        matches!(lines.len(), 1 | 2),
        "expected `error:` and at most a `hint:` line{out}"
    );
    assert!(
        lines[0].starts_with("error: "),
        "first line is not `error: ...`{out}"
    );
    if let Some(h) = lines.get(1) {
        assert!(
            h.starts_with("hint: "),
            "second line is not `hint: ...`{out}"
        );
    }
    for n in needles {
        assert!(
            lines[0].contains(n),
            "the error line should contain {n:?}{out}"
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

// ---------------------------------------------------------------------------------------------
// One throwaway vault

/// How a test vault is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// `CARNET_PASSPHRASE`, with `identity.age` inside the vault.
    Passphrase,
    /// `init -i KEY`: an age-keygen style identity file (`key_file`) outside the vault.
    External,
}

/// A temporary folder holding a vault (`dir`, `root/vault`), a scratch folder for the files
/// the test adds (`work`) and, in external mode, the key (`key_file`); removed when dropped.
pub struct Vault {
    tmp: tempfile::TempDir,
    /// The vault folder, passed as `--vault`.
    pub dir: PathBuf,
    /// Scratch space outside the vault for input files and exports.
    pub work: PathBuf,
    /// `root/key.txt`: written in external mode.
    pub key_file: PathBuf,
    pub mode: KeyMode,
    /// Sent as `CARNET_PASSPHRASE` when set.
    pub passphrase: Option<String>,
    /// Passed as `-i FILE` when set.
    pub identity: Option<PathBuf>,
}

impl Vault {
    /// Runs `carnet --vault DIR ARGS` (a shell line) with a pseudo-terminal for stdin, stdout
    /// and stderr (`script`, util-linux), with the test passphrase and `env` set; what the
    /// terminal showed comes back in stdout.
    pub fn on_terminal(&self, script: &Path, args: &str, env: &[(&str, &OsStr)]) -> Out {
        let line = format!(
            "'{}' --vault '{}' {args}",
            bin().display(),
            self.dir.display()
        );
        let mut c = Command::new(script);
        c.args(["-qec", &line, "/dev/null"])
            .current_dir(self.root())
            .env_remove("CARNET_VAULT")
            .env_remove("CARNET_IDENTITY")
            .env_remove("CARNET_NOW")
            .env("CARNET_PASSPHRASE", PASSPHRASE)
            .env("CARNET_SCRYPT_LOG_N", "10")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        TestCommand::from(c).run()
    }

    /// Like `on_terminal`, with `$EDITOR` a shell script whose body is `editor` (`$1` is the
    /// file it edits) and `XDG_RUNTIME_DIR` a private folder, returned, where the file lives.
    pub fn with_editor(&self, script: &Path, args: &str, editor: &str) -> (Out, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let runtime = self.root().join("runtime");
        fs::create_dir_all(&runtime).unwrap();
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
        let path = self.write("editor.sh", format!("#!/bin/sh\n{editor}").as_bytes());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new(script);
        let line = format!(
            "'{}' --vault '{}' {args}",
            bin().display(),
            self.dir.display()
        );
        c.args(["-qec", &line, "/dev/null"])
            .current_dir(self.root())
            .env("CARNET_PASSPHRASE", PASSPHRASE)
            .env("CARNET_SCRYPT_LOG_N", "10")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("EDITOR", &path)
            .env_remove("VISUAL")
            .stdin(Stdio::null());
        (TestCommand::from(c).run(), runtime)
    }

    /// A vault folder that does not exist yet, opened by `PASSPHRASE`.
    pub fn new() -> Vault {
        Vault::blank(KeyMode::Passphrase, temp_dir("carnet-test-"))
    }

    /// A new, empty vault opened by `PASSPHRASE`.
    pub fn init() -> Vault {
        let v = Vault::new();
        v.ok(&["init"]);
        v
    }

    /// A vault folder that does not exist yet in `tmp`, with a new key in external mode.
    pub fn blank(mode: KeyMode, tmp: tempfile::TempDir) -> Vault {
        let root = tmp.path();
        let work = root.join("work");
        fs::create_dir(&work).unwrap();
        let key_file = root.join("key.txt");
        let (passphrase, identity) = match mode {
            KeyMode::Passphrase => (Some(PASSPHRASE.to_string()), None),
            KeyMode::External => {
                write_identity_file(&key_file);
                (None, Some(key_file.clone()))
            }
        };
        Vault {
            dir: root.join("vault"),
            work,
            key_file,
            mode,
            passphrase,
            identity,
            tmp,
        }
    }

    /// The temp folder that holds `dir`, `work` and `key_file`.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// `carnet --vault DIR` with the key, run in `root`.
    pub fn cmd(&self) -> TestCommand {
        self.cmd_on(&self.dir, &[])
    }

    /// Like `cmd`, with carnet started through `wrapper` (e.g. `["setpriv", ...]`).
    pub fn cmd_via(&self, wrapper: &[&str]) -> TestCommand {
        self.cmd_on(&self.dir, wrapper)
    }

    /// carnet with this vault's key on another vault folder `dir` (a copy, a restore).
    pub fn cmd_on(&self, dir: &Path, wrapper: &[&str]) -> TestCommand {
        let mut c = carnet_via(wrapper);
        c.arg("--vault").arg(dir);
        if let Some(id) = &self.identity {
            c.arg("-i").arg(id);
        }
        if let Some(p) = &self.passphrase {
            c.env("CARNET_PASSPHRASE", p);
        }
        c.current_dir(self.root());
        c
    }

    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        c.run()
    }

    /// Runs and asserts success (exit 0).
    #[track_caller]
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.run(args).ok()
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
        self.ok(&args)
            .json()
            .as_array()
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
        self.ok(&all)
            .json()
            .as_array()
            .expect("ls --json prints an array")
            .clone()
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

/// A temp folder removed when dropped.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("cannot create a temp dir")
}

/// A temp path as an argument (they are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
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

/// Writes a new age X25519 identity file (the `age-keygen` layout) at `p`; returns it.
pub fn write_identity_file(p: &Path) -> age::x25519::Identity {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    fs::write(
        p,
        format!(
            "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        ),
    )
    .unwrap();
    id
}

/// Writes a new age X25519 identity file named `name` in `dir`.
pub fn new_identity_file(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    write_identity_file(&p);
    p
}
