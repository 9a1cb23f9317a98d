//! One module per subcommand.

pub mod api;
mod bench;
mod demo;
mod dlq;
mod drill;
mod reconcile;
mod replay;
pub mod serve;
mod trace;

use std::process::ExitCode;

use crate::cli::{Cli, Command, ConfigCommand, ContractsCommand, SimCommand};

/// Runs the parsed command line and maps failures to exit codes: 0 success, 1 failure.
pub fn run(cli: Cli) -> ExitCode {
    // `serve` sets up logging from its configuration's `[telemetry]` block when it has one.
    if !matches!(cli.command, Command::Serve { .. }) {
        init_logging(&cli.log, cli.log_json);
    }
    let (log, log_json) = (cli.log.clone(), cli.log_json);
    let result = match cli.command {
        Command::Demo(args) => block_on(demo::run(args)),
        Command::Serve { config } => {
            block_on(async move { serve::run(&config, || init_logging(&log, log_json)).await })
        }
        Command::Sim(SimCommand::Salesforce(args)) => block_on(async move {
            crossdock_sim_salesforce::cli::run(args)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        }),
        Command::Sim(SimCommand::Erp(args)) => block_on(async move {
            crossdock_sim_erp::cli::run(args)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        }),
        Command::Config(ConfigCommand::Check { file }) => {
            serve::check(&file).map_err(Failure::Error)
        }
        Command::Contracts(ContractsCommand::Check { old, new }) => {
            api::contracts_check(&old, &new).map_err(Failure::Error)
        }
        Command::ApiKey(command) => block_on(api::api_key(command)),
        Command::BenchApi(args) => block_on(api::bench(args)),
        Command::Trace { id, store, json } => {
            block_on(async move { trace::run(&id, &store, json).await })
        }
        Command::Dlq(command) => block_on(dlq::run(command)),
        Command::Replay {
            subscriber,
            from,
            since,
            store,
            actor,
        } => block_on(async move {
            replay::run(
                &subscriber,
                from,
                since.as_deref(),
                &store,
                actor.as_deref(),
            )
            .await
        }),
        Command::Reconcile(args) => block_on(reconcile::run(args)),
        Command::Bench(args) => block_on(bench::run(args)),
        Command::Drill(args) => block_on(drill::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Error(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command did not succeed.
pub enum Failure {
    /// The command ran and failed.
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Error(error)
    }
}

/// Runs a future to completion on a multi-threaded runtime.
fn block_on<F>(future: F) -> Result<(), Failure>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::Error(error.into()))?;
    runtime.block_on(future).map_err(Failure::Error)
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
