//! Which certificate a TLS handshake gets, chosen by the name the client
//! sends (SNI).
//!
//! [`CertResolver`] only *looks up*: the certificates the manager put in it
//! for the names the instance serves, and during a TLS-ALPN-01 validation
//! the challenge certificate for that name. Any other name gets the
//! instance's own certificate (its domain's), or — before that exists — no
//! certificate, which rustls turns into a handshake alert. A handshake never
//! starts an order: names come from [`super::names::CertifiedNames`] only.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

#[derive(Debug)]
pub struct CertResolver {
    /// The instance's name: its certificate answers names we do not serve.
    domain: String,
    /// Name → certificate in service. Short critical sections, never held
    /// across an `.await`.
    served: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// Name → TLS-ALPN-01 challenge certificate, while an order validates.
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl CertResolver {
    pub fn new(domain: &str) -> CertResolver {
        CertResolver {
            domain: domain.to_ascii_lowercase(),
            served: RwLock::default(),
            challenges: RwLock::default(),
        }
    }

    /// Serves `key` for `name` from the next handshake on.
    pub fn install(&self, name: &str, key: Arc<CertifiedKey>) {
        self.served
            .write()
            .expect("resolver lock")
            .insert(name.to_ascii_lowercase(), key);
    }

    /// Stops serving every name `keep` says no to.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.served
            .write()
            .expect("resolver lock")
            .retain(|name, _| keep(name));
    }

    /// Whether `host` (a Host header's name, port removed) has a certificate
    /// of its own: port 80 redirects such hosts to HTTPS.
    pub fn has_certificate(&self, host: &str) -> bool {
        self.served
            .read()
            .expect("resolver lock")
            .contains_key(&host.to_ascii_lowercase())
    }

    pub fn set_challenge(&self, name: &str, key: Arc<CertifiedKey>) {
        self.challenges
            .write()
            .expect("resolver lock")
            .insert(name.to_ascii_lowercase(), key);
    }

    pub fn clear_challenge(&self, name: &str) {
        self.challenges
            .write()
            .expect("resolver lock")
            .remove(&name.to_ascii_lowercase());
    }

    /// The certificate for a handshake naming `sni` and offering `alpn`.
    fn choose(&self, sni: Option<&str>, acme_validation: bool) -> Option<Arc<CertifiedKey>> {
        let sni = sni.map(str::to_ascii_lowercase);
        if acme_validation {
            // Only a challenge certificate answers a validation; anything
            // else would tell the CA a wrong story.
            let challenges = self.challenges.read().expect("resolver lock");
            return sni.and_then(|name| challenges.get(&name).cloned());
        }
        let served = self.served.read().expect("resolver lock");
        sni.and_then(|name| served.get(&name).cloned())
            .or_else(|| served.get(&self.domain).cloned())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme_validation = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        self.choose(hello.server_name(), acme_validation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::certs;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let (chain, key) = certs::tests::self_signed(name);
        certs::load(name, &chain, &key).unwrap().key
    }

    #[test]
    fn served_names_then_the_instance_certificate_then_nothing() {
        let resolver = CertResolver::new("example.com");
        assert!(
            resolver.choose(Some("other.org"), false).is_none(),
            "nothing yet: an alert"
        );
        let blog = key("blog.example.com");
        resolver.install("blog.example.com", blog.clone());
        assert!(Arc::ptr_eq(
            &resolver.choose(Some("BLOG.example.com"), false).unwrap(),
            &blog
        ));
        assert!(resolver.choose(Some("other.org"), false).is_none());
        let domain = key("example.com");
        resolver.install("example.com", domain.clone());
        assert!(Arc::ptr_eq(
            &resolver.choose(Some("other.org"), false).unwrap(),
            &domain
        ));
        assert!(Arc::ptr_eq(&resolver.choose(None, false).unwrap(), &domain));
        assert!(resolver.has_certificate("blog.example.com"));
        resolver.retain(|name| name != "blog.example.com");
        assert!(!resolver.has_certificate("blog.example.com"));
    }

    #[test]
    fn validations_get_challenge_certificates_only() {
        let resolver = CertResolver::new("example.com");
        resolver.install("example.com", key("example.com"));
        assert!(resolver.choose(Some("example.com"), true).is_none());
        let challenge = key("example.com");
        resolver.set_challenge("example.com", challenge.clone());
        assert!(Arc::ptr_eq(
            &resolver.choose(Some("example.com"), true).unwrap(),
            &challenge
        ));
        resolver.clear_challenge("example.com");
        assert!(resolver.choose(Some("example.com"), true).is_none());
    }
}
