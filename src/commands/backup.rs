//! `carnet backup` and `carnet restore` (to be written).

use super::Ctx;
use crate::args::{BackupArgs, RestoreArgs};

pub fn run(_ctx: &Ctx, _a: BackupArgs) -> anyhow::Result<()> {
    anyhow::bail!("carnet backup is not built yet")
}

pub fn restore(_ctx: &Ctx, _a: RestoreArgs) -> anyhow::Result<()> {
    anyhow::bail!("carnet restore is not built yet")
}
