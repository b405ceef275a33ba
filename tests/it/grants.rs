//! Consent grants (issue 4; threat model points 3–6 of the brief): professionals' keys and
//! cards, the patient's directory, `grant`, `grants`, `revoke`, and `open`, including bundles
//! altered or crafted to attack the professional's machine.
//!
//! The interoperability tests run the reference tools (`age`, `unzip`, `minisign`); each is
//! skipped when its tool is missing, or fails under CARNET_REQUIRE_INTEROP=1 (`util::tools`).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::grants::*;
use serde_json::Value;

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

// =============================================================================================
// keygen

#[test]
fn keygen_writes_a_protected_key_and_a_card_beside_it() {
    let lab = Lab::new();
    let key = lab.path("keys/jeanne.key");
    let out = lab
        .run(
            Some(PRO_PASS),
            &[
                "keygen",
                "--name",
                "Dr Jeanne Martin",
                "--rpps",
                "10005173140",
                "--profession",
                "médecin",
                "--specialty",
                "cardiologie",
                "-o",
                s(&key),
            ],
        )
        .ok();
    let recipient = out.text().trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    assert_eq!(
        out.text(),
        format!("{recipient}\n"),
        "stdout: the recipient"
    );
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);

    // Default card path: KEYFILE with its extension replaced by .card.toml.
    let card_path = lab.root.join("keys/jeanne.card.toml");
    assert!(card_path.is_file(), "the card is written beside the key");
    let card: toml::Table = toml::from_str(&fs::read_to_string(&card_path).unwrap()).unwrap();
    assert_eq!(card["carnet_card"].as_integer(), Some(1));
    assert_eq!(card["name"].as_str(), Some("Dr Jeanne Martin"));
    assert_eq!(card["rpps"].as_str(), Some("10005173140"));
    assert_eq!(card["profession"].as_str(), Some("médecin"));
    assert_eq!(card["specialty"].as_str(), Some("cardiologie"));
    assert_eq!(card["recipient"].as_str(), Some(recipient.as_str()));
    assert!(card.get("adeli").is_none());
    // The signing key is minisign's format ("Ed" + key id + key) and the fingerprint is its.
    use base64::Engine;
    let sk = base64::engine::general_purpose::STANDARD
        .decode(card["signing_key"].as_str().unwrap())
        .unwrap();
    assert_eq!((sk.len(), &sk[..2]), (42, &b"Ed"[..]));
    let digest = sha256_hex(&sk[10..]);
    let want_fp: Vec<&str> = (0..32).step_by(4).map(|i| &digest[i..i + 4]).collect();
    assert_eq!(
        card["fingerprint"].as_str().unwrap(),
        format!("SHA256:{}", want_fp.join(":"))
    );
    // Only public keys on the card.
    let card_text = fs::read_to_string(&card_path).unwrap();
    assert!(!card_text.contains("AGE-SECRET-KEY"), "{card_text}");

    // The key is age's own passphrase-encrypted format, private to its owner.
    let bytes = fs::read(&key).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n-> scrypt "));
    assert!(!String::from_utf8_lossy(&bytes).contains("AGE-SECRET-KEY"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600,
        "the key file is private"
    );
    let id = age::scrypt::Identity::new(age::secrecy::SecretString::from(PRO_PASS.to_string()));
    let d = age::Decryptor::new(&bytes[..]).unwrap();
    let mut r = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .expect("the key opens with the passphrase");
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut r, &mut plain).unwrap();
    assert!(
        plain.contains(&format!("# public key: {recipient}")),
        "{plain}"
    );
    assert!(plain.lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")));

    // --card chooses the card's path; a key without extension gets KEY.card.toml.
    let key2 = lab.path("keys/paul");
    let card2 = lab.path("cards/paul.toml");
    lab.run(
        Some(PRO_PASS),
        &[
            "keygen",
            "--name",
            "Paul Roux",
            "-o",
            s(&key2),
            "--card",
            s(&card2),
        ],
    )
    .ok();
    assert!(card2.is_file() && !lab.root.join("keys/paul.card.toml").exists());
    let key3 = lab.path("keys/marc");
    lab.run(
        None,
        &["keygen", "--name", "Marc", "-o", s(&key3), "--unprotected"],
    )
    .ok();
    assert!(lab.root.join("keys/marc.card.toml").is_file());
    let plain3 = fs::read_to_string(&key3).unwrap();
    assert!(plain3.lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")));

    // No passphrase and no terminal: refused, naming the env var; nothing written.
    let key4 = lab.path("keys/nopass.key");
    let out = lab.run(None, &["keygen", "--name", "Anne", "-o", s(&key4)]);
    out.fails(EXIT_FAILURE, &[]);
    assert!(out.stderr.contains("CARNET_PASSPHRASE"), "{}", out.stderr);
    assert!(!key4.exists() && !lab.root.join("keys/nopass.card.toml").exists());
}

#[test]
fn keygen_never_overwrites_a_key_or_a_card() {
    let lab = Lab::new();
    let key = lab.write("keys/precious.key", b"precious old key\n");
    let out = lab.run(
        None,
        &["keygen", "--name", "A", "-o", s(&key), "--unprotected"],
    );
    out.fails(EXIT_FAILURE, &["already exists"]);
    assert_eq!(fs::read(&key).unwrap(), b"precious old key\n");
    assert!(!lab.root.join("keys/precious.card.toml").exists());

    // A card in the way: refused before the key is written.
    let card = lab.write("keys/new.card.toml", b"old card\n");
    let key2 = lab.root.join("keys/new.key");
    let out = lab.run(
        None,
        &["keygen", "--name", "A", "-o", s(&key2), "--unprotected"],
    );
    out.fails(EXIT_FAILURE, &["already exists"]);
    assert!(!key2.exists());
    assert_eq!(fs::read(&card).unwrap(), b"old card\n");

    // Running keygen twice keeps the first key.
    let pro = lab.keygen("Dr B", "b.key", true, &[]);
    let (k, c) = (fs::read(&pro.key).unwrap(), fs::read(&pro.card).unwrap());
    let out = lab.run(
        None,
        &[
            "keygen",
            "--name",
            "Dr B",
            "-o",
            s(&pro.key),
            "--unprotected",
        ],
    );
    out.fails(EXIT_FAILURE, &["already exists"]);
    assert_eq!(fs::read(&pro.key).unwrap(), k);
    assert_eq!(fs::read(&pro.card).unwrap(), c);
}

#[test]
fn keygen_checks_rpps_and_adeli_numbers() {
    let lab = Lab::new();
    let keygen = |file: &str, extra: &[&str]| {
        let key = lab.root.join("keys").join(file);
        fs::create_dir_all(key.parent().unwrap()).unwrap();
        let mut args = vec![
            "keygen",
            "--name",
            "Dr Test",
            "--unprotected",
            "-o",
            s(&key),
        ];
        args.extend_from_slice(extra);
        (lab.run(None, &args), key)
    };
    let card_of = |key: &Path| -> toml::Table {
        toml::from_str(&fs::read_to_string(key.with_extension("card.toml")).unwrap()).unwrap()
    };

    // RPPS: exactly 11 digits.
    for bad in ["1000517314", "100051731400", "1000517314X", "RPPS0000001"] {
        let (out, key) = keygen("bad-rpps.key", &["--rpps", bad]);
        out.fails(EXIT_FAILURE, &["invalid RPPS number", "11 digits"]);
        assert!(
            !key.exists() && !key.with_extension("card.toml").exists(),
            "{bad}"
        );
    }
    // A Luhn-valid RPPS: no warning.
    let (out, key) = keygen("valid.key", &["--rpps", "10005173140"]);
    let out = out.ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(card_of(&key)["rpps"].as_str(), Some("10005173140"));
    // A Luhn-failing RPPS (like official test numbers) is accepted, with a warning.
    let (out, key) = keygen("luhn.key", &["--rpps", "10003461033"]);
    let out = out.ok();
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains("Luhn"),
        "{}",
        out.stderr
    );
    assert_eq!(card_of(&key)["rpps"].as_str(), Some("10003461033"));

    // ADELI: 9 characters, a department first (digits, 2A/2B, 9A–9F).
    for (n, (given, stored)) in [
        ("751234567", "751234567"),
        ("2A1234567", "2A1234567"),
        ("2b1234567", "2B1234567"),
        ("9F1234567", "9F1234567"),
    ]
    .into_iter()
    .enumerate()
    {
        let (out, key) = keygen(&format!("adeli{n}.key"), &["--adeli", given]);
        out.ok();
        let card = card_of(&key);
        assert_eq!(card["adeli"].as_str(), Some(stored), "{given}");
        assert!(card.get("rpps").is_none());
    }
    for bad in [
        "9G1234567",
        "AB1234567",
        "75123456",
        "7512345678",
        "75123456X",
    ] {
        let (out, key) = keygen("bad-adeli.key", &["--adeli", bad]);
        out.fails(EXIT_FAILURE, &["invalid ADELI number"]);
        assert!(!key.exists(), "{bad}");
    }
    // One identifier at most: a usage error.
    let (out, key) = keygen(
        "both.key",
        &["--rpps", "10005173140", "--adeli", "751234567"],
    );
    assert_eq!(out.code, Some(EXIT_USAGE), "{}", out.stderr);
    assert!(!key.exists());
}

// =============================================================================================
// The patient's directory of professionals

#[test]
fn pro_add_from_a_card_or_by_hand_gives_handles_from_names() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let jeanne = lab.keygen(
        "Dr Jeanne Martin",
        "jeanne.key",
        true,
        &["--rpps", "10005173140", "--profession", "médecin"],
    );
    assert_eq!(p.add_pro(&jeanne), "jeanne-martin");

    // By hand: an age recipient...
    let paul_rcpt = age::x25519::Identity::generate().to_public().to_string();
    let out = p.ok(&[
        "pro",
        "add",
        "--name",
        "Paul Roux",
        "--key",
        &paul_rcpt,
        "--adeli",
        "751234567",
        "--profession",
        "infirmier",
    ]);
    assert_eq!(out.text(), "paul-roux\n");
    // ... or an ssh-ed25519 public key line; accents folded in the handle.
    let ssh = ssh_ed25519_line(9, "elise@cabinet");
    let out = p.ok(&["pro", "add", "--name", "Dr Élise Bérard", "--key", &ssh]);
    assert_eq!(out.text(), "elise-berard\n");
    // The same name again gets a distinct handle; --handle chooses one.
    let other = age::x25519::Identity::generate().to_public().to_string();
    let out = p.ok(&["pro", "add", "--name", "Dr Jeanne Martin", "--key", &other]);
    assert_eq!(out.text(), "jeanne-martin-2\n");
    let cardio = age::x25519::Identity::generate().to_public().to_string();
    let out = p.ok(&[
        "pro",
        "add",
        "--name",
        "Pr Luc Petit",
        "--key",
        &cardio,
        "--handle",
        "Cardio",
    ]);
    assert_eq!(out.text(), "cardio\n");

    let ls = p.ok(&["pro", "ls", "--json"]).json();
    let ls = ls.as_array().unwrap();
    let handles: Vec<&str> = ls.iter().map(|x| x["handle"].as_str().unwrap()).collect();
    assert_eq!(
        handles,
        [
            "jeanne-martin",
            "paul-roux",
            "elise-berard",
            "jeanne-martin-2",
            "cardio"
        ]
    );
    let card = jeanne.card();
    let j = &ls[0];
    assert_eq!(j["name"], "Dr Jeanne Martin");
    assert_eq!(j["rpps"], "10005173140");
    assert_eq!(j["profession"], "médecin");
    assert_eq!(j["recipient"].as_str(), Some(jeanne.recipient.as_str()));
    assert_eq!(j["signing_key"].as_str(), card["signing_key"].as_str());
    assert_eq!(j["fingerprint"].as_str(), card["fingerprint"].as_str());
    assert_eq!(j["blocked"], false);
    let paul = &ls[1];
    assert_eq!(paul["adeli"], "751234567");
    assert_eq!(paul["profession"], "infirmier");
    assert!(paul.get("rpps").is_none_or(Value::is_null), "{paul}");
    assert!(paul["fingerprint"].is_null(), "no signing key by hand");
    assert_eq!(paul["recipient"].as_str(), Some(paul_rcpt.as_str()));
    assert_eq!(ls[2]["recipient"].as_str(), Some(ssh.as_str()));
    let table = p.ok(&["pro", "ls"]).text();
    for h in handles {
        assert!(table.contains(h), "{table}");
    }

    // Refusals: each exit 1, the directory unchanged.
    let fresh = age::x25519::Identity::generate().to_public().to_string();
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec!["--name", "Jeanne bis", "--key", &jeanne.recipient],
            &["already in your directory", "jeanne-martin"],
        ),
        (
            vec!["--name", "X", "--key", &fresh, "--rpps", "10005173140"],
            &["10005173140 is already in your directory"],
        ),
        (
            vec!["--name", "X", "--key", "age1notakey"],
            &["not an age recipient or SSH public key"],
        ),
        (
            vec!["--name", "X", "--key", &fresh, "--rpps", "123"],
            &["invalid RPPS number"],
        ),
        (
            vec!["--name", "X", "--key", &fresh, "--adeli", "9G1234567"],
            &["invalid ADELI number"],
        ),
        (
            vec!["--name", "X", "--key", &fresh, "--handle", "cardio"],
            &["the handle cardio is taken"],
        ),
        (
            vec!["--name", "X", "--key", &fresh, "--handle", "bad handle!"],
            &["invalid handle"],
        ),
        (vec!["--name", " ", "--key", &fresh], &["name is empty"]),
    ];
    for (args, needles) in cases {
        let mut all = vec!["pro", "add"];
        all.extend_from_slice(&args);
        p.run(&all).fails(EXIT_FAILURE, needles);
    }
    let garbage = lab.write("garbage.card.toml", b"this is not a card");
    p.run(&["pro", "add", "--card", s(&garbage)])
        .fails(EXIT_FAILURE, &["not a carnet contact card"]);
    let out = p.run(&["pro", "add", "--card", s(&jeanne.card), "--key", &fresh]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{}", out.stderr);
    assert_eq!(
        p.ok(&["pro", "ls", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // A Luhn-failing RPPS by hand: accepted with a warning.
    let out = p.ok(&[
        "pro",
        "add",
        "--name",
        "Test",
        "--key",
        &fresh,
        "--rpps",
        "10003461033",
    ]);
    assert!(out.stderr.contains("warning:") && out.stderr.contains("Luhn"));
    assert_eq!(p.log_actions("pro-add").len(), 6);
}

#[test]
fn pro_commands_take_a_handle_or_an_rpps_or_adeli_number() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let jeanne = lab.keygen(
        "Dr Jeanne Martin",
        "j.key",
        true,
        &["--rpps", "10005173140"],
    );
    let paul = lab.keygen("Paul Roux", "p.key", true, &["--adeli", "2A1234567"]);
    p.add_pro(&jeanne);
    p.add_pro(&paul);
    p.add("bilan.txt", b"bilan sanguin\n", &["--date", "2024-03-01"]);
    let blocked = |h: &str| -> bool {
        let ls = p.ok(&["pro", "ls", "--json"]).json();
        ls.as_array()
            .unwrap()
            .iter()
            .find(|x| x["handle"] == h)
            .unwrap_or_else(|| panic!("{h} not listed"))["blocked"]
            .as_bool()
            .unwrap()
    };
    let out_dir = lab.path("out/x");
    let out_dir = out_dir.parent().unwrap();

    // Block by RPPS; a grant by handle or by RPPS is then refused.
    let out = p.ok(&["pro", "block", "10005173140"]);
    assert!(
        out.stderr.contains("Blocked jeanne-martin"),
        "{}",
        out.stderr
    );
    assert!(blocked("jeanne-martin") && !blocked("paul-roux"));
    assert!(p.ok(&["pro", "ls"]).text().contains("[blocked]"));
    for who in ["jeanne-martin", "10005173140"] {
        let f = out_dir.join("refused.age");
        p.run(&[
            "grant",
            "--to",
            who,
            "--all",
            "--expires",
            "7d",
            "-o",
            s(&f),
        ])
        .fails(EXIT_FAILURE, &["jeanne-martin is blocked"]);
        assert!(!f.exists());
    }
    let again = p.ok(&["pro", "block", "jeanne-martin"]);
    assert!(again.stderr.contains("already blocked"));
    // Unblock by handle: granting by RPPS works again, and the bundle opens.
    p.ok(&["pro", "unblock", "jeanne-martin"]);
    assert!(!blocked("jeanne-martin"));
    let b1 = out_dir.join("j.age");
    p.grant(&[
        "--to",
        "10005173140",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&b1),
    ]);
    lab.open(&jeanne, &b1, &["--list"]).ok();

    // ADELI, in either case.
    p.ok(&["pro", "block", "2a1234567"]);
    assert!(blocked("paul-roux"));
    p.ok(&["pro", "unblock", "2A1234567"]);
    assert!(!blocked("paul-roux"));
    let b2 = out_dir.join("p.age");
    let g = p.grant(&[
        "--to",
        "2A1234567",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&b2),
    ]);
    assert_eq!(strs(&g["to"]), ["paul-roux"]);
    lab.open(&paul, &b2, &["--list"]).ok();

    // Remove by ADELI and by handle; unknown names are refused.
    p.ok(&["pro", "rm", "2A1234567"]);
    p.ok(&["pro", "rm", "jeanne-martin"]);
    assert_eq!(p.ok(&["pro", "ls", "--json"]).json(), serde_json::json!([]));
    for cmd in ["rm", "block", "unblock"] {
        p.run(&["pro", cmd, "jeanne-martin"])
            .fails(EXIT_FAILURE, &["no professional \"jeanne-martin\""]);
    }
    p.run(&[
        "grant",
        "--to",
        "2A1234567",
        "--all",
        "--expires",
        "7d",
        "-o",
        "-",
    ])
    .fails(EXIT_FAILURE, &["no professional"]);
    // The grants already issued stay on record.
    assert_eq!(p.grants(&[]).len(), 2);
    let log = p.log();
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["pro-block", "pro-unblock", "pro-rm"] {
        assert_eq!(
            actions.iter().filter(|x| **x == a).count(),
            2,
            "{a}: {actions:?}"
        );
    }
}

// =============================================================================================
// grant and open: round trips

/// The files `open -o DIR` wrote, checked against the terms: exactly the terms, signature,
/// README and the documents, each with the size and SHA-256 the terms give. Returns the
/// documents' bytes by title.
fn extracted_by_title(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut got = files(dir);
    let terms: toml::Table =
        toml::from_str(std::str::from_utf8(&got["grant.toml"]).unwrap()).unwrap();
    assert!(got.remove("grant.toml.minisig").is_some());
    assert!(got.remove("LISEZMOI-README.txt").is_some());
    got.remove("grant.toml");
    let mut by_title = std::collections::BTreeMap::new();
    for d in terms["documents"].as_array().unwrap() {
        let path = d["path"].as_str().unwrap();
        let bytes = got
            .remove(path)
            .unwrap_or_else(|| panic!("{path} was not extracted"));
        assert_eq!(
            bytes.len() as i64,
            d["size"].as_integer().unwrap(),
            "{path}"
        );
        assert_eq!(sha256_hex(&bytes), d["sha256"].as_str().unwrap(), "{path}");
        by_title.insert(d["title"].as_str().unwrap().to_string(), bytes);
    }
    assert!(got.is_empty(), "extra files extracted: {:?}", got.keys());
    by_title
}

/// No staging folder left beside `dir`.
fn assert_no_staging(parent: &Path) {
    for e in fs::read_dir(parent).unwrap() {
        let n = e.unwrap().file_name();
        assert!(
            !n.to_string_lossy().starts_with(".carnet-open-"),
            "staging folder {n:?} left in {}",
            parent.display()
        );
    }
}

#[test]
fn grant_then_open_round_trips_every_byte_for_each_recipient() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    // A protected key and an unprotected one.
    let jeanne = lab.keygen(
        "Dr Jeanne Martin",
        "j.key",
        false,
        &["--rpps", "10005173140"],
    );
    let paul = lab.keygen("Paul Roux", "p.key", true, &["--adeli", "2A1234567"]);
    p.add_pro(&jeanne);
    p.add_pro(&paul);

    let big = pseudo_random(2 * 1024 * 1024 + 17, 1);
    let cr = "Échographie : foie normal, pas d'épanchement.\n"
        .as_bytes()
        .to_vec();
    let ord1 = b"Amoxicilline 1 g, 3 fois par jour\n".to_vec();
    let ord2 = b"Paracetamol 1 g si douleur\n".to_vec();
    let mut want = std::collections::BTreeMap::new();
    let irm = p.add(
        "irm.bin",
        &big,
        &[
            "--title",
            "IRM cérébrale",
            "--category",
            "imagerie",
            "--date",
            "2024-03-01",
        ],
    );
    let empty = p.add(
        "vide.txt",
        b"",
        &["--title", "Fichier vide", "--date", "2024-03-02"],
    );
    let slash = "Compte-rendu 1/2 échographie été";
    p.add(
        "cr.txt",
        &cr,
        &[
            "--title",
            slash,
            "--category",
            "compte-rendu",
            "--date",
            "2024-03-03",
        ],
    );
    // Two documents with the same title and date get distinct paths.
    for (i, b) in [&ord1, &ord2].into_iter().enumerate() {
        p.add(
            &format!("ord{i}.txt"),
            b,
            &[
                "--title",
                "Ordonnance",
                "--category",
                "prescription",
                "--date",
                "2024-03-04",
                "--tag",
                "partage",
            ],
        );
    }
    // Not selected: must not travel.
    p.add(
        "secret.txt",
        b"secret\n",
        &["--title", "Secret", "--date", "2024-03-05"],
    );
    want.insert("IRM cérébrale".to_string(), big.clone());
    want.insert("Fichier vide".to_string(), Vec::new());
    want.insert(slash.to_string(), cr.clone());

    let bundle = lab.path("outbox/partage.age");
    let g = p.grant(&[
        "--to",
        "jeanne-martin",
        "--to",
        "2A1234567",
        "--doc",
        &irm,
        &empty,
        "--category",
        "compte-rendu",
        "--tag",
        "partage",
        "--expires",
        "7d",
        "--purpose",
        "avis cardiologie",
        "-o",
        s(&bundle),
    ]);
    assert_eq!(g["documents"], 5);
    assert_eq!(strs(&g["to"]), ["jeanne-martin", "paul-roux"]);
    assert_eq!(
        g["bundle_sha256"].as_str().unwrap(),
        sha256_hex(&fs::read(&bundle).unwrap())
    );
    let fp = g["patient_fingerprint"].as_str().unwrap().to_string();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    // Only ciphertext on disk.
    let raw = fs::read(&bundle).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1\n"));
    assert!(!raw.windows(8).any(|w| w == b"Ordonnan"));

    // Each recipient opens the same bundle; every byte comes back.
    for (n, pro) in [&jeanne, &paul].into_iter().enumerate() {
        let parent = lab.path(&format!("recv{n}/x"));
        let parent = parent.parent().unwrap();
        let dir = parent.join("marie");
        let out = lab.open(pro, &bundle, &["-o", s(&dir)]).ok();
        let shown = out.text();
        for needle in [
            "Marie Dupont",
            fp.as_str(),
            "avis cardiologie",
            "IRM cérébrale",
        ] {
            assert!(
                shown.contains(needle),
                "terms should show {needle:?}:\n{shown}"
            );
        }
        assert!(
            out.stderr.contains("Extracted 5 document(s)"),
            "{}",
            out.stderr
        );
        let got = extracted_by_title(&dir);
        assert_eq!(got.len(), 4, "titles: {:?}", got.keys());
        for (title, bytes) in &want {
            assert_bytes_eq(&got[title], bytes, title);
        }
        // The twin titles both came back (in the map once, so check the files).
        let ords: Vec<Vec<u8>> = [
            "documents/prescription/2024-03-04 Ordonnance.txt",
            "documents/prescription/2024-03-04 Ordonnance (2).txt",
        ]
        .iter()
        .map(|r| fs::read(dir.join(r)).unwrap())
        .collect();
        assert!(
            ords == [ord1.clone(), ord2.clone()] || ords == [ord2.clone(), ord1.clone()],
            "both prescriptions extracted"
        );
        // '/' in a title stays inside one file name; accents are kept.
        let cr_path =
            dir.join("documents/compte-rendu/2024-03-03 Compte-rendu 1_2 échographie été.txt");
        assert_bytes_eq(&fs::read(&cr_path).unwrap(), &cr, "the title with a slash");
        assert_eq!(
            fs::read(dir.join("documents/autre/2024-03-02 Fichier vide.txt")).unwrap(),
            b""
        );
        assert_no_staging(parent);
    }
    let terms = fs::read_to_string(lab.root.join("recv0/marie/grant.toml")).unwrap();
    assert!(
        !terms.contains("Secret"),
        "an unselected document was shared"
    );

    // --list checks and shows, writes nothing; --json reports the grant.
    let before = snapshot(&lab.root.join("recv1"));
    let out = lab.open(&paul, &bundle, &["--list"]).ok();
    assert!(out.text().contains("avis cardiologie"));
    let rep = lab.open(&paul, &bundle, &["--list", "--json"]).ok().json();
    assert_eq!(rep["grant"], g["id"]);
    assert_eq!(rep["status"], "active");
    assert_eq!(rep["patient"], "Marie Dupont");
    assert_eq!(rep["fingerprint"].as_str(), Some(fp.as_str()));
    assert_eq!(rep["purpose"], "avis cardiologie");
    assert_eq!(rep["documents"].as_array().unwrap().len(), 5);
    assert_eq!(strs(&rep["recipients"]), ["Dr Jeanne Martin", "Paul Roux"]);
    assert!(rep["extracted_to"].is_null());
    assert_same(
        &before,
        &snapshot(&lab.root.join("recv1")),
        "the folder after --list",
    );
}

#[test]
fn armored_and_stdout_bundles_open_the_same_way() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let paul = lab.keygen("Paul Roux", "p.key", true, &[]);
    p.add_pro(&paul);
    let doc = pseudo_random(150_000, 2);
    p.add(
        "radio.bin",
        &doc,
        &["--title", "Radio", "--date", "2024-03-01"],
    );
    let check = |bundle: &Path, tag: &str| {
        let dir = lab.root.join(format!("recv-{tag}"));
        lab.open(&paul, bundle, &["-o", s(&dir)]).ok();
        assert_bytes_eq(&extracted_by_title(&dir)["Radio"], &doc, tag);
    };

    // --armor to a file.
    let armored = lab.path("outbox/armored.age");
    p.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "--armor",
        "-o",
        s(&armored),
    ]);
    let text = fs::read(&armored).unwrap();
    assert!(text.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
    assert!(
        text.trim_ascii_end()
            .ends_with(b"-----END AGE ENCRYPTED FILE-----")
    );
    assert!(text.is_ascii(), "armor is plain ASCII, for an email body");
    check(&armored, "armored-file");

    // -o -: the bundle on stdout, its SHA-256 in the log, the messages on stderr.
    for (armor, tag) in [(false, "stdout"), (true, "stdout-armored")] {
        let mut args = vec![
            "grant",
            "--to",
            "paul-roux",
            "--all",
            "--expires",
            "7d",
            "-o",
            "-",
        ];
        if armor {
            args.push("--armor");
        }
        let out = p.ok(&args);
        assert!(
            out.stderr.contains("Granted 1 document(s)"),
            "{}",
            out.stderr
        );
        let head: &[u8] = if armor {
            b"-----BEGIN AGE ENCRYPTED FILE-----\n"
        } else {
            b"age-encryption.org/v1\n"
        };
        assert!(
            out.stdout.starts_with(head),
            "{tag}: stdout is the bundle alone"
        );
        let logged = p.log_actions("grant").last().unwrap().clone();
        assert_eq!(logged["details"]["output"], "-");
        assert_eq!(
            logged["details"]["bundle_sha256"].as_str().unwrap(),
            sha256_hex(&out.stdout),
            "{tag}: the log records the SHA-256 of the bytes written"
        );
        let f = lab.write(&format!("outbox/{tag}.age"), &out.stdout);
        check(&f, tag);
    }
}

#[test]
fn grant_json_to_stdout_keeps_the_bundle_intact() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let paul = lab.keygen("Paul Roux", "p.key", true, &[]);
    p.add_pro(&paul);
    p.add("a.txt", b"a\n", &[]);
    for armor in [false, true] {
        let mut args = vec![
            "grant",
            "--json",
            "--to",
            "paul-roux",
            "--all",
            "--expires",
            "7d",
            "-o",
            "-",
        ];
        if armor {
            args.push("--armor");
        }
        // The JSON report and the bundle cannot share stdout: refused before anything is
        // written or logged.
        let out = p.run(&args);
        out.fails(1, &["--json and -o - would both write to standard output"]);
        assert!(out.stdout.is_empty(), "nothing on stdout:\n{}", out);
    }
}

// =============================================================================================
// Interoperability with the reference tools

#[test]
fn age_cli_decrypts_bundles_and_unzip_accepts_them() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let Some(unzip) = require_tool(Tool::Unzip) else {
        return;
    };
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let paul = lab.keygen("Paul Roux", "p.key", true, &["--adeli", "751234567"]);
    p.add_pro(&paul);
    let doc = pseudo_random(300_000, 3);
    p.add(
        "irm.bin",
        &doc,
        &[
            "--title",
            "IRM été",
            "--category",
            "imagerie",
            "--date",
            "2024-03-01",
        ],
    );
    p.add(
        "vide.txt",
        b"",
        &["--title", "Vide", "--date", "2024-03-02"],
    );

    for armor in [false, true] {
        let tag = if armor { "armored" } else { "binary" };
        let bundle = lab.path(&format!("{tag}/bundle.age"));
        let mut args = vec![
            "--to",
            "paul-roux",
            "--all",
            "--expires",
            "7d",
            "-o",
            s(&bundle),
        ];
        if armor {
            args.push("--armor");
        }
        p.grant(&args);
        let zip = lab.root.join(tag).join("x.zip");
        let out = Command::new(&age)
            .args(["-d", "-i", s(&paul.key), "-o", s(&zip), s(&bundle)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tag}: age -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&unzip).args(["-t", s(&zip)]).output().unwrap();
        let so = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{tag}: unzip -t: {so}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(so.contains("No errors detected"), "{so}");
        // Extracted with unzip alone, the documents are whole and where the terms say.
        let dir = lab.root.join(tag).join("unzipped");
        let out = Command::new(&unzip)
            .args(["-q", s(&zip), "-d", s(&dir)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "unzip: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = extracted_by_title(&dir);
        assert_bytes_eq(&got["IRM été"], &doc, "unzipped document");
        assert!(
            dir.join("documents/imagerie/2024-03-01 IRM été.bin")
                .is_file(),
            "UTF-8 names"
        );
        let readme = fs::read_to_string(dir.join("LISEZMOI-README.txt")).unwrap();
        assert!(
            readme.contains("age -d -i") && readme.contains("carnet open"),
            "{readme}"
        );
    }
}

#[test]
fn a_professional_added_by_ssh_key_decrypts_with_the_age_cli() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let line = ssh_ed25519_line(21, "elise@cabinet");
    let key = lab.write(
        "keys/id_ed25519",
        ssh_ed25519_private_key(21, "elise@cabinet").as_bytes(),
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    p.ok(&["pro", "add", "--name", "Dr Élise Bérard", "--key", &line]);
    let doc = pseudo_random(70_000, 4);
    p.add(
        "scan.bin",
        &doc,
        &["--title", "Scanner", "--date", "2024-03-01"],
    );
    let bundle = lab.path("b.age");
    p.grant(&[
        "--to",
        "elise-berard",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&bundle),
    ]);
    let zip = lab.root.join("b.zip");
    let out = Command::new(&age)
        .args(["-d", "-i", s(&key), "-o", s(&zip), s(&bundle)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d -i id_ed25519: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = zip_read(&fs::read(&zip).unwrap());
    let e = entries
        .iter()
        .find(|e| e.name == "documents/autre/2024-03-01 Scanner.bin")
        .expect("the document is in the zip");
    assert_bytes_eq(&e.data, &doc, "document decrypted with the SSH key");
}

#[test]
fn minisign_verifies_the_extracted_terms() {
    let Some(minisign) = require_tool(Tool::Minisign) else {
        return;
    };
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let paul = lab.keygen("Paul Roux", "p.key", true, &[]);
    p.add_pro(&paul);
    p.add("a.txt", b"a\n", &[]);
    let bundle = lab.path("b.age");
    let g = p.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&bundle),
    ]);
    let dir = lab.root.join("recv");
    lab.open(&paul, &bundle, &["-o", s(&dir)]).ok();
    let terms: toml::Table =
        toml::from_str(&fs::read_to_string(dir.join("grant.toml")).unwrap()).unwrap();
    let key = terms["patient"]["signing_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        terms["patient"]["fingerprint"].as_str(),
        g["patient_fingerprint"].as_str()
    );
    let verify = |msg: &Path| {
        Command::new(&minisign)
            .args([
                "-V",
                "-m",
                s(msg),
                "-x",
                s(&dir.join("grant.toml.minisig")),
                "-P",
                &key,
            ])
            .output()
            .unwrap()
    };
    let out = verify(&dir.join("grant.toml"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "minisign -V: {all}");
    assert!(
        all.contains("Signature and comment signature verified"),
        "{all}"
    );
    assert!(
        all.contains(&format!("carnet grant {}", g["id"].as_str().unwrap())),
        "the trusted comment names the grant: {all}"
    );
    // And minisign does notice a change (the test would prove nothing otherwise).
    let mut altered = fs::read(dir.join("grant.toml")).unwrap();
    altered.extend_from_slice(b"# more\n");
    let f = lab.write("altered.toml", &altered);
    assert!(
        !verify(&f).status.success(),
        "minisign accepted altered terms"
    );
}

// =============================================================================================
// Validity: exit 4

#[test]
fn expired_and_not_yet_valid_grants_are_refused_with_exit_4() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let paul = lab.keygen("Paul Roux", "p.key", true, &[]);
    p.add_pro(&paul);
    p.add("a.txt", b"a\n", &[]);
    let soon = lab.path("outbox/soon.age");
    let later = lab.path("outbox/later.age");
    let g1 = p.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "1h",
        "-o",
        s(&soon),
    ]);
    let g2 = p.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--not-before",
        "2099-01-01T00:00:00Z",
        "--expires",
        "2099-02-01T00:00:00Z",
        "-o",
        s(&later),
    ]);
    assert_eq!(g2["not_before"], "2099-01-01T00:00:00Z");
    // `grants --json` on the patient's side, at `now` (CARNET_NOW) or by the clock.
    let grants_at = |now: Option<&str>, extra: &[&str]| -> Vec<Value> {
        let mut c = lab.cmd();
        c.env("CARNET_PASSPHRASE", PATIENT_PASS)
            .arg("--vault")
            .arg(&p.vault)
            .args(["grants", "--json"])
            .args(extra);
        if let Some(t) = now {
            c.env("CARNET_NOW", t);
        }
        c.ok().json().as_array().unwrap().clone()
    };
    let status = |now: Option<&str>, id: &Value| -> String {
        grants_at(now, &[]).iter().find(|g| g["id"] == *id).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status(None, &g2["id"]), "not-yet-valid");
    assert_eq!(status(None, &g1["id"]), "active");
    lab.open(&paul, &soon, &["--list"]).ok();

    // `carnet open` as Paul (an unprotected key), at `now` or by the clock.
    let open_at = |now: Option<&str>, bundle: &Path, args: &[&str]| -> Out {
        let mut c = lab.cmd();
        c.arg("open")
            .arg(bundle)
            .arg("-i")
            .arg(&paul.key)
            .args(args);
        if let Some(t) = now {
            c.env("CARNET_NOW", t);
        }
        c.run()
    };
    let recv = lab.path("recv/keep.txt");
    fs::write(&recv, b"keep").unwrap();
    let recv = recv.parent().unwrap().to_path_buf();
    let refused = |now: Option<&str>, bundle: &Path, needles: &[&str]| {
        let before = snapshot(&recv);
        let out = open_at(now, bundle, &["-o", s(&recv.join("out"))]);
        out.fails(EXIT_VALIDITY, needles);
        assert_same(&before, &snapshot(&recv), "the target's parent");
        let out = open_at(now, bundle, &["--list"]);
        out.fails(EXIT_VALIDITY, needles);
    };
    refused(None, &later, &["not valid before"]);

    // One second past the expiry the grant recorded, without waiting for it.
    let expires: jiff::Timestamp = g1["expires"].as_str().unwrap().parse().unwrap();
    let past = (expires + jiff::SignedDuration::from_secs(1)).to_string();
    refused(Some(&past), &soon, &["expired"]);
    assert_eq!(status(Some(&past), &g1["id"]), "expired");
    assert!(grants_at(Some(&past), &["--active"]).is_empty());
    // The last second of the grant is still inside it.
    let last = (expires - jiff::SignedDuration::from_secs(1)).to_string();
    open_at(Some(&last), &soon, &["--list"]).ok();
    // And the later grant opens once its time has come.
    open_at(Some("2099-01-15T00:00:00Z"), &later, &["--list"]).ok();
}

#[test]
fn a_malformed_carnet_now_is_a_usage_error_naming_it() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    for bad in ["tomorrow", "2026-13-01T00:00:00Z", "2026-03-14"] {
        let out = lab
            .cmd()
            .env("CARNET_NOW", bad)
            .env("CARNET_PASSPHRASE", PATIENT_PASS)
            .arg("--vault")
            .arg(&p.vault)
            .args(["grants"])
            .run();
        let line = out.fails(EXIT_USAGE, &["CARNET_NOW", bad]);
        assert!(out.stdout.is_empty(), "{out}");
        assert!(
            out.stderr
                .lines()
                .nth(1)
                .is_some_and(|h| h.starts_with("hint: ")),
            "{line}{out}"
        );
    }
}

// =============================================================================================
// Hostile and altered bundles

/// A patient, a professional with an unprotected key, and a genuine bundle to that
/// professional (two documents, the second one spanning several age chunks).
struct Hostile {
    lab: Lab,
    pro: Pro,
    genuine: PathBuf,
    fingerprint: String,
}

const RADIO_LEN: usize = 200_000;
const ORDONNANCE: &[u8] = b"Amoxicilline 1 g, trois fois par jour pendant 7 jours.\n";

/// The genuine bundle and the professional's key, made once for all the hostile tests (each
/// copies them into its own temp folder): the vault that made them is gone by then.
struct HostileSeed {
    key: Vec<u8>,
    card: Vec<u8>,
    recipient: String,
    bundle: Vec<u8>,
    fingerprint: String,
}

static HOSTILE_SEED: std::sync::OnceLock<HostileSeed> = std::sync::OnceLock::new();

fn hostile_seed() -> HostileSeed {
    let lab = Lab::new();
    let patient = lab.patient("marie", "Marie Dupont");
    let pro = lab.keygen("Paul Roux", "paul.key", true, &["--adeli", "751234567"]);
    patient.add_pro(&pro);
    patient.add(
        "ordonnance.txt",
        ORDONNANCE,
        &[
            "--title",
            "Ordonnance",
            "--category",
            "prescription",
            "--date",
            "2024-03-01",
        ],
    );
    patient.add(
        "radio.bin",
        &pseudo_random(RADIO_LEN, 5),
        &[
            "--title",
            "Radio thorax",
            "--category",
            "imagerie",
            "--date",
            "2024-03-02",
        ],
    );
    let genuine = lab.path("bundles/genuine.age");
    let g = patient.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&genuine),
    ]);
    HostileSeed {
        key: fs::read(&pro.key).unwrap(),
        card: fs::read(&pro.card).unwrap(),
        recipient: pro.recipient,
        bundle: fs::read(&genuine).unwrap(),
        fingerprint: g["patient_fingerprint"].as_str().unwrap().to_string(),
    }
}

fn hostile() -> Hostile {
    let seed = HOSTILE_SEED.get_or_init(hostile_seed);
    let lab = Lab::new();
    let pro = Pro {
        key: lab.write("keys/paul.key", &seed.key),
        card: lab.write("keys/paul.card.toml", &seed.card),
        recipient: seed.recipient.clone(),
        passphrase: None,
    };
    let genuine = lab.write("bundles/genuine.age", &seed.bundle);
    Hostile {
        lab,
        pro,
        genuine,
        fingerprint: seed.fingerprint.clone(),
    }
}

impl Hostile {
    fn unpacked(&self) -> Unpacked {
        Unpacked::of(&self.genuine, &self.pro)
    }

    /// The genuine bundle, changed by `f`, re-zipped and re-encrypted to the professional.
    fn crafted(&self, name: &str, f: impl FnOnce(&mut Unpacked)) -> PathBuf {
        let mut u = self.unpacked();
        f(&mut u);
        let out = self.lab.path(&format!("bundles/{name}.age"));
        u.seal(&self.pro.recipient, &out);
        out
    }

    fn bytes(&self, name: &str, bytes: &[u8]) -> PathBuf {
        self.lab.write(&format!("bundles/{name}.age"), bytes)
    }

    /// Opens `bundle -o recv/out` and asserts it is refused with `code` and `needles`, and
    /// that nothing was written: not in the target's parent folder, not beside the root.
    fn refused(&self, bundle: &Path, code: i32, needles: &[&str], extra: &[&str]) -> String {
        let recv = self.lab.root.join("recv");
        fs::create_dir_all(&recv).unwrap();
        fs::write(recv.join("already-here.txt"), b"x").unwrap();
        let before = snapshot(&recv);
        let before_root: Vec<_> = fs::read_dir(&self.lab.root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let mut args = vec!["-o".to_string(), s(&recv.join("out")).to_string()];
        args.extend(extra.iter().map(|x| x.to_string()));
        let out = self.lab.open(&self.pro, bundle, &args);
        let line = out.fails(code, needles);
        assert_same(&before, &snapshot(&recv), "the target's parent folder");
        let mut after_root: Vec<_> = fs::read_dir(&self.lab.root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        // (The professional's remembered-patients file, in pro-config/, is not the target.)
        after_root.retain(|n| !before_root.contains(n) && n != "pro-config");
        assert!(
            after_root.is_empty(),
            "written beside the target: {after_root:?}"
        );
        assert!(
            !Path::new(&evil_abs()).exists(),
            "written at an absolute path"
        );
        line
    }
}

impl Hostile {
    /// The genuine bundle with its terms (and entries) changed by `f`, then signed by `key`
    /// which the terms name as the patient's: what anyone can send in the patient's name.
    fn signed_by(
        &self,
        key: &MinisignKey,
        name: &str,
        f: impl FnOnce(&mut toml::Table, &mut Unpacked),
    ) -> PathBuf {
        self.crafted(name, |u| {
            let mut t = u.terms();
            f(&mut t, u);
            let pt = t["patient"].as_table_mut().unwrap();
            pt.insert("signing_key".into(), key.public().into());
            pt.insert("fingerprint".into(), key.fingerprint().into());
            let text = toml::to_string(&t).unwrap();
            u.get_mut("grant.toml.minisig").data = key
                .sign(text.as_bytes(), "carnet grant hostile")
                .into_bytes();
            u.get_mut("grant.toml").data = text.into_bytes();
        })
    }
}

/// The `[[documents]]` table at `i` of terms being edited.
fn doc_mut(t: &mut toml::Table, i: usize) -> &mut toml::Table {
    t["documents"].as_array_mut().unwrap()[i]
        .as_table_mut()
        .unwrap()
}

/// Renames document `i` in the terms and its entry in the zip.
fn rename_doc(t: &mut toml::Table, u: &mut Unpacked, i: usize, new: &str) {
    let d = doc_mut(t, i);
    let old = d["path"].as_str().unwrap().to_string();
    d.insert("path".into(), new.into());
    u.get_mut(&old).name = new.to_string();
}

fn evil_abs() -> String {
    format!("/tmp/carnet-grants-evil-{}.txt", std::process::id())
}

#[test]
fn the_genuine_hostile_fixture_opens() {
    // The baseline every hostile case departs from: untouched, and merely re-zipped by the
    // test's own zip writer, the bundle opens.
    let h = hostile();
    let dir = h.lab.root.join("ok1");
    h.lab.open(&h.pro, &h.genuine, &["-o", s(&dir)]).ok();
    assert_eq!(
        extracted_by_title(&dir)["Radio thorax"],
        pseudo_random(RADIO_LEN, 5)
    );
    let u = h.unpacked();
    let names: Vec<&str> = u.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "grant.toml",
            "grant.toml.minisig",
            "LISEZMOI-README.txt",
            "documents/prescription/2024-03-01 Ordonnance.txt",
            "documents/imagerie/2024-03-02 Radio thorax.bin",
        ]
    );
    let rezipped = h.crafted("rezipped", |_| {});
    let dir = h.lab.root.join("ok2");
    h.lab.open(&h.pro, &rezipped, &["-o", s(&dir)]).ok();
    assert_eq!(extracted_by_title(&dir).len(), 2);
}

#[test]
fn a_flipped_byte_anywhere_is_refused_with_exit_3() {
    let h = hostile();
    let good = fs::read(&h.genuine).unwrap();
    let header_end = good.windows(4).position(|w| w == b"--- ").unwrap();
    let flip = |at: usize, name: &str| {
        let mut b = good.clone();
        b[at] ^= 0x01;
        h.bytes(name, &b)
    };
    // In a document's chunk (checked while extracting, so staging must vanish), in the last
    // chunk (the zip's directory), in the first chunk (the terms), and in the header's MAC.
    let mid = flip(good.len() / 2, "flip-mid");
    h.refused(&mid, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
    let last = flip(good.len() - 3, "flip-last");
    h.refused(&last, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
    let first = flip(header_end + 4 + 44 + 16 + 10, "flip-first-chunk");
    h.refused(&first, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
    let mut b = good.clone();
    let mac = header_end + 4;
    b[mac] = if b[mac] == b'A' { b'B' } else { b'A' };
    let mac = h.bytes("flip-mac", &b);
    h.refused(&mac, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
}

#[test]
fn truncated_bundles_are_refused() {
    let h = hostile();
    let good = fs::read(&h.genuine).unwrap();
    let header_end = good.windows(4).position(|w| w == b"--- ").unwrap() + 4 + 44;
    for (n, len) in [
        good.len() - 1,
        good.len() - 17,
        good.len() / 2,
        header_end + 16 + 40,
    ]
    .into_iter()
    .enumerate()
    {
        let f = h.bytes(&format!("cut{n}"), &good[..len]);
        h.refused(&f, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
    }
    // Cut inside the age header: still a damaged bundle (exit 3), since it starts as one.
    for (n, len) in [30, header_end - 10].into_iter().enumerate() {
        let f = h.bytes(&format!("cut-header{n}"), &good[..len]);
        h.refused(
            &f,
            EXIT_INTEGRITY,
            &["truncated or damaged age header"],
            &[],
        );
    }
    // Cut to nothing: no longer recognisable, so "not a carnet bundle" (exit 1).
    let f = h.bytes("cut-empty", &good[..0]);
    h.refused(
        &f,
        EXIT_FAILURE,
        &["not a carnet bundle", "not an age file"],
        &[],
    );
}

#[test]
fn the_wrong_key_is_told_the_bundle_is_not_for_it() {
    let h = hostile();
    let third = h.lab.keygen("Dr Tiers", "third.key", true, &[]);
    let recv = h.lab.root.join("recv");
    fs::create_dir_all(&recv).unwrap();
    let before = snapshot(&recv);
    let out = h
        .lab
        .open(&third, &h.genuine, &["-o", s(&recv.join("out"))]);
    out.fails(EXIT_FAILURE, &["not addressed to your key"]);
    assert!(out.stdout.is_empty());
    assert_same(&before, &snapshot(&recv), "the target's parent folder");
    // A protected key with the wrong passphrase is refused too.
    let prot = h.lab.keygen("Dr Prot", "prot.key", false, &[]);
    let wrong = Pro {
        passphrase: Some("not the passphrase".into()),
        ..prot
    };
    let out = h.lab.open(&wrong, &h.genuine, &["--list"]);
    assert_eq!(out.code, Some(EXIT_FAILURE), "{}", out.stderr);
    // And no key at all.
    let out = h.lab.run(None, &["open", s(&h.genuine), "--list"]);
    out.fails(EXIT_FAILURE, &["no key given"]);
    assert!(out.stderr.contains("-i KEYFILE"));
}

#[test]
fn altered_or_resigned_terms_are_refused() {
    let h = hostile();
    let attacker = MinisignKey::from_seed(66);
    // (a) Terms edited, the patient's signature kept.
    let edited = h.crafted("edited", |u| {
        let t = u.terms_text().replace("2024-03-02", "2024-03-09");
        assert_ne!(t, u.terms_text());
        u.get_mut("grant.toml").data = t.into_bytes();
    });
    h.refused(&edited, EXIT_INTEGRITY, &["signature does not hold"], &[]);

    // (b) Documents replaced, terms rewritten to match and re-signed by another key, in the
    // same patient's name.
    let resign = |u: &mut Unpacked, fingerprint: &str| {
        let path = u.path_of("Radio thorax");
        let forged = pseudo_random(RADIO_LEN, 99);
        u.get_mut(&path).data = forged.clone();
        let mut t = u.terms();
        for d in t["documents"].as_array_mut().unwrap() {
            if d["path"].as_str() == Some(path.as_str()) {
                d.as_table_mut()
                    .unwrap()
                    .insert("sha256".into(), sha256_hex(&forged).into());
            }
        }
        let pt = t["patient"].as_table_mut().unwrap();
        pt.insert("signing_key".into(), attacker.public().into());
        pt.insert("fingerprint".into(), fingerprint.into());
        let text = toml::to_string(&t).unwrap();
        u.get_mut("grant.toml.minisig").data = attacker
            .sign(text.as_bytes(), "carnet grant forged")
            .into_bytes();
        u.get_mut("grant.toml").data = text.into_bytes();
    };
    let forged = h.crafted("forged", |u| resign(u, &attacker.fingerprint()));
    let line = h.refused(
        &forged,
        EXIT_INTEGRITY,
        &[
            &attacker.fingerprint(),
            "not by the expected",
            &h.fingerprint,
        ],
        &["--from", &h.fingerprint],
    );
    assert!(line.contains("signed by"), "{line}");
    // Without --from the signature itself holds, but the professional saw the patient's key
    // before: a bundle in the same name from another key is refused, naming both keys.
    h.lab.open(&h.pro, &h.genuine, &["--list"]).ok();
    h.lab.open(&h.pro, &forged, &["--list"]).fails(
        EXIT_INTEGRITY,
        &[&h.fingerprint, &attacker.fingerprint(), "refused"],
    );

    // (c) Another key, but the patient's fingerprint claimed in the terms.
    let claimed = h.crafted("claimed", |u| resign(u, &h.fingerprint));
    h.refused(
        &claimed,
        EXIT_INTEGRITY,
        &["fingerprint in the terms is not that of the signing key"],
        &[],
    );

    // (d) The patient's key in the terms, signed by another key.
    let swapped = h.crafted("swapped", |u| {
        let sig = attacker.sign(u.terms_text().as_bytes(), "carnet grant x");
        u.get_mut("grant.toml.minisig").data = sig.into_bytes();
    });
    h.refused(
        &swapped,
        EXIT_INTEGRITY,
        &["signature does not hold", "another key"],
        &[],
    );

    // (e) No signature at all; a mangled one; a trusted comment altered.
    let unsigned = h.crafted("unsigned", |u| {
        u.entries.retain(|e| e.name != "grant.toml.minisig")
    });
    h.refused(
        &unsigned,
        EXIT_INTEGRITY,
        &["grant.toml.minisig is missing"],
        &[],
    );
    let mangled = h.crafted("mangled", |u| {
        u.get_mut("grant.toml.minisig").data = b"untrusted comment: x\nnope\n".to_vec();
    });
    h.refused(&mangled, EXIT_INTEGRITY, &["signature does not hold"], &[]);
    let comment = h.crafted("comment", |u| {
        let s = String::from_utf8(u.get("grant.toml.minisig").data.clone()).unwrap();
        let s = s.replace(
            "trusted comment: carnet grant",
            "trusted comment: carnet grunt",
        );
        u.get_mut("grant.toml.minisig").data = s.into_bytes();
    });
    h.refused(
        &comment,
        EXIT_INTEGRITY,
        &["signature does not hold", "trusted comment"],
        &[],
    );
}

#[test]
fn terms_spliced_from_another_patients_grant_are_refused() {
    let h = hostile();
    // Another patient grants documents of the same titles, dates, categories and sizes, but
    // other bytes, to the same professional.
    let luc = h.lab.patient("luc", "Luc Bernard");
    luc.add_pro(&h.pro);
    luc.add(
        "ordonnance.txt",
        &ORDONNANCE.to_ascii_uppercase(),
        &[
            "--title",
            "Ordonnance",
            "--category",
            "prescription",
            "--date",
            "2024-03-01",
        ],
    );
    luc.add(
        "radio.bin",
        &pseudo_random(RADIO_LEN, 6),
        &[
            "--title",
            "Radio thorax",
            "--category",
            "imagerie",
            "--date",
            "2024-03-02",
        ],
    );
    let b_bundle = h.lab.path("bundles/luc.age");
    let gb = luc.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&b_bundle),
    ]);
    let b = Unpacked::of(&b_bundle, &h.pro);
    assert_eq!(
        b.documents()
            .iter()
            .map(|d| d["path"].clone())
            .collect::<Vec<_>>(),
        h.unpacked()
            .documents()
            .iter()
            .map(|d| d["path"].clone())
            .collect::<Vec<_>>(),
        "the splice needs the same paths"
    );
    // Luc's signed terms around Marie's documents: the hashes do not match.
    let spliced = h.crafted("spliced", |u| {
        for name in ["grant.toml", "grant.toml.minisig"] {
            u.get_mut(name).data = b.get(name).data.clone();
        }
    });
    h.refused(
        &spliced,
        EXIT_INTEGRITY,
        &["does not match the SHA-256"],
        &[],
    );
    // The same, with Luc's terms naming other documents: Marie's entries are not in them.
    let other = h.lab.patient("other", "Marie Dupont");
    other.add_pro(&h.pro);
    other.add(
        "x.txt",
        b"x\n",
        &["--title", "Autre", "--date", "2024-01-01"],
    );
    let o_bundle = h.lab.path("bundles/other.age");
    other.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&o_bundle),
    ]);
    let o = Unpacked::of(&o_bundle, &h.pro);
    let spliced2 = h.crafted("spliced2", |u| {
        for name in ["grant.toml", "grant.toml.minisig"] {
            u.get_mut(name).data = o.get(name).data.clone();
        }
    });
    h.refused(
        &spliced2,
        EXIT_INTEGRITY,
        &["is not in the signed terms"],
        &[],
    );
    // Luc's genuine bundle, opened expecting Marie's key.
    h.refused(
        &b_bundle,
        EXIT_INTEGRITY,
        &["not by the expected", &h.fingerprint],
        &["--from", &h.fingerprint],
    );
    assert_ne!(
        gb["patient_fingerprint"].as_str(),
        Some(h.fingerprint.as_str())
    );
}

#[test]
fn zip_entries_not_in_the_terms_are_refused() {
    let h = hostile();
    for (n, name) in [
        "documents/prescription/extra.txt",
        "evil.sh",
        "documents/autre/x.txt",
    ]
    .into_iter()
    .enumerate()
    {
        let f = h.crafted(&format!("extra{n}"), |u| {
            u.entries
                .push(ZipEntry::file(name, b"#!/bin/sh\necho pwned\n"))
        });
        h.refused(
            &f,
            EXIT_INTEGRITY,
            &[name, "is not in the signed terms"],
            &[],
        );
    }
    // A document of the terms missing from the zip.
    let path = h.unpacked().path_of("Ordonnance");
    let missing = h.crafted("missing", |u| u.entries.retain(|e| e.name != path));
    h.refused(&missing, EXIT_INTEGRITY, &[&path, "not in the bundle"], &[]);
}

#[test]
fn zip_slip_and_absolute_paths_are_refused() {
    let h = hostile();
    let abs = evil_abs();
    for (n, name) in [
        "../evil.txt",
        "../../evil.txt",
        "documents/../../evil.txt",
        "documents/imagerie/../../../evil.txt",
        abs.as_str(),
    ]
    .into_iter()
    .enumerate()
    {
        let f = h.crafted(&format!("slip{n}"), |u| {
            u.entries.insert(3, ZipEntry::file(name, b"pwned\n"))
        });
        let line = h.refused(&f, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
        assert!(
            line.contains("escape the target folder") || line.contains("not in the signed terms"),
            "{name}: the error names the problem: {line}"
        );
    }
    // The document's own entry renamed to escape (the terms still name the real path).
    let path = h.unpacked().path_of("Ordonnance");
    let renamed = h.crafted("renamed", |u| {
        u.get_mut(&path).name = "../ordonnance.txt".into()
    });
    h.refused(&renamed, EXIT_INTEGRITY, &["escape the target folder"], &[]);
}

#[test]
fn symlink_directory_and_device_entries_are_refused() {
    let h = hostile();
    let path = h.unpacked().path_of("Ordonnance");
    // The document's entry made a symlink.
    let link = h.crafted("symlink", |u| {
        let e = u.get_mut(&path);
        *e = ZipEntry::symlink(&path, "/etc/passwd");
    });
    h.refused(
        &link,
        EXIT_INTEGRITY,
        &[&path, "is not a regular file"],
        &[],
    );
    // An extra symlink entry pointing out of the target.
    let extra = h.crafted("symlink-extra", |u| {
        u.entries.push(ZipEntry::symlink(
            "documents/prescription/lien",
            "../../../../etc",
        ))
    });
    h.refused(&extra, EXIT_INTEGRITY, &["is not a regular file"], &[]);
    // A directory entry and a character device.
    let dir = h.crafted("dir", |u| {
        let mut e = ZipEntry::file("documents/", b"");
        e.mode = 0o040755;
        u.entries.insert(3, e);
    });
    h.refused(&dir, EXIT_INTEGRITY, &["is not a regular file"], &[]);
    let dev = h.crafted("dev", |u| u.get_mut(&path).mode = 0o020644);
    h.refused(&dev, EXIT_INTEGRITY, &[&path, "is not a regular file"], &[]);
}

#[test]
fn a_second_copy_of_the_terms_is_refused() {
    let h = hostile();
    // Two grant.toml: the signed one first, an edited one after it.
    let dup_terms = h.crafted("dup-terms", |u| {
        let t = u.terms_text().replace("Radio thorax", "Radio genou");
        u.entries.push(ZipEntry::file("grant.toml", t.as_bytes()));
    });
    h.refused(&dup_terms, EXIT_INTEGRITY, &["names an entry twice"], &[]);
    // The same name, differing in case only, is a different entry not in the terms.
    let path = h.unpacked().path_of("Ordonnance");
    let case = h.crafted("dup-case", |u| {
        let mut e = u.get(&path).clone();
        e.name = path.to_uppercase();
        u.entries.push(e);
    });
    h.refused(&case, EXIT_INTEGRITY, &["is not in the signed terms"], &[]);
}

#[test]
fn duplicate_entries_are_refused() {
    let h = hostile();
    let path = h.unpacked().path_of("Ordonnance");
    // A forged copy of a document before the genuine one (same name, same size): carnet checks
    // the genuine copy, a reader that takes the first one shows the forgery.
    let forged_first = h.crafted("dup-doc-forged-first", |u| {
        let genuine = u.get(&path).clone();
        let mut forged = genuine.clone();
        forged.data = genuine.data.to_ascii_uppercase();
        let at = u.entries.iter().position(|e| e.name == path).unwrap();
        u.entries.insert(at, forged);
    });
    h.refused(&forged_first, EXIT_INTEGRITY, &["twice"], &[]);
    // An exact duplicate.
    let dup = h.crafted("dup-doc", |u| {
        let e = u.get(&path).clone();
        u.entries.push(e);
    });
    h.refused(&dup, EXIT_INTEGRITY, &["twice"], &[]);
    // Edited terms first, the signed terms last.
    let terms_last = h.crafted("dup-terms-signed-last", |u| {
        let t = u.terms_text().replace("Radio thorax", "Radio genou");
        u.entries
            .insert(0, ZipEntry::file("grant.toml", t.as_bytes()));
    });
    h.refused(&terms_last, EXIT_INTEGRITY, &["twice"], &[]);
}

#[test]
fn zip_bombs_are_refused() {
    let h = hostile();
    let path = h.unpacked().path_of("Radio thorax");
    // An entry declaring far more bytes than the terms.
    let big = h.crafted("declared-huge", |u| {
        u.get_mut(&path).declared_size = Some(0xffff_0000)
    });
    h.refused(&big, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
    // An entry declaring a few bytes more than the terms (the data is there).
    let more = h.crafted("declared-more", |u| {
        u.get_mut(&path).data.extend_from_slice(&[0u8; 10]);
    });
    h.refused(
        &more,
        EXIT_INTEGRITY,
        &[&format!(
            "{} bytes, the terms say {RADIO_LEN}",
            RADIO_LEN + 10
        )],
        &[],
    );
    // A deflated entry (what a decompression bomb would be).
    let deflated = h.crafted("deflated", |u| u.get_mut(&path).method = 8);
    h.refused(&deflated, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
    // A huge number of entries.
    let many = h.crafted("many", |u| {
        for i in 0..10_010 {
            u.entries
                .push(ZipEntry::file(&format!("documents/autre/{i}.txt"), b""));
        }
    });
    h.refused(&many, EXIT_INTEGRITY, &["more than a grant can hold"], &[]);
}

#[test]
fn a_document_differing_from_its_hash_is_refused_and_nothing_is_left() {
    let h = hostile();
    let u = h.unpacked();
    // Alter the last document (so the first one is already written to staging when the
    // mismatch is found); same size, valid zip CRC.
    let last = u.documents().last().unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let altered = h.crafted("same-size", |u| {
        let e = u.get_mut(&last);
        let at = e.data.len() - 1000;
        e.data[at] ^= 0x80;
    });
    h.refused(
        &altered,
        EXIT_INTEGRITY,
        &[&last, "does not match the SHA-256"],
        &[],
    );
    // --force into a non-empty folder: that folder is left exactly as it was.
    let dir = h.lab.root.join("recv/out");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("mine.txt"), b"mine").unwrap();
    h.refused(
        &altered,
        EXIT_INTEGRITY,
        &["does not match the SHA-256"],
        &["--force"],
    );
    assert_eq!(files(&dir).len(), 1);
}

#[test]
fn a_refused_bundle_leaves_no_parent_folders_behind() {
    let h = hostile();
    let last = h.unpacked().documents().last().unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let altered = h.crafted("same-size", |u| {
        let e = u.get_mut(&last);
        e.data[0] ^= 0x80;
    });
    let recv = h.lab.root.join("recv");
    fs::create_dir_all(&recv).unwrap();
    let before = snapshot(&recv);
    let out = h
        .lab
        .open(&h.pro, &altered, &["-o", s(&recv.join("new/deeper/out"))]);
    out.fails(EXIT_INTEGRITY, &["does not match the SHA-256"]);
    assert_same(&before, &snapshot(&recv), "the target's parent folder");
}

#[test]
fn signed_but_hostile_terms_cannot_write_outside_the_target() {
    // Without --from, a bundle signed by any key is read (the professional is warned about a
    // new key for a known name); its terms are then hostile input like the zip.
    let h = hostile();
    let attacker = MinisignKey::from_seed(77);
    let abs = evil_abs();
    for (n, path) in [
        "../evil.txt",
        "../../evil.txt",
        "documents/../../evil.txt",
        "documents/imagerie/../../../evil.txt",
        abs.as_str(),
        "documents\\..\\..\\evil.txt",
        "documents/./evil.txt",
        "documents//evil.txt",
        "documents/evil\u{7}.txt",
        "evil.txt",
        "LISEZMOI-README.txt",
        "documents",
    ]
    .into_iter()
    .enumerate()
    {
        let f = h.signed_by(&attacker, &format!("terms-path{n}"), |t, u| {
            rename_doc(t, u, 0, path)
        });
        let line = h.refused(&f, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
        assert!(
            [
                "unsafe path",
                "unexpected path",
                "escape the target",
                "names an entry twice"
            ]
            .iter()
            .any(|x| line.contains(x)),
            "{path:?}: the error names the problem: {line}"
        );
    }
    // The same path twice in the terms.
    let twice = h.signed_by(&attacker, "terms-twice", |t, _| {
        let p = doc_mut(t, 1)["path"].clone();
        doc_mut(t, 0).insert("path".into(), p);
    });
    h.refused(&twice, EXIT_INTEGRITY, &["listed twice in the terms"], &[]);
    // Terms and zip agreeing on a 4 GB document the bundle does not hold.
    let huge = h.signed_by(&attacker, "terms-huge", |t, u| {
        let p = doc_mut(t, 0)["path"].as_str().unwrap().to_string();
        doc_mut(t, 0).insert("size".into(), 4_000_000_000i64.into());
        u.get_mut(&p).declared_size = Some(4_000_000_000);
    });
    let t0 = Instant::now();
    h.refused(&huge, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "a lying size is refused quickly"
    );
    // Signed terms with nothing wrong but the key: they open (the baseline of this test).
    let fine = h.signed_by(&attacker, "terms-fine", |_, _| {});
    h.lab.open(&h.pro, &fine, &["--list"]).ok();
}

#[test]
fn malformed_or_oversized_terms_are_refused() {
    let h = hostile();
    let set = |name: &str, entry: &'static str, data: Vec<u8>| {
        h.crafted(name, |u| u.get_mut(entry).data = data)
    };
    let big = set("terms-9mib", "grant.toml", vec![b'#'; 9 << 20]);
    h.refused(&big, EXIT_INTEGRITY, &["grant.toml is too large"], &[]);
    let junk = set("terms-junk", "grant.toml", b"[[[ not toml".to_vec());
    h.refused(&junk, EXIT_INTEGRITY, &["grant.toml is not valid"], &[]);
    let u = h.unpacked();
    let newer = set(
        "terms-format",
        "grant.toml",
        u.terms_text()
            .replace("carnet-grant/1", "carnet-grant/99")
            .into_bytes(),
    );
    h.refused(&newer, EXIT_INTEGRITY, &["unknown grant format"], &[]);
    let t = u.terms_text();
    let line = t.lines().find(|l| l.starts_with("expires = ")).unwrap();
    let bad_date = set(
        "terms-date",
        "grant.toml",
        t.replace(line, "expires = \"demain\"").into_bytes(),
    );
    h.refused(&bad_date, EXIT_INTEGRITY, &["grant.toml is not valid"], &[]);
    let sig = set("sig-big", "grant.toml.minisig", vec![b'A'; 8192]);
    h.refused(
        &sig,
        EXIT_INTEGRITY,
        &["grant.toml.minisig is too large"],
        &[],
    );
    let readme = set("readme-big", "LISEZMOI-README.txt", vec![b'x'; 100 << 10]);
    h.refused(&readme, EXIT_INTEGRITY, &["README is too large"], &[]);
}

#[test]
fn terms_cannot_send_control_characters_to_the_terminal() {
    let h = hostile();
    let attacker = MinisignKey::from_seed(78);
    let f = h.signed_by(&attacker, "escapes", |t, _| {
        t.insert("purpose".into(), "avis\u{1b}]0;pwned\u{7}".into());
        t["patient"]
            .as_table_mut()
            .unwrap()
            .insert("name".into(), "Marie\u{1b}[2J Dupont".into());
        doc_mut(t, 0).insert("title".into(), "Ordo\u{1b}[31mnnance\r".into());
    });
    let out = h.lab.open(&h.pro, &f, &["--list"]).ok();
    for (what, bytes) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr.as_bytes().to_vec()),
    ] {
        assert!(
            !bytes.iter().any(|&b| b == 0x1b || b == 0x07 || b == b'\r'),
            "control characters reach the terminal on {what}: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn not_a_bundle_is_refused() {
    let h = hostile();
    // Plain text.
    let text = h.bytes("text", b"Bonjour docteur\n");
    h.refused(&text, EXIT_FAILURE, &["not an age file"], &[]);
    // An age file, but not a zip.
    let f = h.bytes(
        "not-zip",
        &age_encrypt(&h.pro.recipient, b"not a zip at all", false),
    );
    h.refused(&f, EXIT_INTEGRITY, &["not a readable zip"], &[]);
    // A zip without terms.
    let f = h.crafted("no-terms", |u| u.entries.retain(|e| e.name != "grant.toml"));
    h.refused(&f, EXIT_INTEGRITY, &["grant.toml is missing"], &[]);
    // A folder given as the bundle.
    let out = h.lab.open(&h.pro, &h.lab.root, &["--list"]);
    out.fails(EXIT_FAILURE, &["is not a file"]);
}

// =============================================================================================
// Grant-time refusals

#[test]
fn refused_grants_write_nothing_and_log_nothing() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let paul = lab.keygen("Paul Roux", "p.key", true, &["--adeli", "751234567"]);
    let jeanne = lab.keygen("Dr Jeanne Martin", "j.key", true, &[]);
    p.add_pro(&paul);
    p.add_pro(&jeanne);
    p.ok(&["pro", "block", "jeanne-martin"]);
    p.add(
        "bilan.txt",
        b"bilan\n",
        &["--tag", "bilan", "--date", "2024-03-01"],
    );
    let outbox = lab.path("outbox/existing.age");
    fs::write(&outbox, b"an older bundle").unwrap();
    let outbox = outbox.parent().unwrap().to_path_buf();
    let target = outbox.join("bundle.age");
    let vault_before = snapshot(&p.vault);
    let before = snapshot(&outbox);

    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec!["--to", "nobody", "--all", "--expires", "7d"],
            &["no professional \"nobody\""],
        ),
        (
            vec!["--to", "999999999", "--all", "--expires", "7d"],
            &["no professional"],
        ),
        (
            vec!["--to", "jeanne-martin", "--all", "--expires", "7d"],
            &["jeanne-martin is blocked"],
        ),
        (
            vec![
                "--to",
                "paul-roux",
                "--to",
                "jeanne-martin",
                "--all",
                "--expires",
                "7d",
            ],
            &["jeanne-martin is blocked"],
        ),
        (
            vec!["--to", "paul-roux", "--tag", "nothing", "--expires", "7d"],
            &["no document matches"],
        ),
        (
            vec![
                "--to",
                "paul-roux",
                "--category",
                "imagerie",
                "--expires",
                "7d",
            ],
            &["no document matches"],
        ),
        (
            vec!["--to", "paul-roux", "--all", "--expires", "2020-01-01"],
            &["is in the past"],
        ),
        (
            vec![
                "--to",
                "paul-roux",
                "--all",
                "--expires",
                "2020-01-01T10:00:00Z",
            ],
            &["is in the past"],
        ),
        (
            vec![
                "--to",
                "paul-roux",
                "--all",
                "--not-before",
                "2099-02-01",
                "--expires",
                "2099-01-01",
            ],
            &["expire before it starts"],
        ),
        (
            vec!["--to", "paul-roux", "--all", "--expires", "7x"],
            &["cannot read \"7x\""],
        ),
        (
            vec!["--to", "paul-roux", "--all", "--expires", "soon"],
            &["cannot read \"soon\""],
        ),
        (
            vec![
                "--to",
                "paul-roux",
                "--all",
                "--expires",
                "7d",
                "--not-before",
                "demain",
            ],
            &["cannot read \"demain\""],
        ),
        (
            vec!["--to", "paul-roux", "--doc", "ffffffff", "--expires", "7d"],
            &["ffffffff"],
        ),
    ];
    for (args, needles) in &cases {
        for output in [s(&target), "-"] {
            let mut all = vec!["grant"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["-o", output]);
            let out = p.run(&all);
            out.fails(EXIT_FAILURE, needles);
            assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
            assert_same(&before, &snapshot(&outbox), "the output folder");
        }
    }
    // An existing file is not overwritten without --force.
    let existing = outbox.join("existing.age");
    p.run(&[
        "grant",
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&existing),
    ])
    .fails(EXIT_FAILURE, &["already exists"]);
    assert_same(&before, &snapshot(&outbox), "the output folder");
    // A missing selection or expiry is a usage error.
    let out = p.run(&[
        "grant",
        "--to",
        "paul-roux",
        "--expires",
        "7d",
        "-o",
        s(&target),
    ]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{}", out.stderr);
    let out = p.run(&["grant", "--to", "paul-roux", "--all", "-o", s(&target)]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{}", out.stderr);

    assert!(
        p.log_actions("grant").is_empty(),
        "a refused grant was logged"
    );
    assert_eq!(p.grants(&[]), Vec::<Value>::new());
    assert_same(&before, &snapshot(&outbox), "the output folder");
    // Reading the log and grants does not change the vault either (nothing was recorded).
    assert_same(&vault_before, &snapshot(&p.vault), "the vault");
    // And the same grant, fixed, works and overwrites with --force.
    p.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&existing),
        "--force",
    ]);
    lab.open(&paul, &existing, &["--list"]).ok();
}

// =============================================================================================
// The record of grants: log, grants, revoke

#[test]
fn grants_are_logged_listed_and_revoked() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let paul = lab.keygen("Paul Roux", "p.key", true, &["--adeli", "751234567"]);
    let jeanne = lab.keygen(
        "Dr Jeanne Martin",
        "j.key",
        true,
        &["--rpps", "10005173140"],
    );
    p.add_pro(&paul);
    p.add_pro(&jeanne);
    let d1 = p.add("a.txt", b"a\n", &["--date", "2024-03-01"]);
    p.add("b.txt", b"b\n", &["--date", "2024-03-02"]);
    let b1 = lab.path("outbox/one.age");
    let g = p.grant(&[
        "--to",
        "paul-roux",
        "--to",
        "10005173140",
        "--doc",
        &d1,
        "--expires",
        "7d",
        "--purpose",
        "avis cardiologie",
        "-o",
        s(&b1),
    ]);
    let id = g["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{id}");
    let sha = sha256_hex(&fs::read(&b1).unwrap());
    assert_eq!(g["bundle_sha256"].as_str(), Some(sha.as_str()));
    assert_eq!(strs(&g["to"]), ["paul-roux", "jeanne-martin"]);
    assert_eq!(g["output"].as_str(), Some(s(&b1)));

    let logged = p.log_actions("grant");
    assert_eq!(logged.len(), 1);
    let e = &logged[0];
    assert_eq!(strs(&e["documents"]), [d1.as_str()]);
    let d = &e["details"];
    assert_eq!(d["grant"].as_str(), Some(id.as_str()));
    assert_eq!(strs(&d["to"]), ["paul-roux", "jeanne-martin"]);
    assert_eq!(
        strs(&d["identifiers"]),
        ["ADELI 751234567", "RPPS 10005173140"]
    );
    assert_eq!(d["expires"], g["expires"]);
    assert_eq!(d["not_before"], g["not_before"]);
    assert_eq!(d["purpose"], "avis cardiologie");
    assert_eq!(d["bundle_sha256"].as_str(), Some(sha.as_str()));
    // The signed terms carry the same validity.
    let terms = Unpacked::of(&b1, &paul).terms();
    assert_eq!(terms["id"].as_str(), Some(id.as_str()));
    let expires: jiff::Timestamp = g["expires"].as_str().unwrap().parse().unwrap();
    let in_terms: jiff::Timestamp = terms["expires"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, in_terms);
    let days = (expires.as_second() - jiff::Timestamp::now().as_second()) as f64 / 86400.0;
    assert!((6.9..=7.0).contains(&days), "7d is 7 days: {days}");

    // Plain output: the id on stdout.
    let b2 = lab.path("outbox/two.age");
    let out = p.ok(&[
        "grant",
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "2w",
        "-o",
        s(&b2),
    ]);
    let id2 = out.text().trim().to_string();
    assert_eq!(out.text(), format!("{id2}\n"));
    assert!(
        out.stderr.contains("Granted 2 document(s) to paul-roux"),
        "{}",
        out.stderr
    );

    let list = p.grants(&[]);
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(first["id"].as_str(), Some(id.as_str()));
    assert_eq!(first["status"], "active");
    assert_eq!(strs(&first["documents"]), [d1.as_str()]);
    assert_eq!(first["purpose"], "avis cardiologie");
    assert_eq!(first["expires"], g["expires"]);
    assert!(first["revoked_at"].is_null());
    assert_eq!(first["bundle_sha256"].as_str(), Some(sha.as_str()));
    assert_eq!(list[1]["id"].as_str(), Some(id2.as_str()));
    assert!(list[1]["purpose"].is_null());
    let table = p.ok(&["grants"]).text();
    assert!(
        table.contains(&id[..8]) && table.contains("active"),
        "{table}"
    );

    // The same professional named twice (handle and ADELI) is one recipient.
    let b3 = lab.path("outbox/three.age");
    let g3 = p.grant(&[
        "--to",
        "paul-roux",
        "--to",
        "751234567",
        "--all",
        "--expires",
        "1h",
        "-o",
        s(&b3),
    ]);
    assert_eq!(strs(&g3["to"]), ["paul-roux"]);
    let recipients = Unpacked::of(&b3, &paul).terms()["recipients"].clone();
    assert_eq!(recipients.as_array().unwrap().len(), 1, "{recipients}");

    // Revoke by prefix.
    let out = p.ok(&["revoke", &id[..6]]);
    assert!(out.stderr.contains("cannot be recalled"), "{}", out.stderr);
    let list = p.grants(&[]);
    assert_eq!(list[0]["status"], "revoked");
    assert!(list[0]["revoked_at"].is_string());
    assert_eq!(list[1]["status"], "active");
    let active = p.grants(&["--active"]);
    assert_eq!(active.len(), 2);
    assert_eq!(active[0]["id"].as_str(), Some(id2.as_str()));
    let revokes = p.log_actions("revoke");
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0]["details"]["grant"].as_str(), Some(id.as_str()));
    assert_eq!(
        strs(&revokes[0]["details"]["to"]),
        ["paul-roux", "jeanne-martin"]
    );
    // Again: said, not logged twice. Unknown: refused.
    let out = p.ok(&["revoke", &id]);
    assert!(out.stderr.contains("already revoked"), "{}", out.stderr);
    let j = p.ok(&["revoke", &id, "--json"]).json();
    assert_eq!(j["id"].as_str(), Some(id.as_str()));
    assert_eq!(j["changed"], false);
    assert_eq!(j["revoked_at"], list[0]["revoked_at"]);
    assert_eq!(p.log_actions("revoke").len(), 1);
    p.run(&["revoke", "ffffffff"])
        .fails(EXIT_FAILURE, &["no grant with id ffffffff"]);
    let j = p.ok(&["revoke", &id2[..8], "--json"]).json();
    assert_eq!(
        (j["id"].as_str(), &j["changed"]),
        (Some(id2.as_str()), &serde_json::json!(true))
    );
    assert_eq!(p.log_actions("revoke").len(), 2);

    // Expiry is consent, not DRM: a copy already sent still opens after revocation.
    lab.open(&paul, &b1, &["--list"]).ok();
}

#[test]
fn revoke_of_a_malformed_id_speaks_of_grants() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let line = p.run(&["revoke", "zzzz"]).fails(EXIT_FAILURE, &["zzzz"]);
    assert!(line.contains("grant"), "{line}");
    assert!(!line.contains("document"), "{line}");
}

// =============================================================================================
// The professional's memory of patients' keys

#[test]
fn homonyms_are_two_patients_and_a_known_vault_signed_by_another_key_is_refused() {
    let lab = Lab::new();
    let paul = lab.keygen("Paul Roux", "p.key", true, &[]);
    let mut fps = Vec::new();
    let mut bundles = Vec::new();
    for v in ["a", "b"] {
        let p = lab.patient(v, "Marie Dupont");
        p.add_pro(&paul);
        p.add("a.txt", format!("from {v}\n").as_bytes(), &[]);
        let b = lab.path(&format!("bundles/{v}.age"));
        let g = p.grant(&["--to", "paul-roux", "--all", "--expires", "7d", "-o", s(&b)]);
        fps.push(g["patient_fingerprint"].as_str().unwrap().to_string());
        bundles.push(b);
    }
    let (fa, fb) = (&fps[0], &fps[1]);
    assert_ne!(fa, fb);

    let out = lab.open(&paul, &bundles[0], &["--list"]).ok();
    assert!(
        out.stderr.contains("remembered for Marie Dupont") && out.stderr.contains(fa.as_str()),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let out = lab.open(&paul, &bundles[0], &["--list"]).ok();
    assert!(!out.stderr.contains("remembered"), "{}", out.stderr);

    // The other Marie Dupont, another vault: a new patient, said so, both remembered.
    let out = lab.open(&paul, &bundles[1], &["--list"]).ok();
    assert!(
        out.stderr
            .contains("another patient named Marie Dupont is known"),
        "{}",
        out.stderr
    );
    let listed = lab.run(None, &["patients", "--json"]).ok().json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_ne!(listed[0]["vault_id"], listed[1]["vault_id"]);
    lab.open(&paul, &bundles[0], &["--list"]).ok();
    lab.open(&paul, &bundles[1], &["--list"]).ok();

    // Vault a's bundle re-signed by someone else's key (anyone can encrypt to Paul): the terms
    // name a's vault, the key is not the one remembered for it.
    let other = MinisignKey::from_seed(77);
    let mut u = Unpacked::of(&bundles[0], &paul);
    let mut t = u.terms();
    let pt = t["patient"].as_table_mut().unwrap();
    pt.insert("signing_key".into(), other.public().into());
    pt.insert("fingerprint".into(), other.fingerprint().into());
    let text = toml::to_string(&t).unwrap();
    u.get_mut("grant.toml.minisig").data = other.sign(text.as_bytes(), "carnet grant").into_bytes();
    u.get_mut("grant.toml").data = text.into_bytes();
    let forged = lab.path("bundles/forged.age");
    u.seal(&paul.recipient, &forged);
    let fo = other.fingerprint();
    lab.open(&paul, &forged, &["--list"])
        .fails(EXIT_INTEGRITY, &[fa.as_str(), fo.as_str(), "refused"]);

    // Forgetting a patient makes their next bundle a first.
    let out = lab.run(None, &["patients", "forget", fa]).ok();
    assert!(out.stderr.contains("forgot Marie Dupont"), "{}", out.stderr);
    lab.run(None, &["patients", "forget", fa])
        .fails(EXIT_FAILURE, &["no patient is remembered with the key"]);
    let out = lab.open(&paul, &bundles[0], &["--list"]).ok();
    assert!(
        out.stderr.contains("remembered for Marie Dupont"),
        "{}",
        out.stderr
    );

    // --from pins the signer: the wrong fingerprint is refused with exit 3 and nothing written.
    let recv = lab.root.join("recv");
    let before = snapshot(&recv);
    lab.open(
        &paul,
        &bundles[1],
        &["--from", fa, "-o", s(&recv.join("a"))],
    )
    .fails(
        EXIT_INTEGRITY,
        &["not by the expected", fa.as_str(), fb.as_str()],
    );
    assert_same(&before, &snapshot(&recv), "the target's parent");
    // A malformed fingerprint is a typing error (exit 1), not a forgery; the same
    // fingerprint dictated without its prefix or colons is accepted.
    lab.open(&paul, &bundles[0], &["--from", "SHA256:0000", "--list"])
        .fails(EXIT_FAILURE, &["not a key fingerprint"]);
    let bare: String = fa.trim_start_matches("SHA256:").replace(':', "");
    lab.open(&paul, &bundles[0], &["--from", &bare, "--list"])
        .ok();
}

#[test]
fn a_memory_written_by_carnet_0_1_is_read_and_moved_to_vaults() {
    let lab = Lab::new();
    let paul = lab.keygen("Paul Roux", "p.key", true, &[]);
    let p = lab.patient("a", "Marie Dupont");
    p.add_pro(&paul);
    p.add("a.txt", b"from a\n", &[]);
    let b = lab.path("bundles/a.age");
    let g = p.grant(&["--to", "paul-roux", "--all", "--expires", "7d", "-o", s(&b)]);
    let fa = g["patient_fingerprint"].as_str().unwrap().to_string();
    // carnet 0.1's file: name → fingerprint, with another patient besides.
    fs::create_dir_all(lab.known.parent().unwrap()).unwrap();
    fs::write(
        &lab.known,
        format!("[patients]\n\"Marie Dupont\" = \"{fa}\"\n\"Jean Roux\" = \"SHA256:1111:2222:3333:4444:5555:6666:7777:8888\"\n"),
    )
    .unwrap();
    lab.open(&paul, &b, &["--list"]).ok();
    let text = fs::read_to_string(&lab.known).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    let entries = t["patient"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{text}");
    assert_eq!(entries[0]["fingerprint"].as_str(), Some(fa.as_str()));
    assert!(entries[0]["vault_id"].is_str(), "{text}");
    let legacy = t["patients"].as_table().unwrap();
    assert!(
        !legacy.contains_key("Marie Dupont") && legacy.contains_key("Jean Roux"),
        "{text}"
    );
    let listed = lab.run(None, &["patients", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

// =============================================================================================
// Never overwrite without --force

#[test]
fn open_never_writes_into_a_non_empty_folder_without_force() {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let paul = lab.keygen("Paul Roux", "p.key", true, &[]);
    p.add_pro(&paul);
    p.add(
        "a.txt",
        b"from the bundle\n",
        &["--title", "Lettre", "--date", "2024-03-01"],
    );
    let bundle = lab.path("b.age");
    p.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&bundle),
    ]);

    let dir = lab.path("recv/dossier/notes.txt");
    fs::write(&dir, b"my notes").unwrap();
    let dir = dir.parent().unwrap().to_path_buf();
    let before = snapshot(&lab.root.join("recv"));
    lab.open(&paul, &bundle, &["-o", s(&dir)])
        .fails(EXIT_FAILURE, &["is not empty"]);
    assert_same(&before, &snapshot(&lab.root.join("recv")), "the folder");

    // --force writes the bundle's files beside the others.
    lab.open(&paul, &bundle, &["-o", s(&dir), "--force"]).ok();
    assert_eq!(fs::read(dir.join("notes.txt")).unwrap(), b"my notes");
    let doc = dir.join("documents/autre/2024-03-01 Lettre.txt");
    assert_eq!(fs::read(&doc).unwrap(), b"from the bundle\n");
    // Now not empty: refused again, a local change kept; --force overwrites it.
    fs::write(&doc, b"edited locally").unwrap();
    lab.open(&paul, &bundle, &["-o", s(&dir)])
        .fails(EXIT_FAILURE, &["is not empty"]);
    assert_eq!(fs::read(&doc).unwrap(), b"edited locally");
    lab.open(&paul, &bundle, &["-o", s(&dir), "--force"]).ok();
    assert_eq!(fs::read(&doc).unwrap(), b"from the bundle\n");
    assert_no_staging(&lab.root.join("recv"));

    // An existing empty folder is fine.
    let empty = lab.root.join("recv/empty");
    fs::create_dir(&empty).unwrap();
    lab.open(&paul, &bundle, &["-o", s(&empty)]).ok();
    assert_eq!(extracted_by_title(&empty)["Lettre"], b"from the bundle\n");
}

#[test]
fn armor_after_blank_lines_opens_and_armor_padded_by_a_mail_client_is_named() {
    let h = hostile();
    let zip = age_decrypt(&fs::read(&h.genuine).unwrap(), &h.pro.identity());
    let armor = text_of(&age_encrypt(&h.pro.recipient, &zip, true));
    // Pasted from a mail: blank lines and indentation before the armor (the age spec asks
    // readers to accept them), CRLF line ends.
    let pasted = format!("\n\r\n  \t\n{}", armor.replace('\n', "\r\n"));
    let f = h.bytes("pasted", pasted.as_bytes());
    let recv = h.lab.root.join("recv-pasted");
    h.lab.open(&h.pro, &f, &["-o", s(&recv)]).ok();
    assert_eq!(
        extracted_by_title(&recv).len(),
        2,
        "both documents extracted"
    );
    // A mail client that leaves a space at the end of every line, or of one line deep in the
    // payload (read only while extracting).
    let every = armor.replace('\n', " \n");
    let f = h.bytes("spaces-every", every.as_bytes());
    let msg = "the armor has trailing spaces on its lines (a mail client added them)";
    h.refused(&f, EXIT_INTEGRITY, &[msg], &[]);
    let lines: Vec<&str> = armor.lines().collect();
    let deep = lines.len() - 3;
    let one: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == deep {
                format!("{l} \n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let f = h.bytes("spaces-one", one.as_bytes());
    h.refused(&f, EXIT_INTEGRITY, &[msg], &[]);
    // Real damage in armor is still called damage.
    let mut flipped = armor.clone().into_bytes();
    let at = flipped.len() / 2;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let f = h.bytes("armor-flipped", &flipped);
    h.refused(&f, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("armor is text")
}

#[test]
fn a_bundle_damaged_in_its_age_header_is_damage_not_a_wrong_key() {
    let h = hostile();
    let good = fs::read(&h.genuine).unwrap();
    let tag = good.windows(9).position(|w| w == b"-> X25519").unwrap() + 3;
    for (n, at) in [(0, 0), (1, 19), (2, tag), (3, tag + 5)] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        let f = h.bytes(&format!("header-flip-{n}"), &b);
        let line = h.refused(&f, EXIT_INTEGRITY, &["damaged or was altered"], &[]);
        assert!(!line.contains("not addressed"), "{line}");
    }
}

#[test]
fn an_overlong_file_name_in_signed_terms_is_refused_as_damage() {
    let h = hostile();
    let attacker = MinisignKey::from_seed(78);
    let long = format!("documents/{}.txt", "é".repeat(130));
    let f = h.signed_by(&attacker, "terms-long-name", |t, u| {
        rename_doc(t, u, 0, &long)
    });
    let line = h.refused(
        &f,
        EXIT_INTEGRITY,
        &["damaged or was altered", "longer than 255 bytes"],
        &[],
    );
    assert!(!line.contains("os error"), "{line}");
}

/// Bidi controls and other invisible format characters, as they would reach a terminal raw.
const INVISIBLE: [char; 6] = [
    '\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}', '\u{061C}', '\u{2028}',
];

fn assert_no_invisible(what: &str, s: &str) {
    assert!(
        !s.chars().any(|c| INVISIBLE.contains(&c) || c == '\u{1b}'),
        "invisible or bidi characters reach {what}: {s:?}"
    );
}

#[test]
fn bidi_and_invisible_characters_never_reach_the_terminal_or_a_file_name() {
    let h = hostile();
    let attacker = MinisignKey::from_seed(79);
    // Signed terms whose texts hide a reversed extension and zero-width characters.
    let f = h.signed_by(&attacker, "bidi-text", |t, _| {
        t.insert("purpose".into(), "avis\u{2066} urgent\u{2028}".into());
        t["patient"]
            .as_table_mut()
            .unwrap()
            .insert("name".into(), "Ma\u{200B}rie".into());
        doc_mut(t, 0).insert("title".into(), "facture\u{202E}txt.exe".into());
        doc_mut(t, 1).insert("category".into(), "ima\u{FEFF}gerie".into());
    });
    let out = h.lab.open(&h.pro, &f, &["--list"]).ok();
    assert_no_invisible("open --list's stdout", &out.text());
    assert_no_invisible("open --list's stderr", &out.stderr);
    assert!(
        out.text().contains("facture\u{FFFD}txt.exe"),
        "{}",
        out.text()
    );
    // A file name that would display reversed is refused outright, with nothing written.
    for (n, name) in INVISIBLE.iter().enumerate() {
        let path = format!("documents/autre/facture{name}txt.exe");
        let f = h.signed_by(&attacker, &format!("bidi-path{n}"), |t, u| {
            rename_doc(t, u, 0, &path)
        });
        let line = h.refused(&f, EXIT_INTEGRITY, &["unsafe path"], &[]);
        assert_no_invisible("the error", &line);
    }
}

#[test]
fn a_document_added_under_a_bidi_file_name_is_shared_under_a_safe_one() {
    let lab = Lab::new();
    let patient = lab.patient("marie", "Marie Dupont");
    let pro = lab.keygen("Paul Roux", "paul.key", true, &["--adeli", "751234567"]);
    patient.add_pro(&pro);
    let name = "facture\u{202E}fdp.exe";
    let p = lab.write(&format!("inputs/{name}"), b"not a pdf");
    let out = patient.ok(&[OsStr::new("add"), p.as_os_str()]);
    assert_no_invisible("add's stdout", &out.text());
    assert_no_invisible("add's stderr", &out.stderr);
    assert!(out.text().contains("facture\u{FFFD}fdp"), "{}", out.text());
    let out = patient.ok(&["ls"]);
    assert_no_invisible("ls", &out.text());
    let exported = lab.path("exported");
    patient.ok(&["export", "--all", "-o", s(&exported)]);
    let bundle = lab.path("bundles/bidi.age");
    patient.grant(&[
        "--to",
        "paul-roux",
        "--all",
        "--expires",
        "7d",
        "-o",
        s(&bundle),
    ]);
    let recv = lab.path("recv");
    lab.open(&pro, &bundle, &["-o", s(&recv)]).ok();
    for dir in [&exported, &recv] {
        for f in files(dir).keys() {
            assert_no_invisible("a written file name", f);
        }
    }
    assert!(
        files(&recv).keys().any(|f| f.contains("facture_fdp")),
        "{:?}",
        files(&recv).keys()
    );
}
