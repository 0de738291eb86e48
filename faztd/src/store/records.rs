//! The records stored in the tables, and how they are encoded.

use serde::{Deserialize, Serialize};

pub use crate::content::Encoding;

use super::{Hash, StoreError};

/// A site and the version it serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SiteRecord {
    pub name: String,
    /// The live version id.
    pub live: u64,
    pub created_at: u64,
    pub updated_at: u64,
}

/// Which site a custom domain serves (keyed by the domain).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DomainRecord {
    pub site: String,
    /// When the domain was added, in seconds since the epoch.
    pub added_at: u64,
}

/// One deployed version of a site.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionRecord {
    /// The version's identity in the store, unique across sites and time
    /// (never reused, even after a site is removed).
    pub id: u64,
    /// What users call it: v1 is the site's first deploy. Versions stored
    /// before numbers existed have none and go by their id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    pub created_at: u64,
    pub file_count: u64,
    pub total_bytes: u64,
    /// Serve `index.html` for unknown paths (single-page apps). Also inside
    /// `config`; kept on its own for versions stored before `config` was, and
    /// for older faztd builds reading this database.
    #[serde(default)]
    pub spa: bool,
    /// The site configuration (`fazt.json`) as checked by the deploy, opaque
    /// to the store (`sites::SiteConfig` reads it). `None` for versions
    /// deployed before it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// One line of a site's function log (`console.*`, errors). Its JSON shape
/// is the stored format: fields may be added with `#[serde(default)]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Increases per site, across restarts.
    pub seq: u64,
    pub ts_ms: u64,
    pub level: String,
    pub message: String,
}

impl VersionRecord {
    /// The number users see (`v5`).
    pub fn number(&self) -> u64 {
        self.number.unwrap_or(self.id)
    }
}

/// A file of a version: a path bound to a blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRecord {
    #[serde(with = "hex_hash")]
    pub hash: Hash,
    pub content_type: String,
}

/// What is known of a stored blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlobRecord {
    pub size: u64,
    pub chunks: u32,
    /// The precomputed compressed variants and their sizes.
    #[serde(default)]
    pub variants: Vec<(Encoding, u64)>,
}

/// A site's live version with every file and its blob, as the server needs it.
#[derive(Debug, Clone)]
pub struct LiveVersion {
    pub site: SiteRecord,
    pub version: VersionRecord,
    pub files: Vec<LiveFile>,
}

#[derive(Debug, Clone)]
pub struct LiveFile {
    pub path: String,
    pub file: FileRecord,
    pub blob: BlobRecord,
}

/// A file to be committed in a new version.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub path: String,
    pub hash: Hash,
    pub content_type: String,
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(StoreError::Encode)
}

pub(super) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(StoreError::Decode)
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
