//! `faztctl deploy DIR`: walk, hash, ask what is missing, upload only that
//! (in chunks, with a progress bar), then commit atomically.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use fazt_proto::{BlobHash, Chunk, DeployManifest, UPLOAD_CHUNK_BYTES};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::daemon;
use crate::client;
use crate::output;
use crate::walk;

/// Bytes per upload request: several chunks, or many small files, per round trip.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

pub async fn run(socket: &Path, dir: &Path, site: Option<String>, json: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let site = match site {
        Some(site) => site,
        None => default_site_name(dir)?,
    };
    let root = dir.to_path_buf();
    let (files, skipped) = tokio::task::spawn_blocking(move || walk::collect(&root))
        .await
        .context("the folder walk failed")??;
    for s in &skipped {
        eprintln!("skipped {s}");
    }
    if files.is_empty() {
        bail!(
            "nothing to deploy: {} has no files (after .gitignore/.faztignore)",
            dir.display()
        );
    }
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();

    let d = daemon(socket).await?;
    let manifest = DeployManifest {
        site: site.clone(),
        files: walk::manifest(&files),
    };
    let plan = client::answer(d.client.begin_deploy(client::long(), manifest).await)?;

    let bar = progress_bar(plan.missing_bytes, json);
    let sources: HashMap<BlobHash, (PathBuf, u64)> = files
        .iter()
        .map(|f| (f.hash, (f.absolute.clone(), f.size)))
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Chunk>>>(2);
    let missing = plan.missing.clone();
    let reader = std::thread::spawn(move || read_batches(&missing, &sources, &tx));
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        let sent: usize = batch.iter().map(|c| c.data.len()).sum();
        client::answer(d.client.upload(client::long(), plan.deploy_id, batch).await)?;
        bar.inc(sent as u64);
    }
    let _ = reader.join();
    bar.finish_and_clear();

    let outcome = client::answer(d.client.commit_deploy(client::long(), plan.deploy_id).await)?;
    let elapsed = started.elapsed();
    if json {
        output::print_json(&json!({
            "site": outcome.site,
            "version": outcome.version,
            "files": outcome.files,
            "total_bytes": outcome.total_bytes,
            "uploaded_blobs": plan.missing.len(),
            "uploaded_bytes": plan.missing_bytes,
            "url": outcome.url,
            "elapsed_ms": elapsed.as_millis() as u64,
        }))?;
    } else {
        println!(
            "Deployed {} v{}: {} files, {} (sent {} new of {} total, {} blobs) in {:.2}s",
            outcome.site,
            outcome.version,
            outcome.files,
            output::bytes(total_bytes),
            output::bytes(plan.missing_bytes),
            output::bytes(total_bytes),
            plan.missing.len(),
            elapsed.as_secs_f64()
        );
        println!("  {}", outcome.url);
    }
    Ok(ExitCode::SUCCESS)
}

fn default_site_name(dir: &Path) -> Result<String> {
    let absolute = dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let folder = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = fazt_proto::site_name_from(&folder);
    if name.is_empty() {
        bail!(
            "cannot make a site name from the folder {:?}: pass --site NAME",
            folder
        );
    }
    Ok(name)
}

fn progress_bar(total: u64, json: bool) -> ProgressBar {
    if json || total == 0 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "uploading {bar:30.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Reads the missing blobs from disk in upload-sized batches, so neither
/// side ever holds more than a few batches of the site in memory.
fn read_batches(
    missing: &[BlobHash],
    sources: &HashMap<BlobHash, (PathBuf, u64)>,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<Chunk>>>,
) {
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    for hash in missing {
        let result = (|| -> Result<()> {
            let (path, size) = sources.get(hash).ok_or_else(|| {
                anyhow!("faztd asked for blob {hash}, which is not in this folder")
            })?;
            let mut file = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let mut offset = 0u64;
            loop {
                let mut data = Vec::with_capacity(UPLOAD_CHUNK_BYTES);
                (&mut file)
                    .take(UPLOAD_CHUNK_BYTES as u64)
                    .read_to_end(&mut data)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if data.is_empty() {
                    break;
                }
                let len = data.len() as u64;
                batch_bytes += data.len();
                batch.push(Chunk {
                    hash: *hash,
                    offset,
                    data,
                });
                offset += len;
                if batch_bytes >= BATCH_BYTES {
                    batch_bytes = 0;
                    if tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                        return Ok(());
                    }
                }
            }
            if offset != *size {
                bail!("{} changed while deploying (size {size} became {offset}); run the deploy again", path.display());
            }
            Ok(())
        })();
        if let Err(err) = result {
            let _ = tx.blocking_send(Err(err));
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}
