//! Passcodes for emergency bundles and access codes: age's scrypt recipient around a
//! generated passcode. Offline nothing limits how many passcodes an attacker holding the file
//! can try, so carnet never lets a person choose one: 8 words drawn uniformly from the 2048 of
//! the BIP-39 French list are 88 bits, and each guess costs a scrypt derivation (2^18).
//!
//! Words are printed without accents (the list stays unique once folded), joined by `-`, so
//! they type the same on every keyboard and reach `age -d` as the very bytes carnet used.
//! `carnet open` is more forgiving: case, accents, spaces and dashes are normalised first.

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

const WORDS: &str = include_str!("wordlist/bip39-french.txt");
/// How many words a passcode has: 8 × 11 bits = 88 bits, above the 80 the brief requires.
pub const WORD_COUNT: usize = 8;
/// The entropy of a generated passcode, in bits.
pub const BITS: usize = WORD_COUNT * 11;

fn list() -> Vec<&'static str> {
    WORDS
        .lines()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect()
}

/// Lower case without accents, whether they come precomposed (`é`) or as combining marks
/// (`e` + U+0301: the BIP-39 lists are in NFKD, and so may be what a keyboard sends).
fn fold(s: &str) -> String {
    crate::text::fold_accents(s)
        .chars()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .collect()
}

/// A new passcode: `WORD_COUNT` words, each drawn uniformly (rand's OS-seeded CSPRNG).
pub fn generate() -> SecretString {
    use rand::Rng;
    let words = list();
    debug_assert_eq!(words.len(), 2048);
    let mut rng = rand::rngs::OsRng;
    let mut s = Zeroizing::new(String::new());
    for i in 0..WORD_COUNT {
        if i > 0 {
            s.push('-');
        }
        s.push_str(&fold(words[rng.gen_range(0..words.len())]));
    }
    SecretString::from(s.as_str())
}

/// A passcode as typed, made canonical: lower case, accents folded, words joined by one `-`
/// whatever separated them (spaces, dashes, a line break).
pub fn normalize(typed: &str) -> SecretString {
    let folded = Zeroizing::new(fold(typed.trim()));
    let words: Vec<&str> = folded
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_' || c == '.' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let joined = Zeroizing::new(words.join("-"));
    SecretString::from(joined.as_str())
}

/// Whether a normalised passcode has the shape carnet generates (8 words of the list): a
/// typo is then told apart from a wrong passcode.
pub fn looks_generated(p: &SecretString) -> bool {
    let words = list();
    let folded: Vec<String> = words.iter().map(|w| fold(w)).collect();
    let parts: Vec<&str> = p.expose_secret().split('-').collect();
    parts.len() == WORD_COUNT && parts.iter().all(|w| folded.iter().any(|f| f == w))
}

/// The age recipient for a new passcode-protected file, at scrypt cost 2^`log_n`.
pub fn recipient(p: &SecretString, log_n: u8) -> age::scrypt::Recipient {
    let mut r = age::scrypt::Recipient::new(p.clone());
    r.set_work_factor(log_n);
    r
}

/// The identity that opens a passcode-protected file, refusing more than 2^20 of scrypt work
/// (a file made to exhaust memory), like every passphrase carnet opens.
pub fn identity(p: &SecretString) -> age::scrypt::Identity {
    let mut id = age::scrypt::Identity::new(p.clone());
    id.set_max_work_factor(20);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_2048_words_unique_once_folded() {
        let words = list();
        assert_eq!(words.len(), 2048);
        let folded: std::collections::HashSet<String> = words.iter().map(|w| fold(w)).collect();
        assert_eq!(folded.len(), 2048);
        assert!(
            folded
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
        );
    }

    #[test]
    fn generated_passcodes_have_eight_words_and_normalise_to_themselves() {
        let p = generate();
        assert!(looks_generated(&p));
        assert_eq!(p.expose_secret().split('-').count(), 8);
        assert_eq!(
            normalize(p.expose_secret()).expose_secret(),
            p.expose_secret()
        );
        let typed = p.expose_secret().replace('-', "  ").to_uppercase();
        assert_eq!(normalize(&typed).expose_secret(), p.expose_secret());
        assert_eq!(
            normalize("Académie élève").expose_secret(),
            "academie-eleve"
        );
        assert!(!looks_generated(&normalize("too short")));
    }
}
