//! One module per command family; each connects, asks, and prints.

pub mod config;
pub mod deploy;
pub mod domains;
pub mod functions;
pub mod publish;
pub mod remote;
pub mod service;
pub mod sites;
pub mod status;
pub mod upgrade;

use std::path::Path;

use anyhow::Result;

use crate::client::{self, Daemon};

/// Connects or fails with the "not running" explanation.
pub async fn daemon(socket: &Path) -> Result<Daemon> {
    Ok(client::connect(socket).await?)
}
