//! The daemon a command talks to: the local one, or a remote one reached
//! through an SSH tunnel that lives exactly as long as the command.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::client;
use crate::remotes::Remotes;
use crate::tunnel::Tunnel;

pub struct Target {
    socket: PathBuf,
    tunnel: Option<Tunnel>,
}

impl Target {
    pub async fn open(socket: Option<&Path>, remote: Option<&str>) -> Result<Target> {
        match remote {
            None => Ok(Target {
                socket: client::socket_path(socket)?,
                tunnel: None,
            }),
            Some(name) => {
                let remote = Remotes::load()?.get(name)?.clone();
                let tunnel = tokio::task::spawn_blocking(move || Tunnel::open(&remote)).await??;
                Ok(Target {
                    socket: tunnel.socket().to_path_buf(),
                    tunnel: Some(tunnel),
                })
            }
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Tears the tunnel down (ssh stopped, its socket directory removed).
    pub async fn close(self) {
        if let Some(tunnel) = self.tunnel {
            let _ = tokio::task::spawn_blocking(move || drop(tunnel)).await;
        }
    }
}
