//! `carnet ls`: the documents, filtered and sorted by date, as a table or JSON.

use std::io::Write;

use serde::Serialize;

use super::Ctx;
use super::args::LsArgs;
use super::ui;
use crate::category;
use crate::dates;
use crate::ids;
use crate::manifest::Document;

/// The stable JSON shape of a document (documented in the README); internal fields such as
/// the object name stay out of it.
#[derive(Serialize)]
pub struct DocView<'a> {
    pub id: &'a str,
    pub short_id: &'a str,
    pub title: &'a str,
    pub category: &'a str,
    pub date: String,
    pub author: Option<&'a str>,
    pub tags: &'a [String],
    pub media_type: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    pub added_at: String,
    pub version: u32,
    /// DMP visibility codes (own and the category's rule); empty when visible to all.
    pub visibility: Vec<String>,
    /// The professional's deposit it came from (`carnet receive`), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a crate::manifest::Source>,
}

impl<'a> DocView<'a> {
    /// With the visibility the root's category rules add.
    pub fn with_rules(d: &'a Document, root: &crate::catalog::Root) -> Self {
        let mut v = DocView::from(d);
        v.visibility = root.visibility(d).iter().map(|c| c.to_string()).collect();
        v
    }
}

impl<'a> From<&'a Document> for DocView<'a> {
    fn from(d: &'a Document) -> Self {
        DocView {
            id: &d.id,
            short_id: ids::short(&d.id),
            title: &d.title,
            category: &d.category,
            date: d.date.to_string(),
            author: d.author.as_deref(),
            tags: &d.tags,
            media_type: &d.media_type,
            size: d.size,
            sha256: &d.sha256,
            added_at: d.added_at.to_string(),
            version: d.version,
            visibility: d.visibility.iter().map(|c| c.to_string()).collect(),
            source: d.source.as_ref(),
        }
    }
}

pub fn run(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
    let cats = a
        .categories
        .iter()
        .map(|c| category::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let since = a.since.as_deref().map(dates::parse_date).transpose()?;
    let until = a.until.as_deref().map(dates::parse_date).transpose()?;
    // Folded like the text it is matched against: `elodie` finds "Élodie".
    let needle = a.search.as_deref().map(ui::fold_accents);
    let vault = ctx.open_vault()?;
    // Shared, while the shards are read: a commit removes the shards it replaces.
    let lock = crate::fsutil::Lock::shared(&vault.path(crate::layout::LOCK))?;
    let snap = vault.read(&ctx.keys)?;
    let all = snap.sorted_documents(&vault)?;
    drop(lock);
    let root = &snap.root;
    let total = all.len();

    let docs: Vec<&Document> = all
        .iter()
        .filter(|d| cats.is_empty() || cats.contains(&d.category.as_str()))
        .filter(|d| since.is_none_or(|s| d.date >= s))
        .filter(|d| until.is_none_or(|u| d.date <= u))
        .filter(|d| {
            a.tag
                .as_deref()
                .is_none_or(|t| d.tags.iter().any(|x| x == t))
        })
        .filter(|d| needle.as_deref().is_none_or(|n| matches(d, n)))
        .filter(|d| !a.hidden || !root.visibility(d).is_empty())
        .collect();

    if a.json {
        let views: Vec<DocView> = docs.iter().map(|d| DocView::with_rules(d, root)).collect();
        return super::print_json(&views);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if docs.is_empty() {
        eprintln!(
            "no documents{}",
            if total == 0 {
                " yet: add some with `carnet add FILE`"
            } else {
                " match"
            }
        );
        return Ok(());
    }
    writeln!(
        out,
        "{:<8}   {:<10}  {:<13}  {:>10}  TITLE",
        "ID", "DATE", "CATEGORY", "SIZE"
    )?;
    for d in docs {
        let author = d
            .author
            .as_deref()
            .map(|a| format!("  — {}", ui::clean(a)))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<8} {} {:<10}  {:<13}  {:>10}  {}{}",
            ids::short(&d.id),
            hidden_mark(root, d),
            d.date,
            d.category,
            ui::human_size(d.size),
            ui::clean(&ui::ellipsize(&d.title, 60)),
            author
        )?;
    }
    out.flush()?;
    Ok(())
}

/// `h` hidden from professionals, `g` from guardians, `*` from both, a space when visible.
fn hidden_mark(root: &crate::catalog::Root, d: &Document) -> char {
    use crate::domain::Visibility;
    let v = root.visibility(d);
    match (
        v.contains(&Visibility::HiddenFromPros),
        v.contains(&Visibility::HiddenFromGuardians),
    ) {
        (true, true) => '*',
        (true, false) => 'h',
        (false, true) => 'g',
        (false, false) => ' ',
    }
}

/// Does the title, author or a tag contain `needle` (folded: case and accents ignored)?
fn matches(d: &Document, needle: &str) -> bool {
    let has = |s: &str| ui::fold_accents(s).contains(needle);
    has(&d.title) || d.author.as_deref().is_some_and(has) || d.tags.iter().any(|t| has(t))
}
