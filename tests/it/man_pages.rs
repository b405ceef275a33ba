//! The man pages under `man/` are rendered from the clap definitions the binary parses
//! (`carnet::cli::args::Cli`); this test fails when a committed page is missing, stale or left over.
//!
//! To (re)write them after changing `src/args.rs`:
//!
//! ```sh
//! CARNET_UPDATE_MAN=1 cargo test --test it -- man_pages::
//! ```
//!
//! One page per command: `carnet.1`, `carnet-init.1`, ..., `carnet-pro-add.1` for nested ones.
//! clap_mangen renders the name, options and subcommands. The rest is written here from the same
//! definitions: a SYNOPSIS with every option's value; a DESCRIPTION from the long description,
//! the explanations of the help's epilogue (`after_help`) and how the command gets at the vault
//! and its key (`cli::roles`); EXIT STATUS, ENVIRONMENT (the options' variables and a few
//! more), FILES and SECURITY (chosen by the command's role), EXAMPLES from the epilogue, and SEE
//! ALSO (the related carnet pages, and age, minisign, restic ...).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use carnet::cli::roles::{self, Globals, Group, Role};
use clap_mangen::Man;
use roff::{Roff, bold, italic, roman};

const UPDATE_VAR: &str = "CARNET_UPDATE_MAN";

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// Every page, by file name.
fn render_all() -> BTreeMap<String, String> {
    // As clap_mangen::generate_to does: no `help` subcommand, and a built command so that
    // subcommands know their full names (carnet-pro-add).
    let mut cmd = roles::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = BTreeMap::new();
    walk(&cmd, &cmd, &[], &mut pages);
    pages
}

fn walk(
    root: &clap::Command,
    cmd: &clap::Command,
    parents: &[String],
    pages: &mut BTreeMap<String, String>,
) {
    let man = Man::new(cmd.clone())
        .source(format!("carnet {}", env!("CARGO_PKG_VERSION")))
        .manual("carnet manual");
    let page = render(&man, root, cmd, parents)
        .unwrap_or_else(|e| panic!("cannot render {}: {e}", man.get_filename()));
    pages.insert(man.get_filename(), page);
    let mut lineage = parents.to_vec();
    lineage.push(cmd.get_name().to_string());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(root, sub, &lineage, pages);
    }
}

fn render(
    man: &Man,
    root: &clap::Command,
    cmd: &clap::Command,
    parents: &[String],
) -> io::Result<String> {
    // The top-level command this page is about (`pro` for carnet-pro-add.1), and its role.
    let top = match parents.len() {
        0 => None,
        1 => Some(cmd.get_name()),
        _ => Some(parents[1].as_str()),
    };
    let role = top.and_then(roles::role_of);
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let parts = Epilogue::split(&after);

    let mut page = String::new();
    page.push_str(&part(|w| man.render_title(w))?);
    page.push_str(&body(part(|w| man.render_name_section(w))?));
    page.push_str(&body(synopsis(cmd, parents)));
    page.push_str(&body(description(cmd, role, &parts.prose)));
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        page.push_str(&body(part(|w| man.render_options_section(w))?));
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        page.push_str(&body(part(|w| man.render_subcommands_section(w))?));
    }
    let mut tail = Roff::new();
    exit_status(&mut tail, &parts.exit_status);
    environment(&mut tail, cmd, top, role, &parts.environment);
    files(&mut tail, cmd, top, role);
    security(&mut tail, role);
    examples(&mut tail, &parts.examples);
    see_also(&mut tail, cmd, parents, role, root);
    page.push_str(&body(tail.render()));
    if cmd.get_version().is_some() {
        page.push_str(&body(part(|w| man.render_version_section(w))?));
    }
    Ok(page)
}

fn part(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<String> {
    let mut buf = Vec::new();
    f(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Every roff rendering starts with the same two-line preamble defining `\*(Aq`; keep only the
/// title's copy.
fn body(rendered: String) -> String {
    match rendered.strip_prefix(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n") {
        Some(rest) => rest.to_string(),
        None => rendered,
    }
}

/// The help epilogue (`after_help`) cut into what goes where in a man page: paragraphs of prose
/// (DESCRIPTION), "Exit status:", "Environment:" and "Examples:" paragraphs.
#[derive(Default)]
struct Epilogue {
    prose: Vec<Vec<String>>,
    exit_status: Vec<Vec<String>>,
    environment: Vec<Vec<String>>,
    examples: Vec<Vec<String>>,
}

impl Epilogue {
    fn split(text: &str) -> Epilogue {
        let mut e = Epilogue::default();
        for para in text
            .split("\n\n")
            .map(str::trim_end)
            .filter(|p| !p.is_empty())
        {
            let mut lines = para.lines();
            let first = lines.next().unwrap_or_default();
            let (target, head_rest) = match first.split_once(':') {
                Some((h, rest)) if h.starts_with("Example") => (&mut e.examples, rest),
                Some(("Exit status", rest)) => (&mut e.exit_status, rest),
                Some(("Environment", rest)) => (&mut e.environment, rest),
                _ => (&mut e.prose, first),
            };
            let rest: Vec<String> = std::iter::once(head_rest.trim())
                .filter(|l| !l.is_empty())
                .chain(lines)
                .map(str::to_string)
                .collect();
            target.push(rest);
        }
        e
    }
}

/// A paragraph as help shows it: prose lines joined, indented lines (commands, lists) kept one
/// per line, with what they are indented by beyond the first two columns (a `\` continuation).
fn paragraph(r: &mut Roff, lines: &[String]) {
    r.control("PP", []);
    let (prose, block): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| !l.starts_with("  "));
    if !prose.is_empty() {
        let joined: Vec<&str> = prose.iter().map(|s| s.as_str()).collect();
        r.text([roman(joined.join(" "))]);
    }
    if !block.is_empty() {
        r.control("nf", []).control("RS", ["4"]);
        for l in block {
            r.text([roman(&l[2..])]);
        }
        r.control("RE", []).control("fi", []);
    }
}

/// The command's full name: `carnet pro add`.
fn full_name(cmd: &clap::Command, parents: &[String]) -> String {
    parents
        .iter()
        .map(String::as_str)
        .chain([cmd.get_name()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// SYNOPSIS with every option's value, as a person types it: `[-o|--output FILE]`, required
/// ones without brackets, repeatable ones with `...`.
fn synopsis(cmd: &clap::Command, parents: &[String]) -> String {
    let mut line = vec![bold(full_name(cmd, parents))];
    // As help lists them: the command's own options, the global ones, then the operands.
    let mut args: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter(|a| {
            !matches!(
                a.get_action(),
                clap::ArgAction::Help
                    | clap::ArgAction::HelpShort
                    | clap::ArgAction::HelpLong
                    | clap::ArgAction::Version
            )
        })
        .collect();
    args.sort_by_key(|a| {
        let global = a.get_help_heading() == Some(roles::GLOBAL_HEADING);
        (a.is_positional(), global, a.get_display_order())
    });
    for a in args {
        line.push(roman(" "));
        line.extend(synopsis_arg(a));
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        line.push(roman(" "));
        line.push(italic("COMMAND"));
    }
    let mut r = Roff::new();
    r.control("SH", ["SYNOPSIS"]);
    r.text(line);
    r.render()
}

fn synopsis_arg(a: &clap::Arg) -> Vec<roff::Inline> {
    let takes_value = a.get_action().takes_values();
    let repeats = a.get_num_args().is_some_and(|n| n.max_values() > 1)
        || matches!(a.get_action(), clap::ArgAction::Append);
    let value = a
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
    let mut out = Vec::new();
    if a.is_positional() {
        out.push(italic(value));
    } else {
        let mut names = Vec::new();
        if let Some(s) = a.get_short() {
            names.push(format!("-{s}"));
        }
        if let Some(l) = a.get_long() {
            names.push(format!("--{l}"));
        }
        for (i, n) in names.into_iter().enumerate() {
            if i > 0 {
                out.push(roman("|"));
            }
            out.push(bold(n));
        }
        if takes_value {
            out.push(roman(" "));
            out.push(italic(value));
        }
    }
    if repeats {
        out.push(roman("..."));
    }
    if !a.is_required_set() {
        out.insert(0, roman("["));
        out.push(roman("]"));
    }
    out
}

/// DESCRIPTION: the long description, the explanations of the help's epilogue, and how the
/// command gets at the vault and its key (from the role table the help uses).
fn description(cmd: &clap::Command, role: Option<&Role>, prose: &[Vec<String>]) -> String {
    let mut r = Roff::new();
    r.control("SH", ["DESCRIPTION"]);
    let about = cmd
        .get_long_about()
        .or_else(|| cmd.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default();
    for p in about.split("\n\n").filter(|p| !p.trim().is_empty()) {
        paragraph(&mut r, &[p.replace('\n', " ")]);
    }
    for p in prose {
        paragraph(&mut r, p);
    }
    if let Some(role) = role {
        r.control("PP", []);
        r.text([roman(keys_sentence(role.globals))]);
    }
    r.render()
}

fn keys_sentence(globals: Globals) -> &'static str {
    match globals {
        Globals::Vault => {
            "It works on the vault in --vault DIR (or $CARNET_VAULT, else \
             $XDG_DATA_HOME/carnet or ~/.local/share/carnet) and opens it with the vault's \
             passphrase (asked on a terminal; CARNET_PASSPHRASE or --passphrase-file in scripts) \
             or, in external mode, with the age identity file given by -i FILE (CARNET_IDENTITY)."
        }
        Globals::NewVault => {
            "The vault is made in --vault DIR (or $CARNET_VAULT, else $XDG_DATA_HOME/carnet or \
             ~/.local/share/carnet), which must be new or empty. Its key is protected by a new \
             passphrase (asked twice on a terminal; CARNET_PASSPHRASE or --passphrase-file in \
             scripts) or, with -i FILE, it is encrypted to that age identity file instead \
             (external mode: every later command then needs -i FILE or CARNET_IDENTITY)."
        }
        Globals::VaultNoKey => {
            "It reads only what the vault in --vault DIR (or $CARNET_VAULT) shows without its \
             key: no passphrase or identity is needed."
        }
        Globals::ProKey(_) => {
            "It needs no vault: it works with the professional's key given by -i KEYFILE \
             (CARNET_IDENTITY), made by carnet keygen; the key's passphrase, when it has one, is \
             asked on a terminal, or read from CARNET_PASSPHRASE or --passphrase-file."
        }
        Globals::NewKey => {
            "It needs no vault. The new key is protected by a passphrase (asked twice on a \
             terminal; CARNET_PASSPHRASE or --passphrase-file in scripts) unless --unprotected."
        }
        Globals::None => "It needs no vault and no key.",
    }
}

const EXIT_CODES: &[&str] = &[
    "  0  success",
    "  1  error",
    "  2  usage error",
    "  3  integrity check failed (vault or bundle)",
    "  4  grant expired or not yet valid",
];

fn exit_status(r: &mut Roff, specific: &[Vec<String>]) {
    r.control("SH", ["EXIT STATUS"]);
    for p in specific {
        paragraph(r, p);
    }
    // carnet.1's help lists the codes itself; the others say only what is special to them.
    if !specific.iter().flatten().any(|l| l.contains("0  success")) {
        let codes: Vec<String> = EXIT_CODES.iter().map(|s| s.to_string()).collect();
        paragraph(r, &codes);
    }
}

/// Variables some commands read besides their options' (which clap knows).
const MORE_ENVIRONMENT: &[(&str, &str, &str)] = &[
    (
        "open",
        "CARNET_PASSCODE",
        "The passcode of an emergency bundle or an access code, for --passcode.",
    ),
    (
        "open",
        "CARNET_KNOWN_PATIENTS",
        "Where patients' keys are remembered [default: $XDG_CONFIG_HOME/carnet/known-patients.toml].",
    ),
    (
        "patients",
        "CARNET_KNOWN_PATIENTS",
        "Where patients' keys are remembered [default: $XDG_CONFIG_HOME/carnet/known-patients.toml].",
    ),
    (
        "passphrase",
        "CARNET_NEW_PASSPHRASE",
        "The new passphrase, for scripts (a terminal asks for it twice).",
    ),
    (
        "note",
        "VISUAL, EDITOR",
        "The editor a note is written in, on a terminal.",
    ),
    (
        "note",
        "XDG_RUNTIME_DIR",
        "Where the editor's private file is made (0600 in a 0700 folder).",
    ),
    (
        "profile",
        "VISUAL, EDITOR",
        "The editor of carnet profile edit.",
    ),
    (
        "profile",
        "XDG_RUNTIME_DIR",
        "Where the editor's private file is made (0600 in a 0700 folder).",
    ),
    (
        "completions",
        "CARNET_COMPLETE",
        "Set by the completion script when it calls carnet back; never set it yourself.",
    ),
];

fn environment(
    r: &mut Roff,
    cmd: &clap::Command,
    top: Option<&str>,
    role: Option<&Role>,
    given: &[Vec<String>],
) {
    let mut entries: Vec<(String, String)> = Vec::new();
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if let Some(var) = a.get_env() {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let long = a.get_long().unwrap_or_default();
            entries.push((
                var.to_string_lossy().into_owned(),
                format!("Like --{long}: {help}."),
            ));
        }
    }
    let passphrase_file = cmd
        .get_arguments()
        .any(|a| a.get_id() == "passphrase_file" && !a.is_hide_set());
    if passphrase_file {
        let whose = match role.map(|r| r.globals) {
            Some(Globals::ProKey(_)) => "Your key's passphrase",
            Some(Globals::NewKey) => "The new key's passphrase",
            _ => "The vault's passphrase",
        };
        entries.push((
            "CARNET_PASSPHRASE".to_string(),
            format!(
                "{whose}, for scripts (--passphrase-file wins over it); without either, it is \
                 asked on a terminal, and never when standard input is not one."
            ),
        ));
    }
    for (command, var, text) in MORE_ENVIRONMENT {
        if top == Some(*command) {
            entries.push((var.to_string(), text.to_string()));
        }
    }
    if !given.is_empty() {
        // carnet.1's help lists every variable already.
        entries.clear();
    }
    if given.is_empty() && entries.is_empty() {
        return;
    }
    r.control("SH", ["ENVIRONMENT"]);
    for p in given {
        paragraph(r, p);
    }
    for (var, text) in entries {
        r.control("TP", []);
        r.text([bold(var)]);
        r.text([roman(text)]);
    }
}

const VAULT_FILES: &[(&str, &str)] = &[
    (
        "$CARNET_VAULT, $XDG_DATA_HOME/carnet, ~/.local/share/carnet",
        "The vault folder (--vault), in this order. Every file but carnet.toml and the index is \
         age-encrypted; names on disk are random ids. FORMAT.md describes each file.",
    ),
    (
        "VAULT/carnet.toml",
        "Public configuration: format version, the vault's public keys and signing key.",
    ),
    (
        "VAULT/identity.age",
        "The vault's identity, encrypted with the passphrase (passphrase mode only).",
    ),
    (
        "VAULT/keys.age, VAULT/manifest.age, VAULT/head.age",
        "The keyring, the record's root (patient, professionals, grants) and the log's head.",
    ),
    (
        "VAULT/log/, VAULT/objects/",
        "The access log, and one file per document or metadata shard, written once.",
    ),
    (
        "VAULT/index.json, VAULT/index.json.minisig, VAULT/index/",
        "The signed sizes and hashes of every file, checked without the key (verify --offline).",
    ),
    (
        "VAULT/lock",
        "The writers' lock; two commands at once wait for each other.",
    ),
];

const HOOKS_FILE: (&str, &str) = (
    "$XDG_CONFIG_HOME/carnet/hooks.toml",
    "Your hooks (carnet-hooks(1)): programs run after a change. Never in the vault: a vault on \
     a stick runs no code on the computer that opens it.",
);

const KNOWN_PATIENTS: (&str, &str) = (
    "$CARNET_KNOWN_PATIENTS, $XDG_CONFIG_HOME/carnet/known-patients.toml",
    "A professional's memory of patients: each patient's vault and the key that signs its \
     bundles, as carnet open first saw them.",
);

const PRO_FILES: &[(&str, &str)] = &[
    (
        "KEYFILE",
        "A professional's key (carnet keygen): an age identity file, its signing key in a comment \
         line, passphrase-protected unless made with --unprotected.",
    ),
    (
        "KEYFILE.card.toml",
        "The professional's contact card, sent to patients (public; carnet pro add --card).",
    ),
];

fn files(r: &mut Roff, cmd: &clap::Command, top: Option<&str>, role: Option<&Role>) {
    let mut entries: Vec<(&str, &str)> = Vec::new();
    match role.map(|r| r.globals) {
        None => {
            entries.extend(VAULT_FILES);
            entries.extend(PRO_FILES);
            entries.push(KNOWN_PATIENTS);
            entries.push(HOOKS_FILE);
        }
        Some(Globals::Vault | Globals::NewVault) => {
            entries.extend(VAULT_FILES);
            entries.push(HOOKS_FILE);
        }
        Some(Globals::VaultNoKey) => entries.extend(&VAULT_FILES[..2]),
        Some(Globals::ProKey(_) | Globals::NewKey) => entries.extend(PRO_FILES),
        Some(Globals::None) => {}
    }
    match top {
        Some("open" | "patients") => entries.push(KNOWN_PATIENTS),
        Some("hooks") => entries.push(HOOKS_FILE),
        Some("demo") => entries.push((
            "DIR, or a new folder in $TMPDIR",
            "Where the demo builds its sample vault, keys, cards and bundles; nothing outside \
             it is read or written.",
        )),
        _ => {}
    }
    r.control("SH", ["FILES"]);
    if entries.is_empty() {
        r.text([roman(format!(
            "{} reads and writes no file of carnet's; carnet(1) lists them.",
            cmd.get_bin_name().unwrap_or_else(|| cmd.get_name())
        ))]);
    }
    for (path, text) in entries {
        r.control("TP", []);
        r.text([italic(path)]);
        r.text([roman(text)]);
    }
}

/// What carnet cannot do, said where it matters.
#[derive(Clone, Copy, PartialEq)]
enum Caveat {
    Loss,
    Rollback,
    Revocation,
    Passcodes,
    Scrypt,
}

impl Caveat {
    const ALL: [Caveat; 5] = [
        Caveat::Loss,
        Caveat::Rollback,
        Caveat::Revocation,
        Caveat::Passcodes,
        Caveat::Scrypt,
    ];

    fn text(self) -> &'static str {
        match self {
            Caveat::Loss => {
                "A lost or copied vault reveals no document, title, category, date, author, \
                 professional or log entry: only how many files it holds and their rough sizes."
            }
            Caveat::Rollback => {
                "Whole-vault rollback: carnet verify reports any change, removal, reordering or \
                 older copy of a file of the vault, but not a rollback of the whole vault to an \
                 earlier, consistent state (every file together). Compare carnet log with your \
                 memory, and keep backups."
            }
            Caveat::Revocation => {
                "Expiry is consent, not DRM: once a professional has opened a bundle, nothing \
                 technical can take it back. carnet open enforces the signed expiry, and carnet \
                 revoke records that consent was withdrawn, but revocation cannot recall a copy."
            }
            Caveat::Passcodes => {
                "Offline, a passcode has no attempt limit: whoever holds an emergency bundle or \
                 an access code (grant --passcode) can try passcodes for as long as they like. \
                 The protection is the passcode's strength (generated: 8 words, 88 bits; never \
                 shorter) and scrypt's cost per try. Keep the passcode apart from the bundle."
            }
            Caveat::Scrypt => {
                "Passphrases and passcodes are stretched with scrypt at work factor 2^18, as age \
                 does: each unlock takes about a second and 256 MiB of memory. Files asking more \
                 than 2^20 (1 GiB) are refused, so a crafted file cannot exhaust memory."
            }
        }
    }
}

fn security(r: &mut Roff, role: Option<&Role>) {
    use Caveat::*;
    let caveats: Vec<Caveat> = match role.map(|r| r.group) {
        None => Caveat::ALL.to_vec(),
        Some(Group::Record) => vec![Loss, Rollback, Scrypt],
        Some(Group::Sharing) => vec![Revocation, Passcodes, Scrypt],
        Some(Group::Professional) => vec![Revocation, Passcodes, Scrypt],
        Some(Group::Keys) => vec![Scrypt, Loss, Rollback],
        Some(Group::Checks) => vec![Rollback, Loss],
        Some(Group::Utilities) => vec![Loss, Rollback],
    };
    r.control("SH", ["SECURITY"]);
    for c in caveats {
        r.control("PP", []);
        r.text([roman(c.text())]);
    }
}

fn examples(r: &mut Roff, paras: &[Vec<String>]) {
    if paras.is_empty() {
        return;
    }
    r.control("SH", ["EXAMPLES"]);
    for p in paras {
        paragraph(r, p);
    }
}

/// The pages of the other programs a group's commands work with.
fn other_tools(group: Option<Group>) -> &'static [&'static str] {
    match group {
        None => &["age", "age-keygen", "minisign", "restic"],
        Some(Group::Record | Group::Keys) => &["age", "age-keygen"],
        Some(Group::Sharing | Group::Professional) => &["age", "minisign", "unzip"],
        Some(Group::Checks) => &["restic", "minisign", "age"],
        Some(Group::Utilities) => &["age"],
    }
}

/// SEE ALSO: the parent pages, the subcommands' pages, the other commands of its group, then
/// the other programs.
fn see_also(
    r: &mut Roff,
    cmd: &clap::Command,
    parents: &[String],
    role: Option<&Role>,
    root: &clap::Command,
) {
    let page = |words: &[&str]| format!("{}(1)", words.join("-"));
    let mut pages: Vec<String> = Vec::new();
    for i in 1..=parents.len() {
        let words: Vec<&str> = parents[..i].iter().map(String::as_str).collect();
        pages.push(page(&words));
    }
    let own: Vec<&str> = parents
        .iter()
        .map(String::as_str)
        .chain([cmd.get_name()])
        .collect();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut words = own.clone();
        words.push(sub.get_name());
        pages.push(page(&words));
    }
    if let Some(role) = role.filter(|_| parents.len() == 1) {
        for other in roles::COMMANDS
            .iter()
            .filter(|o| o.group == role.group && o.name != cmd.get_name())
            .filter(|o| {
                root.find_subcommand(o.name)
                    .is_some_and(|s| !s.is_hide_set())
            })
        {
            pages.push(page(&["carnet", other.name]));
        }
    }
    pages.extend(
        other_tools(role.map(|r| r.group))
            .iter()
            .map(|t| format!("{t}(1)")),
    );
    r.control("SH", ["SEE ALSO"]);
    r.text([roman(pages.join(", "))]);
}

#[test]
fn man_pages_are_current() {
    let pages = render_all();
    let dir = man_dir();
    let committed: BTreeMap<String, String> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "1"))
                .filter_map(|p| {
                    let name = p.file_name()?.to_string_lossy().into_owned();
                    Some((name, fs::read_to_string(&p).unwrap_or_default()))
                })
                .collect()
        })
        .unwrap_or_default();

    if std::env::var_os(UPDATE_VAR).is_some_and(|v| v == "1") {
        fs::create_dir_all(&dir).expect("cannot create man/");
        for (name, text) in &pages {
            if committed.get(name) != Some(text) {
                fs::write(dir.join(name), text).expect("cannot write a man page");
                eprintln!("wrote man/{name}");
            }
        }
        for name in committed.keys().filter(|n| !pages.contains_key(*n)) {
            fs::remove_file(dir.join(name)).expect("cannot remove a stale man page");
            eprintln!("removed man/{name}");
        }
        return;
    }

    let missing: Vec<&String> = pages
        .keys()
        .filter(|n| !committed.contains_key(*n))
        .collect();
    let stale: Vec<&String> = pages
        .iter()
        .filter(|(n, t)| committed.get(*n).is_some_and(|c| c != *t))
        .map(|(n, _)| n)
        .collect();
    let extra: Vec<&String> = committed
        .keys()
        .filter(|n| !pages.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty() && extra.is_empty(),
        "the man pages in man/ do not match src/args.rs:\n  missing: {missing:?}\n  stale: {stale:?}\n  \
         for no command: {extra:?}\nregenerate them with: {UPDATE_VAR}=1 cargo test --test it -- man_pages::"
    );
}

#[test]
fn carnet_1_documents_the_exit_codes_and_every_command_has_a_page() {
    let pages = render_all();
    let top = pages.get("carnet.1").expect("carnet.1");
    assert!(top.contains(".SH \"EXIT STATUS\""), "{top}");
    for line in [
        "0  success",
        "1  error",
        "2  usage error",
        "3  integrity check failed (vault or bundle)",
        "4  grant expired or not yet valid",
    ] {
        assert!(top.contains(line), "carnet.1 lacks {line:?}");
    }
    for name in [
        "carnet-init.1",
        "carnet-pro.1",
        "carnet-pro-add.1",
        "carnet-demo.1",
    ] {
        assert!(
            pages.contains_key(name),
            "no {name} among {:?}",
            pages.keys()
        );
    }
    for (name, page) in &pages {
        if name != "carnet-pro.1" {
            assert!(
                page.contains(".SH EXAMPLES"),
                "{name} has no EXAMPLES section"
            );
        }
    }
}

/// The text of a page's section `title` (up to the next `.SH`), as rendered roff.
fn section<'a>(page: &'a str, title: &str) -> Option<&'a str> {
    let heading = if title.contains(' ') {
        format!(".SH \"{title}\"\n")
    } else {
        format!(".SH {title}\n")
    };
    let start = page.find(&heading)? + heading.len();
    let rest = &page[start..];
    Some(&rest[..rest.find("\n.SH ").map_or(rest.len(), |i| i + 1)])
}

#[test]
fn every_page_has_files_security_and_see_also() {
    let pages = render_all();
    for (name, page) in &pages {
        for title in [
            "FILES",
            "SECURITY",
            "SEE ALSO",
            "EXIT STATUS",
            "DESCRIPTION",
        ] {
            let text = section(page, title).unwrap_or_else(|| panic!("{name} has no {title}"));
            assert!(!text.trim().is_empty(), "{name}: {title} is empty");
        }
        let see_also = section(page, "SEE ALSO").unwrap();
        assert!(see_also.contains("age(1)"), "{name}: {see_also}");
        if name != "carnet.1" {
            assert!(see_also.contains("carnet(1)"), "{name}: {see_also}");
        }
    }
    let top = &pages["carnet.1"];
    let see_also = section(top, "SEE ALSO").unwrap();
    for tool in ["age(1)", "minisign(1)", "restic(1)", "carnet\\-grant(1)"] {
        assert!(see_also.contains(tool), "carnet.1 SEE ALSO lacks {tool}");
    }
    // The caveats the issue names, in carnet.1 and where they matter.
    let security = section(top, "SECURITY").unwrap();
    for needle in [
        "rollback of the whole vault",
        "revocation cannot recall a copy",
        "no attempt limit",
        "256 MiB",
    ] {
        assert!(
            security.contains(needle),
            "carnet.1 SECURITY lacks {needle:?}"
        );
    }
    assert!(
        section(&pages["carnet-revoke.1"], "SECURITY")
            .unwrap()
            .contains("recall a copy")
    );
    assert!(
        section(&pages["carnet-verify.1"], "SECURITY")
            .unwrap()
            .contains("rollback")
    );
    let files = section(&pages["carnet-open.1"], "FILES").unwrap();
    assert!(files.contains("known\\-patients.toml"), "{files}");
    let files = section(&pages["carnet-hooks.1"], "FILES").unwrap();
    assert!(files.contains("hooks.toml"), "{files}");
}

#[test]
fn synopsis_gives_every_option_its_value() {
    let mut cmd = roles::command().disable_help_subcommand(true);
    cmd.build();
    let pages = render_all();
    fn check(cmd: &clap::Command, file: &str, pages: &BTreeMap<String, String>) {
        let page = &pages[file];
        let synopsis = section(page, "SYNOPSIS").unwrap();
        assert!(!synopsis.contains("<\\fB"), "{file}: {synopsis}");
        for a in cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_action().takes_values())
        {
            let (Some(long), Some(values)) = (a.get_long(), a.get_value_names()) else {
                continue;
            };
            let want = format!(
                "\\fB\\-\\-{}\\fR \\fI{}\\fR",
                long.replace('-', "\\-"),
                values[0]
            );
            assert!(
                synopsis.contains(&want),
                "{file}: SYNOPSIS lacks {want}:\n{synopsis}"
            );
        }
        for sub in cmd.get_subcommands() {
            let name = format!("{}-{}.1", file.trim_end_matches(".1"), sub.get_name());
            check(sub, &name, pages);
        }
    }
    check(&cmd, "carnet.1", &pages);
}

#[test]
fn description_says_more_than_the_name_line() {
    for (name, page) in render_all() {
        let description = section(&page, "DESCRIPTION").unwrap();
        let paragraphs = description.matches(".PP").count();
        assert!(
            paragraphs >= 2,
            "{name}: DESCRIPTION only repeats the summary:\n{description}"
        );
    }
}
