//! Hidden documents (`hide`, `unhide`, category rules): left out of broad grants, refused by id
//! unless the patient insists, marked in listings, every change logged.

use std::path::PathBuf;

use crate::util::grants::{Lab, Patient, Pro, Unpacked};
use crate::util::*;

struct Setup {
    lab: Lab,
    p: Patient,
    pro: Pro,
    handle: String,
}

fn setup() -> Setup {
    let lab = Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let pro = lab.keygen("Dr Jeanne Martin", "jeanne.key", true, &[]);
    let handle = p.add_pro(&pro);
    Setup {
        lab,
        p,
        pro,
        handle,
    }
}

impl Setup {
    /// Grants ARGS to the professional; returns the titles the bundle holds (sorted) and the
    /// command's stderr.
    fn grant(&self, name: &str, args: &[&str]) -> (Vec<String>, String) {
        let bundle: PathBuf = self.lab.path(&format!("out/{name}.age"));
        let mut all = vec!["grant", "--to", &self.handle, "--expires", "7d", "-o"];
        let b = bundle.to_str().unwrap().to_string();
        all.push(&b);
        all.extend_from_slice(args);
        let out = self.p.ok(&all);
        let mut titles: Vec<String> = Unpacked::of(&bundle, &self.pro)
            .documents()
            .iter()
            .map(|d| d["title"].as_str().unwrap().to_string())
            .collect();
        titles.sort();
        (titles, out.stderr.clone())
    }

    fn ls_hidden(&self) -> Vec<String> {
        let j = self.p.ok(&["ls", "--hidden", "--json"]).json();
        j.as_array()
            .unwrap()
            .iter()
            .map(|d| d["title"].as_str().unwrap().to_string())
            .collect()
    }
}

#[test]
fn hidden_documents_are_left_out_of_broad_grants_and_refused_by_id() {
    let s = setup();
    let p = &s.p;
    p.add(
        "a.txt",
        b"alpha",
        &["--title", "A", "--category", "compte-rendu"],
    );
    p.add(
        "b.txt",
        b"beta",
        &["--title", "B", "--category", "imagerie"],
    );
    let c = p.add(
        "c.txt",
        b"gamma",
        &["--title", "C psy", "--category", "compte-rendu"],
    );

    let before = snapshot(&p.vault);
    p.run(&["hide", "ffffffff"])
        .fails(EXIT_FAILURE, &["no document with id ffffffff"]);
    p.run(&["hide"])
        .assert_code(EXIT_USAGE, "hide without a target");
    assert_same(&before, &snapshot(&p.vault), "refused hides");

    let out = p.ok(&["hide", &c[..8], "--json"]).json();
    assert_eq!(out["changed"][0]["visibility"][0], "MASQUE_PS");
    assert_eq!(s.ls_hidden(), ["C psy"]);
    let listed = p.ok(&["ls"]).text();
    let line = listed.lines().find(|l| l.contains("C psy")).unwrap();
    assert!(line.starts_with(&format!("{} h ", &c[..8])), "{line}");
    assert_eq!(
        p.ok(&["show", &c, "--json"]).json()["visibility"][0],
        "MASQUE_PS"
    );

    let (titles, err) = s.grant("all", &["--all"]);
    assert_eq!(titles, ["A", "B"]);
    assert!(
        err.contains("1 document(s) hidden from professionals were left out"),
        "{err}"
    );
    let (titles, _) = s.grant("cat", &["--category", "compte-rendu"]);
    assert_eq!(titles, ["A"]);

    let before = snapshot(&p.vault);
    let out = p.run(&[
        "grant",
        "--to",
        &s.handle,
        "--doc",
        &c,
        "--expires",
        "7d",
        "-o",
        "x.age",
    ]);
    out.fails(EXIT_FAILURE, &["is hidden from professionals"]);
    assert!(
        hint(&out.stderr).contains("--include-hidden"),
        "{}",
        out.stderr
    );
    assert_same(
        &before,
        &snapshot(&p.vault),
        "a refused grant of a hidden document",
    );

    // The patient insists: shared, with a warning (Dr Martin is not her médecin traitant).
    let (titles, err) = s.grant("insist", &["--doc", &c, "--include-hidden"]);
    assert_eq!(titles, ["C psy"]);
    assert!(err.contains("not your médecin traitant"), "{err}");

    // Her médecin traitant receives it without a warning.
    let gp = s.lab.keygen("Dr Paul Roux", "paul.key", true, &[]);
    let out = p.ok(&[
        "pro",
        "add",
        "--card",
        gp.card.to_str().unwrap(),
        "--role",
        "medecin-traitant",
        "--json",
    ]);
    assert_eq!(out.json()["role"], "medecin-traitant");
    let b = s.lab.path("out/gp.age");
    let out = p.ok(&[
        "grant",
        "--to",
        "paul-roux",
        "--doc",
        &c,
        "--include-hidden",
        "--expires",
        "7d",
        "-o",
        b.to_str().unwrap(),
    ]);
    assert!(!out.stderr.contains("médecin traitant"), "{}", out.stderr);

    p.ok(&["unhide", &c]);
    assert!(s.ls_hidden().is_empty());
    let (titles, _) = s.grant("after", &["--all"]);
    assert_eq!(titles, ["A", "B", "C psy"]);

    let hides = p.log_actions("hide");
    assert_eq!(hides.len(), 1);
    assert_eq!(hides[0]["documents"][0].as_str(), Some(c.as_str()));
    assert_eq!(hides[0]["details"]["from"][0], "MASQUE_PS");
    assert_eq!(p.log_actions("unhide").len(), 1);
    p.ok(&["verify"]);
}

#[test]
fn a_category_rule_hides_present_and_later_documents_until_lifted() {
    let s = setup();
    let p = &s.p;
    p.add(
        "a.txt",
        b"alpha",
        &["--title", "A", "--category", "imagerie"],
    );
    p.add(
        "b.txt",
        b"beta",
        &["--title", "B", "--category", "compte-rendu"],
    );
    let out = p.ok(&["hide", "--category", "imagerie"]).text();
    assert!(out.contains("1 document(s) now"), "{out}");
    let later = p.add(
        "c.txt",
        b"gamma",
        &["--title", "C", "--category", "imagerie"],
    );
    assert_eq!(s.ls_hidden(), ["A", "C"]);
    let (titles, _) = s.grant("all", &["--all"]);
    assert_eq!(titles, ["B"]);

    // Unhiding one document the rule covers says why it stays hidden.
    let out = p.ok(&["unhide", &later]);
    assert!(
        out.stderr.contains("stays hidden by the rule"),
        "{}",
        out.stderr
    );
    p.run(&["hide", "--category", "imagerie"])
        .fails(EXIT_FAILURE, &["already hidden"]);
    p.ok(&["unhide", "--category", "imagerie"]);
    assert!(s.ls_hidden().is_empty());
    let (titles, _) = s.grant("after", &["--all"]);
    assert_eq!(titles, ["A", "B", "C"]);
    let rules = p.log_actions("hide");
    assert_eq!(rules[0]["details"]["category"], "imagerie");
}

#[test]
fn hidden_from_guardians_is_not_hidden_from_professionals() {
    let s = setup();
    let p = &s.p;
    let a = p.add("a.txt", b"alpha", &["--title", "A"]);
    p.ok(&["hide", &a, "--from", "guardians"]);
    let d = &p.ok(&["ls", "--json"]).json()[0];
    assert_eq!(
        d["visibility"],
        serde_json::json!(["INVISIBLE_REPRESENTANTS_LEGAUX"])
    );
    let (titles, _) = s.grant("all", &["--all"]);
    assert_eq!(titles, ["A"]);
    p.ok(&["hide", &a, "--from", "all"]);
    let listed = p.ok(&["ls"]).text();
    assert!(listed.contains(&format!("{} * ", &a[..8])), "{listed}");
    // Unhiding is about professionals unless said otherwise.
    p.ok(&["unhide", &a]);
    assert_eq!(
        p.ok(&["ls", "--json"]).json()[0]["visibility"],
        serde_json::json!(["INVISIBLE_REPRESENTANTS_LEGAUX"])
    );
    p.ok(&["unhide", &a, "--from", "all"]);
    assert_eq!(
        p.ok(&["ls", "--json"]).json()[0]["visibility"],
        serde_json::json!([])
    );
}

#[test]
fn grant_all_leaves_the_patients_own_notes_out() {
    let s = setup();
    let p = &s.p;
    p.add("a.txt", b"alpha", &["--title", "A"]);
    p.ok(&["note", "Mes vertiges", "--title", "Note"]);
    let (titles, err) = s.grant("all", &["--all"]);
    assert_eq!(titles, ["A"]);
    assert!(err.contains("1 note(s) of your own were left out"), "{err}");
    let (titles, _) = s.grant("notes", &["--category", "note-patient"]);
    assert_eq!(titles, ["Note"]);
}

#[test]
fn moving_a_document_out_of_a_hidden_category_says_who_can_see_it_now() {
    let s = setup();
    let p = &s.p;
    let a = p.add(
        "a.txt",
        b"alpha",
        &["--title", "A", "--category", "synthese"],
    );
    p.ok(&["hide", "--category", "synthese"]);
    let out = p.ok(&["edit", &a, "--category", "autre"]);
    assert!(
        out.stderr.contains("is now visible to all") && out.stderr.contains("MASQUE_PS"),
        "{}",
        out.stderr
    );
    assert!(s.ls_hidden().is_empty());
    // An earlier version of a hidden document is hidden alike.
    p.ok(&["hide", &a]);
    let v1 = p.ok(&["show", &a, "--version", "1", "--json"]).json();
    assert_eq!(v1["visibility"], serde_json::json!(["MASQUE_PS"]));
    let text = p.ok(&["show", &a, "--version", "1"]).text();
    assert!(text.contains("hidden:     MASQUE_PS"), "{text}");
}
