//! `carnet demo` runs to the end with no terminal and an empty environment, delivers the shared
//! documents intact to the professional's folder, and writes nothing outside its own folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_carnet");

fn sample(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/sample-record")
        .join(name);
    fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Every file under `root`, as sorted paths relative to it.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(root).expect("prefix").to_path_buf())
        .collect();
    out.sort();
    out
}

/// `carnet demo ARGS` with nothing but PATH and `env` in the environment, and no terminal.
fn demo(args: &[&Path], env: &[(&str, &Path)], cwd: &Path) -> Output {
    let mut c = Command::new(BIN);
    c.arg("demo")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(cwd)
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("cannot run carnet demo")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn demo_runs_to_the_end_and_keeps_to_its_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let tmpdir = tmp.path().join("tmp");
    let cwd = tmp.path().join("cwd");
    for d in [&home, &tmpdir, &cwd] {
        fs::create_dir(d).expect("mkdir");
    }
    let dir = tmp.path().join("demo");

    let out = demo(&[&dir], &[("HOME", &home), ("TMPDIR", &tmpdir)], &cwd);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "carnet demo failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );

    // The walkthrough shows the commands it runs, with the demo folder's paths.
    let d = dir.display().to_string();
    for expected in [
        format!(
            "$ carnet --vault {d}/vault -i {d}/patient.key init --name \"Marie Dupont (démo)\""
        ),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key add {d}/sample/radio-thorax.png"),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key ls"),
        "$ carnet keygen --name \"Dr Jeanne Martin\" --rpps 10003461033".to_string(),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key note"),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key hide --category prescription"),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key pro add --card"),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key grant --to jeanne-martin"),
        format!("$ carnet open {d}/partage.age -i {d}/dr-martin.key -o {d}/recu"),
        format!(
            "$ carnet --vault {d}/vault -i {d}/patient.key profile import {d}/sample/profile.toml"
        ),
        format!(
            "$ carnet --vault {d}/vault -i {d}/patient.key emergency -o {d}/urgence.age --card {d}/carte-urgence.pdf"
        ),
        format!(
            "$ carnet open {d}/urgence.age --passcode-file {d}/code-lu-sur-la-carte.txt -o {d}/urgence"
        ),
        format!(
            "$ carnet --vault {d}/vault -i {d}/patient.key key add --recovery -o {d}/recovery.key"
        ),
        format!("$ age-keygen -o {d}/claire.key"),
        format!(
            "$ carnet --vault {d}/vault -i {d}/patient.key key add --guardian --name claire --recipient age1"
        ),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key key ls"),
        format!("$ carnet --vault {d}/vault -i {d}/claire.key note"),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key key rm claire -o {d}/patient-2.key"),
        format!("$ carnet --vault {d}/vault -i {d}/claire.key ls\n(refused, as it should be)"),
        // After `key rm`, the patient opens the vault with the new identity file.
        format!("$ carnet --vault {d}/vault -i {d}/patient-2.key log -n 12"),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key card -o {d}/marie.card.toml"),
        format!(
            "$ carnet deposit --to {d}/marie.card.toml -i {d}/dr-martin.key {d}/consultation-2025-04-15.md"
        ),
        format!("$ carnet --vault {d}/vault -i {d}/patient.key receive {d}/depot.age"),
        "pro:10003461033  receive".to_string(),
        format!("$ carnet --vault {d}/vault -i {d}/patient-2.key verify"),
        "What next".to_string(),
    ] {
        assert!(
            stdout.contains(&expected),
            "stdout lacks {expected:?}:\n{stdout}"
        );
    }
    // The children's own output comes through: ls shows the titles, verify says ok.
    assert!(
        stdout.contains("Compte rendu d'hospitalisation"),
        "{stdout}"
    );
    // The five samples, the patient's note, Dr Martin's report, deposited back, and the
    // guardian's note.
    assert!(stdout.contains("ok: 8 documents"), "{stdout}");

    // The keys: `key ls` showed the recovery key and the guardian with their roles; the log
    // names the guardian as the actor of her note, and the patient as removing her key; the
    // removal printed its one-line summary, and the removed key was refused.
    for (role, name) in [("recovery", "recovery"), ("guardian", "claire")] {
        assert!(
            stdout.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() > 3 && w[..3] == [role, name, "X25519"] && w[3].starts_with("age1")
            }),
            "key ls shows no {role} key named {name}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("  guardian:claire  note  Rendez-vous radio ("),
        "{stdout}"
    );
    assert!(stdout.contains("  patient  key-rm"), "{stdout}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("Removed the guardian key \"claire\"; re-encrypted "))
        .unwrap_or_else(|| panic!("no summary of key rm:\n{stderr}"));
    assert!(
        summary.contains(" objects and ")
            && summary.contains(" log segment")
            && summary.contains(" for a new vault key (age1")
            && summary.ends_with(")."),
        "{summary}"
    );
    assert!(
        stderr.contains(&format!(
            "the identity in {d}/claire.key does not open this vault"
        )),
        "{stderr}"
    );
    // And so it stays: after the demo, the guardian's key and the patient's old one open
    // nothing; the new identity and the recovery key (re-bound to the new vault key) do.
    let ls = |key: &str| {
        Command::new(BIN)
            .env_clear()
            .args(["--vault".as_ref(), dir.join("vault").as_os_str()])
            .args(["-i".as_ref(), dir.join(key).as_os_str(), "ls".as_ref()])
            .stdin(Stdio::null())
            .output()
            .expect("run carnet ls")
    };
    for key in ["claire.key", "patient.key"] {
        assert_eq!(
            ls(key).status.code(),
            Some(1),
            "{key} still opens the vault"
        );
    }
    for key in ["patient-2.key", "recovery.key"] {
        let out = ls(key);
        assert!(out.status.success(), "{key}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Rendez-vous radio"), "{key}");
    }

    // Dr Martin received exactly the shared categories, byte for byte.
    let received = dir.join("recu/documents");
    let got = files_under(&received);
    let want = [
        (
            "compte-rendu/2025-03-14 Compte rendu d'hospitalisation.md",
            "compte-rendu-hospitalisation.md",
        ),
        (
            "compte-rendu/2025-04-02 Bilan sanguin.csv",
            "bilan-sanguin.csv",
        ),
        ("imagerie/2025-03-12 Radio thorax.png", "radio-thorax.png"),
    ];
    assert_eq!(
        got,
        want.iter()
            .map(|(p, _)| PathBuf::from(p))
            .collect::<Vec<_>>(),
        "unexpected files in {}",
        received.display()
    );
    for (path, sample_name) in want {
        assert!(
            fs::read(received.join(path)).expect("read extracted") == sample(sample_name),
            "{path} differs from examples/sample-record/{sample_name}"
        );
    }

    // Nothing outside DIR: the home folder, TMPDIR and the working folder stay empty, and DIR's
    // siblings are only the ones this test made.
    for d in [&home, &tmpdir, &cwd] {
        assert_eq!(
            files_under(d),
            Vec::<PathBuf>::new(),
            "{} was written to",
            d.display()
        );
    }
    let mut siblings: Vec<String> = fs::read_dir(tmp.path())
        .expect("read tmp")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    siblings.sort();
    assert_eq!(siblings, ["cwd", "demo", "home", "tmp"]);
    assert!(dir.join("known-patients.toml").is_file());
    // The emergency bundle opened with the passcode the demo printed: the two summaries.
    let urgence = files_under(&dir.join("urgence/documents"));
    assert_eq!(urgence.len(), 2, "{urgence:?}");
    assert!(
        fs::read(dir.join("carte-urgence.pdf"))
            .unwrap()
            .starts_with(b"%PDF")
    );
}

#[test]
fn demo_without_a_folder_makes_a_fresh_one_in_the_temp_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // No HOME at all: the demo must not need one.
    let out = demo(&[], &[("TMPDIR", tmp.path())], tmp.path());
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "carnet demo failed ({}):\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    let made: Vec<PathBuf> = fs::read_dir(tmp.path())
        .expect("read tmp")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(made.len(), 1, "expected one demo folder, got {made:?}");
    let name = made[0].file_name().unwrap_or_default().to_string_lossy();
    assert!(name.starts_with("carnet-demo-"), "{name}");
    let head: String = stdout.lines().take(3).collect::<Vec<_>>().join("\n");
    assert!(
        head.contains(&made[0].display().to_string()),
        "the folder is not named at the start:\n{head}"
    );
    assert!(made[0].join("recu/documents").is_dir());
}

#[test]
fn demo_refuses_a_folder_that_is_not_empty() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let keep = tmp.path().join("precious.txt");
    fs::write(&keep, "do not touch").expect("write");
    let out = demo(&[tmp.path()], &[], tmp.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not an empty folder"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(files_under(tmp.path()), [PathBuf::from("precious.txt")]);
}
