//! HTTP serving with warp: one filter takes every request, routes it by
//! host to a site, and answers from the in-memory [`catalog::SiteCatalog`].
//!
//! http is the outermost layer: it resolves the site once, then hands the
//! request and the site to static files, functions ([`functions`], the
//! HTTP glue of `crate::functions`) or realtime. No module below it
//! imports it (an architecture test checks).
//!
//! Request flow: `Host` → [`host::SiteResolver`] → site name → live
//! [`catalog::ServedSite`] → [`request_path::parse`] → [`static_files::resolve`]
//! → [`static_files::respond`]. Instance endpoints under `/_fazt/` come first.
//!
//! [`serve`] runs its own accept loop (hyper-util, as `warp::serve` does) so
//! that `/_ws` is handed to [`crate::realtime`] before warp sees it: warp's
//! own WebSocket filter cannot be given small buffers. Every other request
//! goes through the warp filter unchanged.

pub mod catalog;
pub mod functions;
pub mod host;
pub mod https;
pub mod request_path;
pub mod responses;
pub mod static_files;
mod strict;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio_util::either::Either;
use tower_service::Service;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::connections::{Connections, Full};
use crate::functions::FunctionPool;
use crate::refusals::{Refusal, Refusals};
use crate::shutdown::Shutdown;
use functions::FunctionRequest;

use crate::realtime::{self, ChannelHub};
use catalog::SiteCatalog;
use host::{HostRoute, SiteResolver};
use request_path::PathError;

/// The site whose index page answers for unknown hosts, when deployed.
pub const NOT_FOUND_SITE: &str = "404";

/// What the HTTP handlers share.
pub struct HttpState {
    pub catalog: Arc<SiteCatalog>,
    pub resolver: SiteResolver,
    pub started: Instant,
    pub functions: Arc<FunctionPool>,
    /// Largest request body a function accepts.
    pub function_body_limit: u64,
    pub realtime: Arc<ChannelHub>,
    /// How long a client may take to send a request's head, counted from
    /// the connection's start or the end of its previous response (so it
    /// is also the idle keep-alive timeout). `None`: no limit.
    pub header_timeout: Option<Duration>,
    /// How long a client may pause while sending a request body.
    pub body_timeout: Duration,
    /// Open connections, capped in total and per client address.
    pub connections: Arc<Connections>,
    /// Where refusals are counted for status (and logged, rate-limited).
    pub refusals: Arc<Refusals>,
    /// Set when HTTPS is on: port 80 then answers ACME tokens and redirects
    /// hosts with a certificate; HTTPS responses carry HSTS.
    pub https: Option<https::HttpsFront>,
}

/// How a listener's connections arrive.
#[derive(Clone)]
pub enum Transport {
    /// Plain HTTP/1.1 or HTTP/2 (prior knowledge), told apart by the preface.
    Plain,
    /// TLS first; ALPN then says `h2` or `http/1.1` (or `acme-tls/1`: a CA
    /// validating, done with the handshake).
    Tls(tokio_rustls::TlsAcceptor),
}

/// Largest request head buffered for one connection: a client sending a
/// larger one gets 431. Bounds what a half-sent header can hold.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The parts of a request the handlers look at.
struct RequestHead<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
    remote: Option<SocketAddr>,
}

/// The client's address, in every request's extensions. `serve` runs its
/// own accept loop, so `warp::addr::remote()` is always `None`: use
/// `warp::ext::get::<ClientAddr>()`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The whole HTTP surface as one warp filter.
pub fn routes(
    state: Arc<HttpState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<ClientAddr>().map(|addr: Option<ClientAddr>| addr.map(|a| a.0)))
        .and(warp::body::stream())
        .and(warp::any().map(move || state.clone()))
        .then(
            |method: Method,
             path: FullPath,
             query: String,
             headers: HeaderMap,
             remote,
             body,
             state: Arc<HttpState>| async move {
                let head = RequestHead {
                    method: &method,
                    path: path.as_str(),
                    query: &query,
                    headers: &headers,
                    remote,
                };
                let mut res = handle(&state, &head, body).await;
                responses::add_security_headers(res.headers_mut());
                res
            },
        )
}

/// Serves `routes` on `listener` until shutdown begins, then lets in-flight
/// requests finish. Requests for `/_ws` go to the realtime hub; upgraded
/// connections are not waited for here (they end on the same shutdown).
/// Thousands of connections that each held a request head leave their
/// buffers free but resident once they go: when the open count falls to
/// half of a large peak, hand that memory back to the system.
async fn give_back_memory_after_bursts(connections: Arc<Connections>, shutdown: Shutdown) {
    let mut watch = crate::memory::PeakWatch::default();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        if watch.fell(connections.open()) {
            let _ = tokio::task::spawn_blocking(crate::memory::release_freed_memory).await;
        }
    }
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<HttpState>,
    shutdown: Shutdown,
    transport: Transport,
) {
    let filter = routes(state.clone());
    let graceful = GracefulShutdown::new();
    // One memory watcher for all listeners: the plain one starts it.
    if matches!(transport, Transport::Plain) {
        shutdown.spawn(give_back_memory_after_bursts(
            state.connections.clone(),
            shutdown.clone(),
        ));
    }
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let slot = match state.connections.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                refuse_connection(&stream, full, peer, &state.refusals);
                continue;
            }
        };
        // Realtime frames are small and latency matters; HTTP responses are
        // written whole, so this costs them nothing.
        let _ = stream.set_nodelay(true);
        let warp_service = warp::service(filter.clone());
        let header_timeout = state.header_timeout;
        let refusals = state.refusals.clone();
        let state = state.clone();
        let request_slot = slot.clone();
        let tls = matches!(transport, Transport::Tls(_));
        // HTTPS responses say to keep to HTTPS.
        let hsts = match (&state.https, tls) {
            (Some(front), true) => front.hsts.clone(),
            _ => None,
        };
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ClientAddr(peer));
            // An upgraded connection (a WebSocket) keeps its slot.
            req.extensions_mut().insert(request_slot.clone());
            let refused = strict::check(&mut req);
            // Port 80 with HTTPS on: ACME tokens and redirects come first.
            let plain_answer = match (&state.https, tls, &refused) {
                (Some(front), false, None) => front.plain_answer(&req),
                _ => None,
            };
            let ws = (req.uri().path() == realtime::WS_PATH).then(|| state.clone());
            let mut warp_service = warp_service.clone();
            let hsts = hsts.clone();
            async move {
                let mut res = match (refused.or(plain_answer), ws) {
                    (Some(mut res), _) => {
                        responses::add_security_headers(res.headers_mut());
                        res
                    }
                    (None, Some(state)) => realtime_request(&state, req),
                    (None, None) => warp_service.call(req).await?,
                };
                if let Some(hsts) = hsts {
                    res.headers_mut()
                        .insert(header::STRICT_TRANSPORT_SECURITY, hsts);
                }
                Ok::<_, std::convert::Infallible>(res)
            }
        });
        let watcher = graceful.watcher();
        let transport = transport.clone();
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            let io = match transport {
                Transport::Plain => {
                    // Before hyper parses a head, hyper-util reads the first
                    // bytes to tell HTTP/1 from HTTP/2, with no timer: a client
                    // that sends nothing (or a few bytes of the HTTP/2 preface)
                    // would wait there forever. Wait for enough to decide,
                    // within the header timeout.
                    if let Some(limit) = header_timeout {
                        if tokio::time::timeout(limit, protocol_decidable(&stream))
                            .await
                            .is_err()
                        {
                            refusals.record(Refusal::HeaderTimeout, peer);
                            return;
                        }
                    }
                    Either::Left(stream)
                }
                Transport::Tls(acceptor) => {
                    // The handshake counts against the header timeout too: a
                    // client that stalls in it holds a slot like a slow head.
                    let limit = header_timeout.unwrap_or(Duration::from_secs(3600));
                    let stream = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(err)) => {
                            tracing::debug!("TLS handshake with {peer} failed: {err}");
                            return;
                        }
                        Err(_) => {
                            refusals.record(Refusal::HeaderTimeout, peer);
                            return;
                        }
                    };
                    // ALPN decided the protocol, so hyper need not sniff it.
                    match stream.get_ref().1.alpn_protocol() {
                        // A CA validating TLS-ALPN-01: the handshake was all.
                        Some(crate::tls::ACME_TLS_ALPN) => return,
                        Some(b"h2") => builder = builder.http2_only(),
                        _ => builder = builder.http1_only(),
                    }
                    Either::Right(Box::new(stream))
                }
            };
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD_BYTES);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            let ended = watcher.watch(conn).await;
            drop(slot);
            if let Err(err) = ended {
                match err.downcast_ref::<hyper::Error>() {
                    Some(e) if e.is_timeout() => refusals.record(Refusal::HeaderTimeout, peer),
                    Some(e) if e.is_parse_too_large() => {
                        refusals.record(Refusal::HeadTooLarge, peer)
                    }
                    Some(e) if e.is_parse() => refusals.record(Refusal::MalformedRequest, peer),
                    _ => tracing::debug!("connection from {peer} ended with an error: {err}"),
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// `/_ws`: the site is resolved here, as for every request, and the
/// realtime module gets the request with its site.
fn realtime_request(state: &HttpState, req: hyper::Request<Incoming>) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let refuse = |status, why: &str| responses::json(status, &serde_json::json!({ "error": why }));
    let site = match state.resolver.resolve(&host) {
        HostRoute::Malformed => return refuse(StatusCode::BAD_REQUEST, "malformed Host header"),
        HostRoute::Unknown => None,
        HostRoute::Site(name) => state.catalog.site(&name),
    };
    let Some(site) = site else {
        return refuse(StatusCode::NOT_FOUND, "there is no site at this host");
    };
    let custom_domains = state.resolver.custom_domains().domains_of(&site.name);
    let target = realtime::connection::SiteTarget {
        name: &site.name,
        config: &site.config.realtime,
        host: &host,
        custom_domains: &custom_domains,
    };
    realtime::connection::accept(req, target, &state.realtime)
}

/// Turns away a connection over a cap: a short 503 if the socket takes it
/// at once (never waiting on a client that may be the flood), then close.
fn refuse_connection(
    stream: &tokio::net::TcpStream,
    full: Full,
    peer: SocketAddr,
    refusals: &Refusals,
) {
    let (kind, why) = match full {
        Full::Total => (
            Refusal::ConnectionsTotal,
            "this server has as many open connections as it allows; try again shortly\n",
        ),
        Full::PerAddress => (
            Refusal::ConnectionsPerAddress,
            "your address has as many open connections to this server as it allows; close some and try again\n",
        ),
    };
    refusals.record(kind, peer);
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{why}",
        why.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// Resolves once the first bytes of `stream` tell HTTP/1 from HTTP/2 (the
/// 24-byte HTTP/2 preface, or anything that departs from it), or it closed.
async fn protocol_decidable(stream: &tokio::net::TcpStream) {
    const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; 24];
    loop {
        match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] => return,
            // Part of the preface so far (a real HTTP/2 client sends it in one
            // packet): look again shortly. Peeking leaves the socket readable,
            // so waiting for readiness here would spin.
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Errors of `accept`: a peer that gave up is nothing; running out of file
/// descriptors (or similar) is waited out instead of spinning.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        err.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!("cannot accept connections: {err}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn handle<S, B>(state: &HttpState, req: &RequestHead<'_>, body: S) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let (method, raw_path, headers) = (req.method, req.path, req.headers);
    let head = *method == Method::HEAD;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let site_name = match state.resolver.resolve(host) {
        HostRoute::Malformed => {
            return responses::text(StatusCode::BAD_REQUEST, "malformed Host header\n")
        }
        HostRoute::Site(name) => Some(name),
        HostRoute::Unknown => None,
    };
    if let Some(rest) = raw_path.strip_prefix("/_fazt/") {
        return instance_endpoint(state, rest, site_name.as_deref());
    }
    let path = match request_path::parse(raw_path) {
        Ok(path) => path,
        Err(PathError::TooLong) => {
            return responses::text(StatusCode::URI_TOO_LONG, "the request path is too long\n")
        }
        Err(PathError::Invalid) => {
            return responses::text(StatusCode::BAD_REQUEST, "the request path is not valid\n")
        }
    };
    let site = site_name.and_then(|name| state.catalog.site(&name));
    if let Some(set) = site.as_ref().and_then(|s| s.functions.clone()) {
        if let Some(route) = set.route(&path.path) {
            let body = match read_body(state, req, body).await {
                Ok(body) => body,
                Err(res) => return res,
            };
            let request = FunctionRequest {
                method,
                path: raw_path,
                query: req.query,
                headers,
                body,
                ip: req.remote,
            };
            return functions::respond(&state.functions, set, route, request).await;
        }
    }
    if !(head || *method == Method::GET) {
        return method_not_allowed(method);
    }
    if let Some(site) = site {
        if let Some((file, status)) = static_files::resolve(&site, &path) {
            return static_files::respond(&state.catalog, &site, &file, status, head, headers)
                .await;
        }
        // The site exists (and has no 404.html): the page is what is missing.
        return responses::html(
            StatusCode::NOT_FOUND,
            responses::missing_page(&site.name, raw_path),
        );
    }
    not_found(state, host, head, headers).await
}

/// Collects a function's request body up to its limit, or answers 413 (at
/// once when `Content-Length` says so) or 408 when the client pauses longer
/// than the body timeout.
async fn read_body<S, B>(
    state: &HttpState,
    req: &RequestHead<'_>,
    body: S,
) -> Result<Bytes, Response>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let limit = state.function_body_limit;
    let too_large = || {
        responses::json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &serde_json::json!({ "error": format!("the request body is larger than the limit of {limit} bytes") }),
        )
    };
    let declared = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    loop {
        let chunk = match tokio::time::timeout(state.body_timeout, body.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => {
                let who = req.remote.map(|a| a.to_string()).unwrap_or_default();
                state.refusals.record(Refusal::BodyTimeout, who);
                let why = format!(
                    "the request body stalled: nothing arrived for {} s",
                    state.body_timeout.as_secs()
                );
                let mut res = responses::json(
                    StatusCode::REQUEST_TIMEOUT,
                    &serde_json::json!({ "error": why }),
                );
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Err(res);
            }
        };
        let mut chunk = chunk.map_err(|_| {
            responses::text(
                StatusCode::BAD_REQUEST,
                "the request body could not be read\n",
            )
        })?;
        if collected.len() as u64 + chunk.remaining() as u64 > limit {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            collected.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(collected.freeze())
}

/// The instance's 404 for a host that is no site: the `404` site's index
/// page if deployed, else a built-in page.
async fn not_found(state: &HttpState, host: &str, head: bool, headers: &HeaderMap) -> Response {
    if let Some(site) = state.catalog.site(NOT_FOUND_SITE) {
        if let Some(file) = site.file("index.html").cloned() {
            let status = StatusCode::NOT_FOUND;
            return static_files::respond(&state.catalog, &site, &file, status, head, headers)
                .await;
        }
    }
    responses::html(StatusCode::NOT_FOUND, responses::unknown_site_page(host))
}

fn instance_endpoint(state: &HttpState, rest: &str, site: Option<&str>) -> Response {
    match rest {
        "health" => responses::json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "ok",
                "version": fazt_proto::FAZT_VERSION,
                "site": site,
                "uptime_secs": state.started.elapsed().as_secs(),
            }),
        ),
        _ => responses::json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "no such Fazt endpoint" }),
        ),
    }
}

fn method_not_allowed(method: &Method) -> Response {
    let status = if *method == Method::OPTIONS {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::METHOD_NOT_ALLOWED
    };
    let mut res = if status == StatusCode::NO_CONTENT {
        responses::empty(status)
    } else {
        responses::text(status, "this method is not allowed here; use GET or HEAD\n")
    };
    res.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    res
}
