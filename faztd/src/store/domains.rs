//! Custom domains: which site serves a name of the user's own.
//!
//! The store keeps the mapping and nothing of its rules: names arrive
//! already checked and normalised (`sites::CustomDomain`), and the sites
//! service decides, under its lock, whether a name may move.

use redb::{ReadableDatabase, ReadableTable};

use super::records::{self, DomainRecord};
use super::tables::*;
use super::{unix_now, Result, Store, StoreError};

impl Store {
    /// Every custom domain with its record, sorted by name.
    pub fn domains(&self) -> Result<Vec<(String, DomainRecord)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DOMAINS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (name, value) = entry?;
            out.push((name.value().to_string(), records::decode(value.value())?));
        }
        Ok(out)
    }

    /// The record of one custom domain, if it is one.
    pub fn domain(&self, name: &str) -> Result<Option<DomainRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DOMAINS)?;
        table
            .get(name)?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    /// Makes `name` serve `site`, which must exist (checked in the same
    /// transaction, so a removed site never gains a name).
    pub fn add_domain(&self, name: &str, site: &str) -> Result<DomainRecord> {
        let txn = self.db.begin_write()?;
        let record = DomainRecord {
            site: site.to_string(),
            added_at: unix_now(),
        };
        {
            if txn.open_table(SITES)?.get(site)?.is_none() {
                return Err(StoreError::NoSuchSite(site.to_string()));
            }
            txn.open_table(DOMAINS)?
                .insert(name, records::encode(&record)?.as_slice())?;
        }
        txn.commit()?;
        Ok(record)
    }

    /// Forgets a custom domain; returns its record if it was one.
    pub fn remove_domain(&self, name: &str) -> Result<Option<DomainRecord>> {
        let txn = self.db.begin_write()?;
        let removed = txn
            .open_table(DOMAINS)?
            .remove(name)?
            .map(|v| records::decode(v.value()))
            .transpose()?;
        txn.commit()?;
        Ok(removed)
    }

    /// Removes `site`'s custom domains within a site's removal; returns
    /// their names.
    pub(super) fn remove_site_domains(
        txn: &redb::WriteTransaction,
        site: &str,
    ) -> Result<Vec<String>> {
        let mut table = txn.open_table(DOMAINS)?;
        let mut names = Vec::new();
        for entry in table.iter()? {
            let (name, value) = entry?;
            if records::decode::<DomainRecord>(value.value())?.site == site {
                names.push(name.value().to_string());
            }
        }
        for name in &names {
            table.remove(name.as_str())?;
        }
        Ok(names)
    }
}
