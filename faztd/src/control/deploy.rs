//! Deploys over the control socket: the wire's manifest and chunks in, the
//! sites service's plan and outcome out. The deploy logic itself is in
//! `sites` (see `sites/deploy.rs`).

use std::sync::Arc;

use fazt_proto::{BlobHash, Chunk, DeployManifest, DeployOutcome, DeployPlan, RpcError};

use crate::instance::Instance;
use crate::sites::{Committed, Manifest, ManifestFile, SiteName, UploadChunk};

pub async fn begin(
    instance: &Arc<Instance>,
    connection: u64,
    manifest: DeployManifest,
) -> Result<DeployPlan, RpcError> {
    let site = SiteName::parse_deployable(&manifest.site)
        .map_err(|e| RpcError::Invalid(format!("{e} (pass --site NAME)")))?;
    let manifest = Manifest {
        site,
        files: manifest
            .files
            .into_iter()
            .map(|f| ManifestFile {
                path: f.path,
                hash: f.hash.0,
                size: f.size,
            })
            .collect(),
        force: manifest.force,
    };
    let plan = instance.sites.begin_deploy(connection, manifest).await?;
    Ok(DeployPlan {
        deploy_id: plan.deploy_id,
        missing: plan.missing.into_iter().map(BlobHash).collect(),
        missing_bytes: plan.missing_bytes,
        unchanged: plan.unchanged.map(|live| outcome(instance, live)),
    })
}

pub async fn upload(
    instance: &Arc<Instance>,
    connection: u64,
    deploy_id: u64,
    chunks: Vec<Chunk>,
) -> Result<u64, RpcError> {
    let chunks = chunks
        .into_iter()
        .map(|c| UploadChunk {
            hash: c.hash.0,
            offset: c.offset,
            data: c.data,
        })
        .collect();
    Ok(instance.sites.upload(connection, deploy_id, chunks).await?)
}

pub async fn commit(
    instance: &Arc<Instance>,
    connection: u64,
    deploy_id: u64,
) -> Result<DeployOutcome, RpcError> {
    let done = instance.sites.commit_deploy(connection, deploy_id).await?;
    Ok(outcome(instance, done))
}

fn outcome(instance: &Instance, done: Committed) -> DeployOutcome {
    DeployOutcome {
        url: instance.site_url(&done.site),
        local_url: Some(instance.site_urls(&done.site).local),
        site: done.site.into(),
        version: done.version,
        files: done.files,
        total_bytes: done.total_bytes,
    }
}

/// Cancels every deploy of a connection that went away.
pub fn cancel_connection(instance: &Arc<Instance>, connection: u64) {
    instance.sites.cancel_deploys_of(connection);
}
