//! Removing documents (`carnet rm`): their metadata leaves the manifest and their objects are
//! deleted once the change commits; the log keeps their titles so its history stays readable.

use crate::domain::Action;
use crate::error::Error;
use crate::keys::Unlocked;
use crate::manifest::Document;
use crate::txn::{Notice, Op};
use crate::vault::Vault;

/// What `rm` removed.
pub struct Removed {
    pub documents: Vec<Document>,
    pub notices: Vec<Notice>,
}

/// Removes the documents with these full ids (as `resolve` gave them, possibly before the lock:
/// ones removed meanwhile are skipped; none left is an error).
pub fn remove(
    vault: &Vault,
    keys: Unlocked,
    ids: &[String],
    now: jiff::Timestamp,
) -> anyhow::Result<Removed> {
    let txn = vault.begin(keys, now)?;
    let found = txn.snap.documents_by_id(vault, ids)?;
    let mut documents: Vec<Document> = Vec::new();
    for id in ids {
        if let Some(d) = found.get(id)
            && !documents.iter().any(|x| &x.id == id)
        {
            documents.push(d.clone());
        }
    }
    if documents.is_empty() {
        return Err(Error::UnknownId(ids.join(" ")).into());
    }
    let titles: Vec<String> = documents.iter().map(|d| d.title.clone()).collect();
    let mut op = Op::new(Action::Rm)
        .documents(documents.iter().map(|d| d.id.to_string()).collect())
        .detail("titles", titles);
    op.delete = documents.iter().map(|d| d.id.to_string()).collect();
    // Every version's object: a removed document leaves no earlier content behind.
    op.remove = documents
        .iter()
        .flat_map(|d| d.stored_objects())
        .map(|v| v.object.clone())
        .collect();
    let done = txn.commit(op)?;
    Ok(Removed {
        documents,
        notices: done.notices,
    })
}
