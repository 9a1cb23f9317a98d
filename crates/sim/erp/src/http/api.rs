//! Handlers of the business operations. Each names its operation (the key of fault rates and
//! statistics) and delegates to a synchronous `State` method under the lock.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::{ApiError, Code};
use crate::ops::{optional_str, parse_qty};
use crate::server::{Sim, parse_body, to_json};

fn created(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

pub(super) async fn list_items(State(sim): State<Sim>) -> Response {
    sim.read("catalog", |st| {
        Ok(json!({ "items": st.items().collect::<Vec<_>>() }))
    })
    .await
}

pub(super) async fn get_item(State(sim): State<Sim>, Path(sku): Path<String>) -> Response {
    sim.read("catalog", move |st| {
        let item = st.items.get(&sku).ok_or_else(|| {
            ApiError::not_found(Code::UnknownItem, format!("unknown item {sku:?}"))
        })?;
        Ok(to_json(item))
    })
    .await
}

pub(super) async fn list_locations(State(sim): State<Sim>) -> Response {
    sim.read("catalog", |st| {
        Ok(json!({ "locations": st.locations().collect::<Vec<_>>() }))
    })
    .await
}

pub(super) async fn price_quote(State(sim): State<Sim>, body: Bytes) -> Response {
    sim.read("price_quote", move |st| {
        let body = parse_body(&body)?;
        Ok(to_json(&st.quote_request(&body)?))
    })
    .await
}

pub(super) async fn availability(
    State(sim): State<Sim>,
    Path(sku): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    sim.read("availability", move |st| {
        st.availability(&sku, query.get("location").map(String::as_str))
    })
    .await
}

pub(super) async fn credit_check(State(sim): State<Sim>, body: Bytes) -> Response {
    sim.read("credit_check", move |st| {
        st.credit_check(&parse_body(&body)?)
    })
    .await
}

pub(super) async fn fulfilment_options(State(sim): State<Sim>, body: Bytes) -> Response {
    sim.read("fulfilment_options", move |st| {
        st.fulfilment_options(&parse_body(&body)?)
    })
    .await
}

pub(super) async fn book_order(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.write("book_order", &headers, move |st| {
        let (was_created, order) = st.book_order(&parse_body(&body)?)?;
        Ok((created(was_created), to_json(&order)))
    })
    .await
}

pub(super) async fn find_order(
    State(sim): State<Sim>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    sim.read("get_order", move |st| {
        let reference = query.get("external_ref").ok_or_else(|| {
            ApiError::bad_request(
                Code::InvalidRequest,
                "external_ref query parameter is required",
            )
        })?;
        let number = st.order_by_ref.get(reference).cloned().ok_or_else(|| {
            ApiError::not_found(
                Code::UnknownOrder,
                format!("no order with external_ref {reference:?}"),
            )
        })?;
        st.order_view(&number)
    })
    .await
}

pub(super) async fn get_order(State(sim): State<Sim>, Path(number): Path<String>) -> Response {
    sim.read("get_order", move |st| st.order_view(&number))
        .await
}

pub(super) async fn cancel_order(
    State(sim): State<Sim>,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.write("cancel_order", &headers, move |st| {
        let body = parse_body(&body)?;
        let order = st.cancel_order(&number, optional_str(&body, "reason")?)?;
        Ok((StatusCode::OK, to_json(&order)))
    })
    .await
}

pub(super) async fn order_shipments(
    State(sim): State<Sim>,
    Path(number): Path<String>,
) -> Response {
    sim.read("get_shipment", move |st| {
        let order = st.order(&number).ok_or_else(|| {
            ApiError::not_found(Code::UnknownOrder, format!("unknown order {number:?}"))
        })?;
        let shipments: Vec<_> = order
            .shipments
            .iter()
            .filter_map(|id| st.shipments.get(id))
            .collect();
        Ok(json!({ "order": order.number, "shipments": shipments }))
    })
    .await
}

pub(super) async fn order_invoices(State(sim): State<Sim>, Path(number): Path<String>) -> Response {
    sim.read("get_invoice", move |st| {
        Ok(json!({ "invoices": st.order_invoices(&number)? }))
    })
    .await
}

pub(super) async fn get_shipment(State(sim): State<Sim>, Path(id): Path<String>) -> Response {
    sim.read("get_shipment", move |st| {
        let shipment = st.shipment(&id).ok_or_else(|| {
            ApiError::not_found(Code::UnknownShipment, format!("unknown shipment {id:?}"))
        })?;
        Ok(to_json(shipment))
    })
    .await
}

pub(super) async fn get_invoice(State(sim): State<Sim>, Path(number): Path<String>) -> Response {
    sim.read("get_invoice", move |st| {
        let invoice = st.invoice(&number).ok_or_else(|| {
            ApiError::not_found(Code::UnknownInvoice, format!("unknown invoice {number:?}"))
        })?;
        let payments: Vec<_> = invoice
            .payments
            .iter()
            .filter_map(|id| st.payments.get(id))
            .collect();
        let mut body = to_json(invoice);
        body["payment_details"] = to_json(&payments);
        Ok(body)
    })
    .await
}

pub(super) async fn record_payment(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.write("record_payment", &headers, move |st| {
        let (was_created, payment) = st.record_payment(&parse_body(&body)?)?;
        Ok((created(was_created), to_json(&payment)))
    })
    .await
}

pub(super) async fn create_rma(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.write("create_rma", &headers, move |st| {
        let (was_created, rma) = st.create_rma(&parse_body(&body)?)?;
        Ok((created(was_created), to_json(&rma)))
    })
    .await
}

pub(super) async fn find_rma(
    State(sim): State<Sim>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    sim.read("get_rma", move |st| {
        let reference = query.get("external_ref").ok_or_else(|| {
            ApiError::bad_request(
                Code::InvalidRequest,
                "external_ref query parameter is required",
            )
        })?;
        let rma = st.rma(reference).ok_or_else(|| {
            ApiError::not_found(
                Code::UnknownRma,
                format!("no RMA with external_ref {reference:?}"),
            )
        })?;
        Ok(to_json(rma))
    })
    .await
}

pub(super) async fn get_rma(State(sim): State<Sim>, Path(number): Path<String>) -> Response {
    sim.read("get_rma", move |st| {
        let rma = st.rma(&number).ok_or_else(|| {
            ApiError::not_found(Code::UnknownRma, format!("unknown RMA {number:?}"))
        })?;
        Ok(to_json(rma))
    })
    .await
}

pub(super) async fn receive_return(
    State(sim): State<Sim>,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.write("receive_return", &headers, move |st| {
        let rma = st.receive_return(&number, &parse_body(&body)?)?;
        Ok((StatusCode::OK, to_json(&rma)))
    })
    .await
}

pub(super) async fn issue_credit_memo(
    State(sim): State<Sim>,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.write("issue_credit_memo", &headers, move |st| {
        parse_body(&body)?;
        let memo = st.issue_credit_memo(&number)?;
        Ok((StatusCode::CREATED, to_json(&memo)))
    })
    .await
}

pub(super) async fn get_credit_memo(
    State(sim): State<Sim>,
    Path(number): Path<String>,
) -> Response {
    sim.read("get_credit_memo", move |st| {
        let memo = st.credit_memo(&number).ok_or_else(|| {
            ApiError::not_found(
                Code::UnknownCreditMemo,
                format!("unknown credit memo {number:?}"),
            )
        })?;
        Ok(to_json(memo))
    })
    .await
}

pub(super) async fn refund(
    State(sim): State<Sim>,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.write("refund", &headers, move |st| {
        let (was_created, refund) = st.refund(&number, &parse_body(&body)?)?;
        Ok((created(was_created), to_json(&refund)))
    })
    .await
}

pub(super) async fn upsert_customer(
    State(sim): State<Sim>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.write("upsert_customer", &headers, move |st| {
        let (was_created, customer) = st.upsert_customer(&key, &parse_body(&body)?)?;
        Ok((created(was_created), to_json(&customer)))
    })
    .await
}

pub(super) async fn get_customer(State(sim): State<Sim>, Path(key): Path<String>) -> Response {
    sim.read("get_customer", move |st| {
        let customer = st.customer(&key).ok_or_else(|| {
            ApiError::not_found(Code::UnknownCustomer, format!("unknown customer {key:?}"))
        })?;
        Ok(to_json(customer))
    })
    .await
}

pub(super) async fn customer_credit(State(sim): State<Sim>, Path(key): Path<String>) -> Response {
    sim.read("customer_credit", move |st| {
        let view = st
            .customer_number(&key)
            .and_then(|n| st.credit_view(&n))
            .ok_or_else(|| {
                ApiError::not_found(Code::UnknownCustomer, format!("unknown customer {key:?}"))
            })?;
        Ok(to_json(&view))
    })
    .await
}

/// Most deliveries returned by one poll.
const MAX_PAGE: u64 = 1000;

pub(super) async fn events(
    State(sim): State<Sim>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    sim.read("feed", move |st| {
        let number = |name: &str, default: u64| -> Result<u64, ApiError> {
            match query.get(name) {
                None => Ok(default),
                Some(text) => text.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        Code::InvalidRequest,
                        format!("{name} must be a non-negative integer, got {text:?}"),
                    )
                }),
            }
        };
        let after = number("after", 0)?;
        let limit = match query.get("limit") {
            None => 100,
            Some(text) => parse_qty(&Value::from(text.parse::<u64>().unwrap_or(0)), "limit")
                .map_err(|_| {
                    ApiError::bad_request(
                        Code::InvalidRequest,
                        format!("limit must be between 1 and {MAX_PAGE}"),
                    )
                })?
                .min(MAX_PAGE),
        };
        st.release_held();
        let page = st
            .poll
            .page(after, usize::try_from(limit).unwrap_or(usize::MAX))
            .map_err(|first| {
                ApiError::new(
                    StatusCode::GONE,
                    Code::CursorExpired,
                    format!(
                        "events before position {first} are no longer retained; restart from {}",
                        first - 1
                    ),
                )
                .with_details(json!({ "first_position": first }))
            })?;
        let next_after = page.last().map_or(after, |d| d.position);
        let has_more = next_after < st.poll.last_position();
        Ok(json!({
            "events": page,
            "next_after": next_after,
            "has_more": has_more,
            "last_seq": st.last_seq(),
        }))
    })
    .await
}
