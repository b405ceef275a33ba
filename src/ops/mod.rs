//! Use cases: one module per thing a user does with the vault, each a function over the vault
//! that takes a resolved request and `now`, and returns a report (data, with notices) or a
//! typed error. They print nothing; `src/cli/` turns requests into calls and reports into text.

pub mod import;
pub mod share;
