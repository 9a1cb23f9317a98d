//! `/v1`: the governed business services.
//!
//! | route | scope |
//! |---|---|
//! | `POST /v1/orders` | `orders:write` |
//! | `GET /v1/orders`, `/v1/orders/{id}`, `/v1/orders/{id}/timeline`, `/v1/orders/{id}/shipments` | `orders:read` |
//! | `GET /v1/inventory` | `inventory:read` |
//! | `POST /v1/prices` | `prices:read` |
//! | `POST /v1/returns` | `returns:write` |
//! | `GET /v1/returns/{rma}` | `returns:read` |
//! | `PUT /v1/accounts/{external_ref}` | `accounts:write` |

pub mod accounts;
pub mod inventory;
pub mod orders;
pub mod prices;
pub mod returns;

use axum::Router;
use axum::routing::{get, post, put};

use crate::state::AppState;

/// The `/v1` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", post(orders::submit).get(orders::list))
        .route("/v1/orders/{id}", get(orders::status))
        .route("/v1/orders/{id}/timeline", get(orders::timeline))
        .route("/v1/orders/{id}/shipments", get(orders::shipments))
        .route("/v1/inventory", get(inventory::inquire))
        .route("/v1/prices", post(prices::quote))
        .route("/v1/returns", post(returns::request))
        .route("/v1/returns/{rma}", get(returns::status))
        .route("/v1/accounts/{external_ref}", put(accounts::put))
}
