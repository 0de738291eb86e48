//! The running instance: what the control plane shares with the rest.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::DomainDecision;
use crate::functions::FunctionPool;
use crate::http::catalog::SiteCatalog;
use crate::realtime::ChannelHub;
use crate::sites::Sites;
use crate::store::Store;

pub struct Instance {
    pub store: Arc<Store>,
    /// Every change to sites (deploys, rollbacks, removals) goes through it.
    pub sites: Arc<Sites>,
    /// What is being served: read-only here.
    pub catalog: Arc<SiteCatalog>,
    pub domain: DomainDecision,
    pub listen: SocketAddr,
    pub socket_path: PathBuf,
    pub started: Instant,
    pub functions: Arc<FunctionPool>,
    /// Realtime channels: `publish`, `count`, `presence`, `stats`.
    pub realtime: Arc<ChannelHub>,
}

impl Instance {
    /// The URL of a site: `NAME.DOMAIN`, or `NAME.IP.nip.io` when the domain
    /// is an IP address (so it works without DNS set-up), or `NAME.localhost`
    /// when the instance only listens on loopback (nothing else could reach it).
    pub fn site_url(&self, site: &str) -> String {
        let port = match self.listen.port() {
            80 => String::new(),
            p => format!(":{p}"),
        };
        if self.listen.ip().is_loopback() {
            let host = if site == "root" {
                "localhost".to_string()
            } else {
                format!("{site}.localhost")
            };
            return format!("http://{host}{port}/");
        }
        let domain = &self.domain.domain;
        let host = match (site, domain.parse::<IpAddr>().is_ok()) {
            ("root", _) => domain.clone(),
            (name, true) => format!("{name}.{domain}.nip.io"),
            (name, false) => format!("{name}.{domain}"),
        };
        format!("http://{host}{port}/")
    }
}
