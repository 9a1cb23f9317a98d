//! Pricing retrieval: the ERP's account-specific prices (negotiated prices, promotions).

use std::time::Duration;

use axum::extract::State;
use crossdock_domain::ids::{AccountId, Sku};
use crossdock_ports::FailureClass;
use crossdock_ports::erp::PriceRequest;

use crate::auth::Authorized;
use crate::auth::scope::PricesRead;
use crate::dto::{PriceList, PriceQuery, PriceQuote, is_id};
use crate::extract::ApiJson;
use crate::problem::{FieldError, Problem};
use crate::state::AppState;

/// `POST /v1/prices`: prices for an account.
#[utoipa::path(
    post,
    path = "/v1/prices",
    operation_id = "getPrices",
    tag = "pricing",
    request_body = PriceQuery,
    responses((status = 200, description = "The ERP's prices for the account", body = PriceList)),
    security(("api_key" = []), ("oauth2" = ["prices:read"]))
)]
pub async fn quote(
    State(state): State<AppState>,
    caller: Authorized<PricesRead>,
    body: ApiJson<PriceQuery>,
) -> Result<axum::Json<PriceList>, Problem> {
    let query = body.value;
    let mut errors = Vec::new();
    if !is_id(&query.account) {
        errors.push(FieldError::new(
            "account",
            "1-64 letters, digits, `.`, `_` or `-`",
        ));
    }
    if query.items.is_empty() || query.items.len() > 200 {
        errors.push(FieldError::new("items", "between 1 and 200 items"));
    }
    for (index, item) in query.items.iter().enumerate() {
        if !is_id(&item.sku) {
            errors.push(FieldError::new(
                format!("items[{index}].sku"),
                "1-64 letters, digits, `.`, `_` or `-`",
            ));
        }
        if item.quantity == 0 || item.quantity > 1_000_000 {
            errors.push(FieldError::new(
                format!("items[{index}].quantity"),
                "between 1 and 1000000",
            ));
        }
    }
    let today = state.engine.clock().now().date();
    let on = match &query.on {
        None => Some(today),
        Some(text) => time::Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .ok(),
    };
    if on.is_none() {
        errors.push(FieldError::new("on", "a date as YYYY-MM-DD"));
    }
    let (Some(on), true) = (on, errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    if !caller.principal.may_see_account(&query.account) {
        return Err(Problem::not_found(format!("no account {}", query.account)));
    }
    let items: Vec<PriceRequest> = query
        .items
        .iter()
        .map(|i| PriceRequest {
            sku: Sku::new(i.sku.clone()),
            quantity: i.quantity,
        })
        .collect();
    let budget = Duration::from_millis(state.config().erp_budget_ms);
    let account = AccountId::new(query.account.clone());
    let asked = state.engine.erp().prices(&account, &items, on);
    let quotes = match tokio::time::timeout(budget, asked).await {
        Ok(Ok(quotes)) => quotes,
        Ok(Err(failure)) if failure.class == FailureClass::Permanent => {
            return Err(Problem::unprocessable(
                "validation",
                format!("the ERP refused: {}", failure.message),
            ));
        }
        Ok(Err(failure)) => {
            return Err(Problem::of(
                "erp-unavailable",
                format!("the ERP could not price: {failure}"),
            )
            .with_retry_after(5));
        }
        Err(_) => {
            return Err(
                Problem::of("erp-unavailable", "the ERP did not answer in time")
                    .with_retry_after(5),
            );
        }
    };
    Ok(axum::Json(PriceList {
        account: query.account,
        on: on.to_string(),
        quotes: quotes
            .into_iter()
            .map(|q| PriceQuote {
                sku: q.sku.to_string(),
                unit_price: q.unit_price.to_string(),
                list_price: q.list_price.to_string(),
                currency: q.currency.to_string(),
                promotion: q.promotion,
            })
            .collect(),
    }))
}
