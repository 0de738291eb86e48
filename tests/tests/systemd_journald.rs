//! faztd's log under systemd goes to journald with structured fields.
//!
//! journald cannot run on these machines (no systemd as PID 1). The honest
//! stand-in is its socket: faztd starts in a private mount namespace where
//! `/run/systemd/journal/socket` is a datagram socket this test bound, and
//! the test reads the native-protocol records tracing-journald writes there.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fazt_e2e::daemon::{faztctl, libc_sig, socket_for};
use fazt_e2e::process::Process;
use fazt_e2e::{bin, skip_unless, systemd, wait_until, PATIENCE};

/// Parses one native-protocol datagram: `KEY=value\n`, or for values with
/// newlines `KEY\n` + little-endian u64 length + value + `\n`.
fn parse_record(mut data: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    while !data.is_empty() {
        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            data = &data[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &data[nl + 1..];
            if rest.len() < 8 {
                break;
            }
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = &rest[8..8 + len];
            fields.insert(key, String::from_utf8_lossy(value).into_owned());
            data = &rest[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn under_systemd_the_log_goes_to_journald_with_fields() {
    skip_unless!(systemd::missing_mount_namespace());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = fazt_e2e::free_port();
    let mut daemon = Process::spawn(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && \
             while [ ! -S /run/systemd/journal/socket ]; do sleep 0.02; done; exec \"$0\" \"$@\"",
            )
            .arg(bin("faztd"))
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("JOURNAL_STREAM", "8:424242")
            .env("XDG_RUNTIME_DIR", data.join("run"))
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET"),
    )
    .expect("start faztd in a private mount namespace");
    let pid = daemon.id();

    // Bind "journald's" socket inside faztd's namespace, through /proc.
    let journal_dir = format!("/proc/{pid}/root/run/systemd/journal");
    wait_until(PATIENCE, "faztd's mount namespace to come up", || {
        Path::new(&journal_dir).exists()
    });
    let journal =
        UnixDatagram::bind(format!("{journal_dir}/socket")).expect("bind the journal socket");
    journal
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    let mut records = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut read_until =
        |records: &mut Vec<HashMap<String, String>>,
         what: &dyn Fn(&HashMap<String, String>) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(n) = journal.recv(&mut buf) {
                    let record = parse_record(&buf[..n]);
                    let hit = what(&record);
                    records.push(record);
                    if hit {
                        return true;
                    }
                }
            }
            false
        };
    let started = read_until(&mut records, &|r| {
        r.get("MESSAGE").is_some_and(|m| m.contains("started"))
    });
    assert!(started, "no 'started' record in {records:#?}");
    let start = records.last().unwrap().clone();
    assert_eq!(
        start.get("SYSLOG_IDENTIFIER").map(String::as_str),
        Some("faztd")
    );
    // tracing-journald maps INFO to 5 (notice) and DEBUG to 6.
    assert_eq!(
        start.get("PRIORITY").map(String::as_str),
        Some("5"),
        "{start:#?}"
    );
    assert_eq!(
        start.get("LISTEN").map(String::as_str),
        Some(format!("127.0.0.1:{port}").as_str()),
        "{start:#?}"
    );

    // A deploy logs with the site as a field: SITE=...
    let site = dir.path().join("blog");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "<h1>hi</h1>").unwrap();
    faztctl(&socket_for(&data), &["deploy", site.to_str().unwrap()]).ok();
    let deployed = read_until(&mut records, &|r| {
        r.get("SITE").is_some_and(|s| s == "blog")
    });
    assert!(deployed, "no SITE=blog record in {records:#?}");
    let record = records.last().unwrap();
    assert!(
        record
            .get("REQUEST_ID")
            .is_some_and(|id| id.parse::<u64>().is_ok()),
        "the control request's id is a field: {record:#?}"
    );

    daemon.stop(libc_sig::SIGTERM, Duration::from_secs(20));
    // With journald in use, stderr does not repeat the records.
    daemon.stderr.wait_closed(PATIENCE);
    let stderr = daemon.stderr.text();
    assert!(!stderr.contains("started"), "{stderr}");
}
