//! The store: every site, version, file and blob of an instance, in one redb file.
//!
//! Architecture invariant: this module is the only one that opens redb tables.
//! Everything else speaks in the records of [`records`] and in [`Hash`]es.
//!
//! Blobs are content-addressed by BLAKE3 and kept in 1 MiB chunks, so a large
//! file can be streamed in and out without holding it in memory. Compressed
//! variants (gzip, brotli) are computed once, when a blob is first stored.
//! A version is written and made live in a single write transaction, so a
//! crash at any point leaves the previous version serving.

mod blobs;
mod certificates;
mod data;
mod domains;
mod error;
mod function_logs;
mod gc;
mod records;
mod sites;
mod tables;

pub use blobs::FinishedBlob;
pub use certificates::CertificateRecord;
pub use gc::Collected;

pub use error::StoreError;
pub use records::{
    BlobRecord, DomainRecord, Encoding, FileRecord, LiveFile, LiveVersion, LogLine, NewFile,
    SiteRecord, VersionRecord,
};

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable};

use tables::*;

/// A BLAKE3 digest: the identity of a blob.
pub type Hash = [u8; 32];

/// The schema this build writes. Opening an older database migrates it;
/// a newer one is refused rather than misread.
pub const SCHEMA_VERSION: u64 = 1;

/// Blobs are split into chunks of this size.
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// Versions kept per site unless the `retain_versions` setting says otherwise.
pub const DEFAULT_RETAIN_VERSIONS: usize = 10;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An open Fazt database.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens the database at `path`, creating it (and its directory) if needed.
    ///
    /// Fails with a clear error when another process holds it open, or when
    /// the file is not a (readable) Fazt database.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Database::builder()
            .set_cache_size(64 * 1024 * 1024)
            .create(path)
            .map_err(|e| StoreError::from_open(path, e))?;
        let store = Store {
            db,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the database file in bytes.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Creates missing tables and records the schema version.
    fn migrate(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get(META_SCHEMA_VERSION)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::SchemaTooNew {
                        found: v,
                        supported: SCHEMA_VERSION,
                    })
                }
                Some(_) => {} // Future migrations from older schemas go here.
                None => {
                    meta.insert(META_SCHEMA_VERSION, SCHEMA_VERSION)?;
                }
            }
            txn.open_table(SETTINGS)?;
            txn.open_table(SITES)?;
            txn.open_table(VERSIONS)?;
            txn.open_table(FILES)?;
            txn.open_table(BLOBS)?;
            txn.open_table(BLOB_CHUNKS)?;
            txn.open_table(BLOB_VARIANTS)?;
            txn.open_table(KV)?;
            txn.open_table(DOCS)?;
            txn.open_table(ENV)?;
            txn.open_table(FUNCTION_LOGS)?;
            txn.open_table(DOMAINS)?;
            txn.open_table(ACME_ACCOUNTS)?;
            txn.open_table(CERTIFICATES)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta
            .get(META_SCHEMA_VERSION)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    // ----- settings -------------------------------------------------------

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SETTINGS)?;
        Ok(table.get(key)?.map(|v| v.value().to_string()))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(SETTINGS)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
