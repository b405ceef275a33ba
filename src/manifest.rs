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
    pub id: String,
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
    pub added_at: jiff::Timestamp,
    /// The file name it was added from, for the extension on export.
    #[serde(default)]
    pub original_name: Option<String>,
    pub object: String,
    pub object_size: u64,
    /// SHA-256 of the ciphertext file, hex: lets `verify` check objects without decrypting.
    pub object_sha256: String,
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
        }
    }

    pub fn find_by_sha256(&self, sha256: &str) -> Option<&Document> {
        self.documents.iter().find(|d| d.sha256 == sha256)
    }

    pub fn get(&self, id: &str) -> Option<&Document> {
        self.documents.iter().find(|d| d.id == id)
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
