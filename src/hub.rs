//! The composition root: builds the store, the connectors, the engine, the Salesforce
//! subscriber, the event fan-out and the HTTP server from a configuration, and runs them
//! until shutdown. `serve`, `demo` and `drill` all go through here.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use crossdock_engine::bus;
use crossdock_engine::checkpoints::StoreCheckpoints;
use crossdock_engine::{Engine, Parts};
use crossdock_ports::{Clock, Erp, Salesforce, SeededRng};
use crossdock_store::SharedStore;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{Config, ErpSection};

/// The ERP adapter a configuration names.
///
/// # Errors
/// When the adapter cannot be set up (bad configuration, unreachable Tryton).
pub async fn erp(section: &ErpSection, clock: Arc<dyn Clock>) -> Result<Arc<dyn Erp>> {
    Ok(match section {
        ErpSection::Sim(config) => Arc::new(
            crossdock_erp::sim::Adapter::new(config)
                .map_err(|e| anyhow::anyhow!("ERP simulator adapter: {e}"))?,
        ),
        ErpSection::Rest(config) => Arc::new(
            crossdock_erp::rest::Adapter::new(config)
                .map_err(|e| anyhow::anyhow!("REST ERP adapter: {e}"))?,
        ),
        ErpSection::Tryton(config) => Arc::new(
            crossdock_erp::tryton::Adapter::connect(config.clone(), clock)
                .await
                .map_err(|e| anyhow::anyhow!("Tryton adapter: {e}"))?,
        ),
    })
}

/// This process's claim on its instance name (`hub.instance`), kept alive by heartbeats
/// while the hub runs and released when it stops.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The instance name.
    pub name: String,
    /// This process's incarnation: a fresh id per start.
    pub incarnation: String,
    /// How long the claim lasts without a heartbeat (`hub.lease_seconds`).
    pub lease: Duration,
}

impl Membership {
    /// A claim on `name` for a fresh incarnation of this process.
    #[must_use]
    pub fn new(name: &str, lease: Duration) -> Membership {
        let nonce: u64 = rand::rngs::StdRng::from_os_rng().random();
        Membership {
            name: name.to_owned(),
            incarnation: format!("{}-{nonce:016x}", std::process::id()),
            lease,
        }
    }

    /// Time between heartbeats: a third of the lease, so two may fail before it lapses.
    #[must_use]
    pub fn heartbeat_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(100))
    }
}

/// Heartbeats `membership` until `stop`; cancels `lost` (and returns) when the claim is no
/// longer this process's (taken over after heartbeats failed for a lease).
async fn heartbeat(
    store: SharedStore,
    clock: Arc<dyn Clock>,
    membership: Membership,
    stop: CancellationToken,
    lost: CancellationToken,
) {
    let mut ticks = tokio::time::interval(membership.heartbeat_every());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store
            .heartbeat_instance(&membership.name, &membership.incarnation, clock.now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                error!(
                    instance = %membership.name,
                    incarnation = %membership.incarnation,
                    "This process no longer holds hub.instance (another process took the claim over): stopping"
                );
                lost.cancel();
                return;
            }
            Err(error) => warn!(%error, instance = %membership.name, "Heartbeat failed; retrying"),
        }
    }
}

/// A hub ready to run.
pub struct Hub {
    /// The engine (and through it the store).
    pub engine: Arc<Engine>,
    /// The Salesforce connector, when Salesforce is configured.
    pub salesforce: Option<Arc<crossdock_salesforce::Adapter>>,
    config: Config,
    membership: Option<Membership>,
}

impl Hub {
    /// Builds every component (connects nothing but the store and Tryton).
    ///
    /// # Errors
    /// Invalid configuration or a component that cannot be set up.
    pub async fn build(
        config: Config,
        store: SharedStore,
        clock: Arc<dyn Clock>,
        erp: Arc<dyn Erp>,
    ) -> Result<Hub> {
        Self::build_as(config, store, clock, erp, None).await
    }

    /// [`Hub::build`] for the process holding `membership` (claimed already), kept alive
    /// while the hub runs: heartbeats every third of its lease, the hub stops should another
    /// process take the claim over, and it is released once the hub has stopped. Task
    /// leases carry the incarnation besides the instance name, so a process that lost its
    /// claim releases at shutdown only its own leases, never those of its successor.
    ///
    /// # Errors
    /// As [`Hub::build`].
    pub async fn build_as(
        config: Config,
        store: SharedStore,
        clock: Arc<dyn Clock>,
        erp: Arc<dyn Erp>,
        membership: Option<Membership>,
    ) -> Result<Hub> {
        let salesforce = match &config.salesforce {
            Some(sf) => Some(Arc::new(
                crossdock_salesforce::Adapter::build(sf, Arc::clone(&clock))
                    .context("Salesforce connector")?,
            )),
            None => None,
        };
        let port: Arc<dyn Salesforce> = match &salesforce {
            Some(adapter) => adapter.clone(),
            None => {
                warn!(
                    "No [salesforce] section: write-backs to Salesforce are accepted and dropped"
                );
                Arc::new(crossdock_engine::loopback::LoopbackSalesforce::default())
            }
        };
        let mut engine_config = config.engine();
        if let Some(membership) = &membership {
            engine_config.owner = format!("{}/{}", membership.name, membership.incarnation);
        }
        let engine = Engine::new(Parts {
            store,
            erp,
            salesforce: port,
            clock,
            rng: Arc::new(SeededRng::from_entropy()),
            config: engine_config,
        });
        Ok(Hub {
            engine,
            salesforce,
            config,
            membership,
        })
    }

    /// Runs the engine, the Salesforce subscriber, the event fan-out and the HTTP server on
    /// `listener` until `shutdown`, then stops them in order: intake first, then workers.
    ///
    /// # Errors
    /// When a component cannot start (e.g. NATS unreachable).
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) -> Result<()> {
        let tasks = TaskTracker::new();
        let store = self.engine.store().clone();
        let clock = Arc::clone(self.engine.clock());
        let intake = CancellationToken::new();

        if let Some(adapter) = &self.salesforce {
            let subscriber = crossdock_salesforce::Subscriber::build(
                Arc::clone(adapter),
                self.engine.clone(),
                Arc::new(StoreCheckpoints::new(store.clone(), Arc::clone(&clock))),
            )
            .context("Salesforce subscriber")?;
            let stop = intake.clone();
            tasks.spawn(async move { subscriber.run(async move { stop.cancelled().await }).await });
        }
        if let Some(nats) = &self.config.nats {
            let publisher = bus::nats::NatsPublisher::connect(nats)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let (store, clock, stop) = (store.clone(), Arc::clone(&clock), intake.clone());
            tasks.spawn(bus::run(store, clock, Arc::new(publisher), stop));
        }
        let state =
            crossdock_api::AppState::with_config(self.engine.clone(), self.config.api.clone())
                .map_err(|e| anyhow::anyhow!("[api]: {e}"))?;
        let ops = crossdock_api::ops::Ops::new(
            state.clone(),
            crossdock_api::ops::Settings {
                flows: self.config.flows(),
                config: self.config.ops.clone(),
            },
        );
        if self.config.ops.alerts.enabled {
            let alerting = crossdock_api::ops::alerts::Alerting::new(
                self.config.ops.alerts.clone(),
                ops.clone(),
            )
            .map_err(|e| anyhow::anyhow!("[ops.alerts]: {e}"))?;
            tasks.spawn(alerting.run(intake.clone()));
        }
        let router = crossdock_api::router(state).layer(axum::Extension(ops));
        let limits = self.config.api.server.clone();
        let stop_serving = intake.clone();
        let server = tasks.spawn(async move {
            crossdock_api::serve_router_with(listener, router, &limits, stop_serving).await
        });
        let engine_stop = CancellationToken::new();
        let engine = tasks.spawn(self.engine.clone().run(engine_stop.clone()));
        tasks.close();
        let (heartbeat_stop, lost) = (CancellationToken::new(), CancellationToken::new());
        let heartbeats = self.membership.clone().map(|membership| {
            tokio::spawn(heartbeat(
                store.clone(),
                Arc::clone(&clock),
                membership,
                heartbeat_stop.clone(),
                lost.clone(),
            ))
        });

        tokio::select! {
            () = shutdown.cancelled() => {}
            () = lost.cancelled() => {}
        }
        info!("Stopping intake (API, Salesforce subscriber, event fan-out)");
        intake.cancel();
        if let Ok(Err(error)) = server.await {
            warn!(%error, "HTTP server stopped with an error");
        }
        engine_stop.cancel();
        let _ = engine.await;
        tasks.wait().await;
        heartbeat_stop.cancel();
        if let Some(heartbeats) = heartbeats {
            let _ = heartbeats.await;
        }
        if let Some(membership) = &self.membership
            && !lost.is_cancelled()
        {
            match store
                .release_instance(&membership.name, &membership.incarnation)
                .await
            {
                Ok(_) => info!(instance = %membership.name, "Released hub.instance"),
                Err(error) => {
                    warn!(%error, instance = %membership.name, "Releasing hub.instance failed")
                }
            }
        }
        store.close().await;
        info!("Stopped");
        if lost.is_cancelled() {
            anyhow::bail!(
                "stopped: another process took over hub.instance `{}` after this one missed heartbeats for hub.lease_seconds",
                self.membership.as_ref().map_or("", |m| m.name.as_str())
            );
        }
        Ok(())
    }
}
