//! What a new user trips over (issue 12), against the real binaries:
//! versions named as `history` prints them, one JSON-lines format for every
//! log, exit 2 for a wrong command line (before any daemon is asked), counts
//! with the right plural, help for every argument, env values that stay
//! hidden, and a `status` that explains instead of alarming.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fazt_e2e::daemon::{faztctl, CtlOutput, Faztd};
use fazt_e2e::{bin, http, wait_for, PATIENCE};

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[test]
fn versions_are_named_and_printed_as_v5() {
    let d = Faztd::start();
    let site = tempfile::tempdir().unwrap();
    write(site.path(), "index.html", "one");
    let first = d
        .ctl(&["deploy", path_str(site.path()), "--site", "app"])
        .ok();
    write(site.path(), "index.html", "two");
    let second = d
        .ctl(&["deploy", path_str(site.path()), "--site", "app"])
        .ok();
    // The same files again: a new version only when forced.
    let again = d
        .ctl(&["deploy", path_str(site.path()), "--site", "app", "--force"])
        .ok();
    let history = d.ctl(&["history", "app", "--json"]).ok().json();
    let ids: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_u64().expect("--json keeps versions as numbers"))
        .collect();
    let (v1, v2, v3) = (ids[2], ids[1], ids[0]);
    assert_eq!((v1, v2, v3), (1, 2, 3), "versions are numbered per site");

    // deploy: `v1`, and counts with their plurals.
    assert!(
        first
            .stdout
            .contains(&format!("Deployed app v{v1}: 1 file, ")),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("sent 1 new blob,"),
        "{}",
        first.stdout
    );
    assert!(
        second.stdout.contains(&format!("app v{v2}:")),
        "{}",
        second.stdout
    );
    assert!(
        again.stdout.contains("nothing new to send"),
        "{}",
        again.stdout
    );
    // sites and history.
    let sites = d.ctl(&["sites"]).ok().stdout;
    assert!(sites.contains(&format!("v{v3} (3 kept)")), "{sites}");
    let table = d.ctl(&["history", "app"]).ok().stdout;
    for v in [v1, v2, v3] {
        assert!(table.contains(&format!("v{v}")), "{table}");
    }

    // rollback takes a version as history prints it, or bare.
    let back = d.ctl(&["rollback", "app", &format!("v{v1}")]).ok().stdout;
    assert!(
        back.contains(&format!("app rolled back: v{v3} -> v{v1} is live")),
        "{back}"
    );
    assert_eq!(http::get(d.addr, "app.localhost", "/", &[]).body, b"one");
    // Naming a newer version moves forward, and says so.
    let forward = d.ctl(&["rollback", "app", &v3.to_string()]).ok().stdout;
    assert!(
        forward.contains(&format!("app moved forward: v{v1} -> v{v3} is live")),
        "{forward}"
    );
    let json = d
        .ctl(&["rollback", "app", &format!("V{v2}"), "--json"])
        .ok()
        .json();
    assert_eq!(
        (json["from"].as_u64(), json["to"].as_u64()),
        (Some(v3), Some(v2))
    );
    assert_eq!(http::get(d.addr, "app.localhost", "/", &[]).body, b"two");

    // Not a version: refused by faztctl itself, exit 2, saying how to write one.
    let bad = d.ctl(&["rollback", "app", "vv1"]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("e.g. v5"), "{}", bad.stderr);

    // Several instances at once: the same words, the same plurals.
    let config = tempfile::tempdir().unwrap();
    let many = CtlOutput::from(
        Command::new(bin("faztctl"))
            .args([
                "deploy",
                path_str(site.path()),
                "--site",
                "multi",
                "--to",
                "local",
            ])
            .env("XDG_RUNTIME_DIR", d.data_dir.join("run"))
            .env("XDG_CONFIG_HOME", config.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        many.stdout.contains("Deployed multi to 1 of 1 instance in"),
        "{}",
        many.stdout
    );
    assert!(many.stdout.contains(" live"), "{}", many.stdout);
    assert!(!many.stdout.contains("1 blobs"), "{}", many.stdout);
}

/// `logs SITE --json` and `logs --daemon --json`: JSON objects, one per line,
/// with the same keys (a daemon line has no `seq`).
#[test]
fn every_log_prints_one_json_object_per_line() {
    let d = Faztd::start();
    d.deploy_files(
        "chatty",
        &[(
            "api/hi.js",
            "export default () => { console.log('hello from hi'); return 1; };",
        )],
    );
    assert_eq!(
        http::get(d.addr, "chatty.localhost", "/api/hi", &[]).status,
        200
    );
    let objects = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = d.ctl(args).ok().stdout;
        out.lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON value per line ({e}): {line}\n{out}"));
                assert!(value.is_object(), "{line}");
                value
            })
            .collect()
    };
    let site = wait_for(PATIENCE, "the function's log line", || {
        let lines = objects(&["logs", "chatty", "--json"]);
        lines
            .iter()
            .any(|l| l["message"] == "hello from hi")
            .then_some(lines)
    });
    let daemon = objects(&["logs", "--daemon", "--json", "-n", "200"]);
    assert!(!daemon.is_empty());
    for line in &daemon {
        assert!(
            line["ts_ms"]
                .as_u64()
                .is_some_and(|t| t > 1_600_000_000_000),
            "{line}"
        );
        assert!(
            ["trace", "debug", "info", "warn", "error"].contains(&line["level"].as_str().unwrap()),
            "{line}"
        );
        assert!(line["message"].is_string(), "{line}");
        for key in line.as_object().unwrap().keys() {
            assert!(
                site[0].get(key).is_some(),
                "{key} is not a key of site log lines"
            );
        }
    }
    assert!(
        daemon
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("started")),
        "{daemon:?}"
    );
    // The human form is unchanged: one record per line.
    let text = d.ctl(&["logs", "--daemon"]).ok().stdout;
    assert!(text.lines().any(|l| l.contains(" INFO ")), "{text}");
}

/// README: exit 0 ok, 1 the operation failed, 2 the command line was wrong.
/// Each of these is refused by faztctl itself: there is no daemon at all.
#[test]
fn a_wrong_command_line_exits_2_before_any_daemon_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nobody-listens.sock");
    let site = dir.path().join("my-site");
    write(&site, "index.html", "hi");
    let folder = path_str(&site);
    let cases: &[(&[&str], &str)] = &[
        (&["env", "set", "my-site", "BADNAME"], "NAME=VALUE"),
        (&["env", "set", "my-site", "1BAD=x"], "variable name"),
        (
            &["env", "set", "my-site", "OK=1", "BAD-NAME=2"],
            "variable name",
        ),
        (&["env", "unset", "my-site", "BAD-NAME"], "variable name"),
        (&["publish", "my-site", "news", "not json"], "not JSON"),
        (
            &["deploy", folder, "--site", "Bad_Name"],
            "did you mean bad-name?",
        ),
        (
            &["deploy", folder, "--site", "Bad_Name", "--to", "local"],
            "site name",
        ),
        (&["deploy", folder, "--to", ","], "--to needs"),
        (&["deploy", "/no/such/folder"], "no such folder"),
        (&["history", "Bad_Name"], "site name"),
        (&["rollback", "Bad_Name"], "site name"),
        (&["rollback", "my-site", "five"], "e.g. v5"),
        (&["site", "rm", "Bad_Name", "--yes"], "site name"),
        (&["logs", "Bad_Name"], "site name"),
        (&["logs", "--daemon", "-f"], "journalctl"),
        (&["env", "list", "Bad_Name"], "site name"),
        (&["env", "set", "bad-", "A=1"], "site name"),
        (&["env", "unset", "my_site", "A"], "site name"),
        (&["publish", "MySite", "news", "1"], "did you mean mysite?"),
        (&["remote", "add", "bad name", "host"], "remote name"),
    ];
    for (args, says) in cases {
        let out = faztctl(&socket, args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(
            !out.stderr.contains("not running"),
            "{args:?} was checked only by trying the daemon: {}",
            out.stderr
        );
    }
    // A right command line with nobody to answer it is an operation that failed.
    let out = faztctl(&socket, &["rollback", "my-site", "v5"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("not running"), "{}", out.stderr);
}

/// The same against a running daemon: refused with 2, and nothing changed.
#[test]
fn wrong_input_changes_nothing_on_a_running_daemon() {
    let d = Faztd::start();
    let out = d.ctl(&["env", "set", "demo", "GOOD=1", "BADNAME"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let vars = d.ctl(&["env", "list", "demo", "--json"]).ok().json();
    assert!(
        vars.get("GOOD").is_none(),
        "no half-applied assignments: {vars}"
    );
    let out = d.ctl(&["publish", "demo", "news", "{oops"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

/// Every argument of every command is explained in `faztctl CMD -h`.
#[test]
fn every_argument_of_every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let mut commands: Vec<Vec<String>> = vec![vec![]];
    let mut checked = 0;
    while let Some(path) = commands.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("-h");
        let help = faztctl(&socket, &args).ok().stdout;
        let mut section = "";
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with(' ') && line.ends_with(':') {
                section = line;
                continue;
            }
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.is_empty() || indent > 6 {
                continue;
            }
            let mut parts = trimmed.splitn(2, "  ");
            let entry = parts.next().unwrap_or_default();
            let same_line = parts.next().is_some_and(|h| !h.trim().is_empty());
            let next_line = lines.get(i + 1).is_some_and(|next| {
                let t = next.trim_start();
                !t.is_empty() && next.len() - t.len() > indent
            });
            match section {
                "Commands:" => {
                    assert!(same_line, "faztctl {path:?}: no help for command {entry}");
                    if entry != "help" {
                        let mut sub = path.clone();
                        sub.push(entry.to_string());
                        commands.push(sub);
                    }
                }
                "Arguments:" | "Options:" => {
                    assert!(
                        same_line || next_line,
                        "faztctl {} -h: no help for {entry}:\n{help}",
                        path.join(" ")
                    );
                    checked += 1;
                }
                _ => {}
            }
        }
    }
    assert!(checked > 60, "only {checked} arguments seen");
    let rollback = faztctl(&socket, &["rollback", "-h"]).ok().stdout;
    for line in rollback.lines() {
        if line.trim_start().starts_with("<SITE>") || line.trim_start().starts_with("--json") {
            assert!(line.split_whitespace().count() > 1, "{rollback}");
        }
    }
}

#[test]
fn env_list_shows_no_part_of_a_value_unless_asked() {
    let d = Faztd::start();
    d.ctl(&["env", "set", "demo", "TOKEN=s3cret-value", "PIN=zq"])
        .ok();
    for args in [
        &["env", "list", "demo"][..],
        &["env", "list", "demo", "--json"][..],
    ] {
        let out = d.ctl(args).ok().stdout;
        assert!(out.contains("TOKEN") && out.contains("PIN"), "{out}");
        for secret in ["s3", "3c", "-v", "zq"] {
            assert!(!out.contains(secret), "{args:?} shows {secret:?}: {out}");
        }
    }
    let json = d.ctl(&["env", "list", "demo", "--json"]).ok().json();
    assert_eq!(json["TOKEN"], json["PIN"], "not even the length shows");
    let shown = d.ctl(&["env", "list", "demo", "--show"]).ok().stdout;
    assert!(
        shown.contains("s3cret-value") && shown.contains("zq"),
        "{shown}"
    );
    let revealed = d
        .ctl(&["env", "list", "demo", "--reveal", "--json"])
        .ok()
        .json();
    assert_eq!(revealed["PIN"], "zq");
}

/// faztctl run from somewhere else than a checkout, with PATH limited to
/// `bin_dir` and the system's directories.
fn status_from(faztctl: &Path, socket: &Path, cwd: &Path, bin_dir: &Path) -> CtlOutput {
    let config = cwd.join("config");
    let mut command = Command::new(faztctl);
    command
        .arg("--socket")
        .arg(socket)
        .arg("status")
        .current_dir(cwd)
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("XDG_CONFIG_HOME", &config)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    // Just copied: retried while another test's fork still holds it open.
    CtlOutput::from(fazt_e2e::process::retry_busy(|| command.output()).unwrap())
}

#[test]
fn status_says_not_installed_and_not_running_instead_of_alarming() {
    let place = tempfile::tempdir().unwrap();
    let lone_bin: PathBuf = place.path().join("bin");
    std::fs::create_dir_all(&lone_bin).unwrap();
    // A faztctl with no faztd beside it or on PATH, outside any checkout.
    let lone = lone_bin.join("faztctl");
    std::fs::copy(bin("faztctl"), &lone).unwrap();
    let nobody = place.path().join("nobody.sock");

    let out = status_from(&lone, &nobody, place.path(), &lone_bin);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    for calm in ["not installed", "not running"] {
        assert!(out.stdout.contains(calm), "{calm}:\n{}", out.stdout);
    }
    for alarm in [
        "not in a git checkout",
        "not found on PATH",
        "unreachable",
        "Start it",
    ] {
        assert!(!out.stdout.contains(alarm), "{alarm}:\n{}", out.stdout);
    }
    // Below the table: how to install, and how to start (from a checkout or installed).
    for hint in [
        "scripts/install.sh",
        "cargo run --release -p faztd",
        "`faztd` if it is installed",
    ] {
        assert!(out.stderr.contains(hint), "{hint}:\n{}", out.stderr);
    }

    // With a daemon running: healthy, and still only "not installed" for the binary.
    let d = Faztd::start();
    let out = status_from(&lone, &d.socket(), place.path(), &lone_bin);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("healthy"), "{}", out.stdout);
    assert!(out.stdout.contains("not installed"), "{}", out.stdout);

    // As after `cargo build`/`cargo run`: faztd sits next to faztctl and is found there.
    let built = status_from(&bin("faztctl"), &d.socket(), place.path(), &lone_bin);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    let faztd_row = built
        .stdout
        .lines()
        .find(|l| l.split_whitespace().take(2).eq(["binary", "faztd"]))
        .unwrap_or_else(|| panic!("no faztd row:\n{}", built.stdout));
    assert!(
        faztd_row.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        built.stdout
    );
    assert!(!built.stdout.contains("not installed"), "{}", built.stdout);
}

/// A reader that goes away (`faztctl completions bash | head -1`) ends
/// faztctl quietly, as SIGPIPE ends other tools; but a daemon that goes away
/// is an error with exit 1 (SIGPIPE is not left to kill faztctl mid-upload).
#[test]
fn a_closed_stdout_ends_quietly_and_a_lost_daemon_is_an_error() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(bin("faztctl"))
        .args(["completions", "bash"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A daemon killed mid-deploy: faztctl reports it and exits 1.
    let mut d = Faztd::start();
    let site = tempfile::tempdir().unwrap();
    let big: String = "x".repeat(8 * 1024 * 1024);
    for n in 0..8 {
        write(site.path(), &format!("f{n}.txt"), &format!("{n}{big}"));
    }
    let deploy = Command::new(bin("faztctl"))
        .args([
            "--socket",
            path_str(&d.socket()),
            "deploy",
            path_str(site.path()),
            "--site",
            "big",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    d.wait_for_log("the deploy to start", |l| l.contains("deploy started"));
    d.stop_with(fazt_e2e::process::libc_sig::SIGKILL);
    let out = deploy.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error"), "{err}");
}
