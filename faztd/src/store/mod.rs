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

mod error;
mod records;
mod tables;

pub use error::StoreError;
pub use records::{
    BlobRecord, Encoding, FileRecord, LiveFile, LiveVersion, NewFile, SiteRecord, VersionRecord,
};

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::content;
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

    // ----- sites and versions --------------------------------------------

    /// Every site, sorted by name.
    pub fn sites(&self) -> Result<Vec<SiteRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SITES)?;
        let mut sites = Vec::new();
        for entry in table.iter()? {
            let (_, value) = entry?;
            sites.push(records::decode(value.value())?);
        }
        Ok(sites)
    }

    pub fn site(&self, name: &str) -> Result<Option<SiteRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SITES)?;
        table
            .get(name)?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    /// The live version of `name` and its files, read in one consistent snapshot.
    pub fn live_version(&self, name: &str) -> Result<Option<LiveVersion>> {
        let txn = self.db.begin_read()?;
        let sites = txn.open_table(SITES)?;
        let Some(site) = sites.get(name)? else {
            return Ok(None);
        };
        let site: SiteRecord = records::decode(site.value())?;
        let versions = txn.open_table(VERSIONS)?;
        let Some(version) = versions.get((name, site.live))? else {
            return Err(StoreError::Inconsistent(format!(
                "site {name} points at missing version {}",
                site.live
            )));
        };
        let version: VersionRecord = records::decode(version.value())?;
        let files = txn.open_table(FILES)?;
        let blobs = txn.open_table(BLOBS)?;
        let mut out = Vec::with_capacity(version.file_count as usize);
        for entry in files.range((name, site.live, "")..(name, site.live + 1, ""))? {
            let (key, value) = entry?;
            let file: FileRecord = records::decode(value.value())?;
            let blob = blobs.get(&file.hash)?.ok_or_else(|| {
                StoreError::Inconsistent(format!(
                    "file {} of {name} references missing blob {}",
                    key.value().2,
                    hex::encode(file.hash)
                ))
            })?;
            let blob: BlobRecord = records::decode(blob.value())?;
            out.push(LiveFile {
                path: key.value().2.to_string(),
                file,
                blob,
            });
        }
        Ok(Some(LiveVersion {
            site,
            version,
            files: out,
        }))
    }

    /// Stores `data` as a blob (with its compressed variants) unless present.
    /// Returns its hash. Meant for small, in-memory content such as seeds.
    pub fn put_blob(&self, data: &[u8], content_type: &str) -> Result<Hash> {
        let hash = *blake3::hash(data).as_bytes();
        let txn = self.db.begin_write()?;
        {
            let mut blobs = txn.open_table(BLOBS)?;
            if blobs.get(&hash)?.is_none() {
                let mut chunks = txn.open_table(BLOB_CHUNKS)?;
                let mut variants_table = txn.open_table(BLOB_VARIANTS)?;
                let mut record = BlobRecord {
                    size: data.len() as u64,
                    chunks: 0,
                    variants: Vec::new(),
                };
                for (i, chunk) in data.chunks(CHUNK_SIZE).enumerate() {
                    chunks.insert((&hash, i as u32), chunk)?;
                    record.chunks += 1;
                }
                for (encoding, bytes) in content::compressed_variants(data, content_type) {
                    variants_table.insert((&hash, encoding as u8), bytes.as_slice())?;
                    record.variants.push((encoding, bytes.len() as u64));
                }
                blobs.insert(&hash, records::encode(&record)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(hash)
    }

    /// Whether a blob is stored.
    pub fn has_blob(&self, hash: &Hash) -> Result<bool> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(BLOBS)?.get(hash)?.is_some())
    }

    /// Reads a whole blob. For large blobs prefer [`Store::read_blob_range`].
    pub fn read_blob(&self, hash: &Hash) -> Result<Option<Bytes>> {
        let txn = self.db.begin_read()?;
        let blobs = txn.open_table(BLOBS)?;
        let Some(record) = blobs.get(hash)? else {
            return Ok(None);
        };
        let record: BlobRecord = records::decode(record.value())?;
        let chunks = txn.open_table(BLOB_CHUNKS)?;
        let mut out = BytesMut::with_capacity(record.size as usize);
        for entry in chunks.range((hash, 0u32)..=(hash, u32::MAX))? {
            let (_, value) = entry?;
            out.extend_from_slice(value.value());
        }
        Ok(Some(out.freeze()))
    }

    /// Reads bytes `start..end` of a blob, touching only the chunks it needs.
    pub fn read_blob_range(&self, hash: &Hash, start: u64, end: u64) -> Result<Bytes> {
        let txn = self.db.begin_read()?;
        let chunks = txn.open_table(BLOB_CHUNKS)?;
        let chunk = CHUNK_SIZE as u64;
        let first = (start / chunk) as u32;
        let last = (end.saturating_sub(1) / chunk) as u32;
        let mut out = BytesMut::with_capacity((end - start) as usize);
        for entry in chunks.range((hash, first)..=(hash, last))? {
            let (key, value) = entry?;
            let chunk_start = key.value().1 as u64 * chunk;
            let data = value.value();
            let from = start.saturating_sub(chunk_start) as usize;
            let to = ((end - chunk_start) as usize).min(data.len());
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(out.freeze())
    }

    /// Reads a precomputed compressed variant of a blob.
    pub fn read_variant(&self, hash: &Hash, encoding: Encoding) -> Result<Option<Bytes>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOB_VARIANTS)?;
        Ok(table
            .get((hash, encoding as u8))?
            .map(|v| Bytes::copy_from_slice(v.value())))
    }

    /// Writes a new version of `site` from files whose blobs are all stored,
    /// and makes it live, in one transaction. Returns the new version's id.
    ///
    /// Paths must already be validated by the caller. Versions beyond the
    /// retention setting are dropped in the same transaction.
    pub fn commit_version(&self, site: &str, files: &[NewFile], spa: bool) -> Result<u64> {
        let retain = self
            .setting("retain_versions")?
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_RETAIN_VERSIONS);
        let now = unix_now();
        let txn = self.db.begin_write()?;
        let id;
        {
            let blobs = txn.open_table(BLOBS)?;
            let mut total = 0;
            for file in files {
                let blob = blobs
                    .get(&file.hash)?
                    .ok_or_else(|| StoreError::MissingBlob {
                        path: file.path.clone(),
                        hash: hex::encode(file.hash),
                    })?;
                let blob: BlobRecord = records::decode(blob.value())?;
                total += blob.size;
            }
            drop(blobs);

            let mut meta = txn.open_table(META)?;
            id = meta.get(META_NEXT_VERSION)?.map(|v| v.value()).unwrap_or(1);
            meta.insert(META_NEXT_VERSION, id + 1)?;

            let mut files_table = txn.open_table(FILES)?;
            for file in files {
                let record = FileRecord {
                    hash: file.hash,
                    content_type: file.content_type.clone(),
                };
                files_table.insert(
                    (site, id, file.path.as_str()),
                    records::encode(&record)?.as_slice(),
                )?;
            }
            let version = VersionRecord {
                id,
                created_at: now,
                file_count: files.len() as u64,
                total_bytes: total,
                spa,
            };
            let mut versions = txn.open_table(VERSIONS)?;
            versions.insert((site, id), records::encode(&version)?.as_slice())?;

            let mut sites = txn.open_table(SITES)?;
            let created_at = match sites.get(site)? {
                Some(old) => records::decode::<SiteRecord>(old.value())?.created_at,
                None => now,
            };
            let record = SiteRecord {
                name: site.to_string(),
                live: id,
                created_at,
                updated_at: now,
            };
            sites.insert(site, records::encode(&record)?.as_slice())?;

            // Retention: drop the oldest versions beyond `retain`.
            let ids: Vec<u64> = versions
                .range((site, 0)..=(site, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            if ids.len() > retain {
                for old in &ids[..ids.len() - retain] {
                    versions.remove((site, *old))?;
                    files_table.retain_in((site, *old, "")..(site, *old + 1, ""), |_, _| false)?;
                }
            }
        }
        txn.commit()?;
        Ok(id)
    }

    /// Number of sites.
    pub fn site_count(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(SITES)?.len()?)
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
