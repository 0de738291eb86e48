//! A real OpenSSH server on 127.0.0.1 for remote-administration tests:
//! generated host and user keys, its own config, known_hosts and an ssh
//! client config in a temporary directory, stopped by pid when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::daemon::{CtlOutput, Faztd};
use crate::process::{libc_sig, stop_child, Captured};
use crate::require::missing_programs;
use crate::wait::{poll, PATIENCE};

pub struct Sshd {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The `ssh` command tests hand to faztctl as `FAZT_SSH`.
    pub ssh_command: String,
    created_privsep: bool,
    /// sshd's own log (`-e`, errors only), drained as it is written.
    log: Captured,
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What this machine lacks to run [`Sshd`], for
/// [`skip_unless!`](crate::skip_unless): `None` when nothing.
pub fn missing() -> Option<String> {
    missing_programs(&[
        ("sshd", "openssh-server"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
    ])
}

impl Sshd {
    /// Starts sshd. `hosts` are extra `Host` blocks for the client config
    /// (alias, extra lines, where `{PORT}` becomes the server's port);
    /// `fazt-test` always points at this server. Check [`missing`] first.
    pub fn start(hosts: &[(&str, &str)]) -> Sshd {
        let binary = crate::require::find_program("sshd").expect("sshd is installed");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        keygen(&d.join("other_host_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = crate::free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {dir}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nAcceptEnv FAZT_SOCKET\n\
                 AllowStreamLocalForwarding yes\nLogLevel ERROR\n",
                dir = d.display()
            ),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let other_pub = std::fs::read_to_string(d.join("other_host_key.pub")).unwrap();
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .unwrap();
        std::fs::write(
            d.join("wrong_known_hosts"),
            format!("[127.0.0.1]:{port} {other_pub}"),
        )
        .unwrap();
        let user = current_user();
        let mut config = format!(
            "Host fazt-test\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {dir}/user_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {dir}/known_hosts\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
            dir = d.display()
        );
        config.push_str(&format!(
            "Host fazt-wrong-key\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {dir}/user_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {dir}/wrong_known_hosts\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
            dir = d.display()
        ));
        for (alias, extra) in hosts {
            config.push_str(&format!(
                "Host {alias}\n  HostName 127.0.0.1\n  User {user}\n  IdentityFile {dir}/user_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {dir}/known_hosts\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n  Port {port}\n{extra}\n",
                dir = d.display(),
                extra = extra.replace("{PORT}", &port.to_string())
            ));
        }
        std::fs::write(d.join("ssh_config"), config).unwrap();
        let created_privsep = privsep_acquire();
        let mut child = Command::new(&binary)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshd starts");
        // Its log (errors only): read as written, and shown if it fails to start.
        let log = Captured::drain(child.stderr.take().expect("stderr"));
        // Listening, or exited (then there is no point waiting on).
        let listening = poll(PATIENCE, || {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(true);
            }
            child.try_wait().ok().flatten().map(|_| false)
        });
        let ssh_command = format!("ssh -F {}", d.join("ssh_config").display());
        let sshd = Sshd {
            child: Some(child),
            port,
            dir,
            ssh_command,
            created_privsep,
            log,
        };
        assert!(
            listening == Some(true),
            "sshd did not listen on {port}: {}",
            sshd.log.text()
        );
        sshd
    }

    /// ssh processes still running with this server's client config.
    pub fn stray_ssh_processes(&self) -> usize {
        let needle = self.dir.path().join("ssh_config").display().to_string();
        std::fs::read_dir("/proc")
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                    .filter(|cmd| String::from_utf8_lossy(cmd).contains(&needle))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Debian's sshd wants its privilege-separation directory. Tests that made
/// it remove it when the last of their servers stops.
static PRIVSEP: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));

fn privsep_acquire() -> bool {
    let mut state = PRIVSEP.lock().unwrap();
    if state.0 == 0 && !Path::new("/run/sshd").exists() {
        state.1 = std::fs::create_dir_all("/run/sshd").is_ok();
    }
    state.0 += 1;
    state.1
}

fn privsep_release(_created: bool) {
    let mut state = PRIVSEP.lock().unwrap();
    state.0 -= 1;
    if state.0 == 0 && state.1 {
        let _ = std::fs::remove_dir("/run/sshd");
        state.1 = false;
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, libc_sig::SIGTERM, Duration::from_secs(10));
        }
        privsep_release(self.created_privsep);
    }
}

/// faztctl as a user who reaches remotes through an [`Sshd`]: its own config
/// directory (so its own `remotes.toml`), the server's ssh client config,
/// and optionally a local daemon of its own.
pub struct RemoteCtl {
    pub config: tempfile::TempDir,
    ssh_command: String,
    local_socket: Option<PathBuf>,
}

impl RemoteCtl {
    /// faztctl for `sshd`, whose local daemon is `local` (`None`: no local
    /// daemon runs).
    pub fn new(sshd: &Sshd, local: Option<&Faztd>) -> RemoteCtl {
        RemoteCtl {
            config: tempfile::tempdir().expect("tempdir"),
            ssh_command: sshd.ssh_command.clone(),
            local_socket: local.map(Faztd::socket),
        }
    }

    /// Runs faztctl with `args`.
    pub fn run(&self, args: &[&str]) -> CtlOutput {
        // The local daemon is found through XDG_RUNTIME_DIR, as a user's would.
        let runtime_dir = match &self.local_socket {
            Some(socket) => socket
                .parent()
                .and_then(Path::parent)
                .expect("RUNTIME/fazt/faztd.sock")
                .to_path_buf(),
            None => self.config.path().join("no-runtime"),
        };
        Command::new(crate::bin("faztctl"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .env("FAZT_SSH", &self.ssh_command)
            .env("NO_COLOR", "1")
            .env_remove("FAZT_SOCKET")
            .stdin(Stdio::null())
            .output()
            .expect("faztctl runs")
            .into()
    }

    /// `faztctl remote add NAME HOST --socket` (the socket of `daemon`),
    /// which must succeed. `HOST` is one of the server's ssh aliases.
    pub fn add_remote(&self, name: &str, host: &str, daemon: &Faztd) {
        let socket = daemon.socket().display().to_string();
        self.run(&["remote", "add", name, host, "--socket", &socket])
            .ok();
    }
}
