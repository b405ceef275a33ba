//! Property tests of the readers that take files from someone else's hands (issue 9): the
//! stored-zip reader of bundles and backups, the signed index's parts, the metadata root and
//! shards, age files and their armor. On arbitrary and mutated inputs each reader must return
//! (an error is fine) without panicking, and without holding more memory than a fixed multiple
//! of its input: a few bytes that claim gigabytes must not get them.
//!
//! The mutations start from valid inputs made by carnet's own writers, so that most cases get
//! past the first check and reach the deeper ones; sizes and counts are overwritten with the
//! extreme values (0, 0xFFFF, 0xFFFFFFFF) that hostile headers use. Case counts keep the module
//! within a few seconds in a debug build.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use proptest::prelude::*;
use proptest::sample::Index as At;
use serde_json::{Value, json};

use carnet::catalog::{self, Root, ShardRef};
use carnet::index::{self, FileEntry, Index, Part};
use carnet::zipsafe::{Limits, SafeZip, StoredZipWriter};

/// Peak bytes a reader may hold: a fixed multiple of its input, plus the fixed buffers readers
/// use (age's 64 KiB chunks, a 64 KiB armor header window, `BufReader`s).
fn memory_bound(input_len: usize) -> u64 {
    64 * input_len as u64 + (1 << 20)
}

/// Runs `f` on this thread, failing the case when it panics or holds too much memory at once.
fn bounded(input_len: usize, f: impl FnOnce()) -> Result<(), TestCaseError> {
    let info = allocation_counter::measure(f);
    prop_assert!(
        info.bytes_max <= memory_bound(input_len),
        "{} bytes held at once for a {input_len}-byte input",
        info.bytes_max
    );
    Ok(())
}

#[test]
fn the_memory_bound_is_measured() {
    // The counter must be the active allocator, or every bound above would hold vacuously.
    let info = allocation_counter::measure(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(5000));
    });
    assert!(info.bytes_max >= 5000, "{info:?}");
    assert!(bounded(10, || drop(std::hint::black_box(vec![0u8; 2 << 20]))).is_err());
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failing inputs become named regression tests below, not files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Byte mutations

#[derive(Debug, Clone)]
enum Mutation {
    Xor(At, u8),
    Put16(At, u16),
    Put32(At, u32),
    Truncate(At),
    Insert(At, Vec<u8>),
    Remove(At, u8),
    /// Copies a run of the input elsewhere (a second central record, a repeated header).
    Duplicate(At, At, u8),
}

/// Values that size, count and offset fields take in hostile zips.
fn extreme32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(0xFFFF),
        Just(0x7FFF_FFFF),
        Just(u32::MAX),
        any::<u32>()
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<At>(), 1..=255u8).prop_map(|(i, x)| Mutation::Xor(i, x)),
        2 => (any::<At>(), prop_oneof![Just(0u16), Just(u16::MAX), any::<u16>()])
            .prop_map(|(i, v)| Mutation::Put16(i, v)),
        3 => (any::<At>(), extreme32()).prop_map(|(i, v)| Mutation::Put32(i, v)),
        1 => any::<At>().prop_map(Mutation::Truncate),
        1 => (any::<At>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<At>(), 1..64u8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<At>(), any::<At>(), 1..64u8).prop_map(|(a, b, n)| Mutation::Duplicate(a, b, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        if let Mutation::Insert(_, b) = m {
            bytes.extend_from_slice(b);
        }
        return;
    }
    let put = |bytes: &mut Vec<u8>, i: usize, v: &[u8]| {
        for (k, b) in v.iter().enumerate() {
            if let Some(slot) = bytes.get_mut(i + k) {
                *slot = *b;
            }
        }
    };
    match m {
        Mutation::Xor(i, x) => bytes[i.index(len)] ^= x,
        Mutation::Put16(i, v) => put(bytes, i.index(len), &v.to_le_bytes()),
        Mutation::Put32(i, v) => put(bytes, i.index(len), &v.to_le_bytes()),
        Mutation::Truncate(i) => bytes.truncate(i.index(len)),
        Mutation::Insert(i, b) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = i.index(len);
            let end = (at + *n as usize).min(len);
            bytes.drain(at..end);
        }
        Mutation::Duplicate(from, to, n) => {
            let a = from.index(len);
            let run: Vec<u8> = bytes[a..(a + *n as usize).min(len)].to_vec();
            let at = to.index(len + 1);
            bytes.splice(at..at, run);
        }
    }
}

fn mutated(base: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut b = base.to_vec();
    for m in ms {
        apply(&mut b, m);
    }
    b
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

// ---------------------------------------------------------------------------------------------
// JSON mutations: one node of a valid document replaced by a hostile value, or dropped

fn nasty_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1.5e308)),
        Just(json!(true)),
        Just(json!("")),
        Just(json!("../../etc/passwd")),
        Just(json!("/etc/passwd")),
        Just(json!("objects/ab/../../../x")),
        Just(json!("index/ab.json")),
        Just(json!("objects/ab/ab")),
        Just(json!("a\u{202e}b")),
        Just(json!([])),
        Just(json!({})),
        Just(json!({"size": u64::MAX, "blake3": ""})),
        "[0-9a-f]{0,40}".prop_map(Value::String),
        ".{0,24}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
    ]
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Replaces the `n`th node (pre-order) with `new`, or removes it from its parent when `new`
/// is `None`. Returns whether it was found.
fn edit_nth(v: &mut Value, n: &mut usize, new: &Option<Value>) -> bool {
    let children: Vec<&mut Value> = match v {
        Value::Array(a) => a.iter_mut().collect(),
        Value::Object(o) => o.values_mut().collect(),
        _ => Vec::new(),
    };
    let mut remove = None;
    for (k, child) in children.into_iter().enumerate() {
        if *n == 0 {
            match new {
                Some(x) => *child = x.clone(),
                None => remove = Some(k),
            }
            if remove.is_none() {
                return true;
            }
            break;
        }
        *n -= 1;
        if edit_nth(child, n, new) {
            return true;
        }
    }
    match (remove, v) {
        (Some(k), Value::Array(a)) => {
            a.remove(k);
            true
        }
        (Some(k), Value::Object(o)) => {
            let key = o.keys().nth(k).cloned();
            key.is_some_and(|key| o.remove(&key).is_some())
        }
        _ => false,
    }
}

#[derive(Debug, Clone)]
struct JsonEdit {
    at: At,
    /// `None` drops the node.
    new: Option<Value>,
}

fn json_edit() -> impl Strategy<Value = JsonEdit> {
    (any::<At>(), prop::option::weighted(0.85, nasty_value()))
        .prop_map(|(at, new)| JsonEdit { at, new })
}

fn json_edited(base: &Value, edits: &[JsonEdit]) -> Vec<u8> {
    let mut v = base.clone();
    for e in edits {
        let nodes = count_nodes(&v);
        if nodes > 1 {
            let mut n = e.at.index(nodes - 1);
            edit_nth(&mut v, &mut n, &e.new);
        }
    }
    serde_json::to_vec(&v).unwrap()
}

fn json_edits() -> impl Strategy<Value = Vec<JsonEdit>> {
    prop::collection::vec(json_edit(), 1..4)
}

// ---------------------------------------------------------------------------------------------
// Zips

fn limits() -> Limits {
    Limits {
        max_entries: 64,
        max_trailing: 1024,
    }
}

/// A small valid stored zip, as carnet writes bundles and backups.
fn sample_zip() -> Vec<u8> {
    let mut w = StoredZipWriter::new(Vec::new());
    w.add_bytes(
        "grant.toml",
        b"[grant]\nid = \"abc\"\n",
        0o600,
        Some(jiff::civil::date(2026, 1, 2).at(3, 4, 5, 0)),
    )
    .unwrap();
    w.add_bytes("documents/ordonnance.txt", &[b'x'; 200], 0o600, None)
        .unwrap();
    w.add_bytes("empty", b"", 0o600, None).unwrap();
    w.finish().unwrap()
}

/// Opens a zip and reads every entry to the end, as `open` and `restore` do.
fn read_zip(bytes: &[u8]) {
    let Ok(mut zip) = SafeZip::open(Cursor::new(bytes), &limits()) else {
        return;
    };
    let names: Vec<String> = zip.entries().iter().map(|e| e.name.clone()).collect();
    for name in names {
        if let Ok(mut r) = zip.reader(&name) {
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        }
        let _ = zip.read_text(&name, 1 << 16);
    }
}

/// An overlapping-entry zip bomb: 2,000 central records all pointing at one stored body of
/// 64 KiB (128 MiB of output from a 200 KiB file). Refused by the reader, holding no more than
/// a fixed multiple of the file, and never reading an alias.
#[test]
fn an_overlapping_entry_bomb_is_refused_in_bounded_memory() {
    let mut w = StoredZipWriter::new(Vec::new());
    w.add_bytes("documents/body.bin", &[7u8; 64 << 10], 0o600, None)
        .unwrap();
    let zip = w.finish().unwrap();
    // Central record of the one entry, then the end record (no comment, no Zip64).
    let eocd = zip.len() - 22;
    let cd_size = u32::from_le_bytes(zip[eocd + 12..eocd + 16].try_into().unwrap()) as usize;
    let cd = eocd - cd_size;
    let record = zip[cd..eocd].to_vec();
    let name_len = u16::from_le_bytes(record[28..30].try_into().unwrap()) as usize;
    let mut bomb = zip[..cd].to_vec();
    let n = 2000u16;
    for i in 0..n {
        let alias = format!("documents/alias-{i:05}.bin");
        let mut r = record[..46].to_vec();
        r[28..30].copy_from_slice(&(alias.len() as u16).to_le_bytes());
        r.extend_from_slice(alias.as_bytes());
        r.extend_from_slice(&record[46 + name_len..]);
        bomb.extend_from_slice(&r);
    }
    let cd_len = (bomb.len() - cd) as u32;
    let mut end = zip[eocd..].to_vec();
    end[8..10].copy_from_slice(&n.to_le_bytes());
    end[10..12].copy_from_slice(&n.to_le_bytes());
    end[12..16].copy_from_slice(&cd_len.to_le_bytes());
    bomb.extend_from_slice(&end);
    let big = Limits {
        max_entries: 10_000,
        max_trailing: 0,
    };
    let mut refused = None;
    let info = allocation_counter::measure(|| {
        refused = Some(SafeZip::open(Cursor::new(&bomb[..]), &big).is_err());
    });
    assert_eq!(refused, Some(true), "an overlap bomb must be refused");
    assert!(
        info.bytes_max <= memory_bound(bomb.len()),
        "{} bytes held for a {}-byte bomb",
        info.bytes_max,
        bomb.len()
    );
}

#[test]
fn the_sample_zip_reads_back() {
    // The base of the mutations is itself valid, so mutations start from real structure.
    let bytes = sample_zip();
    let mut zip = SafeZip::open(Cursor::new(&bytes[..]), &limits()).unwrap();
    assert_eq!(zip.entries().len(), 3);
    let mut body = Vec::new();
    zip.reader("documents/ordonnance.txt")
        .unwrap()
        .read_to_end(&mut body)
        .unwrap();
    assert_eq!(body, [b'x'; 200]);
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn zip_reader_survives_mutated_zips(ms in mutations()) {
        let bytes = mutated(&sample_zip(), &ms);
        bounded(bytes.len(), || read_zip(&bytes))?;
    }

    #[test]
    fn zip_reader_survives_arbitrary_bytes(
        body in prop::collection::vec(any::<u8>(), 0..512),
        // An end record at the end makes arbitrary bytes look like a zip to the first check.
        eocd in prop::option::of((any::<u16>(), extreme32(), extreme32())),
    ) {
        let mut bytes = body;
        if let Some((n, size, at)) = eocd {
            bytes.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
            bytes.extend_from_slice(&[0; 4]);
            bytes.extend_from_slice(&n.to_le_bytes());
            bytes.extend_from_slice(&n.to_le_bytes());
            bytes.extend_from_slice(&size.to_le_bytes());
            bytes.extend_from_slice(&at.to_le_bytes());
            bytes.extend_from_slice(&[0; 2]);
        }
        bounded(bytes.len(), || read_zip(&bytes))?;
    }
}

// ---------------------------------------------------------------------------------------------
// The signed index's parts

const VAULT_ID: &str = "0123456789abcdef0123456789abcdef";
const OBJECT: &str = "ab0123456789abcdef0123456789abcd";

fn entry_of(bytes: &[u8]) -> FileEntry {
    FileEntry {
        size: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    }
}

fn sample_part() -> Value {
    let part = Part {
        format: 2,
        vault_id: VAULT_ID.into(),
        fan: "ab".into(),
        files: BTreeMap::from([(
            format!("objects/ab/{OBJECT}.age"),
            FileEntry {
                size: 1234,
                blake3: "00".repeat(32),
            },
        )]),
    };
    serde_json::to_value(part).unwrap()
}

/// A top that names `part` as `index/ab.json` with its real size and hash: what a hostile but
/// validly signed index gives the reader.
fn top_naming(part: &[u8]) -> Index {
    Index {
        format: 2,
        vault_id: VAULT_ID.into(),
        log_seq: 3,
        files: BTreeMap::from([(
            "carnet.toml".to_string(),
            FileEntry {
                size: 300,
                blake3: "11".repeat(32),
            },
        )]),
        parts: BTreeMap::from([("index/ab.json".to_string(), entry_of(part))]),
        documents: Some(1),
    }
}

/// Completes `top` with `parts`, each read as `read_signed` does: at most the size the top gives.
fn complete_with(top: &mut Index, parts: &BTreeMap<String, Vec<u8>>) {
    let _ = index::complete(top, |rel, size| {
        let b = parts.get(rel).ok_or_else(|| format!("{rel}: missing"))?;
        Ok(b[..b.len().min(usize::try_from(size).unwrap_or(usize::MAX))].to_vec())
    });
}

#[test]
fn the_sample_index_completes() {
    let part = serde_json::to_vec(&sample_part()).unwrap();
    let mut top = top_naming(&part);
    index::complete(&mut top, |_, _| Ok(part.clone())).unwrap();
    assert!(top.files.contains_key(&format!("objects/ab/{OBJECT}.age")));
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn index_parts_survive_mutated_bytes(ms in mutations()) {
        let part = mutated(&serde_json::to_vec(&sample_part()).unwrap(), &ms);
        let mut top = top_naming(&part);
        let parts = BTreeMap::from([("index/ab.json".to_string(), part.clone())]);
        bounded(part.len(), || complete_with(&mut top, &parts))?;
    }

    #[test]
    fn index_parts_survive_hostile_values(edits in json_edits()) {
        let part = json_edited(&sample_part(), &edits);
        let mut top = top_naming(&part);
        let parts = BTreeMap::from([("index/ab.json".to_string(), part.clone())]);
        bounded(part.len(), || complete_with(&mut top, &parts))?;
    }

    #[test]
    fn index_tops_survive_hostile_values(edits in json_edits(), ms in mutations()) {
        let part = serde_json::to_vec(&sample_part()).unwrap();
        let base = serde_json::to_value(top_naming(&part)).unwrap();
        let parts = BTreeMap::from([("index/ab.json".to_string(), part)]);
        for top in [json_edited(&base, &edits), mutated(&serde_json::to_vec(&base).unwrap(), &ms)] {
            bounded(top.len(), || {
                if let Ok(mut idx) = serde_json::from_slice::<Index>(&top) {
                    complete_with(&mut idx, &parts);
                }
            })?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The metadata: the root (`manifest.age`'s plaintext) and a shard

fn sample_root() -> Value {
    let mut root = Root::new(
        VAULT_ID.into(),
        vec!["age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq".into()],
        carnet::manifest::Patient {
            name: Some("Marie Dupont".into()),
            nir: None,
        },
    );
    for (table, key) in [
        (&mut root.shards.documents, "ab"),
        (&mut root.shards.digests, "cd"),
    ] {
        table.insert(
            key.into(),
            ShardRef {
                object: OBJECT.into(),
                size: 1000,
                blake3: "22".repeat(32),
                count: 2,
            },
        );
    }
    serde_json::to_value(root).unwrap()
}

fn sample_shard() -> Value {
    json!({
        "format": 2,
        "vault_id": VAULT_ID,
        "kind": "digests",
        "key": "cd",
        "digests": {"33".repeat(32): OBJECT},
    })
}

/// Parses a root and checks its shard table, as `read_manifest` does before naming any file.
fn read_root(bytes: &[u8]) {
    if let Ok(root) = serde_json::from_slice::<Root>(bytes) {
        let _ = catalog::check_root(&root, "manifest.age");
        let _ = root.document_count();
        let _ = root.shard_objects().count();
    }
}

#[test]
fn the_sample_root_checks() {
    let root: Root = serde_json::from_value(sample_root()).unwrap();
    catalog::check_root(&root, "manifest.age").unwrap();
    serde_json::from_value::<catalog::Shard>(sample_shard()).unwrap();
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn root_survives_mutations(edits in json_edits(), ms in mutations()) {
        let base = sample_root();
        for bytes in [json_edited(&base, &edits), mutated(&serde_json::to_vec(&base).unwrap(), &ms)] {
            bounded(bytes.len(), || read_root(&bytes))?;
        }
    }

    #[test]
    fn shard_survives_mutations(edits in json_edits(), ms in mutations()) {
        let base = sample_shard();
        for bytes in [json_edited(&base, &edits), mutated(&serde_json::to_vec(&base).unwrap(), &ms)] {
            bounded(bytes.len(), || {
                let _ = serde_json::from_slice::<catalog::Shard>(&bytes);
            })?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Age files and their armor

struct Sealed {
    identity: age::x25519::Identity,
    binary: Vec<u8>,
    armored: Vec<u8>,
}

fn sealed() -> &'static Sealed {
    static SEALED: std::sync::OnceLock<Sealed> = std::sync::OnceLock::new();
    SEALED.get_or_init(|| {
        let identity = age::x25519::Identity::generate();
        let binary =
            carnet::crypto::seal_bytes(b"{\"format\":2}", &[identity.to_public()]).unwrap();
        let mut armored = Vec::new();
        let w =
            age::armor::ArmoredWriter::wrap_output(&mut armored, age::armor::Format::AsciiArmor)
                .unwrap();
        let mut w = age::Encryptor::with_recipients(std::iter::once(
            &identity.to_public() as &dyn age::Recipient
        ))
        .unwrap()
        .wrap_output(w)
        .unwrap();
        std::io::Write::write_all(&mut w, b"{\"format\":2}").unwrap();
        w.finish().unwrap().finish().unwrap();
        Sealed {
            identity,
            binary,
            armored,
        }
    })
}

/// Everything carnet does with an age file from outside: look for the armor, tell a mail
/// client's damage and a damaged header apart, and decrypt within a plaintext limit.
fn read_age(bytes: &[u8], identity: &age::x25519::Identity) {
    let _ = carnet::armor::near_magic(bytes);
    let _ = carnet::armor::has_trailing_spaces(bytes);
    let _ = carnet::armor::header_is_damaged(bytes);
    let _ = carnet::crypto::open_bytes(
        bytes,
        std::iter::once(identity as &dyn age::Identity),
        1 << 16,
    );
    let armored = age::armor::ArmoredReader::new(bytes);
    if let Ok(r) = carnet::crypto::open(
        std::io::BufReader::new(armored),
        std::iter::once(identity as &dyn age::Identity),
    ) {
        let _ = std::io::copy(&mut r.take(1 << 16), &mut std::io::sink());
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn age_readers_survive_mutations(ms in mutations(), armored in any::<bool>()) {
        let s = sealed();
        let base = if armored { &s.armored } else { &s.binary };
        let bytes = mutated(base, &ms);
        bounded(bytes.len(), || read_age(&bytes, &s.identity))?;
    }
}

#[test]
fn armor_start_survives_leading_junk() {
    // `armor::start` reads a file: a few hostile prefixes through a real one.
    let s = sealed();
    let dir = crate::util::temp_dir("carnet-readers-");
    for prefix in [&b""[..], b"\n\n  \t", b"\x00\x01", &[b' '; 9000]] {
        let path = dir.path().join("f.age");
        std::fs::write(&path, [prefix, &s.armored[..]].concat()).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        let at = carnet::armor::start(&mut f).unwrap();
        let leading_blank = !prefix.is_empty() && prefix.iter().all(u8::is_ascii_whitespace);
        assert_eq!(
            at,
            if leading_blank {
                prefix.len() as u64
            } else {
                0
            }
        );
    }
}
