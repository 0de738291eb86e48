//! `faztctl status`: this faztctl, and the daemon it talks to.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use comfy_table::Color;
use serde_json::json;

use crate::client::{self, ConnectError};
use crate::output::{self, colored};

pub async fn run(socket: &Path, json: bool) -> Result<ExitCode> {
    let me = json!({
        "version": fazt_proto::FAZT_VERSION,
        "commit": fazt_proto::FAZT_COMMIT,
        "protocol": fazt_proto::PROTOCOL_VERSION,
    });
    let daemon = match client::connect(socket).await {
        Ok(daemon) => daemon,
        Err(err) => {
            let running = !matches!(err, ConnectError::NotRunning(_));
            if json {
                output::print_json(&json!({
                    "faztctl": me,
                    "daemon": null,
                    "error": err.to_string(),
                    "socket": socket.display().to_string(),
                    "reachable": running,
                }))?;
            } else {
                println!(
                    "faztctl {} ({}), protocol {}",
                    fazt_proto::FAZT_VERSION,
                    fazt_proto::FAZT_COMMIT,
                    fazt_proto::PROTOCOL_VERSION
                );
                eprintln!("error: {err}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let status = client::answer(daemon.client.status(client::quick()).await)?;
    // The unit's state is extra: an old daemon or a D-Bus hiccup must not
    // fail the whole status.
    let unit = client::answer(daemon.client.unit_status(client::quick()).await);
    if json {
        let unit = match &unit {
            Ok(unit) => json!(unit),
            Err(err) => json!({ "error": err.to_string() }),
        };
        output::print_json(&json!({ "faztctl": me, "daemon": status, "unit": unit }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["", "version", "commit", "details"]);
    table.add_row(vec![
        comfy_table::Cell::new("faztctl"),
        comfy_table::Cell::new(fazt_proto::FAZT_VERSION),
        comfy_table::Cell::new(fazt_proto::FAZT_COMMIT),
        comfy_table::Cell::new(format!("protocol {}", fazt_proto::PROTOCOL_VERSION)),
    ]);
    let health = if status.health == "ok" {
        colored("healthy", Color::Green)
    } else {
        colored(&status.health, Color::Red)
    };
    table.add_row(vec![
        comfy_table::Cell::new("faztd"),
        comfy_table::Cell::new(&status.version),
        comfy_table::Cell::new(&status.commit),
        health,
    ]);
    println!("{table}");
    println!();
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
    rows.add_row(vec![comfy_table::Cell::new("unit"), unit_cell(&unit)]);
    rows.add_row(vec![
        comfy_table::Cell::new("uptime"),
        comfy_table::Cell::new(output::duration(status.uptime_secs)),
    ]);
    rows.add_row(vec![comfy_table::Cell::new("domain"), domain]);
    rows.add_row(vec![
        comfy_table::Cell::new("listen"),
        comfy_table::Cell::new(&status.listen),
    ]);
    rows.add_row(vec![
        comfy_table::Cell::new("sites"),
        comfy_table::Cell::new(status.sites),
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
    if let Some(warning) = &status.domain_warning {
        eprintln!("warning: {warning}");
    }
    if status.version != fazt_proto::FAZT_VERSION {
        eprintln!(
            "note: faztctl is {} but faztd is {}; reinstall the older one so both match",
            fazt_proto::FAZT_VERSION,
            status.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `active (running), since 3m ago, 0 restarts, enabled; user unit faztd.service`.
fn unit_cell(unit: &Result<Option<fazt_proto::UnitStatus>>) -> comfy_table::Cell {
    match unit {
        Ok(None) => comfy_table::Cell::new("none (not started by systemd)"),
        Err(err) => colored(format!("unknown: {err}"), Color::Yellow),
        Ok(Some(u)) => {
            let since = if u.active_since_usec > 0 {
                format!(", since {}", output::ago(u.active_since_usec / 1_000_000))
            } else {
                String::new()
            };
            let text = format!(
                "{} ({}){since}, {} restart{}, {}; {} unit {}",
                u.active_state,
                u.sub_state,
                u.restarts,
                if u.restarts == 1 { "" } else { "s" },
                if u.unit_file_state.is_empty() {
                    "?"
                } else {
                    &u.unit_file_state
                },
                u.scope,
                u.unit
            );
            if u.active_state == "active" {
                colored(text, Color::Green)
            } else {
                colored(text, Color::Yellow)
            }
        }
    }
}
