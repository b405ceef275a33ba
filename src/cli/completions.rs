//! `carnet completions`: shell completion scripts, generated from the clap definitions the
//! binary parses, so they can never drift from the real CLI.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell as Target;

use super::args::{Cli, CompletionsArgs, Shell};

pub fn run(a: CompletionsArgs) -> anyhow::Result<()> {
    let target = match a.shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
        Shell::Elvish => Target::Elvish,
        Shell::Powershell => Target::PowerShell,
    };
    // clap_complete panics when its writer fails; render to memory first so that
    // `carnet completions bash | head` ends on a closed pipe like any other command.
    let mut script = Vec::new();
    clap_complete::generate(target, &mut Cli::command(), "carnet", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}
