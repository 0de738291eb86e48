//! The sites service: the one place that changes sites.
//!
//! Every change to which versions exist or are live — a deploy's commit, a
//! rollback, a removal — and to which custom domains serve a site, and the
//! garbage collection that follows, goes through [`Sites`]. It takes the
//! write lock that orders them, changes the store in one transaction, and
//! then tells its [`SiteListener`]s (the serving catalog, the realtime hub,
//! the function logs) and its [`DomainListener`]s (the HTTP host routing,
//! later the TLS certificates) what changed, in order, before the caller
//! hears back. So a control request, and later the dashboard or a cluster
//! peer, is a thin adapter: it checks its input, calls one method here, and
//! words the answer.
//!
//! Invariants:
//! - The live version of a site only changes here, under `lock`, in one
//!   store transaction; listeners hear of it before the lock is released.
//! - A custom domain serves one site at most, and only an existing one: it
//!   is added and removed only here, under `lock`, and goes with its site.
//! - A blob is collected only under `lock`, and never while an open deploy
//!   refers to it (a deploy's plan pins its blobs from `begin` on).
//! - Nothing here knows the wire format: arguments and answers are the
//!   daemon's own types; `control/` converts.

mod config;
mod custom_domain;
mod deploy;
mod error;
mod listeners;
mod name;
mod paths;
#[cfg(test)]
mod tests;

pub use config::{of_version as config_of_version, SiteConfig, SITE_CONFIG_FILE};
pub use custom_domain::{CustomDomain, CustomDomainError};
pub use deploy::{Committed, Manifest, ManifestFile, Plan, UploadChunk};
pub use error::SiteError;
pub use name::{SiteName, SiteNameError};
pub use paths::validate_path;

use std::sync::Arc;

use deploy::DeploySessions;

use crate::functions::FunctionPool;
use crate::store::{SiteRecord, Store, StoreError, VersionRecord};

/// What changed about a site, as its listeners hear it.
#[derive(Debug, Clone)]
pub enum SiteChange {
    /// Version number `version` is now live (a deploy, a rollback, or the
    /// daemon's start), configured by `config`.
    Live {
        site: SiteName,
        version: u64,
        config: Arc<SiteConfig>,
    },
    /// The site and all its versions are gone.
    Removed { site: SiteName },
}

impl SiteChange {
    pub fn site(&self) -> &SiteName {
        match self {
            SiteChange::Live { site, .. } | SiteChange::Removed { site } => site,
        }
    }
}

/// Something that keeps a view of the sites and must follow their changes.
///
/// Called on a blocking thread, under the sites write lock, right after the
/// store changed: a listener may read the store, and must not call back
/// into [`Sites`]. An error is reported to whoever made the change (the
/// store already holds it).
pub trait SiteListener: Send + Sync {
    fn site_changed(&self, change: &SiteChange) -> Result<(), StoreError>;
}

/// What changed about a custom domain, as its listeners hear it. At start,
/// every stored domain is announced as `Added`, after the sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainChange {
    /// Requests for `domain` now go to `site`.
    Added {
        domain: CustomDomain,
        site: SiteName,
    },
    /// `domain` no longer serves `site` (removed, or its site was).
    Removed {
        domain: CustomDomain,
        site: SiteName,
    },
}

/// Something that must know which custom domains serve which site: the HTTP
/// host routing, and the TLS certificates that cover each name.
///
/// Called as [`SiteListener`]s are (a blocking thread, under the sites
/// lock, right after the store changed); it keeps an in-memory view, so it
/// cannot fail, and must not call back into [`Sites`].
pub trait DomainListener: Send + Sync {
    fn domain_changed(&self, change: &DomainChange);
}

/// Who hears of changes, in the order they are told.
#[derive(Default)]
pub struct Listeners {
    pub sites: Vec<Arc<dyn SiteListener>>,
    pub domains: Vec<Arc<dyn DomainListener>>,
}

/// A custom domain as `faztctl domain list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEntry {
    pub domain: CustomDomain,
    pub site: SiteName,
    /// When it was added, in seconds since the epoch.
    pub added_at: u64,
}

/// What [`Sites::add_domain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainAdded {
    pub entry: DomainEntry,
    /// The domain served this site already: nothing changed.
    pub unchanged: bool,
}

/// A site as `faztctl sites` lists it.
#[derive(Debug, Clone)]
pub struct SiteSummary {
    pub site: SiteRecord,
    pub versions: u64,
    /// The live version's record.
    pub live: Option<VersionRecord>,
}

/// What a rollback did (version numbers, as users see them).
#[derive(Debug, Clone)]
pub struct RolledBack {
    pub site: SiteName,
    pub from: u64,
    pub to: u64,
}

pub struct Sites {
    store: Arc<Store>,
    /// Serialises what changes which versions are live or referenced:
    /// commits, rollbacks, removals and garbage collection.
    lock: tokio::sync::Mutex<()>,
    deploys: DeploySessions,
    listeners: Vec<Arc<dyn SiteListener>>,
    domain_listeners: Vec<Arc<dyn DomainListener>>,
    /// The instance's own domain: it, and the names under it, route
    /// already and cannot be custom domains.
    instance_domain: String,
    /// Compiles a deploy's functions before it goes live (`None` in tests
    /// that deploy no functions).
    functions: Option<Arc<FunctionPool>>,
}

impl Sites {
    /// The service for the instance whose domain is `instance_domain`.
    pub fn new(
        store: Arc<Store>,
        functions: Option<Arc<FunctionPool>>,
        instance_domain: &str,
        listeners: Listeners,
    ) -> Arc<Sites> {
        Arc::new(Sites {
            store,
            lock: tokio::sync::Mutex::new(()),
            deploys: DeploySessions::default(),
            listeners: listeners.sites,
            domain_listeners: listeners.domains,
            instance_domain: instance_domain.to_string(),
            functions,
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// At start: tells the listeners about every site's live version, then
    /// every custom domain, and collects what deploys interrupted by a
    /// crash left behind.
    pub async fn start(self: &Arc<Self>) -> Result<(), SiteError> {
        let _guard = self.lock.lock().await;
        self.blocking(|s| {
            for site in s.store.sites()? {
                let name = stored_site(&site.name)?;
                let live = s.version(&name, site.live)?;
                s.announce(&SiteChange::Live {
                    site: name.clone(),
                    version: live.number(),
                    config: s.config_of(&name, &live)?,
                })?;
            }
            for entry in s.domain_entries()? {
                s.announce_domain(&DomainChange::Added {
                    domain: entry.domain,
                    site: entry.site,
                });
            }
            s.collect_garbage();
            Ok(())
        })
        .await
    }

    /// Every site with its live version.
    pub async fn list(self: &Arc<Self>) -> Result<Vec<SiteSummary>, SiteError> {
        self.blocking(|s| {
            let mut out = Vec::new();
            for site in s.store.sites()? {
                let versions = s.store.versions(&site.name)?;
                out.push(SiteSummary {
                    live: versions.iter().find(|v| v.id == site.live).cloned(),
                    versions: versions.len() as u64,
                    site,
                });
            }
            Ok(out)
        })
        .await
    }

    /// A site's versions, newest first, with the site's record.
    pub async fn history(
        self: &Arc<Self>,
        site: &SiteName,
    ) -> Result<(SiteRecord, Vec<VersionRecord>), SiteError> {
        let site = site.clone();
        self.blocking(move |s| {
            let record = s.existing(&site)?;
            let mut versions = s.store.versions(&site)?;
            versions.reverse();
            Ok((record, versions))
        })
        .await
    }

    /// Makes version number `version` (default: the newest one older than
    /// the live one) live.
    pub async fn rollback(
        self: &Arc<Self>,
        site: &SiteName,
        version: Option<u64>,
    ) -> Result<RolledBack, SiteError> {
        let site = site.clone();
        let _guard = self.lock.lock().await;
        self.blocking(move |s| {
            let record = s.existing(&site)?;
            let versions = s.store.versions(&site)?;
            let live = s.version(&site, record.live)?;
            let target = match version {
                Some(number) => {
                    versions
                        .iter()
                        .find(|v| v.number() == number)
                        .ok_or_else(|| {
                            let kept: Vec<String> = versions
                                .iter()
                                .map(|v| format!("v{}", v.number()))
                                .collect();
                            SiteError::NotFound(format!(
                                "{site} has no version v{number} (kept: {})",
                                kept.join(", ")
                            ))
                        })?
                }
                None => versions
                    .iter()
                    .rev()
                    .find(|v| v.id < record.live)
                    .ok_or_else(|| {
                        SiteError::NotFound(format!(
                            "{site} has no version older than the live one (v{}) to roll back to",
                            live.number()
                        ))
                    })?,
            };
            if target.id == record.live {
                return Err(SiteError::Invalid(format!(
                    "v{} of {site} is already live",
                    target.number()
                )));
            }
            s.store.set_live(&site, target.id)?;
            s.announce(&SiteChange::Live {
                site: site.clone(),
                version: target.number(),
                config: s.config_of(&site, target)?,
            })?;
            tracing::info!(site = %site, from = live.number(), to = target.number(), "rolled back");
            Ok(RolledBack {
                site,
                from: live.number(),
                to: target.number(),
            })
        })
        .await
    }

    /// Removes a site, its versions, its function data and its custom
    /// domains; its blobs are collected unless another site shares them.
    pub async fn remove(self: &Arc<Self>, site: &SiteName) -> Result<(), SiteError> {
        let site = site.clone();
        let _guard = self.lock.lock().await;
        self.blocking(move |s| {
            let domains = s.store.remove_site(&site)?;
            // The domains go first, so no view routes a name to a site it
            // no longer has. (A name the store held that is not one never
            // reached a view: `start` would have refused it.)
            for domain in domains.iter().filter_map(|d| stored_domain(d).ok()) {
                s.announce_domain(&DomainChange::Removed {
                    domain,
                    site: site.clone(),
                });
            }
            let result = s.announce(&SiteChange::Removed { site: site.clone() });
            tracing::info!(site = %site, "site removed");
            s.collect_garbage();
            result
        })
        .await
    }

    /// Serves `site` at the custom domain `domain` as well. The name is
    /// checked here (see [`CustomDomain::parse`]); one that serves another
    /// site is refused, and adding it again to the same site changes
    /// nothing.
    pub async fn add_domain(
        self: &Arc<Self>,
        site: &SiteName,
        domain: &str,
    ) -> Result<DomainAdded, SiteError> {
        let domain = CustomDomain::parse(domain, &self.instance_domain)?;
        let site = site.clone();
        let _guard = self.lock.lock().await;
        self.blocking(move |s| {
            s.existing(&site)?;
            if let Some(record) = s.store.domain(&domain)? {
                if record.site == site.as_str() {
                    let entry = DomainEntry {
                        domain,
                        site,
                        added_at: record.added_at,
                    };
                    return Ok(DomainAdded {
                        entry,
                        unchanged: true,
                    });
                }
                return Err(SiteError::Invalid(format!(
                    "{domain} already serves site {}; to move it, first run \
                     `faztctl domain rm {domain}`",
                    record.site
                )));
            }
            let record = s.store.add_domain(&domain, &site)?;
            s.announce_domain(&DomainChange::Added {
                domain: domain.clone(),
                site: site.clone(),
            });
            tracing::info!(site = %site, domain = %domain, "custom domain added");
            Ok(DomainAdded {
                entry: DomainEntry {
                    domain,
                    site,
                    added_at: record.added_at,
                },
                unchanged: false,
            })
        })
        .await
    }

    /// Stops serving the custom domain `domain`; returns what it served.
    pub async fn remove_domain(self: &Arc<Self>, domain: &str) -> Result<DomainEntry, SiteError> {
        // The name rule only: a domain added before the instance's domain
        // changed to cover it can still be removed.
        let domain = CustomDomain::parse_name(domain).map_err(CustomDomainError::from)?;
        let _guard = self.lock.lock().await;
        self.blocking(move |s| {
            let record = s.store.remove_domain(&domain)?.ok_or_else(|| {
                SiteError::NotFound(format!(
                    "{domain} is not a custom domain of any site (`faztctl domain list` shows them)"
                ))
            })?;
            let site = stored_site(&record.site)?;
            s.announce_domain(&DomainChange::Removed {
                domain: domain.clone(),
                site: site.clone(),
            });
            tracing::info!(site = %site, domain = %domain, "custom domain removed");
            Ok(DomainEntry {
                domain,
                site,
                added_at: record.added_at,
            })
        })
        .await
    }

    /// Every custom domain and the site it serves, sorted by domain (what
    /// the TLS certificates must cover besides the sites' own names).
    pub async fn custom_domains(
        self: &Arc<Self>,
    ) -> Result<Vec<(CustomDomain, SiteName)>, SiteError> {
        let entries = self.domains(None).await?;
        Ok(entries.into_iter().map(|e| (e.domain, e.site)).collect())
    }

    /// The custom domains of `site` (which must exist), or of every site,
    /// with when each was added, sorted by domain.
    pub async fn domains(
        self: &Arc<Self>,
        site: Option<&SiteName>,
    ) -> Result<Vec<DomainEntry>, SiteError> {
        let site = site.cloned();
        self.blocking(move |s| {
            if let Some(site) = &site {
                s.existing(site)?;
            }
            let mut entries = s.domain_entries()?;
            entries.retain(|e| site.as_ref().is_none_or(|site| e.site == *site));
            Ok(entries)
        })
        .await
    }

    /// Deploys still open (begun, not committed or cancelled).
    pub fn open_deploys(&self) -> usize {
        self.deploys.open_count()
    }

    /// Runs a garbage collection now (under the write lock).
    pub async fn collect_now(self: &Arc<Self>) -> Result<(), SiteError> {
        let _guard = self.lock.lock().await;
        self.blocking(|s| {
            s.collect_garbage();
            Ok(())
        })
        .await
    }

    /// Tells every listener, in order; the first error is returned, after
    /// the others were told too (each view should be as current as it can).
    fn announce(&self, change: &SiteChange) -> Result<(), SiteError> {
        let mut first_error = None;
        for listener in &self.listeners {
            if let Err(err) = listener.site_changed(change) {
                tracing::error!(site = %change.site(), error = %err, "a view of the sites could not follow a change");
                first_error.get_or_insert(err);
            }
        }
        match first_error {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }

    /// Tells every domain listener, in order.
    fn announce_domain(&self, change: &DomainChange) {
        for listener in &self.domain_listeners {
            listener.domain_changed(change);
        }
    }

    fn domain_entries(&self) -> Result<Vec<DomainEntry>, SiteError> {
        self.store
            .domains()?
            .into_iter()
            .map(|(domain, record)| {
                Ok(DomainEntry {
                    domain: stored_domain(&domain)?,
                    site: stored_site(&record.site)?,
                    added_at: record.added_at,
                })
            })
            .collect()
    }

    /// The record of `site`'s version with store id `id`.
    fn version(&self, site: &SiteName, id: u64) -> Result<VersionRecord, SiteError> {
        self.store
            .versions(site)?
            .into_iter()
            .find(|v| v.id == id)
            .ok_or_else(|| {
                StoreError::NoSuchVersion {
                    site: site.to_string(),
                    version: id,
                }
                .into()
            })
    }

    /// The configuration `version` of `site` was deployed with.
    fn config_of(
        &self,
        site: &SiteName,
        version: &VersionRecord,
    ) -> Result<Arc<SiteConfig>, SiteError> {
        Ok(Arc::new(config::of_version(&self.store, site, version)?))
    }

    fn existing(&self, site: &SiteName) -> Result<SiteRecord, SiteError> {
        self.store
            .site(site)?
            .ok_or_else(|| SiteError::NotFound(format!("there is no site named {site}")))
    }

    /// Removes unreferenced blobs and orphan chunks, sparing open deploys.
    /// Call with the write lock held, on a blocking thread.
    fn collect_garbage(&self) {
        let pinned = self.deploys.pinned();
        match self.store.collect_garbage(&pinned) {
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

    /// Collects garbage in the background (after a deploy was abandoned,
    /// where nobody waits for the answer).
    fn collect_in_background(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let sites = self.clone();
        runtime.spawn(async move {
            let _ = sites.collect_now().await;
        });
    }

    /// Runs blocking store work off the async reactor, in the caller's
    /// span (so its log lines keep the request's id).
    async fn blocking<T, F>(self: &Arc<Self>, work: F) -> Result<T, SiteError>
    where
        T: Send + 'static,
        F: FnOnce(&Sites) -> Result<T, SiteError> + Send + 'static,
    {
        let this = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| work(&this))).await?
    }
}

/// A site name read back from the store, which only ever holds valid ones.
fn stored_site(name: &str) -> Result<SiteName, SiteError> {
    SiteName::parse(name).map_err(|_| {
        StoreError::Inconsistent(format!("the store holds a site named {name:?}")).into()
    })
}

/// A custom domain read back from the store, which only ever holds valid ones.
fn stored_domain(name: &str) -> Result<CustomDomain, SiteError> {
    CustomDomain::parse_name(name).map_err(|_| {
        StoreError::Inconsistent(format!("the store holds a custom domain {name:?}")).into()
    })
}
