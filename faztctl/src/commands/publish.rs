//! `faztctl publish SITE CHANNEL JSON`: send a message to a site's realtime
//! channel, as a function would.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::daemon;
use crate::client;
use crate::output;

pub async fn run(
    socket: &Path,
    site: &str,
    channel: &str,
    data: &str,
    json: bool,
) -> Result<ExitCode> {
    // Checked here too, so a shell-quoting slip is explained before connecting.
    let _: serde_json::Value = serde_json::from_str(data).with_context(|| {
        format!("the message {data:?} is not JSON; quote text as JSON, e.g. '\"hello\"' or '{{\"n\":1}}'")
    })?;
    let d = daemon(socket).await?;
    let outcome = client::answer(
        d.client
            .publish(
                client::quick(),
                site.to_string(),
                channel.to_string(),
                data.to_string(),
            )
            .await,
    )?;
    if json {
        output::print_json(&outcome)?;
    } else {
        println!(
            "published on {}/{} as id {} to {} subscriber{}",
            outcome.site,
            outcome.channel,
            outcome.id,
            outcome.subscribers,
            if outcome.subscribers == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
