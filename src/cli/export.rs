//! `carnet export`: the request resolved, `ops::export`, the files listed (with progress bars
//! on a terminal).

use super::Ctx;
use super::args::ExportArgs;
use super::ui;
use crate::category;
use crate::ops::export::{self, Selection};

pub fn run(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    let selection = if a.all {
        Selection::All
    } else if let Some(c) = a.category.as_deref().map(category::parse).transpose()? {
        Selection::Category(c)
    } else {
        Selection::Ids(a.ids.clone())
    };
    let req = export::Request {
        selection,
        output: a.output.clone(),
        force: a.force,
    };
    let vault = ctx.open_vault()?;
    let bars = ui::FileBars::new("Exporting");
    let report = export::export(&vault, &ctx.keys, &req, ctx.now, &bars)?;
    bars.finish();
    super::print_notices(&report.notices);
    if a.json {
        return super::print_json(&report.written);
    }
    for w in &report.written {
        crate::outln!("{}", w.path.display());
    }
    Ok(())
}
