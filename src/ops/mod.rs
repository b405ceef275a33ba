//! Use cases: one module per thing a user does with the vault, each a function over the vault
//! that takes a resolved request and `now`, and returns a report (data, with notices) or a
//! typed error. They print nothing; `src/cli/` turns requests into calls and reports into text.

pub mod audit;
pub mod backup;
pub mod card;
pub mod check;
pub mod closure;
pub mod deposit;
pub mod destroy;
pub mod emergency;
pub mod export;
pub mod fhir;
pub mod import;
pub mod keys;
pub mod mirror;
pub mod open;
pub mod pro;
pub mod profile;
pub mod receipt;
pub mod receive;
pub mod rekey;
pub mod remove;
pub mod restore;
pub mod revise;
pub mod revoke;
pub mod seal;
pub mod share;
pub mod unlock;
pub mod view;
pub mod visibility;

use std::path::Path;

/// Where a use case that handles files one by one reports its progress (the CLI draws bars;
/// scripts get nothing).
pub trait Progress: Sync {
    /// The work is `files` files.
    fn start(&self, _files: u64) {}
    /// A file starts; the returned function is told how many of its bytes were done so far.
    /// Dropping it ends that file's progress.
    fn file<'a>(&'a self, path: &Path, size: u64) -> Box<dyn Fn(u64) + 'a>;
    /// A file is done.
    fn file_done(&self);
}

/// No progress to show (a note typed by hand is never long work).
pub struct Silent;

impl Progress for Silent {
    fn file<'a>(&'a self, _path: &Path, _size: u64) -> Box<dyn Fn(u64) + 'a> {
        Box::new(|_| {})
    }
    fn file_done(&self) {}
}
