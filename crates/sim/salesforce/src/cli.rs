//! `crossdock sim salesforce ...` command-line entry point.

use std::path::PathBuf;

use crate::config::{Config, Faults};
use crate::server::Simulator;

/// Command-line arguments of the simulator.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Port of the Pub/Sub API (TLS gRPC); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub grpc_port: u16,
    /// Also serve REST over plain HTTP on this port (0 picks a free one).
    #[arg(long)]
    pub http_port: Option<u16>,
    /// Folder for the CA certificate, the server key and the org's state (`org.json`), kept
    /// across restarts: a simulator started again on it continues with the same org, ids,
    /// tokens, events and CA. A temporary folder, removed at exit, by default.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed of every random choice, so runs repeat.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Daily API request limit.
    #[arg(long, default_value_t = 15_000)]
    pub daily_limit: u64,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 7_200)]
    pub token_ttl_secs: u64,
    /// Event retention in hours.
    #[arg(long, default_value_t = 72)]
    pub retention_hours: u64,
    /// Highest API version served (major number).
    #[arg(long, default_value_t = 65)]
    pub max_api_version: u32,
    /// PEM certificate or public key that verifies JWT bearer assertions (repeatable).
    #[arg(long = "jwt-key")]
    pub jwt_keys: Vec<PathBuf>,
    /// Added latency on every REST call, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra random latency up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_jitter_ms: u64,
    /// Probability (0-1) of a 503/500 answer.
    #[arg(long, default_value_t = 0.0)]
    pub server_error_rate: f64,
    /// Probability (0-1) of UNABLE_TO_LOCK_ROW per written record.
    #[arg(long, default_value_t = 0.0)]
    pub lock_row_rate: f64,
    /// Probability (0-1) of a 429 answer.
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Retry-After seconds on 429 answers.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
}

impl Args {
    /// The simulator configuration these arguments describe.
    ///
    /// # Errors
    /// A message when a JWT key file cannot be read.
    pub fn config(&self) -> Result<Config, String> {
        let mut jwt_keys = Vec::new();
        for path in &self.jwt_keys {
            jwt_keys.push(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            );
        }
        Ok(Config {
            port: self.port,
            grpc_port: self.grpc_port,
            http_port: self.http_port,
            data_dir: self.data_dir.clone(),
            seed: self.seed,
            daily_api_limit: self.daily_limit,
            token_ttl_secs: self.token_ttl_secs,
            retention_secs: self.retention_hours.saturating_mul(3600),
            max_api_version: self.max_api_version,
            jwt_keys,
            faults: Faults {
                latency_ms: self.latency_ms,
                latency_jitter_ms: self.latency_jitter_ms,
                server_error_rate: self.server_error_rate,
                lock_row_rate: self.lock_row_rate,
                throttle_rate: self.throttle_rate,
                retry_after_secs: self.retry_after_secs,
            },
            ..Config::default()
        })
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM, then saves the org when a data folder is set.
///
/// # Errors
/// When the configuration is invalid or a listener cannot start.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = args.config()?;
    let handle = Simulator::start(config).await?;
    let c = handle.credentials();
    println!(
        "Salesforce simulator running{}",
        if handle.restored() {
            " (org restored)"
        } else {
            ""
        }
    );
    println!("  base URL (instance + login): {}", handle.base_url());
    if let Some(http) = handle.http_url() {
        println!("  plain HTTP:                  {http}");
    }
    println!("  Pub/Sub API (TLS gRPC):      {}", handle.grpc_endpoint());
    println!(
        "  CA certificate to trust:     {}",
        handle.ca_pem_path().display()
    );
    println!("  client id:                   {}", c.client_id);
    println!("  client secret:               {}", c.client_secret);
    println!("  username:                    {}", c.username);
    println!("  password:                    {}", c.password);
    println!("  security token:              {}", c.security_token);
    println!("  org id:                      {}", handle.org_id());
    println!("  access token:                {}", handle.access_token());
    println!(
        "  admin API:                   {}/__sim/stats",
        handle.base_url()
    );
    if let Some(file) = handle.state_file() {
        println!("  org state:                   {}", file.display());
    }
    println!("Press Ctrl-C to stop.");
    stop_signal().await?;
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_become_the_simulator_configuration() {
        let cmd = Cmd::try_parse_from([
            "sim",
            "--port",
            "8443",
            "--seed",
            "9",
            "--daily-limit",
            "50",
            "--retention-hours",
            "1",
            "--lock-row-rate",
            "0.25",
            "--throttle-rate",
            "0.1",
            "--retry-after-secs",
            "3",
            "--latency-ms",
            "20",
        ]);
        let config = cmd.map_err(|e| e.to_string()).and_then(|c| c.args.config());
        let config = config.as_ref();
        assert_eq!(
            config
                .map(|c| (c.port, c.seed, c.daily_api_limit, c.retention_secs))
                .ok(),
            Some((8443, 9, 50, 3600))
        );
        assert_eq!(
            config
                .map(|c| (
                    c.faults.lock_row_rate,
                    c.faults.throttle_rate,
                    c.faults.retry_after_secs,
                    c.faults.latency_ms
                ))
                .ok(),
            Some((0.25, 0.1, 3, 20))
        );
        let missing_key = Cmd::try_parse_from(["sim", "--jwt-key", "/nonexistent/key.pem"])
            .map_err(|e| e.to_string())
            .and_then(|c| c.args.config());
        assert!(missing_key.is_err_and(|e| e.contains("/nonexistent/key.pem")));
    }
}
