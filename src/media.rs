//! Media type detection: magic bytes first, then the file extension, then text sniffing.

use std::path::Path;

/// How many leading bytes the detector looks at.
pub const SNIFF_LEN: usize = 8192;

pub fn detect(head: &[u8], path: &Path) -> String {
    // DICOM has a 128-byte preamble before its magic, which `infer` does not know.
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        return "application/dicom".into();
    }
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_string();
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("txt") => Some("text/plain"),
        Some("md") => Some("text/markdown"),
        Some("csv") => Some("text/csv"),
        Some("html" | "htm") => Some("text/html"),
        Some("xml") => Some("application/xml"),
        Some("json") => Some("application/json"),
        Some("hl7") => Some("application/hl7-v2"),
        Some("dcm") => Some("application/dicom"),
        Some("pdf") => Some("application/pdf"),
        _ => None,
    };
    if let Some(m) = by_ext {
        return m.into();
    }
    if looks_like_text(head) {
        return "text/plain".into();
    }
    "application/octet-stream".into()
}

/// Text is valid UTF-8 (allowing a code point cut at the end of the sample) without NUL bytes.
pub fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

pub fn is_text(media_type: &str) -> bool {
    media_type.starts_with("text/")
        || matches!(
            media_type,
            "application/json" | "application/xml" | "application/hl7-v2"
        )
}

/// A file extension for exported files, from the original name or the media type.
pub fn extension_for(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/tiff" => "tif",
        "application/dicom" => "dcm",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "text/html" => "html",
        "application/json" => "json",
        "application/xml" => "xml",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_content_then_extension() {
        assert_eq!(detect(b"%PDF-1.7\n", Path::new("x.bin")), "application/pdf");
        assert_eq!(
            detect(b"\x89PNG\r\n\x1a\n\0\0", Path::new("a")),
            "image/png"
        );
        assert_eq!(detect(b"bonjour", Path::new("note")), "text/plain");
        assert_eq!(detect(b"a,b\n", Path::new("r.csv")), "text/csv");
        assert_eq!(
            detect(&[0, 1, 2, 255], Path::new("blob")),
            "application/octet-stream"
        );
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM");
        assert_eq!(detect(&dicom, Path::new("scan")), "application/dicom");
    }

    #[test]
    fn utf8_cut_at_the_end_is_still_text() {
        let s = "é".as_bytes();
        assert!(looks_like_text(&[b'a', s[0]]));
        assert!(!looks_like_text(&[0xff, 0xfe, b'a', b'b', b'c', b'd']));
    }
}
