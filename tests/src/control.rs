//! A raw tarpc client for tests that must say things faztctl never would
//! (hostile manifests, lying uploads, wrong protocol versions).

use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use fazt_proto::{
    Chunk, ControlClient, DeployManifest, DeployOutcome, DeployPlan, Hello, ManifestEntry, RpcError,
};

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

/// Begins a deploy of `files` (path, contents) as `site`; the daemon's answer.
pub async fn begin<D: AsRef<[u8]> + ?Sized>(
    client: &ControlClient,
    site: &str,
    files: &[(&str, &D)],
) -> Result<DeployPlan, RpcError> {
    let files = files
        .iter()
        .map(|(path, data)| ManifestEntry {
            path: path.to_string(),
            hash: hash(data.as_ref()),
            size: data.as_ref().len() as u64,
        })
        .collect();
    let manifest = DeployManifest {
        site: site.into(),
        files,
        force: false,
    };
    client
        .begin_deploy(ctx(), manifest)
        .await
        .expect("transport")
}

/// The bytes `range` of `blob`, as the chunk of it an honest client sends.
pub fn chunk_of(blob: &[u8], range: Range<usize>) -> Chunk {
    Chunk {
        hash: hash(blob),
        offset: range.start as u64,
        data: blob[range].to_vec(),
    }
}

/// Uploads one chunk to deploy `deploy_id`; the bytes received so far.
pub async fn upload(client: &ControlClient, deploy_id: u64, chunk: Chunk) -> Result<u64, RpcError> {
    client
        .upload(ctx(), deploy_id, vec![chunk])
        .await
        .expect("transport")
}

/// Commits deploy `deploy_id`.
pub async fn commit(client: &ControlClient, deploy_id: u64) -> Result<DeployOutcome, RpcError> {
    client
        .commit_deploy(ctx(), deploy_id)
        .await
        .expect("transport")
}
