//! One control connection: the handshake gate ([`Gated`]), and dispatch to
//! one small handler per request kind (`status`, `sites`, `deploy`, ...).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use fazt_proto::*;
use tarpc::context::Context;

use super::{deploy, domains, functions, realtime, sites, status, unit, upgrade};
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
    /// Set by an upgrade under systemd: restart once the client hung up, so
    /// the answer reached it before systemd stops this daemon.
    pub restart_when_closed: AtomicBool,
}

impl Drop for ConnectionState {
    fn drop(&mut self) {
        deploy::cancel_connection(&self.instance, self.id);
        if self.restart_when_closed.load(Ordering::Acquire) {
            upgrade::restart_now();
        }
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
            restart_when_closed: AtomicBool::new(false),
            instance: instance.clone(),
        });
        ControlConnection { instance, state }
    }

    /// The tarpc service for this connection, behind the handshake gate.
    pub fn gated(self) -> Gated {
        Gated {
            state: self.state.clone(),
            inner: self.serve(),
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
        status::status(&self.instance).await
    }

    async fn sites(self, _: Context) -> Result<Vec<SiteInfo>, RpcError> {
        sites::list(&self.instance).await
    }

    async fn remove_site(self, _: Context, name: String) -> Result<(), RpcError> {
        sites::remove(&self.instance, name).await
    }

    async fn history(self, _: Context, site: String) -> Result<Vec<VersionInfo>, RpcError> {
        sites::history(&self.instance, site).await
    }

    async fn rollback(
        self,
        _: Context,
        site: String,
        version: Option<u64>,
    ) -> Result<RollbackOutcome, RpcError> {
        sites::rollback(&self.instance, site, version).await
    }

    async fn begin_deploy(
        self,
        _: Context,
        manifest: DeployManifest,
    ) -> Result<DeployPlan, RpcError> {
        deploy::begin(&self.instance, self.state.id, manifest).await
    }

    async fn upload(self, _: Context, deploy_id: u64, chunks: Vec<Chunk>) -> Result<u64, RpcError> {
        deploy::upload(&self.instance, self.state.id, deploy_id, chunks).await
    }

    async fn commit_deploy(self, _: Context, deploy_id: u64) -> Result<DeployOutcome, RpcError> {
        deploy::commit(&self.instance, self.state.id, deploy_id).await
    }

    async fn config_get(self, _: Context) -> Result<Vec<ConfigEntry>, RpcError> {
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
        functions::logs(&self.instance, site, after, limit, wait_ms).await
    }

    async fn env_list(self, _: Context, site: String) -> Result<Vec<EnvVar>, RpcError> {
        functions::env_list(&self.instance, site).await
    }

    async fn env_set(
        self,
        _: Context,
        site: String,
        name: String,
        value: String,
    ) -> Result<(), RpcError> {
        functions::env_set(&self.instance, site, name, value).await
    }

    async fn env_unset(self, _: Context, site: String, name: String) -> Result<bool, RpcError> {
        functions::env_unset(&self.instance, site, name).await
    }

    async fn config_set(
        self,
        _: Context,
        key: String,
        value: String,
    ) -> Result<ConfigEntry, RpcError> {
        status::config_set(&self.instance, key, value).await
    }

    async fn publish(
        self,
        _: Context,
        site: String,
        channel: String,
        data_json: String,
    ) -> Result<PublishOutcome, RpcError> {
        realtime::publish(&self.instance, site, channel, data_json).await
    }

    async fn unit_status(self, _: Context) -> Result<Option<UnitStatus>, RpcError> {
        unit::unit_status().await
    }

    async fn restart(self, _: Context) -> Result<RestartTicket, RpcError> {
        unit::restart().await
    }

    async fn daemon_logs(self, _: Context, max: u32) -> Result<Vec<String>, RpcError> {
        unit::daemon_logs(max).await
    }

    async fn upgrade_begin(self, _: Context, size: u64, hash: BlobHash) -> Result<(), RpcError> {
        upgrade::begin(&self.state, size, hash)
    }

    async fn upgrade_chunk(self, _: Context, chunk: Chunk) -> Result<(), RpcError> {
        upgrade::chunk(&self.state, chunk)
    }

    async fn upgrade_commit(self, _: Context) -> Result<UpgradeOutcome, RpcError> {
        upgrade::commit(&self.state).await
    }

    async fn domain_add(
        self,
        _: Context,
        site: String,
        domain: String,
    ) -> Result<DomainAdded, RpcError> {
        domains::add(&self.instance, site, domain).await
    }

    async fn domain_remove(self, _: Context, domain: String) -> Result<DomainInfo, RpcError> {
        domains::remove(&self.instance, domain).await
    }

    async fn domains(self, _: Context, site: Option<String>) -> Result<Vec<DomainInfo>, RpcError> {
        domains::list(&self.instance, site).await
    }
}

/// The handshake gate: every request but `hello` is refused with
/// [`RpcError::NoHandshake`] until `hello` succeeded on the connection. The
/// one place that checks it; the match is exhaustive, so a new method cannot
/// be added without deciding here.
#[derive(Clone)]
pub struct Gated {
    state: Arc<ConnectionState>,
    inner: ServeControl<ControlConnection>,
}

impl tarpc::server::Serve for Gated {
    type Req = ControlRequest;
    type Resp = ControlResponse;

    async fn serve(
        self,
        ctx: Context,
        req: ControlRequest,
    ) -> Result<ControlResponse, tarpc::ServerError> {
        if !self.state.greeted.load(Ordering::Acquire) {
            if let Some(refusal) = refuse_before_hello(&req) {
                return Ok(refusal);
            }
        }
        self.inner.serve(ctx, req).await
    }
}

/// The answer to `req` on a connection that has not said `hello` (`None`
/// for `hello` itself).
fn refuse_before_hello(req: &ControlRequest) -> Option<ControlResponse> {
    macro_rules! refuse {
        ($($method:ident),* $(,)?) => {
            match req {
                ControlRequest::Hello { .. } => None,
                $( ControlRequest::$method { .. } => {
                    Some(ControlResponse::$method(Err(RpcError::NoHandshake)))
                } )*
            }
        };
    }
    refuse!(
        Status,
        Sites,
        RemoveSite,
        History,
        Rollback,
        BeginDeploy,
        Upload,
        CommitDeploy,
        ConfigGet,
        ConfigSet,
        Logs,
        EnvList,
        EnvSet,
        EnvUnset,
        Publish,
        UnitStatus,
        Restart,
        DaemonLogs,
        UpgradeBegin,
        UpgradeChunk,
        UpgradeCommit,
        DomainAdd,
        DomainRemove,
        Domains,
    )
}
