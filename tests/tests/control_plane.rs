//! faztctl ↔ faztd over the real control socket: deploys, history,
//! rollback, removal, status, settings, and what happens when things go wrong.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use fazt_e2e::daemon::{faztctl, Faztd};
use fazt_e2e::http;

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn site_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, data) in files {
        write(dir.path(), rel, data);
    }
    dir
}

fn served(d: &Faztd, site: &str, path: &str) -> http::Response {
    http::get(d.addr, &format!("{site}.localhost"), path, &[])
}

#[test]
fn the_control_socket_is_private() {
    let d = Faztd::start();
    let socket = d.socket();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let dir_mode = std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700, "socket directory mode {dir_mode:o}");
    // Nothing is left of the private directory the socket was bound in.
    let leftovers: Vec<_> = std::fs::read_dir(socket.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".faztd-bind"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Even when the socket is made reachable by mistake (chmod 666), another
/// user is refused: the daemon checks the peer's uid (SO_PEERCRED).
#[test]
fn another_user_is_refused_even_on_a_reachable_socket() {
    use std::os::unix::process::CommandExt;
    fazt_e2e::skip_unless!(fazt_e2e::require::missing_root(
        "it runs faztctl as another user"
    ));
    let d = Faztd::start();
    let socket = d.socket();
    let open = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    // Every directory from the data dir down, and the socket, opened up.
    let mut dir = socket.parent().unwrap().to_path_buf();
    while dir.starts_with(&d.data_dir) {
        open(&dir, 0o755);
        dir = dir.parent().unwrap().to_path_buf();
    }
    open(&socket, 0o666);
    // A faztctl that user may run.
    let bin_dir = tempfile::tempdir().unwrap();
    open(bin_dir.path(), 0o755);
    let faztctl = bin_dir.path().join("faztctl");
    std::fs::copy(fazt_e2e::bin("faztctl"), &faztctl).unwrap();
    let mut command = std::process::Command::new(&faztctl);
    command
        .args(["--socket", socket.to_str().unwrap(), "sites"])
        .env("HOME", bin_dir.path())
        .env_remove("XDG_CONFIG_HOME")
        .uid(65534)
        .gid(65534);
    let out = fazt_e2e::process::retry_busy(|| command.output()).unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    d.wait_for_log("the refusal", |l| {
        l.contains("control connection refused: uid 65534")
    });
    // The owner still gets in.
    d.ctl(&["sites"]).ok();
}

#[test]
fn deploy_serves_the_files_and_redeploy_uploads_only_changes() {
    let d = Faztd::start();
    let site = site_dir(&[
        ("index.html", b"<h1>v1</h1>"),
        ("about.html", b"about"),
        ("assets/app.js", b"console.log('hi')"),
        (".gitignore", b"secret.txt\nbuild/\n"),
        (".faztignore", b"*.psd\n"),
        ("secret.txt", b"do not deploy"),
        ("build/out.js", b"ignored dir"),
        ("design.psd", b"ignored by faztignore"),
        (".env", b"TOKEN=hidden"),
        ("node_modules/x/index.js", b"deps"),
        (".well-known/security.txt", b"Contact: me"),
    ]);
    std::os::unix::fs::symlink("/etc/passwd", site.path().join("passwd.txt")).unwrap();

    let out = d
        .ctl(&[
            "deploy",
            site.path().to_str().unwrap(),
            "--site",
            "blog",
            "--json",
        ])
        .ok();
    let first = out.json();
    assert_eq!(first["site"], "blog");
    assert_eq!(first["files"], 4, "{first}");
    assert_eq!(first["uploaded_blobs"], 4);
    assert!(first["url"].as_str().unwrap().contains("blog."), "{first}");
    assert!(
        out.stderr.contains("passwd.txt (a symlink)"),
        "{}",
        out.stderr
    );

    assert_eq!(served(&d, "blog", "/").body, b"<h1>v1</h1>");
    assert_eq!(served(&d, "blog", "/about").body, b"about");
    assert_eq!(
        served(&d, "blog", "/.well-known/security.txt").body,
        b"Contact: me"
    );
    for hidden in [
        "/secret.txt",
        "/build/out.js",
        "/design.psd",
        "/.env",
        "/node_modules/x/index.js",
        "/passwd.txt",
        "/.gitignore",
    ] {
        assert_eq!(
            served(&d, "blog", hidden).status,
            404,
            "{hidden} must not be deployed"
        );
    }

    // Same content again: nothing changes, no new version (a rollback
    // would otherwise land on an identical one).
    let again = d.deploy_json(site.path(), "blog");
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["uploaded_blobs"], 0);
    assert_eq!(again["version"], first["version"]);
    let human = d
        .ctl(&["deploy", site.path().to_str().unwrap(), "--site", "blog"])
        .ok();
    assert!(
        human.stdout.contains(&format!(
            "Nothing changed: blog v{} stays live",
            first["version"]
        )),
        "{}",
        human.stdout
    );
    // --force insists: a new version, nothing uploaded.
    let forced = d
        .ctl(&[
            "deploy",
            site.path().to_str().unwrap(),
            "--site",
            "blog",
            "--force",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(forced["unchanged"], false);
    assert_eq!(forced["uploaded_blobs"], 0);
    assert!(forced["version"].as_u64() > first["version"].as_u64());

    // One changed file: one blob uploaded.
    write(site.path(), "index.html", b"<h1>v2</h1>");
    let third = d.deploy_json(site.path(), "blog");
    assert_eq!(third["uploaded_blobs"], 1);
    assert_eq!(third["uploaded_bytes"], 11);
    assert_eq!(served(&d, "blog", "/").body, b"<h1>v2</h1>");

    // The human report names the site, the version and the URL.
    write(site.path(), "index.html", b"<h1>v3</h1>");
    let human = d
        .ctl(&["deploy", site.path().to_str().unwrap(), "--site", "blog"])
        .ok();
    assert!(human.stdout.contains("Deployed blog v"), "{}", human.stdout);
    assert!(human.stdout.contains("http://blog."), "{}", human.stdout);
}

#[test]
fn the_site_name_defaults_to_the_folder_name_and_fazt_json_configures_it() {
    let d = Faztd::start();
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("My_App");
    write(&root, "index.html", b"<div id=app></div>");
    write(&root, "fazt.json", br#"{"spa": true}"#);
    let out = d
        .ctl(&["deploy", root.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(out["site"], "my-app");
    let res = served(&d, "my-app", "/settings/profile");
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, &b"<div id=app></div>"[..])
    );
    // The config file configures the site; it is not served.
    assert_eq!(served(&d, "my-app", "/fazt.json").status, 404);

    write(&root, "fazt.json", b"{not json");
    let bad = d.ctl(&["deploy", root.to_str().unwrap()]);
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("fazt.json is not valid"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        served(&d, "my-app", "/x").status,
        200,
        "the previous version still serves"
    );
}

#[test]
fn history_rollback_retention_and_removal() {
    let d = Faztd::start();
    d.ctl(&["config", "set", "retain_versions", "3"]).ok();
    let site = tempfile::tempdir().unwrap();
    let mut versions = Vec::new();
    for i in 1..=4 {
        write(site.path(), "index.html", format!("version {i}").as_bytes());
        let out = d.deploy_json(site.path(), "app");
        versions.push(out["version"].as_u64().unwrap());
    }
    assert_eq!(versions, [1, 2, 3, 4], "versions are numbered per site");
    let history = d.ctl(&["history", "app", "--json"]).ok().json();
    let ids: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![versions[3], versions[2], versions[1]],
        "newest first, 3 kept"
    );
    assert_eq!(history[0]["live"], true);

    // Default rollback: the previous version, instantly.
    let out = d.ctl(&["rollback", "app", "--json"]).ok().json();
    assert_eq!(out["to"].as_u64(), Some(versions[2]));
    assert_eq!(served(&d, "app", "/").body, b"version 3");
    // Explicit version.
    d.ctl(&["rollback", "app", &versions[1].to_string()]).ok();
    assert_eq!(served(&d, "app", "/").body, b"version 2");
    // Rolled-off and unknown versions, unknown sites: clear errors, exit 1.
    let gone = d.ctl(&["rollback", "app", &versions[0].to_string()]);
    assert_eq!(gone.code, Some(1));
    assert!(
        gone.stderr
            .contains(&format!("has no version v{}", versions[0])),
        "{}",
        gone.stderr
    );
    let nosite = d.ctl(&["history", "nosuch"]);
    assert_eq!(nosite.code, Some(1));
    assert!(
        nosite.stderr.contains("no site named nosuch"),
        "{}",
        nosite.stderr
    );
    assert_eq!(served(&d, "app", "/").body, b"version 2");

    // Removal needs confirmation when nobody can be asked.
    let unconfirmed = d.ctl(&["site", "rm", "app"]);
    assert_eq!(unconfirmed.code, Some(2));
    assert!(unconfirmed.stderr.contains("--yes"));
    assert_eq!(served(&d, "app", "/").status, 200);
    d.ctl(&["site", "rm", "app", "--yes"]).ok();
    assert_eq!(served(&d, "app", "/").status, 404);
    let sites = d.ctl(&["sites", "--json"]).ok().json();
    assert!(sites.as_array().unwrap().iter().all(|s| s["name"] != "app"));
}

#[test]
fn status_for_people_and_scripts() {
    let d = Faztd::start();
    let json = d.ctl(&["status", "--json"]).ok().json();
    let daemon = &json["daemon"];
    assert_eq!(daemon["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(daemon["pid"].as_u64(), Some(d.pid() as u64));
    assert_eq!(daemon["health"], "ok");
    assert_eq!(daemon["sites"], 2);
    assert_eq!(daemon["domain_source"], "stored");
    assert_eq!(daemon["listen"], d.addr.to_string());
    assert!(daemon["data_path"].as_str().unwrap().ends_with("data.redb"));
    assert!(daemon["data_bytes"].as_u64().unwrap() > 0);
    assert!(daemon["commit"].as_str().is_some());
    assert_eq!(json["faztctl"]["protocol"], fazt_proto::PROTOCOL_VERSION);

    let table = d.ctl(&["status"]).ok().stdout;
    for word in ["faztctl", "faztd", "healthy", "uptime", "domain", "sites"] {
        assert!(table.contains(word), "{word} missing from:\n{table}");
    }
    assert!(!table.contains('\u{1b}'), "no colour codes on a pipe");
}

#[test]
fn no_daemon_is_said_plainly_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("faztd.sock");
    let out = faztctl(&socket, &["status"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("faztd is not running"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Start it with"), "{}", out.stderr);
    let json = faztctl(&socket, &["status", "--json"]);
    assert_eq!(json.code, Some(1));
    assert!(json.json()["daemon"].is_null());
    assert_eq!(faztctl(&socket, &["sites"]).code, Some(1));
}

#[test]
fn usage_errors_exit_2_and_completions_work() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    assert_eq!(faztctl(&socket, &["no-such-command"]).code, Some(2));
    assert_eq!(faztctl(&socket, &["rollback"]).code, Some(2));
    assert_eq!(
        faztctl(&socket, &["rollback", "x", "not-a-number"]).code,
        Some(2)
    );
    let bash = faztctl(&socket, &["completions", "bash"]).ok();
    assert!(bash.stdout.contains("_faztctl") && bash.stdout.contains("deploy"));
    let help = faztctl(&socket, &["deploy", "--help"]).ok();
    assert!(
        help.stdout.contains(".faztignore"),
        "help teaches: {}",
        help.stdout
    );
}

#[test]
fn settings_are_validated() {
    let d = Faztd::start();
    let bad = d.ctl(&["config", "set", "retain_versions", "zero"]);
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("\"zero\" is not a whole number"),
        "{}",
        bad.stderr
    );
    let zero = d.ctl(&["config", "set", "retain_versions", "0"]);
    assert_eq!(zero.code, Some(1));
    assert!(zero.stderr.contains("at least 1"), "{}", zero.stderr);
    let unknown = d.ctl(&["config", "set", "colour", "blue"]);
    assert!(
        unknown.stderr.contains("no setting \"colour\""),
        "{}",
        unknown.stderr
    );
    d.ctl(&["config", "set", "max_files", "7"]).ok();
    let all = d.ctl(&["config", "get", "--json"]).ok().json();
    let max_files = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "max_files")
        .unwrap();
    assert_eq!(max_files["value"], "7");
    assert_eq!(max_files["default"], false);
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_and_a_stale_socket_is_replaced() {
    let mut first = Faztd::start();
    // Another data directory, the same socket: refused while the first lives.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("run")).unwrap();
    std::os::unix::fs::symlink(
        first.data_dir.join("run/fazt"),
        other.path().join("run/fazt"),
    )
    .unwrap();
    let err = Faztd::start_in(other.path(), &[])
        .err()
        .expect("must refuse");
    assert!(err.contains("another faztd is already running"), "{err}");
    // After a crash the socket file stays behind; the next start replaces it.
    let data_dir = first.data_dir.clone();
    let keep = tempfile::tempdir().unwrap();
    let copy = keep.path().join("d");
    first.kill_hard();
    assert!(first.socket().exists(), "a crash leaves the socket file");
    std::fs::rename(&data_dir, &copy).unwrap();
    let again = Faztd::start_in(&copy, &[]).expect("restart after crash");
    assert_eq!(
        again.ctl(&["status", "--json"]).ok().json()["daemon"]["health"],
        "ok"
    );
}
