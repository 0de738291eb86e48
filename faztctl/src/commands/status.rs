//! `faztctl status`: the version matrix (DESIGN.md §10) — the source
//! checkout you stand in, the binaries, the local daemon and every remote —
//! then the details of the daemon the command targets.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use comfy_table::{Cell, Color};
use fazt_proto::{DaemonStatus, UnitStatus};
use serde::Serialize;
use serde_json::json;

use crate::client;
use crate::output::{self, colored};
use crate::remotes::{Remote, Remotes};
use crate::tunnel::Tunnel;

/// How long one remote gets to answer before it is shown as unreachable.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(12);

/// One row of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `source`, `binary`, `local` or `remote`.
    pub role: &'static str,
    pub name: String,
    pub version: Option<String>,
    pub commit: Option<String>,
    pub dirty: bool,
    pub uptime_secs: Option<u64>,
    pub domain: Option<String>,
    pub sites: Option<u64>,
    pub health: Option<String>,
    /// The systemd unit's state (`active (running)`, `none` outside systemd).
    pub unit: Option<String>,
    /// Why the row could not be read, when it could not.
    pub error: Option<String>,
    /// What the table says instead of `error` when the state is an ordinary
    /// one, not a fault: `not running`, `not installed`.
    #[serde(skip)]
    pub plain: Option<&'static str>,
    /// Set when this row lags behind the newest version: the command that fixes it.
    pub fix: Option<String>,
}

impl Row {
    fn new(role: &'static str, name: &str) -> Row {
        Row {
            role,
            name: name.to_string(),
            version: None,
            commit: None,
            dirty: false,
            uptime_secs: None,
            domain: None,
            sites: None,
            health: None,
            unit: None,
            error: None,
            plain: None,
            fix: None,
        }
    }

    fn unreached(role: &'static str, name: &str, why: Unreached) -> Row {
        Row {
            error: Some(why.message),
            plain: why.not_running.then_some("not running"),
            ..Row::new(role, name)
        }
    }

    fn daemon(role: &'static str, name: &str, seen: &Seen) -> Row {
        let status = &seen.status;
        Row {
            unit: Some(match &seen.unit {
                Ok(Some(u)) => format!("{} ({})", u.active_state, u.sub_state),
                Ok(None) => "none".to_string(),
                Err(_) => "unknown".to_string(),
            }),
            version: Some(status.version.clone()),
            commit: Some(status.commit.clone()),
            uptime_secs: Some(status.uptime_secs),
            domain: Some(format!("{} ({})", status.domain, status.domain_source)),
            sites: Some(status.sites),
            health: Some(status.health.clone()),
            ..Row::new(role, name)
        }
    }
}

/// `target` is the remote the command was aimed at (`@NAME`), if any;
/// `socket` reaches that daemon (through its tunnel) or the local one.
pub async fn run(socket: &Path, target: Option<&str>, json: bool) -> Result<ExitCode> {
    let remotes = Remotes::load().unwrap_or_default();
    let local_socket = client::socket_path(None).ok();
    let (target_status, target_unreached) = match daemon_status(socket).await {
        Ok(status) => (Some(status), None),
        Err(why) => (None, Some(why)),
    };
    let target_error = target_unreached.as_ref().map(|why| why.message.clone());

    let mut rows = vec![
        source_row(),
        binary_row("faztctl", Some(fazt_proto::VERSION_LINE.to_string())),
    ];
    rows.push(faztd_row());
    // The local daemon: already asked if it is the target.
    let local = match (target, &target_status, &target_error) {
        (None, Some(status), _) => Row::daemon("local", "local", status),
        (None, None, Some(_)) => Row::unreached(
            "local",
            "local",
            target_unreached.clone().expect("set with target_error"),
        ),
        _ => match local_socket {
            Some(ref s) => match daemon_status(s).await {
                Ok(status) => Row::daemon("local", "local", &status),
                Err(why) => Row::unreached("local", "local", why),
            },
            None => Row {
                error: Some("no control socket path".into()),
                ..Row::new("local", "local")
            },
        },
    };
    rows.push(local);
    let checks = remotes.remotes.iter().map(|(name, remote)| {
        let already = (target == Some(name.as_str()))
            .then(|| (target_status.clone(), target_unreached.clone()));
        remote_row(name.clone(), remote.clone(), already)
    });
    rows.extend(futures_util::future::join_all(checks).await);
    mark_lagging(&mut rows);

    if json {
        let unit = target_status.as_ref().map(|seen| match &seen.unit {
            Ok(unit) => json!(unit),
            Err(err) => json!({ "error": err }),
        });
        output::print_json(&json!({
            "faztctl": { "version": fazt_proto::FAZT_VERSION, "commit": fazt_proto::FAZT_COMMIT, "protocol": fazt_proto::PROTOCOL_VERSION },
            "daemon": target_status.as_ref().map(|seen| &seen.status),
            "unit": unit,
            "error": target_error,
            "matrix": rows,
        }))?;
    } else {
        print_matrix(&rows);
        if let Some(seen) = &target_status {
            let status = &seen.status;
            println!();
            print_details(status, &seen.unit);
            if let Some(warning) = &status.domain_warning {
                eprintln!("warning: {warning}");
            }
        }
        if rows
            .iter()
            .any(|r| r.role == "binary" && r.plain == Some("not installed"))
        {
            eprintln!("faztd is not installed: {INSTALL_HINT}");
        }
        for row in rows.iter().filter(|r| r.fix.is_some()) {
            eprintln!(
                "{} {} is behind: {}",
                row.role,
                row.name,
                row.fix.as_deref().unwrap_or("")
            );
        }
        if let Some(err) = &target_error {
            eprintln!("error: {err}");
        }
    }
    Ok(if target_status.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How to get a faztd binary, for the status hints.
const INSTALL_HINT: &str = "run `scripts/install.sh` in a Fazt checkout (`--mode local` for a \
user service), or try it without installing: `cargo run --release -p faztd`";

/// Why a daemon could not be asked.
#[derive(Debug, Clone)]
struct Unreached {
    message: String,
    /// Nothing listens on the socket: an ordinary state, not a fault.
    not_running: bool,
}

/// A daemon's status and its systemd unit, as one visit saw them.
#[derive(Debug, Clone)]
struct Seen {
    status: DaemonStatus,
    /// The unit is extra: an old daemon or a D-Bus hiccup must not fail the status.
    unit: Result<Option<UnitStatus>, String>,
}

async fn daemon_status(socket: &Path) -> Result<Seen, Unreached> {
    let daemon = client::connect(socket).await.map_err(|e| Unreached {
        message: e.to_string(),
        not_running: matches!(e, client::ConnectError::NotRunning(_)),
    })?;
    let status =
        client::answer(daemon.client.status(client::quick()).await).map_err(|e| Unreached {
            message: format!("{e:#}"),
            not_running: false,
        })?;
    let unit = client::answer(daemon.client.unit_status(client::quick()).await)
        .map_err(|e| format!("{e:#}"));
    Ok(Seen { status, unit })
}

async fn remote_row(
    name: String,
    remote: Remote,
    already: Option<(Option<Seen>, Option<Unreached>)>,
) -> Row {
    if let Some((status, unreached)) = already {
        return match (status, unreached) {
            (Some(status), _) => Row::daemon("remote", &name, &status),
            (None, Some(why)) => Row::unreached("remote", &name, why),
            (None, None) => Row::new("remote", &name),
        };
    }
    let check = async {
        let tunnel = tokio::task::spawn_blocking(move || Tunnel::open(&remote))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e:#}"))?;
        let status = daemon_status(tunnel.socket()).await;
        tokio::task::spawn_blocking(move || drop(tunnel)).await.ok();
        status.map_err(|why| why.message)
    };
    match tokio::time::timeout(REMOTE_TIMEOUT, check).await {
        Ok(Ok(status)) => Row::daemon("remote", &name, &status),
        Ok(Err(err)) => Row {
            error: Some(err),
            ..Row::new("remote", &name)
        },
        Err(_) => Row {
            error: Some(format!("no answer within {}s", REMOTE_TIMEOUT.as_secs())),
            ..Row::new("remote", &name)
        },
    }
}

/// The Fazt checkout the current directory is in, if any.
fn source_row() -> Row {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let mut row = Row::new("source", "checkout");
    let Some(top) = git(&["rev-parse", "--show-toplevel"]) else {
        row.error = Some("not in a git checkout".into());
        return row;
    };
    let top = Path::new(&top);
    let manifest = std::fs::read_to_string(top.join("Cargo.toml")).unwrap_or_default();
    let version = toml::from_str::<toml::Value>(&manifest).ok().and_then(|v| {
        v.get("workspace")?
            .get("package")?
            .get("version")?
            .as_str()
            .map(str::to_string)
    });
    if version.is_none() || !top.join("proto/Cargo.toml").exists() {
        row.error = Some("not a Fazt checkout".into());
        return row;
    }
    row.name = top.display().to_string();
    row.version = version;
    row.commit = git(&["rev-parse", "--short=12", "HEAD"]);
    row.dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    row
}

/// `VERSION (COMMIT)` split into its parts.
fn binary_row(name: &str, line: Option<String>) -> Row {
    let mut row = Row::new("binary", name);
    match line {
        Some(line) => {
            let mut parts = line.split_whitespace();
            row.version = parts.next().map(str::to_string);
            row.commit = parts.next().map(|c| c.trim_matches(['(', ')']).to_string());
        }
        None => {
            row.error = Some("not installed".into());
            row.plain = Some("not installed");
        }
    }
    row
}

/// The faztd this faztctl would use: the one next to it (an install, or
/// `target/release` after `cargo build`/`cargo run`), else the one on PATH.
fn faztd_row() -> Row {
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("faztd"))
        .filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| "faztd".into());
    let Ok(out) = std::process::Command::new(&program)
        .arg("--version")
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return binary_row("faztd", None);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().strip_prefix("faztd ") {
        Some(line) => binary_row("faztd", Some(line.to_string())),
        None => Row {
            error: Some(format!(
                "{} --version did not say which version it is",
                program.display()
            )),
            ..Row::new("binary", "faztd")
        },
    }
}

fn parse_version(v: &str) -> Vec<u64> {
    v.split(['.', '-']).map_while(|p| p.parse().ok()).collect()
}

/// Flags every row older than the newest version seen, with its fix.
fn mark_lagging(rows: &mut [Row]) {
    let newest = rows
        .iter()
        .filter_map(|r| r.version.as_deref())
        .map(parse_version)
        .max();
    let Some(newest) = newest else { return };
    for row in rows.iter_mut() {
        let Some(version) = row.version.as_deref() else {
            continue;
        };
        if parse_version(version) >= newest {
            continue;
        }
        row.fix = Some(match (row.role, row.name.as_str()) {
            ("source", _) => "git pull".to_string(),
            ("binary", "faztctl") => {
                "scripts/install.sh --mode cli (or cargo install --path faztctl)".to_string()
            }
            ("binary", _) => "scripts/install.sh (or cargo install --path faztd)".to_string(),
            ("local", _) => "faztctl upgrade".to_string(),
            (_, name) => format!("faztctl @{name} upgrade"),
        });
    }
}

fn print_matrix(rows: &[Row]) {
    let mut table = output::table(&[
        "", "name", "version", "commit", "uptime", "unit", "domain", "sites", "health",
    ]);
    // Outside a Fazt checkout there is no source to compare with: no row.
    for row in rows
        .iter()
        .filter(|r| !(r.role == "source" && r.error.is_some()))
    {
        let version = row.version.clone().unwrap_or_else(|| "-".into());
        let version = if row.fix.is_some() {
            colored(format!("{version} (behind)"), Color::Yellow)
        } else {
            Cell::new(version)
        };
        let commit = match (&row.commit, row.dirty) {
            (Some(c), true) => format!("{c}+dirty"),
            (Some(c), false) => c.clone(),
            (None, _) => "-".into(),
        };
        let health = match (&row.health, &row.error) {
            (_, Some(_)) if row.plain.is_some() => {
                colored(row.plain.unwrap_or_default(), Color::Yellow)
            }
            (_, Some(err)) if row.role == "local" || row.role == "remote" => {
                // The first line: the whole explanation is printed under the table.
                let first = err.lines().next().unwrap_or_default();
                colored(format!("unreachable: {first}"), Color::Red)
            }
            (_, Some(err)) => colored(err, Color::DarkGrey),
            (Some(h), None) if h == "ok" => colored("healthy", Color::Green),
            (Some(h), None) => colored(h, Color::Red),
            (None, None) => Cell::new(""),
        };
        table.add_row(vec![
            Cell::new(row.role),
            Cell::new(&row.name),
            version,
            Cell::new(commit),
            Cell::new(row.uptime_secs.map(output::duration).unwrap_or_default()),
            Cell::new(row.unit.clone().unwrap_or_default()),
            Cell::new(row.domain.clone().unwrap_or_default()),
            Cell::new(row.sites.map(|s| s.to_string()).unwrap_or_default()),
            health,
        ]);
    }
    println!("{table}");
}

fn print_details(status: &DaemonStatus, unit: &Result<Option<UnitStatus>, String>) {
    let mut rows = output::table(&["daemon", ""]);
    let domain = match &status.domain_warning {
        Some(_) => colored(
            format!("{} ({})", status.domain, status.domain_source),
            Color::Yellow,
        ),
        None => comfy_table::Cell::new(format!("{} ({})", status.domain, status.domain_source)),
    };
    rows.add_row(vec![
        comfy_table::Cell::new("pid"),
        comfy_table::Cell::new(status.pid),
    ]);
    rows.add_row(vec![comfy_table::Cell::new("unit"), unit_cell(unit)]);
    rows.add_row(vec![
        comfy_table::Cell::new("uptime"),
        comfy_table::Cell::new(output::duration(status.uptime_secs)),
    ]);
    rows.add_row(vec![comfy_table::Cell::new("domain"), domain]);
    rows.add_row(vec![
        comfy_table::Cell::new("listen"),
        comfy_table::Cell::new(&status.listen),
    ]);
    if let Some(https) = &status.https_listen {
        rows.add_row(vec![
            comfy_table::Cell::new("https"),
            comfy_table::Cell::new(https),
        ]);
    }
    rows.add_row(vec![
        comfy_table::Cell::new("sites"),
        comfy_table::Cell::new(status.sites),
    ]);
    rows.add_row(vec![
        comfy_table::Cell::new("realtime"),
        comfy_table::Cell::new(format!(
            "{}, {}",
            output::count(status.realtime_connections, "connection"),
            output::count(status.realtime_channels, "channel"),
        )),
    ]);
    let refused: Vec<String> = status
        .refusals
        .iter()
        .filter(|(_, &count)| count > 0)
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    rows.add_row(vec![
        comfy_table::Cell::new("refused"),
        if refused.is_empty() {
            comfy_table::Cell::new("nothing")
        } else {
            colored(refused.join(", "), Color::Yellow)
        },
    ]);
    rows.add_row(vec![
        comfy_table::Cell::new("data"),
        comfy_table::Cell::new(format!(
            "{} ({})",
            status.data_path,
            output::bytes(status.data_bytes)
        )),
    ]);
    rows.add_row(vec![
        comfy_table::Cell::new("socket"),
        comfy_table::Cell::new(&status.socket_path),
    ]);
    println!("{rows}");
    print_certificates(&status.certificates);
}

/// A certificate this close to its end is shown in yellow: renewal (due at
/// two thirds of its lifetime) has been failing.
const EXPIRES_SOON_SECS: u64 = 14 * 86_400;

/// Each certified name: valid until, next renewal, last error.
fn print_certificates(certificates: &[fazt_proto::CertificateStatus]) {
    if certificates.is_empty() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let date = |secs: u64| {
        if secs <= now {
            format!("{} ago", output::duration(now - secs))
        } else {
            format!("in {}", output::duration(secs - now))
        }
    };
    let mut rows = output::table(&["certificate", "valid until", "renewal", "last error"]);
    for cert in certificates {
        let valid = match cert.valid_until {
            None => colored("none yet".to_string(), Color::Yellow),
            Some(end) if end <= now + EXPIRES_SOON_SECS => {
                colored(format!("{} (expires soon)", date(end)), Color::Yellow)
            }
            Some(end) => comfy_table::Cell::new(date(end)),
        };
        rows.add_row(vec![
            comfy_table::Cell::new(&cert.name),
            valid,
            comfy_table::Cell::new(cert.renew_at.map(date).unwrap_or_else(|| "-".into())),
            match &cert.last_error {
                Some(err) => colored(err.clone(), Color::Yellow),
                None => comfy_table::Cell::new("-"),
            },
        ]);
    }
    println!("{rows}");
}

/// `active (running), since 3m ago, 0 restarts, enabled; user unit faztd.service`.
fn unit_cell(unit: &Result<Option<UnitStatus>, String>) -> Cell {
    match unit {
        Ok(None) => Cell::new("none (not started by systemd)"),
        Err(err) => colored(format!("unknown: {err}"), Color::Yellow),
        Ok(Some(u)) => {
            let since = if u.active_since_usec > 0 {
                format!(", since {}", output::ago(u.active_since_usec / 1_000_000))
            } else {
                String::new()
            };
            let file_state = if u.unit_file_state.is_empty() {
                "?"
            } else {
                &u.unit_file_state
            };
            let text = format!(
                "{} ({}){since}, {}, {file_state}; {} unit {}",
                u.active_state,
                u.sub_state,
                output::count(u.restarts, "restart"),
                u.scope,
                u.unit
            );
            colored(
                text,
                if u.active_state == "active" {
                    Color::Green
                } else {
                    Color::Yellow
                },
            )
        }
    }
}
