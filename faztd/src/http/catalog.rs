//! The serving view of the store: every site's live file index in memory,
//! and a byte-bounded cache of file bodies, so the hot path is a hash-map
//! lookup and a `Bytes` clone (no copy of the body, no database read).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::Stream;
use warp::http::HeaderValue;

use crate::content;
use crate::functions::routes::is_function_module;
use crate::functions::FunctionSet;
use crate::sites::{self, SiteChange, SiteConfig, SiteListener, SITE_CONFIG_FILE};
use crate::store::{Encoding, Hash, Store, StoreError, CHUNK_SIZE};

/// Bodies up to this size are cached whole; larger ones are streamed in chunks.
pub const MAX_CACHED_BODY: u64 = 8 * 1024 * 1024;
/// Total bytes of bodies kept in memory.
const BODY_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// One file as it is served, with its headers precomputed.
#[derive(Debug)]
pub struct ServedFile {
    pub hash: Hash,
    pub size: u64,
    pub content_type: HeaderValue,
    pub cache_control: HeaderValue,
    /// Strong ETags of the identity, gzip and brotli representations.
    pub etag: HeaderValue,
    pub etag_gzip: HeaderValue,
    pub etag_brotli: HeaderValue,
    /// Whether this type gets `Vary: Accept-Encoding`.
    pub compressible: bool,
    pub gzip_size: Option<u64>,
    pub brotli_size: Option<u64>,
    /// The hex hash prefix used in ETags, for `If-None-Match` comparison.
    pub tag: String,
}

/// The live version of one site.
#[derive(Debug)]
pub struct ServedSite {
    pub name: String,
    pub version: u64,
    /// The version's `fazt.json`, as its deploy checked it.
    pub config: Arc<SiteConfig>,
    pub last_modified: HeaderValue,
    pub modified_secs: u64,
    pub files: HashMap<String, Arc<ServedFile>>,
    /// The version's functions (`api/*.js`), which are never served as files.
    pub functions: Option<Arc<FunctionSet>>,
}

impl ServedSite {
    pub fn file(&self, path: &str) -> Option<&Arc<ServedFile>> {
        self.files.get(path)
    }
}

#[derive(Clone)]
struct BodyWeighter;

impl quick_cache::Weighter<(Hash, u8), Bytes> for BodyWeighter {
    fn weight(&self, _key: &(Hash, u8), body: &Bytes) -> u64 {
        body.len() as u64 + 64
    }
}

pub struct SiteCatalog {
    store: Arc<Store>,
    sites: RwLock<HashMap<String, Arc<ServedSite>>>,
    bodies: quick_cache::sync::Cache<(Hash, u8), Bytes, BodyWeighter>,
}

/// The catalog follows the sites service: a live version is loaded (its
/// file index, headers and functions) before the change is answered.
impl SiteListener for SiteCatalog {
    fn site_changed(&self, change: &SiteChange) -> Result<(), StoreError> {
        match change {
            SiteChange::Live { site, config, .. } => self.load_site(site, config.clone()),
            SiteChange::Removed { site } => {
                self.sites
                    .write()
                    .expect("catalog lock")
                    .remove(site.as_str());
                Ok(())
            }
        }
    }
}

impl SiteCatalog {
    /// An empty catalog; the sites service fills it (`Sites::start`).
    pub fn new(store: Arc<Store>) -> SiteCatalog {
        SiteCatalog {
            store,
            sites: RwLock::new(HashMap::new()),
            bodies: quick_cache::sync::Cache::with_weighter(4096, BODY_CACHE_BYTES, BodyWeighter),
        }
    }

    /// A catalog of every site in `store`, without a sites service (tests).
    pub fn load(store: Arc<Store>) -> Result<SiteCatalog, StoreError> {
        let catalog = SiteCatalog::new(store);
        for site in catalog.store.sites()? {
            let Some(version) = catalog
                .store
                .versions(&site.name)?
                .into_iter()
                .find(|v| v.id == site.live)
            else {
                continue;
            };
            let config = sites::config_of_version(&catalog.store, &site.name, &version)?;
            catalog.load_site(&site.name, Arc::new(config))?;
        }
        Ok(catalog)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The live version of `name`, if the site exists.
    pub fn site(&self, name: &str) -> Option<Arc<ServedSite>> {
        self.sites.read().expect("catalog lock").get(name).cloned()
    }

    pub fn site_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .sites
            .read()
            .expect("catalog lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Reads one site's live version from the store, configured by `config`.
    fn load_site(&self, name: &str, config: Arc<SiteConfig>) -> Result<(), StoreError> {
        // Read before taking the lock, so serving never waits on the store.
        let loaded = self.store.live_version(name)?;
        let mut sites = self.sites.write().expect("catalog lock");
        match loaded {
            None => {
                sites.remove(name);
            }
            Some(live) => {
                let (site, version) = (live.site, live.version);
                let functions = FunctionSet::build(
                    &site.name,
                    version.number(),
                    live.files.iter().map(|f| (f.path.as_str(), f.file.hash)),
                )
                .map(Arc::new);
                let modified = UNIX_EPOCH + Duration::from_secs(version.created_at);
                let files = live
                    .files
                    .into_iter()
                    .filter(|f| f.path != SITE_CONFIG_FILE && !is_function_module(&f.path))
                    .map(|crate::store::LiveFile { path, file, blob }| {
                        let tag = hex::encode(&file.hash[..12]);
                        let etag = |suffix: &str| {
                            HeaderValue::from_str(&format!("\"{tag}{suffix}\"")).expect("hex etag")
                        };
                        let variant = |enc: Encoding| {
                            blob.variants
                                .iter()
                                .find(|(e, _)| *e == enc)
                                .map(|(_, size)| *size)
                        };
                        let served = ServedFile {
                            hash: file.hash,
                            size: blob.size,
                            content_type: HeaderValue::from_str(&file.content_type)
                                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
                            cache_control: HeaderValue::from_static(content::cache_control_for(
                                &path,
                                &file.content_type,
                            )),
                            etag: etag(""),
                            etag_gzip: etag("-gz"),
                            etag_brotli: etag("-br"),
                            compressible: content::is_compressible(&file.content_type),
                            gzip_size: variant(Encoding::Gzip),
                            brotli_size: variant(Encoding::Brotli),
                            tag,
                        };
                        (path, Arc::new(served))
                    })
                    .collect();
                let served = ServedSite {
                    name: site.name.clone(),
                    version: version.number(),
                    config,
                    last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(modified))
                        .expect("http date"),
                    modified_secs: version.created_at,
                    files,
                    functions,
                };
                sites.insert(site.name, Arc::new(served));
            }
        }
        Ok(())
    }

    /// The whole body of `file` in the given encoding (identity if `None`),
    /// from the cache or the store. Only for files up to [`MAX_CACHED_BODY`].
    pub async fn body(
        &self,
        file: &ServedFile,
        encoding: Option<Encoding>,
    ) -> Result<Bytes, StoreError> {
        let key = (file.hash, encoding.map(|e| e as u8).unwrap_or(0));
        if let Some(body) = self.bodies.get(&key) {
            return Ok(body);
        }
        let store = self.store.clone();
        let hash = file.hash;
        let body = tokio::task::spawn_blocking(move || match encoding {
            None => store.read_blob(&hash),
            Some(enc) => store.read_variant(&hash, enc),
        })
        .await
        .map_err(|e| StoreError::Inconsistent(format!("blob reader failed: {e}")))??
        .ok_or_else(|| {
            StoreError::Inconsistent(format!("blob {} is missing", hex::encode(hash)))
        })?;
        self.bodies.insert(key, body.clone());
        Ok(body)
    }

    /// Streams bytes `start..end` of a large blob, one chunk read at a time.
    pub fn stream_range(
        &self,
        hash: Hash,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
        let store = self.store.clone();
        futures_util::stream::unfold(start, move |pos| {
            let store = store.clone();
            async move {
                if pos >= end {
                    return None;
                }
                let next = ((pos / CHUNK_SIZE as u64) + 1) * CHUNK_SIZE as u64;
                let next = next.min(end);
                let read =
                    tokio::task::spawn_blocking(move || store.read_blob_range(&hash, pos, next))
                        .await
                        .map_err(std::io::Error::other)
                        .and_then(|r| r.map_err(std::io::Error::other));
                Some((read, next))
            }
        })
    }
}
