//! Environment detection (DESIGN.md §9): which domain this instance serves.
//!
//! The decision is a pure function of its inputs, so the whole table is
//! unit-tested; `detect` gathers the inputs from the machine.

use std::net::{IpAddr, ToSocketAddrs};

/// How the domain was chosen, in one word used everywhere (the banner,
/// `faztctl status`; `faztctl config get` says `stored` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainSource {
    /// `--domain` on the command line, for this run.
    Flag,
    /// The stored domain (set with `config set`, or detected and stored at
    /// the first start), which matches this machine.
    Stored,
    /// Detected from the machine's addresses for this run, because the
    /// stored domain does not match this machine (a warning says so).
    Detected,
}

impl DomainSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainSource::Flag => "flag",
            DomainSource::Stored => "stored",
            DomainSource::Detected => "detected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDecision {
    pub domain: String,
    pub source: DomainSource,
    /// Set when a stored domain was ignored because it does not match.
    pub warning: Option<String>,
    /// Whether the decision should be written back as the stored domain.
    pub store: bool,
}

/// Decides the domain. `resolves_here` says whether a hostname resolves to
/// one of this machine's addresses.
pub fn decide(
    flag: Option<&str>,
    stored: Option<&str>,
    local_ips: &[IpAddr],
    primary_ip: IpAddr,
    resolves_here: &dyn Fn(&str) -> bool,
) -> DomainDecision {
    if let Some(flag) = flag.map(str::trim).filter(|d| !d.is_empty()) {
        return DomainDecision {
            domain: flag.to_ascii_lowercase(),
            source: DomainSource::Flag,
            warning: None,
            store: false,
        };
    }
    let detected = primary_ip.to_string();
    match stored.map(str::trim).filter(|d| !d.is_empty()) {
        None => DomainDecision {
            domain: detected,
            source: DomainSource::Detected,
            warning: None,
            store: true,
        },
        Some(stored) if matches_machine(stored, local_ips, resolves_here) => DomainDecision {
            domain: stored.to_ascii_lowercase(),
            source: DomainSource::Stored,
            warning: None,
            store: false,
        },
        Some(stored) => DomainDecision {
            warning: Some(format!(
                "the stored domain {stored} does not point at this machine; serving on {detected} for this run \
                 (set it with --domain, or store a new one)"
            )),
            domain: detected,
            source: DomainSource::Detected,
            store: false,
        },
    }
}

/// Whether `domain` names this machine: `localhost`, one of its IPs, a
/// portable `IP.nip.io` / `IP.sslip.io` name with a local IP, or a hostname
/// that resolves to one of its IPs.
pub fn matches_machine(
    domain: &str,
    local_ips: &[IpAddr],
    resolves_here: &dyn Fn(&str) -> bool,
) -> bool {
    let domain = domain.to_ascii_lowercase();
    if domain == "localhost" {
        return true;
    }
    if let Ok(ip) = domain.trim_matches(['[', ']']).parse::<IpAddr>() {
        return ip.is_loopback() || local_ips.contains(&ip);
    }
    if let Some(ip) = portable_ip(&domain) {
        return ip.is_loopback() || local_ips.contains(&ip);
    }
    resolves_here(&domain)
}

/// The IPv4 address inside a portable name such as `192.168.1.5.nip.io`
/// (or `app.192.168.1.5.nip.io`, or the dashed `192-168-1-5.sslip.io`).
pub fn portable_ip(host: &str) -> Option<IpAddr> {
    let rest = host
        .strip_suffix(".nip.io")
        .or_else(|| host.strip_suffix(".sslip.io"))?;
    let labels: Vec<&str> = rest.split('.').collect();
    if labels.len() >= 4 {
        let candidate = labels[labels.len() - 4..].join(".");
        if let Ok(ip) = candidate.parse() {
            return Some(ip);
        }
    }
    labels.last()?.replace('-', ".").parse().ok()
}

/// Gathers the machine's addresses and decides.
pub fn detect(flag: Option<&str>, stored: Option<&str>) -> DomainDecision {
    let primary = local_ip_address::local_ip().unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mut ips: Vec<IpAddr> = local_ip_address::list_afinet_netifas()
        .map(|list| list.into_iter().map(|(_, ip)| ip).collect())
        .unwrap_or_default();
    ips.push(primary);
    let ips_for_lookup = ips.clone();
    let resolves_here = move |name: &str| {
        (name, 0)
            .to_socket_addrs()
            .map(|mut addrs| {
                addrs.any(|a| a.ip().is_loopback() || ips_for_lookup.contains(&a.ip()))
            })
            .unwrap_or(false)
    };
    decide(flag, stored, &ips, primary, &resolves_here)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 5));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    fn resolver(name: &str) -> bool {
        name == "myhost.example"
    }

    #[test]
    fn decision_table() {
        struct Case {
            flag: Option<&'static str>,
            stored: Option<&'static str>,
            domain: &'static str,
            source: DomainSource,
            warns: bool,
            store: bool,
        }
        use DomainSource::*;
        let cases = [
            // The flag always wins, even over a matching stored domain, and is not stored.
            Case {
                flag: Some("Example.COM"),
                stored: Some("192.168.1.5"),
                domain: "example.com",
                source: Flag,
                warns: false,
                store: false,
            },
            Case {
                flag: Some("example.com"),
                stored: None,
                domain: "example.com",
                source: Flag,
                warns: false,
                store: false,
            },
            // A fresh instance stores the detected IP.
            Case {
                flag: None,
                stored: None,
                domain: "192.168.1.5",
                source: Detected,
                warns: false,
                store: true,
            },
            Case {
                flag: Some("  "),
                stored: None,
                domain: "192.168.1.5",
                source: Detected,
                warns: false,
                store: true,
            },
            // Stored domains that match this machine are used.
            Case {
                flag: None,
                stored: Some("192.168.1.5"),
                domain: "192.168.1.5",
                source: Stored,
                warns: false,
                store: false,
            },
            Case {
                flag: None,
                stored: Some("192.168.1.5.nip.io"),
                domain: "192.168.1.5.nip.io",
                source: Stored,
                warns: false,
                store: false,
            },
            Case {
                flag: None,
                stored: Some("localhost"),
                domain: "localhost",
                source: Stored,
                warns: false,
                store: false,
            },
            Case {
                flag: None,
                stored: Some("127.0.0.1"),
                domain: "127.0.0.1",
                source: Stored,
                warns: false,
                store: false,
            },
            Case {
                flag: None,
                stored: Some("myhost.example"),
                domain: "myhost.example",
                source: Stored,
                warns: false,
                store: false,
            },
            // Stored domains that do not match: warn, serve the detected IP, keep the stored one.
            Case {
                flag: None,
                stored: Some("10.0.0.9"),
                domain: "192.168.1.5",
                source: Detected,
                warns: true,
                store: false,
            },
            Case {
                flag: None,
                stored: Some("10.0.0.9.nip.io"),
                domain: "192.168.1.5",
                source: Detected,
                warns: true,
                store: false,
            },
            Case {
                flag: None,
                stored: Some("elsewhere.example"),
                domain: "192.168.1.5",
                source: Detected,
                warns: true,
                store: false,
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            let d = decide(c.flag, c.stored, &[LAN], LAN, &resolver);
            assert_eq!(d.domain, c.domain, "case {i}");
            assert_eq!(d.source, c.source, "case {i}");
            assert_eq!(d.warning.is_some(), c.warns, "case {i}");
            assert_eq!(d.store, c.store, "case {i}");
        }
        let _ = OTHER;
    }

    #[test]
    fn portable_names() {
        assert_eq!(portable_ip("192.168.1.5.nip.io"), Some(LAN));
        assert_eq!(portable_ip("blog.192.168.1.5.nip.io"), Some(LAN));
        assert_eq!(portable_ip("192-168-1-5.sslip.io"), Some(LAN));
        assert_eq!(portable_ip("example.com"), None);
    }
}
