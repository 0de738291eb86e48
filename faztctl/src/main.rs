//! `faztctl`: the control-plane CLI for Fazt instances.
//!
//! Exit codes: 0 success, 1 the operation failed (or no daemon answered),
//! 2 the command line was wrong.

mod client;
mod commands;
mod output;
mod walk;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Operate Fazt instances: deploy sites, check status, roll back.
///
/// faztctl talks to the local faztd over its control socket
/// ($XDG_RUNTIME_DIR/fazt/faztd.sock). Every read command takes --json.
///
/// Examples:
///   faztctl deploy ./my-site            deploy a folder as site "my-site"
///   faztctl sites                       list the sites and their URLs
///   faztctl rollback my-site            go back to the previous version
///   faztctl status --json               everything about the daemon, for scripts
#[derive(Parser, Debug)]
#[command(name = "faztctl", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// The daemon's control socket [default: $XDG_RUNTIME_DIR/fazt/faztd.sock]
    #[arg(long, global = true, env = "FAZT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show versions, the daemon's health, domain, data and sites
    Status {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Deploy a folder as a site (only changed files are uploaded)
    ///
    /// Files ignored by .gitignore or .faztignore, dotfiles (except
    /// .well-known/), node_modules and symlinks are skipped. The new version
    /// goes live atomically; the previous one stays for `faztctl rollback`.
    /// A fazt.json at the top configures the site, e.g. {"spa": true}.
    Deploy {
        /// The folder to deploy
        dir: PathBuf,
        /// The site name [default: the folder's name]
        #[arg(long)]
        site: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// List the sites
    Sites {
        #[arg(long)]
        json: bool,
    },
    /// Manage one site
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Show a site's deployed versions
    History {
        site: String,
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier version live again (instant)
    Rollback {
        site: String,
        /// The version to make live [default: the one before the live one]
        version: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Read or change the instance's settings
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Restart the daemon through systemd and wait for the new one
    ///
    /// The daemon asks its systemd manager to restart its own unit; faztctl
    /// waits until a new daemon answers and prints its version. Only for a
    /// daemon installed with `faztd install`.
    Restart {
        #[arg(long)]
        json: bool,
    },
    /// Show logs: the daemon's own with --daemon
    ///
    /// These are the daemon's most recent records since it started (the
    /// same records go to journald: `journalctl --user -u faztd` has the
    /// whole history).
    Logs {
        /// The daemon's log (per-site logs come with functions)
        #[arg(long)]
        daemon: bool,
        /// How many lines, at most
        #[arg(long, short = 'n', default_value_t = 200)]
        lines: u32,
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// For example: faztctl completions bash > ~/.local/share/bash-completion/completions/faztctl
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
enum SiteCommand {
    /// Remove a site and all its versions
    Rm {
        name: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Show every setting (or one)
    Get {
        key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Change a setting
    Set { key: String, value: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "faztctl",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let socket = client::socket_path(cli.socket.as_deref())?;
    match cli.command {
        Command::Status { json } => commands::status::run(&socket, json).await,
        Command::Deploy { dir, site, json } => {
            commands::deploy::run(&socket, &dir, site, json).await
        }
        Command::Sites { json } => commands::sites::list(&socket, json).await,
        Command::Site {
            command: SiteCommand::Rm { name, yes },
        } => commands::sites::remove(&socket, &name, yes).await,
        Command::History { site, json } => commands::sites::history(&socket, &site, json).await,
        Command::Rollback {
            site,
            version,
            json,
        } => commands::sites::rollback(&socket, &site, version, json).await,
        Command::Config {
            command: ConfigCommand::Get { key, json },
        } => commands::config::get(&socket, key.as_deref(), json).await,
        Command::Config {
            command: ConfigCommand::Set { key, value },
        } => commands::config::set(&socket, &key, &value).await,
        Command::Restart { json } => commands::service::restart(&socket, json).await,
        Command::Logs {
            daemon,
            lines,
            json,
        } => {
            if !daemon {
                anyhow::bail!("per-site logs are not there yet: use `faztctl logs --daemon` for the daemon's log");
            }
            commands::service::daemon_logs(&socket, lines, json).await
        }
        Command::Completions { .. } => unreachable!("handled before the runtime starts"),
    }
}
