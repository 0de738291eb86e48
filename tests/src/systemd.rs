//! A real, unprivileged `systemd --user` manager for tests, on machines that
//! did not boot systemd (see `../shared/recipes/user-systemd.md`):
//!
//! - a throw-away user (`useradd -m`), removed with its home (`userdel -r`);
//! - `/run/user/UID` (0700, the user's) and a delegated cgroup v2 directory;
//! - the manager itself, started as that user in a private mount namespace
//!   where `/run/systemd/system` exists (so `sd_booted()` is true there and
//!   nowhere else).
//!
//! Dropping the [`UserManager`] stops the manager by its pid, kills whatever
//! is left in its cgroup by pid, and removes the cgroup, the runtime
//! directory and the user: the machine is left as it was found.
//!
//! Everything here needs root; [`missing_user_manager`] says what this
//! machine lacks, for [`skip_unless!`](crate::skip_unless) (which skips
//! loudly, or fails where `CI` is set).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::process::{libc_sig, signal_pid, stop_child};
use crate::require::{missing_programs, missing_root};
use crate::wait::{poll, wait_until, PATIENCE};

/// Tests that start a manager run one at a time (each creates a user and
/// a cgroup; two at once would only compete for the two cores).
pub static SERIAL: Mutex<()> = Mutex::new(());

static NEXT_USER: AtomicU32 = AtomicU32::new(0);

/// What this machine lacks to run a [`UserManager`] (and the private bus the
/// linger test adds), for [`skip_unless!`](crate::skip_unless): `None` when
/// nothing.
pub fn missing_user_manager() -> Option<String> {
    missing_root("it creates a test user, a cgroup and /run/user/UID")
        .or_else(|| {
            missing_programs(&[
                ("/lib/systemd/systemd", "systemd"),
                ("systemctl", "systemd"),
                ("busctl", "systemd"),
                ("/usr/lib/systemd/user/dbus.socket", "dbus-user-session"),
                ("dbus-daemon", "dbus-daemon"),
                ("unshare", "util-linux"),
                ("setpriv", "util-linux"),
                ("useradd", "passwd"),
            ])
        })
        .or_else(|| {
            cgroup_root()
                .is_none()
                .then(|| "no cgroup v2 hierarchy to delegate to a user manager".into())
        })
}

/// What this machine lacks to start a process in a private mount namespace
/// (as the journald test does): `None` when nothing.
pub fn missing_mount_namespace() -> Option<String> {
    missing_root("it mounts a tmpfs in a private mount namespace")
        .or_else(|| missing_programs(&[("unshare", "util-linux")]))
}

fn cgroup_root() -> Option<PathBuf> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Some(PathBuf::from("/sys/fs/cgroup"))
    } else if Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    } else {
        None
    }
}

/// What a command run as the test user printed.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A throw-away Unix user with a home directory.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub home: PathBuf,
}

impl TestUser {
    pub fn create() -> TestUser {
        let name = format!(
            "fzt{}x{}",
            std::process::id() % 100_000,
            NEXT_USER.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", &name])
            .output()
            .expect("run useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let user = nix::unistd::User::from_name(&name)
            .expect("getpwnam")
            .expect("the new user exists");
        TestUser {
            name,
            uid: user.uid.as_raw(),
            home: user.dir,
        }
    }

    /// A command run as this user, with a clean environment and `env`.
    pub fn command(&self, program: &str, env: &[(&str, String)]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.uid))
            .arg("--init-groups")
            .arg("env")
            .arg("-i")
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!("USER={}", self.name))
            .arg(format!("LOGNAME={}", self.name))
            .arg(format!(
                "PATH={}/.local/bin:/usr/bin:/bin",
                self.home.display()
            ))
            .arg("NO_COLOR=1");
        for (key, value) in env {
            cmd.arg(format!("{key}={value}"));
        }
        cmd.arg(program).stdin(Stdio::null());
        cmd
    }

    /// Copies the built faztd and faztctl into `~/.local/bin`, owned by the user.
    pub fn install_binaries(&self) -> PathBuf {
        let bin = self.home.join(".local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in ["faztd", "faztctl"] {
            std::fs::copy(crate::bin(name), bin.join(name)).unwrap();
        }
        self.chown_tree(&self.home.join(".local"));
        bin
    }

    /// Gives the user everything under `path`.
    pub fn chown_tree(&self, path: &Path) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{0}:{0}", self.name))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Anything still running as the user (there should be nothing): by pid.
        for pid in pids_of_uid(self.uid) {
            signal_pid(pid, libc_sig::SIGKILL);
        }
        let _ = Command::new("userdel").args(["-r", &self.name]).output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn pids_of_uid(uid: u32) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let meta = std::fs::metadata(e.path()).ok()?;
            (meta.uid() == uid).then_some(pid)
        })
        .collect()
}

/// A running `systemd --user` for a fresh test user.
pub struct UserManager {
    pub user: TestUser,
    pub runtime_dir: PathBuf,
    cgroup: PathBuf,
    child: Option<Child>,
    pub log: PathBuf,
}

impl UserManager {
    /// Creates a user and starts its manager; ready when its `SystemState`
    /// is `running` or `degraded`.
    pub fn start() -> UserManager {
        let user = TestUser::create();
        let runtime_dir = PathBuf::from(format!("/run/user/{}", user.uid));
        std::fs::create_dir_all(&runtime_dir).unwrap();
        nix::unistd::chown(
            &runtime_dir,
            Some(nix::unistd::Uid::from_raw(user.uid)),
            Some(nix::unistd::Gid::from_raw(user.uid)),
        )
        .unwrap();
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700)).unwrap();

        let cgroup = cgroup_root()
            .expect("cgroup v2")
            .join(format!("fazt-test-{}.service", user.uid));
        std::fs::create_dir_all(&cgroup).unwrap();
        for entry in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            let path = cgroup.join(entry);
            nix::unistd::chown(
                &path,
                Some(nix::unistd::Uid::from_raw(user.uid)),
                Some(nix::unistd::Gid::from_raw(user.uid)),
            )
            .unwrap();
        }
        let log = std::env::temp_dir().join(format!("fazt-user-systemd-{}.log", user.name));
        let script = format!(
            "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && \
             echo $$ > {procs} && \
             exec setpriv --reuid={uid} --regid={uid} --init-groups env -i HOME={home} USER={name} \
             LOGNAME={name} PATH=/usr/bin:/bin XDG_RUNTIME_DIR={rt} /lib/systemd/systemd --user",
            procs = cgroup.join("cgroup.procs").display(),
            uid = user.uid,
            home = user.home.display(),
            name = user.name,
            rt = runtime_dir.display(),
        );
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .expect("start systemd --user");
        let manager = UserManager {
            user,
            runtime_dir,
            cgroup,
            child: Some(child),
            log,
        };
        let up = poll(PATIENCE, || {
            let state = manager
                .run(
                    "busctl",
                    &[
                        "--user",
                        "get-property",
                        "org.freedesktop.systemd1",
                        "/org/freedesktop/systemd1",
                        "org.freedesktop.systemd1.Manager",
                        "SystemState",
                    ],
                )
                .stdout;
            (state.contains("running") || state.contains("degraded")).then_some(())
        });
        assert!(
            up.is_some(),
            "systemd --user did not come up: {}",
            std::fs::read_to_string(&manager.log).unwrap_or_default()
        );
        manager
    }

    /// The environment a session of the user would have.
    pub fn session_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("XDG_RUNTIME_DIR", self.runtime_dir.display().to_string()),
            (
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}/bus", self.runtime_dir.display()),
            ),
        ]
    }

    /// Runs `program args` as the user, in their session environment.
    pub fn run(&self, program: &str, args: &[&str]) -> Run {
        self.run_env(program, args, &[])
    }

    pub fn run_env(&self, program: &str, args: &[&str], extra: &[(&str, String)]) -> Run {
        let mut env = self.session_env();
        env.extend(extra.iter().cloned());
        let out = self
            .user
            .command(program, &env)
            .args(args)
            .output()
            .expect("run as the test user");
        Run::from(out)
    }

    /// One property of a unit, as `systemctl --user show` (systemd itself) reports it.
    pub fn unit_property(&self, unit: &str, property: &str) -> String {
        self.run(
            "systemctl",
            &["--user", "show", unit, "-p", property, "--value"],
        )
        .stdout
        .trim()
        .to_string()
    }

    pub fn manager_pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A user manager treats SIGTERM as "start exit.target": it stops
            // its units (faztd, dbus) and exits.
            stop_child(&mut child, libc_sig::SIGTERM, Duration::from_secs(15));
        }
        // Whatever is left in the delegated cgroup, by pid; then the cgroups.
        poll(Duration::from_secs(5), || {
            let pids = cgroup_pids(&self.cgroup);
            for pid in &pids {
                signal_pid(*pid, libc_sig::SIGKILL);
            }
            pids.is_empty().then_some(())
        });
        remove_cgroup_tree(&self.cgroup);
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn cgroup_pids(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(cgroup_pids(&entry.path()));
            }
        }
    }
    pids
}

/// cgroup directories are removed with rmdir, children first.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// A private `dbus-daemon` on a socket anyone may connect to (the test user
/// included); stopped by pid when dropped.
pub struct PrivateBus {
    child: Child,
    dir: tempfile::TempDir,
    pub address: String,
}

impl PrivateBus {
    pub fn start() -> PrivateBus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // It complains it cannot raise its fd limit as a non-root-owned bus: noise.
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        // Owned (and so stopped when dropped) before anything can fail.
        let bus = PrivateBus {
            child,
            address: format!("unix:path={}", socket.display()),
            dir,
        };
        wait_until(PATIENCE, "dbus-daemon to create its socket", || {
            socket.exists()
        });
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
        bus
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc_sig::SIGTERM, Duration::from_secs(10));
    }
}

/// A stand-in for logind's `org.freedesktop.login1.Manager` on a private
/// bus: the real interface name and the real `SetUserLinger(u, b, b)`
/// signature, recording each call. (logind cannot run on machines that did
/// not boot systemd.)
pub mod logind {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub struct StandIn {
        pub calls: Arc<Mutex<Vec<(u32, bool, bool)>>>,
    }

    #[zbus::interface(name = "org.freedesktop.login1.Manager")]
    impl StandIn {
        async fn set_user_linger(&self, uid: u32, enable: bool, interactive: bool) {
            self.calls.lock().unwrap().push((uid, enable, interactive));
        }
    }

    /// Serves the stand-in on `address` as `org.freedesktop.login1`.
    pub async fn serve(address: &str) -> zbus::Result<(zbus::Connection, StandIn)> {
        let stand_in = StandIn::default();
        let conn = zbus::connection::Builder::address(address)
            .name("org.freedesktop.login1")
            .serve_at("/org/freedesktop/login1", stand_in.clone())
            .build()
            .await?;
        Ok((conn, stand_in))
    }
}
