//! An ERP restored from an old backup issues an order number again: the hub refuses the
//! second booking, flags both orders, and `crossdock dlq list` shows both exceptions.
//!
//! The hub runs in this process against an in-process ERP whose numbers restart from the
//! first after the "restore" (a fresh ERP on the same hub store); the listing is the real
//! binary's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Channel, Command, DraftLine, OrderDraft};
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce, list_price};
use crossdock_engine::{Engine, EngineConfig, Parts};
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_ports::{Clock, SeededRng, SystemClock};
use crossdock_store::{DeadLetterFilter, SharedStore};
use crossdock_testkit::TempDir;
use tokio_util::sync::CancellationToken;

fn capture(order: &str) -> InboundMessage {
    let sku = Sku::new("SKU-1");
    let body = Inbound::Order {
        order: OrderId::new(order),
        command: Command::CaptureOrder(OrderDraft {
            id: OrderId::new(order),
            refs: ExternalRefs {
                sf_id: Some(format!("801{order}")),
                sf_number: Some(order.to_owned()),
                erp_ref: None,
            },
            account: AccountId::new(format!("ACC-{order}")),
            channel: Channel::B2b,
            currency: Currency::USD,
            lines: vec![DraftLine {
                line: LineNo(1),
                unit_price: list_price(&sku),
                sku,
                quantity: 1,
                sf_id: None,
            }],
            region: None,
            source: System::Salesforce,
            captured_at: SystemClock.now(),
        }),
    };
    InboundMessage {
        source: System::Salesforce,
        message_id: format!("capture-{order}"),
        received_at: SystemClock.now(),
        raw: serde_json::to_string(&body).expect("json"),
        body,
    }
}

/// Runs a hub on `store` with a fresh ERP until `done` holds (or panics after a minute).
async fn run_hub<F, Fut>(store: &SharedStore, order: &str, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let config = EngineConfig {
        owner: "references-test".to_owned(),
        erp_poll: Duration::from_millis(10),
        idle_poll: Duration::from_millis(20),
        sf_sync_delay: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let engine = Engine::new(Parts {
        store: Arc::clone(store),
        erp: Arc::new(LoopbackErp::new(Arc::new(SystemClock))),
        salesforce: Arc::new(LoopbackSalesforce::default()),
        clock: Arc::new(SystemClock),
        rng: Arc::new(SeededRng::new(5)),
        config,
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&engine).run(shutdown.clone()));
    engine
        .accept_message(capture(order))
        .await
        .expect("accepted");
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.expect("engine stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_number_issued_again_shows_on_dlq_list() {
    let dir = TempDir::new("references").expect("temp dir");
    let path = dir.path().join("hub.sqlite");
    let store = crossdock_store::open(path.to_str().expect("utf-8"))
        .await
        .expect("store");

    run_hub(&store, "E2E-A", "E2E-A closed", || async {
        store
            .order("E2E-A")
            .await
            .unwrap()
            .is_some_and(|r| r.status == "Closed")
    })
    .await;
    let number = store
        .order("E2E-A")
        .await
        .unwrap()
        .and_then(|r| r.erp_ref)
        .expect("E2E-A's ERP number");

    // The ERP comes back from an old backup: its numbers start over.
    let conflicts = DeadLetterFilter {
        class: Some("reference-conflict".to_owned()),
        ..DeadLetterFilter::default()
    };
    run_hub(&store, "E2E-B", "both orders flagged", || async {
        store.dead_letters(conflicts.clone()).await.unwrap().len() == 2
    })
    .await;
    assert_eq!(
        store
            .order("E2E-A")
            .await
            .unwrap()
            .unwrap()
            .erp_ref
            .as_deref(),
        Some(number.as_str())
    );
    assert_eq!(store.order("E2E-B").await.unwrap().unwrap().erp_ref, None);
    store.close().await;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_crossdock"))
        .args([
            "dlq",
            "list",
            "--json",
            "--filter",
            "class=reference-conflict",
        ])
        .arg("--store")
        .arg(&path)
        .output()
        .await
        .expect("crossdock dlq list runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut flagged: Vec<(String, String, String)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| {
            assert!(
                v["error"].as_str().is_some_and(|e| e.contains(&number)),
                "{v}"
            );
            (
                v["order_id"].as_str().unwrap_or_default().to_owned(),
                v["kind"].as_str().unwrap_or_default().to_owned(),
                v["class"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    flagged.sort();
    assert_eq!(
        flagged,
        [
            (
                "E2E-A".to_owned(),
                "reference-conflict".to_owned(),
                "reference-conflict".to_owned()
            ),
            (
                "E2E-B".to_owned(),
                "book".to_owned(),
                "reference-conflict".to_owned()
            ),
        ]
    );
    let holder = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["order_id"] == "E2E-A")
        .unwrap();
    assert!(
        holder["error"]
            .as_str()
            .is_some_and(|e| e.contains("forgotten") && e.contains("E2E-B")),
        "{holder}"
    );
}
