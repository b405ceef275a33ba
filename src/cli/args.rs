//! The command-line interface, as clap definitions only.
//!
//! It depends on nothing but `clap` and `std`, so that the man pages (rendered by
//! `tests/man_pages.rs`) and the completions (`carnet completions`) come from the very
//! definitions the binary parses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "carnet",
    version,
    about = "A patient-held medical record: an encrypted vault on your own disk or USB stick.",
    long_about = "carnet keeps your medical record (prescriptions, lab results, imaging, letters, \
your own notes) as an age-encrypted vault that you hold yourself.\n\n\
It is not a substitute for the official DMP (Mon espace santé).",
    after_help = "Examples:\n  carnet init --name \"Marie Dupont\"\n  carnet add ~/Documents/sante\n  carnet ls --category imagerie",
    after_long_help = "Exit status:\n  0  success\n  1  error\n  2  usage error\n  \
3  integrity check failed (vault or bundle)\n  4  grant expired or not yet valid\n\n\
Environment:\n  CARNET_VAULT           the vault folder (like --vault)\n  \
CARNET_IDENTITY        an age identity file that opens the vault (like -i)\n  \
CARNET_PASSPHRASE      the passphrase, for scripts (--passphrase-file wins over it)\n  \
CARNET_KNOWN_PATIENTS  where `carnet open` remembers patients' keys\n                         \
[default: $XDG_CONFIG_HOME/carnet/known-patients.toml]\n  \
CARNET_PASSCODE        the passcode of an emergency bundle or access code, for\n                         \
`carnet open --passcode`\n  \
CARNET_NOW             the time carnet uses instead of the clock (tests and\n                         \
reproducible runs), in RFC 3339: 2026-03-14T09:30:00Z\n\n\
Examples:\n  carnet init --name \"Marie Dupont\"\n  carnet add ~/Documents/sante\n  carnet ls --category imagerie"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalOpts {
    /// The vault folder [default: $XDG_DATA_HOME/carnet or ~/.local/share/carnet]
    #[arg(long, global = true, env = "CARNET_VAULT", value_name = "DIR")]
    pub vault: Option<PathBuf>,
    /// A key file that opens the vault instead of its passphrase: an age identity, a recovery
    /// or guardian key, an SSH private key or a hardware key's age plugin identity
    #[arg(
        short = 'i',
        long,
        global = true,
        env = "CARNET_IDENTITY",
        value_name = "FILE"
    )]
    pub identity: Option<PathBuf>,
    /// Read the passphrase from FILE (it wins over CARNET_PASSPHRASE)
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Say more on stderr: e.g. whether the key came from `carnet unlock`
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault
    #[command(
        after_help = "Examples:\n  carnet init --name \"Marie Dupont\" --nir \"2 69 05 49 588 157 80\"\n  \
carnet --vault /media/usb/carnet init -i ~/.config/carnet/key.txt"
    )]
    Init(InitArgs),
    /// Add files, or whole folders, to the vault
    #[command(
        after_help = "Examples:\n  carnet add ordonnance.pdf --category prescription --author \"Dr Martin\"\n  \
carnet add ~/Scans   # subfolders named after a category set it (e.g. Scans/imagerie/)"
    )]
    Add(AddArgs),
    /// Write a note of your own into the record (Markdown)
    #[command(
        after_help = "The text comes from the argument, from standard input (TEXT `-`, or absent \
when input is piped), or from $VISUAL / $EDITOR on a terminal. The editor works on a private \
file (0600 in a 0700 folder, in $XDG_RUNTIME_DIR when set) that is overwritten and removed as \
soon as it is read.\n\n\
Examples:\n  carnet note \"Vertiges depuis lundi, surtout le matin\" --tag symptomes\n  \
echo \"Tension 13/8\" | carnet note --title \"Tension du jour\"\n  \
carnet note   # opens your editor"
    )]
    Note(NoteArgs),
    /// Correct a document's title, date, category, author or tags (the earlier version is kept)
    #[command(
        after_help = "Every correction is a new version: `carnet history ID` lists them and \
`carnet show ID --version N` reads an earlier one.\n\n\
Examples:\n  carnet edit 3f9c --title \"Compte rendu cardiologie\" --date 2026-03-14\n  \
carnet edit 3f9c --untag brouillon --reason \"mauvaise date\""
    )]
    Edit(EditArgs),
    /// Correct a document's content with a new file (the earlier version is kept)
    #[command(
        after_help = "Examples:\n  carnet replace 3f9c compte-rendu-corrige.pdf --reason \"version signée\"\n  \
carnet cat 3f9c --version 1 > original.pdf"
    )]
    Replace(ReplaceArgs),
    /// List a document's versions: when, by whom, what changed and why
    #[command(after_help = "Examples:\n  carnet history 3f9c\n  carnet history 3f9c --json")]
    History(HistoryArgs),
    /// Hide documents from professionals or from legal representatives
    #[command(
        after_help = "Hidden from professionals (MASQUE_PS), a document is left out of `grant --all`, \
--category and --tag, and `grant --doc` refuses it without --include-hidden. Hidden from legal \
representatives (INVISIBLE_REPRESENTANTS_LEGAUX), it is encrypted again to a key that guardians' \
keys do not hold, with its metadata, its grants and the log entries that name it: a guardian \
sees no trace of it but the number and sizes of such files (copies made before, such as \
backups, still open with their key). The first time needs the passphrase \
(a second key is written into identity.age). A category rule covers the category's present and \
future documents.\n\n\
Examples:\n  carnet hide 3f9c\n  carnet hide --category imagerie --from all\n  carnet unhide 3f9c"
    )]
    Hide(HideArgs),
    /// Make hidden documents visible again
    #[command(
        after_help = "Without --from, the document is made visible to professionals again; \
--from guardians or --from all for the rest.\n\n\
Examples:\n  carnet unhide 3f9c\n  carnet unhide --category imagerie"
    )]
    Unhide(HideArgs),
    /// List documents, sorted by date
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  carnet ls --since 2025-01-01 --category imagerie\n  \
carnet ls --category imagerie --category compte-rendu\n  \
carnet ls --search irm --json | jq '.[].id'"
    )]
    Ls(LsArgs),
    /// Show a document's metadata
    #[command(after_help = "Example:\n  carnet show 3f9c")]
    Show(ShowArgs),
    /// Write a document's content to standard output
    #[command(after_help = "Examples:\n  carnet cat 3f9c | less\n  carnet cat 7a01 > radio.png")]
    Cat(CatArgs),
    /// Export documents to a folder, named after their titles
    #[command(
        after_help = "--fhir writes the emergency profile (`carnet profile`) as an HL7 FHIR R4 \
International Patient Summary: a document Bundle; --documents adds the documents not hidden from \
professionals, next to the JSON.\n\n\
Examples:\n  carnet export 3f9c 7a01 -o ~/Bureau/pour-le-medecin\n  \
carnet export --category imagerie -o /media/usb/imagerie\n  \
carnet export --fhir -o ~/Bureau/ips/ips.json --documents"
    )]
    Export(ExportArgs),
    /// Remove documents from the vault
    #[command(after_help = "Example:\n  carnet rm 3f9c --yes")]
    Rm(RmArgs),
    /// Show the access log: who did what, and when
    #[command(
        after_help = "Examples:\n  carnet log --since 2026-01-01 --action view\n  \
carnet log --doc 3f9c --json"
    )]
    Log(LogArgs),
    /// Check that nothing in the vault was altered, removed, added or rolled back
    #[command(
        after_help = "A sound vault's check is recorded in its access log (a `verify` entry, which \
`carnet log --action verify` lists); --offline needs no key and writes nothing.\n\n\
Exit status: 0 when the vault is sound, 3 when a check fails.\n\n\
Examples:\n  carnet verify\n  carnet verify --deep --json\n  \
carnet verify --offline /media/usb/carnet-backup.zip"
    )]
    Verify(VerifyArgs),
    /// Create a professional's key and contact card (for doctors, nurses, pharmacists; no vault)
    #[command(
        after_help = "Examples:\n  carnet keygen --name \"Dr Jeanne Martin\" --rpps 10005173140 --profession médecin -o jeanne.key\n  \
CARNET_PASSPHRASE=... carnet keygen --name \"Inf. Paul Roux\" --adeli 751234567 \\\n    -o paul.key --card paul.toml"
    )]
    Keygen(KeygenArgs),
    /// Manage your directory of health professionals
    #[command(
        subcommand,
        after_help = "Examples:\n  carnet pro add --card jeanne.card.toml\n  carnet pro ls\n  carnet pro block jeanne-martin"
    )]
    Pro(ProCommand),
    /// Share documents with professionals: write a signed, encrypted, time-limited bundle
    #[command(
        after_help = "The expiry is your consent, signed: `carnet open` enforces it, but once a \
professional has opened the bundle nothing technical can take it back.\n\n\
With --passcode the bundle opens with a generated passcode instead of a professional's key \
(an access code): anyone holding the bundle and the passcode can read it, and offline nothing \
limits how many passcodes can be tried, so it is generated (8 words, 88 bits) and protected by \
scrypt; it lasts at most 31 days.\n\n\
Examples:\n  carnet grant --to jeanne-martin --category imagerie --expires 7d \\\n    --purpose \"avis cardiologie\" -o partage.age\n  \
carnet grant --passcode --doc 3f9c --expires 14d -o partage.age\n  \
carnet grant --to 10005173140 --doc 3f9c --doc 7a01 --expires 2026-12-31 --armor -o - | mail ..."
    )]
    Grant(GrantArgs),
    /// List the grants you issued, with their status
    #[command(after_help = "Example:\n  carnet grants --active --json")]
    Grants(GrantsArgs),
    /// Record that a grant is revoked
    #[command(
        after_help = "A copy already sent cannot be recalled: the revocation is recorded in your \
access log and shown by `carnet grants`; tell the professional.\n\nExample:\n  carnet revoke 1f2e"
    )]
    Revoke(RevokeArgs),
    /// Open a bundle received from a patient: check it, show the terms, extract the documents
    #[command(
        after_help = "Exit status: 3 when the signature, a hash or the signer fails; 4 when the \
grant is expired or not yet valid.\n\n\
An emergency bundle or an access code opens with --passcode (typed, CARNET_PASSCODE or \
--passcode-file), with the same checks.\n\n\
Examples:\n  carnet open partage.age -i jeanne.key --list\n  \
carnet open partage.age -i jeanne.key -o ~/Patients/dupont --from SHA256:1a2b:...\n  \
carnet open partage.age -i jeanne.key -o ~/Patients/dupont --receipt ~/Patients/dupont-accuse.age\n  \
carnet open urgence.age --passcode -o ~/urgence"
    )]
    Open(OpenArgs),
    /// The patients whose bundles you opened, and the key remembered for each (professionals)
    #[command(
        after_help = "A patient is remembered by their vault: a bundle from a known vault signed by \
another key is refused (unless --from names it), and a homonym with another vault is a new \
patient.\n\n\
Examples:\n  carnet patients\n  carnet patients forget SHA256:5ac6:171f:..."
    )]
    Patients(PatientsArgs),
    /// Back up the vault without the key: one zip file, or a mirror folder kept up to date
    #[command(
        after_help = "No key or passphrase is needed: everything copied is already encrypted. When \
the key is at hand (-i, CARNET_PASSPHRASE, --passphrase-file or `carnet unlock`) the backup is also logged.\n\n\
A mirror that has changes of its own (a document added on the stick on another computer) is \
not overwritten: the update stops, naming what it would delete; --merge imports those \
documents into the vault first, --force overwrites them.\n\n\
Examples:\n  carnet backup -o /media/usb/carnet-2026-11-25.zip\n  \
restic backup --stdin-filename carnet.zip --stdin-from-command -- carnet backup -o -\n  \
carnet backup --to /media/usb/carnet\n  \
carnet backup --to /media/usb/carnet --check   # also re-hash what the stick already holds\n  \
carnet backup --to /media/usb/carnet --merge   # keep documents added on the stick elsewhere"
    )]
    Backup(BackupArgs),
    /// Restore a vault from a backup file or mirror folder into --vault (which must be empty)
    #[command(
        after_help = "Examples:\n  carnet --vault ~/carnet restore /media/usb/carnet-2026-11-25.zip\n  \
carnet --vault ~/carnet restore /media/usb/carnet"
    )]
    Restore(RestoreArgs),
    /// Close the record: it becomes read-only until `carnet reopen`
    #[command(
        after_help = "While the record is closed, every change (add, rm, grant, revoke, pro add, ...) is \
refused with exit status 1; reading, export, backup, verify and the log keep working. Closing and \
reopening are logged.\n\n\
Examples:\n  carnet close --reason \"je quitte la France\"\n  carnet reopen"
    )]
    Close(CloseArgs),
    /// Reopen a closed record
    #[command(after_help = "Example:\n  carnet reopen")]
    Reopen(JsonArg),
    /// Destroy the record: shred its keys, then delete every file of the vault
    #[command(
        after_help = "The keys (identity.age in passphrase mode, and keys.age) are overwritten with random \
bytes and deleted first, then every other file of the vault, then its folder. On SSDs, \
copy-on-write file systems and snapshots, overwriting cannot guarantee that the old blocks are \
gone; the encryption is what protects what remains.\n\n\
Backups and mirrors made earlier still hold the encrypted record, and your passphrase or \
identity file still opens them: destroy lists those the vault logged; delete them too.\n\n\
On a terminal, destroy asks you to type the patient's name; scripts pass it with --confirm \
(the vault's fingerprint when the record holds no name), or get exit status 2. A wrong name \
leaves the vault untouched. A closed record can be destroyed.\n\n\
Examples:\n  carnet destroy\n  carnet destroy --confirm \"Marie Dupont\" --json"
    )]
    Destroy(DestroyArgs),
    /// The keys that open the vault: yours, a recovery key, guardians
    #[command(
        subcommand,
        after_help = "Examples:\n  carnet key ls\n  carnet key add --recovery -o recovery.key"
    )]
    Key(KeyCommand),
    /// Re-encrypt the whole vault for a new vault key (after a suspected leak)
    #[command(
        after_help = "Like `carnet key rm`, without removing a key: every file of the vault is \
written again with fresh file keys for a new vault identity, and every remaining key (your \
passphrase, the recovery key) is re-bound to it. A copy of the old files, or of the vault \
identity, opens nothing written afterwards.\n\n\
Examples:\n  carnet rekey\n  carnet -i me.key rekey -o me-new.key"
    )]
    Rekey(RekeyArgs),
    /// Choose a new vault passphrase (asked twice; CARNET_NEW_PASSPHRASE in scripts)
    #[command(
        after_help = "Forgot it? Open the vault with your recovery key and choose a new one:\n  \
carnet -i recovery.key passphrase\n\n\
Example:\n  carnet passphrase"
    )]
    Passphrase(JsonArg),
    /// Keep the vault unlocked for a while (15 minutes), so that commands need no passphrase
    #[command(
        after_help = "The passphrase is asked once (or taken from -i, CARNET_PASSPHRASE or \
--passphrase-file), checked against the whole vault, and the vault's unwrapped key is kept in the \
operating system's secret store until --for has passed or `carnet lock`: on Linux the kernel \
keyring of your login session, which the kernel empties at the timeout and at logout (nothing \
is written to disk); on macOS the login Keychain and on Windows the Credential Manager, which keep \
it encrypted under your login until carnet sees it expired or `carnet lock`. Nothing is logged. \
Any program you run in this session can use the vault meanwhile, as you can: lock it when you \
leave the computer.\n\n\
Examples:\n  carnet unlock\n  carnet unlock --for 1h\n  carnet -v ls   # says it used the unlocked key"
    )]
    Unlock(UnlockArgs),
    /// Forget the key kept by `carnet unlock` (the passphrase is asked again)
    #[command(
        after_help = "Locking a vault that is not unlocked is not an error.\n\n\
Example:\n  carnet lock"
    )]
    Lock(JsonArg),
    /// The emergency profile: allergies, treatments, conditions, blood group, whom to call
    #[command(
        subcommand,
        after_help = "The profile is sealed in the vault like the rest, and every version is kept. \
`carnet export --fhir` turns it into an International Patient Summary; `carnet emergency` puts it \
in a bundle behind a passcode, with a printable card.\n\n\
Examples:\n  carnet profile import examples/profile.toml\n  carnet profile edit\n  \
carnet profile show --json"
    )]
    Profile(ProfileCommand),
    /// Make the emergency bundle, behind a generated passcode, and a printable card
    #[command(
        after_help = "The bundle holds your emergency profile (as an FHIR International Patient \
Summary and as readable text) and the documents you --include (never hidden ones), signed like a \
grant and encrypted to a passcode of 8 words, printed once on standard output. Anyone holding \
the bundle and the passcode can read it: keep the card and the bundle apart if you can. \
Offline, nothing limits how many passcodes can be tried: the protection is the passcode's \
strength (88 bits) and the cost of scrypt.\n\n\
A doctor opens it with `carnet open urgence.age --passcode`, or with `age -d urgence.age > \
urgence.zip` (typing the passcode) and `unzip urgence.zip`.\n\n\
--opt-out records that you object to emergency access: no bundle or card can be made until \
--opt-in.\n\n\
Examples:\n  carnet emergency -o /media/usb/urgence.age --card carte.pdf --where \"clé USB (porte-clés)\"\n  \
carnet emergency -o urgence.age --include 3f9c --show allergies --show blood-group\n  \
carnet emergency --opt-out"
    )]
    Emergency(EmergencyArgs),
    /// Run the whole product on a built-in sample record, in a throwaway folder
    #[command(after_help = "Example:\n  carnet demo /tmp/carnet-demo")]
    Demo(DemoArgs),
    /// Print a shell completion script
    #[command(
        after_help = "The script asks carnet what to offer as you type: commands, options, categories \
and their aliases, and from the vault document ids (with their titles), grant ids and \
professionals' handles. Those need the vault's key at hand without asking: -i or CARNET_IDENTITY, \
--passphrase-file or CARNET_PASSPHRASE, on the line being completed or in the environment; \
otherwise they are not offered. Completion never asks for a passphrase.\n\n\
Examples:\n  carnet completions bash > ~/.local/share/bash-completion/completions/carnet\n  \
carnet completions zsh > ~/.zfunc/_carnet\n  carnet completions fish > ~/.config/fish/completions/carnet.fish"
    )]
    Completions(CompletionsArgs),
    /// Show the vault's key fingerprint, which professionals and backups check (no key needed)
    #[command(
        after_help = "Read it to a professional over the phone: they pass it to `carnet open --from`.\n\n\
Examples:\n  carnet fingerprint\n  carnet verify --offline --expect \"$(carnet fingerprint)\""
    )]
    Fingerprint(JsonArg),
    /// List the document categories (the DMP document classes) and the other names they accept
    #[command(
        after_help = "Wherever a category is asked for, its slug, its label, its DMP code, a plural or \
one of its aliases is accepted (\"ordonnances\", \"radio\").\n\nExample:\n  carnet categories --json"
    )]
    Categories(JsonArg),
    /// Print your public card for professionals: name, public keys, fingerprint (no secret)
    #[command(
        after_help = "A professional deposits documents into your vault with this card (`carnet \
deposit --to`) and sends receipts back with it. The card is signed by your vault's key: compare \
its fingerprint together (read it aloud, or show the QR code of --qr).\n\n\
Examples:\n  carnet card -o marie.card.toml\n  carnet card --qr"
    )]
    Card(CardArgs),
    /// Deposit documents into a patient's vault: a signed, encrypted bundle (professionals; no vault)
    #[command(
        after_help = "The bundle is encrypted to the patient's vault keys only (from their card) and \
signed with your key (from `carnet keygen`); the patient adds it with `carnet receive`. Without \
carnet, the patient opens it with `age -d` and `unzip`.\n\n\
Examples:\n  carnet deposit --to marie.card.toml -i jeanne.key compte-rendu.pdf --category compte-rendu \\\n    -o depot.age\n  \
carnet deposit --to marie.card.toml -i jeanne.key bilan.pdf radio.png --date 2026-03-14 \\\n    --note \"Résultats du 14 mars\" -o depot.age"
    )]
    Deposit(DepositArgs),
    /// Add a professional's deposit to your vault, or record their receipt (who opened what)
    #[command(
        after_help = "A deposit's signature is checked against your directory of professionals: an \
unknown professional, or a known one whose key changed, is refused unless --accept-new-pro (after \
you checked their fingerprint with them); a blocked one is refused. Every document's hash and the \
zip are checked before anything is added; documents already in your vault are stored once. A \
receipt (from `carnet open --receipt`) records when a grant was opened, by whom; `carnet grants` \
shows it.\n\n\
Exit status: 3 when the file is damaged, forged or signed by a changed key.\n\n\
Examples:\n  carnet receive depot.age\n  carnet receive depot.age --accept-new-pro\n  carnet receive accuse.age --json"
    )]
    Receive(ReceiveArgs),
    /// Run your own programs when something happens in the vault (notifications, mail)
    #[command(
        subcommand,
        after_help = "Hooks live in $XDG_CONFIG_HOME/carnet/hooks.toml (~/.config/carnet/hooks.toml), \
never in the vault: a vault on a stick does not run code on the computer that opens it.\n\n\
Examples:\n  carnet hooks test receive\n  carnet hooks test add --json"
    )]
    Hooks(HooksCommand),
}

#[derive(Debug, Args)]
pub struct CardArgs {
    /// Write the card to FILE instead of printing it
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show the fingerprint as a QR code (to scan and compare with the card)
    #[arg(long)]
    pub qr: bool,
    /// Overwrite FILE if it exists
    #[arg(short, long)]
    pub force: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DepositArgs {
    /// The patient's card (made by `carnet card`)
    #[arg(long, value_name = "CARDFILE")]
    pub to: PathBuf,
    /// The documents to deposit
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Your contact card [default: KEYFILE with .card.toml, as `carnet keygen` wrote it]
    #[arg(long, value_name = "FILE")]
    pub card: Option<PathBuf>,
    /// Title [default: the file name without extension]; one file only
    #[arg(short, long)]
    pub title: Option<String>,
    /// Category slug (see `carnet categories`) [default: autre]
    #[arg(short, long)]
    pub category: Option<String>,
    /// Date of the documents, YYYY-MM-DD [default: a date in the file name, else today]
    #[arg(short, long)]
    pub date: Option<String>,
    /// A message for the patient (signed; shown and logged when received)
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// The deposit file to write
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite FILE if it exists
    #[arg(short, long)]
    pub force: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// A deposit (`carnet deposit`) or a receipt (`carnet open --receipt`)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Accept a professional who is not in your directory (they are added) or whose key changed
    /// (their key is replaced); check their fingerprint with them first
    #[arg(long)]
    pub accept_new_pro: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Run the hooks of EVENT on a sample event, and say how each went
    #[command(
        after_help = "Events: add, note, receive, opened, grant, revoke, rm, export, view, verify, \
verify-failed, and every other action of `carnet log`. Exit status 1 when a hook fails.\n\n\
Examples:\n  carnet hooks test receive\n  carnet hooks test verify-failed --json"
    )]
    Test(HooksTestArgs),
}

#[derive(Debug, Args)]
pub struct HooksTestArgs {
    /// The event to simulate (an action of `carnet log`, or verify-failed)
    pub event: String,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// How long the vault stays unlocked: 90s, 15m, 8h (at most 24h)
    #[arg(long = "for", value_name = "DURATION", default_value = "15m")]
    pub duration: String,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    /// Why the record is closed (kept, encrypted, in the record and its log)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The patient's name, exactly as recorded (the vault's fingerprint when it holds no name);
    /// asked for on a terminal, required in scripts
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The patient's name, stored encrypted
    #[arg(long)]
    pub name: Option<String>,
    /// Also make a recovery key, written to FILE (0600): required when -i is a hardware key
    /// (an age plugin's), which cannot be copied
    #[arg(long, value_name = "FILE")]
    pub recovery: Option<PathBuf>,
    /// The patient's social security number (NIR, 15 digits with key), stored encrypted
    #[arg(long)]
    pub nir: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Files or folders to add (folders recursively; symlinks are skipped); `-` reads one
    /// document from standard input (then --title is required)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Category slug (see `carnet categories`) [default: autre, or the folder's name]
    #[arg(short, long)]
    pub category: Option<String>,
    /// Title [default: the file name without extension]
    #[arg(short, long)]
    pub title: Option<String>,
    /// Date of the document, YYYY-MM-DD [default: a date in the file name (2025-03-14,
    /// 20250314, 2025_03_14), else the file's modification date]
    #[arg(short, long)]
    pub date: Option<String>,
    /// Author (a professional, a hospital, a lab)
    #[arg(short, long)]
    pub author: Option<String>,
    /// A tag (repeat for several)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

/// A professional's role in the patient's care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProRole {
    /// Médecin traitant: the regular doctor (DMP: sees masked documents)
    MedecinTraitant,
}

/// Whom `hide` and `unhide` are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum From {
    /// Professionals (MASQUE_PS)
    Pros,
    /// Legal representatives: guardians (INVISIBLE_REPRESENTANTS_LEGAUX)
    Guardians,
    /// Both
    All,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["ids", "category"])))]
pub struct HideArgs {
    /// Document ids (unique prefixes are enough)
    pub ids: Vec<String>,
    /// A category, as a standing rule for its present and future documents
    #[arg(short, long, conflicts_with = "ids")]
    pub category: Option<String>,
    /// From whom [default: pros]
    #[arg(long, value_enum)]
    pub from: Option<From>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PatientsArgs {
    #[command(subcommand)]
    pub command: Option<PatientsCommand>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PatientsCommand {
    /// Forget the patient(s) remembered with this key fingerprint (their next bundle is a first)
    #[command(after_help = "Example:\n  carnet patients forget SHA256:5ac6:171f:...")]
    Forget {
        /// The key fingerprint, as `carnet patients` shows it
        fingerprint: String,
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Document id (a unique prefix is enough)
    pub id: String,
    /// New title
    #[arg(short, long)]
    pub title: Option<String>,
    /// New date, YYYY-MM-DD
    #[arg(short, long)]
    pub date: Option<String>,
    /// New category (see `carnet categories`)
    #[arg(short, long)]
    pub category: Option<String>,
    /// New author (an empty string removes it)
    #[arg(short, long)]
    pub author: Option<String>,
    /// Add a tag (repeat for several)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Remove a tag (repeat for several)
    #[arg(long = "untag", value_name = "TAG")]
    pub untags: Vec<String>,
    /// Why (kept with the version and in the log)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// Document id (a unique prefix is enough)
    pub id: String,
    /// The corrected file (`-` reads standard input)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Why (kept with the version and in the log)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Document id (a unique prefix is enough)
    pub id: String,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NoteArgs {
    /// The note's text; `-` or absent: standard input, or your editor on a terminal
    #[arg(value_name = "TEXT")]
    pub text: Option<String>,
    /// Title [default: the note's first line]
    #[arg(short, long)]
    pub title: Option<String>,
    /// Date, YYYY-MM-DD [default: today]
    #[arg(short, long)]
    pub date: Option<String>,
    /// A tag (repeat for several)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only hidden documents (marked h: from professionals, g: from guardians, *: both)
    #[arg(long)]
    pub hidden: bool,
    /// Only this category (repeat for several)
    #[arg(short, long = "category", value_name = "CATEGORY")]
    pub categories: Vec<String>,
    /// Only documents dated on or after DATE (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only documents dated on or before DATE (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only documents with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Only documents whose title, author or tags contain TEXT (case and accents ignored)
    #[arg(short, long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Document id (a unique prefix is enough)
    pub id: String,
    /// An earlier version (see `carnet history ID`) [default: the current one]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub version: Option<u32>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// Document id (a unique prefix is enough)
    pub id: String,
    /// An earlier version (see `carnet history ID`) [default: the current one]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub version: Option<u32>,
    /// Write binary content even to a terminal
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["ids", "category", "all", "fhir"])))]
pub struct ExportArgs {
    /// Document ids (unique prefixes are enough)
    pub ids: Vec<String>,
    /// Write the emergency profile as an FHIR R4 International Patient Summary (JSON) to FILE
    #[arg(long, conflicts_with_all = ["ids", "category", "all"])]
    pub fhir: bool,
    /// With --fhir: also every document not hidden from professionals, next to the JSON, each
    /// listed as a DocumentReference
    #[arg(long, requires = "fhir")]
    pub documents: bool,
    /// Every document of this category
    #[arg(short, long)]
    pub category: Option<String>,
    /// Every document
    #[arg(long)]
    pub all: bool,
    /// Target folder (created if missing); with --fhir, the JSON file
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Overwrite files that already exist
    #[arg(short, long)]
    pub force: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Document ids (unique prefixes are enough)
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only entries on or after DATE (YYYY-MM-DD, local time)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only entries on or before DATE (YYYY-MM-DD, local time)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only this action (init, add, view, export, rm, verify, ...)
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries about this document (a unique id prefix)
    #[arg(long, value_name = "ID")]
    pub doc: Option<String>,
    /// Only the last N entries (that match the other filters); reads only the end of the log
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also decrypt every document and check its content hash
    #[arg(long, conflicts_with = "offline")]
    pub deep: bool,
    /// Check without the key, against the vault's signed index of file hashes (for backups, cron)
    #[arg(long)]
    pub offline: bool,
    /// With --offline: a backup file (checked in place, nothing restored) or a mirror folder
    /// to check instead of the vault
    #[arg(value_name = "BACKUP", requires = "offline")]
    pub source: Option<std::path::PathBuf>,
    /// With --offline: refuse unless the index is signed by this key fingerprint (SHA256:...)
    #[arg(long, value_name = "FINGERPRINT", requires = "offline")]
    pub expect: Option<String>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("ident").args(["rpps", "adeli"])))]
pub struct KeygenArgs {
    /// Your name as patients will see it, e.g. "Dr Jeanne Martin"
    #[arg(long)]
    pub name: String,
    /// Your RPPS number (11 digits)
    #[arg(long)]
    pub rpps: Option<String>,
    /// Your ADELI number (9 characters)
    #[arg(long)]
    pub adeli: Option<String>,
    /// Profession, e.g. médecin, infirmier, pharmacien
    #[arg(long)]
    pub profession: Option<String>,
    /// Specialty, e.g. cardiologie
    #[arg(long)]
    pub specialty: Option<String>,
    /// Where to write the key (an age identity file)
    #[arg(short, long, value_name = "KEYFILE")]
    pub output: PathBuf,
    /// Where to write the contact card to send to patients [default: KEYFILE with .card.toml]
    #[arg(long, value_name = "CARDFILE")]
    pub card: Option<PathBuf>,
    /// Write the key without passphrase protection (like age-keygen)
    #[arg(long)]
    pub unprotected: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the keys that open the vault, with their role
    #[command(
        visible_alias = "list",
        after_help = "Example:\n  carnet key ls --json"
    )]
    Ls(JsonArg),
    /// Add a recovery key, or a guardian's key
    #[command(
        after_help = "A recovery key is shown (or written to -o FILE) once: print it, store it \
offline, away from the vault. Anyone holding it can open the vault.\n\n\
A guardian (a minor's parent or legal representative) opens the vault with their own key \
(-i THEIR_KEY); the log names them guardian:NAME. carnet does not let a guardian change the \
vault's keys or destroy it, but their key unwraps the vault's own: these are carnet's rules, not \
cryptography, so add only someone you trust with the whole record, except what you hide from \
guardians (`carnet hide --from guardians`): that is encrypted to a key their slot does not hold.\n\n\
Examples:\n  carnet key add --recovery -o recovery.key\n  carnet -i recovery.key ls\n  \
carnet key add --guardian --name papa --card papa.card.toml"
    )]
    Add(KeyAddArgs),
    /// Remove a key and re-encrypt the whole vault, so that the key opens nothing it holds
    #[command(
        visible_alias = "remove",
        after_help = "Every object, shard, log segment and metadata file is written again with \
fresh file keys for a new vault identity; the removed key's slot is deleted. Your passphrase \
stays the same (an identity-file vault gets a new identity file: -o FILE). Interrupted, the \
next command finishes or drops the re-encryption; the vault always opens with the keys that \
remain. Backups and copies made before still open with the removed key.\n\n\
Examples:\n  carnet key ls\n  carnet key rm recovery"
    )]
    Rm(KeyRmArgs),
}

#[derive(Debug, Args)]
pub struct KeyRmArgs {
    /// The key's name, as `carnet key ls` shows it
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub rekey: RekeyArgs,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Identity-file vaults: write the new vault identity to FILE (created, 0600)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["recovery", "guardian"])))]
#[command(group(clap::ArgGroup::new("guardian_key").args(["card", "recipient"])))]
pub struct KeyAddArgs {
    /// A recovery key: made here, shown once, opens the vault when the passphrase is lost
    #[arg(long)]
    pub recovery: bool,
    /// A guardian (a minor's legal representative), who opens the vault with their own key
    #[arg(long, requires = "name", requires = "guardian_key")]
    pub guardian: bool,
    /// A name for it [default for a recovery key: recovery]
    #[arg(long)]
    pub name: Option<String>,
    /// The guardian's card (`carnet keygen --card`): its key is the guardian's
    #[arg(long, value_name = "FILE", requires = "guardian")]
    pub card: Option<PathBuf>,
    /// The guardian's public key: age1… or an SSH public key (ssh-ed25519 …)
    #[arg(long, value_name = "RECIPIENT", requires = "guardian")]
    pub recipient: Option<String>,
    /// Write the recovery key to FILE (created, 0600) instead of printing it
    #[arg(short, long, value_name = "FILE", conflicts_with = "guardian")]
    pub output: Option<PathBuf>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProCommand {
    /// Add a professional from a contact card, or by hand
    #[command(after_help = "Examples:\n  carnet pro add --card jeanne.card.toml\n  \
carnet pro add --name \"Dr Jeanne Martin\" --key age1... --rpps 10005173140")]
    Add(ProAddArgs),
    /// List your professionals
    #[command(
        visible_alias = "list",
        after_help = "Example:\n  carnet pro ls --json"
    )]
    Ls(JsonArg),
    /// Remove a professional from your directory
    #[command(after_help = "Example:\n  carnet pro rm jeanne-martin")]
    Rm(ProWho),
    /// Block a professional: no grant can be made to them
    #[command(after_help = "Example:\n  carnet pro block 10005173140")]
    Block(ProWho),
    /// Unblock a professional
    #[command(after_help = "Example:\n  carnet pro unblock jeanne-martin")]
    Unblock(ProWho),
}

#[derive(Debug, Args)]
pub struct ProWho {
    /// The professional's handle (a unique prefix is enough), RPPS or ADELI number
    pub who: String,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["card", "key"])))]
pub struct ProAddArgs {
    /// A contact card made by `carnet keygen`
    #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "key"])]
    pub card: Option<PathBuf>,
    /// Name, e.g. "Dr Jeanne Martin"
    #[arg(long, requires = "key")]
    pub name: Option<String>,
    /// Their age recipient (age1...), SSH public key (ssh-ed25519/ssh-rsa, quoted), or age
    /// plugin recipient (age1yubikey1...)
    #[arg(long, alias = "recipient", value_name = "RECIPIENT", requires = "name")]
    pub key: Option<String>,
    /// RPPS number (11 digits)
    #[arg(long)]
    pub rpps: Option<String>,
    /// ADELI number (9 characters)
    #[arg(long)]
    pub adeli: Option<String>,
    /// Profession
    #[arg(long)]
    pub profession: Option<String>,
    /// The short name you will type [default: from the name]
    #[arg(long)]
    pub handle: Option<String>,
    /// Their role for you: `medecin-traitant` (your regular doctor, who may receive documents
    /// hidden from professionals when you include them)
    #[arg(long, value_enum)]
    pub role: Option<ProRole>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).multiple(true).args(["docs", "categories", "tags", "all"])))]
pub struct GrantArgs {
    /// Share documents hidden from professionals too (see `carnet hide`)
    #[arg(long)]
    pub include_hidden: bool,
    /// Professional (handle or a unique prefix of it, RPPS or ADELI); repeat for several
    #[arg(long = "to", required_unless_present = "passcode", value_name = "PRO")]
    pub to: Vec<String>,
    /// Instead of --to: encrypt to a generated passcode (8 words, printed once) for a
    /// professional who has no key yet; --expires at most 31 days
    #[arg(long, conflicts_with = "to")]
    pub passcode: bool,
    /// Document ids (repeat, or several after one --doc)
    #[arg(long = "doc", value_name = "ID", num_args = 1..)]
    pub docs: Vec<String>,
    /// Every document of a category (repeatable)
    #[arg(long = "category", value_name = "C")]
    pub categories: Vec<String>,
    /// Every document with a tag (repeatable)
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Every document
    #[arg(long)]
    pub all: bool,
    /// When consent ends: a duration (90m, 72h, 7d, 2w; also 45s or 1h30m) or a date/time
    /// (2026-12-31T18:00); a date alone (2026-12-31) means the end of that day
    #[arg(long, value_name = "WHEN")]
    pub expires: String,
    /// When consent starts (date/time) [default: now]
    #[arg(long, value_name = "WHEN")]
    pub not_before: Option<String>,
    /// Why the documents are shared (shown to the professional, signed)
    #[arg(long)]
    pub purpose: Option<String>,
    /// ASCII-armored output, for pasting into an email
    #[arg(long)]
    pub armor: bool,
    /// The bundle file, or - for standard output (refused on a terminal unless --armor or --force)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite FILE if it exists
    #[arg(short, long)]
    pub force: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GrantsArgs {
    /// Only grants in force now
    #[arg(long)]
    pub active: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Grant id (a unique prefix is enough)
    pub id: String,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The bundle file
    pub file: PathBuf,
    /// Extract the documents into DIR (created; must be new or empty unless --force)
    #[arg(short, long, value_name = "DIR", conflicts_with = "list")]
    pub output: Option<PathBuf>,
    /// Only check the bundle and show its terms
    #[arg(long)]
    pub list: bool,
    /// Refuse unless signed by this patient key fingerprint (SHA256:...)
    #[arg(long, value_name = "FINGERPRINT")]
    pub from: Option<String>,
    /// The bundle opens with a passcode (an emergency bundle, an access code): asked on the
    /// terminal, or CARNET_PASSCODE, or --passcode-file
    #[arg(long)]
    pub passcode: bool,
    /// Read the passcode from FILE
    #[arg(long, value_name = "FILE")]
    pub passcode_file: Option<PathBuf>,
    /// Extract into a non-empty DIR, overwriting files of the same names
    #[arg(short, long)]
    pub force: bool,
    /// Also write a receipt for the patient (signed by you, encrypted to them): they learn
    /// when you opened which documents (`carnet receive FILE`)
    #[arg(
        long,
        value_name = "FILE",
        requires = "output",
        conflicts_with = "list"
    )]
    pub receipt: Option<PathBuf>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["output", "to"])))]
pub struct BackupArgs {
    /// Write one zip file (stored, since everything is already encrypted); - for standard output
    /// (refused on a terminal unless --force)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep a mirror folder up to date, copying only what changed
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// With --to: re-hash every object already in the mirror (finds silent damage on the stick)
    #[arg(long, requires = "to")]
    pub check: bool,
    /// Overwrite FILE if it exists; with --to, update the mirror even if that deletes changes
    /// made on it (documents added there)
    #[arg(short, long)]
    pub force: bool,
    /// With --to: first import into the vault the documents added on the mirror (needs the key)
    #[arg(long, requires = "to", conflicts_with = "force")]
    pub merge: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup file made by `carnet backup -o`, or a mirror folder made by `carnet backup --to`
    pub source: PathBuf,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Replace the emergency profile with a TOML file (the earlier version is kept)
    #[command(
        after_help = "The fields are described in FORMAT.md (\"The emergency profile\"); \
examples/profile.toml has them all. `-` reads standard input.\n\n\
Examples:\n  carnet profile import examples/profile.toml\n  carnet profile export -o - | sed s/A+/O+/ | carnet profile import -"
    )]
    Import(ProfileImportArgs),
    /// Edit the emergency profile in $VISUAL or $EDITOR (the earlier version is kept)
    #[command(
        after_help = "The editor works on a private file (0600 in a 0700 folder, in \
$XDG_RUNTIME_DIR when set), overwritten and removed as soon as it is read. A file that does not \
read is opened again with the error on top; emptying it cancels.\n\n\
Examples:\n  carnet profile edit\n  EDITOR=nano carnet profile edit"
    )]
    Edit(JsonArg),
    /// Show the emergency profile
    #[command(
        after_help = "Examples:\n  carnet profile show\n  carnet profile show --version 1 --json"
    )]
    Show(ProfileShowArgs),
    /// Write the emergency profile as TOML
    #[command(
        after_help = "Examples:\n  carnet profile export -o profil.toml\n  carnet profile export -o - --version 2"
    )]
    Export(ProfileExportArgs),
    /// List the versions of the emergency profile
    #[command(after_help = "Example:\n  carnet profile history --json")]
    History(JsonArg),
}

#[derive(Debug, Args)]
pub struct ProfileImportArgs {
    /// The profile, in TOML (`-`: standard input)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProfileShowArgs {
    /// An earlier version (see `carnet profile history`) [default: the current one]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub version: Option<u32>,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProfileExportArgs {
    /// The TOML file to write, or - for standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// An earlier version [default: the current one]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub version: Option<u32>,
    /// Overwrite FILE if it exists
    #[arg(short, long)]
    pub force: bool,
}

/// What the card and its QR code show in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Essential {
    Allergies,
    BloodGroup,
    Medications,
    Conditions,
    Devices,
    Contacts,
    Doctor,
    Directives,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["output", "opt_out", "opt_in"])))]
pub struct EmergencyArgs {
    /// Where to write the emergency bundle (a USB stick, a phone's storage ...)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write a printable wallet-size card (PDF)
    #[arg(long, value_name = "PDF", requires = "output")]
    pub card: Option<PathBuf>,
    /// Documents to put in the bundle (ids; never documents hidden from professionals)
    #[arg(long = "include", value_name = "DOC", num_args = 1.., requires = "output")]
    pub include: Vec<String>,
    /// What the card and its QR code show in clear (repeat) [default: allergies, blood-group,
    /// contacts]
    #[arg(long = "show", value_name = "WHAT", value_enum, requires = "card")]
    pub show: Vec<Essential>,
    /// Leave the passcode off the card (give it separately)
    #[arg(long, requires = "card")]
    pub no_passcode_on_card: bool,
    /// Where the bundle will be, as the card says it [default: the bundle's file name]
    #[arg(long = "where", value_name = "TEXT", requires = "card")]
    pub location: Option<String>,
    /// When the bundle stops opening with carnet: a duration (365d, 2w) or a date/time; a date
    /// alone means the end of that day
    #[arg(long, value_name = "WHEN", default_value = "365d", requires = "output")]
    pub expires: String,
    /// Overwrite FILE and PDF if they exist
    #[arg(short, long)]
    pub force: bool,
    /// Record that you object to emergency access (no bundle or card can be made)
    #[arg(long, conflicts_with_all = ["output", "opt_in"])]
    pub opt_out: bool,
    /// Lift that objection
    #[arg(long, conflicts_with = "output")]
    pub opt_in: bool,
    /// Print JSON for scripts (the passcode is in it: keep it off logs)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the demo (must be new or empty) [default: a new temporary folder]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}
