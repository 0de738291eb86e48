//! Helpers for end-to-end tests: find and run the real binaries, and talk
//! HTTP to them with a deliberately dumb client that sends bytes exactly as
//! written (so tests can send malformed hosts and hostile paths that a real
//! HTTP library would refuse or normalise away).
//!
//! Three rules every test here keeps, with the helper that keeps it:
//! - wait for an event, never sleep and hope: [`wait_until`]/[`wait_for`]
//!   (polling with a deadline), [`process::Captured::wait_for_line`]
//!   (a line of a child's output), [`daemon::Faztd::wait_for_log`];
//! - every pipe of a child is drained as it is written, and every child is
//!   stopped by pid: [`process::Process`], [`process::stop_child`];
//! - a test that lacks something (root, sshd, systemd) never passes as if it
//!   had run: [`skip_unless!`] skips loudly, or fails where `CI` is set.

pub mod control;
pub mod daemon;
pub mod http;
pub mod nginx;
pub mod pebble;
pub mod process;
pub mod require;
pub mod sshd;
pub mod systemd;
pub mod tls;
pub mod wait;
pub mod ws;

pub use wait::{wait_for, wait_until, PATIENCE};

use std::path::PathBuf;

/// The directory holding the workspace's built binaries (`target/debug`).
///
/// `FAZT_BIN_DIR` overrides it (CI builds once and points every test at
/// the same binaries).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FAZT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // Test executables live in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The path of a workspace binary, failing with a hint if it is not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` first (or use scripts/test.sh)",
        path.display()
    );
    path
}

/// A single-threaded runtime for a test that drives async clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A free loopback port (bound and released: the caller binds it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
