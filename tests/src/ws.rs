//! A WebSocket client for realtime tests: connects to `/_ws` of a site by
//! its `Host` header (`NAME.localhost`), sends and receives JSON frames with
//! deadlines, so a missing frame fails a test instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for one expected frame.
pub const FRAME_DEADLINE: Duration = Duration::from_secs(10);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct WsClient {
    pub socket: Socket,
}

/// What the server did, frame by frame, as a test sees it.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<CloseFrame>),
}

/// Opens `ws://ADDR/_ws` with `Host: host`. Fails with the HTTP status when
/// the server refuses the upgrade.
pub async fn connect(addr: SocketAddr, host: &str) -> Result<WsClient, String> {
    connect_with(addr, host, &[]).await
}

/// [`connect`] with more request headers, e.g. the `Origin` a browser sends.
pub async fn connect_with(
    addr: SocketAddr,
    host: &str,
    headers: &[(&'static str, &str)],
) -> Result<WsClient, String> {
    let mut request = format!("ws://{addr}/_ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("host", host.parse().map_err(|_| "bad host".to_string())?);
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().map_err(|_| format!("bad {name}"))?);
    }
    let (socket, _) =
        tokio::time::timeout(FRAME_DEADLINE, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(res) => {
                    format!("HTTP {}", res.status())
                }
                e => e.to_string(),
            })?;
    Ok(WsClient { socket })
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("send frame");
    }

    /// The next JSON frame or the close, skipping pings and pongs.
    pub async fn next(&mut self) -> Received {
        loop {
            let message = tokio::time::timeout(FRAME_DEADLINE, self.socket.next())
                .await
                .expect("a frame within the deadline");
            match message {
                None => return Received::Closed(None),
                Some(Err(_)) => return Received::Closed(None),
                Some(Ok(Message::Text(t))) => {
                    return Received::Json(serde_json::from_str(t.as_str()).expect("JSON frame"))
                }
                Some(Ok(Message::Close(frame))) => return Received::Closed(frame),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next JSON frame; panics on a close.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Received::Json(v) => v,
            Received::Closed(frame) => panic!("connection closed: {frame:?}"),
        }
    }

    /// Receives frames until one of `kind` arrives, returning it.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Whether nothing but pings arrives for `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(_) => return false,
            }
        }
    }

    /// Subscribes and returns the `subscribed` frame.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(json!({ "type": "subscribe", "channel": channel }))
            .await;
        let reply = self.recv().await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        reply
    }

    pub async fn publish(&mut self, channel: &str, data: Value) {
        self.send(json!({ "type": "publish", "channel": channel, "data": data }))
            .await;
    }
}
