//! Every bad input gets one clear `error: ...` line (and maybe a `hint: ...` line) on stderr,
//! exit code 1, nothing on stdout, and leaves the vault exactly as it was (every path and byte).

mod util;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use util::*;

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A vault holding one document.
fn vault_with_a_document() -> (Vault, String) {
    let v = Vault::init();
    let id = v.add(
        &v.write("ordonnance.txt", b"Doliprane 1 g, 3 fois par jour\n"),
        &["--date", "2024-03-01", "--category", "prescription"],
    );
    (v, id)
}

/// Runs `carnet ARGS` expecting a clean error whose line contains every needle, and checks
/// that no path or byte of the vault changed. Returns stderr.
fn fails_without_change(v: &Vault, args: &[&str], needles: &[&str]) -> String {
    let before = v.snapshot();
    let out = v.run(args);
    let err = assert_error(&out, needles);
    assert_same(
        &before,
        &v.snapshot(),
        &format!("the vault after `carnet {}`", args.join(" ")),
    );
    err
}

/// A 4-hex-digit prefix that no id in `ids` starts with.
fn unused_prefix(ids: &[String]) -> String {
    "0123456789abcdef"
        .chars()
        .map(|c| format!("{c}{c}{c}{c}"))
        .find(|p| !ids.iter().any(|id| id.starts_with(p.as_str())))
        .unwrap()
}

#[test]
fn wrong_passphrase_is_a_clear_error_and_changes_nothing() {
    let (mut v, id) = vault_with_a_document();
    let new = v.write("nouveau.txt", b"nouveau document\n");
    let dest = v.work.join("export");
    let identity = v.dir.join("identity.age");
    v.passphrase = Some("not the passphrase".to_string());
    let commands: [&[&str]; 6] = [
        &["ls"],
        &["add", s(&new)],
        &["show", &id],
        &["cat", &id],
        &["rm", &id, "--yes"],
        &["export", &id, "-o", s(&dest)],
    ];
    for args in commands {
        let err = fails_without_change(&v, args, &["wrong passphrase for", s(&identity)]);
        assert!(hint(&err).contains("carnet init"), "{err}");
    }
    assert!(
        !dest.exists(),
        "export created its folder with a wrong passphrase"
    );

    // The same through --passphrase-file.
    v.passphrase = None;
    let file = v.write("pass.txt", b"still not it\n");
    fails_without_change(
        &v,
        &["--passphrase-file", s(&file), "ls"],
        &["wrong passphrase for"],
    );

    v.passphrase = Some(PASSPHRASE.to_string());
    assert_eq!(v.ls(&[]).len(), 1);
}

#[test]
fn missing_vault_is_a_clear_error_and_creates_nothing() {
    let v = Vault::new();
    let doc = v.write("a.txt", b"a\n");
    for args in [
        &["ls"][..],
        &["add", s(&doc)],
        &["show", "abcd"],
        &["cat", "abcd"],
    ] {
        let err = fails_without_change(&v, args, &["no vault at", s(&v.dir)]);
        assert!(hint(&err).contains("carnet init"), "{err}");
        assert!(
            !v.dir.exists(),
            "`carnet {}` created the vault folder",
            args.join(" ")
        );
    }

    // An existing, empty folder is not a vault either, and stays empty.
    fs::create_dir(&v.dir).unwrap();
    for args in [&["ls"][..], &["add", s(&doc)]] {
        fails_without_change(&v, args, &["no vault at", s(&v.dir)]);
    }
    assert_eq!(fs::read_dir(&v.dir).unwrap().count(), 0);
}

#[test]
fn unknown_id_is_a_clear_error_and_changes_nothing() {
    let (v, id) = vault_with_a_document();
    let absent = unused_prefix(std::slice::from_ref(&id));
    let full_absent = format!("{absent}{}", &id[4..]);
    let dest = v.work.join("export");
    for p in [&absent, &full_absent] {
        for args in [
            &["show", p.as_str()][..],
            &["cat", p],
            &["rm", p, "--yes"],
            &["export", p, "-o", s(&dest)],
        ] {
            let err = fails_without_change(&v, args, &[&format!("no document with id {p}")]);
            assert!(hint(&err).contains("carnet ls"), "{err}");
        }
    }
    assert!(
        !dest.exists(),
        "export created its folder for an unknown id"
    );

    // Too short, or not hexadecimal: not an id at all.
    for p in ["ab", "zzzz", "12-4"] {
        let err = fails_without_change(
            &v,
            &["show", p],
            &[&format!("\"{p}\" is not a document id")],
        );
        assert!(hint(&err).contains("at least 4"), "{err}");
    }
    assert_eq!(v.ls(&[]).len(), 1);
}

/// Ids are random, so an ambiguous 4-character prefix cannot be chosen; instead documents are
/// added (400 per `add` of a folder) until two ids share their first 4 hex digits. The birthday
/// bound makes that likely by 800 documents and all but certain by 4000.
#[test]
fn ambiguous_id_prefix_is_a_clear_error_and_changes_nothing() {
    let v = Vault::init();
    let mut batch = 0;
    let (prefix, matching) = loop {
        let dir = v.work.join(format!("batch-{batch}"));
        for i in 0..400 {
            let p = dir.join(format!("doc-{i}.txt"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(p, format!("document {batch}-{i}\n")).unwrap();
        }
        v.ok(&["add", s(&dir)]);
        let ids: Vec<String> = v
            .ls(&[])
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 400 * (batch + 1));
        let mut sorted = ids.clone();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0][..4] == w[1][..4]) {
            let prefix = w[0][..4].to_string();
            let matching: Vec<String> = sorted
                .iter()
                .filter(|id| id.starts_with(&prefix))
                .cloned()
                .collect();
            break (prefix, matching);
        }
        batch += 1;
        assert!(
            batch < 10,
            "no two of {} random ids share 4 characters",
            ids.len()
        );
    };

    let dest = v.work.join("export");
    let mut needles = vec![format!("id prefix {prefix} is ambiguous: it matches ")];
    needles.extend(matching.iter().take(5).map(|id| short(id).to_string()));
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    for args in [
        &["show", prefix.as_str()][..],
        &["cat", &prefix],
        &["rm", &prefix, "--yes"],
        &["export", &prefix, "-o", s(&dest)],
    ] {
        let err = fails_without_change(&v, args, &needles);
        assert!(hint(&err).contains("more characters"), "{err}");
    }
    assert!(!dest.exists());

    // A longer prefix tells them apart.
    let out = v.ok(&["show", "--json", short(&matching[0])]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["id"], matching[0].as_str());
}

#[test]
fn missing_path_is_a_clear_error_and_adds_nothing() {
    let (v, _) = vault_with_a_document();
    let good = v.write("lisible.txt", b"un bon document\n");
    let missing = v.work.join("does-not-exist.pdf");
    // The good file comes first: nothing at all is added when one path is wrong.
    let err = fails_without_change(
        &v,
        &["add", s(&good), s(&missing)],
        &[&format!("{} does not exist", missing.display())],
    );
    assert!(hint(&err).contains("nothing was added"), "{err}");
    assert_eq!(v.ls(&[]).len(), 1);
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    text(&out.stdout).trim() == "0"
}

/// As root, permission bits do not stop reading; `setpriv` drops the capabilities that let
/// root bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) for the carnet process only.
const DROP_DAC: [&str; 3] = [
    "setpriv",
    "--bounding-set",
    "-dac_override,-dac_read_search",
];

#[test]
fn unreadable_file_is_a_clear_error_and_adds_nothing() {
    let (v, _) = vault_with_a_document();
    let good = v.write("lisible.txt", b"un bon document\n");
    let locked = v.write("illisible.txt", b"ferme\n");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();

    let wrapper: &[&str] = if is_root() {
        // Check the trick works here before relying on it.
        let probe = Command::new(DROP_DAC[0])
            .args(&DROP_DAC[1..])
            .arg("cat")
            .arg(&locked)
            .output();
        match probe {
            Ok(o) if text(&o.stderr).contains("Permission denied") => &DROP_DAC,
            other => panic!(
                "running as root, and `setpriv` cannot drop CAP_DAC_OVERRIDE here ({other:?}), \
                 so no file can be made unreadable: run the tests as a normal user"
            ),
        }
    } else {
        &[]
    };

    let before = v.snapshot();
    let out = v
        .cmd_via(wrapper)
        .args(["add", s(&good), s(&locked)])
        .output()
        .unwrap();
    assert_error(
        &out,
        &[
            &format!("cannot read {}", locked.display()),
            "Permission denied",
        ],
    );
    assert_same(
        &before,
        &v.snapshot(),
        "the vault after adding an unreadable file",
    );
    assert_eq!(v.ls(&[]).len(), 1);
}

/// A file that opens but fails while it is being read (an I/O error half-way) is reported,
/// and the files encrypted before it are not added either. `/proc/self/mem` opens fine and
/// fails on the first read, even for root.
#[cfg(target_os = "linux")]
#[test]
fn file_that_fails_while_being_read_is_a_clear_error_and_adds_nothing() {
    let (v, _) = vault_with_a_document();
    let good = v.write("lisible.txt", &pseudo_random(300_000, 5));
    let err = fails_without_change(
        &v,
        &["add", s(&good), "/proc/self/mem"],
        &["/proc/self/mem", "Input/output error"],
    );
    assert!(err.starts_with("error: cannot"), "{err}");
    assert_eq!(v.ls(&[]).len(), 1);
}

#[test]
fn bad_date_is_a_clear_error_and_changes_nothing() {
    let (v, _) = vault_with_a_document();
    let doc = v.write("a.txt", b"a\n");
    for (args, bad) in [
        (&["add", s(&doc), "--date", "2024-13-45"][..], "2024-13-45"),
        (&["add", s(&doc), "--date", "2023-02-29"], "2023-02-29"),
        (&["add", s(&doc), "--date", "14/03/2024"], "14/03/2024"),
        (&["ls", "--since", "2024-13-45"], "2024-13-45"),
        (&["ls", "--until", "hier"], "hier"),
    ] {
        let err = fails_without_change(&v, args, &[&format!("invalid date \"{bad}\"")]);
        assert!(hint(&err).contains("YYYY-MM-DD"), "{err}");
    }
    assert_eq!(v.ls(&[]).len(), 1);
}

#[test]
fn bad_category_is_a_clear_error_and_changes_nothing() {
    let (v, _) = vault_with_a_document();
    let doc = v.write("a.txt", b"a\n");
    let dest = v.work.join("export");
    for args in [
        &["add", s(&doc), "--category", "imagrie"][..],
        &["ls", "--category", "imagrie"],
        &["export", "--category", "imagrie", "-o", s(&dest)],
    ] {
        let err = fails_without_change(&v, args, &["unknown category \"imagrie\""]);
        let h = hint(&err);
        assert!(
            h.contains("imagerie") && h.contains("carnet categories"),
            "{err}"
        );
    }
    assert!(!dest.exists());
    assert_eq!(v.ls(&[]).len(), 1);
}

#[test]
fn bad_nir_key_at_init_is_a_clear_error_and_leaves_no_vault() {
    let v = Vault::new();
    let bad = "1 37 04 76 243 484 16";
    let err = fails_without_change(
        &v,
        &["init", "--name", "Marie Dupont", "--nir", bad],
        &[
            &format!("invalid NIR \"{bad}\""),
            "the key should be 15, not 16",
        ],
    );
    assert!(hint(&err).contains("carte Vitale"), "{err}");
    assert!(
        !v.dir.exists(),
        "a failed init left {} behind",
        v.dir.display()
    );

    // In an existing empty folder too, and for a malformed number.
    fs::create_dir(&v.dir).unwrap();
    fails_without_change(&v, &["init", "--nir", bad], &["invalid NIR"]);
    fails_without_change(
        &v,
        &["init", "--nir", "1 37 04 76 243"],
        &["invalid NIR", "expected 15 characters"],
    );
    assert_eq!(fs::read_dir(&v.dir).unwrap().count(), 0);

    // The right key is accepted.
    v.ok(&["init", "--nir", "1 37 04 76 243 484 15"]);
}

#[test]
fn init_refuses_an_existing_vault() {
    let (v, _) = vault_with_a_document();
    let err = fails_without_change(
        &v,
        &["init", "--name", "Quelqu'un d'autre"],
        &[&format!("{} already holds a vault", v.dir.display())],
    );
    assert!(hint(&err).contains("--vault"), "{err}");
    assert_eq!(v.ls(&[]).len(), 1);
}

#[test]
fn init_refuses_a_non_empty_folder_that_is_not_a_vault() {
    let v = Vault::new();
    fs::create_dir(&v.dir).unwrap();
    fs::write(v.dir.join("notes.txt"), b"mes notes\n").unwrap();
    let err = fails_without_change(
        &v,
        &["init"],
        &[&format!(
            "{} is not empty and is not a vault",
            v.dir.display()
        )],
    );
    assert!(hint(&err).contains("--vault"), "{err}");
}

#[test]
fn no_passphrase_and_no_terminal_names_the_env_var() {
    let (mut v, id) = vault_with_a_document();
    let doc = v.write("a.txt", b"a\n");
    v.passphrase = None;
    for args in [&["ls"][..], &["add", s(&doc)], &["cat", &id]] {
        let err = fails_without_change(&v, args, &["no terminal"]);
        assert!(err.contains("CARNET_PASSPHRASE"), "{err}");
    }

    // init neither prompts nor leaves a vault behind.
    let mut fresh = Vault::new();
    fresh.passphrase = None;
    let err = fails_without_change(&fresh, &["init"], &["no terminal"]);
    assert!(err.contains("CARNET_PASSPHRASE"), "{err}");
    assert!(!fresh.dir.exists());
}

#[test]
fn empty_passphrase_is_refused_at_init() {
    let mut v = Vault::new();
    v.passphrase = Some(String::new());
    fails_without_change(&v, &["init"], &["the passphrase is empty"]);
    assert!(!v.dir.exists());
}

#[test]
fn identity_vault_without_or_with_the_wrong_identity_is_a_clear_error() {
    let mut v = Vault::new();
    let key = new_identity_file(v.root(), "key.txt");
    let other = new_identity_file(v.root(), "other.txt");
    v.passphrase = None;
    v.identity = Some(key);
    v.ok(&["init"]);
    let id = v.add(&v.write("a.txt", b"a\n"), &[]);

    v.identity = None;
    let err = fails_without_change(
        &v,
        &["cat", &id],
        &["this vault is opened with an identity file, and none was given"],
    );
    assert!(hint(&err).contains("-i FILE"), "{err}");

    v.identity = Some(other.clone());
    fails_without_change(
        &v,
        &["rm", &id, "--yes"],
        &[&format!(
            "the identity in {} does not open this vault",
            other.display()
        )],
    );
}

#[test]
fn usage_errors_exit_with_code_2() {
    let (v, _) = vault_with_a_document();
    for args in [
        &["add"][..],
        &["export", "-o", "x"],
        &["ls", "--no-such-flag"],
        &["frobnicate"],
    ] {
        let before = v.snapshot();
        let out = v.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "`carnet {}`: {}",
            args.join(" "),
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).starts_with("error: "),
            "{}",
            text(&out.stderr)
        );
        assert_same(&before, &v.snapshot(), "the vault after a usage error");
    }
}

#[test]
fn empty_title_empty_tag_and_one_title_for_several_files_are_refused() {
    let (v, _) = vault_with_a_document();
    let a = v.write("a.txt", b"a\n");
    let b = v.write("b.txt", b"b\n");
    fails_without_change(
        &v,
        &["add", s(&a), "--title", "  "],
        &["the title is empty"],
    );
    fails_without_change(&v, &["add", s(&a), "--tag", ""], &["a tag is empty"]);
    fails_without_change(
        &v,
        &["add", s(&a), s(&b), "--title", "Un seul titre"],
        &["--title names one document, and 2 files were given"],
    );
    assert_eq!(v.ls(&[]).len(), 1);
}

/// `--passphrase-file` wins over `CARNET_PASSPHRASE`, as `carnet --help` says: with both set to
/// different passphrases, only the file's decides whether the vault opens.
#[test]
fn passphrase_file_wins_over_the_environment() {
    let (mut v, _) = vault_with_a_document();
    let right = v.write("right.txt", format!("{PASSPHRASE}\n").as_bytes());
    let wrong = v.write("wrong.txt", b"not the passphrase\n");

    v.passphrase = Some("not the passphrase either".to_string());
    let out = v.ok(&["--passphrase-file", s(&right), "ls", "--json"]);
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(docs.as_array().unwrap().len(), 1);

    v.passphrase = Some(PASSPHRASE.to_string());
    fails_without_change(
        &v,
        &["--passphrase-file", s(&wrong), "ls"],
        &["wrong passphrase for"],
    );
}

#[test]
fn passphrase_file_opens_the_vault() {
    let (mut v, _) = vault_with_a_document();
    // Written by `echo`: the trailing newline is not part of the passphrase.
    let file = v.write("pass.txt", format!("{PASSPHRASE}\n").as_bytes());
    v.passphrase = None;
    let out = v.ok(&["--passphrase-file", s(&file), "ls", "--json"]);
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(docs.as_array().unwrap().len(), 1);
}
