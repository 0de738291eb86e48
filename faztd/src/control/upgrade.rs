//! `faztctl upgrade`: the daemon receives a new faztd binary, checks that it
//! runs, swaps it in for its own executable atomically (rename in the same
//! directory) and asks systemd to restart it. A binary that fails the check
//! is deleted and the running one is left exactly as it was.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fazt_proto::{BlobHash, Chunk, RpcError, UpgradeOutcome};

use super::service::ConnectionState;
use crate::systemd::own_unit::OwnUnit;

const MAX_BINARY: u64 = 512 * 1024 * 1024;
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A binary being received, in a temporary file next to the executable.
pub struct PendingUpgrade {
    temp: PathBuf,
    file: Option<std::fs::File>,
    hasher: blake3::Hasher,
    expected: BlobHash,
    size: u64,
    received: u64,
}

impl Drop for PendingUpgrade {
    fn drop(&mut self) {
        // Committed uploads were renamed away; anything else is removed.
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// The executable this daemon runs from.
fn own_executable() -> Result<PathBuf, RpcError> {
    let exe = std::env::current_exe()
        .map_err(|e| RpcError::Failed(format!("cannot find faztd's own executable: {e}")))?;
    // After an earlier swap the old inode shows as "path (deleted)".
    let text = exe.to_string_lossy();
    Ok(PathBuf::from(
        text.strip_suffix(" (deleted)").unwrap_or(&text),
    ))
}

pub fn begin(conn: &ConnectionState, size: u64, hash: BlobHash) -> Result<(), RpcError> {
    if size == 0 || size > MAX_BINARY {
        return Err(RpcError::TooLarge(format!(
            "a faztd binary of {size} bytes is not plausible (limit {MAX_BINARY})"
        )));
    }
    let exe = own_executable()?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let temp = dir.join(format!(".faztd-upgrade-{}-{}", std::process::id(), conn.id));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o700)
        .open(&temp)
        .map_err(|e| {
            RpcError::Failed(format!(
                "cannot write next to {} ({e}): faztd can only replace a binary in a directory it may write to, such as ~/.local/bin; for a system install run scripts/install.sh as root",
                exe.display()
            ))
        })?;
    *conn.upgrade.lock().expect("upgrade state") = Some(PendingUpgrade {
        temp,
        file: Some(file),
        hasher: blake3::Hasher::new(),
        expected: hash,
        size,
        received: 0,
    });
    Ok(())
}

pub fn chunk(conn: &ConnectionState, chunk: Chunk) -> Result<(), RpcError> {
    let mut slot = conn.upgrade.lock().expect("upgrade state");
    let pending = slot
        .as_mut()
        .ok_or_else(|| RpcError::Invalid("no upgrade in progress on this connection".into()))?;
    let end = chunk.offset + chunk.data.len() as u64;
    if chunk.offset != pending.received || end > pending.size || chunk.hash != pending.expected {
        *slot = None;
        return Err(RpcError::Invalid(
            "the binary's parts arrived out of order or do not belong to it; start again".into(),
        ));
    }
    let file = pending.file.as_mut().expect("open while receiving");
    if let Err(e) = file.write_all(&chunk.data) {
        *slot = None;
        return Err(RpcError::Failed(format!(
            "cannot write the new binary: {e}"
        )));
    }
    pending.hasher.update(&chunk.data);
    pending.received = end;
    Ok(())
}

pub async fn commit(conn: &ConnectionState) -> Result<UpgradeOutcome, RpcError> {
    let mut pending = conn
        .upgrade
        .lock()
        .expect("upgrade state")
        .take()
        .ok_or_else(|| RpcError::Invalid("no upgrade in progress on this connection".into()))?;
    if pending.received != pending.size
        || pending.hasher.finalize().as_bytes() != &pending.expected.0
    {
        return Err(RpcError::Invalid("the binary arrived incomplete or damaged (its hash does not match); the running faztd is unchanged".into()));
    }
    if let Some(file) = pending.file.take() {
        file.sync_all()
            .map_err(|e| RpcError::Failed(format!("cannot save the new binary: {e}")))?;
    }
    std::fs::set_permissions(&pending.temp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| RpcError::Failed(format!("cannot make the new binary executable: {e}")))?;
    let temp = pending.temp.clone();
    let new_version = tokio::task::spawn_blocking(move || check_runs(&temp))
        .await
        .map_err(|e| RpcError::Failed(e.to_string()))??;
    let exe = own_executable()?;
    std::fs::rename(&pending.temp, &exe).map_err(|e| {
        RpcError::Failed(format!(
            "cannot put the new binary in place of {}: {e}",
            exe.display()
        ))
    })?;
    tracing::info!(path = %exe.display(), new = %new_version, "faztd binary replaced");

    // Under systemd, restart into the new binary once this client has its
    // answer and hangs up (see `ConnectionState`'s drop).
    let restarting = OwnUnit::find().await.is_ok();
    conn.restart_when_closed
        .store(restarting, std::sync::atomic::Ordering::Release);
    Ok(UpgradeOutcome {
        old_version: fazt_proto::VERSION_LINE.to_string(),
        new_version,
        path: exe.display().to_string(),
        restarting,
    })
}

/// Asks systemd to restart this daemon's unit, in the background.
pub fn restart_now() {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async {
        if let Err(err) = super::unit::restart().await {
            tracing::error!(error = %err, "restart after upgrade failed");
        }
    });
}

/// Runs `binary --version` and expects `faztd VERSION ...` within a few seconds.
fn check_runs(binary: &Path) -> Result<String, RpcError> {
    let refuse = |why: String| {
        RpcError::Invalid(format!(
            "the new binary was refused: {why}; the running faztd is unchanged"
        ))
    };
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| refuse(format!("it does not start ({e})")))?;
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| refuse(e.to_string()))? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(refuse("`--version` did not finish".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    match out.trim().strip_prefix("faztd ") {
        Some(version) if status.success() && !version.is_empty() => Ok(version.to_string()),
        _ => Err(refuse(format!(
            "`--version` said {:?} (exit {:?}), not a faztd version",
            out.trim(),
            status.code()
        ))),
    }
}
