//! Shell completion, from the clap definitions the binary parses: `carnet completions SHELL`
//! prints a small script that asks carnet itself what to offer (clap_complete's dynamic
//! completion, through `CARNET_COMPLETE`), so commands and options never drift from the real CLI,
//! and values come from the vault: document ids with their titles, grant ids, professionals'
//! handles, key names, and the categories with their aliases.
//!
//! Completing never prompts and never waits for a person: what lives in the encrypted vault is
//! offered only when its key is at hand without asking (`-i`/`CARNET_IDENTITY`, or
//! `--passphrase-file`/`CARNET_PASSPHRASE`, on the command line being completed or in the
//! environment); otherwise nothing is offered. Nothing is written and nothing is logged.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::PathBuf;

use age::secrecy::SecretString;
use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use clap::{Arg, Command, FromArgMatches};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use super::args::{CompletionsArgs, GlobalOpts, Shell};
use crate::category;
use crate::keys::{Passphrase, PassphraseSource};
use crate::vault::{KeyOpts, Vault};

/// The environment variable through which the scripts call carnet back: a name of carnet's own,
/// so that a `COMPLETE` set for another program does not turn carnet into a completer.
pub const VAR: &str = "CARNET_COMPLETE";

/// What an argument's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Document ids, shown with their titles (needs the key).
    Documents,
    /// Grant ids, shown with whom and until when (needs the key).
    Grants,
    /// Professionals' handles, shown with their names (needs the key).
    Pros,
    /// The names of the keys that open the vault (needs the key).
    Keys,
    /// Category slugs and their aliases (a closed set: also the possible values in help).
    Categories,
    /// The log's actions (`log --action`, `hooks test EVENT`): from this build, no vault needed.
    Actions,
}

/// Which arguments complete from what: (command path, argument id, values). A new argument
/// that takes one of these is one line here (`("key rm", "name", Values::Keys)`); a wrong path
/// or id panics in every test that builds the command.
pub const ARGUMENTS: &[(&str, &str, Values)] = &[
    ("show", "id", Values::Documents),
    ("cat", "id", Values::Documents),
    ("edit", "id", Values::Documents),
    ("replace", "id", Values::Documents),
    ("history", "id", Values::Documents),
    ("hide", "ids", Values::Documents),
    ("unhide", "ids", Values::Documents),
    ("export", "ids", Values::Documents),
    ("rm", "ids", Values::Documents),
    ("log", "doc", Values::Documents),
    ("grant", "docs", Values::Documents),
    ("emergency", "include", Values::Documents),
    ("revoke", "id", Values::Grants),
    ("grant", "to", Values::Pros),
    ("pro rm", "who", Values::Pros),
    ("pro block", "who", Values::Pros),
    ("pro unblock", "who", Values::Pros),
    ("add", "category", Values::Categories),
    ("ls", "categories", Values::Categories),
    ("edit", "category", Values::Categories),
    ("hide", "category", Values::Categories),
    ("unhide", "category", Values::Categories),
    ("export", "category", Values::Categories),
    ("grant", "categories", Values::Categories),
    ("deposit", "category", Values::Categories),
    ("key rm", "name", Values::Keys),
    ("log", "action", Values::Actions),
    ("hooks test", "event", Values::Actions),
];

/// Gives every argument of `ARGUMENTS` its completer, and the categories as possible values.
pub fn attach(mut cmd: Command) -> Command {
    for (path, id, values) in ARGUMENTS {
        let words: Vec<&str> = path.split(' ').collect();
        let values = *values;
        with_arg(&mut cmd, &words, id, &|arg: Arg| {
            let arg = arg.add(ArgValueCompleter::new(move |current: &OsStr| {
                candidates(values, current)
            }));
            match values {
                Values::Categories => arg.value_parser(CategoryName),
                _ => arg,
            }
        });
    }
    cmd
}

/// Changes the argument `id` of the command at `path` in place (keeping the commands' order).
/// A path or an id that does not exist panics: every test that builds the command says so.
fn with_arg(cmd: &mut Command, path: &[&str], id: &str, f: &dyn Fn(Arg) -> Arg) {
    match path.split_first() {
        None => {
            assert!(
                cmd.get_arguments().any(|a| a.get_id() == id),
                "completions::ARGUMENTS: {} has no argument {id:?}",
                cmd.get_name()
            );
            // `mut_args`, not `mut_arg`: the latter moves the argument to the end of the list,
            // and a positional would change places (`replace ID FILE` read as `replace FILE ID`).
            *cmd = std::mem::take(cmd).mut_args(|a| if a.get_id() == id { f(a) } else { a });
        }
        Some((first, rest)) => {
            let sub = cmd
                .get_subcommands_mut()
                .find(|s| s.get_name() == *first)
                .unwrap_or_else(|| panic!("completions::ARGUMENTS: no command {first:?}"));
            with_arg(sub, rest, id, f);
        }
    }
}

/// A category as typed: any text reaches `category::parse`, which also accepts labels, DMP
/// codes and plurals and says what is wrong; clap only shows the slugs as possible values (in
/// help and completion), their aliases beside them.
#[derive(Clone)]
struct CategoryName;

impl TypedValueParser for CategoryName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(category::ALL.iter().map(|c| {
            PossibleValue::new(c.slug)
                .help(c.label)
                .aliases(category::aliases(c.slug))
        })))
    }
}

/// The candidates for `current`, from the vault when its key is at hand.
fn candidates(values: Values, current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let mut out: Vec<(String, String)> = Vec::new();
    if values == Values::Categories {
        for c in category::ALL {
            out.push((c.slug.to_string(), c.label.to_string()));
            for alias in category::aliases(c.slug) {
                out.push((alias.to_string(), format!("{} ({})", c.label, c.slug)));
            }
        }
    } else if values == Values::Actions {
        out.extend(
            crate::domain::Action::NAMES
                .iter()
                .chain(["verify-failed"].iter())
                .map(|a| (a.to_string(), "log action".to_string())),
        );
    } else if let Some(found) = from_vault(values) {
        out = found;
    }
    out.into_iter()
        .filter(|(value, _)| value.starts_with(current.as_ref()))
        .map(|(value, help)| CompletionCandidate::new(value).help(Some(help.into())))
        .collect()
}

/// (value, description) pairs read from the vault; `None` when it cannot be read without
/// asking (no key at hand, a protected identity file, a wrong passphrase, no vault ...).
fn from_vault(values: Values) -> Option<Vec<(String, String)>> {
    let (dir, keys) = key_at_hand()?;
    // A re-encryption under way (or interrupted) is not a TAB's to wait for or to finish.
    if crate::rekey::state(&dir) != crate::rekey::State::None {
        return None;
    }
    let vault = Vault::open(&dir).ok()?;
    let snap = vault.read(&keys).ok()?;
    let clean = |s: &str| super::ui::clean(s).replace(['\n', '\t'], " ");
    Some(match values {
        Values::Documents => snap
            .sorted_documents(&vault)
            .ok()?
            .into_iter()
            .map(|d| {
                let help = format!("{} ({}, {})", clean(&d.title), d.date, d.category);
                (d.id.to_string(), help)
            })
            .collect(),
        Values::Grants => snap
            .root
            .grants
            .iter()
            .map(|g| {
                let help = format!("to {} until {}", g.to.join(", "), g.expires);
                (g.id.clone(), clean(&help))
            })
            .collect(),
        Values::Pros => snap
            .root
            .professionals
            .iter()
            .map(|p| (p.handle.clone(), clean(&p.name)))
            .collect(),
        Values::Keys => crate::ops::keys::list(&vault, &snap.root)
            .into_iter()
            // `key rm` refuses the patient's own key: not a value to offer.
            .filter(|k| k.role != "patient")
            .map(|k| (k.name.clone(), format!("{} key", k.role)))
            .collect(),
        Values::Categories | Values::Actions => Vec::new(),
    })
}

/// The vault folder and a way to open it without asking anyone, from the words being completed
/// (`carnet --vault X -i KEY show <TAB>`) and the environment; `None` when no key is at hand.
fn key_at_hand() -> Option<(PathBuf, KeyOpts)> {
    let words = words_before_cursor();
    let matches = super::roles::command()
        .ignore_errors(true)
        .try_get_matches_from(&words)
        .ok()?;
    let g = GlobalOpts::from_arg_matches(&matches).ok()?;
    let env_path = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let identity = g.identity.or_else(|| env_path("CARNET_IDENTITY"));
    // A hardware key (an age plugin's) may wait for a touch or a PIN: not for a TAB.
    if let Some(p) = &identity
        && crate::fsutil::read_limited(p, 1 << 20)
            .is_ok_and(|b| b.windows(11).any(|w| w == b"AGE-PLUGIN-"))
    {
        return None;
    }
    let file = g.passphrase_file;
    let dir = match g.vault.or_else(|| env_path("CARNET_VAULT")) {
        Some(d) => d,
        None => super::default_dir().ok()?,
    };
    // An unlocked vault (`carnet unlock`) completes without any key given: its kept key is
    // tried first, and without one nothing is asked (NeverAsk), so a TAB never prompts.
    let keys = KeyOpts {
        identity,
        passphrase: PassphraseSource::new(NeverAsk { file }),
        session: crate::session::os_store()
            .ok()
            .map(|s| super::unlock::session(s, jiff::Timestamp::now(), false)),
    };
    Some((dir, keys))
}

/// The command line the shell is completing, up to the word under the cursor: the completion
/// scripts run `carnet -- WORDS...` and give the cursor's index in `_CLAP_COMPLETE_INDEX` (fish
/// and others complete the last word).
fn words_before_cursor() -> Vec<OsString> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let words: Vec<OsString> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => return Vec::new(),
    };
    let cursor = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse::<usize>().ok())
        .unwrap_or(words.len().saturating_sub(1));
    words[..cursor.min(words.len())].to_vec()
}

/// A passphrase from `--passphrase-file` or `CARNET_PASSPHRASE`, never from the terminal: the
/// terminal belongs to the shell while it completes.
struct NeverAsk {
    file: Option<PathBuf>,
}

impl Passphrase for NeverAsk {
    fn get(&self, _prompt: &str, confirm: bool) -> anyhow::Result<SecretString> {
        if confirm {
            anyhow::bail!("completion never sets a passphrase");
        }
        match super::passphrase::given(self.file.as_deref())? {
            Some(p) => Ok(SecretString::from(p.as_str().to_owned())),
            None => anyhow::bail!("no passphrase at hand"),
        }
    }
}

/// Answers the shell when it calls carnet back to complete a command line (then exits); does
/// nothing otherwise.
pub fn complete_if_asked() {
    clap_complete::CompleteEnv::with_factory(super::roles::command)
        .var(VAR)
        .complete();
}

/// `carnet completions SHELL`: the script that registers carnet's completion in that shell.
pub fn run(a: CompletionsArgs) -> anyhow::Result<()> {
    let shell: &dyn EnvCompleter = match a.shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::Powershell => &Powershell,
    };
    let mut script = Vec::new();
    shell.write_registration(VAR, "carnet", "carnet", &completer(), &mut script)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// How the script calls carnet back: as it was called now, by name (found on $PATH then) or by
/// its path, made absolute so that the script works from any folder.
fn completer() -> String {
    let argv0 = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("carnet"));
    let path = if argv0.components().count() > 1 && argv0.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(&argv0))
            .unwrap_or(argv0)
    } else {
        argv0
    };
    path.to_string_lossy().into_owned()
}
