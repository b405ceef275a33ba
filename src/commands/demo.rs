//! `carnet demo`: the whole product on a sample record (to be written).

use crate::args::DemoArgs;

pub fn run(_a: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("carnet demo is not built yet")
}
