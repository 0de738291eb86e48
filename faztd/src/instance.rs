//! The running instance: what the control plane shares with the rest.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::DomainDecision;
use crate::functions::FunctionPool;
use crate::http::catalog::SiteCatalog;
use crate::realtime::ChannelHub;
use crate::refusals::Refusals;
use crate::sites::Sites;
use crate::store::Store;
use crate::tls::CertifiedNames;
use crate::urls::SiteUrls;

pub struct Instance {
    pub store: Arc<Store>,
    /// Every change to sites (deploys, rollbacks, removals) goes through it.
    pub sites: Arc<Sites>,
    /// What is being served: read-only here.
    pub catalog: Arc<SiteCatalog>,
    pub domain: DomainDecision,
    pub listen: SocketAddr,
    /// Where HTTPS is served, when it is on.
    pub https_listen: Option<SocketAddr>,
    /// The names certified, when HTTPS is on (status reads their records).
    pub certified: Option<Arc<CertifiedNames>>,
    pub socket_path: PathBuf,
    pub started: Instant,
    pub functions: Arc<FunctionPool>,
    /// Realtime channels: `publish`, `count`, `presence`, `stats`.
    pub realtime: Arc<ChannelHub>,
    /// What was refused to clients, counted for status.
    pub refusals: Arc<Refusals>,
}

impl Instance {
    /// Where `site` can be opened (see `urls`).
    pub fn site_urls(&self, site: &str) -> SiteUrls {
        crate::urls::site_urls(self.listen, self.https_listen, &self.domain.domain, site)
    }

    /// Where a custom domain serves its site (see `urls`).
    pub fn domain_url(&self, domain: &str) -> String {
        crate::urls::custom_domain_url(self.listen, self.https_listen, domain)
    }

    /// The one address to show when only one fits.
    pub fn site_url(&self, site: &str) -> String {
        self.site_urls(site).primary().to_string()
    }
}

impl Instance {
    /// Each certified name's stored record (a default one for a name not
    /// tried yet), sorted by name; empty when HTTPS is off.
    pub fn certificates(
        &self,
    ) -> Result<Vec<crate::store::CertificateRecord>, crate::store::StoreError> {
        let Some(names) = &self.certified else {
            return Ok(Vec::new());
        };
        let mut stored: std::collections::HashMap<String, _> = self
            .store
            .certificates()?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        Ok(names
            .current()
            .into_iter()
            .map(|name| {
                stored
                    .remove(&name)
                    .unwrap_or(crate::store::CertificateRecord {
                        name,
                        ..Default::default()
                    })
            })
            .collect())
    }
}
