//! Typed domain values: what a log entry records (its action and actor) and a grant's status.
//!
//! On disk they keep the strings format 1 wrote (`"view"`, `"patient"`, `"not-yet-valid"`). A
//! string this build does not know (written by a newer carnet) is kept as it is, never refused:
//! an old carnet must still list and verify a log that a newer one appended to.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements `as_str`/`parse` over a table of (variant, string), plus Display and serde as
/// that string, with `Other` holding anything else. Variants under `unlisted` are left out of
/// `NAMES`, which the CLI offers as choices (completions, hook events, `log --action`).
macro_rules! string_enum {
    (
        $name:ident { $($variant:ident => $text:literal),* $(,)? }
        $(unlisted { $($uvariant:ident => $utext:literal),* $(,)? })?
    ) => {
        impl $name {
            /// Every value this build knows, as stored, but the unlisted ones.
            #[allow(dead_code)]
            pub const NAMES: &'static [&'static str] = &[$($text),*];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $($($name::$uvariant => $utext,)*)?
                    $name::Other(s) => s,
                }
            }

            pub fn parse(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)*
                    $($($utext => $name::$uvariant,)*)?
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name::parse(&String::deserialize(d)?))
            }
        }
    };
}

/// What a log entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Init,
    Add,
    /// `show` (metadata) and `cat` (content).
    View,
    Export,
    Rm,
    ProAdd,
    ProRm,
    ProBlock,
    ProUnblock,
    Grant,
    Revoke,
    Backup,
    Restore,
    Verify,
    /// A command interrupted before its manifest, rolled back.
    Interrupted,
    /// A format-1 vault rewritten as format 2.
    Upgrade,
    /// A patient's note.
    Note,
    /// Metadata corrected (a new version).
    Edit,
    /// Content corrected (a new version).
    Replace,
    Hide,
    Unhide,
    /// The record made read-only (`carnet close`), and writable again (`carnet reopen`).
    Close,
    Reopen,
    /// A key slot added (`carnet key add`).
    KeyAdd,
    /// The vault passphrase changed (`carnet passphrase`).
    Passphrase,
    /// A key removed, and the vault re-encrypted for a new identity (`carnet key rm`).
    KeyRm,
    /// The vault re-encrypted for a new identity, no key removed (`carnet rekey`).
    Rekey,
    /// A professional's deposit added (`carnet receive`); the actor is the professional.
    Receive,
    /// A professional's receipt: they opened a grant (the actor is the professional).
    Opened,
    /// The emergency profile imported, edited, shown or exported (details `op`, `version`).
    Profile,
    /// An emergency bundle made, or the patient's objection recorded or lifted.
    Emergency,
    /// What a reader without the sealed key knows of a sealed entry: only that it is there.
    /// Never written in an entry; not something to list, filter on or hook.
    Sealed,
    Other(String),
}

string_enum!(Action {
    Init => "init",
    Add => "add",
    View => "view",
    Export => "export",
    Rm => "rm",
    ProAdd => "pro-add",
    ProRm => "pro-rm",
    ProBlock => "pro-block",
    ProUnblock => "pro-unblock",
    Grant => "grant",
    Revoke => "revoke",
    Backup => "backup",
    Restore => "restore",
    Verify => "verify",
    Interrupted => "interrupted",
    Upgrade => "upgrade",
    Note => "note",
    Edit => "edit",
    Replace => "replace",
    Hide => "hide",
    Unhide => "unhide",
    Close => "close",
    Reopen => "reopen",
    KeyAdd => "key-add",
    Passphrase => "passphrase",
    KeyRm => "key-rm",
    Rekey => "rekey",
    Receive => "receive",
    Opened => "opened",
    Profile => "profile",
    Emergency => "emergency",
} unlisted {
    Sealed => "sealed",
});

/// Who acted. Only the patient exists today; the others are the roles the next features bring
/// (a guardian's or recovery key, a professional's deposit, emergency access), spelled as they
/// will be stored: `guardian:NAME`, `recovery`, `pro:RPPS-or-ADELI`, `emergency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Patient,
    Guardian(String),
    Recovery,
    Professional(String),
    Emergency,
    /// Who acted in a sealed entry this key cannot open: not known.
    Sealed,
    Other(String),
}

impl Actor {
    pub fn as_string(&self) -> String {
        match self {
            Actor::Patient => "patient".into(),
            Actor::Guardian(n) => format!("guardian:{n}"),
            Actor::Recovery => "recovery".into(),
            Actor::Professional(id) => format!("pro:{id}"),
            Actor::Emergency => "emergency".into(),
            Actor::Sealed => "sealed".into(),
            Actor::Other(s) => s.clone(),
        }
    }

    pub fn parse(s: &str) -> Actor {
        match s.split_once(':') {
            Some(("guardian", n)) if !n.is_empty() => Actor::Guardian(n.to_string()),
            Some(("pro", id)) if !id.is_empty() => Actor::Professional(id.to_string()),
            _ => match s {
                "patient" => Actor::Patient,
                "recovery" => Actor::Recovery,
                "emergency" => Actor::Emergency,
                "sealed" => Actor::Sealed,
                other => Actor::Other(other.to_string()),
            },
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Actor::parse(&String::deserialize(d)?))
    }
}

/// Who must not see a document: the DMP's visibility codes (ANS), stored as they are spelled
/// there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Visibility {
    /// `MASQUE_PS`: hidden from professionals (the médecin traitant excepted, by the patient's
    /// choice at each grant).
    HiddenFromPros,
    /// `INVISIBLE_REPRESENTANTS_LEGAUX`: hidden from legal representatives (a minor's care under
    /// secret, CSP L1111-5).
    HiddenFromGuardians,
    Other(String),
}

string_enum!(Visibility {
    HiddenFromPros => "MASQUE_PS",
    HiddenFromGuardians => "INVISIBLE_REPRESENTANTS_LEGAUX",
});

/// Where a grant stands at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantStatus {
    Active,
    Expired,
    Revoked,
    NotYetValid,
    Other(String),
}

string_enum!(GrantStatus {
    Active => "active",
    Expired => "expired",
    Revoked => "revoked",
    NotYetValid => "not-yet-valid",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_unknown_ones_are_kept() {
        for a in [
            "view",
            "pro-add",
            "interrupted",
            "upgrade",
            "close",
            "reopen",
            "deposit",
        ] {
            assert_eq!(Action::parse(a).as_str(), a);
        }
        assert_eq!(Action::parse("deposit"), Action::Other("deposit".into()));
        assert_eq!(Action::parse("sealed"), Action::Sealed);
        assert!(!Action::NAMES.contains(&"sealed"));
        for a in [
            "patient",
            "guardian:Paul",
            "recovery",
            "pro:10005173140",
            "sealed",
            "x",
        ] {
            assert_eq!(Actor::parse(a).as_string(), a);
        }
        assert_eq!(
            Actor::parse("guardian:Paul"),
            Actor::Guardian("Paul".into())
        );
        assert_eq!(Actor::parse("guardian:"), Actor::Other("guardian:".into()));
        let j = serde_json::to_string(&GrantStatus::NotYetValid).unwrap();
        assert_eq!(j, "\"not-yet-valid\"");
        let back: Action = serde_json::from_str("\"rm\"").unwrap();
        assert_eq!(back, Action::Rm);
    }
}
