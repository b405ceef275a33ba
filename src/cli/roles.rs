//! How the command line presents itself: the role each command serves (the groups of
//! `carnet --help`) and what the global options mean on it. One table, `COMMANDS`, so that a
//! new command is one line; `command()` applies it to the clap definitions of `args`, and the
//! binary, the tests, the man pages and the completions all take their `clap::Command` from it.
//!
//! Only presentation lives here: parsing is the derive's, and a global option a command does not
//! use is hidden from its help, not removed (`CARNET_VAULT` set in a professional's shell must
//! not break `carnet open`).

use std::fmt::Write as _;

use clap::builder::StyledStr;
use clap::{Arg, Command, CommandFactory};

use super::args::Cli;

/// The groups of `carnet --help`, in the order it lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Record,
    Sharing,
    Professional,
    Keys,
    Checks,
    Utilities,
}

impl Group {
    pub const ALL: [Group; 6] = [
        Group::Record,
        Group::Sharing,
        Group::Professional,
        Group::Keys,
        Group::Checks,
        Group::Utilities,
    ];

    /// The heading in `carnet --help` (without its colon).
    pub fn heading(self) -> &'static str {
        match self {
            Group::Record => "The record",
            Group::Sharing => "Sharing",
            Group::Professional => "The professional's side",
            Group::Keys => "Keys and people",
            Group::Checks => "Backups and checks",
            Group::Utilities => "Utilities",
        }
    }
}

/// What the global options (`--vault`, `-i`, `--passphrase-file`) mean on a command. The ones a
/// command does not use are hidden from its help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Globals {
    /// Works on the vault and opens it: all three, `-i` being an identity that opens the vault.
    Vault,
    /// Creates the vault: `-i` is the identity it will be encrypted to.
    NewVault,
    /// Reads only what the vault shows without its key: `--vault`.
    VaultNoKey,
    /// A professional's command, with no vault: `-i` is their key (one of the command's own
    /// options, described by the text given) and `--passphrase-file` that key's passphrase.
    ProKey(&'static str),
    /// Writes a new passphrase-protected key, with no vault: `--passphrase-file`.
    NewKey,
    /// Uses none of them.
    None,
}

/// One command: its name, its group, what the global options mean on it.
#[derive(Debug, Clone, Copy)]
pub struct Role {
    pub name: &'static str,
    pub group: Group,
    pub globals: Globals,
}

const fn role(name: &'static str, group: Group, globals: Globals) -> Role {
    Role {
        name,
        group,
        globals,
    }
}

use Globals::{NewKey, NewVault, ProKey, Vault, VaultNoKey};
use Group::{Checks, Keys, Professional, Record, Sharing, Utilities};

/// Every top-level command, in the order `carnet --help` lists it within its group. A new
/// command needs one line here; `tests/it/help.rs` fails, naming it, until it has one.
pub const COMMANDS: &[Role] = &[
    role("init", Record, NewVault),
    role("add", Record, Vault),
    role("note", Record, Vault),
    role("ls", Record, Vault),
    role("show", Record, Vault),
    role("cat", Record, Vault),
    role("export", Record, Vault),
    role("edit", Record, Vault),
    role("replace", Record, Vault),
    role("history", Record, Vault),
    role("hide", Record, Vault),
    role("unhide", Record, Vault),
    role("rm", Record, Vault),
    role("profile", Record, Vault),
    role("close", Record, Vault),
    role("reopen", Record, Vault),
    role("destroy", Record, Vault),
    role("pro", Sharing, Vault),
    role("grant", Sharing, Vault),
    role("grants", Sharing, Vault),
    role("revoke", Sharing, Vault),
    role("emergency", Sharing, Vault),
    role("card", Sharing, Vault),
    role("receive", Sharing, Vault),
    role("keygen", Professional, NewKey),
    role(
        "open",
        Professional,
        ProKey(
            "Your key as a professional (made by `carnet keygen`, or an SSH key or age plugin identity): the bundle is encrypted to it",
        ),
    ),
    role("patients", Professional, Globals::None),
    role(
        "deposit",
        Professional,
        ProKey("Your key as a professional (made by `carnet keygen`): it signs the deposit"),
    ),
    role("key", Keys, Vault),
    role("passphrase", Keys, Vault),
    role("rekey", Keys, Vault),
    role("unlock", Keys, Vault),
    role("lock", Keys, VaultNoKey),
    role("fingerprint", Keys, VaultNoKey),
    role("backup", Checks, Vault),
    role("restore", Checks, Vault),
    role("verify", Checks, Vault),
    role("log", Checks, Vault),
    role("categories", Utilities, Globals::None),
    role("hooks", Utilities, Globals::None),
    role("completions", Utilities, Globals::None),
    role("demo", Utilities, Globals::None),
    // clap's own, added when the command is built.
    role("help", Utilities, Globals::None),
];

/// The heading of the global options, on every command that uses them.
pub const GLOBAL_HEADING: &str = "Global options";

/// The heading of commands missing from `COMMANDS` (the tests fail while there is one).
const UNGROUPED: &str = "Other commands";

/// The role of a top-level command, when the table has it.
pub fn role_of(name: &str) -> Option<&'static Role> {
    COMMANDS.iter().find(|r| r.name == name)
}

/// The command line as the binary parses it and shows it.
pub fn command() -> Command {
    shape(Cli::command(), None)
}

/// The same, with help wrapped at `width` columns whatever the terminal (tests, documents).
pub fn command_at_width(width: usize) -> Command {
    shape(Cli::command().term_width(width), Some(width))
}

fn shape(mut cmd: Command, width: Option<usize>) -> Command {
    let globals: Vec<Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    for sub in cmd.get_subcommands_mut() {
        let Some(role) = role_of(sub.get_name()) else {
            continue;
        };
        // A copy of each global option on the command itself: clap then propagates that copy
        // (to `pro add`, `key ls` ...) instead of the top-level one, and values still reach
        // `GlobalOpts` since clap shares global values by id across levels. (In place, not
        // `mut_subcommand`, which moves the command to the end of the list.)
        let mut shaped = std::mem::take(sub);
        for g in &globals {
            shaped = shaped.arg(as_used_by(role.globals, g.clone()));
        }
        *sub = shaped;
    }
    let cmd = super::completions::attach(cmd);
    let list = grouped_commands(&cmd, width);
    // `{all-args}` would list the commands again, flat: the options are named one by one.
    let template = format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{list}\n\n{heading}\n{{options}}{{after-help}}",
        heading = styled_heading(&cmd, "Options")
    );
    cmd.help_template(template)
}

/// A global option as one command shows it: described for what it is there, hidden when unused.
fn as_used_by(globals: Globals, arg: Arg) -> Arg {
    let id = arg.get_id().as_str().to_string();
    let help: Option<&str> = match (globals, id.as_str()) {
        (Vault | VaultNoKey | NewVault, "vault") | (Vault, "identity") => return arg,
        (Vault, "passphrase_file") => {
            Some("Read the vault's passphrase from FILE (it wins over CARNET_PASSPHRASE)")
        }
        (NewVault, "identity") => Some(
            "An age identity file to encrypt the new vault to, instead of a new passphrase \
             (external mode: every later command needs it)",
        ),
        (NewVault, "passphrase_file") => {
            Some("Read the new vault's passphrase from FILE (it wins over CARNET_PASSPHRASE)")
        }
        (ProKey(text), "identity") => {
            // The professional's key is the point of the command: one of its own options.
            return arg
                .help(text)
                .value_name("KEYFILE")
                .help_heading(None::<&str>);
        }
        (ProKey(_), "passphrase_file") => {
            Some("Read your key's passphrase from FILE (it wins over CARNET_PASSPHRASE)")
        }
        (NewKey, "passphrase_file") => {
            Some("Read the new key's passphrase from FILE (it wins over CARNET_PASSPHRASE)")
        }
        _ => None,
    };
    match help {
        Some(h) => arg.help(h),
        None => arg.hide(true),
    }
}

/// The header style of the help, around `text` and a colon.
fn styled_heading(cmd: &Command, text: &str) -> String {
    let header = cmd.get_styles().get_header();
    format!("{}{text}:{}", header.render(), header.render_reset())
}

/// The commands under the headings of their groups. clap renders the list itself, so that names
/// align and descriptions wrap to the terminal as in the rest of the help; the headings are put
/// in between its entries afterwards.
fn grouped_commands(cmd: &Command, width: Option<usize>) -> String {
    let mut list = Command::new(cmd.get_name().to_string())
        .disable_help_subcommand(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .styles(cmd.get_styles().clone())
        .help_template("{subcommands}");
    if let Some(w) = width {
        list = list.term_width(w);
    }
    // (heading, names) in display order; unknown commands last, so none goes missing.
    let mut sections: Vec<(&str, Vec<&str>)> = Group::ALL
        .iter()
        .map(|g| {
            let names = COMMANDS
                .iter()
                .filter(|r| r.group == *g)
                .map(|r| r.name)
                .filter(|n| *n == "help" || cmd.find_subcommand(n).is_some())
                .collect();
            (g.heading(), names)
        })
        .collect();
    let ungrouped: Vec<&str> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && role_of(s.get_name()).is_none())
        .map(|s| s.get_name())
        .collect();
    sections.push((UNGROUPED, ungrouped));
    sections.retain(|(_, names)| !names.is_empty());

    let mut order = 0;
    for (_, names) in &sections {
        for name in names {
            let entry = match cmd.find_subcommand(name) {
                Some(sub) => Command::new(name.to_string())
                    .about(sub.get_about().cloned().unwrap_or_default())
                    .visible_aliases(
                        sub.get_visible_aliases()
                            .map(str::to_string)
                            .collect::<Vec<_>>(),
                    ),
                None => Command::new("help")
                    .about("Print this message or the help of the given subcommand(s)"),
            };
            list = list.subcommand(entry.display_order(order));
            order += 1;
        }
    }
    let rendered: StyledStr = list.render_help();
    let plain = rendered.to_string();
    let styled = rendered.ansi().to_string();

    // An entry starts with its name after two spaces; wrapped descriptions are indented more.
    let mut starts = sections
        .iter()
        .map(|(_, names)| names.len())
        .scan(0, |n, len| {
            let first = *n;
            *n += len;
            Some(first)
        });
    let mut next_start = starts.next();
    let mut headings = sections.iter().map(|(h, _)| *h);
    let mut out = String::new();
    let mut entry = 0;
    for (plain_line, styled_line) in plain.lines().zip(styled.lines()) {
        let starts_entry = plain_line.starts_with("  ") && !plain_line[2..].starts_with(' ');
        if starts_entry {
            if next_start == Some(entry) {
                if !out.is_empty() {
                    out.push('\n');
                }
                let _ = writeln!(
                    out,
                    "{}",
                    styled_heading(cmd, headings.next().unwrap_or(UNGROUPED))
                );
                next_start = starts.next();
            }
            entry += 1;
        }
        let _ = writeln!(out, "{styled_line}");
    }
    out.trim_end().to_string()
}
