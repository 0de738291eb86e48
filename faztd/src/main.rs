//! The `faztd` binary: parses the command line and runs the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use faztd::daemon::{self, DaemonOptions, HttpsFlags};
use faztd::systemd::install::{self, InstallOptions, UninstallOptions};
use faztd::systemd::{notify, Scope};
use faztd::tls::{AcmeChallenge, HttpsMode};

/// The Fazt daemon: serves your sites from one database file.
///
/// Run it with no arguments to start an instance in the foreground: it
/// creates its database under $XDG_DATA_HOME/fazt (first start seeds a
/// welcome site and a demo), listens on port 8080 and prints the URLs.
///
/// `faztd install` makes it a systemd service instead (see `faztd install --help`).
#[derive(Parser, Debug)]
// A flag given twice takes its last value (the tests start faztd with a
// default `--listen` and may give their own after it).
#[command(name = "faztd", version = fazt_proto::VERSION_LINE, about, long_about, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Where the database lives [default: $XDG_DATA_HOME/fazt]
    #[arg(long, global = true, env = "FAZT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The control socket faztctl talks to [default: $XDG_RUNTIME_DIR/fazt/faztd.sock]
    #[arg(long, env = "FAZT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Address and port to serve HTTP on, for this run [default: stored, else 0.0.0.0:8080]
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,

    /// The domain sites live under (NAME.DOMAIN), for this run [default: stored if it
    /// points at this machine, else the detected local IP]
    #[arg(long, global = true, value_name = "DOMAIN")]
    domain: Option<String>,

    /// HTTPS with certificates from an ACME CA, for this run: off, on, or auto (on
    /// only when the domain is a public DNS name) [default: stored, else off]
    #[arg(long, value_name = "off|on|auto", value_parser = HttpsMode::parse)]
    https: Option<HttpsMode>,

    /// Address and port to serve HTTPS on, for this run [default: stored, else 0.0.0.0:443]
    #[arg(long, value_name = "ADDR:PORT")]
    listen_https: Option<SocketAddr>,

    /// The ACME directory URL, for this run [default: stored, else Let's Encrypt]
    #[arg(long, value_name = "URL")]
    acme_directory: Option<String>,

    /// A PEM root certificate to trust for the ACME server's own HTTPS (a private CA)
    #[arg(long, value_name = "PEM")]
    acme_root: Option<PathBuf>,

    /// The contact e-mail given to the ACME CA, for this run [default: stored, else none]
    #[arg(long, value_name = "ADDRESS")]
    acme_email: Option<String>,

    /// How the CA checks names, for this run: tls-alpn-01 or http-01 [default: stored,
    /// else tls-alpn-01]
    #[arg(long, value_name = "KIND", value_parser = AcmeChallenge::parse)]
    acme_challenge: Option<AcmeChallenge>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Install faztd as a systemd service and start it (over D-Bus, no sudo for --user)
    ///
    /// --user (the default) writes ~/.config/systemd/user/faztd.service, asks
    /// your systemd user manager to reload, enable and start it, and asks
    /// logind to enable linger so it starts at boot without a login.
    /// --system (as root) writes a hardened /etc/systemd/system/faztd.service
    /// that runs as its own user with its data in /var/lib/fazt.
    /// --domain and --listen are written into the unit. Running it again
    /// changes nothing unless the options changed.
    Install {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Stop, disable and remove the systemd service (the data is kept)
    Uninstall {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Also delete the instance's data directory (every site, for good)
        #[arg(long)]
        purge: bool,
    },
}

#[derive(clap::Args, Debug)]
#[group(multiple = false)]
struct ScopeArgs {
    /// A user service, managed with `systemctl --user` (the default)
    #[arg(long)]
    user: bool,
    /// A system service, managed with `systemctl` (needs root)
    #[arg(long)]
    system: bool,
}

impl ScopeArgs {
    fn scope(&self) -> Scope {
        if self.system {
            Scope::System
        } else {
            Scope::User
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(command) = &cli.command {
        return manage_service(command, &cli);
    }
    faztd::logging::init();
    let Some(data_dir) = cli.data_dir.or_else(fazt_proto::paths::default_data_dir) else {
        eprintln!(
            "error: cannot find a data directory: set HOME, XDG_DATA_HOME or pass --data-dir"
        );
        return ExitCode::from(2);
    };
    let Some(socket) = cli.socket.or_else(fazt_proto::paths::default_socket_path) else {
        eprintln!("error: cannot find a place for the control socket: set XDG_RUNTIME_DIR or pass --socket");
        return ExitCode::from(2);
    };
    let options = DaemonOptions {
        socket,
        data_dir,
        listen: cli.listen,
        domain: cli.domain,
        https: HttpsFlags {
            mode: cli.https,
            listen_https: cli.listen_https,
            acme_directory: cli.acme_directory,
            acme_root: cli.acme_root,
            acme_email: cli.acme_email,
            acme_challenge: cli.acme_challenge,
        },
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let shutdown = daemon::shutdown_signal().context("cannot install the signal handlers")?;
        daemon::run(options, shutdown).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            notify::failed(&format!("{err:#}"));
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `faztd install` / `faztd uninstall`.
fn manage_service(command: &Command, cli: &Cli) -> ExitCode {
    let data_dir = cli
        .data_dir
        .clone()
        .or_else(fazt_proto::paths::default_data_dir);
    let Some(data_dir) = data_dir else {
        eprintln!(
            "error: cannot find a data directory: set HOME, XDG_DATA_HOME or pass --data-dir"
        );
        return ExitCode::from(2);
    };
    // systemd runs the unit with no working directory of ours: the paths it
    // gets must be absolute.
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Install { scope } => {
            let binary = match std::env::current_exe().and_then(|p| p.canonicalize()) {
                Ok(path) => path,
                Err(err) => {
                    eprintln!("error: cannot find the faztd binary being run: {err}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(install::install(&InstallOptions {
                scope: scope.scope(),
                binary,
                data_dir,
                domain: cli.domain.clone(),
                listen: cli.listen,
            }))
        }
        Command::Uninstall { scope, purge } => {
            runtime.block_on(install::uninstall(&UninstallOptions {
                scope: scope.scope(),
                data_dir,
                purge: *purge,
            }))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
