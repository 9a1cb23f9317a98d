//! What every request goes through: the shared state behind its mutex, the fault gate
//! (outage, injected errors, latency), `Idempotency-Key` replay, and call statistics.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::SimClock;
use crate::config::WebhookSettings;
use crate::error::{ApiError, Code, Result};
use crate::faults::{Injected, OutageMode};
use crate::persist::Persister;
use crate::state::{Saved, State};

/// State shared by the HTTP handlers, the webhook workers, the ticker and the writer.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    pub clock: SimClock,
    pub webhook_settings: WebhookSettings,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
    /// The data directory, when the state is persisted.
    pub persist: Option<Persister>,
}

/// What the gate lets through.
pub(crate) struct Pass {
    /// Hold the answer this long, then answer 504 (an injected timeout).
    timeout: Option<Duration>,
}

impl Shared {
    pub fn new(
        state: State,
        clock: SimClock,
        webhook_settings: WebhookSettings,
        persist: Option<Persister>,
    ) -> Self {
        Self {
            state: Mutex::new(state),
            clock,
            webhook_settings,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            persist,
        }
    }

    /// With a data directory, waits until the state as it is now is on disk (after marking it
    /// changed when `changed`: a request that may have written something). `true` at once
    /// without a data directory; `false` when the simulator stops before the write.
    pub async fn wait_durable(&self, changed: bool) -> bool {
        let Some(persister) = &self.persist else {
            return true;
        };
        let revision = {
            let mut state = self.lock();
            if changed {
                state.touch();
            }
            state.revision
        };
        persister.wait_durable(revision, &self.cancel).await
    }

    /// Locks the state, first bringing simulated time up to date in real clock mode.
    /// Every critical section is short and synchronous: never held across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(now) = self.clock.real_now() {
            state.run_until(now);
        }
        state
    }

    /// Whether a connection-level outage is active now.
    pub fn refuses_connections(&self) -> bool {
        self.lock()
            .active_outage()
            .is_some_and(|o| o.mode == OutageMode::Connection)
    }

    /// Counts the call, applies outage, injected errors and latency.
    async fn gate(&self, op: &'static str) -> Result<Pass> {
        let (delay, injected, retry_after, timeout_ms) = {
            let mut state = self.lock();
            state.stats.calls.entry(op.to_owned()).or_default().calls += 1;
            if state.active_outage().is_some() {
                let retry_after = state.faults.retry_after_secs;
                let stats = state.stats.calls.entry(op.to_owned()).or_default();
                stats.outage_refused += 1;
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::Outage,
                    "the ERP is unavailable (outage window)",
                )
                .with_retry_after(retry_after));
            }
            let latency = state.faults.latency;
            let slowdown = state.faults.slowdown;
            let rates = state.faults.rates_for(op);
            let delay_ms = latency.sample(&mut state.fault_rng) * slowdown;
            let injected = rates.draw(&mut state.fault_rng);
            let stats = state.stats.calls.entry(op.to_owned()).or_default();
            stats.added_latency_ms += delay_ms;
            match injected {
                Injected::Http500 => stats.injected_500 += 1,
                Injected::Http503 => stats.injected_503 += 1,
                Injected::Http429 => stats.injected_429 += 1,
                Injected::Timeout => stats.injected_timeouts += 1,
                Injected::None => {}
            }
            (
                Duration::try_from_secs_f64(delay_ms.max(0.0) / 1000.0).unwrap_or(Duration::ZERO),
                injected,
                state.faults.retry_after_secs,
                state.faults.timeout_ms,
            )
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match injected {
            Injected::None => Ok(Pass { timeout: None }),
            Injected::Timeout => Ok(Pass {
                timeout: Some(Duration::from_millis(timeout_ms)),
            }),
            Injected::Http500 => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalError,
                "internal error (injected)",
            )),
            Injected::Http503 => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::ServiceUnavailable,
                "service temporarily unavailable (injected)",
            )
            .with_retry_after(retry_after)),
            Injected::Http429 => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Code::RateLimited,
                "too many requests (injected)",
            )
            .with_retry_after(retry_after)),
        }
    }

    fn finish(&self, op: &'static str, result: Result<(StatusCode, Value)>) -> Response {
        let status = match &result {
            Ok((status, _)) => *status,
            Err(error) => error.status,
        };
        {
            let mut state = self.lock();
            let stats = state.stats.calls.entry(op.to_owned()).or_default();
            if status.is_success() {
                stats.ok += 1;
            } else if status.is_client_error() {
                stats.client_errors += 1;
            } else {
                stats.server_errors += 1;
            }
        }
        match result {
            Ok((status, body)) => (status, axum::Json(body)).into_response(),
            Err(error) => error.into_response(),
        }
    }

    /// Runs a read operation through the gate.
    pub async fn read<F>(&self, op: &'static str, f: F) -> Response
    where
        F: FnOnce(&mut State) -> Result<Value>,
    {
        let pass = match self.gate(op).await {
            Ok(pass) => pass,
            Err(error) => return self.finish(op, Err(error)),
        };
        let result = {
            let mut state = self.lock();
            f(&mut state).map(|body| (StatusCode::OK, body))
        };
        self.finish_after(op, pass, result).await
    }

    /// Runs a write operation through the gate, replaying the first answer to a repeated
    /// `Idempotency-Key` (2xx and 4xx answers are remembered; 5xx are not).
    pub async fn write<F>(&self, op: &'static str, headers: &HeaderMap, f: F) -> Response
    where
        F: FnOnce(&mut State) -> Result<(StatusCode, Value)>,
    {
        let pass = match self.gate(op).await {
            Ok(pass) => pass,
            Err(error) => return self.finish(op, Err(error)),
        };
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (result, replayed) = {
            let mut state = self.lock();
            match key.as_ref().and_then(|k| state.saved_answer(k).cloned()) {
                Some(saved) if saved.op == op => {
                    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
                    state.stats.calls.entry(op.to_owned()).or_default().replayed += 1;
                    (Ok((status, saved.body)), true)
                }
                Some(saved) => (
                    Err(ApiError::unprocessable(
                        Code::IdempotencyKeyReused,
                        format!("Idempotency-Key already used for operation {}", saved.op),
                    )),
                    false,
                ),
                None => {
                    let result = f(&mut state);
                    if let Some(key) = key {
                        let saved = match &result {
                            Ok((status, body)) => Some(Saved {
                                op: op.to_owned(),
                                status: status.as_u16(),
                                body: body.clone(),
                            }),
                            Err(error) if error.status.is_client_error() => Some(Saved {
                                op: op.to_owned(),
                                status: error.status.as_u16(),
                                body: error.body(),
                            }),
                            Err(_) => None,
                        };
                        if let Some(saved) = saved {
                            state.save_answer(key, saved);
                        }
                    }
                    (result, false)
                }
            }
        };
        let mut response = self.finish_after(op, pass, result).await;
        if replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }

    async fn finish_after(
        &self,
        op: &'static str,
        pass: Pass,
        result: Result<(StatusCode, Value)>,
    ) -> Response {
        if let Some(hold) = pass.timeout {
            tokio::select! {
                () = tokio::time::sleep(hold) => {}
                () = self.cancel.cancelled() => {}
            }
            return self.finish(
                op,
                Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    Code::GatewayTimeout,
                    "the ERP took too long to answer (injected)",
                )),
            );
        }
        self.finish(op, result)
    }
}

/// Parses a request body: empty means `{}`; it must be a JSON object.
///
/// # Errors
/// `malformed_json` or `invalid_request`.
pub(crate) fn parse_body(bytes: &Bytes) -> Result<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::from_json(&e))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            Code::InvalidRequest,
            "the body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Serializes an answer.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Shared handle type for handlers.
pub(crate) type Sim = Arc<Shared>;
