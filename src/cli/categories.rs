//! `carnet categories`: the category slugs, the DMP classes they stand for, and the aliases
//! accepted for them.

use serde::Serialize;

use super::args::JsonArg;
use crate::category::{self, ALL};

#[derive(Serialize)]
struct Row {
    slug: &'static str,
    label: &'static str,
    dmp_class: &'static str,
    aliases: Vec<&'static str>,
}

pub fn run(a: JsonArg) -> anyhow::Result<()> {
    if a.json {
        let rows: Vec<Row> = ALL
            .iter()
            .map(|c| Row {
                slug: c.slug,
                label: c.label,
                dmp_class: c.dmp_class,
                aliases: category::aliases(c.slug).collect(),
            })
            .collect();
        return super::print_json(&rows);
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<15} {:<5} {:<32} ALIASES", "SLUG", "DMP", "LABEL")?;
    for c in ALL {
        let aliases = category::aliases(c.slug).collect::<Vec<_>>().join(", ");
        let line = format!(
            "{:<15} {:<5} {:<32} {aliases}",
            c.slug, c.dmp_class, c.label
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
