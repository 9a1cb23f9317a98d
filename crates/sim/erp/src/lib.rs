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
//! - With [`Config::data_dir`] the whole state survives a stop or a crash ([`persist`]): a
//!   start on the same directory resumes where the last run was.
//!
//! The API reference is the crate README.
#![forbid(unsafe_code)]

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
pub mod persist;
mod server;
pub mod state;
pub mod webhooks;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use config::{ClockMode, Config, InvoiceMode};
pub use error::{ApiError, Code};
pub use faults::{ErrorRates, Faults, Latency, OutageMode};
pub use persist::PersistError;
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
    /// The data directory cannot be used or its state file cannot be read.
    #[error("cannot use the data directory: {0}")]
    Persistence(#[from] PersistError),
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Generates the master data — or, with a data directory that holds a saved state,
    /// restores it — binds the listener(s) and serves until [`Handle::shutdown`].
    ///
    /// # Errors
    /// [`StartError`] when the configuration is invalid, a port cannot be bound, or the data
    /// directory cannot be created, read or written.
    pub async fn start(config: Config) -> Result<Handle, StartError> {
        config
            .validate()
            .map_err(|problems| StartError::Config(problems.join("; ")))?;
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

        let mode = config.clock;
        let webhook_settings = config.webhooks.clone();
        let interval = Duration::from_millis(config.persist_interval_ms);
        let (state, persister, saved_at_wall_ms) = match config.data_dir.clone() {
            None => (State::new(config), None, None),
            Some(dir) => {
                let opened = tokio::task::spawn_blocking(move || persist::open(&dir, config))
                    .await
                    .map_err(|error| {
                        StartError::Config(format!("loading the state stopped: {error}"))
                    })??;
                (
                    opened.state,
                    Some(opened.persister),
                    opened.saved_at_wall_ms,
                )
            }
        };
        let clock = SimClock::new(mode, resume_at(state.now_ms(), mode, saved_at_wall_ms));
        let persistent = persister.is_some();
        let shared = Arc::new(Shared::new(state, clock, webhook_settings, persister));
        if persistent {
            // Fails early when the directory is not writable; in real mode this also runs
            // the work that came due while the simulator was stopped.
            persist::save_async(&shared, true).await?;
        }
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
        webhooks::resume(&shared);
        if persistent {
            let writer = shared.clone();
            shared
                .tracker
                .spawn(persist::write_continuously(writer, interval));
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

/// Where a restored clock resumes: in real mode the saved time plus the wall-clock time that
/// passed since the save (times the speed), so work that came due meanwhile runs; otherwise
/// the saved (or configured start) time.
fn resume_at(now_ms: i64, mode: ClockMode, saved_at_wall_ms: Option<i64>) -> i64 {
    match (mode, saved_at_wall_ms) {
        (ClockMode::Real { speed }, Some(saved_at)) => {
            let stopped = clock::wall_clock_ms().saturating_sub(saved_at).max(0);
            // Truncation is intended: simulated time has millisecond resolution.
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let simulated = (stopped as f64 * speed) as i64;
            now_ms.saturating_add(simulated)
        }
        _ => now_ms,
    }
}

/// Control of a running simulator.
///
/// Dropping it without [`Handle::shutdown`] stops serving at once without a final write of the
/// state, as a crash would: a persisted simulator then resumes from its last periodic write.
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
        state.touch();
    }

    /// The data directory the state is persisted to, if any.
    pub fn data_dir(&self) -> Option<&Path> {
        self.shared.persist.as_ref().map(persist::Persister::dir)
    }

    /// Whether the state was restored from the data directory rather than generated.
    pub fn restored(&self) -> bool {
        self.shared.persist.as_ref().is_some_and(|p| p.restored)
    }

    /// Writes the state to the data directory now. `Ok(false)` without a data directory.
    ///
    /// # Errors
    /// The state file could not be written.
    pub async fn save(&self) -> Result<bool, PersistError> {
        persist::save_async(&self.shared, true).await
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
        admin_stats(
            &self.shared.lock(),
            self.shared.clock.mode(),
            self.shared.persist.as_ref(),
        )
    }

    /// Stops serving: listeners, webhook workers, the ticker and the periodic writer end
    /// (waiting up to 5 s), then the state is written to the data directory, if any; a failure
    /// to write is logged.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.tracker.wait()).await;
        if let Err(error) = persist::save_async(&self.shared, true).await {
            tracing::error!(%error, "Writing the ERP simulator state at shutdown failed");
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Abrupt stop (no final write): what a crash leaves behind.
        self.shared.cancel.cancel();
    }
}

/// The statistics document shared by `GET /admin/stats` and [`Handle::stats`].
pub(crate) fn admin_stats(
    state: &State,
    mode: ClockMode,
    persister: Option<&persist::Persister>,
) -> Value {
    let persistence = persister.map(|p| {
        let mut doc = serde_json::to_value(p.stats()).unwrap_or_else(|_| json!({}));
        doc["data_dir"] = json!(p.dir().display().to_string());
        doc["restored"] = json!(p.restored);
        doc
    });
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
        "persistence": persistence,
    })
}
