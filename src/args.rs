//! The command-line interface, as clap definitions only.
//!
//! This file depends on nothing but `clap` and `std` so that `build.rs` can `include!` it to
//! generate man pages and completions from the very definitions the binary parses.

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
    after_help = "Examples:\n  carnet init --name \"Marie Dupont\"\n  carnet add ~/Documents/sante\n  carnet ls --category imagerie"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// The vault folder [default: $XDG_DATA_HOME/carnet or ~/.local/share/carnet]
    #[arg(long, global = true, env = "CARNET_VAULT", value_name = "DIR")]
    pub vault: Option<PathBuf>,
    /// An age identity file that opens the vault (instead of the vault's passphrase)
    #[arg(
        short = 'i',
        long,
        global = true,
        env = "CARNET_IDENTITY",
        value_name = "FILE"
    )]
    pub identity: Option<PathBuf>,
    /// Read the passphrase from FILE (CARNET_PASSPHRASE is read first when set)
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
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
    /// List documents, sorted by date
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  carnet ls --since 2025-01-01 --category imagerie\n  \
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
        after_help = "Examples:\n  carnet export 3f9c 7a01 -o ~/Bureau/pour-le-medecin\n  \
carnet export --category imagerie -o /media/usb/imagerie"
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
        after_help = "Exit status: 0 when the vault is sound, 3 when a check fails.\n\n\
Examples:\n  carnet verify\n  carnet verify --deep --json"
    )]
    Verify(VerifyArgs),
    /// List the document categories (the DMP document classes)
    #[command(after_help = "Example:\n  carnet categories --json")]
    Categories(JsonArg),
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The patient's name, stored encrypted
    #[arg(long)]
    pub name: Option<String>,
    /// The patient's social security number (NIR, 15 digits with key), stored encrypted
    #[arg(long)]
    pub nir: Option<String>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Files or folders to add (folders recursively; symlinks are skipped)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Category slug (see `carnet categories`) [default: autre, or the folder's name]
    #[arg(short, long)]
    pub category: Option<String>,
    /// Title [default: the file name without extension]
    #[arg(short, long)]
    pub title: Option<String>,
    /// Date of the document, YYYY-MM-DD [default: the file's modification date]
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

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only this category
    #[arg(short, long)]
    pub category: Option<String>,
    /// Only documents dated on or after DATE (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only documents dated on or before DATE (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only documents with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Only documents whose title, author or tags contain TEXT (case-insensitive)
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
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// Document id (a unique prefix is enough)
    pub id: String,
    /// Write binary content even to a terminal
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["ids", "category", "all"])))]
pub struct ExportArgs {
    /// Document ids (unique prefixes are enough)
    pub ids: Vec<String>,
    /// Every document of this category
    #[arg(short, long)]
    pub category: Option<String>,
    /// Every document
    #[arg(long)]
    pub all: bool,
    /// Target folder (created if missing)
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
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also decrypt every document and check its content hash
    #[arg(long)]
    pub deep: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}
