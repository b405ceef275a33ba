//! `carnet hide` and `carnet unhide`: documents or a category's rule, for professionals,
//! guardians or both.

use serde::Serialize;

use super::Ctx;
use super::args::{From, HideArgs};
use super::ui;
use crate::category;
use crate::ids;
use crate::ops::visibility::{self, Audience, Target};

#[derive(Serialize)]
struct Json {
    action: &'static str,
    category: Option<String>,
    changed: Vec<Changed>,
    unchanged: Vec<String>,
    covered: usize,
}

#[derive(Serialize)]
struct Changed {
    id: String,
    title: String,
    visibility: Vec<String>,
}

pub fn run(ctx: &Ctx, a: HideArgs, hide: bool) -> anyhow::Result<()> {
    let audience = match a.from {
        Some(From::Pros) => Audience::Pros,
        Some(From::Guardians) => Audience::Guardians,
        Some(From::All) => Audience::All,
        // Unhiding widens access: like hiding, it is about professionals unless said otherwise
        // (a minor who lets a doctor see a document has not let a guardian see it).
        None => Audience::Pros,
    };
    let target = match &a.category {
        Some(c) => Target::Category(category::parse(c)?),
        None => Target::Documents(a.ids.clone()),
    };
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let out = visibility::set(
        &vault,
        keys,
        &target,
        audience,
        hide,
        super::scrypt_log_n(),
        ctx.now,
    )?;
    super::print_notices(&out.notices);
    let verb = if hide { "hidden" } else { "visible" };
    if a.json {
        return super::print_json(&Json {
            action: if hide { "hide" } else { "unhide" },
            category: match target {
                Target::Category(c) => Some(c.to_string()),
                Target::Documents(_) => None,
            },
            changed: out
                .changed
                .iter()
                .map(|c| Changed {
                    id: c.doc.id.to_string(),
                    title: c.doc.title.clone(),
                    visibility: c.visibility.iter().map(|v| v.to_string()).collect(),
                })
                .collect(),
            unchanged: out.unchanged.iter().map(|d| d.id.to_string()).collect(),
            covered: out.covered,
        });
    }
    let whom = match audience {
        Audience::Pros => "professionals",
        Audience::Guardians => "legal representatives",
        Audience::All => "professionals and legal representatives",
    };
    if let Target::Category(c) = target {
        crate::outln!(
            "category {c}: {} {whom} ({} document(s) now, and every one added later)",
            if hide {
                "hidden from"
            } else {
                "no longer hidden from"
            },
            out.covered
        );
        return Ok(());
    }
    for c in &out.changed {
        let codes: Vec<String> = c.visibility.iter().map(|v| v.to_string()).collect();
        crate::outln!(
            "{}  {}  {}",
            ids::short(&c.doc.id),
            if codes.is_empty() {
                verb.to_string()
            } else {
                format!("hidden ({})", codes.join(", "))
            },
            ui::clean(&c.doc.title)
        );
    }
    Ok(())
}
