//! From the store's read models to the wire types, and the lookups every order route shares
//! (resolve any id, then apply the caller's object-level limits).

use crossdock_domain::order::OrderStatus;
use crossdock_domain::summary::{OrderSummary, ReturnSummary, ShipmentSummary};
use crossdock_store::OrderRow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Principal;
use crate::dto::{
    AmountsView, InvoiceView, LineQuantity, LineView, OrderIds, OrderStatusV1, OrderStatusV2,
    ReturnView, ShipmentView, StatusView,
};
use crate::problem::Problem;
use crate::state::AppState;

/// RFC 3339 text of a time.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The order any id names, if the caller may see it; 404 otherwise (also when it exists but
/// belongs to an account or channel outside the caller's limits).
///
/// # Errors
/// 404, or 503 when the store fails.
pub async fn visible_order(
    state: &AppState,
    principal: &Principal,
    any_id: &str,
) -> Result<OrderRow, Problem> {
    let missing = || Problem::not_found(format!("no order {any_id}"));
    let Some(order_id) = state.store().resolve(any_id).await? else {
        return Err(missing());
    };
    let Some(row) = state.store().order(&order_id).await? else {
        return Err(missing());
    };
    if !principal.may_see(&row.account, &row.channel) {
        return Err(missing());
    }
    Ok(row)
}

/// The summary stored with a row.
///
/// # Errors
/// 500 when the stored summary cannot be read.
pub fn summary(row: &OrderRow) -> Result<OrderSummary, Problem> {
    row.body.parse().map_err(|e| {
        Problem::internal(format!(
            "the summary of order {} is unreadable: {e}",
            row.order_id
        ))
    })
}

/// Status label of a stored status name.
pub fn status_label(name: &str) -> String {
    OrderStatus::parse(name).map_or_else(|| name.to_owned(), |s| s.as_str().to_owned())
}

/// v1 status.
pub fn order_v1(row: &OrderRow) -> OrderStatusV1 {
    let fulfilment_status = summary(row)
        .map(|s| s.fulfilment_status())
        .unwrap_or_default();
    OrderStatusV1 {
        order_id: row.order_id.clone(),
        salesforce_id: row.sf_id.clone(),
        salesforce_order_number: row.sf_number.clone(),
        erp_order_number: row.erp_ref.clone(),
        account: row.account.clone(),
        channel: row.channel.clone(),
        status: status_label(&row.status),
        status_code: row.status.clone(),
        total: row.total.clone(),
        currency: row.currency.clone(),
        fulfilment_status,
        captured_at: row.captured_at.map(rfc3339),
        booked_at: row.booked_at.map(rfc3339),
        shipped_at: row.shipped_at.map(rfc3339),
        delivered_at: row.delivered_at.map(rfc3339),
        updated_at: rfc3339(row.updated_at),
    }
}

/// One shipment.
pub fn shipment(s: &ShipmentSummary) -> ShipmentView {
    ShipmentView {
        id: s.id.to_string(),
        location: s.location.as_ref().map(ToString::to_string),
        milestone: s.milestone.map(|m| m.as_str().to_owned()),
        carrier: s.carrier.clone(),
        tracking: s.tracking.clone(),
        lines: s
            .lines
            .iter()
            .map(|(line, quantity)| LineQuantity {
                line: line.0,
                quantity: *quantity,
            })
            .collect(),
    }
}

/// One return.
pub fn return_view(order_id: &str, r: &ReturnSummary) -> ReturnView {
    ReturnView {
        rma: r.rma.to_string(),
        order_id: order_id.to_owned(),
        status: r.status.as_str().to_owned(),
        erp_rma: r.erp_ref.clone(),
        case_number: r.case.sf_number.clone(),
        lines: r
            .lines
            .iter()
            .map(|(line, quantity)| LineQuantity {
                line: line.0,
                quantity: *quantity,
            })
            .collect(),
        credit_memos: r.credit_memos.clone(),
        credited: r.credited.to_string(),
        refunded: r.refunded.to_string(),
        refusal: r.refusal.clone(),
    }
}

/// v2 status.
///
/// # Errors
/// 500 when the stored summary cannot be read.
pub fn order_v2(row: &OrderRow) -> Result<OrderStatusV2, Problem> {
    let s = summary(row)?;
    Ok(OrderStatusV2 {
        ids: OrderIds {
            hub: row.order_id.clone(),
            salesforce_id: s.refs.sf_id.clone(),
            salesforce_order_number: s.refs.sf_number.clone(),
            erp_order_number: s.refs.erp_ref.clone(),
        },
        account: s.account.to_string(),
        channel: s.channel.as_str().to_owned(),
        status: StatusView {
            code: s.status.name().to_owned(),
            label: s.status.as_str().to_owned(),
            fulfilment: s.fulfilment_status(),
            reason: s.reason.clone(),
            salesforce_synced_status: row.sf_synced_status.clone(),
            salesforce_in_sync: row.sf_synced_version.is_some_and(|v| v >= row.version),
        },
        amounts: AmountsView {
            currency: s.currency.to_string(),
            total: s.total.to_string(),
            invoiced: s.invoiced.to_string(),
            paid: s.paid.to_string(),
            credited: s.credited.to_string(),
            refunded: s.refunded.to_string(),
        },
        lines: s
            .lines
            .iter()
            .map(|l| LineView {
                line: l.line.0,
                sku: l.sku.to_string(),
                unit_price: l.unit_price.to_string(),
                ordered: l.quantities.ordered,
                allocated: l.quantities.allocated,
                backordered: l.quantities.backordered,
                shipped: l.quantities.shipped,
                delivered: l.quantities.delivered,
                invoiced: l.quantities.invoiced,
                returned: l.quantities.returned,
            })
            .collect(),
        shipments: s.shipments.iter().map(shipment).collect(),
        invoices: s
            .invoices
            .iter()
            .map(|i| InvoiceView {
                id: i.id.to_string(),
                number: i.number.clone(),
                total: i.total.to_string(),
            })
            .collect(),
        returns: s
            .returns
            .iter()
            .map(|r| return_view(&row.order_id, r))
            .collect(),
        stage_times: serde_json::to_value(s.times).unwrap_or_default(),
        version: row.version,
        updated_at: rfc3339(row.updated_at),
    })
}

/// An opaque cursor from a position.
pub fn cursor(position: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position)
}

/// The position a cursor encodes.
///
/// # Errors
/// 400 for a cursor this API did not issue.
pub fn position(cursor: &str) -> Result<String, Problem> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Problem::bad_request("the cursor is not one this API issued"))
}
