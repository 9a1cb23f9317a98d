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
        // The demo's hub keeps its store in a SQLite file.
        Command::Demo(args) => block_on(Workers::BesideWriter, demo::run(args)),
        Command::Serve { config: path } => configured(&path).and_then(|config| {
            block_on(Workers::for_store(Some(&config.store.url)), async move {
                serve::run(&path, config, || init_logging(&log, log_json)).await
            })
        }),
        Command::Sim(SimCommand::Salesforce(args)) => block_on(Workers::PerCore, async move {
            crossdock_sim_salesforce::cli::run(args)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        }),
        Command::Sim(SimCommand::Erp(args)) => block_on(Workers::PerCore, async move {
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
        Command::ApiKey(command) => block_on(Workers::PerCore, api::api_key(command)),
        Command::BenchApi(args) => {
            block_on(Workers::for_store(args.store.as_deref()), api::bench(args))
        }
        Command::Trace { id, store, json } => block_on(Workers::PerCore, async move {
            trace::run(&id, &store, json).await
        }),
        Command::Dlq(command) => block_on(Workers::PerCore, dlq::run(command)),
        Command::Replay {
            subscriber,
            from,
            since,
            store,
            actor,
        } => block_on(Workers::PerCore, async move {
            replay::run(
                &subscriber,
                from,
                since.as_deref(),
                &store,
                actor.as_deref(),
            )
            .await
        }),
        Command::Reconcile(args) => block_on(Workers::PerCore, reconcile::run(args)),
        Command::Bench(args) => {
            block_on(Workers::for_store(args.store.as_deref()), bench::run(args))
        }
        Command::Drill(args) => configured(&args.config).and_then(|config| {
            block_on(
                Workers::for_store(Some(&config.store.url)),
                drill::run(args, config),
            )
        }),
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

/// How many worker threads a command's runtime gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workers {
    /// Tokio's default: one per core.
    PerCore,
    /// One fewer than the cores, at least one. The command runs the engine on a SQLite store,
    /// whose writer thread is the one serial resource that bounds its throughput: with a
    /// worker on every core as well, the workers preempt the writer and move tasks (and the
    /// memory they free) between cores. Measured with `crossdock bench` on 2 cores: one
    /// worker gave 0–21 % more lifecycle steps/s for less CPU, and `bench-api` lost nothing;
    /// on PostgreSQL one worker fewer was slower, hence per store.
    BesideWriter,
}

impl Workers {
    /// For a command whose store is at `location` (`None`: the SQLite default).
    fn for_store(location: Option<&str>) -> Self {
        match location {
            Some(location) if crossdock_store::is_postgres(location) => Self::PerCore,
            _ => Self::BesideWriter,
        }
    }

    /// The explicit count, if any: none when `TOKIO_WORKER_THREADS` is set (tokio reads it).
    fn threads(self) -> Option<usize> {
        if self == Self::PerCore || std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
            return None;
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Some(cores.saturating_sub(1).max(1))
    }
}

/// The configuration at `path`, read once: its store decides the runtime's workers before the
/// command runs with it.
fn configured(path: &std::path::Path) -> Result<crate::config::Config, Failure> {
    crate::config::Config::load(path).map_err(Failure::Error)
}

/// Runs a future to completion on a multi-threaded runtime with `workers` worker threads.
fn block_on<F>(workers: Workers, future: F) -> Result<(), Failure>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = workers.threads() {
        builder.worker_threads(threads);
    }
    let runtime = builder
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_store_leaves_its_writer_a_core_and_postgres_does_not() {
        let cases = [
            (None, Workers::BesideWriter),
            (Some("/var/lib/crossdock/hub.sqlite"), Workers::BesideWriter),
            (Some("sqlite://hub.sqlite"), Workers::BesideWriter),
            (Some("postgres://hub@db/hub"), Workers::PerCore),
            (Some(" postgresql://hub@db/hub"), Workers::PerCore),
        ];
        for (location, workers) in cases {
            assert_eq!(Workers::for_store(location), workers, "{location:?}");
        }
        assert_eq!(Workers::PerCore.threads(), None);
        if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = Workers::BesideWriter.threads().expect("an explicit count");
            assert_eq!(threads, cores.saturating_sub(1).max(1));
        }
    }

    #[test]
    fn a_configuration_names_the_store_and_one_that_does_not_load_fails_before_the_runtime() {
        let dir = std::env::temp_dir().join(format!("crossdock-workers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.toml");
        let postgres = dir.join("postgres.toml");
        std::fs::write(
            &postgres,
            "[store]\nurl = \"postgres://hub@127.0.0.1/hub\"\n",
        )
        .unwrap();
        let sqlite = dir.join("sqlite.toml");
        std::fs::write(&sqlite, "[store]\nurl = \"hub.sqlite\"\n").unwrap();
        let workers = |path: &std::path::Path| {
            configured(path).map(|config| Workers::for_store(Some(&config.store.url)))
        };
        let (missing, postgres, sqlite) = (workers(&missing), workers(&postgres), workers(&sqlite));
        std::fs::remove_dir_all(&dir).unwrap();
        let Err(Failure::Error(error)) = missing else {
            panic!("a missing configuration is an error")
        };
        assert!(format!("{error:#}").contains("missing.toml"), "{error:#}");
        assert!(matches!(postgres, Ok(Workers::PerCore)));
        assert!(matches!(sqlite, Ok(Workers::BesideWriter)));
    }
}
