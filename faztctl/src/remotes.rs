//! The remotes faztctl knows: `$XDG_CONFIG_HOME/fazt/remotes.toml`.
//!
//! A human-editable file, written atomically (a temporary file renamed over
//! the old one) so an interrupted write never leaves half a config.
//!
//! ```toml
//! default = "prod"
//!
//! [remotes.prod]
//! host = "deploy@example.com"
//! port = 22
//! socket = "/run/fazt/faztd.sock"   # optional: discovered when absent
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Remotes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub remotes: BTreeMap<String, Remote>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Remote {
    /// `[user@]host`, as given to ssh (so `~/.ssh/config` aliases work).
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The daemon's control socket on that machine; discovered when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
}

/// Where the file lives.
pub fn path() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("cannot find the config directory: set HOME or XDG_CONFIG_HOME")?;
    Ok(base.join("fazt/remotes.toml"))
}

/// Names are short labels: letters, digits, `-` and `_`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name != "local";
    if !ok {
        bail!("{name:?} is not a usable remote name: use letters, digits, - and _ (and not \"local\")");
    }
    Ok(())
}

impl Remotes {
    pub fn load() -> Result<Remotes> {
        let path = path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is not valid: fix or remove it", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Remotes::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self) -> Result<()> {
        let path = path()?;
        let dir = path.parent().expect("the path has a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let text = format!(
            "# Fazt remotes, used by `faztctl @NAME ...`. Edit freely; `faztctl remote --help` explains.\n\n{}",
            toml::to_string_pretty(self)?
        );
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(text.as_bytes())?;
        file.as_file().sync_all()?;
        file.persist(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Remote> {
        self.remotes.get(name).with_context(|| {
            let known: Vec<&str> = self.remotes.keys().map(String::as_str).collect();
            if known.is_empty() {
                format!("there is no remote named {name}: add one with `faztctl remote add {name} user@host`")
            } else {
                format!("there is no remote named {name} (known: {})", known.join(", "))
            }
        })
    }
}
