//! `carnet completions`: shell completion scripts (to be written).

use crate::args::CompletionsArgs;

pub fn run(_a: CompletionsArgs) -> anyhow::Result<()> {
    anyhow::bail!("carnet completions is not built yet")
}
