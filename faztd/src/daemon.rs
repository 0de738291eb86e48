//! Starting and stopping an instance: open the store, seed it, decide the
//! domain, bind, serve until a signal, shut down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::connections::Connections;
use crate::control;
use crate::domain::{self, DomainDecision};
use crate::functions::logs::SiteLogs;
use crate::functions::pool::Shared;
use crate::functions::FunctionPool;
use crate::http::catalog::SiteCatalog;
use crate::http::host::SiteResolver;
use crate::http::{self as fazt_http, HttpState};
use crate::instance::Instance;
use crate::realtime::ChannelHub;
use crate::refusals::Refusals;
use crate::seed;
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::sites::{DomainListener, Listeners, SiteListener, Sites};
use crate::store::Store;
use crate::systemd::notify;
use crate::tls::{
    self, AcmeChallenge, AcmeOptions, CertManager, CertResolver, CertifiedNames, HttpsMode,
};
use crate::urls;

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the command line decided.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub data_dir: PathBuf,
    /// Overrides the stored listen address for this run.
    pub listen: Option<SocketAddr>,
    /// Overrides the stored domain for this run.
    pub domain: Option<String>,
    /// The control socket.
    pub socket: PathBuf,
    /// HTTPS settings overridden for this run.
    pub https: HttpsFlags,
}

/// The HTTPS flags: each overrides its stored setting for this run.
#[derive(Debug, Clone, Default)]
pub struct HttpsFlags {
    pub mode: Option<HttpsMode>,
    pub listen_https: Option<SocketAddr>,
    pub acme_directory: Option<String>,
    /// A PEM root the ACME server's own certificate chains to (flag only).
    pub acme_root: Option<PathBuf>,
    pub acme_email: Option<String>,
    pub acme_challenge: Option<AcmeChallenge>,
}

impl DaemonOptions {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(fazt_proto::paths::DATABASE_FILE)
    }
}

/// Runs an instance until `shutdown` resolves.
pub async fn run(
    options: DaemonOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let started = Instant::now();
    raise_open_file_limit();
    let db_path = options.database_path();
    let store = Arc::new(Store::open(&db_path)?);
    if seed::seed_if_new(&store).context("cannot write the welcome and demo sites")? {
        tracing::info!("new instance: seeded the root and demo sites");
    }

    let settings = Settings::load(&store)?;
    let stored_domain = settings.stored_domain().map(str::to_string);
    let mut decision = {
        let flag = options.domain.clone();
        tokio::task::spawn_blocking(move || {
            domain::detect(flag.as_deref(), stored_domain.as_deref())
        })
        .await
        .context("domain detection failed")?
    };
    if let Some(warning) = &decision.warning {
        tracing::warn!("{warning}");
    }
    if decision.store {
        Settings::set(&store, "domain", &decision.domain)
            .context("cannot store the detected domain")?;
        // From here on it is the stored domain, and is called that everywhere
        // (status, config get, the banner, the next start).
        decision.source = domain::DomainSource::Stored;
        tracing::info!(
            domain = %decision.domain,
            "no domain was set: detected it from this machine's addresses and stored it \
             (change it with `faztctl config set domain NAME`)"
        );
    }

    let listen = options.listen.unwrap_or(settings.listen);
    let listener = bind(listen, "--listen").await?;
    let bound = listener.local_addr()?;
    // HTTPS, when the setting (or flag) and the domain allow it.
    let https = HttpsPlan::decide(&options.https, &settings, &decision.domain)?;
    let https_listener = match &https {
        Some(plan) => Some(bind(plan.listen, "--listen-https").await?),
        None => None,
    };
    let https_bound = match &https_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    // The control socket comes after the port, so a failed start leaves no socket behind.
    let control_listener = control::bind(&options.socket)?;

    let catalog = Arc::new(SiteCatalog::new(store.clone()));
    // Every long-running task ends on this, and the daemon waits for them.
    let stop = Shutdown::new();
    // What limits refuse to clients, counted for status.
    let refusals = Arc::new(Refusals::new());
    let realtime = Arc::new(ChannelHub::new(
        settings.realtime_limits(),
        stop.clone(),
        refusals.clone(),
    ));
    // Idle channels expire, and a flood's memory is given back after it.
    stop.spawn(crate::realtime::sweep::expire_idle_channels(
        realtime.clone(),
    ));
    let functions = Arc::new(start_functions(
        &store,
        &settings,
        realtime.clone(),
        refusals.clone(),
    )?);
    // Hosts route by rule, then by the custom domains it follows.
    let resolver = SiteResolver::new(&decision.domain);
    // The views that follow every site change, in the order they are told.
    let mut site_views: Vec<Arc<dyn SiteListener>> =
        vec![catalog.clone(), realtime.clone(), functions.logs.clone()];
    let mut domain_views: Vec<Arc<dyn DomainListener>> = vec![resolver.custom_domains().clone()];
    // The names to certify follow the sites (deploys add, removals drop)
    // and the custom domains.
    let names = Arc::new(CertifiedNames::new(&decision.domain));
    if https.is_some() {
        site_views.push(names.clone());
        domain_views.push(names.clone());
    }
    let sites = Sites::new(
        store.clone(),
        Some(functions.clone()),
        &decision.domain,
        Listeners {
            sites: site_views,
            domains: domain_views,
        },
    );
    // Loads every live site into the views, and collects the leftovers of
    // deploys interrupted by a crash or a killed client.
    sites.start().await.context("cannot load the sites")?;
    let certificates = match &https {
        Some(plan) => {
            tls::install_crypto_provider();
            let resolver = Arc::new(CertResolver::new(&decision.domain));
            let http01 = Arc::new(tls::Http01Tokens::default());
            let manager = CertManager::new(
                store.clone(),
                names.clone(),
                resolver.clone(),
                http01.clone(),
                plan.acme.clone(),
            );
            // Stored certificates serve from the first handshake, without
            // asking the CA for anything.
            let loaded = manager
                .load_stored()
                .context("cannot read the stored certificates")?;
            tracing::info!(loaded, "tls: stored certificates loaded");
            Some((manager, resolver, http01, plan.hsts_max_age_secs))
        }
        None => None,
    };
    let state = Arc::new(HttpState {
        catalog: catalog.clone(),
        resolver,
        started,
        functions: functions.clone(),
        function_body_limit: settings.function_body_bytes,
        header_timeout: Some(Duration::from_secs(settings.http_header_timeout_secs)),
        body_timeout: Duration::from_secs(settings.http_body_timeout_secs),
        connections: Connections::new(settings.connection_limits()),
        realtime: realtime.clone(),
        refusals: refusals.clone(),
        https: match (&certificates, https_bound) {
            (Some((_, resolver, http01, hsts)), Some(addr)) => Some(fazt_http::https::HttpsFront {
                port: addr.port(),
                resolver: resolver.clone(),
                http01: http01.clone(),
                hsts: fazt_http::https::HttpsFront::hsts_header(*hsts),
            }),
            _ => None,
        },
    });
    let instance = Arc::new(Instance {
        store: store.clone(),
        sites,
        catalog: catalog.clone(),
        domain: decision.clone(),
        listen: bound,
        https_listen: https_bound,
        certified: https.is_some().then(|| names.clone()),
        socket_path: options.socket.clone(),
        started,
        functions,
        realtime: realtime.clone(),
        refusals,
    });
    stop.spawn(control::serve(
        control_listener,
        instance.clone(),
        stop.clone(),
    ));
    print_banner(
        bound,
        https_bound.zip(https.as_ref()),
        &decision,
        &catalog.site_names(),
        &db_path,
        &options.socket,
    );
    tracing::info!(
        listen = %bound,
        domain = %decision.domain,
        domain_source = decision.source.as_str(),
        "faztd {} started",
        fazt_proto::FAZT_VERSION
    );
    // Both sockets are bound and the catalog is loaded: tell systemd (if it
    // is our manager) that the start is done, and keep its watchdog fed.
    notify::ready(&format!(
        "serving {} sites on {bound}, domain {}",
        catalog.site_names().len(),
        decision.domain
    ));
    notify::spawn_watchdog(
        {
            let store = store.clone();
            move || store.schema_version().is_ok()
        },
        &stop,
    );
    if let (Some(listener), Some((manager, resolver, _, _))) = (https_listener, &certificates) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(resolver.clone()));
        stop.spawn(fazt_http::serve(
            listener,
            state.clone(),
            stop.clone(),
            fazt_http::Transport::Tls(acceptor),
        ));
        stop.spawn(manager.clone().run(stop.clone()));
    }
    stop.spawn(fazt_http::serve(
        listener,
        state,
        stop.clone(),
        fazt_http::Transport::Plain,
    ));

    shutdown.await;
    tracing::info!("shutting down: letting in-flight requests finish");
    notify::stopping();
    // HTTP stops accepting and drains, WebSockets close ("going away"), the
    // control socket stops accepting, the watchdog stops.
    if !stop.stop(SHUTDOWN_GRACE).await {
        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; closing anyway");
    }
    let _ = std::fs::remove_file(&options.socket);
    // The function workers finish what they run and let go of the
    // database; the log lines still on their way to it are written.
    let functions = instance.functions.clone();
    let _ = tokio::task::spawn_blocking(move || {
        functions.stop();
        functions.logs.flush();
    })
    .await;
    drop(instance);
    drop(catalog);
    match Arc::try_unwrap(store) {
        Ok(store) => drop(store),
        Err(_) => tracing::warn!("the database is still referenced at shutdown; it closes on exit"),
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Binds a TCP listener, with a hint for the usual failures.
async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        let hint = if err.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "; another program uses port {}: stop it, or pick another with {flag} 127.0.0.1:PORT",
                addr.port()
            )
        } else if err.kind() == std::io::ErrorKind::PermissionDenied {
            "; ports below 1024 need privileges: use a port above 1024 or the system service"
                .to_string()
        } else {
            String::new()
        };
        anyhow::anyhow!("cannot listen on {addr}: {err}{hint}")
    })
}

/// HTTPS as this run has it: on (with where and how), or `None` for off.
struct HttpsPlan {
    listen: SocketAddr,
    acme: AcmeOptions,
    hsts_max_age_secs: u64,
}

impl HttpsPlan {
    /// Flags over settings; `on` with a domain no CA can check is an error
    /// that says why.
    fn decide(flags: &HttpsFlags, settings: &Settings, domain: &str) -> Result<Option<HttpsPlan>> {
        let mode = flags.mode.unwrap_or(settings.https);
        let on = tls::mode::https_enabled(mode, domain).map_err(|why| anyhow::anyhow!(why))?;
        if !on {
            if mode == HttpsMode::Auto {
                tracing::info!(
                    domain,
                    "https is auto and {domain} is not a public DNS name: serving plain HTTP only"
                );
            }
            return Ok(None);
        }
        let email = flags
            .acme_email
            .clone()
            .unwrap_or(settings.acme_email.clone());
        Ok(Some(HttpsPlan {
            listen: flags.listen_https.unwrap_or(settings.listen_https),
            acme: AcmeOptions {
                directory: flags
                    .acme_directory
                    .clone()
                    .unwrap_or(settings.acme_directory.clone()),
                root_pem: flags.acme_root.clone(),
                email: (!email.is_empty()).then_some(email),
                challenge: flags.acme_challenge.unwrap_or(settings.acme_challenge),
            },
            hsts_max_age_secs: settings.hsts_max_age_secs,
        }))
    }
}

/// Raises the soft limit on open files to the hard one: each connection is a
/// descriptor, and the usual soft limit (1,024) would let a thousand idle
/// clients lock out everyone else, the control socket included.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open-file limit"),
            Err(err) => {
                tracing::warn!(soft, hard, error = %err, "cannot raise the open-file limit")
            }
        },
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot read the open-file limit"),
    }
}

/// Starts the JavaScript workers with the limits from the settings.
fn start_functions(
    store: &Arc<Store>,
    settings: &Settings,
    realtime: Arc<ChannelHub>,
    refusals: Arc<Refusals>,
) -> Result<FunctionPool> {
    let limits = settings.function_limits();
    let shared = Shared {
        store: store.clone(),
        logs: Arc::new(SiteLogs::stored_in(store)?),
        realtime: Some(realtime),
        refusals,
    };
    FunctionPool::start(settings.function_pool_size(), limits, shared)
        .context("cannot start the function workers")
}

/// Installs the SIGINT and SIGTERM handlers now, and returns what resolves
/// on either. Installing them before start-up begins means a signal that
/// arrives while the daemon is still starting ends it cleanly instead of by
/// the default action (an async fn would install them only when first polled).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Tells the person at the terminal where their sites are.
fn print_banner(
    bound: SocketAddr,
    https: Option<(SocketAddr, &HttpsPlan)>,
    decision: &DomainDecision,
    sites: &[String],
    db: &Path,
    socket: &Path,
) {
    println!(
        "faztd {} listening on {}",
        fazt_proto::FAZT_VERSION,
        urls::describe_listen(bound)
    );
    if let Some((addr, plan)) = https {
        println!(
            "https: listening on {addr} (certificates from {} by {}; port {} redirects to HTTPS)",
            plan.acme.directory,
            plan.acme.challenge,
            bound.port()
        );
    }
    println!(
        "domain: {} ({}){}",
        decision.domain,
        decision.source.as_str(),
        decision
            .warning
            .as_ref()
            .map(|w| format!(" - warning: {w}"))
            .unwrap_or_default()
    );
    for site in sites {
        let urls = urls::site_urls(bound, https.map(|h| h.0), &decision.domain, site);
        match urls.public {
            Some(public) => println!("  {site:<12} {:<36} {public}", urls.local),
            None => println!("  {site:<12} {}", urls.local),
        }
    }
    println!("control socket: {}", socket.display());
    println!("data: {}", db.display());
}
