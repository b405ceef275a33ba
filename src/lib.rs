//! carnet: a patient-held medical record kept as an age-encrypted vault.
//!
//! The binary in `main.rs` is a thin shell over these modules; every command lives in
//! `commands`, and the vault format is specified in `FORMAT.md`.
#![forbid(unsafe_code)]

pub mod armor;
pub mod card;
pub mod catalog;
pub mod category;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod dates;
pub mod deposit;
pub mod domain;
pub mod emergency_card;
pub mod error;
pub mod events;
pub mod fsutil;
pub mod grant;
pub mod ids;
pub mod index;
pub mod ips;
pub mod keyring;
pub mod keys;
pub mod layout;
pub mod log;
pub mod manifest;
pub mod media;
pub mod naming;
pub mod nir;
pub mod ops;
pub mod passcode;
pub mod pro;
pub mod profile;
pub mod rekey;
pub mod session;
pub mod sign;
pub mod slots;
pub mod text;
pub mod txn;
pub mod vault;
pub mod verify;
pub mod zipsafe;

/// The version of the vault format this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 2;
