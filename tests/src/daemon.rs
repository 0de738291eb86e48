//! Running a real `faztd` for a test: its own temporary data directory, a
//! free loopback port, its output read as it is written (so a chatty daemon
//! never blocks on a full pipe, and a test can wait for a log line), and a
//! guaranteed stop (SIGTERM, then SIGKILL) when the handle is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use crate::bin;
use crate::process::Process;
use crate::wait::PATIENCE;

pub use crate::process::{libc_sig, signal_pid};

/// A running faztd.
pub struct Faztd {
    /// The process, its stdout (the banner) and stderr (the log) drained as
    /// they are written.
    process: Option<Process>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Everything the daemon printed to stdout until it was ready (the banner).
    pub banner: Vec<String>,
    _temp: Option<tempfile::TempDir>,
}

impl Faztd {
    /// Starts faztd on a fresh temporary data directory.
    pub fn start() -> Faztd {
        let temp = tempfile::tempdir().expect("tempdir");
        let mut daemon = Faztd::start_in(temp.path(), &[]).expect("faztd starts");
        daemon._temp = Some(temp);
        daemon
    }

    /// Starts faztd on a fresh data directory with `settings` (key, value)
    /// set through `faztctl config set`, restarted so that the ones read at
    /// start (function workers and limits, realtime history) apply.
    pub fn start_with(settings: &[(&str, &str)]) -> Faztd {
        let mut daemon = Faztd::start();
        for (key, value) in settings {
            daemon.ctl(&["config", "set", key, value]).ok();
        }
        daemon.restart();
        daemon
    }

    /// Starts faztd with `data_dir` and extra arguments, waiting until it
    /// prints the address it listens on. Returns its stderr on failure.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Result<Faztd, String> {
        Faztd::start_program(&bin("faztd"), data_dir, extra)
    }

    /// Like [`Faztd::start_in`], running the faztd binary at `program`.
    pub fn start_program(program: &Path, data_dir: &Path, extra: &[&str]) -> Result<Faztd, String> {
        let mut process = Process::spawn(
            Command::new(program)
                .arg("--data-dir")
                .arg(data_dir)
                .args(["--listen", "127.0.0.1:0"])
                .args(extra)
                .env("RUST_LOG", "info")
                // No NO_COLOR here: faztd must write plain lines to a pipe by
                // itself (tests read `key=value` from them).
                .env_remove("NO_COLOR")
                .env("XDG_RUNTIME_DIR", data_dir.join("run")),
        )
        .map_err(|e| format!("spawn faztd: {e}"))?;
        // The banner is printed at once: the address first, `data:` last.
        // Both waits end early if faztd exits (its stdout closes).
        let addr = process
            .stdout
            .wait_for_line(PATIENCE, |l| l.contains("listening on "))
            .and_then(|line| {
                // `listening on ADDR (...)`; older builds said `http://ADDR`.
                let rest = line.split("listening on ").nth(1)?;
                let addr = rest
                    .trim_start_matches("http://")
                    .split_whitespace()
                    .next()?;
                addr.parse::<SocketAddr>().ok()
            })
            .filter(|_| {
                let end = process
                    .stdout
                    .wait_for_line(PATIENCE, |l| l.starts_with("data:"));
                end.is_some()
            });
        let Some(addr) = addr else {
            let status = process.stop(libc_sig::SIGKILL, PATIENCE);
            process.stderr.wait_closed(PATIENCE);
            return Err(format!(
                "faztd did not start (status {:?}): {}",
                status.and_then(|s| s.code()),
                process.stderr.text()
            ));
        };
        Ok(Faztd {
            banner: process.stdout.lines(),
            process: Some(process),
            addr,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
        })
    }

    fn process(&self) -> &Process {
        self.process.as_ref().expect("faztd is running")
    }

    /// Stops the daemon (SIGTERM) and starts it again on the same data.
    pub fn restart(&mut self) {
        self.stop_with(libc_sig::SIGTERM);
        let mut again = Faztd::start_in(&self.data_dir, &[]).expect("faztd restarts");
        self.process = again.process.take();
        self.addr = again.addr;
        self.banner = std::mem::take(&mut again.banner);
    }

    /// What the running daemon has logged so far (its stderr).
    pub fn log(&self) -> String {
        self.process().stderr.text()
    }

    /// Waits for the daemon to log a line matching `wanted` (or to have
    /// logged it already) and returns the line; panics naming `what` if it
    /// does not come.
    pub fn wait_for_log(&self, what: &str, wanted: impl FnMut(&str) -> bool) -> String {
        let stderr = &self.process().stderr;
        stderr
            .wait_for_line(PATIENCE, wanted)
            .unwrap_or_else(|| panic!("faztd never logged {what}; its log:\n{}", stderr.text()))
    }

    /// Deploys `files` (path in the site, contents) as `site` with faztctl,
    /// which must succeed. The returned directory holds the files.
    pub fn deploy_files(&self, site: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, data) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("site dir");
            std::fs::write(path, data).expect("site file");
        }
        let root = dir.path().to_str().expect("UTF-8 temp path");
        self.ctl(&["deploy", root, "--site", site]).ok();
        dir
    }

    /// `faztctl deploy DIR --site SITE --json`, which must succeed; its report.
    pub fn deploy_json(&self, dir: &Path, site: &str) -> serde_json::Value {
        let dir = dir.to_str().expect("UTF-8 site path");
        self.ctl(&["deploy", dir, "--site", site, "--json"])
            .ok()
            .json()
    }

    /// The control socket (under the data dir's `run/`, our XDG_RUNTIME_DIR).
    pub fn socket(&self) -> PathBuf {
        socket_for(&self.data_dir)
    }

    /// Runs faztctl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> CtlOutput {
        faztctl(&self.socket(), args)
    }

    /// Stops the daemon abruptly, as a crash or the OOM killer would.
    pub fn kill_hard(&mut self) {
        let mut process = self.process.take().expect("faztd is running");
        process.stop(libc_sig::SIGKILL, PATIENCE);
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// Peak resident memory of the daemon so far, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Resident memory of the daemon now, in KiB (Linux `VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// How many refusals of `kind` (e.g. `http_connections_per_address`)
    /// `faztctl status` counts.
    pub fn refused(&self, kind: &str) -> u64 {
        let status = self.ctl(&["status", "--json"]).ok().json();
        status["daemon"]["refusals"][kind]
            .as_u64()
            .unwrap_or_else(|| panic!("no refusal counter {kind} in {status}"))
    }

    /// File descriptors the daemon holds open now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// The size of the database file now, in bytes.
    pub fn db_bytes(&self) -> u64 {
        std::fs::metadata(self.data_dir.join("data.redb")).map_or(0, |m| m.len())
    }

    pub fn pid(&self) -> u32 {
        self.process().id()
    }

    /// Sends a signal and waits for the process to exit; returns how it
    /// exited and everything it logged.
    pub fn stop_with(&mut self, signal: i32) -> (ExitStatus, String) {
        let mut process = self.process.take().expect("faztd is running");
        let status = process
            .stop(signal, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("faztd did not exit within 20 s of signal {signal}"));
        process.stderr.wait_closed(PATIENCE);
        (status, process.stderr.text())
    }
}

impl Drop for Faztd {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(libc_sig::SIGTERM, Duration::from_secs(5));
        }
    }
}

/// Runs faztd on `data_dir` with `args` where it must refuse to start: its
/// exit code and what it logged. Panics (and stops it by pid) should it
/// keep running.
pub fn faztd_refusing(data_dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut process = Process::spawn(
        Command::new(bin("faztd"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_RUNTIME_DIR", data_dir.join("run")),
    )
    .expect("spawn faztd");
    let Some(status) = process.wait(PATIENCE) else {
        panic!("faztd kept running: {}", process.stderr.text());
    };
    process.stderr.wait_closed(PATIENCE);
    (status.code(), process.stderr.text())
}

/// Where a daemon started by [`Faztd::start_in`] puts its control socket.
pub fn socket_for(data_dir: &Path) -> PathBuf {
    data_dir.join("run/fazt/faztd.sock")
}

/// What a faztctl run printed, and how it exited.
#[derive(Debug)]
pub struct CtlOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for CtlOutput {
    fn from(out: Output) -> CtlOutput {
        CtlOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl CtlOutput {
    /// Panics with everything faztctl said unless it exited 0.
    pub fn ok(self) -> CtlOutput {
        assert_eq!(
            self.code,
            Some(0),
            "faztctl failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs faztctl with `--socket socket` and `args`.
pub fn faztctl(socket: &Path, args: &[&str]) -> CtlOutput {
    let out = Command::new(bin("faztctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run faztctl");
    CtlOutput::from(out)
}
