//! Hostile files, odd folders and misleading messages (issue 9): each test meets a defect the
//! way a patient, a sync tool or an attacker would.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::*;

#[test]
fn a_vault_whose_empty_tmp_folder_was_dropped_is_still_writable() {
    // git and several sync tools do not keep empty folders.
    let v = Vault::init();
    fs::remove_dir(v.dir.join("tmp")).unwrap();
    let doc = v.write("note.txt", b"blood test");
    let id = v.add(&doc, &[]);
    fs::remove_dir_all(v.dir.join("tmp")).unwrap();
    let out = v.ok(&["cat", &id]);
    assert_bytes_eq(&out.stdout, b"blood test", "the document read back");
    fs::remove_dir_all(v.dir.join("tmp")).unwrap();
    let out = v.ok(&["verify"]);
    assert!(out.text().starts_with("ok: 1 documents"), "{out}");
    assert!(out.stderr.is_empty(), "{out}");
    fs::remove_dir_all(v.dir.join("tmp")).unwrap();
    v.ok(&["rm", "--yes", &id]);
    assert!(v.ls_titles(&[]).is_empty());
}

#[test]
fn a_new_passphrase_costs_scrypt_2_18_whatever_the_machine_speed() {
    let v = Vault::new();
    let mut c = v.cmd();
    c.env_remove("CARNET_SCRYPT_LOG_N").arg("init");
    c.ok();
    let id = fs::read(v.dir.join("identity.age")).unwrap();
    let stanza = text(&id).lines().nth(1).unwrap_or_default().to_string();
    assert!(
        stanza.starts_with("-> scrypt ") && stanza.ends_with(" 18"),
        "{stanza}"
    );
    // The test override can lower the cost, never raise it above the cap.
    let v = Vault::new();
    let mut c = v.cmd();
    c.env("CARNET_SCRYPT_LOG_N", "24").arg("init");
    c.ok();
    let id = fs::read(v.dir.join("identity.age")).unwrap();
    assert!(
        text(&id)
            .lines()
            .nth(1)
            .unwrap_or_default()
            .ends_with(" 18")
    );
}

#[test]
fn an_identity_asking_more_scrypt_work_than_typage_opens_is_refused_before_any_work() {
    let v = Vault::init();
    let plain = {
        use age::secrecy::ExposeSecret;
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_string()
    };
    let mut r = age::scrypt::Recipient::new(age::secrecy::SecretString::from(PASSPHRASE));
    r.set_work_factor(10);
    let sealed = age::encrypt(&r, plain.as_bytes()).unwrap();
    // 2^21 (2 GiB) is past what typage opens; the header is not authenticated before scrypt
    // runs, so an attacker can write any cost there.
    let header = text(&sealed);
    let line = header.lines().nth(1).unwrap().to_string();
    let forged_line = format!("{}21", line.strip_suffix("10").unwrap());
    let mut forged = sealed.clone();
    let at = header.find(&line).unwrap();
    forged.splice(at..at + line.len(), forged_line.bytes());
    let path = v.work.join("key.age");
    fs::write(&path, &forged).unwrap();
    let out = v.run(&["-i", path.to_str().unwrap(), "ls"]);
    assert_error(&out, &["key.age asks for scrypt work 2^21", "2^20"]);
}

fn log_len(v: &Vault) -> usize {
    v.ok(&["log", "--json"])
        .json()
        .as_array()
        .expect("log --json prints an array")
        .len()
}

#[test]
fn binary_backups_and_bundles_are_not_sprayed_on_a_terminal_nor_logged() {
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let v = Vault::init();
    v.add(&v.write("note.txt", b"blood test"), &[]);
    let key = v.work.join("paul.key");
    v.ok(&[
        "keygen",
        "--name",
        "Paul Roux",
        "--unprotected",
        "-o",
        key.to_str().unwrap(),
    ]);
    let card = v.work.join("paul.card.toml");
    v.ok(&["pro", "add", "--card", card.to_str().unwrap()]);
    let before = log_len(&v);
    let grant = "grant --to paul-roux --all --expires 7d -o -";
    for (args, what) in [
        ("backup -o -", "a backup is binary"),
        (grant, "the bundle is binary"),
    ] {
        let out = v.on_terminal(&script, args, &[]);
        let shown = out.text();
        assert_eq!(out.code, Some(1), "{args}: {out}");
        assert!(shown.contains(&format!("error: {what}")), "{args}: {shown}");
        assert!(
            shown.contains("hint: ") && shown.contains("--force"),
            "{shown}"
        );
        assert!(!shown.contains("age-encryption.org"), "{shown}");
        assert!(!shown.contains("PK\u{3}\u{4}"), "{shown}");
    }
    assert_eq!(
        log_len(&v),
        before,
        "a refused backup or grant is not logged"
    );
    assert!(v.ok(&["grants", "--json"]).stdout.starts_with(b"[]"));
    // Armor is text: it may go to a terminal. So may anything the user forces.
    let out = v
        .on_terminal(&script, &format!("{grant} --armor"), &[])
        .ok();
    assert!(
        out.text().contains("-----BEGIN AGE ENCRYPTED FILE-----"),
        "{out}"
    );
    v.on_terminal(&script, "backup -o - --force", &[]).ok();
}

#[test]
fn export_makes_its_folders_private() {
    use std::os::unix::fs::PermissionsExt;
    let v = Vault::init();
    v.add(&v.write("Radio thorax.txt", b"lungs clear"), &[]);
    let out = v.work.join("exports/2024");
    v.ok(&["export", "--all", "-o", out.to_str().unwrap()]);
    for dir in [&out, &v.work.join("exports")] {
        let mode = fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
    }
    // A folder that already existed keeps the mode its owner chose.
    let mine = v.work.join("mine");
    fs::create_dir(&mine).unwrap();
    fs::set_permissions(&mine, fs::Permissions::from_mode(0o750)).unwrap();
    v.ok(&["export", "--all", "-o", mine.to_str().unwrap()]);
    assert_eq!(
        fs::metadata(&mine).unwrap().permissions().mode() & 0o777,
        0o750
    );
}

/// `carnet --vault DEST restore SOURCE` under `timeout`: a restore that blocks ends as exit
/// 124 (a failure of the test), never as a hung test run.
fn restore_with_timeout(v: &Vault, dest: &Path, source: &Path) -> Out {
    let timeout = which("timeout").expect("`timeout` (coreutils) is needed");
    carnet_via(&[s(&timeout), "10"])
        .arg("--vault")
        .arg(dest)
        .arg("restore")
        .arg(source)
        .current_dir(v.root())
        .run()
}

#[test]
fn a_mirror_with_a_fifo_or_a_link_in_place_of_a_file_is_refused_at_once() {
    let v = Vault::init();
    v.add(&v.write("note.txt", b"blood test"), &[]);
    let mirror = v.work.join("mirror");
    v.ok(&["backup", "--to", mirror.to_str().unwrap()]);
    let object = v.objects()[0]
        .strip_prefix(&v.dir)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let secret = v.work.join("secret.txt");
    fs::write(&secret, b"the target of the link").unwrap();
    // (name, file replaced, by a FIFO rather than a link)
    let cases = [
        ("fifo-object", object.as_str(), true),
        ("fifo-config", "carnet.toml", true),
        ("link-object", object.as_str(), false),
        ("link-index", "index.json", false),
    ];
    for (name, rel, fifo) in cases {
        let copy = v.work.join(name);
        copy_dir(&mirror, &copy);
        let at = copy.join(rel);
        fs::remove_file(&at).unwrap();
        if fifo {
            mkfifo(&at);
        } else {
            std::os::unix::fs::symlink(&secret, &at).unwrap();
        }
        let dest = v.work.join(format!("restored-{name}"));
        let out = restore_with_timeout(&v, &dest, &copy);
        out.assert_code(EXIT_INTEGRITY, name);
        assert!(out.stderr.contains("not a regular file"), "{name}: {out}");
        assert!(!dest.exists(), "{name}: nothing restored");
        let left: Vec<_> = fs::read_dir(&v.work)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".carnet-restore")
            })
            .collect();
        assert!(left.is_empty(), "{name}: staging left behind");
    }
}

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().unwrap().success();
    assert!(ok, "mkfifo {}", p.display());
}

/// Sets the modification time of everything under `dir` (itself included) to `ago` back.
fn age_tree(dir: &Path, ago: std::time::Duration) {
    let when = std::time::SystemTime::now() - ago;
    let mut paths: Vec<_> = snapshot(dir).into_keys().map(|rel| dir.join(rel)).collect();
    // Deepest first: touching a folder's entries would refresh the folder.
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in paths {
        fs::File::open(&p).unwrap().set_modified(when).unwrap();
    }
}

#[test]
fn staging_folders_of_killed_restores_are_swept_once_stale() {
    let v = Vault::init();
    v.add(&v.write("note.txt", b"blood test"), &[]);
    let zip = v.work.join("backup.zip");
    v.ok(&["backup", "-o", zip.to_str().unwrap()]);
    let parent = v.work.join("restores");
    let stale = parent.join(".carnet-restore-Ab12Cd");
    let busy = parent.join(".carnet-restore-Ef34Gh");
    let fresh = parent.join(".carnet-restore-Ij56Kl");
    for d in [&stale, &busy, &fresh] {
        fs::create_dir_all(d.join("objects/ab")).unwrap();
        fs::write(d.join("objects/ab/0123.age"), b"ciphertext").unwrap();
        fs::write(d.join("carnet.toml"), b"format = 1").unwrap();
    }
    let two_hours = std::time::Duration::from_secs(7200);
    age_tree(&stale, two_hours);
    age_tree(&busy, two_hours);
    // A restore still running there keeps writing: one fresh file keeps its folder.
    fs::write(busy.join("objects/ab/4567.age"), b"being written").unwrap();
    let dest = parent.join("vault");
    carnet()
        .arg("--vault")
        .arg(&dest)
        .arg("restore")
        .arg(&zip)
        .ok();
    assert!(!stale.exists(), "the stale staging folder is removed");
    assert!(
        busy.exists() && fresh.exists(),
        "live staging folders are kept"
    );
    assert!(dest.join("carnet.toml").is_file());
}

/// What Finder, Explorer, Syncthing, Resilio, Dropbox and git leave in folders they touch.
fn plant_system_files(dir: &Path) -> Vec<&'static str> {
    let fan = fs::read_dir(dir.join("objects"))
        .unwrap()
        .flatten()
        .find(|e| e.file_type().unwrap().is_dir())
        .unwrap()
        .file_name();
    let fan = fan.to_str().unwrap();
    let files = [
        ".DS_Store".to_string(),
        "objects/.DS_Store".into(),
        format!("objects/{fan}/.DS_Store"),
        "log/.DS_Store".into(),
        "._manifest.age".into(),
        format!("objects/{fan}/Thumbs.db"),
        "desktop.ini".into(),
        ".stignore".into(),
        ".sync/ID".into(),
        ".dropbox".into(),
        ".dropbox.cache/x".into(),
        ".git/HEAD".into(),
        ".git/objects/aa/bbbb".into(),
    ];
    for f in &files {
        let p = dir.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"added by a tool").unwrap();
    }
    fs::create_dir_all(dir.join(".stfolder")).unwrap();
    vec![
        ".DS_Store",
        "._manifest.age",
        "Thumbs.db",
        "desktop.ini",
        ".stignore",
        ".stfolder",
        ".sync",
        ".dropbox",
        ".git",
    ]
}

fn assert_none_of_the_system_files(dir: &Path) {
    for rel in snapshot(dir).into_keys() {
        let name = rel.file_name().unwrap_or_default().to_string_lossy();
        assert!(
            !name.starts_with("._")
                && ![
                    ".DS_Store",
                    "Thumbs.db",
                    "desktop.ini",
                    ".stignore",
                    ".stfolder"
                ]
                .contains(&&*name)
                && ![".git", ".sync", ".dropbox", ".dropbox.cache"]
                    .iter()
                    .any(|d| rel.starts_with(d)),
            "{} was copied into {}",
            rel.display(),
            dir.display()
        );
    }
}

#[test]
fn files_that_systems_and_sync_tools_add_are_noted_not_failures_and_never_copied() {
    let v = Vault::init();
    let id = v.add(&v.write("note.txt", b"blood test"), &[]);
    let names = plant_system_files(&v.dir);
    for args in [
        &["verify"][..],
        &["verify", "--offline"],
        &["verify", "--deep"],
    ] {
        let out = v.ok(args);
        assert!(out.text().starts_with("ok: "), "{args:?}{out}");
        let notes = &out.stderr;
        // (An empty folder holds no file for the offline check to meet.)
        let offline = args.contains(&"--offline");
        for n in names.iter().filter(|n| !(offline && **n == ".stfolder")) {
            assert!(notes.contains(n), "{args:?} does not note {n}: {notes}");
        }
        assert!(notes.contains("sync tool; ignored"), "{notes}");
    }
    // Backups and mirrors hold the vault's files only.
    let zip = v.work.join("backup.zip");
    v.ok(&["backup", "-o", zip.to_str().unwrap()]);
    let mirror = v.work.join("mirror");
    v.ok(&["backup", "--to", mirror.to_str().unwrap()]);
    assert_none_of_the_system_files(&mirror);
    let from_zip = v.work.join("from-zip");
    carnet()
        .arg("--vault")
        .arg(&from_zip)
        .args(["restore", zip.to_str().unwrap()])
        .ok();
    assert_none_of_the_system_files(&from_zip);
    // A synced mirror keeps its tool's files across updates, and still checks and restores.
    v.ok(&["rm", "--yes", &id]);
    plant_system_files(&mirror);
    v.ok(&["backup", "--to", mirror.to_str().unwrap()]);
    assert!(mirror.join(".stfolder").is_dir() && mirror.join(".git/HEAD").is_file());
    carnet()
        .arg("--vault")
        .arg(&mirror)
        .args(["verify", "--offline"])
        .ok();
    let from_mirror = v.work.join("from-mirror");
    carnet()
        .arg("--vault")
        .arg(&from_mirror)
        .args(["restore", mirror.to_str().unwrap()])
        .ok();
    assert_none_of_the_system_files(&from_mirror);
    // Anything else is still a failure.
    fs::write(v.dir.join("notes.txt"), b"mine").unwrap();
    let out = v.run(&["verify", "--offline"]);
    out.assert_code(EXIT_INTEGRITY, "a file no tool adds");
    assert!(
        out.text().contains("FAILED  notes.txt: unexpected file"),
        "{out}"
    );
}
