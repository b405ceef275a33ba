//! `carnet verify` with the key: check the whole vault under the shared lock (a concurrent
//! `add` or `rm` must not look like damage), then record a sound result in the log.

use crate::domain::Action;
use crate::fsutil::Lock;
use crate::keys::Unlocked;
use crate::txn::{Notice, Op};
use crate::vault::Vault;
use crate::verify::{self, Report};

/// Checks every file of the vault; `deep` decrypts every document too.
pub fn check(
    vault: &Vault,
    keys: &Unlocked,
    deep: bool,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Report> {
    let _lock = Lock::shared(&vault.path(crate::layout::LOCK))?;
    Ok(verify::verify(vault, keys, deep, progress))
}

/// Appends a `verify` entry for a sound report. Only a sound vault gets one: appending to a
/// broken log would hide where it broke.
pub fn record(
    vault: &Vault,
    keys: Unlocked,
    report: &Report,
    now: jiff::Timestamp,
) -> anyhow::Result<Vec<Notice>> {
    debug_assert!(report.ok, "only a sound vault's check is recorded");
    let op = Op::new(Action::Verify)
        .detail("deep", report.deep)
        .detail("documents", report.documents)
        .detail("log_entries", report.log_entries);
    Ok(vault.begin(keys, now)?.commit(op)?.notices)
}
