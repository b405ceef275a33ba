//! Closing and reopening the record (`carnet close`, `carnet reopen`; CSP R1111-36: the patient
//! may close the record, then have it deleted). A closed record is read-only: the state lives in
//! the authenticated root (`closed`), and `Txn::commit` refuses every change while it is set,
//! except `reopen`. Both are logged.

use serde::Serialize;

use crate::catalog::Closure;
use crate::domain::Action;
use crate::keys::Unlocked;
use crate::txn::{Notice, Op};
use crate::vault::Vault;

/// The record's state after `close` or `reopen`. `changed` is false when it already was in
/// that state (nothing logged); `closed_at` and `reason` describe the closure made, found, or
/// (for `reopen`) just ended.
#[derive(Debug, Clone, Serialize)]
pub struct State {
    pub closed: bool,
    pub closed_at: Option<jiff::Timestamp>,
    pub reason: Option<String>,
    pub changed: bool,
    #[serde(skip)]
    pub notices: Vec<Notice>,
}

/// Closes the record at `now`, keeping `reason` (encrypted, in the root and the log).
pub fn close(
    vault: &Vault,
    keys: Unlocked,
    reason: Option<String>,
    now: jiff::Timestamp,
) -> anyhow::Result<State> {
    let txn = vault.begin(keys, now)?;
    let mut root = txn.root().clone();
    if let Some(c) = &root.closed {
        return Ok(State {
            closed: true,
            closed_at: Some(c.at),
            reason: c.reason.clone(),
            changed: false,
            notices: Vec::new(),
        });
    }
    root.closed = Some(Closure {
        at: now,
        reason: reason.clone(),
    });
    let mut op = Op::new(Action::Close);
    if let Some(r) = &reason {
        op = op.detail("reason", r.clone());
    }
    op.root = Some(root);
    let notices = txn.commit(op)?.notices;
    Ok(State {
        closed: true,
        closed_at: Some(now),
        reason,
        changed: true,
        notices,
    })
}

/// Reopens a closed record at `now`; the log keeps when it had been closed.
pub fn reopen(vault: &Vault, keys: Unlocked, now: jiff::Timestamp) -> anyhow::Result<State> {
    let txn = vault.begin(keys, now)?;
    let mut root = txn.root().clone();
    let Some(was) = root.closed.take() else {
        return Ok(State {
            closed: false,
            closed_at: None,
            reason: None,
            changed: false,
            notices: Vec::new(),
        });
    };
    let mut op = Op::new(Action::Reopen).detail("closed_at", was.at.to_string());
    op.root = Some(root);
    let notices = txn.commit(op)?.notices;
    Ok(State {
        closed: false,
        closed_at: Some(was.at),
        reason: was.reason,
        changed: true,
        notices,
    })
}
