//! The hub's HTTP surface (axum).
//!
//! - `/healthz`, `/readyz`: liveness and readiness.
//! - `/v1/...`: governed business services (order submission, status, inventory, pricing,
//!   shipments, returns, accounts).
//! - `/ops/...`, `/metrics`, the dashboard: operations.
//!
//! Every error is an RFC 9457 problem ([`problem::Problem`]).

pub mod health;
pub mod problem;
pub mod state;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use problem::Problem;
pub use state::AppState;

/// Every route of the hub.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}

/// Serves the router on a bound listener until `shutdown`.
///
/// # Errors
/// When the listener fails.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
