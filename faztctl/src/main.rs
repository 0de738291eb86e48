//! `faztctl`: the control-plane CLI for Fazt instances.
//!
//! Exit codes: 0 success, 1 the operation failed (or no daemon answered),
//! 2 the command line was wrong.

mod args;
mod client;
mod commands;
mod output;
mod remotes;
mod target;
mod tunnel;
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
///   faztctl rollback my-site v5         make v5 live (as `faztctl history` lists it)
///   faztctl domain add my-site example.org   serve my-site at your own domain too
///   faztctl status --json               everything about the daemon, for scripts
///   faztctl @prod deploy ./my-site      the same against a remote, through ssh
///   faztctl deploy ./my-site --to prod,local   several instances at once
#[derive(Parser, Debug)]
#[command(name = "faztctl", version = fazt_proto::VERSION_LINE, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// The daemon's control socket [default: $XDG_RUNTIME_DIR/fazt/faztd.sock]
    #[arg(long, env = "FAZT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Run the command against a remote instance (see `faztctl remote`);
    /// `faztctl @NAME COMMAND` is the short form
    #[arg(long, global = true, value_name = "NAME")]
    remote: Option<String>,

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
    /// A fazt.json at the top configures the site, e.g. {"spa": true} or
    /// {"realtime": {"clientPublish": ["chat-*"]}}.
    Deploy {
        /// The folder to deploy
        #[arg(value_parser = args::folder)]
        dir: PathBuf,
        /// The site name [default: the folder's name]
        #[arg(long, value_parser = args::site_name)]
        site: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
        /// Make a new version even if nothing changed since the live one
        #[arg(long)]
        force: bool,
        /// Deploy to several instances at once: remote names and `local`,
        /// comma-separated (e.g. --to prod,staging,local)
        #[arg(
            long,
            value_name = "NAMES",
            value_delimiter = ',',
            conflicts_with = "remote"
        )]
        to: Option<Vec<String>>,
    },
    /// List the sites
    Sites {
        /// Print JSON instead of a table
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
        /// The site
        #[arg(value_parser = args::site_name)]
        site: String,
        /// Print JSON instead of a table (versions as numbers)
        #[arg(long)]
        json: bool,
    },
    /// Make another kept version live (instant)
    ///
    /// Without a version, goes back to the one before the live one. Any
    /// version `faztctl history` lists can be named, older or newer, as v5 or 5.
    Rollback {
        /// The site
        #[arg(value_parser = args::site_name)]
        site: String,
        /// The version to make live, e.g. v5 [default: the one before the live one]
        #[arg(value_parser = args::version)]
        version: Option<u64>,
        /// Print the result as JSON (versions as numbers)
        #[arg(long)]
        json: bool,
    },
    /// Show a site's function log (console output and errors), or the daemon's own with --daemon
    ///
    /// With --daemon: the daemon's most recent records since it started (the
    /// same records go to journald: `journalctl --user -u faztd` has the
    /// whole history).
    Logs {
        /// The site whose function log to show
        #[arg(required_unless_present = "daemon", value_parser = args::site_name)]
        site: Option<String>,
        /// The daemon's own log instead of a site's
        #[arg(long, conflicts_with = "site")]
        daemon: bool,
        /// Keep printing new lines as they arrive (site logs only)
        #[arg(long, short)]
        follow: bool,
        /// How many recent lines to show first
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: u32,
        /// One JSON object per line: ts_ms, level, message (and seq for a site)
        #[arg(long)]
        json: bool,
    },
    /// Serve a site at a domain of your own (example.org), besides NAME.DOMAIN
    ///
    /// First point the name's DNS at this machine: an A record (IPv4) and/or
    /// an AAAA record (IPv6) for example.org holding this machine's public
    /// address. Then tell faztd which site it serves:
    ///
    ///   faztctl domain add blog example.org       example.org serves site blog
    ///   faztctl domain add blog www.example.org   a site may have several names
    ///   faztctl domain list                       every custom domain, its site and URL
    ///   faztctl domain rm example.org             stop serving example.org
    ///
    /// A name serves one site at most; removing a site removes its names.
    /// The instance's own domain and NAME.DOMAIN route already and cannot be
    /// added. Browsers ask port 80 (443 for HTTPS): faztd listens there, or a
    /// proxy in front of it forwards to it.
    #[command(verbatim_doc_comment)]
    Domain {
        #[command(subcommand)]
        command: DomainCommand,
    },
    /// Manage a site's environment, read by functions with fazt.env.get(NAME)
    Env {
        #[command(subcommand)]
        command: EnvCommand,
    },
    /// Read or change the instance's settings
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Publish a message on a site's realtime channel (/_ws)
    ///
    /// The message is any JSON value; subscribers receive it as `data`.
    /// For example: faztctl publish demo news '{"title":"hello"}'
    Publish {
        /// The site whose channel it is
        #[arg(value_parser = args::site_name)]
        site: String,
        /// The channel, e.g. news or chat-lobby
        channel: String,
        /// The message, as JSON (quote text: '"hello"')
        #[arg(value_name = "JSON", value_parser = args::json_text)]
        json_data: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Replace the daemon's binary and restart it (locally or @NAME)
    ///
    /// Sends a faztd binary (default: the one next to faztctl, else on PATH);
    /// the daemon checks that it runs and reports a version, swaps it in
    /// atomically and restarts through systemd. A binary that fails the check
    /// is refused and the running daemon is left as it was.
    Upgrade {
        /// The faztd binary to install
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Manage the remote instances faztctl can reach through ssh
    Remote {
        #[command(subcommand)]
        command: RemoteCommand,
    },
    /// Restart the daemon through systemd and wait for the new one
    ///
    /// The daemon asks its systemd manager to restart its own unit; faztctl
    /// waits until a new daemon answers and prints its version. Only for a
    /// daemon installed with `faztd install`.
    Restart {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// For example: faztctl completions bash > ~/.local/share/bash-completion/completions/faztctl
    Completions {
        /// The shell to print the script for
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum RemoteCommand {
    /// Add (or replace) a remote: faztctl remote add prod deploy@example.com
    Add {
        /// A short name for it, used as @NAME (letters, digits, - and _)
        #[arg(value_parser = args::remote_name)]
        name: String,
        /// `[user@]host`, or a Host alias from ~/.ssh/config
        host: String,
        /// The ssh port [default: ssh's]
        #[arg(long)]
        port: Option<u16>,
        /// The daemon's control socket there [default: discovered]
        #[arg(long = "socket", id = "remote_socket", value_name = "PATH")]
        socket: Option<String>,
    },
    /// List the remotes
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Forget a remote
    Rm {
        /// The remote to forget
        name: String,
    },
    /// Send commands without @NAME to this remote (`local` to undo), like
    /// `kubectl config use-context`; @local always means this machine
    Default {
        /// The remote, or `local` for this machine
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum SiteCommand {
    /// Remove a site and all its versions
    Rm {
        /// The site to remove
        #[arg(value_parser = args::site_name)]
        name: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
enum DomainCommand {
    /// Serve SITE at DOMAIN too: faztctl domain add blog example.org
    Add {
        /// The site to serve
        #[arg(value_parser = args::site_name)]
        site: String,
        /// The name, e.g. example.org (its DNS should point at this machine)
        #[arg(value_parser = args::domain_name)]
        domain: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Stop serving a custom domain: faztctl domain rm example.org
    Rm {
        /// The name to remove
        #[arg(value_parser = args::domain_name)]
        domain: String,
    },
    /// List the custom domains, their sites, URLs and certificates
    List {
        /// Only this site's domains
        #[arg(value_parser = args::site_name)]
        site: Option<String>,
        /// Print JSON: domain, site, added_at, url, certificate (null without HTTPS)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum EnvCommand {
    /// Show a site's variables (values hidden unless --show)
    List {
        /// The site
        #[arg(value_parser = args::site_name)]
        site: String,
        /// Print the values too (they are often secrets)
        #[arg(long, visible_alias = "reveal")]
        show: bool,
        /// Print JSON: an object of names and values (hidden unless --show)
        #[arg(long)]
        json: bool,
    },
    /// Set variables: faztctl env set SITE NAME=VALUE [NAME=VALUE...]
    Set {
        /// The site
        #[arg(value_parser = args::site_name)]
        site: String,
        /// What to set; a NAME is a letter or _, then letters, digits and _
        #[arg(required = true, value_name = "NAME=VALUE", value_parser = args::assignment)]
        assignments: Vec<args::Assignment>,
    },
    /// Remove variables
    Unset {
        /// The site
        #[arg(value_parser = args::site_name)]
        site: String,
        /// The variables to remove
        #[arg(required = true, value_name = "NAME", value_parser = args::env_name)]
        names: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Show every setting (or one)
    Get {
        /// The setting to show [default: all of them]
        key: Option<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Change a setting
    Set {
        /// The setting (`faztctl config get` lists them)
        key: String,
        /// Its new value
        value: String,
    },
}

/// `faztctl @NAME ...` is `faztctl --remote NAME ...`.
fn expand_at_remote(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut expanded = false;
    for arg in args {
        match arg.to_str().and_then(|a| a.strip_prefix('@')) {
            Some(name) if !expanded && !out.is_empty() && !name.is_empty() => {
                out.push("--remote".into());
                out.push(name.into());
                expanded = true;
            }
            _ => out.push(arg),
        }
    }
    out
}

/// Like other Unix tools, end quietly when the reader of our output goes away
/// (`faztctl logs -f | head`), as a process killed by SIGPIPE does. Only for
/// stdout: SIGPIPE itself stays ignored (Rust's default), so a daemon that
/// dies mid-upload is a "connection lost" error with exit 1, not a silent
/// death by signal.
fn end_quietly_on_a_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        // faztctl's socket errors are returned, never panics: a broken pipe
        // in a panic is stdout's (println!, or clap's completions writer).
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            // SAFETY: the process is ending; nothing else changes signal dispositions.
            unsafe {
                let _ = nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGPIPE,
                    nix::sys::signal::SigHandler::SigDfl,
                );
            }
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGPIPE);
        }
        default_hook(info);
    }));
}

fn main() -> ExitCode {
    end_quietly_on_a_closed_stdout();
    let cli = Cli::parse_from(expand_at_remote(std::env::args_os()));
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
            if err.downcast_ref::<args::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need no daemon.
    let command = match cli.command {
        Command::Remote { command } => return commands::remote::run(command_remote(command)),
        Command::Deploy {
            dir,
            site,
            json,
            force,
            to: Some(to),
        } => return commands::deploy::run_many(&dir, site, &to, force, json).await,
        Command::Logs {
            daemon: true,
            follow: true,
            ..
        } => {
            return Err(args::UsageError(
                "--follow works for a site's log only; follow the daemon's with `journalctl --user -u faztd -f`"
                    .to_string(),
            )
            .into())
        }
        other => other,
    };
    // Everything else talks to one daemon: local, or a remote through a tunnel.
    if cli.socket.is_some() && cli.remote.is_some() {
        eprintln!("error: --socket and --remote (@NAME) cannot be used together");
        return Ok(ExitCode::from(2));
    }
    let remote = match cli.remote.as_deref() {
        Some("local") => None,
        Some(name) => Some(name.to_string()),
        // An explicit socket means the local daemon; else the default remote, if set.
        None if cli.socket.is_none() => remotes::Remotes::load()?.default,
        None => None,
    };
    let cli_remote = remote;
    output::set_target_is_local(cli_remote.is_none());
    let target = target::Target::open(cli.socket.as_deref(), cli_remote.as_deref()).await?;
    let socket = target.socket().to_path_buf();
    let code = dispatch(command, &socket, cli_remote.as_deref()).await;
    target.close().await;
    code
}

fn command_remote(command: RemoteCommand) -> commands::remote::Action {
    use commands::remote::Action;
    match command {
        RemoteCommand::Add {
            name,
            host,
            port,
            socket,
        } => Action::Add {
            name,
            host,
            port,
            socket,
        },
        RemoteCommand::List { json } => Action::List { json },
        RemoteCommand::Rm { name } => Action::Remove { name },
        RemoteCommand::Default { name } => Action::Default { name },
    }
}

async fn dispatch(
    command: Command,
    socket: &std::path::Path,
    remote: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let socket = socket.to_path_buf();
    match command {
        Command::Status { json } => commands::status::run(&socket, remote, json).await,
        Command::Deploy {
            dir,
            site,
            json,
            force,
            ..
        } => commands::deploy::run(&socket, &dir, site, force, json).await,
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
        Command::Upgrade { binary, json } => commands::upgrade::run(&socket, binary, json).await,
        Command::Logs {
            daemon: true,
            lines,
            json,
            ..
        } => commands::service::daemon_logs(&socket, lines, json).await,
        Command::Logs {
            site: Some(site),
            follow,
            lines,
            json,
            ..
        } => commands::functions::logs(&socket, &site, follow, lines, json).await,
        Command::Logs { .. } => {
            eprintln!(
                "error: name a site (faztctl logs SITE) or pass --daemon for the daemon's own log"
            );
            Ok(ExitCode::from(2))
        }
        Command::Domain {
            command: DomainCommand::Add { site, domain, json },
        } => commands::domains::add(&socket, &site, &domain, json).await,
        Command::Domain {
            command: DomainCommand::Rm { domain },
        } => commands::domains::remove(&socket, &domain).await,
        Command::Domain {
            command: DomainCommand::List { site, json },
        } => commands::domains::list(&socket, site.as_deref(), json).await,
        Command::Env {
            command: EnvCommand::List { site, show, json },
        } => commands::functions::env_list(&socket, &site, show, json).await,
        Command::Env {
            command: EnvCommand::Set { site, assignments },
        } => commands::functions::env_set(&socket, &site, &assignments).await,
        Command::Env {
            command: EnvCommand::Unset { site, names },
        } => commands::functions::env_unset(&socket, &site, &names).await,
        Command::Publish {
            site,
            channel,
            json_data,
            json,
        } => commands::publish::run(&socket, &site, &channel, &json_data, json).await,
        Command::Completions { .. } | Command::Remote { .. } => unreachable!("handled before"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `faztctl CMD --help` explains every argument of every command.
    #[test]
    fn every_argument_has_help() {
        fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && cmd.get_long_about().is_none() {
                missing.push(format!("{path} (the command itself)"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    check(sub, &format!("{path} {}", sub.get_name()), missing);
                }
            }
        }
        let mut missing = Vec::new();
        let mut cli = Cli::command();
        cli.build();
        check(&cli, "faztctl", &mut missing);
        assert!(missing.is_empty(), "no help for: {missing:?}");
    }

    #[test]
    fn at_name_becomes_remote() {
        let args = expand_at_remote(
            ["faztctl", "@prod", "deploy", "@x"]
                .iter()
                .map(|s| s.into()),
        );
        assert_eq!(args, ["faztctl", "--remote", "prod", "deploy", "@x"]);
    }
}
