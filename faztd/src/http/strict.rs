//! What RFC 9112 asks of a server before it routes a request, checked in
//! one place: the request line's method and target, the Host field, and
//! how the body is framed (Transfer-Encoding and Content-Length, the two
//! fields request smuggling plays on). hyper has parsed the request; this
//! refuses what it lets through but a careful server should not.
//!
//! Each case is compared with nginx in tests/tests/http_strict.rs, which
//! lists where the two answer differently and why.

use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::responses;

/// What RFC 9112 asks of a server before routing (§3.2, §3.2.2): one Host
/// field at most, and an absolute-form target (`GET http://host/path`)
/// names the host instead of the Host field. CONNECT (authority-form) is for
/// proxies. Returns the refusal, if any; normalises the Host otherwise.
pub(super) fn check<B>(req: &mut hyper::Request<B>) -> Option<Response> {
    if req.method() == Method::CONNECT {
        let mut res = responses::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is for proxies; this is a web server\n",
        );
        res.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"),
        );
        return Some(res);
    }
    if req.headers().get_all(header::HOST).iter().count() > 1 {
        return Some(responses::text(
            StatusCode::BAD_REQUEST,
            "a request may carry only one Host header\n",
        ));
    }
    if let Some(refused) = check_framing(req.headers()) {
        return Some(refused);
    }
    if let Some(authority) = req.uri().authority().map(|a| a.as_str().to_string()) {
        match HeaderValue::from_str(&authority) {
            Ok(host) => {
                req.headers_mut().insert(header::HOST, host);
            }
            Err(_) => {
                return Some(responses::text(
                    StatusCode::BAD_REQUEST,
                    "malformed request target\n",
                ))
            }
        }
    }
    None
}

/// The body framing rules of RFC 9112 §6: the only transfer coding faztd
/// decodes is `chunked`, applied once and last. hyper refuses a request
/// whose last coding is not chunked (400) and Transfer-Encoding in
/// HTTP/1.0; with both Transfer-Encoding and Content-Length it drops the
/// length, reads the chunks and closes the connection afterwards (§6.3), so
/// a front proxy that read the length cannot smuggle a second request
/// through. What it lets through is an unknown coding before `chunked`
/// (`gzip, chunked`: 501, as §6.1 says for a coding the server does not
/// understand) and `chunked` twice (400). The refusal closes the
/// connection: where this body ends is unknown.
fn check_framing(headers: &HeaderMap) -> Option<Response> {
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(|coding| coding.trim_ascii())
        .filter(|coding| !coding.is_empty())
        .peekable();
    codings.peek()?;
    let refuse = |status, why: &'static str| {
        let mut res = responses::text(status, why);
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        Some(res)
    };
    let mut chunked = 0;
    for coding in codings {
        if coding.eq_ignore_ascii_case(b"chunked") {
            chunked += 1;
        } else {
            return refuse(
                StatusCode::NOT_IMPLEMENTED,
                "the only transfer coding this server accepts is chunked\n",
            );
        }
    }
    if chunked > 1 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "chunked may be applied to a body only once\n",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(fields: &[(&str, &str)]) -> Option<u16> {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        check_framing(&headers).map(|res| res.status().as_u16())
    }

    #[test]
    fn only_one_chunked_and_nothing_else() {
        assert_eq!(framing(&[]), None);
        assert_eq!(framing(&[("content-length", "5")]), None);
        assert_eq!(framing(&[("transfer-encoding", "chunked")]), None);
        assert_eq!(framing(&[("transfer-encoding", " Chunked ")]), None);
        assert_eq!(framing(&[("transfer-encoding", "gzip")]), Some(501));
        assert_eq!(
            framing(&[("transfer-encoding", "gzip, chunked")]),
            Some(501)
        );
        assert_eq!(
            framing(&[("transfer-encoding", "chunked, chunked")]),
            Some(400)
        );
        assert_eq!(
            framing(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked")
            ]),
            Some(400)
        );
    }
}
