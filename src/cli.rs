//! Command-line surface. Commands whose capability has not landed yet say so in `--help`
//! and refuse to run; none of them pretends to work.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// crossdock keeps a retailer's order lifecycle in sync between Salesforce and ERPs.
#[derive(Debug, Parser)]
#[command(name = "crossdock", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `crossdock_engine=debug`.
    #[arg(long, global = true, env = "CROSSDOCK_LOG", default_value = "warn")]
    pub log: String,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a simulated retail day end to end: store, both simulators, the hub and the dashboard.
    Demo(DemoArgs),
    /// Run the hub against the systems configured in crossdock.toml.
    Serve {
        /// Configuration file.
        #[arg(long, default_value = "crossdock.toml")]
        config: PathBuf,
    },
    /// Run a simulator of an external system.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// API and event contract tools.
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// Create, list and revoke API keys (stored as salted hashes).
    #[command(subcommand)]
    ApiKey(crate::commands::api::ApiKeyCommand),
    /// Load-test the HTTP API on 127.0.0.1 (inventory inquiry, order submission, trivial
    /// baseline) and print requests/s and p50/p99 latency.
    BenchApi(crate::commands::api::BenchApiArgs),
    /// Show one order's whole timeline across systems.
    Trace {
        /// Any of the order's ids: hub, Salesforce id or number, ERP number, return id or
        /// correlation id.
        id: String,
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect and act on dead-lettered work.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Replay an event subscriber from a position or a time (moves its cursor back).
    Replay {
        /// Subscriber name (its cursor, e.g. `nats:crossdock` for the NATS stream `crossdock`).
        subscriber: String,
        /// Global position of the first event to deliver again.
        #[arg(long, conflicts_with = "since")]
        from: Option<i64>,
        /// Deliver again from the first event recorded at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
        /// Name recorded in the audit trail (default `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Compare every order the hub knows with Salesforce and the ERP; `--heal` rewrites the
    /// hub's view to Salesforce where it is stale. Exits 1 while disagreements remain.
    Reconcile(ReconcileArgs),
    /// Drive orders through the full lifecycle with in-process downstreams and print throughput,
    /// latency and the store's raw durable commit rate measured in the same run; with
    /// `--erp-latency-ms` / `--salesforce-latency-ms`, the hub's added latency per step.
    Bench(BenchArgs),
    /// Durability drill: push synthetic orders through the lifecycle against the ERP simulator
    /// and exit when every order is final. Safe to kill at any moment: it resumes.
    Drill(DrillArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// The hub's configuration (store, Salesforce, ERP).
    #[arg(long, default_value = "crossdock.toml")]
    pub config: std::path::PathBuf,
    /// Write the hub's view of each order Salesforce shows wrongly back to Salesforce.
    #[arg(long)]
    pub heal: bool,
    /// Only orders with one of these hub statuses (comma separated, e.g. `Shipped,Closed`).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Check at most this many orders.
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of orders in the simulated day.
    #[arg(long, default_value_t = 500)]
    pub orders: u32,
    /// Seed for every random choice in the scenario.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// ERP to run against.
    #[arg(long, default_value = "sim")]
    pub erp: String,
    /// Keep the store here; a second run on the same directory resumes.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The hub's HTTP port.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Stop after the summary instead of staying up.
    #[arg(long)]
    pub exit: bool,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Salesforce org simulator (OAuth, REST data API, SOQL, Pub/Sub API with Change Data Capture).
    Salesforce(crossdock_sim_salesforce::cli::Args),
    /// ERP simulator (stock, prices, credit, booking, fulfilment, invoices, returns, fault knobs).
    Erp(crossdock_sim_erp::cli::Args),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file without contacting anything.
    Check {
        /// Configuration file.
        #[arg(default_value = "crossdock.toml")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Report breaking changes between two contract versions (OpenAPI files, or contract
    /// folders with `openapi.json` and `events/`); exits 1 when there is any.
    Check {
        /// The contract in force.
        old: PathBuf,
        /// The proposed contract.
        new: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered tasks (open ones unless `--filter status=…`; `status=any` for all).
    List {
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
        /// `key=value,…` with keys status, lane, kind, flow, class, order, since, until, limit.
        #[arg(long)]
        filter: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead-lettered task with its (redacted) payload.
    Show {
        /// Dead letter id.
        id: String,
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
    },
    /// Send one dead-lettered task back to its queue (optionally with an edited payload), or
    /// every open one matching `--filter` (check with `--dry-run` first).
    Retry {
        /// Dead letter id (or use --filter).
        id: Option<String>,
        /// A JSON file with the corrected payload, checked against the step's contract.
        #[arg(long)]
        edit: Option<PathBuf>,
        /// Bulk replay: `key=value,…` as for `list`.
        #[arg(long)]
        filter: Option<String>,
        /// Show what would be sent without sending anything.
        #[arg(long)]
        dry_run: bool,
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
        /// Name recorded in the audit trail (default `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Close one dead-lettered task with a reason.
    Resolve {
        /// Dead letter id.
        id: String,
        /// Why it can be closed without sending it again.
        #[arg(long)]
        reason: String,
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
        /// Name recorded in the audit trail (default `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// What became of a bulk replay: succeeded, still waiting, failed again.
    Report {
        /// Replay batch id (printed by `retry --filter`).
        batch: String,
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Orders to drive through the lifecycle.
    #[arg(long, default_value_t = 5000)]
    pub orders: u32,
    /// Store: a SQLite file path or a `postgres://` URL. Default: a SQLite file in a temp dir.
    #[arg(long)]
    pub store: Option<String>,
    /// Calls in flight on the ERP and hub lanes (with zero-latency downstreams a call holds
    /// its slot mostly while its commit becomes durable, so group commits need many).
    #[arg(long, default_value_t = 256)]
    pub workers: usize,
    /// Concurrent senders of new orders (each waits for its order to be durable).
    #[arg(long, default_value_t = 16)]
    pub senders: u32,
    /// Latency of every ERP call, milliseconds (0: zero-latency downstreams).
    #[arg(long, default_value_t = 0)]
    pub erp_latency_ms: u64,
    /// Latency of every Salesforce call, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub salesforce_latency_ms: u64,
    /// How long a Salesforce write-back waits for later changes to ride along, milliseconds
    /// (the engine's default when absent).
    #[arg(long)]
    pub salesforce_sync_delay_ms: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// Configuration (store, and `[erp] type = "sim"`).
    #[arg(long, default_value = "crossdock.toml")]
    pub config: PathBuf,
    /// Orders to create (idempotent: a restart does not create them again).
    #[arg(long, default_value_t = 2000)]
    pub orders: u32,
}
