//! `crossdock sim ...` command-line entry point.

/// Command-line arguments of the simulator.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Runs the simulator until Ctrl-C.
///
/// # Errors
/// Always, until the simulator lands.
pub async fn run(_args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err("not ready yet".into())
}
