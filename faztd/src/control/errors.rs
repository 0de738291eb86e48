//! Turning internal errors into what the client is told, and running
//! blocking store work for a handler.

use std::sync::Arc;

use fazt_proto::RpcError;

use crate::instance::Instance;
use crate::sites::{SiteError, SiteName};
use crate::store::StoreError;

impl From<StoreError> for RpcError {
    fn from(err: StoreError) -> RpcError {
        match err {
            StoreError::NoSuchSite(_) | StoreError::NoSuchVersion { .. } => {
                RpcError::NotFound(err.to_string())
            }
            StoreError::MissingBlob { .. } => RpcError::Invalid(err.to_string()),
            other => {
                tracing::error!(error = %other, "store error");
                RpcError::Failed(other.to_string())
            }
        }
    }
}

impl From<SiteError> for RpcError {
    fn from(err: SiteError) -> RpcError {
        match err {
            SiteError::NotFound(why) => RpcError::NotFound(why),
            SiteError::Invalid(why) => RpcError::Invalid(why),
            SiteError::TooLarge(why) => RpcError::TooLarge(why),
            SiteError::Name(err) => RpcError::Invalid(err.to_string()),
            SiteError::Domain(err) => RpcError::Invalid(err.to_string()),
            SiteError::Store(err) => err.into(),
            SiteError::Internal(why) => {
                tracing::error!(error = %why, "internal error");
                RpcError::Failed(why)
            }
        }
    }
}

/// A site name from the wire, checked once here.
pub fn site_name(name: &str) -> Result<SiteName, RpcError> {
    SiteName::parse(name).map_err(|e| RpcError::Invalid(e.to_string()))
}

/// Runs blocking store work off the async reactor.
pub async fn blocking<T, F>(instance: &Arc<Instance>, work: F) -> Result<T, RpcError>
where
    T: Send + 'static,
    F: FnOnce(&Instance) -> Result<T, RpcError> + Send + 'static,
{
    let this = instance.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| work(&this)))
        .await
        .map_err(|e| RpcError::Failed(format!("internal task failed: {e}")))?
}
