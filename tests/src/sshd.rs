//! A real OpenSSH server on 127.0.0.1 for remote-administration tests:
//! generated host and user keys, its own config, known_hosts and an ssh
//! client config in a temporary directory, stopped by pid when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The `ssh` command tests hand to faztctl as `FAZT_SSH`.
    pub ssh_command: String,
    created_privsep: bool,
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

/// The sshd binary, or `None` (tests then say they are skipped).
pub fn sshd_binary() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Sshd {
    /// Starts sshd. `hosts` are extra `Host` blocks for the client config
    /// (alias, extra lines, where `{PORT}` becomes the server's port);
    /// `fazt-test` always points at this server.
    pub fn start(hosts: &[(&str, &str)]) -> Option<Sshd> {
        let binary = sshd_binary()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        keygen(&d.join("other_host_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
        let child = Command::new(&binary)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let ssh_command = format!("ssh -F {}", d.join("ssh_config").display());
        Some(Sshd {
            child: Some(child),
            port,
            dir,
            ssh_command,
            created_privsep,
        })
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
            crate::daemon::signal_pid(child.id(), crate::daemon::libc_sig::SIGTERM);
            let _ = child.wait();
        }
        privsep_release(self.created_privsep);
    }
}
