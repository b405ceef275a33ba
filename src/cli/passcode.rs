//! Where `carnet open --passcode` gets the passcode: `--passcode-file` (it wins), then
//! `CARNET_PASSCODE`, then the terminal (never when standard input is not a terminal). It is
//! normalised (case, accents, separators) as `passcode::normalize` says.

use std::io::{IsTerminal, Read};
use std::path::Path;

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::Context;
use zeroize::Zeroizing;

use crate::error::Error;

/// A passcode is a line of words; a larger file is a wrong file.
const MAX_PASSCODE_FILE: u64 = 4096;

pub fn read(file: Option<&Path>) -> anyhow::Result<SecretString> {
    let typed = if let Some(file) = file {
        let mut buf = Zeroizing::new(String::new());
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_PASSCODE_FILE).read_to_string(&mut buf))
            .with_context(|| format!("cannot read the passcode file {}", file.display()))?;
        buf
    } else if let Ok(p) = std::env::var("CARNET_PASSCODE") {
        Zeroizing::new(p)
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(Error::input(
                "a passcode is needed and there is no terminal to ask for it",
                "set CARNET_PASSCODE or pass --passcode-file FILE",
            )
            .into());
        }
        Zeroizing::new(
            rpassword::prompt_password("Passcode (the words on the card): ")
                .context("cannot read the passcode")?,
        )
    };
    let p = crate::passcode::normalize(&typed);
    if p.expose_secret().is_empty() {
        return Err(Error::input(
            "the passcode is empty",
            "type the words the patient gave you, separated by spaces or dashes",
        )
        .into());
    }
    Ok(p)
}
