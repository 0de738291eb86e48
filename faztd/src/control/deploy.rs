//! Deploys (DESIGN.md §3): manifest → missing blobs → chunked upload →
//! one-transaction commit.
//!
//! A deploy is a session owned by one control connection. Uploaded chunks go
//! straight into the store under their final hash, invisible until the blob
//! is complete and re-hashed. Nothing about the live site changes until
//! `commit`, which writes the version and moves the pointer in one redb
//! transaction. If the client goes away, its sessions are cancelled and the
//! chunks they left become garbage; if the daemon dies, the collector that
//! runs at start-up removes them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fazt_proto::{BlobHash, Chunk, DeployManifest, DeployOutcome, DeployPlan, RpcError};

use crate::content;
use crate::functions::routes::is_function_module;
use crate::instance::Instance;
use crate::settings::Limits;
use crate::store::{FinishedBlob, Hash, NewFile, CHUNK_SIZE};

/// The site configuration file. It is kept with the version but not served.
pub const SITE_CONFIG_FILE: &str = "fazt.json";
/// Names that can never be sites.
const RESERVED_SITE_NAMES: &[&str] = &["admin"];
const MAX_PATH_BYTES: usize = 1024;
const MAX_SEGMENT_BYTES: usize = 255;

#[derive(Default)]
pub struct DeploySessions {
    next_id: AtomicU64,
    sessions: Mutex<HashMap<u64, Session>>,
}

struct Session {
    connection: u64,
    site: String,
    files: Vec<NewFile>,
    sizes: HashMap<Hash, u64>,
    pending: HashMap<Hash, Pending>,
    received: u64,
}

struct Pending {
    size: u64,
    received: u64,
    content_type: String,
}

impl DeploySessions {
    /// Every blob an open deploy refers to: the collector must keep them.
    pub fn pinned(&self) -> HashSet<Hash> {
        let sessions = self.sessions.lock().expect("deploy sessions");
        sessions
            .values()
            .flat_map(|s| s.sizes.keys().copied())
            .collect()
    }

    pub fn open_count(&self) -> usize {
        self.sessions.lock().expect("deploy sessions").len()
    }
}

/// Checks a path from a manifest: relative, `/`-separated, no `.`/`..` or
/// empty segments, no backslashes or control characters, bounded length.
pub fn validate_path(path: &str) -> Result<(), String> {
    let shown = path.escape_debug();
    if path.is_empty() {
        return Err("an empty path".to_string());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "path \"{}...\" is longer than {MAX_PATH_BYTES} bytes",
            &shown.to_string()[..40]
        ));
    }
    if path.starts_with('/') {
        return Err(format!("path \"{shown}\" is absolute"));
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!(
            "path \"{shown}\" contains a control character or a backslash"
        ));
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(format!("path \"{shown}\" has an empty segment")),
            "." | ".." => return Err(format!("path \"{shown}\" climbs with \"{segment}\"")),
            s if s.len() > MAX_SEGMENT_BYTES => {
                return Err(format!(
                    "path \"{shown}\" has a name longer than {MAX_SEGMENT_BYTES} bytes"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

pub async fn begin(
    instance: &Arc<Instance>,
    connection: u64,
    manifest: DeployManifest,
) -> Result<DeployPlan, RpcError> {
    let site = manifest.site.clone();
    if !fazt_proto::is_valid_site_name(&site) {
        return Err(RpcError::Invalid(format!(
            "{site:?} is not a valid site name: use 1-63 lower-case letters, digits and dashes (pass --site NAME)"
        )));
    }
    if RESERVED_SITE_NAMES.contains(&site.as_str()) {
        return Err(RpcError::Invalid(format!(
            "{site:?} is reserved for the dashboard: pick another name"
        )));
    }
    let limits = instance.blocking(|i| Ok(Limits::load(&i.store)?)).await?;
    if manifest.files.len() as u64 > limits.max_files {
        return Err(RpcError::TooLarge(format!(
            "the site has {} files, more than the limit of {} (faztctl config set max_files N)",
            manifest.files.len(),
            limits.max_files
        )));
    }
    let mut seen_paths = HashSet::new();
    let mut sizes: HashMap<Hash, u64> = HashMap::new();
    let mut files = Vec::with_capacity(manifest.files.len());
    let mut total = 0u64;
    for entry in &manifest.files {
        validate_path(&entry.path).map_err(|why| RpcError::Invalid(format!("refused: {why}")))?;
        if !seen_paths.insert(entry.path.as_str()) {
            return Err(RpcError::Invalid(format!(
                "refused: path {:?} appears twice",
                entry.path
            )));
        }
        if entry.size > limits.max_file_bytes {
            return Err(RpcError::TooLarge(format!(
                "{} is {} bytes, over the file size limit of {} bytes (faztctl config set max_file_bytes N)",
                entry.path, entry.size, limits.max_file_bytes
            )));
        }
        if let Some(size) = sizes.insert(entry.hash.0, entry.size) {
            if size != entry.size {
                return Err(RpcError::Invalid(format!(
                    "refused: two files share hash {} but not their size",
                    entry.hash
                )));
            }
        }
        total += entry.size;
        files.push(NewFile {
            path: entry.path.clone(),
            hash: entry.hash.0,
            content_type: content::content_type_for(&entry.path),
        });
    }
    if total > limits.max_site_bytes {
        return Err(RpcError::TooLarge(format!(
            "the site is {total} bytes, over the limit of {} bytes (faztctl config set max_site_bytes N)",
            limits.max_site_bytes
        )));
    }

    let hashes: Vec<Hash> = sizes.keys().copied().collect();
    // Held until the session is registered (and so pins its blobs): a
    // collection running in between would delete a stored, unreferenced blob
    // this plan just told the client it need not upload.
    let _guard = instance.write_lock.lock().await;
    let missing = instance
        .blocking(move |i| {
            let mut missing = i.store.missing_blobs(&hashes)?;
            // The empty blob needs no upload: store it now.
            let empty = *blake3::hash(b"").as_bytes();
            if missing.contains(&empty) {
                i.store.put_blob(b"", "application/octet-stream")?;
                missing.retain(|h| *h != empty);
            }
            Ok(missing)
        })
        .await?;
    let content_types: HashMap<Hash, &str> = files
        .iter()
        .map(|f| (f.hash, f.content_type.as_str()))
        .collect();
    let pending: HashMap<Hash, Pending> = missing
        .iter()
        .map(|h| {
            let pending = Pending {
                size: sizes[h],
                received: 0,
                content_type: content_types[h].to_string(),
            };
            (*h, pending)
        })
        .collect();
    let missing_bytes = pending.values().map(|p| p.size).sum();
    let deploy_id = instance.deploys.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(site = %site, deploy = deploy_id, files = files.len(), missing = missing.len(), missing_bytes, "deploy started");
    instance
        .deploys
        .sessions
        .lock()
        .expect("deploy sessions")
        .insert(
            deploy_id,
            Session {
                connection,
                site,
                files,
                sizes,
                pending,
                received: 0,
            },
        );
    Ok(DeployPlan {
        deploy_id,
        missing: missing.into_iter().map(BlobHash).collect(),
        missing_bytes,
    })
}

pub async fn upload(
    instance: &Arc<Instance>,
    connection: u64,
    deploy_id: u64,
    chunks: Vec<Chunk>,
) -> Result<u64, RpcError> {
    // Check every chunk and advance the offsets under the lock; write after.
    let (writes, finished, received) = {
        let mut sessions = instance.deploys.sessions.lock().expect("deploy sessions");
        let session = owned_session(&mut sessions, connection, deploy_id)?;
        let mut writes = Vec::with_capacity(chunks.len());
        let mut finished = Vec::new();
        for chunk in chunks {
            let Some(pending) = session.pending.get_mut(&chunk.hash.0) else {
                let why = format!("blob {} is not awaited by deploy {deploy_id}", chunk.hash);
                sessions.remove(&deploy_id);
                return Err(RpcError::Invalid(why));
            };
            let len = chunk.data.len() as u64;
            let end = chunk.offset + len;
            let problem = if chunk.offset != pending.received {
                Some(format!(
                    "expected offset {}, got {}",
                    pending.received, chunk.offset
                ))
            } else if end > pending.size {
                Some(format!(
                    "{end} bytes sent, more than the declared {}",
                    pending.size
                ))
            } else if len == 0 || (len != CHUNK_SIZE as u64 && end != pending.size) {
                Some(format!("chunks must be {CHUNK_SIZE} bytes except the last"))
            } else {
                None
            };
            if let Some(problem) = problem {
                let why = format!("upload of blob {} refused: {problem}", chunk.hash);
                sessions.remove(&deploy_id);
                return Err(RpcError::Invalid(why));
            }
            pending.received = end;
            session.received += len;
            if end == pending.size {
                finished.push((chunk.hash.0, pending.size, pending.content_type.clone()));
            }
            writes.push((
                chunk.hash.0,
                (chunk.offset / CHUNK_SIZE as u64) as u32,
                chunk.data,
            ));
        }
        (writes, finished, session.received)
    };

    let result = instance
        .blocking(move |i| {
            let refs: Vec<(Hash, u32, &[u8])> = writes.iter().map(|(h, n, d)| (*h, *n, d.as_slice())).collect();
            i.store.write_chunks(&refs)?;
            for (hash, size, content_type) in &finished {
                if i.store.finish_blob(hash, *size, content_type)? == FinishedBlob::HashMismatch {
                    return Err(RpcError::Invalid(format!(
                        "the bytes uploaded for blob {} do not match its hash (did a file change during the deploy?); nothing was changed",
                        hex::encode(hash)
                    )));
                }
            }
            Ok(())
        })
        .await;
    if let Err(err) = result {
        cancel(instance, deploy_id);
        return Err(err);
    }
    Ok(received)
}

pub async fn commit(
    instance: &Arc<Instance>,
    connection: u64,
    deploy_id: u64,
) -> Result<DeployOutcome, RpcError> {
    let _guard = instance.write_lock.lock().await;
    let session = {
        let mut sessions = instance.deploys.sessions.lock().expect("deploy sessions");
        owned_session(&mut sessions, connection, deploy_id)?;
        sessions.remove(&deploy_id).expect("checked above")
    };
    let incomplete: Vec<String> = session
        .pending
        .iter()
        .filter(|(_, p)| p.received < p.size)
        .map(|(h, _)| hex::encode(h))
        .collect();
    if !incomplete.is_empty() {
        let why = format!(
            "the upload is incomplete: {} blob(s) were not fully sent (first: {}); nothing was changed",
            incomplete.len(),
            incomplete[0]
        );
        instance
            .blocking(|i| {
                collect_garbage(i);
                Ok(())
            })
            .await?;
        return Err(RpcError::Invalid(why));
    }
    if let Err(err) = check_functions(instance, &session.files).await {
        instance
            .blocking(|i| {
                collect_garbage(i);
                Ok(())
            })
            .await?;
        return Err(err);
    }
    let outcome = instance
        .blocking(move |i| {
            let Session { site, files, .. } = session;
            let spa = match files.iter().find(|f| f.path == SITE_CONFIG_FILE) {
                Some(config) => read_site_config(i, &config.hash)?.spa,
                None => false,
            };
            let version = i.store.commit_version(&site, &files, spa)?;
            i.catalog.reload(&site)?;
            collect_garbage(i);
            let live = i
                .store
                .versions(&site)?
                .into_iter()
                .find(|v| v.id == version);
            tracing::info!(site = %site, version, files = files.len(), "deploy committed");
            Ok(DeployOutcome {
                url: i.site_url(&site),
                version,
                files: files.len() as u64,
                total_bytes: live.map(|v| v.total_bytes).unwrap_or(0),
                site,
            })
        })
        .await;
    if outcome.is_err() {
        instance
            .blocking(|i| {
                collect_garbage(i);
                Ok(())
            })
            .await?;
    }
    outcome
}

/// Compiles the version's functions before it can go live: a syntax error
/// refuses the deploy, naming the file and line.
async fn check_functions(instance: &Arc<Instance>, files: &[NewFile]) -> Result<(), RpcError> {
    let modules: Vec<(String, Hash)> = files
        .iter()
        .filter(|f| is_function_module(&f.path))
        .map(|f| (f.path.clone(), f.hash))
        .collect();
    if modules.is_empty() {
        return Ok(());
    }
    let sources = instance
        .blocking(move |i| {
            modules
                .into_iter()
                .map(|(path, hash)| {
                    let source = i.store.read_blob(&hash)?.ok_or_else(|| {
                        RpcError::Failed(format!("the source of {path} went missing"))
                    })?;
                    Ok((path, source.to_vec()))
                })
                .collect::<Result<Vec<_>, RpcError>>()
        })
        .await?;
    instance
        .functions
        .check_syntax(sources)
        .await
        .map_err(|why| RpcError::Invalid(format!("refused: {why}")))
}

/// What a site's `fazt.json` may say.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SiteConfig {
    #[serde(default)]
    spa: bool,
    /// Who may publish on which channels; the catalog reads it again from
    /// the live version's `fazt.json` (see `SiteRealtime::from_site_config`).
    #[serde(default)]
    realtime: Option<crate::realtime::SiteRealtime>,
}

fn read_site_config(instance: &Instance, hash: &Hash) -> Result<SiteConfig, RpcError> {
    let bytes = instance
        .store
        .read_blob(hash)?
        .ok_or_else(|| RpcError::Failed("fazt.json went missing".to_string()))?;
    let config: SiteConfig = serde_json::from_slice(&bytes)
        .map_err(|e| RpcError::Invalid(format!("{SITE_CONFIG_FILE} is not valid: {e}")))?;
    if let Some(realtime) = &config.realtime {
        realtime
            .validate()
            .map_err(|why| RpcError::Invalid(format!("{SITE_CONFIG_FILE}: {why}")))?;
    }
    Ok(config)
}

fn owned_session(
    sessions: &mut HashMap<u64, Session>,
    connection: u64,
    deploy_id: u64,
) -> Result<&mut Session, RpcError> {
    match sessions.get_mut(&deploy_id) {
        Some(session) if session.connection == connection => Ok(session),
        _ => Err(RpcError::NotFound(format!(
            "there is no open deploy {deploy_id} on this connection (it failed or was cancelled): start the deploy again"
        ))),
    }
}

/// Drops one session and collects what it left behind.
fn cancel(instance: &Arc<Instance>, deploy_id: u64) {
    let removed = instance
        .deploys
        .sessions
        .lock()
        .expect("deploy sessions")
        .remove(&deploy_id);
    if removed.is_some() {
        spawn_collection(instance.clone());
    }
}

/// Cancels every deploy of a connection that went away.
pub fn cancel_connection(instance: &Arc<Instance>, connection: u64) {
    let cancelled: Vec<(u64, String)> = {
        let mut sessions = instance.deploys.sessions.lock().expect("deploy sessions");
        let ids: Vec<u64> = sessions
            .iter()
            .filter(|(_, s)| s.connection == connection)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| sessions.remove(&id).map(|s| (id, s.site)))
            .collect()
    };
    for (id, site) in &cancelled {
        tracing::warn!(deploy = id, site = %site, "the client went away: deploy cancelled, the live version is unchanged");
    }
    if !cancelled.is_empty() {
        spawn_collection(instance.clone());
    }
}

fn spawn_collection(instance: Arc<Instance>) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let _guard = instance.write_lock.lock().await;
            let _ = instance
                .blocking(|i| {
                    collect_garbage(i);
                    Ok(())
                })
                .await;
        });
    }
}

/// Removes unreferenced blobs and orphan chunks, sparing open deploys.
/// Call with the instance's write lock held.
pub fn collect_garbage(instance: &Instance) {
    let pinned = instance.deploys.pinned();
    match instance.store.collect_garbage(&pinned) {
        Ok(c) if c.blobs > 0 || c.orphan_chunks > 0 => {
            tracing::info!(
                blobs = c.blobs,
                orphan_chunks = c.orphan_chunks,
                "collected garbage"
            )
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "garbage collection failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_path;

    #[test]
    fn manifest_paths() {
        let long = "a".repeat(2000);
        let long_segment = format!("x/{}", "b".repeat(300));
        for ok in [
            "index.html",
            "a/b/c.txt",
            ".well-known/x",
            "café.html",
            "a..b",
        ] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            "a\nb",
            &long,
            &long_segment,
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }
}
