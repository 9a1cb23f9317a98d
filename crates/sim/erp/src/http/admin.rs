//! Admin API: statistics, fault knobs, outages, the manual clock, webhooks and master data.
//! Never affected by injected faults (a connection-level outage still cuts the main listener;
//! use the admin listener or the `Handle` then).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::clock::format_ms;
use crate::config::ClockMode;
use crate::error::{ApiError, Code, Result};
use crate::faults::{Faults, OutageMode};
use crate::ops::{optional_str, parse_date, parse_qty, required_str};
use crate::server::{Sim, parse_body, to_json};

fn answer(result: Result<(StatusCode, Value)>) -> Response {
    match result {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}

fn ok(result: Result<Value>) -> Response {
    answer(result.map(|body| (StatusCode::OK, body)))
}

pub(super) async fn stats(State(sim): State<Sim>) -> Response {
    let st = sim.lock();
    ok(Ok(crate::admin_stats(
        &st,
        sim.clock.mode(),
        sim.persist.as_ref(),
    )))
}

pub(super) async fn get_faults(State(sim): State<Sim>) -> Response {
    ok(Ok(to_json(sim.lock().faults())))
}

pub(super) async fn put_faults(State(sim): State<Sim>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(error) => {
            return ApiError::from_json(&error).into_response();
        }
    };
    if let Err(message) = faults.validate() {
        return ApiError::bad_request(Code::InvalidFaults, message).into_response();
    }
    let mut st = sim.lock();
    st.faults = faults;
    ok(Ok(to_json(st.faults())))
}

pub(super) async fn list_outages(State(sim): State<Sim>) -> Response {
    let st = sim.lock();
    ok(Ok(
        json!({ "now": format_ms(st.now_ms()), "active": st.active_outage(), "outages": st.outages }),
    ))
}

pub(super) async fn start_outage(State(sim): State<Sim>, body: Bytes) -> Response {
    let result = (|| {
        let body = parse_body(&body)?;
        let mode = match optional_str(&body, "mode")? {
            None | Some("http_503") => OutageMode::Http503,
            Some("connection") => OutageMode::Connection,
            Some(other) => {
                return Err(ApiError::bad_request(
                    Code::InvalidRequest,
                    format!("mode must be http_503 or connection, got {other:?}"),
                ));
            }
        };
        let mut st = sim.lock();
        let now = st.now_ms();
        let start = match (
            parse_date(optional_str(&body, "start_at")?, "start_at")?,
            body.get("start_in_ms").and_then(Value::as_i64),
        ) {
            (Some(at), _) => at,
            (None, Some(delay)) => now + delay.max(0),
            (None, None) => now,
        };
        let end = body
            .get("duration_ms")
            .and_then(Value::as_i64)
            .map(|d| start + d.max(1));
        let id = st.add_outage(mode, start, end);
        let outage = st.outages.iter().find(|o| o.id == id).cloned();
        Ok((StatusCode::CREATED, to_json(&outage)))
    })();
    answer(result)
}

pub(super) async fn stop_outages(State(sim): State<Sim>) -> Response {
    let stopped = sim.lock().stop_outages();
    ok(Ok(json!({ "stopped": stopped })))
}

pub(super) async fn clock(State(sim): State<Sim>) -> Response {
    let st = sim.lock();
    ok(Ok(
        json!({ "now": format_ms(st.now_ms()), "now_ms": st.now_ms(), "mode": sim.clock.mode() }),
    ))
}

pub(super) async fn advance(State(sim): State<Sim>, body: Bytes) -> Response {
    let result = (|| {
        let body = parse_body(&body)?;
        if sim.clock.mode() != ClockMode::Manual {
            return Err(ApiError::conflict(
                Code::InvalidRequest,
                "the clock is in real mode; it cannot be advanced by hand",
            ));
        }
        let ms = body
            .get("ms")
            .and_then(Value::as_i64)
            .filter(|ms| *ms >= 0)
            .ok_or_else(|| {
                ApiError::bad_request(
                    Code::InvalidRequest,
                    "ms must be a non-negative whole number of milliseconds",
                )
            })?;
        let mut st = sim.lock();
        let target = st.now_ms().saturating_add(ms);
        st.run_until(target);
        Ok(
            json!({ "now": format_ms(st.now_ms()), "now_ms": st.now_ms(), "last_seq": st.last_seq() }),
        )
    })();
    ok(result)
}

pub(super) async fn list_webhooks(State(sim): State<Sim>) -> Response {
    let st = sim.lock();
    ok(Ok(
        json!({ "webhooks": st.webhooks().map(crate::webhooks::describe).collect::<Vec<_>>() }),
    ))
}

pub(super) async fn add_webhook(State(sim): State<Sim>, body: Bytes) -> Response {
    let result = (|| {
        let body = parse_body(&body)?;
        let url = required_str(&body, "url")?.to_owned();
        let secret = required_str(&body, "secret")?.to_owned();
        let event_types = match body.get("event_types") {
            None | Some(Value::Null) => None,
            Some(Value::Array(types)) => Some(
                types
                    .iter()
                    .map(|t| t.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ApiError::bad_request(Code::InvalidRequest, "event_types must be strings")
                    })?,
            ),
            Some(_) => {
                return Err(ApiError::bad_request(
                    Code::InvalidRequest,
                    "event_types must be an array",
                ));
            }
        };
        let id = crate::webhooks::register(&sim, url, secret, event_types)?;
        let st = sim.lock();
        let webhook = st.webhooks.get(&id).map(crate::webhooks::describe);
        Ok((StatusCode::CREATED, json!(webhook)))
    })();
    answer(result)
}

pub(super) async fn delete_webhook(State(sim): State<Sim>, Path(id): Path<u64>) -> Response {
    let removed = sim.lock().webhooks.remove(&id);
    match removed {
        Some(webhook) => {
            webhook.notify.notify_one();
            ok(Ok(json!({ "deleted": id })))
        }
        None => ApiError::not_found(Code::UnknownWebhook, format!("unknown webhook {id}"))
            .into_response(),
    }
}

pub(super) async fn list_customers(State(sim): State<Sim>) -> Response {
    let st = sim.lock();
    ok(Ok(
        json!({ "customers": st.customers().collect::<Vec<_>>() }),
    ))
}

pub(super) async fn set_hold(
    State(sim): State<Sim>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let body = parse_body(&body)?;
        let on_hold = body
            .get("on_hold")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                ApiError::bad_request(Code::InvalidRequest, "on_hold must be true or false")
            })?;
        Ok(to_json(&sim.lock().set_hold(&key, on_hold)?))
    })();
    ok(result)
}

pub(super) async fn list_orders(State(sim): State<Sim>) -> Response {
    let st = sim.lock();
    let orders: Vec<Value> = st
        .orders
        .values()
        .map(|o| {
            json!({
                "number": o.number,
                "external_ref": o.external_ref,
                "customer": o.customer,
                "status": o.status,
                "total_amount": o.total_amount,
            })
        })
        .collect();
    ok(Ok(json!({ "orders": orders })))
}

pub(super) async fn upsert_item(
    State(sim): State<Sim>,
    Path(sku): Path<String>,
    body: Bytes,
) -> Response {
    ok((|| {
        Ok(to_json(&sim.lock().upsert_item(&sku, &parse_body(&body)?)?))
    })())
}

pub(super) async fn upsert_location(
    State(sim): State<Sim>,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    ok((|| {
        Ok(to_json(
            &sim.lock().upsert_location(&code, &parse_body(&body)?)?,
        ))
    })())
}

pub(super) async fn set_stock(
    State(sim): State<Sim>,
    Path((sku, location)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let body = parse_body(&body)?;
        let on_hand = match body.get("on_hand") {
            Some(Value::Number(n)) if n.as_u64() == Some(0) => 0,
            Some(value) => parse_qty(value, "on_hand")?,
            None => {
                return Err(ApiError::bad_request(
                    Code::InvalidRequest,
                    "on_hand is required",
                ));
            }
        };
        sim.lock().set_on_hand(&sku, &location, on_hand)
    })();
    ok(result)
}

pub(super) async fn set_customer_price(
    State(sim): State<Sim>,
    Path((customer, sku)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    ok((|| {
        sim.lock()
            .set_customer_price(&customer, &sku, Some(&parse_body(&body)?))
    })())
}

pub(super) async fn delete_customer_price(
    State(sim): State<Sim>,
    Path((customer, sku)): Path<(String, String)>,
) -> Response {
    ok(sim.lock().set_customer_price(&customer, &sku, None))
}

pub(super) async fn list_promotions(State(sim): State<Sim>) -> Response {
    let st = sim.lock();
    ok(Ok(
        json!({ "promotions": st.promotions.values().collect::<Vec<_>>() }),
    ))
}

pub(super) async fn add_promotion(State(sim): State<Sim>, body: Bytes) -> Response {
    answer((|| {
        Ok((
            StatusCode::CREATED,
            to_json(&sim.lock().add_promotion(&parse_body(&body)?)?),
        ))
    })())
}

pub(super) async fn delete_promotion(State(sim): State<Sim>, Path(id): Path<String>) -> Response {
    ok(sim.lock().delete_promotion(&id).map(|p| to_json(&p)))
}

pub(super) async fn list_replenishments(State(sim): State<Sim>) -> Response {
    let st = sim.lock();
    let list: BTreeMap<_, _> = st.replenishments.iter().collect();
    ok(Ok(
        json!({ "replenishments": list.values().collect::<Vec<_>>() }),
    ))
}

pub(super) async fn add_replenishment(State(sim): State<Sim>, body: Bytes) -> Response {
    answer((|| {
        Ok((
            StatusCode::CREATED,
            to_json(&sim.lock().order_replenishment(&parse_body(&body)?)?),
        ))
    })())
}
