//! zbus proxies for the parts of systemd's and logind's D-Bus APIs faztd uses
//! (see org.freedesktop.systemd1(5) and org.freedesktop.login1(5)). Names
//! that do not follow zbus's snake_case → PascalCase rule are spelled out.

use std::time::Duration;

use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedObjectPath};

/// `(type, symlink, destination)`, as EnableUnitFiles/DisableUnitFiles report changes.
pub type UnitFileChange = (String, String, String);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait SystemdManager {
    /// `daemon-reload`.
    fn reload(&self) -> zbus::Result<()>;
    /// Turns on the manager's signals (JobRemoved) for this connection.
    fn subscribe(&self) -> zbus::Result<()>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(name = "GetUnitByPID")]
    fn get_unit_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;
    fn get_unit_file_state(&self, file: &str) -> zbus::Result<String>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<UnitFileChange>)>;
    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<UnitFileChange>>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait SystemdUnit {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn unit_file_state(&self) -> zbus::Result<String>;
    /// CLOCK_REALTIME microseconds of the last entry into `active` (0: never).
    #[zbus(property)]
    fn active_enter_timestamp(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn need_daemon_reload(&self) -> zbus::Result<bool>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
pub trait SystemdService {
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn status_text(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
pub trait LoginManager {
    /// `SetUserLinger(u uid, b enable, b interactive)`.
    fn set_user_linger(&self, uid: u32, enable: bool, interactive: bool) -> zbus::Result<()>;
}

/// A unit object, read without caching: properties change under us while
/// jobs run, and a cache can be stale right after `JobRemoved`.
pub async fn unit_proxy<'a>(
    conn: &Connection,
    path: OwnedObjectPath,
) -> zbus::Result<SystemdUnitProxy<'a>> {
    SystemdUnitProxy::builder(conn)
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

pub async fn service_proxy<'a>(
    conn: &Connection,
    path: OwnedObjectPath,
) -> zbus::Result<SystemdServiceProxy<'a>> {
    SystemdServiceProxy::builder(conn)
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

pub async fn manager(conn: &Connection) -> zbus::Result<SystemdManagerProxy<'static>> {
    SystemdManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// Runs a job-returning call (start, stop, restart) and waits until systemd
/// reports the job finished; returns its result (`done`, `failed`, `timeout`,
/// `canceled`, `dependency`, `skipped`).
pub async fn run_job<F, Fut>(
    manager: &SystemdManagerProxy<'_>,
    timeout: Duration,
    call: F,
) -> zbus::Result<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = zbus::Result<OwnedObjectPath>>,
{
    // A second Subscribe on the same connection is refused (already
    // subscribed), which is fine: the signals keep coming.
    let _ = manager.subscribe().await;
    // Listen before asking, so the signal cannot slip past.
    let mut removed = manager.receive_job_removed().await?;
    let job = call().await?;
    let wait = async {
        while let Some(signal) = removed.next().await {
            if let Ok(args) = signal.args() {
                if args.job == job {
                    return Ok(args.result.clone());
                }
            }
        }
        Err(zbus::Error::Failure(
            "the connection to systemd closed while waiting for a job".into(),
        ))
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(result) => result,
        Err(_) => Ok("timeout".to_string()),
    }
}

/// What a D-Bus error means for the person at the terminal.
pub fn is_access_denied(err: &zbus::Error) -> bool {
    match err {
        zbus::Error::MethodError(name, _, _) => {
            let name = name.as_str();
            name.ends_with(".AccessDenied")
                || name.ends_with(".InteractiveAuthorizationRequired")
                || name.ends_with("Error.PermissionDenied")
        }
        zbus::Error::FDO(fdo) => matches!(
            **fdo,
            zbus::fdo::Error::AccessDenied(_)
                | zbus::fdo::Error::InteractiveAuthorizationRequired(_)
        ),
        _ => false,
    }
}

/// Whether nobody owns the name we called (no logind, no systemd on that bus).
pub fn is_service_unknown(err: &zbus::Error) -> bool {
    match err {
        zbus::Error::MethodError(name, _, _) => {
            let name = name.as_str();
            name.ends_with(".ServiceUnknown") || name.ends_with(".NameHasNoOwner")
        }
        zbus::Error::FDO(fdo) => matches!(
            **fdo,
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)
        ),
        _ => false,
    }
}

/// The message of a D-Bus error without the error name, when it has one.
pub fn describe(err: &zbus::Error) -> String {
    match err {
        zbus::Error::MethodError(name, Some(text), _) => format!("{text} ({})", name.as_str()),
        other => other.to_string(),
    }
}
