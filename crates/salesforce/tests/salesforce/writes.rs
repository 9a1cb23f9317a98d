//! Write-backs under injected faults: only failed members are retried, every order lands
//! once, with the right values, and no record is duplicated.

use std::collections::BTreeSet;

use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::ids::{AccountId, LocationId, OrderId, Sku};
use crossdock_domain::order::OrderStatus;
use crossdock_domain::summary::OrderSummary;
use crossdock_ports::erp::CreditReport;
use crossdock_ports::{FailureClass, Salesforce};
use crossdock_sim_salesforce::Faults;
use serde_json::Value as Json;
use time::macros::datetime;

use crate::{Org, Stage, counts, summary_of};

/// Writes `items` with `write` until every one succeeded, retrying only the failed ones.
/// Returns (rounds, failures seen per class).
async fn until_all_land<T: Clone, F, Fut>(
    items: &[T],
    batch: usize,
    mut write: F,
) -> (usize, std::collections::BTreeMap<String, usize>)
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Vec<crossdock_ports::failure::Result<()>>>,
{
    let mut pending: Vec<usize> = (0..items.len()).collect();
    let mut classes = std::collections::BTreeMap::new();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(
            rounds <= 40,
            "{} records still failing after 40 rounds",
            pending.len()
        );
        let mut still = Vec::new();
        for chunk in pending.chunks(batch) {
            let input: Vec<T> = chunk.iter().map(|&i| items[i].clone()).collect();
            let results = write(input).await;
            assert_eq!(results.len(), chunk.len(), "one result per record");
            for (&i, result) in chunk.iter().zip(results) {
                if let Err(f) = result {
                    assert!(
                        matches!(f.class, FailureClass::Conflict | FailureClass::Transient),
                        "only injected faults may fail a record, got {f}"
                    );
                    *classes.entry(f.class.as_str().to_owned()).or_insert(0) += 1;
                    still.push(i);
                }
            }
        }
        pending = still;
    }
    (rounds, classes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_write_backs_land_exactly_once_despite_lock_and_server_errors() {
    let org = Org::start().await;
    let seed = org.seed(1_000, 2);
    // Orders submitted through the hub's API have no Salesforce id yet.
    let hub_orders: Vec<OrderSummary> = (0..50)
        .map(|n| {
            let mut s = summary_of(&seed.orders[n], &seed.account_number, n, Stage::Booked);
            s.id = OrderId::new(format!("API-{n:04}"));
            s.refs = Default::default();
            for line in &mut s.lines {
                line.sf_id = None;
            }
            s
        })
        .collect();
    let mut summaries: Vec<OrderSummary> = seed
        .orders
        .iter()
        .enumerate()
        .map(|(n, o)| {
            let stage = if n % 2 == 0 {
                Stage::Shipped
            } else {
                Stage::Invoiced
            };
            summary_of(o, &seed.account_number, n, stage)
        })
        .collect();
    summaries.extend(hub_orders.iter().cloned());

    let adapter = org.adapter();
    org.sim
        .set_faults(Faults {
            lock_row_rate: 0.2,
            server_error_rate: 0.1,
            ..Faults::default()
        })
        .expect("faults");
    let (rounds, classes) = until_all_land(&summaries, 200, |batch| {
        let adapter = adapter.clone();
        async move { adapter.write_orders(&batch).await }
    })
    .await;
    // And again: a resend of the same state changes nothing and creates nothing.
    let (_, _) = until_all_land(&summaries, 200, |batch| {
        let adapter = adapter.clone();
        async move { adapter.write_orders(&batch).await }
    })
    .await;
    org.sim.set_faults(Faults::default()).expect("faults off");
    println!("write-backs landed after {rounds} rounds; failures retried: {classes:?}");
    assert!(
        classes.get("conflict").copied().unwrap_or(0) > 0,
        "lock errors were injected"
    );
    assert!(
        classes.get("transient").copied().unwrap_or(0) > 0,
        "server errors were injected"
    );

    for (n, order) in seed.orders.iter().enumerate() {
        let rec = org.record(&order.id);
        let shipped = n % 2 == 0;
        let expected_status = if shipped { "Shipped" } else { "Invoiced" };
        assert_eq!(rec["Hub_Status__c"], expected_status, "order {n}");
        assert_eq!(
            rec["Hub_Order_Id__c"],
            Json::String(format!("SF-{}", order.number))
        );
        assert_eq!(
            rec["ERP_Order_Number__c"],
            Json::String(format!("ERP-{}", order.number))
        );
        assert_eq!(
            rec["Tracking_Numbers__c"],
            Json::String(format!("1Z{n:06}"))
        );
        let invoice = if shipped {
            Json::Null
        } else {
            Json::String(format!("INV-{}", order.number))
        };
        assert_eq!(rec["Invoice_Number__c"], invoice, "order {n}");
        assert_eq!(
            rec["Invoice_Status__c"],
            if shipped { "Not Invoiced" } else { "Invoiced" }
        );
        assert!(rec["Hub_Synced_At__c"].is_string());
        for (item, _, q) in &order.items {
            let item = org.record(item);
            assert_eq!(
                item["Quantity_Shipped__c"].as_f64(),
                Some(f64::from(*q)),
                "order {n}"
            );
            assert_eq!(item["Quantity_Allocated__c"].as_f64(), Some(f64::from(*q)));
            let invoiced = if shipped { 0.0 } else { f64::from(*q) };
            assert_eq!(item["Quantity_Invoiced__c"].as_f64(), Some(invoiced));
        }
    }
    let shipments =
        org.query("SELECT Id, Hub_Key__c, OrderId, Status, TrackingNumber FROM Shipment");
    assert_eq!(
        shipments.len(),
        1_000,
        "one Shipment per shipped order, none duplicated"
    );
    let keys: BTreeSet<&str> = shipments
        .iter()
        .filter_map(|s| s["Hub_Key__c"].as_str())
        .collect();
    assert_eq!(keys.len(), 1_000);
    assert!(shipments.iter().all(|s| s["OrderId"].is_string()));
    let statuses = counts(shipments.iter().filter_map(|s| s["Status"].as_str()));
    assert_eq!(statuses.get("Shipped"), Some(&500), "{statuses:?}");
    assert_eq!(statuses.get("Delivered"), Some(&500), "{statuses:?}");

    for hub in &hub_orders {
        let rows = org.query(&format!(
            "SELECT Id, Hub_Status__c, AccountId, Status FROM Order WHERE Hub_Order_Id__c = '{}'",
            hub.id
        ));
        assert_eq!(rows.len(), 1, "{} created exactly once", hub.id);
        assert_eq!(rows[0]["Hub_Status__c"], OrderStatus::Booked.as_str());
        assert_eq!(rows[0]["AccountId"], Json::String(seed.account.clone()));
        assert_eq!(rows[0]["Status"], "Draft");
    }
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_credit_and_returns_land_once_under_faults() {
    let org = Org::start().await;
    let seed = org.seed(3, 40);
    let adapter = org.adapter();
    let locations = ["WH-1", "WH-2", "STORE-9"];
    let mut levels = Vec::new();
    for (p, (sku, _, _)) in seed.products.iter().enumerate() {
        for (l, loc) in locations.iter().enumerate() {
            levels.push(InventoryLevel {
                sku: Sku::new(sku.clone()),
                location: LocationId::new(*loc),
                on_hand: i64::try_from(p * 10 + l + 5).expect("small"),
                reserved: 1,
                available: i64::try_from(p * 10 + l + 4).expect("small"),
                as_of: datetime!(2026-11-26 10:00 UTC)
                    + time::Duration::minutes(i64::try_from(l).expect("small")),
            });
        }
    }
    org.sim
        .set_faults(Faults {
            lock_row_rate: 0.2,
            server_error_rate: 0.1,
            ..Faults::default()
        })
        .expect("faults");
    until_all_land(&levels, 50, |batch| {
        let adapter = adapter.clone();
        async move { adapter.write_inventory(&batch).await }
    })
    .await;
    let report = CreditReport {
        account: AccountId::new(seed.account_number.clone()),
        status: crossdock_domain::account::CreditStatus::OverLimit,
        limit: Some("5000.00".parse().expect("decimal")),
        balance: Some("5123.45".parse().expect("decimal")),
    };
    until_all_land(std::slice::from_ref(&report), 10, |batch| {
        let adapter = adapter.clone();
        async move { adapter.write_credit(&batch).await }
    })
    .await;
    org.sim.set_faults(Faults::default()).expect("faults off");

    let rows = org.query("SELECT Hub_Key__c, Available__c, Product__c FROM Inventory_Level__c");
    assert_eq!(
        rows.len(),
        levels.len(),
        "one Inventory_Level__c per SKU@location"
    );
    let per_key = counts(rows.iter().filter_map(|r| r["Hub_Key__c"].as_str()));
    assert!(
        per_key.values().all(|&n| n == 1),
        "no duplicates: {per_key:?}"
    );
    for (p, (_, product, _)) in seed.products.iter().enumerate() {
        let rec = org.record(product);
        let expected: usize = (0..locations.len()).map(|l| p * 10 + l + 4).sum();
        assert_eq!(
            rec["Available_Quantity__c"].as_f64(),
            Some(expected as f64),
            "product {p}"
        );
        assert_eq!(rec["Availability_As_Of__c"], "2026-11-26T10:02:00.000+0000");
    }
    let account = org.record(&seed.account);
    assert_eq!(account["Credit_Status__c"], "Over Limit");
    assert_eq!(account["Credit_Limit__c"].as_f64(), Some(5000.0));
    assert_eq!(account["Open_Balance__c"].as_f64(), Some(5123.45));

    // Unknown keys fail alone and permanently; the others in the batch land.
    let mut stray = levels[0].clone();
    stray.sku = Sku::new("NO-SUCH-SKU");
    let results = adapter.write_inventory(&[stray, levels[1].clone()]).await;
    assert_eq!(
        results[0].as_ref().map_err(|f| f.class),
        Err(FailureClass::Permanent)
    );
    assert!(results[1].is_ok());
    org.shutdown().await;
}

#[tokio::test]
async fn a_return_is_written_to_its_case_and_closes_it_when_done() {
    use crossdock_domain::ids::{ExternalRefs, LineNo, RmaId};
    use crossdock_domain::order::ReturnStatus;
    use crossdock_domain::summary::ReturnSummary;

    let org = Org::start().await;
    let seed = org.seed(1, 1);
    let order = &seed.orders[0];
    let case = org.insert(
        "Case",
        serde_json::json!({"Subject": "Broken", "Type": "Return", "Order__c": order.id}),
    );
    let number = org.record(&case)["CaseNumber"]
        .as_str()
        .expect("number")
        .to_owned();
    let mut summary = summary_of(order, &seed.account_number, 0, Stage::Paid);
    let rma = RmaId::new(format!("RMA-{number}"));
    let mut ret = ReturnSummary {
        rma: rma.clone(),
        case: ExternalRefs {
            sf_id: None,
            sf_number: Some(number.clone()),
            erp_ref: None,
        },
        status: ReturnStatus::Authorised,
        erp_ref: Some("RMA-ERP-1".into()),
        lines: vec![(LineNo(1), 1)],
        credit_memos: Vec::new(),
        credited: rust_decimal::Decimal::ZERO,
        refunded: rust_decimal::Decimal::ZERO,
        refusal: None,
    };
    summary.returns = vec![ret.clone()];
    let adapter = org.adapter();
    let results = adapter
        .write_returns(&[(summary.clone(), rma.clone())])
        .await;
    assert!(results[0].is_ok(), "{results:?}");
    let rec = org.record(&case);
    assert_eq!(rec["RMA_Number__c"], "RMA-ERP-1");
    assert_eq!(rec["Return_Status__c"], "Authorised");
    assert_eq!(
        rec["Status"], "New",
        "an open return leaves the case status alone"
    );

    ret.status = ReturnStatus::Closed;
    ret.case.sf_id = Some(case.clone());
    ret.credit_memos = vec!["CM-7".into()];
    ret.credited = "20".parse().expect("decimal");
    ret.refunded = "20".parse().expect("decimal");
    summary.returns = vec![ret];
    let results = adapter
        .write_returns(&[(summary.clone(), rma.clone())])
        .await;
    assert!(results[0].is_ok(), "{results:?}");
    let rec = org.record(&case);
    assert_eq!(rec["Status"], "Closed");
    assert_eq!(rec["Credit_Memo_Number__c"], "CM-7");
    assert_eq!(rec["Refund_Status__c"], "Refunded");
    assert_eq!(rec["Refund_Amount__c"].as_f64(), Some(20.0));

    let missing = adapter
        .write_returns(&[(summary, RmaId::new("RMA-NOPE"))])
        .await;
    assert_eq!(
        missing[0].as_ref().map_err(|f| f.class),
        Err(FailureClass::Permanent)
    );
    org.shutdown().await;
}
