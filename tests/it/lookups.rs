//! Finding things as people type them (issue 10's newcomer fixes): a professional by a prefix
//! of the handle, with candidates when it is ambiguous and a suggestion when it is mistyped;
//! `ls --search` that ignores case and accents; `ls` with several categories; dates read from
//! file names before the file's modification time. And the `--json` reports of the commands
//! that had none (`rm`, `revoke`, `init`, `keygen`, `pro rm/block/unblock`). On a new vault and
//! on one upgraded from format 1.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::util::*;

fn fixture_vault() -> Vault {
    let v = Vault::new();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format1/vault"),
        &v.dir,
    );
    v
}

fn recipient() -> String {
    age::x25519::Identity::generate().to_public().to_string()
}

fn add_pro(v: &Vault, name: &str) -> String {
    v.ok(&["pro", "add", "--name", name, "--key", &recipient()])
        .text()
        .trim()
        .to_string()
}

fn blocked(v: &Vault, handle: &str) -> bool {
    v.ok(&["pro", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["handle"] == handle)
        .unwrap_or_else(|| panic!("{handle} not listed"))["blocked"]
        .as_bool()
        .unwrap()
}

/// Prefixes, ambiguity and suggestions, with jeanne-martin already in the directory.
fn professionals_by_prefix(v: &Vault) {
    assert_eq!(add_pro(v, "Dr Jeanne Martin-Roux"), "jeanne-martin-roux");
    assert_eq!(add_pro(v, "Paul Roux"), "paul-roux");

    // A unique prefix names one; its report says whom.
    let out = v.ok(&["pro", "block", "pa", "--json"]).json();
    assert_eq!(
        out,
        json!({"handle": "paul-roux", "action": "block", "changed": true})
    );
    assert!(blocked(v, "paul-roux"));
    let out = v.ok(&["pro", "block", "paul", "--json"]).json();
    assert_eq!(out["changed"], false, "already blocked: nothing to do");
    let out = v.ok(&["pro", "unblock", "Paul-R", "--json"]).json();
    assert_eq!(
        out,
        json!({"handle": "paul-roux", "action": "unblock", "changed": true})
    );

    // An exact handle wins over a longer one it is the prefix of.
    v.ok(&["pro", "block", "jeanne-martin"]);
    assert!(blocked(v, "jeanne-martin") && !blocked(v, "jeanne-martin-roux"));
    v.ok(&["pro", "unblock", "jeanne-martin"]);

    let before = v.snapshot();
    // Ambiguous: refused, naming the candidates.
    let out = v.run(&["pro", "block", "jeanne"]);
    let err = assert_error(
        &out,
        &["\"jeanne\" matches several professionals: jeanne-martin, jeanne-martin-roux"],
    );
    assert!(hint(&err).contains("type more of the handle"), "{err}");
    // Unknown: the closest handles suggested, by spelling or by a part of the handle.
    let out = v.run(&["pro", "rm", "jeane-martin"]);
    let err = assert_error(
        &out,
        &["no professional \"jeane-martin\" in your directory"],
    );
    assert!(
        hint(&err).starts_with("did you mean jeanne-martin"),
        "{err}"
    );
    let out = v.run(&["pro", "unblock", "roux"]);
    let err = assert_error(&out, &["no professional \"roux\""]);
    assert_eq!(
        hint(&err),
        "did you mean paul-roux or jeanne-martin-roux? (list them with `carnet pro ls`)"
    );
    // Nothing close: the usual hint.
    let out = v.run(&["pro", "rm", "dupont"]);
    let err = assert_error(&out, &["no professional \"dupont\""]);
    assert!(hint(&err).contains("carnet pro ls"), "{err}");
    // A grant takes prefixes too, and refuses an ambiguous one.
    let bundle = v.work.join("g.age");
    v.run(&[
        "grant",
        "--to",
        "jeanne",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&bundle),
    ])
    .fails(EXIT_FAILURE, &["matches several professionals"]);
    assert_same(&before, &v.snapshot(), "the vault after refused lookups");
    assert!(!bundle.exists());
    v.add(&v.write("x.txt", b"x\n"), &[]);
    // Sharing takes whole words of a handle only: a stray letter must not pick someone.
    v.run(&[
        "grant",
        "--to",
        "jeanne-martin-r",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&bundle),
    ])
    .fails(EXIT_FAILURE, &["no professional \"jeanne-martin-r\""]);
    assert!(!bundle.exists());
    let g = v
        .ok(&[
            "grant",
            "--to",
            "jeanne-martin-roux",
            "--all",
            "--expires",
            "7d",
            "-o",
            s(&bundle),
            "--json",
        ])
        .json();
    assert_eq!(g["to"], json!(["jeanne-martin-roux"]));

    // pro rm --json, and what is logged.
    let out = v.ok(&["pro", "rm", "jeanne-martin-r", "--json"]).json();
    assert_eq!(
        out,
        json!({"handle": "jeanne-martin-roux", "action": "rm", "changed": true})
    );
    let log = v.ok(&["log", "--json", "--action", "pro-rm"]).json();
    assert_eq!(
        log.as_array().unwrap().last().unwrap()["details"]["handle"],
        "jeanne-martin-roux"
    );
}

#[test]
fn professionals_are_found_by_a_unique_prefix_or_suggested() {
    let v = Vault::init();
    assert_eq!(add_pro(&v, "Dr Jeanne Martin"), "jeanne-martin");
    professionals_by_prefix(&v);
}

#[test]
fn professionals_are_found_by_prefix_in_a_vault_upgraded_from_format_1() {
    // The fixture's directory holds jeanne-martin.
    let v = fixture_vault();
    professionals_by_prefix(&v);
    v.ok(&["verify"]);
}

/// Accent- and case-blind search, several categories, on `v`'s documents plus three added.
fn search_and_categories(v: &Vault) {
    v.add(
        &v.write("cr.txt", b"compte rendu\n"),
        &[
            "--title",
            "Consultation Dr Élodie Brun",
            "--category",
            "compte-rendu",
        ],
    );
    v.add(
        &v.write("ordo.txt", b"ordonnance 2\n"),
        &[
            "--title",
            "Ordonnance kiné",
            "--author",
            "Hôpital Lariboisière",
            "--category",
            "prescription",
        ],
    );
    v.add(
        &v.write("irm.txt", b"irm\n"),
        &[
            "--title",
            "IRM genou",
            "--tag",
            "Genou-Gauche",
            "--category",
            "imagerie",
        ],
    );
    for (needle, want) in [
        ("elodie", "Consultation Dr Élodie Brun"),
        ("ÉLODIE", "Consultation Dr Élodie Brun"),
        ("kine", "Ordonnance kiné"),
        ("lariboisiere", "Ordonnance kiné"),
        ("HOPITAL", "Ordonnance kiné"),
        ("genou-gauche", "IRM genou"),
    ] {
        assert_eq!(
            v.ls_titles(&["--search", needle]),
            [want],
            "--search {needle}"
        );
    }
    assert!(v.ls_titles(&["--search", "élodiee"]).is_empty());

    let mut two = v.ls_titles(&["--category", "compte-rendu", "-c", "imagerie"]);
    two.sort();
    let mut want: Vec<String> = v
        .ls(&[])
        .iter()
        .filter(|d| d["category"] == "compte-rendu" || d["category"] == "imagerie")
        .map(|d| d["title"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    assert_eq!(two, want);
    assert!(two.contains(&"IRM genou".to_string()) && two.len() >= 2);
    // Repeating one category, or filtering further, still works.
    assert_eq!(
        v.ls_titles(&[
            "-c",
            "prescription",
            "-c",
            "prescription",
            "--search",
            "kine"
        ]),
        ["Ordonnance kiné"]
    );
    let out = v.run(&["ls", "-c", "imagerie", "-c", "bidule"]);
    let err = assert_error(&out, &["unknown category \"bidule\""]);
    assert!(hint(&err).contains("carnet categories"), "{err}");
}

#[test]
fn ls_search_folds_accents_and_takes_several_categories() {
    let v = Vault::init();
    search_and_categories(&v);
}

#[test]
fn ls_search_and_categories_on_a_vault_upgraded_from_format_1() {
    let v = fixture_vault();
    search_and_categories(&v);
    // The fixture's radio is imagerie: listed with the new IRM.
    let mut imaging = v.ls_titles(&["-c", "imagerie"]);
    imaging.sort();
    assert_eq!(imaging, ["IRM genou", "Radio thorax"]);
}

/// Sets a file's modification time (`touch -d`), so that the mtime date is known.
fn set_mtime(p: &Path, date: &str) {
    let ok = std::process::Command::new("touch")
        .args(["-d", &format!("{date} 12:00"), s(p)])
        .status()
        .unwrap()
        .success();
    assert!(ok, "touch -d {date} {}", p.display());
}

fn dates_from_file_names(v: &Vault) {
    let dir = v.work.join("scans");
    fs::create_dir_all(&dir).unwrap();
    let files = [
        ("2025-03-14 compte rendu.txt", "2025-03-14"),
        ("20240229_scan.txt", "2024-02-29"),
        ("radio 2023_11_02.txt", "2023-11-02"),
        // Not dates: an impossible day, digits inside a longer number, a year far ahead.
        ("20230230 facture.txt", "2020-01-10"),
        ("IMG_120250314.txt", "2020-01-10"),
        ("2999-01-01 plan.txt", "2020-01-10"),
        ("ordonnance.txt", "2020-01-10"),
    ];
    for (i, (name, _)) in files.iter().enumerate() {
        let p = dir.join(name);
        fs::write(&p, format!("document {i} of {name}")).unwrap();
        set_mtime(&p, "2020-01-10");
    }
    let out = v.ok(&["add", "--json", s(&dir)]);
    assert!(
        out.stderr
            .contains("note: 4 document(s) dated by the file's modification time (no date in the file name), 3 by a date in the file name"),
        "{out}"
    );
    let added = out.json();
    for (name, date) in files {
        let o = added
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in {added}"));
        assert_eq!(o["date"], date, "{name}");
        let source = if date == "2020-01-10" {
            "mtime"
        } else {
            "file_name"
        };
        assert_eq!(o["date_source"], source, "{name}");
    }
    let by_title = |t: &str| -> Value {
        v.ls(&["--search", t])
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{t} not listed"))
    };
    assert_eq!(by_title("2025-03-14 compte rendu")["date"], "2025-03-14");
    assert_eq!(by_title("IMG_120250314")["date"], "2020-01-10");

    // One file: the same rule; --date wins over the name; nothing to say when the name dates it.
    let one = v.write("2022-06-30 bilan.txt", b"bilan du 30 juin");
    set_mtime(&one, "2020-01-10");
    let out = v.ok(&["add", "--json", s(&one)]);
    assert!(!out.stderr.contains("modification time"), "{out}");
    assert_eq!(out.json()[0]["date"], "2022-06-30");
    let other = v.write("2022-07-01 bilan.txt", b"bilan du 1er juillet");
    let out = v.ok(&["add", "--json", "--date", "2022-07-02", s(&other)]);
    assert_eq!(out.json()[0]["date"], "2022-07-02");
    assert_eq!(out.json()[0]["date_source"], "given");
}

#[test]
fn a_folder_import_dates_documents_from_their_file_names() {
    let v = Vault::init();
    dates_from_file_names(&v);
}

#[test]
fn file_name_dates_on_a_vault_upgraded_from_format_1() {
    let v = fixture_vault();
    dates_from_file_names(&v);
    v.ok(&["verify", "--deep"]);
}

#[test]
fn rm_revoke_init_and_keygen_report_in_json() {
    let v = Vault::new();
    let init = v.ok(&["init", "--name", "Marie Dupont", "--json"]).json();
    assert_eq!(init["vault"], s(&v.dir));
    assert_eq!(init["key_mode"], "passphrase");
    assert_eq!(init["identity_file"], s(&v.dir.join("identity.age")));
    assert_eq!(init["fingerprint"], v.ok(&["fingerprint"]).text().trim());
    assert!(init["recipients"][0].as_str().unwrap().starts_with("age1"));

    let key = v.work.join("jeanne.key");
    let kg = v
        .ok(&[
            "keygen",
            "--name",
            "Dr Jeanne Martin",
            "--unprotected",
            "-o",
            s(&key),
            "--json",
        ])
        .json();
    assert!(kg["recipient"].as_str().unwrap().starts_with("age1"));
    assert!(kg["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    assert_eq!(kg["key_file"], s(&key));
    assert_eq!(kg["card_file"], s(&v.work.join("jeanne.card.toml")));
    assert_eq!(kg["protected"], false);
    v.ok(&["pro", "add", "--card", s(&v.work.join("jeanne.card.toml"))]);

    let id = v.add(&v.write("bilan.txt", b"bilan\n"), &[]);
    let bundle = v.work.join("g.age");
    let g = v
        .ok(&[
            "grant",
            "--to",
            "jeanne",
            "--all",
            "--expires",
            "7d",
            "-o",
            s(&bundle),
            "--json",
        ])
        .json();
    let gid = g["id"].as_str().unwrap();
    let r = v.ok(&["revoke", &gid[..8], "--json"]).json();
    assert_eq!(r["id"], gid);
    assert_eq!(r["to"], json!(["jeanne-martin"]));
    assert_eq!(r["changed"], true);
    let again = v.ok(&["revoke", gid, "--json"]).json();
    assert_eq!(again["changed"], false);
    assert_eq!(again["revoked_at"], r["revoked_at"]);

    let rm = v.ok(&["rm", "--yes", &id[..8], "--json"]).json();
    assert_eq!(
        rm,
        json!({"removed": [{"id": id, "short_id": &id[..8], "title": "bilan"}]})
    );
}

#[test]
fn pro_add_and_ls_behave_as_before_the_move_to_a_library_operation() {
    let v = Vault::init();
    let key = recipient();
    // Checked before the passphrase is needed: a bad RPPS fails even without a key at hand.
    let out = carnet()
        .args([
            "--vault",
            s(&v.dir),
            "pro",
            "add",
            "--name",
            "X",
            "--key",
            &key,
            "--rpps",
            "12",
        ])
        .run();
    assert_error(&out, &["invalid RPPS number"]);
    let p = v.ok(&[
        "pro",
        "add",
        "--name",
        "Dr Anne Vidal",
        "--key",
        &key,
        "--rpps",
        "10003461033",
        "--json",
    ]);
    assert!(
        p.stderr
            .contains("warning: RPPS 10003461033 fails the Luhn check"),
        "{p}"
    );
    let p = p.json();
    assert_eq!(p["handle"], "anne-vidal");
    assert_eq!(p["rpps"], "10003461033");
    assert_eq!(p["blocked"], false);
    let ls = v.ok(&["pro", "ls", "--json"]).json();
    assert_eq!(ls[0]["handle"], "anne-vidal");
    assert!(ls[0]["fingerprint"].is_null());
}
