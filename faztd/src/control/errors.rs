//! Turning internal errors into what the client is told.

use fazt_proto::RpcError;

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
