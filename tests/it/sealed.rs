//! Documents hidden from guardians are sealed from a guardian's key (issue 11,
//! /work/notes/sealed-design.md → FORMAT.md): a guardian's `ls`, `show`, `cat`, `history`, `log`,
//! `grants`, `export` and a restored backup show no trace of them, and the reference `age` with
//! the guardian's key opens nothing that names them; the patient (and a recovery key) still read
//! everything, whichever came first, the guardian or the hiding.
//!
//! Every hidden document has a distinctive title, file name and content (`SECRET-CONTENT-…`),
//! so that a leak anywhere is found by searching for them.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::keyfiles::{
    add_guardian, files_opened_by, guardian_key, key_on, readable_with, with_key,
};
use crate::util::*;

const GUARDIAN: &str = "papa";
const HIDDEN_FROM_GUARDIANS: &str = "INVISIBLE_REPRESENTANTS_LEGAUX";
/// Every hidden document's content starts with it; no visible one contains it.
const SECRET: &str = "SECRET-CONTENT-";
/// A full id no document has.
const NO_SUCH_ID: &str = "0123456789abcdef0123456789abcdef";

/// A document the test added, with everything that would betray it.
struct Doc {
    id: String,
    /// Every title it had, oldest first.
    titles: Vec<String>,
    file: String,
    /// Every content it had, oldest first.
    contents: Vec<Vec<u8>>,
}

impl Doc {
    fn content(&self) -> &[u8] {
        self.contents.last().unwrap()
    }

    /// What must appear nowhere a guardian can read: the full id, every title, the file name,
    /// every content and its SHA-256.
    fn needles(&self) -> Vec<Vec<u8>> {
        let mut n = vec![self.id.clone().into_bytes(), self.file.clone().into_bytes()];
        n.extend(self.titles.iter().map(|t| t.clone().into_bytes()));
        n.extend(self.contents.iter().cloned());
        n.extend(self.contents.iter().map(|c| sha256_hex(c).into_bytes()));
        n
    }

    /// What must appear nowhere in what a guardian's command prints: the needles and the short
    /// id carnet prints.
    fn printed_needles(&self) -> Vec<Vec<u8>> {
        let mut n = self.needles();
        n.push(short(&self.id).as_bytes().to_vec());
        n
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that none of the hidden documents' printed needles is in `bytes`.
#[track_caller]
fn assert_no_needle(bytes: &[u8], hidden: &[&Doc], what: &str) {
    for d in hidden {
        for n in d.printed_needles() {
            assert!(
                !contains(bytes, &n),
                "{what} betrays the hidden document {} ({:?}): it holds {:?}\n{}",
                d.id,
                d.titles,
                text(&n),
                text(bytes)
            );
        }
    }
}

/// Asserts that a command's stdout and stderr hold no needle of the hidden documents.
#[track_caller]
fn assert_output_clean(out: &Out, hidden: &[&Doc], what: &str) {
    assert_no_needle(&out.stdout, hidden, &format!("{what} (stdout)"));
    assert_no_needle(out.stderr.as_bytes(), hidden, &format!("{what} (stderr)"));
}

/// A passphrase vault with one visible document, and a guardian (`papa`, a `carnet keygen`
/// key added with `--card`) when asked.
struct Family {
    v: Vault,
    /// The guardian's key file (made even before the guardian is added).
    key: PathBuf,
    card: PathBuf,
    visible: Doc,
}

impl Family {
    fn new(with_guardian: bool) -> Family {
        let v = Vault::init();
        let (key, card) = guardian_key(v.root(), GUARDIAN);
        let mut f = Family {
            visible: Doc {
                id: String::new(),
                titles: Vec::new(),
                file: String::new(),
                contents: Vec::new(),
            },
            v,
            key,
            card,
        };
        f.visible = f.add(
            "carnet-vaccins-2026-01-15.txt",
            "Vaccinations a jour",
            b"VISIBLE-CONTENT-vaccins DTP coqueluche",
            &[],
        );
        if with_guardian {
            f.add_guardian();
        }
        f
    }

    fn add_guardian(&self) {
        self.v.ok(&add_guardian(GUARDIAN, &self.card, &[]));
    }

    /// Adds `content` from a scratch file named `file`, titled `title`.
    fn add(&self, file: &str, title: &str, content: &[u8], extra: &[&str]) -> Doc {
        let p = self.v.write(file, content);
        let mut args = vec!["--title", title, "--date", "2026-01-15"];
        args.extend_from_slice(extra);
        Doc {
            id: self.v.add(&p, &args),
            titles: vec![title.to_string()],
            file: file.to_string(),
            contents: vec![content.to_vec()],
        }
    }

    /// A document with a distinctive title and content, not hidden yet.
    fn add_secret(&self, tag: &str, title: &str, extra: &[&str]) -> Doc {
        self.add(
            &format!("dossier-{tag}-confidentiel.txt"),
            title,
            format!("{SECRET}{tag}: suivi psychologique, ne pas divulguer").as_bytes(),
            extra,
        )
    }

    fn hide(&self, d: &Doc) {
        self.v.ok(&["hide", &d.id, "--from", "guardians"]);
    }

    /// carnet as the guardian on the vault.
    fn guardian(&self, args: &[&str]) -> Out {
        with_key(&self.v, &self.key, args)
    }

    /// carnet as the patient on another vault folder (a restore).
    fn patient_on(&self, dir: &Path, args: &[&str]) -> Out {
        let mut c = self.v.cmd_on(dir, &[]);
        c.args(args);
        c.run()
    }
}

/// `ls --json` ids.
fn ids_of(listing: &Value) -> Vec<String> {
    let mut ids: Vec<String> = listing
        .as_array()
        .expect("ls --json prints an array")
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted_ids(docs: &[&Doc]) -> Vec<String> {
    let mut ids: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    ids
}

/// Asserts that asking for `id` failed exactly as asking for an id no document has: same exit
/// code, nothing on stdout, and the same stderr once the id typed is set aside.
#[track_caller]
fn assert_unknown(got: &Out, id: &str, unknown: &Out, what: &str) {
    got.fails(EXIT_FAILURE, &["no document with id"]);
    assert_eq!(got.code, unknown.code, "{what}: exit code{got}");
    assert!(got.stdout.is_empty(), "{what}: stdout{got}");
    assert_eq!(
        got.stderr.replace(id, "ID"),
        unknown.stderr.replace(NO_SUCH_ID, "ID"),
        "{what}: the refusal must read as for an unknown id{got}"
    );
}

/// As the holder of `key` on the vault folder `dir`: the hidden documents leave no trace in
/// `ls` (text, --json, --hidden), `show`, `cat`, `history` (refused as unknown ids), `log`
/// (text, --json), `grants --json` and `export --all`, which show exactly the `visible` ones.
#[track_caller]
fn assert_no_trace(dir: &Path, key: &Path, hidden: &[&Doc], visible: &[&Doc]) {
    let g = |args: &[&str]| key_on(dir, key, args);

    let listing = g(&["ls", "--json"]).ok();
    assert_output_clean(&listing, hidden, "the guardian's ls --json");
    assert_eq!(
        ids_of(&listing.json()),
        sorted_ids(visible),
        "the guardian's ls --json lists exactly the visible documents"
    );
    let text_ls = g(&["ls"]).ok();
    assert_output_clean(&text_ls, hidden, "the guardian's ls");
    let rows: Vec<String> = text_ls
        .text()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("ID "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        rows.len(),
        visible.len(),
        "the guardian's ls shows one row per visible document: {rows:#?}"
    );
    let only_hidden = g(&["ls", "--hidden", "--json"]).ok();
    assert_output_clean(&only_hidden, hidden, "the guardian's ls --hidden --json");
    for d in hidden {
        let search = g(&["ls", "--json", "--search", &d.titles[0]]).ok();
        assert_eq!(
            search.json(),
            serde_json::json!([]),
            "the guardian's ls --search TITLE"
        );
    }

    for cmd in ["show", "cat", "history"] {
        let unknown = g(&[cmd, NO_SUCH_ID]);
        for d in hidden {
            assert_unknown(
                &g(&[cmd, &d.id]),
                &d.id,
                &unknown,
                &format!("the guardian's {cmd} of a hidden document"),
            );
            let by_prefix = g(&[cmd, short(&d.id)]);
            by_prefix.fails(EXIT_FAILURE, &["no document with id"]);
        }
    }

    for args in [&["log"][..], &["log", "--json"], &["grants", "--json"]] {
        let out = g(args).ok();
        assert_output_clean(&out, hidden, &format!("the guardian's {}", args.join(" ")));
    }

    let exported = dir
        .parent()
        .unwrap()
        .join(format!("export-{}", sha256_hex(s(key).as_bytes())));
    let out = g(&["export", "--all", "-o", s(&exported)]).ok();
    assert_output_clean(&out, hidden, "the guardian's export --all");
    let written = files(&exported);
    assert_eq!(
        written.len(),
        visible.len(),
        "the guardian's export --all writes the visible documents only: {:?}",
        written.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &written {
        assert_no_needle(name.as_bytes(), hidden, "an exported file's name");
        assert_no_needle(bytes, hidden, &format!("the exported file {name}"));
    }
    for d in visible {
        assert!(
            written.values().any(|b| b == d.content()),
            "the guardian's export holds the visible document {:?}",
            d.titles
        );
    }
    fs::remove_dir_all(&exported).unwrap();
}

/// As the patient on the vault folder `dir`: each hidden document is listed, marked hidden from
/// guardians, and reads back byte for byte.
#[track_caller]
fn assert_patient_reads(f: &Family, dir: &Path, hidden: &[&Doc]) {
    let listing = f.patient_on(dir, &["ls", "--json"]).ok().json();
    for d in hidden {
        let row = listing
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == d.id.as_str())
            .unwrap_or_else(|| panic!("the patient's ls lists {:?}: {listing}", d.titles));
        assert!(
            row["visibility"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == HIDDEN_FROM_GUARDIANS),
            "{row}"
        );
        assert_eq!(row["title"], d.titles.last().unwrap().as_str(), "{row}");
        assert_bytes_eq(
            &f.patient_on(dir, &["cat", &d.id]).ok().stdout,
            d.content(),
            "the patient's cat of a hidden document",
        );
    }
}

#[test]
fn a_document_hidden_once_a_guardian_exists_leaves_the_guardian_no_trace() {
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    // The guardian saw it while it was visible: those views are logged, and get sealed too.
    assert_eq!(f.guardian(&["cat", &h.id]).ok().stdout, h.content());
    f.hide(&h);
    f.v.ok(&["show", &h.id]);

    assert_no_trace(&f.v.dir, &f.key, &[&h], &[&f.visible]);
    assert_patient_reads(&f, &f.v.dir, &[&h]);
    let shown = f.v.ok(&["show", &h.id, "--json"]).json();
    assert_eq!(shown["title"], "Consultation confidentielle");

    // The guardian adding the same bytes is not told that the vault holds them already.
    let copy = f.v.write("copie.txt", h.content());
    let out = f
        .guardian(&[
            "add",
            "--json",
            s(&copy),
            "--title",
            "Copie",
            "--date",
            "2026-01-16",
        ])
        .ok();
    for n in [h.id.as_str(), short(&h.id), &h.titles[0]] {
        assert!(
            !out.text().contains(n) && !out.stderr.contains(n),
            "the guardian's add names the hidden document ({n}){out}"
        );
    }
    assert_eq!(out.json()[0]["status"], "added", "{out}");
}

#[test]
fn a_guardian_added_after_a_document_was_hidden_sees_no_trace_of_it() {
    let f = Family::new(false);
    let h = f.add_secret("h2", "Consultation confidentielle", &[]);
    f.hide(&h);
    f.v.ok(&["cat", &h.id]);
    // A guardian given by their public key this time (`--recipient age1…`).
    let key = f.v.root().join("maman.key");
    let id = write_identity_file(&key);
    let j =
        f.v.ok(&[
            "key",
            "add",
            "--guardian",
            "--name",
            "maman",
            "--recipient",
            &id.to_public().to_string(),
            "--json",
        ])
        .json();
    assert_eq!(j["role"], "guardian", "{j}");

    assert_no_trace(&f.v.dir, &key, &[&h], &[&f.visible]);
    assert_patient_reads(&f, &f.v.dir, &[&h]);
    with_key(&f.v, &key, &["cat", &f.visible.id]).ok();
    let views = f.v.ok(&["log", "--json", "--action", "view"]).json();
    assert!(
        views
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "guardian:maman"),
        "the new guardian opened the vault: {views}"
    );
}

/// Asserts that nothing the holder of `key` reads with the reference age names the hidden
/// documents, and that it does read the visible documents' content (so that a decryption
/// that never works cannot pass).
#[track_caller]
fn assert_sealed_from(age: &Path, dir: &Path, key: &Path, hidden: &[&Doc], visible: &[&Doc]) {
    let readable = readable_with(age, dir, key);
    for (name, plain) in &readable {
        for d in hidden {
            for n in d.needles() {
                assert!(
                    !contains(plain, &n),
                    "{name}, opened with the guardian's key and the reference age, holds {:?} \
                     of the hidden document {:?}",
                    text(&n),
                    d.titles
                );
            }
        }
        assert!(
            !contains(plain, SECRET.as_bytes()),
            "{name} holds a hidden document's content"
        );
    }
    for d in visible {
        assert!(
            readable.iter().any(|(_, p)| contains(p, d.content())),
            "the guardian's key reads the visible document {:?} with age -d (files read: {:?})",
            d.titles,
            readable.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_guardians_key_opens_nothing_that_names_a_hidden_document_with_the_reference_age() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let f = Family::new(true);
    // Hidden as soon as added, then read (view entries), corrected (edit, replace).
    let mut h1 = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h1);
    f.v.ok(&["show", &h1.id]);
    assert_eq!(f.v.ok(&["cat", &h1.id]).stdout, h1.content());
    let title = "Consultation confidentielle (corrigee)";
    f.v.ok(&["edit", &h1.id, "--title", title]);
    h1.titles.push(title.to_string());
    let v2 = format!("{SECRET}h1-v2: compte rendu signe").into_bytes();
    let p = f.v.write("h1-v2.txt", &v2);
    f.v.ok(&["replace", &h1.id, s(&p), "--reason", "version signee"]);
    h1.contents.push(v2);
    // Added, read, corrected, and only then hidden: its earlier entries are sealed after the
    // fact.
    let mut h2 = f.add_secret(
        "h2",
        "Bilan psychologique reserve",
        &["--author", "Dr Vidal"],
    );
    f.v.ok(&["show", &h2.id]);
    f.v.ok(&["cat", &h2.id]);
    f.guardian(&["cat", &h2.id]).ok();
    let title = "Bilan psychologique reserve v2";
    f.v.ok(&["edit", &h2.id, "--title", title]);
    h2.titles.push(title.to_string());
    f.hide(&h2);
    // The guardian reads the visible document.
    f.guardian(&["cat", &f.visible.id]).ok();

    assert_sealed_from(&age, &f.v.dir, &f.key, &[&h1, &h2], &[&f.visible]);
    assert_patient_reads(&f, &f.v.dir, &[&h1, &h2]);
    let history = f.v.ok(&["history", &h1.id, "--json"]).json();
    assert_eq!(history.as_array().unwrap().len(), 3, "{history}");
}

#[test]
fn the_guardian_acts_under_their_name_and_the_patient_sees_the_whole_log() {
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h);
    f.v.ok(&["show", &h.id]);
    f.v.ok(&["cat", &h.id]);
    f.guardian(&["cat", &f.visible.id]).ok();
    f.guardian(&[
        "note",
        "Rendez-vous orthodontiste le 3 mars",
        "--title",
        "RDV ortho",
    ])
    .ok();
    f.v.ok(&["cat", &h.id]);

    let patient: Vec<Value> =
        f.v.ok(&["log", "--json"])
            .json()
            .as_array()
            .unwrap()
            .clone();
    let seqs: Vec<u64> = patient.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=patient.len() as u64).collect::<Vec<_>>(),
        "the patient's log is whole"
    );
    let names_h = |e: &Value| e.to_string().contains(&h.id);
    let views_of_h: Vec<&Value> = patient
        .iter()
        .filter(|e| e["action"] == "view" && names_h(e))
        .collect();
    assert_eq!(views_of_h.len(), 3, "the patient's views of {}", h.id);
    assert!(views_of_h.iter().all(|e| e["actor"] == "patient"));
    assert!(
        patient
            .iter()
            .any(|e| e["action"] == "hide" && names_h(e) && e["actor"] == "patient"),
        "the hide entry"
    );
    let by_guardian: Vec<&str> = patient
        .iter()
        .filter(|e| e["actor"] == format!("guardian:{GUARDIAN}").as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(by_guardian, ["view", "note"], "{patient:#?}");
    let text_log = f.v.ok(&["log"]).text();
    assert!(
        text_log.contains("Consultation confidentielle"),
        "the patient's log names the hidden document:\n{text_log}"
    );
    assert!(
        text_log.contains(&format!("guardian:{GUARDIAN}  note")),
        "{text_log}"
    );

    // The guardian's log is the patient's without the entries that name the hidden document.
    let guardian = f.guardian(&["log", "--json"]).ok().json();
    let expected: Vec<Value> = patient.iter().filter(|e| !names_h(e)).cloned().collect();
    assert_eq!(
        guardian.as_array().unwrap(),
        &expected,
        "the guardian's log --json"
    );
    // The guardian's note is in the record, for both.
    let notes = f
        .guardian(&["ls", "--json", "--search", "RDV ortho"])
        .ok()
        .json();
    assert_eq!(notes.as_array().unwrap().len(), 1, "{notes}");
}

#[test]
fn verify_passes_for_the_patient_the_guardian_and_offline_with_sealed_documents() {
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.v.ok(&["cat", &h.id]);
    f.hide(&h);
    f.v.ok(&["cat", &h.id]);
    f.v.ok(&["edit", &h.id, "--title", "Consultation confidentielle 2"]);
    f.guardian(&["cat", &f.visible.id]).ok();

    f.v.ok(&["verify"]);
    f.v.ok(&["verify", "--deep"]);
    let out = f.guardian(&["verify"]);
    out.assert_ok("the guardian's verify");
    assert_output_clean(&out, &[&h], "the guardian's verify");
    let mut c = carnet();
    c.args(["--vault", s(&f.v.dir), "verify", "--offline"]);
    c.ok();
    // The verifications were logged; the chain still holds for both.
    f.v.ok(&["verify"]);
    f.guardian(&["verify"]).ok();
}

#[test]
fn unhiding_from_guardians_shows_the_document_to_the_guardian_again() {
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h);
    f.v.ok(&["cat", &h.id]);
    f.guardian(&["cat", &h.id])
        .fails(EXIT_FAILURE, &["no document with id"]);

    f.v.ok(&["unhide", &h.id, "--from", "guardians"]);
    let listing = f.guardian(&["ls", "--json"]).ok().json();
    assert_eq!(
        ids_of(&listing),
        sorted_ids(&[&f.visible, &h]),
        "the guardian lists it again"
    );
    assert_bytes_eq(
        &f.guardian(&["cat", &h.id]).ok().stdout,
        h.content(),
        "the guardian reads it",
    );
    let shown = f.guardian(&["show", &h.id, "--json"]).ok().json();
    assert_eq!(shown["title"], "Consultation confidentielle");
    f.v.ok(&["verify"]);
    f.guardian(&["verify"]).ok();
}

#[test]
fn a_category_rule_seals_its_documents_and_a_guardian_cannot_add_to_it() {
    let f = Family::new(true);
    let before_rule = f.add_secret("r1", "Synthese psychiatrique", &["--category", "synthese"]);
    f.v.ok(&["hide", "--category", "synthese", "--from", "guardians"]);
    let after_rule = f.add_secret("r2", "Synthese addictologie", &["--category", "synthese"]);
    f.v.ok(&["cat", &after_rule.id]);

    assert_no_trace(
        &f.v.dir,
        &f.key,
        &[&before_rule, &after_rule],
        &[&f.visible],
    );
    assert_patient_reads(&f, &f.v.dir, &[&before_rule, &after_rule]);

    // The guardian cannot add to the sealed category, nor lift the rule; nothing is written.
    let before = f.v.snapshot();
    let p =
        f.v.write("guardian-synthese.txt", b"synthese ecrite par le tuteur");
    let out = f.guardian(&[
        "add",
        s(&p),
        "--category",
        "synthese",
        "--date",
        "2026-01-16",
    ]);
    let err = assert_error(&out, &[]);
    assert!(!hint(&err).is_empty(), "{out}");
    assert_same(
        &before,
        &f.v.snapshot(),
        "a guardian's refused add to a category hidden from guardians",
    );
    let out = f.guardian(&["unhide", "--category", "synthese", "--from", "guardians"]);
    assert_error(&out, &["guardian"]);
    assert_same(
        &before,
        &f.v.snapshot(),
        "a guardian's refused unhide of the rule",
    );
    // Elsewhere the guardian adds as before.
    let p = f.v.write("guardian-autre.txt", b"certificat de sport");
    f.guardian(&[
        "add",
        s(&p),
        "--category",
        "certificat",
        "--date",
        "2026-01-16",
    ])
    .ok();
}

#[test]
fn grants_naming_a_hidden_document_are_not_shown_to_the_guardian() {
    let f = Family::new(true);
    let (_, card) = guardian_key(f.v.root(), "jeanne");
    let handle = f.v.ok(&["pro", "add", "--card", s(&card)]).text();
    let handle = handle.trim();
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    let grant = |name: &str, docs: &[&str]| -> String {
        let out = f.v.root().join(format!("{name}.age"));
        let mut args = vec!["grant", "--to", handle, "--expires", "7d", "-o", s(&out)];
        args.push("--doc");
        args.extend_from_slice(docs);
        args.push("--json");
        f.v.ok(&args).json()["id"].as_str().unwrap().to_string()
    };
    // A grant made before the hiding, one made after, and one of the visible document alone.
    let before = grant("before", &[&f.visible.id, &h.id]);
    f.hide(&h);
    let after = grant("after", &[&h.id]);
    let open = grant("open", &[&f.visible.id]);

    let patient = f.v.ok(&["grants", "--json"]).json();
    let mut ids: Vec<&str> = patient
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![before.as_str(), after.as_str(), open.as_str()];
    want.sort();
    assert_eq!(ids, want, "the patient's grants --json: {patient}");

    let guardian = f.guardian(&["grants", "--json"]).ok();
    assert_output_clean(&guardian, &[&h], "the guardian's grants --json");
    let listed: Vec<String> = guardian
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, [open.as_str()], "the guardian's grants --json");
    for g in [&before, &after] {
        for args in [&["grants"][..], &["log", "--json"], &["log"]] {
            let out = f.guardian(args).ok();
            assert!(
                !out.text().contains(g.as_str()) && !out.text().contains(short(g)),
                "the guardian's {} names the grant {g}\n{out}",
                args.join(" ")
            );
        }
    }
    f.v.ok(&["verify"]);
    f.guardian(&["verify"]).ok();
}

#[test]
fn a_restored_backup_keeps_hidden_documents_sealed_from_the_guardian() {
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h);
    f.v.ok(&["cat", &h.id]);
    let zip = f.v.root().join("carnet-backup.zip");
    f.v.ok(&["backup", "-o", s(&zip)]);
    let restored = f.v.root().join("restored");
    let mut c = carnet();
    c.args(["--vault", s(&restored), "restore", s(&zip)]);
    c.ok();

    let listing = key_on(&restored, &f.key, &["ls", "--json"]).ok();
    assert_output_clean(&listing, &[&h], "the guardian's ls of the restored vault");
    assert_eq!(ids_of(&listing.json()), sorted_ids(&[&f.visible]));
    assert_no_trace(&restored, &f.key, &[&h], &[&f.visible]);
    assert_patient_reads(&f, &restored, &[&h]);
    f.patient_on(&restored, &["verify"]).ok();
    key_on(&restored, &f.key, &["verify"]).ok();
}

#[test]
fn a_recovery_key_added_before_or_after_hiding_reads_hidden_documents() {
    // Before: the recovery key exists when the sealed key is first made.
    let f = Family::new(true);
    let recovery = f.v.root().join("recovery.key");
    f.v.ok(&["key", "add", "--recovery", "-o", s(&recovery)]);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h);
    assert_bytes_eq(
        &with_key(&f.v, &recovery, &["cat", &h.id]).ok().stdout,
        h.content(),
        "a recovery key added before the hiding",
    );
    let listing = with_key(&f.v, &recovery, &["ls", "--json"]).ok().json();
    assert_eq!(ids_of(&listing), sorted_ids(&[&f.visible, &h]));

    // After: the recovery key is made once something is sealed already.
    let f = Family::new(true);
    let h = f.add_secret("h2", "Consultation confidentielle", &[]);
    f.hide(&h);
    let recovery = f.v.root().join("recovery.key");
    f.v.ok(&["key", "add", "--recovery", "-o", s(&recovery)]);
    assert_bytes_eq(
        &with_key(&f.v, &recovery, &["cat", &h.id]).ok().stdout,
        h.content(),
        "a recovery key added after the hiding",
    );
    let later = f.add_secret("h3", "Bilan psychologique reserve", &[]);
    f.hide(&later);
    assert_bytes_eq(
        &with_key(&f.v, &recovery, &["cat", &later.id]).ok().stdout,
        later.content(),
        "a document hidden after the recovery key was added",
    );
    let log = with_key(&f.v, &recovery, &["log", "--json"]).ok();
    assert!(
        log.text().contains(&later.id),
        "the recovery key reads the sealed log entries\n{log}"
    );
    f.guardian(&["cat", &later.id])
        .fails(EXIT_FAILURE, &["no document with id"]);
}

#[test]
fn the_recovery_key_reads_the_sealed_objects_and_log_entries_with_the_reference_age() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let f = Family::new(true);
    let recovery = f.v.root().join("recovery.key");
    f.v.ok(&["key", "add", "--recovery", "-o", s(&recovery)]);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h);
    f.v.ok(&["cat", &h.id]);

    // The recovery slot holds the sealed key, so age alone reads the sealed document, and the
    // sealed log lines (age files carried as base64 in the log) that name it.
    let readable = readable_with(&age, &f.v.dir, &recovery);
    assert!(
        readable.iter().any(|(_, p)| p == h.content()),
        "the recovery key reads the hidden document's object with age -d"
    );
    assert!(
        readable
            .iter()
            .any(|(n, p)| n.starts_with("log/") && n.contains('#') && contains(p, h.id.as_bytes())),
        "a sealed log line naming the hidden document opens with the recovery key: {:?}",
        readable.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    // The guardian's key, through the same reader, reads none of it.
    assert_sealed_from(&age, &f.v.dir, &f.key, &[&h], &[&f.visible]);
}

#[test]
fn rekey_keeps_hidden_documents_sealed_and_readable_by_the_patient() {
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h);
    f.v.ok(&["cat", &h.id]);
    f.v.ok(&["rekey"]);

    f.v.ok(&["verify"]);
    f.guardian(&["verify"]).ok();
    assert_patient_reads(&f, &f.v.dir, &[&h]);
    assert_no_trace(&f.v.dir, &f.key, &[&h], &[&f.visible]);
    // Hiding goes on working after the re-encryption.
    let later = f.add_secret("h2", "Bilan psychologique reserve", &[]);
    f.hide(&later);
    assert_patient_reads(&f, &f.v.dir, &[&h, &later]);
    f.guardian(&["cat", &later.id])
        .fails(EXIT_FAILURE, &["no document with id"]);
    f.v.ok(&["verify"]);
}

#[test]
fn removing_the_guardian_with_sealed_documents_leaves_no_file_their_key_opens() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h);
    f.v.ok(&["cat", &h.id]);
    assert!(
        !files_opened_by(&age, &f.v.dir, &f.key).is_empty(),
        "the guardian's slot opens before"
    );

    f.v.ok(&["key", "rm", GUARDIAN]);
    assert_eq!(
        files_opened_by(&age, &f.v.dir, &f.key),
        Vec::<String>::new(),
        "files the removed guardian's key still opens"
    );
    f.guardian(&["ls"])
        .fails(EXIT_FAILURE, &["does not open this vault"]);
    f.v.ok(&["verify"]);
    let mut c = carnet();
    c.args(["--vault", s(&f.v.dir), "verify", "--offline"]);
    c.ok();
    assert_patient_reads(&f, &f.v.dir, &[&h]);
    assert_bytes_eq(
        &f.v.ok(&["cat", &f.visible.id]).stdout,
        f.visible.content(),
        "the visible document",
    );
}

#[test]
fn an_identity_file_vault_refuses_to_hide_from_an_existing_guardian() {
    let v = Vault::blank(KeyMode::External, temp_dir("carnet-sealed-"));
    v.ok(&["init"]);
    let id = v.add(
        &v.write("dossier-h1-confidentiel.txt", b"SECRET-CONTENT-h1"),
        &["--title", "Consultation confidentielle"],
    );
    let (key, card) = guardian_key(v.root(), GUARDIAN);
    v.ok(&add_guardian(GUARDIAN, &card, &[]));

    let before = v.snapshot();
    for args in [
        &["hide", &id, "--from", "guardians"][..],
        &["hide", &id, "--from", "all"],
        &["hide", "--category", "autre", "--from", "guardians"],
    ] {
        let out = v.run(args);
        let err = assert_error(&out, &["guardian"]);
        assert!(!hint(&err).is_empty(), "{out}");
        assert_same(
            &before,
            &v.snapshot(),
            &format!("a refused {}", args.join(" ")),
        );
    }
    // Nothing changed for the guardian either.
    assert_eq!(
        with_key(&v, &key, &["cat", &id]).ok().stdout,
        b"SECRET-CONTENT-h1"
    );
}

/// The number of log entries `verify` reports ("ok: N documents, M log entries").
fn verified_entries(out: &Out) -> u64 {
    let t = out.text();
    let n = t
        .split(" log entries")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok());
    n.unwrap_or_else(|| panic!("verify reports its log entries\n{out}"))
}

#[test]
fn the_patients_verify_opens_the_sealed_log_lines_and_the_guardians_does_not() {
    // Review finding: verify took the sealed key as a spare identity only, so it never checked
    // (nor counted) the sealed lines for the patient.
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.v.ok(&["cat", &h.id]);
    f.hide(&h);
    f.v.ok(&["cat", &h.id]);
    let patient = verified_entries(&f.v.ok(&["verify"]));
    let all = f.v.ok(&["log", "--json"]).json();
    // `verify` appends its own entry after it counts.
    assert_eq!(
        patient + 1,
        all.as_array().unwrap().len() as u64,
        "the patient's verify checks every entry, the sealed ones included"
    );
    let guardian = verified_entries(&f.guardian(&["verify"]).ok());
    // The guardian skips the sealed ones: add, the view before the hide, the hide, the view.
    assert_eq!(guardian + 4, patient + 1, "the guardian's verify");
}

#[test]
fn editing_a_document_into_a_category_hidden_from_guardians_seals_its_grants() {
    // Review finding: `edit --category` sealed the document but left its grant in clear, where
    // the guardian read the grant's documents and purpose.
    let f = Family::new(true);
    let (_, card) = guardian_key(f.v.root(), "jeanne");
    let handle = f.v.ok(&["pro", "add", "--card", s(&card)]).text();
    let h = f.add_secret("h1", "Echographie", &["--category", "imagerie"]);
    let bundle = f.v.root().join("g.age");
    f.v.ok(&[
        "grant",
        "--to",
        handle.trim(),
        "--expires",
        "7d",
        "--purpose",
        "suivi-confidentiel",
        "-o",
        s(&bundle),
        "--doc",
        &h.id,
    ]);
    f.v.ok(&["hide", "--category", "synthese", "--from", "guardians"]);
    f.v.ok(&["edit", &h.id, "--category", "synthese"]);
    let out = f.guardian(&["grants", "--json"]).ok();
    assert_output_clean(&out, &[&h], "the guardian's grants --json");
    assert_eq!(out.json(), serde_json::json!([]), "{out}");
    assert!(!out.text().contains("suivi-confidentiel"), "{out}");
    assert_eq!(
        f.v.ok(&["grants", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_no_trace(&f.v.dir, &f.key, &[&h], &[&f.visible]);
    f.v.ok(&["verify"]);
}

#[test]
fn a_guardian_added_while_only_a_category_rule_hides_from_guardians_cannot_read_its_documents() {
    // Review finding: the sealed key was made for hidden documents, not for a rule alone, and a
    // document added to the category afterwards was stored in clear.
    let f = Family::new(false);
    f.v.ok(&["hide", "--category", "synthese", "--from", "guardians"]);
    f.add_guardian();
    let h = f.add_secret("r1", "Synthese psychiatrique", &["--category", "synthese"]);
    assert_no_trace(&f.v.dir, &f.key, &[&h], &[&f.visible]);
    assert_patient_reads(&f, &f.v.dir, &[&h]);
}

#[test]
fn an_identity_file_vault_refuses_a_guardian_while_a_category_rule_hides_from_guardians() {
    // Review finding: only hidden documents were counted, so a rule alone let the guardian in,
    // and later documents of the category were readable with their key.
    let v = Vault::blank(KeyMode::External, temp_dir("carnet-sealed-"));
    v.ok(&["init"]);
    v.ok(&["hide", "--category", "synthese", "--from", "guardians"]);
    let (_, card) = guardian_key(v.root(), GUARDIAN);
    let before = v.snapshot();
    let out = v.run(&add_guardian(GUARDIAN, &card, &[]));
    let err = assert_error(&out, &["guardian"]);
    assert!(!hint(&err).is_empty(), "{out}");
    assert_same(&before, &v.snapshot(), "a refused key add --guardian");
}

#[test]
fn a_document_merged_from_a_mirror_into_a_category_hidden_from_guardians_is_sealed() {
    // Review finding: `backup --to DIR --merge` filed the document as sealed but copied its
    // object as it was, encrypted for the vault identity the guardian's slot unwraps.
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let f = Family::new(true);
    let mirror = f.v.root().join("mirror");
    f.v.ok(&["backup", "--to", s(&mirror)]);
    let p =
        f.v.write("dossier-m1-confidentiel.txt", b"SECRET-CONTENT-m1 echo");
    let mut c = f.v.cmd_on(&mirror, &[]);
    c.args([
        "add",
        s(&p),
        "--title",
        "Echo confidentielle",
        "--category",
        "imagerie",
    ]);
    let id = c.ok().text();
    assert!(!id.is_empty());
    f.v.ok(&["hide", "--category", "imagerie", "--from", "guardians"]);
    f.v.ok(&["backup", "--to", s(&mirror), "--merge"]);
    let listing = f.v.ok(&["ls", "--json"]).json();
    let merged = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == "Echo confidentielle")
        .unwrap_or_else(|| panic!("merged: {listing}"));
    let doc = Doc {
        id: merged["id"].as_str().unwrap().to_string(),
        titles: vec!["Echo confidentielle".into()],
        file: "dossier-m1-confidentiel.txt".into(),
        contents: vec![b"SECRET-CONTENT-m1 echo".to_vec()],
    };
    assert_sealed_from(&age, &f.v.dir, &f.key, &[&doc], &[&f.visible]);
    assert_no_trace(&f.v.dir, &f.key, &[&doc], &[&f.visible]);
}

#[test]
fn a_kill_at_any_rename_or_removal_of_the_first_hide_leaves_a_vault_that_verifies_and_seals_when_run_again()
 {
    // Review finding: the first `hide --from guardians` sealed earlier entries to a key that a
    // rollback then dropped, and a kill left files the signed index did not list. Each run
    // kills it at one rename or removal (strace's fault injection: SIGKILL, as a power cut).
    let Some(strace) = require_tool(Tool::Strace) else {
        return;
    };
    for syscall in ["renameat", "renameat2", "unlink"] {
        // Every call of the kind, until the command runs to its end without meeting the n-th.
        for n in 1.. {
            assert!(n < 80, "hide makes fewer than 80 {syscall} calls");
            let at = format!("{syscall} #{n}");
            let f = Family::new(true);
            let h = f.add_secret("k1", "Consultation confidentielle", &[]);
            f.v.ok(&["cat", &h.id]);
            f.guardian(&["cat", &h.id]).ok();
            let wrapper = kill_at(&strace, syscall, n);
            let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
            let mut c = f.v.cmd_on(&f.v.dir, &wrapper);
            c.args(["hide", &h.id, "--from", "guardians"]);
            if c.run().code == Some(0) {
                assert!(n > 1, "hide made no {syscall} call to kill it at");
                break;
            }

            // The guardian's command comes first and finishes or undoes the hide: if it was
            // finished, nothing the guardian reads names the document any more (review
            // finding: a guardian finishing it left the entries in clear for good).
            f.guardian(&["cat", &f.visible.id]).ok();
            let hidden =
                f.v.ok(&["ls", "--json"])
                    .json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| {
                        d["id"] == h.id.as_str()
                            && d["visibility"]
                                .as_array()
                                .is_some_and(|v| v.iter().any(|c| c == HIDDEN_FROM_GUARDIANS))
                    });
            if hidden {
                let log = f.guardian(&["log", "--json"]).ok();
                assert_output_clean(
                    &log,
                    &[&h],
                    &format!("the guardian's log after a kill at {at}"),
                );
            }
            for (who, out) in [
                ("the patient's", f.v.run(&["verify"])),
                ("the guardian's", f.guardian(&["verify"])),
            ] {
                out.assert_ok(&format!("{who} verify after a kill at {at}"));
            }
            // Running it again finishes the job, whatever the kill left.
            f.v.ok(&["hide", &h.id, "--from", "guardians"]);
            assert_no_trace(&f.v.dir, &f.key, &[&h], &[&f.visible]);
            assert_patient_reads(&f, &f.v.dir, &[&h]);
            f.v.ok(&["verify"])
                .assert_ok(&format!("verify after a kill at {at}, run again"));
            let mut c = carnet();
            c.args(["--vault", s(&f.v.dir), "verify", "--offline"]);
            c.ok();
            f.v.ok(&["rekey"]);
            assert_patient_reads(&f, &f.v.dir, &[&h]);
        }
    }
}

#[test]
fn a_merge_refuses_a_mirror_whose_own_changes_are_sealed_to_a_key_the_vault_does_not_hold() {
    // Attack finding: a document added and hidden from guardians on the mirror (whose first
    // hide made its own sealed key) was unreadable to the merge, which then reported nothing to
    // merge and deleted it from the mirror.
    let f = Family::new(false);
    let mirror = f.v.root().join("mirror");
    f.v.ok(&["backup", "--to", s(&mirror)]);
    let p =
        f.v.write("dossier-m1-confidentiel.txt", b"SECRET-CONTENT-m1");
    let mut c = f.v.cmd_on(&mirror, &[]);
    c.args(["add", s(&p), "--title", "Sur la cle", "--json"]);
    let id = c.ok().json()[0]["id"].as_str().unwrap().to_string();
    let mut c = f.v.cmd_on(&mirror, &[]);
    c.args(["hide", &id, "--from", "guardians"]);
    c.ok();

    let vault_before = f.v.snapshot();
    let mirror_before = snapshot(&mirror);
    // The merge says why; a plain update refuses too (the mirror is ahead), losing nothing.
    for (extra, says) in [(&["--merge"][..], &["sealed"][..]), (&[], &[])] {
        let mut args = vec!["backup", "--to", s(&mirror)];
        args.extend_from_slice(extra);
        let out = f.v.run(&args);
        let err = assert_error(&out, says);
        assert!(!hint(&err).is_empty(), "{out}");
        assert_same(
            &vault_before,
            &f.v.snapshot(),
            "the vault after a refused update",
        );
        assert_same(
            &mirror_before,
            &snapshot(&mirror),
            "the mirror after a refused update",
        );
    }
    // The document is still there, for the patient opening the mirror.
    let mut c = f.v.cmd_on(&mirror, &[]);
    c.args(["cat", &id]);
    assert_eq!(c.ok().stdout, b"SECRET-CONTENT-m1");
}

#[test]
fn a_missing_sealed_object_fails_the_guardians_verify_too() {
    // Attack finding: the keyed verify trusted the sealed compartment's object list without
    // looking at the files, so a guardian's verify (and the patient's) passed without them.
    let f = Family::new(true);
    // Larger than any metadata shard: the largest object the hide writes is the document's.
    let mut content = SECRET.as_bytes().to_vec();
    content.resize(64 * 1024, b'x');
    let h = f.add(
        "dossier-h1-confidentiel.txt",
        "Consultation confidentielle",
        &content,
        &[],
    );
    let before = files(&f.v.dir.join("objects"));
    f.hide(&h);
    let after = files(&f.v.dir.join("objects"));
    let name = after
        .iter()
        .filter(|(n, _)| !before.contains_key(*n))
        .max_by_key(|(_, b)| b.len())
        .map(|(n, _)| n.clone())
        .expect("the hide writes the document's object again");
    fs::remove_file(f.v.dir.join("objects").join(&name)).unwrap();
    for (who, out) in [
        ("patient", f.v.run(&["verify"])),
        ("guardian", f.guardian(&["verify"])),
    ] {
        assert_eq!(out.code, Some(EXIT_INTEGRITY), "the {who}'s verify{out}");
        assert!(
            out.text().contains(&name),
            "the {who}'s verify names the file{out}"
        );
    }
}

/// Changes one hex digit of the first `"blake3"` value after `key` in the signed index's top
/// (still well formed), leaving its signature as it was.
fn forge_index_entry(dir: &Path, key: &str) {
    let p = dir.join("index.json");
    let text = fs::read_to_string(&p).unwrap();
    let at = text.find(key).unwrap_or_else(|| panic!("{key} in {text}"));
    let field = "\"blake3\": \"";
    let b3 = at + text[at..].find(field).unwrap() + field.len();
    let mut bytes = text.into_bytes();
    bytes[b3] = if bytes[b3] == b'0' { b'1' } else { b'0' };
    fs::write(&p, bytes).unwrap();
}

#[test]
fn an_index_edited_under_its_old_signature_fails_every_verify() {
    // Review finding: a change that took a genuine signature of other content for an
    // interrupted command let an edited index (and the files it then vouched for) pass.
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.hide(&h);
    for key in ["\"identity.age\"", "\"log/00000000.age\""] {
        let copy = f.v.root().join(format!("copy-{}", key.len()));
        copy_dir(&f.v.dir, &copy);
        forge_index_entry(&copy, key);
        let patient = f.patient_on(&copy, &["verify"]);
        assert_eq!(
            patient.code,
            Some(EXIT_INTEGRITY),
            "{key}: the patient's verify{patient}"
        );
        let guardian = key_on(&copy, &f.key, &["verify"]);
        assert_eq!(
            guardian.code,
            Some(EXIT_INTEGRITY),
            "{key}: the guardian's verify{guardian}"
        );
        let mut c = carnet();
        c.args(["--vault", s(&copy), "verify", "--offline"]);
        assert_eq!(
            c.run().code,
            Some(EXIT_INTEGRITY),
            "{key}: verify --offline"
        );
    }
}

#[test]
fn identity_age_put_back_from_before_the_hide_is_damage_not_a_smaller_record() {
    // Review finding: an identity.age from before the sealed key existed opened with the
    // passphrase, and the sealed documents silently vanished from the patient's view.
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    let before = fs::read(f.v.dir.join("identity.age")).unwrap();
    f.hide(&h);
    fs::write(f.v.dir.join("identity.age"), before).unwrap();
    let ls = f.v.run(&["ls"]);
    assert_eq!(ls.code, Some(EXIT_INTEGRITY), "ls{ls}");
    assert!(ls.stderr.contains("identity.age"), "{ls}");
    let verify = f.v.run(&["verify"]);
    assert_eq!(verify.code, Some(EXIT_INTEGRITY), "verify{verify}");
}

#[test]
fn a_log_segment_put_back_from_before_its_entries_were_sealed_fails_verify() {
    // Review finding: a segment from before the hide still chains (sealing keeps each entry's
    // hash), and was vouched for; replayed, it showed the guardian the earlier entries.
    let f = Family::new(true);
    let h = f.add_secret("h1", "Consultation confidentielle", &[]);
    f.v.ok(&["cat", &h.id]);
    let seg = f.v.dir.join("log/00000000.age");
    let before = fs::read(&seg).unwrap();
    f.hide(&h);
    fs::write(&seg, before).unwrap();
    for (who, out) in [
        ("patient", f.v.run(&["verify"])),
        ("guardian", f.guardian(&["verify"])),
    ] {
        assert_eq!(out.code, Some(EXIT_INTEGRITY), "the {who}'s verify{out}");
    }
}
