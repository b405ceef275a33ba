//! The emergency profile (`carnet profile`): a new version sealed and named by the root on
//! import or edit (the earlier ones kept), and reading a version back. Every command is logged
//! (`profile`, with what was done and the version): the profile is health data.

use crate::domain::Action;
use crate::error::Error;
use crate::profile::{self, Profile, Source, VersionRef};
use crate::txn::{Notice, Op};
use crate::vault::{KeyOpts, Vault};

/// What `set` did.
pub struct Set {
    /// The current version after the command.
    pub version: u32,
    /// False when the profile given is the current one: no version is added, nothing logged.
    pub changed: bool,
    pub notices: Vec<Notice>,
}

/// Makes `p` the current profile, as a new version (the earlier ones stay).
pub fn set(
    vault: &Vault,
    keys: &KeyOpts,
    p: &Profile,
    source: Source,
    now: jiff::Timestamp,
) -> anyhow::Result<Set> {
    p.check().map_err(|m| Error::input(m, "fix the profile"))?;
    let snap = vault.read(keys)?;
    snap.root.check_writable()?;
    let txn = vault.begin(snap.keys, now)?;
    let current = match txn.root().profile.last() {
        Some(r) => Some(profile::read(vault, &txn.snap.keys, r)?),
        None => None,
    };
    if let Some(c) = &current
        && c.profile == *p
    {
        return Ok(Set {
            version: c.version,
            changed: false,
            notices: Vec::new(),
        });
    }
    let version = txn.root().profile.len() as u32 + 1;
    let recipients = vault.recipients()?;
    let sealed = profile::seal(vault, &recipients, p, version, source, now)?;
    let mut root = txn.root().clone();
    root.profile.push(sealed.reference.clone());
    let mut op = Op::new(Action::Profile)
        .detail("op", source.as_str())
        .detail("version", version);
    op.add.push((sealed.tmp, sealed.reference.object.clone()));
    op.root = Some(root);
    let done = txn.commit(op)?;
    Ok(Set {
        version,
        changed: true,
        notices: done.notices,
    })
}

/// Why a profile is read, as the log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Show,
    Export,
}

impl Read {
    fn as_str(self) -> &'static str {
        match self {
            Read::Show => "show",
            Read::Export => "export",
        }
    }
}

/// A version read back, with the list of every version.
pub struct Shown {
    pub profile: Profile,
    /// The patient's name, from the root: the summary starts with it.
    pub patient_name: Option<String>,
    pub version: u32,
    pub at: jiff::Timestamp,
    pub source: Source,
    pub versions: Vec<VersionRef>,
    pub notices: Vec<Notice>,
}

/// Reads the current profile (or version `version`), logged; an error when there is none.
pub fn get(
    vault: &Vault,
    keys: &KeyOpts,
    version: Option<u32>,
    why: Read,
    now: jiff::Timestamp,
) -> anyhow::Result<Shown> {
    let snap = vault.read(keys)?;
    let versions = snap.root.profile.clone();
    let Some(last) = versions.last() else {
        return Err(no_profile().into());
    };
    let r = match version {
        None => last,
        Some(n) => versions.iter().find(|v| v.version == n).ok_or_else(|| {
            Error::input(
                format!("the emergency profile has no version {n}"),
                format!(
                    "its versions run from 1 to {} (`carnet profile history`)",
                    last.version
                ),
            )
        })?,
    };
    let sealed = profile::read(vault, &snap.keys, r)?;
    let patient_name = snap.root.patient.name.clone();
    let done = vault.begin(snap.keys, now)?.commit(
        Op::new(Action::Profile)
            .detail("op", why.as_str())
            .detail("version", sealed.version),
    )?;
    Ok(Shown {
        profile: sealed.profile,
        patient_name,
        version: sealed.version,
        at: sealed.at,
        source: sealed.source,
        versions,
        notices: done.notices,
    })
}

/// The list of versions (root metadata only: nothing decrypted, nothing logged, like `ls`).
pub fn history(vault: &Vault, keys: &KeyOpts) -> anyhow::Result<Vec<VersionRef>> {
    Ok(vault.read(keys)?.root.profile)
}

/// The current profile and its version for other operations (emergency bundle, FHIR export),
/// which log their own access; an empty profile when none was ever written.
pub fn current_in(
    vault: &Vault,
    snap: &crate::catalog::Snapshot,
) -> Result<(Profile, Option<VersionRef>), Error> {
    match snap.root.profile.last() {
        Some(r) => Ok((
            profile::read(vault, &snap.keys, r)?.profile,
            Some(r.clone()),
        )),
        None => Ok((Profile::default(), None)),
    }
}

pub fn no_profile() -> Error {
    Error::input(
        "there is no emergency profile yet",
        "write one with `carnet profile edit`, or import examples/profile.toml with `carnet profile import FILE`",
    )
}
