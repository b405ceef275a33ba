//! `carnet export`: the request resolved, `ops::export`, the files listed (with progress bars
//! on a terminal).

use super::Ctx;
use super::args::ExportArgs;
use super::ui;
use crate::category;
use crate::ops::export::{self, Selection};

pub fn run(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    if a.fhir {
        return fhir(ctx, a);
    }
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

/// `export --fhir`: the emergency profile as an International Patient Summary.
fn fhir(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    if a.output.is_dir() {
        return Err(crate::error::Error::input(
            format!("{} is a folder", a.output.display()),
            "give the JSON file's name, e.g. -o ips.json",
        )
        .into());
    }
    let req = crate::ops::fhir::Request {
        output: a.output.clone(),
        documents: a.documents,
        force: a.force,
    };
    let vault = ctx.open_vault()?;
    let report = crate::ops::fhir::export(&vault, &ctx.keys, &req, ctx.now)?;
    super::print_notices(&report.notices);
    if report.profile_version.is_none() {
        eprintln!(
            "note: there is no emergency profile yet: the summary says no information is available \
             (write one with `carnet profile edit`)"
        );
    }
    if report.hidden_left_out > 0 {
        eprintln!(
            "note: {} document(s) hidden from professionals were left out",
            report.hidden_left_out
        );
    }
    if a.json {
        return super::print_json(&report);
    }
    crate::outln!("{}", report.output.display());
    for w in &report.documents {
        crate::outln!("{}", w.path.display());
    }
    Ok(())
}
