//! `faztctl`: the control-plane CLI for Fazt instances.

use clap::Parser;

/// Operate Fazt instances: deploy sites, check status, roll back.
#[derive(Parser)]
#[command(name = "faztctl", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    println!(
        "faztctl {} (protocol {}): the control plane is not built yet; run `faztd` to serve sites.",
        fazt_proto::FAZT_VERSION,
        fazt_proto::PROTOCOL_VERSION
    );
}
