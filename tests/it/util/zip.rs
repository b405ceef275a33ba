//! The one zip forger and reader of the tests. Hostile zips (bundles, backups) are built here
//! byte by byte, because a real zip library refuses to write what the tests need: any name
//! (absolute, `..`, duplicate), any unix mode (symlinks, folders, devices), sizes that lie,
//! compressed entries, and several central-directory records naming one local header.
//!
//! Only what carnet itself writes is read back: no data descriptors, no ZIP64.

use std::fs;
use std::path::Path;

/// One zip entry as it will be written.
#[derive(Debug, Clone, PartialEq)]
pub struct ZipEntry {
    pub name: String,
    /// The bytes stored in the entry (already compressed when `method` is 8).
    pub data: Vec<u8>,
    /// Unix mode (file type and permissions), written in the high 16 bits of external attrs.
    pub mode: u32,
    /// 0 = stored, 8 = deflated.
    pub method: u16,
    /// Sizes written in both headers instead of the data's length.
    pub declared_size: Option<u32>,
    /// Writes no local header of its own: the central record points at the local header of
    /// the entry at this index (overlapping entries, as in "zip bombs" that reuse one body).
    pub shares_local_with: Option<usize>,
}

impl ZipEntry {
    /// A stored regular file, mode 0644.
    pub fn file(name: &str, data: &[u8]) -> ZipEntry {
        ZipEntry {
            name: name.to_string(),
            data: data.to_vec(),
            mode: 0o100644,
            method: 0,
            declared_size: None,
            shares_local_with: None,
        }
    }

    /// A symlink to `target` (the link text is the entry's data, as Info-ZIP writes it).
    pub fn symlink(name: &str, target: &str) -> ZipEntry {
        ZipEntry {
            mode: 0o120777,
            ..ZipEntry::file(name, target.as_bytes())
        }
    }

    /// A valid deflate entry holding `plain` (in stored deflate blocks: no compressor needed,
    /// and any inflater reads it).
    pub fn deflated(name: &str, plain: &[u8]) -> ZipEntry {
        let mut data = Vec::with_capacity(plain.len() + plain.len() / 65_535 * 5 + 5);
        let mut chunks = plain.chunks(65_535).peekable();
        if chunks.peek().is_none() {
            data.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        while let Some(c) = chunks.next() {
            let last = chunks.peek().is_none();
            data.push(u8::from(last));
            let len = c.len() as u16;
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(&(!len).to_le_bytes());
            data.extend_from_slice(c);
        }
        ZipEntry {
            method: 8,
            declared_size: None,
            ..ZipEntry::file(name, &data)
        }
    }

    /// A second central record named `name` over the local header and body of entry `index`.
    pub fn alias(name: &str, index: usize) -> ZipEntry {
        ZipEntry {
            shares_local_with: Some(index),
            ..ZipEntry::file(name, b"")
        }
    }
}

/// The names of the entries of the zip file at `path`, in central-directory order, duplicates
/// kept (a zip library would fold them).
pub fn zip_names(path: &Path) -> Vec<String> {
    zip_read(&fs::read(path).unwrap())
        .into_iter()
        .map(|e| e.name)
        .collect()
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn le16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn le32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn rd16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}
fn rd32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Writes a zip holding exactly `entries`, in order, names flagged UTF-8.
pub fn zip_write(entries: &[ZipEntry]) -> Vec<u8> {
    assert!(entries.len() < 0xffff, "no ZIP64 here");
    let mut out = Vec::new();
    let mut central = Vec::new();
    let mut offsets: Vec<u32> = Vec::with_capacity(entries.len());
    // 2024-03-01 12:00:00 in DOS format.
    let (time, date) = (12u16 << 11, ((2024u16 - 1980) << 9) | (3 << 5) | 1);
    for e in entries {
        let name = e.name.as_bytes();
        // A shared body is described by the entry that owns it: same sizes, same checksum.
        let body = match e.shares_local_with {
            Some(i) => {
                assert!(i < offsets.len(), "an alias names an earlier entry");
                &entries[i]
            }
            None => e,
        };
        let crc = crc32(&body.data);
        let size = body.declared_size.unwrap_or(body.data.len() as u32);
        let offset = match e.shares_local_with {
            Some(i) => offsets[i],
            None => {
                let offset = out.len() as u32;
                le32(&mut out, 0x0403_4b50);
                le16(&mut out, 20);
                le16(&mut out, 0x0800);
                le16(&mut out, e.method);
                le16(&mut out, time);
                le16(&mut out, date);
                le32(&mut out, crc);
                le32(&mut out, size);
                le32(&mut out, size);
                le16(&mut out, name.len() as u16);
                le16(&mut out, 0);
                out.extend_from_slice(name);
                out.extend_from_slice(&e.data);
                offset
            }
        };
        offsets.push(offset);

        le32(&mut central, 0x0201_4b50);
        le16(&mut central, (3 << 8) | 20);
        le16(&mut central, 20);
        le16(&mut central, 0x0800);
        le16(&mut central, body.method);
        le16(&mut central, time);
        le16(&mut central, date);
        le32(&mut central, crc);
        le32(&mut central, size);
        le32(&mut central, size);
        le16(&mut central, name.len() as u16);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le32(&mut central, e.mode << 16);
        le32(&mut central, offset);
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    le32(&mut out, 0x0605_4b50);
    le16(&mut out, 0);
    le16(&mut out, 0);
    le16(&mut out, entries.len() as u16);
    le16(&mut out, entries.len() as u16);
    le32(&mut out, cd_size);
    le32(&mut out, cd_offset);
    le16(&mut out, 0);
    out
}

/// Reads the entries of a zip through its central directory, data as stored (sizes from the
/// central directory). An entry whose local header another entry already used comes back as
/// an alias of it.
pub fn zip_read(z: &[u8]) -> Vec<ZipEntry> {
    let eocd = (0..=z.len().saturating_sub(22))
        .rev()
        .find(|&i| z.get(i..i + 4) == Some(&[0x50, 0x4b, 0x05, 0x06]))
        .expect("end of central directory");
    let count = rd16(z, eocd + 10);
    let mut at = rd32(z, eocd + 16);
    let mut entries: Vec<ZipEntry> = Vec::with_capacity(count);
    let mut locals: Vec<usize> = Vec::with_capacity(count);
    for _ in 0..count {
        assert_eq!(rd32(z, at), 0x0201_4b50, "central directory entry");
        let method = rd16(z, at + 10) as u16;
        let csize = rd32(z, at + 20);
        let (n, x, c) = (rd16(z, at + 28), rd16(z, at + 30), rd16(z, at + 32));
        let mode = (rd32(z, at + 38) >> 16) as u32;
        let local = rd32(z, at + 42);
        let name = String::from_utf8(z[at + 46..at + 46 + n].to_vec()).expect("a UTF-8 name");
        at += 46 + n + x + c;
        if let Some(i) = locals.iter().position(|&l| l == local) {
            locals.push(local);
            entries.push(ZipEntry {
                mode,
                ..ZipEntry::alias(&name, i)
            });
            continue;
        }
        assert_eq!(rd32(z, local), 0x0403_4b50, "local header of {name}");
        let data_at = local + 30 + rd16(z, local + 26) + rd16(z, local + 28);
        locals.push(local);
        entries.push(ZipEntry {
            name,
            data: z[data_at..data_at + csize].to_vec(),
            mode,
            method,
            declared_size: None,
            shares_local_with: None,
        });
    }
    entries
}

/// How to derive a forged zip from a real one.
#[derive(Default)]
pub struct Forge<'a> {
    /// Entries whose middle byte is flipped.
    pub flip: &'a [&'a str],
    /// Entries left out.
    pub drop: &'a [&'a str],
    /// Entries appended at the end, as given.
    pub add: Vec<ZipEntry>,
}

/// Rewrites the zip `src` into `dest`, applying `f`; entries keep their names, modes and
/// methods.
pub fn forge(src: &Path, dest: &Path, f: &Forge) {
    let mut entries = zip_read(&fs::read(src).unwrap());
    assert!(
        entries.iter().all(|e| e.shares_local_with.is_none()),
        "forge rewrites plain zips only"
    );
    entries.retain(|e| !f.drop.contains(&e.name.as_str()));
    for e in &mut entries {
        if f.flip.contains(&e.name.as_str()) {
            assert!(!e.data.is_empty(), "{} is empty", e.name);
            let i = e.data.len() / 2;
            e.data[i] ^= 1;
        }
    }
    entries.extend(f.add.iter().cloned());
    fs::write(dest, zip_write(&entries)).unwrap();
}

#[test]
fn the_forger_writes_what_the_zip_crate_reads() {
    let entries = vec![
        ZipEntry::file("a.txt", b"hello"),
        ZipEntry::deflated("b.txt", &vec![7u8; 70_000]),
        ZipEntry::alias("c.txt", 0),
    ];
    let bytes = zip_write(&entries);
    assert_eq!(zip_read(&bytes), entries, "read back as written");
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut z.by_name(name).unwrap(), &mut out).unwrap();
        out
    };
    assert_eq!(read("a.txt"), b"hello");
    assert_eq!(read("c.txt"), b"hello", "an alias reads its owner's body");
}
