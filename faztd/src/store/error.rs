//! Store errors, worded for the person who has to act on them.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database {0} is already open in another process (is another faztd running on this data directory?)"
    )]
    Locked(PathBuf),
    #[error(
        "the database {path} is corrupt or is not a Fazt database ({detail}); restore it from a backup or move it aside to start fresh"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot open the database {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error(
        "the database has schema version {found}, but this faztd supports up to {supported}: upgrade faztd"
    )]
    SchemaTooNew { found: u64, supported: u64 },
    #[error("file {path} references blob {hash}, which was never uploaded")]
    MissingBlob { path: String, hash: String },
    #[error("there is no site named {0}")]
    NoSuchSite(String),
    #[error("site {site} has no version {version}")]
    NoSuchVersion { site: String, version: u64 },
    #[error("the database is inconsistent: {0}")]
    Inconsistent(String),
    #[error("cannot encode a record: {0}")]
    Encode(serde_json::Error),
    #[error("cannot decode a stored record: {0}")]
    Decode(serde_json::Error),
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
}

impl StoreError {
    pub(super) fn from_open(path: &Path, err: redb::DatabaseError) -> StoreError {
        use redb::{DatabaseError, StorageError};
        let path = path.to_path_buf();
        match err {
            DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path),
            DatabaseError::Storage(StorageError::Corrupted(detail)) => {
                StoreError::Corrupt { path, detail }
            }
            DatabaseError::Storage(StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::InvalidData =>
            {
                StoreError::Corrupt {
                    path,
                    detail: io.to_string(),
                }
            }
            other => StoreError::Open {
                path,
                detail: other.to_string(),
            },
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
