//! HTTP surface: `/api/v1/...` business operations (behind the fault gate) and `/admin/...`
//! control and master data (never faulted). Every route is documented in the crate README.

mod admin;
mod api;
pub(crate) mod io;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::error::{ApiError, Code};
use crate::server::Sim;

/// Requests with a body that only read (quotes and checks): they do not mark the state changed.
const READ_ONLY_POSTS: [&str; 3] = [
    "/api/v1/price-quotes",
    "/api/v1/credit-checks",
    "/api/v1/fulfilment-options",
];

/// With a data directory, holds every answer until the state it reflects is on disk: a request
/// that may have changed something marks the state changed, and the answer leaves only once a
/// write holding that revision completed (or not at all: 503 when the simulator stops first).
async fn durable_answers(State(sim): State<Sim>, request: Request, next: Next) -> Response {
    if sim.persist.is_none() {
        return next.run(request).await;
    }
    let write = !matches!(*request.method(), Method::GET | Method::HEAD)
        && !READ_ONLY_POSTS.contains(&request.uri().path());
    let response = next.run(request).await;
    if sim.wait_durable(write).await {
        response
    } else {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Code::ServiceUnavailable,
            "the ERP is shutting down",
        )
        .into_response()
    }
}

/// Builds the router.
pub(crate) fn router(sim: Sim) -> Router {
    Router::new()
        .route("/api/v1/items", get(api::list_items))
        .route("/api/v1/items/{sku}", get(api::get_item))
        .route("/api/v1/locations", get(api::list_locations))
        .route("/api/v1/price-quotes", post(api::price_quote))
        .route("/api/v1/availability/{sku}", get(api::availability))
        .route("/api/v1/credit-checks", post(api::credit_check))
        .route("/api/v1/fulfilment-options", post(api::fulfilment_options))
        .route("/api/v1/orders", post(api::book_order).get(api::find_order))
        .route("/api/v1/orders/{number}", get(api::get_order))
        .route("/api/v1/orders/{number}/cancel", post(api::cancel_order))
        .route(
            "/api/v1/orders/{number}/shipments",
            get(api::order_shipments),
        )
        .route("/api/v1/orders/{number}/invoices", get(api::order_invoices))
        .route("/api/v1/shipments/{id}", get(api::get_shipment))
        .route("/api/v1/invoices/{number}", get(api::get_invoice))
        .route("/api/v1/payments", post(api::record_payment))
        .route("/api/v1/rmas", post(api::create_rma).get(api::find_rma))
        .route("/api/v1/rmas/{number}", get(api::get_rma))
        .route("/api/v1/rmas/{number}/receipts", post(api::receive_return))
        .route(
            "/api/v1/rmas/{number}/credit-memos",
            post(api::issue_credit_memo),
        )
        .route("/api/v1/credit-memos/{number}", get(api::get_credit_memo))
        .route("/api/v1/credit-memos/{number}/refunds", post(api::refund))
        .route(
            "/api/v1/customers/{key}",
            put(api::upsert_customer).get(api::get_customer),
        )
        .route("/api/v1/customers/{key}/credit", get(api::customer_credit))
        .route("/api/v1/events", get(api::events))
        .route("/admin/stats", get(admin::stats))
        .route(
            "/admin/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .route(
            "/admin/outages",
            get(admin::list_outages)
                .post(admin::start_outage)
                .delete(admin::stop_outages),
        )
        .route("/admin/clock", get(admin::clock))
        .route("/admin/clock/advance", post(admin::advance))
        .route(
            "/admin/webhooks",
            get(admin::list_webhooks).post(admin::add_webhook),
        )
        .route(
            "/admin/webhooks/{id}",
            axum::routing::delete(admin::delete_webhook),
        )
        .route("/admin/customers", get(admin::list_customers))
        .route("/admin/customers/{key}/hold", put(admin::set_hold))
        .route("/admin/orders", get(admin::list_orders))
        .route("/admin/items/{sku}", put(admin::upsert_item))
        .route("/admin/locations/{code}", put(admin::upsert_location))
        .route("/admin/stock/{sku}/{location}", put(admin::set_stock))
        .route(
            "/admin/customer-prices/{customer}/{sku}",
            put(admin::set_customer_price).delete(admin::delete_customer_price),
        )
        .route(
            "/admin/promotions",
            get(admin::list_promotions).post(admin::add_promotion),
        )
        .route(
            "/admin/promotions/{id}",
            axum::routing::delete(admin::delete_promotion),
        )
        .route(
            "/admin/replenishments",
            get(admin::list_replenishments).post(admin::add_replenishment),
        )
        .fallback(|| async { ApiError::not_found(Code::NotFound, "no such route") })
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            durable_answers,
        ))
        .with_state(sim)
}
