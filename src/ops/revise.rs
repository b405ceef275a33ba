//! Corrections (`carnet edit`, `carnet replace`): a document's metadata or content changed as a
//! new version, the earlier one kept whole in its history (with its object), so that every
//! version stays readable and verifiable. Grants and exports use the current version.

use crate::domain::{Action, Actor};
use crate::error::Error;
use crate::keys::Unlocked;
use crate::manifest::{Document, Revision};
use crate::txn::{Notice, Op};
use crate::vault::Vault;

use super::Progress;
use super::import;

/// Metadata corrections; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub title: Option<String>,
    pub date: Option<jiff::civil::Date>,
    pub category: Option<&'static str>,
    /// `Some("")` clears the author.
    pub author: Option<String>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
}

/// Who corrects, and why (both recorded in the version and the log).
#[derive(Debug, Clone)]
pub struct Correction {
    pub actor: Actor,
    pub reason: Option<String>,
}

/// A new version, committed.
pub struct Revised {
    pub doc: Document,
    pub changes: Vec<String>,
    pub notices: Vec<Notice>,
}

/// Applies `edit` to the document `prefix` names, as a new version.
pub fn edit(
    vault: &Vault,
    keys: Unlocked,
    prefix: &str,
    edit: &Edit,
    by: Correction,
    now: jiff::Timestamp,
) -> anyhow::Result<Revised> {
    let txn = vault.begin(keys, now)?;
    txn.root().check_writable()?;
    let cur = txn.snap.resolve(vault, prefix)?;
    let mut next = cur.clone();
    let mut changes = Vec::new();
    if let Some(t) = &edit.title
        && *t != cur.title
    {
        next.title = t.clone();
        changes.push("title".to_string());
    }
    if let Some(d) = edit.date
        && d != cur.date
    {
        next.date = d;
        changes.push("date".to_string());
    }
    if let Some(c) = edit.category
        && c != cur.category
    {
        next.category = c.to_string();
        changes.push("category".to_string());
    }
    if let Some(a) = &edit.author {
        let a = Some(a.clone()).filter(|a| !a.is_empty());
        if a != cur.author {
            next.author = a;
            changes.push("author".to_string());
        }
    }
    for t in &edit.remove_tags {
        if !cur.tags.contains(t) {
            return Err(Error::input(
                format!("{} has no tag {t:?}", crate::ids::short(&cur.id)),
                format!("its tags: {}", tag_list(&cur.tags)),
            )
            .into());
        }
    }
    next.tags.retain(|t| !edit.remove_tags.contains(t));
    for t in &edit.add_tags {
        if !next.tags.contains(t) {
            next.tags.push(t.clone());
        }
    }
    if next.tags != cur.tags {
        changes.push("tags".to_string());
    }
    if changes.is_empty() {
        return Err(Error::input(
            format!(
                "nothing to change: {} already reads so",
                crate::ids::short(&cur.id)
            ),
            "give the fields to correct, e.g. --title, --date, --category, --tag",
        )
        .into());
    }
    // A category carries its standing rule: moving a document in or out of a hidden category
    // changes who may see it, which must not pass unnoticed.
    let (before, after) = (txn.root().visibility(&cur), txn.root().visibility(&next));
    let warning = (before != after).then(|| {
        let codes = |v: &std::collections::BTreeSet<crate::domain::Visibility>| {
            if v.is_empty() {
                "visible to all".to_string()
            } else {
                format!(
                    "hidden ({})",
                    v.iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        Notice::Warning(format!(
            "in the category {}, {} is now {} (it was {})",
            next.category,
            crate::ids::short(&cur.id),
            codes(&after),
            codes(&before)
        ))
    });
    let revised = cur.revise(
        next,
        Revision {
            at: now,
            // The key that opened the vault acts (a guardian, the recovery key) unless the
            // caller names someone else.
            actor: if by.actor == Actor::Patient {
                txn.snap.keys.actor.clone()
            } else {
                by.actor
            },
            changes: changes.clone(),
            reason: by.reason.clone(),
        },
    );
    let mut done = commit(vault, txn, Action::Edit, revised, changes, by.reason, None)?;
    done.notices.extend(warning);
    Ok(done)
}

fn tag_list(tags: &[String]) -> String {
    if tags.is_empty() {
        "none".into()
    } else {
        tags.join(", ")
    }
}

fn commit(
    vault: &crate::vault::Vault,
    txn: crate::txn::Txn<'_>,
    action: Action,
    doc: Document,
    changes: Vec<String>,
    reason: Option<String>,
    object: Option<(tempfile::TempPath, String)>,
) -> anyhow::Result<Revised> {
    let mut op = Op::new(action)
        .documents(vec![doc.id.to_string()])
        .detail("version", doc.version)
        .detail("changes", changes.clone());
    if let Some(r) = &reason {
        op = op.detail("reason", r.clone());
    }
    if let Some(o) = object {
        op.add.push(o);
    }
    op.put.push(doc);
    crate::ops::seal::settle(vault, &txn.snap, &mut op)?;
    // Sealing may have moved its objects: what is reported is what was stored.
    let doc = op.put[0].clone();
    let notices = txn.commit(op)?.notices;
    Ok(Revised {
        doc,
        changes,
        notices,
    })
}

/// Replaces the content of the document `prefix` names with `file` (or a stream), as a new
/// version: the new content is encrypted outside the lock, then committed under it.
pub fn replace(
    vault: &Vault,
    keys: Unlocked,
    prefix: &str,
    input: import::Input,
    by: Correction,
    now: jiff::Timestamp,
    progress: &dyn Progress,
) -> anyhow::Result<Revised> {
    // The new content of a document hidden from guardians is encrypted for the sealed key from
    // the start (read once here; the commit checks again under the lock).
    let to = {
        let pre = vault.snapshot(crate::ops::mirror::dup(&keys))?;
        let cur = pre.resolve(vault, prefix)?;
        let sealed = pre.sealed_ids(vault, &[cur.id.to_string()])?;
        match (&pre.root.sealed, sealed.is_empty()) {
            (Some(s), false) => vec![s.key()?],
            _ => vault.recipients()?,
        }
    };
    let staged = import::stage_one(vault, input, &to, progress)?;
    let txn = vault.begin(keys, now)?;
    let cur = txn.snap.resolve(vault, prefix)?;
    if staged.sha256 == cur.sha256 {
        return Err(Error::input(
            format!(
                "{} already has this content: nothing to replace",
                crate::ids::short(&cur.id)
            ),
            "to correct its title or date, use `carnet edit`",
        )
        .into());
    }
    if let Some(other) = txn.snap.find_by_sha256(vault, &staged.sha256)? {
        return Err(Error::input(
            format!(
                "this content is already in the vault as {} ({})",
                crate::ids::short(&other.id),
                crate::text::clean(&other.title)
            ),
            format!(
                "remove one of them (`carnet rm {}`) rather than holding the same content twice",
                crate::ids::short(&other.id)
            ),
        )
        .into());
    }
    let mut next = cur.clone();
    next.size = staged.size;
    next.sha256 = staged.sha256.clone();
    next.crc32 = Some(staged.crc32);
    // A note stays a note (Markdown), whatever the new text looks like.
    if cur.category != crate::category::NOTE {
        next.media_type = staged.media_type.clone();
    }
    if staged.original_name.is_some() {
        next.original_name = staged.original_name.clone();
    }
    next.object = staged.object.clone();
    next.object_size = staged.object_size;
    next.object_blake3 = staged.object_blake3.clone();
    let changes = vec!["content".to_string()];
    let revised = cur.revise(
        next,
        Revision {
            at: now,
            // The key that opened the vault acts (a guardian, the recovery key) unless the
            // caller names someone else.
            actor: if by.actor == Actor::Patient {
                txn.snap.keys.actor.clone()
            } else {
                by.actor
            },
            changes: changes.clone(),
            reason: by.reason.clone(),
        },
    );
    commit(
        vault,
        txn,
        Action::Replace,
        revised,
        changes,
        by.reason,
        Some((staged.tmp, staged.object)),
    )
}
