//! The French social security number (NIR): 13 characters and a 2-digit check key.

use crate::error::Error;

/// A NIR whose key has been checked, stored without spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nir(String);

impl Nir {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Nir {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let s: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '.' && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        let bad = |why: &str| {
            Error::input(
                format!("invalid NIR {input:?}: {why}"),
                "a NIR is 13 characters and a 2-digit key, e.g. 1 37 04 76 243 484 15",
            )
        };
        if s.len() != 15 || !s.is_ascii() {
            return Err(bad("expected 15 characters (13 and a 2-digit key)"));
        }
        let (body, key) = s.split_at(13);
        let key: u64 = key
            .parse()
            .map_err(|_| bad("the last two characters must be digits"))?;
        // Corsica's departments 2A and 2B are mapped to numbers before the modulo.
        let dept_digits = match &body[5..7] {
            "2A" => "19",
            "2B" => "18",
            d => d,
        };
        let numeric = format!("{}{}{}", &body[..5], dept_digits, &body[7..]);
        if !numeric.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("only digits (and 2A/2B for Corsica) are allowed"));
        }
        if !matches!(body.as_bytes()[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
            return Err(bad("the first digit (sex) must be 1, 2, 3, 4, 7 or 8"));
        }
        let n: u64 = numeric.parse().map_err(|_| bad("not a number"))?;
        let expected = 97 - n % 97;
        if key != expected {
            return Err(Error::input(
                format!("invalid NIR {input:?}: the key should be {expected:02}, not {key:02}"),
                "check the number on the carte Vitale",
            ));
        }
        Ok(Nir(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_example_is_valid() {
        let n: Nir = "1 37 04 76 243 484 15".parse().unwrap();
        assert_eq!(n.as_str(), "137047624348415");
    }

    #[test]
    fn wrong_key_names_the_right_one() {
        let e = "1 37 04 76 243 484 16".parse::<Nir>().unwrap_err();
        assert!(e.to_string().contains("should be 15"), "{e}");
    }

    #[test]
    fn corsica_departments_are_mapped() {
        // 2A -> 19 and 2B -> 18 before the modulo; keys computed by hand from those rules.
        let body_a = 2_690_519_001_001u64; // 2 69 05 19 001 001 (2A)
        let key_a = 97 - body_a % 97;
        let nir_a = format!("2 69 05 2A 001 001 {key_a:02}");
        assert!(nir_a.parse::<Nir>().is_ok(), "{nir_a}");
        let body_b = 2_690_518_001_001u64;
        let key_b = 97 - body_b % 97;
        let nir_b = format!("2 69 05 2B 001 001 {key_b:02}");
        assert!(nir_b.parse::<Nir>().is_ok(), "{nir_b}");
        // The 2A key must not validate 2B.
        assert!(
            format!("2 69 05 2B 001 001 {key_a:02}")
                .parse::<Nir>()
                .is_err()
        );
    }

    #[test]
    fn wrong_length_and_letters_are_refused() {
        assert!("1370476243484".parse::<Nir>().is_err());
        assert!("1 37 04 7X 243 484 15".parse::<Nir>().is_err());
        assert!("".parse::<Nir>().is_err());
    }
}
