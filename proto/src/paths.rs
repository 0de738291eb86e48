//! Where an instance keeps its database and its control socket (DESIGN.md §1).
//!
//! The rules live here because both sides need them: faztd to create the
//! files, faztctl to find them. Explicit paths (flags or `FAZT_DATA_DIR` /
//! `FAZT_SOCKET`) always win over the XDG defaults.

use std::env;
use std::path::PathBuf;

/// The environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "FAZT_DATA_DIR";
/// The environment variable that overrides the control socket path.
pub const SOCKET_ENV: &str = "FAZT_SOCKET";
/// The database file name inside the data directory.
pub const DATABASE_FILE: &str = "data.redb";

/// The data directory of a user instance: `$XDG_DATA_HOME/fazt`, falling
/// back to `~/.local/share/fazt`.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = non_empty_env(DATA_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = non_empty_env("XDG_DATA_HOME") {
        return Some(PathBuf::from(xdg).join("fazt"));
    }
    home_dir().map(|home| home.join(".local/share/fazt"))
}

/// The control socket of a user instance: `$XDG_RUNTIME_DIR/fazt/faztd.sock`.
///
/// Without `XDG_RUNTIME_DIR` (a bare `su` shell, a container) the socket
/// goes under the data directory, which is private to the user as well.
pub fn default_socket_path() -> Option<PathBuf> {
    if let Some(path) = non_empty_env(SOCKET_ENV) {
        return Some(PathBuf::from(path));
    }
    if let Some(runtime) = non_empty_env("XDG_RUNTIME_DIR") {
        return Some(PathBuf::from(runtime).join("fazt/faztd.sock"));
    }
    default_data_dir().map(|dir| dir.join("run/faztd.sock"))
}

fn home_dir() -> Option<PathBuf> {
    non_empty_env("HOME").map(PathBuf::from)
}

fn non_empty_env(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}
