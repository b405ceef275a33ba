//! `carnet demo`: the whole product on a built-in, made-up sample record, in a throwaway folder.
//!
//! Every step runs the real binary as a child process and first prints the equivalent command,
//! so a newcomer learns the CLI by watching it work. Children get no terminal and an explicit
//! environment, and every path points inside the demo folder: nothing prompts, and nothing is
//! written anywhere else (no key, no known-patients file in the user's home).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use super::args::DemoArgs;
use crate::error::Error;
use crate::fsutil;
use crate::keys;

/// One document of the sample record, embedded so the demo runs from any folder.
struct Sample {
    file: &'static str,
    bytes: &'static [u8],
    category: &'static str,
    title: &'static str,
    date: &'static str,
    author: &'static str,
}

const SAMPLES: &[Sample] = &[
    Sample {
        file: "radio-thorax.png",
        bytes: include_bytes!("../../examples/sample-record/radio-thorax.png"),
        category: "imagerie",
        title: "Radio thorax",
        date: "2025-03-12",
        author: "Service d'imagerie, CH de Valfleury",
    },
    Sample {
        file: "compte-rendu-hospitalisation.md",
        bytes: include_bytes!("../../examples/sample-record/compte-rendu-hospitalisation.md"),
        category: "compte-rendu",
        title: "Compte rendu d'hospitalisation",
        date: "2025-03-14",
        author: "Dr Paul Lefèvre, CH de Valfleury",
    },
    Sample {
        file: "ordonnance.txt",
        bytes: include_bytes!("../../examples/sample-record/ordonnance.txt"),
        category: "prescription",
        title: "Ordonnance",
        date: "2025-03-14",
        author: "Dr Paul Lefèvre",
    },
    Sample {
        file: "bilan-sanguin.csv",
        // Lab results are a "compte rendu" in the DMP's document classes (CR de biologie).
        bytes: include_bytes!("../../examples/sample-record/bilan-sanguin.csv"),
        category: "compte-rendu",
        title: "Bilan sanguin",
        date: "2025-04-02",
        author: "Laboratoire des Tilleuls",
    },
    Sample {
        file: "note-personnelle.md",
        bytes: include_bytes!("../../examples/sample-record/note-personnelle.md"),
        category: "note-patient",
        title: "Note personnelle",
        date: "2025-04-10",
        author: "Marie Dupont (démo)",
    },
];

/// The emergency profile of the sample record.
const PROFILE: &str = include_str!("../../examples/profile.toml");

const PATIENT: &str = "Marie Dupont (démo)";
const PRO_NAME: &str = "Dr Jeanne Martin";
const PRO_HANDLE: &str = "jeanne-martin";
/// The RPPS number the ANS publishes for tests: it fails the Luhn check, so keygen warns.
const PRO_RPPS: &str = "10003461033";
/// What the grant shares: a subset, so the demo shows that the rest stays private.
/// The category the patient hides from professionals in the demo.
const HIDDEN: &str = "prescription";
/// The report Dr Martin deposits back into the patient's vault after the consultation.
const REPORT_FILE: &str = "consultation-2025-04-15.md";
const REPORT: &str = "# Compte rendu de consultation (démo)\n\n\
Patiente vue le 15 avril 2025 en suivi de pneumopathie.\n\
Auscultation normale, radiographie de contrôle sans anomalie.\n\
Conclusion : guérison ; pas de nouveau contrôle nécessaire.\n\n\
Dr Jeanne Martin\n";

/// The guardian in the demo: the patient's daughter, her legal representative. For a child's
/// record, a parent holds the same role.
const GUARDIAN: &str = "claire";

/// The environment variables a child must not inherit: they would point it at the user's own
/// vault or key instead of the demo's.
const SCRUBBED_ENV: &[&str] = &["CARNET_VAULT", "CARNET_IDENTITY", "CARNET_PASSPHRASE"];

struct Demo {
    exe: PathBuf,
    dir: PathBuf,
    step: usize,
}

pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the carnet program to run")?;
    let dir = prepare_dir(a.dir)?;
    let mut demo = Demo { exe, dir, step: 0 };
    demo.play()
}

/// A new or empty folder, made absolute so the printed commands work from anywhere.
fn prepare_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        None => tempfile::Builder::new()
            .prefix("carnet-demo-")
            .tempdir()
            .context("cannot create a folder in the temporary directory")?
            .keep(),
        Some(d) => {
            if d.exists() && !(d.is_dir() && fsutil::is_empty_dir(&d)?) {
                return Err(Error::input(
                    format!("{} exists and is not an empty folder", d.display()),
                    "give a new or empty folder, or no folder for a fresh temporary one",
                )
                .into());
            }
            // The folder will hold private keys.
            fsutil::create_private_dir(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            d
        }
    };
    std::path::absolute(&dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

impl Demo {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn play(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        say(&format!(
            "carnet demo: a made-up patient, {PATIENT}, keeps her record in a vault, shares part\n\
             of it with her doctor for one hour, and gives her daughter a key of her own.\n\
             Everything happens in {}\n\
             Each step prints the carnet command it runs; copy them to try your own.",
            dir.display()
        ))?;

        self.comment("The sample record: five made-up documents, written out as ordinary files.")?;
        let sample_dir = self.path("sample");
        fsutil::create_private_dir(&sample_dir)
            .with_context(|| format!("cannot create {}", sample_dir.display()))?;
        for s in SAMPLES {
            let p = sample_dir.join(s.file);
            std::fs::write(&p, s.bytes).with_context(|| format!("cannot write {}", p.display()))?;
            say(&format!("  {}", p.display()))?;
        }

        let patient_key = self.path("patient.key");
        self.comment(
            "The patient's key. A real patient just runs `carnet init` and chooses a passphrase;\n\
             the demo uses an age identity file instead, so that nothing asks for one. The demo\n\
             writes it itself, exactly as this would:",
        )?;
        say(&format!(
            "$ age-keygen -o {}",
            quote(patient_key.as_os_str())
        ))?;
        write_patient_key(&patient_key)?;

        let vault = self.path("vault");
        let with = |rest: &[&OsStr]| opened_with(&vault, &patient_key, rest);

        self.run(
            "init",
            "Create the vault, opened by that key. Nothing in it is readable without the key.",
            &with(&["init".as_ref(), "--name".as_ref(), PATIENT.as_ref()]),
        )?;

        self.comment("Add each document with its category, title, date and author.")?;
        for s in SAMPLES {
            let file = sample_dir.join(s.file);
            self.run(
                "add",
                "",
                &with(&[
                    "add".as_ref(),
                    file.as_os_str(),
                    "--category".as_ref(),
                    s.category.as_ref(),
                    "--title".as_ref(),
                    s.title.as_ref(),
                    "--date".as_ref(),
                    s.date.as_ref(),
                    "--author".as_ref(),
                    s.author.as_ref(),
                ]),
            )?;
        }

        self.run(
            "ls",
            "List the record, sorted by date.",
            &with(&["ls".as_ref()]),
        )?;

        self.run(
            "note",
            "She writes a note of her own: it joins the record, encrypted like any document.",
            &with(&[
                "note".as_ref(),
                "Toux moins fréquente depuis la fin des antibiotiques".as_ref(),
                "--title".as_ref(),
                "Suivi de la toux".as_ref(),
            ]),
        )?;
        self.run(
            "hide",
            "Her prescriptions are nobody's business but hers: hidden from professionals, the\n\
             ones she has and those to come. Grants leave them out unless she insists.",
            &with(&["hide".as_ref(), "--category".as_ref(), HIDDEN.as_ref()]),
        )?;

        let pro_key = self.path("dr-martin.key");
        let pro_card = self.path("dr-martin.card.toml");
        self.run(
            "keygen",
            "Now the doctor's side. Dr Martin makes her key and contact card once (she has no\n\
             vault). The RPPS number is the official test number, hence the Luhn warning.\n\
             A real professional leaves out --unprotected and chooses a passphrase.",
            &[
                "keygen".into(),
                "--name".into(),
                PRO_NAME.into(),
                "--rpps".into(),
                PRO_RPPS.into(),
                "--profession".into(),
                "médecin".into(),
                "-o".into(),
                pro_key.clone().into(),
                "--card".into(),
                pro_card.clone().into(),
                "--unprotected".into(),
            ],
        )?;

        self.run(
            "pro add",
            "She sends her card (public keys only) to the patient, who adds her to her directory.",
            &with(&[
                "pro".as_ref(),
                "add".as_ref(),
                "--card".as_ref(),
                pro_card.as_os_str(),
            ]),
        )?;

        let bundle = self.path("partage.age");
        let mut grant = with(&[
            "grant".as_ref(),
            "--to".as_ref(),
            PRO_HANDLE.as_ref(),
            "--all".as_ref(),
        ]);
        grant.extend([
            "--expires".into(),
            "1h".into(),
            "--purpose".into(),
            "Consultation de suivi après pneumopathie".into(),
            "-o".into(),
            bundle.clone().into(),
        ]);
        self.run(
            "grant",
            "The patient shares her record for one hour: her hidden prescription and her own\n\
             notes are left out (carnet says so). A signed bundle, encrypted for Dr Martin only,\n\
             to send by email or USB.",
            &grant,
        )?;

        let received = self.path("recu");
        self.run(
            "open",
            "Dr Martin opens it with her key: carnet checks the patient's signature, every\n\
             document's hash and the validity period, then extracts the documents.",
            &[
                "open".into(),
                bundle.clone().into(),
                "-i".into(),
                pro_key.clone().into(),
                "-o".into(),
                received.clone().into(),
            ],
        )?;
        self.show_tree(&received)?;

        let card = self.path("marie.card.toml");
        self.run(
            "card",
            "Documents can come back too. The patient gives Dr Martin her card: her vault's public\n\
             keys, signed, with the fingerprint they compare (`--qr` shows it as a QR code).",
            &with(&["card".as_ref(), "-o".as_ref(), card.as_os_str()]),
        )?;
        let report = self.path(REPORT_FILE);
        std::fs::write(&report, REPORT)
            .with_context(|| format!("cannot write {}", report.display()))?;
        let deposit = self.path("depot.age");
        self.run(
            "deposit",
            "Dr Martin deposits her report: signed with her key, encrypted to the patient's vault\n\
             only (she needs no vault of her own). Sent by email or USB like a bundle.",
            &[
                "deposit".into(),
                "--to".into(),
                card.into(),
                "-i".into(),
                pro_key.clone().into(),
                report.into(),
                "--category".into(),
                "compte-rendu".into(),
                "--title".into(),
                "Compte rendu de consultation".into(),
                "--note".into(),
                "Tout va bien, bonne continuation.".into(),
                "-o".into(),
                deposit.clone().into(),
            ],
        )?;
        self.run(
            "receive",
            "The patient receives it: carnet checks Dr Martin's signature against her directory,\n\
             the report's hash and the zip, then adds it with Dr Martin as author; the log names\n\
             her as the actor (pro:RPPS).",
            &with(&["receive".as_ref(), deposit.as_os_str()]),
        )?;
        let profile = sample_dir.join("profile.toml");
        std::fs::write(&profile, PROFILE)
            .with_context(|| format!("cannot write {}", profile.display()))?;
        self.run(
            "profile import",
            "Back to the patient, for emergencies. Her emergency profile (allergies, treatments,\n\
             conditions, blood group, whom to call) is a TOML file like examples/profile.toml;\n\
             it is sealed in the vault, and every version is kept.",
            &with(&["profile".as_ref(), "import".as_ref(), profile.as_os_str()]),
        )?;
        let urgence = self.path("urgence.age");
        let card = self.path("carte-urgence.pdf");
        let printed = self.run_capture(
            "emergency",
            "The emergency bundle: the profile as an FHIR International Patient Summary and as\n\
             text, behind a passcode of 8 words printed once (here, just below), and a card to\n\
             print: name, allergies, blood group, contact, a QR code of them, and the passcode.",
            &with(&[
                "emergency".as_ref(),
                "-o".as_ref(),
                urgence.as_os_str(),
                "--card".as_ref(),
                card.as_os_str(),
                "--where".as_ref(),
                "clé USB de démonstration".as_ref(),
            ]),
        )?;
        let code = self.path("code-lu-sur-la-carte.txt");
        std::fs::write(&code, printed.trim())
            .with_context(|| format!("cannot write {}", code.display()))?;
        let opened = self.path("urgence");
        self.run(
            "open --passcode",
            "An emergency doctor opens it with the passcode from the card (typed at the prompt;\n\
             the demo reads it from a file). Same checks as a grant. Without carnet:\n\
             age -d urgence.age > urgence.zip (age asks for the passcode) && unzip urgence.zip",
            &[
                "open".into(),
                urgence.clone().into(),
                "--passcode-file".into(),
                code.into(),
                "-o".into(),
                opened.clone().into(),
            ],
        )?;
        self.show_tree(&opened)?;

        // The keys: a recovery key, a guardian, and removing the guardian's key. Removing a
        // key gives the vault a new identity: the patient opens it with a new file afterwards.
        let patient_key = self.keys(&vault, &patient_key)?;
        let with = |rest: &[&OsStr]| opened_with(&vault, &patient_key, rest);

        self.run(
            "log",
            "Back to the patient: the access log records every action, the grant and the\n\
             guardian's note included (`-n 12`: the last twelve; it reads only the end of the\n\
             log, however long it grows).",
            &with(&["log".as_ref(), "-n".as_ref(), "12".as_ref()]),
        )?;
        self.run(
            "verify",
            "Check that nothing in the vault was altered, removed or rolled back.",
            &with(&["verify".as_ref()]),
        )?;

        say(&what_next(&dir))?;
        Ok(())
    }

    /// The keys that open the vault: a recovery key, a guardian who opens the record with their
    /// own key (and is named in the log), then the guardian's key removed, which re-encrypts
    /// the whole vault for a new identity. Returns the patient's new identity file.
    fn keys(&mut self, vault: &Path, patient_key: &Path) -> anyhow::Result<PathBuf> {
        let with = |rest: &[&OsStr]| opened_with(vault, patient_key, rest);
        let recovery = self.path("recovery.key");
        self.run(
            "key add --recovery",
            "Her keys. If she loses her key (or forgets her passphrase), a recovery key opens the\n\
             vault: made once, printed, kept offline, away from the vault.",
            &with(&[
                "key".as_ref(),
                "add".as_ref(),
                "--recovery".as_ref(),
                "-o".as_ref(),
                recovery.as_os_str(),
            ]),
        )?;

        let guardian_key = self.path(&format!("{GUARDIAN}.key"));
        self.comment(
            "Her daughter Claire is her legal representative (for a child's record, a parent): a\n\
             guardian, who opens the vault with her own key. Any age key will do (an SSH key or a\n\
             card from `carnet keygen` too); she makes one, as this would:",
        )?;
        say(&format!(
            "$ age-keygen -o {}",
            quote(guardian_key.as_os_str())
        ))?;
        let guardian_recipient = write_patient_key(&guardian_key)?;
        self.run(
            "key add --guardian",
            "Claire sends her public key; the patient adds it. The vault's key is sealed to it in\n\
             a slot of its own: nothing else changes.",
            &with(&add_guardian(&guardian_recipient)),
        )?;
        self.run(
            "key ls",
            "The keys that open the vault now, with their role.",
            &with(&["key".as_ref(), "ls".as_ref()]),
        )?;
        self.run(
            "note (as the guardian)",
            "Claire opens the record with her own key and adds a note; the log names her\n\
             guardian:claire. A guardian cannot change the vault's keys.",
            &opened_with(
                vault,
                &guardian_key,
                &[
                    "note".as_ref(),
                    "Radio de contrôle prise pour le 25 avril, cabinet des Tilleuls".as_ref(),
                    "--title".as_ref(),
                    "Rendez-vous radio".as_ref(),
                ],
            ),
        )?;

        self.child_record(&guardian_key, &guardian_recipient)?;

        let new_key = self.path("patient-2.key");
        self.run(
            "key rm",
            "Later, the patient takes Claire's key back. Deleting its slot is not enough (that key\n\
             has held the vault's key), so every file of the vault is encrypted again for a new\n\
             vault key. An identity-file vault gets a new identity file (-o); with a passphrase,\n\
             the passphrase stays the same. The recovery key is re-bound to the new vault key.",
            &with(&[
                "key".as_ref(),
                "rm".as_ref(),
                GUARDIAN.as_ref(),
                "-o".as_ref(),
                new_key.as_os_str(),
            ]),
        )?;
        self.run_refused(
            "ls (the removed key)",
            "Claire's key opens nothing the vault holds now (and neither does the old patient.key).",
            &opened_with(vault, &guardian_key, &["ls".as_ref()]),
        )?;
        Ok(new_key)
    }

    /// A child's record kept with a passphrase, Claire its guardian: a consultation under
    /// medical secrecy hidden from guardians is sealed from her key (CSP L1111-5).
    fn child_record(
        &mut self,
        guardian_key: &Path,
        guardian_recipient: &str,
    ) -> anyhow::Result<()> {
        let vault = self.path("leo-vault");
        let pass = self.path("leo.passphrase");
        std::fs::write(&pass, "le chat de la voisine dort au soleil\n")
            .with_context(|| format!("cannot write {}", pass.display()))?;
        let visit = self.path("consultation-confidentielle.md");
        std::fs::write(
            &visit,
            "# Consultation du 12 mars\n\nVu seul, à sa demande (secret médical, CSP L1111-5).\n",
        )
        .with_context(|| format!("cannot write {}", visit.display()))?;
        let leo = |rest: &[&OsStr]| -> Vec<OsString> {
            [
                "--vault".as_ref(),
                vault.as_os_str(),
                "--passphrase-file".as_ref(),
                pass.as_os_str(),
            ]
            .iter()
            .chain(rest)
            .map(|s| s.to_os_string())
            .collect()
        };
        self.run(
            "init (a child's record)",
            "Claire also keeps the record of her son Léo, 15, as his guardian. This one opens\n\
             with a passphrase (here from a file, for the demo).",
            &leo(&["init".as_ref(), "--name".as_ref(), "Léo Martin".as_ref()]),
        )?;
        self.run(
            "key add --guardian (Léo's record)",
            "",
            &leo(&add_guardian(guardian_recipient)),
        )?;
        let added = self.run_capture(
            "add (Léo's record)",
            "Léo saw a doctor on his own, under medical secrecy: a minor may keep such care from\n\
             his parents (CSP L1111-5).",
            &leo(&[
                "add".as_ref(),
                visit.as_os_str(),
                "--title".as_ref(),
                "Consultation du 12 mars".as_ref(),
                "--date".as_ref(),
                "2026-03-12".as_ref(),
                "--json".as_ref(),
            ]),
        )?;
        let id = serde_json::from_str::<serde_json::Value>(&added)
            .ok()
            .and_then(|v| first_id(&v))
            .ok_or_else(|| {
                anyhow::anyhow!("the demo could not read the id `carnet add` printed")
            })?;
        let id = id.get(..8).unwrap_or(&id).to_string();
        self.run(
            "hide --from guardians",
            "He hides it from his guardians: it is encrypted again to a key their slots do not\n\
             hold, with its title, its grants and the log entries that name it (the first time,\n\
             a second key is written into identity.age, under the same passphrase).",
            &leo(&[
                "hide".as_ref(),
                id.as_ref(),
                "--from".as_ref(),
                "guardians".as_ref(),
            ]),
        )?;
        self.run(
            "note (Claire, in Léo's record)",
            "Claire adds a note with her own key, as usual.",
            &opened_with(
                &vault,
                guardian_key,
                &[
                    "note".as_ref(),
                    "Rappel DTP fait le 3 mars".as_ref(),
                    "--title".as_ref(),
                    "Vaccin DTP".as_ref(),
                ],
            ),
        )?;
        self.run(
            "ls (Léo)",
            "Léo still lists it (g: hidden from guardians) ...",
            &leo(&["ls".as_ref()]),
        )?;
        self.run(
            "ls (Claire)",
            "... and Claire, with her own key, sees no trace of it.",
            &opened_with(&vault, guardian_key, &["ls".as_ref()]),
        )?;
        Ok(())
    }

    /// Prints the explanation and the equivalent command, then runs it; a failure names the
    /// step, since the child's own error message is just above it.
    fn run(&mut self, name: &str, why: &str, args: &[OsString]) -> anyhow::Result<()> {
        if !why.is_empty() {
            self.comment(why)?;
        }
        let status = self.child(args)?;
        if !status.success() {
            let how = match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed".to_string(),
            };
            return Err(Error::input(
                format!("demo step {} (carnet {name}) failed: it {how}", self.step),
                format!(
                    "its message is above; the demo folder {} is left as it was for a look",
                    self.dir.display()
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Like `run`, for a step that must fail: the demo shows the refusal and carries on.
    fn run_refused(&mut self, name: &str, why: &str, args: &[OsString]) -> anyhow::Result<()> {
        self.comment(why)?;
        if self.child(args)?.success() {
            return Err(Error::input(
                format!(
                    "demo step {} (carnet {name}) succeeded, but should have been refused",
                    self.step
                ),
                format!(
                    "the demo folder {} is left as it was for a look",
                    self.dir.display()
                ),
            )
            .into());
        }
        say("(refused, as it should be)")
    }

    /// Prints the equivalent command and runs it in the demo's environment.
    fn child(&self, args: &[OsString]) -> anyhow::Result<std::process::ExitStatus> {
        let shown: Vec<String> = args.iter().map(|a| quote(a)).collect();
        say(&format!("$ carnet {}", shown.join(" ")))?;
        Command::new(&self.exe)
            .args(args)
            .env("CARNET_KNOWN_PATIENTS", self.path("known-patients.toml"))
            // The user's own hooks (~/.config/carnet/hooks.toml) must not fire for the demo.
            .env("XDG_CONFIG_HOME", self.path("config"))
            .envs_removed(SCRUBBED_ENV)
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("cannot run {}", self.exe.display()))
    }

    /// Like `run`, for a step whose standard output the demo needs (the passcode): shown as
    /// it comes, and returned.
    fn run_capture(&mut self, name: &str, why: &str, args: &[OsString]) -> anyhow::Result<String> {
        self.comment(why)?;
        let shown: Vec<String> = args.iter().map(|a| quote(a)).collect();
        say(&format!("$ carnet {}", shown.join(" ")))?;
        let out = Command::new(&self.exe)
            .args(args)
            .env("CARNET_KNOWN_PATIENTS", self.path("known-patients.toml"))
            .envs_removed(SCRUBBED_ENV)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.exe.display()))?;
        // In the order a terminal shows them: the passcode, then what carnet says of it.
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        say(text.trim_end())?;
        let mut err = std::io::stderr().lock();
        err.write_all(&out.stderr)?;
        err.flush()?;
        if !out.status.success() {
            return Err(Error::input(
                format!("demo step {} (carnet {name}) failed", self.step),
                format!(
                    "its message is above; the demo folder {} is left as it was for a look",
                    self.dir.display()
                ),
            )
            .into());
        }
        Ok(text)
    }

    fn comment(&mut self, text: &str) -> anyhow::Result<()> {
        self.step += 1;
        let mut lines = text.lines();
        let mut out = format!("\n# {}. {}", self.step, lines.next().unwrap_or_default());
        for l in lines {
            out.push_str("\n#    ");
            out.push_str(l);
        }
        say(&out)
    }

    /// What the professional now holds, so the newcomer sees the bundle's layout.
    fn show_tree(&self, root: &Path) -> anyhow::Result<()> {
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| e.path().strip_prefix(root).ok().map(Path::to_path_buf))
            .collect();
        files.sort();
        say(&format!("  {}/", root.display()))?;
        for f in files {
            say(&format!("    {}", f.display()))?;
        }
        Ok(())
    }
}

trait EnvsRemoved {
    fn envs_removed(&mut self, names: &[&str]) -> &mut Self;
}

impl EnvsRemoved for Command {
    fn envs_removed(&mut self, names: &[&str]) -> &mut Self {
        for n in names {
            self.env_remove(n);
        }
        self
    }
}

/// `key add --guardian --name claire --recipient RECIPIENT`.
fn add_guardian(recipient: &str) -> [&OsStr; 7] {
    [
        "key".as_ref(),
        "add".as_ref(),
        "--guardian".as_ref(),
        "--name".as_ref(),
        GUARDIAN.as_ref(),
        "--recipient".as_ref(),
        recipient.as_ref(),
    ]
}

/// The id of the first document `carnet add --json` reports.
fn first_id(v: &serde_json::Value) -> Option<String> {
    let list = v.get("documents").unwrap_or(v);
    list.as_array()?
        .first()?
        .get("id")?
        .as_str()
        .map(str::to_string)
}

/// `carnet --vault VAULT -i KEY REST...`: a command run with the vault opened by `key`.
fn opened_with(vault: &Path, key: &Path, rest: &[&OsStr]) -> Vec<OsString> {
    [
        "--vault".as_ref(),
        vault.as_os_str(),
        "-i".as_ref(),
        key.as_os_str(),
    ]
    .iter()
    .chain(rest)
    .map(|s| s.to_os_string())
    .collect()
}

/// Writes a new age identity file, as `age-keygen -o PATH` would; returns its recipient.
fn write_patient_key(path: &Path) -> anyhow::Result<String> {
    let (id, text) = keys::new_identity_file();
    let mut f = fsutil::create_new_private(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id.to_public().to_string())
}

/// Writes to stdout and flushes, so the text lands before the next child's own output.
fn say(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Quotes an argument for a POSIX shell, only when it needs it, so the printed commands can be
/// pasted as they are.
fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || "_-./:,=+@%".contains(c));
    if plain {
        s.into_owned()
    } else if !s.contains(['"', '\\', '$', '`', '!']) {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn what_next(dir: &Path) -> String {
    let d = quote(dir.as_os_str());
    format!(
        "\nDone. Everything the demo made is in {d}; nothing was written elsewhere.\n\
         Look around (the vault holds only encrypted files with random names), then: rm -r {d}\n\
         \n\
         What next, for real:\n\
         \x20 carnet init --name \"Your Name\"        # your vault (~/.local/share/carnet), with a passphrase\n\
         \x20 carnet add ~/Documents/sante          # files or whole folders; see `carnet categories`\n\
         \x20 carnet unlock                        # the passphrase once for 15 min (`carnet lock` ends it)\n\
         \x20 carnet ls; carnet show ID; carnet cat ID\n\
         \x20 carnet pro add --card their.card.toml # a card made by the professional's `carnet keygen`\n\
         \x20 carnet grant --to HANDLE --category imagerie --expires 7d -o partage.age\n\
         \x20 carnet card -o me.card.toml; carnet receive depot.age  # documents back from them\n\
         \x20 carnet profile edit                   # your emergency profile (allergies, treatments...)\n\
         \x20 carnet emergency -o /media/usb/urgence.age --card carte.pdf\n\
         \x20 carnet key add --recovery -o recovery.key  # print it, keep it offline\n\
         \x20 carnet key add --guardian --name papa --card papa.card.toml  # a parent's key\n\
         \x20 carnet hide ID --from guardians     # sealed from guardians' keys (a minor's secret)\n\
         \x20 carnet key rm papa                   # re-encrypts the vault: that key opens nothing now\n\
         \x20 carnet backup -o /media/usb/carnet.zip  # no key needed: it is all encrypted already\n\
         \x20 carnet verify\n\
         A professional opens a bundle with `carnet open FILE -i KEY -o DIR --from FINGERPRINT`,\n\
         the fingerprint being the one the patient reads to them (`carnet open` shows it).\n\
         Every command has --help with examples; see also `man carnet` and `carnet completions`."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_leaves_plain_words_alone() {
        assert_eq!(
            quote(OsStr::new("/tmp/carnet-demo-1/vault")),
            "/tmp/carnet-demo-1/vault"
        );
        assert_eq!(quote(OsStr::new("médecin")), "médecin");
        assert_eq!(
            quote(OsStr::new("Marie Dupont (démo)")),
            "\"Marie Dupont (démo)\""
        );
        assert_eq!(
            quote(OsStr::new("Compte rendu d'hospitalisation")),
            "\"Compte rendu d'hospitalisation\""
        );
        assert_eq!(quote(OsStr::new("a$b'c")), r"'a$b'\''c'");
        assert_eq!(quote(OsStr::new("")), "\"\"");
    }

    #[test]
    fn samples_fit_their_categories() {
        for s in SAMPLES {
            assert!(crate::category::find(s.category).is_some(), "{}", s.file);
            assert!(!s.bytes.is_empty(), "{}", s.file);
        }
        assert!(crate::category::find(HIDDEN).is_some());
    }
}
