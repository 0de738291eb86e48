//! `sites`, `site rm`, `history` and `rollback`.

use std::sync::Arc;

use fazt_proto::{RollbackOutcome, RpcError, SiteInfo, VersionInfo};

use super::deploy::collect_garbage;
use crate::instance::Instance;

fn check_name(name: &str) -> Result<(), RpcError> {
    if fazt_proto::is_valid_site_name(name) {
        Ok(())
    } else {
        Err(RpcError::Invalid(format!(
            "{name:?} is not a valid site name: use 1-63 lower-case letters, digits and dashes"
        )))
    }
}

fn existing_site(i: &Instance, site: &str) -> Result<crate::store::SiteRecord, RpcError> {
    i.store
        .site(site)?
        .ok_or_else(|| RpcError::NotFound(format!("there is no site named {site}")))
}

pub async fn list(instance: &Arc<Instance>) -> Result<Vec<SiteInfo>, RpcError> {
    instance
        .blocking(|i| {
            let mut out = Vec::new();
            for site in i.store.sites()? {
                let versions = i.store.versions(&site.name)?;
                let live = versions.iter().find(|v| v.id == site.live);
                out.push(SiteInfo {
                    url: i.site_url(&site.name),
                    live_version: site.live,
                    versions: versions.len() as u64,
                    files: live.map(|v| v.file_count).unwrap_or(0),
                    bytes: live.map(|v| v.total_bytes).unwrap_or(0),
                    updated_at: site.updated_at,
                    name: site.name,
                });
            }
            Ok(out)
        })
        .await
}

pub async fn history(instance: &Arc<Instance>, site: String) -> Result<Vec<VersionInfo>, RpcError> {
    check_name(&site)?;
    instance
        .blocking(move |i| {
            let record = existing_site(i, &site)?;
            Ok(i.store
                .versions(&site)?
                .into_iter()
                .rev()
                .map(|v| VersionInfo {
                    id: v.id,
                    created_at: v.created_at,
                    files: v.file_count,
                    bytes: v.total_bytes,
                    live: v.id == record.live,
                })
                .collect())
        })
        .await
}

pub async fn rollback(
    instance: &Arc<Instance>,
    site: String,
    version: Option<u64>,
) -> Result<RollbackOutcome, RpcError> {
    check_name(&site)?;
    let _guard = instance.write_lock.lock().await;
    instance
        .blocking(move |i| {
            let record = existing_site(i, &site)?;
            let versions = i.store.versions(&site)?;
            let target = match version {
                Some(v) => v,
                None => versions
                    .iter()
                    .rev()
                    .map(|v| v.id)
                    .find(|id| *id < record.live)
                    .ok_or_else(|| {
                        RpcError::NotFound(format!(
                            "{site} has no version older than the live one ({}) to roll back to",
                            record.live
                        ))
                    })?,
            };
            if target == record.live {
                return Err(RpcError::Invalid(format!(
                    "version {target} of {site} is already live"
                )));
            }
            i.store.set_live(&site, target)?;
            i.catalog.reload(&site)?;
            tracing::info!(site = %site, from = record.live, to = target, "rolled back");
            Ok(RollbackOutcome {
                url: i.site_url(&site),
                site,
                from: record.live,
                to: target,
            })
        })
        .await
}

pub async fn remove(instance: &Arc<Instance>, site: String) -> Result<(), RpcError> {
    check_name(&site)?;
    let _guard = instance.write_lock.lock().await;
    instance
        .blocking(move |i| {
            i.store.remove_site(&site)?;
            i.catalog.reload(&site)?;
            i.functions.logs.forget(&site);
            i.realtime.remove_site(&site);
            tracing::info!(site = %site, "site removed");
            collect_garbage(i);
            Ok(())
        })
        .await
}
