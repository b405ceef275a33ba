//! Receiving what a professional sends back (`carnet receive`): a deposit of documents, or an
//! access receipt saying they opened a grant. The kind comes from the signed terms
//! (`deposit::open`); this module decides trust and changes the vault.
//!
//! Trust rests on the patient's directory: the deposit's signing key must be the one recorded
//! for that professional. An unknown professional, or a known one whose key changed, is refused
//! unless the patient passes `--accept-new-pro` (having checked the fingerprint with them),
//! which adds them or records their new key in the same commit. A blocked professional's
//! deposit is refused whatever the flag.
//!
//! Nothing is imported unless everything passes: each document is sealed into the vault's
//! `tmp/` while its SHA-256 is checked against the signed terms, without the lock; then, under
//! the lock, trust is decided again on the vault as it stands, duplicates are dropped, and
//! the documents land in one commit whose log entry names the professional as the actor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::catalog::{Root, Snapshot};
use crate::deposit::{self, Incoming, ReceiptTerms, Sender};
use crate::domain::Action;
use crate::error::Error;
use crate::grant::BundleError;
use crate::ids;
use crate::manifest::{Document, Opening, Source};
use crate::ops::Progress;
use crate::ops::import::Status;
use crate::pro::Professional;
use crate::txn::{Notice, Op};
use crate::vault::{KeyOpts, Vault};

/// What the patient asked: the file, and whether an unknown professional (or a changed key)
/// may be accepted.
#[derive(Debug, Clone)]
pub struct Request {
    pub file: PathBuf,
    pub accept_new_pro: bool,
}

/// What `receive` did, by kind.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Received {
    Deposit(DepositReport),
    Receipt(ReceiptReport),
}

impl Received {
    pub fn notices(&self) -> &[Notice] {
        match self {
            Received::Deposit(d) => &d.notices,
            Received::Receipt(r) => &r.notices,
        }
    }
}

/// The professional as the directory now holds them, and what this command changed there.
#[derive(Debug, Clone, Serialize)]
pub struct ProSeen {
    pub handle: String,
    pub name: String,
    pub identifier: Option<String>,
    pub fingerprint: String,
    /// `added` (a new professional) or `key-changed` (their key replaced), when accepted.
    pub directory: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceivedDocument {
    /// Its path in the deposit.
    pub path: String,
    pub status: Status,
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DepositReport {
    pub id: String,
    pub created: jiff::Timestamp,
    pub professional: ProSeen,
    pub note: Option<String>,
    pub documents: Vec<ReceivedDocument>,
    #[serde(skip)]
    pub notices: Vec<Notice>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceiptReport {
    pub id: String,
    pub grant: String,
    pub professional: ProSeen,
    pub opened_at: jiff::Timestamp,
    pub documents: usize,
    /// False when this receipt was already recorded (nothing changed, nothing logged).
    pub recorded: bool,
    #[serde(skip)]
    pub notices: Vec<Notice>,
}

/// Receives `req.file` into the vault at `now`. `progress` follows the documents sealed.
pub fn receive(
    vault: &Vault,
    keys: &KeyOpts,
    req: &Request,
    now: jiff::Timestamp,
    progress: &dyn Progress,
) -> anyhow::Result<Received> {
    if !req.file.is_file() {
        return Err(Error::input(
            format!("{} is not a file", req.file.display()),
            "give the deposit or receipt the professional sent you",
        )
        .into());
    }
    let snap = vault.read(keys)?;
    // A closed record would refuse the commit: say so before decrypting anything.
    snap.root.check_writable()?;
    match deposit::open(&req.file, &snap.keys.identities).map_err(to_error)? {
        Incoming::Deposit(d) => receive_deposit(vault, snap, d, req, now, progress),
        Incoming::Receipt(r) => receive_receipt(vault, snap, r, req, now),
    }
}

/// The error a patient reads for each way a file is refused (exit 1 when it is simply not for
/// this vault, 3 when it is damaged or forged).
fn to_error(e: BundleError) -> anyhow::Error {
    match e {
        BundleError::NotForYou => Error::input(
            "this file is not addressed to your vault's key",
            "it was made with another patient's card; give the professional yours (`carnet card -o FILE`)",
        )
        .into(),
        BundleError::NotAge(m) => Error::input(
            format!("this is not a carnet deposit or receipt (not an age file: {m})"),
            "check the file",
        )
        .into(),
        BundleError::Io(e) => anyhow::Error::from(e),
        BundleError::Damaged(m) => {
            Error::BadDeposit(format!("the file is damaged or was altered: {m}")).into()
        }
        BundleError::TrailingSpaces => Error::BadDeposit(e.to_string()).into(),
        BundleError::BadSignature(m) => {
            Error::BadDeposit(format!("the professional's signature does not hold: {m}")).into()
        }
        e => Error::BadDeposit(e.to_string()).into(),
    }
}

fn check_vault(vault: &Vault, vault_id: &str, what: &str) -> Result<(), Error> {
    if vault_id != vault.config.vault_id {
        return Err(Error::input(
            format!(
                "this {what} is for another vault ({}), not this one ({})",
                ids::short(vault_id),
                ids::short(&vault.config.vault_id)
            ),
            "it was made with another record's card (one key can open several vaults); receive it with --vault DIR of that record; nothing was added",
        ));
    }
    Ok(())
}

/// Where the signer stands in the directory.
enum Trust {
    /// Their key is the one recorded.
    Known(String),
    /// Unknown: added (with `--accept-new-pro`).
    Add(Box<Professional>),
    /// Known by their number or recipient, with another (or no) signing key: replaced (with
    /// `--accept-new-pro`).
    Rekey(String),
}

fn same_key(p: &Professional, key: &str) -> bool {
    p.signing_key
        .as_deref()
        .and_then(|k| crate::sign::decode_public(k).ok())
        .is_some_and(|k| crate::sign::encode_public(&k) == key)
}

/// Decides whether `s` is trusted. `deposit`: a blocked professional is refused (a receipt
/// from one is still recorded: it tells the patient something that happened).
fn trust(
    root: &Root,
    s: &Sender,
    accept: bool,
    deposit: bool,
    now: jiff::Timestamp,
) -> Result<Trust, Error> {
    let blocked = |p: &Professional| {
        Error::input(
            format!("{} is blocked: their deposits are refused", p.handle),
            format!(
                "unblock them first with `carnet pro unblock {}` if you want it; nothing was added",
                p.handle
            ),
        )
    };
    if let Some(p) = root
        .professionals
        .iter()
        .find(|p| same_key(p, &s.signing_key))
    {
        if deposit && p.blocked {
            return Err(blocked(p));
        }
        return Ok(Trust::Known(p.handle.clone()));
    }
    let same_person = root.professionals.iter().find(|p| {
        s.rpps.is_some() && p.rpps == s.rpps
            || s.adeli.is_some() && p.adeli == s.adeli
            || p.recipient == s.recipient
    });
    match same_person {
        Some(p) if deposit && p.blocked => Err(blocked(p)),
        Some(p) if accept => Ok(Trust::Rekey(p.handle.clone())),
        Some(p) => {
            let was = p
                .signing_key
                .as_deref()
                .and_then(|k| crate::sign::decode_public(k).ok())
                .map(|k| crate::keyring::fingerprint(&k));
            match was {
                Some(old) => Err(Error::BadDeposit(format!(
                    "signed by {} with key {}, but your directory has {} for {}: refused",
                    s.describe(),
                    s.fingerprint,
                    old,
                    p.handle
                ))),
                None => Err(Error::input(
                    format!(
                        "your directory has no signing key for {} ({}): this signature cannot be checked",
                        p.handle,
                        s.describe()
                    ),
                    format!(
                        "check the fingerprint {} with them, then run again with --accept-new-pro to record it",
                        s.fingerprint
                    ),
                )),
            }
        }
        None if accept => {
            let base = crate::pro::handle_from_name(&s.name);
            let taken = |h: &str| root.professionals.iter().any(|p| p.handle == h);
            let mut handle = base.clone();
            let mut n = 2;
            while taken(&handle) {
                handle = format!("{base}-{n}");
                n += 1;
            }
            Ok(Trust::Add(Box::new(Professional {
                handle,
                name: s.name.clone(),
                rpps: s.rpps.clone(),
                adeli: s.adeli.clone(),
                profession: s.profession.clone(),
                specialty: s.specialty.clone(),
                recipient: s.recipient.clone(),
                signing_key: Some(s.signing_key.clone()),
                blocked: false,
                added_at: now,
                role: None,
            })))
        }
        None => Err(Error::input(
            format!("{} is not in your directory", s.describe()),
            format!(
                "check their key fingerprint {} with them, then run again with --accept-new-pro to add them; nothing was added",
                s.fingerprint
            ),
        )),
    }
}

/// Applies an accepted trust decision to `root`; returns the handle and what changed.
fn apply(root: &mut Root, t: Trust, s: &Sender) -> (String, Option<&'static str>) {
    match t {
        Trust::Known(h) => (h, None),
        Trust::Add(p) => {
            let h = p.handle.clone();
            root.professionals.push(*p);
            (h, Some("added"))
        }
        Trust::Rekey(h) => {
            if let Some(p) = root.professionals.iter_mut().find(|p| p.handle == h) {
                p.signing_key = Some(s.signing_key.clone());
                p.recipient = s.recipient.clone();
                p.rpps = p.rpps.take().or_else(|| s.rpps.clone());
                p.adeli = p.adeli.take().or_else(|| s.adeli.clone());
            }
            (h, Some("key-changed"))
        }
    }
}

fn seen(handle: String, s: &Sender, directory: Option<&'static str>) -> ProSeen {
    ProSeen {
        handle,
        name: s.name.clone(),
        identifier: s.identifier(),
        fingerprint: s.fingerprint.clone(),
        directory,
    }
}

/// One document sealed into the vault's `tmp/`, its hash checked.
struct Staged {
    tmp: tempfile::TempPath,
    sealed: crate::crypto::Sealed,
}

fn receive_deposit<R: std::io::Read + std::io::Seek + Send>(
    vault: &Vault,
    snap: Snapshot,
    mut d: deposit::Deposit<R>,
    req: &Request,
    now: jiff::Timestamp,
    progress: &dyn Progress,
) -> anyhow::Result<Received> {
    let terms = d.terms.clone();
    check_vault(vault, &terms.vault_id, "deposit")?;
    let s = &terms.professional;
    // Decided first on the vault as read (no work for a refused deposit), again under the lock.
    trust(&snap.root, s, req.accept_new_pro, true, now)?;

    let staging = crate::fsutil::private_tempdir(&vault.tmp_dir(), ".receive-")
        .with_context(|| format!("cannot write in {}", vault.tmp_dir().display()))?;
    progress.start(terms.documents.len() as u64);
    let mut staged = Vec::with_capacity(terms.documents.len());
    for (i, doc) in terms.documents.iter().enumerate() {
        let tmp = crate::fsutil::private_tempfile(staging.path())
            .with_context(|| format!("cannot write in {}", staging.path().display()))?;
        let bytes = progress.file(Path::new(&doc.path), doc.size);
        let reader = d.reader(i).map_err(to_error)?;
        // A category hidden from guardians: encrypted for the sealed key from the start.
        let recipients = crate::ops::seal::recipients_for(vault, &snap, &doc.category)?;
        let out = std::io::BufWriter::with_capacity(256 * 1024, tmp);
        let (sealed, out) =
            crate::crypto::seal(reader, &recipients, out, &|n| bytes(n)).map_err(|e| {
                match e.kind() {
                    // The zip entry (its CRC-32, its length) or the age stream around it.
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                        anyhow::Error::from(Error::BadDeposit(format!(
                            "the file is damaged or was altered: {}: {e}",
                            doc.path
                        )))
                    }
                    _ => anyhow::Error::from(e).context("cannot store the document"),
                }
            })?;
        drop(bytes);
        progress.file_done();
        if sealed.size != doc.size || hex::encode(sealed.sha256) != doc.sha256 {
            return Err(Error::BadDeposit(format!(
                "the file is damaged or was altered: {} does not match the SHA-256 in the signed terms",
                doc.path
            ))
            .into());
        }
        let tmp = out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write the encrypted file")?
            .into_temp_path();
        staged.push(Staged { tmp, sealed });
    }

    let txn = vault.begin(snap.keys, now)?;
    let mut root = txn.root().clone();
    let decided = trust(&root, s, req.accept_new_pro, true, now)?;
    let (handle, directory) = apply(&mut root, decided, s);
    let source = Source {
        kind: "deposit".into(),
        name: s.name.clone(),
        identifier: s.identifier(),
        fingerprint: s.fingerprint.clone(),
        deposit: terms.id.clone(),
    };
    let mut op = Op::new(Action::Receive).actor(s.actor());
    let mut outcomes = Vec::new();
    let mut batch: HashMap<String, usize> = HashMap::new();
    let mut duplicates = Vec::new();
    for (doc, st) in terms.documents.iter().zip(staged) {
        let sha = hex::encode(st.sealed.sha256);
        let existing = match batch.get(&sha) {
            Some(&i) => Some((op.put[i].id.to_string(), op.put[i].title.clone())),
            None => txn
                .snap
                .find_by_sha256(vault, &sha)?
                .map(|e| (e.id.to_string(), e.title)),
        };
        if let Some((id, title)) = existing {
            duplicates.push(id.clone());
            outcomes.push(ReceivedDocument {
                path: doc.path.clone(),
                status: Status::Duplicate,
                id,
                title,
            });
            continue;
        }
        let object = ids::random_id();
        let name = doc.path.rsplit('/').next().map(str::to_string);
        let document = Document {
            id: ids::DocId::random(),
            title: doc.title.clone(),
            category: doc.category.clone(),
            date: doc.date,
            author: Some(s.describe()),
            tags: Vec::new(),
            // Detected here from the content, as `add` does, rather than taken on trust.
            media_type: crate::media::detect(&st.sealed.head, Path::new(&doc.path)),
            size: st.sealed.size,
            sha256: sha.clone(),
            crc32: Some(st.sealed.crc32),
            added_at: now,
            original_name: name,
            object: object.clone(),
            object_size: st.sealed.cipher_size,
            object_blake3: hex::encode(st.sealed.cipher_blake3),
            version: 1,
            revision: None,
            history: Vec::new(),
            visibility: Vec::new(),
            source: Some(source.clone()),
        };
        outcomes.push(ReceivedDocument {
            path: doc.path.clone(),
            status: Status::Added,
            id: document.id.to_string(),
            title: document.title.clone(),
        });
        op.documents.push(document.id.to_string());
        op.add.push((st.tmp, object));
        batch.insert(sha, op.put.len());
        op.put.push(document);
    }
    let added = op.put.len();
    op = op
        .detail("deposit", terms.id.clone())
        .detail("professional", handle.clone())
        .detail("name", s.name.clone())
        .detail("fingerprint", s.fingerprint.clone())
        .detail("created", terms.created.to_string())
        .detail("count", added)
        .detail("duplicates", duplicates.len());
    if let Some(i) = s.identifier() {
        op = op.detail("identifier", i);
    }
    if let Some(n) = &terms.note {
        op = op.detail("note", n.clone());
    }
    if let Some(what) = directory {
        op = op.detail("directory", what);
        op.root = Some(root);
    }
    crate::ops::seal::settle(vault, &txn.snap, &mut op)?;
    let notices = txn.commit(op)?.notices;
    Ok(Received::Deposit(DepositReport {
        id: terms.id.clone(),
        created: terms.created,
        professional: seen(handle, s, directory),
        note: terms.note.clone(),
        documents: outcomes,
        notices,
    }))
}

fn receive_receipt(
    vault: &Vault,
    snap: Snapshot,
    r: ReceiptTerms,
    req: &Request,
    now: jiff::Timestamp,
) -> anyhow::Result<Received> {
    check_vault(vault, &r.vault_id, "receipt")?;
    let s = &r.professional;
    trust(&snap.root, s, req.accept_new_pro, false, now)?;
    let txn = vault.begin(snap.keys, now)?;
    let mut root = txn.root().clone();
    let decided = trust(&root, s, req.accept_new_pro, false, now)?;
    let (handle, directory) = apply(&mut root, decided, s);
    let Some(g) = root.grants.iter_mut().find(|g| g.id == r.grant) else {
        return Err(Error::BadDeposit(format!(
            "this receipt names grant {}, which this vault never issued",
            ids::short(&r.grant)
        ))
        .into());
    };
    // An emergency bundle or an access code is made to whoever holds the passcode.
    let to_anyone =
        g.to.iter()
            .any(|t| t == crate::grant::KIND_EMERGENCY || t == crate::grant::KIND_PASSCODE);
    if !to_anyone && !g.to.contains(&handle) {
        return Err(Error::BadDeposit(format!(
            "{} sent a receipt for grant {}, which was not made to them",
            s.describe(),
            ids::short(&g.id)
        ))
        .into());
    }
    // An emergency bundle also holds the profile's summaries, which are not vault documents.
    if let Some(d) = r
        .documents
        .iter()
        .find(|d| !g.documents.contains(d) && !to_anyone)
    {
        return Err(Error::BadDeposit(format!(
            "this receipt names document {}, which grant {} did not share",
            ids::short(d),
            ids::short(&g.id)
        ))
        .into());
    }
    let report = |recorded: bool, notices: Vec<Notice>| {
        Received::Receipt(ReceiptReport {
            id: r.id.clone(),
            grant: r.grant.clone(),
            professional: seen(handle.clone(), s, directory),
            opened_at: r.opened_at,
            documents: r.documents.len(),
            recorded,
            notices,
        })
    };
    if g.opened.iter().any(|o| o.receipt == r.id) {
        // The same receipt again (sent twice, or replayed): recorded once.
        return Ok(report(false, Vec::new()));
    }
    g.opened.push(Opening {
        at: r.opened_at,
        by: handle.clone(),
        receipt: r.id.clone(),
    });
    let mut op = Op::new(Action::Opened)
        .actor(s.actor())
        .documents(r.documents.clone())
        .detail("grant", r.grant.clone())
        .detail("receipt", r.id.clone())
        .detail("opened_at", r.opened_at.to_string())
        .detail("professional", handle.clone())
        .detail("name", s.name.clone())
        .detail("fingerprint", s.fingerprint.clone());
    if let Some(i) = s.identifier() {
        op = op.detail("identifier", i);
    }
    if let Some(what) = directory {
        op = op.detail("directory", what);
    }
    op.root = Some(root);
    let notices = txn.commit(op)?.notices;
    Ok(report(true, notices))
}
