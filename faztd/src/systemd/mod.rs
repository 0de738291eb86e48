//! faztd and systemd, spoken to over D-Bus (zbus), never through `systemctl`
//! or `loginctl` processes (DESIGN.md §8).
//!
//! - `unit.rs` renders the unit templates of `units/` (embedded at build time).
//! - `dbus.rs` holds the zbus proxies: systemd's `Manager`, `Unit` and `Service`
//!   interfaces, and logind's `Manager` (for linger).
//! - `install.rs` is `faztd install` / `faztd uninstall`: write the unit, then
//!   reload, enable and start it over D-Bus, undoing its own steps on failure.
//! - `own_unit.rs` is what a running daemon asks about itself: its unit's state
//!   (`faztctl status`) and a restart of its own unit (`faztctl restart`).
//! - `notify.rs` is the notify socket: READY, STATUS and the watchdog.

pub mod dbus;
pub mod install;
pub mod notify;
pub mod own_unit;
pub mod unit;

use std::fmt;

/// The unit's name, for both scopes.
pub const UNIT_NAME: &str = "faztd.service";

/// Set in our units so a running daemon knows which manager it answers to.
pub const SCOPE_ENV: &str = "FAZT_SYSTEMD_SCOPE";

/// Which systemd manager an instance belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The user's own manager (`systemctl --user`), on the session bus.
    User,
    /// The system manager (`systemctl`), on the system bus.
    System,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::System => "system",
        }
    }

    /// How a person addresses this manager with systemctl/journalctl.
    pub fn ctl_flag(self) -> &'static str {
        match self {
            Scope::User => " --user",
            Scope::System => "",
        }
    }

    /// The manager of a running daemon: our units say it in `FAZT_SYSTEMD_SCOPE`;
    /// for a unit someone else wrote, root means the system manager.
    pub fn of_running_daemon() -> Option<Scope> {
        match std::env::var(SCOPE_ENV).ok().as_deref() {
            Some("user") => return Some(Scope::User),
            Some("system") => return Some(Scope::System),
            _ => {}
        }
        std::env::var_os("INVOCATION_ID")?;
        Some(if nix::unistd::geteuid().is_root() {
            Scope::System
        } else {
            Scope::User
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connects to the bus where `scope`'s manager lives.
pub async fn connect(scope: Scope) -> zbus::Result<zbus::Connection> {
    match scope {
        Scope::User => zbus::Connection::session().await,
        Scope::System => zbus::Connection::system().await,
    }
}
