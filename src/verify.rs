//! Integrity checks of a whole vault, reporting every problem rather than stopping at the first.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::{self, ShardKind};
use crate::crypto;
use crate::index;
use crate::keys::Unlocked;
use crate::log::{self, Logged};
use crate::manifest::Document;
use crate::vault::{self, KeyMode, Vault};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    /// The file (relative to the vault) or log entry concerned.
    pub path: String,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub deep: bool,
    pub documents: usize,
    pub objects_checked: usize,
    pub log_entries: u64,
    pub problems: Vec<Problem>,
    /// Things worth knowing that are not integrity failures (an interrupted command, temp files).
    pub notes: Vec<String>,
    /// What to do, when the problems call for something other than restoring files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Report {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        // Every check reports files the format does not name here: those an operating system
        // or a sync tool added are noted once, not failures.
        if let Some(shown) = index::system_file(&path) {
            let note = format!(
                "{shown}: added by an operating system or a sync tool; ignored (see FORMAT.md)"
            );
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
            return;
        }
        self.problems.push(Problem {
            path,
            message: message.into(),
        });
    }
}

/// Reads every log entry, checking MACs, sequence, chaining and segment layout as it goes.
/// Returns the entries that authenticate (in order) and records problems in `report`.
pub fn scan_log(
    vault: &Vault,
    keys: &Unlocked,
    ring: &crate::keyring::Keyring,
    report: &mut Report,
) -> Vec<Logged> {
    let rel = |p: &Path| {
        p.strip_prefix(&vault.dir)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let (segs, strays) = match log::list_segments(&vault.dir) {
        Ok(x) => x,
        Err(e) => {
            report.problem(log::DIR, format!("cannot list: {e:#}"));
            return Vec::new();
        }
    };
    for s in strays {
        report.problem(rel(&s), "unexpected file in the log folder");
    }
    if segs.is_empty() {
        report.problem(log::DIR, "the access log is missing");
        return Vec::new();
    }
    let mut out: Vec<Logged> = Vec::new();
    let mut expected_seq = 1u64;
    let mut prev = log::GENESIS.to_string();
    let last_seg = segs.last().copied().unwrap_or(0);
    let mut expected_seg = 0u64;
    for &n in &segs {
        let path = log::segment_path(&vault.dir, n);
        // One line per gap, however wide: a stray "log/99999999.age" must not become a
        // hundred million problems.
        if n != expected_seg {
            let first = log::segment_path(&vault.dir, expected_seg);
            let what = if n == expected_seg + 1 {
                "log segment missing (entries removed)".to_string()
            } else {
                format!(
                    "log segments {expected_seg:08} to {:08} missing (entries removed)",
                    n - 1
                )
            };
            report.problem(rel(&first), what);
        }
        expected_seg = n + 1;
        let lines = match log::read_segment_lines(&path, keys) {
            Ok(l) => l,
            Err(e) => {
                report.problem(rel(&path), in_vault_terms(&e));
                continue;
            }
        };
        if lines.is_empty() {
            report.problem(rel(&path), "holds no entries (all removed)");
        } else if lines.len() as u64 > log::SEGMENT_ENTRIES {
            report.problem(
                rel(&path),
                format!(
                    "holds {} entries, a segment holds at most {}",
                    lines.len(),
                    log::SEGMENT_ENTRIES
                ),
            );
        } else if n < last_seg && !log::lines_fill_segment(&lines) {
            // A writer only starts a new segment when the last one is full: a short one
            // before the end lost entries (or was forged).
            report.problem(
                rel(&path),
                format!(
                    "holds {} entries, yet the log goes on in the next segment (a segment ends at {} entries or {} KiB)",
                    lines.len(),
                    log::SEGMENT_ENTRIES,
                    log::SEGMENT_BYTES >> 10
                ),
            );
        }
        for (i, line) in lines.iter().enumerate() {
            let at = format!("{} entry {}", rel(&path), i + 1);
            let logged = match log::open_line(line, ring, keys) {
                Ok(l) => l,
                Err(e) => {
                    report.problem(at, e);
                    continue;
                }
            };
            // Opaque is what a guardian sees of every sealed entry; a key holding the sealed
            // key must open them all, or that entry was sealed to another key.
            if logged.opaque && keys.sealed.is_some() {
                report.problem(
                    &at,
                    "a sealed entry that the vault's sealed key does not open",
                );
            }
            let e = &logged.entry;
            if e.seq != expected_seq {
                let why = if e.seq > expected_seq {
                    "entries removed before it"
                } else {
                    "entries reordered or repeated"
                };
                report.problem(
                    &at,
                    format!(
                        "sequence number {} where {} was expected ({why})",
                        e.seq, expected_seq
                    ),
                );
            } else if e.prev != prev {
                report.problem(
                    &at,
                    format!(
                        "entry {} does not follow the entry before it (chain broken)",
                        e.seq
                    ),
                );
            }
            expected_seq = e.seq + 1;
            prev = logged.hash.clone();
            out.push(logged);
        }
    }
    // What a guardian cannot open is not theirs to count.
    report.log_entries = out.iter().filter(|l| !l.opaque).count() as u64;
    out
}

/// Checks the vault with the key. `progress(done, total)` is called during the object pass.
pub fn verify(vault: &Vault, keys: &Unlocked, deep: bool, progress: &dyn Fn(u64, u64)) -> Report {
    let mut report = Report {
        deep,
        ..Report::default()
    };
    let rel = |p: &Path| {
        p.strip_prefix(&vault.dir)
            .unwrap_or(p)
            .display()
            .to_string()
    };

    let ring = match vault.load_keyring(keys) {
        Ok(r) => r,
        Err(e) => {
            let mut msg = keys_message(vault, &file_message(vault, vault::KEYS, &format!("{e:#}")));
            if msg.contains("another vault") {
                msg.push_str(&format!(
                    " (or the vault_id in {} was changed)",
                    vault::CONFIG
                ));
            }
            report.problem(vault::KEYS, msg);
            report.ok = false;
            return report;
        }
    };
    let head = match log::read_head(&vault.dir, keys, &ring) {
        Ok(h) => Some(h),
        Err(e) => {
            report.problem(log::HEAD, file_message(vault, log::HEAD, &e.to_string()));
            None
        }
    };
    let manifest = match vault.read_manifest(keys) {
        Ok(m) => Some(m),
        Err(e) => {
            report.problem(
                vault::MANIFEST,
                file_message(vault, vault::MANIFEST, &format!("{e:#}")),
            );
            None
        }
    };
    // The sealed key is among the spare identities until the root names it (as a snapshot
    // does): without it, sealed log lines and shards would go unchecked.
    let mut owned = crate::ops::mirror::dup(keys);
    if let Some(s) = manifest.as_ref().and_then(|m| m.root.sealed.as_ref()) {
        owned.find_sealed(&s.recipient);
    }
    let keys = &owned;
    let entries = scan_log(vault, keys, &ring, &mut report);

    // Head, log and manifest must tell the same story.
    let mut pending: Option<&Logged> = None;
    if head.is_some()
        && entries.is_empty()
        && !report.problems.iter().any(|p| p.path.starts_with(log::DIR))
    {
        report.problem(log::DIR, "the access log holds no entries (all removed)");
    }
    if let (Some(h), Some(last)) = (&head, entries.last()) {
        if h.vault_id != vault.config.vault_id {
            report.problem(log::HEAD, "belongs to another vault");
        }
        if last.entry.seq == h.log_seq && last.hash == h.log_hash {
            if last.entry.manifest_sha256 != h.manifest_sha256 {
                report.problem(
                    log::HEAD,
                    "names a manifest other than the last log entry does",
                );
            }
        } else if last.entry.seq == h.log_seq + 1 && last.entry.prev == h.log_hash {
            // Undoing it would be wrong if it had completed: then head.age and manifest.age
            // are older copies put back, not the trace of a crash.
            let finishing = manifest
                .as_ref()
                .is_some_and(|m| m.sha256 == last.entry.manifest_sha256);
            match vault.completed_after(&last.entry).filter(|_| !finishing) {
                Some(why) => report.problem(
                    log::HEAD,
                    format!(
                        "older than the access log ({why}): it and manifest.age were put back from an older copy?"
                    ),
                ),
                None => {
                    pending = Some(last);
                    report.notes.push(format!(
                        "{} (log entry {}) was interrupted; the next carnet command that writes will finish or undo it",
                        last.action_shown(), last.entry.seq
                    ));
                }
            }
        } else if last.entry.seq == h.log_seq + 2
            && last.entry.action == crate::domain::Action::Interrupted
            && entries.len() >= 2
            && entries[entries.len() - 2].entry.prev == h.log_hash
            && last.entry.prev == entries[entries.len() - 2].hash
        {
            report.notes.push(format!(
                "a rollback (log entry {}) was interrupted before its last step; the next carnet command that writes completes it",
                last.entry.seq
            ));
        } else if last.entry.seq < h.log_seq {
            report.problem(
                log::DIR,
                format!(
                    "the log ends at entry {} but head.age says {} (entries cut off)",
                    last.entry.seq, h.log_seq
                ),
            );
        } else {
            report.problem(
                log::DIR,
                format!(
                    "the log ends at entry {} which is not the one head.age names (entry {})",
                    last.entry.seq, h.log_seq
                ),
            );
        }
    }
    if let Some(h) = &head {
        // An upgrade interrupted after rewriting carnet.toml names the new config in its entry.
        let upgrading = pending.is_some_and(|p| {
            p.entry.action == crate::domain::Action::Upgrade
                && p.entry
                    .details
                    .get("config_sha256")
                    .and_then(|v| v.as_str())
                    == Some(vault.config_sha256.as_str())
        });
        if h.config_sha256 != vault.config_sha256 && !upgrading {
            report.problem(
                vault::CONFIG,
                "altered: it is not the config the vault was written with",
            );
        }
    }
    if let (Some(h), Some(read)) = (&head, &manifest) {
        let sha = &read.sha256;
        let pending_ok = pending.is_some_and(|p| &p.entry.manifest_sha256 == sha);
        if sha != &h.manifest_sha256 && !pending_ok {
            report.problem(
                vault::MANIFEST,
                "is not the manifest that head.age names (replaced, or an older copy)",
            );
        }
    }

    let catalog = match &manifest {
        Some(read) => load_catalog(vault, keys, &ring, read, &mut report),
        None => Catalog {
            unknown_because: Some("the manifest is unreadable".to_string()),
            ..Catalog::default()
        },
    };
    let Catalog {
        docs,
        objects,
        unknown_because,
        sealed_ids,
    } = catalog;
    report.documents = docs.len();
    // A clear entry naming a sealed document: a `hide --from guardians` cut short before it
    // sealed the earlier entries. Not damage, but a guardian's key reads them.
    let exposed = entries
        .iter()
        .filter(|l| !l.sealed && l.entry.documents.iter().any(|d| sealed_ids.contains(d)))
        .count();
    if exposed > 0 {
        report.notes.push(format!(
            "{exposed} log entr{} name documents hidden from guardians in clear (a `carnet hide --from guardians` was interrupted): run it again to seal them",
            if exposed == 1 { "y" } else { "ies" }
        ));
    }
    check_index(
        vault,
        &objects,
        &ring,
        head.as_ref(),
        IndexState {
            interrupted: pending.is_some(),
            objects_known: unknown_because.is_none(),
        },
        &mut report,
    );
    // Objects an interrupted command was adding or removing may or may not be there.
    let leftovers: HashSet<&str> = pending
        .map(|p| {
            p.entry
                .objects_added
                .iter()
                .chain(&p.entry.objects_removed)
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    check_layout(
        vault,
        &objects,
        &leftovers,
        unknown_because.as_deref(),
        &mut report,
    );

    // Objects: present, the recorded size and ciphertext hash, and with --deep the plaintext.
    let stored: Vec<&crate::manifest::Document> =
        docs.iter().flat_map(|d| d.stored_objects()).collect();
    let total = stored.len() as u64;
    for (i, d) in stored.iter().enumerate() {
        let path = vault.object_path(&d.object);
        let r = rel(&path);
        match index::hash_file(&path) {
            Ok(got) => {
                if got.size != d.object_size || got.blake3 != d.object_blake3 {
                    report.problem(
                        &r,
                        format!(
                            "altered: its content is not what was stored for {} ({})",
                            d.title,
                            crate::ids::short(&d.id)
                        ),
                    );
                } else if deep {
                    match decrypt_hash(vault, keys, &d.object) {
                        Ok((psize, psha)) if psize == d.size && psha == d.sha256 => {}
                        Ok(_) => report.problem(
                            &r,
                            format!(
                                "decrypts to content other than {} ({})",
                                d.title,
                                crate::ids::short(&d.id)
                            ),
                        ),
                        Err(e) => report.problem(&r, format!("does not decrypt: {e}")),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.problem(
                    &r,
                    format!(
                        "missing: the object of {} ({})",
                        d.title,
                        crate::ids::short(&d.id)
                    ),
                );
            }
            Err(e) => report.problem(&r, format!("cannot read: {e}")),
        }
        report.objects_checked += 1;
        progress(i as u64 + 1, total);
    }
    report.ok = report.problems.is_empty();
    report
}

/// What the metadata says the vault holds, as far as it could be read.
#[derive(Default)]
struct Catalog {
    docs: Vec<Document>,
    /// Every object the metadata names: id → size and BLAKE3.
    objects: BTreeMap<String, index::FileEntry>,
    /// Set when part of the metadata could not be read: the objects it would name are then
    /// unknown, and an object nothing names cannot be called foreign.
    unknown_because: Option<String>,
    /// The documents of the sealed compartment (hidden from guardians), when it was read.
    sealed_ids: std::collections::BTreeSet<String>,
}

/// The documents and every object the metadata names, reading each shard and checking that
/// the digest shards agree with the documents. Shard damage is reported per shard; the
/// documents of a shard that cannot be read are missing from the result.
fn load_catalog(
    vault: &Vault,
    keys: &Unlocked,
    ring: &crate::keyring::Keyring,
    read: &crate::catalog::ReadManifest,
    report: &mut Report,
) -> Catalog {
    let mut unreadable_docs: Vec<(catalog::Compartment, String)> = Vec::new();
    let mut objects = BTreeMap::new();
    let mut sealed_ids = std::collections::BTreeSet::new();
    let entry = |size: u64, blake3: &str| index::FileEntry {
        size,
        blake3: blake3.to_string(),
    };
    let docs: Vec<Document> = match &read.legacy {
        Some(docs) => docs.clone(),
        None => {
            let root = &read.root;
            for r in root.shard_objects() {
                objects.insert(r.object.clone(), entry(r.size, &r.blake3));
            }
            // Every version of the emergency profile is kept, and each must still be the one
            // the root names and decrypt with the vault's key.
            for v in &root.profile {
                objects.insert(v.object.clone(), v.file_entry());
                if let Err(e) = crate::profile::read(vault, keys, v) {
                    report.problem(
                        index::object_rel(&v.object),
                        shard_message(vault, &v.object, e),
                    );
                }
            }
            let rel = |o: &str| index::object_rel(o);
            // Key slots: where the key finds them, and as the root recorded them.
            for s in &root.slots {
                objects.insert(s.object.clone(), entry(s.size, &s.blake3));
                let path = vault.object_path(&s.object);
                let at_home = s.object == crate::slots::object_id(&s.recipient)
                    || (s.role != crate::slots::Role::Guardian
                        && s.object == crate::slots::object_id_with_sealed(&s.recipient));
                let problem = if !at_home {
                    Some("is not where its key looks for it".to_string())
                } else {
                    match index::hash_file(&path) {
                        Ok(got) if got.size == s.size && got.blake3 == s.blake3 => None,
                        Ok(_) => Some("altered: not the key slot that was written".to_string()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            Some("missing".to_string())
                        }
                        Err(e) => Some(format!("cannot read: {e}")),
                    }
                };
                if let Some(why) = problem {
                    report.problem(
                        rel(&s.object),
                        format!("the {} key slot {:?} {why}", role_name(s.role), s.name),
                    );
                }
            }
            // The sealed compartment is read only with its key (a guardian's verify checks
            // its objects by size and hash, from the root).
            let sealed_open = root
                .sealed
                .as_ref()
                .is_some_and(|s| keys.holds(&s.recipient));
            let mut places = vec![(catalog::Compartment::Open, &root.shards)];
            if let Some(s) = root.sealed.as_ref().filter(|_| sealed_open) {
                places.push((catalog::Compartment::Sealed, &s.shards));
            }
            if let Some(s) = &root.sealed {
                // Every sealed object is on disk as listed: a reader without the sealed key
                // (a guardian, a backup) trusts this list for files it cannot open.
                for (o, e) in &s.objects {
                    objects.insert(o.clone(), e.clone());
                    let problem = match index::hash_file(&vault.object_path(o)) {
                        Ok(got) if got == *e => None,
                        Ok(_) => Some("altered: not the sealed object the manifest lists"),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            Some("missing: the manifest lists it as a sealed document's object")
                        }
                        Err(_) => Some("cannot be read"),
                    };
                    if let Some(why) = problem {
                        report.problem(rel(o), why);
                    }
                }
                // A session may predate the sealed key: then the patient is told to lock, not
                // that the vault is damaged (the snapshot says so).
                let own_file =
                    keys.passphrase.is_some() || (keys.slot.is_some() && !keys.from_session);
                // The actor is not resolved here (no snapshot): a slot's role is the root's.
                let guardian = keys.slot.as_ref().is_some_and(|r| {
                    root.slots
                        .iter()
                        .any(|s| &s.recipient == r && s.role == crate::slots::Role::Guardian)
                });
                if !sealed_open && keys.from_session && !guardian {
                    report.notes.push(
                        "what is hidden from guardians was not checked: the unlocked key predates it (run `carnet lock`, then verify again)".into(),
                    );
                }
                if !sealed_open && own_file && !guardian {
                    // identity.age and the patient's and recovery slots hold the sealed key from
                    // the moment it is made: an older copy put back, or an altered root.
                    report.problem(
                        vault::MANIFEST,
                        "names a key for what is hidden from guardians that the key given does not hold (an older copy of identity.age or of a slot put back, or altered?)",
                    );
                }
                if let Some(c) = keys.sealed.as_ref().filter(|_| sealed_open) {
                    let mut probe = root.clone();
                    probe.grants.clear();
                    if let Err(e) = probe.open_sealed_grants(c) {
                        report.problem(
                            vault::MANIFEST,
                            file_message(vault, vault::MANIFEST, &e.to_string()),
                        );
                    }
                }
            }
            let mut docs = Vec::new();
            let mut digests: BTreeMap<(catalog::Compartment, String), String> = BTreeMap::new();
            let mut unreadable = HashSet::new();
            for (place, tables) in places {
                for (key, r) in &tables.documents {
                    match catalog::read_shard(vault, keys, place, ShardKind::Documents, key, r) {
                        Ok(s) => docs.extend(s.documents.into_iter().map(|d| (place, d))),
                        Err(e) => {
                            unreadable_docs.push((place, key.clone()));
                            report.problem(rel(&r.object), shard_message(vault, &r.object, e))
                        }
                    }
                }
                for (key, r) in &tables.digests {
                    match catalog::read_shard(vault, keys, place, ShardKind::Digests, key, r) {
                        Ok(s) => {
                            digests.extend(s.digests.into_iter().map(|(k, v)| ((place, k), v)))
                        }
                        Err(e) => {
                            unreadable.insert((place, key.clone()));
                            report.problem(rel(&r.object), shard_message(vault, &r.object, e))
                        }
                    }
                }
            }
            let guardians = root
                .slots
                .iter()
                .any(|s| s.role == crate::slots::Role::Guardian);
            if root.sealed.is_none() && guardians {
                let open = docs
                    .iter()
                    .filter(|(_, d)| root.hidden_from_guardians(d))
                    .count();
                if open > 0 {
                    report.notes.push(format!(
                        "{open} document(s) hidden from guardians are not sealed from their keys (made by an older carnet): unhide and hide them from guardians again to seal them"
                    ));
                }
            }
            if let Some(s) = root
                .sealed
                .as_ref()
                .filter(|_| sealed_open && unreadable_docs.is_empty())
            {
                // With the sealed key: the list names exactly the sealed documents' objects.
                let named: std::collections::BTreeSet<&str> = docs
                    .iter()
                    .filter(|(p, _)| *p == catalog::Compartment::Sealed)
                    .flat_map(|(_, d)| d.versions().map(|v| v.object.as_str()))
                    .collect();
                let extra = s
                    .objects
                    .keys()
                    .filter(|o| !named.contains(o.as_str()))
                    .count();
                if extra > 0 {
                    report.problem(
                        vault::MANIFEST,
                        format!("its sealed compartment lists {extra} object(s) no sealed document names"),
                    );
                }
            }
            if let Some(s) = root.sealed.as_ref().filter(|_| sealed_open) {
                for (place, d) in &docs {
                    let listed = d.stored_objects().iter().all(|v| {
                        s.objects.get(&v.object) == Some(&entry(v.object_size, &v.object_blake3))
                    });
                    let sealed = *place == catalog::Compartment::Sealed;
                    let should = root.hidden_from_guardians(d);
                    if sealed && !listed {
                        report.problem(
                            vault::MANIFEST,
                            format!(
                                "the sealed compartment does not list every object of {} ({})",
                                d.title,
                                crate::ids::short(&d.id)
                            ),
                        );
                    }
                    if sealed != should {
                        report.problem(
                            vault::MANIFEST,
                            format!(
                                "{} ({}) is {} guardians but {}",
                                d.title,
                                crate::ids::short(&d.id),
                                if should { "hidden from" } else { "visible to" },
                                if sealed {
                                    "sealed"
                                } else {
                                    "not sealed from them"
                                }
                            ),
                        );
                    }
                }
            }
            let docs: Vec<(catalog::Compartment, Document)> = docs;
            for (place, d) in &docs {
                let key = catalog::digest_shard(*place, ring, &d.sha256);
                if unreadable.contains(&(*place, key)) {
                    continue;
                }
                if digests.remove(&(*place, d.sha256.clone())).as_deref() != Some(d.id.as_str()) {
                    report.problem(
                        vault::MANIFEST,
                        format!(
                            "the digest shards do not list {} ({}): duplicates of it would not be found",
                            d.title,
                            crate::ids::short(&d.id)
                        ),
                    );
                }
            }
            // The documents of an unreadable shard are not lost for that: their digests are
            // listed as they should be.
            digests.retain(|(place, _), id| {
                !unreadable_docs
                    .iter()
                    .any(|(p, k)| p == place && *k == catalog::table_key(*p, id))
            });
            if !digests.is_empty() {
                report.problem(
                    vault::MANIFEST,
                    format!(
                        "the digest shards list {} document(s) the vault does not hold",
                        digests.len()
                    ),
                );
            }
            sealed_ids = docs
                .iter()
                .filter(|(p, _)| *p == catalog::Compartment::Sealed)
                .map(|(_, d)| d.id.to_string())
                .collect();
            docs.into_iter().map(|(_, d)| d).collect()
        }
    };
    for d in docs.iter().flat_map(|d| d.stored_objects()) {
        objects.insert(d.object.clone(), entry(d.object_size, &d.object_blake3));
    }
    let unknown_because = match unreadable_docs.as_slice() {
        [] => None,
        [(_, one)] => Some(format!("documents shard {one} is unreadable")),
        many => Some(format!("{} documents shards are unreadable", many.len())),
    };
    Catalog {
        docs,
        objects,
        unknown_because,
        sealed_ids,
    }
}

/// The key that opened `keys.age` is the vault's: a file it cannot open was damaged or
/// replaced, so age's "no key matches" must not read as a wrong key.
const HEADER_DAMAGED: &str = "damaged: its age header does not open with the vault's key (a byte of the header was altered, or the file was replaced)";

/// A reader's message in the report's terms: a damaged header is damage, not a wrong key.
fn in_vault_terms(msg: &str) -> String {
    let no_key = crypto::OpenError::NoMatchingKey.to_string();
    msg.replace(&no_key, HEADER_DAMAGED)
}

/// The message of a vault file that did not read, without the prefix and the absolute path
/// the error carries for commands (the report names the file already).
fn file_message(vault: &Vault, rel: &str, msg: &str) -> String {
    let abs = vault.path(rel).display().to_string();
    let msg = msg.trim_start_matches("the vault is damaged: ");
    let msg = msg
        .strip_prefix(&abs)
        .map(|m| m.trim_start_matches(':').trim_start())
        .unwrap_or(msg);
    in_vault_terms(msg)
}

/// `keys.age` is the one file a wrong key cannot open either: the signed index tells the two
/// apart, since carnet never rewrites that file without re-signing the index.
fn keys_message(vault: &Vault, msg: &str) -> String {
    if !msg.contains(HEADER_DAMAGED) {
        return msg.to_string();
    }
    let listed = index::read_signed(&vault.dir, &vault.config.signing_key)
        .ok()
        .and_then(|i| i.files.get(vault::KEYS).cloned());
    let now = index::hash_file(&vault.path(vault::KEYS)).ok();
    match (listed, now) {
        (Some(l), Some(n)) if l != n => msg.replace(
            HEADER_DAMAGED,
            "damaged: its age header does not open with the key given, and the file is not the one the signed index lists (altered)",
        ),
        _ => msg.replace(
            HEADER_DAMAGED,
            &crypto::OpenError::NoMatchingKey.to_string(),
        ),
    }
}

/// The problem without the prefix and the absolute path the error carries for commands: the
/// report names the file already.
fn shard_message(vault: &Vault, object: &str, e: crate::error::Error) -> String {
    let abs = vault.object_path(object).display().to_string();
    let msg = e.to_string();
    let msg = msg.trim_start_matches("the vault is damaged: ");
    let msg = msg.strip_prefix(&abs).map(str::trim_start).unwrap_or(msg);
    in_vault_terms(msg)
}

/// Every file in the vault must be one the format names.
fn check_layout(
    vault: &Vault,
    objects: &BTreeMap<String, index::FileEntry>,
    leftovers: &HashSet<&str>,
    unknown_because: Option<&str>,
    report: &mut Report,
) {
    let mut unchecked = 0usize;
    let mut allowed: HashSet<&str> = [
        vault::CONFIG,
        vault::KEYS,
        vault::MANIFEST,
        log::HEAD,
        vault::LOCK,
        vault::OBJECTS,
        vault::TMP,
        log::DIR,
        index::INDEX,
        index::SIGNATURE,
        index::PARTS,
    ]
    .into();
    if vault.config.key == KeyMode::Passphrase {
        allowed.insert(vault::IDENTITY);
    }
    let Ok(rd) = fs::read_dir(&vault.dir) else {
        report.problem(".", "cannot list the vault folder");
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if !allowed.contains(name.as_str()) {
            report.problem(name, "unexpected file (not part of a carnet vault)");
        }
    }
    for required in [vault::KEYS, vault::MANIFEST, log::HEAD] {
        if !vault.path(required).exists() && !report.problems.iter().any(|p| p.path == required) {
            report.problem(required, "missing");
        }
    }
    if vault.config.key == KeyMode::Passphrase && !vault.path(vault::IDENTITY).exists() {
        report.problem(vault::IDENTITY, "missing");
    }
    let known: HashSet<&str> = objects.keys().map(String::as_str).collect();
    let objects = vault.path(vault::OBJECTS);
    for ent in walkdir::WalkDir::new(&objects)
        .min_depth(1)
        .follow_links(false)
    {
        let Ok(ent) = ent else { continue };
        let rel = ent
            .path()
            .strip_prefix(&vault.dir)
            .unwrap_or(ent.path())
            .display()
            .to_string();
        if ent.depth() == 1 {
            let ok_dir = ent.file_type().is_dir() && ent.file_name().len() == 2;
            if !ok_dir {
                report.problem(rel, "unexpected file in objects/");
            }
            continue;
        }
        let name = ent.file_name().to_string_lossy();
        let id = name.strip_suffix(".age").unwrap_or("");
        let in_place = ent.file_type().is_file()
            && ent.depth() == 2
            && ent
                .path()
                .parent()
                .and_then(|p| p.file_name())
                .is_some_and(|f| id.starts_with(&*f.to_string_lossy()));
        if in_place && known.contains(id) {
            continue;
        }
        if in_place && leftovers.contains(id) {
            report.notes.push(format!(
                "{rel} belongs to an interrupted command and will be removed"
            ));
            continue;
        }
        if in_place && unknown_because.is_some() {
            // It may well be one the unreadable metadata names: one line says so below.
            unchecked += 1;
            continue;
        }
        report.problem(
            rel,
            "unexpected object: no document refers to it (added from outside carnet?)",
        );
    }
    if let Some(why) = unknown_because.filter(|_| unchecked > 0) {
        report.notes.push(format!(
            "{unchecked} file(s) in {}/ cannot be checked ({why}); `carnet verify --offline` checks them against the signed index",
            vault::OBJECTS
        ));
    }
    let tmp = vault.tmp_dir();
    let n = fs::read_dir(&tmp).map(|rd| rd.count()).unwrap_or(0);
    if n > 0 {
        report.notes.push(format!(
            "{n} temporary file(s) in tmp/ from running or interrupted commands (ciphertext; the next change to the vault removes those older than an hour)"
        ));
    }
}

fn decrypt_hash(
    vault: &Vault,
    keys: &Unlocked,
    object: &str,
) -> Result<(u64, String), crypto::OpenError> {
    let f = fs::File::open(vault.object_path(object)).map_err(crypto::OpenError::Io)?;
    let r = crypto::open(BufReader::with_capacity(256 * 1024, f), keys.as_dyn())?;
    let mut sink = crypto::HashingWriter::new(std::io::sink());
    let n = crypto::copy_plain(r, &mut sink, &|_| {})?;
    Ok((n, sink.finish().1))
}

/// The signed index must verify under the vault's key and list the files as they are. An index
/// behind the head (a crash between the head and the index) or beside an interrupted command
/// is a note, since the next write rewrites it; any other difference is damage of the file that
/// differs, reported once (not again when another check named that file already).
/// What the rest of the keyed check found, for the index's.
struct IndexState {
    /// A command was interrupted: the index may be one step behind or ahead.
    interrupted: bool,
    /// Every shard was read: the objects the metadata names are all known.
    objects_known: bool,
}

fn check_index(
    vault: &Vault,
    objects: &BTreeMap<String, index::FileEntry>,
    ring: &crate::keyring::Keyring,
    head: Option<&log::Head>,
    state: IndexState,
    report: &mut Report,
) {
    let IndexState {
        interrupted,
        objects_known,
    } = state;
    let own_key = crate::sign::encode_public(&ring.verifying_key());
    if vault.config.signing_key != own_key {
        report.problem(vault::CONFIG, "its signing key is not the vault's");
        return;
    }
    let idx = match index::read_signed(&vault.dir, &vault.config.signing_key) {
        Ok(i) => i,
        Err(e) => {
            // Parts are rewritten before their top, without fsync: a crash in between leaves
            // parts newer than a signed top that is behind the head. That is an index out of
            // date, which the next write rebuilds, not damage.
            let behind = index::read_top(&vault.dir, &vault.config.signing_key)
                .ok()
                .zip(head)
                .is_some_and(|(top, h)| top.log_seq < h.log_seq || interrupted);
            if behind {
                report.notes.push(format!(
                    "{} is out of date (a command was interrupted while writing it); the next write rebuilds it",
                    index::INDEX
                ));
            } else {
                let (path, msg) = index_problem(&e.to_string());
                report.problem(path, msg);
            }
            return;
        }
    };
    let Some(h) = head else { return };
    // The signed top came from tmp/ (an index write interrupted between the top and its
    // signature): that top is behind the head, or something else put it there.
    if idx.log_seq >= h.log_seq && !index::top_is_signed(&vault.dir, &vault.config.signing_key) {
        report.problem(index::INDEX, "not the file its signature signs (altered?)");
        return;
    }
    // The index follows the head; past an interrupted command it may be one step ahead.
    if idx.log_seq > h.log_seq && !interrupted {
        report.problem(
            index::INDEX,
            format!(
                "signed at log entry {}, but head.age names entry {}: the log was cut back or rewritten, or one of the two files is an older copy",
                idx.log_seq, h.log_seq
            ),
        );
        return;
    }
    let stale = idx.log_seq < h.log_seq || interrupted;
    let parts = format!("{}/", index::PARTS);
    let objects_dir = format!("{}/", vault::OBJECTS);
    // The files as they are now: metadata and log segments hashed, objects as the metadata
    // records them (their own check compares them with the disk).
    let mut now: BTreeMap<String, Option<index::FileEntry>> = BTreeMap::new();
    let mut names: Vec<String> = vec![
        vault::CONFIG.into(),
        vault::KEYS.into(),
        vault::MANIFEST.into(),
        log::HEAD.into(),
    ];
    if vault.config.key == KeyMode::Passphrase {
        names.push(vault::IDENTITY.into());
    }
    if let Ok((segs, _)) = log::list_segments(&vault.dir) {
        names.extend(segs.iter().map(|n| format!("{}/{n:08}.age", log::DIR)));
    }
    names.extend(
        idx.files
            .keys()
            .filter(|r| !r.starts_with(&parts) && !r.starts_with(&objects_dir))
            .cloned(),
    );
    for rel in names {
        let got = index::hash_file(&vault.dir.join(&rel)).ok();
        now.insert(rel, got);
    }
    if objects_known {
        for (o, e) in objects {
            now.insert(index::object_rel(o), Some(e.clone()));
        }
    }
    let listed = |rel: &str| idx.files.get(rel);
    let mut differ: Vec<(String, &'static str)> = Vec::new();
    for (rel, got) in &now {
        let why = match (listed(rel), got) {
            (Some(l), Some(g)) if l == g => continue,
            (None, None) => continue,
            (Some(_), Some(_)) if rel.starts_with(&objects_dir) => {
                "the manifest and the signed index disagree about it"
            }
            (Some(_), Some(_)) => {
                "not the file the signed index lists (altered after it was signed)"
            }
            (Some(_), None) => "missing: the signed index lists it",
            (None, Some(_)) if rel.starts_with(&objects_dir) => {
                "named by the manifest but not by the signed index"
            }
            (None, Some(_)) => "not in the signed index (added after it was signed)",
        };
        differ.push((rel.clone(), why));
    }
    if objects_known {
        for rel in idx.files.keys() {
            if rel.starts_with(&objects_dir) && !now.contains_key(rel) {
                differ.push((
                    rel.clone(),
                    "listed by the signed index but named by no document or shard",
                ));
            }
        }
    }
    if differ.is_empty() {
        return;
    }
    if stale {
        report.notes.push(format!(
            "{} is out of date (an interrupted command); the next write refreshes it",
            index::INDEX
        ));
        return;
    }
    for (rel, why) in differ {
        // A file another check found at fault is named once, by that check.
        let named = report.problems.iter().any(|p| {
            p.path == rel
                || p.path.starts_with(&format!("{rel} "))
                || (rel.starts_with(&format!("{}/", log::DIR)) && p.path == log::DIR)
        });
        if !named {
            report.problem(rel, why);
        }
    }
}

/// The file an index error is about, and the message without the prefixes that repeat it:
/// a damaged part is named, not the top of the index.
fn index_problem(msg: &str) -> (String, String) {
    let msg = msg.trim_start_matches("the vault is damaged: ");
    let mut path = index::INDEX;
    let mut rest = msg;
    for name in [index::SIGNATURE, index::INDEX] {
        if let Some(r) = rest.strip_prefix(name).and_then(|r| r.strip_prefix(": ")) {
            path = name;
            rest = r;
            break;
        }
    }
    let part = format!("{}/", index::PARTS);
    if rest.starts_with(&part)
        && let Some((p, r)) = rest.split_once(": ")
        && index::is_vault_path(p)
    {
        return (p.to_string(), r.to_string());
    }
    (path.to_string(), rest.to_string())
}

/// A wrong passphrase and a damaged `identity.age` look alike to age (the scrypt stanza does not
/// unwrap either way); carnet writes that file only in logged commands (`init`, `passphrase`,
/// the first hide from guardians, `rekey`), so when it is no longer the file the signed index
/// lists, the passphrase is not at fault. Returns that report, or `None`
/// when `e` is not about the vault's own identity or nothing shows it damaged.
pub fn identity_damage(vault: &Vault, e: &anyhow::Error) -> Option<Report> {
    let Some(crate::error::Error::WrongPassphrase(path)) = e.downcast_ref() else {
        return None;
    };
    if *path != vault.path(vault::IDENTITY) {
        return None;
    }
    let idx = index::read_signed(&vault.dir, &vault.config.signing_key).ok()?;
    let listed = idx.files.get(vault::IDENTITY)?;
    let now = index::hash_file(path).ok()?;
    if *listed == now {
        return None;
    }
    let mut report = Report::default();
    report.problem(
        vault::IDENTITY,
        "damaged: the passphrase does not open it, and it is not the file the signed index lists (altered)",
    );
    Some(report)
}

/// Checks a vault (or a mirror of one) without the key, against its signed index: every
/// listed file present with its size and BLAKE3, nothing unlisted. Two threads hash files.
pub fn verify_offline(
    dir: &Path,
    expect: Option<&str>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<Report> {
    let v = match Vault::open(dir) {
        Ok(v) => v,
        Err(e) => match e.downcast_ref::<crate::error::Error>() {
            Some(crate::error::Error::Integrity(msg)) => {
                let mut report = Report::default();
                report.problem(vault::CONFIG, msg.clone());
                return Ok(report);
            }
            _ => return Err(e),
        },
    };
    // Writers replace the index and metadata while they commit: hold them off for a still
    // picture (a read-only mirror has no writers and no lock to take).
    let _lock = crate::fsutil::Lock::shared(&v.path(vault::LOCK))?;
    let mut report = Report::default();
    if v.config.signing_key.is_empty() {
        return Err(crate::error::Error::input(
            format!("{} has no signing key", dir.join(vault::CONFIG).display()),
            "this vault predates offline checks: run `carnet verify` with the key",
        )
        .into());
    }
    let fp = v.fingerprint()?;
    if let Some(want) = expect.map(crate::keyring::parse_fingerprint).transpose()?
        && want != fp
    {
        let (problem, hint) = wrong_signer(&fp, &want);
        report.problem(vault::CONFIG, problem);
        report.hint = Some(hint);
        return Ok(report);
    }
    let idx = match index::read_signed(dir, &v.config.signing_key) {
        Ok(i) => i,
        Err(e) => {
            let (path, msg) = index_problem(&e.to_string());
            report.problem(path, msg);
            return Ok(report);
        }
    };
    if idx.vault_id != v.config.vault_id {
        report.problem(index::INDEX, "belongs to another vault");
    }
    // Without the key there is no head to tell an interrupted index write (the signed top
    // before kept in tmp/) from an altered index.json: either way, it is not what is signed.
    if !index::top_is_signed(dir, &v.config.signing_key) {
        // Files compared with the older top would all look wrong, and restoring them would
        // roll good data back: this one problem is the whole report.
        report.problem(
            index::INDEX,
            "not the file its signature signs (an index write was interrupted, which the next change rewrites, or altered)",
        );
        report.hint = Some(
            "run `carnet verify` with the key: it tells an interrupted write from an altered index"
                .into(),
        );
        return Ok(report);
    }
    let present: Vec<(String, PathBuf)> = index::walk(dir);
    for (rel, _) in &present {
        if !idx.files.contains_key(rel) && !index::is_unindexed(rel) {
            report.problem(rel, "unexpected file: not in the signed index");
        }
        if rel.starts_with("tmp/") {
            report.notes.push(format!(
                "{rel}: temporary file from a running or interrupted command"
            ));
        }
    }
    // The index names the files to read: only vault paths, so a signed-but-hostile index (or
    // a mirror made by someone else) cannot point the check at /dev/zero or ../elsewhere.
    for rel in idx.files.keys().filter(|r| !index::is_vault_path(r)) {
        report.problem(rel, "the index names a path that is not a vault file");
    }
    let files: Vec<(&String, &index::FileEntry)> = idx
        .files
        .iter()
        .filter(|(r, _)| index::is_vault_path(r))
        .collect();
    let total: u64 = files
        .iter()
        .fold(0u64, |t, (_, e)| t.saturating_add(e.size));
    let done = std::sync::atomic::AtomicU64::new(0);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Problem> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut problems = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((rel, want)) = files.get(i) else {
                            break;
                        };
                        let msg = match index::hash_file(&dir.join(rel)) {
                            Ok(got) if got == **want => None,
                            Ok(got) if got.size != want.size => Some(format!(
                                "corrupted: {} bytes, {} expected",
                                got.size, want.size
                            )),
                            Ok(_) => Some("corrupted: its content changed".to_string()),
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                                Some("missing".to_string())
                            }
                            Err(e) => Some(format!("cannot read: {e}")),
                        };
                        if let Some(message) = msg {
                            problems.push(Problem {
                                path: (*rel).clone(),
                                message,
                            });
                        }
                        // Sizes come from the index: a hostile one can say anything.
                        let d = done
                            .fetch_add(want.size, std::sync::atomic::Ordering::Relaxed)
                            .saturating_add(want.size);
                        progress(d.min(total), total);
                    }
                    problems
                })
            })
            .collect();
        // A worker that panicked is a bug: raise it here rather than report its files as
        // checked.
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut results = results;
    results.sort_by(|a, b| a.path.cmp(&b.path));
    report.problems.extend(results);
    report.objects_checked = files.len();
    report.documents = idx.documents.unwrap_or_else(|| {
        files
            .iter()
            .filter(|(r, _)| r.starts_with("objects/"))
            .count()
    });
    report.log_entries = idx.log_seq;
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// The problem and hint when a vault, mirror or backup is signed by another key than
/// `--expect` names: nothing in it was altered as far as anyone can tell, the fingerprint
/// typed is wrong or the folder is another patient's, so restoring files would not help.
pub fn wrong_signer(found: &str, expected: &str) -> (String, String) {
    (
        format!(
            "signed by a different key: wrong fingerprint, or another vault (signed by {found}, not by the expected {expected})"
        ),
        "check the fingerprint given to --expect against the one `carnet fingerprint` shows on the vault; nothing else was checked".to_string(),
    )
}

fn role_name(r: crate::slots::Role) -> &'static str {
    r.as_str()
}
