//! Remote administration through a real sshd on loopback: the remotes file,
//! `@NAME` commands through an SSH tunnel, deploys to several instances, the
//! status matrix, and what happens when a remote is down or not trusted.

use std::path::Path;

use fazt_e2e::daemon::{CtlOutput, Faztd};
use fazt_e2e::sshd::{self, RemoteCtl, Sshd};
use fazt_e2e::{http, skip_unless};

/// sshd, a remote and a local daemon, and faztctl that knows the remote as
/// `name` (reached through the server's `fazt-test` alias).
fn remote_and_local(name: &str) -> (Sshd, Faztd, Faztd, RemoteCtl) {
    let sshd = Sshd::start(&[]);
    let remote = Faztd::start();
    let local = Faztd::start();
    let ctl = RemoteCtl::new(&sshd, Some(&local));
    ctl.add_remote(name, "fazt-test", &remote);
    (sshd, remote, local, ctl)
}

/// The site names a `sites --json` run lists.
fn site_names(out: CtlOutput) -> Vec<String> {
    let sites = out.ok().json();
    let sites = sites.as_array().expect("a list of sites");
    sites
        .iter()
        .map(|s| s["name"].as_str().expect("a name").to_string())
        .collect()
}

/// The body `daemon` serves at `/` of `site`.
fn front_page(daemon: &Faztd, site: &str) -> Vec<u8> {
    http::get(daemon.addr, &format!("{site}.localhost"), "/", &[]).body
}

fn site(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, data) in files {
        std::fs::write(dir.path().join(rel), data).unwrap();
    }
    dir
}

#[test]
fn the_remotes_file_is_managed_and_human_editable() {
    skip_unless!(sshd::missing());
    let s = Sshd::start(&[]);
    let ctl = RemoteCtl::new(&s, None);
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
    assert_eq!(bad.code, Some(2));
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
    skip_unless!(sshd::missing());
    let (s, remote, local, ctl) = remote_and_local("box");

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
    assert_eq!(front_page(&remote, "web"), b"<h1>remote v1</h1>");
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
    assert_eq!(front_page(&remote, "web"), b"<h1>remote v2</h1>");
    let rolled = ctl.run(&["@box", "rollback", "web", "--json"]).ok().json();
    assert_eq!(rolled["site"], "web");
    assert_eq!(front_page(&remote, "web"), b"<h1>remote v1</h1>");
    let web = "web".to_string();
    assert!(site_names(ctl.run(&["@box", "sites", "--json"])).contains(&web));
    // Plain commands still go to the local daemon; with a default remote they go there.
    assert!(!site_names(ctl.run(&["sites", "--json"])).contains(&web));
    ctl.run(&["remote", "default", "box"]).ok();
    assert!(site_names(ctl.run(&["sites", "--json"])).contains(&web));
    assert!(!site_names(ctl.run(&["@local", "sites", "--json"])).contains(&web));

    // Custom domains through the tunnel, like any command.
    ctl.run(&["@box", "domain", "add", "web", "example.org"])
        .ok();
    let domains = ctl.run(&["@box", "domain", "list", "--json"]).ok().json();
    assert_eq!(domains[0]["domain"], "example.org", "{domains}");
    assert!(http::get(remote.addr, "example.org", "/", &[])
        .text()
        .contains("remote v1"));
    assert_eq!(http::get(local.addr, "example.org", "/", &[]).status, 404);

    // Every tunnel was torn down.
    assert_eq!(s.stray_ssh_processes(), 0, "no ssh left running");
}

#[test]
fn the_remote_socket_is_discovered_when_not_given() {
    skip_unless!(sshd::missing());
    let remote = Faztd::start();
    // The remote shell learns FAZT_SOCKET from the client (sshd accepts it),
    // as a login shell of a real server would have it in its environment.
    let extra = format!("  SetEnv FAZT_SOCKET={}", remote.socket().display());
    let s = Sshd::start(&[("fazt-discover", &extra)]);
    let ctl = RemoteCtl::new(&s, None);
    ctl.run(&["remote", "add", "found", "fazt-discover"]).ok();
    let status = ctl.run(&["@found", "status", "--json"]).ok().json();
    assert_eq!(status["daemon"]["pid"].as_u64(), Some(remote.pid() as u64));
}

#[test]
fn deploy_to_several_instances_survives_one_that_is_down() {
    skip_unless!(sshd::missing());
    let (s, remote, local, ctl) = remote_and_local("up");
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
    assert_eq!(front_page(&remote, "multi"), b"<h1>everywhere</h1>");
    assert_eq!(front_page(&local, "multi"), b"<h1>everywhere</h1>");

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
    assert_eq!(front_page(&remote, "multi"), b"<h1>v2</h1>");
    assert_eq!(front_page(&local, "multi"), b"<h1>v2</h1>");

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
    skip_unless!(sshd::missing());
    let s = Sshd::start(&[]);
    let remote = Faztd::start();
    let ctl = RemoteCtl::new(&s, None);
    ctl.add_remote("spoofed", "fazt-wrong-key", &remote);
    let out = ctl.run(&["@spoofed", "sites"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("host key"), "{}", out.stderr);
    assert!(!Path::new(&out.stdout).exists());
}
