//! Whether an instance serves HTTPS: the `https` setting (`off | on |
//! auto`) against the domain, decided by a pure function so the whole table
//! is unit-tested.
//!
//! A certificate from a public CA needs a name the CA can reach: not an IP
//! address (Let's Encrypt issues none for IPs through these challenges), not
//! `localhost`, and nothing only a local network resolves. So `auto` turns
//! HTTPS on only for a *public DNS name*; `on` is taken at its word except
//! where it cannot work at all (an IP address, `localhost`), and then the
//! daemon refuses to start with a sentence saying why.
//!
//! Not public, for `auto`: IP addresses; `localhost` and `*.localhost`;
//! single-label names (`myhost`); the names reserved for testing and local
//! networks (`.test`, `.example`, `.invalid`, `.local`, `.internal`, `.lan`,
//! `.home.arpa`); and `IP.nip.io` / `IP.sslip.io` names, which resolve to a
//! LAN address and whose certificates all users share one rate limit for.
//! `on` accepts these names (a private ACME server may well serve `.test`,
//! as the tests' pebble does).

use std::fmt;
use std::net::IpAddr;

use crate::domain::portable_ip;

/// The `https` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpsMode {
    /// Plain HTTP only.
    #[default]
    Off,
    /// HTTPS with ACME certificates; refuses to start where it cannot work.
    On,
    /// HTTPS when the domain is a public DNS name, else plain HTTP.
    Auto,
}

impl HttpsMode {
    pub fn parse(text: &str) -> Result<HttpsMode, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "no" => Ok(HttpsMode::Off),
            "on" | "true" | "yes" => Ok(HttpsMode::On),
            "auto" => Ok(HttpsMode::Auto),
            _ => Err(format!("{text:?} is not off, on or auto")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpsMode::Off => "off",
            HttpsMode::On => "on",
            HttpsMode::Auto => "auto",
        }
    }
}

impl fmt::Display for HttpsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the ACME server is asked to check that we control a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcmeChallenge {
    /// RFC 8737: a special certificate on the HTTPS port. Needs only :443.
    #[default]
    TlsAlpn01,
    /// RFC 8555 §8.3: a token under `/.well-known/acme-challenge/` on :80.
    Http01,
}

impl AcmeChallenge {
    pub fn parse(text: &str) -> Result<AcmeChallenge, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "tls-alpn-01" => Ok(AcmeChallenge::TlsAlpn01),
            "http-01" => Ok(AcmeChallenge::Http01),
            _ => Err(format!("{text:?} is not tls-alpn-01 or http-01")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AcmeChallenge::TlsAlpn01 => "tls-alpn-01",
            AcmeChallenge::Http01 => "http-01",
        }
    }
}

impl fmt::Display for AcmeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Suffixes of names that no public CA validates (RFC 2606, RFC 6762,
/// RFC 8375, and the common private ones).
const PRIVATE_SUFFIXES: &[&str] = &[
    ".localhost",
    ".test",
    ".example",
    ".invalid",
    ".local",
    ".internal",
    ".lan",
    ".home.arpa",
];

/// Whether `domain` is a DNS name a public CA could validate.
pub fn is_public_name(domain: &str) -> bool {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || !domain.contains('.') || domain == "localhost" {
        return false;
    }
    if domain.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() || portable_ip(&domain).is_some() {
        return false;
    }
    !PRIVATE_SUFFIXES.iter().any(|s| domain.ends_with(s))
}

/// Whether HTTPS is on for `domain` under `mode`, or why `on` cannot work.
pub fn https_enabled(mode: HttpsMode, domain: &str) -> Result<bool, String> {
    match mode {
        HttpsMode::Off => Ok(false),
        HttpsMode::Auto => Ok(is_public_name(domain)),
        HttpsMode::On => {
            let bare = domain.trim().trim_matches(['[', ']']);
            if bare.parse::<IpAddr>().is_ok() {
                Err(format!(
                    "https is on, but the domain {domain} is an IP address: certificate authorities \
                     issue certificates for DNS names. Point a DNS name at this machine and start \
                     with --domain NAME, or use --https auto (plain HTTP for IPs) or --https off"
                ))
            } else if bare.is_empty() || bare == "localhost" || bare.ends_with(".localhost") {
                Err(format!(
                    "https is on, but the domain {domain:?} only exists on this machine, so no \
                     certificate authority can check it. Start with --domain NAME (a DNS name that \
                     points here), or use --https off"
                ))
            } else {
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_names() {
        for public in [
            "example.com",
            "blog.example.org",
            "fazt.dev.",
            "Example.COM",
        ] {
            assert!(is_public_name(public), "{public}");
        }
        for private in [
            "",
            "localhost",
            "app.localhost",
            "myhost",
            "192.168.1.5",
            "::1",
            "[::1]",
            "192.168.1.5.nip.io",
            "blog.10-0-0-2.sslip.io",
            "fazt.test",
            "box.local",
            "nas.home.arpa",
            "corp.internal",
        ] {
            assert!(!is_public_name(private), "{private}");
        }
    }

    #[test]
    fn decision_table() {
        use HttpsMode::*;
        assert_eq!(https_enabled(Off, "example.com"), Ok(false));
        assert_eq!(https_enabled(Auto, "example.com"), Ok(true));
        assert_eq!(https_enabled(Auto, "192.168.1.5"), Ok(false));
        assert_eq!(https_enabled(Auto, "fazt.test"), Ok(false));
        assert_eq!(https_enabled(On, "example.com"), Ok(true));
        // Taken at its word: a private CA may serve these.
        assert_eq!(https_enabled(On, "fazt.test"), Ok(true));
        assert_eq!(https_enabled(On, "10.0.0.2.nip.io"), Ok(true));
        let ip = https_enabled(On, "192.168.1.5").unwrap_err();
        assert!(ip.contains("is an IP address"), "{ip}");
        let local = https_enabled(On, "localhost").unwrap_err();
        assert!(local.contains("only exists on this machine"), "{local}");
    }

    #[test]
    fn settings_text_round_trips() {
        for mode in [HttpsMode::Off, HttpsMode::On, HttpsMode::Auto] {
            assert_eq!(HttpsMode::parse(mode.as_str()), Ok(mode));
        }
        for c in [AcmeChallenge::TlsAlpn01, AcmeChallenge::Http01] {
            assert_eq!(AcmeChallenge::parse(c.as_str()), Ok(c));
        }
        assert!(HttpsMode::parse("maybe").is_err());
        assert!(AcmeChallenge::parse("dns-01").is_err());
    }
}
