//! `faztctl config get|set`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use comfy_table::Cell;

use super::daemon;
use crate::client;
use crate::output;

pub async fn get(socket: &Path, key: Option<&str>, json: bool) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let mut entries = client::answer(d.client.config_get(client::quick()).await)?;
    if let Some(key) = key {
        entries.retain(|e| e.key == key);
        if entries.is_empty() {
            bail!("there is no setting {key:?} (run `faztctl config get` to see them all)");
        }
    }
    if json {
        output::print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&["setting", "value", "", "what it does"]);
    for e in &entries {
        let origin = if e.default { "default" } else { "stored" };
        table.add_row(vec![
            Cell::new(&e.key),
            Cell::new(&e.value),
            Cell::new(origin),
            Cell::new(&e.help),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub async fn set(socket: &Path, key: &str, value: &str) -> Result<ExitCode> {
    let d = daemon(socket).await?;
    let entry = client::answer(
        d.client
            .config_set(client::quick(), key.to_string(), value.to_string())
            .await,
    )?;
    println!("{} = {}", entry.key, entry.value);
    Ok(ExitCode::SUCCESS)
}
