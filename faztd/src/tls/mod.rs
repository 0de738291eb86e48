//! HTTPS: certificates from an ACME CA (Let's Encrypt by default) for every
//! name the instance serves and no other, kept in the database, served by
//! rustls (DESIGN.md §12).
//!
//! - [`mode`]: the `https = off | on | auto` decision against the domain.
//! - [`names`]: [`CertifiedNames`], the one list of names to certify (domain,
//!   `admin.DOMAIN`, deployed sites, extra names such as custom domains);
//!   a `SiteListener`.
//! - [`resolver`]: [`CertResolver`], the rustls certificate lookup by SNI;
//!   it never orders anything.
//! - [`manager`]: [`CertManager`], the one task that talks to the CA: loads
//!   stored certificates at start, orders missing names, renews at two
//!   thirds of the lifetime, backs off on failure, under an hourly budget.
//! - [`certs`]: PEM → `CertifiedKey`, validity, TLS-ALPN-01 certificates.
//! - [`http01`]: HTTP-01 tokens, answered on port 80 by `http`.
//!
//! **Invariants:** only `CertifiedNames` decides what is ordered; a TLS
//! handshake only reads. Private keys are never logged. **API boundary:**
//! `server_config(resolver)` for the listener, `CertManager::run` for the
//! daemon; `http` reads `CertResolver::has_certificate` and `Http01Tokens`.

pub mod acme_client;
pub mod certs;
pub mod http01;
pub mod manager;
pub mod mode;
pub mod names;
pub mod resolver;

use std::sync::Arc;

pub use http01::Http01Tokens;
pub use manager::{AcmeOptions, CertManager};
pub use mode::{AcmeChallenge, HttpsMode};
pub use names::CertifiedNames;
pub use resolver::{CertResolver, ACME_TLS_ALPN};

use crate::store::StoreError;

/// Let's Encrypt's production directory, the default `acme_directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// What can go wrong getting or using a certificate. None quotes a key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot use the ACME server at {directory}: {source}")]
    Account {
        directory: String,
        source: instant_acme::Error,
    },
    #[error("cannot read the ACME root certificate {path}: {why}")]
    AcmeRoot { path: String, why: String },
    #[error("the ACME order for {name} failed: {source}")]
    Order {
        name: String,
        source: instant_acme::Error,
    },
    #[error("the ACME server offers no {challenge} challenge for {name}; set acme_challenge to the other kind")]
    NoChallenge {
        name: String,
        challenge: AcmeChallenge,
    },
    #[error("the CA did not validate {name}: {detail}")]
    NotValidated { name: String, detail: String },
    #[error("the certificate for {name} cannot be used: {why}")]
    BadCertificate { name: String, why: String },
    #[error("cannot make the TLS-ALPN-01 certificate for {name}: {why}")]
    ChallengeCertificate { name: String, why: String },
    #[error("the hourly budget of certificate orders is spent; {name} waits for the next hour")]
    Budget { name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes ring the process's rustls crypto provider (the one provider of the
/// whole build), so nothing that builds a rustls config without naming one
/// (instant-acme's HTTP client) has to guess. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The rustls configuration of the HTTPS listener: certificates from
/// `resolver`, ALPN `h2` (preferred), `http/1.1` and `acme-tls/1` (only
/// TLS-ALPN-01 validations ask for it).
pub fn server_config(resolver: Arc<CertResolver>) -> Arc<rustls::ServerConfig> {
    // AES-128-GCM first, and the server's order over the client's (as Go
    // does): as strong as TLS 1.3 needs (browsers' first choice too), and
    // cheaper per record than AES-256, which ring lists first and OpenSSL
    // clients ask for first.
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_128_gcm_is_chosen_whatever_the_client_lists_first() {
        let config = server_config(Arc::new(CertResolver::new("example.com")));
        assert!(config.ignore_client_order);
        assert_eq!(
            config.crypto_provider().cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()]
        );
    }
}
