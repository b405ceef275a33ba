//! Hostile files, odd folders and misleading messages (issue 9): each test meets a defect the
//! way a patient, a sync tool or an attacker would.

mod util;

use std::fs;

use util::*;

#[test]
fn a_vault_whose_empty_tmp_folder_was_dropped_is_still_writable() {
    // git and several sync tools do not keep empty folders.
    let v = Vault::init();
    fs::remove_dir(v.dir.join("tmp")).unwrap();
    let doc = v.write("note.txt", b"blood test");
    let id = v.add(&doc, &[]);
    fs::remove_dir_all(v.dir.join("tmp")).unwrap();
    let out = v.ok(&["cat", &id]);
    assert_bytes_eq(&out.stdout, b"blood test", "the document read back");
    fs::remove_dir_all(v.dir.join("tmp")).unwrap();
    let out = v.ok(&["verify"]);
    assert!(text(&out.stdout).starts_with("ok: 1 documents"));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    fs::remove_dir_all(v.dir.join("tmp")).unwrap();
    v.ok(&["rm", "--yes", &id]);
    assert!(v.ls_titles(&[]).is_empty());
}
