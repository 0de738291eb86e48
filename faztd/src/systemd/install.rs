//! `faztd install` and `faztd uninstall`: the unit file, then systemd over
//! D-Bus (reload, enable, start — or stop, disable, remove), and for a user
//! instance logind's linger, so it starts at boot without a login.
//!
//! Every check that can fail cheaply (permissions, the bus, the port) runs
//! before anything is written. What is done after that is recorded, and a
//! failure undoes it, so a failed install leaves the machine as it found it.
//! Running install twice changes nothing the second time: each step first
//! asks whether it is already done.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use zbus::Connection;

use super::dbus::{self, LoginManagerProxy, SystemdManagerProxy};
use super::unit::{self, UnitOptions};
use super::{Scope, UNIT_NAME};

/// How long a start or stop job may take before we give up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// What `faztd install` was asked.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub scope: Scope,
    /// The binary the unit runs (normally the faztd being run).
    pub binary: PathBuf,
    /// The user instance's data directory.
    pub data_dir: PathBuf,
    pub domain: Option<String>,
    pub listen: Option<SocketAddr>,
}

/// What `faztd uninstall` was asked.
#[derive(Debug, Clone)]
pub struct UninstallOptions {
    pub scope: Scope,
    pub data_dir: PathBuf,
    /// Also delete the data directory.
    pub purge: bool,
}

/// The path of the unit file for `scope`.
pub fn unit_path(scope: Scope) -> Result<PathBuf> {
    match scope {
        Scope::System => Ok(PathBuf::from("/etc/systemd/system").join(UNIT_NAME)),
        Scope::User => {
            let config = std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .filter(|v| !v.is_empty())
                        .map(|h| PathBuf::from(h).join(".config"))
                })
                .ok_or_else(|| anyhow!("cannot find your config directory: set HOME"))?;
            Ok(config.join("systemd/user").join(UNIT_NAME))
        }
    }
}

/// The data directory of a system instance.
pub const SYSTEM_DATA_DIR: &str = "/var/lib/fazt";

/// The default listen address of an instance with no stored setting.
fn default_listen() -> SocketAddr {
    crate::settings::DEFAULT_LISTEN
}

/// Prints one line of what install/uninstall did.
fn say(what: &str, detail: impl AsRef<str>) {
    println!("  {what:<10} {}", detail.as_ref());
}

/// Connects to `scope`'s manager and checks it answers, with an error that
/// says what to do when it does not.
async fn manager_for(scope: Scope) -> Result<(Connection, SystemdManagerProxy<'static>)> {
    let no_bus = |err: &zbus::Error| match scope {
        Scope::User => anyhow!(
            "cannot reach your systemd user manager over D-Bus: {}\n\
             `faztd install --user` needs a running `systemd --user` and its session bus \
             (a normal login session has both; check DBUS_SESSION_BUS_ADDRESS / XDG_RUNTIME_DIR). \
             Without systemd, run `faztd` in the foreground instead. Nothing was installed.",
            dbus::describe(err)
        ),
        Scope::System => anyhow!(
            "cannot reach the systemd system manager over D-Bus: {}\n\
             `faztd install --system` needs a machine booted with systemd. \
             Without systemd, run `faztd` in the foreground instead. Nothing was installed.",
            dbus::describe(err)
        ),
    };
    let conn = super::connect(scope).await.map_err(|e| no_bus(&e))?;
    let manager = dbus::manager(&conn).await.map_err(|e| no_bus(&e))?;
    manager.version().await.map_err(|e| no_bus(&e))?;
    Ok((conn, manager))
}

/// The unit as systemd currently sees it.
struct UnitState {
    active: String,
    file_state: String,
    need_reload: bool,
}

async fn unit_state(conn: &Connection, manager: &SystemdManagerProxy<'_>) -> Result<UnitState> {
    let path = manager
        .load_unit(UNIT_NAME)
        .await
        .map_err(|e| anyhow!("systemd cannot load {UNIT_NAME}: {}", dbus::describe(&e)))?;
    let unit = dbus::unit_proxy(conn, path).await?;
    Ok(UnitState {
        active: unit.active_state().await?,
        file_state: manager
            .get_unit_file_state(UNIT_NAME)
            .await
            .unwrap_or_default(),
        need_reload: unit.need_daemon_reload().await.unwrap_or(false),
    })
}

/// Steps done so far, to undo if a later one fails.
#[derive(Default)]
struct Undo {
    /// The unit file's previous content (`None`: it did not exist).
    previous_file: Option<Option<String>>,
    enabled: bool,
    started: bool,
}

pub async fn install(options: &InstallOptions) -> Result<()> {
    let scope = options.scope;
    if scope == Scope::System && !nix::unistd::geteuid().is_root() {
        bail!(
            "installing the system service needs root: run `sudo faztd install --system`, \
             or install a user instance with `faztd install --user` (no root needed). \
             Nothing was installed."
        );
    }
    if scope == Scope::System
        && (options.binary.starts_with("/home") || options.binary.starts_with("/root"))
    {
        bail!(
            "the system service cannot run {}: it protects /home and /root (ProtectHome=yes). \
             Copy faztd to /usr/local/bin first (scripts/install.sh does). Nothing was installed.",
            options.binary.display()
        );
    }
    let path = unit_path(scope)?;
    let (conn, manager) = manager_for(scope).await?;
    let before = unit_state(&conn, &manager).await?;
    let running = before.active == "active" || before.active == "reloading";

    // A taken port fails now rather than as a crash loop. A running instance
    // holds its own port, and its restart below reuses it.
    let listen = options.listen.unwrap_or_else(default_listen);
    if !running {
        if let Err(err) = TcpListener::bind(listen) {
            let hint = match err.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "port {} is taken by another program: stop it, or pick another port with --listen 127.0.0.1:PORT",
                    listen.port()
                ),
                std::io::ErrorKind::PermissionDenied => {
                    "ports below 1024 need privileges: use a port above 1024, or the system service (--system)".to_string()
                }
                _ => "pick another address with --listen ADDR:PORT".to_string(),
            };
            bail!("cannot listen on {listen}: {err}; {hint}. Nothing was installed.");
        }
    }

    let data_dir = match scope {
        Scope::User => options.data_dir.clone(),
        Scope::System => PathBuf::from(SYSTEM_DATA_DIR),
    };
    let rendered = unit::render(&UnitOptions {
        scope,
        binary: &options.binary,
        data_dir: &data_dir,
        domain: options.domain.as_deref(),
        listen: options.listen,
    });
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let changed = existing.as_deref() != Some(rendered.as_str());

    println!("Installing faztd as a {scope} service:");
    let mut undo = Undo::default();
    let result = apply(
        &conn, &manager, &path, &rendered, existing, changed, &before, running, &mut undo,
    )
    .await;
    if let Err(err) = result {
        let undone = rollback(&manager, &path, &undo, running).await;
        return Err(match undone {
            Ok(()) => anyhow!("{err:#}\nThe install was undone: nothing was left installed."),
            Err(e) => anyhow!("{err:#}\nUndoing the install failed too: {e:#}"),
        });
    }

    if scope == Scope::User {
        linger().await;
    }
    let port = listen.port();
    println!();
    println!("faztd runs as the {scope} unit {UNIT_NAME}.");
    println!("  sites      http://localhost:{port}/  http://demo.localhost:{port}/");
    println!(
        "  manage     systemctl{f} status faztd · systemctl{f} restart faztd · journalctl{f} -u faztd",
        f = scope.ctl_flag()
    );
    println!("  operate    faztctl status · faztctl deploy DIR · faztctl restart");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply(
    conn: &Connection,
    manager: &SystemdManagerProxy<'_>,
    path: &Path,
    rendered: &str,
    existing: Option<String>,
    changed: bool,
    before: &UnitState,
    running: bool,
    undo: &mut Undo,
) -> Result<()> {
    if changed {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = path.with_extension("service.tmp");
        std::fs::write(&tmp, rendered)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        undo.previous_file = Some(existing.clone());
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        say(
            "unit",
            format!(
                "{} {}",
                if existing.is_some() {
                    "updated"
                } else {
                    "wrote"
                },
                path.display()
            ),
        );
    } else {
        say("unit", format!("{} (unchanged)", path.display()));
    }

    if changed || before.need_reload {
        manager
            .reload()
            .await
            .map_err(|e| anyhow!("systemd could not reload its units: {}", dbus::describe(&e)))?;
        say("reload", "systemd reloaded its units");
    }

    let file_state = if changed {
        manager
            .get_unit_file_state(UNIT_NAME)
            .await
            .unwrap_or_default()
    } else {
        before.file_state.clone()
    };
    if file_state == "enabled" {
        say("enable", "already enabled");
    } else {
        manager
            .enable_unit_files(&[UNIT_NAME], false, true)
            .await
            .map_err(|e| {
                anyhow!(
                    "systemd could not enable {UNIT_NAME}: {}",
                    dbus::describe(&e)
                )
            })?;
        undo.enabled = true;
        say("enable", "enabled: starts with the manager");
    }

    let job = if !running {
        Some((
            "start",
            dbus::run_job(manager, JOB_TIMEOUT, || {
                manager.start_unit(UNIT_NAME, "replace")
            })
            .await,
        ))
    } else if changed {
        Some((
            "restart",
            dbus::run_job(manager, JOB_TIMEOUT, || {
                manager.restart_unit(UNIT_NAME, "replace")
            })
            .await,
        ))
    } else {
        None
    };
    match job {
        None => say("start", "already running"),
        Some((verb, result)) => {
            undo.started = true;
            let result = result.map_err(|e| {
                anyhow!(
                    "systemd could not {verb} {UNIT_NAME}: {}",
                    dbus::describe(&e)
                )
            })?;
            if result != "done" {
                let why = failure_reason(conn, manager).await;
                bail!("faztd did not {verb} (systemd job: {result}){why}");
            }
            say(verb, format!("{verb}ed and ready"));
        }
    }
    Ok(())
}

/// What systemd knows about why the unit failed: the daemon's last STATUS
/// line (it sends `failed: REASON` before exiting) and the service result.
async fn failure_reason(conn: &Connection, manager: &SystemdManagerProxy<'_>) -> String {
    let Ok(path) = manager.load_unit(UNIT_NAME).await else {
        return String::new();
    };
    let Ok(service) = dbus::service_proxy(conn, path).await else {
        return String::new();
    };
    let status = service.status_text().await.unwrap_or_default();
    let result = service.result().await.unwrap_or_default();
    let mut out = String::new();
    if !status.is_empty() {
        out.push_str(&format!(": {status}"));
    }
    if !result.is_empty() && result != "success" {
        out.push_str(&format!(" (result: {result})"));
    }
    out
}

/// Undoes what `apply` recorded, newest first.
async fn rollback(
    manager: &SystemdManagerProxy<'_>,
    path: &Path,
    undo: &Undo,
    was_running: bool,
) -> Result<()> {
    if undo.started || undo.previous_file.is_some() {
        let _ = dbus::run_job(manager, JOB_TIMEOUT, || {
            manager.stop_unit(UNIT_NAME, "replace")
        })
        .await;
    }
    if undo.enabled {
        manager.disable_unit_files(&[UNIT_NAME], false).await?;
    }
    match &undo.previous_file {
        Some(None) => std::fs::remove_file(path)
            .with_context(|| format!("cannot remove {}", path.display()))?,
        Some(Some(old)) => std::fs::write(path, old)
            .with_context(|| format!("cannot restore {}", path.display()))?,
        None => {}
    }
    if undo.previous_file.is_some() {
        manager.reload().await?;
    }
    let _ = manager.reset_failed_unit(UNIT_NAME).await;
    if was_running {
        let _ = dbus::run_job(manager, JOB_TIMEOUT, || {
            manager.start_unit(UNIT_NAME, "replace")
        })
        .await;
    }
    Ok(())
}

/// Asks logind to keep the user's manager running without a session, so the
/// instance starts at boot. Where logind is absent (containers, WSL, machines
/// not booted with systemd) the install still stands, and we say what that means.
async fn linger() {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    if Path::new("/var/lib/systemd/linger").join(&user).exists() {
        say(
            "linger",
            format!("already enabled for {user}: starts at boot"),
        );
        return;
    }
    let result = async {
        let conn = zbus::Connection::system().await?;
        let login = LoginManagerProxy::new(&conn).await?;
        login.set_user_linger(uid.as_raw(), true, false).await
    }
    .await;
    match result {
        Ok(()) => say(
            "linger",
            format!("enabled for {user}: starts at boot, no login needed"),
        ),
        Err(err) => {
            let why = if dbus::is_service_unknown(&err) {
                "logind is not running on this machine".to_string()
            } else if dbus::is_access_denied(&err) {
                format!("logind refused ({})", dbus::describe(&err))
            } else {
                format!("logind is not reachable ({})", dbus::describe(&err))
            };
            say(
                "linger",
                format!(
                    "NOT enabled: {why}.\n             \
                     faztd runs only while you have a session and stops when you log out; \
                     it will not start at boot. On a machine with logind, run \
                     `loginctl enable-linger {user}` (or run `faztd install --user` again)."
                ),
            );
        }
    }
}

pub async fn uninstall(options: &UninstallOptions) -> Result<()> {
    let scope = options.scope;
    if scope == Scope::System && !nix::unistd::geteuid().is_root() {
        bail!("removing the system service needs root: run `sudo faztd uninstall --system`");
    }
    let path = unit_path(scope)?;
    let (conn, manager) = manager_for(scope).await.map_err(|e| {
        anyhow!(
            "{}",
            e.to_string()
                .replace("Nothing was installed.", "Nothing was removed.")
                .replace("faztd install", "faztd uninstall")
        )
    })?;
    let before = unit_state(&conn, &manager).await?;
    let file_exists = path.exists();
    println!("Removing the {scope} service faztd:");
    if before.active != "inactive" && before.active != "failed" {
        let result = dbus::run_job(&manager, JOB_TIMEOUT, || {
            manager.stop_unit(UNIT_NAME, "replace")
        })
        .await
        .map_err(|e| anyhow!("systemd could not stop {UNIT_NAME}: {}", dbus::describe(&e)))?;
        if result != "done" {
            bail!("systemd could not stop {UNIT_NAME} (job: {result}); nothing else was changed");
        }
        say("stop", "stopped");
    } else {
        say("stop", "not running");
    }
    if matches!(
        before.file_state.as_str(),
        "enabled" | "enabled-runtime" | "linked"
    ) {
        manager
            .disable_unit_files(&[UNIT_NAME], false)
            .await
            .map_err(|e| {
                anyhow!(
                    "systemd could not disable {UNIT_NAME}: {}",
                    dbus::describe(&e)
                )
            })?;
        say("disable", "disabled");
    } else {
        say("disable", "not enabled");
    }
    if file_exists {
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        manager
            .reload()
            .await
            .map_err(|e| anyhow!("systemd could not reload its units: {}", dbus::describe(&e)))?;
        say("unit", format!("removed {}", path.display()));
    } else {
        say("unit", format!("{} was not there", path.display()));
    }
    let _ = manager.reset_failed_unit(UNIT_NAME).await;

    let data_dirs: Vec<PathBuf> = match scope {
        Scope::User => vec![options.data_dir.clone()],
        // DynamicUser keeps the real directory under /var/lib/private.
        Scope::System => vec![
            PathBuf::from(SYSTEM_DATA_DIR),
            PathBuf::from("/var/lib/private/fazt"),
        ],
    };
    if options.purge {
        for dir in &data_dirs {
            match std::fs::symlink_metadata(dir) {
                Ok(meta) if meta.file_type().is_symlink() => std::fs::remove_file(dir)?,
                Ok(_) => std::fs::remove_dir_all(dir)
                    .with_context(|| format!("cannot delete {}", dir.display()))?,
                Err(_) => continue,
            }
            say("data", format!("deleted {}", dir.display()));
        }
    } else {
        say(
            "data",
            format!(
                "kept {} (delete it with `faztd uninstall --purge`)",
                data_dirs[0].display()
            ),
        );
    }
    if scope == Scope::User {
        say(
            "linger",
            "left as it is (other user services may rely on it)",
        );
    }
    Ok(())
}
