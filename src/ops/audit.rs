//! Reading the access log (`carnet log`): the entries a filter selects, and the titles of the
//! documents they name (current ones from their shards, removed ones from their `rm` entry).

use std::collections::{BTreeSet, HashMap};

use crate::domain::Action;
use crate::error::Error;
use crate::fsutil::Lock;
use crate::log::{self, Entry};
use crate::vault::{KeyOpts, Vault};
use crate::verify::{self, Report};

/// Which entries to show; every field narrows.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Local calendar days, inclusive.
    pub since: Option<jiff::civil::Date>,
    pub until: Option<jiff::civil::Date>,
    pub action: Option<Action>,
    /// An id prefix of a document the log names (removed documents included).
    pub doc: Option<String>,
    /// Only the last N matching entries (reads only the segments it needs).
    pub last: Option<usize>,
}

/// The selected entries, oldest first, and titles for the documents they name.
pub struct LogView {
    pub entries: Vec<Entry>,
    pub titles: HashMap<String, String>,
}

/// How many documents per entry get a title looked up (a listing shows three).
const TITLED_PER_ENTRY: usize = 3;

pub fn read(
    vault: &Vault,
    keys: &KeyOpts,
    filter: &Filter,
    tz: &jiff::tz::TimeZone,
) -> anyhow::Result<LogView> {
    // Shared, while the log and the shards are read: a commit removes the shards it replaces.
    let _lock = Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(keys)?;
    let in_dates = |e: &Entry| {
        let day = e.time.to_zoned_datetime(tz.clone()).date();
        filter.since.is_none_or(|s| day >= s) && filter.until.is_none_or(|u| day <= u)
    };
    let action_ok = |e: &Entry| filter.action.as_ref().is_none_or(|x| &e.action == x);
    let logged = match filter.last {
        Some(n) => log::read_tail(&vault.dir, &snap.keys, &snap.ring, &snap.head, n, |e| {
            in_dates(e) && action_ok(e)
        })?,
        None => {
            let mut report = Report::default();
            let logged = verify::scan_log(vault, &snap.keys, &snap.ring, &mut report);
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
    let doc = match &filter.doc {
        Some(p) => {
            let named: BTreeSet<&str> = logged
                .iter()
                .flat_map(|l| l.entry.documents.iter().map(String::as_str))
                .collect();
            Some(crate::ids::resolve(p, named)?.to_string())
        }
        None => None,
    };
    // Titles recorded by `rm` entries, for documents no longer in the vault.
    let mut titles: HashMap<String, String> = HashMap::new();
    for l in &logged {
        if let Some(serde_json::Value::Array(ts)) = l.entry.details.get("titles") {
            for (id, t) in l.entry.documents.iter().zip(ts) {
                if let Some(t) = t.as_str() {
                    titles.insert(id.clone(), t.to_string());
                }
            }
        }
    }
    // A sealed entry this key cannot open leaves no trace in the listing.
    let mut entries: Vec<Entry> = logged
        .into_iter()
        .filter(|l| !l.opaque)
        .map(|l| l.entry)
        .filter(|e| in_dates(e) && action_ok(e))
        .filter(|e| {
            doc.as_deref()
                .is_none_or(|d| e.documents.iter().any(|x| x == d))
        })
        .collect();
    if let Some(n) = filter.last {
        entries.drain(..entries.len().saturating_sub(n));
    }
    // Current titles win over recorded ones; only the shards of the named documents are read.
    let shown: Vec<String> = entries
        .iter()
        .flat_map(|e| e.documents.iter().take(TITLED_PER_ENTRY).cloned())
        .collect();
    for d in snap.documents_by_id(vault, &shown)?.into_values() {
        titles.insert(d.id.into(), d.title);
    }
    Ok(LogView { entries, titles })
}
