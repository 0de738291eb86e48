//! Functions under `api/` against the real daemon: routing, the request and
//! response shapes, the `fazt` API, logs, env, limits and bad code.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fazt_e2e::daemon::{faztctl, libc_sig, Faztd};
use fazt_e2e::process::Process;
use fazt_e2e::wait::poll;
use fazt_e2e::{http, wait_until, PATIENCE};

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn get(d: &Faztd, site: &str, path: &str) -> http::Response {
    http::get(d.addr, &format!("{site}.localhost"), path, &[])
}

fn json(res: &http::Response) -> serde_json::Value {
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", res.text()))
}

/// A daemon whose functions stop after 1 s (instead of 5) to keep tests quick.
fn daemon() -> Faztd {
    daemon_with_timeout_ms("1000")
}

fn daemon_with_timeout_ms(timeout_ms: &str) -> Faztd {
    Faztd::start_with(&[
        ("function_timeout_ms", timeout_ms),
        ("function_body_bytes", "10000"),
    ])
}

#[test]
fn file_routing_params_catch_all_and_imports() {
    let d = daemon();
    d.deploy_files("app",
        &[
            ("index.html", "<h1>static</h1>"),
            (
                "api/hello.js",
                r#"import { greet } from "./_lib/greet.js"; export default (req) => greet(req.query.name ?? "world");"#,
            ),
            (
                "api/_lib/greet.js",
                r#"export const greet = (name) => `hello ${name}`;"#,
            ),
            ("api/index.js", "export default () => 'api root';"),
            (
                "api/users/[id].js",
                "export default (req) => ({ id: req.params.id });",
            ),
            ("api/users/me.js", "export default () => 'me';"),
            (
                "api/main.js",
                "export default (req) => `main saw ${req.path}`;",
            ),
            ("api/data.json", r#"{"static": true}"#),
        ],
    );
    assert_eq!(get(&d, "app", "/api/hello?name=ada").text(), "hello ada");
    assert_eq!(get(&d, "app", "/api/hello").text(), "hello world");
    assert_eq!(get(&d, "app", "/api").text(), "api root");
    assert_eq!(
        json(&get(&d, "app", "/api/users/42")),
        serde_json::json!({"id": "42"})
    );
    assert_eq!(get(&d, "app", "/api/users/me").text(), "me");
    assert_eq!(
        get(&d, "app", "/api/some/thing").text(),
        "main saw /api/some/thing"
    );
    // Function sources are never served as files.
    let source = get(&d, "app", "/api/_lib/greet.js");
    assert!(
        !source.text().contains("export const greet"),
        "{}",
        source.text()
    );
    assert_eq!(get(&d, "app", "/").text(), "<h1>static</h1>");
}

#[test]
fn imports_cannot_leave_the_sites_api_folder() {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "api/x.js",
        r#"import secret from "../../etc/passwd"; export default () => secret;"#,
    );
    let out = d.ctl(&["deploy", dir.path().to_str().unwrap(), "--site", "escape"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
    write(
        dir.path(),
        "api/x.js",
        r#"import fs from "fs"; export default () => 1;"#,
    );
    assert_eq!(
        d.ctl(&["deploy", dir.path().to_str().unwrap(), "--site", "escape"])
            .code,
        Some(1)
    );
}

#[test]
fn request_and_response_shapes() {
    let d = daemon();
    d.deploy_files("shapes",
        &[
            ("api/echo.js", "export default async (req) => ({ method: req.method, body: req.body, parsed: req.body ? req.json() : null, header: req.headers['x-test'], ip: req.ip, query: req.query });"),
            ("api/text.js", "export default () => 'plain text';"),
            ("api/number.js", "export default () => 42;"),
            ("api/nothing.js", "export default () => {};"),
            ("api/custom.js", "export default () => ({ status: 418, headers: { 'x-tea': 'yes', 'content-type': 'text/html' }, body: '<b>teapot</b>' });"),
            ("api/awaits.js", "const later = (v) => new Promise((r) => r(v)); export default async () => ({ got: await later(7) + await Promise.resolve(1) });"),
            ("api/garbage.js", "export default () => () => 1;"),
            ("api/badstatus.js", "export default () => ({ status: 'teapot' });"),
        ],
    );
    let res = http::raw(
        d.addr,
        b"POST /api/echo?a=1&b=two HTTP/1.1\r\nHost: shapes.localhost\r\nX-Test: yes\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"k\": 1}\n",
    )
    .unwrap();
    let echoed = json(&res);
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["parsed"]["k"], 1);
    assert_eq!(echoed["header"], "yes");
    assert_eq!(echoed["ip"], "127.0.0.1");
    assert_eq!(echoed["query"], serde_json::json!({"a": "1", "b": "two"}));

    let text = get(&d, "shapes", "/api/text");
    assert_eq!((text.status, text.text().as_str()), (200, "plain text"));
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let number = get(&d, "shapes", "/api/number");
    assert_eq!(
        (number.header("content-type"), number.text().as_str()),
        (Some("application/json"), "42")
    );
    let nothing = get(&d, "shapes", "/api/nothing");
    assert_eq!(
        (nothing.status, nothing.body.len()),
        (204, 0),
        "undefined is No Content"
    );
    let custom = get(&d, "shapes", "/api/custom");
    assert_eq!(custom.status, 418);
    assert_eq!(custom.header("x-tea"), Some("yes"));
    assert_eq!(custom.header("content-type"), Some("text/html"));
    assert_eq!(custom.text(), "<b>teapot</b>");
    assert_eq!(json(&get(&d, "shapes", "/api/awaits"))["got"], 8);
    for bad in ["/api/garbage", "/api/badstatus"] {
        let res = get(&d, "shapes", bad);
        assert_eq!(res.status, 500, "{bad}");
        assert!(json(&res)["error"].is_string());
    }
    let logs = d.ctl(&["logs", "shapes"]).ok().stdout;
    assert!(logs.contains("cannot be sent"), "{logs}");
    assert!(logs.contains("status must be a whole number"), "{logs}");
}

#[test]
fn kv_with_ttl_per_site() {
    let d = daemon();
    let kv = r#"
        export default async (req) => {
          const { op, key, value, ttl, prefix } = req.query;
          if (op === "set") { fazt.kv.set(key, value, ttl ? { ttl: Number(ttl) } : undefined); return "ok"; }
          if (op === "get") return { value: fazt.kv.get(key) };
          if (op === "delete") return { deleted: fazt.kv.delete(key) };
          if (op === "list") return fazt.kv.list(prefix);
        };"#;
    d.deploy_files("a", &[("api/kv.js", kv)]);
    d.deploy_files("b", &[("api/kv.js", kv)]);
    get(&d, "a", "/api/kv?op=set&key=user:1&value=ada");
    get(&d, "a", "/api/kv?op=set&key=user:2&value=bob");
    get(&d, "a", "/api/kv?op=set&key=other&value=x");
    get(&d, "b", "/api/kv?op=set&key=user:1&value=eve");
    assert_eq!(
        json(&get(&d, "a", "/api/kv?op=get&key=user:1"))["value"],
        "ada"
    );
    assert_eq!(
        json(&get(&d, "b", "/api/kv?op=get&key=user:1"))["value"],
        "eve",
        "sites do not share data"
    );
    assert_eq!(
        json(&get(&d, "b", "/api/kv?op=get&key=user:2"))["value"],
        serde_json::Value::Null
    );
    let listed = json(&get(&d, "a", "/api/kv?op=list&prefix=user:"));
    let keys: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["user:1", "user:2"]);
    assert_eq!(
        json(&get(&d, "a", "/api/kv?op=delete&key=user:2"))["deleted"],
        true
    );
    assert_eq!(
        json(&get(&d, "a", "/api/kv?op=get&key=user:2"))["value"],
        serde_json::Value::Null
    );
    // TTL: a key is there until its TTL has passed (an hour cannot pass
    // between two requests, however slow the machine)...
    get(&d, "a", "/api/kv?op=set&key=lasting&value=here&ttl=3600");
    assert_eq!(
        json(&get(&d, "a", "/api/kv?op=get&key=lasting"))["value"],
        "here"
    );
    // ...and gone once it has: not before (stamps are whole milliseconds,
    // so 1 ms of rounding), and not much after.
    let set_at = Instant::now();
    get(&d, "a", "/api/kv?op=set&key=temp&value=soon&ttl=0.3");
    wait_until(PATIENCE, "the 0.3 s key to expire", || {
        json(&get(&d, "a", "/api/kv?op=get&key=temp"))["value"].is_null()
    });
    let lived = set_at.elapsed();
    assert!(
        lived + Duration::from_millis(1) >= Duration::from_millis(300),
        "expired after {lived:?}, before its TTL"
    );
    // Bad arguments are exceptions: 500, and the log says why.
    d.deploy_files(
        "c",
        &[(
            "api/bad.js",
            "export default () => fazt.kv.set('k', 1, { ttl: -5 });",
        )],
    );
    assert_eq!(get(&d, "c", "/api/bad").status, 500);
    assert!(d
        .ctl(&["logs", "c"])
        .ok()
        .stdout
        .contains("ttl must be a positive number"));
}

#[test]
fn docs_collections_and_queries() {
    let d = daemon();
    d.deploy_files("docs",
        &[(
            "api/run.js",
            r#"export default () => {
                for (const [name, age, tags] of [["ada", 36, ["math"]], ["bob", 25, ["art"]], ["cy", 41, ["math", "art"]]]) {
                  fazt.docs.insert("people", { name, age, tags });
                }
                const explicit = fazt.docs.insert("people", { _id: "dee", name: "dee", age: 19, tags: [] });
                return {
                  id: explicit._id,
                  older: fazt.docs.find("people", { age: { $gt: 30 } }).map((p) => p.name).sort(),
                  range: fazt.docs.count("people", { age: { $gte: 25, $lte: 36 } }),
                  math: fazt.docs.find("people", { tags: { $contains: "math" } }, { limit: 1 }).length,
                  picked: fazt.docs.find("people", { name: { $in: ["bob", "dee"] } }).length,
                  notBob: fazt.docs.count("people", { name: { $ne: "bob" } }),
                  one: fazt.docs.findOne("people", { name: "cy" }).age,
                  none: fazt.docs.findOne("people", { name: "zed" }),
                  updated: fazt.docs.update("people", { age: { $lt: 30 } }, { young: true }),
                  young: fazt.docs.count("people", { young: true }),
                  deleted: fazt.docs.delete("people", { tags: { $contains: "art" } }),
                  left: fazt.docs.count("people"),
                };
              };"#,
        )],
    );
    let r = json(&get(&d, "docs", "/api/run"));
    assert_eq!(r["id"], "dee");
    assert_eq!(r["older"], serde_json::json!(["ada", "cy"]));
    assert_eq!(r["range"], 2);
    assert_eq!(r["math"], 1);
    assert_eq!(r["picked"], 2);
    assert_eq!(r["notBob"], 3);
    assert_eq!(r["one"], 41);
    assert_eq!(r["none"], serde_json::Value::Null);
    assert_eq!(r["updated"], 2);
    assert_eq!(r["young"], 2);
    assert_eq!(r["deleted"], 2);
    assert_eq!(r["left"], 2);
}

#[test]
fn env_site_version_console_and_logs() {
    let mut d = daemon();
    d.deploy_files("envy",
        &[(
            "api/info.js",
            "export default () => { console.log('called with', { n: 1 }); console.error('an error line'); return { token: fazt.env.get('TOKEN', 'unset'), site: fazt.site, version: fazt.version }; };",
        )],
    );
    assert_eq!(json(&get(&d, "envy", "/api/info"))["token"], "unset");
    d.ctl(&["env", "set", "envy", "TOKEN=s3cret-value", "MODE=prod"])
        .ok();
    let info = json(&get(&d, "envy", "/api/info"));
    assert_eq!(info["token"], "s3cret-value");
    assert_eq!(info["site"], "envy");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let masked = d.ctl(&["env", "list", "envy"]).ok().stdout;
    assert!(
        masked.contains("TOKEN") && !masked.contains("s3cret-value"),
        "{masked}"
    );
    let revealed = d
        .ctl(&["env", "list", "envy", "--reveal", "--json"])
        .ok()
        .json();
    assert_eq!(revealed["TOKEN"], "s3cret-value");
    d.ctl(&["env", "unset", "envy", "TOKEN"]).ok();
    assert_eq!(json(&get(&d, "envy", "/api/info"))["token"], "unset");
    assert_eq!(d.ctl(&["env", "set", "envy", "1BAD=x"]).code, Some(2));

    let logs = d.ctl(&["logs", "envy", "-n", "10"]).ok().stdout;
    assert!(logs.contains("INFO  called with {\"n\":1}"), "{logs}");
    assert!(logs.contains("ERROR an error line"), "{logs}");
    let lines = d.ctl(&["logs", "envy", "--json", "-n", "1"]).ok().stdout;
    let last: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    assert_eq!(last["level"], "error");

    // -f follows new lines live. Once it has printed the newest line (the
    // error), a line logged after that can only come from following.
    let mut follow = Process::spawn(
        Command::new(fazt_e2e::bin("faztctl"))
            .arg("--socket")
            .arg(d.socket())
            .args(["logs", "envy", "-f", "-n", "1", "--json"]),
    )
    .unwrap();
    let newest = follow.stdout.wait_for_line(PATIENCE, |_| true);
    assert!(
        newest
            .as_deref()
            .is_some_and(|l| l.contains("an error line")),
        "logs -f first prints the newest line: {newest:?} {}",
        follow.stderr.text()
    );
    get(&d, "envy", "/api/info");
    let found = follow
        .stdout
        .wait_for_line(PATIENCE, |l| l.contains("called with"));
    follow.stop(libc_sig::SIGKILL, PATIENCE);
    assert!(found.is_some(), "logs -f printed the new line");
    // The daemon's own log names variables but never shows their values.
    let (_, log) = d.stop_with(libc_sig::SIGTERM);
    assert!(log.contains("TOKEN"), "{log}");
    assert!(
        !log.contains("s3cret-value"),
        "a secret reached the daemon log: {log}"
    );
}

#[test]
fn a_runaway_loop_is_stopped_while_everything_else_keeps_serving() {
    // 3 s: the other requests must be answered while the loop runs, and a
    // loaded machine may take a while to make them.
    let d = daemon_with_timeout_ms("3000");
    d.deploy_files(
        "loopy",
        &[
            ("index.html", "static ok"),
            (
                "api/loop.js",
                "export default () => { console.log('looping'); while (true) {} };",
            ),
            ("api/quick.js", "export default () => 'quick ok';"),
        ],
    );
    let done = Arc::new(AtomicBool::new(false));
    let looping = {
        let (addr, done) = (d.addr, done.clone());
        std::thread::spawn(move || {
            let res = http::get(addr, "loopy.localhost", "/api/loop", &[]);
            done.store(true, Ordering::SeqCst);
            res
        })
    };
    wait_until(PATIENCE, "the loop to start", || {
        d.ctl(&["logs", "loopy"]).ok().stdout.contains("looping")
    });
    assert_eq!(get(&d, "loopy", "/").text(), "static ok");
    assert_eq!(get(&d, "loopy", "/api/quick").text(), "quick ok");
    assert!(
        !done.load(Ordering::SeqCst),
        "static files and other functions answered while the loop ran"
    );
    let res = looping.join().unwrap();
    assert_eq!(res.status, 503);
    assert!(
        json(&res)["error"]
            .as_str()
            .unwrap()
            .contains("longer than 3.0 s"),
        "{}",
        res.text()
    );
    assert!(d.ctl(&["logs", "loopy"]).ok().stdout.contains("time limit"));
    assert_eq!(
        get(&d, "loopy", "/api/quick").text(),
        "quick ok",
        "the worker recovered"
    );
}

#[test]
fn a_memory_bomb_is_stopped_and_memory_returns() {
    // A generous time limit: on a loaded machine a bomb must still hit the
    // memory limit first (with 1 s it was sometimes stopped for time).
    let d = daemon_with_timeout_ms("20000");
    d.deploy_files("bomb",
        &[
            ("api/array.js", "export default () => { const a = []; while (true) a.push('x'.repeat(64) + a.length); };"),
            ("api/buffers.js", "export default () => { const keep = []; while (true) keep.push(new Uint8Array(1 << 20)); };"),
            ("api/strings.js", "export default () => { const keep = []; for (let i = 0; ; i++) keep.push(String(i).repeat(100000)); };"),
            ("api/ok.js", "export default () => 'fine';"),
        ],
    );
    let rss = |d: &Faztd| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap()
    };
    get(&d, "bomb", "/api/ok");
    let before = rss(&d);
    for bomb in ["/api/array", "/api/buffers", "/api/strings"] {
        let res = get(&d, "bomb", bomb);
        assert_eq!(res.status, 503, "{bomb}: {}", res.text());
        assert!(
            json(&res)["error"].as_str().unwrap().contains("memory"),
            "{}",
            res.text()
        );
    }
    assert_eq!(get(&d, "bomb", "/api/ok").text(), "fine");
    // The answer goes out before the worker drops the runtime and gives the
    // memory back: wait for that.
    let returned = poll(PATIENCE, || {
        let after = rss(&d);
        (after < before + 40 * 1024).then_some(after)
    });
    assert!(
        returned.is_some(),
        "RSS went from {before} KiB to {} KiB and stayed there",
        rss(&d)
    );
    assert!(d.ctl(&["logs", "bomb"]).ok().stdout.contains("memory"));
}

#[test]
fn exceptions_recursion_and_syntax_errors() {
    let d = daemon();
    d.deploy_files(
        "errs",
        &[
            (
                "api/throw.js",
                "export default () => { throw new Error('secret detail kaboom'); };",
            ),
            (
                "api/deep.js",
                "function f(n) { return f(n + 1) + 1; } export default () => f(0);",
            ),
            (
                "api/reject.js",
                "export default async () => { await null; throw new TypeError('async nope'); };",
            ),
            ("api/nodefault.js", "export const x = 1;"),
            ("api/ok.js", "export default () => 'v1';"),
        ],
    );
    let thrown = get(&d, "errs", "/api/throw");
    assert_eq!(thrown.status, 500);
    assert!(
        !thrown.text().contains("kaboom"),
        "no details leak to the client: {}",
        thrown.text()
    );
    assert_eq!(get(&d, "errs", "/api/deep").status, 500);
    assert_eq!(get(&d, "errs", "/api/reject").status, 500);
    assert_eq!(get(&d, "errs", "/api/nodefault").status, 500);
    let logs = d.ctl(&["logs", "errs"]).ok().stdout;
    assert!(
        logs.contains("secret detail kaboom") && logs.contains("api/throw.js:1"),
        "{logs}"
    );
    assert!(logs.contains("Maximum call stack size exceeded"), "{logs}");
    assert!(logs.contains("async nope"), "{logs}");
    assert!(logs.contains("no default export"), "{logs}");

    // A syntax error refuses the deploy, naming file and line; v1 keeps serving.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "api/ok.js", "export default () => 'v2';");
    write(
        dir.path(),
        "api/broken.js",
        "export default () => {\n  let x = ;\n};",
    );
    let out = d.ctl(&["deploy", dir.path().to_str().unwrap(), "--site", "errs"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("api/broken.js:2"), "{}", out.stderr);
    assert!(out.stderr.contains("SyntaxError"), "{}", out.stderr);
    assert_eq!(get(&d, "errs", "/api/ok").text(), "v1");
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let d = daemon();
    d.deploy_files(
        "big",
        &[("api/echo.js", "export default (req) => req.body.length;")],
    );
    let body = "x".repeat(20_000);
    let request = format!(
        "POST /api/echo HTTP/1.1\r\nHost: big.localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let res = http::raw(d.addr, request.as_bytes()).unwrap();
    assert_eq!(res.status, 413);
    assert!(json(&res)["error"]
        .as_str()
        .unwrap()
        .contains("10000 bytes"));
    let small = "POST /api/echo HTTP/1.1\r\nHost: big.localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    assert_eq!(http::raw(d.addr, small.as_bytes()).unwrap().text(), "5");
}

#[test]
fn concurrent_requests_share_no_globals_and_redeploys_switch_atomically() {
    let d = daemon();
    let counter = "globalThis.hits = (globalThis.hits ?? 0) + 1; let local = 0; export default () => { local += 1; globalThis.n = (globalThis.n ?? 0) + 1; return { hits: globalThis.hits, local, n: globalThis.n, v: 1 }; };";
    d.deploy_files("iso", &[("api/count.js", counter)]);
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let addr = d.addr;
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| http::get(addr, "iso.localhost", "/api/count", &[]).text())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for body in h.join().unwrap() {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (v["hits"].as_u64(), v["local"].as_u64(), v["n"].as_u64()),
                (Some(1), Some(1), Some(1)),
                "{body}"
            );
        }
    }
    // A redeploy switches to the new code at once (no stale bytecode).
    d.deploy_files("iso", &[("api/count.js", &counter.replace("v: 1", "v: 2"))]);
    assert_eq!(json(&get(&d, "iso", "/api/count"))["v"], 2);
    // Rollback brings the old functions back with the old files.
    d.ctl(&["rollback", "iso"]).ok();
    assert_eq!(json(&get(&d, "iso", "/api/count"))["v"], 1);
    let _ = faztctl;
}

#[test]
fn function_logs_outlive_a_restart_but_not_the_site() {
    let mut d = daemon();
    d.deploy_files(
        "chatty",
        &[(
            "api/say.js",
            "export default (req) => { console.log(`said ${req.query.n}`); return 'ok'; };",
        )],
    );
    assert_eq!(get(&d, "chatty", "/api/say?n=1").text(), "ok");
    d.restart();
    assert_eq!(get(&d, "chatty", "/api/say?n=2").text(), "ok");
    let logs = d.ctl(&["logs", "chatty", "-n", "10"]).ok().stdout;
    let first = logs.find("said 1").unwrap_or_else(|| panic!("{logs}"));
    let second = logs.find("said 2").unwrap_or_else(|| panic!("{logs}"));
    assert!(first < second, "in order: {logs}");

    // Removing the site removes its log; a new site of the same name starts empty.
    d.ctl(&["site", "rm", "chatty", "--yes"]).ok();
    d.deploy_files("chatty", &[("api/quiet.js", "export default () => 'shh';")]);
    d.restart();
    let logs = d.ctl(&["logs", "chatty", "-n", "10"]).ok().stdout;
    assert!(!logs.contains("said"), "{logs}");
}

/// What a function logs cannot drive the operator's terminal: control
/// characters are shown escaped, and a newline cannot fake a log line.
#[test]
fn function_output_cannot_drive_the_terminal() {
    let d = daemon();
    d.deploy_files(
        "loud",
        &[(
            "api/x.js",
            r#"export default () => { console.log("\u001b[2Jcleared\u0007\rfake\n2026-01-01 INFO forged"); return "ok"; };"#,
        )],
    );
    assert_eq!(get(&d, "loud", "/api/x").text(), "ok");
    let logs = d.ctl(&["logs", "loud"]).ok().stdout;
    assert!(
        !logs.contains('\u{1b}') && !logs.contains('\u{7}') && !logs.contains('\r'),
        "{logs:?}"
    );
    assert!(logs.contains("\\u{1b}[2Jcleared\\u{7}\\rfake"), "{logs}");
    let forged = logs.lines().find(|l| l.contains("forged")).unwrap();
    assert!(forged.starts_with("    | "), "{logs}");
    // JSON keeps the message exactly (escaped by JSON itself).
    let json = d.ctl(&["logs", "loud", "--json"]).ok().stdout;
    let line: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert!(
        line["message"].as_str().unwrap().starts_with("\u{1b}[2J"),
        "{json}"
    );
}

/// The daemon frames responses itself: a function's own Content-Length,
/// Transfer-Encoding and Connection never reach the wire (a wrong
/// Content-Length could end the response early and smuggle a second one),
/// and an informational status is no answer.
#[test]
fn a_function_cannot_frame_its_own_response() {
    let d = daemon();
    d.deploy_files(
        "framing",
        &[
            (
                "api/smuggle.js",
                r#"export default () => ({ status: 200, headers: { "content-length": "0", "transfer-encoding": "chunked", "connection": "close", "x-kept": "yes" }, body: "HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\n\r\n" });"#,
            ),
            ("api/early.js", r#"export default () => ({ status: 101, body: "up" });"#),
        ],
    );
    let request = b"GET /api/smuggle HTTP/1.1\r\nHost: framing.localhost\r\n\r\nGET /api/early HTTP/1.1\r\nHost: framing.localhost\r\nConnection: close\r\n\r\n";
    let mut stream = std::net::TcpStream::connect(d.addr).unwrap();
    std::io::Write::write_all(&mut stream, request).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    // Exactly two responses: the smuggled status line is inside the first body.
    assert_eq!(text.matches("HTTP/1.1 ").count(), 3, "{text}");
    let first = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(first.starts_with("http/1.1 200"), "{text}");
    assert!(first.contains("x-kept: yes"), "{text}");
    assert!(!first.contains("transfer-encoding"), "{text}");
    assert!(!first.contains("connection: close"), "{text}");
    let body = "HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\n\r\n";
    assert!(
        first.contains(&format!("content-length: {}", body.len())),
        "{text}"
    );
    // The 101 became a 500, and the site's log says why.
    let second = &text[text.rfind("HTTP/1.1 ").unwrap()..];
    assert!(second.starts_with("HTTP/1.1 500"), "{text}");
    let logs = d.ctl(&["logs", "framing"]).ok().stdout;
    assert!(
        logs.contains("dropped the response header \"content-length\""),
        "{logs}"
    );
    assert!(logs.contains("status 101"), "{logs}");
}

/// `fazt.kv.incr` and `compareAndSet` are atomic: concurrent visits all
/// count (get + set lost two thirds of them), and a compare-and-set only
/// wins when the value is what the caller saw.
#[test]
fn kv_counters_do_not_lose_concurrent_updates() {
    let d = daemon();
    d.deploy_files(
        "count",
        &[
            ("api/hit.js", r#"export default () => ({ n: fazt.kv.incr("hits") });"#),
            (
                "api/cas.js",
                r#"export default () => {
                    const first = fazt.kv.compareAndSet("owner", null, "a");
                    const second = fazt.kv.compareAndSet("owner", null, "b");
                    const swap = fazt.kv.compareAndSet("owner", "a", "c");
                    fazt.kv.set("word", "x");
                    let err = null;
                    try { fazt.kv.incr("word"); } catch (e) { err = String(e.message); }
                    return { first, second, swap, owner: fazt.kv.get("owner"), by: fazt.kv.incr("n", 2.5), err };
                };"#,
            ),
        ],
    );
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = d.addr;
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let res = http::get(addr, "count.localhost", "/api/hit", &[]);
                    assert_eq!(res.status, 200, "{}", res.text());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let last = json(&get(&d, "count", "/api/hit"));
    assert_eq!(last["n"], 201, "every concurrent hit counted: {last}");

    let cas = json(&get(&d, "count", "/api/cas"));
    assert_eq!(cas["first"], true, "{cas}");
    assert_eq!(cas["second"], false, "{cas}");
    assert_eq!(cas["swap"], true, "{cas}");
    assert_eq!(cas["owner"], "c", "{cas}");
    assert_eq!(cas["by"], 2.5, "{cas}");
    assert!(
        cas["err"].as_str().unwrap().contains("not a number"),
        "{cas}"
    );
}
