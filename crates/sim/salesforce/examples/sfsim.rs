//! Runs the simulator on its own, without building the whole `crossdock` binary:
//! `cargo run -p crossdock-sim-salesforce --example sfsim -- --port 8443`
//! (same flags as `crossdock sim salesforce`).

use clap::Parser;

#[derive(Parser)]
struct Cmd {
    #[command(flatten)]
    args: crossdock_sim_salesforce::cli::Args,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    crossdock_sim_salesforce::cli::run(Cmd::parse().args).await
}
