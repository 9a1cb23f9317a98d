//! `crossdock serve`: runs the hub against the systems in `crossdock.toml` until Ctrl-C or
//! SIGTERM, then shuts down gracefully.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use crossdock_ports::{Clock, SystemClock};
use crossdock_store::Claim;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::hub::{self, Hub};

/// Runs the hub from `config`, read from `path`. Logs and traces follow the configuration's
/// `[telemetry]` block; without one, `default_logging` sets them up.
pub async fn run(path: &Path, config: Config, default_logging: impl FnOnce()) -> Result<()> {
    let problems = config.check();
    if !problems.is_empty() {
        bail!(
            "{} has problems:\n  {}",
            path.display(),
            problems.join("\n  ")
        );
    }
    // Held until the hub stops: dropping it flushes exported spans.
    let _telemetry = match &config.telemetry {
        Some(telemetry) => Some(
            crossdock_api::telemetry::install(telemetry)
                .map_err(|e| anyhow::anyhow!("[telemetry]: {e}"))?,
        ),
        None => {
            default_logging();
            None
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = crossdock_store::open(&config.store.url)
        .await
        .with_context(|| format!("opening the store at {}", config.store.url))?;
    let membership = claim(&config, &store, clock.as_ref()).await?;
    let erp_section = config
        .erp
        .as_ref()
        .context("the [erp] section is required to serve")?;
    let erp = hub::erp(erp_section, Arc::clone(&clock)).await?;
    let listener = TcpListener::bind(&config.hub.listen)
        .await
        .with_context(|| format!("listening on {}", config.hub.listen))?;
    let address = listener.local_addr()?;
    let hub = Hub::build_as(config, store, clock, erp, Some(membership)).await?;
    println!(
        "crossdock is serving on http://{address} (dashboard at /, API at /v1, metrics at /metrics)"
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    hub.run(listener, shutdown).await
}

/// Claims `hub.instance` for this process (a fresh incarnation). A claim held by another
/// live process is refused with the holder's heartbeat age and the setting to change;
/// nothing else is written then.
async fn claim(
    config: &Config,
    store: &crossdock_store::SharedStore,
    clock: &dyn Clock,
) -> Result<hub::Membership> {
    let membership = hub::Membership::new(
        &config.hub.instance,
        Duration::from_secs(config.hub.lease_seconds),
    );
    let now = clock.now();
    let claimed = store
        .claim_instance(
            &membership.name,
            &membership.incarnation,
            now,
            membership.lease,
        )
        .await
        .with_context(|| format!("claiming hub.instance `{}`", membership.name));
    match claimed {
        Ok(Claim::Claimed { replaced }) => {
            if let Some(former) = replaced {
                warn!(
                    instance = %membership.name,
                    former = %former.incarnation,
                    heartbeat_age_s = former.heartbeat_age(now).as_secs_f64(),
                    "Took over a stale claim on hub.instance (its heartbeat is older than hub.lease_seconds)"
                );
            }
            info!(instance = %membership.name, incarnation = %membership.incarnation, "Claimed hub.instance");
            Ok(membership)
        }
        Ok(Claim::Held(holder)) => {
            store.close().await;
            bail!(
                "hub.instance `{}` is taken: another crossdock process (incarnation {}) holds it, \
                 its last heartbeat {:.1} s ago, younger than hub.lease_seconds = {}. Give this \
                 process its own hub.instance in the [hub] section, or stop the other one (a \
                 claim whose heartbeat is older than hub.lease_seconds is taken over)",
                membership.name,
                holder.incarnation,
                holder.heartbeat_age(now).as_secs_f64(),
                config.hub.lease_seconds
            )
        }
        Err(error) => {
            store.close().await;
            Err(error)
        }
    }
}

/// Cancels `token` on Ctrl-C or SIGTERM.
pub async fn stop_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    eprintln!("Shutting down gracefully…");
    token.cancel();
}

/// `crossdock config check FILE`: prints every problem, or that the file is valid.
pub fn check(path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let problems = config.check();
    if problems.is_empty() {
        println!(
            "{}: valid ({} flows, store {})",
            path.display(),
            config.flows().len(),
            config.store.url
        );
        Ok(())
    } else {
        bail!(
            "{} has {} problem(s):\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        )
    }
}
