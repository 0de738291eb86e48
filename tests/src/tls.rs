//! A TLS client for the HTTPS tests: rustls (ring, the build's one crypto
//! provider) trusting only the roots a test gives it, so a handshake that
//! succeeds proves the served chain reaches that root *and* names the host;
//! HTTP/1.1 or HTTP/2 over it through hyper, as ALPN decides; and a
//! WebSocket over it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long one request may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A rustls client configuration trusting the PEM roots in `roots` and
/// offering `alpn` (most preferred first).
pub fn client_config(roots: &[&str], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            store.add(cert.expect("a PEM certificate")).expect("a root");
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects to `addr` naming `server_name` (SNI), verifying the chain
/// against `config`'s roots and the name.
pub async fn connect(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
    tokio::time::timeout(DEADLINE, TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS handshake with {server_name}: {e}"))
}

/// What a GET over TLS got.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub version: hyper::Version,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

/// GET `path` from `host` at `addr` over TLS trusting `roots`, offering h2
/// and http/1.1 (the server's ALPN choice decides which is spoken).
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    roots: &[&str],
) -> Result<Fetched, String> {
    let config = client_config(roots, &[b"h2", b"http/1.1"]);
    let stream = connect(addr, host, config).await?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    let uri = format!("https://{host}{path}");
    let request = hyper::Request::get(&uri)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = if h2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
            tokio::spawn(conn);
            // HTTP/2 carries the host as :authority, from the URI.
            let (mut parts, body) = request.into_parts();
            parts.headers.remove(hyper::header::HOST);
            send.send_request(hyper::Request::from_parts(parts, body))
                .await
                .map_err(|e| format!("h2 request: {e}"))?
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("http/1.1 handshake: {e}"))?;
            tokio::spawn(conn);
            let (mut parts, body) = request.into_parts();
            parts.uri = path.parse().map_err(|e| format!("{e}"))?;
            send.send_request(hyper::Request::from_parts(parts, body))
                .await
                .map_err(|e| format!("http/1.1 request: {e}"))?
        };
        let status = response.status().as_u16();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Fetched {
            status,
            version,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .map_err(|_| format!("GET {uri} timed out"))?
}

/// Opens `wss://HOST/_ws` at `addr`, subscribes to `channel`, and returns
/// the server's answer frame.
pub async fn wss_subscribe(
    addr: SocketAddr,
    host: &str,
    channel: &str,
    roots: &[&str],
) -> Result<serde_json::Value, String> {
    let config = client_config(roots, &[b"http/1.1"]);
    let stream = connect(addr, host, config).await?;
    let exchange = async {
        let (mut socket, _) = tokio_tungstenite::client_async(format!("wss://{host}/_ws"), stream)
            .await
            .map_err(|e| format!("WebSocket upgrade: {e}"))?;
        let frame = serde_json::json!({ "type": "subscribe", "channel": channel });
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(
                frame.to_string(),
            ))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match socket.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                    return serde_json::from_str(&text).map_err(|e| e.to_string())
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed".into()),
            }
        }
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .map_err(|_| "wss timed out".to_string())?
}
