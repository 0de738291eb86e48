//! Content-addressed blobs: storing, reading, and staged uploads.
//!
//! An upload writes a blob's chunks under its final hash as they arrive, with
//! no `blobs` record yet, so readers cannot see it. When the last byte is in,
//! [`Store::finish_blob`] re-hashes the chunks and only then records the blob.
//! Chunks without a record are garbage once no deploy is working on them.

use bytes::{Bytes, BytesMut};
use redb::{Durability, ReadableDatabase, ReadableTable};

use super::records::{self, BlobRecord, Encoding};
use super::tables::*;
use super::{Hash, Result, Store, StoreError, CHUNK_SIZE};
use crate::content;

/// How a finished upload turned out.
#[derive(Debug, PartialEq, Eq)]
pub enum FinishedBlob {
    Stored,
    /// The bytes hash to something else; the chunks were discarded.
    HashMismatch,
}

impl Store {
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

    /// Which of `hashes` are not stored as complete blobs.
    pub fn missing_blobs(&self, hashes: &[Hash]) -> Result<Vec<Hash>> {
        let txn = self.db.begin_read()?;
        let blobs = txn.open_table(BLOBS)?;
        let mut missing = Vec::new();
        for hash in hashes {
            if blobs.get(hash)?.is_none() {
                missing.push(*hash);
            }
        }
        Ok(missing)
    }

    /// Writes uploaded chunks, `(hash, chunk index, bytes)`, in one
    /// transaction. Not durable on its own: the deploy's commit makes it so,
    /// and a crash before that only leaves garbage for the collector.
    pub fn write_chunks(&self, chunks: &[(Hash, u32, &[u8])]) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)
            .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
        {
            let mut table = txn.open_table(BLOB_CHUNKS)?;
            for (hash, index, data) in chunks {
                table.insert((hash, *index), *data)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Verifies an uploaded blob against its hash and records it, with its
    /// compressed variants. Idempotent for blobs already recorded.
    pub fn finish_blob(&self, hash: &Hash, size: u64, content_type: &str) -> Result<FinishedBlob> {
        if self.has_blob(hash)? {
            return Ok(FinishedBlob::Stored);
        }
        let chunk_count = size.div_ceil(CHUNK_SIZE as u64) as u32;
        // Re-hash from the stored chunks: what we record is what we serve.
        let mut hasher = blake3::Hasher::new();
        let mut whole =
            (size <= content::MAX_COMPRESS as u64).then(|| Vec::with_capacity(size as usize));
        let mut seen = 0u64;
        {
            let txn = self.db.begin_read()?;
            let chunks = txn.open_table(BLOB_CHUNKS)?;
            for entry in chunks.range((hash, 0u32)..(hash, chunk_count.max(1)))? {
                let (_, value) = entry?;
                let data = value.value();
                hasher.update(data);
                seen += data.len() as u64;
                if let Some(whole) = whole.as_mut() {
                    whole.extend_from_slice(data);
                }
            }
        }
        if seen != size || hasher.finalize().as_bytes() != hash {
            self.discard_chunks(hash)?;
            return Ok(FinishedBlob::HashMismatch);
        }
        let variants = whole
            .map(|data| content::compressed_variants(&data, content_type))
            .unwrap_or_default();
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)
            .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
        {
            let mut variants_table = txn.open_table(BLOB_VARIANTS)?;
            let mut record = BlobRecord {
                size,
                chunks: chunk_count,
                variants: Vec::new(),
            };
            for (encoding, bytes) in variants {
                variants_table.insert((hash, encoding as u8), bytes.as_slice())?;
                record.variants.push((encoding, bytes.len() as u64));
            }
            txn.open_table(BLOBS)?
                .insert(hash, records::encode(&record)?.as_slice())?;
        }
        txn.commit()?;
        Ok(FinishedBlob::Stored)
    }

    /// Drops the chunks of an unrecorded blob (a failed upload).
    pub fn discard_chunks(&self, hash: &Hash) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(BLOB_CHUNKS)?
            .retain_in((hash, 0u32)..=(hash, u32::MAX), |_, _| false)?;
        txn.commit()?;
        Ok(())
    }
}
