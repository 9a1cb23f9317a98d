//! Webhooks: signed with the secret, retried with backoff when the receiver fails.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use crossdock_sim_erp::Faults;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{TestErp, eventually};

/// A webhook receiver on 127.0.0.1 that records what it accepts.
#[derive(Default)]
pub struct Receiver {
    /// Answer 500 to this many requests first.
    fail_first: usize,
    seen: usize,
    /// Accepted deliveries: headers and body.
    pub accepted: Vec<(HeaderMap, Bytes)>,
}

async fn receive(
    State(receiver): State<Arc<Mutex<Receiver>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut receiver = receiver.lock().expect("lock");
    receiver.seen += 1;
    if receiver.seen <= receiver.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    receiver.accepted.push((headers, body));
    StatusCode::NO_CONTENT
}

pub async fn start_receiver(fail_first: usize) -> (String, Arc<Mutex<Receiver>>) {
    let receiver = Arc::new(Mutex::new(Receiver {
        fail_first,
        ..Receiver::default()
    }));
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, receiver)
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn test_config(seed: u64) -> crossdock_sim_erp::Config {
    let mut config = TestErp::config(seed);
    config.webhooks.retry_base_ms = 20;
    config.webhooks.retry_max_ms = 200;
    config
}

#[tokio::test]
async fn deliveries_are_signed_over_timestamp_and_body_with_the_secret() {
    let erp = TestErp::start(test_config(31)).await;
    let (url, receiver) = start_receiver(0).await;
    let registered = erp
        .post(
            "/admin/webhooks",
            json!({ "url": url, "secret": "whsec-1", "event_types": ["order.booked"] }),
        )
        .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    assert!(
        registered.body.get("secret").is_none(),
        "the secret is never echoed"
    );
    erp.rich_customer("SF-ACC-W").await;
    erp.post("/api/v1/orders", json!({ "external_ref": "SF-ORD-W", "customer": "SF-ACC-W", "lines": [{ "sku": "SKU-00001", "quantity": 1 }] })).await;
    eventually("the booking event", || {
        !receiver.lock().expect("lock").accepted.is_empty()
    })
    .await;
    let (headers, body) = receiver.lock().expect("lock").accepted[0].clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let timestamp = header("x-erp-timestamp");
    let signed = [timestamp.as_bytes(), b".", &body].concat();
    assert_eq!(
        header("x-erp-signature"),
        format!("sha256={}", hmac_hex("whsec-1", &signed))
    );
    assert_ne!(
        header("x-erp-signature"),
        format!("sha256={}", hmac_hex("wrong", &signed))
    );
    assert!(crossdock_sim_erp::webhooks::verify(
        "whsec-1",
        &timestamp,
        &body,
        &header("x-erp-signature")
    ));
    let event: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(event["type"], "order.booked");
    assert_eq!(
        header("x-erp-event-id"),
        event["id"].as_str().unwrap_or("-")
    );
    assert_eq!(event["data"]["external_ref"], "SF-ORD-W");
    // Only the subscribed type was sent.
    assert!(
        receiver
            .lock()
            .expect("lock")
            .accepted
            .iter()
            .all(|(h, _)| h["x-erp-event-type"] == "order.booked")
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_until_accepted() {
    let erp = TestErp::start(test_config(32)).await;
    let (url, receiver) = start_receiver(3).await;
    erp.post("/admin/webhooks", json!({ "url": url, "secret": "s" }))
        .await;
    erp.put("/api/v1/customers/SF-ACC-R", json!({ "name": "Retry Ltd" }))
        .await; // one event
    eventually("the retried delivery", || {
        !receiver.lock().expect("lock").accepted.is_empty()
    })
    .await;
    let (headers, body) = receiver.lock().expect("lock").accepted[0].clone();
    assert_eq!(headers["x-erp-delivery-attempt"], "4");
    let event: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        event["seq"], 1,
        "the first event waited for its retries: order is kept"
    );
    let hooks = erp.get("/admin/webhooks").await.body;
    assert_eq!(hooks["webhooks"][0]["failed_attempts"], 3);
    assert!(
        hooks["webhooks"][0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("500")
    );
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_receiver_dead_letters_after_the_last_attempt() {
    let mut config = test_config(33);
    config.webhooks.max_attempts = 3;
    let erp = TestErp::start(config).await;
    // Bind then drop a listener: nothing answers on that port.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    erp.post(
        "/admin/webhooks",
        json!({ "url": format!("http://127.0.0.1:{port}/gone"), "secret": "s" }),
    )
    .await;
    erp.put(
        "/api/v1/customers/SF-ACC-D",
        json!({ "name": "Dead Letter Co" }),
    )
    .await;
    eventually("dead letter", || {
        erp.handle
            .inspect(|s| s.webhooks().all(|w| w.dead_lettered == 1))
    })
    .await;
    erp.handle.inspect(|s| {
        let hook = s.webhooks().next().expect("hook");
        assert_eq!((hook.failed_attempts, hook.delivered), (3, 0));
        assert!(
            hook.last_error
                .as_deref()
                .unwrap_or("")
                .contains("connection")
        );
    });
    let bad = erp
        .post(
            "/admin/webhooks",
            json!({ "url": "http://example.com/hook", "secret": "s" }),
        )
        .await;
    assert_eq!(bad.code(), "invalid_request", "only local receivers");
    erp.handle.shutdown().await;
}

#[tokio::test]
async fn webhooks_see_duplicates_and_reordering_too() {
    let mut config = test_config(34);
    config.faults = Faults {
        duplicate_rate: 0.3,
        reorder_rate: 0.3,
        ..Faults::default()
    };
    let erp = TestErp::start(config).await;
    let (url, receiver) = start_receiver(0).await;
    erp.post("/admin/webhooks", json!({ "url": url, "secret": "s" }))
        .await;
    for n in 0..30 {
        erp.put(
            &format!("/api/v1/customers/SF-ACC-{n}"),
            json!({ "name": format!("Customer {n}") }),
        )
        .await;
    }
    erp.advance(3_600_000).await;
    let total = erp.handle.inspect(|s| {
        s.webhooks()
            .next()
            .map_or(0, |w| w.next_position - 1 + w.pending())
    });
    eventually("all deliveries", || {
        receiver.lock().expect("lock").accepted.len() as u64 >= total
    })
    .await;
    let seqs: Vec<u64> = receiver
        .lock()
        .expect("lock")
        .accepted
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Value>(body)
                .map(|e| e["seq"].as_u64().unwrap_or(0))
                .unwrap_or(0)
        })
        .collect();
    let distinct: std::collections::BTreeSet<u64> = seqs.iter().copied().collect();
    let last = erp.handle.inspect(|s| s.last_seq());
    assert_eq!(distinct, (1..=last).collect());
    assert!(seqs.len() > distinct.len(), "duplicates delivered");
    assert!(
        seqs.windows(2).any(|w| w[1] < w[0]),
        "out-of-order delivered"
    );
    erp.handle.shutdown().await;
}
