//! Return authorisation: a return request becomes `Command::RequestReturn` on the order; the
//! ERP authorises it asynchronously. The return id is `RMA-<case number>` or
//! `RET-<client>-<return id>`, so a repeated request is the same return.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use crossdock_domain::ids::{ExternalRefs, LineNo, OrderId, RmaId, System};
use crossdock_domain::order::{Command, ReturnRequest};
use crossdock_ports::inbound::{Inbound, InboundMessage};
use serde::Deserialize;
use serde_json::json;

use crate::audit::record;
use crate::auth::Authorized;
use crate::auth::refs::{self, SalesforceRef};
use crate::auth::scope::{ReturnsRead, ReturnsWrite};
use crate::dto::{ReturnAccepted, ReturnSubmission, ReturnView, is_id};
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::CorrelationId;
use crate::problem::{FieldError, Problem};
use crate::state::AppState;
use crate::views::{self, visible_order};

/// `POST /v1/returns`: request a return.
///
/// Salesforce case identifiers (`case_number`, `case_id`) are accepted from clients without
/// account or channel limits (they speak for Salesforce), unless another order already holds
/// them. A client limited to accounts or channels names its returns with `return_id`; it may
/// send a case identifier only when repeating a return its own order already carries. Any
/// other use is refused with 422 on that field, the same answer whether the case is unknown,
/// another account's or another order's.
#[utoipa::path(
    post,
    path = "/v1/returns",
    operation_id = "requestReturn",
    tag = "returns",
    request_body = ReturnSubmission,
    responses((status = 202, description = "Requested; the ERP authorises it asynchronously", body = ReturnAccepted)),
    security(("api_key" = []), ("oauth2" = ["returns:write"]))
)]
pub async fn request(
    State(state): State<AppState>,
    caller: Authorized<ReturnsWrite>,
    correlation: CorrelationId,
    body: ApiJson<ReturnSubmission>,
) -> Result<(StatusCode, axum::Json<ReturnAccepted>), Problem> {
    let principal = caller.principal;
    let submission = &body.value;
    let mut errors = Vec::new();
    let rma = match (&submission.case_number, &submission.return_id) {
        (Some(case), _) if is_id(case) => Some(format!("RMA-{case}")),
        (None, Some(id)) if is_id(id) => Some(format!("RET-{}-{id}", principal.client)),
        (Some(_), _) => {
            errors.push(FieldError::new(
                "case_number",
                "1-64 letters, digits, `.`, `_` or `-`",
            ));
            None
        }
        (None, Some(_)) => {
            errors.push(FieldError::new(
                "return_id",
                "1-64 letters, digits, `.`, `_` or `-`",
            ));
            None
        }
        (None, None) => {
            errors.push(FieldError::new(
                "case_number",
                "give the Salesforce case number or a return_id",
            ));
            None
        }
    };
    if submission.reason.trim().is_empty() || submission.reason.len() > 500 {
        errors.push(FieldError::new("reason", "1-500 characters"));
    }
    if submission.lines.is_empty() || submission.lines.len() > 200 {
        errors.push(FieldError::new("lines", "between 1 and 200 lines"));
    }
    let mut lines = BTreeMap::new();
    for (index, line) in submission.lines.iter().enumerate() {
        if line.line == 0 || line.quantity == 0 || line.quantity > 1_000_000 {
            errors.push(FieldError::new(
                format!("lines[{index}]"),
                "line ≥ 1 and quantity 1-1000000",
            ));
        } else if lines.insert(LineNo(line.line), line.quantity).is_some() {
            errors.push(FieldError::new(
                format!("lines[{index}].line"),
                "each line once",
            ));
        }
    }
    let (Some(rma), true) = (rma, errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    let row = visible_order(&state, &principal, &submission.order).await?;
    for (field, reference) in [
        (
            "case_number",
            submission
                .case_number
                .as_deref()
                .map(SalesforceRef::CaseNumber),
        ),
        (
            "case_id",
            submission.case_id.as_deref().map(SalesforceRef::CaseId),
        ),
    ] {
        if let Some(reference) = reference {
            refs::check(&state, &principal, field, reference, &row.order_id).await?;
        }
    }
    let summary = views::summary(&row)?;
    for (line, quantity) in &lines {
        let shipped = summary
            .lines
            .iter()
            .find(|l| l.line == *line)
            .map(|l| l.quantities.delivered.max(l.quantities.shipped));
        match shipped {
            None => errors.push(FieldError::new(
                "lines",
                format!("order {} has no line {line}", row.order_id),
            )),
            Some(shipped) if *quantity > shipped => errors.push(FieldError::new(
                "lines",
                format!("line {line}: {quantity} to return, {shipped} shipped"),
            )),
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let now = state.engine.clock().now();
    let order = OrderId::new(row.order_id.clone());
    let command = Command::RequestReturn {
        rma: RmaId::new(rma.clone()),
        request: ReturnRequest {
            case: ExternalRefs {
                sf_id: submission.case_id.clone(),
                sf_number: submission.case_number.clone(),
                erp_ref: None,
            },
            lines,
            reason: submission.reason.clone(),
            at: now,
        },
    };
    state
        .engine
        .accept_message(InboundMessage {
            source: System::Api,
            message_id: format!("return:{rma}"),
            received_at: now,
            raw: String::from_utf8_lossy(&body.raw).into_owned(),
            body: Inbound::Order { order, command },
        })
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    record(
        &state,
        &principal,
        "return.request",
        &rma,
        json!({ "order": row.order_id, "correlation": correlation.0, "lines": submission.lines.len() }),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ReturnAccepted {
            rma,
            order_id: row.order_id,
            status: "Requested".to_owned(),
        }),
    ))
}

/// Path of one return.
#[derive(Debug, Deserialize)]
pub struct ReturnPath {
    /// Return id (or the ERP's RMA number, or the case id or number).
    pub rma: String,
}

/// `GET /v1/returns/{rma}`: a return's status.
#[utoipa::path(
    get,
    path = "/v1/returns/{rma}",
    operation_id = "getReturn",
    tag = "returns",
    params(("rma" = String, Path, description = "Return id, ERP RMA number, or Salesforce case id or number")),
    responses((status = 200, description = "The return", body = ReturnView)),
    security(("api_key" = []), ("oauth2" = ["returns:read"]))
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Authorized<ReturnsRead>,
    ApiPath(path): ApiPath<ReturnPath>,
) -> Result<axum::Json<ReturnView>, Problem> {
    let missing = || Problem::not_found(format!("no return {}", path.rma));
    let row = visible_order(&state, &caller.principal, &path.rma)
        .await
        .map_err(|_| missing())?;
    let summary = views::summary(&row)?;
    let found = summary.returns.iter().find(|r| {
        r.rma.as_str() == path.rma
            || r.erp_ref.as_deref() == Some(path.rma.as_str())
            || r.case.sf_number.as_deref() == Some(path.rma.as_str())
            || r.case.sf_id.as_deref() == Some(path.rma.as_str())
    });
    found
        .map(|r| axum::Json(views::return_view(&row.order_id, r)))
        .ok_or_else(missing)
}
