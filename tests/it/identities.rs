//! A professional's key of any kind age knows: SSH keys (ed25519 and RSA, plain or protected by
//! a passphrase, made by the real `ssh-keygen`) and age plugin identities (the age-plugin crate's
//! `age-plugin-unencrypted`) open the bundles granted to them with every check `carnet open`
//! makes; the reference `age` CLI opens with the SSH key what carnet wrote to it; and a key
//! file carnet cannot use is refused with what it is and what to do.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::grants::{
    EXIT_INTEGRITY, Lab, Patient, Tool, pseudo_random, require_tool, s, ssh_ed25519_line,
    ssh_ed25519_private_key,
};
use crate::util::{Out, assert_error, hint};

/// The document every test grants, and its title.
const TITLE: &str = "Compte rendu";

/// A patient with one document; returns it and the document's bytes.
fn patient_with_a_document(lab: &Lab) -> (Patient, Vec<u8>) {
    let p = lab.patient("marie", "Marie Dupont");
    let doc = pseudo_random(70_000, 7);
    p.add("cr.pdf", &doc, &["--title", TITLE, "--date", "2024-03-01"]);
    (p, doc)
}

/// `pro add --name NAME --recipient RECIPIENT`; returns the handle carnet chose.
fn add_pro(p: &Patient, name: &str, recipient: &str) -> String {
    let out = p.ok(&["pro", "add", "--name", name, "--recipient", recipient]);
    let handle = out.text().trim().to_string();
    assert!(!handle.is_empty(), "pro add prints the handle{out}");
    handle
}

/// `grant --to HANDLE --all --expires 7d -o NAME`; returns the bundle's path.
fn grant_to(lab: &Lab, p: &Patient, handle: &str, name: &str) -> PathBuf {
    let bundle = lab.path(name);
    p.grant(&["--to", handle, "--all", "--expires", "7d", "-o", s(&bundle)]);
    bundle
}

/// `carnet open BUNDLE -i KEY ARGS...` with `passphrase` in CARNET_PASSPHRASE.
fn open(lab: &Lab, key: &Path, bundle: &Path, passphrase: Option<&str>, args: &[&str]) -> Out {
    let mut all = vec!["open", s(bundle), "-i", s(key)];
    all.extend_from_slice(args);
    lab.run(passphrase, &all)
}

/// Opens `bundle` with `key` into a new folder and checks the one document came out intact,
/// after the checks `open` makes (signature, terms, entries, validity, the patient's key
/// remembered).
fn opens_intact(lab: &Lab, key: &Path, bundle: &Path, passphrase: Option<&str>, doc: &[u8]) {
    let dir = lab.root.join(format!(
        "out-{}",
        bundle.file_stem().unwrap().to_string_lossy()
    ));
    let out = open(lab, key, bundle, passphrase, &["--json", "-o", s(&dir)]).ok();
    let report = out.json();
    assert_eq!(report["status"], "active", "{out}");
    assert_eq!(report["patient"], "Marie Dupont", "{out}");
    assert!(
        report["fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("SHA256:")),
        "{out}"
    );
    let path = report["documents"][0]["path"].as_str().unwrap();
    assert_eq!(fs::read(dir.join(path)).unwrap(), doc, "the document{out}");
    let known = fs::read_to_string(&lab.known).unwrap_or_default();
    assert!(
        known.contains(report["fingerprint"].as_str().unwrap()),
        "the patient's key is remembered after a bundle passed every check:\n{known}"
    );
}

/// `ssh-keygen -t KIND -N PASSPHRASE -f keys/FILE`; returns the private key's path and the
/// public key line (with its comment).
fn ssh_keygen(
    lab: &Lab,
    keygen: &Path,
    kind: &str,
    file: &str,
    passphrase: &str,
) -> (PathBuf, String) {
    let key = lab.path(&format!("keys/{file}"));
    let public = crate::util::ssh_keygen(keygen, &key, kind, passphrase);
    (key, public)
}

#[test]
fn ssh_ed25519_and_rsa_keys_open_the_bundles_granted_to_them() {
    let Some(keygen) = require_tool(Tool::SshKeygen) else {
        return;
    };
    let lab = Lab::new();
    let (p, doc) = patient_with_a_document(&lab);
    let (ed, ed_pub) = ssh_keygen(&lab, &keygen, "ed25519", "id_ed25519", "");
    let (rsa, rsa_pub) = ssh_keygen(&lab, &keygen, "rsa", "id_rsa", "");
    let elise = add_pro(&p, "Dr Élise Bérard", &ed_pub);
    let paul = add_pro(&p, "Dr Paul Roux", &rsa_pub);
    let to_elise = grant_to(&lab, &p, &elise, "elise.age");
    let to_paul = grant_to(&lab, &p, &paul, "paul.age");

    opens_intact(&lab, &ed, &to_elise, None, &doc);
    opens_intact(&lab, &rsa, &to_paul, None, &doc);

    // Each key opens its own bundle only: the other is "not for you" (exit 1), not damage.
    let out = open(&lab, &rsa, &to_elise, None, &["--list"]);
    let err = assert_error(&out, &["this bundle is not addressed to your key"]);
    assert!(hint(&err).contains("-i KEYFILE"), "{out}");

    // An SSH key signs nothing: a receipt needs the key `carnet keygen` makes.
    let receipt = lab.path("receipt.age");
    let dir = lab.root.join("with-receipt");
    let out = open(
        &lab,
        &ed,
        &to_elise,
        None,
        &["-o", s(&dir), "--receipt", s(&receipt)],
    );
    out.fails(
        1,
        &["your key file has no carnet signing key, so it cannot sign a receipt"],
    );
    assert!(
        !receipt.exists() && !dir.exists(),
        "no receipt, no document written"
    );
}

#[test]
fn a_protected_ssh_key_asks_for_its_passphrase_as_carnet_does() {
    let Some(keygen) = require_tool(Tool::SshKeygen) else {
        return;
    };
    let lab = Lab::new();
    let (p, doc) = patient_with_a_document(&lab);
    let (key, public) = ssh_keygen(&lab, &keygen, "ed25519", "id_ed25519", "ssh key passphrase");
    let handle = add_pro(&p, "Dr Élise Bérard", &public);
    let bundle = grant_to(&lab, &p, &handle, "b.age");

    // No terminal and no passphrase given: the message names the ways to give one.
    let out = open(&lab, &key, &bundle, None, &["--list"]);
    let err = assert_error(
        &out,
        &["a passphrase is needed and there is no terminal to ask for it"],
    );
    assert_eq!(
        hint(&err),
        "set CARNET_PASSPHRASE or pass --passphrase-file FILE"
    );

    let out = open(&lab, &key, &bundle, Some("not the passphrase"), &["--list"]);
    let err = assert_error(
        &out,
        &[&format!("wrong passphrase for the SSH key {}", s(&key))],
    );
    assert!(hint(&err).contains("CARNET_PASSPHRASE"), "{out}");

    opens_intact(&lab, &key, &bundle, Some("ssh key passphrase"), &doc);
    // --passphrase-file too.
    let pass = lab.write("ssh-pass.txt", b"ssh key passphrase\n");
    lab.run(
        None,
        &[
            "--passphrase-file",
            s(&pass),
            "open",
            s(&bundle),
            "-i",
            s(&key),
            "--list",
        ],
    )
    .ok();
}

#[test]
fn the_age_cli_opens_with_the_ssh_key_what_carnet_wrote_to_it() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let Some(keygen) = require_tool(Tool::SshKeygen) else {
        return;
    };
    let lab = Lab::new();
    let (p, doc) = patient_with_a_document(&lab);
    for kind in ["ed25519", "rsa"] {
        let (key, public) = ssh_keygen(&lab, &keygen, kind, &format!("id_{kind}"), "");
        let handle = add_pro(&p, &format!("Dr {kind}"), &public);
        let bundle = grant_to(&lab, &p, &handle, &format!("{kind}.age"));
        let zip = lab.root.join(format!("{kind}.zip"));
        let out = Command::new(&age)
            .args(["-d", "-i", s(&key), "-o", s(&zip), s(&bundle)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d -i id_{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entries = crate::util::grants::zip_read(&fs::read(&zip).unwrap());
        assert!(
            entries.iter().any(|e| e.name == "grant.toml"),
            "the bundle's zip holds its terms"
        );
        assert!(
            entries.iter().any(|e| e.data == doc),
            "and the document, intact"
        );
    }
}

#[test]
fn a_plugin_recipient_and_identity_round_trip() {
    let Some(plugin) = require_tool(Tool::AgePluginUnencrypted) else {
        return;
    };
    let lab = Lab::new();
    let (p, doc) = patient_with_a_document(&lab);
    let identity = lab.path("keys/plugin.txt");
    let recipient = crate::util::plugin_identity(&plugin, &identity);
    assert!(recipient.starts_with("age1unencrypted1"), "{recipient}");

    let handle = add_pro(&p, "Dr Yubi Key", &recipient);
    let bundle = grant_to(&lab, &p, &handle, "plugin.age");
    opens_intact(&lab, &identity, &bundle, None, &doc);

    // Another key is told the bundle is not for it (exit 1): the plugin's stanza is not
    // taken for damage (exit 3).
    let other = lab.keygen("Dr Autre", "autre.key", true, &[]);
    let out = open(&lab, &other.key, &bundle, None, &["--list"]);
    assert_ne!(out.code, Some(EXIT_INTEGRITY), "{out}");
    assert_error(&out, &["this bundle is not addressed to your key"]);

    // Without the plugin on PATH: opening and granting say which plugin to install, and the
    // grant writes nothing.
    let bare = lab.path("bare-path/.keep");
    let bare = bare.parent().unwrap();
    let mut c = lab.cmd();
    c.env("PATH", bare)
        .args(["open", s(&bundle), "-i", s(&identity), "--list"]);
    let out = c.run();
    let err = assert_error(
        &out,
        &[&format!(
            "{} is a key of the age plugin age-plugin-unencrypted, which is not installed",
            s(&identity)
        )],
    );
    assert_eq!(
        hint(&err),
        "install age-plugin-unencrypted (it must be on PATH), then try again"
    );
    let before = p.grants(&[]).len();
    let refused = lab.path("refused.age");
    let mut c = lab.cmd();
    c.env("PATH", bare)
        .env("CARNET_PASSPHRASE", crate::util::grants::PATIENT_PASS)
        .args(["--vault", s(&p.vault), "grant", "--to", &handle, "--all"])
        .args(["--expires", "7d", "-o", s(&refused)]);
    let out = c.run();
    let err = assert_error(
        &out,
        &[&format!(
            "encrypting to {recipient} needs the age plugin age-plugin-unencrypted, which is not installed"
        )],
    );
    assert!(
        hint(&err).starts_with("install age-plugin-unencrypted"),
        "{out}"
    );
    assert!(!refused.exists(), "no bundle written{out}");
    assert_eq!(p.grants(&[]).len(), before, "no grant recorded");
}

#[test]
fn an_ssh_key_written_without_ssh_keygen_opens_its_bundle() {
    // The OpenSSH format carnet reads, made by the tests' own writer: this path runs on every
    // machine, with or without the reference tools.
    let lab = Lab::new();
    let (p, doc) = patient_with_a_document(&lab);
    let handle = add_pro(
        &p,
        "Dr Élise Bérard",
        &ssh_ed25519_line(31, "elise@cabinet"),
    );
    let key = lab.write(
        "keys/id_ed25519",
        ssh_ed25519_private_key(31, "elise@cabinet").as_bytes(),
    );
    let bundle = grant_to(&lab, &p, &handle, "b.age");
    opens_intact(&lab, &key, &bundle, None, &doc);
}

#[test]
fn identity_files_carnet_cannot_use_are_refused_with_what_to_do() {
    let lab = Lab::new();
    let (p, _) = patient_with_a_document(&lab);
    let handle = add_pro(
        &p,
        "Dr Élise Bérard",
        &ssh_ed25519_line(32, "elise@cabinet"),
    );
    let bundle = grant_to(&lab, &p, &handle, "b.age");
    // Relative paths, as a professional types them: the messages show them as given.
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "keys/id_ed25519.pub",
            format!("{}\n", ssh_ed25519_line(32, "elise@cabinet")).into_bytes(),
            "keys/id_ed25519.pub holds a public key (line 1), not a secret one",
            "give your secret key file: an age identity (AGE-SECRET-KEY-1…), an SSH private key (~/.ssh/id_ed25519, not its .pub), or a plugin identity (AGE-PLUGIN-…)",
        ),
        (
            "keys/notes.txt",
            b"# my key\nAGE-SECRET-KEY-1 is written on the paper in the drawer\n".to_vec(),
            "line 2 of keys/notes.txt is not an identity carnet can use",
            "an identity file holds AGE-SECRET-KEY-1… or AGE-PLUGIN-… lines (and # comments), or is an SSH private key",
        ),
        (
            "keys/empty",
            Vec::new(),
            "keys/empty is not an age identity file nor an SSH private key",
            "give the key `carnet keygen` made, an `age-keygen` file, an SSH private key (~/.ssh/id_ed25519) or a plugin identity",
        ),
        (
            "keys/cut",
            ssh_ed25519_private_key(32, "elise@cabinet").as_bytes()[..200].to_vec(),
            "keys/cut is not a valid SSH private key (damaged or cut short)",
            "give the private key file as `ssh-keygen` wrote it (~/.ssh/id_ed25519), not its .pub",
        ),
        (
            "keys/key.pem",
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
                .to_vec(),
            "keys/key.pem is a PRIVATE KEY file, which age cannot use as an identity",
            "give an OpenSSH ssh-ed25519 or ssh-rsa private key (`ssh-keygen -t ed25519`), an age identity file, or the key `carnet keygen` made",
        ),
        (
            "keys/huge",
            vec![b'#'; 2 << 20],
            "keys/huge is larger than 1024 KiB: not an identity file",
            "give your key file (a few lines): the one `carnet keygen` or `age-keygen` made, or an SSH private key",
        ),
    ];
    for (file, bytes, error, expected_hint) in cases {
        lab.write(file, &bytes);
        let out = open(&lab, Path::new(file), &bundle, None, &["--list"]);
        let err = assert_error(&out, &[error]);
        assert_eq!(
            err.lines().next().unwrap(),
            format!("error: {error}"),
            "{out}"
        );
        assert_eq!(hint(&err), expected_hint, "{file}{out}");
        assert!(
            !err.contains("drawer"),
            "the content of a key file is never shown{out}"
        );
    }
    let out = open(&lab, Path::new("keys/none"), &bundle, None, &["--list"]);
    let err = assert_error(&out, &["no identity file at keys/none"]);
    assert_eq!(
        hint(&err),
        "check the path given with -i (or in CARNET_IDENTITY)"
    );
}

#[test]
fn ssh_keys_age_cannot_use_are_named_with_what_to_do() {
    let Some(keygen) = require_tool(Tool::SshKeygen) else {
        return;
    };
    let lab = Lab::new();
    let (p, _) = patient_with_a_document(&lab);
    let handle = add_pro(
        &p,
        "Dr Élise Bérard",
        &ssh_ed25519_line(33, "elise@cabinet"),
    );
    let bundle = grant_to(&lab, &p, &handle, "b.age");

    let (ecdsa, ecdsa_pub) = ssh_keygen(&lab, &keygen, "ecdsa", "id_ecdsa", "");
    let out = open(&lab, &ecdsa, &bundle, None, &["--list"]);
    let err = assert_error(
        &out,
        &[&format!(
            "{} is an SSH key of type ecdsa-sha2-nistp256; age opens only ssh-ed25519 and ssh-rsa keys",
            s(&ecdsa)
        )],
    );
    assert!(hint(&err).contains("ssh-keygen -t ed25519"), "{out}");
    let out = p.run(&[
        "pro",
        "add",
        "--name",
        "Dr Ecdsa",
        "--recipient",
        &ecdsa_pub,
    ]);
    assert_error(
        &out,
        &[
            "is an SSH key of type ecdsa-sha2-nistp256; age encrypts only to ssh-ed25519 and ssh-rsa keys",
        ],
    );

    // An RSA key protected in the old PEM format (ssh-keygen -m PEM).
    let pem = lab.path("keys/id_rsa_pem");
    let made = Command::new(&keygen)
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "pem pass", "-f",
        ])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = open(&lab, &pem, &bundle, Some("pem pass"), &["--list"]);
    let err = assert_error(
        &out,
        &[&format!(
            "{} is an RSA key protected in the old PEM format, which age cannot read",
            s(&pem)
        )],
    );
    assert_eq!(
        hint(&err),
        "convert it to the OpenSSH format (same key, same passphrase): ssh-keygen -p -o -f FILE"
    );
}
