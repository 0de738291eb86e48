//! Connecting to a faztd: the Unix socket, the handshake, and request contexts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use fazt_proto::{ControlClient, Hello, RpcError};

/// A connected, greeted daemon.
pub struct Daemon {
    pub client: ControlClient,
}

/// How to start a daemon, for every way faztd may be on this machine.
pub const START_HINT: &str = "Start it with `cargo run --release -p faztd` from a Fazt checkout, \
or `faztd` if it is installed (`systemctl --user start faztd` if installed as a service).";

/// Why there is no daemon to talk to.
#[derive(Debug)]
pub enum ConnectError {
    NotRunning(PathBuf),
    Other(anyhow::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::NotRunning(path) => write!(
                f,
                "faztd is not running (nothing answers on {}).\n{START_HINT}",
                path.display()
            ),
            ConnectError::Other(err) => write!(f, "{err:#}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The socket faztctl uses: `--socket`, `FAZT_SOCKET`, or the default.
pub fn socket_path(flag: Option<&Path>) -> Result<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(fazt_proto::paths::default_socket_path)
        .ok_or_else(|| {
            anyhow!("cannot find the control socket: set XDG_RUNTIME_DIR or pass --socket")
        })
}

/// Connects to the daemon at `socket` and performs the handshake.
pub async fn connect(socket: &Path) -> Result<Daemon, ConnectError> {
    let stream = match tokio::net::UnixStream::connect(socket).await {
        Ok(stream) => stream,
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ConnectError::NotRunning(socket.to_path_buf()))
        }
        Err(err) => {
            return Err(ConnectError::Other(anyhow!(
                "cannot connect to faztd at {}: {err}",
                socket.display()
            )))
        }
    };
    let transport = fazt_proto::wire::transport(stream);
    let client = ControlClient::new(tarpc::client::Config::default(), transport).spawn();
    let hello = Hello {
        program: "faztctl".to_string(),
        version: fazt_proto::FAZT_VERSION.to_string(),
        protocol: fazt_proto::PROTOCOL_VERSION,
    };
    let welcome = client
        .hello(context(Duration::from_secs(10)), hello.clone())
        .await
        .map_err(|e| {
            ConnectError::Other(anyhow!(
                "faztd at {} did not answer the handshake: {e} (a faztd from before protocol {} \
                 speaks another encoding and hangs up: upgrade faztd)",
                socket.display(),
                fazt_proto::PROTOCOL_VERSION
            ))
        })?
        .map_err(|e| ConnectError::Other(anyhow!("{e}")))?;
    if welcome.protocol != fazt_proto::PROTOCOL_VERSION {
        return Err(ConnectError::Other(anyhow!(
            "{}",
            fazt_proto::mismatch_message(&hello, &welcome.version, welcome.protocol)
        )));
    }
    Ok(Daemon { client })
}

/// A request context with a deadline.
pub fn context(timeout: Duration) -> tarpc::context::Context {
    let mut ctx = tarpc::context::current();
    ctx.deadline = Instant::now() + timeout;
    ctx
}

/// Short requests (status, lists).
pub fn quick() -> tarpc::context::Context {
    context(Duration::from_secs(30))
}

/// Long requests (uploads, commits of large sites).
pub fn long() -> tarpc::context::Context {
    context(Duration::from_secs(30 * 60))
}

/// Like [`answer`], for a method added to the protocol after it began
/// (`command` names it as typed, e.g. `domain add`): a faztd built before
/// the method cannot read the request and hangs up, so a lost connection
/// there most likely means an older faztd.
pub fn answer_added<T>(
    result: Result<Result<T, RpcError>, tarpc::client::RpcError>,
    command: &str,
) -> Result<T> {
    match result {
        Err(tarpc::client::RpcError::Shutdown) | Err(tarpc::client::RpcError::Channel(_)) => bail!(
            "faztd hung up on `faztctl {command}`: it is probably older than this faztctl ({}) \
             and does not know the command; upgrade faztd (`faztctl upgrade`; \
             `faztctl status` shows both versions)",
            fazt_proto::FAZT_VERSION
        ),
        other => answer(other),
    }
}

/// Flattens a transport error and a daemon error into one, with context.
pub fn answer<T>(result: Result<Result<T, RpcError>, tarpc::client::RpcError>) -> Result<T> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => bail!("{err}"),
        Err(tarpc::client::RpcError::Shutdown) | Err(tarpc::client::RpcError::Channel(_)) => {
            bail!("the connection to faztd was lost (did it stop or restart?)")
        }
        Err(err) => bail!("talking to faztd failed: {err}"),
    }
}
