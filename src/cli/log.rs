//! `carnet log`: read the access log, filtered, as a table or JSON.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use super::Ctx;
use super::args::LogArgs;
use crate::dates;
use crate::ids;
use crate::log::Entry;
use crate::ops::audit;

#[derive(Serialize)]
struct EntryView<'a> {
    seq: u64,
    time: String,
    actor: &'a crate::domain::Actor,
    action: &'a crate::domain::Action,
    documents: &'a [String],
    details: &'a serde_json::Map<String, serde_json::Value>,
    version: &'a str,
}

pub fn run(ctx: &Ctx, a: LogArgs) -> anyhow::Result<()> {
    let filter = audit::Filter {
        since: a.since.as_deref().map(dates::parse_date).transpose()?,
        until: a.until.as_deref().map(dates::parse_date).transpose()?,
        action: a.action.as_deref().map(parse_action).transpose()?,
        doc: a.doc.clone(),
        last: a.last,
    };
    let vault = ctx.open_vault()?;
    let view = audit::read(&vault, &ctx.keys, &filter, &jiff::tz::TimeZone::system())?;
    if a.json {
        let views: Vec<EntryView> = view
            .entries
            .iter()
            .map(|e| EntryView {
                seq: e.seq,
                time: e.time.to_string(),
                actor: &e.actor,
                action: &e.action,
                documents: &e.documents,
                details: &e.details,
                version: &e.version,
            })
            .collect();
        return super::print_json(&views);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in &view.entries {
        writeln!(
            out,
            "{}  {:<7}  {:<8}  {}",
            dates::show_local(e.time),
            e.actor,
            e.action,
            describe(e, &view.titles)
        )?;
    }
    out.flush()?;
    Ok(())
}

fn describe(e: &Entry, titles: &HashMap<String, String>) -> String {
    let name = |id: &String| match titles.get(id) {
        Some(t) => format!("{} ({})", super::ui::clean(t), ids::short(id)),
        None => super::ui::clean(ids::short(id)),
    };
    let mut s = match e.documents.len() {
        0 => String::new(),
        1 => name(&e.documents[0]),
        n => format!(
            "{n} documents: {}",
            e.documents
                .iter()
                .take(3)
                .map(name)
                .collect::<Vec<_>>()
                .join(", ")
                + if n > 3 { ", …" } else { "" }
        ),
    };
    for key in [
        "grant",
        "to",
        "handle",
        "expires",
        "target",
        "what",
        "version",
        "changes",
        "reason",
        "category",
        "from",
        "action",
        "seq",
        "professional",
        "role",
        "name",
    ] {
        if let Some(v) = e.details.get(key) {
            // Stored times are UTC (RFC 3339); people read them in local time.
            let v = match v.as_str() {
                Some(s) => s
                    .parse::<jiff::Timestamp>()
                    .map(dates::show_local)
                    .unwrap_or_else(|_| s.to_string()),
                None => v.to_string(),
            };
            let v = if key == "grant" {
                ids::short(&v).to_string()
            } else {
                v
            };
            if !s.is_empty() {
                s.push_str("  ");
            }
            // Reasons, handles and targets are whatever was typed or found in a file.
            s.push_str(&format!("{key}={}", super::ui::clean(&v)));
        }
    }
    s
}

/// An action to filter on: one this build knows (a typo would silently match nothing). Not
/// `sealed`: the entries a key cannot open are never listed.
fn parse_action(s: &str) -> Result<crate::domain::Action, crate::error::Error> {
    use crate::domain::Action;
    match Action::parse(s.trim()) {
        Action::Other(_) | Action::Sealed => Err(crate::error::Error::input(
            format!("unknown action {s:?}"),
            format!("actions are: {}", Action::NAMES.join(", ")),
        )),
        a => Ok(a),
    }
}
