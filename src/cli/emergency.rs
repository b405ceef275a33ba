//! `carnet emergency`.

use super::Ctx;
use super::args::EmergencyArgs;

pub fn run(_ctx: &Ctx, _a: EmergencyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
