//! Static file responses: path resolution inside a site, conditional
//! requests, ranges, precompressed variants and the headers that go with them.

use std::sync::Arc;

use bytes::Bytes;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::catalog::{ServedFile, ServedSite, SiteCatalog, MAX_CACHED_BODY};
use super::request_path::SitePath;
use super::responses;
use crate::store::Encoding;

/// Finds the file that answers `path` in `site`, and the status to send it with.
pub fn resolve(site: &ServedSite, path: &SitePath) -> Option<(Arc<ServedFile>, StatusCode)> {
    let p = path.path.as_str();
    let found = if p.is_empty() {
        site.file("index.html")
    } else if path.trailing_slash {
        site.file(&format!("{p}/index.html"))
    } else {
        site.file(p)
            .or_else(|| site.file(&format!("{p}.html")))
            .or_else(|| site.file(&format!("{p}/index.html")))
    };
    if let Some(file) = found {
        return Some((file.clone(), StatusCode::OK));
    }
    if site.config.spa && !has_extension(p) {
        if let Some(index) = site.file("index.html") {
            return Some((index.clone(), StatusCode::OK));
        }
    }
    site.file("404.html")
        .map(|f| (f.clone(), StatusCode::NOT_FOUND))
}

/// SPA fallback applies to routes, not to missing assets: `/app/settings`
/// gets `index.html`, `/missing.js` stays a 404.
fn has_extension(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

/// Builds the response for one file of a site.
pub async fn respond(
    catalog: &SiteCatalog,
    site: &ServedSite,
    file: &ServedFile,
    status: StatusCode,
    head: bool,
    headers: &HeaderMap,
) -> Response {
    let ok = status == StatusCode::OK;
    if ok && not_modified(site, file, headers) {
        let mut res = responses::empty(StatusCode::NOT_MODIFIED);
        let h = res.headers_mut();
        h.insert(header::ETAG, file.etag.clone());
        h.insert(header::LAST_MODIFIED, site.last_modified.clone());
        h.insert(header::CACHE_CONTROL, file.cache_control.clone());
        if file.compressible {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        return res;
    }

    let range = if ok {
        requested_range(file, site, headers)
    } else {
        RangeRequest::None
    };
    let (status, start, end, encoding) = match range {
        RangeRequest::Unsatisfiable => {
            let mut res = responses::text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "the requested range is outside the file\n",
            );
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{}", file.size)).expect("range"),
            );
            return res;
        }
        RangeRequest::Satisfiable(start, end) => (StatusCode::PARTIAL_CONTENT, start, end, None),
        RangeRequest::None => {
            let encoding = choose_encoding(file, headers);
            let size = match encoding {
                Some(Encoding::Brotli) => file.brotli_size.unwrap_or(file.size),
                Some(Encoding::Gzip) => file.gzip_size.unwrap_or(file.size),
                None => file.size,
            };
            (status, 0, size, encoding)
        }
    };

    let mut res = if head {
        Response::new(Bytes::new().into())
    } else if encoding.is_some() || file.size <= MAX_CACHED_BODY {
        match catalog.body(file, encoding).await {
            Ok(bytes) if status == StatusCode::PARTIAL_CONTENT => {
                Response::new(bytes.slice(start as usize..end as usize).into())
            }
            Ok(bytes) => Response::new(bytes.into()),
            Err(err) => {
                tracing::error!(site = %site.name, error = %err, "cannot read a file body");
                return responses::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
            }
        }
    } else {
        let stream = catalog.stream_range(file.hash, start, end);
        warp::reply::stream(stream).into_response()
    };
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, file.content_type.clone());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::CACHE_CONTROL, file.cache_control.clone());
    h.insert(header::LAST_MODIFIED, site.last_modified.clone());
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::ETAG,
        match encoding {
            Some(Encoding::Brotli) => file.etag_brotli.clone(),
            Some(Encoding::Gzip) => file.etag_gzip.clone(),
            None => file.etag.clone(),
        },
    );
    if let Some(encoding) = encoding {
        h.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.token()),
        );
    }
    if file.compressible {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {}-{}/{}", start, end - 1, file.size))
                .expect("range"),
        );
    }
    res
}

/// `If-None-Match` (weak comparison, any of our representations) wins over
/// `If-Modified-Since`, as RFC 9110 §13.2.2 orders them.
fn not_modified(site: &ServedSite, file: &ServedFile, headers: &HeaderMap) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let Ok(inm) = inm.to_str() else { return false };
        return inm.split(',').any(|tag| {
            let tag = tag.trim();
            if tag == "*" {
                return true;
            }
            let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
            let base = tag
                .strip_suffix("-gz")
                .or_else(|| tag.strip_suffix("-br"))
                .unwrap_or(tag);
            base == file.tag
        });
    }
    if let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    {
        let since = since
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return site.modified_secs <= since;
    }
    false
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    None,
    Satisfiable(u64, u64),
    Unsatisfiable,
}

/// A single `bytes=` range. Multiple ranges and malformed headers are
/// ignored (the whole file is sent), as RFC 9110 allows.
fn requested_range(file: &ServedFile, site: &ServedSite, headers: &HeaderMap) -> RangeRequest {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeRequest::None;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let matches = if if_range.starts_with('"') {
            if_range == file.etag.to_str().unwrap_or("")
        } else {
            if_range == site.last_modified.to_str().unwrap_or("")
        };
        if !matches {
            return RangeRequest::None;
        }
    }
    parse_range(range, file.size)
}

fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::None;
    };
    if spec.contains(',') {
        return RangeRequest::None;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::None;
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => RangeRequest::None,
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(n) if size > 0 => RangeRequest::Satisfiable(size.saturating_sub(n), size),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::None,
        },
        (false, open_end) => {
            let Some(start) = parse(first) else {
                return RangeRequest::None;
            };
            let end = if open_end {
                size
            } else {
                match parse(last) {
                    Some(last) if last >= start => (last + 1).min(size),
                    _ => return RangeRequest::None,
                }
            };
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Satisfiable(start, end)
            }
        }
    }
}

/// Picks the best precomputed variant the client accepts: brotli, then gzip.
fn choose_encoding(file: &ServedFile, headers: &HeaderMap) -> Option<Encoding> {
    if file.gzip_size.is_none() && file.brotli_size.is_none() {
        return None;
    }
    let accept = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let (mut br, mut gzip, mut star) = (None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.to_ascii_lowercase().as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => star = Some(q),
            _ => {}
        }
    }
    let accepts = |q: Option<f32>| q.or(star).is_some_and(|q| q > 0.0);
    if file.brotli_size.is_some() && accepts(br) {
        Some(Encoding::Brotli)
    } else if file.gzip_size.is_some() && accepts(gzip) {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let cases = [
            ("bytes=0-9", 100, Satisfiable(0, 10)),
            ("bytes=90-", 100, Satisfiable(90, 100)),
            ("bytes=-10", 100, Satisfiable(90, 100)),
            ("bytes=-500", 100, Satisfiable(0, 100)),
            ("bytes=95-200", 100, Satisfiable(95, 100)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=5-1", 100, None),
            ("bytes=0-1,5-6", 100, None),
            ("items=0-1", 100, None),
            ("bytes=x-y", 100, None),
            ("bytes=-", 100, None),
        ];
        for (header, size, want) in cases {
            assert_eq!(parse_range(header, size), want, "{header} of {size}");
        }
    }
}
