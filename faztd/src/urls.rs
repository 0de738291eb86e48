//! Where a site can be opened: one rule for the banner, `faztctl deploy`,
//! `faztctl sites` and everything else that prints a site's address.
//!
//! On the machine itself `NAME.localhost` always works (browsers resolve
//! `*.localhost` to loopback). From elsewhere the site answers at
//! `NAME.DOMAIN`, or `NAME.IP.nip.io` when the domain is an IP address (so
//! it works without DNS set-up) — but only when faztd listens on more than
//! loopback. With HTTPS on, the public address is `https://NAME.DOMAIN`
//! (whatever faztd listens on: a certified name is meant to be public).

use std::net::{IpAddr, SocketAddr};

/// A site's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUrls {
    /// Works on this machine.
    pub local: String,
    /// Works from other machines, when the instance listens beyond loopback.
    pub public: Option<String>,
}

impl SiteUrls {
    /// The address to show when only one fits: the public one if any.
    pub fn primary(&self) -> &str {
        self.public.as_deref().unwrap_or(&self.local)
    }
}

/// `https` is where HTTPS is served, when it is on.
pub fn site_urls(
    listen: SocketAddr,
    https: Option<SocketAddr>,
    domain: &str,
    site: &str,
) -> SiteUrls {
    let port = port_suffix(listen);
    let local_host = match site {
        "root" => "localhost".to_string(),
        name => format!("{name}.localhost"),
    };
    let local = format!("http://{local_host}{port}/");
    let domain = domain.trim();
    let reachable = !listen.ip().is_loopback();
    let domain_is_local = domain.is_empty()
        || domain == "localhost"
        || domain.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let public = ((reachable || https.is_some()) && !domain_is_local).then(|| {
        let host = match (site, domain.parse::<IpAddr>().is_ok()) {
            ("root", _) => domain.to_string(),
            (name, true) => format!("{name}.{domain}.nip.io"),
            (name, false) => format!("{name}.{domain}"),
        };
        match https {
            Some(addr) if addr.port() == 443 => format!("https://{host}/"),
            Some(addr) => format!("https://{host}:{}/", addr.port()),
            None => format!("http://{host}{port}/"),
        }
    });
    SiteUrls { local, public }
}

/// Where a custom domain (`example.org`) serves its site: wherever its DNS
/// points, on the port faztd listens on (HTTPS's when it is on).
pub fn custom_domain_url(listen: SocketAddr, https: Option<SocketAddr>, domain: &str) -> String {
    match https {
        Some(addr) if addr.port() == 443 => format!("https://{domain}/"),
        Some(addr) => format!("https://{domain}:{}/", addr.port()),
        None => format!("http://{domain}{}/", port_suffix(listen)),
    }
}

/// `:PORT` in a URL, or nothing for HTTP's default port.
fn port_suffix(listen: SocketAddr) -> String {
    match listen.port() {
        80 => String::new(),
        p => format!(":{p}"),
    }
}

/// How the listen address reads in the banner.
pub fn describe_listen(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        format!(
            "{listen} (all interfaces: other devices on your network can open these sites; \
             --listen 127.0.0.1:{} keeps them on this machine)",
            listen.port()
        )
    } else if listen.ip().is_loopback() {
        format!("{listen} (this machine only)")
    } else {
        listen.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(listen: &str, domain: &str, site: &str) -> SiteUrls {
        site_urls(listen.parse().unwrap(), None, domain, site)
    }

    #[test]
    fn local_and_public_addresses() {
        let all = urls("0.0.0.0:8080", "192.0.2.2", "blog");
        assert_eq!(all.local, "http://blog.localhost:8080/");
        assert_eq!(
            all.public.as_deref(),
            Some("http://blog.192.0.2.2.nip.io:8080/")
        );
        assert_eq!(all.primary(), "http://blog.192.0.2.2.nip.io:8080/");
        let named = urls("0.0.0.0:80", "example.com", "blog");
        assert_eq!(named.public.as_deref(), Some("http://blog.example.com/"));
        assert_eq!(named.local, "http://blog.localhost/");
        let root = urls("0.0.0.0:8080", "example.com", "root");
        assert_eq!(root.local, "http://localhost:8080/");
        assert_eq!(root.public.as_deref(), Some("http://example.com:8080/"));
        // Loopback only: nothing else could reach it.
        let lo = urls("127.0.0.1:8080", "192.0.2.2", "blog");
        assert_eq!(
            (lo.local.as_str(), lo.public),
            ("http://blog.localhost:8080/", None)
        );
        // A local-only domain is no public address.
        assert_eq!(urls("0.0.0.0:8080", "localhost", "blog").public, None);
        // A custom domain is where its DNS points, on faztd's port.
        let at = |listen: &str| custom_domain_url(listen.parse().unwrap(), None, "example.org");
        assert_eq!(at("0.0.0.0:80"), "http://example.org/");
        assert_eq!(at("127.0.0.1:8080"), "http://example.org:8080/");
    }

    #[test]
    fn https_addresses() {
        let https = |addr: &str, site: &str| {
            site_urls(
                "127.0.0.1:80".parse().unwrap(),
                Some(addr.parse().unwrap()),
                "example.com",
                site,
            )
        };
        let blog = https("0.0.0.0:443", "blog");
        assert_eq!(blog.public.as_deref(), Some("https://blog.example.com/"));
        assert_eq!(blog.local, "http://blog.localhost/");
        assert_eq!(
            https("127.0.0.1:8443", "root").public.as_deref(),
            Some("https://example.com:8443/")
        );
    }
}
