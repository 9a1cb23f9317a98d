//! `crossdock api-key …`, `crossdock contracts check` and `crossdock bench-api`.

use std::path::Path;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use crossdock_api::auth::keys::{self, NewKey};
use crossdock_api::auth::scope::Scope;
use crossdock_api::bench::{self, BenchOptions};
use crossdock_ports::{Clock, SystemClock};

/// API key management.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it once (only its salted hash is stored).
    Create {
        /// Client name (audit records, rate limits).
        #[arg(long)]
        client: String,
        /// Comma-separated scopes, e.g. `orders:write,inventory:read`.
        #[arg(long)]
        scopes: String,
        /// Accounts the client may see (comma-separated); all when absent.
        #[arg(long, value_delimiter = ',')]
        accounts: Vec<String>,
        /// Channels the client may see (`b2b`, `web`, `marketplace`, `store`); all when absent.
        #[arg(long, value_delimiter = ',')]
        channels: Vec<String>,
        /// The client's own rate limit (requests per second) instead of the configured one.
        #[arg(long)]
        rate: Option<u32>,
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
    },
    /// List keys (ids and prefixes, never secrets).
    List {
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
    },
    /// Revoke a key by id (or by the key itself).
    Revoke {
        /// Key id as listed (`0123456789ab`).
        id: String,
        /// Store: a SQLite file path or a `postgres://` URL.
        #[arg(long, env = "CROSSDOCK_STORE")]
        store: String,
    },
}

/// Options of `crossdock bench-api`.
#[derive(Debug, Args)]
pub struct BenchApiArgs {
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Requests per read scenario (baseline, inventory inquiry).
    #[arg(long, default_value_t = 20_000)]
    pub requests: u64,
    /// Order submissions.
    #[arg(long, default_value_t = 5_000)]
    pub orders: u64,
    /// Store: a SQLite file path or a `postgres://` URL. Default: a SQLite file in a temp dir.
    #[arg(long)]
    pub store: Option<String>,
}

async fn open(location: &str) -> anyhow::Result<crossdock_store::SharedStore> {
    crossdock_store::open(location)
        .await
        .with_context(|| format!("cannot open the store at {location}"))
}

/// Runs an `api-key` subcommand.
///
/// # Errors
/// Invalid arguments or a store failure.
pub async fn api_key(command: ApiKeyCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        ApiKeyCommand::Create {
            client,
            scopes,
            accounts,
            channels,
            rate,
            store,
        } => {
            let scopes = Scope::parse_list(&scopes).map_err(anyhow::Error::msg)?;
            for channel in &channels {
                if !["b2b", "web", "marketplace", "store"]
                    .contains(&channel.to_ascii_lowercase().as_str())
                {
                    bail!("unknown channel `{channel}` (b2b, web, marketplace, store)");
                }
            }
            let store = open(&store).await?;
            let created = keys::create(
                &store,
                NewKey {
                    client,
                    scopes,
                    accounts,
                    channels,
                    rate_per_second: rate,
                },
                now,
            )
            .await?;
            store.close().await;
            eprintln!(
                "Created key {} for {} (scopes: {}). It is shown once; store it now.",
                created.record.id,
                created.record.client,
                created
                    .record
                    .scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            println!("{}", created.key);
        }
        ApiKeyCommand::List { store } => {
            let store = open(&store).await?;
            let records = keys::list(&store).await?;
            store.close().await;
            println!(
                "{:<14} {:<20} {:<9} {:<26} {:<20} scopes",
                "id", "client", "state", "created", "accounts"
            );
            for record in records {
                println!(
                    "{:<14} {:<20} {:<9} {:<26} {:<20} {}",
                    record.id,
                    record.client,
                    if record.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    crossdock_api::views::rfc3339(record.created_at),
                    if record.accounts.is_empty() {
                        "all".to_owned()
                    } else {
                        record.accounts.join(",")
                    },
                    record
                        .scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
        }
        ApiKeyCommand::Revoke { id, store } => {
            let store = open(&store).await?;
            let found = keys::revoke(&store, &id, now).await?;
            store.close().await;
            if !found {
                bail!("no key {id}");
            }
            println!("Revoked key {id}");
        }
    }
    Ok(())
}

/// `crossdock contracts check OLD NEW`: one line per breaking change, failure when any.
///
/// # Errors
/// Unreadable contracts, or breaking changes found.
pub fn contracts_check(old: &Path, new: &Path) -> anyhow::Result<()> {
    let found = crossdock_api::contracts::check::paths(old, new)?;
    for line in &found {
        println!("{line}");
    }
    if !found.is_empty() {
        bail!(
            "{} breaking change(s) from {} to {}",
            found.len(),
            old.display(),
            new.display()
        );
    }
    println!(
        "No breaking change from {} to {}",
        old.display(),
        new.display()
    );
    Ok(())
}

/// `crossdock bench-api`.
///
/// # Errors
/// The store or the hub could not start.
pub async fn bench(args: BenchApiArgs) -> anyhow::Result<()> {
    let temp = std::env::temp_dir().join(format!("crossdock-bench-api-{}", std::process::id()));
    let location = args
        .store
        .clone()
        .unwrap_or_else(|| temp.join("hub.sqlite").display().to_string());
    let store = open(&location).await?;
    let report = bench::run(
        store.clone(),
        BenchOptions {
            connections: args.connections.max(1),
            requests: args.requests.max(1),
            orders: args.orders.max(1),
        },
    )
    .await
    .map_err(anyhow::Error::msg)?;
    store.close().await;
    if args.store.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    print!("{report}");
    Ok(())
}
