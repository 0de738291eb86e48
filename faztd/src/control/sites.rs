//! `sites`, `site rm`, `history` and `rollback`: adapters over the sites service.

use std::sync::Arc;

use fazt_proto::{RollbackOutcome, RpcError, SiteInfo, VersionInfo};

use super::errors::site_name;
use crate::instance::Instance;

pub async fn list(instance: &Arc<Instance>) -> Result<Vec<SiteInfo>, RpcError> {
    let sites = instance.sites.list().await?;
    Ok(sites
        .into_iter()
        .map(|s| SiteInfo {
            url: instance.site_url(&s.site.name),
            local_url: Some(instance.site_urls(&s.site.name).local),
            live_version: s.live.as_ref().map(|v| v.number()).unwrap_or(0),
            versions: s.versions,
            files: s.live.as_ref().map(|v| v.file_count).unwrap_or(0),
            bytes: s.live.as_ref().map(|v| v.total_bytes).unwrap_or(0),
            updated_at: s.site.updated_at,
            name: s.site.name,
        })
        .collect())
}

pub async fn history(instance: &Arc<Instance>, site: String) -> Result<Vec<VersionInfo>, RpcError> {
    let site = site_name(&site)?;
    let (record, versions) = instance.sites.history(&site).await?;
    Ok(versions
        .into_iter()
        .map(|v| VersionInfo {
            id: v.number(),
            created_at: v.created_at,
            files: v.file_count,
            bytes: v.total_bytes,
            live: v.id == record.live,
        })
        .collect())
}

pub async fn rollback(
    instance: &Arc<Instance>,
    site: String,
    version: Option<u64>,
) -> Result<RollbackOutcome, RpcError> {
    let site = site_name(&site)?;
    let done = instance.sites.rollback(&site, version).await?;
    Ok(RollbackOutcome {
        url: instance.site_url(&done.site),
        local_url: Some(instance.site_urls(&done.site).local),
        site: done.site.into(),
        from: done.from,
        to: done.to,
    })
}

pub async fn remove(instance: &Arc<Instance>, site: String) -> Result<(), RpcError> {
    let site = site_name(&site)?;
    Ok(instance.sites.remove(&site).await?)
}
