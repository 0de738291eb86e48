//! The HTTPS client the ACME account talks to its CA with.
//!
//! instant-acme's own client trusts either the platform's roots or one
//! given root instead of them. `--acme-root PEM` is meant as an *extra*
//! root: a private CA (or the tests' pebble) is trusted, and so is every
//! CA the machine already trusts. So the client here verifies with the
//! platform verifier (`rustls-platform-verifier`, as instant-acme does),
//! given the extra root.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// An HTTPS client trusting the platform's roots and `extra_root`.
pub struct AcmeHttpClient(Client<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>);

impl AcmeHttpClient {
    /// Reads `extra_root` (PEM, one or more certificates).
    pub fn with_extra_root(extra_root: &Path) -> Result<AcmeHttpClient, String> {
        let roots = CertificateDer::pem_file_iter(extra_root)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read it as PEM certificates: {e}"))?;
        if roots.is_empty() {
            return Err("it holds no certificate".into());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
                .map_err(|e| format!("cannot set up certificate checks with it: {e}"))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            // Not dangerous: the platform verifier checks chains and names,
            // with the extra root added to the platform's.
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(AcmeHttpClient(
            Client::builder(TokioExecutor::new()).build(connector),
        ))
    }
}

impl HttpClient for AcmeHttpClient {
    fn request(
        &self,
        req: hyper::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let response = self.0.request(req);
        Box::pin(async move {
            response
                .await
                .map(BytesResponse::from)
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_root_must_be_a_pem_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = AcmeHttpClient::with_extra_root(&empty).err().unwrap();
        assert_eq!(err, "it holds no certificate");
        let missing = dir.path().join("missing.pem");
        let err = AcmeHttpClient::with_extra_root(&missing).err().unwrap();
        assert!(
            err.starts_with("cannot read it as PEM certificates"),
            "{err}"
        );

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ca.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let root = dir.path().join("root.pem");
        std::fs::write(&root, cert.pem()).unwrap();
        assert!(AcmeHttpClient::with_extra_root(&root).is_ok());
    }
}
