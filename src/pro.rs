//! Health professionals: RPPS/ADELI identifiers, contact cards, and the patient's directory.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A professional in the patient's directory (stored in the encrypted manifest).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Professional {
    pub handle: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adeli: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<String>,
    /// An age recipient: `age1…`, or an `ssh-ed25519`/`ssh-rsa` public key.
    pub recipient: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    #[serde(default)]
    pub blocked: bool,
    pub added_at: jiff::Timestamp,
    /// `medecin-traitant`: the patient's regular doctor, who may receive documents hidden from
    /// professionals (as in the DMP) when the patient includes them in a grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The one role the directory knows: the DMP's "médecin traitant".
pub const MEDECIN_TRAITANT: &str = "medecin-traitant";

impl Professional {
    pub fn identifier(&self) -> Option<String> {
        self.rpps
            .as_ref()
            .map(|r| format!("RPPS {r}"))
            .or_else(|| self.adeli.as_ref().map(|a| format!("ADELI {a}")))
    }

    /// Does `who` (a handle, an RPPS or an ADELI number) name this professional?
    pub fn is(&self, who: &str) -> bool {
        let w = who.trim();
        self.handle.eq_ignore_ascii_case(w)
            || self.rpps.as_deref() == Some(w)
            || self
                .adeli
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(w))
    }
}

/// Finds a professional in `pros` by what the user typed: a handle, an RPPS or ADELI number,
/// or a unique prefix of a handle (`jeanne` for `jeanne-martin`). An exact match always wins,
/// so a handle that is also the prefix of another (`jeanne-martin`, `jeanne-martin-2`) is
/// still reachable. A prefix that names several is refused with the candidates; an unknown
/// name gets the closest handles as a suggestion.
pub fn find<'a>(pros: &'a [Professional], who: &str) -> Result<&'a Professional, Error> {
    find_with(pros, who, false)
}

/// Like `find`, for sharing a record: a prefix must be whole words of the handle (`jeanne` for
/// `jeanne-martin`, not `j`), so that a stray letter never encrypts the record to someone else.
pub fn find_to_share<'a>(pros: &'a [Professional], who: &str) -> Result<&'a Professional, Error> {
    find_with(pros, who, true)
}

fn find_with<'a>(
    pros: &'a [Professional],
    who: &str,
    whole_words: bool,
) -> Result<&'a Professional, Error> {
    if let Some(p) = pros.iter().find(|p| p.is(who)) {
        return Ok(p);
    }
    let typed = crate::text::fold_accents(who.trim());
    let by_prefix: Vec<&Professional> = if typed.is_empty() {
        Vec::new()
    } else {
        pros.iter()
            .filter(|p| {
                p.handle.starts_with(&typed)
                    && (!whole_words || p.handle[typed.len()..].starts_with('-'))
            })
            .collect()
    };
    match by_prefix.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::input(
            format!("no professional {who:?} in your directory"),
            match suggestions(pros, &typed).as_slice() {
                [] => {
                    "list them with `carnet pro ls`, or add one with `carnet pro add --card FILE`"
                        .to_string()
                }
                close => format!(
                    "did you mean {}? (list them with `carnet pro ls`)",
                    close.join(" or ")
                ),
            },
        )),
        many => Err(Error::input(
            format!(
                "{who:?} matches several professionals: {}",
                many.iter()
                    .map(|p| p.handle.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "type more of the handle, or give the RPPS or ADELI number",
        )),
    }
}

/// The handles closest to a mistyped one: within a few edits (a typo, a missing letter), or
/// containing what was typed (`martin` for `jeanne-martin`); the closest first, three at most.
fn suggestions<'a>(pros: &'a [Professional], typed: &str) -> Vec<&'a str> {
    if typed.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(usize, &str)> = pros
        .iter()
        .filter_map(|p| {
            let d = edit_distance(typed, &p.handle);
            let close = d <= (p.handle.chars().count() / 4).max(2);
            let inside = typed.chars().count() >= 3 && p.handle.contains(typed);
            (close || inside).then_some((d, p.handle.as_str()))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, h)| h).collect()
}

/// Levenshtein distance over characters (handles are short: the quadratic cost is nothing).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The contact card a professional sends to patients (`carnet keygen --card`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Card {
    pub carnet_card: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adeli: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<String>,
    /// The age recipient to encrypt bundles to.
    pub recipient: String,
    /// The professional's signing key (minisign format), for deposits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Outcome of checking an RPPS number: valid, or valid but failing the Luhn check.
#[derive(Debug, PartialEq, Eq)]
pub enum RppsCheck {
    Ok,
    LuhnMismatch,
}

/// RPPS: 11 digits. Real numbers usually pass a Luhn check but official test numbers do not,
/// so a Luhn failure is reported for a warning, never refused.
pub fn check_rpps(s: &str) -> Result<(String, RppsCheck), Error> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::input(
            format!("invalid RPPS number {s:?}: an RPPS number is 11 digits"),
            "copy it from the professional's card (e.g. 10005173140)",
        ));
    }
    let check = if luhn(&digits) {
        RppsCheck::Ok
    } else {
        RppsCheck::LuhnMismatch
    };
    Ok((digits, check))
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ADELI: 9 characters; the first two are a department (digits, 2A/2B, or 9A–9F), then digits.
pub fn check_adeli(s: &str) -> Result<String, Error> {
    let v: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let bad = || {
        Error::input(
            format!(
                "invalid ADELI number {s:?}: 9 characters, starting with a department (e.g. 75, 2A, 9B)"
            ),
            "copy it from the professional's card",
        )
    };
    if v.len() != 9 || !v.is_ascii() {
        return Err(bad());
    }
    let dept = &v[..2];
    let dept_ok = dept.bytes().all(|b| b.is_ascii_digit())
        || dept == "2A"
        || dept == "2B"
        || (dept.starts_with('9') && matches!(dept.as_bytes()[1], b'A'..=b'F'));
    if !dept_ok || !v[2..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(v)
}

/// A short handle from a name: "Dr Jeanne Martin" → "jeanne-martin".
pub fn handle_from_name(name: &str) -> String {
    const TITLES: &[&str] = &[
        "dr",
        "dr.",
        "docteur",
        "pr",
        "pr.",
        "professeur",
        "mme",
        "m.",
        "mr",
        "mlle",
    ];
    let words: Vec<String> = name
        .split_whitespace()
        .filter(|w| !TITLES.contains(&w.to_lowercase().as_str()))
        .map(|w| {
            crate::text::fold_accents(w)
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let h = words.join("-");
    if h.is_empty() { "pro".to_string() } else { h }
}

/// Checks a recipient string: age X25519, an SSH public key that age can encrypt to, or an age
/// plugin's recipient (a hardware key: its plugin is needed only to encrypt). Kept as written,
/// an SSH key's comment included: it tells whose key it is.
pub fn check_recipient(s: &str) -> Result<String, Error> {
    let s = s.trim();
    crate::keys::check_any_recipient(s)?;
    Ok(s.to_string())
}

/// Parses a recipient for encryption.
pub fn recipient(s: &str) -> anyhow::Result<Box<dyn age::Recipient + Send>> {
    Ok(crate::keys::parse_any_recipient(s)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpps_luhn_is_a_warning_not_an_error() {
        assert_eq!(check_rpps("10005173140").unwrap().1, RppsCheck::Ok);
        assert_eq!(
            check_rpps("10003461033").unwrap().1,
            RppsCheck::LuhnMismatch
        );
        assert!(check_rpps("1000517314").is_err());
        assert!(check_rpps("1000517314X").is_err());
    }

    #[test]
    fn adeli_departments() {
        assert_eq!(check_adeli("751234567").unwrap(), "751234567");
        assert_eq!(check_adeli("2a1234567").unwrap(), "2A1234567");
        assert!(check_adeli("9B1234567").is_ok());
        assert!(check_adeli("9G1234567").is_err());
        assert!(check_adeli("7512345").is_err());
        assert!(check_adeli("AB1234567").is_err());
    }

    fn pro(handle: &str) -> Professional {
        Professional {
            handle: handle.into(),
            name: handle.into(),
            rpps: None,
            adeli: None,
            profession: None,
            specialty: None,
            recipient: String::new(),
            signing_key: None,
            blocked: false,
            added_at: jiff::Timestamp::UNIX_EPOCH,
            role: None,
        }
    }

    #[test]
    fn handles_by_exact_name_unique_prefix_or_suggestion() {
        let pros = [
            pro("jeanne-martin"),
            pro("jeanne-martin-2"),
            pro("paul-roux"),
        ];
        assert_eq!(
            find(&pros, "jeanne-martin").unwrap().handle,
            "jeanne-martin"
        );
        assert_eq!(find(&pros, "pa").unwrap().handle, "paul-roux");
        assert_eq!(find(&pros, "Paul").unwrap().handle, "paul-roux");
        let e = find(&pros, "jeanne").unwrap_err();
        assert!(
            e.to_string().contains("jeanne-martin, jeanne-martin-2"),
            "{e}"
        );
        let e = find(&pros, "jeane-martin").unwrap_err();
        assert!(e.to_string().contains("no professional"), "{e}");
        assert!(
            e.hint()
                .unwrap()
                .starts_with("did you mean jeanne-martin or"),
            "{e:?}"
        );
        let e = find(&pros, "roux").unwrap_err();
        assert_eq!(
            e.hint().unwrap(),
            "did you mean paul-roux? (list them with `carnet pro ls`)"
        );
        let e = find(&pros, "dupont").unwrap_err();
        assert!(e.hint().unwrap().starts_with("list them"), "{e:?}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("élise", "elise"), 1);
    }

    #[test]
    fn handles_drop_titles_and_accents() {
        assert_eq!(handle_from_name("Dr Jeanne Martin"), "jeanne-martin");
        assert_eq!(
            handle_from_name("Pr Hélène Léger-Dupré"),
            "helene-leger-dupre"
        );
        assert_eq!(handle_from_name("Dr"), "pro");
    }
}
