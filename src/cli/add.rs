//! `carnet add`: the arguments resolved into an import request, `ops::import`, and its report
//! printed (with progress bars on a terminal).

use std::io::IsTerminal;

use super::Ctx;
use super::args::AddArgs;
use super::ui;
use crate::category;
use crate::dates;
use crate::error::Error;
use crate::ids;
use crate::ops::import::{self, DateSource, Status};

pub fn run(ctx: &Ctx, a: AddArgs) -> anyhow::Result<()> {
    let title = a.title.map(|s| s.trim().to_string());
    if title.as_deref() == Some("") {
        return Err(Error::input(
            "the title is empty",
            "give a title, or leave --title out to use the file name",
        )
        .into());
    }
    let req = import::Request {
        category: a.category.as_deref().map(category::parse).transpose()?,
        date: a.date.as_deref().map(dates::parse_date).transpose()?,
        author: a
            .author
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        tags: clean_tags(&a.tags)?,
        title,
        note: false,
    };
    let vault = ctx.open_vault()?;
    let from_stdin = a.paths.iter().any(|p| p.as_os_str() == "-");
    if from_stdin && a.paths.len() > 1 {
        return Err(Error::input(
            "`-` (standard input) is one document: it cannot be mixed with files",
            "add the files with one command and standard input with another",
        )
        .into());
    }
    if from_stdin && std::io::stdin().is_terminal() {
        return Err(Error::input(
            "`-` reads the document from standard input, which is a terminal",
            "pipe or redirect it: carnet add - --title \"...\" < file",
        )
        .into());
    }
    let collected = if from_stdin {
        import::Collected {
            inputs: vec![import::Input::stream(Box::new(std::io::stdin()))],
            skipped: Vec::new(),
        }
    } else {
        import::collect(&a.paths, &vault.dir)?
    };
    for (path, why) in &collected.skipped {
        eprintln!("skipped {}: {why}", ui::clean(&path.display().to_string()));
    }
    // Authenticate the vault (head, and through it carnet.toml's recipients) before encrypting
    // anything: otherwise a recipient slipped into the config would receive the documents.
    // A closed record would refuse the commit: say so before encrypting anything.
    let snap = vault.read(&ctx.keys)?;
    snap.root.check_writable()?;
    let keys = snap.keys;
    let bars = ui::FileBars::new("Encrypting");
    let report = import::import(&vault, keys, collected, &req, ctx.now, &bars)?;
    bars.finish();
    super::print_notices(&report.notices);
    if report.uncategorised > 0 {
        eprintln!(
            "note: {} file(s) in folders not named after a category were filed as `{}`; \
             name folders after `carnet categories` (e.g. imagerie/, prescription/) or pass --category",
            report.uncategorised,
            category::DEFAULT
        );
    }
    let (named, by_mtime) = (
        report.dated_by(DateSource::FileName),
        report.dated_by(DateSource::Mtime),
    );
    if by_mtime > 0 {
        eprintln!(
            "note: {by_mtime} document(s) dated by the file's modification time (no date in the \
             file name){}: check them with `carnet ls`, or pass --date",
            if named > 0 {
                format!(", {named} by a date in the file name")
            } else {
                String::new()
            }
        );
    }
    if a.json {
        return super::print_json(&report.outcomes);
    }
    for o in &report.outcomes {
        match o.status {
            // Titles come from file names: anything can be in them.
            Status::Added => crate::outln!("added {}  {}", ids::short(&o.id), ui::clean(&o.title)),
            Status::Duplicate => {
                eprintln!(
                    "{}: already in vault as {} ({})",
                    ui::clean(&o.path.display().to_string()),
                    ids::short(&o.id),
                    ui::clean(&o.title)
                );
                if o.differs {
                    eprintln!(
                        "hint: its stored title, category, date or author differ from what you gave; \
                         correct them with `carnet edit {}`",
                        ids::short(&o.id)
                    );
                }
            }
        }
    }
    Ok(())
}

pub(super) fn clean_tags(tags: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() {
            return Err(Error::input(
                "a tag is empty",
                "give each --tag a word, e.g. --tag cardiologie",
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}
