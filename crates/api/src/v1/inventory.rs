//! Inventory inquiry: answered from the hub's cache with the figures' age; the ERP is asked
//! only when the cache is missing or older than the freshness threshold, and its answer
//! refreshes the cache. When the ERP cannot answer, the cache is served marked stale.

use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use crossdock_domain::ids::{LocationId, Sku};
use crossdock_domain::order::Lane as LaneName;
use crossdock_engine::BreakerState;
use crossdock_store::{Decision, InventoryRow};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Authorized;
use crate::auth::scope::InventoryRead;
use crate::dto::{InventorySource, InventoryView, StockLevel, is_id};
use crate::extract::ApiQuery;
use crate::problem::{FieldError, Problem};
use crate::state::AppState;
use crate::views::rfc3339;

/// What to look up.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InventoryQuery {
    /// Product.
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub sku: String,
    /// Only this location.
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub location: Option<String>,
}

/// `GET /v1/inventory`: stock of a product, per location, with the data's age.
#[utoipa::path(
    get,
    path = "/v1/inventory",
    operation_id = "getInventory",
    tag = "inventory",
    params(InventoryQuery),
    responses(
        (status = 200, description = "Stock per location; `Age` is the oldest figure's age in seconds", body = InventoryView,
            headers(("Age" = String, description = "Age of the oldest figure (seconds)"))),
    ),
    security(("api_key" = []), ("oauth2" = ["inventory:read"]))
)]
pub async fn inquire(
    State(state): State<AppState>,
    _caller: Authorized<InventoryRead>,
    ApiQuery(query): ApiQuery<InventoryQuery>,
) -> Result<Response, Problem> {
    let mut errors = Vec::new();
    if !is_id(&query.sku) {
        errors.push(FieldError::new(
            "sku",
            "1-64 letters, digits, `.`, `_` or `-`",
        ));
    }
    if let Some(location) = &query.location
        && !is_id(location)
    {
        errors.push(FieldError::new(
            "location",
            "1-64 letters, digits, `.`, `_` or `-`",
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let engine = &state.engine;
    let now = engine.clock().now();
    let max_age = state.config().inventory_max_age();
    let max_age_i = i64::try_from(max_age).unwrap_or(i64::MAX);
    let location = query.location.as_deref();
    let cached: Vec<InventoryRow> = state
        .store()
        .inventory(std::slice::from_ref(&query.sku))
        .await?
        .into_iter()
        .filter(|row| row.sku == query.sku && location.is_none_or(|l| row.location == l))
        .collect();
    let fresh = !cached.is_empty()
        && cached
            .iter()
            .all(|row| (now - row.as_of).whole_seconds() <= max_age_i);
    let (rows, source) = if fresh {
        (cached, InventorySource::Cache)
    } else {
        match refresh(&state, &query.sku, location).await {
            Some(rows) if !rows.is_empty() => (rows, InventorySource::Erp),
            Some(_) if cached.is_empty() => {
                return Err(Problem::not_found(format!(
                    "the ERP knows no stock of {}{}",
                    query.sku,
                    location.map(|l| format!(" at {l}")).unwrap_or_default()
                )));
            }
            None if cached.is_empty() => {
                return Err(Problem::of(
                    "erp-unavailable",
                    format!(
                        "no cached stock of {} and the ERP did not answer in time",
                        query.sku
                    ),
                )
                .with_retry_after(5));
            }
            _ => (cached, InventorySource::Cache),
        }
    };
    let levels: Vec<StockLevel> = rows
        .iter()
        .map(|row| StockLevel {
            location: row.location.clone(),
            on_hand: row.on_hand,
            reserved: row.reserved,
            available: row.available,
            as_of: rfc3339(row.as_of),
            age_seconds: (now - row.as_of).whole_seconds().max(0),
        })
        .collect();
    let oldest = levels.iter().map(|l| l.age_seconds).max().unwrap_or(0);
    let view = InventoryView {
        sku: query.sku.clone(),
        location: query.location.clone(),
        source,
        stale: oldest > max_age_i,
        max_age_seconds: max_age,
        levels,
    };
    let mut response = axum::Json(view).into_response();
    if let Ok(value) = HeaderValue::from_str(&oldest.to_string()) {
        response.headers_mut().insert("age", value);
    }
    Ok(response)
}

/// Asks the ERP within the budget and stores what it said; `None` when it could not answer.
async fn refresh(state: &AppState, sku: &str, location: Option<&str>) -> Option<Vec<InventoryRow>> {
    let engine = &state.engine;
    if engine.lane(LaneName::Erp).breaker() == BreakerState::Open {
        return None;
    }
    let location_id = location.map(LocationId::new);
    let budget = Duration::from_millis(state.config().erp_budget_ms);
    let skus = [Sku::new(sku)];
    let asked = engine.erp().availability(&skus, location_id.as_ref());
    let levels = match tokio::time::timeout(budget, asked).await {
        Ok(Ok(levels)) => levels,
        Ok(Err(failure)) => {
            tracing::info!(sku, %failure, "ERP stock inquiry failed; serving the cache");
            return None;
        }
        Err(_) => {
            tracing::info!(sku, "ERP stock inquiry too slow; serving the cache");
            return None;
        }
    };
    let now = engine.clock().now();
    let rows: Vec<InventoryRow> = levels
        .into_iter()
        .filter(|l| l.sku.as_str() == sku && location.is_none_or(|loc| l.location.as_str() == loc))
        .map(|l| InventoryRow {
            sku: l.sku.to_string(),
            location: l.location.to_string(),
            on_hand: l.on_hand,
            reserved: l.reserved,
            available: l.available,
            as_of: l.as_of,
            updated_at: now,
        })
        .collect();
    if !rows.is_empty() {
        let decision = Decision {
            inventory: rows.clone(),
            ..Decision::default()
        };
        if let Err(error) = state.store().commit(decision).await {
            tracing::warn!(sku, %error, "Could not refresh the inventory cache");
        }
    }
    Some(rows)
}
