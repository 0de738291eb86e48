//! What can go wrong when a site changes, worded for the person who asked.

use crate::store::StoreError;

use super::{CustomDomainError, SiteNameError};

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// No such site, version or deploy.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (bad path, bad config, wrong order).
    #[error("{0}")]
    Invalid(String),
    /// Over a limit the operator can raise.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Name(#[from] SiteNameError),
    #[error(transparent)]
    Domain(#[from] CustomDomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something inside faztd broke (a task panicked, a worker is gone).
    #[error("{0}")]
    Internal(String),
}

impl From<tokio::task::JoinError> for SiteError {
    fn from(err: tokio::task::JoinError) -> SiteError {
        SiteError::Internal(format!("internal task failed: {err}"))
    }
}
