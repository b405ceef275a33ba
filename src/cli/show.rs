//! `carnet show`: one document's metadata (logged as a `view`).

use std::io::Write;

use super::Ctx;
use super::args::ShowArgs;
use super::ls::DocView;
use super::ui;
use crate::category;
use crate::dates;

pub fn run(ctx: &Ctx, a: ShowArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let shown = crate::ops::view::show(&vault, keys, &a.id, a.version, "metadata", ctx.now)?;
    super::print_notices(&shown.notices);
    let d = shown.doc;
    if a.json {
        let mut view = DocView::from(&d);
        view.visibility = shown.visibility.iter().map(|v| v.to_string()).collect();
        return super::print_json(&view);
    }
    let label = category::find(&d.category).map_or("", |c| c.label);
    let mut out = std::io::stdout().lock();
    writeln!(out, "id:         {}", d.id)?;
    writeln!(out, "title:      {}", ui::clean(&d.title))?;
    writeln!(out, "category:   {} ({label})", d.category)?;
    writeln!(out, "date:       {}", d.date)?;
    writeln!(
        out,
        "author:     {}",
        ui::clean(d.author.as_deref().unwrap_or("-"))
    )?;
    let tags = if d.tags.is_empty() {
        "-".to_string()
    } else {
        d.tags.join(", ")
    };
    writeln!(out, "tags:       {}", ui::clean(&tags))?;
    writeln!(out, "type:       {}", d.media_type)?;
    writeln!(
        out,
        "size:       {} ({} bytes)",
        ui::human_size(d.size),
        d.size
    )?;
    writeln!(out, "sha256:     {}", d.sha256)?;
    writeln!(out, "added:      {}", dates::show_local(d.added_at))?;
    if d.version > 1 {
        writeln!(out, "version:    {} (see `carnet history`)", d.version)?;
    }
    if !shown.visibility.is_empty() {
        let codes: Vec<String> = shown.visibility.iter().map(|v| v.to_string()).collect();
        writeln!(out, "hidden:     {}", ui::clean(&codes.join(", ")))?;
    }
    if let Some(n) = &d.original_name {
        writeln!(out, "file name:  {}", ui::clean(n))?;
    }
    if let Some(src) = &d.source {
        writeln!(
            out,
            "deposited:  by {} (key {}), deposit {}",
            ui::clean(&src.name),
            src.fingerprint,
            crate::ids::short(&src.deposit)
        )?;
    }
    Ok(())
}
