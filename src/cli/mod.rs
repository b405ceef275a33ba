//! The command-line layer: argv (`args`, clap) → a resolved request (`Ctx`) → one library
//! operation → printing. Only this module prints, prompts or touches the terminal (`ui`).
//! Each command's handler lives in its own file; `main` maps errors to exit codes.

pub mod args;
mod passcode;
mod passphrase;
pub mod roles;
pub mod ui;

mod add;
mod backup;
mod card;
mod cat;
mod categories;
mod close;
mod completions;
mod demo;
mod deposit;
mod destroy;
mod emergency;
mod export;
mod grant;
mod hide;
pub mod hooks;
mod init;
mod keygen;
mod keys;
mod log;
mod ls;
mod note;
mod open;
mod patients;
mod pro;
mod profile;
mod receive;
mod revise;
mod revoke;
mod rm;
mod show;
mod unlock;
mod verify;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::FromArgMatches;

use self::args::{Cli, Command, GlobalOpts};
use crate::error::{Error, Exit};
use crate::keys::PassphraseSource;
use crate::vault::{KeyOpts, Vault};

/// What every command needs from the global options, resolved once.
pub struct Ctx {
    pub vault_dir: PathBuf,
    pub keys: KeyOpts,
    /// `--passphrase-file`, when given (the key is then "at hand" for a backup's log entry).
    pub passphrase_file: Option<PathBuf>,
    /// The time of this run: `CARNET_NOW` when set, so that tests and reproducible runs can
    /// check validity at a chosen time instead of waiting for it; else the clock.
    pub now: jiff::Timestamp,
    /// Where the vault opened by `open_vault` records each commit, for the hooks.
    pub journal: crate::events::Journal,
    /// `--verbose`: notes on stderr about how the command went (e.g. which key opened the vault).
    pub verbose: bool,
}

impl Ctx {
    /// `needs_vault` is false for commands that never touch a vault: they must run where no
    /// default vault folder can be named (no HOME), e.g. a demo or a professional's keygen.
    fn new(
        g: GlobalOpts,
        needs_vault: bool,
        journal: crate::events::Journal,
    ) -> anyhow::Result<Ctx> {
        let vault_dir = match g.vault {
            Some(v) => v,
            None if needs_vault => default_dir()?,
            None => PathBuf::new(),
        };
        let now = now_from_env()?;
        Ok(Ctx {
            vault_dir,
            now,
            journal,
            passphrase_file: g.passphrase_file.clone(),
            keys: KeyOpts {
                identity: g.identity,
                passphrase: PassphraseSource::new(passphrase::CliPassphrase {
                    file: g.passphrase_file.clone(),
                }),
                // Where the system has no store, commands simply ask for the key.
                session: crate::session::os_store()
                    .ok()
                    .map(|s| unlock::session(s, now, g.verbose)),
            },
            verbose: g.verbose,
        })
    }

    /// The vault of `--vault`, its commits recorded in the journal the hooks read.
    pub fn open_vault(&self) -> anyhow::Result<Vault> {
        let mut v = Vault::open(&self.vault_dir)?;
        if v.finished_rekey {
            eprintln!(
                "note: finished re-encrypting the vault (`carnet rekey` or `carnet key rm`), which had been interrupted: only its new keys open it"
            );
        }
        v.journal = Some(self.journal.clone());
        Ok(v)
    }
}

/// The default vault folder: `$XDG_DATA_HOME/carnet`, else `~/.local/share/carnet`.
fn default_dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("carnet"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            Error::input(
                "no vault folder given and HOME is not set",
                "pass --vault DIR or set CARNET_VAULT",
            )
        })?;
    Ok(PathBuf::from(home).join(".local/share/carnet"))
}

/// `CARNET_NOW` (RFC 3339) when set and not empty, else the clock. Read here only: the CLI
/// layer resolves the time once and commands take it from `Ctx`.
fn now_from_env() -> Result<jiff::Timestamp, Error> {
    match std::env::var_os("CARNET_NOW").filter(|v| !v.is_empty()) {
        None => Ok(crate::dates::now()),
        Some(v) => v
            .to_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .ok_or_else(|| Error::Usage {
                msg: format!(
                    "CARNET_NOW is not an RFC 3339 time: {:?}",
                    v.to_string_lossy()
                ),
                hint: "set CARNET_NOW to a time such as 2026-03-14T09:30:00Z, or unset it to use the clock"
                    .to_string(),
            }),
    }
}

/// Entry point for the binary.
pub fn main() -> ExitCode {
    // The shell asking what to complete (`carnet completions`): answer, and exit.
    completions::complete_if_asked();
    // Parsed from the command as `roles` shapes it (groups, globals), which is what help shows.
    let matches = roles::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A backup or a bundle cut short by a closed pipe is a failed delivery, not a reader that
    // had seen enough.
    let delivers_a_file = matches!(cli.command, Command::Backup(_) | Command::Grant(_));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) && !delivers_a_file {
                // `carnet ls | head` is a normal thing to do; it is not an error.
                return ExitCode::SUCCESS;
            }
            let code = report(&err);
            ExitCode::from(code as u8)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let needs_vault = !matches!(
        cli.command,
        Command::Keygen(_)
            | Command::Open(_)
            | Command::Patients(_)
            | Command::Demo(_)
            | Command::Completions(_)
            | Command::Categories(_)
            | Command::Deposit(_)
            | Command::Hooks(_)
    );
    // Hooks: read before the command (its commits look titles up only when a hook wants
    // them) and run after it, here and nowhere else, for every entry it committed.
    let hooks = if needs_vault {
        hooks::Hooks::load_or_warn()
    } else {
        hooks::Hooks::default()
    };
    let verifying = matches!(cli.command, Command::Verify(_));
    // A command that waits for another (a long `rekey`, a backup) says so rather than seem to
    // hang: on a terminal, or when asked with --verbose.
    if cli.global.verbose || ui::stderr_is_terminal() {
        crate::fsutil::on_lock_wait(|_| {
            eprintln!("note: waiting for another carnet command to finish with this vault…");
        });
    }
    let ctx = Ctx::new(
        cli.global,
        needs_vault,
        crate::events::Journal::new(hooks.with_titles()),
    )?;
    let (journal, now, vault_dir) = (ctx.journal.clone(), ctx.now, ctx.vault_dir.clone());
    let result = dispatch(ctx, cli.command);
    if !hooks.is_empty() {
        let mut events = journal.take();
        let check_failed = result.as_ref().err().is_some_and(|e| {
            e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<Error>(),
                    Some(
                        Error::VerifyFailed(_) | Error::VerifyFailedHint(..) | Error::Integrity(_)
                    )
                )
            })
        });
        if verifying && check_failed {
            events.push(crate::events::Event {
                action: hooks::VERIFY_FAILED.to_string(),
                time: now,
                vault_id: Vault::open(&vault_dir)
                    .map(|v| v.config.vault_id)
                    .unwrap_or_default(),
                actor: crate::domain::Actor::Patient.to_string(),
                documents: Vec::new(),
                count: 0,
                titles: None,
                test: false,
            });
        }
        hooks.fire(&events);
    }
    result
}

/// Runs the command (the one place `run` calls; hooks come after it).
fn dispatch(ctx: Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Add(a) => add::run(&ctx, a),
        Command::Note(a) => note::run(&ctx, a),
        Command::Edit(a) => revise::edit(&ctx, a),
        Command::Replace(a) => revise::replace(&ctx, a),
        Command::History(a) => revise::history(&ctx, a),
        Command::Hide(a) => hide::run(&ctx, a, true),
        Command::Unhide(a) => hide::run(&ctx, a, false),
        Command::Ls(a) => ls::run(&ctx, a),
        Command::Show(a) => show::run(&ctx, a),
        Command::Cat(a) => cat::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
        Command::Rm(a) => rm::run(&ctx, a),
        Command::Log(a) => log::run(&ctx, a),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::Keygen(a) => keygen::run(&ctx, a),
        Command::Pro(c) => pro::run(&ctx, c),
        Command::Grant(a) => grant::run(&ctx, a),
        Command::Grants(a) => grant::list(&ctx, a),
        Command::Revoke(a) => revoke::run(&ctx, a),
        Command::Open(a) => open::run(&ctx, a),
        Command::Patients(a) => patients::run(a),
        Command::Backup(a) => backup::run(&ctx, a),
        Command::Restore(a) => backup::restore(&ctx, a),
        Command::Close(a) => close::close(&ctx, a),
        Command::Reopen(a) => close::reopen(&ctx, a),
        Command::Destroy(a) => destroy::run(&ctx, a),
        Command::Key(c) => keys::run(&ctx, c),
        Command::Passphrase(a) => keys::passphrase(&ctx, a),
        Command::Rekey(a) => keys::rekey(&ctx, None, a),
        Command::Unlock(a) => unlock::unlock(&ctx, a),
        Command::Lock(a) => unlock::lock(&ctx, a),
        Command::Profile(c) => profile::run(&ctx, c),
        Command::Emergency(a) => emergency::run(&ctx, a),
        Command::Demo(a) => demo::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Fingerprint(a) => fingerprint(&ctx, a),
        Command::Categories(a) => categories::run(a),
        Command::Card(a) => card::run(&ctx, a),
        Command::Deposit(a) => deposit::run(&ctx, a),
        Command::Receive(a) => receive::run(&ctx, a),
        Command::Hooks(c) => hooks::run(&ctx, c),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// Prints `error: …` and a `hint: …` line; returns the exit code.
fn report(err: &anyhow::Error) -> Exit {
    let mut stderr = io::stderr().lock();
    let carnet_err = err.chain().find_map(|e| e.downcast_ref::<Error>());
    // anyhow's alternate form joins the context chain on one line: "cannot read x: denied".
    // Messages quote titles, file names and bundle contents: never raw to the terminal.
    let _ = writeln!(stderr, "error: {}", ui::clean(&format!("{err:#}")));
    if let Some(hint) = carnet_err.and_then(Error::hint) {
        let _ = writeln!(stderr, "hint: {}", ui::clean(&hint));
    }
    carnet_err.map_or(Exit::Failure, Error::exit)
}

/// Checks an RPPS number as typed, warning on stderr when it fails the Luhn check (official
/// test numbers do; real ones usually pass).
pub fn rpps_with_warning(s: &str) -> Result<String, Error> {
    let (r, check) = crate::pro::check_rpps(s)?;
    if check == crate::pro::RppsCheck::LuhnMismatch {
        eprintln!("warning: RPPS {r} fails the Luhn check (official test numbers do); check it");
    }
    Ok(r)
}

/// The scrypt cost of a new passphrase: `CARNET_SCRYPT_LOG_N` lowers it for test suites (hundreds
/// of unlocks in seconds); production use leaves it unset (2^18, as Go `age`).
pub fn scrypt_log_n() -> u8 {
    crate::keys::scrypt_log_n(
        std::env::var("CARNET_SCRYPT_LOG_N")
            .ok()
            .and_then(|v| v.parse::<u8>().ok()),
    )
}

/// Prints what a command should tell besides its result (`note: …`, `warning: …`) on stderr.
pub fn print_notices(notices: &[crate::txn::Notice]) {
    for n in notices {
        eprintln!("{}", ui::clean(&n.to_string()));
    }
}

/// Writes `value` as pretty JSON and a newline to stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `carnet fingerprint`: read from carnet.toml, so it needs no key (the keyed `verify` checks
/// that this key is the vault's own).
fn fingerprint(ctx: &Ctx, a: args::JsonArg) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let fp = vault.fingerprint()?;
    if a.json {
        return print_json(&serde_json::json!({
            "fingerprint": fp,
            "signing_key": vault.config.signing_key,
            "recipients": vault.config.recipients,
        }));
    }
    crate::outln!("{fp}");
    Ok(())
}
