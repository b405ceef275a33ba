//! Every command's help ends with an example: `-h` and `--help` are where a newcomer looks
//! first, and the man pages are rendered from the same text.

use carnet::cli::args::Cli;
use clap::CommandFactory;

/// Commands that only group subcommands, whose help is the list of those subcommands (each of
/// which has examples). Listed by hand so that a new group is a conscious choice.
const GROUPS_WITHOUT_EXAMPLES: &[&str] = &[];

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
    walk(&Cli::command(), vec!["carnet".to_string()], &mut out);
    out
}

/// The help text exactly as `carnet ... FLAG` prints it.
fn help(path: &[String], flag: &str) -> String {
    let err = Cli::command()
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
