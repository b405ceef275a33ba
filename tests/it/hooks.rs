//! Hooks (issue 13): `$XDG_CONFIG_HOME/carnet/hooks.toml` programs get one JSON event on stdin
//! after each commit (and `verify-failed`), with no title unless asked; one that fails, cannot
//! start or hangs past its timeout is a warning that never changes the command's output or exit
//! status. `carnet hooks test`, and the two examples in `examples/hooks/`, run with stand-in
//! programs (a script that writes what it got to a file).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::grants::*;

/// A lab with a patient (a known professional in their directory), a config folder, and a
/// stand-in program that appends its stdin (one event, one line) to `events.jsonl`.
struct Rig {
    lab: Lab,
    patient: Patient,
    config: PathBuf,
    record: PathBuf,
    events: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let lab = Lab::new();
        let patient = lab.patient("marie", "Marie Dupont");
        let config = lab.root.join("config");
        fs::create_dir_all(config.join("carnet")).unwrap();
        let record = lab.write(
            "bin/record.sh",
            b"#!/bin/sh\n# Stand-in hook: what it got on stdin, and its event variable.\ncat >> \"$1\"\nprintf 'CARNET_EVENT=%s\\n' \"$CARNET_EVENT\" >> \"$1.env\"\n",
        );
        let events = lab.root.join("events.jsonl");
        Rig {
            lab,
            patient,
            config,
            record,
            events,
        }
    }

    fn hooks(&self, toml: &str) {
        fs::write(self.config.join("carnet/hooks.toml"), toml).unwrap();
    }

    /// A `[[hook]]` running the recorder for `on`, with `extra` lines.
    fn recorder(&self, on: &str, extra: &str) -> String {
        format!(
            "[[hook]]\non = {on}\nrun = [\"sh\", {:?}, {:?}]\n{extra}\n",
            s(&self.record),
            s(&self.events)
        )
    }

    /// The patient's command with this config folder.
    fn run(&self, args: &[&str]) -> Out {
        let mut c = self.lab.cmd();
        c.env("XDG_CONFIG_HOME", &self.config)
            .env("CARNET_PASSPHRASE", PATIENT_PASS)
            .arg("--vault")
            .arg(&self.patient.vault)
            .args(args);
        c.run()
    }

    fn recorded(&self) -> Vec<Value> {
        fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn vault_id(p: &Patient) -> String {
    let t: toml::Table =
        toml::from_str(&fs::read_to_string(p.vault.join("carnet.toml")).unwrap()).unwrap();
    t["vault_id"].as_str().unwrap().to_string()
}

#[test]
fn a_hook_gets_the_add_and_receive_events_without_titles() {
    let r = Rig::new();
    r.hooks(&r.recorder("[\"add\", \"receive\"]", ""));
    let file = r
        .lab
        .write("inputs/ordonnance secrète.txt", b"amoxicilline\n");
    let out = r.run(&["add", s(&file), "--json"]).ok();
    let added = out.json();
    let id = added[0]["id"].as_str().unwrap();
    let ev = r.recorded();
    assert_eq!(ev.len(), 1, "{ev:?}");
    let e = &ev[0];
    assert_eq!(e["action"], "add");
    assert_eq!(e["actor"], "patient");
    assert_eq!(e["vault_id"], vault_id(&r.patient).as_str());
    assert_eq!(e["documents"], serde_json::json!([id]));
    assert_eq!(e["count"], 1);
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    assert!(e.get("titles").is_none(), "no titles unless asked: {e}");
    let raw = fs::read_to_string(&r.events).unwrap();
    assert!(
        !raw.contains("secrète") && !raw.contains("ordonnance"),
        "{raw}"
    );
    assert_eq!(
        fs::read_to_string(r.events.with_extension("jsonl.env")).unwrap(),
        "CARNET_EVENT=add\n"
    );

    // A professional's deposit, received: the event names the professional as the actor.
    let pro = r.lab.keygen(
        "Dr Jeanne Martin",
        "j.key",
        true,
        &["--rpps", "10005173140"],
    );
    r.patient.add_pro(&pro);
    let card = r.lab.path("marie.card.toml");
    r.run(&["card", "-o", s(&card)]).ok();
    let doc = r.lab.write("cabinet/cr.txt", b"compte rendu\n");
    let dep = r.lab.path("depot.age");
    r.lab
        .run(
            None,
            &[
                "deposit",
                "--to",
                s(&card),
                "-i",
                s(&pro.key),
                s(&doc),
                "-o",
                s(&dep),
            ],
        )
        .ok();
    r.run(&["receive", s(&dep)]).ok();
    let ev = r.recorded();
    assert_eq!(
        ev.len(),
        2,
        "pro add, card and ls fire nothing here: {ev:?}"
    );
    assert_eq!(ev[1]["action"], "receive");
    assert_eq!(ev[1]["actor"], "pro:10005173140");
    assert_eq!(ev[1]["count"], 1);
}

#[test]
fn titles_only_when_the_hook_asks() {
    let r = Rig::new();
    r.hooks(&r.recorder("[\"add\", \"rm\"]", "with_titles = true"));
    let file = r.lab.write("inputs/bilan.txt", b"bilan\n");
    let id = r.run(&["add", s(&file), "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.run(&["rm", &id, "--yes"]).ok();
    let ev = r.recorded();
    assert_eq!(ev[0]["titles"], serde_json::json!(["bilan"]));
    assert_eq!(ev[1]["action"], "rm");
    assert_eq!(
        ev[1]["titles"],
        serde_json::json!(["bilan"]),
        "the title of what was removed"
    );
}

#[test]
fn a_failing_or_hanging_hook_leaves_the_command_untouched() {
    let r = Rig::new();
    let pidfile = r.lab.root.join("sleeper.pid");
    r.hooks(&format!(
        "[[hook]]\non = [\"add\"]\nrun = [\"sh\", \"-c\", \"echo 'no mail server' >&2; exit 3\"]\n\n\
         [[hook]]\non = [\"add\"]\nrun = [\"sh\", \"-c\", \"sleep 30 & echo $! > {}; wait\"]\ntimeout = 0.5\n\n\
         [[hook]]\non = [\"add\"]\nrun = [\"/nonexistent/program\"]\n\n{}",
        s(&pidfile),
        r.recorder("[\"add\"]", "")
    ));
    let file = r.lab.write("inputs/a.txt", b"a\n");
    let started = Instant::now();
    let out = r.run(&["add", s(&file), "--json"]);
    let took = started.elapsed();
    out.assert_ok("hooks never fail the command");
    assert!(
        took < Duration::from_secs(20),
        "the hang was cut short: {took:?}"
    );
    // stdout is the command's own, intact.
    let j = out.json();
    assert_eq!(j[0]["status"], "added");
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: hook"))
        .collect();
    assert_eq!(warnings.len(), 3, "{}", out.stderr);
    assert!(
        warnings[0].contains("exit status 3: no mail server"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("still running after 0.5s: stopped"),
        "{}",
        warnings[1]
    );
    assert!(
        warnings[2].contains("cannot start /nonexistent/program"),
        "{}",
        warnings[2]
    );
    // The hooks after a failed one still run.
    assert_eq!(r.recorded().len(), 1);
    // The hung hook's child went with it (its process group was stopped).
    #[cfg(target_os = "linux")]
    {
        let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
        let gone = (0..100).any(|_| {
            let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = !state.is_empty() && !state.contains(") Z ");
            if alive {
                std::thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        assert!(gone, "the hook's sleep {pid} still runs");
    }
    // A failed commit-less command fires nothing; the vault is sound.
    r.patient.ok(&["verify"]);
}

#[test]
fn a_broken_hooks_file_is_a_warning() {
    let r = Rig::new();
    r.hooks("[[hook]]\non = \"add\"\n");
    let file = r.lab.write("inputs/a.txt", b"a\n");
    let out = r.run(&["add", s(&file)]);
    out.assert_ok("a broken hooks file does not stop the command");
    assert!(
        out.stderr.contains("warning: hooks not run:") && out.stderr.contains("hooks.toml"),
        "{}",
        out.stderr
    );
    // `hooks test` says it as an error.
    let out = r.run(&["hooks", "test", "add"]);
    out.fails(EXIT_FAILURE, &["hooks.toml is not valid"]);
}

#[test]
fn verify_failed_fires_its_hook() {
    let r = Rig::new();
    r.hooks(&r.recorder("[\"verify-failed\"]", ""));
    let id = r.patient.add("a.txt", b"a\n", &[]);
    // Damage the document's object: `verify --deep` fails (exit 3).
    let objects: Vec<PathBuf> = walkdir::WalkDir::new(r.patient.vault.join("objects"))
        .into_iter()
        .map(|e| e.unwrap().path().to_path_buf())
        .filter(|p| p.is_file())
        .collect();
    for o in &objects {
        let mut b = fs::read(o).unwrap();
        let n = b.len();
        b[n - 10] ^= 1;
        fs::write(o, b).unwrap();
    }
    let out = r.run(&["verify"]);
    out.assert_code(EXIT_INTEGRITY, "verify of a damaged vault");
    let ev = r.recorded();
    assert_eq!(ev.len(), 1, "{ev:?}\n{out}");
    assert_eq!(ev[0]["action"], "verify-failed");
    assert_eq!(ev[0]["vault_id"], vault_id(&r.patient).as_str());
    let _ = id;
}

#[test]
fn hooks_test_runs_the_hooks_of_an_event() {
    let r = Rig::new();
    r.hooks(&format!(
        "{}\n[[hook]]\non = [\"receive\"]\nrun = [\"false\"]\n[[hook]]\non = [\"nonsense\"]\nrun = [\"true\"]\n",
        r.recorder("[\"receive\", \"opened\"]", "")
    ));
    let out = r.run(&["hooks", "test", "opened"]).ok();
    assert_eq!(out.text().lines().count(), 1);
    assert!(out.text().starts_with("ok "), "{}", out.text());
    assert!(
        out.stderr.contains("\"nonsense\", which is no event"),
        "{}",
        out.stderr
    );
    let ev = r.recorded();
    assert_eq!(ev[0]["action"], "opened");
    assert_eq!(ev[0]["test"], true);
    assert_eq!(ev[0]["vault_id"], vault_id(&r.patient).as_str());
    assert!(ev[0].get("titles").is_none());

    let out = r.run(&["hooks", "test", "receive", "--json"]);
    out.fails(EXIT_FAILURE, &["1 hook(s) of receive failed"]);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 2);
    assert_eq!(j[0]["ok"], true);
    assert_eq!(j[1]["ok"], false);
    assert_eq!(j[1]["error"], "exit status 1");

    r.run(&["hooks", "test", "nope"])
        .fails(EXIT_USAGE, &["unknown event \"nope\""]);
    let out = r.run(&["hooks", "test", "grant"]).ok();
    assert!(
        out.stderr.contains("no hook listens to grant"),
        "{}",
        out.stderr
    );
}

/// `sh examples/hooks/NAME ARGS` as a hook, with `env` for the stand-in program.
fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/hooks")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn the_notify_send_example_notifies_with_a_stand_in() {
    let r = Rig::new();
    let got = r.lab.root.join("notified.txt");
    let stand_in = r.lab.write(
        "bin/notify-send",
        format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" >> {}\necho >> {}\n",
            s(&got),
            s(&got)
        )
        .as_bytes(),
    );
    make_executable(&stand_in);
    r.hooks(&format!(
        "[[hook]]\non = [\"add\", \"verify-failed\"]\nrun = [\"sh\", {:?}]\n",
        example("notify-send.sh")
    ));
    let file = r.lab.write("inputs/radio.png", b"\x89PNG fake");
    let mut c = r.lab.cmd();
    c.env("XDG_CONFIG_HOME", &r.config)
        .env("CARNET_PASSPHRASE", PATIENT_PASS)
        .env("NOTIFY_SEND", &stand_in)
        .args(["--vault", s(&r.patient.vault), "add", s(&file)]);
    let out = c.run().ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(&got).unwrap(),
        "--app-name=carnet|carnet|1 document(s) ajouté(s) à votre carnet|\n"
    );
    // The sample event of `hooks test` goes through it too.
    let mut c = r.lab.cmd();
    c.env("XDG_CONFIG_HOME", &r.config)
        .env("NOTIFY_SEND", &stand_in)
        .args(["hooks", "test", "verify-failed"]);
    c.run().ok();
    assert!(
        fs::read_to_string(&got)
            .unwrap()
            .contains("La vérification de votre carnet a échoué"),
    );
}

#[test]
fn the_mail_example_hands_a_message_to_sendmail_with_a_stand_in() {
    let r = Rig::new();
    let got = r.lab.root.join("mail.txt");
    let stand_in = r.lab.write(
        "bin/sendmail",
        format!(
            "#!/bin/sh\necho \"args: $*\" > {}\ncat >> {}\n",
            s(&got),
            s(&got)
        )
        .as_bytes(),
    );
    make_executable(&stand_in);
    r.hooks(&format!(
        "[[hook]]\non = [\"receive\", \"opened\"]\nrun = [\"sh\", {:?}, \"marie@example.org\"]\n",
        example("mail.sh")
    ));
    let mut c = r.lab.cmd();
    c.env("XDG_CONFIG_HOME", &r.config)
        .env("SENDMAIL", &stand_in)
        .args(["--vault", s(&r.patient.vault), "hooks", "test", "receive"]);
    c.run().ok();
    let mail = fs::read_to_string(&got).unwrap();
    assert!(
        mail.starts_with("args: -t\nTo: marie@example.org\nSubject: [carnet] receive\n"),
        "{mail}"
    );
    assert!(
        mail.contains("Par / by          : pro:10005173140"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("Carnet / vault    : {}", vault_id(&r.patient))),
        "{mail}"
    );
    assert!(!mail.contains("Exemple"), "no title in a mail: {mail}");
}

fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_example_hooks_file_parses() {
    let r = Rig::new();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks/hooks.toml");
    fs::copy(&sample, r.config.join("carnet/hooks.toml")).unwrap();
    // No hook of the sample listens to `grant`: nothing runs, and the file is valid.
    let out = r.run(&["hooks", "test", "grant"]).ok();
    assert!(
        out.stderr.contains("no hook listens to grant"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}
