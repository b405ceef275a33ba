//! Every command's help ends with an example: `-h` and `--help` are where a newcomer looks
//! first, and the man pages are rendered from the same text. `carnet --help` lists the commands
//! by role; each command shows its own options first and the global ones apart, described for
//! what they are there; examples can be copied as they are printed.

use carnet::cli::roles::{self, COMMANDS, GLOBAL_HEADING, Globals, Group};

/// Commands that only group subcommands, whose help is the list of those subcommands (each of
/// which has examples). Listed by hand so that a new group is a conscious choice.
const GROUPS_WITHOUT_EXAMPLES: &[&str] = &[];

/// The terminal width help is checked at: the widest clap wraps to by default without a terminal.
const WIDTH: usize = 100;

/// The global options, as help names them.
const GLOBALS: &[&str] = &["--vault", "--identity", "--passphrase-file"];

fn words(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| s.to_string()).collect()
}

/// A help text cut at its headings: (heading, the lines under it). The text before the first
/// heading (summary, usage) comes under "".
fn blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = vec![(String::new(), Vec::new())];
    for line in text.lines() {
        let is_heading = !line.starts_with(' ')
            && line.ends_with(':')
            && !line.contains(". ")
            && line.len() < 40;
        if is_heading {
            out.push((line.trim_end_matches(':').to_string(), Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line.to_string());
        }
    }
    out
}

/// Every option a help text lists, under any heading.
fn listed_options(text: &str) -> Vec<String> {
    blocks(text)
        .iter()
        .flat_map(|(_, lines)| options_in(lines))
        .collect()
}

/// The options a block lists: `--long` of every entry line ("  -i, --identity <FILE>  ...").
fn options_in(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let t = l.trim_start();
            let indent = l.len() - t.len();
            // Entries are indented 2 (short flag) or 6 (long only); descriptions more.
            if !(indent == 2 || indent == 6) || !t.starts_with('-') {
                return None;
            }
            let long = t.split_whitespace().find(|w| w.starts_with("--"))?;
            Some(long.trim_end_matches(',').to_string())
        })
        .collect()
}

/// Every command as the words that invoke it: ["carnet"], ["carnet", "init"], ["carnet", "pro", "add"], ...
fn all_commands() -> Vec<(Vec<String>, clap::Command)> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
        out.push((path, cmd.clone()));
    }
    let mut out = Vec::new();
    walk(&roles::command(), vec!["carnet".to_string()], &mut out);
    out
}

/// The help text exactly as `carnet ... FLAG` prints it on a terminal 100 columns wide.
fn help(path: &[String], flag: &str) -> String {
    let err = roles::command_at_width(WIDTH)
        .try_get_matches_from(path.iter().map(String::as_str).chain([flag]))
        .expect_err("help exits early");
    assert_eq!(
        err.kind(),
        clap::error::ErrorKind::DisplayHelp,
        "{}",
        path.join(" ")
    );
    err.render().to_string()
}

#[test]
fn every_command_has_an_example() {
    let mut missing = Vec::new();
    for (path, cmd) in all_commands() {
        let name = path.join(" ");
        if GROUPS_WITHOUT_EXAMPLES.contains(&name.as_str()) {
            assert!(
                cmd.get_subcommands().next().is_some(),
                "{name} is exempt from examples but has no subcommands"
            );
            continue;
        }
        let after = cmd
            .get_after_help()
            .map(|s| s.to_string())
            .unwrap_or_default();
        if !after.contains("Example") {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "these commands have no \"Example\" in their after_help (src/args.rs): {missing:?}"
    );
}

#[test]
fn short_and_long_help_end_with_an_example() {
    for (path, _) in all_commands() {
        let name = path.join(" ");
        if GROUPS_WITHOUT_EXAMPLES.contains(&name.as_str()) {
            continue;
        }
        for flag in ["-h", "--help"] {
            let text = help(&path, flag);
            // The last section must be the examples: a heading, then only indented lines
            // (a long example may wrap onto several).
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let heading = lines.iter().rposition(|l| !l.starts_with(' '));
            let ends_with_examples =
                heading.is_some_and(|i| lines[i].starts_with("Example") && i + 1 < lines.len());
            assert!(
                ends_with_examples,
                "`{name} {flag}` does not end with an example:\n{text}"
            );
        }
    }
}

#[test]
fn exempt_groups_still_lack_examples() {
    // Once a group gets examples, it should lose its exemption so that they stay checked.
    for (path, cmd) in all_commands() {
        let name = path.join(" ");
        if GROUPS_WITHOUT_EXAMPLES.contains(&name.as_str()) {
            let after = cmd
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            assert!(
                !after.contains("Example"),
                "{name} now has examples: remove it from GROUPS_WITHOUT_EXAMPLES in tests/it/help.rs"
            );
        }
    }
}

#[test]
fn top_level_long_help_lists_the_exit_codes() {
    let text = help(&["carnet".to_string()], "--help");
    for line in [
        "0  success",
        "1  error",
        "2  usage error",
        "3  integrity check failed",
        "4  grant expired or not yet valid",
    ] {
        assert!(
            text.contains(line),
            "`carnet --help` lacks {line:?}:\n{text}"
        );
    }
}

#[test]
fn carnet_help_lists_the_commands_by_role() {
    for flag in ["-h", "--help"] {
        let text = help(&words(&["carnet"]), flag);
        let blocks = blocks(&text);
        let headings: Vec<&str> = blocks.iter().map(|(h, _)| h.as_str()).collect();
        let mut last = 0;
        for group in Group::ALL {
            let at = headings
                .iter()
                .position(|h| *h == group.heading())
                .unwrap_or_else(|| {
                    panic!(
                        "`carnet {flag}` has no {:?} heading:\n{text}",
                        group.heading()
                    )
                });
            assert!(
                at > last,
                "`carnet {flag}`: {:?} is out of order",
                group.heading()
            );
            last = at;
            // Each command of the group is listed under its heading, and only there.
            let listed: Vec<&str> = blocks[at]
                .1
                .iter()
                .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            let expected: Vec<&str> = COMMANDS
                .iter()
                .filter(|r| r.group == group)
                .map(|r| r.name)
                .collect();
            assert_eq!(
                listed,
                expected,
                "`carnet {flag}` under {:?}",
                group.heading()
            );
        }
        assert!(
            !headings.contains(&"Commands"),
            "`carnet {flag}` still has a flat command list:\n{text}"
        );
    }
}

#[test]
fn every_command_belongs_to_a_group() {
    let mut cmd = roles::command();
    cmd.build();
    let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
    let ungrouped: Vec<&&str> = names
        .iter()
        .filter(|n| roles::role_of(n).is_none())
        .collect();
    assert!(
        ungrouped.is_empty(),
        "these commands belong to no group of `carnet --help`: {ungrouped:?}\n\
         add one line for each to COMMANDS in src/cli/roles.rs, e.g. \
         `role(\"{}\", Keys, Vault),` (its group, and what the global options mean on it)",
        ungrouped.first().map_or("NAME", |n| **n)
    );
    let stale: Vec<&str> = COMMANDS
        .iter()
        .map(|r| r.name)
        .filter(|n| !names.contains(n))
        .collect();
    assert!(
        stale.is_empty(),
        "COMMANDS in src/cli/roles.rs names commands that do not exist: {stale:?}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for r in COMMANDS {
        assert!(seen.insert(r.name), "{} is twice in COMMANDS", r.name);
    }
}

#[test]
fn global_options_come_after_a_commands_own_and_only_where_used() {
    // `carnet` itself has no options of its own but -h and -V: its block lists the globals.
    for (path, _) in all_commands().into_iter().filter(|(p, _)| p.len() > 1) {
        let name = path.join(" ");
        let role = path.get(1).and_then(|top| roles::role_of(top));
        for flag in ["-h", "--help"] {
            let text = help(&path, flag);
            let blocks = blocks(&text);
            let mut after_globals = false;
            for (heading, lines) in &blocks {
                let options = options_in(lines);
                if heading == GLOBAL_HEADING {
                    after_globals = true;
                    for o in &options {
                        assert!(
                            GLOBALS.contains(&o.as_str()),
                            "`{name} {flag}`: {o} is not global but is listed under {heading}:\n{text}"
                        );
                    }
                    continue;
                }
                assert!(
                    !after_globals || options.is_empty(),
                    "`{name} {flag}`: options of its own come after the global ones:\n{text}"
                );
                for o in &options {
                    let own_key = o == "--identity"
                        && role.is_some_and(|r| matches!(r.globals, Globals::ProKey(_)));
                    assert!(
                        !GLOBALS.contains(&o.as_str()) || own_key,
                        "`{name} {flag}`: the global {o} sits among the command's own options \
                         under {heading:?}:\n{text}"
                    );
                }
            }
        }
    }
    // Commands that never touch a vault do not offer --vault (the list).
    for cmd in [
        "keygen",
        "open",
        "demo",
        "completions",
        "categories",
        "deposit",
        "patients",
    ] {
        let text = help(&words(&["carnet", cmd]), "--help");
        assert!(
            !listed_options(&text).contains(&"--vault".to_string()),
            "`carnet {cmd} --help` offers --vault, which it does not use:\n{text}"
        );
    }
    for cmd in ["demo", "completions", "categories"] {
        let text = help(&words(&["carnet", cmd]), "--help");
        let listed = listed_options(&text);
        assert!(
            !listed.contains(&"--identity".to_string())
                && !listed.contains(&"--passphrase-file".to_string()),
            "`carnet {cmd} --help` offers a key option it does not use:\n{text}"
        );
    }
    // And commands that open the vault still say how.
    let text = help(&words(&["carnet", "grant"]), "--help");
    let globals = blocks(&text)
        .into_iter()
        .find(|(h, _)| h == GLOBAL_HEADING)
        .map(|(_, lines)| options_in(&lines))
        .unwrap_or_default();
    assert_eq!(globals, GLOBALS, "`carnet grant --help`:\n{text}");
}

#[test]
fn open_help_describes_i_as_the_professionals_key() {
    for flag in ["-h", "--help"] {
        let text = help(&words(&["carnet", "open"]), flag);
        let blocks = blocks(&text);
        let (heading, lines) = blocks
            .iter()
            .find(|(_, lines)| options_in(lines).contains(&"--identity".to_string()))
            .unwrap_or_else(|| panic!("`carnet open {flag}` has no -i:\n{text}"));
        assert_eq!(heading, "Options", "`carnet open {flag}`:\n{text}");
        let at = lines
            .iter()
            .position(|l| l.contains("--identity"))
            .expect("the -i line");
        // Its description: the entry line and the lines indented under it.
        let description: String = std::iter::once(&lines[at])
            .chain(lines[at + 1..].iter().take_while(|l| {
                let t = l.trim_start();
                !t.is_empty() && l.len() - t.len() > 6
            }))
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            description.contains("professional") && !description.contains("opens the vault"),
            "`carnet open {flag}` describes -i as {description:?}"
        );
    }
}

/// The examples of a help text: the lines of its "Example(s):" section.
fn example_lines(text: &str) -> Vec<String> {
    blocks(text)
        .into_iter()
        .filter(|(h, _)| h.starts_with("Example"))
        .flat_map(|(_, lines)| lines)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn examples_fit_100_columns_and_are_printed_as_written() {
    for (path, cmd) in all_commands() {
        let name = path.join(" ");
        let source: String = [cmd.get_after_help(), cmd.get_after_long_help()]
            .into_iter()
            .flatten()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        for flag in ["-h", "--help"] {
            let text = help(&path, flag);
            for line in example_lines(&text) {
                let width = line.chars().count();
                assert!(
                    width <= WIDTH,
                    "`{name} {flag}`: an example is {width} columns wide (at most {WIDTH}; \
                     split it with a `\\` continuation):\n{line}"
                );
                // A line clap wrapped is not in the source as it is: it was cut mid-command.
                assert!(
                    source.lines().any(|s| s == line),
                    "`{name} {flag}`: this example line was wrapped, not written so; \
                     it cannot be copied:\n{line}\n\nin:\n{text}"
                );
            }
        }
    }
}

#[test]
fn a_continued_example_is_one_command_for_the_shell() {
    // `\` continuations must end the line exactly (a space after it breaks the command) and be
    // followed by an indented line.
    for (path, _) in all_commands() {
        let text = help(&path, "--help");
        let lines = example_lines(&text);
        for (i, line) in lines.iter().enumerate() {
            if line.trim_end().ends_with('\\') {
                assert!(line.ends_with(" \\"), "{}: {line:?}", path.join(" "));
                let next = lines.get(i + 1).map(String::as_str).unwrap_or_default();
                assert!(
                    next.starts_with("    "),
                    "{}: the line after {line:?} is not its continuation: {next:?}",
                    path.join(" ")
                );
            }
        }
    }
}

#[test]
fn shaping_the_command_keeps_every_argument_as_the_definitions_have_it() {
    // roles and completions change how arguments are shown and completed, never what they are:
    // same ids, same operands in the same order (`replace ID FILE` must not become FILE ID).
    use clap::CommandFactory;
    fn operands(cmd: &clap::Command) -> Vec<String> {
        cmd.get_positionals()
            .map(|a| a.get_id().to_string())
            .collect()
    }
    fn compare(plain: &clap::Command, shaped: &clap::Command, name: &str) {
        assert_eq!(operands(plain), operands(shaped), "{name}");
        for sub in plain.get_subcommands() {
            let other = shaped
                .find_subcommand(sub.get_name())
                .unwrap_or_else(|| panic!("{name} {} is gone", sub.get_name()));
            compare(sub, other, &format!("{name} {}", sub.get_name()));
        }
    }
    let mut plain = carnet::cli::args::Cli::command();
    plain.build();
    let mut shaped = roles::command();
    shaped.build();
    compare(&plain, &shaped, "carnet");
    let matches = shaped
        .try_get_matches_from(["carnet", "replace", "3f9c", "new.pdf"])
        .expect("parses");
    let (_, m) = matches.subcommand().expect("replace");
    assert_eq!(m.get_one::<String>("id").map(String::as_str), Some("3f9c"));
}
