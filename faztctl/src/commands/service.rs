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
    for line in logs {
        if json {
            println!("{}", daemon_line_json(&line));
        } else {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One daemon log line as a JSON object with the keys of a site's log lines
/// (`logs SITE --json`): `ts_ms`, `level`, `message`. The daemon sends its
/// lines as text (`2026-12-01T10:11:49.657430Z  INFO message k=v`); a line
/// that does not read that way (a continuation, say) keeps all its text in
/// `message`, with `ts_ms` and `level` null.
fn daemon_line_json(line: &str) -> serde_json::Value {
    match parse_daemon_line(line) {
        Some((ts_ms, level, message)) => {
            json!({ "ts_ms": ts_ms, "level": level, "message": message })
        }
        None => json!({ "ts_ms": null, "level": null, "message": line }),
    }
}

fn parse_daemon_line(line: &str) -> Option<(u64, String, &str)> {
    let (stamp, rest) = line.split_once(' ')?;
    let ts_ms = rfc3339_utc_ms(stamp)?;
    let rest = rest.trim_start();
    let (level, message) = rest.split_once(' ').unwrap_or((rest, ""));
    if !["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level) {
        return None;
    }
    Some((ts_ms, level.to_ascii_lowercase(), message.trim_start()))
}

/// `2026-12-01T10:11:49.657430Z` as milliseconds since the Unix epoch (UTC
/// only, as tracing writes it).
fn rfc3339_utc_ms(stamp: &str) -> Option<u64> {
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hour, minute, second) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let millis = match fraction {
        "" => 0,
        f if f.bytes().all(|b| b.is_ascii_digit()) => format!("{f:0<3}")[..3].parse().ok()?,
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_lines_become_objects_like_site_log_lines() {
        let v = daemon_line_json(
            "2026-12-01T10:11:49.657430Z  INFO faztd 0.1.0 started listen=127.0.0.1:1",
        );
        assert_eq!(v["level"], "info");
        assert_eq!(v["message"], "faztd 0.1.0 started listen=127.0.0.1:1");
        assert_eq!(v["ts_ms"], 1_796_119_909_657u64);
        let v = daemon_line_json("2026-12-01T10:11:49Z ERROR boom");
        assert_eq!(
            (v["level"].as_str(), v["message"].as_str()),
            (Some("error"), Some("boom"))
        );
        let v = daemon_line_json("    at some continuation");
        assert!(v["ts_ms"].is_null() && v["level"].is_null());
        assert_eq!(v["message"], "    at some continuation");
    }

    #[test]
    fn utc_timestamps() {
        assert_eq!(rfc3339_utc_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_utc_ms("2000-03-01T00:00:00.5Z"),
            Some(951_868_800_500)
        );
        assert_eq!(
            rfc3339_utc_ms("2024-02-29T23:59:59.999999Z"),
            Some(1_709_251_199_999)
        );
        assert_eq!(rfc3339_utc_ms("2024-13-01T00:00:00Z"), None);
        assert_eq!(rfc3339_utc_ms("yesterday"), None);
    }
}
