//! A raw tarpc client for tests that must say things faztctl never would
//! (hostile manifests, lying uploads, wrong protocol versions).

use std::path::Path;
use std::time::{Duration, Instant};

use fazt_proto::{ControlClient, Hello};

/// Connects without a handshake.
pub async fn connect(socket: &Path) -> ControlClient {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect to faztd");
    let transport = fazt_proto::wire::transport(stream);
    ControlClient::new(tarpc::client::Config::default(), transport).spawn()
}

/// Connects and completes the handshake.
pub async fn greeted(socket: &Path) -> ControlClient {
    let client = connect(socket).await;
    client
        .hello(ctx(), hello(fazt_proto::PROTOCOL_VERSION))
        .await
        .expect("transport")
        .expect("handshake");
    client
}

pub fn hello(protocol: u32) -> Hello {
    Hello {
        program: "faztctl".into(),
        version: "9.9.9".into(),
        protocol,
    }
}

pub fn ctx() -> tarpc::context::Context {
    let mut ctx = tarpc::context::current();
    ctx.deadline = Instant::now() + Duration::from_secs(60);
    ctx
}

pub fn hash(data: &[u8]) -> fazt_proto::BlobHash {
    fazt_proto::BlobHash(*blake3::hash(data).as_bytes())
}
