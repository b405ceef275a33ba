//! carnet's integration tests, in one crate: each former `tests/*.rs` file is a module here, so
//! the suite links one test binary instead of eighteen, and every module shares `util`.

// The product forbids unsafe code; the tests allow it in one place, the end-of-run summary of
// skipped interoperability checks (`util::tools`), which needs atexit(3).
#![deny(unsafe_code)]

mod util;

mod age_interop;
mod backup;
mod bad_input;
mod cli_conventions;
mod completions;
mod concurrency;
mod confidentiality;
mod controls;
mod corrections;
mod damaged_vault;
mod demo;
mod deposits;
mod diagnostics;
mod documents;
mod emergency;
mod examples;
mod folders;
mod format2;
mod grant_terms;
mod grants;
mod hardening;
mod help;
mod hidden;
mod hooks;
mod identities;
mod integrity;
mod keys;
mod lookups;
mod man_pages;
mod mirror;
mod profile;
mod readers;
mod reference_tools;
mod rekey;
mod roundtrip;
mod sealed;
mod unlock;
mod zips;
