//! The shell scripts in `examples/` run for real, with bash, against the binary under test (passed
//! as `CARNET`, which every script honours), in temporary folders: they cannot rot unnoticed.
//!
//! The tests of the backup scripts need `carnet backup`, `carnet restore` and
//! `carnet verify --offline`; until those land they are ignored. The restic tests need `restic`:
//! skipped without it, or failed under CARNET_REQUIRE_INTEROP=1 (`util::tools`).

use crate::util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use util::{Vault, text};

const BIN: &str = env!("CARGO_BIN_EXE_carnet");
const NEEDS_BACKUP: &str = "the backup step (carnet backup, restore or verify --offline)";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// `bash examples/NAME` with a bare environment: PATH, a HOME and TMPDIR inside `root`, the
/// binary as CARNET, cheap scrypt, and no terminal. No key or passphrase unless a test adds one.
fn script(root: &Path, name: &str) -> Command {
    let home = root.join("home");
    let tmp = root.join("tmp");
    for d in [&home, &tmp] {
        fs::create_dir_all(d).expect("mkdir");
    }
    let mut c = Command::new("bash");
    c.arg(examples_dir().join(name))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("CARNET", BIN)
        .env("CARNET_SCRYPT_LOG_N", "10")
        .current_dir(root)
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("cannot run bash")
}

fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A vault with two documents.
fn vault_with_documents() -> Vault {
    let v = Vault::init();
    let a = v.write("radio.png", &util::pseudo_random(50_000, 1));
    let b = v.write(
        "ordonnance.txt",
        b"Amoxicilline 1 g, 3 fois par jour pendant 7 jours\n",
    );
    v.add(&a, &["--category", "imagerie", "--date", "2025-03-12"]);
    v.add(&b, &["--category", "prescription", "--date", "2025-03-14"]);
    v
}

/// Names of the entries of a folder, sorted; empty when it does not exist.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

/// Restores `source` into a new vault, with no key, and returns that vault (opened by the test
/// passphrase, like the original).
fn restored(source: &Path, name: &str) -> Vault {
    let r = Vault::new();
    let out = util::carnet()
        .arg("--vault")
        .arg(&r.dir)
        .arg("restore")
        .arg(source)
        .run();
    out.assert_code(0, &format!("carnet restore {name}"));
    r
}

/// The vault's files, less the lock file and the staging folder, which any command may touch.
fn content(v: &Vault) -> util::Snapshot {
    let mut s = v.snapshot();
    s.retain(|p, _| !p.starts_with("lock") && !p.starts_with("tmp"));
    s
}

fn flip_a_byte_in_an_object(v: &Vault) {
    let objects = v.objects();
    let obj = objects.first().expect("the vault has objects");
    let mut bytes = fs::read(obj).expect("read object");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(obj, bytes).expect("write object");
}

// ---- nightly-backup.sh ------------------------------------------------------------------

#[test]

fn nightly_backup_makes_a_dated_backup_keeps_the_newest_and_it_restores() {
    let v = vault_with_documents();
    let backups = v.root().join("backups");
    fs::create_dir(&backups).expect("mkdir");
    for old in [
        "carnet-20200101T000000Z.zip",
        "carnet-20200102T000000Z.zip",
        "carnet-20200103T000000Z.zip",
    ] {
        fs::write(backups.join(old), b"an older backup").expect("write");
    }
    let before = content(&v);

    let out = run(script(v.root(), "nightly-backup.sh")
        .env("CARNET_VAULT", &v.dir)
        .env("CARNET_BACKUP_DIR", &backups)
        .env("CARNET_BACKUP_KEEP", "2")
        .env("CARNET_BACKUP_CHECK", "1"));
    assert_exit(&out, 0, NEEDS_BACKUP);

    let kept = names(&backups);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(
        kept[0], "carnet-20200103T000000Z.zip",
        "the oldest go first"
    );
    let newest = backups.join(&kept[1]);
    assert!(
        kept[1].starts_with("carnet-2") && kept[1].ends_with("Z.zip"),
        "{kept:?}"
    );
    assert!(
        fs::read(&newest).expect("read").starts_with(b"PK"),
        "not a zip"
    );
    // Keyless: the vault is read, never written (no log entry without the key).
    util::assert_same(&before, &content(&v), "the vault");
    assert!(
        names(&v.root().join("tmp")).is_empty(),
        "scratch left in TMPDIR"
    );

    let r = restored(&newest, "the nightly backup");
    assert_eq!(r.ls(&[]), v.ls(&[]));
}

#[test]

fn nightly_backup_of_a_damaged_vault_fails_and_keeps_the_old_backups() {
    let v = vault_with_documents();
    let backups = v.root().join("backups");
    fs::create_dir(&backups).expect("mkdir");
    fs::write(backups.join("carnet-20200101T000000Z.zip"), b"old").expect("write");
    flip_a_byte_in_an_object(&v);

    let out = run(script(v.root(), "nightly-backup.sh")
        .env("CARNET_VAULT", &v.dir)
        .env("CARNET_BACKUP_DIR", &backups)
        .env("CARNET_BACKUP_KEEP", "1"));
    assert_exit(&out, 3, "a damaged vault");
    assert_eq!(names(&backups), ["carnet-20200101T000000Z.zip"]);
}

/// A stand-in for carnet that logs its arguments, whose `verify` exits with `verify_status`
/// and whose `backup -o FILE|-` writes a few zip-like bytes then exits with `backup_status`:
/// it tests the scripts' own logic (names, rotation, failure paths) apart from carnet's.
fn fake_carnet(root: &Path, verify_status: i32, backup_status: i32) -> PathBuf {
    let fake = root.join("fake-carnet");
    fs::write(
        &fake,
        format!(
            "#!/usr/bin/env bash\n\
             echo \"$*\" >> {calls:?}\n\
             case \" $* \" in\n\
             *' verify '*) exit {verify_status} ;;\n\
             *' backup '*) while (($#)); do if [[ $1 == -o ]]; then if [[ $2 == - ]]; then printf 'PK fake'; else printf 'PK fake' > \"$2\"; fi; fi; shift; done; exit {backup_status} ;;\n\
             esac\n\
             exit 99\n",
            calls = root.join("calls.log"),
        ),
    )
    .expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    fake
}

#[test]
fn nightly_backup_rotation_with_a_stand_in_carnet() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let backups = root.join("backups");
    fs::create_dir(&backups).expect("mkdir");
    for old in [
        "carnet-20200101T000000Z.zip",
        "carnet-20200102T000000Z.zip",
        "carnet-20200103T000000Z.zip",
        "notes.txt",
    ] {
        fs::write(backups.join(old), b"older").expect("write");
    }
    let fake = fake_carnet(root, 0, 0);
    let out = run(script(root, "nightly-backup.sh")
        .env("CARNET", &fake)
        .env("CARNET_BACKUP_DIR", &backups)
        .env("CARNET_BACKUP_KEEP", "2"));
    assert_exit(&out, 0, "nightly backup");
    let kept = names(&backups);
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert_eq!(kept[0], "carnet-20200103T000000Z.zip");
    assert!(
        kept[1].starts_with("carnet-2") && kept[1].ends_with("Z.zip"),
        "{kept:?}"
    );
    assert_eq!(kept[2], "notes.txt", "only backups are rotated");
    assert_eq!(fs::read(backups.join(&kept[1])).expect("read"), b"PK fake");
    let calls = fs::read_to_string(root.join("calls.log")).expect("calls");
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], "verify --offline", "verify comes first");
    assert!(
        calls[1].starts_with("backup -o ") && calls[1].ends_with(".zip.part"),
        "{calls:?}"
    );

    // The vault fails its check: no backup, nothing removed, carnet's exit status.
    let fake = fake_carnet(root, 3, 0);
    let out = run(script(root, "nightly-backup.sh")
        .env("CARNET", &fake)
        .env("CARNET_BACKUP_DIR", &backups)
        .env("CARNET_BACKUP_KEEP", "1"));
    assert_exit(&out, 3, "a damaged vault");
    assert_eq!(names(&backups), kept);
}

#[test]
fn nightly_backup_rejects_a_bad_keep_count() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for bad in ["0", "-1", "ten"] {
        let out = run(script(tmp.path(), "nightly-backup.sh")
            .env("CARNET_BACKUP_DIR", tmp.path().join("backups"))
            .env("CARNET_BACKUP_KEEP", bad));
        assert_exit(&out, 2, bad);
        assert!(text(&out.stderr).contains("CARNET_BACKUP_KEEP"));
    }
    assert!(!tmp.path().join("backups").exists());
}

// ---- restic-backup.sh -------------------------------------------------------------------

/// A new restic repository under `root`, and the environment that opens it.
fn restic_repo(root: &Path, restic: &Path) -> Vec<(&'static str, PathBuf)> {
    let env = vec![
        ("RESTIC_REPOSITORY", root.join("restic-repo")),
        ("RESTIC_PASSWORD", PathBuf::from("restic test password")),
        ("RESTIC", restic.to_path_buf()),
    ];
    let out = restic_cmd(root, restic, &env)
        .args(["init", "--quiet"])
        .output()
        .expect("run restic init");
    assert_exit(&out, 0, "restic init");
    env
}

fn restic_cmd(root: &Path, restic: &Path, env: &[(&str, PathBuf)]) -> Command {
    let mut c = Command::new(restic);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("RESTIC_CACHE_DIR", root.join("restic-cache"))
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn restic_snapshots(root: &Path, restic: &Path, env: &[(&str, PathBuf)]) -> Vec<Value> {
    let out = restic_cmd(root, restic, env)
        .args(["snapshots", "--json"])
        .output()
        .expect("run restic snapshots");
    assert_exit(&out, 0, "restic snapshots");
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("restic snapshots --json: {}", text(&out.stdout)))
}

#[test]

fn restic_backup_streams_the_vault_into_a_snapshot_that_restores() {
    let Some(restic) = util::require_tool(util::Tool::Restic) else {
        return;
    };
    let v = vault_with_documents();
    let env = restic_repo(v.root(), &restic);
    for _ in 0..2 {
        let out = run(script(v.root(), "restic-backup.sh")
            .env("CARNET_VAULT", &v.dir)
            .env("RESTIC_CACHE_DIR", v.root().join("restic-cache"))
            .env("CARNET_RESTIC_FORGET", "--keep-last 1")
            .envs(env.iter().cloned()));
        assert_exit(&out, 0, NEEDS_BACKUP);
    }
    assert_eq!(
        restic_snapshots(v.root(), &restic, &env).len(),
        1,
        "--keep-last 1"
    );

    let zip = v.root().join("from-restic.zip");
    let out = restic_cmd(v.root(), &restic, &env)
        .args(["dump", "latest", "/carnet-backup.zip"])
        .output()
        .expect("run restic dump");
    assert_exit(&out, 0, "restic dump");
    fs::write(&zip, &out.stdout).expect("write");
    let r = restored(&zip, "the restic snapshot");
    assert_eq!(r.ls(&[]), v.ls(&[]));
}

#[test]
fn restic_backup_with_a_stand_in_carnet_saves_the_stream_and_applies_the_policy() {
    let Some(restic) = util::require_tool(util::Tool::Restic) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let env = restic_repo(root, &restic);
    let fake = fake_carnet(root, 0, 0);
    for _ in 0..2 {
        let out = run(script(root, "restic-backup.sh")
            .env("CARNET", &fake)
            .env("RESTIC_CACHE_DIR", root.join("restic-cache"))
            .env("CARNET_RESTIC_FORGET", "--keep-last 1")
            .envs(env.iter().cloned()));
        assert_exit(&out, 0, "restic-backup.sh");
    }
    assert_eq!(
        restic_snapshots(root, &restic, &env).len(),
        1,
        "--keep-last 1"
    );
    let out = restic_cmd(root, &restic, &env)
        .args(["dump", "latest", "/carnet-backup.zip"])
        .output()
        .expect("run restic dump");
    assert_exit(&out, 0, "restic dump");
    assert_eq!(out.stdout, b"PK fake");
}

#[test]
fn restic_backup_keeps_no_snapshot_when_carnet_fails_half_way() {
    let Some(restic) = util::require_tool(util::Tool::Restic) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let env = restic_repo(root, &restic);
    // A carnet whose vault checks out but whose backup dies after a few bytes, as a full disk
    // or a kill would leave it: restic must not keep a truncated zip as the latest snapshot.
    let fake = fake_carnet(root, 0, 1);
    let out = run(script(root, "restic-backup.sh")
        .env("CARNET", &fake)
        .env("CARNET_VAULT", root.join("vault"))
        .env("RESTIC_CACHE_DIR", root.join("restic-cache"))
        .envs(env.iter().cloned()));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        restic_snapshots(root, &restic, &env),
        Vec::<Value>::new(),
        "a snapshot of the failed backup remains; stderr:\n{}",
        text(&out.stderr)
    );
}

#[test]
fn restic_backup_needs_a_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut script(tmp.path(), "restic-backup.sh"));
    assert_exit(&out, 1, "no RESTIC_REPOSITORY");
    assert!(
        text(&out.stderr).contains("RESTIC_REPOSITORY"),
        "{}",
        text(&out.stderr)
    );
}

// ---- usb-stick.sh -----------------------------------------------------------------------

#[test]

fn usb_stick_mirror_is_updated_and_verified() {
    let v = vault_with_documents();
    let stick = v.root().join("stick");
    fs::create_dir(&stick).expect("mkdir");
    let usb = |v: &Vault| {
        run(script(v.root(), "usb-stick.sh")
            .arg(&stick)
            .env("CARNET_VAULT", &v.dir)
            .env("CARNET_USB_ALLOW_UNMOUNTED", "1"))
    };
    assert_exit(&usb(&v), 0, NEEDS_BACKUP);
    let mirror = stick.join("carnet");
    let out = util::carnet()
        .arg("--vault")
        .arg(&mirror)
        .args(["verify", "--offline"])
        .run();
    out.assert_code(0, "verify --offline of the mirror");

    // A second run brings the mirror up to date with a new document.
    let c = v.write("bilan.csv", b"examen,resultat\nCRP,4\n");
    v.add(&c, &["--category", "compte-rendu"]);
    assert_exit(&usb(&v), 0, "second run");
    let r = restored(&mirror, "the mirror");
    assert_eq!(r.ls(&[]), v.ls(&[]));
}

#[test]
fn usb_stick_with_a_stand_in_carnet_checks_the_vault_then_mirrors_then_checks_the_mirror() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let stick = root.join("stick");
    fs::create_dir(&stick).expect("mkdir");
    let fake = fake_carnet(root, 0, 0);
    let out = run(script(root, "usb-stick.sh")
        .arg(&stick)
        .env("CARNET", &fake)
        .env("CARNET_USB_ALLOW_UNMOUNTED", "1")
        .env("CARNET_FINGERPRINT", "SHA256:1a2b"));
    assert_exit(&out, 0, "usb-stick.sh");
    let mirror = stick.join("carnet");
    let calls = fs::read_to_string(root.join("calls.log")).expect("calls");
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "verify --offline".to_string(),
            format!("backup --to {}", mirror.display()),
            format!(
                "--vault {} verify --offline --expect SHA256:1a2b",
                mirror.display()
            ),
        ]
    );

    // A vault that fails its check is not copied.
    fs::remove_file(root.join("calls.log")).expect("rm");
    let fake = fake_carnet(root, 3, 0);
    let out = run(script(root, "usb-stick.sh")
        .arg(&stick)
        .env("CARNET", &fake)
        .env("CARNET_USB_ALLOW_UNMOUNTED", "1"));
    assert_exit(&out, 3, "a damaged vault");
    let calls = fs::read_to_string(root.join("calls.log")).expect("calls");
    assert_eq!(calls.lines().collect::<Vec<_>>(), ["verify --offline"]);
}

#[test]
fn usb_stick_refuses_a_missing_or_unmounted_stick() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("not-plugged");
    let out = run(script(tmp.path(), "usb-stick.sh").arg(&missing));
    assert_exit(&out, 1, "a missing stick");
    assert!(
        text(&out.stderr).contains("plug the stick in"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists());

    // A plain folder where the stick should be mounted: copying there would fill the laptop.
    let folder = tmp.path().join("media-stick");
    fs::create_dir(&folder).expect("mkdir");
    let out = run(script(tmp.path(), "usb-stick.sh").arg(&folder));
    assert_exit(&out, 1, "an unmounted stick");
    assert!(
        text(&out.stderr).contains("not a mount point"),
        "{}",
        text(&out.stderr)
    );
    assert!(names(&folder).is_empty());
}

// ---- pro-receive.sh ---------------------------------------------------------------------

const PRO_PASSPHRASE: &str = "stéthoscope cerisier lanterne";

#[test]
fn pro_receive_makes_a_key_once_then_opens_bundles_into_dated_folders() {
    let v = vault_with_documents();
    let root = v.root();
    let inbox = root.join("Patients");
    let pro = |args: &[&Path]| {
        run(script(root, "pro-receive.sh")
            .args(args)
            .env("CARNET_PRO_INBOX", &inbox)
            .env("CARNET_PASSPHRASE", PRO_PASSPHRASE))
    };

    // Without a name, the first run explains how to make the key.
    let out = pro(&[]);
    assert_exit(&out, 2, "first run without a name");
    assert!(
        text(&out.stderr).contains("CARNET_PRO_NAME"),
        "{}",
        text(&out.stderr)
    );

    let out = run(script(root, "pro-receive.sh")
        .env("CARNET_PRO_NAME", "Dr Jeanne Martin")
        .env("CARNET_PRO_RPPS", "10003461033")
        .env("CARNET_PRO_PROFESSION", "médecin")
        .env("CARNET_PASSPHRASE", PRO_PASSPHRASE));
    assert_exit(&out, 0, "keygen");
    let key = root.join("home/.config/carnet/pro.key");
    let card = root.join("home/.config/carnet/pro.card.toml");
    assert!(key.is_file() && card.is_file(), "no key or card");
    let key_bytes = fs::read(&key).expect("read key");
    assert!(
        key_bytes.starts_with(b"age-encryption.org/v1"),
        "the key is not protected"
    );
    // Once made, the key is kept as it is.
    assert_exit(&pro(&[]), 0, "second run");
    assert_eq!(fs::read(&key).expect("read key"), key_bytes);

    // The patient adds the card and shares everything for an hour.
    v.ok(&[
        Path::new("pro"),
        Path::new("add"),
        Path::new("--card"),
        card.as_path(),
    ]);
    let bundle = root.join("partage.age");
    let out = v.ok(&[
        "grant",
        "--to",
        "jeanne-martin",
        "--all",
        "--expires",
        "1h",
        "--json",
        "-o",
        bundle.to_str().expect("utf-8 path"),
    ]);
    let granted: Value = serde_json::from_slice(&out.stdout).expect("grant --json");
    let fingerprint = granted["patient_fingerprint"]
        .as_str()
        .expect("patient_fingerprint")
        .to_string();

    // Without the fingerprint: the terms and the patient's key are shown, nothing extracted.
    let out = pro(&[&bundle]);
    assert_exit(&out, 2, "no fingerprint");
    assert!(
        text(&out.stdout).contains(&fingerprint),
        "{}",
        text(&out.stdout)
    );
    assert!(names(&inbox).is_empty());

    // A fingerprint that is not the patient's: refused, nothing extracted.
    let wrong = "SHA256:0000:0000:0000:0000:0000:0000:0000:0000";
    let out = pro(&[&bundle, Path::new(wrong)]);
    assert_exit(&out, 3, "wrong fingerprint");
    assert!(
        text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );
    assert!(names(&inbox).is_empty(), "{:?}", names(&inbox));

    // The right one: into a dated folder, then a second one beside it.
    let fp = Path::new(&fingerprint);
    assert_exit(&pro(&[&bundle, fp]), 0, "open");
    assert_exit(&pro(&[&bundle, fp]), 0, "open again");
    let got = names(&inbox);
    assert_eq!(got.len(), 2, "{got:?}");
    let first = &got[0];
    assert!(
        first.len() == "YYYY-MM-DD-partage".len()
            && first.ends_with("-partage")
            && first[..10].chars().filter(|c| *c == '-').count() == 2,
        "{got:?}"
    );
    assert_eq!(got[1], format!("{first}-2"));
    let docs = util::files_under(&inbox.join(first).join("documents"));
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert!(
        docs.iter()
            .any(|p| fs::read(p).expect("read") == util::pseudo_random(50_000, 1)),
        "the image did not arrive intact: {docs:?}"
    );
}

#[test]
fn pro_receive_refuses_a_grant_not_yet_valid() {
    let v = vault_with_documents();
    let root = v.root();
    let inbox = root.join("Patients");
    let out = run(script(root, "pro-receive.sh")
        .env("CARNET_PRO_NAME", "Inf. Paul Roux")
        .env("CARNET_PRO_ADELI", "751234567")
        .env("CARNET_PASSPHRASE", PRO_PASSPHRASE));
    assert_exit(&out, 0, "keygen");
    let card = root.join("home/.config/carnet/pro.card.toml");
    v.ok(&[
        Path::new("pro"),
        Path::new("add"),
        Path::new("--card"),
        card.as_path(),
    ]);
    let bundle = root.join("plus-tard.age");
    let out = v.ok(&[
        "grant",
        "--to",
        "751234567",
        "--all",
        "--not-before",
        "2099-01-01",
        "--expires",
        "2099-01-02",
        "--json",
        "-o",
        bundle.to_str().expect("utf-8 path"),
    ]);
    let granted: Value = serde_json::from_slice(&out.stdout).expect("grant --json");
    let fp = granted["patient_fingerprint"]
        .as_str()
        .expect("fingerprint");

    let out = run(script(root, "pro-receive.sh")
        .arg(&bundle)
        .arg(fp)
        .env("CARNET_PRO_INBOX", &inbox)
        .env("CARNET_PASSPHRASE", PRO_PASSPHRASE));
    assert_exit(&out, 4, "not yet valid");
    assert!(
        text(&out.stderr).contains("new grant"),
        "{}",
        text(&out.stderr)
    );
    assert!(names(&inbox).is_empty(), "{:?}", names(&inbox));
}
