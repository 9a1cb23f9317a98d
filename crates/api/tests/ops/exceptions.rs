//! Order trace and exception handling against a running engine: trace by any id, dead letters
//! with retry, edit-and-retry checked against the contract, resolve, bulk replay with a dry run
//! and a report, auto-resolution, subscriber replay; every action audited.

use std::sync::Arc;
use std::time::Duration;

use crossdock_ports::SystemClock;
use crossdock_store::{
    DeadLetterFilter, DeadLetterStatus, Decision, LeaseRequest, NewDeadLetter, NewTask,
};
use serde_json::json;

use crate::harness::{Hub, capture_message, quick_settings};

async fn running(name: &str) -> Hub {
    Hub::start(name, Arc::new(SystemClock), quick_settings(), true).await
}

async fn status(hub: &Hub, order: &str) -> Option<String> {
    hub.store
        .order(order)
        .await
        .expect("store")
        .map(|r| r.status)
}

async fn open_dead_letter(hub: &Hub, order: &str) -> i64 {
    hub.until(
        Duration::from_secs(20),
        &format!("a dead letter for {order}"),
        || async {
            hub.store
                .dead_letters(DeadLetterFilter {
                    status: Some(DeadLetterStatus::Open),
                    order_id: Some(order.to_owned()),
                    ..DeadLetterFilter::default()
                })
                .await
                .expect("store")
                .first()
                .map(|d| d.id)
        },
    )
    .await
}

async fn audit_actions(hub: &Hub) -> Vec<(String, String, String)> {
    hub.store
        .audit_log(0, 1_000)
        .await
        .expect("audit")
        .into_iter()
        .map(|a| (a.entry.actor, a.entry.action, a.entry.target))
        .collect()
}

#[tokio::test]
async fn the_trace_follows_an_order_across_systems_by_any_id() {
    let hub = running("trace").await;
    hub.engine
        .accept_message(capture_message("T-1", "ACME", 3))
        .await
        .expect("accepted");
    hub.wait_for(Duration::from_secs(20), "the order to close", || async {
        status(&hub, "T-1").await.as_deref() == Some("Closed")
    })
    .await;
    // Salesforce write-backs wait a moment to collapse: wait for the first one.
    hub.wait_for(
        Duration::from_secs(20),
        "a Salesforce write-back",
        || async {
            let (_, trace) = hub.get("/ops/orders/T-1/trace").await;
            trace["entries"].as_array().is_some_and(|entries| {
                entries
                    .iter()
                    .any(|e| e["kind"] == "attempt" && e["system"] == "salesforce")
            })
        },
    )
    .await;
    let (code, trace) = hub.get("/ops/orders/SO-T-1/trace").await;
    assert_eq!(code, 200, "{trace}");
    assert_eq!(trace["order_id"], "T-1");
    let erp_ref = trace["erp_ref"].as_str().expect("booked").to_owned();
    let kinds: Vec<&str> = trace["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in ["inbound", "event", "attempt"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let attempts: Vec<&serde_json::Value> = trace["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "attempt")
        .collect();
    assert!(
        attempts
            .iter()
            .any(|a| a["system"] == "erp" && a["outcome"] == "ok" && a["latency_ms"].is_i64())
    );
    assert!(attempts.iter().any(|a| a["system"] == "salesforce"));
    // The same trace by ERP number, hub id and correlation id.
    for id in [erp_ref.as_str(), "T-1", "salesforce:capture-T-1"] {
        let (code, other) = hub.get(&format!("/ops/orders/{id}/trace")).await;
        assert_eq!(
            (code, other["order_id"].as_str()),
            (200, Some("T-1")),
            "by {id}"
        );
    }
    let (code, missing) = hub.get("/ops/orders/NOPE/trace").await;
    assert_eq!(code, 404);
    assert_eq!(missing["status"], 404);
    // Reading needs a key.
    let anonymous = reqwest::get(format!("{}/ops/orders/T-1/trace", hub.base))
        .await
        .expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    hub.stop().await;
}

#[tokio::test]
async fn a_failed_booking_is_corrected_and_retried_from_the_exception_queue() {
    let hub = running("retry").await;
    hub.erp.break_bookings(&["D-1"]);
    hub.engine
        .accept_message(capture_message("D-1", "ACME", 2))
        .await
        .expect("accepted");
    let id = open_dead_letter(&hub, "D-1").await;

    let (code, view) = hub.get(&format!("/ops/dead-letters/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(
        (view["kind"].as_str(), view["flow"].as_str()),
        (Some("book"), Some("order-capture"))
    );
    assert_eq!(view["payload"]["order"], "D-1");

    // The business view names the order and why it is stuck.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    hub.ops.catch_up_fully().await.expect("catch up");
    let (_, health) = hub.get("/ops/health").await;
    let stuck = health["exceptions"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["order_id"] == "D-1")
        .cloned()
        .unwrap_or_else(|| panic!("D-1 is stuck: {health}"));
    assert_eq!(stuck["kind"], "awaiting_booking");
    assert_eq!(stuck["dead_letters"], json!([id]));
    assert!(
        stuck["why"]
            .as_str()
            .is_some_and(|w| w.contains("ERP booking failed")),
        "{stuck}"
    );

    // An edit that moves the booking to another order is refused, with the field.
    let (code, problem) = hub
        .post(
            &format!("/ops/dead-letters/{id}/retry"),
            json!({ "payload": { "order": "OTHER", "effect": { "type": "book_order" } } }),
        )
        .await;
    assert_eq!(code, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "order");
    assert_eq!(
        problem["errors"][0]["message"]
            .as_str()
            .map(|m| m.starts_with("cannot be changed")),
        Some(true)
    );
    let (code, _) = hub
        .post(
            &format!("/ops/dead-letters/{id}/retry"),
            json!({ "payload": { "order": "D-1", "effect": { "type": "bogus" } } }),
        )
        .await;
    assert_eq!(code, 422);

    // Fixed downstream, a valid edit is accepted and the order proceeds.
    hub.erp.break_bookings(&[]);
    let (code, body) = hub
        .post(
            &format!("/ops/dead-letters/{id}/retry"),
            json!({ "payload": { "order": "D-1", "effect": { "type": "book_order" }, "correlation": "fixed-by-ops" } }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    hub.wait_for(Duration::from_secs(20), "D-1 to close", || async {
        status(&hub, "D-1").await.as_deref() == Some("Closed")
    })
    .await;
    let dead = hub
        .store
        .dead_letter_by_id(id)
        .await
        .expect("store")
        .expect("row");
    assert_eq!(dead.status, DeadLetterStatus::Retried);
    let (code, again) = hub
        .post(&format!("/ops/dead-letters/{id}/retry"), json!({}))
        .await;
    assert_eq!(code, 422, "{again}");
    let audit = audit_actions(&hub).await;
    assert!(
        audit
            .iter()
            .any(|(actor, action, target)| actor.starts_with("ops-team")
                && action == "dlq.edit_retry"
                && *target == format!("dead_letter:{id}")),
        "{audit:?}"
    );
    let (_, trace) = hub.get("/ops/orders/D-1/trace").await;
    let actions: Vec<&serde_json::Value> = trace["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "action")
        .collect();
    assert_eq!(
        actions.len(),
        1,
        "the operator's action is on the order's timeline"
    );
    hub.stop().await;
}

#[tokio::test]
async fn bulk_replay_previews_then_sends_and_reports_what_failed_again() {
    let hub = running("replay").await;
    hub.erp.break_bookings(&["R-1", "R-2"]);
    for order in ["R-1", "R-2"] {
        hub.engine
            .accept_message(capture_message(order, &format!("ACCOUNT-{order}"), 1))
            .await
            .expect("accepted");
    }
    let first = open_dead_letter(&hub, "R-1").await;
    let second = open_dead_letter(&hub, "R-2").await;

    let (code, preview) = hub
        .post(
            "/ops/replays",
            json!({ "filter": { "kind": "book" }, "dry_run": true }),
        )
        .await;
    assert_eq!(code, 200, "{preview}");
    assert_eq!(preview["would_send"], 2);
    let ids: Vec<i64> = preview["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_i64())
        .collect();
    let mut expected = vec![first, second];
    expected.sort_unstable();
    assert_eq!(ids, expected, "oldest first");
    let still = hub
        .store
        .dead_letter_by_id(first)
        .await
        .expect("store")
        .expect("row");
    assert_eq!(
        still.status,
        DeadLetterStatus::Open,
        "a dry run sends nothing"
    );

    hub.erp.break_bookings(&["R-2"]);
    let (code, sent) = hub
        .post("/ops/replays", json!({ "filter": { "kind": "book" } }))
        .await;
    assert_eq!(code, 200, "{sent}");
    assert_eq!(sent["sent"], 2);
    let batch = sent["batch"].as_str().expect("batch").to_owned();
    hub.wait_for(Duration::from_secs(20), "R-1 to close", || async {
        status(&hub, "R-1").await.as_deref() == Some("Closed")
    })
    .await;
    let report = hub
        .until(
            Duration::from_secs(20),
            "the replay report to settle",
            || async {
                let (_, r) = hub.get(&format!("/ops/replays/{batch}")).await;
                (r["succeeded"] == 1 && r["failed_again"] == 1).then_some(r)
            },
        )
        .await;
    let failed = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["outcome"] == "failed_again")
        .expect("one");
    assert_eq!(failed["order_id"], "R-2");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("empty body")),
        "{failed}"
    );
    assert!(
        audit_actions(&hub)
            .await
            .iter()
            .any(|(_, action, _)| action == "dlq.bulk_replay")
    );
    hub.stop().await;
}

#[tokio::test]
async fn resolving_needs_a_reason_and_auto_resolution_shows_on_the_trace() {
    let hub = Hub::start("resolve", Arc::new(SystemClock), quick_settings(), false).await;
    let now = hub.clock.now();
    for order in ["A-1", "A-2"] {
        hub.apply(
            order,
            vec![crossdock_domain::order::Command::CaptureOrder(
                crate::harness::draft(order, "ACME", 10, now),
            )],
            crossdock_domain::ids::System::Salesforce,
            false,
        )
        .await;
    }
    let task = |order: &str, kind: &str| NewTask {
        lane: "salesforce".to_owned(),
        kind: kind.to_owned(),
        key: format!("sf:{order}"),
        dedupe: None,
        idempotency_key: format!("{kind}/{order}"),
        payload: json!({ "order": order, "effect": { "type": "sync_order" }, "authorization": "Bearer sekrit" }),
        due_at: now,
        blocking: false,
        order_id: Some(order.to_owned()),
    };
    hub.store
        .commit(Decision {
            tasks: vec![task("A-1", "sf-sync"), task("A-2", "sf-sync")],
            ..Decision::default()
        })
        .await
        .expect("tasks");
    let leases = hub
        .store
        .lease(LeaseRequest {
            lane: "salesforce".to_owned(),
            owner: "test".to_owned(),
            limit: 10,
            lease_for: Duration::from_secs(30),
            now,
        })
        .await
        .expect("lease");
    assert_eq!(leases.len(), 2);
    let mut ids = Vec::new();
    for lease in &leases {
        ids.push(
            hub.store
                .dead_letter(
                    lease,
                    NewDeadLetter {
                        class: "unknown".to_owned(),
                        error: "UNABLE_TO_LOCK_ROW".to_owned(),
                        reason: "gave up after 3 attempts".to_owned(),
                    },
                    Decision::default(),
                )
                .await
                .expect("dead letter"),
        );
    }
    // Payloads are shown redacted.
    let (_, view) = hub.get(&format!("/ops/dead-letters/{}", ids[0])).await;
    assert_eq!(view["payload"]["authorization"], "[redacted]");

    let (code, problem) = hub
        .post(
            &format!("/ops/dead-letters/{}/resolve", ids[0]),
            json!({ "reason": "  " }),
        )
        .await;
    assert_eq!(
        (code, problem["errors"][0]["field"].as_str()),
        (422, Some("reason"))
    );
    let (code, _) = hub
        .post(
            &format!("/ops/dead-letters/{}/resolve", ids[0]),
            json!({ "reason": "fixed in Salesforce by hand" }),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = hub
        .post(
            &format!("/ops/dead-letters/{}/resolve", ids[0]),
            json!({ "reason": "again" }),
        )
        .await;
    assert_eq!(code, 422, "only open ones can be resolved");
    let (code, _) = hub
        .post("/ops/dead-letters/999999/resolve", json!({ "reason": "x" }))
        .await;
    assert_eq!(code, 404);

    // A later successful sync of A-2 closes its dead letter by itself.
    let committed = hub
        .store
        .commit(Decision {
            auto_resolve: Some(("A-2".to_owned(), "sf-sync".to_owned())),
            ..Decision::default()
        })
        .await
        .expect("commit");
    assert_eq!(committed.auto_resolved, 1);
    let (_, trace) = hub.get("/ops/orders/A-2/trace").await;
    assert_eq!(trace["dead_letters"][0]["status"], "auto_resolved");
    let (_, listed) = hub.get("/ops/dead-letters?status=auto_resolved").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    hub.ops.catch_up_fully().await.expect("catch up");
    let (_, roi) = hub.get("/ops/roi").await;
    assert_eq!(
        (
            roi["exceptions_raised"].as_u64(),
            roi["auto_resolved"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(roi["handled_by_people"], 1);
    assert_eq!(roi["interventions"]["dlq.resolve"], 1);
    let audit = audit_actions(&hub).await;
    assert_eq!(
        audit.iter().filter(|(_, a, _)| a == "dlq.resolve").count(),
        1
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_subscriber_replays_from_a_position_or_a_time() {
    let hub = running("cursor").await;
    hub.engine
        .accept_message(capture_message("C-1", "ACME", 1))
        .await
        .expect("accepted");
    hub.wait_for(Duration::from_secs(20), "C-1 to close", || async {
        status(&hub, "C-1").await.as_deref() == Some("Closed")
    })
    .await;
    let events = hub.store.read_all(0, 100).await.expect("events");
    assert!(events.len() >= 4);
    let last = events.last().map(|e| e.global_seq).expect("one");
    hub.store
        .save_cursor("bus:webhooks", &last.to_string(), hub.clock.now())
        .await
        .expect("cursor");

    let (code, moved) = hub
        .post("/ops/subscribers/webhooks/replay", json!({ "from": 3 }))
        .await;
    assert_eq!(code, 200, "{moved}");
    assert_eq!(moved["after"], "2");
    assert_eq!(
        hub.store
            .cursor("bus:webhooks")
            .await
            .expect("cursor")
            .as_deref(),
        Some("2")
    );
    let (code, _) = hub
        .post(
            "/ops/subscribers/webhooks/replay",
            json!({ "from": last + 100 }),
        )
        .await;
    assert_eq!(code, 422, "moving past the cursor would skip events");
    let since = events[1].recorded_at;
    let (code, moved) = hub
        .post(
            "/ops/subscribers/webhooks/replay",
            json!({ "since": since.format(&time::format_description::well_known::Rfc3339).expect("time") }),
        )
        .await;
    assert_eq!(code, 200, "{moved}");
    assert!(
        moved["first_event"]
            .as_i64()
            .is_some_and(|f| f <= events[1].global_seq)
    );
    let (code, _) = hub
        .post("/ops/subscribers/nobody/replay", json!({ "from": 1 }))
        .await;
    assert_eq!(code, 404);
    let (code, _) = hub
        .post(
            "/ops/subscribers/webhooks/replay",
            json!({ "from": 1, "since": "2026-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(code, 422);
    assert!(
        audit_actions(&hub)
            .await
            .iter()
            .any(|(_, a, t)| a == "replay.subscriber" && t == "cursor:bus:webhooks")
    );
    hub.stop().await;
}

/// An ERP that issues an order number again (restored from an old backup) has its booking
/// answer refused: both orders are flagged as `reference-conflict` exceptions owned by the
/// ERP, listed by the functions `crossdock dlq list` runs and shown on the dashboard's
/// exception list; the number stays with the order that had it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_number_issued_again_flags_both_orders_on_the_exception_list() {
    use crossdock_api::ops::exceptions::{self, ExceptionView, Filter};

    let hub = running("reissue").await;
    hub.engine
        .accept_message(capture_message("RC-A", "ACME", 2))
        .await
        .expect("accepted");
    hub.wait_for(Duration::from_secs(20), "RC-A to close", || async {
        status(&hub, "RC-A").await.as_deref() == Some("Closed")
    })
    .await;
    let number = hub
        .store
        .order("RC-A")
        .await
        .expect("store")
        .and_then(|r| r.erp_ref)
        .expect("RC-A has its ERP number");
    *hub.erp.reissue.lock().unwrap() = Some(("RC-B".to_owned(), number.clone()));
    hub.engine
        .accept_message(capture_message("RC-B", "ACME", 2))
        .await
        .expect("accepted");

    let flows = crossdock_domain::flow::defaults();
    let filter = Filter {
        status: Some("open".to_owned()),
        class: Some("reference-conflict".to_owned()),
        ..Filter::default()
    };
    let listed = hub
        .until(Duration::from_secs(20), "both orders flagged", || async {
            let items = exceptions::list(&hub.store, &flows, &filter)
                .await
                .expect("list");
            (items.len() == 2).then_some(items)
        })
        .await;
    let views: Vec<ExceptionView> = listed
        .iter()
        .map(|d| ExceptionView::of(d, &flows))
        .collect();
    let mut flagged: Vec<(Option<&str>, &str, &str, &str)> = views
        .iter()
        .map(|v| {
            (
                v.order_id.as_deref(),
                v.kind.as_str(),
                v.lane.as_str(),
                v.class.as_str(),
            )
        })
        .collect();
    flagged.sort();
    assert_eq!(
        flagged,
        [
            (
                Some("RC-A"),
                "reference-conflict",
                "erp",
                "reference-conflict"
            ),
            (Some("RC-B"), "book", "erp", "reference-conflict"),
        ]
    );
    assert!(
        views.iter().all(|v| v.error.contains(&number)),
        "{views:#?}"
    );
    let holder = views
        .iter()
        .find(|v| v.order_id.as_deref() == Some("RC-A"))
        .expect("RC-A flagged");
    assert!(holder.error.contains("forgotten"), "{}", holder.error);
    assert_eq!(holder.step, "External reference held by another order");

    // The number stays RC-A's; RC-B is not booked.
    let a = hub.store.order("RC-A").await.expect("store").expect("row");
    assert_eq!(a.erp_ref.as_deref(), Some(number.as_str()));
    let b = hub.store.order("RC-B").await.expect("store").expect("row");
    assert_eq!(b.erp_ref, None);

    // The dashboard's exception list shows both.
    let signed_in = hub
        .client()
        .post(format!("{}/dashboard/login", hub.base))
        .header("x-crossdock-action", "1")
        .json(&json!({ "key": hub.key }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status().as_u16(), 204);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_owned();
    let page = hub
        .client()
        .get(format!(
            "{}/dashboard/exceptions?class=reference-conflict",
            hub.base
        ))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.expect("body");
    for needle in ["RC-A", "RC-B", "reference-conflict"] {
        assert!(page.contains(needle), "the dashboard shows {needle}");
    }
    hub.stop().await;
}
