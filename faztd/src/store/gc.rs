//! Garbage collection: blobs that no version references, and chunks of
//! uploads that never finished (a killed client or daemon).

use std::collections::HashSet;

use redb::ReadableTable;

use super::tables::*;
use super::{Hash, Result, Store};

/// What a collection removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub blobs: u64,
    pub orphan_chunks: u64,
}

impl Store {
    /// Removes every blob no version references and every chunk without a
    /// blob record, except those in `pinned` (blobs an open deploy needs).
    pub fn collect_garbage(&self, pinned: &HashSet<Hash>) -> Result<Collected> {
        let txn = self.db.begin_write()?;
        let mut collected = Collected::default();
        {
            let referenced = Store::referenced_hashes(&txn)?;
            let mut blobs = txn.open_table(BLOBS)?;
            let mut recorded = HashSet::new();
            let mut dead = Vec::new();
            for entry in blobs.iter()? {
                let (key, _) = entry?;
                let hash = *key.value();
                if referenced.contains(&hash) || pinned.contains(&hash) {
                    recorded.insert(hash);
                } else {
                    dead.push(hash);
                }
            }
            let mut chunks = txn.open_table(BLOB_CHUNKS)?;
            let mut variants = txn.open_table(BLOB_VARIANTS)?;
            for hash in &dead {
                blobs.remove(hash)?;
                chunks.retain_in((hash, 0u32)..=(hash, u32::MAX), |_, _| false)?;
                variants.retain_in((hash, 0u8)..=(hash, u8::MAX), |_, _| false)?;
                collected.blobs += 1;
            }
            // Chunks of uploads that never finished.
            let mut orphans = Vec::new();
            for entry in chunks.iter()? {
                let (key, _) = entry?;
                let (hash, index) = key.value();
                if !recorded.contains(hash) && !pinned.contains(hash) {
                    orphans.push((*hash, index));
                }
            }
            for (hash, index) in &orphans {
                chunks.remove((hash, *index))?;
            }
            collected.orphan_chunks = orphans.len() as u64;
        }
        txn.commit()?;
        Ok(collected)
    }
}
