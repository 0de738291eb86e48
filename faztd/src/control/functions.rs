//! `logs` and `env`: what functions said, and what they are given.

use std::sync::Arc;
use std::time::Duration;

use fazt_proto::{EnvVar, LogLine, RpcError};

use super::errors::{blocking, site_name};
use crate::instance::Instance;

/// Longest a `logs -f` poll waits on the daemon side.
const MAX_WAIT: Duration = Duration::from_secs(30);
const MAX_LINES: usize = 1000;

pub async fn logs(
    instance: &Arc<Instance>,
    site: String,
    after: Option<u64>,
    limit: u32,
    wait_ms: u32,
) -> Result<Vec<LogLine>, RpcError> {
    let site = site_name(&site)?;
    let wait = Duration::from_millis(wait_ms.into()).min(MAX_WAIT);
    let limit = (limit as usize).clamp(1, MAX_LINES);
    let lines = instance
        .functions
        .logs
        .read_or_wait(&site, after, limit, wait)
        .await;
    Ok(lines
        .into_iter()
        .map(|l| LogLine {
            seq: l.seq,
            ts_ms: l.ts_ms,
            level: l.level,
            message: l.message,
        })
        .collect())
}

pub async fn env_list(instance: &Arc<Instance>, site: String) -> Result<Vec<EnvVar>, RpcError> {
    let site = site_name(&site)?;
    blocking(instance, move |i| {
        Ok(i.store
            .env_all(&site)?
            .into_iter()
            .map(|(name, value)| EnvVar { name, value })
            .collect())
    })
    .await
}

/// Names as in a shell (the rule both sides share, in fazt_proto).
fn check_name(name: &str) -> Result<(), RpcError> {
    if fazt_proto::is_valid_env_name(name) {
        Ok(())
    } else {
        Err(RpcError::Invalid(format!(
            "{name:?} is not a valid variable name: use letters, digits and _, starting with a letter"
        )))
    }
}

pub async fn env_set(
    instance: &Arc<Instance>,
    site: String,
    name: String,
    value: String,
) -> Result<(), RpcError> {
    let site = site_name(&site)?;
    check_name(&name)?;
    if value.len() > 64 * 1024 {
        return Err(RpcError::TooLarge(
            "an environment value may be at most 64 KiB".to_string(),
        ));
    }
    blocking(instance, move |i| {
        i.store.env_set(&site, &name, &value)?;
        // The value may be a secret: only the name is logged.
        tracing::info!(site = %site, name = %name, "environment variable set");
        Ok(())
    })
    .await
}

pub async fn env_unset(
    instance: &Arc<Instance>,
    site: String,
    name: String,
) -> Result<bool, RpcError> {
    let site = site_name(&site)?;
    check_name(&name)?;
    blocking(instance, move |i| {
        let existed = i.store.env_unset(&site, &name)?;
        tracing::info!(site = %site, name = %name, existed, "environment variable unset");
        Ok(existed)
    })
    .await
}
