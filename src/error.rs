//! Errors shaped around what the user should do next, and the exit codes scripts rely on.

use std::path::PathBuf;

/// Exit codes are part of the CLI contract (README, `carnet(1)`): never renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    Usage = 2,
    /// An integrity check failed: a file of the vault or a bundle was altered.
    Integrity = 3,
    /// A grant is expired or not yet valid.
    GrantValidity = 4,
}

/// An error the user can act on: what went wrong, and (in `hint`) what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no vault at {}", .0.display())]
    NoVault(PathBuf),
    #[error("{} already holds a vault", .0.display())]
    VaultExists(PathBuf),
    #[error("{} is not empty and is not a vault", .0.display())]
    NotEmpty(PathBuf),
    #[error("vault format {found} is newer than this carnet understands (up to {supported})")]
    NewerFormat { found: u32, supported: u32 },
    #[error("wrong passphrase for {}", .0.display())]
    WrongPassphrase(PathBuf),
    #[error("this vault is opened with an identity file, and none was given")]
    IdentityRequired,
    #[error("the identity in {} does not open this vault", .0.display())]
    WrongIdentity(PathBuf),
    #[error("a passphrase is needed and there is no terminal to ask for it")]
    NoTerminal,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("no document with id {0}")]
    UnknownId(String),
    #[error("id prefix {prefix} is ambiguous: it matches {}", .matches.join(", "))]
    AmbiguousId {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("the vault is damaged: {0}")]
    Integrity(String),
    #[error("integrity check failed: {0} problem(s) found")]
    VerifyFailed(usize),
    /// A failed check whose problems call for something other than restoring files (a
    /// fingerprint that names another key).
    #[error("integrity check failed: {0} problem(s) found")]
    VerifyFailedHint(usize, String),
    #[error("{0}")]
    BadBundle(String),
    #[error("{0}")]
    GrantValidity(String),
    #[error("{0}")]
    GrantNotYetValid(String),
    #[error("the backup is damaged or was altered: {0}")]
    BadBackup(String),
    /// A professional's deposit or receipt refused on the patient's side: damaged, forged, or
    /// signed by another key than the directory's.
    #[error("{0}")]
    BadDeposit(String),
    /// A change refused because the patient closed the record (`carnet close`).
    #[error("the record is closed{}: nothing can be added, changed or removed", .reason.as_deref().map(|r| format!(" ({})", crate::text::ellipsize(r, 80))).unwrap_or_default())]
    Closed {
        at: jiff::Timestamp,
        reason: Option<String>,
    },
    /// Bad input that is not covered above: the message names it, the hint says what to do.
    #[error("{msg}")]
    Input { msg: String, hint: Option<String> },
    /// A malformed setting clap does not see (an environment variable): exit 2, like a bad
    /// argument.
    #[error("{msg}")]
    Usage { msg: String, hint: String },
}

impl Error {
    pub fn input(msg: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            msg: msg.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn hint(&self) -> Option<String> {
        let h = match self {
            Error::NoVault(_) => {
                "create one with `carnet init`, or point to it with --vault DIR or CARNET_VAULT"
            }
            Error::VaultExists(_) => "use it as it is, or choose another folder with --vault DIR",
            Error::NotEmpty(_) => "choose an empty or new folder with --vault DIR",
            Error::NewerFormat { .. } => "upgrade carnet to open this vault",
            Error::WrongPassphrase(_) => {
                "try again: it is the passphrase chosen when this file was made (`carnet init` or `carnet keygen`)"
            }
            Error::IdentityRequired => "pass the identity file with -i FILE or CARNET_IDENTITY",
            Error::WrongIdentity(_) => {
                "give the vault's own key (the file given to `carnet init -i`, or your passphrase without -i), or a recovery or guardian key it lists (`carnet key ls`); a removed key opens nothing"
            }
            Error::NoTerminal => "set CARNET_PASSPHRASE or pass --passphrase-file FILE",
            Error::EmptyPassphrase => "choose a passphrase of several words",
            Error::UnknownId(_) => "list the documents with `carnet ls`",
            Error::AmbiguousId { .. } => "type more characters of the id",
            Error::Integrity(_) => "run `carnet verify` for details and restore from a backup",
            Error::VerifyFailed(_) => {
                "each problem is listed above; restore those files from a backup"
            }
            Error::VerifyFailedHint(_, hint) => hint.as_str(),
            Error::BadBundle(_) => {
                "do not use this bundle; ask the patient to send it again and compare the key fingerprint with them"
            }
            Error::GrantValidity(_) => "ask the patient for a new grant",
            Error::GrantNotYetValid(_) => {
                "open it again from that date: the patient chose when it starts"
            }
            Error::BadBackup(_) => {
                "nothing was restored; use another backup (or a mirror) of this vault"
            }
            Error::BadDeposit(_) => {
                "nothing was added to your vault; ask the professional to send it again, and compare their key fingerprint with them"
            }
            Error::Closed { at, .. } => {
                return Some(format!(
                    "the record was closed on {}; run `carnet reopen` to change it",
                    crate::dates::local_day(*at)
                ));
            }
            Error::Input { hint, .. } => return hint.clone(),
            Error::Usage { hint, .. } => hint.as_str(),
        };
        Some(h.to_string())
    }

    pub fn exit(&self) -> Exit {
        match self {
            Error::Integrity(_)
            | Error::VerifyFailed(_)
            | Error::VerifyFailedHint(..)
            | Error::BadBundle(_) => Exit::Integrity,
            Error::GrantValidity(_) | Error::GrantNotYetValid(_) => Exit::GrantValidity,
            Error::BadBackup(_) | Error::BadDeposit(_) => Exit::Integrity,
            Error::Usage { .. } => Exit::Usage,
            _ => Exit::Failure,
        }
    }
}

pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;
