//! What HTTPS changes about serving: port 80 answers ACME HTTP-01 tokens and
//! sends hosts that have a certificate to HTTPS (301, path and query kept);
//! HTTPS responses carry `Strict-Transport-Security`.
//!
//! A host with no certificate yet (the CA is down, or the order is still
//! running) keeps being served over plain HTTP rather than redirected to a
//! handshake that would fail: the site stays reachable while `tls` retries.

use std::sync::Arc;

use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::tls::{CertResolver, Http01Tokens};

use super::responses;

/// What the HTTP layer needs when HTTPS is on.
pub struct HttpsFront {
    /// The HTTPS port, for redirects (omitted from the URL when 443).
    pub port: u16,
    pub resolver: Arc<CertResolver>,
    pub http01: Arc<Http01Tokens>,
    /// The `Strict-Transport-Security` value; `None` when max-age is 0.
    pub hsts: Option<HeaderValue>,
}

impl HttpsFront {
    pub fn hsts_header(max_age_secs: u64) -> Option<HeaderValue> {
        (max_age_secs > 0).then(|| {
            HeaderValue::from_str(&format!("max-age={max_age_secs}")).expect("ASCII header")
        })
    }

    /// What the plain HTTP listener answers itself, before routing: a
    /// pending HTTP-01 token, or a redirect to HTTPS. `None`: serve as usual.
    pub fn plain_answer<B>(&self, req: &hyper::Request<B>) -> Option<Response> {
        let path = req.uri().path();
        if path.starts_with(crate::tls::http01::HTTP01_PREFIX) {
            return Some(match self.http01.answer(path) {
                Some(key_authorization) => responses::text_owned(StatusCode::OK, key_authorization),
                None => responses::text(StatusCode::NOT_FOUND, "no such ACME challenge\n"),
            });
        }
        let host = host_name(req.headers())?;
        if !self.resolver.has_certificate(host) {
            return None;
        }
        let port = match self.port {
            443 => String::new(),
            p => format!(":{p}"),
        };
        let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let location = format!("https://{host}{port}{path_and_query}");
        let mut res = responses::text_owned(
            StatusCode::MOVED_PERMANENTLY,
            format!("this site is served over HTTPS: {location}\n"),
        );
        if let Ok(value) = HeaderValue::from_str(&location) {
            res.headers_mut().insert(header::LOCATION, value);
        }
        Some(res)
    }
}

/// The name in the `Host` header (HTTP/1) or the URI's authority (HTTP/2),
/// without a port.
fn host_name(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front() -> HttpsFront {
        let resolver = Arc::new(CertResolver::new("example.com"));
        let (chain, key) = crate::tls::certs::tests::self_signed("blog.example.com");
        let cert = crate::tls::certs::load("blog.example.com", &chain, &key).unwrap();
        resolver.install("blog.example.com", cert.key);
        HttpsFront {
            port: 8443,
            resolver,
            http01: Arc::new(Http01Tokens::default()),
            hsts: HttpsFront::hsts_header(60),
        }
    }

    fn get(host: &str, target: &str) -> hyper::Request<()> {
        hyper::Request::get(target)
            .header("host", host)
            .body(())
            .unwrap()
    }

    #[test]
    fn certified_hosts_are_redirected_with_path_and_query() {
        let front = front();
        let res = front
            .plain_answer(&get("blog.example.com:80", "/a/b?x=1"))
            .expect("a redirect");
        assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            res.headers()[header::LOCATION],
            "https://blog.example.com:8443/a/b?x=1"
        );
        // No certificate (yet): served over plain HTTP as before.
        assert!(front.plain_answer(&get("new.example.com", "/")).is_none());
        assert!(front.plain_answer(&get("", "/")).is_none());
    }

    #[test]
    fn acme_tokens_are_answered_and_unknown_ones_are_404() {
        let front = front();
        front.http01.insert("tok", "tok.thumb");
        let path = |t: &str| format!("/.well-known/acme-challenge/{t}");
        let res = front
            .plain_answer(&get("blog.example.com", &path("tok")))
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = front
            .plain_answer(&get("blog.example.com", &path("nope")))
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(front.hsts.as_ref().unwrap(), "max-age=60");
        assert!(HttpsFront::hsts_header(0).is_none());
    }
}
