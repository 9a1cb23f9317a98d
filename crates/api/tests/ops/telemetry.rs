//! Traces leave over OTLP/HTTP (protobuf) to the configured collector.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use crossdock_api::telemetry::{self, LogFormat, TelemetryConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_stage_spans_are_exported_over_otlp() {
    // (content type, body) of each export call.
    type Calls = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received: Calls = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().expect("lock").push((kind, body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = TelemetryConfig {
        log_filter: "info".to_owned(),
        log_format: LogFormat::Json,
        otlp_endpoint: Some(endpoint),
        service_name: "crossdock-test".to_owned(),
        otlp_timeout_secs: 5,
    };
    // A connector wrapped for tracing: the booking's key names the order stage.
    let erp = telemetry::TracedErp(Arc::new(crossdock_engine::loopback::LoopbackErp::new(
        Arc::new(crossdock_ports::SystemClock),
    )));
    let request = crossdock_ports::erp::BookingRequest {
        reference: crossdock_domain::ids::OrderId::new("ORD-7"),
        sf_number: None,
        account: crossdock_domain::ids::AccountId::new("ACME"),
        currency: crossdock_domain::money::Currency::USD,
        lines: vec![crossdock_ports::erp::BookingLine {
            line: crossdock_domain::ids::LineNo(1),
            sku: crossdock_domain::ids::Sku::new("SKU-1"),
            quantity: 1,
            unit_price: rust_decimal::Decimal::ONE,
        }],
        fulfilment: None,
        region: None,
    };
    let runtime = tokio::runtime::Handle::current();
    // The exporter's HTTP client blocks: like the binary, build and drop it outside async code.
    tokio::task::spawn_blocking(move || {
        let (subscriber, guard) = telemetry::subscriber(&config).expect("builds");
        tracing::subscriber::with_default(subscriber, || {
            {
                let stage = telemetry::order_stage("ORD-42", "book", Some("salesforce:msg-1"));
                let _stage = stage.enter();
                let call = telemetry::connector_call("erp", "book_order");
                let _call = call.enter();
                tracing::info!("Booked");
            }
            let booked = runtime.block_on(crossdock_ports::Erp::book_order(
                &erp,
                &request,
                "ORD-7/book",
            ));
            assert!(booked.is_ok(), "{booked:?}");
        });
        // Dropping the guard flushes the batch.
        drop(guard);
    })
    .await
    .expect("exported");
    let received = received.lock().expect("lock").clone();
    assert!(!received.is_empty(), "the collector received nothing");
    assert!(
        received
            .iter()
            .all(|(kind, _)| kind == "application/x-protobuf")
    );
    let all: Vec<u8> = received.iter().flat_map(|(_, body)| body.clone()).collect();
    let text = String::from_utf8_lossy(&all);
    // The hand-made stage and the traced connector's stage named by its idempotency key.
    for needle in [
        "crossdock-test",
        "book ORD-42",
        "erp book_order",
        "ORD-42",
        "salesforce:msg-1",
        "book ORD-7",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from the exported spans"
        );
    }
}
