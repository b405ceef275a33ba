//! Hiding documents (`carnet hide`, `carnet unhide`): the patient's right to make documents
//! inaccessible to professionals or to legal representatives (CSP R1111-49, L1111-5), per
//! document or as a standing rule for a category (present and future documents). Changes are
//! logged; they are not new versions (the document itself is unchanged).

use std::collections::BTreeSet;

use crate::domain::{Action, Visibility};
use crate::error::Error;
use crate::keys::Unlocked;
use crate::manifest::Document;
use crate::ops::seal;
use crate::txn::{Notice, Op};
use crate::vault::Vault;

/// From whom (`--from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Pros,
    Guardians,
    All,
}

impl Audience {
    pub fn codes(self) -> Vec<Visibility> {
        match self {
            Audience::Pros => vec![Visibility::HiddenFromPros],
            Audience::Guardians => vec![Visibility::HiddenFromGuardians],
            Audience::All => vec![Visibility::HiddenFromPros, Visibility::HiddenFromGuardians],
        }
    }
}

/// What to hide or unhide.
#[derive(Debug, Clone)]
pub enum Target {
    /// Documents, by id prefix.
    Documents(Vec<String>),
    /// A category's standing rule.
    Category(&'static str),
}

/// One document whose visibility changed, or is still hidden by its category.
pub struct Changed {
    pub doc: Document,
    /// Its visibility codes afterwards (own and category's).
    pub visibility: BTreeSet<Visibility>,
}

pub struct Outcome {
    pub changed: Vec<Changed>,
    /// Documents named that needed no change.
    pub unchanged: Vec<Document>,
    /// For a category rule: how many documents it now covers.
    pub covered: usize,
    pub notices: Vec<Notice>,
}

/// Hides (`hide` = true) or unhides `target` for `audience`.
pub fn set(
    vault: &Vault,
    keys: Unlocked,
    target: &Target,
    audience: Audience,
    hide: bool,
    log_n: u8,
    now: jiff::Timestamp,
) -> anyhow::Result<Outcome> {
    let codes = audience.codes();
    let mut txn = vault.begin(keys, now)?;
    // Said first: on a closed record, "already hidden" would be beside the point.
    txn.root().check_writable()?;
    let from_guardians = codes.contains(&Visibility::HiddenFromGuardians);
    if from_guardians && matches!(txn.snap.keys.actor, crate::domain::Actor::Guardian(_)) {
        return Err(Error::input(
            "a guardian cannot change what is hidden from guardians",
            "the patient decides this with their own key",
        )
        .into());
    }
    if from_guardians && hide {
        seal::refuse_unsealable(vault, txn.root(), 1)?;
    }
    let mut root = txn.root().clone();
    let action = if hide { Action::Hide } else { Action::Unhide };
    let from: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    // The documents whose visibility changes (their new form), and for a rule the category.
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    let mut notices = Vec::new();
    let mut covered = 0;
    let mut op = Op::new(action).detail("from", from);
    match target {
        Target::Category(cat) => {
            let rule = root.hidden_categories.entry(cat.to_string()).or_default();
            let before = rule.clone();
            for c in &codes {
                if hide && !rule.contains(c) {
                    rule.push(c.clone());
                } else if !hide {
                    rule.retain(|x| x != c);
                }
            }
            rule.sort();
            let after = rule.clone();
            if after.is_empty() {
                root.hidden_categories.remove(*cat);
            }
            if before == after {
                // Hidden already: entries a cut-short hide left in clear are sealed again.
                if hide && from_guardians {
                    let docs: Vec<Document> = txn
                        .snap
                        .documents(vault)?
                        .into_iter()
                        .filter(|d| d.category == *cat)
                        .collect();
                    let sealed = seal_past_entries(vault, &mut txn, &docs)?;
                    if !sealed.is_empty() {
                        notices.extend(sealed);
                        return Ok(Outcome {
                            changed,
                            unchanged,
                            covered: docs.len(),
                            notices,
                        });
                    }
                }
                return Err(Error::input(
                    format!(
                        "the category {cat} is already {} for this audience",
                        if hide { "hidden" } else { "not hidden" }
                    ),
                    "see the rules with `carnet ls --hidden`; nothing was changed",
                )
                .into());
            }
            op = op.detail("category", cat.to_string());
        }
        Target::Documents(prefixes) => {
            let mut docs: Vec<Document> = Vec::new();
            for p in prefixes {
                let d = txn.snap.resolve(vault, p)?;
                if !docs.iter().any(|x| x.id == d.id) {
                    docs.push(d);
                }
            }
            for d in docs {
                let mut next = d.clone();
                for c in &codes {
                    if hide && !next.visibility.contains(c) {
                        next.visibility.push(c.clone());
                    } else if !hide {
                        next.visibility.retain(|x| x != c);
                    }
                }
                next.visibility.sort();
                let still = root.visibility(&next);
                if !hide
                    && let Some(rule) = root.hidden_categories.get(&next.category)
                    && codes.iter().any(|c| rule.contains(c))
                {
                    notices.push(Notice::Warning(format!(
                        "{} stays hidden by the rule for its category {}: lift it with `carnet unhide --category {}`",
                        crate::ids::short(&next.id),
                        next.category,
                        next.category
                    )));
                }
                if next.visibility == d.visibility {
                    unchanged.push(d);
                } else {
                    changed.push(Changed {
                        doc: next,
                        visibility: still,
                    });
                }
            }
            if changed.is_empty() {
                // Hidden already: earlier entries naming it are sealed again in case the first
                // `hide` was cut short before it did (see `Txn::append`).
                if hide && from_guardians {
                    notices.extend(seal_past_entries(vault, &mut txn, &unchanged)?);
                }
                let mut out = Outcome {
                    changed,
                    unchanged,
                    covered: 0,
                    notices,
                };
                // Nothing to write: nothing logged either.
                out.notices.push(Notice::Note(format!(
                    "nothing changed: {} already {}",
                    if out.unchanged.len() == 1 {
                        "the document was"
                    } else {
                        "the documents were"
                    },
                    if hide { "hidden" } else { "not hidden" }
                )));
                return Ok(out);
            }
            op = op.documents(changed.iter().map(|c| c.doc.id.to_string()).collect());
        }
    }

    // What is hidden from guardians is sealed from their keys: the key is made the first time,
    // and every document whose compartment changes is encrypted again.
    let mut sealing = seal::Changes::default();
    if from_guardians && hide {
        seal::make_key(vault, &mut txn.snap, &mut root, log_n, now, &mut sealing)?;
    }
    let candidates: Vec<(Document, bool)> = match target {
        Target::Category(cat) => {
            let docs = txn.snap.documents(vault)?;
            covered = docs.iter().filter(|d| d.category == *cat).count();
            docs.into_iter()
                .filter(|d| {
                    d.category == *cat || (sealing.made_key && root.hidden_from_guardians(d))
                })
                .map(|d| (d, false))
                .collect()
        }
        Target::Documents(_) => {
            let mut out: Vec<(Document, bool)> =
                changed.iter().map(|c| (c.doc.clone(), true)).collect();
            if sealing.made_key {
                // Documents hidden from guardians before the key existed move in with these.
                for d in txn.snap.documents(vault)? {
                    if root.hidden_from_guardians(&d) && !out.iter().any(|(x, _)| x.id == d.id) {
                        out.push((d, false));
                    }
                }
            }
            out
        }
    };
    seal::place(vault, &txn.snap, &root, candidates, &mut sealing)?;
    op.put = sealing.put;
    op.add = sealing.add;
    op.remove = sealing.remove;
    op.seal_past = sealing.newly_sealed;
    op.identity = sealing.identity;
    op.root = Some(root);
    notices.extend(txn.commit(op)?.notices);
    Ok(Outcome {
        changed,
        unchanged,
        covered,
        notices,
    })
}

/// Seals the clear log entries that still name these documents, when they are sealed.
fn seal_past_entries(
    vault: &Vault,
    txn: &mut crate::txn::Txn<'_>,
    docs: &[Document],
) -> anyhow::Result<Vec<Notice>> {
    let (Some(sealed), Some(_)) = (&txn.root().sealed, &txn.snap.keys.sealed) else {
        return Ok(Vec::new());
    };
    let to = sealed.key()?;
    let ids: Vec<String> = docs.iter().map(|d| d.id.to_string()).collect();
    let ids = txn.snap.sealed_ids(vault, &ids)?;
    if ids.is_empty() || txn.redact_log(&to, &ids)?.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = txn.reindex();
    out.push(Notice::Note(
        "sealed earlier log entries that still named it in clear".into(),
    ));
    Ok(out)
}
