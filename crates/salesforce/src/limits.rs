//! Daily API limit tracking and the reserve that slows writes down before the limit is spent.
//!
//! Every REST answer carries `Sforce-Limit-Info: api-usage=<used>/<max>`. When fewer than the
//! configured reserve of calls remain, write calls are answered `Throttled` (without being
//! sent) until a back-off has passed; then one write goes through as a probe and its answer
//! tells whether the 24-hour window has room again. Reads are never held back: they are few
//! and the hub needs them to capture orders.

use std::sync::Mutex;
use std::time::Duration;

use crossdock_ports::Failure;
use crossdock_ports::salesforce::ApiUsage;
use tokio::time::Instant;

/// Parses `Sforce-Limit-Info` (`api-usage=12/15000[; per-app-api-usage=…]`).
pub fn parse_limit_info(header: &str) -> Option<ApiUsage> {
    header
        .split([';', ','])
        .map(str::trim)
        .find_map(|part| part.strip_prefix("api-usage="))
        .and_then(|value| {
            let (used, limit) = value.split_once('/')?;
            Some(ApiUsage {
                used: used.trim().parse().ok()?,
                limit: limit.trim().parse().ok()?,
            })
        })
}

#[derive(Debug, Default)]
struct State {
    usage: Option<ApiUsage>,
    /// While set, writes wait until this instant (then one probe goes through).
    hold_until: Option<Instant>,
    held_writes: u64,
}

/// Shared limit state of one connector.
#[derive(Debug)]
pub struct Limits {
    reserve: u64,
    backoff: Duration,
    state: Mutex<State>,
}

impl Limits {
    /// Tracks usage; holds writes back when fewer than `reserve` calls remain.
    pub fn new(reserve: u64, backoff: Duration) -> Self {
        Self {
            reserve,
            backoff,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the usage reported by an answer.
    pub fn observe(&self, header: &str) {
        if let Some(usage) = parse_limit_info(header) {
            self.state().usage = Some(usage);
        }
    }

    /// Usage as last reported.
    pub fn usage(&self) -> Option<ApiUsage> {
        self.state().usage
    }

    /// Writes answered `Throttled` by the reserve so far.
    pub fn held_writes(&self) -> u64 {
        self.state().held_writes
    }

    /// Salesforce refused a call for the daily limit: hold writes back for a while.
    pub fn limit_exceeded(&self) {
        let mut s = self.state();
        let until = Instant::now() + self.backoff;
        if s.hold_until.is_none_or(|u| u < until) {
            s.hold_until = Some(until);
        }
    }

    /// Whether a write call may be sent now.
    ///
    /// # Errors
    /// `Throttled` with the time left when the reserve is reached.
    pub fn admit_write(&self) -> Result<(), Failure> {
        let now = Instant::now();
        let mut s = self.state();
        let low = s.usage.is_some_and(|u| u.remaining() < self.reserve);
        if !low {
            if s.hold_until.is_some_and(|until| now < until) && s.usage.is_none() {
                // Refused for the limit before any usage was known: wait out the back-off.
            } else {
                if s.hold_until.take().is_some() {
                    tracing::info!(
                        used = s.usage.map(|u| u.used),
                        limit = s.usage.map(|u| u.limit),
                        "Salesforce API calls available again; writes resume"
                    );
                }
                return Ok(());
            }
        }
        match s.hold_until {
            Some(until) if now < until => {
                s.held_writes += 1;
                Err(self.held(s.usage, until - now))
            }
            Some(_) => {
                // The back-off passed: let this write probe whether the window has room.
                s.hold_until = Some(now + self.backoff);
                Ok(())
            }
            None => {
                s.hold_until = Some(now + self.backoff);
                s.held_writes += 1;
                tracing::warn!(
                    used = s.usage.map(|u| u.used),
                    limit = s.usage.map(|u| u.limit),
                    reserve = self.reserve,
                    "Salesforce API calls nearly spent; holding writes back to keep the reserve"
                );
                Err(self.held(s.usage, self.backoff))
            }
        }
    }

    fn held(&self, usage: Option<ApiUsage>, wait: Duration) -> Failure {
        let text = match usage {
            Some(u) => format!(
                "Salesforce API calls nearly spent ({} of {} used, {} kept in reserve); write held back",
                u.used, u.limit, self.reserve
            ),
            None => "Salesforce daily API limit reached; write held back".to_owned(),
        };
        Failure::throttled(text, Some(wait)).with_code("API_RESERVE")
    }
}
