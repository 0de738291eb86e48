//! Small response builders shared by the HTTP handlers.

use bytes::Bytes;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::StatusCode;
use warp::reply::Response;

/// A response with no body.
pub fn empty(status: StatusCode) -> Response {
    let mut res = Response::new(Bytes::new().into());
    *res.status_mut() = status;
    res
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &'static str) -> Response {
    with_body(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

/// A plain-text response made at run time.
pub fn text_owned(status: StatusCode, body: String) -> Response {
    with_body(status, "text/plain; charset=utf-8", Bytes::from(body))
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut res = with_body(status, "application/json", Bytes::from(value.to_string()));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// An HTML response that must not be cached.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut res = with_body(status, "text/html; charset=utf-8", Bytes::from(body));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn with_body(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let len = body.len();
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    res
}

/// Headers every response carries: no MIME sniffing, no framing by other
/// origins, and referrers trimmed when leaving the site.
pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
}

/// The instance's own "no such site" page, used when no `404` site is deployed.
pub fn unknown_site_page(host: &str) -> String {
    let host = html_escape(host);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         code{{background:#f3f3f3;padding:.1em .3em;border-radius:3px}}</style></head>\
         <body><h1>404: nothing here</h1><p>This Fazt instance serves no site or page at <code>{host}</code>.</p>\
         <p>Deploy one with <code>faztctl deploy DIR --site NAME</code>.</p></body></html>\n"
    )
}

/// A site's missing page, when the site has no `404.html` of its own.
pub fn missing_page(site: &str, path: &str) -> String {
    let (site, path) = (html_escape(site), html_escape(path));
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Page not found</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         code{{background:#f3f3f3;padding:.1em .3em;border-radius:3px}}</style></head>\
         <body><h1>404: page not found</h1><p>The site <code>{site}</code> has no page at <code>{path}</code>.</p>\
         <p><a href=\"/\">Go to the site's home page</a>. \
         (Site owners: add a <code>404.html</code> to the site to show your own page here.)</p></body></html>\n"
    )
}

fn html_escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}
