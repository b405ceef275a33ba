//! Text shown to people or used in file names, made safe: control, bidi and invisible
//! characters removed, long strings shortened, sizes in human units, accents folded. Pure
//! functions (no terminal), shared by the library's messages and the CLI.

/// Truncates to `max` characters (not bytes), marking the cut.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A human size in binary units, as the progress bars show them: `12 B`, `8.66 KiB`, `1.50 GiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

/// Characters that must never reach a terminal or a file name from a file, a bundle or a
/// manifest: control characters (escape sequences that retitle the window or rewrite the
/// screen), and the invisible format characters (Unicode category Cf, with the line and
/// paragraph separators), among them the bidi controls that make `facture\u{202E}txt.exe`
/// display as `factureexe.txt`.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// Text from files or bundles made safe for a terminal: every `is_unsafe` character becomes
/// U+FFFD, visible where it was.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if is_unsafe(c) { '\u{FFFD}' } else { c })
        .collect()
}

/// Lowercase, with the accents of French (and the other Latin-1 letters) folded to plain
/// letters: "Hélène" → "helene", "Œdème" → "oedeme". For matching what people type against
/// titles, slugs and handles.
pub fn fold_accents(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.to_lowercase().chars() {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => out.push('a'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => out.push('o'),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ç' => out.push('c'),
            'ñ' => out.push('n'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_fold() {
        assert_eq!(fold_accents("Élodie"), "elodie");
        assert_eq!(fold_accents("Hélène Léger-Dupré"), "helene leger-dupre");
        assert_eq!(fold_accents("ŒDÈME Ñ"), "oedeme n");
    }

    #[test]
    fn bidi_invisible_and_control_characters_never_pass() {
        assert_eq!(clean("facture\u{202E}txt.exe"), "facture\u{FFFD}txt.exe");
        for c in [
            '\u{1B}',
            '\u{7F}',
            '\u{85}',
            '\u{200B}',
            '\u{200E}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{2066}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{061C}',
            '\u{E0041}',
        ] {
            assert!(is_unsafe(c), "{:?}", c);
        }
        assert_eq!(clean("Hélène — 2024 🩻 é"), "Hélène — 2024 🩻 é");
    }
}
