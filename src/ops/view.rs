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
    /// Its visibility codes, its category's rule included.
    pub visibility: Vec<crate::domain::Visibility>,
    pub notices: Vec<Notice>,
}

/// Which version to read: the current one, or version N (`--version N`).
pub type Version = Option<u32>;

/// `doc` at `version`, or why not.
fn at_version(doc: Document, version: Version) -> Result<Document, Error> {
    let Some(n) = version else { return Ok(doc) };
    match doc.version(n) {
        Some(v) => Ok(v.clone()),
        None => Err(Error::input(
            format!(
                "{} has no version {n}: its versions are 1 to {}",
                crate::ids::short(&doc.id),
                doc.version
            ),
            format!(
                "list them with `carnet history {}`",
                crate::ids::short(&doc.id)
            ),
        )),
    }
}

fn view_op(doc: &Document, what: &str, version: Version) -> Op {
    let op = Op::new(Action::View)
        .documents(vec![doc.id.to_string()])
        .detail("what", what);
    match version {
        Some(n) => op.detail("version", n),
        None => op,
    }
}

/// `carnet show` (a version's metadata) and `carnet history` (the document with every earlier
/// version, `what` = `history`).
pub fn show(
    vault: &Vault,
    keys: Unlocked,
    prefix: &str,
    version: Version,
    what: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<Shown> {
    let txn = vault.begin(keys, now)?;
    let current = txn.snap.resolve(vault, prefix)?;
    // Visibility belongs to the document, not to a version: an earlier one is hidden alike.
    let visibility = txn.root().visibility(&current).into_iter().collect();
    let doc = at_version(current, version)?;
    let done = txn.commit(view_op(&doc, what, version))?;
    Ok(Shown {
        doc,
        visibility,
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
    version: Version,
    now: jiff::Timestamp,
    admit: impl FnOnce(&Document) -> Result<(), Error>,
) -> anyhow::Result<Content<'v>> {
    let txn = vault.begin(keys, now)?;
    let doc = at_version(txn.snap.resolve(vault, prefix)?, version)?;
    admit(&doc)?;
    // Opened under the lock: a concurrent `rm` cannot take the object away between the log
    // entry and the read.
    let file = vault.object_file(&doc)?;
    let done = txn.commit(view_op(&doc, "content", version))?;
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
