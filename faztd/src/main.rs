//! The `faztd` binary: parses the command line and runs the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use faztd::daemon::{self, DaemonOptions};

/// The Fazt daemon: serves your sites from one database file.
///
/// Run it with no arguments to start an instance in the foreground: it
/// creates its database under $XDG_DATA_HOME/fazt (first start seeds a
/// welcome site and a demo), listens on port 8080 and prints the URLs.
#[derive(Parser, Debug)]
#[command(name = "faztd", version = fazt_proto::VERSION_LINE, about, long_about)]
struct Cli {
    /// Where the database lives [default: $XDG_DATA_HOME/fazt]
    #[arg(long, env = "FAZT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The control socket faztctl talks to [default: $XDG_RUNTIME_DIR/fazt/faztd.sock]
    #[arg(long, env = "FAZT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Address and port to serve HTTP on, for this run [default: stored, else 0.0.0.0:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,

    /// The domain sites live under (NAME.DOMAIN), for this run [default: stored if it
    /// points at this machine, else the detected local IP]
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(options, daemon::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
