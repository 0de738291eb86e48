//! `faztctl logs` and `faztctl env`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use comfy_table::{Cell, Color};
use fazt_proto::LogLine;

use super::daemon;
use crate::args::Assignment;
use crate::client;
use crate::output::{self, colored};

/// How long one follow poll may wait on the daemon.
const FOLLOW_WAIT_MS: u32 = 20_000;

pub async fn logs(
    socket: &Path,
    site: &str,
    follow: bool,
    lines: u32,
    json: bool,
) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let first = client::answer(
        d.client
            .logs(client::quick(), site.to_string(), None, lines, 0)
            .await,
    )?;
    let mut last = first.last().map(|l| l.seq).unwrap_or(0);
    for line in &first {
        print_line(line, json)?;
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let ctx = client::context(Duration::from_millis(FOLLOW_WAIT_MS as u64 + 10_000));
        let batch = client::answer(
            d.client
                .logs(ctx, site.to_string(), Some(last), 1000, FOLLOW_WAIT_MS)
                .await,
        )?;
        for line in &batch {
            print_line(line, json)?;
            last = line.seq;
        }
    }
}

/// A function's message as it is safe to show on a terminal: control
/// characters (ESC, BEL, CR, ...) become visible escapes, so a function
/// cannot move the cursor, rewrite earlier lines or retitle the window, and
/// an embedded newline continues on an indented line, so it cannot pass for
/// a log line of its own.
fn for_terminal(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '\n' => out.push_str("\n    | "),
            '\t' => out.push('\t'),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

fn print_line(line: &LogLine, json: bool) -> Result<()> {
    if json {
        // The same keys as `logs --daemon --json` (which has no seq).
        println!(
            "{}",
            serde_json::json!({ "seq": line.seq, "ts_ms": line.ts_ms, "level": line.level, "message": line.message })
        );
        return Ok(());
    }
    let secs = (line.ts_ms / 1000) as i64;
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        line.ts_ms % 1000
    );
    let level = format!("{:<5}", line.level.to_uppercase());
    let level = if output::fancy() {
        let color = match line.level.as_str() {
            "error" => "31",
            "warn" => "33",
            "debug" => "2",
            _ => "32",
        };
        format!("\x1b[{color}m{level}\x1b[0m")
    } else {
        level
    };
    println!("{time} {level} {}", for_terminal(&line.message));
    Ok(())
}

/// What `env list` prints instead of a value: the same for every value, so
/// not even its length shows.
const HIDDEN: &str = "********";

pub async fn env_list(socket: &Path, site: &str, show: bool, json: bool) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let vars = client::answer(d.client.env_list(client::quick(), site.to_string()).await)?;
    let shown = |v: &str| {
        if show {
            v.to_string()
        } else {
            HIDDEN.to_string()
        }
    };
    if json {
        let map: serde_json::Map<String, serde_json::Value> = vars
            .iter()
            .map(|v| (v.name.clone(), serde_json::Value::String(shown(&v.value))))
            .collect();
        output::print_json(&map)?;
        return Ok(ExitCode::SUCCESS);
    }
    if vars.is_empty() {
        println!("{site} has no environment variables. Set one with `faztctl env set {site} NAME=VALUE`.");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["name", "value"]);
    for v in &vars {
        table.add_row(vec![
            Cell::new(&v.name),
            colored(shown(&v.value), Color::DarkGrey),
        ]);
    }
    println!("{table}");
    if !show {
        eprintln!("(values hidden; --show prints them)");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn env_set(socket: &Path, site: &str, assignments: &[Assignment]) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    for Assignment { name, value } in assignments {
        client::answer(
            d.client
                .env_set(
                    client::quick(),
                    site.to_string(),
                    name.clone(),
                    value.clone(),
                )
                .await,
        )?;
        println!("{site}: {name} set");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn env_unset(socket: &Path, site: &str, names: &[String]) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    for name in names {
        let existed = client::answer(
            d.client
                .env_unset(client::quick(), site.to_string(), name.clone())
                .await,
        )?;
        if existed {
            println!("{site}: {name} unset");
        } else {
            println!("{site}: {name} was not set");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(for_terminal("plain\ttext"), "plain\ttext");
        assert_eq!(for_terminal("\u{1b}[2Jgone"), "\\u{1b}[2Jgone");
        assert_eq!(for_terminal("ding\u{7}"), "ding\\u{7}");
        assert_eq!(for_terminal("fake\rline"), "fake\\rline");
        assert_eq!(for_terminal("one\ntwo"), "one\n    | two");
        assert_eq!(for_terminal("\u{9b}31m"), "\\u{9b}31m");
    }
}
