//! Sites and their versions: committing a deploy, rollback, removal.

use std::collections::HashSet;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::records::{self, LiveFile, LiveVersion, NewFile, SiteRecord, VersionRecord};
use super::tables::*;
use super::{unix_now, BlobRecord, FileRecord, Hash, Result, Store, StoreError};

impl Store {
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

    /// One file of one version of `site`, if it has it.
    pub fn version_file(&self, site: &str, version: u64, path: &str) -> Result<Option<FileRecord>> {
        let txn = self.db.begin_read()?;
        let files = txn.open_table(FILES)?;
        files
            .get((site, version, path))?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    /// Writes a new version of `site` from files whose blobs are all stored,
    /// and makes it live, in one transaction. Returns the new version's id.
    ///
    /// Paths must already be validated by the caller. Versions beyond the
    /// newest `retain` are dropped in the same transaction. The version is
    /// numbered after the site's newest (v1 for a new site).
    pub fn commit_version(
        &self,
        site: &str,
        files: &[NewFile],
        spa: bool,
        config: Option<serde_json::Value>,
        retain: usize,
    ) -> Result<VersionRecord> {
        let retain = retain.max(1);
        let now = unix_now();
        let txn = self.db.begin_write()?;
        let version;
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
            let id = meta.get(META_NEXT_VERSION)?.map(|v| v.value()).unwrap_or(1);
            meta.insert(META_NEXT_VERSION, id + 1)?;
            let mut versions = txn.open_table(VERSIONS)?;
            let mut newest = 0;
            for entry in versions.range((site, 0)..=(site, u64::MAX))? {
                let (_, value) = entry?;
                newest = newest.max(records::decode::<VersionRecord>(value.value())?.number());
            }

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
            version = VersionRecord {
                id,
                number: Some(newest + 1),
                created_at: now,
                file_count: files.len() as u64,
                total_bytes: total,
                spa,
                config,
            };
            versions.insert((site, version.id), records::encode(&version)?.as_slice())?;

            let mut sites = txn.open_table(SITES)?;
            let created_at = match sites.get(site)? {
                Some(old) => records::decode::<SiteRecord>(old.value())?.created_at,
                None => now,
            };
            let record = SiteRecord {
                name: site.to_string(),
                live: version.id,
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
        Ok(version)
    }

    /// Number of sites.
    pub fn site_count(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(SITES)?.len()?)
    }
    /// Every version of `site`, oldest first.
    pub fn versions(&self, site: &str) -> Result<Vec<VersionRecord>> {
        let txn = self.db.begin_read()?;
        let versions = txn.open_table(VERSIONS)?;
        let mut out = Vec::new();
        for entry in versions.range((site, 0)..=(site, u64::MAX))? {
            let (_, value) = entry?;
            out.push(records::decode(value.value())?);
        }
        Ok(out)
    }

    /// Makes `version` the live version of `site`. Instant: only the pointer moves.
    pub fn set_live(&self, site: &str, version: u64) -> Result<SiteRecord> {
        let txn = self.db.begin_write()?;
        let record;
        {
            let mut sites = txn.open_table(SITES)?;
            let mut current: SiteRecord = match sites.get(site)? {
                Some(v) => records::decode(v.value())?,
                None => return Err(StoreError::NoSuchSite(site.to_string())),
            };
            if txn.open_table(VERSIONS)?.get((site, version))?.is_none() {
                return Err(StoreError::NoSuchVersion {
                    site: site.to_string(),
                    version,
                });
            }
            current.live = version;
            current.updated_at = unix_now();
            sites.insert(site, records::encode(&current)?.as_slice())?;
            record = current;
        }
        txn.commit()?;
        Ok(record)
    }

    /// Removes a site, all its versions and its custom domains in one
    /// transaction; returns the domains' names. Its blobs become garbage
    /// unless another site shares them.
    pub fn remove_site(&self, site: &str) -> Result<Vec<String>> {
        let txn = self.db.begin_write()?;
        let domains;
        {
            let mut sites = txn.open_table(SITES)?;
            if sites.remove(site)?.is_none() {
                return Err(StoreError::NoSuchSite(site.to_string()));
            }
            txn.open_table(VERSIONS)?
                .retain_in((site, 0)..=(site, u64::MAX), |_, _| false)?;
            txn.open_table(FILES)?
                .retain_in((site, 0, "")..=(site, u64::MAX, ""), |_, _| false)?;
            Store::remove_site_data(&txn, site)?;
            domains = Store::remove_site_domains(&txn, site)?;
        }
        txn.commit()?;
        Ok(domains)
    }

    /// Hashes referenced by any version of any site.
    pub(super) fn referenced_hashes(txn: &redb::WriteTransaction) -> Result<HashSet<Hash>> {
        let files = txn.open_table(FILES)?;
        let mut referenced = HashSet::new();
        for entry in files.iter()? {
            let (_, value) = entry?;
            let file: FileRecord = records::decode(value.value())?;
            referenced.insert(file.hash);
        }
        Ok(referenced)
    }
}
