//! `status` and `config`: what the instance is and how it is set.

use std::sync::Arc;

use fazt_proto::{ConfigEntry, DaemonStatus, RpcError};

use super::errors::blocking;
use crate::instance::Instance;
use crate::settings::{self, SETTINGS};

pub async fn status(instance: &Arc<Instance>) -> Result<DaemonStatus, RpcError> {
    let i = instance;
    let realtime = i.realtime.stats();
    Ok(DaemonStatus {
        version: fazt_proto::FAZT_VERSION.to_string(),
        commit: fazt_proto::FAZT_COMMIT.to_string(),
        protocol: fazt_proto::PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_secs: i.started.elapsed().as_secs(),
        data_path: i.store.path().display().to_string(),
        data_bytes: i.store.file_size(),
        socket_path: i.socket_path.display().to_string(),
        domain: i.domain.domain.clone(),
        domain_source: i.domain.source.as_str().to_string(),
        domain_warning: i.domain.warning.clone(),
        listen: i.listen.to_string(),
        sites: i.catalog.site_names().len() as u64,
        health: "ok".to_string(),
        realtime_connections: realtime.connections,
        realtime_channels: realtime.channels,
    })
}

pub async fn config_get(instance: &Arc<Instance>) -> Result<Vec<ConfigEntry>, RpcError> {
    blocking(instance, |i| {
        SETTINGS
            .iter()
            .map(|spec| {
                let stored = i.store.setting(spec.key)?;
                Ok(ConfigEntry {
                    key: spec.key.to_string(),
                    default: stored.is_none(),
                    value: stored.unwrap_or_else(|| spec.default.to_string()),
                    help: spec.help.to_string(),
                })
            })
            .collect()
    })
    .await
}

pub async fn config_set(
    instance: &Arc<Instance>,
    key: String,
    value: String,
) -> Result<ConfigEntry, RpcError> {
    let Some(spec) = settings::spec_for(&key) else {
        let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        return Err(RpcError::Invalid(format!(
            "there is no setting {key:?}; the settings are: {}",
            known.join(", ")
        )));
    };
    spec.validate(&value)
        .map_err(|why| RpcError::Invalid(format!("cannot set {key}: {why}")))?;
    blocking(instance, move |i| {
        i.store.set_setting(spec.key, &value)?;
        if spec.key.starts_with("realtime_") {
            i.realtime
                .set_limits(crate::realtime::RealtimeLimits::load(&i.store)?);
        }
        tracing::info!(key = spec.key, value = %value, "setting changed");
        Ok(ConfigEntry {
            key: spec.key.to_string(),
            value,
            default: false,
            help: spec.help.to_string(),
        })
    })
    .await
}
