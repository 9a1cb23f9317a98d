//! Each business-health query finds exactly the stuck work seeded for it, and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crossdock_api::ops::Settings;
use crossdock_api::ops::health::ExceptionKind;
use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption};
use crossdock_domain::ids::{
    CreditMemoId, ExternalRefs, InvoiceId, LineNo, LocationId, PaymentId, ReceiptId, RmaId,
    ShipmentId, Sku, System,
};
use crossdock_domain::order::{
    Command, CreditAnswer, CreditMemoFacts, InvoiceFacts, Milestone, PaymentFacts, ReceiptFacts,
    ReturnRequest, ValidationFacts, ValidationPolicy,
};
use crossdock_ports::{Clock, ManualClock, SystemClock};
use crossdock_store::{AccountRow, Decision, InventoryRow, NewTask, SyncMark};
use rust_decimal::Decimal;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::harness::{Hub, draft, found, pairs, quick_settings};

const T0: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

fn mins(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

async fn hub(name: &str) -> (Hub, ManualClock) {
    let clock = ManualClock::new(T0);
    let hub = Hub::start(name, Arc::new(clock.clone()), Settings::default(), false).await;
    (hub, clock)
}

async fn capture(hub: &Hub, order: &str, account: &str, value: i64, at: OffsetDateTime) {
    hub.apply(
        order,
        vec![Command::CaptureOrder(draft(order, account, value, at))],
        System::Salesforce,
        false,
    )
    .await;
}

async fn validate(hub: &Hub, order: &str, value: i64, at: OffsetDateTime) {
    let facts = ValidationFacts {
        prices: BTreeMap::from([(LineNo(1), Decimal::from(value))]),
        available: BTreeMap::from([(Sku::new("SKU-1"), 100)]),
        credit: CreditAnswer {
            approved: true,
            available: None,
            reason: None,
        },
        options: vec![FulfilmentOption {
            method: FulfilmentMethod::ShipFromWarehouse,
            locations: vec![LocationId::new("WH-1")],
            promised_date: None,
        }],
    };
    hub.apply(
        order,
        vec![Command::ValidateOrder {
            facts,
            policy: ValidationPolicy::default(),
            at,
        }],
        System::Erp,
        false,
    )
    .await;
}

async fn book(hub: &Hub, order: &str, at: OffsetDateTime) {
    hub.apply(
        order,
        vec![Command::RecordBooking {
            erp_ref: format!("ERP-{order}"),
            at,
        }],
        System::Erp,
        false,
    )
    .await;
}

async fn ship(hub: &Hub, order: &str, milestone: Milestone, at: OffsetDateTime) {
    hub.apply(
        order,
        vec![Command::RecordShipment {
            shipment: ShipmentId::new(format!("S-{order}")),
            location: Some(LocationId::new("WH-1")),
            lines: BTreeMap::from([(LineNo(1), 1)]),
            milestone,
            carrier: Some("UPS".to_owned()),
            tracking: Some(format!("1Z{order}")),
            at,
        }],
        System::Erp,
        false,
    )
    .await;
}

/// Salesforce confirms it holds the order as it is now.
async fn synced(hub: &Hub, order: &str, at: OffsetDateTime) {
    let row = hub.store.order(order).await.expect("store").expect("row");
    hub.store
        .commit(Decision {
            synced: vec![SyncMark {
                order_id: order.to_owned(),
                version: row.version,
                status: row.status.clone(),
                at,
            }],
            ..Decision::default()
        })
        .await
        .expect("commit");
}

async fn report(hub: &Hub) -> Arc<crossdock_api::ops::HealthReport> {
    hub.ops.catch_up_fully().await.expect("catch up");
    hub.ops.health().await.expect("health")
}

#[tokio::test]
async fn orders_awaiting_booking_are_exactly_the_late_unbooked_ones() {
    let (hub, _clock) = hub("awaiting").await;
    capture(&hub, "LATE-SMALL", "ACME", 300, T0 - mins(10)).await;
    capture(&hub, "LATE-BIG", "ACME", 4_000, T0 - mins(5)).await;
    validate(&hub, "LATE-BIG", 4_000, T0 - mins(4)).await;
    capture(
        &hub,
        "FRESH",
        "ACME",
        9_000,
        T0 - time::Duration::seconds(60),
    )
    .await;
    capture(&hub, "BOOKED", "ACME", 700, T0 - mins(60)).await;
    book(&hub, "BOOKED", T0 - mins(59)).await;
    synced(&hub, "BOOKED", T0 - mins(58)).await;

    let report = report(&hub).await;
    assert_eq!(
        found(&report),
        pairs(&[
            ("awaiting_booking", "LATE-BIG"),
            ("awaiting_booking", "LATE-SMALL")
        ])
    );
    let big = &report.exceptions[0];
    assert_eq!(big.subject, "LATE-BIG", "the bigger order ranks first");
    assert_eq!(big.value_at_risk, Decimal::from(4_000));
    assert_eq!(
        big.late_by_secs,
        5 * 60 - 120,
        "late by time since capture past the 120 s target"
    );
    assert_eq!(big.sf_number.as_deref(), Some("SO-LATE-BIG"));
    let flow = report
        .flows
        .iter()
        .find(|f| f.flow == "order-capture")
        .expect("flow");
    assert_eq!((flow.exceptions, flow.status.as_str()), (2, "late"));
    assert_eq!(report.value_at_risk.get("USD"), Some(&Decimal::from(4_300)));
    hub.stop().await;
}

#[tokio::test]
async fn salesforce_lag_is_found_per_missing_change() {
    let (hub, _clock) = hub("sf-lag").await;
    // Booked half an hour ago, never confirmed in Salesforce.
    capture(&hub, "B-NOT-SF", "ACME", 100, T0 - mins(60)).await;
    book(&hub, "B-NOT-SF", T0 - mins(30)).await;
    // Booked a minute ago: within the target.
    capture(&hub, "B-RECENT", "ACME", 100, T0 - mins(3)).await;
    book(&hub, "B-RECENT", T0 - mins(1)).await;
    // Salesforce saw the booking, not the shipment two hours ago.
    capture(&hub, "SHIP-NOT-SF", "ACME", 100, T0 - mins(200)).await;
    book(&hub, "SHIP-NOT-SF", T0 - mins(180)).await;
    synced(&hub, "SHIP-NOT-SF", T0 - mins(170)).await;
    ship(&hub, "SHIP-NOT-SF", Milestone::Shipped, T0 - mins(120)).await;
    // Cancelled an hour ago; Salesforce only saw the capture.
    capture(&hub, "CANCEL-NOT-SF", "ACME", 100, T0 - mins(120)).await;
    synced(&hub, "CANCEL-NOT-SF", T0 - mins(119)).await;
    hub.apply(
        "CANCEL-NOT-SF",
        vec![Command::CancelOrder {
            by: System::Erp,
            reason: "customer called".to_owned(),
            at: T0 - mins(60),
        }],
        System::Erp,
        false,
    )
    .await;
    // Shipped and confirmed: fine.
    capture(&hub, "IN-SYNC", "ACME", 100, T0 - mins(200)).await;
    book(&hub, "IN-SYNC", T0 - mins(190)).await;
    ship(&hub, "IN-SYNC", Milestone::Shipped, T0 - mins(100)).await;
    synced(&hub, "IN-SYNC", T0 - mins(99)).await;

    let report = report(&hub).await;
    assert_eq!(
        found(&report),
        pairs(&[
            ("booking_not_in_salesforce", "B-NOT-SF"),
            ("cancellation_not_in_salesforce", "CANCEL-NOT-SF"),
            ("shipment_not_in_salesforce", "SHIP-NOT-SF"),
        ])
    );
    let ship = report
        .of_kind(ExceptionKind::ShipmentNotInSalesforce)
        .next()
        .expect("one");
    assert_eq!(
        ship.since,
        T0 - mins(120),
        "lag counts from the shipment, not the capture"
    );
    assert_eq!(ship.target_secs, 900, "fulfilment's latency target");
    hub.stop().await;
}

#[tokio::test]
async fn returns_waiting_for_credit_memo_or_refund_are_found() {
    let (hub, _clock) = hub("returns").await;
    for (order, value) in [
        ("RET-MEMO", 250),
        ("RET-REFUND", 80),
        ("RET-FRESH", 60),
        ("RET-NEW", 40),
    ] {
        capture(&hub, order, "ACME", value, T0 - mins(600)).await;
        book(&hub, order, T0 - mins(590)).await;
        ship(&hub, order, Milestone::Delivered, T0 - mins(500)).await;
    }
    let request = |at| ReturnRequest {
        case: ExternalRefs::default(),
        lines: BTreeMap::from([(LineNo(1), 1)]),
        reason: "damaged".to_owned(),
        at,
    };
    for (order, received) in [
        ("RET-MEMO", T0 - mins(120)),
        ("RET-REFUND", T0 - mins(200)),
        ("RET-FRESH", T0 - mins(10)),
    ] {
        let rma = RmaId::new(format!("R-{order}"));
        hub.apply(
            order,
            vec![
                Command::RequestReturn {
                    rma: rma.clone(),
                    request: request(T0 - mins(300)),
                },
                Command::RecordReturnAuthorisation {
                    rma: rma.clone(),
                    erp_ref: format!("ERMA-{order}"),
                    at: T0 - mins(299),
                },
                Command::RecordReturnReceipt {
                    rma: rma.clone(),
                    receipt: ReceiptId::new(format!("RC-{order}")),
                    facts: ReceiptFacts {
                        lines: BTreeMap::from([(LineNo(1), 1)]),
                        at: received,
                    },
                },
            ],
            System::Erp,
            false,
        )
        .await;
    }
    hub.apply(
        "RET-REFUND",
        vec![Command::RecordCreditMemo {
            rma: RmaId::new("R-RET-REFUND"),
            credit_memo: CreditMemoId::new("CM-1"),
            facts: CreditMemoFacts {
                number: "CN-1".to_owned(),
                amount: Decimal::new(8_800, 2),
                at: T0 - mins(150),
            },
        }],
        System::Erp,
        false,
    )
    .await;
    // Requested five minutes ago, not authorised yet: within the target.
    hub.apply(
        "RET-NEW",
        vec![Command::RequestReturn {
            rma: RmaId::new("R-RET-NEW"),
            request: request(T0 - mins(5)),
        }],
        System::Salesforce,
        false,
    )
    .await;
    for order in ["RET-MEMO", "RET-REFUND", "RET-FRESH", "RET-NEW"] {
        synced(&hub, order, T0 - mins(1)).await;
    }

    let report = report(&hub).await;
    assert_eq!(
        found(&report),
        pairs(&[
            ("refund_pending", "RET-REFUND/R-RET-REFUND"),
            ("return_pending_credit_memo", "RET-MEMO/R-RET-MEMO")
        ])
    );
    let memo = report
        .of_kind(ExceptionKind::ReturnPendingCreditMemo)
        .next()
        .expect("one");
    assert_eq!(
        memo.value_at_risk,
        Decimal::from(250),
        "the returned unit's value"
    );
    assert_eq!(memo.order_id.as_deref(), Some("RET-MEMO"));
    let refund = report
        .of_kind(ExceptionKind::RefundPending)
        .next()
        .expect("one");
    assert_eq!(
        refund.value_at_risk,
        Decimal::new(8_800, 2),
        "the amount credited and not refunded"
    );
    hub.stop().await;
}

#[tokio::test]
async fn overdue_and_overpaid_orders_are_found() {
    let (hub, _clock) = hub("payments").await;
    let invoice = |n: &str, total: i64, at| Command::RecordInvoice {
        invoice: InvoiceId::new(n),
        facts: InvoiceFacts {
            number: n.to_owned(),
            lines: BTreeMap::from([(LineNo(1), 1)]),
            net: Decimal::from(total),
            tax: Decimal::ZERO,
            total: Decimal::from(total),
            issued_at: at,
        },
    };
    let payment = |n: &str, amount: i64, at| Command::RecordPayment {
        payment: PaymentId::new(n),
        facts: PaymentFacts {
            invoice: None,
            amount: Decimal::from(amount),
            received_at: at,
        },
    };
    let days = time::Duration::days;
    let cases: Vec<(&str, Vec<Command>)> = vec![
        ("OVERDUE", vec![invoice("I-1", 500, T0 - days(40))]),
        ("DUE-SOON", vec![invoice("I-2", 500, T0 - days(10))]),
        (
            "PAID",
            vec![
                invoice("I-3", 500, T0 - days(40)),
                payment("P-3", 500, T0 - days(35)),
            ],
        ),
        (
            "OVERPAID",
            vec![
                invoice("I-4", 100, T0 - days(3)),
                payment("P-4", 150, T0 - mins(120)),
            ],
        ),
    ];
    for (order, commands) in cases {
        capture(&hub, order, "ACME", 500, T0 - days(45)).await;
        book(&hub, order, T0 - days(45)).await;
        ship(&hub, order, Milestone::Delivered, T0 - days(44)).await;
        hub.apply(order, commands, System::Erp, false).await;
        synced(&hub, order, T0 - mins(1)).await;
    }
    let report = report(&hub).await;
    assert_eq!(
        found(&report),
        pairs(&[
            ("payment_mismatch", "OVERPAID"),
            ("payment_overdue", "OVERDUE")
        ])
    );
    let overdue = report
        .of_kind(ExceptionKind::PaymentOverdue)
        .next()
        .expect("one");
    assert_eq!(overdue.value_at_risk, Decimal::from(500));
    assert_eq!(
        overdue.late_by_secs,
        10 * 86_400,
        "ten days past 30-day terms"
    );
    let overpaid = report
        .of_kind(ExceptionKind::PaymentMismatch)
        .next()
        .expect("one");
    assert_eq!(overpaid.value_at_risk, Decimal::from(50));
    hub.stop().await;
}

#[tokio::test]
async fn stock_levels_that_did_not_reach_salesforce_are_found() {
    // The queue stamps tasks with the store's own clock: this scenario runs on real time with
    // a one-second inventory target.
    let hub = Hub::start("inventory", Arc::new(SystemClock), quick_settings(), false).await;
    let now = SystemClock.now();
    let level = |sku: &str, as_of, updated_at| InventoryRow {
        sku: sku.to_owned(),
        location: "WH-1".to_owned(),
        on_hand: 10,
        reserved: 0,
        available: 10,
        as_of,
        updated_at,
    };
    let task = |sku: &str| NewTask {
        lane: "salesforce".to_owned(),
        kind: "sf-inventory".to_owned(),
        key: format!("sku:{sku}"),
        dedupe: Some(format!("sf-inventory/{sku}")),
        idempotency_key: format!("sf-inventory/{sku}"),
        payload: json!({ "sku": sku }),
        due_at: now,
        blocking: false,
        order_id: None,
    };
    // CURRENT changed long ago and was sent. SLOW-FEED was measured by the ERP 90 minutes
    // before the hub heard of it. FAILED's Salesforce write failed for good.
    hub.store
        .commit(Decision {
            inventory: vec![
                level("CURRENT", now - mins(300), now - mins(300)),
                level(
                    "SLOW-FEED",
                    now - mins(90),
                    now - time::Duration::seconds(60),
                ),
                level("FAILED", now - mins(40), now - mins(40)),
            ],
            tasks: vec![task("FAILED")],
            ..Decision::default()
        })
        .await
        .expect("commit");
    let lease = hub
        .store
        .lease(crossdock_store::LeaseRequest {
            lane: "salesforce".to_owned(),
            owner: "test".to_owned(),
            limit: 1,
            lease_for: Duration::from_secs(30),
            now,
        })
        .await
        .expect("lease")
        .pop()
        .expect("a task");
    hub.store
        .dead_letter(
            &lease,
            crossdock_store::NewDeadLetter {
                class: "permanent".to_owned(),
                error: "INVALID_FIELD: Location__c".to_owned(),
                reason: "permanent failure".to_owned(),
            },
            Decision::default(),
        )
        .await
        .expect("dead letter");
    // WAITING changes now and its Salesforce write waits in the queue (Salesforce is down).
    hub.store
        .commit(Decision {
            inventory: vec![level("WAITING", SystemClock.now(), SystemClock.now())],
            tasks: vec![task("WAITING")],
            ..Decision::default()
        })
        .await
        .expect("commit");
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let report = report(&hub).await;
    assert_eq!(
        found(&report),
        pairs(&[
            ("inventory_feed_late", "SLOW-FEED@WH-1"),
            ("inventory_not_in_salesforce", "FAILED@WH-1"),
            ("inventory_not_in_salesforce", "WAITING@WH-1"),
        ])
    );
    let failed = report
        .exceptions
        .iter()
        .find(|e| e.subject == "FAILED@WH-1")
        .expect("failed");
    assert!(
        failed
            .why
            .as_deref()
            .is_some_and(|w| w.contains("INVALID_FIELD")),
        "{:?}",
        failed.why
    );
    hub.stop().await;
}

#[tokio::test]
async fn the_ranking_weighs_value_tier_and_criticality() {
    let (hub, _clock) = hub("ranking").await;
    let account = |id: &str, tier: &str| AccountRow {
        account_id: id.to_owned(),
        sf_id: None,
        erp_ref: None,
        name: format!("{id} Ltd"),
        tier: tier.to_owned(),
        body: json!({}),
        updated_at: T0,
    };
    hub.store
        .commit(Decision {
            accounts: vec![account("GOLD", "Gold"), account("BRONZE", "Bronze")],
            ..Decision::default()
        })
        .await
        .expect("accounts");
    // Same lateness: a Gold customer's 1,000 outranks a Bronze customer's 2,000
    // ((1000+100)×3 > (2000+100)×1), which outranks a Bronze 500.
    capture(&hub, "GOLD-1000", "GOLD", 1_000, T0 - mins(4)).await;
    capture(&hub, "BRONZE-2000", "BRONZE", 2_000, T0 - mins(4)).await;
    capture(&hub, "BRONZE-500", "BRONZE", 500, T0 - mins(4)).await;
    let report = report(&hub).await;
    let order: Vec<&str> = report
        .exceptions
        .iter()
        .map(|e| e.subject.as_str())
        .collect();
    assert_eq!(order, ["GOLD-1000", "BRONZE-2000", "BRONZE-500"]);
    assert_eq!(
        report.exceptions[0].account_name.as_deref(),
        Some("GOLD Ltd")
    );
    assert_eq!(report.exceptions[0].rank, 1);
    assert!(report.exceptions[0].impact > report.exceptions[1].impact);
    hub.stop().await;
}
