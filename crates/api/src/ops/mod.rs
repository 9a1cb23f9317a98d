//! Operations: what an operator needs to find and fix stuck business processes.
//!
//! - [`health`]: business process health per flow, every exception ranked by business impact.
//! - [`trace`]: one order's whole timeline across systems, by any of its ids.
//! - [`exceptions`]: dead letters and refused messages, with retry, edit-and-retry, resolve and
//!   safe bulk replay; every action audited.
//! - [`replay`]: moves an event subscriber's cursor back to a position or a time.
//! - [`alerts`]: rules derived from flow classifications, evaluated periodically, sent to a
//!   webhook and the log with de-duplication and resolve notifications.
//! - [`roi`]: cycle times per stage, exceptions raised vs auto-resolved, manual interventions,
//!   inventory accuracy.
//! - [`routes`]: the JSON endpoints under `/ops` (scopes `ops:read`, `ops:write`).
//! - [`reach`]: what a key limited to accounts sees of them (only its accounts' orders,
//!   traces and failed work).
//!
//! [`Ops`] is the shared context of these views in a running hub: settings, the event-log
//! follower behind the return, payment and cycle-time views, the cached health report and
//! the active alerts. The core functions also take a bare store, so the command line can use
//! them without a running hub.

pub mod alerts;
pub mod config;
pub mod contract;
pub mod exceptions;
pub mod follower;
pub mod format;
pub mod health;
pub mod reach;
pub mod replay;
pub mod roi;
pub mod routes;
pub mod trace;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use crossdock_domain::flow::Flow;
use tokio::time::Instant;

pub use config::OpsConfig;
pub use health::HealthReport;

use crate::state::AppState;
use alerts::ActiveAlert;
use follower::Follower;

/// Settings of the operations views: the `[ops]` block plus the flows they are measured
/// against.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Flows with their classification (thresholds derive from them).
    pub flows: Vec<Flow>,
    /// The `[ops]` block.
    pub config: OpsConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            flows: crossdock_domain::flow::defaults(),
            config: OpsConfig::default(),
        }
    }
}

/// The shared operations context of a running hub. Cheap to clone.
#[derive(Clone)]
pub struct Ops {
    inner: Arc<Inner>,
}

struct Inner {
    state: AppState,
    settings: Settings,
    follower: tokio::sync::Mutex<Follower>,
    /// Last health report and when it was computed (monotonic time).
    health: tokio::sync::Mutex<Option<(Instant, Arc<HealthReport>)>>,
    /// The newest report, readable while `health` is held by a computation.
    latest: tokio::sync::Mutex<Option<(Instant, Arc<HealthReport>)>>,
    /// Whether a background recomputation is running.
    refreshing: std::sync::atomic::AtomicBool,
    alerts: Mutex<Vec<ActiveAlert>>,
    /// The dashboard's signed-in sessions.
    sessions: crate::dashboard::session::Sessions,
}

impl Ops {
    /// A context around the hub's state.
    pub fn new(state: AppState, settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                state,
                settings,
                follower: tokio::sync::Mutex::new(Follower::default()),
                health: tokio::sync::Mutex::new(None),
                latest: tokio::sync::Mutex::new(None),
                refreshing: std::sync::atomic::AtomicBool::new(false),
                alerts: Mutex::new(Vec::new()),
                sessions: crate::dashboard::session::Sessions::default(),
            }),
        }
    }

    /// The hub's state.
    pub fn state(&self) -> &AppState {
        &self.inner.state
    }

    /// Settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The dashboard's signed-in sessions.
    pub fn sessions(&self) -> &crate::dashboard::session::Sessions {
        &self.inner.sessions
    }

    /// The event-log follower (returns, payments, cycle times).
    pub fn follower(&self) -> &tokio::sync::Mutex<Follower> {
        &self.inner.follower
    }

    /// The health report, recomputed when the cached one is older than
    /// `health_cache_ms`. Concurrent callers share one computation.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn health(&self) -> Result<Arc<HealthReport>, crossdock_store::Error> {
        let max_age = Duration::from_millis(self.settings().config.health_cache_ms);
        if self.settings().config.serve_stale_health
            && let Some((at, report)) = self.inner.latest.lock().await.clone()
        {
            if at.elapsed() >= max_age {
                self.refresh_health_in_background();
            }
            return Ok(report);
        }
        let mut cached = self.inner.health.lock().await;
        if let Some((at, report)) = cached.as_ref()
            && at.elapsed() < max_age
        {
            return Ok(Arc::clone(report));
        }
        let report = Arc::new(self.compute_health().await?);
        *cached = Some((Instant::now(), Arc::clone(&report)));
        *self.inner.latest.lock().await = Some((Instant::now(), Arc::clone(&report)));
        Ok(report)
    }

    /// Recomputes the health report on a background task (one at a time).
    fn refresh_health_in_background(&self) {
        if self
            .inner
            .refreshing
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let ops = self.clone();
        tokio::spawn(async move {
            match ops.compute_health().await {
                Ok(report) => {
                    let entry = (Instant::now(), Arc::new(report));
                    *ops.inner.health.lock().await = Some(entry.clone());
                    *ops.inner.latest.lock().await = Some(entry);
                }
                Err(error) => tracing::warn!(%error, "Recomputing business health failed"),
            }
            ops.inner
                .refreshing
                .store(false, std::sync::atomic::Ordering::Release);
        });
    }

    /// Computes a fresh health report (catching the follower up within its time budget).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn compute_health(&self) -> Result<HealthReport, crossdock_store::Error> {
        let store = self.state().store();
        let now = self.state().engine.clock().now();
        let budget = Duration::from_millis(self.settings().config.catch_up_budget_ms);
        let mut follower = self.inner.follower.lock().await;
        follower.catch_up(store, budget).await?;
        let view = health::FollowerView::of(&follower);
        drop(follower);
        health::compute(store, &self.inner.settings, &view, now).await
    }

    /// Catches the follower up completely (tests, benchmarks, start-up).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn catch_up_fully(&self) -> Result<(), crossdock_store::Error> {
        let mut follower = self.inner.follower.lock().await;
        while follower
            .catch_up(self.state().store(), Duration::from_secs(5))
            .await?
        {}
        drop(follower);
        *self.inner.health.lock().await = None;
        Ok(())
    }

    /// Alerts firing now.
    pub fn active_alerts(&self) -> Vec<ActiveAlert> {
        self.inner
            .alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_active_alerts(&self, alerts: Vec<ActiveAlert>) {
        *self
            .inner
            .alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = alerts;
    }

    /// The actor name recorded in audit entries for an API principal.
    pub fn actor(principal: &crate::auth::Principal) -> String {
        format!("{} ({})", principal.client, principal.id)
    }
}

/// Middleware that supplies `default` to handlers unless an [`Ops`] was already put in the
/// request's extensions by an outer layer (a hub started with its own settings).
pub async fn provide(default: Ops, mut request: Request, next: Next) -> Response {
    if request.extensions().get::<Ops>().is_none() {
        request.extensions_mut().insert(default);
    }
    next.run(request).await
}

/// The `/ops` routes, `/metrics` and the dashboard, with an operations context made from `state` and
/// default settings (an outer `Extension<Ops>` layer overrides it).
pub fn router(state: &AppState) -> axum::Router<AppState> {
    let default = Ops::new(state.clone(), Settings::default());
    routes::router()
        .merge(crate::dashboard::router())
        .route("/metrics", axum::routing::get(crate::metrics::serve))
        .layer(axum::middleware::from_fn(move |request, next| {
            provide(default.clone(), request, next)
        }))
}
