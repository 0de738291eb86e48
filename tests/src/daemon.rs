//! Running a real `faztd` for a test: its own temporary data directory, a
//! free loopback port, and a guaranteed stop (SIGTERM, then SIGKILL) when
//! the handle is dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bin;

/// A running faztd.
pub struct Faztd {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Everything the daemon printed to stdout so far (the banner).
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

    /// Starts faztd with `data_dir` and extra arguments, waiting until it
    /// prints the address it listens on. Returns its stderr on failure.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Result<Faztd, String> {
        Faztd::start_program(&bin("faztd"), data_dir, extra)
    }

    /// Like [`Faztd::start_in`], running the faztd binary at `program`.
    pub fn start_program(program: &Path, data_dir: &Path, extra: &[&str]) -> Result<Faztd, String> {
        let mut cmd = Command::new(program);
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("XDG_RUNTIME_DIR", data_dir.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("spawn faztd: {e}"))?;
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut banner = Vec::new();
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let addr = line
                        .split("listening on http://")
                        .nth(1)
                        .and_then(|a| a.trim().parse::<SocketAddr>().ok());
                    banner.push(line);
                    if let Some(addr) = addr {
                        // Collect the rest of the banner (it is printed at once).
                        while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                            banner.push(line);
                            if banner.last().is_some_and(|l| l.starts_with("data:")) {
                                break;
                            }
                        }
                        return Ok(Faztd {
                            child: Some(child),
                            addr,
                            data_dir: data_dir.to_path_buf(),
                            banner,
                            _temp: None,
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = child.kill();
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        Err(format!(
            "faztd did not start (status {:?}): {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// Stops the daemon (SIGTERM) and starts it again on the same data.
    pub fn restart(&mut self) {
        self.stop_with(libc_sig::SIGTERM);
        let mut again = Faztd::start_in(&self.data_dir, &[]).expect("faztd restarts");
        self.child = again.child.take();
        self.addr = again.addr;
        self.banner = std::mem::take(&mut again.banner);
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
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
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

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal and waits for the process to exit.
    pub fn stop_with(&mut self, signal: i32) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        signal_pid(child.id(), signal);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    use std::io::Read;
                    let _ = err.read_to_string(&mut stderr);
                }
                return (status, stderr);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("faztd did not exit within 20 s of signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Faztd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_pid(child.id(), libc_sig::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
    CtlOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Signal numbers used by tests.
pub mod libc_sig {
    pub const SIGTERM: i32 = 15;
    pub const SIGKILL: i32 = 9;
    pub const SIGINT: i32 = 2;
}

/// Sends `signal` to `pid` (our own child process).
pub fn signal_pid(pid: u32, signal: i32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if let Ok(sig) = Signal::try_from(signal) {
        let _ = kill(Pid::from_raw(pid as i32), sig);
    }
}
