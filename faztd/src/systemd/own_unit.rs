//! What a daemon running under systemd asks its manager about itself: the
//! state of its own unit (for `faztctl status`) and a restart of that unit
//! (for `faztctl restart`). The unit is found by our pid (GetUnitByPID), so
//! a unit someone wrote by hand under another name works too.

use zbus::Connection;

use super::dbus::{self, SystemdManagerProxy};
use super::Scope;

/// Our unit as its manager reports it.
#[derive(Debug, Clone)]
pub struct UnitState {
    pub unit: String,
    pub scope: Scope,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// `enabled`, `disabled`, ... (empty when systemd does not say).
    pub unit_file_state: String,
    /// When the unit last became active, in µs since the epoch (0: never).
    pub active_since_usec: u64,
    /// Automatic restarts so far (NRestarts).
    pub restarts: u32,
    pub main_pid: u32,
}

/// A restart systemd has queued for our unit.
#[derive(Debug, Clone)]
pub struct RestartJob {
    pub unit: String,
    pub scope: Scope,
    /// The daemon that asked (and is about to stop).
    pub old_pid: u32,
    /// The job's object path.
    pub job: String,
}

/// The manager connection and our unit's object path.
pub struct OwnUnit {
    pub scope: Scope,
    conn: Connection,
    path: zbus::OwnedObjectPath,
}

/// Why a daemon cannot talk about its unit.
#[derive(Debug, thiserror::Error)]
pub enum OwnUnitError {
    #[error("faztd is not running under systemd (it was started by hand), so it has no unit: stop it and start it again, or install the service with `faztd install`")]
    NotUnderSystemd,
    #[error("cannot reach the {scope} systemd manager over D-Bus: {detail}")]
    Bus { scope: Scope, detail: String },
}

impl OwnUnit {
    /// Finds our unit, or says why not.
    pub async fn find() -> Result<OwnUnit, OwnUnitError> {
        let scope = Scope::of_running_daemon().ok_or(OwnUnitError::NotUnderSystemd)?;
        let bus = |err: zbus::Error| OwnUnitError::Bus {
            scope,
            detail: dbus::describe(&err),
        };
        let conn = super::connect(scope).await.map_err(bus)?;
        let manager = dbus::manager(&conn).await.map_err(bus)?;
        let path = manager
            .get_unit_by_pid(std::process::id())
            .await
            .map_err(bus)?;
        Ok(OwnUnit { scope, conn, path })
    }

    async fn manager(&self) -> zbus::Result<SystemdManagerProxy<'static>> {
        dbus::manager(&self.conn).await
    }

    /// The unit's state as systemd reports it.
    pub async fn status(&self) -> zbus::Result<UnitState> {
        let unit = dbus::unit_proxy(&self.conn, self.path.clone()).await?;
        let service = dbus::service_proxy(&self.conn, self.path.clone()).await?;
        Ok(UnitState {
            unit: unit.id().await?,
            scope: self.scope,
            load_state: unit.load_state().await?,
            active_state: unit.active_state().await?,
            sub_state: unit.sub_state().await?,
            unit_file_state: unit.unit_file_state().await.unwrap_or_default(),
            active_since_usec: unit.active_enter_timestamp().await?,
            restarts: service.n_restarts().await.unwrap_or(0),
            main_pid: service.main_pid().await.unwrap_or(0),
        })
    }

    /// Asks systemd to restart our own unit. systemd answers with the job
    /// before it stops us, so the caller hears back; then SIGTERM arrives and
    /// the daemon shuts down as for any stop, and systemd starts a new one.
    pub async fn restart(&self) -> zbus::Result<RestartJob> {
        let unit = dbus::unit_proxy(&self.conn, self.path.clone()).await?;
        let name = unit.id().await?;
        let job = self.manager().await?.restart_unit(&name, "replace").await?;
        Ok(RestartJob {
            unit: name,
            scope: self.scope,
            old_pid: std::process::id(),
            job: job.to_string(),
        })
    }
}
