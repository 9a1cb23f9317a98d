//! The hub's HTTP surface (axum).
//!
//! - `/healthz`, `/readyz`: liveness and readiness.
//! - `/v1/...` ([`v1`]): governed business services (order submission, status, inventory,
//!   pricing, shipments, returns, accounts); `/v2/...` ([`v2`]): their successors.
//! - `/webhooks/erp` ([`webhooks`]): signed ERP change notifications.
//! - `/openapi.json` ([`openapi`]): the contract; [`contracts`] holds the event schemas and
//!   the breaking-change check.
//! - `/ops/...`, `/metrics`, the dashboard: operations.
//!
//! The server ([`server`]) limits how long a client may take to send a request and how many
//! connections are open; the router limits how many requests are handled at once (load
//! shedding: 503 with `Retry-After`) and how long each may run.
//!
//! Security ([`auth`]): API keys stored as salted hashes or OAuth2 JWTs, scopes per service,
//! per-client rate limits, object-level limits (404 outside them), body size limits, strict
//! JSON, an audit record per write ([`audit`]), secrets redacted everywhere ([`redact`]).
//! Every error is an RFC 9457 problem ([`problem::Problem`]) carrying the correlation id.
#![forbid(unsafe_code)]
// `Problem` is the error of every handler and extractor; it is built once per refused request,
// so its size (a few strings and a map) is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod config;
pub mod contracts;
pub mod dashboard;
pub mod dto;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod problem;
pub mod ratelimit;
pub mod redact;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod v1;
pub mod v2;
pub mod views;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;

pub use config::{ApiConfig, ServerConfig};
pub use problem::Problem;
pub use state::AppState;

/// Every route of the hub, with the shared middleware.
///
/// Outside in: request tracing (`tower-http`), correlation ids, the body read deadline, the
/// body size limit; then, for every route but the health probes, load shedding over a
/// concurrency limit of `[api.server] max_concurrent_requests` (a request past it is answered
/// 503 with `Retry-After` at once) and the request timeout.
pub fn router(state: AppState) -> Router {
    let config = state.config();
    let body_limit = config.body_limit_bytes;
    let limits = config.server.clone();
    let body_timeout = Duration::from_millis(limits.body_read_timeout_ms);
    let request_timeout = Duration::from_millis(limits.request_timeout_ms);
    let retry_after = limits.overload_retry_after_secs;
    let admitted = Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent_requests));
    let governed = Router::new()
        .route("/openapi.json", get(openapi::serve))
        .merge(v1::router())
        .merge(v2::router())
        .merge(webhooks::router())
        .merge(ops::router(&state))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(
                    move |error: tower::BoxError| async move {
                        middleware::overloaded(&error, retry_after, request_timeout)
                    },
                ))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(admitted))
                .timeout(request_timeout),
        );
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(governed)
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(move |request, next| {
            middleware::limit_body(body_limit, request, next)
        }))
        .layer(axum::middleware::from_fn(move |request, next| {
            middleware::body_deadline(body_timeout, request, next)
        }))
        .layer(axum::middleware::from_fn(middleware::correlate))
        .layer(TraceLayer::new_for_http())
}

/// Serves the router on a bound listener until `shutdown`, with the server limits of the
/// state's `[api.server]` settings.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = state.config().server.clone();
    server::serve(listener, router(state), &limits, shutdown).await
}

/// Serves any router (e.g. [`router`] with more routes merged) until `shutdown`, with the
/// default server limits ([`ServerConfig::default`]).
///
/// # Errors
/// When the listener fails.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    server::serve(listener, router, &ServerConfig::default(), shutdown).await
}

/// Serves any router until `shutdown` with the given server limits (`[api.server]`).
///
/// # Errors
/// When the listener fails.
pub async fn serve_router_with(
    listener: TcpListener,
    router: Router,
    limits: &ServerConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    server::serve(listener, router, limits, shutdown).await
}
