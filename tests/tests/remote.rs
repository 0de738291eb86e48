//! Remote administration through a real sshd on loopback: the remotes file,
//! `@NAME` commands through an SSH tunnel, deploys to several instances, the
//! status matrix, and what happens when a remote is down or not trusted.

use std::path::Path;
use std::process::{Command, Stdio};

use fazt_e2e::daemon::{CtlOutput, Faztd};
use fazt_e2e::sshd::Sshd;
use fazt_e2e::{bin, http};

/// faztctl with its own config dir (remotes.toml) and the test's ssh.
struct Ctl<'a> {
    config: tempfile::TempDir,
    sshd: &'a Sshd,
    local_socket: Option<std::path::PathBuf>,
}

impl Ctl<'_> {
    fn run(&self, args: &[&str]) -> CtlOutput {
        let mut cmd = Command::new(bin("faztctl"));
        cmd.args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("FAZT_SSH", &self.sshd.ssh_command)
            .env("NO_COLOR", "1")
            .env_remove("FAZT_SOCKET")
            .stdin(Stdio::null());
        match &self.local_socket {
            Some(socket) => cmd.env(
                "XDG_RUNTIME_DIR",
                socket.parent().unwrap().parent().unwrap(),
            ),
            None => cmd.env("XDG_RUNTIME_DIR", self.config.path().join("no-runtime")),
        };
        let out = cmd.output().expect("faztctl runs");
        CtlOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Skips (loudly) where sshd is not installed.
fn sshd(extra_hosts: &[(&str, &str)]) -> Option<Sshd> {
    let s = Sshd::start(extra_hosts);
    if s.is_none() {
        eprintln!("SKIPPED: no sshd on this machine (apt-get install openssh-server; scripts/test-deps.sh does it as root)");
    }
    s
}

fn site(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, data) in files {
        std::fs::write(dir.path().join(rel), data).unwrap();
    }
    dir
}

fn sock(d: &Faztd) -> String {
    d.socket().display().to_string()
}

#[test]
fn the_remotes_file_is_managed_and_human_editable() {
    let Some(s) = sshd(&[]) else { return };
    let ctl = Ctl {
        config: tempfile::tempdir().unwrap(),
        sshd: &s,
        local_socket: None,
    };
    ctl.run(&[
        "remote",
        "add",
        "prod",
        "deploy@example.com",
        "--port",
        "2222",
        "--socket",
        "/run/fazt/faztd.sock",
    ])
    .ok();
    ctl.run(&["remote", "add", "staging", "fazt-test"]).ok();
    let file = std::fs::read_to_string(ctl.config.path().join("fazt/remotes.toml")).unwrap();
    assert!(
        file.contains("[remotes.prod]") && file.contains("host = \"deploy@example.com\""),
        "{file}"
    );
    assert!(file.contains("port = 2222"), "{file}");
    let list = ctl.run(&["remote", "list", "--json"]).ok().json();
    assert_eq!(list["remotes"]["staging"]["host"], "fazt-test");
    assert!(
        list["remotes"]["staging"].get("socket").is_none(),
        "discovered, so not stored"
    );
    assert!(ctl
        .run(&["remote", "list"])
        .ok()
        .stdout
        .contains("discovered"));

    ctl.run(&["remote", "default", "staging"]).ok();
    assert_eq!(
        ctl.run(&["remote", "list", "--json"]).ok().json()["default"],
        "staging"
    );
    ctl.run(&["remote", "rm", "staging"]).ok();
    let list = ctl.run(&["remote", "list", "--json"]).ok().json();
    assert!(list["remotes"].get("staging").is_none());
    assert!(list.get("default").is_none() || list["default"].is_null());

    let bad = ctl.run(&["remote", "add", "bad name", "host"]);
    assert_eq!(bad.code, Some(1));
    let unknown = ctl.run(&["@nosuch", "status"]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("no remote named nosuch"),
        "{}",
        unknown.stderr
    );
    // A hand-edited file is read back.
    std::fs::write(
        ctl.config.path().join("fazt/remotes.toml"),
        "[remotes.edited]\nhost = \"me@box\"\n",
    )
    .unwrap();
    assert_eq!(
        ctl.run(&["remote", "list", "--json"]).ok().json()["remotes"]["edited"]["host"],
        "me@box"
    );
}

#[test]
fn commands_run_on_a_remote_through_the_tunnel() {
    let Some(s) = sshd(&[]) else { return };
    let remote = Faztd::start();
    let local = Faztd::start();
    let ctl = Ctl {
        config: tempfile::tempdir().unwrap(),
        sshd: &s,
        local_socket: Some(local.socket()),
    };
    ctl.run(&[
        "remote",
        "add",
        "box",
        "fazt-test",
        "--socket",
        &sock(&remote),
    ])
    .ok();

    let status = ctl.run(&["@box", "status", "--json"]).ok().json();
    assert_eq!(
        status["daemon"]["pid"].as_u64(),
        Some(remote.pid() as u64),
        "the remote answered"
    );
    let matrix = status["matrix"].as_array().unwrap();
    let roles: Vec<&str> = matrix.iter().map(|r| r["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["source", "binary", "binary", "local", "remote"]);
    let remote_row = &matrix[4];
    assert_eq!(remote_row["name"], "box");
    assert_eq!(remote_row["health"], "ok");
    assert_eq!(matrix[3]["health"], "ok", "the local daemon is checked too");
    assert_eq!(matrix[1]["version"], env!("CARGO_PKG_VERSION"));

    // Deploy through the tunnel; the remote serves it over HTTP.
    let dir = site(&[("index.html", "<h1>remote v1</h1>")]);
    let out = ctl
        .run(&[
            "--remote",
            "box",
            "deploy",
            dir.path().to_str().unwrap(),
            "--site",
            "web",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["uploaded_blobs"], 1);
    assert_eq!(
        http::get(remote.addr, "web.localhost", "/", &[]).body,
        b"<h1>remote v1</h1>"
    );
    assert_eq!(
        http::get(local.addr, "web.localhost", "/", &[]).status,
        404,
        "not on the local instance"
    );
    std::fs::write(dir.path().join("index.html"), "<h1>remote v2</h1>").unwrap();
    ctl.run(&[
        "@box",
        "deploy",
        dir.path().to_str().unwrap(),
        "--site",
        "web",
    ])
    .ok();
    assert_eq!(
        http::get(remote.addr, "web.localhost", "/", &[]).body,
        b"<h1>remote v2</h1>"
    );
    let rolled = ctl.run(&["@box", "rollback", "web", "--json"]).ok().json();
    assert_eq!(rolled["site"], "web");
    assert_eq!(
        http::get(remote.addr, "web.localhost", "/", &[]).body,
        b"<h1>remote v1</h1>"
    );
    let sites = ctl.run(&["@box", "sites", "--json"]).ok().json();
    assert!(sites.as_array().unwrap().iter().any(|s| s["name"] == "web"));
    // Plain commands still go to the local daemon; with a default remote they go there.
    assert!(ctl
        .run(&["sites", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["name"] != "web"));
    ctl.run(&["remote", "default", "box"]).ok();
    assert!(ctl
        .run(&["sites", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "web"));
    assert!(ctl
        .run(&["@local", "sites", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["name"] != "web"));

    // Every tunnel was torn down.
    assert_eq!(s.stray_ssh_processes(), 0, "no ssh left running");
}

#[test]
fn the_remote_socket_is_discovered_when_not_given() {
    let remote = Faztd::start();
    // The remote shell learns FAZT_SOCKET from the client (sshd accepts it),
    // as a login shell of a real server would have it in its environment.
    let extra = format!("  SetEnv FAZT_SOCKET={}", sock(&remote));
    let Some(s) = sshd(&[("fazt-discover", &extra)]) else {
        return;
    };
    let ctl = Ctl {
        config: tempfile::tempdir().unwrap(),
        sshd: &s,
        local_socket: None,
    };
    ctl.run(&["remote", "add", "found", "fazt-discover"]).ok();
    let status = ctl.run(&["@found", "status", "--json"]).ok().json();
    assert_eq!(status["daemon"]["pid"].as_u64(), Some(remote.pid() as u64));
}

#[test]
fn deploy_to_several_instances_survives_one_that_is_down() {
    let Some(s) = sshd(&[]) else { return };
    let remote = Faztd::start();
    let local = Faztd::start();
    let ctl = Ctl {
        config: tempfile::tempdir().unwrap(),
        sshd: &s,
        local_socket: Some(local.socket()),
    };
    ctl.run(&[
        "remote",
        "add",
        "up",
        "fazt-test",
        "--socket",
        &sock(&remote),
    ])
    .ok();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ctl.run(&[
        "remote",
        "add",
        "down",
        "fazt-test",
        "--port",
        &closed.to_string(),
        "--socket",
        "/nope.sock",
    ])
    .ok();
    let dir = site(&[("index.html", "<h1>everywhere</h1>")]);

    let ok = ctl
        .run(&[
            "deploy",
            dir.path().to_str().unwrap(),
            "--site",
            "multi",
            "--to",
            "up,local",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(ok["ok"], true);
    assert_eq!(
        http::get(remote.addr, "multi.localhost", "/", &[]).body,
        b"<h1>everywhere</h1>"
    );
    assert_eq!(
        http::get(local.addr, "multi.localhost", "/", &[]).body,
        b"<h1>everywhere</h1>"
    );

    std::fs::write(dir.path().join("index.html"), "<h1>v2</h1>").unwrap();
    let mixed = ctl.run(&[
        "deploy",
        dir.path().to_str().unwrap(),
        "--site",
        "multi",
        "--to",
        "up,down,local",
    ]);
    assert_eq!(mixed.code, Some(1), "not every instance succeeded");
    assert!(
        mixed.stdout.contains("to 2 of 3 instances"),
        "{}",
        mixed.stdout
    );
    assert!(mixed.stdout.contains("cannot reach"), "{}", mixed.stdout);
    assert_eq!(
        http::get(remote.addr, "multi.localhost", "/", &[]).body,
        b"<h1>v2</h1>"
    );
    assert_eq!(
        http::get(local.addr, "multi.localhost", "/", &[]).body,
        b"<h1>v2</h1>"
    );

    // The matrix shows the down remote as unreachable, the others healthy.
    let status = ctl.run(&["status", "--json"]).ok().json();
    let rows = status["matrix"].as_array().unwrap();
    let down = rows.iter().find(|r| r["name"] == "down").unwrap();
    assert!(
        down["error"].as_str().unwrap().contains("cannot reach"),
        "{down}"
    );
    let up = rows.iter().find(|r| r["name"] == "up").unwrap();
    assert_eq!(up["health"], "ok");
    let table = ctl.run(&["status"]).ok().stdout;
    assert!(table.contains("unreachable"), "{table}");
    // Aimed at the down remote itself: a clear error and exit 1.
    let direct = ctl.run(&["@down", "sites"]);
    assert_eq!(direct.code, Some(1));
    assert!(direct.stderr.contains("cannot reach"), "{}", direct.stderr);
    assert_eq!(s.stray_ssh_processes(), 0);
}

#[test]
fn a_wrong_host_key_is_refused_and_said_clearly() {
    let Some(s) = sshd(&[]) else { return };
    let remote = Faztd::start();
    let ctl = Ctl {
        config: tempfile::tempdir().unwrap(),
        sshd: &s,
        local_socket: None,
    };
    ctl.run(&[
        "remote",
        "add",
        "spoofed",
        "fazt-wrong-key",
        "--socket",
        &sock(&remote),
    ])
    .ok();
    let out = ctl.run(&["@spoofed", "sites"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("host key"), "{}", out.stderr);
    assert!(!Path::new(&out.stdout).exists());
}
