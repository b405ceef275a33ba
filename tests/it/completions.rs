//! `carnet completions SHELL` prints a script for every shell clap_complete knows, naming the
//! subcommands, and the bash one is valid bash.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_carnet");

fn completions(shell: &str) -> String {
    let out = Command::new(BIN)
        .args(["completions", shell])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run carnet completions");
    assert!(
        out.status.success(),
        "carnet completions {shell}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_shell_gets_a_script_naming_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = completions(shell);
        for word in ["carnet", "grant", "open", "backup", "--vault"] {
            assert!(script.contains(word), "{shell} completions lack {word:?}");
        }
    }
}

#[test]
fn bash_completions_parse_and_register() {
    let script = completions("bash");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("carnet.bash");
    std::fs::write(&file, script).expect("write");
    let out = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p carnet")
        .arg("bash")
        .arg(&file)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("_carnet"));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run carnet completions");
    assert_eq!(out.status.code(), Some(2));
}
