//! Reaching a remote faztd's control socket through the user's own OpenSSH.
//!
//! `ssh -N -L LOCAL.sock:REMOTE.sock host` forwards a private local Unix
//! socket (in a fresh 0700 temporary directory) to the daemon's socket on the
//! remote machine. Keys, agent, `~/.ssh/config` and `known_hosts` are ssh's
//! business; `BatchMode=yes` makes it fail instead of prompting. The tunnel is
//! torn down (ssh killed by pid, the directory removed) when it is dropped.
//! `FAZT_SSH` replaces the ssh command (e.g. `ssh -F ./ssh_config`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::remotes::Remote;

/// How long ssh gets to connect and set up the forward.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where faztd puts its socket, in the order to look (run by the remote shell).
const DISCOVER: &str = r#"for s in "${FAZT_SOCKET:-}" "${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/fazt/faztd.sock}" /run/fazt/faztd.sock "${XDG_DATA_HOME:-$HOME/.local/share}/fazt/run/faztd.sock"; do if [ -n "$s" ] && [ -S "$s" ]; then printf '%s\n' "$s"; exit 0; fi; done; exit 3"#;

pub struct Tunnel {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    pub local_socket: PathBuf,
}

/// The ssh command and its base options.
fn ssh(remote: &Remote) -> Command {
    let custom = std::env::var("FAZT_SSH")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let words: Vec<String> = custom
        .as_deref()
        .unwrap_or("ssh")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..])
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
        .args([
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=2",
        ]);
    if let Some(port) = remote.port {
        cmd.arg("-p").arg(port.to_string());
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Turns ssh's stderr into advice.
fn explain(host: &str, stderr: &str) -> anyhow::Error {
    let stderr = stderr.trim();
    let hint = if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || stderr.contains("Host key verification failed")
    {
        format!("the host key of {host} is not the one in known_hosts (or is unknown): ssh refused to connect. If the server really changed, update known_hosts (ssh-keygen -R HOST, then ssh HOST once)")
    } else if stderr.contains("Permission denied") {
        format!("ssh could not log in to {host}: check your key or agent (faztctl never asks for passwords)")
    } else if stderr.contains("Connection refused")
        || stderr.contains("Connection timed out")
        || stderr.contains("No route to host")
        || stderr.contains("Could not resolve")
    {
        format!("cannot reach {host} over ssh")
    } else {
        format!("ssh to {host} failed")
    };
    let detail = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    if detail.is_empty() {
        anyhow!("{hint}")
    } else {
        anyhow!("{hint} ({detail})")
    }
}

/// Finds the daemon's socket on the remote machine.
pub fn discover_socket(remote: &Remote) -> Result<String> {
    let out = ssh(remote)
        .arg(&remote.host)
        .arg("--")
        .arg(DISCOVER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run ssh: is OpenSSH installed?")?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        Some(3) => bail!(
            "no faztd control socket found on {} (is faztd running there? pass --socket PATH to `faztctl remote add` if it lives elsewhere)",
            remote.host
        ),
        _ => Err(explain(&remote.host, &String::from_utf8_lossy(&out.stderr))),
    }
}

impl Tunnel {
    /// Opens a tunnel to `remote`'s control socket and waits until it works.
    pub fn open(remote: &Remote) -> Result<Tunnel> {
        let remote_socket = match &remote.socket {
            Some(socket) => socket.clone(),
            None => discover_socket(remote)?,
        };
        let dir = tempfile::Builder::new()
            .prefix("faztctl-")
            .tempdir()
            .context("cannot make a temporary directory")?;
        let local_socket = dir.path().join("faztd.sock");
        let mut child = ssh(remote)
            .args([
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "StreamLocalBindUnlink=yes",
            ])
            .arg("-L")
            .arg(format!("{}:{}", local_socket.display(), remote_socket))
            .arg(&remote.host)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run ssh: is OpenSSH installed?")?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    use std::io::Read;
                    let _ = err.read_to_string(&mut stderr);
                }
                let _ = status;
                return Err(explain(&remote.host, &stderr));
            }
            if local_socket.exists() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "ssh to {} did not set up the tunnel within {}s",
                    remote.host,
                    CONNECT_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Tunnel {
            child: Some(child),
            dir: Some(dir),
            local_socket,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.local_socket
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            use nix::sys::signal::{kill, Signal};
            let _ = kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}
