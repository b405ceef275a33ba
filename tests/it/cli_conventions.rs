//! The conventions every command keeps: where the vault is found (--vault, CARNET_VAULT, the
//! per-user default), CARNET_IDENTITY, help with examples, and the category list.

use crate::util;

use serde_json::Value;
use util::*;

#[test]
fn carnet_vault_env_selects_the_vault_and_vault_flag_overrides_it() {
    let a = Vault::init();
    let b = Vault::init();
    a.add(&a.write("a.txt", b"dans A\n"), &[]);
    b.add(&b.write("b.txt", b"dans B\n"), &[]);

    let titles = |out: Out| -> Vec<String> {
        out.assert_ok("");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["title"].as_str().unwrap().to_string())
            .collect()
    };
    let out = carnet()
        .env("CARNET_VAULT", &a.dir)
        .env("CARNET_PASSPHRASE", PASSPHRASE)
        .args(["ls", "--json"])
        .run();
    assert_eq!(titles(out), ["a"]);
    let out = carnet()
        .env("CARNET_VAULT", &a.dir)
        .env("CARNET_PASSPHRASE", PASSPHRASE)
        .args(["--vault", s(&b.dir), "ls", "--json"])
        .run();
    assert_eq!(titles(out), ["b"]);
}

#[test]
fn default_vault_is_under_xdg_data_home_then_home() {
    let tmp = tempfile::tempdir().unwrap();
    let xdg = tmp.path().join("xdg");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let out = carnet()
        .env("XDG_DATA_HOME", &xdg)
        .env("HOME", &home)
        .env("CARNET_PASSPHRASE", PASSPHRASE)
        .arg("init")
        .run();
    out.assert_ok("");
    assert!(xdg.join("carnet/carnet.toml").is_file());

    let out = carnet()
        .env_remove("XDG_DATA_HOME")
        .env("HOME", &home)
        .env("CARNET_PASSPHRASE", PASSPHRASE)
        .arg("init")
        .run();
    out.assert_ok("");
    assert!(home.join(".local/share/carnet/carnet.toml").is_file());
}

#[test]
fn carnet_identity_env_works_like_the_flag() {
    let mut v = Vault::new();
    let key = new_identity_file(v.root(), "key.txt");
    v.passphrase = None;
    v.identity = Some(key.clone());
    v.ok(&["init"]);
    v.add(&v.write("a.txt", b"a\n"), &[]);
    v.identity = None;
    let out = v
        .cmd()
        .env("CARNET_IDENTITY", &key)
        .args(["ls", "--json"])
        .run();
    out.assert_ok("");
    let docs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(docs.as_array().unwrap().len(), 1);
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "init",
        "add",
        "ls",
        "show",
        "cat",
        "export",
        "rm",
        "categories",
    ] {
        let out = carnet().args([cmd, "--help"]).run();
        out.assert_ok("");
        let help = text(&out.stdout);
        assert!(
            help.contains("Example"),
            "`carnet {cmd} --help` has no example:\n{help}"
        );
        assert!(
            help.contains(&format!("carnet {cmd}")),
            "`carnet {cmd} --help` example does not use the command:\n{help}"
        );
    }
}

#[test]
fn categories_are_the_dmp_classes_of_the_issue() {
    let out = carnet().args(["categories", "--json"]).run();
    out.assert_ok("");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let slugs: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        [
            "compte-rendu",
            "synthese",
            "imagerie",
            "prescription",
            "dispensation",
            "plan-de-soins",
            "traitement",
            "certificat",
            "remboursement",
            "note-patient",
            "autre"
        ]
    );
}

/// A patient who keeps the vault inside the folder they import (`carnet --vault ~/sante/vault
/// add ~/sante`) must not get the vault's own files (its identity, manifest, config) added
/// as documents.
#[test]
fn adding_a_folder_that_contains_the_vault_skips_the_vault() {
    let v = Vault::new();
    let sante = v.work.join("sante");
    v.write("sante/imagerie/scan.txt", b"scan\n");
    let mut inner = Vault::new();
    inner.dir = sante.join("vault");
    inner.ok(&["init"]);
    inner.ok(&["add", s(&sante)]);
    assert_eq!(inner.ls_titles(&[]), ["scan"]);
}
