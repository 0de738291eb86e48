//! Deploys (DESIGN.md §3): manifest → missing blobs → chunked upload →
//! one-transaction commit.
//!
//! A deploy is a session owned by one client (today a control connection,
//! named by a number). Uploaded chunks go straight into the store under
//! their final hash, invisible until the blob is complete and re-hashed.
//! Nothing about the live site changes until `commit`, which writes the
//! version and moves the pointer in one store transaction. If the client
//! goes away, its sessions are cancelled and the chunks they left become
//! garbage; if the daemon dies, the collection at start removes them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{config::SiteConfig, SiteChange, SiteError, SiteName, Sites, SITE_CONFIG_FILE};
use crate::content;
use crate::functions::routes::is_function_module;
use crate::settings::Settings;
use crate::store::{FinishedBlob, Hash, NewFile, CHUNK_SIZE};

/// What a client wants deployed.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub site: SiteName,
    pub files: Vec<ManifestFile>,
    /// Make a new version even when it would be the live one again.
    pub force: bool,
}

#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub path: String,
    pub hash: Hash,
    pub size: u64,
}

/// The answer to a manifest: which blobs the store lacks.
#[derive(Debug, Clone)]
pub struct Plan {
    pub deploy_id: u64,
    pub missing: Vec<Hash>,
    pub missing_bytes: u64,
    /// Set when the manifest is exactly the live version (and not forced):
    /// nothing was started, and that version stays live.
    pub unchanged: Option<Committed>,
}

/// Part of a blob: `data` starts at `offset`.
pub struct UploadChunk {
    pub hash: Hash,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// A deploy that went live.
#[derive(Debug, Clone)]
pub struct Committed {
    pub site: SiteName,
    /// Its number (`v1` is the site's first deploy).
    pub version: u64,
    pub files: u64,
    pub total_bytes: u64,
}

#[derive(Default)]
pub(super) struct DeploySessions {
    next_id: AtomicU64,
    sessions: Mutex<HashMap<u64, Session>>,
}

struct Session {
    owner: u64,
    site: SiteName,
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
    pub(super) fn pinned(&self) -> HashSet<Hash> {
        let sessions = self.sessions.lock().expect("deploy sessions");
        sessions
            .values()
            .flat_map(|s| s.sizes.keys().copied())
            .collect()
    }

    pub(super) fn open_count(&self) -> usize {
        self.sessions.lock().expect("deploy sessions").len()
    }

    fn remove(&self, deploy_id: u64) -> Option<Session> {
        self.sessions
            .lock()
            .expect("deploy sessions")
            .remove(&deploy_id)
    }
}

impl Sites {
    /// Checks a manifest against the limits and answers which blobs must be
    /// uploaded. The deploy belongs to `owner` from here on.
    pub async fn begin_deploy(
        self: &Arc<Self>,
        owner: u64,
        manifest: Manifest,
    ) -> Result<Plan, SiteError> {
        let limits = self
            .blocking(|s| Ok(Settings::load(&s.store)?.deploy_limits()))
            .await?;
        let (files, sizes) = check_manifest(&manifest, &limits)?;
        let site = manifest.site;
        if !manifest.force {
            let (site, files) = (site.clone(), files.clone());
            if let Some(live) = self
                .blocking(move |s| s.same_as_live(&site, &files))
                .await?
            {
                tracing::info!(site = %live.site, version = live.version, "deploy skipped: nothing changed");
                return Ok(Plan {
                    deploy_id: 0,
                    missing: Vec::new(),
                    missing_bytes: 0,
                    unchanged: Some(live),
                });
            }
        }

        let hashes: Vec<Hash> = sizes.keys().copied().collect();
        // Held until the session is registered (and so pins its blobs): a
        // collection running in between would delete a stored, unreferenced
        // blob this plan just told the client it need not upload.
        let _guard = self.lock.lock().await;
        let missing = self
            .blocking(move |s| {
                let mut missing = s.store.missing_blobs(&hashes)?;
                // The empty blob needs no upload: store it now.
                let empty = *blake3::hash(b"").as_bytes();
                if missing.contains(&empty) {
                    s.store.put_blob(b"", "application/octet-stream")?;
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
        let deploy_id = self.deploys.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(site = %site, deploy = deploy_id, files = files.len(), missing = missing.len(), missing_bytes, "deploy started");
        let session = Session {
            owner,
            site,
            files,
            sizes,
            pending,
            received: 0,
        };
        self.deploys
            .sessions
            .lock()
            .expect("deploy sessions")
            .insert(deploy_id, session);
        Ok(Plan {
            deploy_id,
            missing,
            missing_bytes,
            unchanged: None,
        })
    }

    /// The live version of `site`, if it has exactly these files (paths and
    /// contents; `fazt.json` included).
    fn same_as_live(
        &self,
        site: &SiteName,
        files: &[NewFile],
    ) -> Result<Option<Committed>, SiteError> {
        let Some(live) = self.store.live_version(site)? else {
            return Ok(None);
        };
        let wanted: HashMap<&str, &Hash> =
            files.iter().map(|f| (f.path.as_str(), &f.hash)).collect();
        let same = live.files.len() == wanted.len()
            && live
                .files
                .iter()
                .all(|f| wanted.get(f.path.as_str()) == Some(&&f.file.hash));
        Ok(same.then(|| Committed {
            site: site.clone(),
            version: live.version.number(),
            files: live.version.file_count,
            total_bytes: live.version.total_bytes,
        }))
    }

    /// Stores chunks of the blobs a deploy is waiting for. Returns the bytes
    /// received so far. A chunk out of order, too long, or for a blob not
    /// awaited ends the deploy.
    pub async fn upload(
        self: &Arc<Self>,
        owner: u64,
        deploy_id: u64,
        chunks: Vec<UploadChunk>,
    ) -> Result<u64, SiteError> {
        // Check every chunk and advance the offsets under the lock; write after.
        let (writes, finished, received) = {
            let mut sessions = self.deploys.sessions.lock().expect("deploy sessions");
            let session = owned_session(&mut sessions, owner, deploy_id)?;
            let mut writes = Vec::with_capacity(chunks.len());
            let mut finished = Vec::new();
            for chunk in chunks {
                let hex = hex::encode(chunk.hash);
                let Some(pending) = session.pending.get_mut(&chunk.hash) else {
                    let why = format!("blob {hex} is not awaited by deploy {deploy_id}");
                    sessions.remove(&deploy_id);
                    return Err(SiteError::Invalid(why));
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
                    let why = format!("upload of blob {hex} refused: {problem}");
                    sessions.remove(&deploy_id);
                    return Err(SiteError::Invalid(why));
                }
                pending.received = end;
                session.received += len;
                if end == pending.size {
                    finished.push((chunk.hash, pending.size, pending.content_type.clone()));
                }
                writes.push((
                    chunk.hash,
                    (chunk.offset / CHUNK_SIZE as u64) as u32,
                    chunk.data,
                ));
            }
            (writes, finished, session.received)
        };

        let result = self
            .blocking(move |s| {
                let refs: Vec<(Hash, u32, &[u8])> =
                    writes.iter().map(|(h, n, d)| (*h, *n, d.as_slice())).collect();
                s.store.write_chunks(&refs)?;
                for (hash, size, content_type) in &finished {
                    if s.store.finish_blob(hash, *size, content_type)? == FinishedBlob::HashMismatch {
                        return Err(SiteError::Invalid(format!(
                            "the bytes uploaded for blob {} do not match its hash (did a file change during the deploy?); nothing was changed",
                            hex::encode(hash)
                        )));
                    }
                }
                Ok(())
            })
            .await;
        if let Err(err) = result {
            if self.deploys.remove(deploy_id).is_some() {
                self.collect_in_background();
            }
            return Err(err);
        }
        Ok(received)
    }

    /// Makes a fully uploaded deploy the live version, in one transaction,
    /// after checking its `fazt.json` and compiling its functions. On any
    /// refusal the live version is unchanged and what was uploaded is
    /// collected.
    pub async fn commit_deploy(
        self: &Arc<Self>,
        owner: u64,
        deploy_id: u64,
    ) -> Result<Committed, SiteError> {
        let _guard = self.lock.lock().await;
        let session = {
            let mut sessions = self.deploys.sessions.lock().expect("deploy sessions");
            owned_session(&mut sessions, owner, deploy_id)?;
            sessions.remove(&deploy_id).expect("checked above")
        };
        let outcome = self.commit_session(session).await;
        if outcome.is_err() {
            self.blocking(|s| {
                s.collect_garbage();
                Ok(())
            })
            .await?;
        }
        outcome
    }

    async fn commit_session(self: &Arc<Self>, session: Session) -> Result<Committed, SiteError> {
        let incomplete: Vec<String> = session
            .pending
            .iter()
            .filter(|(_, p)| p.received < p.size)
            .map(|(h, _)| hex::encode(h))
            .collect();
        if let Some(first) = incomplete.first() {
            return Err(SiteError::Invalid(format!(
                "the upload is incomplete: {} blob(s) were not fully sent (first: {first}); nothing was changed",
                incomplete.len(),
            )));
        }
        self.check_functions(&session.files).await?;
        self.blocking(move |s| {
            let Session { site, files, .. } = session;
            let config = match files.iter().find(|f| f.path == SITE_CONFIG_FILE) {
                Some(file) => {
                    let bytes = s.store.read_blob(&file.hash)?.ok_or_else(|| {
                        SiteError::Internal(format!("{SITE_CONFIG_FILE} went missing"))
                    })?;
                    SiteConfig::parse(&bytes).map_err(SiteError::Invalid)?
                }
                None => SiteConfig::default(),
            };
            let retain = Settings::load(&s.store)?.retain_versions;
            let version = s.store.commit_version(
                &site,
                &files,
                config.spa,
                Some(config.to_stored()),
                usize::try_from(retain).unwrap_or(usize::MAX),
            )?;
            s.announce(&SiteChange::Live {
                site: site.clone(),
                version: version.number(),
                config: Arc::new(config),
            })?;
            s.collect_garbage();
            tracing::info!(site = %site, version = version.number(), files = files.len(), "deploy committed");
            Ok(Committed {
                site,
                version: version.number(),
                files: files.len() as u64,
                total_bytes: version.total_bytes,
            })
        })
        .await
    }

    /// Compiles the version's functions before it can go live: a syntax
    /// error refuses the deploy, naming the file and line.
    async fn check_functions(self: &Arc<Self>, files: &[NewFile]) -> Result<(), SiteError> {
        let modules: Vec<(String, Hash)> = files
            .iter()
            .filter(|f| is_function_module(&f.path))
            .map(|f| (f.path.clone(), f.hash))
            .collect();
        if modules.is_empty() {
            return Ok(());
        }
        let Some(functions) = self.functions.clone() else {
            return Err(SiteError::Internal(
                "this instance runs no functions".to_string(),
            ));
        };
        let sources = self
            .blocking(move |s| {
                modules
                    .into_iter()
                    .map(|(path, hash)| {
                        let source = s.store.read_blob(&hash)?.ok_or_else(|| {
                            SiteError::Internal(format!("the source of {path} went missing"))
                        })?;
                        Ok((path, source.to_vec()))
                    })
                    .collect::<Result<Vec<_>, SiteError>>()
            })
            .await?;
        functions
            .check_syntax(sources)
            .await
            .map_err(|why| SiteError::Invalid(format!("refused: {why}")))
    }

    /// Cancels every deploy of an owner that went away (a closed control
    /// connection); what they uploaded is collected in the background.
    pub fn cancel_deploys_of(self: &Arc<Self>, owner: u64) {
        let cancelled: Vec<(u64, SiteName)> = {
            let mut sessions = self.deploys.sessions.lock().expect("deploy sessions");
            let ids: Vec<u64> = sessions
                .iter()
                .filter(|(_, s)| s.owner == owner)
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
            self.collect_in_background();
        }
    }
}

/// Checks every entry of a manifest against the path rules and the limits,
/// and gathers the files to commit and each blob's size.
#[allow(clippy::type_complexity)]
fn check_manifest(
    manifest: &Manifest,
    limits: &crate::settings::Limits,
) -> Result<(Vec<NewFile>, HashMap<Hash, u64>), SiteError> {
    if manifest.files.len() as u64 > limits.max_files {
        return Err(SiteError::TooLarge(format!(
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
        super::validate_path(&entry.path)
            .map_err(|why| SiteError::Invalid(format!("refused: {why}")))?;
        if !seen_paths.insert(entry.path.as_str()) {
            return Err(SiteError::Invalid(format!(
                "refused: path {:?} appears twice",
                entry.path
            )));
        }
        if entry.size > limits.max_file_bytes {
            return Err(SiteError::TooLarge(format!(
                "{} is {} bytes, over the file size limit of {} bytes (faztctl config set max_file_bytes N)",
                entry.path, entry.size, limits.max_file_bytes
            )));
        }
        if let Some(size) = sizes.insert(entry.hash, entry.size) {
            if size != entry.size {
                return Err(SiteError::Invalid(format!(
                    "refused: two files share hash {} but not their size",
                    hex::encode(entry.hash)
                )));
            }
        }
        total += entry.size;
        files.push(NewFile {
            path: entry.path.clone(),
            hash: entry.hash,
            content_type: content::content_type_for(&entry.path),
        });
    }
    if total > limits.max_site_bytes {
        return Err(SiteError::TooLarge(format!(
            "the site is {total} bytes, over the limit of {} bytes (faztctl config set max_site_bytes N)",
            limits.max_site_bytes
        )));
    }
    Ok((files, sizes))
}

fn owned_session(
    sessions: &mut HashMap<u64, Session>,
    owner: u64,
    deploy_id: u64,
) -> Result<&mut Session, SiteError> {
    match sessions.get_mut(&deploy_id) {
        Some(session) if session.owner == owner => Ok(session),
        _ => Err(SiteError::NotFound(format!(
            "there is no open deploy {deploy_id} on this connection (it failed or was cancelled): start the deploy again"
        ))),
    }
}
