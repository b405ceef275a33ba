//! Random opaque ids, and git-style resolution of a typed prefix.

use crate::error::Error;

/// Full ids are 128 random bits in lowercase hex; users see and type a short prefix.
pub const SHORT_LEN: usize = 8;
pub const MIN_PREFIX: usize = 4;

pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

pub fn short(id: &str) -> &str {
    // Ids are ASCII hex, but this also prints ids read from hostile files: never cut a char.
    match id.char_indices().nth(SHORT_LEN) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// Is `s` a full id as carnet writes them (32 lowercase hex characters)?
pub fn is_full_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A document's id: 32 lowercase hex characters, checked wherever one is read from a file, so
/// that a hostile shard cannot smuggle a path or a terminal escape in through an id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DocId(String);

impl DocId {
    /// A new random id.
    pub fn random() -> DocId {
        DocId(random_id())
    }

    pub fn parse(s: &str) -> Option<DocId> {
        is_full_id(s).then(|| DocId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for DocId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if is_full_id(&s) {
            Ok(DocId(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "{:?} is not a document id",
                crate::text::clean(&ellipsize_id(&s))
            )))
        }
    }
}

/// At most a few dozen characters of a bad id, for an error message.
fn ellipsize_id(s: &str) -> String {
    s.chars().take(40).collect()
}

impl std::ops::Deref for DocId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DocId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for DocId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for DocId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for DocId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<DocId> for String {
    fn eq(&self, other: &DocId) -> bool {
        self == &other.0
    }
}

impl From<DocId> for String {
    fn from(id: DocId) -> String {
        id.0
    }
}

/// Finds the one id starting with `prefix`.
pub fn resolve<'a, I>(prefix: &str, ids: I) -> Result<&'a str, Error>
where
    I: IntoIterator<Item = &'a str>,
{
    let p = prefix.trim().to_ascii_lowercase();
    if p.len() < MIN_PREFIX || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::input(
            format!("{prefix:?} is not a document id"),
            format!("ids are hexadecimal; type at least {MIN_PREFIX} characters (see `carnet ls`)"),
        ));
    }
    let matches: Vec<&str> = ids.into_iter().filter(|id| id.starts_with(&p)).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::UnknownId(prefix.to_string())),
        many => Err(Error::AmbiguousId {
            prefix: prefix.to_string(),
            matches: many.iter().take(5).map(|m| short_unique(m, many)).collect(),
        }),
    }
}

/// The shortest prefix of `id` (at least SHORT_LEN) that tells it apart from `others`.
fn short_unique(id: &str, others: &[&str]) -> String {
    // Ids named by a log may come from anywhere: never cut inside a character.
    let boundary = |mut n: usize| {
        while !id.is_char_boundary(n) {
            n += 1;
        }
        n
    };
    let mut n = boundary(SHORT_LEN.min(id.len()));
    while n < id.len() && others.iter().any(|o| *o != id && o.starts_with(&id[..n])) {
        n = boundary(n + 1);
    }
    id[..n].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_resolve_like_git() {
        let ids = ["abcd1234ff", "abcd9999aa", "0123456789"];
        assert_eq!(resolve("0123", ids).unwrap(), "0123456789");
        assert_eq!(resolve("ABCD12", ids).unwrap(), "abcd1234ff");
        assert!(matches!(
            resolve("abcd", ids),
            Err(Error::AmbiguousId { .. })
        ));
        assert!(matches!(resolve("ffff", ids), Err(Error::UnknownId(_))));
        assert!(matches!(resolve("ab", ids), Err(Error::Input { .. })));
        assert!(matches!(resolve("zzzz", ids), Err(Error::Input { .. })));
    }

    #[test]
    fn ambiguous_non_ascii_ids_are_shown_without_a_panic() {
        let ids = ["abcdééééé1", "abcdééééé2"];
        assert!(matches!(
            resolve("abcd", ids),
            Err(Error::AmbiguousId { .. })
        ));
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 32);
    }
}
