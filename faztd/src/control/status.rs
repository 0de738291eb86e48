//! `status` and `config`: what the instance is and how it is set.

use std::sync::Arc;

use fazt_proto::{CertificateStatus, ConfigEntry, DaemonStatus, RpcError};

use super::errors::blocking;
use crate::instance::Instance;
use crate::settings::{SettingEntry, Settings, SettingsError};

pub async fn status(instance: &Arc<Instance>) -> Result<DaemonStatus, RpcError> {
    let i = instance;
    let realtime = i.realtime.stats();
    let certificates = blocking(instance, |i| Ok(i.certificates()?)).await?;
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
        refusals: i
            .refusals
            .snapshot()
            .into_iter()
            .map(|(kind, count)| (kind.to_string(), count))
            .collect(),
        https_listen: i.https_listen.map(|a| a.to_string()),
        // Never the key: only dates and the last error.
        certificates: certificates.into_iter().map(certificate_status).collect(),
    })
}

pub async fn config_get(instance: &Arc<Instance>) -> Result<Vec<ConfigEntry>, RpcError> {
    blocking(instance, |i| {
        Ok(Settings::entries(&i.store)?
            .into_iter()
            .map(wire_entry)
            .collect())
    })
    .await
}

pub async fn config_set(
    instance: &Arc<Instance>,
    key: String,
    value: String,
) -> Result<ConfigEntry, RpcError> {
    blocking(instance, move |i| {
        let entry = Settings::set(&i.store, &key, &value).map_err(|err| match err {
            SettingsError::Store(err) => err.into(),
            other => RpcError::Invalid(other.to_string()),
        })?;
        if entry.key.starts_with("realtime_") {
            i.realtime
                .set_limits(Settings::load(&i.store)?.realtime_limits());
        }
        tracing::info!(key = entry.key, value = %entry.value, "setting changed");
        Ok(wire_entry(entry))
    })
    .await
}

fn wire_entry(entry: SettingEntry) -> ConfigEntry {
    ConfigEntry {
        key: entry.key.to_string(),
        value: entry.value,
        default: entry.default,
        help: entry.help.to_string(),
    }
}

/// A certificate as the wire shows it: dates and the last error, never the
/// key. Used by `status` and `domain list`.
pub(super) fn certificate_status(record: crate::store::CertificateRecord) -> CertificateStatus {
    CertificateStatus {
        valid_until: record.issued().then_some(record.not_after),
        renew_at: record.issued().then_some(record.renew_at),
        last_error: record.last_error,
        name: record.name,
    }
}
