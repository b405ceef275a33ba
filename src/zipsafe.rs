//! Stored zips, read without trusting them and written so that every reader opens them.
//!
//! Bundles (`open`), backups (`restore`, `verify --offline`) and, next, deposits are all stored
//! (uncompressed) zips from someone else's hands. [`SafeZip`] is the one reader they share: it
//! lists the entries and refuses, before a single byte is extracted, anything that is not a
//! plain list of distinct regular files laid end to end (see [`BadZip`] for each refusal). Each
//! entry is then read through a reader bounded by its declared size that checks its CRC-32.
//!
//! What comes from the `zip` crate (9.x) and what is parsed here, and why:
//! - The central directory, local headers and their comparison come from the crate:
//!   `ZipArchive::validate_header_consistency` checks each local header against its central
//!   record (name, method, flags, sizes, CRC-32) and finds local headers the directory does not
//!   list; `has_overlapping_entries` finds entries sharing bytes (the overlap zip bomb, where
//!   many central records alias one local file); `by_index_raw` gives a reader of the stored
//!   bytes bounded by the entry's size.
//! - The end records (EOCD, Zip64 locator and record) are parsed here as well, because the
//!   crate does not say where the archive ends (so it cannot tell trailing data), it accepts a
//!   prefix before the archive, it falls back to earlier end records when the last one does not
//!   parse, and it allocates for every central record before a caller could bound their number.
//!   The crate's parse is then required to agree with ours.
//! - [`StoredZipWriter`] is written here because the crate's streaming writer
//!   (`ZipWriter::new_stream`, the only one that accepts a non-seekable output such as an age
//!   stream) always puts sizes and CRC-32 in data descriptors after the data, which Java's
//!   `ZipInputStream`, BusyBox `unzip -` and streaming Node readers cannot read. Carnet knows
//!   every entry's size and CRC-32 before it starts, so it writes them in the local header.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Why a zip was refused. Each message names the entry at fault; callers add the context
/// ("the bundle is damaged or was altered: …").
#[derive(Debug, thiserror::Error)]
pub enum BadZip {
    #[error("not a readable zip ({0})")]
    Unreadable(String),
    #[error("{extra} bytes follow the end of the zip")]
    Trailing { extra: u64 },
    #[error("{0} bytes come before the zip")]
    Prefix(u64),
    #[error("the zip's end records do not agree with each other ({0})")]
    EndRecords(&'static str),
    #[error("the zip holds {count} entries, more than the {max} it may")]
    TooManyEntries { count: u64, max: usize },
    #[error("entry {index} has a name that is not UTF-8")]
    NameNotUtf8 { index: usize },
    #[error("entry {name:?} has an unsafe path ({why})")]
    BadName { name: String, why: &'static str },
    #[error("entry {0:?} is not a regular file")]
    NotRegular(String),
    #[error("entry {0:?} is compressed; only stored entries are accepted")]
    Compressed(String),
    #[error("entry {0:?} is encrypted")]
    Encrypted(String),
    #[error("the zip names an entry twice")]
    Duplicate,
    #[error("entries overlap (several entries share the same bytes: a zip bomb)")]
    Overlap,
    #[error("the entries declare {declared} bytes, more than the {input}-byte zip holds")]
    TooLarge { declared: u64, input: u64 },
    #[error("entry {name:?}: its local header disagrees with the central directory ({detail})")]
    LocalHeader { name: String, detail: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What the caller accepts beyond the rules every zip obeys.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries the zip may list: checked before the central directory is read.
    pub max_entries: usize,
    /// Bytes allowed after the end-of-central-directory record (an archive comment counts);
    /// the tail is read into memory to find the record, so keep it small.
    pub max_trailing: u64,
}

/// One checked entry: a regular file with a clean relative name.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub crc32: u32,
    index: usize,
}

/// A stored zip whose every entry passed the checks of [`SafeZip::open`].
pub struct SafeZip<R: Read + Seek> {
    archive: zip::ZipArchive<R>,
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_LEN: u64 = 22;
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_LEN: u64 = 56;
/// Sizes and offsets at or above this value live in a Zip64 extra field.
const MAX32: u64 = 0xFFFF_FFFF;
const MAX16: u64 = 0xFFFF;

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, buf: &mut [u8]) -> io::Result<()> {
    r.seek(SeekFrom::Start(at))?;
    r.read_exact(buf)
}

/// Where the central directory lies and where the archive ends, from the end records.
struct End {
    entries: u64,
    cd_start: u64,
}

/// Parses the end records, refusing trailing bytes beyond `max_trailing` and any gap between
/// the central directory and the end records.
fn read_end<R: Read + Seek>(r: &mut R, len: u64, max_trailing: u64) -> Result<End, BadZip> {
    let unreadable = || BadZip::Unreadable("no end-of-central-directory record".into());
    if len < EOCD_LEN {
        return Err(unreadable());
    }
    // The last record whose comment fits in the file, searched only as far back as the
    // trailing bytes the caller accepts.
    let span = (EOCD_LEN + max_trailing).min(len);
    let mut tail = vec![0u8; usize::try_from(span).map_err(|_| unreadable())?];
    read_at(r, len - span, &mut tail)?;
    let mut eocd = None;
    for i in (0..=tail.len() - EOCD_LEN as usize).rev() {
        if le32(&tail, i) == u64::from(EOCD_SIG) {
            let comment = le16(&tail, i + 20);
            if (i as u64) + EOCD_LEN + comment <= span {
                eocd = Some(i);
                break;
            }
        }
    }
    let i = eocd.ok_or_else(
        || match tail.len() as u64 >= EOCD_LEN && max_trailing == 0 {
            // The usual shape of a truncated or appended-to zip: say which.
            true => BadZip::Unreadable("truncated, or data was appended after it".into()),
            false => unreadable(),
        },
    )?;
    let eocd_pos = len - span + i as u64;
    let e = &tail[i..i + EOCD_LEN as usize];
    let extra = len - eocd_pos - EOCD_LEN;
    if extra > max_trailing {
        return Err(BadZip::Trailing { extra });
    }
    if le16(e, 4) != 0 || le16(e, 6) != 0 || le16(e, 8) != le16(e, 10) {
        return Err(BadZip::EndRecords("split over several disks"));
    }
    let (mut entries, mut cd_size, mut cd_start) = (le16(e, 10), le32(e, 12), le32(e, 16));
    let mut records_start = eocd_pos;
    if entries == MAX16 || cd_size == MAX32 || cd_start == MAX32 {
        let loc_pos = eocd_pos
            .checked_sub(ZIP64_LOCATOR_LEN)
            .ok_or(BadZip::EndRecords("no Zip64 locator"))?;
        let mut loc = [0u8; ZIP64_LOCATOR_LEN as usize];
        read_at(r, loc_pos, &mut loc)?;
        if le32(&loc, 0) != u64::from(ZIP64_LOCATOR_SIG) {
            return Err(BadZip::EndRecords("no Zip64 locator"));
        }
        let rec_pos = le64(&loc, 8);
        let mut rec = [0u8; ZIP64_EOCD_LEN as usize];
        if rec_pos
            .checked_add(ZIP64_EOCD_LEN)
            .is_none_or(|end| end > loc_pos)
        {
            return Err(BadZip::EndRecords("misplaced Zip64 record"));
        }
        read_at(r, rec_pos, &mut rec)?;
        if le32(&rec, 0) != u64::from(ZIP64_EOCD_SIG)
            || rec_pos
                .checked_add(12)
                .and_then(|p| p.checked_add(le64(&rec, 4)))
                != Some(loc_pos)
        {
            return Err(BadZip::EndRecords("misplaced Zip64 record"));
        }
        if le32(&rec, 16) != 0 || le32(&rec, 20) != 0 || le64(&rec, 24) != le64(&rec, 32) {
            return Err(BadZip::EndRecords("split over several disks"));
        }
        (entries, cd_size, cd_start) = (le64(&rec, 32), le64(&rec, 40), le64(&rec, 48));
        records_start = rec_pos;
    }
    if cd_start.checked_add(cd_size) != Some(records_start) {
        return Err(BadZip::EndRecords(
            "the central directory does not end where the end records start",
        ));
    }
    Ok(End { entries, cd_start })
}

/// Unicode format characters that reorder or hide text (bidi overrides and isolates,
/// zero-width characters): a name holding one can show as another (`facture\u{202E}txt.exe`).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// A name every file system takes as a relative path under the target, never leaving it.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.contains('\0') {
        return Err("NUL byte");
    }
    if name.starts_with('/') {
        return Err("an absolute path: it would escape the target folder");
    }
    if name.contains('\\') {
        return Err("backslash");
    }
    if name.chars().any(char::is_control) {
        return Err("control character");
    }
    if name.chars().any(is_invisible) {
        return Err("invisible or bidi formatting character");
    }
    for seg in name.split('/') {
        match seg {
            "" => return Err("empty segment"),
            "." | ".." => return Err("a `.` or `..` segment: it would escape the target folder"),
            s if s.len() > 255 => return Err("a segment longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

fn unreadable(e: zip::result::ZipError) -> BadZip {
    match e {
        zip::result::ZipError::Io(e) => BadZip::Io(e),
        e => BadZip::Unreadable(e.to_string()),
    }
}

impl<R: Read + Seek> SafeZip<R> {
    /// Reads and checks the whole directory of the zip in `source` (which must start at the
    /// zip's first byte). Nothing is extracted; every refusal happens here.
    pub fn open(mut source: R, limits: &Limits) -> Result<Self, BadZip> {
        let len = source.seek(SeekFrom::End(0))?;
        let end = read_end(&mut source, len, limits.max_trailing)?;
        if end.entries > limits.max_entries as u64 {
            return Err(BadZip::TooManyEntries {
                count: end.entries,
                max: limits.max_entries,
            });
        }
        source.rewind()?;
        let mut archive = zip::ZipArchive::new(source).map_err(unreadable)?;
        if archive.offset() != 0 {
            return Err(BadZip::Prefix(archive.offset()));
        }
        if archive.central_directory_start() != end.cd_start {
            return Err(BadZip::EndRecords(
                "the central directory is not where the end record says",
            ));
        }
        // The crate keys entries by name: a repeated name collapses into one.
        if archive.has_duplicate_names() || archive.len() as u64 != end.entries {
            return Err(BadZip::Duplicate);
        }
        let mut entries = Vec::with_capacity(archive.len());
        let mut by_name = HashMap::with_capacity(archive.len());
        let mut declared = 0u64;
        for index in 0..archive.len() {
            let f = archive.by_index_data(index).map_err(unreadable)?;
            let name = std::str::from_utf8(f.name_raw())
                .map_err(|_| BadZip::NameNotUtf8 { index })?
                .to_string();
            // Kinds first: a directory entry ends in `/`, which is not a clean name either.
            // Type bits of the Unix mode, and the MS-DOS directory attribute.
            let kind = f.unix_mode().map(|m| m & 0o170_000);
            if f.is_dir()
                || f.is_symlink()
                || kind.is_some_and(|k| k != 0 && k != 0o100_000)
                || f.external_attributes() & 0x10 != 0
            {
                return Err(BadZip::NotRegular(name));
            }
            check_name(&name).map_err(|why| BadZip::BadName {
                name: name.clone(),
                why,
            })?;
            // A Unicode-path extra field makes other tools show (and write) another name.
            if f.name().ok().as_deref() != Some(name.as_str()) {
                return Err(BadZip::BadName {
                    name,
                    why: "a second, different name in an extra field",
                });
            }
            if f.encrypted() {
                return Err(BadZip::Encrypted(name));
            }
            if f.compression() != zip::CompressionMethod::Stored {
                return Err(BadZip::Compressed(name));
            }
            if f.compressed_size() != f.size() {
                return Err(BadZip::LocalHeader {
                    name,
                    detail: "a stored entry with two different sizes".into(),
                });
            }
            declared = declared.saturating_add(f.size());
            let entry = Entry {
                name: name.clone(),
                size: f.size(),
                crc32: f.crc32(),
                index,
            };
            if by_name.insert(name, entries.len()).is_some() {
                return Err(BadZip::Duplicate);
            }
            entries.push(entry);
        }
        if archive.has_overlapping_entries().map_err(unreadable)? {
            return Err(BadZip::Overlap);
        }
        if declared > len {
            return Err(BadZip::TooLarge {
                declared,
                input: len,
            });
        }
        // Entry by entry first, so that the message names the entry; then the whole archive,
        // which also finds local headers that no central record lists.
        for e in &entries {
            let opts = zip::ZipReadOptions::new().enforce_header_consistency(true);
            if let Err(err) = archive.by_index_with_options(e.index, opts) {
                return Err(match unreadable(err) {
                    BadZip::Unreadable(detail) => BadZip::LocalHeader {
                        name: e.name.clone(),
                        detail,
                    },
                    other => other,
                });
            }
        }
        archive.validate_header_consistency().map_err(unreadable)?;
        Ok(SafeZip {
            archive,
            entries,
            by_name,
        })
    }

    /// The entries, in central-directory order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// A reader of the entry's bytes: it yields at most the declared size and fails at the end
    /// unless exactly that many bytes with the declared CRC-32 came out.
    pub fn reader(&mut self, name: &str) -> Result<EntryReader<'_, R>, BadZip> {
        let e = self
            .get(name)
            .cloned()
            .ok_or_else(|| BadZip::Io(io::Error::new(io::ErrorKind::NotFound, name)))?;
        let inner = self.archive.by_index_raw(e.index).map_err(unreadable)?;
        Ok(EntryReader {
            inner: inner.take(e.size),
            left: e.size,
            crc: crc32fast::Hasher::new(),
            entry: e,
        })
    }

    /// A small entry read whole as text, refused when larger than `limit`.
    pub fn read_text(&mut self, name: &str, limit: u64) -> Result<String, BadZip> {
        let size = self.get(name).map(|e| e.size).unwrap_or(0);
        if size > limit {
            return Err(BadZip::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name} is too large ({size} bytes)"),
            )));
        }
        let mut s = String::new();
        self.reader(name)?.read_to_string(&mut s)?;
        Ok(s)
    }
}

/// The bytes of one entry, bounded by its declared size, with its CRC-32 checked at the end.
pub struct EntryReader<'a, R: Read + Seek> {
    inner: io::Take<zip::read::ZipFile<'a, R>>,
    left: u64,
    crc: crc32fast::Hasher,
    entry: Entry,
}

impl<R: Read + Seek> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        if n == 0 {
            if self.left != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} is cut short", self.entry.name),
                ));
            }
            if self.crc.clone().finalize() != self.entry.crc32 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not match its CRC-32", self.entry.name),
                ));
            }
        }
        Ok(n)
    }
}

/// One entry to write: its size and CRC-32 must be known before its first byte.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub name: &'a str,
    pub size: u64,
    pub crc32: u32,
    /// Unix permission bits (the type is always "regular file").
    pub mode: u32,
    /// Shown by zip tools as the file's date; `None` is the zip epoch (1980-01-01).
    pub modified: Option<jiff::civil::DateTime>,
}

struct Written {
    name: Vec<u8>,
    size: u64,
    crc32: u32,
    mode: u32,
    dos: (u16, u16),
    offset: u64,
}

struct Current {
    size: u64,
    crc32: u32,
    written: u64,
    hasher: crc32fast::Hasher,
    name: String,
}

/// Writes a stored zip to any `Write` (an age stream included) with sizes and CRC-32 in the
/// local headers, no data descriptors, and Zip64 records only for what exceeds 32 bits.
pub struct StoredZipWriter<W: Write> {
    out: W,
    pos: u64,
    done: Vec<Written>,
    current: Option<Current>,
    /// Tests set it to exercise the Zip64 records without writing 4 GiB.
    zip64_always: bool,
}

fn dos_time(t: Option<jiff::civil::DateTime>) -> (u16, u16) {
    let Some(t) = t else {
        return (0, (1 << 5) | 1);
    };
    let year = t.year().clamp(1980, 2107) as u16;
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    let date = ((year - 1980) << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    (time, date)
}

/// General-purpose flags: bit 11, names are UTF-8. Bit 3 (data descriptor) is never set.
const FLAGS: u16 = 1 << 11;
/// Version made by: Unix (3), spec 6.3, so that readers take the mode from the attributes.
const MADE_BY: u16 = (3 << 8) | 63;

impl<W: Write> StoredZipWriter<W> {
    pub fn new(out: W) -> Self {
        StoredZipWriter {
            out,
            pos: 0,
            done: Vec::new(),
            current: None,
            zip64_always: false,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Starts an entry: writes its local header. Its bytes follow through `Write`.
    pub fn start(&mut self, e: &NewEntry<'_>) -> io::Result<()> {
        self.end_entry()?;
        check_name(e.name).map_err(|why| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot store {:?} in a zip: {why}", e.name),
            )
        })?;
        let name = e.name.as_bytes();
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        let zip64 = self.zip64_always || e.size >= MAX32;
        let dos = dos_time(e.modified);
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        h.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        h.extend_from_slice(&(if zip64 { 45u16 } else { 10 }).to_le_bytes());
        h.extend_from_slice(&FLAGS.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&dos.0.to_le_bytes());
        h.extend_from_slice(&dos.1.to_le_bytes());
        h.extend_from_slice(&e.crc32.to_le_bytes());
        let size32 = if zip64 { MAX32 } else { e.size } as u32;
        h.extend_from_slice(&size32.to_le_bytes());
        h.extend_from_slice(&size32.to_le_bytes());
        h.extend_from_slice(&name_len.to_le_bytes());
        h.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
        h.extend_from_slice(name);
        if zip64 {
            h.extend_from_slice(&1u16.to_le_bytes());
            h.extend_from_slice(&16u16.to_le_bytes());
            h.extend_from_slice(&e.size.to_le_bytes());
            h.extend_from_slice(&e.size.to_le_bytes());
        }
        let offset = self.pos;
        self.put(&h)?;
        self.done.push(Written {
            name: name.to_vec(),
            size: e.size,
            crc32: e.crc32,
            mode: e.mode & 0o7777,
            dos,
            offset,
        });
        self.current = Some(Current {
            size: e.size,
            crc32: e.crc32,
            written: 0,
            hasher: crc32fast::Hasher::new(),
            name: e.name.to_string(),
        });
        Ok(())
    }

    /// Checks that the entry got exactly the bytes its header announced.
    fn end_entry(&mut self) -> io::Result<()> {
        if let Some(c) = self.current.take()
            && (c.written != c.size || c.hasher.finalize() != c.crc32)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} changed while being stored ({} bytes, {} announced, or another CRC-32)",
                    c.name, c.written, c.size
                ),
            ));
        }
        Ok(())
    }

    /// Writes the central directory and end records; returns the output, not flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.end_entry()?;
        let cd_start = self.pos;
        let done = std::mem::take(&mut self.done);
        for w in &done {
            let big_size = self.zip64_always || w.size >= MAX32;
            let big_offset = self.zip64_always || w.offset >= MAX32;
            let mut extra = Vec::new();
            if big_size {
                extra.extend_from_slice(&w.size.to_le_bytes());
                extra.extend_from_slice(&w.size.to_le_bytes());
            }
            if big_offset {
                extra.extend_from_slice(&w.offset.to_le_bytes());
            }
            let mut h = Vec::with_capacity(46 + w.name.len() + 28);
            h.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            h.extend_from_slice(&MADE_BY.to_le_bytes());
            let needed: u16 = if big_size || big_offset { 45 } else { 10 };
            h.extend_from_slice(&needed.to_le_bytes());
            h.extend_from_slice(&FLAGS.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&w.dos.0.to_le_bytes());
            h.extend_from_slice(&w.dos.1.to_le_bytes());
            h.extend_from_slice(&w.crc32.to_le_bytes());
            let size32 = if big_size { MAX32 } else { w.size } as u32;
            h.extend_from_slice(&size32.to_le_bytes());
            h.extend_from_slice(&size32.to_le_bytes());
            h.extend_from_slice(&(w.name.len() as u16).to_le_bytes());
            let extra_len = if extra.is_empty() { 0 } else { extra.len() + 4 };
            h.extend_from_slice(&(extra_len as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // comment
            h.extend_from_slice(&0u16.to_le_bytes()); // disk
            h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            h.extend_from_slice(&((0o100_000 | w.mode) << 16).to_le_bytes());
            let offset32 = if big_offset { MAX32 } else { w.offset } as u32;
            h.extend_from_slice(&offset32.to_le_bytes());
            h.extend_from_slice(&w.name);
            if !extra.is_empty() {
                h.extend_from_slice(&1u16.to_le_bytes());
                h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
                h.extend_from_slice(&extra);
            }
            self.put(&h)?;
        }
        let count = done.len() as u64;
        let cd_size = self.pos - cd_start;
        let zip64 = self.zip64_always || count >= MAX16 || cd_start >= MAX32 || cd_size >= MAX32;
        if zip64 {
            let rec_pos = self.pos;
            let mut r = Vec::with_capacity((ZIP64_EOCD_LEN + ZIP64_LOCATOR_LEN) as usize);
            r.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
            r.extend_from_slice(&(ZIP64_EOCD_LEN - 12).to_le_bytes());
            r.extend_from_slice(&MADE_BY.to_le_bytes());
            r.extend_from_slice(&45u16.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&cd_size.to_le_bytes());
            r.extend_from_slice(&cd_start.to_le_bytes());
            r.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&rec_pos.to_le_bytes());
            r.extend_from_slice(&1u32.to_le_bytes());
            self.put(&r)?;
        }
        let c16 = if zip64 { MAX16 } else { count } as u16;
        let mut e = Vec::with_capacity(EOCD_LEN as usize);
        e.extend_from_slice(&EOCD_SIG.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(&c16.to_le_bytes());
        e.extend_from_slice(&c16.to_le_bytes());
        e.extend_from_slice(&(if zip64 { MAX32 } else { cd_size } as u32).to_le_bytes());
        e.extend_from_slice(&(if zip64 { MAX32 } else { cd_start } as u32).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        self.put(&e)?;
        // No flush here: an age armored writer breaks its line layout when flushed midway.
        // The caller finishes (and flushes) the output.
        Ok(self.out)
    }

    /// Stores a whole in-memory entry.
    pub fn add_bytes(
        &mut self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        modified: Option<jiff::civil::DateTime>,
    ) -> io::Result<()> {
        self.start(&NewEntry {
            name,
            size: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
            mode,
            modified,
        })?;
        self.write_all(bytes)
    }
}

impl<W: Write> Write for StoredZipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(c) = self.current.as_mut() else {
            return Err(io::Error::other("no zip entry started"));
        };
        if c.written + buf.len() as u64 > c.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is longer than the {} bytes announced", c.name, c.size),
            ));
        }
        let n = self.out.write(buf)?;
        c.hasher.update(&buf[..n]);
        c.written += n as u64;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// CRC-32 of everything `r` yields, for a first pass before an entry's header is written.
pub fn crc32_of(r: &mut dyn Read) -> io::Result<(u32, u64)> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((h.finalize(), n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const LIMITS: Limits = Limits {
        max_entries: 100,
        max_trailing: 0,
    };

    fn write(entries: &[(&str, &[u8])], zip64: bool) -> Vec<u8> {
        let mut w = StoredZipWriter::new(Vec::new());
        w.zip64_always = zip64;
        for (name, body) in entries {
            w.add_bytes(name, body, 0o644, None).unwrap();
        }
        w.finish().unwrap()
    }

    fn open(bytes: &[u8]) -> Result<SafeZip<Cursor<&[u8]>>, BadZip> {
        SafeZip::open(Cursor::new(bytes), &LIMITS)
    }

    fn read_all(z: &mut SafeZip<Cursor<&[u8]>>, name: &str) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        z.reader(name).unwrap().read_to_end(&mut v)?;
        Ok(v)
    }

    /// Where the central directory starts, for a zip without Zip64 records.
    fn cd_start(z: &[u8]) -> usize {
        le32(z, z.len() - 6) as usize
    }

    const FILES: &[(&str, &[u8])] = &[
        ("grant.toml", b"format = 1\n"),
        ("documents/imagerie/2024-01-02 Radio é.png", b"\x89PNG..."),
        ("empty", b""),
    ];

    #[test]
    fn round_trip_byte_for_byte_with_and_without_zip64() {
        for zip64 in [false, true] {
            let bytes = write(FILES, zip64);
            let mut z = open(&bytes).unwrap();
            let names: Vec<&str> = z.entries().iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, FILES.iter().map(|f| f.0).collect::<Vec<_>>());
            for (name, body) in FILES {
                assert_eq!(read_all(&mut z, name).unwrap(), *body, "{name}");
            }
            // The zip crate's own reader agrees, sizes and CRC-32 in the local headers.
            let mut a = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
            a.validate_header_consistency().unwrap();
            let f = a.by_index(1).unwrap();
            assert!(!f.flags().is_using_data_descriptor());
            assert_eq!(f.unix_mode(), Some(0o100644));
        }
    }

    #[test]
    fn zips_with_data_descriptors_from_earlier_builds_still_read() {
        // What carnet wrote before: the zip crate's streaming writer, sizes after the data.
        let mut z = zip::ZipWriter::new_stream(Vec::new());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o600);
        for (name, body) in FILES {
            z.start_file(*name, opts).unwrap();
            z.write_all(body).unwrap();
        }
        let bytes = z.finish().unwrap().into_inner();
        let mut z = open(&bytes).unwrap();
        for (name, body) in FILES {
            assert_eq!(read_all(&mut z, name).unwrap(), *body, "{name}");
        }
    }

    #[test]
    fn writer_refuses_an_entry_that_differs_from_its_header() {
        let mut w = StoredZipWriter::new(Vec::new());
        let e = NewEntry {
            name: "a",
            size: 3,
            crc32: crc32fast::hash(b"abc"),
            mode: 0o600,
            modified: None,
        };
        w.start(&e).unwrap();
        assert!(w.write_all(b"abcd").is_err());
        let mut w = StoredZipWriter::new(Vec::new());
        w.start(&e).unwrap();
        w.write_all(b"abd").unwrap();
        assert!(w.finish().is_err());
        let mut w = StoredZipWriter::new(Vec::new());
        w.start(&e).unwrap();
        w.write_all(b"ab").unwrap();
        assert!(w.finish().is_err());
    }

    #[test]
    fn central_records_aliasing_one_local_file_are_refused() {
        let one = write(&[("a", b"0123456789")], false);
        let cd = cd_start(&one);
        let record = &one[cd..one.len() - EOCD_LEN as usize];
        let mut bomb = one[..cd].to_vec();
        for name in [b'a', b'b', b'c', b'd'] {
            let mut r = record.to_vec();
            r[46] = name;
            bomb.extend_from_slice(&r);
        }
        let mut eocd = one[one.len() - EOCD_LEN as usize..].to_vec();
        eocd[8..10].copy_from_slice(&4u16.to_le_bytes());
        eocd[10..12].copy_from_slice(&4u16.to_le_bytes());
        eocd[12..16].copy_from_slice(&(4 * record.len() as u32).to_le_bytes());
        bomb.extend_from_slice(&eocd);
        assert!(
            matches!(open(&bomb), Err(BadZip::Overlap)),
            "{:?}",
            open(&bomb).err()
        );
    }

    #[test]
    fn a_local_header_that_disagrees_with_the_central_directory_is_refused() {
        let good = write(&[("a", b"0123456789"), ("b", b"xyz")], false);
        // Name (offset 30), CRC-32 (14) and size (22) of the first local header.
        for at in [30, 14, 22] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            match open(&bad) {
                Err(BadZip::LocalHeader { name, .. }) => assert_eq!(name, "a", "byte {at}"),
                other => panic!("byte {at}: {:?}", other.err()),
            }
        }
    }

    #[test]
    fn a_flipped_data_byte_fails_the_crc_at_the_end_of_the_entry() {
        let mut bytes = write(&[("a", b"0123456789")], false);
        bytes[31] ^= 1;
        let mut z = open(&bytes).unwrap();
        let err = read_all(&mut z, "a").unwrap_err();
        assert!(err.to_string().contains("CRC-32"), "{err}");
    }

    #[test]
    fn bytes_before_or_after_the_zip_are_refused_unless_allowed() {
        let good = write(FILES, false);
        let mut after = good.clone();
        after.extend_from_slice(b"junk");
        assert!(open(&after).is_err());
        let lenient = Limits {
            max_trailing: 4,
            ..LIMITS
        };
        assert!(SafeZip::open(Cursor::new(&after), &lenient).is_ok());
        let mut before = b"junk".to_vec();
        before.extend_from_slice(&good);
        assert!(open(&before).is_err());
        assert!(open(&good[..good.len() - 1]).is_err());
    }

    #[test]
    fn entry_count_is_bounded_before_reading_the_directory() {
        let many: Vec<(String, &[u8])> = (0..101).map(|i| (format!("f{i}"), &b""[..])).collect();
        let refs: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        let bytes = write(&refs, false);
        assert!(matches!(
            open(&bytes),
            Err(BadZip::TooManyEntries { count: 101, .. })
        ));
    }

    #[test]
    fn links_directories_and_devices_are_refused() {
        let good = write(&[("a", b"x")], false);
        let cd = cd_start(&good);
        for mode in [0o120_777u32, 0o040_755, 0o020_644, 0o010_644] {
            let mut bad = good.clone();
            bad[cd + 38..cd + 42].copy_from_slice(&(mode << 16).to_le_bytes());
            assert!(matches!(open(&bad), Err(BadZip::NotRegular(_))), "{mode:o}");
        }
    }

    #[test]
    fn compressed_and_encrypted_entries_are_refused() {
        let good = write(&[("a", b"x")], false);
        let cd = cd_start(&good);
        let mut bad = good.clone();
        bad[cd + 10] = 8;
        bad[8] = 8;
        assert!(matches!(open(&bad), Err(BadZip::Compressed(_))));
        let mut bad = good.clone();
        bad[cd + 8] |= 1;
        bad[6] |= 1;
        assert!(matches!(open(&bad), Err(BadZip::Encrypted(_))));
    }

    #[test]
    fn any_flipped_byte_or_cut_is_refused_or_read_without_panic() {
        for zip64 in [false, true] {
            let good = write(FILES, zip64);
            let mut variants: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
            for at in 0..good.len() {
                for x in [0x01, 0x80, 0xFF] {
                    let mut v = good.clone();
                    v[at] ^= x;
                    variants.push(v);
                }
            }
            for v in &variants {
                if let Ok(mut z) = open(v) {
                    let names: Vec<String> = z.entries().iter().map(|e| e.name.clone()).collect();
                    for n in names {
                        let mut out = Vec::new();
                        if let Ok(mut r) = z.reader(&n) {
                            let _ = r.read_to_end(&mut out);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn names_must_be_clean_relative_paths() {
        assert!(check_name("documents/imagerie/2024-01-02 Radio.png").is_ok());
        let long = "x".repeat(256);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            "a\nb",
            "facture\u{202E}txt.exe",
            "a\u{200B}b",
            long.as_str(),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let mut w = StoredZipWriter::new(Vec::new());
        assert!(w.add_bytes("../x", b"", 0o600, None).is_err());
    }
}
