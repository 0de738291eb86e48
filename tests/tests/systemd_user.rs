//! faztd and a real `systemd --user` manager, checked with systemd itself
//! (`systemctl --user show`) as the independent observer.
//!
//! Each test creates a throw-away user and starts its manager (tests/src/systemd.rs),
//! and removes both afterwards. logind cannot run on these machines: linger
//! is checked against a stand-in `org.freedesktop.login1` on a private bus.

use std::net::TcpListener;

use fazt_e2e::systemd::{self, PrivateBus, UserManager};
use fazt_e2e::{free_port, http, skip_unless, wait_for, PATIENCE};

fn wait_healthy(port: u16) -> serde_json::Value {
    let addr = ([127, 0, 0, 1], port).into();
    let req = b"GET /_fazt/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let res = wait_for(PATIENCE, &format!("a healthy faztd on port {port}"), || {
        http::raw(addr, req).ok().filter(|res| res.status == 200)
    });
    serde_json::from_slice(&res.body).unwrap()
}

fn assert_installed_and_running(m: &UserManager) {
    assert_eq!(m.unit_property("faztd.service", "LoadState"), "loaded");
    assert_eq!(m.unit_property("faztd.service", "UnitFileState"), "enabled");
    assert_eq!(m.unit_property("faztd.service", "ActiveState"), "active");
    assert_eq!(m.unit_property("faztd.service", "SubState"), "running");
    assert_eq!(m.unit_property("faztd.service", "Type"), "notify");
}

fn assert_nothing_installed(m: &UserManager) {
    let unit = m.user.home.join(".config/systemd/user/faztd.service");
    assert!(!unit.exists(), "{} was left behind", unit.display());
    let wants = m
        .user
        .home
        .join(".config/systemd/user/default.target.wants/faztd.service");
    assert!(!wants.exists(), "{} was left behind", wants.display());
    assert_eq!(m.unit_property("faztd.service", "LoadState"), "not-found");
    assert_eq!(m.unit_property("faztd.service", "ActiveState"), "inactive");
}

#[test]
fn install_user_enable_start_restart_and_uninstall() {
    skip_unless!(systemd::missing_user_manager());
    let _serial = systemd::SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let m = UserManager::start();
    m.user.install_binaries();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");

    // First install: written, reloaded, enabled, started — as systemd says.
    let first = m
        .run("faztd", &["install", "--user", "--listen", &listen])
        .ok();
    let said = first.all();
    assert!(said.contains("wrote"), "{said}");
    assert!(said.contains("enabled: starts with the manager"), "{said}");
    // No logind here: the install stands, and says what that means.
    assert!(said.contains("linger     NOT enabled"), "{said}");
    assert!(
        said.contains("runs only while you have a session"),
        "{said}"
    );
    assert_installed_and_running(&m);
    let unit_file = m.user.home.join(".config/systemd/user/faztd.service");
    let unit_text = std::fs::read_to_string(&unit_file).unwrap();
    assert!(unit_text.contains(&format!(
        "ExecStart={}/.local/bin/faztd --listen {listen}",
        m.user.home.display()
    )));
    assert_eq!(wait_healthy(port)["status"], "ok");
    let pid = m.unit_property("faztd.service", "MainPID");
    assert_ne!(pid, "0");
    // READY came with a status line for `systemctl status`.
    assert!(m
        .unit_property("faztd.service", "StatusText")
        .contains("serving"));

    // Second install: nothing changes.
    let mtime = std::fs::metadata(&unit_file).unwrap().modified().unwrap();
    let second = m
        .run("faztd", &["install", "--user", "--listen", &listen])
        .ok();
    let said = second.all();
    assert!(said.contains("(unchanged)"), "{said}");
    assert!(said.contains("already enabled"), "{said}");
    assert!(said.contains("already running"), "{said}");
    assert_eq!(
        std::fs::metadata(&unit_file).unwrap().modified().unwrap(),
        mtime
    );
    assert_eq!(m.unit_property("faztd.service", "MainPID"), pid);

    // faztctl status shows the unit as systemd reports it.
    let status = m.run("faztctl", &["status", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["unit"]["active_state"], "active", "{json}");
    assert_eq!(json["unit"]["sub_state"], "running");
    assert_eq!(json["unit"]["unit"], "faztd.service");
    assert_eq!(json["unit"]["scope"], "user");
    assert_eq!(json["unit"]["unit_file_state"], "enabled");
    assert_eq!(json["unit"]["main_pid"].to_string(), pid);
    assert!(json["unit"]["active_since_usec"].as_u64().unwrap() > 0);
    let table = m.run("faztctl", &["status"]).ok();
    assert!(
        table.stdout.contains("active (running)"),
        "{}",
        table.stdout
    );

    // `systemctl --user restart faztd` brings it back (a new process).
    m.run("systemctl", &["--user", "restart", "faztd"]).ok();
    assert_installed_and_running(&m);
    let pid2 = m.unit_property("faztd.service", "MainPID");
    assert_ne!(pid2, pid);
    assert_eq!(wait_healthy(port)["status"], "ok");

    // `faztctl restart`: the daemon asks systemd to restart its own unit;
    // faztctl waits for the new daemon and reports its version.
    let restarted = m.run("faztctl", &["restart"]).ok();
    assert!(
        restarted.stdout.contains(&format!(
            "faztd restarted: version {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        restarted.all()
    );
    let pid3 = m.unit_property("faztd.service", "MainPID");
    assert_ne!(pid3, pid2);
    assert!(
        restarted.stdout.contains(&format!("pid {pid3}")),
        "{}",
        restarted.stdout
    );
    assert_installed_and_running(&m);
    assert_eq!(wait_healthy(port)["status"], "ok");

    // The daemon's own log, over the control socket.
    let logs = m.run("faztctl", &["logs", "--daemon"]).ok();
    assert!(logs.stdout.contains("started"), "{}", logs.stdout);

    // `faztctl upgrade`: the daemon swaps in a new binary and systemd
    // restarts it into that binary (here a marked copy of the same build).
    let mut marked = std::fs::read(fazt_e2e::bin("faztd")).unwrap();
    marked.extend_from_slice(b"\0fazt-upgrade-test-marker");
    let new_binary = m.user.home.join("new-faztd");
    std::fs::write(&new_binary, &marked).unwrap();
    m.user.chown_tree(&new_binary);
    let before = m.unit_property("faztd.service", "MainPID");
    let upgraded = m
        .run(
            "faztctl",
            &["upgrade", "--binary", new_binary.to_str().unwrap()],
        )
        .ok();
    assert!(
        upgraded.stdout.contains("faztd upgraded"),
        "{}",
        upgraded.all()
    );
    let after = m.unit_property("faztd.service", "MainPID");
    assert_ne!(before, after, "systemd started a new process");
    let installed = std::fs::read(m.user.home.join(".local/bin/faztd")).unwrap();
    assert!(installed == marked, "the unit's binary is the new one");
    assert_eq!(wait_healthy(port)["status"], "ok");

    // Linger against a stand-in logind (same interface, same signature).
    let bus = PrivateBus::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_conn, stand_in) = rt.block_on(systemd::logind::serve(&bus.address)).unwrap();
    let third = m
        .run_env(
            "faztd",
            &["install", "--user", "--listen", &listen],
            &[("DBUS_SYSTEM_BUS_ADDRESS", bus.address.clone())],
        )
        .ok();
    assert!(
        third.all().contains("linger     enabled for"),
        "{}",
        third.all()
    );
    assert_eq!(
        *stand_in.calls.lock().unwrap(),
        vec![(m.user.uid, true, false)],
        "SetUserLinger(uid, enable=true, interactive=false)"
    );
    drop(rt);

    // Uninstall: stopped, disabled, removed; the data stays.
    let removed = m.run("faztd", &["uninstall", "--user"]).ok();
    assert!(removed.all().contains("kept"), "{}", removed.all());
    assert_nothing_installed(&m);
    assert!(m.user.home.join(".local/share/fazt/data.redb").exists());
    // Its port is free again.
    TcpListener::bind(("127.0.0.1", port)).expect("the port is released");
    // Uninstalling again is not an error.
    m.run("faztd", &["uninstall", "--user", "--purge"]).ok();
    assert!(!m.user.home.join(".local/share/fazt").exists());
}

#[test]
fn install_failures_are_clear_and_leave_nothing_behind() {
    skip_unless!(systemd::missing_user_manager());
    let _serial = systemd::SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let m = UserManager::start();
    m.user.install_binaries();

    // A port another program holds: refused before anything is written.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let run = m.run(
        "faztd",
        &["install", "--listen", &format!("127.0.0.1:{port}")],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr.contains(&format!("port {port} is taken")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--listen"), "{}", run.stderr);
    assert!(
        run.stderr.contains("Nothing was installed"),
        "{}",
        run.stderr
    );
    assert_nothing_installed(&m);
    drop(taken);

    // A daemon that cannot start (its data directory cannot be created):
    // systemd's start job fails, and the install is undone.
    let port = free_port();
    let run = m.run(
        "faztd",
        &[
            "install",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            "/proc/fazt-cannot-be-here",
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains("faztd did not start"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing was left installed"),
        "{}",
        run.stderr
    );
    assert_nothing_installed(&m);

    // --system as a normal user: told to use sudo, nothing written.
    let run = m.run("faztd", &["install", "--system"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("needs root"), "{}", run.stderr);
    assert!(
        run.stderr.contains("sudo faztd install --system"),
        "{}",
        run.stderr
    );
    assert!(!std::path::Path::new("/etc/systemd/system/faztd.service").exists());

    // No reachable bus: said plainly, nothing written.
    let run = m.run_env(
        "faztd",
        &["install"],
        &[(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/bus".into(),
        )],
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("cannot reach your systemd user manager over D-Bus"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Nothing was installed"),
        "{}",
        run.stderr
    );
    assert_nothing_installed(&m);
}

#[test]
fn install_script_local_mode_ends_with_a_healthy_instance() {
    skip_unless!(systemd::missing_user_manager());
    let _serial = systemd::SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let m = UserManager::start();
    // The script and a "release" folder where the user can read them.
    let dist = tempfile::tempdir().unwrap();
    let dist_path = dist.path().to_path_buf();
    std::fs::create_dir_all(dist_path.join("scripts")).unwrap();
    let script = dist_path.join("scripts/install.sh");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/install.sh"),
        &script,
    )
    .unwrap();
    let build = dist_path.join("build");
    std::fs::create_dir_all(&build).unwrap();
    for name in ["faztd", "faztctl"] {
        std::fs::copy(fazt_e2e::bin(name), build.join(name)).unwrap();
    }
    m.user.chown_tree(&dist_path);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        script.to_str().unwrap(),
        "--mode",
        "local",
        "--yes",
        "--from-dir",
        build.to_str().unwrap(),
        "--listen",
        &listen,
    ];

    // A scratch HOME: the fresh test user's.
    let run = m.run("bash", &args).ok();
    let said = run.all();
    println!("{said}");
    assert!(said.contains("installed"), "{said}");
    assert!(said.contains("(local mode, healthy)"), "{said}");
    assert!(
        said.contains(&format!("http://localhost:{port}/")),
        "{said}"
    );
    assert!(m.user.home.join(".local/bin/faztd").exists());
    assert!(m.user.home.join(".local/bin/faztctl").exists());
    assert_installed_and_running(&m);
    assert_eq!(wait_healthy(port)["status"], "ok");

    // Again: the existing install is found, and nothing needs to change.
    let pid = m.unit_property("faztd.service", "MainPID");
    let again = m.run("bash", &args).ok();
    let said = again.all();
    assert!(said.contains("found an existing install"), "{said}");
    assert!(said.contains("already"), "{said}");
    assert_eq!(m.unit_property("faztd.service", "MainPID"), pid);

    // No mode and no terminal: told to pass --mode.
    let run = m.run("bash", &[script.to_str().unwrap()]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("pass --mode"), "{}", run.stderr);

    m.run("faztd", &["uninstall", "--purge"]).ok();
    assert_nothing_installed(&m);
}
