//! The manifest: every document's metadata, kept as one age-encrypted JSON file.

use serde::{Deserialize, Serialize};

/// The decrypted content of `manifest.age`. Fields added by later format versions carry
/// `#[serde(default)]` so that newer builds still read older vaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub vault_id: String,
    /// Incremented by every change; later versions bind it to the access log against rollback.
    pub generation: u64,
    #[serde(default)]
    pub patient: Patient,
    /// A copy of the config's recipients: a swapped plaintext config is detected against it.
    pub recipients: Vec<String>,
    #[serde(default)]
    pub documents: Vec<Document>,
    /// The patient's directory of professionals.
    #[serde(default)]
    pub professionals: Vec<crate::pro::Professional>,
    /// Every grant issued, with its terms in brief and whether it was revoked.
    #[serde(default)]
    pub grants: Vec<GrantRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GrantRecord {
    pub id: String,
    /// Handles of the professionals it was issued to.
    pub to: Vec<String>,
    pub documents: Vec<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    pub issued_at: jiff::Timestamp,
    pub not_before: jiff::Timestamp,
    pub expires: jiff::Timestamp,
    pub bundle_sha256: String,
    #[serde(default)]
    pub revoked_at: Option<jiff::Timestamp>,
    /// The professionals' receipts: when the bundle was opened, by whom (`carnet receive`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opened: Vec<Opening>,
    /// It names a document hidden from guardians: stored sealed (`Root::to_stored`), never in
    /// the root's clear list.
    #[serde(skip)]
    pub sealed: bool,
}

/// One receipt recorded: a professional opened the grant's bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Opening {
    pub at: jiff::Timestamp,
    /// The professional's handle in the directory.
    pub by: String,
    /// The receipt's id: a receipt received twice is recorded once.
    pub receipt: String,
}

impl GrantRecord {
    /// When the bundle was first opened, as far as receipts tell.
    pub fn opened_at(&self) -> Option<jiff::Timestamp> {
        self.opened.iter().map(|o| o.at).min()
    }
}

impl GrantRecord {
    /// active, expired, revoked or not-yet-valid at `now`.
    pub fn status(&self, now: jiff::Timestamp) -> crate::domain::GrantStatus {
        use crate::domain::GrantStatus;
        if self.revoked_at.is_some() {
            GrantStatus::Revoked
        } else if now < self.not_before {
            GrantStatus::NotYetValid
        } else if now >= self.expires {
            GrantStatus::Expired
        } else {
            GrantStatus::Active
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Patient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nir: Option<String>,
}

/// One document. `id` is what users type; `object` names its ciphertext under `objects/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    pub id: crate::ids::DocId,
    pub title: String,
    pub category: String,
    /// The document's own date (YYYY-MM-DD), not when it was added.
    pub date: jiff::civil::Date,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub media_type: String,
    pub size: u64,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
    /// CRC-32 of the plaintext, recorded while adding so that a bundle can put it in the zip
    /// entry's header without reading the document twice. Absent in older vaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<u32>,
    pub added_at: jiff::Timestamp,
    /// The file name it was added from, for the extension on export.
    #[serde(default)]
    pub original_name: Option<String>,
    pub object: String,
    pub object_size: u64,
    /// BLAKE3 of the ciphertext file, hex: lets `verify` check objects without decrypting.
    pub object_blake3: String,
    /// 1 for a document as added; each `edit` or `replace` makes the next.
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    pub version: u32,
    /// How this version came to be, for every version but the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Revision>,
    /// The earlier versions, oldest first, each a whole document as it stood (with its own
    /// `version` and `revision`, and no history of its own). Their objects stay in the vault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Document>,
    /// Who must not see it (the patient's choice, DMP visibility codes); current version only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visibility: Vec<crate::domain::Visibility>,
    /// Where it came from when not from the patient's own files: a professional's deposit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// A document deposited by a professional (`carnet receive`): who, and which deposit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    /// `deposit`.
    pub kind: String,
    /// The professional's name, and `RPPS …` or `ADELI …` when they have one.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The fingerprint of the key that signed the deposit.
    pub fingerprint: String,
    /// The deposit's id.
    pub deposit: String,
}

/// A correction: when, by whom, which fields changed and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Revision {
    pub at: jiff::Timestamp,
    pub actor: crate::domain::Actor,
    /// Field names (`title`, `date`, `content`, …).
    pub changes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn first_version() -> u32 {
    1
}

fn is_first_version(v: &u32) -> bool {
    *v == 1
}

impl Document {
    /// Every stored version, oldest first, the current one last.
    pub fn versions(&self) -> impl Iterator<Item = &Document> {
        self.history.iter().chain(std::iter::once(self))
    }

    /// Version `n`, if the document has it.
    pub fn version(&self, n: u32) -> Option<&Document> {
        self.versions().find(|d| d.version == n)
    }

    /// The versions whose objects are stored, one per object (an `edit` keeps the object):
    /// what verification, indexing, removal and copies walk.
    pub fn stored_objects(&self) -> Vec<&Document> {
        let mut out: Vec<&Document> = Vec::new();
        for v in self.versions() {
            if !out.iter().any(|o| o.object == v.object) {
                out.push(v);
            }
        }
        out
    }

    /// Is this a well-formed history: versions 1.. in order, one id, no nested history?
    pub fn history_is_sound(&self) -> bool {
        let mut expected = 1u32;
        for v in &self.history {
            if v.id != self.id || v.version != expected || !v.history.is_empty() {
                return false;
            }
            expected = expected.saturating_add(1);
        }
        self.version == expected
    }

    /// `next` (this document with corrected fields) as the next version: this one moves into
    /// the history, whole.
    pub fn revise(&self, mut next: Document, revision: Revision) -> Document {
        let mut earlier = self.clone();
        earlier.history.clear();
        earlier.visibility.clear();
        next.history = self.history.clone();
        next.history.push(earlier);
        next.version = self.version.saturating_add(1);
        next.revision = Some(revision);
        next
    }
}

impl Manifest {
    pub fn new(vault_id: String, recipients: Vec<String>, patient: Patient) -> Self {
        Manifest {
            format: crate::FORMAT_VERSION,
            vault_id,
            generation: 0,
            patient,
            recipients,
            documents: Vec::new(),
            professionals: Vec::new(),
            grants: Vec::new(),
        }
    }

    pub fn find_by_sha256(&self, sha256: &str) -> Option<&Document> {
        self.documents.iter().find(|d| d.sha256 == sha256)
    }

    pub fn get(&self, id: &str) -> Option<&Document> {
        self.documents.iter().find(|d| d.id == *id)
    }

    /// Resolves a typed id prefix to a full document id.
    pub fn resolve(&self, prefix: &str) -> Result<String, crate::error::Error> {
        crate::ids::resolve(prefix, self.documents.iter().map(|d| d.id.as_str()))
            .map(str::to_string)
    }

    /// Documents sorted by date, then by when they were added.
    pub fn sorted(&self) -> Vec<&Document> {
        let mut v: Vec<&Document> = self.documents.iter().collect();
        v.sort_by_key(|d| (d.date, d.added_at));
        v
    }
}

impl Manifest {
    /// Finds a professional by handle, RPPS or ADELI number.
    pub fn professional(
        &self,
        who: &str,
    ) -> Result<&crate::pro::Professional, crate::error::Error> {
        self.professionals
            .iter()
            .find(|p| p.is(who))
            .ok_or_else(|| {
                crate::error::Error::input(
                    format!("no professional {who:?} in your directory"),
                    "list them with `carnet pro ls`, or add one with `carnet pro add --card FILE`",
                )
            })
    }
}
