//! The patient's own notes and corrections (`note`, `add -`, `edit`, `replace`, `history`,
//! `show`/`cat --version`): every version kept, readable and verified; nothing in clear.

use std::fs;
use std::process::Stdio;

use crate::util::*;

/// Runs `carnet ARGS` on `v` with `input` as standard input.
fn with_stdin(v: &Vault, args: &[&str], input: &[u8]) -> Out {
    let f = v.write(&format!("stdin-{}", input.len()), input);
    let mut c = v.cmd();
    c.args(args);
    c.stdin(Stdio::from(fs::File::open(&f).unwrap()));
    let out = c.run();
    fs::remove_file(f).unwrap();
    out
}

/// No file of the vault holds `needle` in clear.
fn assert_nowhere_in_clear(v: &Vault, needle: &[u8]) {
    for (path, bytes) in files(&v.dir) {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{path} holds the plaintext"
        );
    }
}

fn note_id(out: &Out) -> String {
    let j = out.json();
    j[0]["id"].as_str().expect("an id").to_string()
}

#[test]
fn a_note_from_an_argument_or_stdin_round_trips_and_is_never_in_clear() {
    let v = Vault::init();
    let text = "Vertiges depuis lundi, surtout le matin";
    let id = note_id(&v.ok(&["note", text, "--tag", "symptomes", "--json"]));
    assert_eq!(v.ok(&["cat", &id]).stdout, text.as_bytes());
    let d = &v.ls(&[])[0];
    assert_eq!(d["category"], "note-patient");
    assert_eq!(d["media_type"], "text/markdown");
    assert_eq!(d["title"], text, "the first line is the title");
    assert_eq!(d["tags"][0], "symptomes");

    let piped = "# Tension\n\n13/8 ce matin, 12/7 le soir\n";
    let id2 = note_id(&with_stdin(&v, &["note", "--json"], piped.as_bytes()).ok());
    assert_eq!(v.ok(&["cat", &id2]).stdout, piped.as_bytes());
    assert_eq!(v.ok(&["show", &id2, "--json"]).json()["title"], "Tension");
    let id3 =
        note_id(&with_stdin(&v, &["note", "-", "--title", "Poids", "--json"], b"72 kg\n").ok());
    assert_eq!(v.ok(&["show", &id3, "--json"]).json()["title"], "Poids");

    let notes = v.ok(&["log", "--json", "--action", "note"]).json();
    assert_eq!(
        notes.as_array().unwrap().len(),
        3,
        "each note is logged as `note`"
    );
    assert_nowhere_in_clear(&v, b"Vertiges");
    assert_nowhere_in_clear(&v, b"13/8 ce matin");
    v.ok(&["verify"]);
}

#[test]
fn an_empty_note_or_one_without_text_is_refused_and_nothing_is_written() {
    let v = Vault::init();
    let before = v.snapshot();
    let line = with_stdin(&v, &["note"], b"  \n\n").fails(EXIT_FAILURE, &["the note is empty"]);
    assert!(line.contains("nothing was written"), "{line}");
    v.run(&["note", "", "--title", "x"])
        .fails(EXIT_FAILURE, &["the note is empty"]);
    v.run(&["note", "x", "--title", " "])
        .fails(EXIT_FAILURE, &["the title is empty"]);
    with_stdin(&v, &["note"], &[0xff, 0xfe, 0x00]).fails(EXIT_FAILURE, &["not UTF-8"]);
    assert_same(&before, &v.snapshot(), "refused notes");
}

#[test]
fn add_dash_reads_a_document_from_stdin_and_needs_a_title() {
    let v = Vault::init();
    let before = v.snapshot();
    with_stdin(&v, &["add", "-"], b"%PDF-1.4 body").fails(EXIT_FAILURE, &["needs a title"]);
    let f = v.write("a.txt", b"a");
    v.run(&["add".as_ref(), "-".as_ref(), f.as_os_str()])
        .fails(EXIT_FAILURE, &["cannot be mixed"]);
    assert_same(&before, &v.snapshot(), "refused add -");
    let body = pseudo_random(300_000, 7);
    let out = with_stdin(&v, &["add", "-", "--title", "Scanner", "--json"], &body).ok();
    let id = note_id(&out);
    assert_bytes_eq(
        &v.ok(&["cat", &id, "--force"]).stdout,
        &body,
        "add - round trip",
    );
    let d = v.ok(&["show", &id, "--json"]).json();
    assert_eq!(d["title"], "Scanner");
    assert_eq!(d["size"], 300_000);
}

#[test]
fn edit_and_replace_keep_every_version_with_actor_and_reason() {
    let v = Vault::init();
    let original = b"compte rendu, version brouillon".to_vec();
    let f = v.write("cr.txt", &original);
    let id = v.add(
        &f,
        &[
            "--title",
            "CR cardio",
            "--date",
            "2026-03-15",
            "--tag",
            "brouillon",
        ],
    );

    let e = v
        .ok(&[
            "edit",
            &id[..6],
            "--title",
            "Compte rendu cardiologie",
            "--date",
            "2026-03-14",
            "--untag",
            "brouillon",
            "--tag",
            "cardio",
            "--reason",
            "mauvaise date",
            "--json",
        ])
        .json();
    assert_eq!(e["version"], 2);
    assert_eq!(e["changes"], serde_json::json!(["title", "date", "tags"]));

    let first_object = v.objects();
    assert_eq!(first_object.len(), 1);
    let corrected = b"compte rendu, version signee".to_vec();
    let g = v.write("cr-signe.txt", &corrected);
    let r = v
        .ok(&[
            "replace",
            &id,
            g.to_str().unwrap(),
            "--reason",
            "version signée",
            "--json",
        ])
        .json();
    assert_eq!(r["version"], 3);
    assert_eq!(r["changes"], serde_json::json!(["content"]));

    let h = v.ok(&["history", &id, "--json"]).json();
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0]["changes"], serde_json::json!(["added"]));
    assert_eq!(h[0]["title"], "CR cardio");
    assert_eq!(h[1]["actor"], "patient");
    assert_eq!(h[1]["reason"], "mauvaise date");
    assert_eq!(h[1]["date"], "2026-03-14");
    assert_eq!(h[2]["reason"], "version signée");
    assert_eq!(h[2]["sha256"], sha256_hex(&corrected));
    let text = v.ok(&["history", &id]).text();
    assert!(
        text.contains("v2") && text.contains("(mauvaise date)"),
        "{text}"
    );

    // Every version reads back; the current one is the default.
    assert_eq!(v.ok(&["cat", &id, "--version", "1"]).stdout, original);
    assert_eq!(v.ok(&["cat", &id, "--version", "2"]).stdout, original);
    assert_eq!(v.ok(&["cat", &id]).stdout, corrected);
    assert_eq!(
        v.ok(&["show", &id, "--version", "1", "--json"]).json()["title"],
        "CR cardio"
    );
    assert_eq!(v.ok(&["show", &id, "--json"]).json()["version"], 3);
    v.run(&["cat", &id, "--version", "4"])
        .fails(EXIT_FAILURE, &["has no version 4", "1 to 3"]);
    v.run(&["cat", &id, "--version", "0"])
        .assert_code(EXIT_USAGE, "version 0");

    // Both objects are kept and verified, deeply too; ls shows one document.
    assert_eq!(v.objects().len(), 2);
    assert_eq!(v.ls(&[]).len(), 1);
    v.ok(&["verify", "--deep"]);
    let edits = v.ok(&["log", "--json", "--action", "edit"]).json();
    assert_eq!(edits[0]["details"]["reason"], "mauvaise date");
    assert_eq!(edits[0]["details"]["version"], 2);
    let replaces = v.ok(&["log", "--json", "--action", "replace"]).json();
    assert_eq!(replaces.as_array().unwrap().len(), 1);

    // An earlier version's object is verified like the current one.
    let saved = fs::read(&first_object[0]).unwrap();
    flip_middle(&first_object[0]);
    let out = v.run(&["verify"]);
    out.assert_code(EXIT_INTEGRITY, "an altered earlier version");
    assert!(out.text().contains("CR cardio"), "{}", out.text());
    fs::write(&first_object[0], saved).unwrap();

    // rm takes every version's object with it.
    v.ok(&["rm", "--yes", &id]);
    assert!(v.objects().is_empty(), "no earlier content left behind");
    v.ok(&["verify"]);
}

#[test]
fn every_bad_correction_is_refused_and_leaves_the_vault_as_it_was() {
    let v = Vault::init();
    let f = v.write("a.txt", b"alpha");
    let id = v.add(&f, &["--title", "Alpha", "--tag", "x"]);
    let other = v.add(&v.write("b.txt", b"beta"), &[]);
    let before = v.snapshot();
    v.run(&["edit", &id])
        .fails(EXIT_FAILURE, &["nothing to change"]);
    v.run(&["edit", &id, "--title", "Alpha"])
        .fails(EXIT_FAILURE, &["nothing to change"]);
    v.run(&["edit", &id, "--title", "  "])
        .fails(EXIT_FAILURE, &["the title is empty"]);
    v.run(&["edit", &id, "--untag", "y"])
        .fails(EXIT_FAILURE, &["has no tag \"y\""]);
    v.run(&["edit", &id, "--date", "2026-02-30"])
        .assert_code(EXIT_FAILURE, "bad date");
    v.run(&["edit", &id, "--category", "nope"])
        .assert_code(EXIT_FAILURE, "bad category");
    v.run(&["edit", "ffffffff", "--title", "x"])
        .fails(EXIT_FAILURE, &["no document with id ffffffff"]);
    v.run(&["replace", &id, f.to_str().unwrap()])
        .fails(EXIT_FAILURE, &["already has this content"]);
    v.run(&["replace", &id, v.work.join("b.txt").to_str().unwrap()])
        .fails(EXIT_FAILURE, &["already in the vault as", &other[..8]]);
    v.run(&["replace", &id, "/nonexistent/file.pdf"])
        .fails(EXIT_FAILURE, &["does not exist"]);
    v.run(&["log", "--action", "edits"])
        .fails(EXIT_FAILURE, &["unknown action \"edits\""]);
    assert_same(&before, &v.snapshot(), "refused corrections");
}

#[test]
fn adding_known_content_with_other_metadata_points_to_edit() {
    let v = Vault::init();
    let f = v.write("a.txt", b"alpha");
    let id = v.add(&f, &["--title", "Alpha"]);
    let out = v.ok(&["add", f.to_str().unwrap(), "--title", "Autre titre"]);
    assert!(out.stderr.contains("already in vault as"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("carnet edit {}", &id[..8])),
        "{}",
        out.stderr
    );
    // The same metadata: no hint.
    let out = v.ok(&["add", f.to_str().unwrap(), "--title", "Alpha"]);
    assert!(!out.stderr.contains("carnet edit"), "{}", out.stderr);
}

#[test]
fn a_grant_after_replace_holds_the_new_bytes() {
    let lab = crate::util::grants::Lab::new();
    let p = lab.patient("marie", "Marie Dupont");
    let pro = lab.keygen("Dr Jeanne Martin", "jeanne.key", true, &[]);
    let handle = p.add_pro(&pro);
    let id = p.add("cr.txt", b"old bytes", &[]);
    let newer = lab.write("new.txt", b"new bytes, corrected");
    p.ok(&["replace", &id, newer.to_str().unwrap()]);
    let bundle = lab.path("out/g.age");
    p.grant(&[
        "--to",
        &handle,
        "--doc",
        &id,
        "--expires",
        "7d",
        "-o",
        bundle.to_str().unwrap(),
    ]);
    let u = crate::util::grants::Unpacked::of(&bundle, &pro);
    let docs = u.documents();
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0]["sha256"].as_str(),
        Some(sha256_hex(b"new bytes, corrected").as_str())
    );
    let path = docs[0]["path"].as_str().unwrap();
    assert_eq!(u.get(path).data, b"new bytes, corrected");
}

#[test]
fn a_note_from_the_editor_round_trips_and_its_private_file_is_gone() {
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let v = Vault::init();
    let seen = v.root().join("editor-saw");
    // The editor writes the note, and records the file it was given and its modes.
    let (out, runtime) = v.with_editor(
        &script,
        "note --json",
        &format!(
            "printf 'Douleur au genou\\n\\ndepuis la chute\\n' > \"$1\"\n\
             echo \"$1 $(stat -c %a \"$1\") $(stat -c %a \"$(dirname \"$1\")\")\" > '{}'\n",
            seen.display()
        ),
    );
    out.assert_ok("note through the editor");
    let saw = fs::read_to_string(&seen).unwrap();
    let parts: Vec<&str> = saw.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "{saw}");
    let file = std::path::Path::new(parts[0]);
    assert!(
        file.starts_with(&runtime),
        "the note was edited in {file:?}"
    );
    assert_eq!(
        (parts[1], parts[2]),
        ("600", "700"),
        "private file and folder"
    );
    assert!(!file.exists(), "the editor's file is removed");
    assert!(
        fs::read_dir(&runtime).unwrap().next().is_none(),
        "nothing left in {runtime:?}"
    );
    let d = &v.ls(&[])[0];
    assert_eq!(d["title"], "Douleur au genou");
    let id = d["id"].as_str().unwrap();
    assert_eq!(
        v.ok(&["cat", id]).stdout,
        b"Douleur au genou\n\ndepuis la chute\n"
    );
    assert_nowhere_in_clear(&v, b"depuis la chute");
}
