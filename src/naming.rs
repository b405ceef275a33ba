//! File names for documents, on export and inside bundles: `<date> <title>.<ext>`, safe on every
//! common file system (no separators, reserved, control, bidi or invisible characters; bounded
//! length).

use std::path::Path;

use crate::manifest::Document;
use crate::media;

/// `<date> <title>.<ext>`, made safe for every common file system.
pub fn file_name(d: &Document) -> String {
    let ext = d
        .original_name
        .as_deref()
        .and_then(|n| Path::new(n).extension())
        .and_then(|e| e.to_str())
        .map(sanitize)
        .filter(|e| !e.is_empty() && e.len() <= 10)
        .or_else(|| media::extension_for(&d.media_type).map(str::to_string));
    let stem = sanitize(&format!("{} {}", d.date, d.title));
    match ext {
        Some(e) => format!("{stem}.{e}"),
        None => stem,
    }
}

/// Replaces path separators, control and reserved characters; trims dots and spaces; bounds
/// the length (in characters) so the name fits any file system.
pub fn sanitize(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            // Invisible and bidi characters too: a name must read as what it is, and zips
            // carrying such names are refused by `zipsafe`.
            if crate::text::is_unsafe(c)
                || crate::zipsafe::is_invisible(c)
                || "/\\:*?\"<>|".contains(c)
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    // File systems limit names to 255 bytes; leave room for a date, a " (2)" and an extension.
    let mut bounded = String::new();
    for c in trimmed.chars() {
        if bounded.len() + c.len_utf8() > 200 {
            break;
        }
        bounded.push(c);
    }
    if bounded.is_empty() {
        "document".to_string()
    } else {
        bounded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_folder() {
        assert_eq!(sanitize("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize("a/b\\c:d"), "a_b_c_d");
        assert_eq!(sanitize("..."), "document");
        assert_eq!(sanitize(" Radio\u{0} thorax "), "Radio_ thorax");
        assert_eq!(sanitize("facture\u{202E}txt.exe"), "facture_txt.exe");
        assert_eq!(sanitize(&"é".repeat(500)).chars().count(), 100);
        assert!(sanitize(&"🩻".repeat(200)).len() <= 200);
    }
}
