//! `domain add`, `domain rm` and `domain list`: adapters over the sites
//! service, which checks the names and owns the changes.

use std::sync::Arc;

use fazt_proto::{DomainAdded, DomainInfo, RpcError};

use super::errors::site_name;
use crate::instance::Instance;
use crate::sites::DomainEntry;

pub async fn add(
    instance: &Arc<Instance>,
    site: String,
    domain: String,
) -> Result<DomainAdded, RpcError> {
    let site = site_name(&site)?;
    let added = instance.sites.add_domain(&site, &domain).await?;
    Ok(DomainAdded {
        domain: info(instance, added.entry),
        unchanged: added.unchanged,
    })
}

pub async fn remove(instance: &Arc<Instance>, domain: String) -> Result<DomainInfo, RpcError> {
    let removed = instance.sites.remove_domain(&domain).await?;
    Ok(info(instance, removed))
}

pub async fn list(
    instance: &Arc<Instance>,
    site: Option<String>,
) -> Result<Vec<DomainInfo>, RpcError> {
    let site = site.as_deref().map(site_name).transpose()?;
    let entries = instance.sites.domains(site.as_ref()).await?;
    Ok(entries.into_iter().map(|e| info(instance, e)).collect())
}

/// The wire form of a domain. `certificate` stays `None` until faztd
/// serves HTTPS.
fn info(instance: &Instance, entry: DomainEntry) -> DomainInfo {
    DomainInfo {
        url: instance.domain_url(&entry.domain),
        domain: entry.domain.into(),
        site: entry.site.into(),
        added_at: entry.added_at,
        certificate: None,
    }
}
