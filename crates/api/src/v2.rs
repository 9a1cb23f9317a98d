//! `/v2`: services whose shape changed. `GET /v2/orders/{id}` succeeds `GET /v1/orders/{id}`
//! (deprecated, announced with `Deprecation`, `Sunset` and `Link` headers) with ids per
//! system, money figures, per-line quantities, shipments, invoices, returns, stage times and
//! the Salesforce sync state.

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::auth::Authorized;
use crate::auth::scope::OrdersRead;
use crate::dto::OrderStatusV2;
use crate::extract::ApiPath;
use crate::problem::Problem;
use crate::state::AppState;
use crate::v1::orders::OrderPath;
use crate::views::{order_v2, visible_order};

/// The `/v2` routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v2/orders/{id}", get(order))
}

/// `GET /v2/orders/{id}`: the order's full status.
#[utoipa::path(
    get,
    path = "/v2/orders/{id}",
    operation_id = "getOrder",
    tag = "orders",
    params(("id" = String, Path, description = "Any of the order's ids")),
    responses((status = 200, description = "The order's status", body = OrderStatusV2)),
    security(("api_key" = []), ("oauth2" = ["orders:read"]))
)]
pub async fn order(
    State(state): State<AppState>,
    caller: Authorized<OrdersRead>,
    ApiPath(path): ApiPath<OrderPath>,
) -> Result<axum::Json<OrderStatusV2>, Problem> {
    let row = visible_order(&state, &caller.principal, &path.id).await?;
    Ok(axum::Json(order_v2(&row)?))
}
