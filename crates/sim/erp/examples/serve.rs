//! Runs the ERP simulator on its own, with the same flags as `crossdock sim erp`:
//! `cargo run -p crossdock-sim-erp --example serve -- --port 7070 --clock manual`.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: crossdock_sim_erp::cli::Args,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    crossdock_sim_erp::cli::run(Cli::parse().args).await
}
