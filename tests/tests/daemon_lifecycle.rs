//! The real faztd binary: first start, restart, refusals, and shutdown.

use fazt_e2e::daemon::{faztd_refusing, libc_sig, Faztd};
use fazt_e2e::http;

#[test]
fn first_start_seeds_root_and_demo_and_serves_them() {
    let daemon = Faztd::start();
    let banner = daemon.banner.join("\n");
    assert!(banner.contains("demo.localhost"), "{banner}");
    // A fresh instance detects its domain and stores it, says so once in
    // the log, and from then on calls it `stored` (as the next start does).
    assert!(banner.contains("(stored)"), "{banner}");
    daemon.wait_for_log("the domain being stored", |l| {
        l.contains("detected it from this machine's addresses and stored it")
    });
    // The listen line says what is bound, and who can reach it.
    assert!(
        banner.contains(&format!("listening on {} (this machine only)", daemon.addr)),
        "{banner}"
    );
    let config = daemon.ctl(&["config", "get"]).ok().stdout;
    let domain_row = config.lines().find(|l| l.contains("domain")).unwrap_or("");
    assert!(domain_row.contains("stored"), "{config}");

    let root = http::get(daemon.addr, "localhost", "/", &[]);
    assert_eq!(root.status, 200);
    assert!(root.text().contains("Fazt is running"), "{}", root.text());

    let demo = http::get(
        daemon.addr,
        &format!("demo.localhost:{}", daemon.addr.port()),
        "/",
        &[],
    );
    assert_eq!(demo.status, 200);
    assert!(demo.text().contains("Fazt demo"));
    let about = http::get(daemon.addr, "demo.localhost", "/about", &[]);
    assert!(about.text().contains("<h1>About</h1>"));
    let css = http::get(daemon.addr, "demo.localhost", "/assets/style.css", &[]);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let missing = http::get(daemon.addr, "demo.localhost", "/nope", &[]);
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("own <code>404.html</code>"));
    // The demo's function counts visits in its storage.
    for visit in 1..=2 {
        let hello = http::get(daemon.addr, "demo.localhost", "/api/hello?name=ada", &[]);
        assert_eq!(hello.status, 200, "{}", hello.text());
        let json: serde_json::Value = serde_json::from_slice(&hello.body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "hello": "ada", "visits": visit, "site": "demo" })
        );
    }
    let unknown = http::get(daemon.addr, "nosuch.localhost", "/", &[]);
    assert_eq!(unknown.status, 404);
    let health = http::get(daemon.addr, "localhost", "/_fazt/health", &[]);
    let json: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(json["status"], "ok");
}

#[test]
fn restart_keeps_the_data_and_uses_the_stored_domain() {
    let dir = tempfile::tempdir().unwrap();
    let first = Faztd::start_in(dir.path(), &[]).unwrap();
    let etag = http::get(first.addr, "demo.localhost", "/", &[])
        .header("etag")
        .unwrap()
        .to_string();
    drop(first);
    let second = Faztd::start_in(dir.path(), &[]).unwrap();
    let banner = second.banner.join("\n");
    assert!(banner.contains("(stored)"), "{banner}");
    let res = http::get(second.addr, "demo.localhost", "/", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("etag"),
        Some(etag.as_str()),
        "same content after restart"
    );
}

#[test]
fn the_domain_flag_wins_for_this_run() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Faztd::start_in(dir.path(), &["--domain", "fazt.example"]).unwrap();
    assert!(daemon.banner.join("\n").contains("fazt.example (flag)"));
    let res = http::get(daemon.addr, "demo.fazt.example", "/about", &[]);
    assert_eq!(res.status, 200);
    let res = http::get(daemon.addr, "fazt.example", "/", &[]);
    assert!(res.text().contains("Fazt is running"));
}

#[test]
fn a_second_daemon_on_the_same_data_refuses_clearly() {
    let first = Faztd::start();
    let err = Faztd::start_in(&first.data_dir, &[])
        .err()
        .expect("second faztd must not start");
    assert!(err.contains("already open in another process"), "{err}");
    assert!(err.contains("another faztd"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The first one keeps serving.
    assert_eq!(http::get(first.addr, "localhost", "/", &[]).status, 200);
}

#[test]
fn a_corrupt_database_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("data.redb"),
        b"this is not a redb file at all".repeat(1000),
    )
    .unwrap();
    let (code, stderr) = faztd_refusing(dir.path(), &["--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(stderr.contains("data.redb"), "names the file: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = faztd_refusing(dir.path(), &["--listen", &addr]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("--listen"), "says what to do: {stderr}");
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for signal in [libc_sig::SIGTERM, libc_sig::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = Faztd::start_in(dir.path(), &[]).unwrap();
        assert_eq!(http::get(daemon.addr, "localhost", "/", &[]).status, 200);
        // A function ran (and logged), so the JavaScript workers and the log
        // writer have something to let go of.
        let hello = http::get(daemon.addr, "demo.localhost", "/api/hello", &[]);
        assert_eq!(hello.status, 200, "{}", hello.text());
        let (status, stderr) = daemon.stop_with(signal);
        assert!(status.success(), "signal {signal}: {status:?} {stderr}");
        assert!(stderr.contains("stopped cleanly"), "{stderr}");
        assert!(
            !stderr.contains("still referenced"),
            "the database was closed, not left to the exit: {stderr}"
        );
        // The database closed cleanly: it reopens at once.
        let again = Faztd::start_in(dir.path(), &[]).unwrap();
        assert_eq!(
            http::get(again.addr, "demo.localhost", "/", &[]).status,
            200
        );
    }
}

/// A log that goes to a pipe or a file has no colour codes, and a control
/// request's lines say which request and method they belong to (not
/// tarpc's `otel.name`/`trace_id=00` span).
#[test]
fn logs_to_a_pipe_are_plain_and_name_the_request() {
    let mut d = Faztd::start();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), b"plain").unwrap();
    d.deploy_json(site.path(), "plain");
    let line = d.wait_for_log("the commit's log line", |l| l.contains("deploy committed"));
    assert!(line.contains("method=\"commit_deploy\""), "{line}");
    assert!(line.contains("request_id="), "{line}");
    let (_, log) = d.stop_with(libc_sig::SIGTERM);
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log:\n{log}"
    );
    assert!(
        !log.contains("otel.name") && !log.contains("trace_id"),
        "{log}"
    );
}

/// Each connection is a file descriptor: faztd raises its soft open-file
/// limit to the hard one at start (systemd's default soft limit is 1,024).
#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(fazt_e2e::bin("faztd"));
    command
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--socket"])
        .arg(dir.path().join("s.sock"))
        .env("NO_COLOR", "1");
    // SAFETY: only async-signal-safe setrlimit between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 256, 4096)
                .map_err(std::io::Error::from)
        });
    }
    let mut faztd = fazt_e2e::process::Process::spawn(&mut command).unwrap();
    faztd
        .stderr
        .wait_for_line(fazt_e2e::PATIENCE, |l| l.contains("started"))
        .expect("faztd starts");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", faztd.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok())
        .collect::<Vec<_>>();
    assert_eq!(open_files, [4096, 4096], "{limits}");
    assert!(faztd.stderr.text().contains("raised the open-file limit"));
    faztd.stop(libc_sig::SIGTERM, fazt_e2e::PATIENCE);
}
