//! Format 2 metadata: the root record (`manifest.age`) and the write-once shards it names.
//!
//! A lifetime record holds 100,000 documents; rewriting all their metadata for every change
//! (format 1) costs seconds and tens of megabytes. Format 2 splits it:
//! - **document shards**: the documents whose id starts with the same two hex characters (256
//!   shards at most), so a document is found from the first characters a user types;
//! - **digest shards**: plaintext SHA-256 → document id, grouped by a keyed hash of the digest
//!   (HMAC under the vault's MAC key, so which shard changes tells an observer nothing about the
//!   content), so a duplicate is found without reading every shard;
//! - **the root**: patient, recipients, professionals, grants, and for each shard the object
//!   that holds it with its size and ciphertext BLAKE3.
//!
//! Shards are stored as ordinary objects (`objects/xx/ID.age`, random ids) and are never
//! modified in place: a change writes a new shard object and a new root naming it, then removes
//! the old object, exactly like a document's object. Crash recovery, keyless indexing, backups
//! and mirrors therefore treat them like any other object. The head authenticates the root's
//! SHA-256 and the root authenticates every shard by its BLAKE3, so a flipped byte, an older
//! copy, a shard from another vault or a dropped shard is detected.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::domain::Visibility;
use crate::error::Error;
use crate::index::FileEntry;
use crate::keyring::Keyring;
use crate::keys::Unlocked;
use crate::layout::Store;
use crate::log::{Head, Logged};
use crate::manifest::{Document, GrantRecord, Manifest, Patient};

/// Hex characters of a shard key: 256 shards, a few hundred documents each at 100,000.
pub const SHARD_KEY_LEN: usize = 2;
/// A shard is the metadata of a few hundred documents; this bounds a hostile one.
const MAX_SHARD: u64 = 256 << 20;
const DIGEST_DOMAIN: &str = "carnet digest shard v2";

/// Where a shard lives and what it must hash to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardRef {
    /// The object (under `objects/`) holding the sealed shard.
    pub object: String,
    /// Size and BLAKE3 of the object file (the ciphertext).
    pub size: u64,
    pub blake3: String,
    /// Entries in the shard: lets `ls` and `verify` count without reading it.
    pub count: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Shards {
    #[serde(default)]
    pub documents: BTreeMap<String, ShardRef>,
    #[serde(default)]
    pub digests: BTreeMap<String, ShardRef>,
}

/// The kinds of shard: which of `documents` / `digests` a shard file fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardKind {
    Documents,
    Digests,
}

impl ShardKind {
    fn label(self) -> &'static str {
        match self {
            ShardKind::Documents => "documents",
            ShardKind::Digests => "digests",
        }
    }
}

/// The decrypted content of a format-2 `manifest.age`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Root {
    pub format: u32,
    pub vault_id: String,
    /// Incremented by every change of the metadata.
    pub generation: u64,
    #[serde(default)]
    pub patient: Patient,
    /// A copy of the config's recipients: a swapped plaintext config is detected against it.
    pub recipients: Vec<String>,
    #[serde(default)]
    pub professionals: Vec<crate::pro::Professional>,
    #[serde(default)]
    pub grants: Vec<GrantRecord>,
    #[serde(default)]
    pub shards: Shards,
    /// What a reader must understand to rewrite this root without losing anything (see
    /// `FEATURES`): a reader that meets a name it does not know refuses the vault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Other keys that open the vault (a recovery key), each through its slot object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<crate::slots::Slot>,
    /// Standing rules: a category's documents, present and future, hidden from these readers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hidden_categories: BTreeMap<String, Vec<Visibility>>,
    /// Set while the record is closed (read-only); absent when open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closure>,
    /// The emergency profile's versions, oldest first (the last is current); each a sealed
    /// object (`profile`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<crate::profile::VersionRef>,
    /// Set while the patient objects to emergency access (`carnet emergency --opt-out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_opt_out: Option<OptOut>,
    /// What is hidden from guardians, sealed to a key their slots do not hold (see `Sealed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Sealed>,
    /// Whether `sealed.grants` were opened into `grants` (the reader holds the sealed key): then
    /// writing the root seals them again; otherwise they are carried over as they are.
    #[serde(skip)]
    pub sealed_grants_open: bool,
}

/// The compartment of what is hidden from guardians: documents whose metadata, objects, grants
/// and log entries are sealed to a key (`recipient`) held by the patient's and recovery keys and
/// never by a guardian's. A guardian's reader sees only this record: counts, sizes, object ids.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sealed {
    /// The sealed key's recipient (`age1…`): sealed shards, objects and grants are encrypted to it.
    pub recipient: String,
    pub created_at: jiff::Timestamp,
    #[serde(default)]
    pub shards: Shards,
    /// Every object of the sealed documents (all versions), so that a reader without the key
    /// still indexes, copies and checks them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, FileEntry>,
    /// Grants naming a sealed document: each an age file (to `recipient`) of the grant record,
    /// base64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
}

impl Sealed {
    pub fn new(recipient: String, now: jiff::Timestamp) -> Sealed {
        Sealed {
            recipient,
            created_at: now,
            shards: Shards::default(),
            objects: BTreeMap::new(),
            grants: Vec::new(),
        }
    }

    pub fn key(&self) -> anyhow::Result<age::x25519::Recipient> {
        crate::keys::parse_recipient(&self.recipient)
    }
}

/// When the patient objected to emergency access (CSP L1111-17: the patient may object
/// beforehand).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptOut {
    pub at: jiff::Timestamp,
}

/// When and why the patient closed the record (CSP R1111-36: closure, then deletion on request).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Closure {
    pub at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Root {
    pub fn new(vault_id: String, recipients: Vec<String>, patient: Patient) -> Root {
        Root {
            format: crate::FORMAT_VERSION,
            vault_id,
            generation: 0,
            patient,
            recipients,
            professionals: Vec::new(),
            grants: Vec::new(),
            shards: Shards::default(),
            hidden_categories: BTreeMap::new(),
            slots: Vec::new(),
            requires: Vec::new(),
            closed: None,
            profile: Vec::new(),
            emergency_opt_out: None,
            sealed: None,
            sealed_grants_open: false,
        }
    }

    /// The root of a format-1 manifest, before its documents are sharded.
    pub fn from_v1(m: &Manifest) -> Root {
        Root {
            format: crate::FORMAT_VERSION,
            vault_id: m.vault_id.clone(),
            generation: m.generation,
            patient: m.patient.clone(),
            recipients: m.recipients.clone(),
            professionals: m.professionals.clone(),
            grants: m.grants.clone(),
            shards: Shards::default(),
            hidden_categories: BTreeMap::new(),
            slots: Vec::new(),
            requires: Vec::new(),
            closed: None,
            profile: Vec::new(),
            emergency_opt_out: None,
            sealed: None,
            sealed_grants_open: false,
        }
    }

    /// The counts the shard table claims (saturating: a forged root can claim anything).
    /// Both compartments: counts are what a guardian may know of sealed documents.
    pub fn document_count(&self) -> usize {
        self.sealed
            .iter()
            .flat_map(|s| s.shards.documents.values())
            .chain(self.shards.documents.values())
            .fold(0usize, |n, s| n.saturating_add(s.count))
    }

    /// Every object the metadata itself occupies, sealed shards included.
    pub fn shard_objects(&self) -> impl Iterator<Item = &ShardRef> {
        let sealed = self
            .sealed
            .iter()
            .flat_map(|s| s.shards.documents.values().chain(s.shards.digests.values()));
        self.shards
            .documents
            .values()
            .chain(self.shards.digests.values())
            .chain(sealed)
    }

    /// Is `d` hidden from guardians (by itself or by its category)? Then it is sealed.
    pub fn hidden_from_guardians(&self, d: &Document) -> bool {
        self.category_hidden_from_guardians(&d.category)
            || d.visibility.contains(&Visibility::HiddenFromGuardians)
    }

    /// Does the category's standing rule hide its documents from guardians?
    pub fn category_hidden_from_guardians(&self, category: &str) -> bool {
        self.hidden_categories
            .get(category)
            .is_some_and(|r| r.contains(&Visibility::HiddenFromGuardians))
    }

    /// The root as stored: grants naming sealed documents sealed into `sealed.grants` when this
    /// reader opened them (otherwise carried over untouched), and `requires` naming what it uses.
    pub fn to_stored(&self) -> anyhow::Result<Root> {
        let mut out = self.clone();
        out.requires = FEATURES.iter().map(|f| f.to_string()).collect();
        if let Some(sealed) = &mut out.sealed {
            out.requires.push(SEALED_FEATURE.to_string());
            if self.sealed_grants_open {
                let to = sealed.key()?;
                let (closed, open): (Vec<GrantRecord>, Vec<GrantRecord>) =
                    out.grants.into_iter().partition(|g| g.sealed);
                out.grants = open;
                sealed.grants = closed
                    .iter()
                    .map(|g| seal_grant(g, &to))
                    .collect::<anyhow::Result<_>>()?;
            }
        }
        Ok(out)
    }

    /// Opens `sealed.grants` into `grants` (marked sealed) with the sealed key.
    pub fn open_sealed_grants(&mut self, key: &age::x25519::Identity) -> Result<(), Error> {
        let Some(sealed) = &self.sealed else {
            return Ok(());
        };
        for (i, g) in sealed.grants.iter().enumerate() {
            let mut grant = open_grant(g, key).map_err(|why| {
                Error::Integrity(format!("manifest.age: sealed grant {}: {why}", i + 1))
            })?;
            grant.sealed = true;
            self.grants.push(grant);
        }
        self.sealed_grants_open = true;
        Ok(())
    }

    /// The objects of the emergency profile's versions, with their size and BLAKE3.
    pub fn profile_objects(&self) -> impl Iterator<Item = (&str, FileEntry)> {
        self.profile
            .iter()
            .map(|v| (v.object.as_str(), v.file_entry()))
    }

    /// A document's visibility codes: its own and its category's standing rule.
    pub fn visibility(&self, d: &Document) -> BTreeSet<Visibility> {
        let mut v: BTreeSet<Visibility> = d.visibility.iter().cloned().collect();
        if let Some(rule) = self.hidden_categories.get(&d.category) {
            v.extend(rule.iter().cloned());
        }
        v
    }

    /// Is `d` hidden from professionals (by itself or by its category)?
    pub fn hidden_from_pros(&self, d: &Document) -> bool {
        self.visibility(d).contains(&Visibility::HiddenFromPros)
    }

    /// Finds a professional by handle, RPPS or ADELI number, or a unique handle prefix.
    pub fn professional(&self, who: &str) -> Result<&crate::pro::Professional, Error> {
        crate::pro::find(&self.professionals, who)
    }

    /// A professional to share with: a handle prefix must be whole words of it.
    pub fn professional_to_share(&self, who: &str) -> Result<&crate::pro::Professional, Error> {
        crate::pro::find_to_share(&self.professionals, who)
    }

    /// Refuses a change while the record is closed (`carnet close`). `Txn::commit` calls it for
    /// every change, which is what enforces closure; commands that do long work before they
    /// commit (encrypting files, building a bundle) call it first so as not to do it in vain.
    pub fn check_writable(&self) -> Result<(), Error> {
        match &self.closed {
            Some(c) => Err(Error::Closed {
                at: c.at,
                reason: c.reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// The features of format 2 this build reads and writes beyond its first version: document
/// versions, visibility codes and rules, key slots, a closed record. Every root it writes lists
/// them in `requires`, so that a later format-2 reader that lacks one refuses the vault instead of
/// silently dropping what it holds (a hidden document made visible, a history forgotten).
pub const FEATURES: &[&str] = &["versions", "visibility", "slots", "closed"];
/// Named in `requires` only by a root that has a sealed compartment: a vault that never hid
/// anything from guardians stays readable by the carnet before it.
pub const SEALED_FEATURE: &str = "sealed";

/// A sealed grant record is a few hundred bytes (its documents' ids); bound a hostile one.
const MAX_SEALED_GRANT: u64 = 16 << 20;

fn seal_grant(g: &GrantRecord, to: &age::x25519::Recipient) -> anyhow::Result<String> {
    use base64::Engine;
    let json = zeroize::Zeroizing::new(serde_json::to_vec(g)?);
    let sealed = crypto::seal_bytes(&json, std::slice::from_ref(to))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

fn open_grant(text: &str, key: &age::x25519::Identity) -> Result<GrantRecord, String> {
    use base64::Engine;
    if text.len() as u64 > crypto::max_sealed_len(MAX_SEALED_GRANT) * 2 {
        return Err("too large".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| "not base64".to_string())?;
    let plain = zeroize::Zeroizing::new(
        crypto::open_bytes(
            &bytes,
            std::iter::once(key as &dyn age::Identity),
            MAX_SEALED_GRANT,
        )
        .map_err(|e| e.to_string())?,
    );
    serde_json::from_slice(&plain).map_err(|e| format!("unreadable: {e}"))
}

/// One shard as stored: self-describing, so a shard moved between vaults or between keys is
/// refused even before its hash is compared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shard {
    pub format: u32,
    pub vault_id: String,
    pub kind: ShardKind,
    pub key: String,
    /// A shard of the sealed compartment (what is hidden from guardians): it may not be moved
    /// into the clear table, nor the reverse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    /// Plaintext SHA-256 → document id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, String>,
}

/// The document shard of an id (or of a typed prefix of one).
/// The document shard that holds `id` (or a typed prefix of it) in a compartment: by its first
/// characters in the clear one; the sealed one keeps all its documents in one shard, `00`, so
/// that which shard a change rewrites does not tell a guardian which sealed document it touched.
pub fn table_key(place: Compartment, id: &str) -> String {
    match place {
        Compartment::Open => doc_key(id).to_string(),
        Compartment::Sealed => "00".to_string(),
    }
}

pub fn doc_key(id: &str) -> &str {
    &id[..SHARD_KEY_LEN.min(id.len())]
}

/// The digest shard of a plaintext SHA-256: keyed, so its name leaks nothing about content.
pub fn digest_key(ring: &Keyring, sha256: &str) -> String {
    digest_shard(Compartment::Open, ring, sha256)
}

/// The digest shard of a plaintext SHA-256 in a compartment. The sealed compartment keeps its
/// digests in one shard: a guardian holds the MAC key, and a keyed shard name would let them
/// test whether a file they guess is among the sealed documents.
pub fn digest_shard(place: Compartment, ring: &Keyring, sha256: &str) -> String {
    if place == Compartment::Sealed {
        return "00".to_string();
    }
    hex::encode(&ring.mac(DIGEST_DOMAIN, sha256.as_bytes())[..SHARD_KEY_LEN / 2])
}

fn is_key(s: &str) -> bool {
    s.len() == SHARD_KEY_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `manifest.age` as read: the root (format 2, or converted from format 1), the documents of a
/// format-1 manifest, and the SHA-256 of the plaintext.
pub struct ReadManifest {
    pub root: Root,
    pub legacy: Option<Vec<Document>>,
    pub sha256: String,
}

/// An authenticated, consistent view of the vault.
pub struct Snapshot {
    pub keys: Unlocked,
    pub ring: Keyring,
    pub head: Head,
    /// Patient, recipients, professionals, grants and (format 2) the shard table.
    pub root: Root,
    /// The documents of a format-1 manifest; format 2 keeps them in shards, read on demand.
    pub legacy: Option<Vec<Document>>,
    pub manifest_sha256: String,
    /// The entry of a command interrupted after it wrote the manifest; the next write finishes it.
    pub pending: Option<Logged>,
}

/// Checks that the root's shard table is well formed (keys, object ids): it names files to read.
pub fn check_root(root: &Root, path: &str) -> Result<(), Error> {
    if let Some(f) = root
        .requires
        .iter()
        .find(|f| !FEATURES.contains(&f.as_str()) && f.as_str() != SEALED_FEATURE)
    {
        return Err(Error::input(
            format!(
                "{path} uses {:?}, which this carnet does not know: it was written by a newer one",
                crate::text::clean(f)
            ),
            "upgrade carnet to open this vault (writing with this one would lose what it holds)",
        ));
    }
    // The sealed compartment and its feature name go together: a root that drops one of them
    // would make what is hidden from guardians silently vanish from the patient's view.
    let names_sealed = root.requires.iter().any(|f| f == SEALED_FEATURE);
    if names_sealed != root.sealed.is_some() {
        return Err(Error::Integrity(format!(
            "{path} {} (altered?)",
            if names_sealed {
                "requires its sealed compartment but holds none"
            } else {
                "holds a sealed compartment it does not require"
            }
        )));
    }
    crate::profile::check_versions(&root.profile)?;
    let sealed = root.sealed.iter().flat_map(|s| {
        [
            (ShardKind::Documents, &s.shards.documents),
            (ShardKind::Digests, &s.shards.digests),
        ]
    });
    if let Some(s) = &root.sealed {
        crate::keys::parse_recipient(&s.recipient).map_err(|_| {
            Error::Integrity(format!("{path} names an invalid sealed key recipient"))
        })?;
        // One documents shard and one digests shard, both `00` (see `table_key`).
        if s.shards
            .documents
            .keys()
            .chain(s.shards.digests.keys())
            .any(|k| k != "00")
        {
            return Err(Error::Integrity(format!(
                "{path} names a sealed shard other than 00"
            )));
        }
        if let Some(o) = s.objects.keys().find(|o| !crate::ids::is_full_id(o)) {
            return Err(Error::Integrity(format!(
                "{path} names an invalid sealed object {:?}",
                crate::text::clean(o)
            )));
        }
    }
    for (kind, table) in [
        (ShardKind::Documents, &root.shards.documents),
        (ShardKind::Digests, &root.shards.digests),
    ]
    .into_iter()
    .chain(sealed)
    {
        for (key, r) in table {
            if !is_key(key) || !crate::ids::is_full_id(&r.object) {
                return Err(Error::Integrity(format!(
                    "{path} names an invalid {} shard {:?}",
                    kind.label(),
                    crate::text::clean(key)
                )));
            }
        }
    }
    Ok(())
}

/// Reads one shard, checking the object against the root before decrypting it and the content
/// after (vault, kind, key, every id in its place).
pub fn read_shard(
    vault: &dyn Store,
    keys: &Unlocked,
    place: Compartment,
    kind: ShardKind,
    key: &str,
    r: &ShardRef,
) -> Result<Shard, Error> {
    let path = vault.object_path(&r.object);
    let bad = |why: String| {
        Error::Integrity(format!(
            "{} ({}{} shard {key}): {why}",
            path.display(),
            if place == Compartment::Sealed {
                "sealed "
            } else {
                ""
            },
            kind.label()
        ))
    };
    let bytes = crate::fsutil::read_limited(&path, crypto::max_sealed_len(MAX_SHARD)).map_err(
        |e| match e.kind() {
            std::io::ErrorKind::NotFound => bad("missing".into()),
            _ => bad(format!("cannot read it: {e}")),
        },
    )?;
    if bytes.len() as u64 != r.size || blake3::hash(&bytes).to_hex().as_str() != r.blake3 {
        return Err(bad(
            "not the shard the manifest names (altered, an older copy, or from another vault)"
                .into(),
        ));
    }
    let plain = zeroize::Zeroizing::new(
        crypto::open_bytes(&bytes, keys.as_dyn(), MAX_SHARD).map_err(|e| bad(e.to_string()))?,
    );
    let shard: Shard =
        serde_json::from_slice(&plain).map_err(|e| bad(format!("unreadable: {e}")))?;
    if shard.format != crate::FORMAT_VERSION {
        return Err(bad(format!(
            "format {} is not a shard this carnet writes",
            shard.format
        )));
    }
    if shard.vault_id != vault.config().vault_id
        || shard.kind != kind
        || shard.key != key
        || shard.sealed != (place == Compartment::Sealed)
    {
        return Err(bad("belongs elsewhere (another vault or shard)".into()));
    }
    match kind {
        ShardKind::Documents => {
            if shard.documents.len() != r.count {
                return Err(bad("its document count is not the manifest's".into()));
            }
            for d in &shard.documents {
                if !crate::ids::is_full_id(&d.id)
                    || d.versions().any(|v| !crate::ids::is_full_id(&v.object))
                    || (place == Compartment::Open && doc_key(&d.id) != key)
                    || !d.history_is_sound()
                {
                    return Err(bad(format!(
                        "names an invalid id {:?}",
                        crate::text::clean(&d.id)
                    )));
                }
            }
        }
        ShardKind::Digests => {
            if shard.digests.len() != r.count {
                return Err(bad("its entry count is not the manifest's".into()));
            }
            if shard.digests.values().any(|id| !crate::ids::is_full_id(id)) {
                return Err(bad("names an invalid id".into()));
            }
        }
    }
    Ok(shard)
}

/// Where a document's metadata lives: the clear compartment, or the sealed one (hidden from
/// guardians, readable only with the sealed key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compartment {
    Open,
    Sealed,
}

impl Root {
    fn tables(&self, place: Compartment) -> Option<&Shards> {
        match place {
            Compartment::Open => Some(&self.shards),
            Compartment::Sealed => self.sealed.as_ref().map(|s| &s.shards),
        }
    }

    fn tables_mut(&mut self, place: Compartment) -> Option<&mut Shards> {
        match place {
            Compartment::Open => Some(&mut self.shards),
            Compartment::Sealed => self.sealed.as_mut().map(|s| &mut s.shards),
        }
    }
}

impl Snapshot {
    /// The compartments this reader opens: the sealed one only with the sealed key.
    pub fn readable(&self) -> Vec<Compartment> {
        let mut out = vec![Compartment::Open];
        if self.root.sealed.is_some() && self.keys.sealed.is_some() {
            out.push(Compartment::Sealed);
        }
        out
    }

    /// Every document shard this reader opens.
    fn document_shards(&self) -> Vec<(Compartment, &String, &ShardRef)> {
        self.readable()
            .into_iter()
            .filter_map(|c| self.root.tables(c).map(|t| (c, t)))
            .flat_map(|(c, t)| t.documents.iter().map(move |(k, r)| (c, k, r)))
            .collect()
    }

    /// Every document this reader may see, in no particular order. Reads every shard: for
    /// listings and checks.
    pub fn documents(&self, vault: &dyn Store) -> Result<Vec<Document>, Error> {
        if let Some(docs) = &self.legacy {
            return Ok(docs.clone());
        }
        let shards = self.document_shards();
        let read = |part: &[(Compartment, &String, &ShardRef)]| -> Result<Vec<Document>, Error> {
            let mut out = Vec::new();
            for (place, key, r) in part {
                out.extend(
                    read_shard(vault, &self.keys, *place, ShardKind::Documents, key, r)?.documents,
                );
            }
            Ok(out)
        };
        // Decrypting and parsing every shard is the whole cost of a listing: two threads (the
        // machines this runs on have few cores) once there is enough to share.
        if shards.len() < 16 {
            return read(&shards);
        }
        let (a, b) = shards.split_at(shards.len() / 2);
        let (first, second) = std::thread::scope(|s| {
            let other = s.spawn(|| read(b));
            let first = read(a);
            (first, other.join())
        });
        let mut out = first?;
        // A panic in the other reader is a bug: raise it here as it was.
        out.extend(second.unwrap_or_else(|p| std::panic::resume_unwind(p))?);
        Ok(out)
    }

    /// Documents sorted by date, then by when they were added.
    pub fn sorted_documents(&self, vault: &dyn Store) -> Result<Vec<Document>, Error> {
        let mut v = self.documents(vault)?;
        v.sort_by_key(|d| (d.date, d.added_at));
        Ok(v)
    }

    /// How many documents the vault holds, sealed ones included (a count is all a guardian
    /// learns of them): what the index records.
    pub fn document_count(&self) -> usize {
        match &self.legacy {
            Some(d) => d.len(),
            None => self.root.document_count(),
        }
    }

    /// The documents of one compartment's shard that `key` (two hex characters) selects.
    fn shard_in(
        &self,
        vault: &dyn Store,
        place: Compartment,
        key: &str,
    ) -> Result<Vec<Document>, Error> {
        if let Some(docs) = &self.legacy {
            return Ok(match place {
                Compartment::Open => docs
                    .iter()
                    .filter(|d| d.id.starts_with(key))
                    .cloned()
                    .collect(),
                Compartment::Sealed => Vec::new(),
            });
        }
        if !self.readable().contains(&place) {
            return Ok(Vec::new());
        }
        match self.root.tables(place).and_then(|t| t.documents.get(key)) {
            Some(r) => {
                Ok(read_shard(vault, &self.keys, place, ShardKind::Documents, key, r)?.documents)
            }
            None => Ok(Vec::new()),
        }
    }

    /// The documents, in every compartment this reader opens, whose id starts with `key`.
    fn shard_documents(&self, vault: &dyn Store, key: &str) -> Result<Vec<Document>, Error> {
        let mut out = Vec::new();
        for place in self.readable() {
            out.extend(
                self.shard_in(vault, place, &table_key(place, key))?
                    .into_iter()
                    .filter(|d| d.id.starts_with(key)),
            );
        }
        Ok(out)
    }

    /// Resolves a typed id prefix to a document, reading only the shard the prefix selects.
    pub fn resolve(&self, vault: &dyn Store, prefix: &str) -> Result<Document, Error> {
        let p = prefix.trim().to_ascii_lowercase();
        let docs = match p.get(..SHARD_KEY_LEN).filter(|k| is_key(k)) {
            Some(key) => self.shard_documents(vault, key)?,
            // Not hex: `ids::resolve` says why.
            None => Vec::new(),
        };
        let id = crate::ids::resolve(prefix, docs.iter().map(|d| d.id.as_str()))?.to_string();
        docs.into_iter()
            .find(|d| d.id == id)
            .ok_or(Error::UnknownId(id))
    }

    /// The document with this full id, if any.
    pub fn document(&self, vault: &dyn Store, id: &str) -> Result<Option<Document>, Error> {
        if !crate::ids::is_full_id(id) {
            return Ok(None);
        }
        Ok(self
            .shard_documents(vault, doc_key(id))?
            .into_iter()
            .find(|d| d.id == *id))
    }

    /// The documents with these full ids (missing ones are skipped), reading each shard once.
    pub fn documents_by_id(
        &self,
        vault: &dyn Store,
        ids: &[String],
    ) -> Result<BTreeMap<String, Document>, Error> {
        let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let mut out = BTreeMap::new();
        // Each shard once: per id prefix in the clear compartment, the one sealed shard once.
        for place in self.readable() {
            let keys: BTreeSet<String> = ids
                .iter()
                .filter(|i| crate::ids::is_full_id(i))
                .map(|i| table_key(place, i))
                .collect();
            for k in keys {
                for d in self.shard_in(vault, place, &k)? {
                    if wanted.contains(d.id.as_str()) {
                        out.insert(d.id.to_string(), d);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every sealed document's id (the one sealed shard); empty without the sealed key.
    pub fn all_sealed_ids(&self, vault: &dyn Store) -> Result<BTreeSet<String>, Error> {
        if !self.readable().contains(&Compartment::Sealed) {
            return Ok(BTreeSet::new());
        }
        Ok(self
            .shard_in(
                vault,
                Compartment::Sealed,
                &table_key(Compartment::Sealed, ""),
            )?
            .into_iter()
            .map(|d| d.id.to_string())
            .collect())
    }

    /// Which of `ids` are sealed documents (hidden from guardians). Reads only the sealed
    /// shards these ids select; empty for a reader without the sealed key.
    pub fn sealed_ids(&self, vault: &dyn Store, ids: &[String]) -> Result<BTreeSet<String>, Error> {
        let mut out = BTreeSet::new();
        if !self.readable().contains(&Compartment::Sealed) {
            return Ok(out);
        }
        if !ids.iter().any(|i| crate::ids::is_full_id(i)) {
            return Ok(out);
        }
        for d in self.shard_in(
            vault,
            Compartment::Sealed,
            &table_key(Compartment::Sealed, ""),
        )? {
            if ids.iter().any(|i| *i == d.id.as_str()) {
                out.insert(d.id.to_string());
            }
        }
        Ok(out)
    }

    /// Every plaintext SHA-256 this reader may see and its document: for large imports, which
    /// would otherwise read a digest shard per file.
    pub fn digests(&self, vault: &dyn Store) -> Result<HashMap<String, String>, Error> {
        if let Some(docs) = &self.legacy {
            return Ok(docs
                .iter()
                .map(|d| (d.sha256.clone(), d.id.to_string()))
                .collect());
        }
        let mut out = HashMap::new();
        for place in self.readable() {
            let Some(t) = self.root.tables(place) else {
                continue;
            };
            for (key, r) in &t.digests {
                out.extend(
                    read_shard(vault, &self.keys, place, ShardKind::Digests, key, r)?.digests,
                );
            }
        }
        Ok(out)
    }

    /// The document holding this plaintext, found through its digest shard.
    pub fn find_by_sha256(
        &self,
        vault: &dyn Store,
        sha256: &str,
    ) -> Result<Option<Document>, Error> {
        if let Some(docs) = &self.legacy {
            return Ok(docs.iter().find(|d| d.sha256 == sha256).cloned());
        }
        for place in self.readable() {
            let key = digest_shard(place, &self.ring, sha256);
            let Some(r) = self.root.tables(place).and_then(|t| t.digests.get(&key)) else {
                continue;
            };
            let shard = read_shard(vault, &self.keys, place, ShardKind::Digests, &key, r)?;
            if let Some(id) = shard.digests.get(sha256) {
                return self.document(vault, id);
            }
        }
        Ok(None)
    }
}

/// A new shard object sealed in `tmp/`, ready to be renamed into `objects/`.
pub struct SealedShard {
    pub tmp: tempfile::TempPath,
    pub reference: ShardRef,
}

fn seal_shard(
    vault: &dyn Store,
    shard: &Shard,
    count: usize,
    recipients: &[age::x25519::Recipient],
) -> anyhow::Result<SealedShard> {
    let json = zeroize::Zeroizing::new(serde_json::to_vec(shard).context("cannot encode a shard")?);
    let sealed = crypto::seal_bytes(&json, recipients).context("cannot encrypt a shard")?;
    let mut tmp = crate::fsutil::private_tempfile(&vault.tmp_dir())
        .with_context(|| format!("cannot write in {}", vault.tmp_dir().display()))?;
    tmp.write_all(&sealed)
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    Ok(SealedShard {
        tmp: tmp.into_temp_path(),
        reference: ShardRef {
            object: crate::ids::random_id(),
            size: sealed.len() as u64,
            blake3: blake3::hash(&sealed).to_hex().to_string(),
            count,
        },
    })
}

/// What a change does to the metadata: the new root, the shard objects to add, and the shard
/// objects it replaces (removed once the new root is committed).
pub struct Plan {
    pub root: Root,
    pub added: Vec<SealedShard>,
    pub removed: Vec<String>,
    /// The documents put or deleted that are sealed before or after the change: the log entry
    /// naming them is sealed too.
    pub sealed_ids: BTreeSet<String>,
}

/// Applies `put` (insert or replace by id) and `delete` (by id) to the shards they touch,
/// starting from `root` (the current one, possibly with edited professionals and grants).
/// Reads and rewrites only the shards concerned: the cost does not grow with the record.
/// A document hidden from guardians goes to the sealed compartment when the root has one; a
/// document whose visibility changed moves between compartments (its objects must already be
/// encrypted for the one it goes to: see `ops::seal`).
pub fn plan(
    vault: &dyn Store,
    snap: &Snapshot,
    mut root: Root,
    put: &[Document],
    delete: &[String],
    recipients: &[age::x25519::Recipient],
) -> anyhow::Result<Plan> {
    let sealed_to = root.sealed.as_ref().map(|s| s.key()).transpose()?;
    let can_seal = snap.keys.sealed.is_some();
    let mut doc_shards: BTreeMap<(Compartment, String), Vec<Document>> = BTreeMap::new();
    for id in delete
        .iter()
        .map(String::as_str)
        .chain(put.iter().map(|d| d.id.as_str()))
    {
        if !crate::ids::is_full_id(id) {
            return Err(Error::Integrity(format!("invalid document id {id:?}")).into());
        }
        for place in [Compartment::Open, Compartment::Sealed] {
            if let Entry::Vacant(v) = doc_shards.entry((place, table_key(place, id))) {
                let docs = snap.shard_in(vault, place, &table_key(place, id))?;
                v.insert(docs);
            }
        }
    }
    // Digest changes: (compartment, sha256, id, true) to set sha256 → id; (…, false) to clear
    // it if it still names that document (an upgraded format-1 vault may hold the same content
    // twice: removing one copy must not forget the other).
    let mut digest_edits: Vec<(Compartment, String, String, bool)> = Vec::new();
    let mut sealed_ids = BTreeSet::new();
    // Sealed objects to forget and to list: every version's object of the sealed documents.
    let mut unlisted: Vec<String> = Vec::new();
    let mut listed: BTreeMap<String, FileEntry> = BTreeMap::new();
    let take = |doc_shards: &mut BTreeMap<(Compartment, String), Vec<Document>>,
                id: &str|
     -> Option<(Compartment, Document)> {
        for place in [Compartment::Open, Compartment::Sealed] {
            let docs = doc_shards.get_mut(&(place, table_key(place, id)))?;
            if let Some(i) = docs.iter().position(|d| d.id.as_str() == id) {
                return Some((place, docs.remove(i)));
            }
        }
        None
    };
    // Only the shards that change are written again (both compartments are read for each id).
    let mut touched: BTreeSet<(Compartment, String)> = BTreeSet::new();
    for id in delete {
        if let Some((place, old)) = take(&mut doc_shards, id) {
            touched.insert((place, table_key(place, id)));
            if place == Compartment::Sealed {
                sealed_ids.insert(old.id.to_string());
                unlisted.extend(old.stored_objects().iter().map(|v| v.object.clone()));
            }
            digest_edits.push((place, old.sha256.clone(), old.id.to_string(), false));
        }
    }
    for d in put {
        let place = if sealed_to.is_some() && root.hidden_from_guardians(d) {
            Compartment::Sealed
        } else {
            Compartment::Open
        };
        if sealed_to.is_none()
            && root.hidden_from_guardians(d)
            && root
                .slots
                .iter()
                .any(|s| s.role == crate::slots::Role::Guardian)
        {
            // A vault that cannot seal (see `ops::seal::can_seal`) with a guardian's key.
            return Err(Error::input(
                "this document would be hidden from guardians, and in this vault a guardian's key would still open it",
                "choose a category that is not hidden from guardians",
            )
            .into());
        }
        if place == Compartment::Sealed && !can_seal {
            return Err(Error::input(
                "what is hidden from guardians is sealed from this key",
                "the patient adds and changes documents hidden from guardians",
            )
            .into());
        }
        if let Some((was, old)) = take(&mut doc_shards, &d.id) {
            touched.insert((was, table_key(was, &d.id)));
            if was != place || old.sha256 != d.sha256 {
                digest_edits.push((was, old.sha256.clone(), old.id.to_string(), false));
            }
            if was == Compartment::Sealed {
                sealed_ids.insert(old.id.to_string());
                unlisted.extend(old.stored_objects().iter().map(|v| v.object.clone()));
            }
        }
        if place == Compartment::Sealed {
            sealed_ids.insert(d.id.to_string());
            for v in d.stored_objects() {
                listed.insert(
                    v.object.clone(),
                    FileEntry {
                        size: v.object_size,
                        blake3: v.object_blake3.clone(),
                    },
                );
            }
        }
        touched.insert((place, table_key(place, &d.id)));
        doc_shards
            .entry((place, table_key(place, &d.id)))
            .or_default()
            .push(d.clone());
        digest_edits.push((place, d.sha256.clone(), d.id.to_string(), true));
    }
    if let Some(sealed) = &mut root.sealed {
        for o in &unlisted {
            sealed.objects.remove(o);
        }
        sealed.objects.extend(listed);
    }

    let mut added = Vec::new();
    let mut removed = Vec::new();
    let vault_id = vault.config().vault_id.clone();
    let shard = |place, kind, key: String, documents, digests| Shard {
        format: crate::FORMAT_VERSION,
        vault_id: vault_id.clone(),
        kind,
        key,
        sealed: place == Compartment::Sealed,
        documents,
        digests,
    };
    let to = |place| -> Vec<age::x25519::Recipient> {
        match (place, &sealed_to) {
            (Compartment::Sealed, Some(c)) => vec![c.clone()],
            _ => recipients.to_vec(),
        }
    };
    for ((place, key), mut docs) in doc_shards {
        // A compartment this reader cannot open was not read, so it is not rewritten.
        if !touched.contains(&(place, key.clone()))
            || (place == Compartment::Sealed && (sealed_to.is_none() || !can_seal))
        {
            continue;
        }
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        let s = shard(place, ShardKind::Documents, key, docs, BTreeMap::new());
        let table = match root.tables_mut(place) {
            Some(t) => &mut t.documents,
            None => continue,
        };
        replace_shard(vault, &to(place), table, s, &mut added, &mut removed)?;
    }

    let mut digest_shards: BTreeMap<(Compartment, String), BTreeMap<String, String>> =
        BTreeMap::new();
    for (place, sha, id, set) in digest_edits {
        let map = match digest_shards.entry((place, digest_shard(place, &snap.ring, &sha))) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let key = &v.key().1;
                let current = match (
                    snap.legacy.is_some(),
                    snap.root.tables(place).and_then(|t| t.digests.get(key)),
                ) {
                    (false, Some(r)) if snap.readable().contains(&place) => {
                        read_shard(vault, &snap.keys, place, ShardKind::Digests, key, r)?.digests
                    }
                    _ => BTreeMap::new(),
                };
                v.insert(current)
            }
        };
        if set {
            map.insert(sha, id);
        } else if map.get(&sha) == Some(&id) {
            map.remove(&sha);
        }
    }
    for ((place, key), digests) in digest_shards {
        if place == Compartment::Sealed && (sealed_to.is_none() || !can_seal) {
            continue;
        }
        let s = shard(place, ShardKind::Digests, key, Vec::new(), digests);
        let table = match root.tables_mut(place) {
            Some(t) => &mut t.digests,
            None => continue,
        };
        replace_shard(vault, &to(place), table, s, &mut added, &mut removed)?;
    }
    root.format = crate::FORMAT_VERSION;
    Ok(Plan {
        root,
        added,
        removed,
        sealed_ids,
    })
}

/// Puts `shard` in place of the table's entry for its key: the old object is to be removed, an
/// emptied shard is dropped, any other is sealed as a new object.
fn replace_shard(
    vault: &dyn Store,
    recipients: &[age::x25519::Recipient],
    table: &mut BTreeMap<String, ShardRef>,
    shard: Shard,
    added: &mut Vec<SealedShard>,
    removed: &mut Vec<String>,
) -> anyhow::Result<()> {
    if let Some(old) = table.remove(&shard.key) {
        removed.push(old.object);
    }
    let count = shard.documents.len() + shard.digests.len();
    if count == 0 {
        return Ok(());
    }
    let s = seal_shard(vault, &shard, count, recipients)?;
    table.insert(shard.key, s.reference.clone());
    added.push(s);
    Ok(())
}

/// Builds every shard of a format-1 manifest's documents at once (the upgrade).
pub fn plan_upgrade(
    vault: &dyn Store,
    snap: &Snapshot,
    recipients: &[age::x25519::Recipient],
) -> anyhow::Result<Plan> {
    let docs = snap.legacy.clone().unwrap_or_default();
    let mut root = snap.root.clone();
    root.shards = Shards::default();
    // Each shard starts as the format-1 documents it holds and every document is put back:
    // the same documents, now sealed per shard, with their digests.
    plan(vault, snap, root, &docs, &[], recipients)
}

impl Snapshot {
    /// Every object the vault's metadata names, with the size and BLAKE3 recorded for it: the
    /// documents' objects and the shards'.
    pub fn objects(&self, vault: &dyn Store) -> Result<BTreeMap<String, FileEntry>, Error> {
        let mut out = BTreeMap::new();
        for doc in self.documents(vault)? {
            for d in doc.stored_objects() {
                out.insert(
                    d.object.clone(),
                    FileEntry {
                        size: d.object_size,
                        blake3: d.object_blake3.clone(),
                    },
                );
            }
        }
        for s in &self.root.slots {
            out.insert(
                s.object.clone(),
                FileEntry {
                    size: s.size,
                    blake3: s.blake3.clone(),
                },
            );
        }
        for r in self.root.shard_objects() {
            out.insert(
                r.object.clone(),
                FileEntry {
                    size: r.size,
                    blake3: r.blake3.clone(),
                },
            );
        }
        for (object, e) in self.root.profile_objects() {
            out.insert(object.to_string(), e);
        }
        // The sealed documents' objects, as the root lists them: a reader without the sealed
        // key still indexes and checks them.
        if let Some(sealed) = &self.root.sealed {
            for (object, e) in &sealed.objects {
                out.insert(object.clone(), e.clone());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sealed_compartment_and_its_feature_name_go_together() {
        // Attack finding: a root naming "sealed" without the compartment made the patient's
        // hidden documents vanish from every listing without a word.
        let mut root = Root::new("v".into(), vec![], Patient::default());
        root.requires = FEATURES.iter().map(|f| f.to_string()).collect();
        root.requires.push(SEALED_FEATURE.into());
        let e = check_root(&root, "manifest.age").unwrap_err().to_string();
        assert!(e.contains("holds none"), "{e}");
        root.requires.pop();
        let key = age::x25519::Identity::generate().to_public().to_string();
        root.sealed = Some(Sealed::new(key, jiff::Timestamp::UNIX_EPOCH));
        let e = check_root(&root, "manifest.age").unwrap_err().to_string();
        assert!(e.contains("does not require"), "{e}");
        root.requires.push(SEALED_FEATURE.into());
        assert!(check_root(&root, "manifest.age").is_ok());
    }

    #[test]
    fn a_root_requiring_an_unknown_feature_is_refused_and_known_ones_pass() {
        let mut root = Root::new("v".into(), vec![], Patient::default());
        root.requires = FEATURES.iter().map(|f| f.to_string()).collect();
        assert!(check_root(&root, "manifest.age").is_ok());
        root.requires.push("teleportation".into());
        let e = check_root(&root, "manifest.age").unwrap_err().to_string();
        assert!(
            e.contains("\"teleportation\"") && e.contains("newer"),
            "{e}"
        );
    }
}
