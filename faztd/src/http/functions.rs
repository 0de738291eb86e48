//! Functions over HTTP: build the request object, run the function on the
//! pool, turn its answer (or its failure) into an HTTP response.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use warp::http::header::{
    HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER,
};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::responses;
use crate::functions::invocation::{FnError, FnRequest, Invocation};
use crate::functions::pool::FunctionPool;
use crate::functions::routes::{FunctionSet, RouteMatch};

pub struct FunctionRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub ip: Option<SocketAddr>,
}

pub async fn respond(
    pool: &FunctionPool,
    set: Arc<FunctionSet>,
    route: RouteMatch,
    req: FunctionRequest<'_>,
) -> Response {
    // Repeated headers are joined with ", " (RFC 9110 §5.3), in order.
    let mut headers: Vec<(String, String)> = Vec::with_capacity(req.headers.len());
    for (name, value) in req.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some((_, existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            None => headers.push((name.as_str().to_string(), value.into_owned())),
        }
    }
    // The first value of a repeated query parameter wins.
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(req.query.as_bytes()) {
        if !query.iter().any(|(seen, _)| *seen == k) {
            query.push((k.into_owned(), v.into_owned()));
        }
    }
    let request = FnRequest {
        method: req.method.as_str().to_string(),
        path: req.path.to_string(),
        query,
        params: route.params,
        headers,
        body: String::from_utf8_lossy(&req.body).into_owned(),
        ip: req.ip.map(|a| a.ip().to_string()),
    };
    let site = set.site.clone();
    let module = route.module.clone();
    let result = pool
        .invoke(Invocation {
            set,
            module: route.module,
            request,
        })
        .await;
    match result {
        Ok(answer) => {
            // The daemon frames responses itself: an informational status
            // (1xx) is no final answer, so it is not passed on.
            let status = match StatusCode::from_u16(answer.status) {
                Ok(status) if !status.is_informational() => status,
                _ => {
                    pool.logs.append(
                        &site,
                        "warn",
                        &format!(
                            "{module}: returned status {}, which is not a final HTTP status; answered 500",
                            answer.status
                        ),
                    );
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            let content_type = if answer.json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            let mut res = Response::new(Bytes::from(answer.body).into());
            *res.status_mut() = status;
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            for (name, value) in &answer.headers {
                match (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) {
                    // Framing and connection headers are the daemon's: a
                    // function's `content-length: 0` could otherwise end its
                    // response early and smuggle a second one after it.
                    (Ok(name), Ok(_)) if is_framing(&name) => pool.logs.append(
                        &site,
                        "warn",
                        &format!("{module}: dropped the response header {name:?} (faztd frames responses itself)"),
                    ),
                    (Ok(name), Ok(value)) => {
                        h.insert(name, value);
                    }
                    _ => pool.logs.append(
                        &site,
                        "warn",
                        &format!("{module}: dropped the invalid response header {name:?}"),
                    ),
                }
            }
            res
        }
        Err(err) => failure(pool, &site, &module, err),
    }
}

/// Headers that say how the message is framed or how the connection is
/// managed (RFC 9110 §7.6.1, RFC 9112 §6): never taken from a function.
fn is_framing(name: &HeaderName) -> bool {
    use warp::http::header::{CONNECTION, CONTENT_LENGTH, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
    [
        CONTENT_LENGTH,
        TRANSFER_ENCODING,
        CONNECTION,
        TE,
        TRAILER,
        UPGRADE,
    ]
    .contains(name)
        || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// A call refused for want of room: 503 and a hint to come back in a
/// second. Counted in status (by the pool), not written to the site's log:
/// a flood of them must not push out the lines that matter.
fn busy(why: &str) -> Response {
    let mut res = responses::json(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": why }));
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// The client gets a short JSON error; the site's log gets the details.
fn failure(pool: &FunctionPool, site: &str, module: &str, err: FnError) -> Response {
    let limits = pool.limits;
    let (status, public) = match &err {
        FnError::Timeout => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the function ran longer than {:.1} s and was stopped",
                limits.timeout.as_secs_f64()
            ),
        ),
        FnError::OutOfMemory => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the function used more than {} MiB of memory and was stopped",
                limits.memory_bytes / (1024 * 1024)
            ),
        ),
        FnError::Busy => return busy("all function workers are busy; try again shortly"),
        FnError::SiteBusy => return busy(
            "the site is busy: it has as many function calls running and waiting as it may; try again shortly",
        ),
        FnError::Exception(_) | FnError::BadModule(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the function failed; its log says why (faztctl logs SITE)".to_string(),
        ),
        FnError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while running the function".to_string(),
        ),
    };
    pool.logs.append(site, "error", &format!("{module}: {err}"));
    tracing::warn!(site, module, error = %err, "function failed");
    responses::json(status, &json!({ "error": public }))
}
