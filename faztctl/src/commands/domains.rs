//! `faztctl domain add|rm|list`: custom domains, names of the user's own
//! that serve a site as well as its `NAME.DOMAIN`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Cell, Color};
use fazt_proto::{CertificateStatus, DomainInfo};

use super::daemon;
use crate::client;
use crate::output::{self, colored};

pub async fn add(socket: &Path, site: &str, domain: &str, json: bool) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let added = client::answer_added(
        d.client
            .domain_add(client::quick(), site.to_string(), domain.to_string())
            .await,
        "domain add",
    )?;
    if json {
        output::print_json(&added)?;
        return Ok(ExitCode::SUCCESS);
    }
    let info = &added.domain;
    if added.unchanged {
        println!("{} already serves {}", info.domain, info.site);
    } else {
        println!("{} now serves {}: {}", info.domain, info.site, info.url);
        println!("  point its DNS at this machine (an A and/or AAAA record) if you have not yet");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(socket: &Path, domain: &str) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let removed = client::answer_added(
        d.client
            .domain_remove(client::quick(), domain.to_string())
            .await,
        "domain rm",
    )?;
    println!("{} no longer serves {}", removed.domain, removed.site);
    Ok(ExitCode::SUCCESS)
}

pub async fn list(socket: &Path, site: Option<&str>, json: bool) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let domains = client::answer_added(
        d.client
            .domains(client::quick(), site.map(str::to_string))
            .await,
        "domain list",
    )?;
    if json {
        output::print_json(&domains)?;
        return Ok(ExitCode::SUCCESS);
    }
    if domains.is_empty() {
        match site {
            Some(site) => println!(
                "{site} has no custom domains. Add one with `faztctl domain add {site} example.org`."
            ),
            None => println!("No custom domains yet. Add one with `faztctl domain add SITE example.org`."),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["domain", "site", "url", "certificate"]);
    for info in &domains {
        table.add_row(row(info));
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

fn row(info: &DomainInfo) -> Vec<Cell> {
    vec![
        Cell::new(&info.domain),
        Cell::new(&info.site),
        colored(&info.url, Color::Cyan),
        certificate(info.certificate.as_ref()),
    ]
}

/// What a name's certificate cell says: its expiry and next renewal, or why
/// the last attempt failed.
fn certificate(cert: Option<&CertificateStatus>) -> Cell {
    let Some(cert) = cert else {
        return Cell::new("no HTTPS");
    };
    if let Some(error) = &cert.last_error {
        return colored(format!("error: {error}"), Color::Red);
    }
    match (cert.valid_until, cert.renew_at) {
        (Some(until), Some(renewal)) => Cell::new(format!(
            "valid until {} (renews {})",
            output::from_now(until),
            output::from_now(renewal)
        )),
        (Some(until), None) => Cell::new(format!("valid until {}", output::from_now(until))),
        _ => colored("not issued yet", Color::Yellow),
    }
}
