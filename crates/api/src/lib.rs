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
pub mod state;
pub mod telemetry;
pub mod v1;
pub mod v2;
pub mod views;
pub mod webhooks;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::ApiConfig;
pub use problem::Problem;
pub use state::AppState;

/// Every route of the hub, with the shared middleware.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().body_limit_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::serve))
        .merge(v1::router())
        .merge(v2::router())
        .merge(webhooks::router())
        .merge(ops::router(&state))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(move |request, next| {
            middleware::limit_body(body_limit, request, next)
        }))
        .layer(axum::middleware::from_fn(middleware::correlate))
}

/// Serves the router on a bound listener until `shutdown`.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_router(listener, router(state), shutdown).await
}

/// Serves any router (e.g. [`router`] with more routes merged) until `shutdown`.
///
/// # Errors
/// When the listener fails.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
