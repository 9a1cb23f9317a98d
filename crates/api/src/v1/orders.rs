//! Order submission, status, listing, timeline and shipments.
//!
//! Submission validates synchronously against the ERP (prices, stock, credit, fulfilment, all
//! judged by `crossdock_domain::order::judge`) within a time budget, then hands the engine the
//! capture (and, when validated, the validation with its facts) as inbound messages. Booking
//! happens asynchronously. The order id is domain-level (`SF-<number>` or
//! `EXT-<client>-<order id>`) and the capture message id is derived from it, so the same order
//! submitted under different idempotency keys is captured and booked once.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{
    Channel, Command, DraftLine, Lane as LaneName, OrderDraft, OrderStatus, ValidationFacts,
    Verdict, judge,
};
use crossdock_engine::BreakerState;
use crossdock_ports::erp::{FulfilmentRequest, PriceRequest};
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_store::OrderQuery;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::audit::record;
use crate::auth::refs::{self, SalesforceRef};
use crate::auth::scope::{OrdersRead, OrdersWrite};
use crate::auth::{Authorized, Principal};
use crate::dto::{
    ChannelName, CheckReport, FulfilmentReport, OrderAccepted, OrderLinks, OrderPage,
    OrderStatusV1, ShipmentsView, SubmitOrder, TimelineItem, TimelinePage, ValidationReport,
    ValidationState, is_id,
};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency::{self, Claim};
use crate::middleware::CorrelationId;
use crate::problem::{FieldError, Problem};
use crate::redact::redact_json;
use crate::state::AppState;
use crate::views::{self, order_v1, rfc3339, visible_order};

/// `POST /v1/orders`: submit an order.
///
/// Salesforce identifiers (`salesforce_order_number`, `salesforce_id`) are accepted from
/// clients without account or channel limits (they speak for Salesforce), unless another order
/// already holds them. A client limited to accounts or channels names its orders with
/// `external_order_id`; it may send a Salesforce identifier only when repeating the submission
/// of its own order that already carries it. Any other use is refused with 422 on that field,
/// the same answer whether the identifier is unknown, another account's or another order's.
#[utoipa::path(
    post,
    path = "/v1/orders",
    operation_id = "submitOrder",
    tag = "orders",
    request_body = SubmitOrder,
    params(
        ("Idempotency-Key" = String, Header, description = "Client-chosen key; a repeat with the same key and body gets the first answer again"),
    ),
    responses(
        (status = 202, description = "Accepted: validated (or validation pending); booking follows asynchronously", body = OrderAccepted),
        (status = 409, description = "The order id exists with other content, or a request with this key is still running", body = crate::dto::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("oauth2" = ["orders:write"]))
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Authorized<OrdersWrite>,
    correlation: CorrelationId,
    headers: HeaderMap,
    body: ApiJson<SubmitOrder>,
) -> Response {
    let principal = caller.principal;
    let key = match idempotency::key_of(&headers) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    let fingerprint = idempotency::fingerprint(&body.raw);
    let record_key = match idempotency::claim(&state, &principal.id, &key, &fingerprint).await {
        Ok(Claim::Owned(record_key)) => record_key,
        Ok(Claim::Answer(response)) => return response,
        Err(problem) => return problem.into_response(),
    };
    let outcome = accept(&state, &principal, &correlation, &key, &body).await;
    let (status, value, content_type) = match outcome {
        Ok(accepted) => (
            StatusCode::ACCEPTED,
            serde_json::to_value(&accepted).unwrap_or_default(),
            "application/json",
        ),
        Err(problem) if problem.status == 429 => {
            idempotency::release(&state, &record_key).await;
            return problem.into_response();
        }
        Err(problem) => (
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            serde_json::to_value(&problem).unwrap_or_default(),
            "application/problem+json",
        ),
    };
    if let Err(problem) = idempotency::finish(
        &state,
        &record_key,
        &fingerprint,
        status,
        &value,
        content_type,
    )
    .await
    {
        return problem.into_response();
    }
    let mut response = (status, serde_json::to_vec(&value).unwrap_or_default()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::ACCEPTED
        && let Some(order) = value.get("order_id").and_then(|v| v.as_str())
        && let Ok(location) = HeaderValue::from_str(&format!("/v1/orders/{order}"))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The order a submission describes, checked field by field.
fn draft_of(
    request: &SubmitOrder,
    principal: &Principal,
    now: time::OffsetDateTime,
) -> Result<OrderDraft, Problem> {
    let mut errors = Vec::new();
    let order_id = match (&request.salesforce_order_number, &request.external_order_id) {
        (Some(number), _) if is_id(number) => Some(format!("SF-{number}")),
        (Some(_), _) => {
            errors.push(FieldError::new(
                "salesforce_order_number",
                "1-64 letters, digits, `.`, `_` or `-`",
            ));
            None
        }
        (None, Some(external)) if is_id(external) => {
            Some(format!("EXT-{}-{external}", principal.client))
        }
        (None, Some(_)) => {
            errors.push(FieldError::new(
                "external_order_id",
                "1-64 letters, digits, `.`, `_` or `-`",
            ));
            None
        }
        (None, None) => {
            errors.push(FieldError::new(
                "salesforce_order_number",
                "give the Salesforce order number or an external_order_id",
            ));
            None
        }
    };
    if !is_id(&request.account) {
        errors.push(FieldError::new(
            "account",
            "1-64 letters, digits, `.`, `_` or `-`",
        ));
    }
    if let Some(sf_id) = &request.salesforce_id
        && !((sf_id.len() == 15 || sf_id.len() == 18)
            && sf_id.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        errors.push(FieldError::new(
            "salesforce_id",
            "a 15 or 18 character Salesforce id",
        ));
    }
    if let Some(region) = &request.region
        && !is_id(region)
    {
        errors.push(FieldError::new(
            "region",
            "1-64 letters, digits, `.`, `_` or `-`",
        ));
    }
    let currency = request
        .currency
        .parse::<Currency>()
        .map_err(|e| e.to_string());
    if let Err(message) = &currency {
        errors.push(FieldError::new("currency", message.clone()));
    }
    if request.lines.is_empty() || request.lines.len() > 200 {
        errors.push(FieldError::new("lines", "between 1 and 200 lines"));
    }
    let mut lines = Vec::with_capacity(request.lines.len());
    for (index, line) in request.lines.iter().enumerate() {
        if !is_id(&line.sku) {
            errors.push(FieldError::new(
                format!("lines[{index}].sku"),
                "1-64 letters, digits, `.`, `_` or `-`",
            ));
        }
        if line.quantity == 0 || line.quantity > 1_000_000 {
            errors.push(FieldError::new(
                format!("lines[{index}].quantity"),
                "between 1 and 1000000",
            ));
        }
        let price = parse_money(&line.unit_price);
        if price.is_none() {
            errors.push(FieldError::new(
                format!("lines[{index}].unit_price"),
                "a non-negative decimal string with at most 4 decimals, e.g. \"12.50\"",
            ));
        }
        if let (Some(price), Ok(currency)) = (price, &currency)
            && let Some(message) = beyond_minor_unit(price, *currency)
        {
            errors.push(FieldError::new(
                format!("lines[{index}].unit_price"),
                message,
            ));
        }
        lines.push(DraftLine {
            line: LineNo(u32::try_from(index + 1).unwrap_or(u32::MAX)),
            sku: Sku::new(line.sku.clone()),
            quantity: line.quantity,
            unit_price: price.unwrap_or_default(),
            sf_id: None,
        });
    }
    let (Some(order_id), Ok(currency), true) = (order_id, currency, errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    Ok(OrderDraft {
        id: OrderId::new(order_id),
        refs: ExternalRefs {
            sf_id: request.salesforce_id.clone(),
            sf_number: request.salesforce_order_number.clone(),
            erp_ref: None,
        },
        account: AccountId::new(request.account.clone()),
        channel: channel(request.channel),
        currency,
        lines,
        region: request.region.clone(),
        source: System::Api,
        captured_at: now,
    })
}

/// A submission's Salesforce identifiers, checked against the hub's records
/// ([`crate::auth::refs`]): a client limited to accounts or channels may only repeat those of
/// its own existing order; no client may take those another order holds. Refusals are one
/// 422 per field, the same whatever the reason.
async fn check_identifiers(
    state: &AppState,
    principal: &Principal,
    draft: &OrderDraft,
) -> Result<(), Problem> {
    if draft.refs.sf_number.is_some() && !refs::speaks_for_salesforce(principal) {
        let own = state
            .store()
            .order(draft.id.as_str())
            .await?
            .is_some_and(|row| principal.may_see(&row.account, &row.channel));
        if !own {
            return Err(refs::refused("salesforce_order_number"));
        }
    }
    if let Some(sf_id) = &draft.refs.sf_id {
        refs::check(
            state,
            principal,
            "salesforce_id",
            SalesforceRef::OrderId(sf_id),
            draft.id.as_str(),
        )
        .await?;
    }
    Ok(())
}

/// Parses a money string as the contract describes it.
pub fn parse_money(text: &str) -> Option<Decimal> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let shaped = !whole.is_empty()
        && whole.len() <= 12
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 4
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(text.contains('.') && fraction.is_empty());
    if !shaped {
        return None;
    }
    text.parse::<Decimal>().ok()
}

/// Why `price` cannot be an amount of `currency` (more decimals than its ISO 4217 minor unit:
/// `468.99` yen, `12.3456` dinars), if it cannot. Trailing zeros do not count (`468.00` yen is
/// 468 yen).
fn beyond_minor_unit(price: Decimal, currency: Currency) -> Option<String> {
    let places = currency.minor_units();
    let given = price.normalize().scale();
    (given > places).then(|| match places {
        0 => format!("{currency} has no minor unit: a whole amount, not {price}"),
        1 => format!("{currency} has 1 decimal place; {price} has {given}"),
        _ => format!("{currency} has {places} decimal places; {price} has {given}"),
    })
}

fn channel(name: ChannelName) -> Channel {
    match name {
        ChannelName::B2b => Channel::B2b,
        ChannelName::Web => Channel::Web,
        ChannelName::Marketplace => Channel::Marketplace,
        ChannelName::Store => Channel::Store,
    }
}

/// Whether a stored order is the same order as a new draft (ids, account, lines).
fn same_order(row: &crossdock_store::OrderRow, draft: &OrderDraft) -> bool {
    let Ok(summary) = views::summary(row) else {
        return false;
    };
    summary.account == draft.account
        && summary.currency == draft.currency
        && summary.channel == draft.channel
        && summary.lines.len() == draft.lines.len()
        && summary.lines.iter().zip(&draft.lines).all(|(a, b)| {
            a.line == b.line
                && a.sku == b.sku
                && a.quantity_ordered() == b.quantity
                && a.unit_price == b.unit_price
        })
}

trait Ordered {
    fn quantity_ordered(&self) -> u32;
}

impl Ordered for crossdock_domain::summary::LineSummary {
    fn quantity_ordered(&self) -> u32 {
        self.quantities.ordered
    }
}

async fn accept(
    state: &AppState,
    principal: &Principal,
    correlation: &CorrelationId,
    idempotency_key: &str,
    body: &ApiJson<SubmitOrder>,
) -> Result<OrderAccepted, Problem> {
    let engine = &state.engine;
    let now = engine.clock().now();
    let draft = draft_of(&body.value, principal, now)?;
    if !principal.may_see(draft.account.as_str(), draft.channel.as_str()) {
        return Err(Problem::not_found(format!("no account {}", draft.account)));
    }
    check_identifiers(state, principal, &draft).await?;
    let order_id = draft.id.clone();
    if let Some(row) = state.store().order(order_id.as_str()).await? {
        if !principal.may_see(&row.account, &row.channel) || !same_order(&row, &draft) {
            return Err(Problem::of(
                "order-conflict",
                format!("order {order_id} was submitted before with other content"),
            ));
        }
        return Ok(existing(&row));
    }
    let backlog = state.backlog().await?;
    if backlog > state.config().backlog_limit {
        return Err(Problem::rate_limited(
            "backlog-full",
            format!(
                "{backlog} tasks are queued (limit {}); submit again later",
                state.config().backlog_limit
            ),
            state.config().backlog_retry_after_secs,
        ));
    }
    check_account_currency(state, &draft).await?;
    let facts = validation_facts(state, &draft).await?;
    let verdict = facts
        .as_ref()
        .map(|f| judge(&draft, f, &engine.config().validation));
    let raw = String::from_utf8_lossy(&body.raw).into_owned();
    let capture = InboundMessage {
        source: System::Api,
        message_id: format!("capture:{order_id}"),
        received_at: now,
        raw,
        body: Inbound::Order {
            order: order_id.clone(),
            command: Command::CaptureOrder(draft.clone()),
        },
    };
    engine
        .accept_message(capture)
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    if let Some(facts) = &facts {
        let validate = InboundMessage {
            source: System::Hub,
            message_id: format!("validate:{order_id}"),
            received_at: now,
            raw: serde_json::to_string(facts).unwrap_or_default(),
            body: Inbound::Order {
                order: order_id.clone(),
                command: Command::ValidateOrder {
                    facts: facts.clone(),
                    policy: engine.config().validation,
                    at: now,
                },
            },
        };
        engine
            .accept_message(validate)
            .await
            .map_err(|e| Problem::unavailable(e.to_string()))?;
    }
    let report = report(verdict.as_ref());
    record(
        state,
        principal,
        "order.submit",
        order_id.as_str(),
        json!({
            "correlation": correlation.0,
            "idempotency_key": idempotency_key,
            "account": draft.account,
            "lines": draft.lines.len(),
            "validation": report.state,
        }),
    )
    .await;
    if report.state == ValidationState::Failed {
        let reasons = verdict.map(|v| v.reasons()).unwrap_or_default();
        let mut problem = Problem::of(
            "order-rejected",
            format!("order {order_id} failed validation: {}", reasons.join("; ")),
        )
        .with_extension("order_id", json!(order_id))
        .with_extension("checks", json!(report.checks));
        problem.errors = report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| FieldError::new(c.check.clone(), c.detail.clone()))
            .collect();
        return Err(problem);
    }
    Ok(OrderAccepted {
        status: OrderStatus::Captured.as_str().to_owned(),
        status_code: if report.state == ValidationState::Passed {
            OrderStatus::Validated.name().to_owned()
        } else {
            OrderStatus::Captured.name().to_owned()
        },
        links: links(order_id.as_str()),
        order_id: order_id.to_string(),
        validation: report,
    })
}

fn links(order_id: &str) -> OrderLinks {
    OrderLinks {
        status: format!("/v1/orders/{order_id}"),
        timeline: format!("/v1/orders/{order_id}/timeline"),
        shipments: format!("/v1/orders/{order_id}/shipments"),
    }
}

/// The answer for an order the hub has already.
fn existing(row: &crossdock_store::OrderRow) -> OrderAccepted {
    let state = match OrderStatus::parse(&row.status) {
        Some(OrderStatus::Captured) => ValidationState::Pending,
        Some(OrderStatus::Rejected) => ValidationState::Failed,
        _ => ValidationState::Passed,
    };
    OrderAccepted {
        order_id: row.order_id.clone(),
        status: views::status_label(&row.status),
        status_code: row.status.clone(),
        validation: ValidationReport {
            state,
            checks: Vec::new(),
            backorder_expected: false,
            fulfilment: None,
        },
        links: links(&row.order_id),
    }
}

fn report(verdict: Option<&Verdict>) -> ValidationReport {
    match verdict {
        None => ValidationReport {
            state: ValidationState::Pending,
            checks: Vec::new(),
            backorder_expected: false,
            fulfilment: None,
        },
        Some(verdict) => ValidationReport {
            state: if verdict.passed() {
                ValidationState::Passed
            } else {
                ValidationState::Failed
            },
            checks: verdict
                .checks
                .iter()
                .map(|c| CheckReport {
                    check: serde_json::to_value(c.check)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    passed: c.passed,
                    detail: c.detail.clone(),
                })
                .collect(),
            backorder_expected: verdict.backorder_expected,
            fulfilment: verdict.fulfilment.as_ref().map(|f| FulfilmentReport {
                method: serde_json::to_value(f.method)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                locations: f.locations.iter().map(ToString::to_string).collect(),
                promised_date: f.promised_date.map(|d| d.to_string()),
            }),
        },
    }
}

/// Refuses an order in another currency than the one its account buys in, as the hub's
/// account records know it (kept from Salesforce and the ERP). An account the hub has no
/// record of, or whose record names no currency, is left to the ERP.
///
/// # Errors
/// 422 with the field `currency`; 503 when the store fails.
async fn check_account_currency(state: &AppState, draft: &OrderDraft) -> Result<(), Problem> {
    let Some(row) = state.store().account(draft.account.as_str()).await? else {
        return Ok(());
    };
    let Some(kept) = row
        .body
        .get("currency")
        .and_then(|c| c.as_str())
        .and_then(|c| c.parse::<Currency>().ok())
    else {
        return Ok(());
    };
    if kept == draft.currency {
        return Ok(());
    }
    Err(Problem::validation(vec![FieldError::new(
        "currency",
        format!(
            "account {} buys in {kept}, not {}",
            draft.account, draft.currency
        ),
    )]))
}

/// The field a permanent refusal of a validation lookup names: the ERP does not know the
/// account or a product, or keeps the customer's credit in another currency. The order could
/// never be booked, so the client hears it at once instead of a pending answer.
fn refused_field(draft: &OrderDraft, failure: &crossdock_ports::Failure) -> FieldError {
    let code = failure.code.as_deref().unwrap_or_default();
    let message = failure.message.clone();
    let mentions_sku = |sku: &Sku| {
        let sku = sku.as_str();
        message.match_indices(sku).any(|(at, _)| {
            let before = message[..at].chars().next_back();
            let after = message[at + sku.len()..].chars().next();
            let boundary = |c: Option<char>| {
                c.is_none_or(|c| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            };
            boundary(before) && boundary(after)
        })
    };
    match code {
        "unknown_customer" | "customer_unknown" => FieldError::new(
            "account",
            format!("the ERP knows no account {}: {message}", draft.account),
        ),
        "currency_mismatch" => FieldError::new("currency", message),
        _ => match draft.lines.iter().position(|l| mentions_sku(&l.sku)) {
            Some(index) if code == "unknown_item" || code.is_empty() || code == "not_found" => {
                FieldError::new(
                    format!("lines[{index}].sku"),
                    format!(
                        "the ERP knows no product {}: {message}",
                        draft.lines[index].sku
                    ),
                )
            }
            _ if code == "unknown_item" => FieldError::new("lines", message),
            _ => FieldError::new("order", message),
        },
    }
}

/// Asks the ERP what validation needs, within the budget; `None` when the ERP lane's circuit
/// is open, the ERP fails for a passing reason or it does not answer in time (validation then
/// happens before booking).
///
/// # Errors
/// 422 when the ERP refuses a lookup for good (unknown account or product, credit kept in
/// another currency): the order could never be booked.
async fn validation_facts(
    state: &AppState,
    draft: &OrderDraft,
) -> Result<Option<ValidationFacts>, Problem> {
    let engine = &state.engine;
    if engine.lane(LaneName::Erp).breaker() == BreakerState::Open {
        return Ok(None);
    }
    let erp = engine.erp();
    let now = engine.clock().now();
    let items: Vec<PriceRequest> = draft
        .lines
        .iter()
        .map(|l| PriceRequest {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    let mut skus: Vec<Sku> = draft.lines.iter().map(|l| l.sku.clone()).collect();
    skus.sort();
    skus.dedup();
    let total: Decimal = draft
        .lines
        .iter()
        .map(|l| Decimal::from(l.quantity) * l.unit_price)
        .sum();
    let fulfilment = FulfilmentRequest {
        account: draft.account.clone(),
        region: draft.region.clone(),
        lines: draft
            .lines
            .iter()
            .map(|l| (l.sku.clone(), l.quantity))
            .collect(),
    };
    let budget = Duration::from_millis(state.config().erp_budget_ms);
    let lookups = async {
        tokio::try_join!(
            erp.prices(&draft.account, &items, now.date()),
            erp.availability(&skus, None),
            erp.credit_check(&draft.account, total, draft.currency),
            erp.fulfilment_options(&fulfilment),
        )
    };
    let (quotes, levels, credit, options) = match tokio::time::timeout(budget, lookups).await {
        Ok(Ok(answers)) => answers,
        Ok(Err(failure)) if failure.class == crossdock_ports::FailureClass::Permanent => {
            tracing::info!(order = %draft.id, %failure, "ERP refused the order's lookups; refused at once");
            return Err(Problem::validation(vec![refused_field(draft, &failure)]));
        }
        Ok(Err(failure)) => {
            tracing::info!(order = %draft.id, %failure, "ERP lookup failed; validation deferred");
            return Ok(None);
        }
        Err(_) => {
            tracing::info!(order = %draft.id, budget_ms = budget.as_millis(), "ERP too slow; validation deferred");
            return Ok(None);
        }
    };
    let mut prices = BTreeMap::new();
    for line in &draft.lines {
        if let Some(quote) = quotes.iter().find(|q| q.sku == line.sku) {
            prices.insert(line.line, quote.unit_price);
        }
    }
    let mut available = BTreeMap::new();
    for level in levels {
        *available.entry(level.sku).or_insert(0) += level.available.max(0);
    }
    Ok(Some(ValidationFacts {
        prices,
        available,
        credit,
        options,
    }))
}

/// Path of one order.
#[derive(Debug, Deserialize)]
pub struct OrderPath {
    /// Any of the order's ids.
    pub id: String,
}

/// `GET /v1/orders/{id}`: status (deprecated in favour of `/v2/orders/{id}`).
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    operation_id = "getOrderV1",
    tag = "orders",
    params(("id" = String, Path, description = "Any of the order's ids: hub, Salesforce id or number, ERP number")),
    responses(
        (status = 200, description = "The order's status. Deprecated: see the `Link` header for its successor", body = OrderStatusV1,
            headers(("Deprecation" = String, description = "RFC 9745"), ("Sunset" = String, description = "RFC 8594"), ("Link" = String, description = "successor-version"))),
    ),
    security(("api_key" = []), ("oauth2" = ["orders:read"]))
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Authorized<OrdersRead>,
    ApiPath(path): ApiPath<OrderPath>,
) -> Result<Response, Problem> {
    let row = visible_order(&state, &caller.principal, &path.id).await?;
    let mut response = axum::Json(order_v1(&row)).into_response();
    let headers = response.headers_mut();
    let config = state.config();
    if let Ok(value) = HeaderValue::from_str(&format!("@{}", config.v1_order_status_deprecated_at))
    {
        headers.insert("deprecation", value);
    }
    if let Ok(sunset) = time::OffsetDateTime::parse(
        &config.v1_order_status_sunset,
        &time::format_description::well_known::Rfc3339,
    ) && let Ok(text) = sunset.format(&time::format_description::well_known::Rfc2822)
        && let Ok(value) = HeaderValue::from_str(&http_date(&text))
    {
        headers.insert("sunset", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!(
        "</v2/orders/{}>; rel=\"successor-version\"",
        row.order_id
    )) {
        headers.insert(header::LINK, value);
    }
    Ok(response)
}

/// RFC 2822 (`Tue, 30 Jun 2027 00:00:00 +0000`) as an HTTP-date (`… 00:00:00 GMT`).
fn http_date(rfc2822: &str) -> String {
    rfc2822
        .strip_suffix("+0000")
        .map_or_else(|| rfc2822.to_owned(), |s| format!("{s}GMT"))
}

/// Filters of the order list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// Only this status name (`Captured`, `Validated`, `Booked`, …).
    pub status: Option<String>,
    /// Only this account.
    pub account: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// `GET /v1/orders`: orders the caller may see, by id, paginated by cursor.
#[utoipa::path(
    get,
    path = "/v1/orders",
    operation_id = "listOrders",
    tag = "orders",
    params(OrderListQuery),
    responses((status = 200, description = "A page of orders", body = OrderPage)),
    security(("api_key" = []), ("oauth2" = ["orders:read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Authorized<OrdersRead>,
    ApiQuery(query): ApiQuery<OrderListQuery>,
) -> Result<axum::Json<OrderPage>, Problem> {
    let principal = caller.principal;
    let limit = query.limit.unwrap_or(50).clamp(1, 200) as usize;
    if let Some(status) = &query.status
        && OrderStatus::parse(status).is_none()
    {
        return Err(Problem::validation(vec![FieldError::new(
            "status",
            format!(
                "one of {}",
                OrderStatus::ALL.map(OrderStatus::name).join(", ")
            ),
        )]));
    }
    let mut after = query.cursor.as_deref().map(views::position).transpose()?;
    let account = match (&query.account, principal.accounts.as_slice()) {
        (Some(account), _) if !principal.may_see_account(account) => {
            return Ok(axum::Json(OrderPage {
                items: Vec::new(),
                next_cursor: None,
            }));
        }
        (Some(account), _) => Some(account.clone()),
        (None, [only]) => Some(only.clone()),
        (None, _) => None,
    };
    let mut items = Vec::with_capacity(limit);
    let mut exhausted = false;
    // Rows outside the caller's limits are skipped; read at most 20 store pages per request.
    for _ in 0..20 {
        let rows = state
            .store()
            .orders(OrderQuery {
                statuses: query.status.iter().cloned().collect(),
                account: account.clone(),
                after: after.clone(),
                limit: Some(limit + 1),
                ..OrderQuery::default()
            })
            .await?;
        let fetched = rows.len();
        for row in rows {
            after = Some(row.order_id.clone());
            if principal.may_see(&row.account, &row.channel) {
                items.push(order_v1(&row));
                if items.len() > limit {
                    break;
                }
            }
        }
        if items.len() > limit {
            break;
        }
        if fetched <= limit {
            exhausted = true;
            break;
        }
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|o| views::cursor(&o.order_id))
    } else if exhausted {
        None
    } else {
        after.as_deref().map(views::cursor)
    };
    Ok(axum::Json(OrderPage { items, next_cursor }))
}

/// Paging of a timeline.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1-500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// `GET /v1/orders/{id}/timeline`: what happened to the order, oldest first.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/timeline",
    operation_id = "getOrderTimeline",
    tag = "orders",
    params(("id" = String, Path, description = "Any of the order's ids"), PageQuery),
    responses((status = 200, description = "A page of the timeline", body = TimelinePage)),
    security(("api_key" = []), ("oauth2" = ["orders:read"]))
)]
pub async fn timeline(
    State(state): State<AppState>,
    caller: Authorized<OrdersRead>,
    ApiPath(path): ApiPath<OrderPath>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<axum::Json<TimelinePage>, Problem> {
    let row = visible_order(&state, &caller.principal, &path.id).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 500) as usize;
    let after: i64 = match &query.cursor {
        Some(cursor) => views::position(cursor)?
            .parse()
            .map_err(|_| Problem::bad_request("the cursor is not one this API issued"))?,
        None => 0,
    };
    let entries = state.store().timeline(&row.order_id).await?;
    let mut page: Vec<TimelineItem> = entries
        .into_iter()
        .filter(|e| e.id > after)
        .take(limit + 1)
        .map(|e| TimelineItem {
            id: e.id,
            at: rfc3339(e.entry.at),
            kind: e.entry.kind,
            summary: e.entry.summary,
            system: e.entry.system,
            outcome: e.entry.outcome,
            latency_ms: e.entry.latency_ms,
            correlation: e.entry.correlation,
            detail: match redact_json(&e.entry.detail) {
                object @ serde_json::Value::Object(_) => object,
                other => json!({ "value": other }),
            },
        })
        .collect();
    let next_cursor = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|e| views::cursor(&e.id.to_string()))
    } else {
        None
    };
    Ok(axum::Json(TimelinePage {
        order_id: row.order_id,
        entries: page,
        next_cursor,
    }))
}

/// `GET /v1/orders/{id}/shipments`: shipment status.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/shipments",
    operation_id = "getOrderShipments",
    tag = "orders",
    params(("id" = String, Path, description = "Any of the order's ids")),
    responses((status = 200, description = "The order's shipments", body = ShipmentsView)),
    security(("api_key" = []), ("oauth2" = ["orders:read"]))
)]
pub async fn shipments(
    State(state): State<AppState>,
    caller: Authorized<OrdersRead>,
    ApiPath(path): ApiPath<OrderPath>,
) -> Result<axum::Json<ShipmentsView>, Problem> {
    let row = visible_order(&state, &caller.principal, &path.id).await?;
    let summary = views::summary(&row)?;
    Ok(axum::Json(ShipmentsView {
        order_id: row.order_id.clone(),
        fulfilment_status: summary.fulfilment_status(),
        shipments: summary.shipments.iter().map(views::shipment).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::dto::SubmitLine;

    fn principal() -> Principal {
        Principal {
            id: "key:1".to_owned(),
            client: "web-shop".to_owned(),
            scopes: BTreeSet::new(),
            accounts: Vec::new(),
            channels: Vec::new(),
            rate_per_second: None,
        }
    }

    fn request() -> SubmitOrder {
        SubmitOrder {
            salesforce_order_number: None,
            salesforce_id: None,
            external_order_id: Some("W-1".to_owned()),
            account: "ACC-1".to_owned(),
            channel: ChannelName::Web,
            currency: "USD".to_owned(),
            region: None,
            lines: vec![SubmitLine {
                sku: "SKU-1".to_owned(),
                quantity: 2,
                unit_price: "12.50".to_owned(),
            }],
        }
    }

    #[test]
    fn order_ids_come_from_the_salesforce_number_first() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let draft = draft_of(&request(), &principal(), now).expect("valid");
        assert_eq!(draft.id.as_str(), "EXT-web-shop-W-1");
        let mut with_number = request();
        with_number.salesforce_order_number = Some("00012".to_owned());
        let draft = draft_of(&with_number, &principal(), now).expect("valid");
        assert_eq!(draft.id.as_str(), "SF-00012");
        assert_eq!(draft.lines[0].unit_price, Decimal::new(1250, 2));
        assert_eq!(draft.lines[0].line, LineNo(1));
    }

    #[test]
    fn invalid_fields_are_all_reported() {
        let mut bad = request();
        bad.external_order_id = None;
        bad.currency = "usd".to_owned();
        bad.lines[0].unit_price = "-1".to_owned();
        bad.lines[0].quantity = 0;
        let problem =
            draft_of(&bad, &principal(), time::OffsetDateTime::UNIX_EPOCH).expect_err("invalid");
        assert_eq!(problem.status, 422);
        let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "salesforce_order_number",
                "currency",
                "lines[0].quantity",
                "lines[0].unit_price"
            ]
        );
    }

    #[test]
    fn amounts_have_at_most_their_currency_s_decimal_places() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let with = |currency: &str, price: &str| {
            let mut r = request();
            r.currency = currency.to_owned();
            r.lines[0].unit_price = price.to_owned();
            draft_of(&r, &principal(), now).map_err(|p| {
                p.errors
                    .iter()
                    .map(|e| (e.field.clone(), e.message.clone()))
                    .collect::<Vec<_>>()
            })
        };
        for (currency, price) in [
            ("JPY", "468"),
            ("JPY", "468.00"),
            ("KWD", "12.345"),
            ("USD", "12.50"),
            ("EUR", "0.1"),
        ] {
            assert!(with(currency, price).is_ok(), "{price} {currency}");
        }
        let refused = with("JPY", "468.99").expect_err("yen have no minor unit");
        assert_eq!(refused[0].0, "lines[0].unit_price");
        assert!(refused[0].1.contains("JPY"), "{refused:?}");
        let refused = with("KWD", "12.3456").expect_err("dinars have 3 decimals");
        assert_eq!(refused[0].0, "lines[0].unit_price");
        assert!(refused[0].1.contains("3 decimal places"), "{refused:?}");
        assert!(with("USD", "1.005").is_err());
    }

    #[test]
    fn permanent_refusals_name_the_field_at_fault() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let mut r = request();
        r.lines.push(SubmitLine {
            sku: "SKU-10".to_owned(),
            quantity: 1,
            unit_price: "1.00".to_owned(),
        });
        let draft = draft_of(&r, &principal(), now).expect("valid");
        let field = |code: &str, message: &str| {
            refused_field(
                &draft,
                &crossdock_ports::Failure::permanent(message).with_code(code),
            )
            .field
        };
        assert_eq!(
            field("unknown_customer", "unknown customer \"ACC-1\""),
            "account"
        );
        // `SKU-1` is a prefix of `SKU-10`: the whole id is matched.
        assert_eq!(
            field("unknown_item", "unknown item \"SKU-10\""),
            "lines[1].sku"
        );
        assert_eq!(
            field("unknown_item", "unknown item \"SKU-1\""),
            "lines[0].sku"
        );
        assert_eq!(field("unknown_item", "unknown item \"SKU-7\""), "lines");
        assert_eq!(field("currency_mismatch", "credit in EUR"), "currency");
        assert_eq!(field("on_hold", "the customer is on hold"), "order");
    }

    #[test]
    fn money_strings_are_strict() {
        assert_eq!(parse_money("12.5"), Some(Decimal::new(125, 1)));
        assert_eq!(parse_money("0"), Some(Decimal::ZERO));
        for bad in [
            "",
            "1.",
            ".5",
            "-1",
            "1e3",
            "1.23456",
            "1,5",
            "1234567890123",
        ] {
            assert_eq!(parse_money(bad), None, "{bad}");
        }
    }

    #[test]
    fn sunset_is_an_http_date() {
        assert_eq!(
            http_date("Wed, 30 Jun 2027 00:00:00 +0000"),
            "Wed, 30 Jun 2027 00:00:00 GMT"
        );
    }
}
