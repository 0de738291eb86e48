//! HTTPS state kept in the database, so that one file backs up everything:
//! the ACME account of each directory, and one certificate per name served.
//!
//! Both hold private keys. They are stored as they are (the database file
//! is the instance's secret as a whole, mode 0600 in a private directory)
//! and never logged: [`CertificateRecord`]'s `Debug` leaves the key out.

use std::fmt;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::records::{decode, encode};
use super::tables::{ACME_ACCOUNTS, CERTIFICATES};
use super::{Result, Store};

/// One name's certificate, and how getting or renewing it went.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertificateRecord {
    /// The DNS name it is for (`blog.example.com`).
    pub name: String,
    /// The certificate chain, leaf first, PEM. Empty until one is issued.
    #[serde(default)]
    pub chain_pem: String,
    /// The leaf's private key, PEM. Secret: never logged.
    #[serde(default)]
    pub key_pem: String,
    /// Validity of the leaf, Unix seconds (0 until one is issued).
    #[serde(default)]
    pub not_before: u64,
    #[serde(default)]
    pub not_after: u64,
    /// When to renew (two thirds into the validity), Unix seconds.
    #[serde(default)]
    pub renew_at: u64,
    /// The last failure to obtain or renew it, cleared by a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When that failure happened, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<u64>,
}

impl CertificateRecord {
    /// Whether a certificate was ever issued for this name.
    pub fn issued(&self) -> bool {
        !self.chain_pem.is_empty() && !self.key_pem.is_empty()
    }
}

/// Everything but the private key.
impl fmt::Debug for CertificateRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateRecord")
            .field("name", &self.name)
            .field("chain_pem_bytes", &self.chain_pem.len())
            .field("key_pem", &"<secret>")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("renew_at", &self.renew_at)
            .field("last_error", &self.last_error)
            .finish()
    }
}

impl Store {
    /// Every stored certificate record, by name.
    pub fn certificates(&self) -> Result<Vec<CertificateRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CERTIFICATES)?;
        let mut records = Vec::new();
        for entry in table.iter()? {
            let (_, value) = entry?;
            records.push(decode(value.value())?);
        }
        Ok(records)
    }

    /// Stores (replaces) the record of `record.name`.
    pub fn put_certificate(&self, record: &CertificateRecord) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(CERTIFICATES)?
            .insert(record.name.as_str(), encode(record)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The stored ACME account credentials for `directory` (opaque bytes,
    /// secret).
    pub fn acme_account(&self, directory: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ACME_ACCOUNTS)?;
        Ok(table.get(directory)?.map(|v| v.value().to_vec()))
    }

    pub fn set_acme_account(&self, directory: &str, credentials: &[u8]) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(ACME_ACCOUNTS)?
            .insert(directory, credentials)?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_and_accounts_round_trip_and_keys_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("d.redb")).unwrap();
        assert!(store.certificates().unwrap().is_empty());
        let record = CertificateRecord {
            name: "blog.example.com".into(),
            chain_pem: "CHAIN".into(),
            key_pem: "SECRET-KEY".into(),
            not_before: 1,
            not_after: 91,
            renew_at: 61,
            ..CertificateRecord::default()
        };
        store.put_certificate(&record).unwrap();
        assert_eq!(store.certificates().unwrap(), vec![record.clone()]);
        assert!(!format!("{record:?}").contains("SECRET-KEY"));
        assert_eq!(store.acme_account("https://ca/dir").unwrap(), None);
        store.set_acme_account("https://ca/dir", b"{}").unwrap();
        assert_eq!(
            store.acme_account("https://ca/dir").unwrap().as_deref(),
            Some(&b"{}"[..])
        );
    }
}
