//! Hooks: the user's own programs, run when something happens to the vault (a document added,
//! a deposit received, a grant opened, a failed check), to send a notification or a mail.
//!
//! They live in `$XDG_CONFIG_HOME/carnet/hooks.toml` (`~/.config/carnet/hooks.toml`), never in
//! the vault: a vault on a stick must not make the computer that opens it run code.
//!
//! ```toml
//! [[hook]]
//! on = ["add", "receive"]
//! run = ["notify-send", "carnet"]
//! timeout = 10          # seconds (default 10)
//! with_titles = false   # titles are sent only when asked
//! ```
//!
//! Where they run: in ONE place, `cli::run`, after the command returned, for every entry the
//! command committed (the library records them as data in the `events::Journal` attached to the
//! vault by `Ctx::open_vault`), and for `verify-failed` when `carnet verify` found a problem.
//! Each hook gets one JSON event on its standard input and a time limit; a hook that fails,
//! cannot start or outlives its limit (it is stopped, with its process group) is a warning on
//! stderr: it never changes the command's output or exit status, and never undoes anything.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wait_timeout::ChildExt;

use super::Ctx;
use super::args::{HooksCommand, HooksTestArgs};
use super::ui;
use crate::domain::Action;
use crate::error::Error;
use crate::events::Event;

/// The hook event a failed `carnet verify` sends (it is not a log action).
pub const VERIFY_FAILED: &str = "verify-failed";
const DEFAULT_TIMEOUT: f64 = 10.0;
/// A hooks file is a few lines; this bounds a wrong one.
const MAX_FILE: u64 = 1 << 20;
/// How much of a failed hook's stderr a warning quotes.
const MAX_REASON: u64 = 4096;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksFile {
    #[serde(default, rename = "hook")]
    hooks: Vec<Hook>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// Events (log actions, `verify-failed`), or `*` for all.
    on: Vec<String>,
    /// The program and its arguments (no shell).
    run: Vec<String>,
    /// Seconds before the hook is stopped.
    #[serde(default)]
    timeout: Option<f64>,
    /// Send the documents' titles too (they are health data: off unless asked).
    #[serde(default)]
    with_titles: bool,
}

impl Hook {
    fn listens(&self, event: &str) -> bool {
        self.on.iter().any(|e| e == event || e == "*")
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.unwrap_or(DEFAULT_TIMEOUT))
    }

    fn shown(&self) -> String {
        ui::clean(&self.run.join(" "))
    }
}

/// The user's hooks, loaded once per command.
#[derive(Debug, Default)]
pub struct Hooks {
    hooks: Vec<Hook>,
}

/// Where the hooks file lives: `$XDG_CONFIG_HOME/carnet/hooks.toml`, else
/// `~/.config/carnet/hooks.toml`; none without either variable.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("carnet").join("hooks.toml"))
}

/// The hooks file, bounded. Unlike the vault's files, it may be a link (dotfile managers
/// link config files into place), but only to a regular file: a FIFO would block every command.
fn read_config(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    Ok(bytes)
}

impl Hooks {
    /// Reads the hooks file. A missing file is no hooks; a broken one is an error, which a
    /// command turns into a warning (`load_or_warn`) and `hooks test` reports.
    pub fn load() -> anyhow::Result<Hooks> {
        let Some(path) = path() else {
            return Ok(Hooks::default());
        };
        let text = match read_config(&path) {
            Ok(b) => String::from_utf8(b).map_err(|_| {
                Error::input(
                    format!("{} is not UTF-8 text", path.display()),
                    "fix the hooks file",
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Hooks::default()),
            Err(e) => {
                return Err(Error::input(
                    format!("cannot read {}: {e}", path.display()),
                    "fix or move the hooks file",
                )
                .into());
            }
        };
        let file: HooksFile = toml::from_str(&text).map_err(|e| {
            Error::input(
                format!("{} is not valid: {}", path.display(), e.message()),
                "each [[hook]] has `on = [\"add\", ...]` and `run = [\"program\", \"arg\", ...]`",
            )
        })?;
        for (i, h) in file.hooks.iter().enumerate() {
            let bad = if h.run.first().is_none_or(|p| p.is_empty()) {
                Some("its `run` names no program")
            } else if h.on.is_empty() {
                Some("its `on` names no event")
            } else if h
                .timeout
                .is_some_and(|t| !(t.is_finite() && t > 0.0 && t <= 3600.0))
            {
                Some("its timeout must be a number of seconds, above 0 and at most 3600")
            } else {
                None
            };
            if let Some(why) = bad {
                return Err(Error::input(
                    format!("{}: hook {} is not valid: {why}", path.display(), i + 1),
                    "fix the hooks file (see `carnet hooks --help`)",
                )
                .into());
            }
        }
        Ok(Hooks { hooks: file.hooks })
    }

    /// `load`, with a broken file turned into a warning: hooks never stop a command.
    pub fn load_or_warn() -> Hooks {
        Hooks::load().unwrap_or_else(|e| {
            eprintln!("warning: hooks not run: {}", ui::clean(&format!("{e:#}")));
            Hooks::default()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Does any hook want titles (so commits look them up)?
    pub fn with_titles(&self) -> bool {
        self.hooks.iter().any(|h| h.with_titles)
    }

    /// Runs the hooks listening to each event, in order; failures are warnings.
    pub fn fire(&self, events: &[Event]) {
        for e in events {
            for h in self.hooks.iter().filter(|h| h.listens(&e.action)) {
                if let Err(why) = run_one(h, e) {
                    eprintln!(
                        "warning: hook `{}` for {}: {why} (the command itself succeeded as reported)",
                        h.shown(),
                        e.action
                    );
                }
            }
        }
    }
}

/// Runs one hook on one event: the event as JSON on stdin, stdout discarded (the command's own
/// output must stay its own), stderr kept in an anonymous file to quote when it fails. A file
/// rather than a pipe: a hook that leaves a background process behind cannot make carnet wait
/// for the end of a pipe.
fn run_one(h: &Hook, e: &Event) -> Result<(), String> {
    let event = if h.with_titles {
        e.clone()
    } else {
        e.without_titles()
    };
    let mut json = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
    json.push(b'\n');
    let mut errors = tempfile::tempfile().map_err(|e| format!("cannot start: {e}"))?;
    let stderr = errors
        .try_clone()
        .map_err(|e| format!("cannot start: {e}"))?;
    let (program, args) = h.run.split_first().ok_or("no program")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("CARNET_EVENT", &e.action)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    // Its own process group, so that a hook stopped at its timeout takes its children along
    // (a shell script's `sleep`, a mailer it started).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", ui::clean(program)))?;
    // Written by a thread: a hook that does not read its input must not block carnet (the
    // event can exceed a pipe's buffer). Closing stdin when done is the end of the event.
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&json);
        });
    }
    let limit = h.timeout();
    let status = match child.wait_timeout(limit) {
        Ok(Some(status)) => status,
        Ok(None) => {
            stop(&mut child);
            return Err(format!(
                "still running after {}s: stopped",
                limit.as_secs_f64()
            ));
        }
        Err(err) => {
            stop(&mut child);
            return Err(format!("cannot wait for it: {err}"));
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut said = String::new();
    let _ = errors.rewind();
    let _ = errors.take(MAX_REASON).read_to_string(&mut said);
    let first = said
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| format!(": {}", ui::clean(&ui::ellipsize(l, 200))))
        .unwrap_or_default();
    Err(match status.code() {
        Some(c) => format!("exit status {c}{first}"),
        None => format!("killed by a signal{first}"),
    })
}

/// Stops a hook and its process group, and reaps it.
fn stop(child: &mut std::process::Child) {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::KILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The events hooks may listen to: every log action, and `verify-failed`.
fn known_event(name: &str) -> bool {
    name == VERIFY_FAILED || name == "*" || Action::NAMES.contains(&name)
}

#[derive(Serialize)]
struct Tested {
    run: Vec<String>,
    ok: bool,
    error: Option<String>,
}

pub fn run(ctx: &Ctx, c: HooksCommand) -> anyhow::Result<()> {
    match c {
        HooksCommand::Test(a) => test(ctx, a),
    }
}

/// `carnet hooks test EVENT`: the hooks of EVENT run on a sample event; exit 1 if one fails.
fn test(ctx: &Ctx, a: HooksTestArgs) -> anyhow::Result<()> {
    let event = a.event.trim();
    if !known_event(event) || event == "*" {
        return Err(Error::Usage {
            msg: format!("unknown event {:?}", ui::clean(event)),
            hint: format!(
                "events are the actions of `carnet log` ({}) and {VERIFY_FAILED}",
                Action::NAMES.join(", ")
            ),
        }
        .into());
    }
    let hooks = Hooks::load()?;
    for h in &hooks.hooks {
        for e in h.on.iter().filter(|e| !known_event(e)) {
            eprintln!(
                "warning: hook `{}` listens to {:?}, which is no event: it never runs for it",
                h.shown(),
                ui::clean(e)
            );
        }
    }
    // The vault's id when --vault names one (no key needed); zeros otherwise.
    let vault_id = ctx
        .open_vault()
        .map(|v| v.config.vault_id)
        .unwrap_or_else(|_| "0".repeat(32));
    let pro = matches!(event, "receive" | "opened");
    let documents = if event == VERIFY_FAILED {
        Vec::new()
    } else {
        vec![crate::ids::random_id()]
    };
    let sample = Event {
        action: event.to_string(),
        time: ctx.now,
        vault_id,
        actor: if pro {
            "pro:10005173140".to_string()
        } else {
            "patient".to_string()
        },
        count: documents.len(),
        titles: Some(
            documents
                .iter()
                .map(|_| "Exemple / Example".to_string())
                .collect(),
        ),
        documents,
        test: true,
    };
    let mut results = Vec::new();
    for h in hooks.hooks.iter().filter(|h| h.listens(event)) {
        let r = run_one(h, &sample);
        results.push(Tested {
            run: h.run.clone(),
            ok: r.is_ok(),
            error: r.err(),
        });
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    if a.json {
        super::print_json(&results)?;
    } else if results.is_empty() {
        eprintln!(
            "no hook listens to {event} in {}",
            path().map_or_else(
                || "(no config folder)".to_string(),
                |p| p.display().to_string()
            )
        );
    } else {
        for r in &results {
            let shown = ui::clean(&r.run.join(" "));
            match &r.error {
                None => crate::outln!("ok      {shown}"),
                Some(why) => crate::outln!("FAILED  {shown}: {why}"),
            }
        }
    }
    if failed > 0 {
        return Err(Error::input(
            format!("{failed} hook(s) of {event} failed"),
            "each is listed above; run the program by hand with the event on its input to see why",
        )
        .into());
    }
    Ok(())
}
