//! The patient's directory of professionals (`carnet pro`): adding one from a contact card or
//! by hand, listing, removing, blocking and unblocking. The directory lives in the encrypted
//! root; every change is one logged commit. Reports are data; the CLI prints them.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::catalog::Root;
use crate::domain::Action;
use crate::error::Error;
use crate::keys::Unlocked;
use crate::pro::{self, Card, Professional, RppsCheck};
use crate::txn::{Notice, Op};
use crate::vault::Vault;

/// A contact card is a few lines of TOML; this bounds a hostile one.
const MAX_CARD: u64 = 64 << 10;

/// Where a new professional comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A contact card made by `carnet keygen`.
    Card(PathBuf),
    /// Typed by hand: a name and an age recipient or SSH public key.
    Manual { name: String, key: String },
}

/// `carnet pro add`, as typed: identifiers on the command line complete the card's.
#[derive(Debug, Clone)]
pub struct AddRequest {
    pub source: Source,
    pub rpps: Option<String>,
    pub adeli: Option<String>,
    pub profession: Option<String>,
    pub handle: Option<String>,
    /// The patient's médecin traitant (may receive documents hidden from professionals).
    pub medecin_traitant: bool,
}

/// A professional checked before the vault is opened: everything typed or read from the card
/// is valid; what depends on the directory (duplicates, a free handle) is checked by `add`.
#[derive(Debug, Clone)]
pub struct Checked {
    name: String,
    recipient: String,
    rpps: Option<String>,
    adeli: Option<String>,
    profession: Option<String>,
    specialty: Option<String>,
    signing_key: Option<String>,
    handle: Option<String>,
    medecin_traitant: bool,
    /// Warnings about what was typed (an RPPS number failing the Luhn check).
    pub notices: Vec<Notice>,
}

/// A professional added, and what the user should hear about.
pub struct Added {
    pub professional: Professional,
    pub notices: Vec<Notice>,
}

/// What `pro rm`, `pro block` and `pro unblock` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Rm,
    Block,
    Unblock,
}

impl Change {
    fn action(self) -> Action {
        match self {
            Change::Rm => Action::ProRm,
            Change::Block => Action::ProBlock,
            Change::Unblock => Action::ProUnblock,
        }
    }
}

/// The outcome of `pro rm/block/unblock`: `changed` is false when there was nothing to do
/// (already blocked, not blocked); nothing is logged then.
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    pub handle: String,
    pub action: Change,
    pub changed: bool,
    #[serde(skip)]
    pub notices: Vec<Notice>,
}

/// A directory entry as listed (`pro ls --json`): the stored fields and the fingerprint of
/// the professional's signing key, which is what they read out to be checked.
#[derive(Debug, Clone, Serialize)]
pub struct Listed<'a> {
    #[serde(flatten)]
    pub professional: &'a Professional,
    pub fingerprint: Option<String>,
}

pub fn read_card(path: &Path) -> anyhow::Result<Card> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    f.take(MAX_CARD)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        Error::input(
            format!(
                "{} is not a carnet contact card: {}",
                path.display(),
                e.message()
            ),
            "ask the professional for the .card.toml file made by `carnet keygen`",
        )
        .into()
    })
}

/// Reads the card (if any) and checks every field, without the vault: a mistake is reported
/// before a passphrase is asked for.
pub fn check(req: AddRequest) -> anyhow::Result<Checked> {
    let card = match &req.source {
        Source::Card(path) => read_card(path)?,
        Source::Manual { name, key } => Card {
            carnet_card: 1,
            name: name.clone(),
            rpps: req.rpps.clone(),
            adeli: req.adeli.clone(),
            profession: req.profession.clone(),
            specialty: None,
            recipient: key.clone(),
            signing_key: None,
            fingerprint: None,
        },
    };
    let name = card.name.trim().to_string();
    if name.is_empty() {
        return Err(Error::input("the professional's name is empty", "give --name").into());
    }
    let recipient = pro::check_recipient(&card.recipient)?;
    let mut notices = Vec::new();
    let rpps = match card.rpps.as_deref().or(req.rpps.as_deref()) {
        Some(typed) => {
            let (r, luhn) = pro::check_rpps(typed)?;
            if luhn == RppsCheck::LuhnMismatch {
                notices.push(Notice::Warning(format!(
                    "RPPS {r} fails the Luhn check (official test numbers do); check it"
                )));
            }
            Some(r)
        }
        None => None,
    };
    let adeli = card
        .adeli
        .as_deref()
        .or(req.adeli.as_deref())
        .map(pro::check_adeli)
        .transpose()?;
    if let Some(k) = &card.signing_key {
        crate::sign::decode_public(k).map_err(|e| {
            Error::input(
                format!("the card's signing key is invalid: {e}"),
                "ask for a new card",
            )
        })?;
    }
    let handle = match &req.handle {
        Some(h) => {
            let h = h.trim().to_lowercase();
            if h.is_empty() || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(Error::input(
                    format!("invalid handle {h:?}"),
                    "use letters, digits and dashes",
                )
                .into());
            }
            Some(h)
        }
        None => None,
    };
    Ok(Checked {
        name,
        recipient,
        rpps,
        adeli,
        profession: card.profession.or(req.profession),
        specialty: card.specialty,
        signing_key: card.signing_key,
        handle,
        medecin_traitant: req.medecin_traitant,
        notices,
    })
}

/// Adds a checked professional to the directory at `now`, as one logged commit. Refuses a key,
/// RPPS or ADELI number already in the directory, and a handle already taken; without a chosen
/// handle, one is made from the name (`jeanne-martin`, then `jeanne-martin-2`).
pub fn add(
    vault: &Vault,
    keys: Unlocked,
    new: Checked,
    now: jiff::Timestamp,
) -> anyhow::Result<Added> {
    let txn = vault.begin(keys, now)?;
    let mut root = txn.root().clone();
    if let Some(p) = root
        .professionals
        .iter()
        .find(|p| p.recipient == new.recipient)
    {
        return Err(Error::input(
            format!("this key is already in your directory as {}", p.handle),
            "see `carnet pro ls`",
        )
        .into());
    }
    for ident in [&new.rpps, &new.adeli].into_iter().flatten() {
        if let Some(p) = root.professionals.iter().find(|p| p.is(ident)) {
            return Err(Error::input(
                format!("{ident} is already in your directory as {}", p.handle),
                "remove the old entry first with `carnet pro rm`",
            )
            .into());
        }
    }
    let taken = |h: &str| root.professionals.iter().any(|p| p.handle == h);
    let handle = match new.handle {
        Some(h) if taken(&h) => {
            return Err(Error::input(
                format!("the handle {h} is taken"),
                "choose another with --handle",
            )
            .into());
        }
        Some(h) => h,
        None => {
            let base = pro::handle_from_name(&new.name);
            let mut h = base.clone();
            let mut n = 2;
            while taken(&h) {
                h = format!("{base}-{n}");
                n += 1;
            }
            h
        }
    };
    let p = Professional {
        handle: handle.clone(),
        name: new.name,
        rpps: new.rpps,
        adeli: new.adeli,
        profession: new.profession,
        specialty: new.specialty,
        recipient: new.recipient,
        signing_key: new.signing_key,
        blocked: false,
        added_at: now,
        role: new
            .medecin_traitant
            .then(|| crate::pro::MEDECIN_TRAITANT.to_string()),
    };
    root.professionals.push(p.clone());
    let mut op = Op::new(Action::ProAdd)
        .detail("handle", handle)
        .detail("name", p.name.clone());
    if let Some(id) = p.identifier() {
        op = op.detail("identifier", id);
    }
    op.root = Some(root);
    let notices = txn.commit(op)?.notices;
    Ok(Added {
        professional: p,
        notices,
    })
}

/// The directory as listed, in the order professionals were added.
pub fn list(root: &Root) -> Vec<Listed<'_>> {
    root.professionals
        .iter()
        .map(|p| Listed {
            professional: p,
            fingerprint: p
                .signing_key
                .as_deref()
                .and_then(|k| crate::sign::decode_public(k).ok())
                .map(|k| crate::keyring::fingerprint(&k)),
        })
        .collect()
}

/// Removes, blocks or unblocks the professional `who` names (handle, RPPS or ADELI number, or
/// a unique handle prefix). Blocking someone blocked, or unblocking someone who is not, changes
/// and logs nothing.
pub fn change(
    vault: &Vault,
    keys: Unlocked,
    who: &str,
    change: Change,
    now: jiff::Timestamp,
) -> anyhow::Result<Changed> {
    let txn = vault.begin(keys, now)?;
    let mut root = txn.root().clone();
    let handle = root.professional(who)?.handle.clone();
    let idx = root
        .professionals
        .iter()
        .position(|p| p.handle == handle)
        .ok_or_else(|| Error::input(format!("no professional {who:?}"), "see `carnet pro ls`"))?;
    let unchanged = |handle: String| Changed {
        handle,
        action: change,
        changed: false,
        notices: Vec::new(),
    };
    match change {
        Change::Rm => {
            root.professionals.remove(idx);
        }
        Change::Block if root.professionals[idx].blocked => return Ok(unchanged(handle)),
        Change::Unblock if !root.professionals[idx].blocked => return Ok(unchanged(handle)),
        Change::Block => root.professionals[idx].blocked = true,
        Change::Unblock => root.professionals[idx].blocked = false,
    }
    let mut op = Op::new(change.action()).detail("handle", handle.clone());
    op.root = Some(root);
    let notices = txn.commit(op)?.notices;
    Ok(Changed {
        handle,
        action: change,
        changed: true,
        notices,
    })
}
