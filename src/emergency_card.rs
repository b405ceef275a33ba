//! The printable emergency card (`carnet emergency --card`): one A4 page holding the card's
//! two faces side by side at wallet size (85.6 × 54 mm, ISO/IEC 7810 ID-1), to cut out and
//! fold. Front: the patient's name, the essentials they chose to show in clear, and a QR code
//! of the same plain text (a phone camera shows it without any app). Back: where the bundle
//! is, the passcode (unless left off), how to open it, until when, and the caveat.
//!
//! The PDF is written here by hand, not with a PDF crate: a single page of text in the PDF
//! standard fonts (Helvetica, Courier, WinAnsi encoding, so French accents need no embedded
//! font) and filled squares for the QR code is a few hundred bytes of PDF syntax, while the
//! maintained writers (printpdf 0.12 and its HTML layout engine, or lopdf) bring dozens of
//! crates for features this card does not use. The QR code comes from the `qrcode` crate.

use std::fmt::Write as _;

/// What the card shows.
pub struct Card<'a> {
    pub name: &'a str,
    /// One line per essential, in clear (also the QR code's text, after the heading and name).
    pub essentials: &'a [String],
    /// The passcode, or None when it is given separately.
    pub passcode: Option<&'a str>,
    /// Where the bundle is (a USB stick, a phone).
    pub location: &'a str,
    /// The bundle's file name, for the opening instructions.
    pub file_name: &'a str,
    /// The last day carnet opens the bundle.
    pub until: &'a str,
}

/// The QR code's text: plain essentials, no passcode, nothing that opens the bundle.
pub fn qr_text(name: &str, essentials: &[String]) -> String {
    let mut s = format!("URGENCE MEDICALE / EMERGENCY\n{name}");
    for e in essentials {
        s.push('\n');
        s.push_str(e);
    }
    s
}

const MM: f64 = 72.0 / 25.4;
const CARD_W: f64 = 85.6 * MM;
const CARD_H: f64 = 54.0 * MM;
const PAGE_W: f64 = 595.28;
const PAGE_H: f64 = 841.89;

/// Fonts of the page: regular, bold, monospace bold.
#[derive(Clone, Copy)]
enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    fn name(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
            Font::Mono => "F3",
        }
    }

    /// A width estimate, in ems per character, for wrapping: Helvetica's average lower-case
    /// width, a little generous; Courier's exact 0.6.
    fn em(self) -> f64 {
        match self {
            Font::Regular => 0.54,
            Font::Bold => 0.6,
            Font::Mono => 0.6,
        }
    }
}

/// A string in WinAnsiEncoding as a PDF literal string: Latin-1 letters keep their code, the
/// few others WinAnsi has (œ, €, ’, –, —, …) get theirs, anything else becomes `?`.
fn pdf_string(s: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in s.chars() {
        let b: u8 = match c {
            '(' | ')' | '\\' => {
                out.push(b'\\');
                c as u8
            }
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            'œ' => 0x9c,
            'Œ' => 0x8c,
            '€' => 0x80,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '…' => 0x85,
            _ => b'?',
        };
        out.push(b);
    }
    out.push(b')');
    out
}

/// Greedy word wrap to `max` characters a line (a word longer than a line is cut).
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > max {
            let head: String = word.chars().take(max).collect();
            word = word.chars().skip(max).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
        }
        if line.is_empty() {
            line = word;
        } else if line.chars().count() + 1 + word.chars().count() <= max {
            line.push(' ');
            line.push_str(&word);
        } else {
            lines.push(std::mem::replace(&mut line, word));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The page's content stream, built up operator by operator.
struct Page {
    ops: Vec<u8>,
}

impl Page {
    fn raw(&mut self, s: &str) {
        self.ops.extend_from_slice(s.as_bytes());
        self.ops.push(b'\n');
    }

    fn text(&mut self, font: Font, size: f64, x: f64, y: f64, s: &str) {
        self.raw(&format!(
            "BT /{} {size:.1} Tf {x:.2} {y:.2} Td",
            font.name()
        ));
        let mut lit = pdf_string(s);
        lit.extend_from_slice(b" Tj ET\n");
        self.ops.extend_from_slice(&lit);
    }

    /// Writes `text` wrapped to `width`, from `y` downwards; returns the y below it, or stops
    /// (with "…") at `bottom`.
    #[allow(clippy::too_many_arguments)]
    fn paragraph(
        &mut self,
        font: Font,
        size: f64,
        x: f64,
        mut y: f64,
        width: f64,
        bottom: f64,
        text: &str,
    ) -> f64 {
        let max = ((width / (size * font.em())) as usize).max(8);
        for line in wrap(text, max) {
            if y - size < bottom {
                self.text(font, size, x, y, "…");
                return y - size * 1.2;
            }
            self.text(font, size, x, y, &line);
            y -= size * 1.2;
        }
        y
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, op: &str) {
        self.raw(&format!("{x:.2} {y:.2} {w:.2} {h:.2} re {op}"));
    }
}

/// The card as a one-page PDF.
pub fn pdf(card: &Card) -> anyhow::Result<Vec<u8>> {
    let qr_payload = qr_text(card.name, card.essentials);
    let qr = qrcode::QrCode::with_error_correction_level(qr_payload.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| anyhow::anyhow!("the essentials do not fit in a QR code ({e}): show fewer"))?;

    let mut p = Page { ops: Vec::new() };
    let left = (PAGE_W - 2.0 * CARD_W) / 2.0;
    let top = PAGE_H - 90.0;
    let bottom = top - CARD_H;
    p.raw("0 g");
    p.text(
        Font::Bold,
        11.0,
        left,
        top + 40.0,
        "Carte d'urgence / Emergency card",
    );
    p.text(
        Font::Regular,
        8.0,
        left,
        top + 26.0,
        "Découpez le long du cadre, pliez au milieu, gardez-la avec vos papiers. / Cut out, fold in the middle, keep it with your ID.",
    );
    // Cut lines (dashed) and the fold (dotted).
    p.raw("0.5 w [3 2] 0 d");
    p.rect(left, bottom, 2.0 * CARD_W, CARD_H, "S");
    p.raw("[1 2] 0 d");
    p.raw(&format!(
        "{:.2} {bottom:.2} m {:.2} {top:.2} l S",
        left + CARD_W,
        left + CARD_W
    ));
    p.raw("[] 0 d");

    // Front: a red band with the heading, the name, the essentials, the QR code.
    let pad = 6.0;
    let band = 16.0;
    p.raw("0.8 0.1 0.1 rg");
    p.rect(left, top - band, CARD_W, band, "f");
    p.raw("1 g");
    p.text(
        Font::Bold,
        9.0,
        left + pad,
        top - band + 5.0,
        "URGENCE MÉDICALE / EMERGENCY",
    );
    p.raw("0 g");
    let qr_size = CARD_H - band - 2.0 * pad;
    let qr_x = left + CARD_W - pad - qr_size;
    let qr_y = bottom + pad;
    let text_w = qr_x - left - 2.0 * pad;
    let mut y = top - band - pad - 8.0;
    y = p.paragraph(
        Font::Bold,
        8.5,
        left + pad,
        y,
        text_w,
        bottom + pad,
        card.name,
    );
    y -= 2.0;
    for e in card.essentials {
        y = p.paragraph(Font::Regular, 6.0, left + pad, y, text_w, bottom + pad, e);
    }
    // The QR code: its dark modules as squares, a 2-module margin inside the white area.
    let n = qr.width();
    let quiet = 2usize;
    let module = qr_size / (n + 2 * quiet) as f64;
    let colors = qr.to_colors();
    let mut squares = String::new();
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (cx, cy) = (i % n, i / n);
            let x = qr_x + (cx + quiet) as f64 * module;
            let y = qr_y + qr_size - (cy + quiet + 1) as f64 * module;
            // A hair wider, so that anti-aliasing leaves no seams between modules.
            let _ = writeln!(
                squares,
                "{x:.3} {y:.3} {:.3} {:.3} re",
                module + 0.02,
                module + 0.02
            );
        }
    }
    p.raw("0 g");
    p.ops.extend_from_slice(squares.as_bytes());
    p.raw("f");

    // Back.
    let bx = left + CARD_W + pad;
    let bw = CARD_W - 2.0 * pad;
    let mut y = top - pad - 8.0;
    y = p.paragraph(
        Font::Bold,
        7.5,
        bx,
        y,
        bw,
        bottom,
        "Dossier médical d'urgence chiffré / Encrypted emergency record",
    );
    y = p.paragraph(
        Font::Regular,
        6.5,
        bx,
        y - 1.0,
        bw,
        bottom,
        &format!("Où / where: {}", card.location),
    );
    y -= 3.0;
    match card.passcode {
        Some(code) => {
            p.text(Font::Bold, 6.5, bx, y, "Code d'accès / passcode:");
            y -= 9.0;
            let words: Vec<&str> = code.split('-').collect();
            let half = words.len().div_ceil(2);
            let first = format!("{}-", words[..half].join("-"));
            let second = words[half..].join("-");
            p.text(Font::Mono, 8.0, bx, y, &first);
            y -= 9.5;
            p.text(Font::Mono, 8.0, bx, y, &second);
            y -= 10.0;
        }
        None => {
            y = p.paragraph(
                Font::Regular,
                6.5,
                bx,
                y,
                bw,
                bottom,
                "Code d'accès donné à part / passcode given separately",
            );
            y -= 3.0;
        }
    }
    y = p.paragraph(
        Font::Regular,
        5.5,
        bx,
        y,
        bw,
        bottom,
        &format!(
            "Ouvrir / open: carnet open {f} --passcode — ou / or: age -d {f} > u.zip && unzip u.zip",
            f = card.file_name
        ),
    );
    y = p.paragraph(
        Font::Regular,
        5.5,
        bx,
        y - 1.0,
        bw,
        bottom,
        &format!("Valable jusqu'au / valid until: {}", card.until),
    );
    p.paragraph(
        Font::Regular,
        5.0,
        bx,
        y - 1.0,
        bw,
        bottom + 2.0,
        "Qui détient ce code et le fichier peut lire le dossier. / Whoever holds this code and the file can read the record.",
    );

    Ok(assemble(&p.ops))
}

/// The PDF file around one page's content stream.
fn assemble(content: &[u8]) -> Vec<u8> {
    let font = |base: &str| {
        format!("<< /Type /Font /Subtype /Type1 /BaseFont /{base} /Encoding /WinAnsiEncoding >>")
            .into_bytes()
    };
    let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
    stream.extend_from_slice(content);
    stream.extend_from_slice(b"\nendstream");
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
             /Resources << /Font << /F1 4 0 R /F2 5 0 R /F3 6 0 R >> >> /Contents 7 0 R >>"
        )
        .into_bytes(),
        font("Helvetica"),
        font("Helvetica-Bold"),
        font("Courier-Bold"),
        stream,
        b"<< /Producer (carnet) /Title (Carte d'urgence / Emergency card) >>".to_vec(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = writeln!(table, "{o:010} 00000 n ");
    }
    let _ = write!(
        table,
        "trailer\n<< /Size {} /Root 1 0 R /Info {} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1,
        objects.len()
    );
    out.extend_from_slice(table.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_winansi_and_escaped() {
        assert_eq!(pdf_string("é(a)\\œ"), b"(\xe9\\(a\\)\\\\\x9c)".to_vec());
        assert_eq!(pdf_string("日"), b"(?)".to_vec());
    }

    #[test]
    fn words_wrap_and_long_words_are_cut() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn the_xref_points_at_every_object() {
        let pdf = pdf(&Card {
            name: "Marie Dupont",
            essentials: &["Allergies: pénicilline".to_string()],
            passcode: Some("a-b-c-d-e-f-g-h"),
            location: "clé USB",
            file_name: "urgence.age",
            until: "2027-12-06",
        })
        .unwrap();
        // The header's binary comment is not UTF-8: offsets are read from the bytes.
        let tail_at = pdf.windows(10).rposition(|w| w == b"startxref\n").unwrap();
        let tail = std::str::from_utf8(&pdf[tail_at..]).unwrap();
        let start: usize = tail.lines().nth(1).unwrap().parse().unwrap();
        let xref = std::str::from_utf8(&pdf[start..]).unwrap();
        assert!(xref.starts_with("xref"));
        for (i, line) in xref.lines().skip(3).take(8).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(
                pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "{i}"
            );
        }
    }
}
