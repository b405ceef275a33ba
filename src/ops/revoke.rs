//! Revoking a grant (`carnet revoke`): the revocation is recorded in the root and the log. A
//! copy already sent cannot be recalled; the report says so by what it holds (who had it).

use serde::Serialize;

use crate::domain::Action;
use crate::error::Error;
use crate::ids;
use crate::keys::Unlocked;
use crate::txn::{Notice, Op};
use crate::vault::Vault;

/// A grant revoked now, or found already revoked (`changed` false, `revoked_at` the earlier
/// time; nothing logged).
#[derive(Debug, Clone, Serialize)]
pub struct Revoked {
    pub id: String,
    pub to: Vec<String>,
    pub revoked_at: jiff::Timestamp,
    pub changed: bool,
    #[serde(skip)]
    pub notices: Vec<Notice>,
}

/// Revokes the grant whose id starts with `prefix`, at `now`.
pub fn revoke(
    vault: &Vault,
    keys: Unlocked,
    prefix: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<Revoked> {
    let txn = vault.begin(keys, now)?;
    let mut root = txn.root().clone();
    let id = ids::resolve(prefix, root.grants.iter().map(|g| g.id.as_str()))
        .map_err(|e| match e {
            Error::UnknownId(x) => Error::input(
                format!("no grant with id {x}"),
                "list your grants with `carnet grants`",
            ),
            Error::Input { .. } => Error::input(
                format!("{prefix:?} is not a grant id"),
                "grant ids are hexadecimal; list them with `carnet grants`",
            ),
            e => e,
        })?
        .to_string();
    let Some(g) = root.grants.iter_mut().find(|g| g.id == id) else {
        return Err(Error::UnknownId(prefix.to_string()).into());
    };
    let to = g.to.clone();
    if let Some(t) = g.revoked_at {
        return Ok(Revoked {
            id,
            to,
            revoked_at: t,
            changed: false,
            notices: Vec::new(),
        });
    }
    g.revoked_at = Some(now);
    let mut op = Op::new(Action::Revoke)
        .documents(g.documents.clone())
        .detail("grant", id.clone())
        .detail("to", to.clone());
    op.root = Some(root);
    let notices = txn.commit(op)?.notices;
    Ok(Revoked {
        id,
        to,
        revoked_at: now,
        changed: true,
        notices,
    })
}
