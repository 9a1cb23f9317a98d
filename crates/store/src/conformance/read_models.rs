//! Read models: cursors, order rows and queries, inventory, refs, accounts, timeline, audit.

use serde_json::json;

use super::fixtures::{T0, at, order, timeline};
use crate::{
    AccountRow, AuditEntry, Decision, ExternalRef, InventoryRow, OrderQuery, SharedStore, SyncMark,
    TimelineEntry,
};

/// A subscriber's position is saved, replaced and listed with its time.
pub async fn cursors_round_trip(store: SharedStore) {
    assert_eq!(store.cursor("sf-updater").await.unwrap(), None);
    store.save_cursor("sf-updater", "10", at(1)).await.unwrap();
    store
        .save_cursor("analytics", "replay:3", at(2))
        .await
        .unwrap();
    store.save_cursor("sf-updater", "42", at(3)).await.unwrap();
    assert_eq!(
        store.cursor("sf-updater").await.unwrap().as_deref(),
        Some("42")
    );
    assert_eq!(
        store.cursors().await.unwrap(),
        vec![
            ("analytics".to_owned(), "replay:3".to_owned(), at(2)),
            ("sf-updater".to_owned(), "42".to_owned(), at(3)),
        ]
    );
}

async fn put_order(store: &SharedStore, row: crate::OrderRow) {
    store
        .commit(Decision {
            order: Some(row),
            ..Decision::default()
        })
        .await
        .unwrap();
}

async fn mark(store: &SharedStore, order_id: &str, version: i64, status: &str) {
    store
        .commit(Decision {
            synced: vec![SyncMark {
                order_id: order_id.into(),
                version,
                status: status.into(),
                at: at(version),
            }],
            ..Decision::default()
        })
        .await
        .unwrap();
}

fn behind() -> OrderQuery {
    OrderQuery {
        sf_behind: true,
        ..OrderQuery::default()
    }
}

/// An order row never goes back to an older version; sync marks never lower a higher one;
/// `sf_behind` lists rows whose Salesforce copy is older than the row.
pub async fn order_rows_never_go_back(store: SharedStore) {
    put_order(&store, order("O1", "Booked", 2, at(2))).await;
    put_order(&store, order("O1", "Captured", 1, at(1))).await;
    let row = store.order("O1").await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.version),
        ("Booked", 2),
        "older version ignored"
    );
    assert_eq!(
        row,
        order("O1", "Booked", 2, at(2)),
        "every column round-trips"
    );

    let mut same = order("O1", "Allocated", 2, at(3));
    same.erp_ref = Some("SO-1".into());
    put_order(&store, same).await;
    assert_eq!(
        store.order("O1").await.unwrap().unwrap().status,
        "Allocated",
        "same version applies"
    );

    assert_eq!(
        ids(&store.orders(behind()).await.unwrap()),
        ["O1"],
        "never synced"
    );
    mark(&store, "O1", 2, "Allocated").await;
    assert!(store.orders(behind()).await.unwrap().is_empty());
    mark(&store, "O1", 1, "Captured").await;
    let row = store.order("O1").await.unwrap().unwrap();
    assert_eq!(
        (
            row.sf_synced_version,
            row.sf_synced_status.as_deref(),
            row.sf_synced_at
        ),
        (Some(2), Some("Allocated"), Some(at(2))),
        "an older mark is ignored"
    );

    put_order(&store, order("O1", "Shipped", 3, at(4))).await;
    let row = store.order("O1").await.unwrap().unwrap();
    assert_eq!(
        row.sf_synced_version,
        Some(2),
        "an order update keeps the sync mark"
    );
    assert_eq!(ids(&store.orders(behind()).await.unwrap()), ["O1"]);
    mark(&store, "O1", 3, "Shipped").await;
    assert!(store.orders(behind()).await.unwrap().is_empty());
    mark(&store, "missing", 1, "Booked").await;
    assert_eq!(
        store.order("missing").await.unwrap(),
        None,
        "a mark creates no row"
    );

    // The account moves with a newer row, never with an older one.
    let with_account = |version, account: &str| {
        let mut row = order("O1", "Shipped", version, at(5));
        row.account = account.into();
        row
    };
    put_order(&store, with_account(4, "ACC-MOVED")).await;
    put_order(&store, with_account(3, "ACC-OLD")).await;
    let row = store.order("O1").await.unwrap().unwrap();
    assert_eq!((row.account.as_str(), row.version), ("ACC-MOVED", 4));
    let by_account = OrderQuery {
        account: Some("ACC-MOVED".into()),
        ..OrderQuery::default()
    };
    assert_eq!(ids(&store.orders(by_account).await.unwrap()), ["O1"]);
}

fn ids(rows: &[crate::OrderRow]) -> Vec<&str> {
    rows.iter().map(|r| r.order_id.as_str()).collect()
}

/// Order rows are listed by status, account, staleness and page, ordered by id; counted
/// per status.
pub async fn orders_are_queried(store: SharedStore) {
    let rows = [
        ("O5", "Booked", "ACC-1", 10),
        ("O2", "Booked", "ACC-2", 20),
        ("O3", "Captured", "ACC-1", 30),
        ("O4", "Shipped", "ACC-1", 40),
        ("O1", "Booked", "ACC-1", 50),
    ];
    for (id, status, account, updated) in rows {
        let mut row = order(id, status, 1, at(updated));
        row.account = account.into();
        put_order(&store, row).await;
    }
    let q = |f: fn(&mut OrderQuery)| {
        let mut query = OrderQuery::default();
        f(&mut query);
        let store = store.clone();
        async move {
            store
                .orders(query)
                .await
                .unwrap()
                .iter()
                .map(|r| r.order_id.clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(q(|_| {}).await, ["O1", "O2", "O3", "O4", "O5"]);
    assert_eq!(
        q(|q| q.statuses = vec!["Booked".into()]).await,
        ["O1", "O2", "O5"]
    );
    assert_eq!(
        q(|q| q.statuses = vec!["Captured".into(), "Shipped".into()]).await,
        ["O3", "O4"]
    );
    assert_eq!(q(|q| q.account = Some("ACC-2".into())).await, ["O2"]);
    assert_eq!(q(|q| q.updated_before = Some(at(30))).await, ["O2", "O5"]);
    assert_eq!(
        q(|q| {
            q.statuses = vec!["Booked".into()];
            q.updated_before = Some(at(30));
            q.account = Some("ACC-1".into());
        })
        .await,
        ["O5"]
    );
    assert_eq!(
        q(|q| {
            q.after = Some("O2".into());
            q.limit = Some(2);
        })
        .await,
        ["O3", "O4"]
    );
    assert_eq!(
        store.order_counts().await.unwrap(),
        vec![
            ("Booked".to_owned(), 3),
            ("Captured".to_owned(), 1),
            ("Shipped".to_owned(), 1)
        ]
    );
    assert_eq!(store.order("nope").await.unwrap(), None);
}

fn level(sku: &str, location: &str, available: i64, as_of: i64) -> InventoryRow {
    InventoryRow {
        sku: sku.into(),
        location: location.into(),
        on_hand: available + 5,
        reserved: 5,
        available,
        as_of: at(as_of),
        updated_at: at(as_of + 1),
    }
}

/// Inventory keeps the newest measurement per product and location.
pub async fn inventory_ignores_older_measurements(store: SharedStore) {
    let write = |rows: Vec<InventoryRow>| {
        let store = store.clone();
        async move {
            store
                .commit(Decision {
                    inventory: rows,
                    ..Decision::default()
                })
                .await
                .unwrap();
        }
    };
    write(vec![
        level("SKU-1", "WH-2", 10, 100),
        level("SKU-1", "WH-1", 7, 100),
        level("SKU-2", "WH-1", 3, 50),
    ])
    .await;
    write(vec![level("SKU-1", "WH-1", 99, 90)]).await;
    let sku1 = store.inventory(&["SKU-1".into()]).await.unwrap();
    assert_eq!(
        sku1,
        vec![
            level("SKU-1", "WH-1", 7, 100),
            level("SKU-1", "WH-2", 10, 100)
        ]
    );
    write(vec![level("SKU-1", "WH-1", 6, 110)]).await;
    assert_eq!(
        store.inventory(&["SKU-1".into()]).await.unwrap()[0].available,
        6
    );
    let all = store.inventory(&[]).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|r| (r.sku.as_str(), r.location.as_str()))
            .collect::<Vec<_>>(),
        [("SKU-1", "WH-1"), ("SKU-1", "WH-2"), ("SKU-2", "WH-1")]
    );
    assert!(
        store
            .inventory(&["SKU-404".into()])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Any indexed external id (or the order id itself) resolves to its order.
pub async fn refs_resolve_any_id(store: SharedStore) {
    let reference = |namespace: &str, value: &str, order_id: &str| ExternalRef {
        namespace: namespace.into(),
        value: value.into(),
        order_id: order_id.into(),
    };
    store
        .commit(Decision {
            order: Some(order("O7", "Booked", 1, T0)),
            refs: vec![
                reference("sf_id", "8017000000ABC", "O7"),
                reference("erp_ref", "SO-77", "O7"),
                reference("rma", "RMA-7", "O7"),
            ],
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(store.resolve("O7").await.unwrap().as_deref(), Some("O7"));
    assert_eq!(
        store.resolve("8017000000ABC").await.unwrap().as_deref(),
        Some("O7")
    );
    assert_eq!(store.resolve("SO-77").await.unwrap().as_deref(), Some("O7"));
    assert_eq!(store.resolve("RMA-7").await.unwrap().as_deref(), Some("O7"));
    assert_eq!(store.resolve("SO-78").await.unwrap(), None);
    store
        .commit(Decision {
            refs: vec![reference("rma", "RMA-7", "O8")],
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.resolve("RMA-7").await.unwrap().as_deref(),
        Some("O8"),
        "latest wins"
    );
}

/// Accounts are inserted and replaced.
pub async fn accounts_are_upserted(store: SharedStore) {
    let account = |tier: &str| AccountRow {
        account_id: "ACC-9".into(),
        sf_id: Some("0017000000XYZ".into()),
        erp_ref: Some("C-9".into()),
        name: "Northwind Retail".into(),
        tier: tier.into(),
        body: json!({ "credit_limit": "50000.00", "tier": tier }),
        updated_at: at(1),
    };
    store
        .commit(Decision {
            accounts: vec![account("Silver")],
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.account("ACC-9").await.unwrap(),
        Some(account("Silver"))
    );
    store
        .commit(Decision {
            accounts: vec![account("Gold")],
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(store.account("ACC-9").await.unwrap().unwrap().tier, "Gold");
    assert_eq!(store.account("ACC-0").await.unwrap(), None);
}

/// Several entries of one write, for two orders, interleaved: each comes back whole, in
/// order, with an id no other entry has.
pub async fn timeline_entries_of_one_write_come_back_whole(store: SharedStore) {
    let mut attempt = timeline("G1", "attempt \"1\": done", at(2));
    attempt.kind = "attempt".into();
    attempt.outcome = Some("ok".into());
    attempt.system = None;
    attempt.latency_ms = None;
    attempt.correlation = None;
    attempt.detail = json!({ "task": 7, "nested": { "list": [1, "two", null] } });
    let first = vec![
        timeline("G1", "received", at(1)),
        timeline("G1", "captured", at(1)),
        attempt,
        timeline("G2", "other order", at(2)),
        timeline("G1", "after the other order", at(3)),
    ];
    store
        .commit(Decision {
            timeline: first.clone(),
            ..Decision::default()
        })
        .await
        .unwrap();
    let single = timeline("G1", "alone", at(4));
    store.append_timeline(vec![single.clone()]).await.unwrap();
    let pair = vec![timeline("G2", "a", at(5)), timeline("G2", "b", at(5))];
    store.append_timeline(pair.clone()).await.unwrap();

    let g1 = store.timeline("G1").await.unwrap();
    let expected: Vec<TimelineEntry> = [&first[0], &first[1], &first[2], &first[4], &single]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(
        g1.iter().map(|e| e.entry.clone()).collect::<Vec<_>>(),
        expected
    );
    let g2 = store.timeline("G2").await.unwrap();
    assert_eq!(
        g2.iter()
            .map(|e| e.entry.summary.as_str())
            .collect::<Vec<_>>(),
        ["other order", "a", "b"]
    );
    let mut ids: Vec<i64> = g1.iter().chain(&g2).map(|e| e.id).collect();
    assert!(g1.windows(2).all(|w| w[0].id < w[1].id), "{g1:?}");
    assert!(g2.windows(2).all(|w| w[0].id < w[1].id), "{g2:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), g1.len() + g2.len(), "ids are unique");
}

/// Timeline entries come back per order in the order written; the audit log pages by id.
pub async fn timeline_and_audit_keep_order(store: SharedStore) {
    store
        .commit(Decision {
            timeline: vec![
                timeline("T1", "captured", at(1)),
                timeline("T2", "other", at(1)),
            ],
            ..Decision::default()
        })
        .await
        .unwrap();
    let mut refused = timeline("T1", "refused update", at(2));
    refused.kind = "refusal".into();
    refused.outcome = Some("permanent".into());
    store.append_timeline(vec![refused.clone()]).await.unwrap();
    store
        .commit(Decision {
            timeline: vec![timeline("T1", "booked", at(3))],
            ..Decision::default()
        })
        .await
        .unwrap();
    let entries = store.timeline("T1").await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.entry.summary.as_str())
            .collect::<Vec<_>>(),
        ["captured", "refused update", "booked"]
    );
    assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(entries[1].entry, refused);
    assert_eq!(store.timeline("T2").await.unwrap().len(), 1);

    let entry = |action: &str| AuditEntry {
        at: at(5),
        actor: "ops@retail".into(),
        action: action.into(),
        target: "T1".into(),
        detail: json!({ "note": action }),
    };
    let a = store.audit(entry("dlq.retry")).await.unwrap();
    store
        .commit(Decision {
            audit: vec![entry("order.submit")],
            ..Decision::default()
        })
        .await
        .unwrap();
    let c = store.audit(entry("config.reload")).await.unwrap();
    assert!(a < c);
    let log = store.audit_log(0, 10).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|e| e.entry.action.as_str())
            .collect::<Vec<_>>(),
        ["dlq.retry", "order.submit", "config.reload"]
    );
    assert_eq!(log[0].entry, entry("dlq.retry"));
    let page = store.audit_log(a, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].entry.action, "order.submit");
}
