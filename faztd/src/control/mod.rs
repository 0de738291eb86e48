//! The control plane: a tarpc service on a Unix socket that only its owner
//! can reach (0600, in a 0700 directory when faztd creates it).
//!
//! Every connection gets its own [`service::ControlConnection`], which must
//! be greeted with `hello` before anything else, and which cancels the
//! deploys it started if the client goes away.

pub mod deploy;
mod domains;
mod errors;
mod functions;
mod realtime;
pub mod service;
mod sites;
mod status;
mod unit;
mod upgrade;

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::UnixListener;

use crate::instance::Instance;
use crate::shutdown::Shutdown;
use service::ControlConnection;

/// Binds the control socket at `path`: removes a stale socket left by a
/// crash, but refuses if a live faztd answers on it.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create the socket directory {}", dir.display()))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                bail!(
                    "{} exists and is not a socket: move it away, or pass --socket",
                    path.display()
                );
            }
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => bail!(
                    "another faztd is already running and listening on {} (stop it first, or pass --socket)",
                    path.display()
                ),
                Err(_) => {
                    tracing::info!(socket = %path.display(), "removing a stale control socket left by an earlier run");
                    std::fs::remove_file(path)
                        .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
                }
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot inspect {}", path.display())),
    }
    // Bound in a private directory, restricted, then renamed into place: the
    // socket is never reachable by others, not even between bind and chmod.
    let dir = path.parent().unwrap_or(Path::new("."));
    let private = dir.join(format!(".faztd-bind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .with_context(|| format!("cannot create {}", private.display()))?;
    let staged = private.join("faztd.sock");
    let bound = (|| -> Result<UnixListener> {
        let listener = UnixListener::bind(&staged)
            .with_context(|| format!("cannot listen on the control socket {}", path.display()))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict the control socket {}", path.display()))?;
        std::fs::rename(&staged, path)
            .with_context(|| format!("cannot put the control socket at {}", path.display()))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// Whether a connecting process may operate this daemon: the same user, or
/// root. The socket's permissions already say so; this checks the peer's
/// credentials too (SO_PEERCRED), in case the socket was made reachable.
fn may_operate(conn: &tokio::net::UnixStream) -> Result<(), String> {
    let own = nix::unistd::geteuid().as_raw();
    match conn.peer_cred() {
        Ok(peer) if peer.uid() == own || peer.uid() == 0 => Ok(()),
        Ok(peer) => Err(format!(
            "uid {} (pid {:?}) is not this daemon's user ({own})",
            peer.uid(),
            peer.pid()
        )),
        Err(err) => Err(format!("cannot read the peer's credentials: {err}")),
    }
}

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// Runs each request in a `request` span with a fresh id and the method's
/// name, so every record it logs carries `request_id` and `method` (in
/// journald: `REQUEST_ID=`, `METHOD=`).
#[derive(Clone)]
struct WithRequestId<S>(S);

impl<S: tarpc::server::Serve> tarpc::server::Serve for WithRequestId<S>
where
    S::Req: tarpc::RequestName,
{
    type Req = S::Req;
    type Resp = S::Resp;

    async fn serve(
        self,
        ctx: tarpc::context::Context,
        req: Self::Req,
    ) -> Result<Self::Resp, tarpc::ServerError> {
        use tarpc::RequestName;
        let method = req.name();
        let span = tracing::info_span!(
            "request",
            request_id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed),
            method = method.strip_prefix("Control.").unwrap_or(method),
        );
        tracing::Instrument::instrument(self.0.serve(ctx, req), span).await
    }
}

/// Accepts control connections until shutdown begins. Open connections are
/// not waited for (a `logs -f` poll may wait 30 s): they end with the runtime.
pub async fn serve(listener: UnixListener, instance: Arc<Instance>, shutdown: Shutdown) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let conn = match accepted {
            Ok((conn, _)) => conn,
            Err(err) => {
                // Out of file descriptors, typically: wait a little rather than spin.
                tracing::warn!(error = %err, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(why) = may_operate(&conn) {
            tracing::warn!("control connection refused: {why}");
            continue;
        }
        let transport = fazt_proto::wire::transport(conn);
        let connection = ControlConnection::new(instance.clone());
        tokio::spawn(
            BaseChannel::with_defaults(transport)
                .execute(WithRequestId(connection.gated()))
                .for_each(|response| async move {
                    tokio::spawn(response);
                }),
        );
    }
}
