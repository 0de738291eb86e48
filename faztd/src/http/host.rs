//! Host-based routing: which site a `Host` header names (DESIGN.md §2).
//!
//! Names under the instance's domain, `localhost` and nip.io route by rule,
//! with no table. Only a host those rules do not know is looked up among
//! the custom domains ([`CustomDomainRoutes`], a map the sites service
//! keeps current), so the common request pays nothing for them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use crate::domain::portable_ip;
use crate::sites::{DomainChange, DomainListener};

/// The site that serves the bare domain, `localhost` and IP addresses.
pub const ROOT_SITE: &str = "root";

/// Where a request's host sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRoute {
    /// A site by name (it may or may not exist).
    Site(String),
    /// A well-formed host that names no site of this instance.
    Unknown,
    /// A malformed `Host` header.
    Malformed,
}

/// Resolves hosts against the instance's domain, then its custom domains.
#[derive(Debug, Clone)]
pub struct SiteResolver {
    domain: String,
    custom: Arc<CustomDomainRoutes>,
}

impl SiteResolver {
    /// A resolver with no custom domains yet: register
    /// [`SiteResolver::custom_domains`] with the sites service to follow them.
    pub fn new(domain: &str) -> SiteResolver {
        SiteResolver {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            custom: Arc::default(),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The custom-domain table this resolver reads (a [`DomainListener`]).
    pub fn custom_domains(&self) -> &Arc<CustomDomainRoutes> {
        &self.custom
    }

    /// Routes a raw `Host` header value (with or without a port).
    pub fn resolve(&self, raw_host: &str) -> HostRoute {
        let Some(host) = normalize_host(raw_host) else {
            return HostRoute::Malformed;
        };
        let host = host.as_str();
        if host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
            return root();
        }
        if host == "localhost" || host == self.domain {
            return root();
        }
        if let Some(name) = host.strip_suffix(".localhost") {
            return site_label(name);
        }
        if let Some(name) = host
            .strip_suffix(self.domain.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
        {
            return site_label(name);
        }
        if let Some(ip) = portable_ip(host) {
            // `NAME.IP.nip.io` works whatever the configured domain is.
            let ip = ip.to_string();
            let prefix = host
                .strip_suffix(".nip.io")
                .or_else(|| host.strip_suffix(".sslip.io"))
                .unwrap_or(host);
            let prefix = prefix
                .strip_suffix(ip.as_str())
                .or_else(|| prefix.strip_suffix(ip.replace('.', "-").as_str()))
                .unwrap_or(prefix);
            return match prefix.strip_suffix('.') {
                Some(name) => site_label(name),
                None if prefix.is_empty() => root(),
                None => HostRoute::Unknown,
            };
        }
        // Custom domains are stored in the same normal form `host` is in.
        match self.custom.site_for(host) {
            Some(site) => HostRoute::Site(site),
            None => HostRoute::Unknown,
        }
    }
}

/// Custom domain → site, in memory, for [`SiteResolver`]: a read lock on
/// the hot path (only for hosts no rule knows), a write lock when the
/// sites service announces a change.
#[derive(Debug, Default)]
pub struct CustomDomainRoutes {
    sites: RwLock<HashMap<String, String>>,
}

impl CustomDomainRoutes {
    /// The site a normalised host (lower case, no port or trailing dot)
    /// names as a custom domain.
    fn site_for(&self, host: &str) -> Option<String> {
        self.sites
            .read()
            .expect("domain routes lock")
            .get(host)
            .cloned()
    }

    /// Every custom domain of `site` (for realtime's origin check, once
    /// per WebSocket handshake; there are few).
    pub fn domains_of(&self, site: &str) -> Vec<String> {
        let sites = self.sites.read().expect("domain routes lock");
        let mut domains: Vec<String> = sites
            .iter()
            .filter(|(_, s)| s.as_str() == site)
            .map(|(domain, _)| domain.clone())
            .collect();
        domains.sort();
        domains
    }
}

impl DomainListener for CustomDomainRoutes {
    fn domain_changed(&self, change: &DomainChange) {
        let mut sites = self.sites.write().expect("domain routes lock");
        match change {
            DomainChange::Added { domain, site } => {
                sites.insert(domain.to_string(), site.to_string());
            }
            DomainChange::Removed { domain, .. } => {
                sites.remove(domain.as_str());
            }
        }
    }
}

fn root() -> HostRoute {
    HostRoute::Site(ROOT_SITE.to_string())
}

/// A single DNS label that is a valid site name, else `Unknown`.
fn site_label(name: &str) -> HostRoute {
    if is_valid_site_name(name) {
        HostRoute::Site(name.to_string())
    } else {
        HostRoute::Unknown
    }
}

pub use fazt_proto::is_valid_site_name;

/// Lower-cases a host, drops the port and a trailing dot, and checks that
/// what is left could be a hostname or an IP literal.
fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 255 {
        return None;
    }
    let host = if raw.starts_with('[') {
        // [v6]:port
        let end = raw.find(']')?;
        let (literal, rest) = raw.split_at(end + 1);
        if !(rest.is_empty() || valid_port(rest.strip_prefix(':')?)) {
            return None;
        }
        literal[1..literal.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .ok()?;
        return Some(literal.to_ascii_lowercase());
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if valid_port(port) => host,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let valid = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    valid.then(|| host.to_ascii_lowercase())
}

fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_table() {
        let r = SiteResolver::new("example.com");
        let site = |s: &str| HostRoute::Site(s.to_string());
        let cases: &[(&str, HostRoute)] = &[
            ("example.com", site("root")),
            ("EXAMPLE.com:8080", site("root")),
            ("example.com.", site("root")),
            ("root.example.com", site("root")),
            ("blog.example.com", site("blog")),
            ("blog.example.com:80", site("blog")),
            ("localhost:8080", site("root")),
            ("demo.localhost:8080", site("demo")),
            ("127.0.0.1:8080", site("root")),
            ("[::1]:8080", site("root")),
            ("192.168.1.5.nip.io", site("root")),
            ("demo.192.168.1.5.nip.io:8080", site("demo")),
            ("demo.192-168-1-5.sslip.io", site("demo")),
            ("a.b.example.com", HostRoute::Unknown),
            ("other.org", HostRoute::Unknown),
            ("-bad.localhost", HostRoute::Unknown),
            ("", HostRoute::Malformed),
            ("exa mple.com", HostRoute::Malformed),
            ("example.com:port", HostRoute::Malformed),
            ("example.com:123456", HostRoute::Malformed),
            ("ex/ample.com", HostRoute::Malformed),
            ("a..b", HostRoute::Malformed),
            ("[::1", HostRoute::Malformed),
            ("[zz]:80", HostRoute::Malformed),
            ("evil\0.com", HostRoute::Malformed),
        ];
        for (host, want) in cases {
            assert_eq!(&r.resolve(host), want, "host {host:?}");
        }
        let long = format!("{}.com", "a".repeat(300));
        assert_eq!(r.resolve(&long), HostRoute::Malformed);
    }

    #[test]
    fn custom_domains_route_after_the_rules_in_any_spelling() {
        let r = SiteResolver::new("example.com");
        let change = |added: bool, domain: &str, site: &str| {
            let domain = crate::sites::CustomDomain::parse(domain, "example.com").unwrap();
            let site = crate::sites::SiteName::parse(site).unwrap();
            r.custom_domains().domain_changed(&if added {
                DomainChange::Added { domain, site }
            } else {
                DomainChange::Removed { domain, site }
            });
        };
        assert_eq!(r.resolve("shop.org"), HostRoute::Unknown);
        change(true, "shop.org", "blog");
        change(true, "www.shop.org", "blog");
        for host in ["shop.org", "SHOP.org:8080", "shop.org.", "Shop.Org.:80"] {
            assert_eq!(r.resolve(host), HostRoute::Site("blog".into()), "{host}");
        }
        assert_eq!(
            r.custom_domains().domains_of("blog"),
            ["shop.org", "www.shop.org"]
        );
        // The rules still come first.
        assert_eq!(
            r.resolve("demo.example.com"),
            HostRoute::Site("demo".into())
        );
        change(false, "shop.org", "blog");
        assert_eq!(r.resolve("shop.org"), HostRoute::Unknown);
        assert_eq!(r.custom_domains().domains_of("blog"), ["www.shop.org"]);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn resolver() -> SiteResolver {
            SiteResolver::new("example.com")
        }

        proptest! {
            /// Any string is answered, never a panic.
            #[test]
            fn never_panics(raw in any::<String>()) {
                let _ = resolver().resolve(&raw);
            }

            /// A site named by any spelling of its host (case, port,
            /// trailing dot, under the domain or `localhost`) is that site.
            #[test]
            fn every_spelling_names_the_site(
                name in "[a-z][a-z0-9-]{0,20}[a-z0-9]",
                port in prop::option::of(1u16..),
                dot in any::<bool>(),
                upper in any::<bool>(),
                under_localhost in any::<bool>(),
            ) {
                prop_assume!(is_valid_site_name(&name));
                let parent = if under_localhost { "localhost" } else { "example.com" };
                let mut host = format!("{name}.{parent}");
                if dot { host.push('.'); }
                if let Some(port) = port { host.push_str(&format!(":{port}")); }
                if upper { host = host.to_ascii_uppercase(); }
                prop_assert_eq!(resolver().resolve(&host), HostRoute::Site(name));
            }

            /// A route to a site always names a valid site, whatever the
            /// host was: nothing a client writes becomes a path or a key
            /// outside the rules for site names.
            #[test]
            fn a_routed_name_is_a_valid_site_name(raw in "[a-zA-Z0-9.:\\[\\]_/@%-]{0,40}") {
                if let HostRoute::Site(name) = resolver().resolve(&raw) {
                    prop_assert!(is_valid_site_name(&name), "{:?} from {:?}", name, raw);
                }
            }

            /// A host with a character no host name has is malformed
            /// (surrounding whitespace is trimmed, so it goes inside).
            #[test]
            fn foreign_characters_are_malformed(
                left in "[a-z]{1,8}",
                bad in "[/@ %_\\\\\u{0}-\u{1f}\u{7f}é]",
                right in "[a-z]{1,4}[a-z.]{0,4}",
            ) {
                let host = format!("{left}{bad}{right}");
                prop_assert_eq!(resolver().resolve(&host), HostRoute::Malformed, "{:?}", host);
            }
        }
    }
}
