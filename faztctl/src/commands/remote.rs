//! `faztctl remote add|list|rm|default`.

use std::process::ExitCode;

use anyhow::Result;
use comfy_table::Cell;

use crate::args::UsageError;
use crate::output;
use crate::remotes::{self, Remote, Remotes};

pub enum Action {
    Add {
        name: String,
        host: String,
        port: Option<u16>,
        socket: Option<String>,
    },
    List {
        json: bool,
    },
    Remove {
        name: String,
    },
    Default {
        name: String,
    },
}

pub fn run(action: Action) -> Result<ExitCode> {
    let mut all = Remotes::load()?;
    match action {
        Action::Add {
            name,
            host,
            port,
            socket,
        } => {
            remotes::check_name(&name)?;
            if host.trim().is_empty() || host.starts_with('-') || host.contains(char::is_whitespace)
            {
                return Err(UsageError(format!("{host:?} is not a host: give [user@]host")).into());
            }
            if let Some(socket) = &socket {
                if !socket.starts_with('/') {
                    return Err(UsageError(format!(
                        "the socket path must be absolute, not {socket:?}"
                    ))
                    .into());
                }
            }
            let replaced = all
                .remotes
                .insert(
                    name.clone(),
                    Remote {
                        host: host.clone(),
                        port,
                        socket,
                    },
                )
                .is_some();
            all.save()?;
            let verb = if replaced { "updated" } else { "added" };
            println!("remote {name} {verb}: {host}. Try `faztctl @{name} status`.");
        }
        Action::List { json } => {
            if json {
                output::print_json(&all)?;
                return Ok(ExitCode::SUCCESS);
            }
            if all.remotes.is_empty() {
                println!("No remotes yet. Add one with `faztctl remote add NAME user@host`.");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = output::table(&["name", "host", "port", "socket", ""]);
            for (name, r) in &all.remotes {
                table.add_row(vec![
                    Cell::new(name),
                    Cell::new(&r.host),
                    Cell::new(
                        r.port
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "ssh default".into()),
                    ),
                    Cell::new(r.socket.clone().unwrap_or_else(|| "discovered".into())),
                    Cell::new(if all.default.as_deref() == Some(name.as_str()) {
                        "default"
                    } else {
                        ""
                    }),
                ]);
            }
            println!("{table}");
        }
        Action::Remove { name } => {
            all.get(&name)?;
            all.remotes.remove(&name);
            if all.default.as_deref() == Some(name.as_str()) {
                all.default = None;
            }
            all.save()?;
            println!("remote {name} removed");
        }
        Action::Default { name } => {
            if name == "local" {
                all.default = None;
                all.save()?;
                println!("commands go to the local faztd again");
            } else {
                all.get(&name)?;
                all.default = Some(name.clone());
                all.save()?;
                println!("commands without @NAME now go to {name}; `faztctl remote default local` undoes it");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
