//! `faztctl sites`, `site rm`, `history`, `rollback`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use comfy_table::{Cell, Color};

use super::daemon;
use crate::client;
use crate::output::{self, colored};

pub async fn list(socket: &Path, json: bool) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let sites = client::answer(d.client.sites(client::quick()).await)?;
    if json {
        output::print_json(&sites)?;
        return Ok(ExitCode::SUCCESS);
    }
    if sites.is_empty() {
        println!("No sites yet. Deploy one with `faztctl deploy DIR`.");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["site", "version", "files", "size", "updated", "url"]);
    for s in &sites {
        table.add_row(vec![
            Cell::new(&s.name),
            Cell::new(format!(
                "{} ({} kept)",
                output::version(s.live_version),
                s.versions
            )),
            Cell::new(s.files),
            Cell::new(output::bytes(s.bytes)),
            Cell::new(output::ago(s.updated_at)),
            colored(
                &output::site_addresses(&s.url, s.local_url.as_deref()).0,
                Color::Cyan,
            ),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub async fn history(socket: &Path, site: &str, json: bool) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let versions = client::answer(d.client.history(client::quick(), site.to_string()).await)?;
    if json {
        output::print_json(&versions)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["version", "deployed", "files", "size", ""]);
    for v in &versions {
        table.add_row(vec![
            Cell::new(output::version(v.id)),
            Cell::new(output::ago(v.created_at)),
            Cell::new(v.files),
            Cell::new(output::bytes(v.bytes)),
            if v.live {
                colored("live", Color::Green)
            } else {
                Cell::new("")
            },
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(
    socket: &Path,
    site: &str,
    version: Option<u64>,
    json: bool,
) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let outcome = client::answer(
        d.client
            .rollback(client::quick(), site.to_string(), version)
            .await,
    )?;
    if json {
        output::print_json(&outcome)?;
    } else {
        // Naming a newer version is allowed (undoing a rollback): say so.
        let moved = if outcome.to > outcome.from {
            "moved forward"
        } else {
            "rolled back"
        };
        println!(
            "{} {moved}: {} -> {} is live at {}",
            outcome.site,
            output::version(outcome.from),
            output::version(outcome.to),
            output::site_addresses(&outcome.url, outcome.local_url.as_deref()).0
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(socket: &Path, name: &str, yes: bool) -> Result<ExitCode> {
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!("error: removing {name} deletes every version of it; pass --yes to confirm");
            return Ok(ExitCode::from(2));
        }
        print!("Remove site {name} and all its versions? Type its name to confirm: ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != name {
            bail!("not confirmed; {name} was left as it is");
        }
    }
    let d = daemon(socket).await?;
    client::answer(
        d.client
            .remove_site(client::quick(), name.to_string())
            .await,
    )?;
    println!("{name} removed");
    Ok(ExitCode::SUCCESS)
}
