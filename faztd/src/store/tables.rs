//! The redb tables. Values are JSON records (see `records`) so that adding a
//! field is a `#[serde(default)]`, not a migration; blob bytes are raw.

use redb::TableDefinition;

use super::Hash;

/// Schema version and counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub const META_SCHEMA_VERSION: &str = "schema_version";
pub const META_NEXT_VERSION: &str = "next_version_id";

/// Instance settings: domain, listen address, retention, limits.
pub const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");

/// Site name → `SiteRecord`.
pub const SITES: TableDefinition<&str, &[u8]> = TableDefinition::new("sites");

/// (site, version id) → `VersionRecord`.
pub const VERSIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("versions");

/// (site, version id, path) → `FileRecord`.
pub const FILES: TableDefinition<(&str, u64, &str), &[u8]> = TableDefinition::new("files");

/// Blob hash → `BlobRecord`.
pub const BLOBS: TableDefinition<&Hash, &[u8]> = TableDefinition::new("blobs");

/// (blob hash, chunk index) → chunk bytes.
pub const BLOB_CHUNKS: TableDefinition<(&Hash, u32), &[u8]> = TableDefinition::new("blob_chunks");

/// (blob hash, encoding) → compressed bytes of the whole blob.
pub const BLOB_VARIANTS: TableDefinition<(&Hash, u8), &[u8]> =
    TableDefinition::new("blob_variants");

/// (site, key) → KV entry (JSON value and expiry).
pub const KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");

/// (site, collection, id) → JSON document.
pub const DOCS: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("docs");

/// (site, name) → environment value.
pub const ENV: TableDefinition<(&str, &str), &str> = TableDefinition::new("env");

/// Custom domain (normalised: lower case, no trailing dot) → `DomainRecord`.
pub const DOMAINS: TableDefinition<&str, &[u8]> = TableDefinition::new("domains");

/// (site, sequence number) → `records::LogLine`: the newest function log lines
/// of each site (`faztctl logs`), so they outlive a restart.
pub const FUNCTION_LOGS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("function_logs");

/// ACME directory URL → the account's credentials (JSON from instant-acme,
/// holding the account's private key: secret, never logged).
pub const ACME_ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("acme_accounts");

/// Name (`blog.example.com`) → `CertificateRecord`: its certificate chain and
/// private key (secret), validity, next renewal and last error.
pub const CERTIFICATES: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");
