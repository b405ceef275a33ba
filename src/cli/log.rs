//! `carnet log`: read the access log, filtered, as a table or JSON.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use super::Ctx;
use super::args::LogArgs;
use crate::dates;
use crate::error::Error;
use crate::ids;
use crate::log::{self, Entry};
use crate::verify::{self, Report};

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
    let since = a.since.as_deref().map(dates::parse_date).transpose()?;
    let until = a.until.as_deref().map(dates::parse_date).transpose()?;
    let vault = ctx.open_vault()?;
    // Shared, while the log and the shards are read: a commit removes the shards it replaces.
    let _lock = crate::fsutil::Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(&ctx.keys)?;
    let action = a.action.as_deref().map(crate::domain::Action::parse);
    let tz = jiff::tz::TimeZone::system();
    let in_dates = |e: &Entry| {
        let day = e.time.to_zoned_datetime(tz.clone()).date();
        since.is_none_or(|s| day >= s) && until.is_none_or(|u| day <= u)
    };
    let logged = match a.last {
        Some(n) => log::read_tail(&vault.dir, &snap.keys, &snap.ring, &snap.head, n, |e| {
            in_dates(e) && action.as_ref().is_none_or(|x| &e.action == x)
        })?,
        None => {
            let mut report = Report::default();
            let logged = verify::scan_log(&vault, &snap.keys, &snap.ring, &mut report);
            if let Some(p) = report.problems.first() {
                return Err(Error::Integrity(format!("{}: {}", p.path, p.message)).into());
            }
            logged
        }
    };
    if logged.last().map(|l| l.entry.seq) < Some(snap.head.log_seq) {
        return Err(Error::Integrity(
            "the access log ends before the entry head.age names (entries cut off)".into(),
        )
        .into());
    }
    let doc = match &a.doc {
        Some(p) => {
            let named: std::collections::BTreeSet<&str> = logged
                .iter()
                .flat_map(|l| l.entry.documents.iter().map(String::as_str))
                .collect();
            Some(ids::resolve(p, named)?.to_string())
        }
        None => None,
    };
    let mut entries: Vec<&Entry> = logged
        .iter()
        .map(|l| &l.entry)
        .filter(|e| in_dates(e))
        .filter(|e| action.as_ref().is_none_or(|x| &e.action == x))
        .filter(|e| {
            doc.as_deref()
                .is_none_or(|d| e.documents.iter().any(|x| x == d))
        })
        .collect();
    if let Some(n) = a.last {
        entries.drain(..entries.len().saturating_sub(n));
    }

    if a.json {
        let views: Vec<EntryView> = entries
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
    // Titles of the documents the table names (three per entry at most), reading only their
    // shards; documents removed since are named by the titles their `rm` entry recorded.
    let shown: Vec<String> = entries
        .iter()
        .flat_map(|e| e.documents.iter().take(3).cloned())
        .collect();
    let current = snap.documents_by_id(&vault, &shown)?;
    let mut titles: HashMap<&str, &str> = current
        .values()
        .map(|d| (d.id.as_str(), d.title.as_str()))
        .collect();
    for l in &logged {
        if let Some(serde_json::Value::Array(ts)) = l.entry.details.get("titles") {
            for (id, t) in l.entry.documents.iter().zip(ts) {
                if let Some(t) = t.as_str() {
                    titles.entry(id.as_str()).or_insert(t);
                }
            }
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in entries {
        writeln!(
            out,
            "{}  {:<7}  {:<8}  {}",
            dates::show_local(e.time),
            e.actor,
            e.action,
            describe(e, &titles)
        )?;
    }
    out.flush()?;
    Ok(())
}

fn describe(e: &Entry, titles: &HashMap<&str, &str>) -> String {
    let name = |id: &String| match titles.get(id.as_str()) {
        Some(t) => format!("{} ({})", super::ui::clean(t), ids::short(id)),
        None => ids::short(id).to_string(),
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
        "grant", "to", "handle", "expires", "target", "what", "action", "seq",
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
            s.push_str(&format!("{key}={v}"));
        }
    }
    s
}
