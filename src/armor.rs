//! Reading age files as people receive them: armor after blank lines (the age spec asks
//! readers to accept them), armor that a mail client padded with trailing spaces, and the
//! difference between a header that is damaged and one simply meant for another key.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

const BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
const MAGIC: &[u8] = b"age-encryption.org/v1";
/// An age header is a few hundred bytes per recipient; this is far more than a bundle has.
const MAX_HEADER: u64 = 64 << 10;

/// Where the age file starts in `f`: after any whitespace in front of an armor begin line,
/// else 0 (binary age allows nothing before its magic). Leaves `f` at that offset.
pub fn start(f: &mut File) -> io::Result<u64> {
    let mut r = BufReader::new(&mut *f);
    let mut skipped = 0u64;
    // Whitespace is consumed a buffer at a time, so a file of nothing but blank lines ends at
    // its end rather than in memory.
    loop {
        let buf = r.fill_buf()?;
        let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let done = n < buf.len() || buf.is_empty();
        skipped += n as u64;
        r.consume(n);
        if done {
            break;
        }
    }
    let mut head = [0u8; BEGIN.len()];
    let got = crate::crypto::read_full(&mut r, &mut head)?;
    let at = if skipped > 0 && head[..got] == *BEGIN {
        skipped
    } else {
        0
    };
    drop(r);
    f.seek(SeekFrom::Start(at))?;
    Ok(at)
}

/// `inner` seen from `offset` on, as if the bytes before it were not there: age's armor reader
/// seeks from the position it started at, taken as 0.
pub struct Offset<R> {
    inner: R,
    offset: u64,
}

impl<R: Seek> Offset<R> {
    pub fn new(mut inner: R, offset: u64) -> io::Result<Self> {
        inner.seek(SeekFrom::Start(offset))?;
        Ok(Offset { inner, offset })
    }
}

impl<R: Read> Read for Offset<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for Offset<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            SeekFrom::Start(n) => {
                SeekFrom::Start(n.checked_add(self.offset).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "seek past the end")
                })?)
            }
            other => other,
        };
        let at = self.inner.seek(pos)?;
        if at < self.offset {
            // Before the file's start: an error, as a seek before 0 is, leaving the view at 0.
            self.inner.seek(SeekFrom::Start(self.offset))?;
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            ));
        }
        Ok(at - self.offset)
    }
}

/// True when `head` is an age magic line with a byte or two changed: a damaged age file, not
/// some other kind of file.
pub fn near_magic(head: &[u8]) -> bool {
    head.len() >= MAGIC.len()
        && head[..MAGIC.len()]
            .iter()
            .zip(MAGIC)
            .filter(|(a, b)| a != b)
            .count()
            <= 2
}

/// True when a line of armor in `r` ends in spaces or tabs, as mail clients leave them (age
/// refuses such lines). Blank lines do not count: whitespace around the armor is allowed.
/// Reads through once, holding no more than a buffer.
pub fn has_trailing_spaces(r: impl Read) -> io::Result<bool> {
    let mut r = BufReader::new(r);
    let mut last = 0u8;
    let mut before_cr = 0u8;
    let mut content = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        for &b in buf {
            if b == b'\n' {
                let end = if last == b'\r' { before_cr } else { last };
                if content && matches!(end, b' ' | b'\t') {
                    return Ok(true);
                }
                content = false;
            } else if !b.is_ascii_whitespace() {
                content = true;
            }
            before_cr = last;
            last = b;
        }
        let n = buf.len();
        r.consume(n);
    }
}

/// True when `path` is armor whose lines a mail client padded with trailing spaces.
pub fn mail_damaged(path: &Path) -> bool {
    let check = || -> io::Result<bool> {
        let mut f = File::open(path)?;
        start(&mut f)?;
        let mut head = [0u8; BEGIN.len()];
        let got = crate::crypto::read_full(&mut f, &mut head)?;
        if head[..got] != *BEGIN {
            return Ok(false);
        }
        f.seek(SeekFrom::Start(0))?;
        has_trailing_spaces(f)
    };
    check().unwrap_or(false)
}

/// True when the header of the age file read by `r` (dearmored) cannot be a carnet bundle's:
/// it names no recipient type carnet writes, or a stanza type that is neither one nor age's
/// random `-grease` stanza. A bundle meant for another key names its recipients intact, so
/// this tells a damaged header from a wrong key where the bytes allow it; a change inside a
/// recipient's key share cannot be told from a wrong key, by design of age.
///
/// Age plugins (hardware keys) choose their own stanza types (`piv-p256`, `unencrypted` …),
/// so a lower-case type that is not one character away from a native one is taken for a
/// plugin's: a bundle to a YubiKey, opened with another key, is "not for you", not damaged.
pub fn header_is_damaged(r: impl Read) -> bool {
    let mut text = Vec::new();
    // Bytes read before an error are kept: the header is what matters, not the payload.
    let _ = r.take(MAX_HEADER).read_to_end(&mut text);
    let Some(end) = text.windows(5).position(|w| w == b"\n--- ") else {
        return true;
    };
    let Ok(head) = std::str::from_utf8(&text[..end]) else {
        return true;
    };
    let types: Vec<&str> = head
        .lines()
        .filter_map(|l| l.strip_prefix("-> "))
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    let recipient = |t: &str| matches!(t, "X25519" | "ssh-ed25519" | "ssh-rsa") || plugin_like(t);
    !types.iter().any(|t| recipient(t))
        || types
            .iter()
            .any(|t| !recipient(t) && !t.ends_with("-grease"))
}

/// A stanza type an age plugin may write: lower-case letters, digits and `-._+`, and not a
/// native type with one character changed, added or lost (damage, not a plugin).
fn plugin_like(t: &str) -> bool {
    const NATIVE: [&str; 4] = ["X25519", "ssh-ed25519", "ssh-rsa", "scrypt"];
    !t.is_empty()
        && !t.ends_with("-grease")
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._+".contains(&b))
        && !NATIVE.iter().any(|n| one_edit_apart(t, n))
}

/// Whether `a` and `b` differ by at most one substitution, insertion or deletion (ASCII).
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let prefix = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    if short.len() == long.len() {
        short[prefix..]
            .iter()
            .skip(1)
            .eq(long[prefix..].iter().skip(1))
    } else {
        short[prefix..] == long[prefix + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_spaces_are_found_on_armor_lines_only() {
        let armor = "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n";
        assert!(!has_trailing_spaces(armor.as_bytes()).unwrap());
        assert!(!has_trailing_spaces(format!("\n  \n{armor}  \n\t\n").as_bytes()).unwrap());
        assert!(has_trailing_spaces(armor.replace("YWdl\n", "YWdl \n").as_bytes()).unwrap());
        assert!(has_trailing_spaces(armor.replace('\n', "\t\r\n").as_bytes()).unwrap());
    }

    #[test]
    fn an_offset_view_seeks_as_if_the_prefix_were_not_there() {
        let mut r = Offset::new(io::Cursor::new(b"\n\nabcdef".to_vec()), 2).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcdef");
        assert_eq!(r.seek(SeekFrom::Start(1)).unwrap(), 1);
        assert_eq!(r.seek(SeekFrom::End(-2)).unwrap(), 4);
        assert!(r.seek(SeekFrom::Current(-5)).is_err());
        assert_eq!(r.stream_position().unwrap(), 0);
    }

    #[test]
    fn a_header_naming_no_known_recipient_is_damaged() {
        let head = |stanzas: &str| format!("age-encryption.org/v1\n{stanzas}--- mac\n");
        let ok = head("-> X25519 abc\nbody\n-> x-grease\nbody\n");
        assert!(!header_is_damaged(ok.as_bytes()));
        assert!(header_is_damaged(head("-> Y25519 abc\nbody\n").as_bytes()));
        assert!(header_is_damaged(
            head("-> X25519 a\nb\n-> X2551\nb\n").as_bytes()
        ));
        // A plugin's stanza (a hardware key) is a recipient carnet writes; a lower-cased or
        // truncated native type is still damage.
        assert!(!header_is_damaged(
            head("-> piv-p256 abc\nbody\n").as_bytes()
        ));
        assert!(!header_is_damaged(
            head("-> unencrypted does nothing\nbody\n").as_bytes()
        ));
        assert!(header_is_damaged(head("-> x25519 abc\nbody\n").as_bytes()));
        assert!(header_is_damaged(
            head("-> ssh-ed2519 abc\nbody\n").as_bytes()
        ));
        assert!(header_is_damaged(
            head("-> ssh-rsa1 abc\nbody\n").as_bytes()
        ));
        assert!(near_magic(b"age-encryption.org/w1"));
        assert!(!near_magic(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"));
    }
}
