//! `carnet completions SHELL` prints a script for every shell clap_complete knows; the script
//! asks carnet what to offer (dynamic completion), so `carnet show <TAB>` offers the vault's
//! document ids when its key is at hand, and nothing (without asking for a passphrase) when not.
//! The bash tests go through the function the script registers with `complete`, as bash does.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

use crate::util::*;

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

/// Sources the bash script, then calls the function it registered for `carnet` (as `complete
/// -p` names it) with the words of a command line whose last word is being completed, and
/// returns what it offers (COMPREPLY).
const DRIVER: &str = r#"
source "$1"; shift
spec=$(complete -p carnet) || exit 90
fn=${spec##*-F }; fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
"$fn" carnet "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

struct Bash {
    dir: tempfile::TempDir,
}

impl Bash {
    fn new() -> Bash {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("carnet.bash"), completions("bash")).unwrap();
        std::fs::write(dir.path().join("driver.sh"), DRIVER).unwrap();
        Bash { dir }
    }

    fn command(&self, words: &[&str], env: &[(&str, &OsStr)]) -> Command {
        let mut c = Command::new("bash");
        c.arg(self.dir.path().join("driver.sh"))
            .arg(self.dir.path().join("carnet.bash"))
            .args(words)
            // Only what the test gives: no CARNET_* of the caller, a HOME of its own.
            .env_clear()
            .env("HOME", self.dir.path())
            .env("CARNET_SCRYPT_LOG_N", "10")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// The candidates for the last word of `words` (`""` to complete a new word).
    fn complete(&self, words: &[&str], env: &[(&str, &OsStr)]) -> Vec<String> {
        let out = self.command(words, env).output().expect("run bash");
        assert!(
            out.status.success(),
            "completing {words:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// What is not an option among the candidates.
fn values(candidates: &[String]) -> Vec<String> {
    let mut v: Vec<String> = candidates
        .iter()
        .filter(|c| !c.starts_with('-'))
        .cloned()
        .collect();
    v.sort();
    v
}

/// An external-mode vault (`carnet init -i KEY`) with two documents; their ids, sorted.
fn vault_with_two_documents() -> (Vault, Vec<String>) {
    let v = Vault::blank(KeyMode::External, temp_dir("carnet-complete-"));
    v.ok(&["init"]);
    let mut ids = vec![
        v.add(&v.write("ordonnance.txt", b"amoxicilline\n"), &[]),
        v.add(&v.write("radio.txt", b"thorax\n"), &[]),
    ];
    ids.sort();
    (v, ids)
}

#[test]
fn every_shell_gets_a_script_that_asks_carnet() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = completions(shell);
        for word in ["CARNET_COMPLETE", BIN] {
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("-F _clap_complete_carnet"));
}

#[test]
fn bash_completes_commands_and_options_from_the_definitions() {
    let bash = Bash::new();
    let got = bash.complete(&["carnet", "gra"], &[]);
    assert_eq!(values(&got), ["grant", "grants"]);
    let got = bash.complete(&["carnet", "grant", "--exp"], &[]);
    assert_eq!(got, ["--expires"]);
}

#[test]
fn bash_completes_show_with_the_vaults_document_ids() {
    let (v, ids) = vault_with_two_documents();
    let bash = Bash::new();
    let key = v.identity.clone().expect("external mode");
    let vault = s(&v.dir);
    // The key and the vault on the command line being completed ...
    let got = bash.complete(
        &["carnet", "--vault", vault, "-i", s(&key), "show", ""],
        &[],
    );
    assert_eq!(values(&got), ids, "carnet --vault V -i KEY show <TAB>");
    // ... or in the environment.
    let env = [
        ("CARNET_VAULT", v.dir.as_os_str()),
        ("CARNET_IDENTITY", key.as_os_str()),
    ];
    let got = bash.complete(&["carnet", "show", ""], &env);
    assert_eq!(values(&got), ids, "carnet show <TAB> with CARNET_IDENTITY");
    // What is typed narrows them: a prefix of one id offers that id only.
    let prefix = &ids[1][..3];
    let want: Vec<&String> = ids.iter().filter(|i| i.starts_with(prefix)).collect();
    let got = bash.complete(&["carnet", "show", prefix], &env);
    assert_eq!(values(&got).iter().collect::<Vec<_>>(), want);
    // Every command that takes document ids offers them.
    let got = bash.complete(&["carnet", "rm", &ids[0], ""], &env);
    assert_eq!(values(&got), ids, "carnet rm ID <TAB>");
}

#[test]
fn key_rm_completes_the_keys_it_can_remove_and_completing_writes_nothing() {
    let (v, _) = vault_with_two_documents();
    let key = v.identity.clone().expect("external mode");
    let recovery = v.root().join("recovery.key");
    v.ok(&[
        "key",
        "add",
        "--recovery",
        "--name",
        "secours",
        "-o",
        s(&recovery),
    ]);
    let before = v.snapshot();
    let bash = Bash::new();
    let env = [
        ("CARNET_VAULT", v.dir.as_os_str()),
        ("CARNET_IDENTITY", key.as_os_str()),
    ];
    let got = bash.complete(&["carnet", "key", "rm", ""], &env);
    assert_eq!(
        values(&got),
        ["secours"],
        "the patient's own key is not offered"
    );
    bash.complete(&["carnet", "show", ""], &env);
    assert_same(&before, &v.snapshot(), "completing");
}

#[test]
fn a_passphrase_vault_completes_with_carnet_passphrase_and_not_without() {
    let v = Vault::init();
    let id = v.add(&v.write("bilan.txt", b"glycemie\n"), &[]);
    let bash = Bash::new();
    let env = [
        ("CARNET_VAULT", v.dir.as_os_str()),
        ("CARNET_PASSPHRASE", OsStr::new(PASSPHRASE)),
    ];
    let got = bash.complete(&["carnet", "cat", ""], &env);
    assert_eq!(values(&got), std::slice::from_ref(&id));
    let file = v.write("pass.txt", format!("{PASSPHRASE}\n").as_bytes());
    let line = ["carnet", "--passphrase-file", s(&file), "cat", ""];
    let env = [("CARNET_VAULT", v.dir.as_os_str())];
    assert_eq!(values(&bash.complete(&line, &env)), [id]);
    // Without it: options only, no error, and no prompt.
    let got = bash.complete(&["carnet", "cat", ""], &env);
    assert_eq!(values(&got), Vec::<String>::new());
    assert!(got.iter().any(|c| c == "--version"), "{got:?}");
}

#[test]
fn completing_on_a_terminal_never_asks_for_the_passphrase() {
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let v = Vault::init();
    v.add(&v.write("bilan.txt", b"glycemie\n"), &[]);
    let bash = Bash::new();
    // A terminal on stdin (script(1)) and no passphrase anywhere: the completer must not turn
    // to the terminal, which belongs to the shell; a prompt would show here, or wait forever.
    let line = format!(
        "timeout 60 bash '{}' '{}' carnet cat ''",
        bash.dir.path().join("driver.sh").display(),
        bash.dir.path().join("carnet.bash").display()
    );
    let out = Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", bash.dir.path())
        .env("CARNET_VAULT", &v.dir)
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {shown}", out.status);
    assert!(
        !shown.to_lowercase().contains("passphrase:"),
        "completion asked for a passphrase:\n{shown}"
    );
    assert!(shown.contains("--version"), "{shown}");
}

#[test]
fn categories_complete_with_their_aliases_without_a_vault() {
    let bash = Bash::new();
    let got = bash.complete(&["carnet", "ls", "--category", "ra"], &[]);
    assert_eq!(values(&got), ["radio", "radiologie"]);
    let got = bash.complete(&["carnet", "add", "x.pdf", "-c", "pres"], &[]);
    assert_eq!(values(&got), ["prescription"]);
}

#[test]
fn log_actions_complete_without_a_vault() {
    let bash = Bash::new();
    let got = bash.complete(&["carnet", "log", "--action", "key"], &[]);
    assert_eq!(values(&got), ["key-add", "key-rm"]);
    let got = bash.complete(&["carnet", "hooks", "test", "verif"], &[]);
    assert_eq!(values(&got), ["verify", "verify-failed"]);
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
