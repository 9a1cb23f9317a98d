//! ERP simulator: the system of record for stock, prices, credit, order booking, fulfilment,
//! invoicing, returns and credit memos, served as its own JSON API on 127.0.0.1 for the hub's
//! development, demo, load and chaos tests.
//!
//! - [`Config`] → [`Simulator::start`] → [`Handle`] (base URL, state inspection, fault control,
//!   manual clock, shutdown). [`cli`] runs it as `crossdock sim erp`.
//! - State lives in memory behind one `std::sync::Mutex` ([`State`]); operations are short
//!   synchronous methods in `ops/`, and simulated time drives the warehouse process,
//!   replenishment and payments.
//! - Every change is an event in the change feed ([`feed`]), consumed by polling or webhooks.
//! - Fault knobs ([`faults`]) inject latency, errors, outages, duplicate and out-of-order
//!   delivery, all drawn from one seeded RNG: deterministic under the manual clock.
//!
//! The API reference is the crate README.

pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod faults;
pub mod feed;
mod http;
mod masterdata;
pub mod model;
pub mod ops;
mod server;
pub mod state;
pub mod webhooks;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use config::{ClockMode, Config, InvoiceMode};
pub use error::{ApiError, Code};
pub use faults::{ErrorRates, Faults, Latency, OutageMode};
pub use state::State;

use crate::clock::SimClock;
use crate::server::Shared;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listener could not bind.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// Port asked for.
        port: u16,
        /// Cause.
        source: std::io::Error,
    },
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Generates the master data, binds the listener(s) and serves until
    /// [`Handle::shutdown`].
    ///
    /// # Errors
    /// [`StartError`] when a port cannot be bound or the configuration is invalid.
    pub async fn start(config: Config) -> Result<Handle, StartError> {
        config.faults.validate().map_err(StartError::Config)?;
        if let ClockMode::Real { speed } = config.clock
            && !(speed.is_finite() && speed > 0.0)
        {
            return Err(StartError::Config(format!(
                "clock speed must be positive, got {speed}"
            )));
        }
        let bind = |port: u16| async move {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .await
                .map_err(|source| StartError::Bind { port, source })
        };
        let listener = bind(config.port).await?;
        let admin_listener = match config.admin_port {
            Some(port) => Some(bind(port).await?),
            None => None,
        };
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            port: config.port,
            source,
        })?;
        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());

        let clock = SimClock::new(config.clock, config.start_time_ms);
        let webhook_settings = config.webhooks.clone();
        let shared = Arc::new(Shared::new(State::new(config), clock, webhook_settings));
        let router = http::router(shared.clone());

        let faulty = http::io::FaultyListener {
            inner: listener,
            shared: shared.clone(),
        };
        let stop = shared.cancel.clone();
        let app = router.clone();
        shared.tracker.spawn(async move {
            if let Err(error) = axum::serve(faulty, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::error!(%error, "ERP simulator listener failed");
            }
        });
        if let Some(admin) = admin_listener {
            let stop = shared.cancel.clone();
            shared.tracker.spawn(async move {
                if let Err(error) = axum::serve(admin, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    tracing::error!(%error, "ERP simulator admin listener failed");
                }
            });
        }
        if matches!(clock.mode(), ClockMode::Real { .. }) {
            // In real mode time-driven work (warehouse steps, held events) must happen even
            // when nobody calls: a ticker takes the lock, which catches simulated time up.
            let ticker = shared.clone();
            shared.tracker.spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(20)) => { drop(ticker.lock()); }
                        () = ticker.cancel.cancelled() => return,
                    }
                }
            });
        }
        Ok(Handle {
            shared,
            addr,
            admin_addr,
        })
    }
}

/// Control of a running simulator.
pub struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// `http://127.0.0.1:PORT` of the API listener.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// URL of the admin listener, when configured (never cut by connection-level outages).
    pub fn admin_url(&self) -> Option<String> {
        self.admin_addr.map(|addr| format!("http://{addr}"))
    }

    /// Reads the state under the lock.
    pub fn inspect<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.shared.lock())
    }

    /// Current simulated time (ms since the Unix epoch).
    pub fn now_ms(&self) -> i64 {
        self.shared.lock().now_ms()
    }

    /// Manual clock: advances simulated time, running everything due on the way.
    pub fn advance(&self, ms: i64) {
        let mut state = self.shared.lock();
        let target = state.now_ms().saturating_add(ms.max(0));
        state.run_until(target);
    }

    /// Replaces the fault knobs.
    ///
    /// # Errors
    /// A message naming the invalid knob.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        self.shared.lock().faults = faults;
        Ok(())
    }

    /// Fault knobs in force.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Starts an outage now, for `duration_ms` of simulated time or until stopped.
    pub fn start_outage(&self, mode: OutageMode, duration_ms: Option<i64>) -> u64 {
        let mut state = self.shared.lock();
        let now = state.now_ms();
        state.add_outage(mode, now, duration_ms.map(|d| now + d))
    }

    /// Schedules an outage window on the simulated clock.
    pub fn schedule_outage(&self, mode: OutageMode, start_ms: i64, end_ms: i64) -> u64 {
        self.shared.lock().add_outage(mode, start_ms, Some(end_ms))
    }

    /// Ends active outages and cancels scheduled ones.
    pub fn stop_outages(&self) -> usize {
        self.shared.lock().stop_outages()
    }

    /// The `GET /admin/stats` document.
    pub fn stats(&self) -> Value {
        admin_stats(&self.shared.lock(), self.shared.clock.mode())
    }

    /// Stops serving: listeners, webhook workers and the ticker end; waits up to 5 s.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.tracker.wait()).await;
    }
}

/// The statistics document shared by `GET /admin/stats` and [`Handle::stats`].
pub(crate) fn admin_stats(state: &State, mode: ClockMode) -> Value {
    let stats = state.stats();
    json!({
        "now": clock::format_ms(state.now_ms()),
        "clock": mode,
        "calls": stats.calls,
        "bookings": stats.bookings,
        "connections_refused": stats.connections_refused,
        "faults": state.faults(),
        "active_outage": state.active_outage(),
        "outages": state.outages,
        "events": {
            "last_seq": state.last_seq(),
            "feed_first_position": state.poll.first_position(),
            "feed_last_position": state.poll.last_position(),
            "feed_held": state.poll.held(),
        },
        "webhooks": state.webhooks().map(webhooks::describe).collect::<Vec<_>>(),
        "pending_tasks": state.tasks.len(),
        "orders": state.orders.len(),
    })
}
