//! `domain add`, `domain rm` and `domain list`: adapters over the sites
//! service, which checks the names and owns the changes.

use std::collections::HashMap;
use std::sync::Arc;

use fazt_proto::{DomainAdded, DomainInfo, RpcError};

use super::errors::{blocking, site_name};
use super::status::certificate_status;
use crate::instance::Instance;
use crate::sites::DomainEntry;

pub async fn add(
    instance: &Arc<Instance>,
    site: String,
    domain: String,
) -> Result<DomainAdded, RpcError> {
    let site = site_name(&site)?;
    let added = instance.sites.add_domain(&site, &domain).await?;
    let certificates = certificates(instance).await?;
    Ok(DomainAdded {
        domain: info(instance, added.entry, &certificates),
        unchanged: added.unchanged,
    })
}

pub async fn remove(instance: &Arc<Instance>, domain: String) -> Result<DomainInfo, RpcError> {
    let removed = instance.sites.remove_domain(&domain).await?;
    // No longer certified: shown without a certificate.
    Ok(info(instance, removed, &HashMap::new()))
}

pub async fn list(
    instance: &Arc<Instance>,
    site: Option<String>,
) -> Result<Vec<DomainInfo>, RpcError> {
    let site = site.as_deref().map(site_name).transpose()?;
    let entries = instance.sites.domains(site.as_ref()).await?;
    let certificates = certificates(instance).await?;
    Ok(entries
        .into_iter()
        .map(|e| info(instance, e, &certificates))
        .collect())
}

/// Each certified name's certificate record, by name; empty when HTTPS is
/// off.
async fn certificates(
    instance: &Arc<Instance>,
) -> Result<HashMap<String, crate::store::CertificateRecord>, RpcError> {
    let records = blocking(instance, |i| Ok(i.certificates()?)).await?;
    Ok(records.into_iter().map(|r| (r.name.clone(), r)).collect())
}

/// The wire form of a domain, with its certificate when HTTPS is on.
fn info(
    instance: &Instance,
    entry: DomainEntry,
    certificates: &HashMap<String, crate::store::CertificateRecord>,
) -> DomainInfo {
    DomainInfo {
        url: instance.domain_url(&entry.domain),
        certificate: certificates
            .get(entry.domain.as_str())
            .cloned()
            .map(certificate_status),
        domain: entry.domain.into(),
        site: entry.site.into(),
        added_at: entry.added_at,
    }
}
