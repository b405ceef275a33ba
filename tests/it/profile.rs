//! The emergency profile (`carnet profile`) and its FHIR export (`carnet export --fhir`):
//! import, show, edit with its history kept, export round-trips; a malformed file is refused
//! with its line and leaves the vault as it was; nothing of it is in clear in the vault; the
//! International Patient Summary passes the FHIR library and the IPS invariants
//! (tests/fhir/validate_ips.py), even for an empty profile.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::util::{
    EXIT_FAILURE, PASSPHRASE, TestCommand, Tool, Vault, assert_same, hint, require_tool,
    shard_objects,
};

pub const EXAMPLE: &str = include_str!("../../examples/profile.toml");

/// A vault for "Marie Dupont" holding the example profile.
pub fn with_example() -> Vault {
    let v = Vault::new();
    v.ok(&["init", "--name", "Marie Dupont"]);
    let f = v.write("profile.toml", EXAMPLE.as_bytes());
    v.ok(&["profile", "import", f.to_str().unwrap()]);
    v
}

/// Asserts that no file of the vault holds `needle` in clear.
fn assert_nowhere_in_clear(v: &Vault, needle: &[u8]) {
    for f in crate::util::files_under(&v.dir) {
        let bytes = fs::read(&f).unwrap();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} holds {:?} in clear",
            f.display(),
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn a_profile_imported_shown_and_exported_round_trips_and_is_never_in_clear() {
    let v = with_example();
    let shown = v.ok(&["profile", "show", "--json"]).json();
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["source"], "import");
    let p = &shown["profile"];
    assert_eq!(p["blood_group"], "A+");
    assert_eq!(p["allergies"][0]["substance"], "Pénicilline");
    assert_eq!(p["allergies"][0]["severity"], "severe");
    assert_eq!(p["conditions"][0]["since"], "2023");
    assert_eq!(p["doctor"]["rpps"], "10005173140");
    assert_eq!(p["emergency_contacts"][0]["phone"], "+33 6 12 34 56 78");

    let text = v.ok(&["profile", "show"]).text();
    for needle in [
        "Patient : Marie Dupont",
        "Pénicilline — Œdème de Quincke [SÉVÈRE / SEVERE]",
        "Apixaban (Eliquis) 5 mg matin et soir",
        "Paul Dupont (fils) +33 6 12 34 56 78",
    ] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }

    // Exported and imported again: the same profile, so no new version.
    let out = v.work.join("back.toml");
    v.ok(&["profile", "export", "-o", out.to_str().unwrap()]);
    let again = v
        .ok(&["profile", "import", out.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(again, serde_json::json!({"version": 1, "changed": false}));
    let exported = fs::read_to_string(&out).unwrap();
    let back: toml::Table = toml::from_str(&exported).unwrap();
    let orig: toml::Table = toml::from_str(EXAMPLE).unwrap();
    assert_eq!(
        toml::to_string(&back).unwrap(),
        toml::to_string(&orig)
            .unwrap()
            .replace("since = 2023", "since = \"2023\""),
        "the exported TOML holds what was imported"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600,
        "health data: private file"
    );
    // Standard output, and the log records each access.
    assert_eq!(v.ok(&["profile", "export", "-o", "-"]).text(), exported);
    let log = v.ok(&["log", "--action", "profile", "--json"]).json();
    let ops: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["import", "show", "show", "export", "export"]);

    for needle in [
        "Pénicilline",
        "Quincke",
        "Paul Dupont",
        "Apixaban",
        "10005173140",
    ] {
        assert_nowhere_in_clear(&v, needle.as_bytes());
    }
    v.ok(&["verify", "--deep"]);
    v.ok(&["verify", "--offline"]);
}

#[test]
fn a_malformed_profile_is_refused_with_its_line_and_changes_nothing() {
    let v = with_example();
    let before = v.snapshot();
    let cases: [(&str, &[&str]); 4] = [
        (
            "language = \"fr\"\n\n[[allergies]\nsubstance = \"x\"\n",
            &["bad.toml, line 3:"],
        ),
        (
            "language = \"fr\"\nallergie = \"pollen\"\n",
            &["bad.toml, line 2: unknown field `allergie`"],
        ),
        (
            "[[allergies]]\nsubstance = \"x\"\nseverity = \"terrible\"\n",
            &["bad.toml, line 3:", "unknown variant `terrible`"],
        ),
        (
            "[[immunizations]]\nvaccine = \"x\"\ndate = \"2021-02-30\"\n",
            &["bad.toml, line 3:", "\"2021-02-30\" is not a date"],
        ),
    ];
    for (text, needles) in cases {
        let f = v.write("bad.toml", text.as_bytes());
        let out = v.run(&["profile", "import", f.to_str().unwrap()]);
        out.assert_refused(EXIT_FAILURE, needles, "a malformed profile");
        assert!(hint(&out.stderr).starts_with("fix that line"), "{out}");
        assert_same(&before, &v.snapshot(), "a refused import");
    }
    let f = v.write("bad.toml", b"blood_group = \"C+\"\n");
    v.run(&["profile", "import", f.to_str().unwrap()])
        .assert_refused(
            EXIT_FAILURE,
            &["blood_group \"C+\" is not one of A+, A-"],
            "an unknown blood group",
        );
    assert_same(&before, &v.snapshot(), "a refused import");
    // Without a terminal, edit says what to do instead of waiting for an editor.
    let out = v.run(&["profile", "edit"]);
    out.assert_refused(
        EXIT_FAILURE,
        &["standard input is not a terminal"],
        "edit without a terminal",
    );
    assert!(
        hint(&out.stderr).contains("carnet profile import FILE"),
        "{out}"
    );
    assert_same(&before, &v.snapshot(), "a refused edit");
}

#[test]
fn an_edit_makes_a_new_version_and_keeps_the_earlier_one() {
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let v = with_example();
    // The editor changes the blood group, and leaves a copy of what it was given.
    let saw = v.root().join("editor-saw.toml");
    let (out, runtime) = v.with_editor(
        &script,
        "profile edit --json",
        &format!(
            "cp \"$1\" '{}'\nsed -i 's/^blood_group = \"A+\"/blood_group = \"O-\"/' \"$1\"\n",
            saw.display()
        ),
    );
    out.assert_ok("profile edit through the editor");
    assert!(out.text().contains("\"version\": 2"), "{out}");
    assert!(
        fs::read_to_string(&saw)
            .unwrap()
            .contains("blood_group = \"A+\""),
        "the editor starts from the current profile"
    );
    assert!(
        fs::read_dir(&runtime).unwrap().next().is_none(),
        "the editor's private file is gone"
    );

    assert_eq!(
        v.ok(&["profile", "show", "--json"]).json()["profile"]["blood_group"],
        "O-"
    );
    let first = v
        .ok(&["profile", "show", "--version", "1", "--json"])
        .json();
    assert_eq!(first["profile"]["blood_group"], "A+", "version 1 is kept");
    let history = v.ok(&["profile", "history", "--json"]).json();
    let versions: Vec<(i64, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["version"].as_i64().unwrap(),
                h["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(1, "import"), (2, "edit")]);
    let old = v.work.join("v1.toml");
    v.ok(&[
        "profile",
        "export",
        "--version",
        "1",
        "-o",
        old.to_str().unwrap(),
    ]);
    assert!(
        fs::read_to_string(&old)
            .unwrap()
            .contains("blood_group = \"A+\"")
    );
    let out = v.run(&["profile", "show", "--version", "3"]);
    out.assert_refused(
        EXIT_FAILURE,
        &["the emergency profile has no version 3"],
        "a version that does not exist",
    );
    assert_eq!(
        hint(&out.stderr),
        "its versions run from 1 to 2 (`carnet profile history`)"
    );
    // Both versions' objects stay in the vault, listed by the index and checked.
    let shards = shard_objects(&v.dir, Some(PASSPHRASE), None).unwrap();
    assert_eq!(
        shards.len(),
        2,
        "both profile versions are sealed objects: {shards:?}"
    );
    v.ok(&["verify", "--deep"]);
    v.ok(&["verify", "--offline"]);
}

#[test]
fn a_damaged_profile_version_is_reported_by_verify() {
    let v = with_example();
    // The example vault holds no document: its only sealed object is the profile's.
    let objects = shard_objects(&v.dir, Some(PASSPHRASE), None).unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let id = objects.iter().next().unwrap();
    let path = v
        .dir
        .join("objects")
        .join(&id[..2])
        .join(format!("{id}.age"));
    crate::util::flip_middle(&path);
    let out = v.run(&["verify"]);
    out.assert_code(crate::util::EXIT_INTEGRITY, "a flipped byte in the profile");
    assert!(out.text().contains("emergency profile, version 1"), "{out}");
    v.run(&["profile", "show"])
        .assert_code(crate::util::EXIT_INTEGRITY, "show refuses it");
}

/// Runs tests/fhir/validate_ips.py on `json`; panics with its report when it refuses.
pub fn validate_ips(python: &Path, json: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhir/validate_ips.py");
    let out = TestCommand::from({
        let mut c = std::process::Command::new(python);
        c.arg(&script).arg(json);
        c
    })
    .run();
    out.assert_ok("the IPS passes the FHIR library and the IPS invariants");
    out.text()
}

fn resources<'a>(b: &'a Value, kind: &str) -> Vec<&'a Value> {
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

fn section_codes(b: &Value) -> Vec<String> {
    b["entry"][0]["resource"]["section"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"]["coding"][0]["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn export_fhir_is_a_valid_international_patient_summary() {
    let Some(python) = require_tool(Tool::FhirValidator) else {
        return;
    };
    let v = with_example();
    let hidden = v.add(&v.write("secret.txt", b"hidden from professionals"), &[]);
    v.ok(&["hide", &hidden]);
    let shown = v.add(
        &v.write("radio.txt", b"a visible result"),
        &["--category", "imagerie", "--date", "2026-01-02"],
    );
    let ips = v.work.join("ips/ips.json");
    let report = v
        .ok(&[
            "export",
            "--fhir",
            "-o",
            ips.to_str().unwrap(),
            "--documents",
            "--json",
        ])
        .json();
    assert_eq!(report["profile_version"], 1);
    assert_eq!(report["hidden_left_out"], 1);
    assert_eq!(report["documents"].as_array().unwrap().len(), 1);
    assert_eq!(report["documents"][0]["id"], shown.as_str());
    validate_ips(&python, &ips);

    let b: Value = serde_json::from_slice(&fs::read(&ips).unwrap()).unwrap();
    assert_eq!(b["type"], "document");
    assert!(
        b["identifier"]["value"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:")
    );
    assert_eq!(b["entry"][0]["resource"]["resourceType"], "Composition");
    assert_eq!(
        section_codes(&b),
        [
            "48765-2", "10160-0", "11450-4", "11369-6", "46264-8", "30954-2", "42348-3", "104605-1"
        ]
    );
    assert_eq!(resources(&b, "AllergyIntolerance").len(), 2);
    assert_eq!(resources(&b, "MedicationStatement").len(), 2);
    assert_eq!(
        resources(&b, "Patient")[0]["name"][0]["text"],
        "Marie Dupont"
    );
    // The document beside the JSON, as its DocumentReference says: TRE_A03 class, SHA-1.
    let refs = resources(&b, "DocumentReference");
    assert_eq!(refs.len(), 1, "the hidden document is left out");
    let att = &refs[0]["content"][0]["attachment"];
    assert_eq!(refs[0]["category"][0]["coding"][0]["code"], "31");
    let file = ips.parent().unwrap().join("2026-01-02 radio.txt");
    assert_eq!(att["url"], "2026-01-02%20radio.txt");
    assert_eq!(fs::read(&file).unwrap(), b"a visible result");
    use base64::Engine as _;
    use sha1::Digest as _;
    let sha1 = sha1::Sha1::digest(b"a visible result");
    assert_eq!(
        att["hash"],
        base64::engine::general_purpose::STANDARD.encode(sha1)
    );
    assert_eq!(att["size"], 16);
    let log = v.ok(&["log", "--action", "export", "--json"]).json();
    assert_eq!(log[0]["details"]["format"], "fhir-ips");
    assert_eq!(log[0]["documents"], serde_json::json!([shown]));

    // An existing file is not overwritten without --force; nothing is logged then.
    let before = v.snapshot();
    let out = v.run(&["export", "--fhir", "-o", ips.to_str().unwrap()]);
    out.assert_refused(EXIT_FAILURE, &["already exists"], "an existing JSON");
    assert!(hint(&out.stderr).contains("--force"), "{out}");
    assert_same(&before, &v.snapshot(), "a refused export");
}

#[test]
fn an_empty_profile_still_gives_a_valid_bundle() {
    let Some(python) = require_tool(Tool::FhirValidator) else {
        return;
    };
    let v = Vault::init();
    let ips = v.work.join("ips.json");
    let out = v.ok(&["export", "--fhir", "-o", ips.to_str().unwrap()]);
    assert!(
        out.stderr.contains("there is no emergency profile yet"),
        "{out}"
    );
    validate_ips(&python, &ips);
    let b: Value = serde_json::from_slice(&fs::read(&ips).unwrap()).unwrap();
    assert_eq!(section_codes(&b), ["48765-2", "10160-0", "11450-4"]);
    for s in b["entry"][0]["resource"]["section"].as_array().unwrap() {
        assert_eq!(s["emptyReason"]["coding"][0]["code"], "unavailable");
        assert!(s.get("entry").is_none());
    }
}
