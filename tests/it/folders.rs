//! How a folder import reads a patient's own folder names and files: categories named the way
//! people name folders, hidden files left out, and a note for what lands in `autre`.

use crate::util;

use util::*;

fn category_of(v: &Vault, title: &str) -> String {
    v.ls(&[])
        .into_iter()
        .find(|d| d["title"] == title)
        .unwrap_or_else(|| panic!("no document titled {title}"))["category"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn folders_named_by_label_plural_or_alias_set_the_category() {
    let v = Vault::init();
    v.write(
        "sante/Imagerie médicale/radio.png",
        b"\x89PNG\r\n\x1a\nradio",
    );
    v.write("sante/comptes-rendus/cr.txt", b"compte rendu\n");
    v.write("sante/Ordonnances/ordo.txt", b"ordonnance\n");
    v.write(
        "sante/2024/31/scan.txt",
        b"a day folder is not a category\n",
    );
    let out = v.ok(&["add", v.work.join("sante").to_str().unwrap()]);
    assert_eq!(category_of(&v, "radio"), "imagerie");
    assert_eq!(category_of(&v, "cr"), "compte-rendu");
    assert_eq!(category_of(&v, "ordo"), "prescription");
    assert_eq!(
        category_of(&v, "scan"),
        "autre",
        "\"31\" is a day, not DMP class 31"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("1 file(s) in folders not named after a category were filed as `autre`"),
        "{stderr}"
    );
}

#[test]
fn hidden_files_and_folders_are_skipped_and_reported() {
    let v = Vault::init();
    v.write("docs/lettre.txt", b"lettre\n");
    v.write("docs/.DS_Store", b"\0\0finder");
    v.write("docs/.git/config", b"[core]\n");
    let out = v.ok(&["add", v.work.join("docs").to_str().unwrap()]);
    let titles: Vec<String> = v
        .ls(&[])
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles, ["lettre"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(".DS_Store: hidden"), "{stderr}");
    assert!(stderr.contains(".git: hidden"), "{stderr}");
}

#[test]
fn categories_are_typed_by_slug_label_or_dmp_code() {
    let v = Vault::init();
    let a = v.write("a.txt", b"a\n");
    let b = v.write("b.txt", b"b\n");
    v.add(&a, &["--category", "31", "--title", "par code"]);
    v.add(&b, &["--category", "Synthèse", "--title", "par libelle"]);
    assert_eq!(category_of(&v, "par code"), "imagerie");
    assert_eq!(category_of(&v, "par libelle"), "synthese");
    assert_eq!(v.ls(&["--category", "42"]).len(), 0);
}
