//! Where the CLI gets a passphrase: `--passphrase-file` (it wins), then `CARNET_PASSPHRASE`, then
//! the terminal (asked twice for a new one; never when standard input is not a terminal).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use age::secrecy::SecretString;
use anyhow::Context;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::keys::Passphrase;

/// Passphrases above this are surely not passphrases (a wrong file given to --passphrase-file).
const MAX_PASSPHRASE_FILE: u64 = 4096;

pub struct CliPassphrase {
    pub file: Option<PathBuf>,
}

impl Passphrase for CliPassphrase {
    fn pin(&self, prompt: &str) -> anyhow::Result<SecretString> {
        if !std::io::stdin().is_terminal() {
            return Err(Error::NoTerminal.into());
        }
        let pin = Zeroizing::new(
            rpassword::prompt_password(super::ui::clean(prompt)).context("cannot read the PIN")?,
        );
        Ok(SecretString::from(pin.as_str()))
    }

    /// Reads the passphrase: `--passphrase-file`, then env `CARNET_PASSPHRASE`, then the terminal
    /// (asked twice when `confirm`, e.g. when choosing a new one).
    fn get(&self, prompt: &str, confirm: bool) -> anyhow::Result<SecretString> {
        let pass = if let Some(p) = given(self.file.as_deref())? {
            p
        } else {
            if !std::io::stdin().is_terminal() {
                return Err(Error::NoTerminal.into());
            }
            let mut tries = 0;
            loop {
                let first = Zeroizing::new(
                    rpassword::prompt_password(prompt).context("cannot read the passphrase")?,
                );
                if !confirm {
                    break first;
                }
                let second = Zeroizing::new(
                    rpassword::prompt_password("Confirm passphrase: ")
                        .context("cannot read the passphrase")?,
                );
                if *first == *second {
                    break first;
                }
                tries += 1;
                if tries == 3 {
                    return Err(Error::input(
                        "the two passphrases differ",
                        "run the command again and type the same passphrase twice",
                    )
                    .into());
                }
                eprintln!("The two passphrases differ; try again.");
            }
        };
        if pass.is_empty() {
            return Err(Error::EmptyPassphrase.into());
        }
        if confirm && pass.chars().count() < 12 {
            // Only a warning: the choice is the patient's, but this one guards a medical record
            // against anyone who copies the vault, at leisure.
            eprintln!(
                "warning: this passphrase is short; anyone holding a copy of the vault can try \
                 guesses offline. Several words (e.g. four random ones) are much stronger."
            );
        }
        Ok(SecretString::from(pass.as_str()))
    }

    fn working(&self, busy: bool) {
        if !super::ui::stderr_is_terminal() {
            return;
        }
        if busy {
            eprint!("unlocking… (checking the passphrase takes a few seconds)");
        } else {
            // Back to the start of the line, and clear it.
            eprint!("\r\x1b[2K");
        }
    }

    /// An age plugin's message ("touch your YubiKey"), on stderr: it may be the only sign of
    /// what the device waits for.
    fn message(&self, text: &str) {
        eprintln!("{}", super::ui::clean(text));
    }
}

/// The passphrase given without a terminal: `--passphrase-file` (which wins), else
/// `CARNET_PASSPHRASE`; `None` when neither is.
pub fn given(file: Option<&std::path::Path>) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Some(file) = file {
        let mut buf = Zeroizing::new(String::new());
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_PASSPHRASE_FILE).read_to_string(&mut buf))
            .with_context(|| format!("cannot read the passphrase file {}", file.display()))?;
        // A trailing newline comes from `echo` or an editor, not from the passphrase.
        return Ok(Some(Zeroizing::new(
            buf.trim_end_matches(['\n', '\r']).to_string(),
        )));
    }
    Ok(std::env::var("CARNET_PASSPHRASE").ok().map(Zeroizing::new))
}
