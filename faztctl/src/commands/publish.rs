//! `faztctl publish SITE CHANNEL JSON`: send a message to a site's realtime
//! channel, as a function would.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

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
            "published on {}/{} as id {} to {}",
            outcome.site,
            outcome.channel,
            outcome.id,
            output::count(outcome.subscribers, "subscriber")
        );
    }
    Ok(ExitCode::SUCCESS)
}
