//! Professionals deposit documents, patients learn who opened what (issue 13): `carnet card`,
//! `carnet deposit`, `carnet receive` (deposits and receipts) and `carnet open --receipt`.
//!
//! Every refusal leaves the vault byte for byte as it was: nothing imported, nothing logged.
//! Hostile deposits are built without carnet's code: decrypted with the patient's identity
//! (the `age` crate), taken apart and rebuilt with the tests' zip forger, signed with keys of
//! our own (`MinisignKey`), and encrypted again to the patient's public recipient, as anyone
//! holding the patient's card can.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::grants::*;
use crate::util::{assert_error, hint};

const RPPS: &str = "10005173140";

/// A patient with a card, and a professional (RPPS, unprotected key) who may be in their
/// directory.
struct Desk {
    lab: Lab,
    patient: Patient,
    pro: Pro,
    card: PathBuf,
}

impl Desk {
    fn new(known: bool) -> Desk {
        let lab = Lab::new();
        let patient = lab.patient("marie", "Marie Dupont");
        let pro = lab.keygen(
            "Dr Jeanne Martin",
            "jeanne.key",
            true,
            &["--rpps", RPPS, "--profession", "médecin"],
        );
        if known {
            patient.add_pro(&pro);
        }
        let card = lab.path("marie.card.toml");
        patient.ok(&["card", "-o", s(&card)]);
        Desk {
            lab,
            patient,
            pro,
            card,
        }
    }

    /// `carnet deposit --to CARD -i KEY FILES... EXTRA -o OUT` as the professional.
    fn deposit_to(
        &self,
        card: &Path,
        files: &[(&str, &[u8])],
        extra: &[&str],
        out: &str,
    ) -> PathBuf {
        let out = self.lab.path(out);
        let mut args: Vec<String> = vec![
            "deposit".into(),
            "--to".into(),
            s(card).into(),
            "-i".into(),
            s(&self.pro.key).into(),
        ];
        for (name, bytes) in files {
            args.push(s(&self.lab.write(&format!("cabinet/{name}"), bytes)).into());
        }
        args.extend(extra.iter().map(|x| x.to_string()));
        args.extend(["-o".into(), s(&out).into()]);
        self.lab.run(None, &args).ok();
        out
    }

    fn deposit(&self, files: &[(&str, &[u8])], extra: &[&str]) -> PathBuf {
        self.deposit_to(&self.card, files, extra, "depot.age")
    }

    /// `receive FILE EXTRA --json` as the patient, which must succeed.
    fn receive(&self, file: &Path, extra: &[&str]) -> Value {
        let mut args = vec!["receive", s(file), "--json"];
        args.extend_from_slice(extra);
        self.patient.ok(&args).json()
    }

    /// `receive FILE EXTRA`, which must fail with `code`, an error holding `needles` and a
    /// hint holding `hint_has`, and leave the vault exactly as it was.
    fn refused(
        &self,
        file: &Path,
        extra: &[&str],
        code: i32,
        needles: &[&str],
        hint_has: &str,
        what: &str,
    ) {
        let before = snapshot(&self.patient.vault);
        let mut args = vec!["receive", s(file)];
        args.extend_from_slice(extra);
        let out = self.patient.run(&args);
        out.assert_code(code, what);
        out.fails(code, needles);
        assert!(
            hint(&out.stderr).contains(hint_has),
            "{what}: the hint should say {hint_has:?}\n{out}"
        );
        assert!(out.stdout.is_empty(), "{what}: nothing on stdout\n{out}");
        assert_same(&before, &snapshot(&self.patient.vault), what);
    }
}

/// The patient's vault identity, out of `identity.age` with the passphrase (what the `age` CLI
/// does with `-d -i identity.age`).
fn identity_of(p: &Patient) -> age::x25519::Identity {
    use age::secrecy::SecretString;
    let bytes = fs::read(p.vault.join("identity.age")).unwrap();
    let d = age::Decryptor::new(&bytes[..]).unwrap();
    let id = age::scrypt::Identity::new(SecretString::from(PATIENT_PASS.to_string()));
    let mut r = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap();
    let mut text = String::new();
    r.read_to_string(&mut text).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap();
    line.parse().unwrap()
}

fn card_of(path: &Path) -> toml::Table {
    toml::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// The patient's (first) public recipient, from their card.
fn recipient_of(card: &Path) -> String {
    card_of(card)["recipients"].as_array().unwrap()[0]
        .as_str()
        .unwrap()
        .to_string()
}

/// A deposit (or receipt) decrypted with the patient's identity: its zip entries.
fn unpack(file: &Path, p: &Patient) -> Vec<ZipEntry> {
    zip_read(&age_decrypt(&fs::read(file).unwrap(), &identity_of(p)))
}

fn entry<'a>(entries: &'a mut [ZipEntry], name: &str) -> &'a mut ZipEntry {
    entries
        .iter_mut()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no entry {name}"))
}

/// Zips `entries` again and encrypts them to the patient (anyone with the card can).
fn reseal(entries: &[ZipEntry], card: &Path, out: &Path) {
    fs::write(
        out,
        age_encrypt(&recipient_of(card), &zip_write(entries), false),
    )
    .unwrap();
}

fn doc_path(entries: &[ZipEntry]) -> String {
    entries
        .iter()
        .find(|e| e.name.starts_with("documents/"))
        .expect("a document")
        .name
        .clone()
}

const REPORT: &[u8] = b"Compte rendu de consultation\nTension 12/8, auscultation normale.\n";

// =============================================================================================
// The patient's card

#[test]
fn the_card_holds_public_keys_only_and_is_signed() {
    let d = Desk::new(false);
    let c = card_of(&d.card);
    let fp = d.patient.ok(&["fingerprint"]).text().trim().to_string();
    assert_eq!(c["fingerprint"].as_str(), Some(fp.as_str()));
    assert_eq!(c["name"].as_str(), Some("Marie Dupont"));
    assert_eq!(c["carnet_patient_card"].as_integer(), Some(1));
    let config = fs::read_to_string(d.patient.vault.join("carnet.toml")).unwrap();
    let vault_id = c["vault_id"].as_str().unwrap();
    assert!(config.contains(vault_id), "the vault's id");
    assert!(
        config.contains(&recipient_of(&d.card)),
        "the vault's recipient"
    );
    let text = fs::read_to_string(&d.card).unwrap();
    assert!(!text.contains("AGE-SECRET-KEY"), "no secret: {text}");
    let mut keys: Vec<&String> = c.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "carnet_patient_card",
            "fingerprint",
            "name",
            "recipients",
            "signature",
            "signing_key",
            "vault_id"
        ]
    );

    // Printed (the same card) and as JSON.
    let printed = d.patient.ok(&["card"]).text();
    assert_eq!(card_of_text(&printed)["vault_id"].as_str(), Some(vault_id));
    let j = d.patient.ok(&["card", "--json"]).json();
    assert_eq!(j["fingerprint"], fp.as_str());
    assert_eq!(j["vault_id"], vault_id);
    assert_eq!(j["recipients"][0], recipient_of(&d.card).as_str());
    assert_eq!(j["output"], Value::Null);

    // The QR code on a terminal: Unicode blocks, then the fingerprint.
    let qr = d.patient.ok(&["card", "--qr"]).text();
    assert!(qr.contains('█') && qr.contains('▀'), "{qr}");
    assert_eq!(qr.lines().last(), Some(fp.as_str()));

    // An existing file is replaced only with --force.
    let out = d.patient.run(&["card", "-o", s(&d.card)]);
    assert_error(&out, &["already exists"]);
    d.patient.ok(&["card", "-o", s(&d.card), "--force"]);
}

fn card_of_text(t: &str) -> toml::Table {
    toml::from_str(t).unwrap()
}

#[test]
fn a_card_with_swapped_recipients_is_refused_before_anything_is_written() {
    let d = Desk::new(true);
    // Someone on the way puts their own key in the card: the signature no longer holds.
    let intruder = age::x25519::Identity::generate().to_public().to_string();
    let text = fs::read_to_string(&d.card)
        .unwrap()
        .replace(&recipient_of(&d.card), &intruder);
    let forged = d.lab.write("forged.card.toml", text.as_bytes());
    let report = d.lab.write("cabinet/cr.txt", REPORT);
    let out_file = d.lab.path("depot.age");
    let out = d.lab.run(
        None,
        &[
            "deposit",
            "--to",
            s(&forged),
            "-i",
            s(&d.pro.key),
            s(&report),
            "-o",
            s(&out_file),
        ],
    );
    out.fails(EXIT_INTEGRITY, &["not a valid patient card", "altered"]);
    assert!(!out_file.exists(), "no deposit written");
}

// =============================================================================================
// Deposits that land

#[test]
fn a_deposit_from_a_known_professional_lands_with_them_as_author_and_actor() {
    let d = Desk::new(true);
    let dep = d.deposit(
        &[
            ("2026-03-14 compte rendu.txt", REPORT),
            ("radio.png", &pseudo_random(3000, 7)),
        ],
        &["--category", "compte-rendu", "--note", "Bonjour Mme Dupont"],
    );
    let r = d.receive(&dep, &[]);
    assert_eq!(r["kind"], "deposit");
    assert_eq!(r["professional"]["handle"], "jeanne-martin");
    assert_eq!(r["professional"]["identifier"], format!("RPPS {RPPS}"));
    assert_eq!(r["professional"]["directory"], Value::Null, "already known");
    assert_eq!(r["note"], "Bonjour Mme Dupont");
    let docs = r["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    assert!(docs.iter().all(|x| x["status"] == "added"), "{r}");

    let ls = d.patient.ok(&["ls", "--json"]).json();
    let cr = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["title"] == "2026-03-14 compte rendu")
        .unwrap_or_else(|| panic!("{ls}"));
    assert_eq!(cr["author"], format!("Dr Jeanne Martin (RPPS {RPPS})"));
    assert_eq!(cr["category"], "compte-rendu");
    assert_eq!(cr["date"], "2026-03-14", "the date in the file name");
    assert_eq!(cr["source"]["kind"], "deposit");
    assert_eq!(cr["source"]["name"], "Dr Jeanne Martin");
    assert_eq!(cr["source"]["identifier"], format!("RPPS {RPPS}"));
    assert_eq!(cr["source"]["deposit"], r["id"]);
    assert_eq!(cr["sha256"], sha256_hex(REPORT));
    let id = cr["id"].as_str().unwrap();
    assert_eq!(d.patient.ok(&["cat", id]).stdout, REPORT);

    // The log names the professional as the actor of the receive.
    let received = d.patient.log_actions("receive");
    assert_eq!(received.len(), 1);
    let e = &received[0];
    assert_eq!(e["actor"], format!("pro:{RPPS}"));
    assert_eq!(e["documents"].as_array().unwrap().len(), 2);
    assert_eq!(e["details"]["deposit"], r["id"]);
    assert_eq!(e["details"]["professional"], "jeanne-martin");
    assert_eq!(e["details"]["note"], "Bonjour Mme Dupont");
    let text = d.patient.ok(&["log", "--action", "receive"]).text();
    assert!(text.contains(&format!("pro:{RPPS}")), "{text}");
    d.patient.ok(&["verify", "--deep"]);

    // The same deposit again: its documents are stored once.
    let again = d.receive(&dep, &[]);
    assert!(
        again["documents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "duplicate"),
        "{again}"
    );
    assert_eq!(
        d.patient
            .ok(&["ls", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    d.patient.ok(&["verify"]);
}

#[test]
fn a_document_already_in_the_vault_is_stored_once() {
    let d = Desk::new(true);
    let mine = d.patient.add("cr.txt", REPORT, &[]);
    let dep = d.deposit(&[("cr.txt", REPORT)], &[]);
    let r = d.receive(&dep, &[]);
    assert_eq!(r["documents"][0]["status"], "duplicate");
    assert_eq!(r["documents"][0]["id"], mine.as_str());
    assert_eq!(
        d.patient
            .ok(&["ls", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_unknown_professional_is_added_with_accept_new_pro() {
    let d = Desk::new(false);
    let dep = d.deposit(&[("cr.txt", REPORT)], &["--title", "Compte rendu"]);
    let fp = d.pro.card()["fingerprint"].as_str().unwrap().to_string();
    d.refused(
        &dep,
        &[],
        EXIT_FAILURE,
        &["Dr Jeanne Martin (RPPS 10005173140) is not in your directory"],
        &fp,
        "unknown professional",
    );
    let r = d.receive(&dep, &["--accept-new-pro"]);
    assert_eq!(r["professional"]["directory"], "added");
    let pros = d.patient.ok(&["pro", "ls", "--json"]).json();
    let p = &pros.as_array().unwrap()[0];
    assert_eq!(p["handle"], "jeanne-martin");
    assert_eq!(p["rpps"], RPPS);
    assert_eq!(p["fingerprint"], fp.as_str());
    assert_eq!(
        d.patient.log_actions("receive")[0]["details"]["directory"],
        "added"
    );
    d.patient.ok(&["verify"]);
}

// =============================================================================================
// Deposits refused: nothing imported, nothing logged

#[test]
fn a_blocked_professionals_deposit_is_refused_even_when_accepting() {
    let d = Desk::new(true);
    d.patient.ok(&["pro", "block", "jeanne-martin"]);
    let dep = d.deposit(&[("cr.txt", REPORT)], &[]);
    for extra in [&[][..], &["--accept-new-pro"][..]] {
        d.refused(
            &dep,
            extra,
            EXIT_FAILURE,
            &["jeanne-martin is blocked"],
            "carnet pro unblock jeanne-martin",
            "blocked",
        );
    }
}

#[test]
fn forged_altered_and_crafted_deposits_are_refused() {
    let d = Desk::new(true);
    let dep = d.deposit(&[("cr.txt", REPORT)], &["--category", "compte-rendu"]);
    let original = unpack(&dep, &d.patient);
    let doc = doc_path(&original);
    let forged = d.lab.path("forged.age");
    let nothing = "nothing was added";

    // Terms changed after signing (another title): the signature no longer holds.
    let mut e = original.clone();
    let t = entry(&mut e, "deposit.toml");
    t.data = String::from_utf8(t.data.clone())
        .unwrap()
        .replace("title = \"cr\"", "title = \"Ordonnance\"")
        .into_bytes();
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["signature does not hold"],
        nothing,
        "terms altered",
    );

    // Signed by someone else who claims to be Dr Martin: a changed key, refused without the flag.
    let mallory = MinisignKey::from_seed(9);
    let mut e = original.clone();
    let text = String::from_utf8(entry(&mut e, "deposit.toml").data.clone()).unwrap();
    let mut terms: toml::Table = toml::from_str(&text).unwrap();
    let pro = terms["professional"].as_table_mut().unwrap();
    pro.insert("signing_key".into(), mallory.public().into());
    pro.insert("fingerprint".into(), mallory.fingerprint().into());
    let text = toml::to_string(&terms).unwrap();
    entry(&mut e, "deposit.toml").data = text.clone().into_bytes();
    entry(&mut e, "deposit.toml.minisig").data = mallory.sign(text.as_bytes(), "x").into_bytes();
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["your directory has", "for jeanne-martin: refused"],
        "compare their key fingerprint",
        "another key",
    );

    // A changed byte in a document (its CRC-32 made right again by the forger).
    let mut e = original.clone();
    entry(&mut e, &doc).data[3] ^= 1;
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["does not match the SHA-256 in the signed terms"],
        nothing,
        "a changed byte",
    );

    // A changed byte in the ciphertext itself.
    let mut bytes = fs::read(&dep).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x20;
    fs::write(&forged, &bytes).unwrap();
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["damaged or was altered"],
        nothing,
        "ciphertext",
    );

    // An extra entry the terms do not name.
    let mut e = original.clone();
    e.push(ZipEntry::file("documents/autre/extra.txt", b"smuggled"));
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["\"documents/autre/extra.txt\" is not in the signed terms"],
        nothing,
        "extra entry",
    );

    // Overlapping entries: a second central record over the document's bytes.
    let mut e = original.clone();
    let i = e.iter().position(|x| x.name == doc).unwrap();
    e.push(ZipEntry::alias("documents/autre/copy.txt", i));
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["overlap"],
        nothing,
        "overlapping entries",
    );

    // A path outside documents/ in the (re-signed) terms: refused by the checked reader rules.
    let mut e = original.clone();
    entry(&mut e, &doc).name = "../evil.txt".into();
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["unsafe path"],
        nothing,
        "zip-slip",
    );

    // Not a deposit at all, and not for this vault's key.
    let junk = d.lab.write("junk.age", b"not an age file at all");
    d.refused(
        &junk,
        &[],
        EXIT_FAILURE,
        &["not a carnet deposit or receipt"],
        "check the file",
        "junk",
    );
    let other = d.lab.path("other.age");
    fs::write(
        &other,
        age_encrypt(&d.pro.recipient, &zip_write(&original), false),
    )
    .unwrap();
    d.refused(
        &other,
        &[],
        EXIT_FAILURE,
        &["not addressed to your vault's key"],
        "carnet card",
        "another key",
    );
    d.patient.ok(&["verify"]);
    assert!(d.patient.log_actions("receive").is_empty());
}

#[test]
fn a_deposit_for_another_patients_vault_is_refused() {
    // One key can open several vaults (a parent's, a child's): the vault id tells them apart.
    let d = Desk::new(true);
    let other = d.lab.patient("paul", "Paul Dupont");
    other.add_pro(&d.pro);
    let other_card = d.lab.path("paul.card.toml");
    other.ok(&["card", "-o", s(&other_card)]);
    let dep = d.deposit_to(&other_card, &[("cr.txt", REPORT)], &[], "paul.age");
    // The deposit for Paul, taken out and sealed to Marie's key.
    let entries = unpack(&dep, &other);
    let moved = d.lab.path("moved.age");
    reseal(&entries, &d.card, &moved);
    d.refused(
        &moved,
        &[],
        EXIT_FAILURE,
        &["this deposit is for another vault"],
        "nothing was added",
        "another vault",
    );
}

#[test]
fn a_closed_record_receives_nothing() {
    let d = Desk::new(true);
    let dep = d.deposit(&[("cr.txt", REPORT)], &[]);
    d.patient.ok(&["close"]);
    d.refused(
        &dep,
        &[],
        EXIT_FAILURE,
        &["the record is closed"],
        "carnet reopen",
        "closed",
    );
}

// =============================================================================================
// The professional's side

#[test]
fn deposit_needs_a_carnet_key_and_its_own_card() {
    let d = Desk::new(true);
    let report = d.lab.write("cabinet/cr.txt", REPORT);
    let out_file = d.lab.path("depot.age");
    // A plain age identity (age-keygen) has no signing key.
    let plain = d.lab.path("keys/plain.key");
    fs::write(
        &plain,
        fs::read_to_string(&d.pro.key)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("# carnet-signing-key"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let args = |key: &Path, card: &Path| -> Vec<String> {
        vec![
            "deposit".into(),
            "--to".into(),
            s(&d.card).into(),
            "-i".into(),
            s(key).into(),
            "--card".into(),
            s(card).into(),
            s(&report).into(),
            "-o".into(),
            s(&out_file).into(),
        ]
    };
    let out = d.lab.run(None, &args(&plain, &d.pro.card));
    assert_error(&out, &["no carnet signing key"]);
    // Another professional's card with this key.
    let other = d.lab.keygen("Paul Roux", "paul.key", true, &[]);
    let out = d.lab.run(None, &args(&d.pro.key, &other.card));
    assert_error(&out, &["the contact card is not that of this key"]);
    // --title names one document.
    let out = d.lab.run(
        None,
        &[
            "deposit",
            "--to",
            s(&d.card),
            "-i",
            s(&d.pro.key),
            s(&report),
            s(&report),
            "--title",
            "X",
            "-o",
            s(&out_file),
        ],
    );
    assert_error(&out, &["--title names one document"]);
    assert!(!out_file.exists());
    // A deposit is never written over an existing file without --force.
    fs::write(&out_file, b"older").unwrap();
    let out = d.lab.run(None, &args(&d.pro.key, &d.pro.card));
    assert_error(&out, &["already exists"]);
    assert_eq!(fs::read(&out_file).unwrap(), b"older");
}

#[test]
fn deposit_json_reports_what_was_sealed() {
    let d = Desk::new(true);
    let out_file = d.lab.path("depot.age");
    let report = d.lab.write("cabinet/cr.txt", REPORT);
    let j = d
        .lab
        .run(
            None,
            &[
                "deposit",
                "--to",
                s(&d.card),
                "-i",
                s(&d.pro.key),
                s(&report),
                "--date",
                "2026-02-01",
                "--json",
                "-o",
                s(&out_file),
            ],
        )
        .ok()
        .json();
    assert_eq!(j["output"], s(&out_file));
    assert_eq!(j["patient"], "Marie Dupont");
    assert_eq!(
        j["patient_fingerprint"],
        card_of(&d.card)["fingerprint"].as_str().unwrap()
    );
    assert_eq!(j["documents"][0]["date"], "2026-02-01");
    assert_eq!(j["documents"][0]["sha256"], sha256_hex(REPORT));
    assert_eq!(j["sha256"], sha256_hex(&fs::read(&out_file).unwrap()));
}

#[test]
fn age_and_unzip_open_a_deposit_with_the_patients_identity() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let Some(unzip) = require_tool(Tool::Unzip) else {
        return;
    };
    let d = Desk::new(true);
    let dep = d.deposit(&[("cr.txt", REPORT)], &["--category", "compte-rendu"]);
    // The patient's identity as an age identity file (what identity.age holds).
    use age::secrecy::ExposeSecret;
    let key = d.lab.write(
        "marie.key",
        format!("{}\n", identity_of(&d.patient).to_string().expose_secret()).as_bytes(),
    );
    let zip = d.lab.path("depot.zip");
    let out = Command::new(&age)
        .args(["-d", "-i", s(&key), "-o", s(&zip), s(&dep)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = d.lab.path("unzipped/x");
    let dir = dir.parent().unwrap();
    let out = Command::new(&unzip)
        .args(["-q", s(&zip), "-d", s(dir)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "unzip: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.contains(&"deposit.toml".to_string()));
    assert!(names.contains(&"deposit.toml.minisig".to_string()));
    assert!(names.contains(&"LISEZMOI-README.txt".to_string()));
    let doc = names
        .iter()
        .find(|n| n.starts_with("documents/compte-rendu/"))
        .unwrap();
    assert_eq!(fs::read(dir.join(doc)).unwrap(), REPORT);
    let terms: toml::Table =
        toml::from_str(&fs::read_to_string(dir.join("deposit.toml")).unwrap()).unwrap();
    assert_eq!(terms["format"].as_str(), Some("carnet-deposit/1"));
    assert_eq!(
        terms["vault_id"].as_str(),
        card_of(&d.card)["vault_id"].as_str()
    );
    assert_eq!(
        terms["professional"]["signing_key"].as_str(),
        d.pro.card()["signing_key"].as_str()
    );
    // The signature checks with the reference minisign too.
    if let Some(minisign) = require_tool(Tool::Minisign) {
        let out = Command::new(minisign)
            .args(["-Vm", s(&dir.join("deposit.toml")), "-P"])
            .arg(d.pro.card()["signing_key"].as_str().unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "minisign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// =============================================================================================
// Receipts

/// A grant from the patient to the professional, opened with `--receipt`: the receipt's path.
fn opened_with_receipt(d: &Desk) -> (String, PathBuf) {
    let id = d
        .patient
        .add("bilan.txt", b"bilan sanguin\n", &["--date", "2026-01-02"]);
    let bundle = d.lab.path("partage.age");
    let g = d.patient.grant(&[
        "--to",
        "jeanne-martin",
        "--doc",
        &id,
        "--expires",
        "7d",
        "-o",
        s(&bundle),
    ]);
    let receipt = d.lab.path("accuse.age");
    let out = d.lab.open(
        &d.pro,
        &bundle,
        &[
            "-o",
            s(&d.lab.path("recu/x").parent().unwrap().join("dupont")),
            "--receipt",
            s(&receipt),
            "--json",
        ],
    );
    let j = out.ok().json();
    assert_eq!(j["receipt"], s(&receipt));
    assert!(receipt.is_file());
    (g["id"].as_str().unwrap().to_string(), receipt)
}

#[test]
fn a_receipt_records_opened_once() {
    let d = Desk::new(true);
    let (grant, receipt) = opened_with_receipt(&d);
    assert_eq!(d.patient.grants(&[])[0]["opened_at"], Value::Null);

    let r = d.receive(&receipt, &[]);
    assert_eq!(r["kind"], "receipt");
    assert_eq!(r["grant"], grant.as_str());
    assert_eq!(r["recorded"], true);
    assert_eq!(r["professional"]["handle"], "jeanne-martin");

    let opened = d.patient.log_actions("opened");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["actor"], format!("pro:{RPPS}"));
    assert_eq!(opened[0]["details"]["grant"], grant.as_str());
    assert_eq!(opened[0]["documents"].as_array().unwrap().len(), 1);
    let g = &d.patient.grants(&[])[0];
    assert_eq!(g["opened_at"], r["opened_at"]);
    assert_eq!(g["opened"][0]["by"], "jeanne-martin");
    let table = d.patient.ok(&["grants"]).text();
    assert!(table.contains("OPENED"), "{table}");

    // The same receipt again (sent twice, or replayed): recorded once, nothing changes.
    let before = snapshot(&d.patient.vault);
    let again = d.receive(&receipt, &[]);
    assert_eq!(again["recorded"], false);
    assert_same(&before, &snapshot(&d.patient.vault), "a replayed receipt");
    let out = d.patient.ok(&["receive", s(&receipt)]);
    assert!(out.stderr.contains("already recorded"), "{}", out.stderr);
    assert_eq!(d.patient.log_actions("opened").len(), 1);
    d.patient.ok(&["verify"]);
}

#[test]
fn forged_receipts_are_refused() {
    let d = Desk::new(true);
    let (_grant, receipt) = opened_with_receipt(&d);
    let original = unpack(&receipt, &d.patient);
    let forged = d.lab.path("forged-receipt.age");
    let terms = |e: &mut Vec<ZipEntry>| -> toml::Table {
        toml::from_str(&String::from_utf8(entry(e, "receipt.toml").data.clone()).unwrap()).unwrap()
    };

    // Another opening time, with the original signature.
    let mut e = original.clone();
    let t = entry(&mut e, "receipt.toml");
    let text = String::from_utf8(t.data.clone()).unwrap();
    let at = text
        .lines()
        .find(|l| l.starts_with("opened_at"))
        .unwrap()
        .to_string();
    t.data = text
        .replace(&at, "opened_at = \"2020-01-01T00:00:00Z\"")
        .into_bytes();
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["signature does not hold"],
        "nothing was added",
        "altered receipt",
    );

    // A receipt signed by another key in Dr Martin's name.
    let mallory = MinisignKey::from_seed(5);
    let mut e = original.clone();
    let mut t = terms(&mut e);
    let pro = t["professional"].as_table_mut().unwrap();
    pro.insert("signing_key".into(), mallory.public().into());
    pro.insert("fingerprint".into(), mallory.fingerprint().into());
    let text = toml::to_string(&t).unwrap();
    entry(&mut e, "receipt.toml").data = text.clone().into_bytes();
    entry(&mut e, "receipt.toml.minisig").data = mallory.sign(text.as_bytes(), "x").into_bytes();
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["your directory has"],
        "compare their key fingerprint",
        "another key",
    );
    // Even with --accept-new-pro, that key is not the one the grant went to... it becomes
    // Dr Martin's key only if the patient says so; the receipt still names a real grant.

    // A grant this vault never issued, signed by Dr Martin's real key.
    let seed = fs::read_to_string(&d.pro.key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# carnet-signing-key: ").map(str::to_string))
        .unwrap();
    let mut secret = [0u8; 32];
    hex::decode_to_slice(seed.trim(), &mut secret).unwrap();
    let jeanne = MinisignKey::from_secret(secret);
    let mut e = original.clone();
    let mut t = terms(&mut e);
    t.insert("grant".into(), "0123456789abcdef0123456789abcdef".into());
    let text = toml::to_string(&t).unwrap();
    entry(&mut e, "receipt.toml").data = text.clone().into_bytes();
    entry(&mut e, "receipt.toml.minisig").data = jeanne.sign(text.as_bytes(), "x").into_bytes();
    reseal(&e, &d.card, &forged);
    d.refused(
        &forged,
        &[],
        EXIT_INTEGRITY,
        &["names grant 01234567, which this vault never issued"],
        "nothing was added",
        "unknown grant",
    );
    assert!(d.patient.log_actions("opened").is_empty());
    assert_eq!(d.patient.grants(&[])[0]["opened_at"], Value::Null);
}

#[test]
fn open_receipt_needs_an_extraction_and_a_carnet_key() {
    let d = Desk::new(true);
    let id = d.patient.add("bilan.txt", b"bilan\n", &[]);
    let bundle = d.lab.path("partage.age");
    d.patient.grant(&[
        "--to",
        "jeanne-martin",
        "--doc",
        &id,
        "--expires",
        "7d",
        "-o",
        s(&bundle),
    ]);
    let receipt = d.lab.path("accuse.age");
    // --receipt without -o is a usage error.
    let out = d
        .lab
        .open(&d.pro, &bundle, &["--list", "--receipt", s(&receipt)]);
    out.assert_code(EXIT_USAGE, "--receipt without -o");
    assert!(!receipt.exists());
}
