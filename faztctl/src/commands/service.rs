//! `faztctl restart` and `faztctl logs --daemon`: the daemon as a systemd service.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use super::daemon;
use crate::client;
use crate::output;

/// How long the new daemon may take to answer after a restart.
const RESTART_WAIT: Duration = Duration::from_secs(60);

pub async fn restart(socket: &Path, json: bool) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let before = client::answer(d.client.status(client::quick()).await)?;
    let started = Instant::now();
    let ticket = match d.client.restart(client::quick()).await {
        Ok(Ok(ticket)) => Some(ticket),
        Ok(Err(err)) => bail!("{err}"),
        // The old daemon may go down before its answer reaches us: that is
        // the restart happening, so wait for the new one all the same.
        Err(tarpc::client::RpcError::Shutdown) | Err(tarpc::client::RpcError::Channel(_)) => None,
        Err(err) => bail!("talking to faztd failed: {err}"),
    };
    drop(d);
    if !json {
        match &ticket {
            Some(t) => eprintln!(
                "systemd is restarting {} ({} unit); waiting for the new daemon...",
                t.unit, t.scope
            ),
            None => eprintln!("faztd went away; waiting for the new daemon..."),
        }
    }
    let status = wait_for_new_daemon(socket, before.pid, started).await?;
    let took = started.elapsed();
    if json {
        output::print_json(&json!({
            "restarted": true,
            "unit": ticket.as_ref().map(|t| t.unit.clone()),
            "old_pid": before.pid,
            "old_version": before.version,
            "pid": status.pid,
            "version": status.version,
            "commit": status.commit,
            "seconds": took.as_secs_f64(),
        }))?;
    } else {
        println!(
            "faztd restarted: version {} ({}), pid {} (was {} pid {}), in {:.1}s",
            status.version,
            status.commit,
            status.pid,
            before.version,
            before.pid,
            took.as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits until a daemon with another pid answers on `socket` (the one
/// systemd started after stopping `old_pid`).
pub async fn wait_for_new_daemon(
    socket: &Path,
    old_pid: u32,
    started: Instant,
) -> Result<fazt_proto::DaemonStatus> {
    let deadline = started + RESTART_WAIT;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let daemon = match client::connect(socket).await {
            Ok(daemon) => daemon,
            Err(err) => {
                last_error = err.to_string();
                continue;
            }
        };
        let status = match daemon.client.status(client::quick()).await {
            Ok(Ok(status)) => status,
            Ok(Err(err)) => {
                last_error = err.to_string();
                continue;
            }
            Err(err) => {
                last_error = err.to_string();
                continue;
            }
        };
        if status.pid == old_pid {
            continue; // still the old one, not stopped yet
        }
        return Ok(status);
    }
    bail!(
        "no new faztd answered on {} within {}s ({last_error}); see `faztctl status` and `journalctl --user -u faztd`",
        socket.display(),
        RESTART_WAIT.as_secs()
    )
}

pub async fn daemon_logs(socket: &Path, lines: u32, json: bool) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let logs = client::answer(d.client.daemon_logs(client::quick(), lines).await)?;
    if json {
        output::print_json(&logs)?;
    } else {
        for line in logs {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
