//! The reference tools some tests run (`age`, `unzip`, `minisign`, `restic`, `script`, zip
//! readers, `ssh-keygen`, a test age plugin): a test that needs one asks `require_tool` first. Installed, the tool runs; missing,
//! the test is skipped with one line naming the tool and its install command, and the run ends
//! with a summary of the skips. With `CARNET_REQUIRE_INTEROP=1` (`.ci/run` sets it) a missing
//! tool fails the test instead: interoperability never passes by being skipped in CI.
//!
//! libtest captures what a passing test prints and has no end-of-run hook. So the skip line is
//! written to the process's stderr directly (`io::stderr()` is not captured, only `eprint!`),
//! and the summary comes from an `atexit` handler, registered at the first skip, which runs
//! after libtest has printed its own result line, whether the run passed or failed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once, PoisonError};

use super::which;

/// `1`: a missing reference tool fails the test instead of skipping it.
pub const REQUIRE_VAR: &str = "CARNET_REQUIRE_INTEROP";

/// The one command that installs every reference tool (Debian or Ubuntu, as root).
pub const INSTALL_SCRIPT: &str = ".ci/install-tools";

/// A program the interoperability tests run, and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    /// The reference Go age CLI.
    Age,
    AgeKeygen,
    Unzip,
    Minisign,
    Restic,
    /// util-linux's `script`, which gives a program a terminal.
    Script,
    /// libarchive's streaming zip reader.
    Bsdtar,
    /// Java's `ZipInputStream`, from a JDK: the fixture runs as a source file.
    Java,
    SevenZip,
    /// poppler's text extractor: the emergency card's text.
    Pdftotext,
    /// poppler's rasteriser: the emergency card as an image, for the QR reader.
    Pdftoppm,
    /// zbar's image reader: the emergency card's QR code.
    Zbarimg,
    /// Python with the FHIR library `fhir.resources` at the pinned version
    /// (tests/fhir/validate_ips.py).
    FhirValidator,
    /// OpenSSH's key generator: real SSH keys (ed25519, rsa, protected) for `open -i`.
    SshKeygen,
    /// The age-plugin crate's example plugin (for tests only: it "wraps" file keys in the
    /// clear), built from crates.io at the pinned version: a plugin round trip without hardware.
    AgePluginUnencrypted,
    /// strace, whose fault injection kills carnet at a chosen rename or removal: crash tests of
    /// commands that have no kill hook of their own.
    Strace,
}

/// The FHIR library the IPS validator uses, at the version .ci/install-tools pins.
pub const FHIR_RESOURCES: &str = "fhir.resources==8.3.0";

/// The crate whose example is the test plugin, at the version .ci/install-tools pins (the
/// age-plugin release of the age 0.12 generation carnet uses).
pub const AGE_PLUGIN_CRATE: &str = "age-plugin==0.7.0";

impl Tool {
    /// Every tool, in the order the summary lists them (`.ci/install-tools` installs them).
    pub const ALL: [Tool; 16] = [
        Tool::Age,
        Tool::AgeKeygen,
        Tool::Unzip,
        Tool::Minisign,
        Tool::Restic,
        Tool::Script,
        Tool::Bsdtar,
        Tool::Java,
        Tool::SevenZip,
        Tool::Pdftotext,
        Tool::Pdftoppm,
        Tool::Zbarimg,
        Tool::FhirValidator,
        Tool::SshKeygen,
        Tool::AgePluginUnencrypted,
        Tool::Strace,
    ];

    /// The program looked up on PATH.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Age => "age",
            Tool::AgeKeygen => "age-keygen",
            Tool::Unzip => "unzip",
            Tool::Minisign => "minisign",
            Tool::Restic => "restic",
            Tool::Script => "script",
            Tool::Bsdtar => "bsdtar",
            Tool::Java => "java",
            Tool::SevenZip => "7z",
            Tool::Pdftotext => "pdftotext",
            Tool::Pdftoppm => "pdftoppm",
            Tool::Zbarimg => "zbarimg",
            Tool::FhirValidator => "python3",
            Tool::SshKeygen => "ssh-keygen",
            Tool::AgePluginUnencrypted => "age-plugin-unencrypted",
            Tool::Strace => "strace",
        }
    }

    /// The Python package (pinned) the tool needs beyond its program, from PyPI.
    pub fn pip_package(self) -> Option<&'static str> {
        match self {
            Tool::FhirValidator => Some(FHIR_RESOURCES),
            _ => None,
        }
    }

    /// Whether the program found on PATH can do what the tests ask: `java` must be a JDK's, to
    /// run the fixture as a source file (a runtime alone has no compiler).
    fn usable(self, path: &Path) -> bool {
        match self {
            Tool::Java => Command::new(path)
                .arg("--list-modules")
                .output()
                .is_ok_and(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|m| m.starts_with("jdk.compiler@"))
                }),
            // The pinned version exactly: another one may validate differently.
            Tool::FhirValidator => {
                let (name, version) = FHIR_RESOURCES.split_once("==").unwrap_or_default();
                Command::new(path)
                    .args([
                        "-c",
                        &format!(
                            "import importlib.metadata as m, sys; sys.exit(m.version({name:?}) != {version:?})"
                        ),
                    ])
                    .output()
                    .is_ok_and(|o| o.status.success())
            }
            _ => true,
        }
    }

    /// The crate (pinned, `name==version`) whose example of the program's name is the tool,
    /// from crates.io: `cargo install --locked NAME --version VERSION --example PROGRAM`.
    pub fn cargo_crate(self) -> Option<&'static str> {
        match self {
            Tool::AgePluginUnencrypted => Some(AGE_PLUGIN_CRATE),
            _ => None,
        }
    }

    /// Its line in .ci/install-tools' list: `program:Debian package[:pinned PyPI package]`, or
    /// `program:cargo:pinned crate`.
    pub fn install_line(self) -> String {
        match (self.cargo_crate(), self.pip_package()) {
            (Some(krate), _) => format!("{}:cargo:{krate}", self.program()),
            (None, Some(pip)) => format!("{}:{}:{pip}", self.program(), self.apt_package()),
            (None, None) => format!("{}:{}", self.program(), self.apt_package()),
        }
    }

    /// The command that installs it by hand.
    pub fn install_command(self) -> String {
        if let Some(krate) = self.cargo_crate() {
            let (name, version) = krate.split_once("==").unwrap_or((krate, "*"));
            return format!(
                "cargo install --locked {name} --version {version} --example {}",
                self.program()
            );
        }
        match self.pip_package() {
            Some(pip) => format!(
                "apt-get install {} and pip install {pip}",
                self.apt_package()
            ),
            None => format!("apt-get install {}", self.apt_package()),
        }
    }

    /// The Debian package that brings it (`cargo` for a tool built from crates.io).
    pub fn apt_package(self) -> &'static str {
        match self {
            Tool::Age | Tool::AgeKeygen => "age",
            Tool::Unzip => "unzip",
            Tool::Minisign => "minisign",
            Tool::Restic => "restic",
            Tool::Script => "bsdutils",
            Tool::Bsdtar => "libarchive-tools",
            Tool::Java => "default-jdk-headless",
            Tool::SevenZip => "p7zip-full",
            Tool::Pdftotext | Tool::Pdftoppm => "poppler-utils",
            Tool::Zbarimg => "zbar-tools",
            Tool::FhirValidator => "python3-pip",
            Tool::SshKeygen => "openssh-client",
            Tool::AgePluginUnencrypted => "cargo",
            Tool::Strace => "strace",
        }
    }
}

/// The tool's path when it is on PATH. Otherwise `None`, after the skip line (the test then
/// returns early); or, under `CARNET_REQUIRE_INTEROP=1`, a panic with that line.
pub fn require_tool(tool: Tool) -> Option<PathBuf> {
    let required = required();
    if let Some(p) = which(tool.program()).filter(|p| tool.usable(p)) {
        return Some(p);
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if required {
        panic!(
            "{test} {}, and {REQUIRE_VAR}=1 makes a missing reference tool a failure",
            needs(tool)
        );
    }
    let line = skip_line(&test, tool);
    record_skip(test, tool);
    // Not `eprintln!`: libtest would capture it, and a passing test shows nothing.
    let _ = writeln!(std::io::stderr(), "{line}");
    None
}

/// Whether `CARNET_REQUIRE_INTEROP` asks for every tool; a value other than `1`, `0` or empty
/// is refused rather than read as either.
fn required() -> bool {
    match std::env::var(REQUIRE_VAR) {
        Err(std::env::VarError::NotPresent) => false,
        Ok(v) if v.is_empty() || v == "0" => false,
        Ok(v) if v == "1" => true,
        Ok(v) => panic!("{REQUIRE_VAR} must be 1 or 0, not {v:?}"),
        Err(e) => panic!("{REQUIRE_VAR} must be 1 or 0: {e}"),
    }
}

/// `needs `PROG` (install: SCRIPT, or apt-get install PACKAGE)`.
pub fn needs(tool: Tool) -> String {
    let with = tool
        .pip_package()
        .map(|pip| format!(" with {pip}"))
        .unwrap_or_default();
    format!(
        "needs `{}`{with} (install: {INSTALL_SCRIPT}, or {})",
        tool.program(),
        tool.install_command()
    )
}

/// The line a skipped test prints: `skipped TEST: needs …`.
pub fn skip_line(test: &str, tool: Tool) -> String {
    format!("skipped {test}: {}", needs(tool))
}

/// The tests skipped so far in this process, with the tool each lacked.
static SKIPS: Mutex<Vec<(String, Tool)>> = Mutex::new(Vec::new());

#[allow(unsafe_code)]
fn record_skip(test: String, tool: Tool) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: atexit(3) only stores the pointer; `print_summary` is a plain `extern "C"`
        // function that lives as long as the program and never unwinds.
        let rc = unsafe { atexit(print_summary) };
        assert_eq!(rc, 0, "atexit cannot register the skip summary");
    });
    SKIPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((test, tool));
}

#[allow(unsafe_code)]
unsafe extern "C" {
    fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
}

/// Runs when the test binary exits: every test has ended and libtest has printed its result.
extern "C" fn print_summary() {
    let skips = SKIPS.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = std::io::stderr().write_all(summary(&skips).as_bytes());
}

/// What a run that skipped `skips` ends with: how many tests, which tool each group lacked, and
/// the command that installs the missing ones. Empty when nothing was skipped.
pub fn summary(skips: &[(String, Tool)]) -> String {
    if skips.is_empty() {
        return String::new();
    }
    let mut counts: Vec<String> = Vec::new();
    let mut packages: Vec<&str> = Vec::new();
    for tool in Tool::ALL {
        let n = skips.iter().filter(|(_, t)| *t == tool).count();
        if n == 0 {
            continue;
        }
        let need = if n == 1 { "needs" } else { "need" };
        counts.push(format!("{n} {need} `{}`", tool.program()));
        if tool.cargo_crate().is_none() && !packages.contains(&tool.apt_package()) {
            packages.push(tool.apt_package());
        }
    }
    let n = skips.len();
    let pip: Vec<&str> = Tool::ALL
        .iter()
        .filter(|t| skips.iter().any(|(_, s)| s == *t))
        .filter_map(|t| t.pip_package())
        .collect();
    let mut commands = Vec::new();
    if !packages.is_empty() {
        commands.push(format!("apt-get install {}", packages.join(" ")));
    }
    if !pip.is_empty() {
        commands.push(format!("pip install {}", pip.join(" ")));
    }
    commands.extend(
        Tool::ALL
            .iter()
            .filter(|t| t.cargo_crate().is_some() && skips.iter().any(|(_, s)| s == *t))
            .map(|t| t.install_command()),
    );
    format!(
        "\n{n} {} skipped: the reference tools {} run are missing ({REQUIRE_VAR}=1 makes that a \
         failure)\n  {}\n  install: {INSTALL_SCRIPT}, or {}\n",
        if n == 1 { "test" } else { "tests" },
        if n == 1 { "it would" } else { "they would" },
        counts.join(", "),
        commands.join(" and ")
    )
}

/// `ssh-keygen -t KIND -N PASSPHRASE -f KEY` (the program `require_tool(Tool::SshKeygen)`
/// found); returns the public key line, with its comment.
pub fn ssh_keygen(keygen: &Path, key: &Path, kind: &str, passphrase: &str) -> String {
    let mut c = std::process::Command::new(keygen);
    c.args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase,
        "-C",
        "elise@cabinet",
        "-f",
    ])
    .arg(key);
    if kind == "rsa" {
        c.args(["-b", "2048"]);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen -t {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    public.trim().to_string()
}

/// A new identity of the test plugin (`age-plugin-unencrypted`, run alone, prints one whose
/// comment names its recipient), written to `file`; returns the recipient.
pub fn plugin_identity(plugin: &Path, file: &Path) -> String {
    let made = std::process::Command::new(plugin).output().unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    std::fs::write(file, &made.stdout).unwrap();
    String::from_utf8(made.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# recipient: ").map(str::to_string))
        .expect("the plugin names its recipient")
}

/// The wrapper (for `carnet_via` / `Vault::cmd_on`) that runs carnet under strace and kills it
/// with SIGKILL, as a power cut would, at its `n`-th call of `syscall` (1-based): the crash
/// tests of commands that have no kill hook of their own.
pub fn kill_at(strace: &Path, syscall: &str, n: u32) -> Vec<String> {
    [
        strace.to_string_lossy().into_owned(),
        "-f".into(),
        "-qq".into(),
        "-o".into(),
        "/dev/null".into(),
        "-e".into(),
        format!("trace={syscall}"),
        "-e".into(),
        format!("inject={syscall}:signal=KILL:when={n}"),
    ]
    .to_vec()
}
