//! `carnet categories`: the category slugs and the DMP classes they stand for.

use serde::Serialize;

use super::args::JsonArg;
use crate::category::ALL;

#[derive(Serialize)]
struct Row {
    slug: &'static str,
    label: &'static str,
    dmp_class: &'static str,
}

pub fn run(a: JsonArg) -> anyhow::Result<()> {
    if a.json {
        let rows: Vec<Row> = ALL
            .iter()
            .map(|c| Row {
                slug: c.slug,
                label: c.label,
                dmp_class: c.dmp_class,
            })
            .collect();
        return super::print_json(&rows);
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<15} {:<5} LABEL", "SLUG", "DMP")?;
    for c in ALL {
        writeln!(out, "{:<15} {:<5} {}", c.slug, c.dmp_class, c.label)?;
    }
    Ok(())
}
