//! One WebSocket connection: the upgrade, then a single task that reads the
//! client's frames, forwards its channels' frames, and heartbeats.
//!
//! The upgrade is done here rather than by `warp::ws()` because warp gives
//! tungstenite its default 128 KiB read buffer, which is zero-filled on the
//! first read: 10,000 idle connections would hold 1.3 GB. Ours is 4 KiB.
//!
//! Backpressure: the client has a bounded queue per channel (`queue.rs`). A
//! client that falls a whole queue behind is told `Lagged` and closed with
//! code 4001 and a reason; a write that stalls for a heartbeat period ends
//! the connection. Neither slows anyone else.
//!
//! A WebSocket is a connection like any other: it keeps the HTTP layer's
//! connection [`Slot`] for its whole life (so it counts against
//! `http_max_connections` and the per-address cap), and an upgrade that
//! does not complete within `http_header_timeout_secs` is given up.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::time::{timeout, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamMap;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::{Method, Request, StatusCode};
use warp::reply::Response;

use super::config::SiteRealtime;
use super::frames::{self, ClientFrame, ErrorCode};
use super::hub::{ChannelHub, ClientHandle, Closing, RealtimeError};
use super::queue::Delivery;
use crate::connections::Slot;
use crate::refusals::Refusal;

/// The path of the realtime endpoint on every site host.
pub const WS_PATH: &str = "/_ws";

/// Close code for a client too slow to keep up (private-use range).
pub const CLOSE_TOO_SLOW: u16 = 4001;

/// Frames forwarded per write before flushing.
const BATCH: usize = 64;

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The site a realtime request is for, as the HTTP layer resolved it.
pub struct SiteTarget<'a> {
    pub name: &'a str,
    /// The live version's `realtime` section.
    pub config: &'a SiteRealtime,
    /// The `Host` the client reached the site at (for the origin check).
    pub host: &'a str,
    /// The site's custom domains: its pages there are its own too.
    pub custom_domains: &'a [String],
}

/// Answers a request for [`WS_PATH`] on `site`: upgrades it, or says why not.
pub fn accept(mut req: Request<Incoming>, site: SiteTarget<'_>, hub: &Arc<ChannelHub>) -> Response {
    let headers = req.headers();
    let wants_ws = req.method() == Method::GET
        && has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::UPGRADE, "websocket");
    if !wants_ws {
        let mut res = refuse(
            StatusCode::UPGRADE_REQUIRED,
            "this is the realtime endpoint: connect with a WebSocket client",
        );
        res.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return res;
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut res = refuse(
            StatusCode::BAD_REQUEST,
            "only WebSocket version 13 is spoken",
        );
        res.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return res;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing");
    };
    let accept_key = derive_accept_key(key.as_bytes());
    // Browsers send Origin with every WebSocket handshake; other clients
    // (curl, servers, faztctl) usually do not, and are let in.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !site
            .config
            .allows_origin(origin, site.host, site.custom_domains)
        {
            return refuse(
                StatusCode::FORBIDDEN,
                &format!(
                    "pages at {origin:?} may not connect to this site's realtime endpoint; \
                     list the origin in fazt.json realtime.allowedOrigins"
                ),
            );
        }
    }
    let client = match hub.connect(site.name) {
        Ok(client) => client,
        Err(err) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // The connection's place in the caps goes with the WebSocket: the HTTP
    // connection that held it ends once the upgrade completes.
    let slot = req.extensions_mut().remove::<Slot>();
    let handshake_timeout = hub.limits().handshake_timeout;
    let shutdown = hub.shutdown().clone();
    hub.shutdown().spawn(async move {
        let upgraded = tokio::select! {
            upgraded = timeout(handshake_timeout, on_upgrade) => upgraded,
            () = shutdown.cancelled() => return,
        };
        match upgraded {
            Ok(Ok(upgraded)) => {
                let config = socket_config(client.hub().limits().max_frame_bytes);
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                Connection::new(ws, client, slot).run().await;
            }
            Ok(Err(err)) => tracing::debug!("websocket upgrade failed: {err}"),
            Err(_) => client.hub().refusals.record(
                Refusal::WsHandshakeTimeout,
                format_args!("site {}", client.site()),
            ),
        }
    });
    let mut res = Response::new(bytes::Bytes::new().into());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept_key).expect("base64 is a valid header"),
    );
    res
}

/// A refusal as JSON, like every error the HTTP layer gives.
fn refuse(status: StatusCode, why: &str) -> Response {
    let body = serde_json::json!({ "error": why }).to_string();
    let mut res = Response::new(bytes::Bytes::from(body).into());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Small buffers for idle connections; frames over the limit are read (up
/// to a hard cap) so they can be answered with an error frame rather than
/// a dropped connection.
fn socket_config(max_frame_bytes: usize) -> WebSocketConfig {
    let hard_cap = max_frame_bytes.saturating_mul(4).max(1 << 20);
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap))
}

/// How a connection ends.
enum Ending {
    /// Send a close frame with this code and reason.
    Close(u16, String),
    /// A frame beyond the hard cap: close with 1009, then discard what the
    /// client is still sending, so the close frame is not lost to a reset.
    Oversized(String),
    /// The peer is gone, closed, or stalled: nothing more to say.
    Gone,
}

struct Connection {
    ws: Socket,
    client: ClientHandle,
    subs: StreamMap<String, ReceiverStream<Delivery>>,
    heartbeat: Duration,
    /// Counts this connection against the connection caps until it ends.
    _slot: Option<Slot>,
}

impl Connection {
    fn new(ws: Socket, client: ClientHandle, slot: Option<Slot>) -> Connection {
        let heartbeat = client.hub().limits().heartbeat;
        Connection {
            ws,
            client,
            subs: StreamMap::new(),
            heartbeat,
            _slot: slot,
        }
    }

    async fn run(mut self) {
        let ending = self.serve().await;
        let (close, drain) = match ending {
            Ending::Close(code, reason) => (Some((code, reason)), false),
            Ending::Oversized(reason) => (Some((1009, reason)), true),
            Ending::Gone => (None, false),
        };
        if let Some((code, mut reason)) = close {
            tracing::debug!(site = self.client.site(), client = self.client.id(), code, %reason, "closing websocket");
            // RFC 6455 §5.5: a control frame's payload is at most 125 bytes,
            // two of them the code.
            if reason.len() > 123 {
                let cut = (0..=123)
                    .rev()
                    .find(|&i| reason.is_char_boundary(i))
                    .unwrap_or(0);
                reason.truncate(cut);
            }
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            let _ = timeout(
                Duration::from_secs(2),
                self.ws.send(Message::Close(Some(frame))),
            )
            .await;
        }
        if drain {
            let io = self.ws.get_mut();
            let _ = timeout(Duration::from_secs(2), async {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(1..) = io.read(&mut buf).await {}
            })
            .await;
        }
        // Dropping the handle leaves every channel; presence sees `leave`.
    }

    async fn serve(&mut self) -> Ending {
        let period = self.heartbeat;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                closing = self.client.closing() => {
                    let why = match closing {
                        Closing::Shutdown => "the server is shutting down",
                        Closing::SiteRemoved => "the site was removed",
                    };
                    return Ending::Close(1001, why.into());
                }
                incoming = self.ws.next() => {
                    let message = match incoming {
                        None => return Ending::Gone,
                        Some(Ok(message)) => message,
                        Some(Err(WsError::Capacity(err))) => {
                            return Ending::Oversized(format!("frame too large: {err}"));
                        }
                        // RFC 6455 §7.4.1: say why before closing.
                        Some(Err(WsError::Utf8(_))) => {
                            return Ending::Close(1007, "text frames must be valid UTF-8".into());
                        }
                        Some(Err(WsError::Protocol(err))) => {
                            return Ending::Close(1002, format!("protocol error: {err}"));
                        }
                        Some(Err(_)) => return Ending::Gone,
                    };
                    last_heard = Instant::now();
                    let step = match message {
                        Message::Text(text) => self.on_text(text.as_str()).await,
                        Message::Binary(_) => {
                            let why = "binary frames are not understood; send JSON text frames";
                            self.send(frames::error(ErrorCode::BadFrame, why, None)).await
                        }
                        Message::Close(_) => {
                            // tungstenite queued the reply; let it go out.
                            let _ = timeout(Duration::from_secs(1), self.ws.flush()).await;
                            Err(Ending::Gone)
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(()),
                    };
                    if let Err(ending) = step {
                        return ending;
                    }
                }
                Some((channel, item)) = self.subs.next() => {
                    if let Err(ending) = self.forward(channel, item).await {
                        return ending;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > period * 2 {
                        return Ending::Close(1001, "no answer to heartbeats".into());
                    }
                    if let Err(ending) = self.send(Message::Ping(Default::default())).await {
                        return ending;
                    }
                }
            }
        }
    }

    /// Writes one channel frame and whatever else is already waiting (up to
    /// [`BATCH`]), then flushes once: under load, one write carries many frames.
    async fn forward(&mut self, channel: String, first: Delivery) -> Result<(), Ending> {
        let period = self.heartbeat;
        let mut next = Some((channel, first));
        let mut lagged = None;
        let work = async {
            let mut count = 0;
            while let Some((channel, item)) = next.take() {
                match item {
                    Delivery::Frame(queued) => self.ws.feed(queued.into_message()).await?,
                    Delivery::Lagged => {
                        lagged = Some(channel);
                        break;
                    }
                }
                count += 1;
                if count < BATCH {
                    next = self.subs.next().now_or_never().flatten();
                }
            }
            self.ws.flush().await
        };
        match timeout(period, work).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Err(Ending::Gone),
        }
        if let Some(channel) = lagged {
            let limits = self.client.hub().limits();
            return Err(Ending::Close(
                CLOSE_TOO_SLOW,
                format!(
                    "too slow: fell {} messages or {} KiB behind (on {channel})",
                    limits.queue_messages,
                    limits.queue_bytes / 1024
                ),
            ));
        }
        Ok(())
    }

    /// Sends one frame now; a write stalled for a heartbeat period ends the
    /// connection.
    async fn send(&mut self, message: Message) -> Result<(), Ending> {
        match timeout(self.heartbeat, self.ws.send(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Ending::Gone),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Ending> {
        let limit = self.client.hub().limits().max_frame_bytes;
        if text.len() > limit {
            let why = format!(
                "the frame is {} bytes; the limit is {limit} (setting realtime_max_frame_bytes)",
                text.len()
            );
            return self
                .send(frames::error(ErrorCode::FrameTooLarge, &why, None))
                .await;
        }
        let frame = match frames::parse(text) {
            Ok(frame) => frame,
            Err(why) => {
                return self
                    .send(frames::error(ErrorCode::BadFrame, &why, None))
                    .await
            }
        };
        match frame {
            ClientFrame::Ping { data } => self.send(frames::pong(data)).await,
            ClientFrame::Subscribe {
                channel,
                since,
                info,
            } => self.subscribe(channel, since, info).await,
            ClientFrame::Unsubscribe { channel } => match self.client.unsubscribe(&channel) {
                Ok(()) => {
                    self.subs.remove(&channel);
                    self.send(frames::unsubscribed(&channel)).await
                }
                Err(err) => self.refuse(&err, &channel).await,
            },
            ClientFrame::Publish { channel, data } => {
                if !frames::valid_channel(&channel) {
                    return self.refuse(&RealtimeError::BadChannel, &channel).await;
                }
                let site = self.client.site();
                // The live version's rules: a rollback or redeploy applies
                // to connections already open.
                let allowed = self
                    .client
                    .hub()
                    .site_config(site)
                    .is_some_and(|c| c.allows_client_publish(&channel));
                if !allowed {
                    let why = format!(
                        "clients may not publish on {channel:?}: list a matching pattern in \
                         \"realtime\": {{\"clientPublish\": [...]}} in the site's fazt.json"
                    );
                    return self
                        .send(frames::error(ErrorCode::NotAllowed, &why, Some(&channel)))
                        .await;
                }
                match self.client.hub().publish(site, &channel, &data) {
                    Ok(_) => Ok(()),
                    Err(err) => self.refuse(&err, &channel).await,
                }
            }
        }
    }

    async fn subscribe(
        &mut self,
        channel: String,
        since: Option<u64>,
        info: Option<serde_json::Value>,
    ) -> Result<(), Ending> {
        let sub = match self.client.subscribe(&channel, since, info) {
            Ok(sub) => sub,
            Err(err) => return self.refuse(&err, &channel).await,
        };
        let head = frames::subscribed(&channel, sub.replay.len(), sub.missed, sub.last_id);
        let members = sub
            .members
            .map(|m| frames::presence_members(&channel, self.client.id(), m));
        // Live frames wait in the receiver while history is replayed.
        self.subs.insert(channel, ReceiverStream::new(sub.rx));
        let work = async {
            self.ws.feed(head).await?;
            if let Some(members) = members {
                self.ws.feed(members).await?;
            }
            for message in sub.replay {
                self.ws.feed(message).await?;
            }
            self.ws.flush().await
        };
        match timeout(self.heartbeat, work).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Ending::Gone),
        }
    }

    async fn refuse(&mut self, err: &RealtimeError, channel: &str) -> Result<(), Ending> {
        let code = match err {
            RealtimeError::BadChannel => ErrorCode::BadChannel,
            RealtimeError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            RealtimeError::InfoTooLarge { .. } => ErrorCode::InfoTooLarge,
            RealtimeError::TooManyChannels { .. } => ErrorCode::TooManyChannels,
            RealtimeError::TooManyConnections { .. } => ErrorCode::TooManyConnections,
            RealtimeError::TooManySubscriptions { .. } => ErrorCode::TooManySubscriptions,
            RealtimeError::AlreadySubscribed => ErrorCode::AlreadySubscribed,
            RealtimeError::NotSubscribed => ErrorCode::NotSubscribed,
        };
        self.send(frames::error(code, &err.to_string(), Some(channel)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::RealtimeLimits;
    use crate::refusals::Refusals;
    use crate::shutdown::Shutdown;
    use tokio::io::AsyncWriteExt;

    /// A client that asks for the upgrade and then never reads: the `101`
    /// cannot be written out (the pipe holds 32 bytes), so the upgrade
    /// never completes. It is given up after the handshake timeout, counted,
    /// and the client's place in the hub is freed.
    #[tokio::test]
    async fn an_upgrade_that_never_completes_is_given_up() {
        let shutdown = Shutdown::new();
        let refusals = Arc::new(Refusals::new());
        let hub = Arc::new(ChannelHub::new(
            RealtimeLimits {
                handshake_timeout: Duration::from_millis(200),
                ..Default::default()
            },
            shutdown.clone(),
            refusals.clone(),
        ));
        let (mut client_io, server_io) = tokio::io::duplex(32);
        let served = hub.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let config = SiteRealtime::default();
            let site = SiteTarget {
                name: "s",
                config: &config,
                host: "s.localhost",
                custom_domains: &[],
            };
            let res = accept(req, site, &served);
            async move { Ok::<_, std::convert::Infallible>(res) }
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server_io), service)
                .with_upgrades(),
        );
        client_io
            .write_all(
                b"GET /_ws HTTP/1.1\r\nHost: s.localhost\r\nConnection: Upgrade\r\n\
                  Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            )
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while refusals.count(Refusal::WsHandshakeTimeout) == 0 {
            assert!(Instant::now() < deadline, "the upgrade was never given up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(hub.stats().connections, 0, "its place in the hub is freed");
        drop(client_io);
        assert!(shutdown.stop(Duration::from_secs(5)).await);
    }
}
