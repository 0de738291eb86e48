//! `faztctl deploy DIR`: walk, hash, ask what is missing, upload only that
//! (in chunks, with a progress bar), then commit atomically.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use comfy_table::{Cell, Color};
use fazt_proto::DeployOutcome;
use fazt_proto::{BlobHash, Chunk, DeployManifest, UPLOAD_CHUNK_BYTES};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::daemon;
use crate::args::UsageError;
use crate::client;
use crate::output::{self, colored};
use crate::target::Target;
use crate::walk;

/// Bytes per upload request: several chunks, or many small files, per round trip.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// A walked and hashed site folder, ready to send to any number of daemons.
pub struct Prepared {
    site: String,
    files: Vec<walk::LocalFile>,
    total_bytes: u64,
    /// `--force`: a new version even if nothing changed.
    force: bool,
}

/// What one daemon did with a deploy.
pub struct Report {
    pub outcome: DeployOutcome,
    pub uploaded_blobs: usize,
    pub uploaded_bytes: u64,
    /// Nothing changed: no version was made, `outcome` is the live one.
    pub unchanged: bool,
}

pub async fn prepare(dir: &Path, site: Option<String>, force: bool) -> Result<Prepared> {
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
    let total_bytes = files.iter().map(|f| f.size).sum();
    Ok(Prepared {
        site,
        files,
        total_bytes,
        force,
    })
}

/// Sends a prepared site to the daemon at `socket`: manifest, missing blobs
/// (advancing `bar`), commit.
pub async fn push(socket: &Path, prepared: &Prepared, bar: &ProgressBar) -> Result<Report> {
    let d = daemon(socket).await?;
    let manifest = DeployManifest {
        site: prepared.site.clone(),
        files: walk::manifest(&prepared.files),
        force: prepared.force,
    };
    let plan = client::answer(d.client.begin_deploy(client::long(), manifest).await)?;
    if let Some(live) = plan.unchanged {
        return Ok(Report {
            outcome: live,
            uploaded_blobs: 0,
            uploaded_bytes: 0,
            unchanged: true,
        });
    }
    bar.set_length(plan.missing_bytes);
    let sources: HashMap<BlobHash, (PathBuf, u64)> = prepared
        .files
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
    let outcome = client::answer(d.client.commit_deploy(client::long(), plan.deploy_id).await)?;
    Ok(Report {
        outcome,
        uploaded_blobs: plan.missing.len(),
        uploaded_bytes: plan.missing_bytes,
        unchanged: false,
    })
}

/// What crossed the wire: `sent 2 new blobs, 3 KiB` or `nothing new to send`.
fn sent(report: &Report) -> String {
    if report.uploaded_blobs == 0 {
        return "nothing new to send".to_string();
    }
    format!(
        "sent {}, {}",
        output::count(report.uploaded_blobs as u64, "new blob"),
        output::bytes(report.uploaded_bytes)
    )
}

fn report_json(report: &Report, elapsed: Duration) -> serde_json::Value {
    let o = &report.outcome;
    json!({
        "site": o.site,
        "version": o.version,
        "files": o.files,
        "total_bytes": o.total_bytes,
        "uploaded_blobs": report.uploaded_blobs,
        "uploaded_bytes": report.uploaded_bytes,
        "unchanged": report.unchanged,
        "url": o.url,
        "elapsed_ms": elapsed.as_millis() as u64,
    })
}

pub async fn run(
    socket: &Path,
    dir: &Path,
    site: Option<String>,
    force: bool,
    json: bool,
) -> Result<ExitCode> {
    let started = Instant::now();
    let prepared = prepare(dir, site, force).await?;
    let bar = progress_bar(json);
    let report = push(socket, &prepared, &bar).await;
    bar.finish_and_clear();
    let report = report?;
    let elapsed = started.elapsed();
    if json {
        output::print_json(&report_json(&report, elapsed))?;
    } else if report.unchanged {
        let o = &report.outcome;
        println!(
            "Nothing changed: {} v{} stays live (deploy --force makes a new version anyway)",
            o.site, o.version
        );
        output::print_site_addresses(&o.url, o.local_url.as_deref());
    } else {
        let o = &report.outcome;
        println!(
            "Deployed {} {}: {}, {} ({}) in {:.2}s",
            o.site,
            output::version(o.version),
            output::count(o.files, "file"),
            output::bytes(prepared.total_bytes),
            sent(&report),
            elapsed.as_secs_f64()
        );
        output::print_site_addresses(&o.url, o.local_url.as_deref());
    }
    Ok(ExitCode::SUCCESS)
}

/// `deploy DIR --to a,b,local`: every target at once, one progress line
/// each; a failing target does not stop the others; exit 0 only if all succeed.
pub async fn run_many(
    dir: &Path,
    site: Option<String>,
    names: &[String],
    force: bool,
    json: bool,
) -> Result<ExitCode> {
    let started = Instant::now();
    let mut seen = std::collections::HashSet::new();
    let names: Vec<String> = names
        .iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty() && seen.insert(n.clone()))
        .collect();
    if names.is_empty() {
        return Err(UsageError("--to needs at least one remote name (or `local`)".into()).into());
    }
    let prepared = prepare(dir, site, force).await?;
    let bars = MultiProgress::with_draw_target(if json || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let width = names.iter().map(|n| n.len()).max().unwrap_or(5);
    let jobs = names.iter().map(|name| {
        let bar = bars.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{prefix:<{width}}} {{bar:30.cyan/blue}} {{bytes}}/{{total_bytes}} {{msg}}"
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(name.clone());
        let prepared = &prepared;
        async move {
            let result = async {
                let remote = (name != "local").then_some(name.as_str());
                bar.set_message("connecting");
                let target = Target::open(None, remote).await?;
                bar.set_message("uploading");
                let report = push(target.socket(), prepared, &bar).await;
                target.close().await;
                report
            }
            .await;
            match &result {
                Ok(r) if r.unchanged => bar.finish_with_message(format!(
                    "nothing changed, {} stays live",
                    output::version(r.outcome.version)
                )),
                Ok(r) => {
                    bar.finish_with_message(format!("{} live", output::version(r.outcome.version)))
                }
                Err(e) => bar.abandon_with_message(format!("failed: {e:#}")),
            }
            (name.clone(), result)
        }
    });
    let results = futures_util::future::join_all(jobs).await;
    let elapsed = started.elapsed();
    let all_ok = results.iter().all(|(_, r)| r.is_ok());
    if json {
        let entries: Vec<serde_json::Value> = results
            .iter()
            .map(|(name, r)| match r {
                Ok(report) => {
                    json!({ "target": name, "ok": true, "result": report_json(report, elapsed) })
                }
                Err(e) => json!({ "target": name, "ok": false, "error": format!("{e:#}") }),
            })
            .collect();
        output::print_json(&json!({ "site": prepared.site, "ok": all_ok, "targets": entries }))?;
    } else {
        let mut table = output::table(&["target", "result", "upload", "url"]);
        for (name, r) in &results {
            match r {
                Ok(report) => table.add_row(vec![
                    Cell::new(name),
                    colored(
                        format!("{} live", output::version(report.outcome.version)),
                        Color::Green,
                    ),
                    Cell::new(sent(report)),
                    Cell::new(&report.outcome.url),
                ]),
                Err(e) => table.add_row(vec![
                    Cell::new(name),
                    colored(format!("failed: {e:#}"), Color::Red),
                    Cell::new(""),
                    Cell::new(""),
                ]),
            };
        }
        println!(
            "Deployed {} to {} of {} in {:.2}s",
            prepared.site,
            results.iter().filter(|(_, r)| r.is_ok()).count(),
            output::count(results.len() as u64, "instance"),
            elapsed.as_secs_f64()
        );
        println!("{table}");
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
        return Err(UsageError(format!(
            "cannot make a site name from the folder {folder:?}: pass --site NAME"
        ))
        .into());
    }
    Ok(name)
}

fn progress_bar(json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
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
