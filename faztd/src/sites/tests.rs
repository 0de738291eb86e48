//! The sites service in process: a real store in a temp dir, no socket, and
//! a listener that records what it was told.

use std::sync::{Arc, Mutex};

use super::*;
use crate::store::CHUNK_SIZE;

/// Records every change, as "live NAME VERSION spa=BOOL" / "removed NAME".
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl SiteListener for Recorder {
    fn site_changed(&self, change: &SiteChange) -> Result<(), StoreError> {
        let line = match change {
            SiteChange::Live {
                site,
                version,
                config,
            } => format!("live {site} {version} spa={}", config.spa),
            SiteChange::Removed { site } => format!("removed {site}"),
        };
        self.0.lock().unwrap().push(line);
        Ok(())
    }
}

/// Records domain changes as "domain DOMAIN -> SITE" / "domain DOMAIN removed".
impl DomainListener for Recorder {
    fn domain_changed(&self, change: &DomainChange) {
        let line = match change {
            DomainChange::Added { domain, site } => format!("domain {domain} -> {site}"),
            DomainChange::Removed { domain, .. } => format!("domain {domain} removed"),
        };
        self.0.lock().unwrap().push(line);
    }
}

/// The instance's domain in these tests.
const INSTANCE_DOMAIN: &str = "fazt.example.com";

/// `recorder` hears every site and domain change.
fn heard_by(recorder: &Arc<Recorder>) -> Listeners {
    Listeners {
        sites: vec![recorder.clone()],
        domains: vec![recorder.clone()],
    }
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    sites: Arc<Sites>,
    heard: Arc<Recorder>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("data.redb")).unwrap());
    let heard = Arc::new(Recorder::default());
    let sites = Sites::new(store.clone(), None, INSTANCE_DOMAIN, heard_by(&heard));
    Fixture {
        _dir: dir,
        store,
        sites,
        heard,
    }
}

fn name(s: &str) -> SiteName {
    SiteName::parse(s).unwrap()
}

fn manifest(site: &str, files: &[(&str, &[u8])]) -> Manifest {
    Manifest {
        site: name(site),
        files: files
            .iter()
            .map(|(path, data)| ManifestFile {
                path: path.to_string(),
                hash: *blake3::hash(data).as_bytes(),
                size: data.len() as u64,
            })
            .collect(),
        force: false,
    }
}

/// Uploads every missing blob of `files` for `plan`, in store-sized chunks.
async fn upload_missing(f: &Fixture, owner: u64, plan: &Plan, files: &[(&str, &[u8])]) {
    for (_, data) in files {
        let hash = *blake3::hash(data).as_bytes();
        if !plan.missing.contains(&hash) {
            continue;
        }
        let chunks = data
            .chunks(CHUNK_SIZE)
            .enumerate()
            .map(|(n, part)| UploadChunk {
                hash,
                offset: (n * CHUNK_SIZE) as u64,
                data: part.to_vec(),
            })
            .collect();
        f.sites.upload(owner, plan.deploy_id, chunks).await.unwrap();
    }
}

async fn deploy(f: &Fixture, site: &str, files: &[(&str, &[u8])]) -> Result<Committed, SiteError> {
    let plan = f.sites.begin_deploy(1, manifest(site, files)).await?;
    upload_missing(f, 1, &plan, files).await;
    f.sites.commit_deploy(1, plan.deploy_id).await
}

/// The number of `site`'s live version.
fn live_number(f: &Fixture, site: &str) -> u64 {
    f.store
        .live_version(site)
        .unwrap()
        .unwrap()
        .version
        .number()
}

fn blob_count(f: &Fixture, data: &[u8]) -> bool {
    f.store.has_blob(blake3::hash(data).as_bytes()).unwrap()
}

#[tokio::test]
async fn a_deploy_goes_live_and_its_listeners_hear_it_with_the_config() {
    let f = fixture();
    let done = deploy(
        &f,
        "blog",
        &[
            ("index.html", b"<h1>hi</h1>"),
            ("fazt.json", br#"{"spa": true}"#),
        ],
    )
    .await
    .unwrap();
    assert_eq!(done.files, 2);
    assert_eq!(
        f.heard.take(),
        [format!("live blog {} spa=true", done.version)]
    );
    let live = f.store.live_version("blog").unwrap().unwrap();
    assert_eq!(live.version.number(), done.version);
    assert_eq!(done.version, 1, "a site's first deploy is v1");
    let stored = live
        .version
        .config
        .expect("the config is stored with the version");
    assert!(SiteConfig::from_stored(&stored).unwrap().spa);
    assert_eq!(f.sites.open_deploys(), 0);
}

#[tokio::test]
async fn rollback_brings_back_the_old_versions_config() {
    let f = fixture();
    // Another site first, so store ids and version numbers differ.
    deploy(&f, "other", &[("x", b"x")]).await.unwrap();
    let v1 = deploy(
        &f,
        "app",
        &[("fazt.json", br#"{"spa": true}"#), ("a", b"1")],
    )
    .await
    .unwrap()
    .version;
    let v2 = deploy(&f, "app", &[("a", b"2")]).await.unwrap().version;
    f.heard.take();
    let missing = f.sites.rollback(&name("app"), Some(9)).await.unwrap_err();
    assert!(
        missing.to_string().contains("no version v9 (kept: v1, v2)"),
        "{missing}"
    );
    let done = f.sites.rollback(&name("app"), None).await.unwrap();
    assert_eq!((v1, v2), (1, 2), "numbered per site");
    assert_eq!((done.from, done.to), (v2, v1));
    assert_eq!(f.heard.take(), [format!("live app {v1} spa=true")]);
    // Already live: refused, nothing announced.
    let err = f.sites.rollback(&name("app"), Some(v1)).await.unwrap_err();
    assert!(err.to_string().contains("already live"), "{err}");
    // No older version: a clear "not found".
    assert!(matches!(
        f.sites.rollback(&name("app"), None).await,
        Err(SiteError::NotFound(_))
    ));
    assert!(f.heard.take().is_empty());
}

#[tokio::test]
async fn removal_is_announced_and_its_blobs_collected() {
    let f = fixture();
    deploy(&f, "gone", &[("only-here.txt", b"unique bytes")])
        .await
        .unwrap();
    deploy(&f, "kept", &[("shared.txt", b"shared")])
        .await
        .unwrap();
    deploy(&f, "gone", &[("shared.txt", b"shared")])
        .await
        .unwrap();
    f.heard.take();
    f.sites.remove(&name("gone")).await.unwrap();
    assert_eq!(f.heard.take(), ["removed gone"]);
    assert!(f.store.site("gone").unwrap().is_none());
    assert!(
        !blob_count(&f, b"unique bytes"),
        "an unreferenced blob stays"
    );
    assert!(
        blob_count(&f, b"shared"),
        "a blob another site uses was collected"
    );
    assert!(matches!(
        f.sites.remove(&name("gone")).await,
        Err(SiteError::Store(StoreError::NoSuchSite(_)))
    ));
}

#[tokio::test]
async fn a_refused_commit_changes_nothing_and_collects_what_was_sent() {
    let f = fixture();
    let v1 = deploy(&f, "s", &[("index.html", b"v1")])
        .await
        .unwrap()
        .version;
    f.heard.take();

    // A fazt.json with a typo: refused by name, v1 stays live.
    let files: &[(&str, &[u8])] = &[("index.html", b"v2"), ("fazt.json", br#"{"sap": 1}"#)];
    let err = deploy(&f, "s", files).await.unwrap_err().to_string();
    assert!(err.contains("unknown key \"sap\""), "{err}");
    assert_eq!(live_number(&f, "s"), v1);
    assert!(!blob_count(&f, b"v2"), "the refused deploy's blob was kept");

    // An upload that stops half-way: the commit is refused.
    let big = vec![7u8; CHUNK_SIZE + 10];
    let plan = f
        .sites
        .begin_deploy(1, manifest("s", &[("big.bin", &big)]))
        .await
        .unwrap();
    let first = UploadChunk {
        hash: *blake3::hash(&big).as_bytes(),
        offset: 0,
        data: big[..CHUNK_SIZE].to_vec(),
    };
    f.sites
        .upload(1, plan.deploy_id, vec![first])
        .await
        .unwrap();
    let err = f.sites.commit_deploy(1, plan.deploy_id).await.unwrap_err();
    assert!(err.to_string().contains("incomplete"), "{err}");
    assert_eq!(live_number(&f, "s"), v1);
    assert!(f.heard.take().is_empty());
}

#[tokio::test]
async fn uploads_are_checked_and_deploys_belong_to_their_owner() {
    let f = fixture();
    let data = b"hello".as_slice();
    let plan = f
        .sites
        .begin_deploy(1, manifest("s", &[("a.txt", data)]))
        .await
        .unwrap();
    assert_eq!(plan.missing_bytes, 5);
    // Another owner cannot touch it.
    let chunk = || UploadChunk {
        hash: *blake3::hash(data).as_bytes(),
        offset: 0,
        data: data.to_vec(),
    };
    assert!(matches!(
        f.sites.upload(2, plan.deploy_id, vec![chunk()]).await,
        Err(SiteError::NotFound(_))
    ));
    // A chunk at the wrong offset ends the deploy.
    let wrong = UploadChunk {
        offset: 1,
        ..chunk()
    };
    let err = f
        .sites
        .upload(1, plan.deploy_id, vec![wrong])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expected offset 0"), "{err}");
    assert_eq!(f.sites.open_deploys(), 0);
}

#[tokio::test]
async fn an_open_deploy_pins_its_blobs_until_its_owner_goes_away() {
    let f = fixture();
    let data = b"needed by the open deploy".as_slice();
    // Stored by one site, then unreferenced when that site is removed...
    deploy(&f, "old", &[("x", data)]).await.unwrap();
    let plan = f
        .sites
        .begin_deploy(7, manifest("new", &[("x", data)]))
        .await
        .unwrap();
    assert!(plan.missing.is_empty(), "the plan reuses the stored blob");
    f.sites.remove(&name("old")).await.unwrap();
    // ...but the open deploy still needs it: the collection spared it.
    assert!(blob_count(&f, data));
    f.sites.commit_deploy(7, plan.deploy_id).await.unwrap();
    assert!(blob_count(&f, data));

    // When the owner goes away, its deploys are cancelled.
    let other = b"uploaded then abandoned".as_slice();
    let plan = f
        .sites
        .begin_deploy(8, manifest("new", &[("y", other)]))
        .await
        .unwrap();
    upload_missing(&f, 8, &plan, &[("y", other)]).await;
    f.sites.cancel_deploys_of(8);
    assert_eq!(f.sites.open_deploys(), 0);
    f.sites.collect_now().await.unwrap();
    assert!(!blob_count(&f, other), "an abandoned upload was kept");
}

#[tokio::test]
async fn manifests_are_checked_before_anything_is_stored() {
    let f = fixture();
    for (files, expect) in [
        (vec![("../x", b"a".as_slice())], "climbs"),
        (vec![("/abs", b"a".as_slice())], "absolute"),
        (
            vec![("a", b"1".as_slice()), ("a", b"2".as_slice())],
            "twice",
        ),
    ] {
        let err = f
            .sites
            .begin_deploy(1, manifest("s", &files))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
    }
    f.store.set_setting("max_files", "1").unwrap();
    let err = f
        .sites
        .begin_deploy(1, manifest("s", &[("a", b"1"), ("b", b"2")]))
        .await
        .unwrap_err();
    assert!(matches!(err, SiteError::TooLarge(_)), "{err}");
    assert_eq!(f.sites.open_deploys(), 0);
}

#[tokio::test]
async fn start_announces_every_live_site() {
    let f = fixture();
    deploy(&f, "a", &[("i", b"1")]).await.unwrap();
    let vb = deploy(&f, "b", &[("fazt.json", br#"{"spa": true}"#)])
        .await
        .unwrap()
        .version;
    f.heard.take();
    // A new service over the same store, as at the daemon's next start.
    let heard = Arc::new(Recorder::default());
    let sites = Sites::new(f.store.clone(), None, INSTANCE_DOMAIN, heard_by(&heard));
    sites.start().await.unwrap();
    let mut lines = heard.take();
    lines.sort();
    assert_eq!(
        lines,
        [
            "live a 1 spa=false".to_string(),
            format!("live b {vb} spa=true")
        ]
    );
}

#[tokio::test]
async fn a_failing_listener_is_reported_after_the_others_heard() {
    struct Broken;
    impl SiteListener for Broken {
        fn site_changed(&self, _: &SiteChange) -> Result<(), StoreError> {
            Err(StoreError::Inconsistent("the view broke".into()))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("d.redb")).unwrap());
    let heard = Arc::new(Recorder::default());
    let listeners = Listeners {
        sites: vec![Arc::new(Broken), heard.clone()],
        domains: vec![],
    };
    let sites = Sites::new(store.clone(), None, INSTANCE_DOMAIN, listeners);
    let f = Fixture {
        _dir: dir,
        store,
        sites,
        heard,
    };
    let err = deploy(&f, "s", &[("i", b"1")]).await.unwrap_err();
    assert!(err.to_string().contains("the view broke"), "{err}");
    assert_eq!(f.heard.take().len(), 1, "the second listener was not told");
    // The store holds the change: it is not rolled back by a view's failure.
    assert!(f.store.site("s").unwrap().is_some());
}

#[tokio::test]
async fn a_deploy_of_the_live_files_changes_nothing_unless_forced() {
    let f = fixture();
    let files: &[(&str, &[u8])] = &[("index.html", b"same"), ("fazt.json", b"{}")];
    assert_eq!(deploy(&f, "s", files).await.unwrap().version, 1);
    f.heard.take();
    let plan = f.sites.begin_deploy(1, manifest("s", files)).await.unwrap();
    let live = plan.unchanged.expect("nothing changed");
    assert_eq!((live.version, live.files), (1, 2));
    assert_eq!(f.sites.open_deploys(), 0, "no deploy was started");
    assert!(f.heard.take().is_empty());
    assert_eq!(f.store.versions("s").unwrap().len(), 1);

    // A changed config is a change; so is --force.
    let changed: &[(&str, &[u8])] = &[("index.html", b"same"), ("fazt.json", br#"{"spa": true}"#)];
    let plan = f
        .sites
        .begin_deploy(1, manifest("s", changed))
        .await
        .unwrap();
    assert!(plan.unchanged.is_none());
    f.sites.cancel_deploys_of(1);
    let forced = Manifest {
        force: true,
        ..manifest("s", files)
    };
    let plan = f.sites.begin_deploy(1, forced).await.unwrap();
    assert!(plan.unchanged.is_none());
    let done = f.sites.commit_deploy(1, plan.deploy_id).await.unwrap();
    assert_eq!(done.version, 2);
}

#[tokio::test]
async fn custom_domains_serve_one_existing_site_and_go_with_it() {
    let f = fixture();
    deploy(&f, "blog", &[("i", b"1")]).await.unwrap();
    deploy(&f, "shop", &[("i", b"2")]).await.unwrap();
    f.heard.take();
    let blog = name("blog");

    let added = f.sites.add_domain(&blog, "Example.org.").await.unwrap();
    assert_eq!(added.entry.domain.as_str(), "example.org");
    assert!(!added.unchanged);
    assert_eq!(f.heard.take(), ["domain example.org -> blog"]);
    // Again, in another spelling: nothing changes, nobody is told.
    let again = f.sites.add_domain(&blog, "EXAMPLE.ORG").await.unwrap();
    assert!(again.unchanged);
    assert_eq!(again.entry.added_at, added.entry.added_at);
    assert!(f.heard.take().is_empty());

    // One site per name; the instance's names route already; the site must exist.
    let taken = f
        .sites
        .add_domain(&name("shop"), "example.org")
        .await
        .unwrap_err();
    assert!(matches!(taken, SiteError::Invalid(_)), "{taken:?}");
    assert!(
        taken.to_string().contains("already serves site blog"),
        "{taken}"
    );
    for own in ["fazt.example.com", "blog.fazt.example.com"] {
        let err = f.sites.add_domain(&blog, own).await.unwrap_err();
        assert!(matches!(err, SiteError::Domain(_)), "{own}: {err:?}");
    }
    let err = f
        .sites
        .add_domain(&name("nope"), "nope.org")
        .await
        .unwrap_err();
    assert!(matches!(err, SiteError::NotFound(_)), "{err:?}");
    assert!(f.heard.take().is_empty());

    f.sites.add_domain(&blog, "www.example.org").await.unwrap();
    f.sites.add_domain(&name("shop"), "shop.org").await.unwrap();
    f.heard.take();
    let listed: Vec<(String, String)> = f
        .sites
        .custom_domains()
        .await
        .unwrap()
        .into_iter()
        .map(|(d, s)| (d.to_string(), s.to_string()))
        .collect();
    let pair = |d: &str, s: &str| (d.to_string(), s.to_string());
    assert_eq!(
        listed,
        [
            pair("example.org", "blog"),
            pair("shop.org", "shop"),
            pair("www.example.org", "blog")
        ]
    );
    let blogs = f.sites.domains(Some(&blog)).await.unwrap();
    assert_eq!(blogs.len(), 2);

    let removed = f.sites.remove_domain("www.example.org.").await.unwrap();
    assert_eq!(removed.site, blog);
    assert_eq!(f.heard.take(), ["domain www.example.org removed"]);
    let err = f.sites.remove_domain("www.example.org").await.unwrap_err();
    assert!(matches!(err, SiteError::NotFound(_)), "{err:?}");

    // A removed site's domains go with it, and its listeners hear so first.
    f.sites.remove(&blog).await.unwrap();
    assert_eq!(
        f.heard.take(),
        ["domain example.org removed", "removed blog"]
    );
    assert_eq!(f.sites.custom_domains().await.unwrap().len(), 1);
    let err = f.sites.domains(Some(&blog)).await.unwrap_err();
    assert!(matches!(err, SiteError::NotFound(_)), "{err:?}");

    // At the next start, the domains are announced after the sites.
    let heard = Arc::new(Recorder::default());
    let sites = Sites::new(f.store.clone(), None, INSTANCE_DOMAIN, heard_by(&heard));
    sites.start().await.unwrap();
    assert_eq!(
        heard.take(),
        ["live shop 1 spa=false", "domain shop.org -> shop"]
    );
}
