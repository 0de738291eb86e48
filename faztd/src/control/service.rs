//! One control connection: the handshake gate, and dispatch to one small
//! handler per request kind (`status`, `sites`, `deploy`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use fazt_proto::*;
use tarpc::context::Context;

use super::{deploy, functions, realtime, sites, status, unit, upgrade};
use crate::instance::Instance;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Per-connection state, shared by the clones tarpc makes per request.
/// Dropped when the client disconnects: its unfinished deploys are cancelled.
pub struct ConnectionState {
    pub id: u64,
    greeted: AtomicBool,
    instance: Arc<Instance>,
    /// A new binary being received (`faztctl upgrade`); removed if the client goes away.
    pub upgrade: std::sync::Mutex<Option<upgrade::PendingUpgrade>>,
}

impl Drop for ConnectionState {
    fn drop(&mut self) {
        deploy::cancel_connection(&self.instance, self.id);
    }
}

#[derive(Clone)]
pub struct ControlConnection {
    pub instance: Arc<Instance>,
    pub state: Arc<ConnectionState>,
}

impl ControlConnection {
    pub fn new(instance: Arc<Instance>) -> ControlConnection {
        let state = Arc::new(ConnectionState {
            id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
            greeted: AtomicBool::new(false),
            upgrade: std::sync::Mutex::new(None),
            instance: instance.clone(),
        });
        ControlConnection { instance, state }
    }

    /// Every request but `hello` must come after a successful handshake.
    fn greeted(&self) -> Result<(), RpcError> {
        if self.state.greeted.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(RpcError::NoHandshake)
        }
    }
}

impl Control for ControlConnection {
    async fn hello(self, _: Context, hello: Hello) -> Result<Welcome, RpcError> {
        if hello.protocol != PROTOCOL_VERSION {
            tracing::warn!(client = %hello.program, version = %hello.version, protocol = hello.protocol, "protocol mismatch");
            return Err(RpcError::ProtocolMismatch(mismatch_message(
                &hello,
                FAZT_VERSION,
                PROTOCOL_VERSION,
            )));
        }
        self.state.greeted.store(true, Ordering::Release);
        Ok(Welcome {
            version: FAZT_VERSION.to_string(),
            commit: FAZT_COMMIT.to_string(),
            protocol: PROTOCOL_VERSION,
        })
    }

    async fn status(self, _: Context) -> Result<DaemonStatus, RpcError> {
        self.greeted()?;
        status::status(&self.instance).await
    }

    async fn sites(self, _: Context) -> Result<Vec<SiteInfo>, RpcError> {
        self.greeted()?;
        sites::list(&self.instance).await
    }

    async fn remove_site(self, _: Context, name: String) -> Result<(), RpcError> {
        self.greeted()?;
        sites::remove(&self.instance, name).await
    }

    async fn history(self, _: Context, site: String) -> Result<Vec<VersionInfo>, RpcError> {
        self.greeted()?;
        sites::history(&self.instance, site).await
    }

    async fn rollback(
        self,
        _: Context,
        site: String,
        version: Option<u64>,
    ) -> Result<RollbackOutcome, RpcError> {
        self.greeted()?;
        sites::rollback(&self.instance, site, version).await
    }

    async fn begin_deploy(
        self,
        _: Context,
        manifest: DeployManifest,
    ) -> Result<DeployPlan, RpcError> {
        self.greeted()?;
        deploy::begin(&self.instance, self.state.id, manifest).await
    }

    async fn upload(self, _: Context, deploy_id: u64, chunks: Vec<Chunk>) -> Result<u64, RpcError> {
        self.greeted()?;
        deploy::upload(&self.instance, self.state.id, deploy_id, chunks).await
    }

    async fn commit_deploy(self, _: Context, deploy_id: u64) -> Result<DeployOutcome, RpcError> {
        self.greeted()?;
        deploy::commit(&self.instance, self.state.id, deploy_id).await
    }

    async fn config_get(self, _: Context) -> Result<Vec<ConfigEntry>, RpcError> {
        self.greeted()?;
        status::config_get(&self.instance).await
    }

    async fn logs(
        self,
        _: Context,
        site: String,
        after: Option<u64>,
        limit: u32,
        wait_ms: u32,
    ) -> Result<Vec<LogLine>, RpcError> {
        self.greeted()?;
        functions::logs(&self.instance, site, after, limit, wait_ms).await
    }

    async fn env_list(self, _: Context, site: String) -> Result<Vec<EnvVar>, RpcError> {
        self.greeted()?;
        functions::env_list(&self.instance, site).await
    }

    async fn env_set(
        self,
        _: Context,
        site: String,
        name: String,
        value: String,
    ) -> Result<(), RpcError> {
        self.greeted()?;
        functions::env_set(&self.instance, site, name, value).await
    }

    async fn env_unset(self, _: Context, site: String, name: String) -> Result<bool, RpcError> {
        self.greeted()?;
        functions::env_unset(&self.instance, site, name).await
    }

    async fn config_set(
        self,
        _: Context,
        key: String,
        value: String,
    ) -> Result<ConfigEntry, RpcError> {
        self.greeted()?;
        status::config_set(&self.instance, key, value).await
    }

    async fn publish(
        self,
        _: Context,
        site: String,
        channel: String,
        data_json: String,
    ) -> Result<PublishOutcome, RpcError> {
        self.greeted()?;
        realtime::publish(&self.instance, site, channel, data_json).await
    }

    async fn unit_status(self, _: Context) -> Result<Option<UnitStatus>, RpcError> {
        self.greeted()?;
        unit::unit_status().await
    }

    async fn restart(self, _: Context) -> Result<RestartTicket, RpcError> {
        self.greeted()?;
        unit::restart().await
    }

    async fn daemon_logs(self, _: Context, max: u32) -> Result<Vec<String>, RpcError> {
        self.greeted()?;
        unit::daemon_logs(max).await
    }

    async fn upgrade_begin(self, _: Context, size: u64, hash: BlobHash) -> Result<(), RpcError> {
        self.greeted()?;
        upgrade::begin(&self.state, size, hash)
    }

    async fn upgrade_chunk(self, _: Context, chunk: Chunk) -> Result<(), RpcError> {
        self.greeted()?;
        upgrade::chunk(&self.state, chunk)
    }

    async fn upgrade_commit(self, _: Context) -> Result<UpgradeOutcome, RpcError> {
        self.greeted()?;
        upgrade::commit(&self.state).await
    }
}
