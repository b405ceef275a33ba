//! Emergency access and access codes: the emergency bundle opens with `carnet open --passcode`
//! and with `age -d` + the passcode + `unzip`, holds the IPS and the readable summary and no
//! hidden document; a wrong passcode is a clear error; an objection (`--opt-out`) makes it
//! refuse; the printed card carries the name, the chosen essentials and the passcode as text,
//! and a QR code of the plain essentials; an access code (`grant --passcode`) needs an expiry
//! of at most 31 days and opens like a grant, expiry included (`CARNET_NOW`, no waiting).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::profile::{validate_ips, with_example};
use crate::util::{
    EXIT_FAILURE, EXIT_USAGE, EXIT_VALIDITY, Out, TestCommand, Tool, Vault, assert_same, carnet,
    hint, require_tool, sha256_hex, text,
};

/// `carnet emergency ARGS --json` on `v`; returns the report (with the passcode).
fn emergency(v: &Vault, args: &[&str]) -> Value {
    let mut all = vec!["emergency", "--json"];
    all.extend_from_slice(args);
    v.ok(&all).json()
}

/// `carnet open BUNDLE --passcode ARGS` as a doctor with no vault and no key: the passcode
/// from CARNET_PASSCODE.
fn open_with(v: &Vault, bundle: &Path, passcode: &str, args: &[&str]) -> Out {
    let mut c = carnet();
    c.arg("open")
        .arg(bundle)
        .arg("--passcode")
        .args(args)
        .env("CARNET_PASSCODE", passcode)
        .env("CARNET_KNOWN_PATIENTS", v.root().join("doctor/known.toml"))
        .current_dir(v.root());
    c.run()
}

fn path(v: &Vault, rel: &str) -> PathBuf {
    v.root().join(rel)
}

#[test]
fn the_emergency_bundle_opens_with_the_passcode_and_holds_the_summaries_and_no_hidden_document() {
    let v = with_example();
    let visible = v.add(
        &v.write("ecg.txt", b"ECG: rythme sinusal"),
        &["--category", "compte-rendu", "--date", "2026-03-14"],
    );
    let hidden = v.add(&v.write("secret.txt", b"hidden from professionals"), &[]);
    v.ok(&["hide", &hidden]);

    // A hidden document never goes in, whatever the patient asks; nothing is written.
    let bundle = path(&v, "urgence.age");
    let before = v.snapshot();
    let out = v.run(&[
        "emergency",
        "-o",
        bundle.to_str().unwrap(),
        "--include",
        &hidden,
    ]);
    out.assert_refused(
        EXIT_FAILURE,
        &["is hidden from professionals: it never goes in the emergency bundle"],
        "a hidden document",
    );
    assert!(hint(&out.stderr).contains("carnet unhide"), "{out}");
    assert_same(&before, &v.snapshot(), "a refused emergency bundle");
    assert!(!bundle.exists());

    let r = emergency(&v, &["-o", bundle.to_str().unwrap(), "--include", &visible]);
    let code = r["passcode"].as_str().unwrap().to_string();
    let words: Vec<&str> = code.split('-').collect();
    assert_eq!(words.len(), 8, "8 words: {code}");
    assert!(
        words
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
    );
    assert_eq!(r["documents"], serde_json::json!([visible]));

    // The plain output: the passcode alone on stdout, the caveats on stderr.
    let again = path(&v, "urgence2.age");
    let out = v.ok(&["emergency", "-o", again.to_str().unwrap()]);
    assert_eq!(out.text().trim().split('-').count(), 8, "{out}");
    assert!(out.stderr.contains("shown this once"), "{out}");
    assert!(
        out.stderr.contains("nothing limits how many passcodes"),
        "{out}"
    );

    // Opened by a doctor with the passcode, typed any which way.
    let typed = code.replace('-', "  ").to_uppercase();
    let dir = path(&v, "doctor/urgence");
    let opened = open_with(
        &v,
        &bundle,
        &typed,
        &["-o", dir.to_str().unwrap(), "--json"],
    )
    .ok()
    .json();
    assert_eq!(opened["kind"], "emergency");
    assert_eq!(opened["patient"], "Marie Dupont");
    assert_eq!(opened["recipients"], serde_json::json!([]));
    let files: Vec<String> = crate::util::files_under(&dir)
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().to_string())
        .collect();
    let summary = files
        .iter()
        .find(|f| f.ends_with("Résumé d'urgence.txt"))
        .unwrap_or_else(|| panic!("a readable summary in {files:?}"));
    let ips = files
        .iter()
        .find(|f| f.ends_with("(IPS FHIR).json"))
        .unwrap_or_else(|| panic!("the IPS in {files:?}"));
    assert!(
        files
            .iter()
            .any(|f| f == "documents/compte-rendu/2026-03-14 ecg.txt"),
        "{files:?}"
    );
    assert_eq!(
        files.len(),
        6,
        "terms, signature, README, 2 summaries, 1 document: {files:?}"
    );
    let summary = fs::read_to_string(dir.join(summary)).unwrap();
    assert!(
        summary.contains("Pénicilline — Œdème de Quincke [SÉVÈRE / SEVERE]"),
        "{summary}"
    );
    let ips: Value = serde_json::from_slice(&fs::read(dir.join(ips)).unwrap()).unwrap();
    assert_eq!(ips["entry"][0]["resource"]["resourceType"], "Composition");
    for f in &files {
        let bytes = fs::read(dir.join(f)).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"hidden fr"),
            "{f} holds the hidden document"
        );
    }

    // Recorded like a grant, and in the log.
    let grants = v.ok(&["grants", "--json"]).json();
    let g = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == r["id"])
        .unwrap();
    assert_eq!(g["to"], serde_json::json!(["emergency"]));
    let log = v.ok(&["log", "--action", "emergency", "--json"]).json();
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[0]["details"]["op"], "bundle");
    assert_eq!(
        log[0]["details"]["bundle_sha256"],
        sha256_hex(&fs::read(&bundle).unwrap())
    );
    assert_eq!(log[0]["documents"], serde_json::json!([visible]));
    v.ok(&["verify"]);
}

#[test]
fn the_emergency_ips_passes_the_fhir_validator() {
    let Some(python) = require_tool(Tool::FhirValidator) else {
        return;
    };
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    let code = emergency(&v, &["-o", bundle.to_str().unwrap()])["passcode"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = path(&v, "doctor/u");
    open_with(&v, &bundle, &code, &["-o", dir.to_str().unwrap()]).ok();
    let ips = crate::util::files_under(&dir)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".json"))
        .unwrap();
    validate_ips(&python, &ips);
}

#[test]
fn a_wrong_passcode_or_a_key_is_a_clear_error() {
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    emergency(&v, &["-o", bundle.to_str().unwrap()]);
    let dir = path(&v, "doctor/u");
    let out = open_with(
        &v,
        &bundle,
        "abeille-abolir-aborder-aboutir-aboyer-abrasif-abreuver-abriter",
        &["-o", dir.to_str().unwrap()],
    );
    out.assert_refused(EXIT_FAILURE, &["wrong passcode"], "a wrong passcode");
    assert!(hint(&out.stderr).contains("8 words"), "{out}");
    assert!(!dir.exists(), "nothing extracted");

    // A key on a passcode bundle, and no passcode without a terminal: each says what to do.
    let key = crate::util::new_identity_file(v.root(), "doctor.key");
    let mut c = carnet();
    c.arg("open").arg(&bundle).arg("-i").arg(&key);
    let out = c.run();
    out.assert_refused(
        EXIT_FAILURE,
        &["opens with a passcode, not with a key"],
        "a key",
    );
    assert!(hint(&out.stderr).contains("--passcode"), "{out}");
    let mut c = carnet();
    c.arg("open").arg(&bundle).arg("--passcode");
    let out = c.run();
    out.assert_refused(
        EXIT_FAILURE,
        &["a passcode is needed and there is no terminal"],
        "no passcode",
    );
    assert!(hint(&out.stderr).contains("CARNET_PASSCODE"), "{out}");
}

/// Runs `age ARGS` under `script` (age reads passphrases from a terminal only), typing
/// `answer` once it asks; returns its exit status and what the terminal showed.
fn age_typing(script: &Path, age: &Path, args: &[&str], answer: &str) -> (bool, String) {
    typing(script, age, args, "passphrase", answer, &[])
}

/// Runs `prog ARGS` on a terminal (`script`), typing `answer` once the terminal shows `prompt`.
fn typing(
    script: &Path,
    prog: &Path,
    args: &[&str],
    prompt: &str,
    answer: &str,
    env: &[(&str, &Path)],
) -> (bool, String) {
    let line = std::iter::once(format!("'{}'", prog.display()))
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .envs(env.iter().copied())
        .env_remove("CARNET_PASSCODE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut shown = Vec::new();
    let mut buf = [0u8; 4096];
    while !text(&shown).to_lowercase().contains(prompt) {
        let n = stdout.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "{} never asked for the passcode: {}",
            prog.display(),
            text(&shown)
        );
        shown.extend_from_slice(&buf[..n]);
    }
    // Typed now, the line waits in the terminal's input buffer until age reads it.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let _ = stdout.read_to_end(&mut shown);
    let status = child.wait().unwrap();
    drop(stdin);
    (status.success(), text(&shown))
}

#[test]
fn age_and_unzip_open_the_emergency_bundle_with_the_passcode() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let Some(unzip) = require_tool(Tool::Unzip) else {
        return;
    };
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    let code = emergency(&v, &["-o", bundle.to_str().unwrap()])["passcode"]
        .as_str()
        .unwrap()
        .to_string();
    let zip = path(&v, "urgence.zip");
    let (ok, shown) = age_typing(
        &script,
        &age,
        &["-d", "-o", zip.to_str().unwrap(), bundle.to_str().unwrap()],
        "not-the-passcode",
    );
    assert!(!ok, "age accepted a wrong passcode: {shown}");
    let (ok, shown) = age_typing(
        &script,
        &age,
        &["-d", "-o", zip.to_str().unwrap(), bundle.to_str().unwrap()],
        &code,
    );
    assert!(ok, "age -d with the passcode: {shown}");
    let dir = path(&v, "unzipped");
    let out = TestCommand::from({
        let mut c = Command::new(unzip);
        c.arg("-q").arg(&zip).arg("-d").arg(&dir);
        c
    })
    .run();
    out.assert_ok("unzip");
    let terms: toml::Table =
        toml::from_str(&fs::read_to_string(dir.join("grant.toml")).unwrap()).unwrap();
    assert_eq!(terms["kind"].as_str(), Some("emergency"));
    let docs = terms["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    for d in docs {
        let f = dir.join(d["path"].as_str().unwrap());
        assert_eq!(
            sha256_hex(&fs::read(&f).unwrap()),
            d["sha256"].as_str().unwrap(),
            "{f:?} as signed"
        );
    }
    let readme = fs::read_to_string(dir.join("LISEZMOI-README.txt")).unwrap();
    assert!(readme.contains("age -d FICHIER > dossier.zip"), "{readme}");
}

#[test]
fn carnet_open_asks_for_the_passcode_on_a_terminal() {
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    let code = emergency(&v, &["-o", bundle.to_str().unwrap()])["passcode"]
        .as_str()
        .unwrap()
        .to_string();
    let known = path(&v, "doctor/known.toml");
    let (ok, shown) = typing(
        &script,
        &crate::util::bin(),
        &["open", bundle.to_str().unwrap(), "--passcode", "--list"],
        "passcode",
        // Typed from the card, with spaces: the same passcode.
        &code.replace('-', " "),
        &[("CARNET_KNOWN_PATIENTS", &known)],
    );
    assert!(ok, "carnet open --passcode on a terminal: {shown}");
    assert!(
        shown.contains("anyone holding the passcode (emergency bundle)"),
        "{shown}"
    );
    assert!(
        !shown.contains(&code),
        "the passcode is not echoed: {shown}"
    );
}

#[test]
fn a_tampered_emergency_bundle_is_refused() {
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    let code = emergency(&v, &["-o", bundle.to_str().unwrap()])["passcode"]
        .as_str()
        .unwrap()
        .to_string();
    crate::util::flip_middle(&bundle);
    let dir = path(&v, "doctor/u");
    let out = open_with(&v, &bundle, &code, &["-o", dir.to_str().unwrap()]);
    out.assert_refused(
        crate::util::EXIT_INTEGRITY,
        &["the bundle is damaged or was altered"],
        "a flipped byte",
    );
    assert!(!dir.exists(), "nothing extracted");
}

#[test]
fn an_opt_out_makes_emergency_refuse_until_opt_in() {
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    let r = emergency(&v, &["--opt-out"]);
    assert_eq!(r["opted_out"], true);
    assert_eq!(r["changed"], true);
    assert_eq!(emergency(&v, &["--opt-out"])["changed"], false);

    let before = v.snapshot();
    for args in [
        vec!["emergency", "-o", bundle.to_str().unwrap()],
        vec![
            "emergency",
            "-o",
            bundle.to_str().unwrap(),
            "--card",
            "carte.pdf",
        ],
    ] {
        let out = v.run(&args);
        out.assert_refused(
            EXIT_FAILURE,
            &[
                "you objected to emergency access on",
                "no emergency bundle or card is made",
            ],
            "an objection",
        );
        assert_eq!(
            hint(&out.stderr),
            "lift the objection with `carnet emergency --opt-in`"
        );
    }
    assert_same(&before, &v.snapshot(), "a refused emergency bundle");
    assert!(!bundle.exists() && !path(&v, "carte.pdf").exists());

    let r = emergency(&v, &["--opt-in"]);
    assert_eq!(
        (r["opted_out"].clone(), r["changed"].clone()),
        (false.into(), true.into())
    );
    emergency(&v, &["-o", bundle.to_str().unwrap()]);
    assert!(bundle.is_file());
    let ops: Vec<String> = v
        .ok(&["log", "--action", "emergency", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["op"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ops, ["opt-out", "opt-in", "bundle"]);
}

#[test]
fn without_a_profile_there_is_no_emergency_bundle() {
    let v = Vault::init();
    let before = v.snapshot();
    let out = v.run(&["emergency", "-o", "urgence.age"]);
    out.assert_refused(
        EXIT_FAILURE,
        &["there is no emergency profile to put in the bundle"],
        "no profile",
    );
    assert!(hint(&out.stderr).contains("carnet profile edit"), "{out}");
    assert_same(&before, &v.snapshot(), "a refused emergency bundle");
}

/// The card's text as pdftotext reads it, and its QR code as zbarimg reads it (the page
/// rasterised by pdftoppm first: zbar reads images).
fn read_card(card: &Path, dir: &Path) -> Option<(String, String)> {
    let pdftotext = require_tool(Tool::Pdftotext)?;
    let pdftoppm = require_tool(Tool::Pdftoppm)?;
    let zbarimg = require_tool(Tool::Zbarimg)?;
    let run = |prog: &Path, args: &[&std::ffi::OsStr]| {
        let mut c = Command::new(prog);
        c.args(args);
        TestCommand::from(c).run().ok()
    };
    let text = run(&pdftotext, &[card.as_os_str(), "-".as_ref()]).text();
    let png = dir.join("card");
    run(
        &pdftoppm,
        &[
            "-r".as_ref(),
            "300".as_ref(),
            "-png".as_ref(),
            card.as_os_str(),
            png.as_os_str(),
        ],
    );
    let image = dir.join("card-1.png");
    let qr = run(
        &zbarimg,
        &["-q".as_ref(), "--raw".as_ref(), image.as_os_str()],
    )
    .text();
    Some((text, qr))
}

#[test]
fn the_card_shows_the_name_the_chosen_essentials_and_the_passcode_and_its_qr_code_the_essentials() {
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    let card = path(&v, "carte.pdf");
    let r = emergency(
        &v,
        &[
            "-o",
            bundle.to_str().unwrap(),
            "--card",
            card.to_str().unwrap(),
            "--where",
            "clé USB (porte-clés)",
            "--show",
            "allergies",
            "--show",
            "blood-group",
            "--show",
            "contacts",
        ],
    );
    let code = r["passcode"].as_str().unwrap();
    assert_eq!(r["passcode_on_card"], true);
    let shown: Vec<&str> = r["shown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        [
            "Allergies: Pénicilline (Œdème de Quincke, SÉVÈRE), Arachide",
            "Groupe sanguin / blood group: A+",
            "Contact: Paul Dupont (fils) +33 6 12 34 56 78",
        ]
    );
    let pdf = fs::read(&card).unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4"), "a PDF");
    let log = v.ok(&["log", "--action", "emergency", "--json"]).json();
    assert_eq!(log[0]["details"]["card"], card.to_str().unwrap());
    assert_eq!(log[0]["details"]["passcode_on_card"], true);

    let Some((text, qr)) = read_card(&card, v.root()) else {
        return;
    };
    // The text flows in columns: compare with the layout's line breaks and spaces removed.
    let flat: String = text.split_whitespace().collect();
    // The passcode's two lines: pdftotext joins a word cut after a dash, so compare its words.
    let words: String = code.split('-').collect();
    assert!(
        flat.replace('-', "").contains(&words),
        "the passcode on the card:\n{text}"
    );
    for needle in ["Marie Dupont", "Où / where: clé USB (porte-clés)"]
        .into_iter()
        .chain(shown.iter().copied())
    {
        let n: String = needle.split_whitespace().collect();
        assert!(flat.contains(&n), "{needle:?} on the card:\n{text}");
    }
    assert!(
        !flat.contains("Apixaban"),
        "medications were not chosen:\n{text}"
    );
    assert_eq!(
        qr.trim_end(),
        format!(
            "URGENCE MEDICALE / EMERGENCY\nMarie Dupont\n{}",
            shown.join("\n")
        ),
        "the QR code holds the plain essentials, and not the passcode"
    );
}

#[test]
fn the_passcode_can_be_left_off_the_card() {
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    let card = path(&v, "carte.pdf");
    let r = emergency(
        &v,
        &[
            "-o",
            bundle.to_str().unwrap(),
            "--card",
            card.to_str().unwrap(),
            "--no-passcode-on-card",
        ],
    );
    assert_eq!(r["passcode_on_card"], false);
    let code = r["passcode"].as_str().unwrap();
    let Some((text, _)) = read_card(&card, v.root()) else {
        return;
    };
    let flat: String = text.split_whitespace().collect();
    assert!(flat.contains("passcodegivenseparately"), "{text}");
    for w in code.split('-') {
        assert!(
            !text.contains(&format!("{w}-")),
            "{w} is on the card:\n{text}"
        );
    }
}

#[test]
fn an_access_code_needs_an_expiry_of_at_most_31_days_and_opens_until_then() {
    let v = with_example();
    let doc = v.add(
        &v.write("radio.txt", b"radio thorax"),
        &["--category", "imagerie"],
    );
    let bundle = path(&v, "partage.age");
    let before = v.snapshot();
    let out = v.run(&[
        "grant",
        "--passcode",
        "--doc",
        &doc,
        "-o",
        bundle.to_str().unwrap(),
    ]);
    out.assert_code(EXIT_USAGE, "no --expires");
    assert!(out.stderr.contains("--expires"), "{out}");
    for long in ["32d", "5w", "2027-12-31"] {
        let out = v.run(&[
            "grant",
            "--passcode",
            "--doc",
            &doc,
            "--expires",
            long,
            "-o",
            bundle.to_str().unwrap(),
        ]);
        out.assert_refused(
            EXIT_FAILURE,
            &["an access code lasts at most 31 days"],
            long,
        );
        assert!(hint(&out.stderr).contains("31d or less"), "{out}");
    }
    let out = v.run(&[
        "grant",
        "--passcode",
        "--to",
        "x",
        "--doc",
        &doc,
        "--expires",
        "7d",
        "-o",
        bundle.to_str().unwrap(),
    ]);
    out.assert_code(EXIT_USAGE, "--to and --passcode");
    assert_same(&before, &v.snapshot(), "refused access codes");
    assert!(!bundle.exists());

    let now = "2026-12-01T10:00:00Z";
    let mut c = v.cmd();
    c.args([
        "grant",
        "--passcode",
        "--doc",
        &doc,
        "--expires",
        "31d",
        "--json",
        "-o",
    ])
    .arg(&bundle)
    .env("CARNET_NOW", now);
    let r = c.run().ok().json();
    let code = r["passcode"].as_str().unwrap().to_string();
    assert_eq!(r["to"], serde_json::json!(["passcode"]));
    assert_eq!(r["expires"], "2027-01-01T10:00:00Z");
    let log = v.ok(&["log", "--action", "grant", "--json"]).json();
    assert_eq!(log[0]["details"]["to"], "passcode");

    // Opened with the passcode from a file, the day before it expires, then refused after.
    let file = path(&v, "code.txt");
    fs::write(&file, format!("{code}\n")).unwrap();
    let open = |when: &str, dir: &str| {
        let mut c = carnet();
        c.arg("open")
            .arg(&bundle)
            .arg("--passcode-file")
            .arg(&file)
            .args(["-o", dir, "--json"])
            .env("CARNET_NOW", when)
            .env("CARNET_KNOWN_PATIENTS", path(&v, "doctor/known.toml"))
            .current_dir(v.root());
        c.run()
    };
    let opened = open("2026-12-31T10:00:00Z", "in-time").ok().json();
    assert_eq!(opened["kind"], "passcode");
    assert_eq!(opened["status"], "active");
    assert_eq!(
        fs::read(
            path(&v, "in-time/documents/imagerie").join(
                fs::read_dir(path(&v, "in-time/documents/imagerie"))
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .file_name()
            )
        )
        .unwrap(),
        b"radio thorax"
    );
    let late = open("2027-01-01T10:00:01Z", "too-late");
    late.assert_code(EXIT_VALIDITY, "an expired access code");
    assert!(!path(&v, "too-late").exists());
}

#[test]
fn an_emergency_doctor_is_told_how_to_send_a_receipt_and_the_patient_records_it() {
    let v = with_example();
    let bundle = path(&v, "urgence.age");
    let code = emergency(&v, &["-o", bundle.to_str().unwrap()])["passcode"]
        .as_str()
        .unwrap()
        .to_string();
    let out = open_with(
        &v,
        &bundle,
        &code,
        &["-o", path(&v, "doctor/a").to_str().unwrap()],
    );
    out.assert_ok("open with the passcode");
    assert!(
        out.stderr
            .contains("tell the patient you opened their emergency bundle"),
        "{out}"
    );
    // With the doctor's carnet key (and the card beside it), the receipt is signed.
    let key = path(&v, "doctor/urg.key");
    let mut c = carnet();
    c.args(["keygen", "--name", "Dr Paul Urgent", "--unprotected", "-o"])
        .arg(&key)
        .current_dir(v.root());
    c.ok();
    let receipt = path(&v, "doctor/accuse.age");
    let out = open_with(
        &v,
        &bundle,
        &code,
        &[
            "-i",
            key.to_str().unwrap(),
            "--receipt",
            receipt.to_str().unwrap(),
            "-o",
            path(&v, "doctor/b").to_str().unwrap(),
        ],
    );
    out.assert_ok("open with the passcode and a receipt");
    assert!(receipt.is_file(), "{out}");
    // An emergency doctor is not in the patient's directory: she accepts them, and learns who
    // looked.
    v.run(&["receive", receipt.to_str().unwrap()])
        .assert_code(EXIT_FAILURE, "an unknown professional's receipt");
    v.ok(&["receive", receipt.to_str().unwrap(), "--accept-new-pro"]);
    let grants = v.ok(&["grants", "--json"]).json();
    let g = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["to"][0] == "emergency")
        .expect("the emergency grant");
    assert!(g["opened_at"].is_string(), "{g}");
    let opened = v.ok(&["log", "--json", "--action", "opened"]).json();
    assert!(
        opened[0]["actor"].as_str().unwrap().starts_with("pro:"),
        "{opened}"
    );
}
