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

#[test]
fn a_new_passphrase_costs_scrypt_2_18_whatever_the_machine_speed() {
    let v = Vault::new();
    let mut c = v.cmd();
    c.env_remove("CARNET_SCRYPT_LOG_N").arg("init");
    let out = c.output().unwrap();
    assert_success(&out, &["init"]);
    let id = fs::read(v.dir.join("identity.age")).unwrap();
    let stanza = text(&id).lines().nth(1).unwrap_or_default().to_string();
    assert!(
        stanza.starts_with("-> scrypt ") && stanza.ends_with(" 18"),
        "{stanza}"
    );
    // The test override can lower the cost, never raise it above the cap.
    let v = Vault::new();
    let mut c = v.cmd();
    c.env("CARNET_SCRYPT_LOG_N", "24").arg("init");
    assert_success(&c.output().unwrap(), &["init"]);
    let id = fs::read(v.dir.join("identity.age")).unwrap();
    assert!(
        text(&id)
            .lines()
            .nth(1)
            .unwrap_or_default()
            .ends_with(" 18")
    );
}

#[test]
fn an_identity_asking_more_scrypt_work_than_typage_opens_is_refused_before_any_work() {
    let v = Vault::init();
    let plain = {
        use age::secrecy::ExposeSecret;
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_string()
    };
    let mut r = age::scrypt::Recipient::new(age::secrecy::SecretString::from(PASSPHRASE));
    r.set_work_factor(10);
    let sealed = age::encrypt(&r, plain.as_bytes()).unwrap();
    // 2^21 (2 GiB) is past what typage opens; the header is not authenticated before scrypt
    // runs, so an attacker can write any cost there.
    let header = text(&sealed);
    let line = header.lines().nth(1).unwrap().to_string();
    let forged_line = format!("{}21", line.strip_suffix("10").unwrap());
    let mut forged = sealed.clone();
    let at = header.find(&line).unwrap();
    forged.splice(at..at + line.len(), forged_line.bytes());
    let path = v.work.join("key.age");
    fs::write(&path, &forged).unwrap();
    let out = v.run(&["-i", path.to_str().unwrap(), "ls"]);
    assert_error(&out, &["key.age asks for scrypt work 2^21", "2^20"]);
}
