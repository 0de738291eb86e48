//! The control service between faztctl and faztd, and its wire types.
//!
//! Compatibility rules. Messages are CBOR maps with field names
//! (`wire.rs`), so within one [`crate::PROTOCOL_VERSION`]:
//! - a field may be **added** to a wire struct, or an argument to a method,
//!   if it is an `Option` or carries `#[serde(default)]`: an older peer
//!   ignores it, and a newer peer reading an older one gets the default;
//! - a **method** may be added: an older daemon cannot read it and closes
//!   the connection without an answer, which faztctl words as "upgrade
//!   faztd" for methods added since protocol 3 began (`client::answer_added`
//!   in faztctl; `domain_add`, `domain_remove` and `domains` are such);
//! - removing or renaming a field, an argument or a method, or changing a
//!   type, needs a `PROTOCOL_VERSION` bump.
//!
//! `hello` is the first method of the service and its argument and reply
//! types never change, so a peer of any version can always complete the
//! handshake and be told, in words, what to upgrade.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The handshake a client sends first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// The program speaking, e.g. `faztctl`.
    pub program: String,
    pub version: String,
    pub protocol: u32,
}

/// The daemon's answer to the handshake.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welcome {
    pub version: String,
    pub commit: String,
    pub protocol: u32,
}

/// The message for a protocol mismatch, naming both sides and what to do.
pub fn mismatch_message(client: &Hello, daemon_version: &str, daemon_protocol: u32) -> String {
    let fix = if client.protocol > daemon_protocol {
        "upgrade faztd"
    } else {
        "upgrade faztctl"
    };
    format!(
        "{} {} speaks protocol {}, faztd {} speaks {}: {fix}",
        client.program, client.version, client.protocol, daemon_version, daemon_protocol
    )
}

/// Errors the daemon reports, worded for the person at the terminal.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum RpcError {
    #[error("{0}")]
    ProtocolMismatch(String),
    #[error("the connection must start with a handshake (hello)")]
    NoHandshake,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Failed(String),
}

/// A BLAKE3 digest (a CBOR byte string on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobHash(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({self})")
    }
}

/// Everything `faztctl status` shows about the local daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub version: String,
    pub commit: String,
    pub protocol: u32,
    pub pid: u32,
    pub uptime_secs: u64,
    pub data_path: String,
    pub data_bytes: u64,
    pub socket_path: String,
    pub domain: String,
    /// `flag`, `stored` or `detected`.
    pub domain_source: String,
    pub domain_warning: Option<String>,
    pub listen: String,
    pub sites: u64,
    pub health: String,
    /// Open WebSocket connections at `/_ws`, over every site.
    #[serde(default)]
    pub realtime_connections: u64,
    /// Realtime channels that exist (subscribed to, or keeping history).
    #[serde(default)]
    pub realtime_channels: u64,
    /// What the daemon's limits refused to clients since it started: a
    /// count per kind (e.g. `http_header_timeout`), zeros included.
    #[serde(default)]
    pub refusals: std::collections::BTreeMap<String, u64>,
    /// Where HTTPS is served; `None` when it is off.
    #[serde(default)]
    pub https_listen: Option<String>,
    /// Each certified name's certificate, when HTTPS is on.
    #[serde(default)]
    pub certificates: Vec<CertificateStatus>,
}

/// One name's certificate as `faztctl status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertificateStatus {
    pub name: String,
    /// End of validity, Unix seconds; `None` until one is issued.
    #[serde(default)]
    pub valid_until: Option<u64>,
    /// When renewal is due, Unix seconds.
    #[serde(default)]
    pub renew_at: Option<u64>,
    /// The last failure to obtain or renew it, if the last try failed.
    #[serde(default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteInfo {
    pub name: String,
    pub live_version: u64,
    pub versions: u64,
    pub files: u64,
    pub bytes: u64,
    pub updated_at: u64,
    /// Where the site answers: from other machines when the instance is
    /// reachable (`NAME.DOMAIN`, `NAME.IP.nip.io`), else on this machine.
    pub url: String,
    /// Where it answers on the daemon's own machine (`NAME.localhost`).
    #[serde(default)]
    pub local_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    pub id: u64,
    pub created_at: u64,
    pub files: u64,
    pub bytes: u64,
    pub live: bool,
}

/// One file of a deploy: where it goes and what it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub hash: BlobHash,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployManifest {
    pub site: String,
    pub files: Vec<ManifestEntry>,
    /// Make a new version even if these files are exactly the live ones.
    #[serde(default)]
    pub force: bool,
}

/// The daemon's answer to a manifest: which blobs it lacks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployPlan {
    pub deploy_id: u64,
    pub missing: Vec<BlobHash>,
    pub missing_bytes: u64,
    /// The live version, when the manifest is exactly it (and not forced):
    /// no deploy was started and nothing changes.
    #[serde(default)]
    pub unchanged: Option<DeployOutcome>,
}

/// Part of a blob being uploaded: `data` starts at `offset` and is at most
/// [`crate::UPLOAD_CHUNK_BYTES`] long. Chunks of a blob arrive in order.
#[derive(Clone, Serialize, Deserialize)]
pub struct Chunk {
    pub hash: BlobHash,
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("hash", &self.hash)
            .field("offset", &self.offset)
            .field("len", &self.data.len())
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployOutcome {
    pub site: String,
    pub version: u64,
    pub files: u64,
    pub total_bytes: u64,
    /// As in [`SiteInfo`].
    pub url: String,
    #[serde(default)]
    pub local_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackOutcome {
    pub site: String,
    pub from: u64,
    pub to: u64,
    /// As in [`SiteInfo`].
    pub url: String,
    #[serde(default)]
    pub local_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigEntry {
    pub key: String,
    pub value: String,
    pub default: bool,
    pub help: String,
}

/// One line of a site's function log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub ts_ms: u64,
    pub level: String,
    pub message: String,
}

/// One of a site's environment variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// What `publish` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishOutcome {
    pub site: String,
    pub channel: String,
    /// The message's id on its channel.
    pub id: u64,
    /// Connections subscribed when it was sent.
    pub subscribers: u64,
}

/// What `upgrade_commit` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpgradeOutcome {
    pub old_version: String,
    /// What the new binary's `--version` printed.
    pub new_version: String,
    /// The executable that was replaced.
    pub path: String,
    /// Whether systemd is restarting the daemon into the new binary.
    pub restarting: bool,
}

/// The daemon's systemd unit, as its manager reports it over D-Bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitStatus {
    pub unit: String,
    /// `user` or `system`.
    pub scope: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// `enabled`, `disabled`, ... (empty when systemd does not say).
    pub unit_file_state: String,
    /// When the unit last became active, in microseconds since the epoch (0: never).
    pub active_since_usec: u64,
    /// How many times systemd restarted it automatically (NRestarts).
    pub restarts: u32,
    pub main_pid: u32,
}

/// The answer to `restart`: systemd has queued a restart of this unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestartTicket {
    pub unit: String,
    pub scope: String,
    /// The pid of the daemon that asked (and is about to stop).
    pub old_pid: u32,
    /// The systemd job's object path.
    pub job: String,
}

/// A custom domain: a name of the user's own (`example.org`) that serves
/// a site, as well as its `NAME.DOMAIN`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainInfo {
    /// The name, normalised (lower case, no trailing dot).
    pub domain: String,
    pub site: String,
    /// When it was added, in seconds since the epoch.
    pub added_at: u64,
    /// Where the site answers at this name, e.g. `http://example.org/`.
    pub url: String,
    /// The name's HTTPS certificate; `None` while the instance serves plain
    /// HTTP.
    #[serde(default)]
    pub certificate: Option<CertificateStatus>,
}

/// What `domain_add` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainAdded {
    pub domain: DomainInfo,
    /// The name already served this site: nothing changed.
    #[serde(default)]
    pub unchanged: bool,
}

#[tarpc::service]
pub trait Control {
    /// The handshake. Must stay first, with these types, forever.
    async fn hello(hello: Hello) -> Result<Welcome, RpcError>;
    async fn status() -> Result<DaemonStatus, RpcError>;
    async fn sites() -> Result<Vec<SiteInfo>, RpcError>;
    async fn remove_site(name: String) -> Result<(), RpcError>;
    async fn history(site: String) -> Result<Vec<VersionInfo>, RpcError>;
    /// Makes `version` (default: the one before the live one) live.
    async fn rollback(site: String, version: Option<u64>) -> Result<RollbackOutcome, RpcError>;
    async fn begin_deploy(manifest: DeployManifest) -> Result<DeployPlan, RpcError>;
    /// Stores chunks of missing blobs; returns the bytes received so far in this deploy.
    async fn upload(deploy_id: u64, chunks: Vec<Chunk>) -> Result<u64, RpcError>;
    async fn commit_deploy(deploy_id: u64) -> Result<DeployOutcome, RpcError>;
    async fn config_get() -> Result<Vec<ConfigEntry>, RpcError>;
    async fn config_set(key: String, value: String) -> Result<ConfigEntry, RpcError>;
    /// A site's function log after line `after` (or its last `limit` lines),
    /// waiting up to `wait_ms` for a new line when there is none.
    async fn logs(
        site: String,
        after: Option<u64>,
        limit: u32,
        wait_ms: u32,
    ) -> Result<Vec<LogLine>, RpcError>;
    async fn env_list(site: String) -> Result<Vec<EnvVar>, RpcError>;
    async fn env_set(site: String, name: String, value: String) -> Result<(), RpcError>;
    /// Returns whether the variable existed.
    async fn env_unset(site: String, name: String) -> Result<bool, RpcError>;
    /// Publishes a JSON value (as text) on a site's realtime channel.
    async fn publish(
        site: String,
        channel: String,
        data_json: String,
    ) -> Result<PublishOutcome, RpcError>;
    /// The daemon's systemd unit: `None` when it does not run under systemd.
    async fn unit_status() -> Result<Option<UnitStatus>, RpcError>;
    /// Asks systemd to restart the daemon's own unit. The connection drops
    /// when the old daemon stops; the caller reconnects to the new one.
    async fn restart() -> Result<RestartTicket, RpcError>;
    /// The daemon's most recent log lines (at most `max`), oldest first.
    async fn daemon_logs(max: u32) -> Result<Vec<String>, RpcError>;
    /// Starts sending a new faztd binary of `size` bytes (one per connection).
    async fn upgrade_begin(size: u64, hash: BlobHash) -> Result<(), RpcError>;
    /// The next part of that binary (`chunk.hash` is the binary's hash).
    async fn upgrade_chunk(chunk: Chunk) -> Result<(), RpcError>;
    /// Checks that the binary runs and reports a version, puts it in place of
    /// the running executable atomically and, under systemd, restarts.
    async fn upgrade_commit() -> Result<UpgradeOutcome, RpcError>;
    /// Serves `site` at the custom domain `domain` too (adding it again to
    /// the same site changes nothing).
    async fn domain_add(site: String, domain: String) -> Result<DomainAdded, RpcError>;
    /// Stops serving a custom domain; returns what it served.
    async fn domain_remove(domain: String) -> Result<DomainInfo, RpcError>;
    /// The custom domains, sorted by name: all of them, or `site`'s.
    async fn domains(site: Option<String>) -> Result<Vec<DomainInfo>, RpcError>;
}
