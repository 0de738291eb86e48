//! `faztctl upgrade [--binary PATH]`: send a faztd binary to the daemon,
//! which checks it, swaps it in and restarts through systemd; then wait for
//! the new daemon and report its version.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use fazt_proto::{BlobHash, Chunk, UPLOAD_CHUNK_BYTES};
use serde_json::json;

use super::daemon;
use super::service::wait_for_new_daemon;
use crate::client;
use crate::output;

/// The binary to send: `--binary`, else the faztd next to this faztctl, else the one on PATH.
fn pick_binary(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path);
    }
    let beside = std::env::current_exe()?.with_file_name("faztd");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("faztd"))
        .find(|p| p.is_file())
        .context("no faztd binary found next to faztctl or on PATH: pass --binary PATH")
}

pub async fn run(socket: &Path, binary: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let path = pick_binary(binary)?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let hash = BlobHash(*blake3::hash(&bytes).as_bytes());
    let d = daemon(socket).await?;
    let before = client::answer(d.client.status(client::quick()).await)?;
    let started = Instant::now();
    client::answer(
        d.client
            .upgrade_begin(client::long(), bytes.len() as u64, hash)
            .await,
    )?;
    let mut reader = &bytes[..];
    let mut offset = 0u64;
    loop {
        let mut data = Vec::with_capacity(UPLOAD_CHUNK_BYTES);
        (&mut reader)
            .take(UPLOAD_CHUNK_BYTES as u64)
            .read_to_end(&mut data)?;
        if data.is_empty() {
            break;
        }
        let len = data.len() as u64;
        client::answer(
            d.client
                .upgrade_chunk(client::long(), Chunk { hash, offset, data })
                .await,
        )?;
        offset += len;
    }
    let outcome = client::answer(d.client.upgrade_commit(client::long()).await)?;
    drop(d);
    if !outcome.restarting {
        if json {
            output::print_json(
                &json!({ "installed": true, "restarted": false, "path": outcome.path, "old_version": outcome.old_version, "new_version": outcome.new_version }),
            )?;
        } else {
            println!(
                "installed faztd {} at {} (was {}); this daemon is not run by systemd, so restart it yourself to use the new binary",
                outcome.new_version, outcome.path, outcome.old_version
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        eprintln!(
            "installed faztd {}; systemd is restarting the daemon...",
            outcome.new_version
        );
    }
    let status = wait_for_new_daemon(socket, before.pid, started).await?;
    let expected = outcome.new_version.split_whitespace().next().unwrap_or("");
    if status.version != expected {
        bail!(
            "the daemon restarted but reports version {}, not {expected}",
            status.version
        );
    }
    if json {
        output::print_json(
            &json!({ "installed": true, "restarted": true, "path": outcome.path, "old_version": before.version, "version": status.version, "commit": status.commit, "pid": status.pid }),
        )?;
    } else {
        println!(
            "faztd upgraded: {} ({}) -> {} ({}), pid {}",
            before.version, before.commit, status.version, status.commit, status.pid
        );
    }
    Ok(ExitCode::SUCCESS)
}
