//! `carnet edit`, `carnet replace`, `carnet history`: corrections as new versions, and the list
//! of versions.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use super::Ctx;
use super::args::{EditArgs, HistoryArgs, ReplaceArgs};
use super::ui;
use crate::category;
use crate::dates;
use crate::domain::Actor;
use crate::error::Error;
use crate::ids;
use crate::manifest::Document;
use crate::ops::import;
use crate::ops::revise::{self, Correction, Revised};
use crate::ops::view;

fn reason(r: Option<String>) -> Option<String> {
    r.map(|r| r.trim().to_string()).filter(|r| !r.is_empty())
}

pub fn edit(ctx: &Ctx, a: EditArgs) -> anyhow::Result<()> {
    let title = a.title.as_deref().map(str::trim).map(str::to_string);
    if title.as_deref() == Some("") {
        return Err(Error::input("the title is empty", "give the corrected title").into());
    }
    let e = revise::Edit {
        title,
        date: a.date.as_deref().map(dates::parse_date).transpose()?,
        category: a.category.as_deref().map(category::parse).transpose()?,
        author: a.author.map(|s| s.trim().to_string()),
        add_tags: super::add::clean_tags(&a.tags)?,
        remove_tags: super::add::clean_tags(&a.untags)?,
    };
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let by = Correction {
        actor: Actor::Patient,
        reason: reason(a.reason),
    };
    let done = revise::edit(&vault, keys, &a.id, &e, by, ctx.now)?;
    report(done, a.json)
}

pub fn replace(ctx: &Ctx, a: ReplaceArgs) -> anyhow::Result<()> {
    let input = if a.file.as_os_str() == "-" {
        if std::io::stdin().is_terminal() {
            return Err(Error::input(
                "`-` reads the new content from standard input, which is a terminal",
                "pipe or redirect it: carnet replace ID - < file",
            )
            .into());
        }
        import::Input::stream(Box::new(std::io::stdin()))
    } else {
        import::Input::file(a.file.clone())
    };
    let vault = ctx.open_vault()?;
    // Authenticated first: the new content must only be encrypted to the vault's own keys.
    let snap = vault.read(&ctx.keys)?;
    // A closed record would refuse the commit: say so before encrypting anything.
    snap.root.check_writable()?;
    let keys = snap.keys;
    let by = Correction {
        actor: Actor::Patient,
        reason: reason(a.reason),
    };
    let bars = ui::FileBars::new("Encrypting");
    let done = revise::replace(&vault, keys, &a.id, input, by, ctx.now, &bars);
    bars.finish();
    report(done?, a.json)
}

#[derive(Serialize)]
struct RevisedView<'a> {
    id: &'a str,
    version: u32,
    changes: &'a [String],
}

fn report(done: Revised, json: bool) -> anyhow::Result<()> {
    super::print_notices(&done.notices);
    if json {
        return super::print_json(&RevisedView {
            id: &done.doc.id,
            version: done.doc.version,
            changes: &done.changes,
        });
    }
    crate::outln!(
        "{}  version {}: {} corrected  {}",
        ids::short(&done.doc.id),
        done.doc.version,
        done.changes.join(", "),
        ui::clean(&done.doc.title)
    );
    Ok(())
}

#[derive(Serialize)]
struct VersionView<'a> {
    version: u32,
    time: String,
    actor: String,
    changes: Vec<&'a str>,
    reason: Option<&'a str>,
    title: &'a str,
    date: String,
    category: &'a str,
    size: u64,
    sha256: &'a str,
}

impl<'a> VersionView<'a> {
    fn of(d: &'a Document, added_at: jiff::Timestamp) -> Self {
        let (time, actor, changes, reason) = match &d.revision {
            Some(r) => (
                r.at,
                r.actor.as_string(),
                r.changes.iter().map(String::as_str).collect(),
                r.reason.as_deref(),
            ),
            None => (added_at, Actor::Patient.as_string(), vec!["added"], None),
        };
        VersionView {
            version: d.version,
            time: time.to_string(),
            actor,
            changes,
            reason,
            title: &d.title,
            date: d.date.to_string(),
            category: &d.category,
            size: d.size,
            sha256: &d.sha256,
        }
    }
}

pub fn history(ctx: &Ctx, a: HistoryArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let shown = view::show(&vault, keys, &a.id, None, "history", ctx.now)?;
    super::print_notices(&shown.notices);
    let d = &shown.doc;
    let added_at = d.versions().next().map_or(d.added_at, |v| v.added_at);
    let views: Vec<VersionView> = d.versions().map(|v| VersionView::of(v, added_at)).collect();
    if a.json {
        return super::print_json(&views);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}  {}", ids::short(&d.id), ui::clean(&d.title))?;
    for v in &views {
        let time = v
            .time
            .parse::<jiff::Timestamp>()
            .map(dates::show_local)
            .unwrap_or_else(|_| v.time.clone());
        write!(
            out,
            "  v{:<3} {time}  {:<9} {}",
            v.version,
            ui::clean(&v.actor),
            ui::clean(&v.changes.join(", "))
        )?;
        if let Some(r) = v.reason {
            write!(out, "  ({})", ui::clean(r))?;
        }
        writeln!(out)?;
    }
    Ok(())
}
