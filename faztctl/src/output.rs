//! Output for people and for scripts: tables that use colour and box
//! drawing on a terminal and plain columns on a pipe, and JSON.

use std::io::IsTerminal;

use comfy_table::{presets, Attribute, Cell, Color, ContentArrangement, Table};
use serde::Serialize;

/// Whether stdout is a terminal that wants colour (`NO_COLOR` turns it off).
pub fn fancy() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A table with a header row, styled for where it is going.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    if fancy() {
        table
            .load_preset(presets::UTF8_HORIZONTAL_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic);
        table.set_header(
            header
                .iter()
                .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
        );
    } else {
        table.load_preset(presets::NOTHING).force_no_tty();
        table.set_header(header.iter().map(Cell::new));
    }
    table
}

/// A cell in a colour (plain on a pipe).
pub fn colored(text: impl ToString, color: Color) -> Cell {
    Cell::new(text.to_string()).fg(color)
}

pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `1 file`, `0 files`, `2 files`: a count with its noun (regular plurals only).
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A site version as people see it everywhere: `v5` (JSON keeps the number).
pub fn version(id: u64) -> String {
    format!("v{id}")
}

pub fn bytes(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// "3 min ago"-style age of a unix timestamp.
pub fn ago(unix_secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    duration(now.saturating_sub(unix_secs)) + " ago"
}

/// How far a unix timestamp is from now: `in 5d 2h`, or `3m ago`.
pub fn from_now(unix_secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if unix_secs >= now {
        format!("in {}", duration(unix_secs - now))
    } else {
        ago(unix_secs)
    }
}

/// A short human duration: `42s`, `5m`, `3h 2m`, `4d 1h`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// Whether this run talks to the daemon on this machine (not a remote
/// through SSH): then a site's `NAME.localhost` address works here.
static TARGET_IS_LOCAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

pub fn set_target_is_local(local: bool) {
    TARGET_IS_LOCAL.store(local, std::sync::atomic::Ordering::Relaxed);
}

/// A site's address that works from where the user is, and the other one
/// (for other machines) when it differs.
pub fn site_addresses(url: &str, local_url: Option<&str>) -> (String, Option<String>) {
    let local = TARGET_IS_LOCAL.load(std::sync::atomic::Ordering::Relaxed);
    match local_url {
        Some(here) if local && here != url => (here.to_string(), Some(url.to_string())),
        _ => (url.to_string(), None),
    }
}

/// The address lines printed under a deploy or rollback.
pub fn print_site_addresses(url: &str, local_url: Option<&str>) {
    let (here, elsewhere) = site_addresses(url, local_url);
    println!("  {here}");
    if let Some(elsewhere) = elsewhere {
        println!("  {elsewhere}   (from other machines)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(0u64, "blob"), "0 blobs");
        assert_eq!(count(1u64, "blob"), "1 blob");
        assert_eq!(count(2u32, "file"), "2 files");
    }
}
