//! Certificates as rustls serves them: a chain and key in PEM (as ACME
//! gives them and the store keeps them) turned into a `CertifiedKey`, the
//! validity read from the leaf, and the challenge certificate of
//! TLS-ALPN-01 (RFC 8737).

use std::sync::Arc;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// A chain and key ready to serve, with the leaf's validity.
pub struct LoadedCertificate {
    pub key: Arc<CertifiedKey>,
    /// Unix seconds.
    pub not_before: u64,
    pub not_after: u64,
}

impl LoadedCertificate {
    /// When to renew: two thirds into the validity (Let's Encrypt's 90 days
    /// → day 60), leaving a third for retries.
    pub fn renew_at(&self) -> u64 {
        let lifetime = self.not_after.saturating_sub(self.not_before);
        self.not_before + lifetime / 3 * 2
    }
}

/// Parses `chain_pem` (leaf first) and `key_pem` for `name`.
pub fn load(name: &str, chain_pem: &str, key_pem: &str) -> Result<LoadedCertificate, TlsError> {
    let bad = |why: String| TlsError::BadCertificate {
        name: name.to_string(),
        why,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("the chain is not PEM: {e}")))?;
    let leaf = chain
        .first()
        .ok_or_else(|| bad("the chain has no certificate".into()))?;
    // The error never quotes the key.
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| bad("the private key is not PEM".into()))?;
    let signing = any_supported_type(&key)
        .map_err(|_| bad("the private key is of a kind rustls cannot sign with".into()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| bad(format!("the leaf certificate cannot be read: {e}")))?;
    let validity = parsed.validity();
    let secs = |t: i64| u64::try_from(t).unwrap_or(0);
    Ok(LoadedCertificate {
        not_before: secs(validity.not_before.timestamp()),
        not_after: secs(validity.not_after.timestamp()),
        key: Arc::new(CertifiedKey::new(chain, signing)),
    })
}

/// The self-signed certificate that answers a TLS-ALPN-01 challenge for
/// `name`: it carries the SHA-256 of the key authorization in the critical
/// `acmeIdentifier` extension, and is served only to clients that ask for
/// the `acme-tls/1` protocol.
pub fn alpn_challenge(
    name: &str,
    key_authorization_sha256: &[u8],
) -> Result<Arc<CertifiedKey>, TlsError> {
    let failed = |e: rcgen::Error| TlsError::ChallengeCertificate {
        name: name.to_string(),
        why: e.to_string(),
    };
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(failed)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(
        key_authorization_sha256,
    )];
    let key_pair = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key_pair).map_err(failed)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let signing = any_supported_type(&key).map_err(|e| TlsError::ChallengeCertificate {
        name: name.to_string(),
        why: e.to_string(),
    })?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate for `name`, as PEM (chain, key).
    pub(crate) fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn loads_pem_and_reads_the_validity() {
        let (chain, key) = self_signed("blog.example.com");
        let loaded = load("blog.example.com", &chain, &key).unwrap();
        assert!(loaded.not_after > loaded.not_before);
        assert!(loaded.renew_at() > loaded.not_before && loaded.renew_at() < loaded.not_after);
        let err = load("x", "not pem", &key).err().unwrap().to_string();
        assert!(err.contains("certificate for x"), "{err}");
        let err = load("x", &chain, "SECRET").err().unwrap().to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn a_challenge_certificate_is_made() {
        assert!(alpn_challenge("blog.example.com", &[7; 32]).is_ok());
    }
}
