//! Reading one document: its metadata (`show`) or its content (`cat`). Each is logged as a
//! `view` before anything is released, and the document is looked up under the writer lock the
//! log entry needs anyway, so a concurrent change to its shard is never mistaken for damage.

use std::io::Write;

use crate::crypto::{self, OpenError};
use crate::domain::Action;
use crate::error::Error;
use crate::keys::Unlocked;
use crate::manifest::Document;
use crate::txn::{Notice, Op};
use crate::vault::Vault;

/// A document's metadata, its view logged.
pub struct Shown {
    pub doc: Document,
    pub notices: Vec<Notice>,
}

/// `carnet show`: the metadata of the document `prefix` names.
pub fn show(
    vault: &Vault,
    keys: Unlocked,
    prefix: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<Shown> {
    let txn = vault.begin(keys, now)?;
    let doc = txn.snap.resolve(vault, prefix)?;
    let done = txn.commit(
        Op::new(Action::View)
            .documents(vec![doc.id.to_string()])
            .detail("what", "metadata"),
    )?;
    Ok(Shown {
        doc,
        notices: done.notices,
    })
}

/// A document whose content view is logged, ready to stream.
pub struct Content<'v> {
    pub doc: Document,
    pub notices: Vec<Notice>,
    vault: &'v Vault,
    file: std::fs::File,
    keys: Unlocked,
}

/// `carnet cat`: resolves `prefix`, lets `admit` refuse the document (before anything is
/// logged), opens its object and logs the view. Nothing of the content is read yet.
pub fn cat<'v>(
    vault: &'v Vault,
    keys: Unlocked,
    prefix: &str,
    now: jiff::Timestamp,
    admit: impl FnOnce(&Document) -> Result<(), Error>,
) -> anyhow::Result<Content<'v>> {
    let txn = vault.begin(keys, now)?;
    let doc = txn.snap.resolve(vault, prefix)?;
    admit(&doc)?;
    // Opened under the lock: a concurrent `rm` cannot take the object away between the log
    // entry and the read.
    let file = vault.object_file(&doc)?;
    let done = txn.commit(
        Op::new(Action::View)
            .documents(vec![doc.id.to_string()])
            .detail("what", "content"),
    )?;
    Ok(Content {
        doc,
        notices: done.notices,
        vault,
        file,
        keys: done.snap.keys,
    })
}

impl Content<'_> {
    /// Streams the plaintext to `out`, checking the ciphertext before the first byte (anyone can
    /// encrypt to the vault's public key: an object swapped for another of the same size would
    /// otherwise stream before its plaintext hash fails at the end) and the plaintext hash after.
    pub fn copy_to(self, out: &mut dyn Write) -> anyhow::Result<u64> {
        let Content {
            doc,
            vault,
            file,
            keys,
            ..
        } = self;
        let reader = vault.decrypt_object(file, &doc, &keys, true)?;
        let mut out = crypto::HashingWriter::new(out);
        let n = crypto::copy_plain(reader, &mut out, &|_| {}).map_err(|e| match e {
            OpenError::Io(e) => anyhow::Error::from(e),
            e => Error::Integrity(format!("{}: {e}", vault.object_path(&doc.object).display()))
                .into(),
        })?;
        out.flush()?;
        if out.finish().1 != doc.sha256 {
            return Err(Error::Integrity(format!(
                "{} does not match its recorded SHA-256",
                doc.title
            ))
            .into());
        }
        Ok(n)
    }
}
