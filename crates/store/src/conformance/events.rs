//! Event streams and decisions: versions, global order, optimistic conflicts, atomicity.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use time::macros::datetime;

use super::fixtures::{T0, append, order, task, timeline};
use crate::{AuditEntry, Decision, Error, OrderQuery, SharedStore};

/// Appends give 1-based versions per stream and increasing global positions; reads return
/// them by stream, globally after a position, and since a time.
pub async fn appended_and_read_in_order(store: SharedStore) {
    let a1 = store
        .commit(Decision {
            append: Some(append("order:A", 0, &["Captured", "Validated"])),
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(a1.version, Some(2));
    assert_eq!(a1.event_seqs.len(), 2);
    assert!(a1.event_seqs[0] < a1.event_seqs[1]);

    let b1 = store
        .commit(Decision {
            append: Some(append("order:B", 0, &["Captured"])),
            ..Decision::default()
        })
        .await
        .unwrap();
    let a2 = store
        .commit(Decision {
            append: Some(append("order:A", 2, &["Booked"])),
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(a2.version, Some(3));
    assert!(b1.event_seqs[0] > a1.event_seqs[1] && a2.event_seqs[0] > b1.event_seqs[0]);

    let stream = store.read_stream("order:A").await.unwrap();
    assert_eq!(
        stream.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        stream.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["Captured", "Validated", "Booked"]
    );
    let first = &stream[0];
    assert_eq!(first.stream, "order:A");
    assert_eq!(
        first.payload,
        json!({ "kind": "Captured", "amount": "12.50" })
    );
    assert_eq!(first.occurred_at, T0);
    assert_eq!(first.causation.as_deref(), Some("cause"));
    assert_eq!(first.correlation.as_deref(), Some("corr"));
    assert!(store.read_stream("order:none").await.unwrap().is_empty());

    let all = store.read_all(0, 100).await.unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e.global_seq).collect();
    let mut expected = a1.event_seqs.clone();
    expected.extend(&b1.event_seqs);
    expected.extend(&a2.event_seqs);
    assert_eq!(seqs, expected, "global order is commit order");
    let page = store.read_all(a1.event_seqs[1], 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].global_seq, b1.event_seqs[0]);

    let since = store
        .read_since(datetime!(2000-01-01 0:00 UTC), 100)
        .await
        .unwrap();
    assert_eq!(since.len(), 4);
    let last_recorded = all[3].recorded_at;
    let tail = store.read_since(last_recorded, 100).await.unwrap();
    assert!(
        tail.iter().any(|e| e.global_seq == all[3].global_seq),
        "at-or-after includes it"
    );
    assert!(
        tail.iter().all(|e| e.recorded_at >= last_recorded),
        "only events recorded since then"
    );
    assert!(
        store
            .read_since(datetime!(2200-01-01 0:00 UTC), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Two decisions at the same expected version: one wins, the other gets `VersionConflict`
/// and none of its writes land.
pub async fn version_conflict_writes_nothing(store: SharedStore) {
    let winner = Decision {
        append: Some(append("order:V", 0, &["Captured"])),
        tasks: vec![task("erp", "erp:V", "validate")],
        order: Some(order("V", "Captured", 1, T0)),
        timeline: vec![timeline("V", "winner", T0)],
        ..Decision::default()
    };
    let loser = Decision {
        append: Some(append("order:V", 0, &["Rejected", "Closed"])),
        tasks: vec![task("salesforce", "sf:V", "sf-sync")],
        order: Some(order("V", "Rejected", 2, T0)),
        timeline: vec![timeline("V", "loser", T0)],
        audit: vec![AuditEntry {
            at: T0,
            actor: "system".into(),
            action: "order.reject".into(),
            target: "V".into(),
            detail: json!({}),
        }],
        ..Decision::default()
    };
    store.commit(winner).await.unwrap();
    match store.commit(loser).await {
        Err(Error::VersionConflict {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!((stream.as_str(), expected, actual), ("order:V", 0, 1));
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    let events = store.read_stream("order:V").await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "Captured");
    let tasks = store.tasks_for_order("V").await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].kind, "validate");
    assert_eq!(store.order("V").await.unwrap().unwrap().status, "Captured");
    let entries = store.timeline("V").await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.entry.summary.as_str())
            .collect::<Vec<_>>(),
        ["winner"]
    );
    assert!(store.audit_log(0, 10).await.unwrap().is_empty());

    // An expected version ahead of the stream conflicts too.
    let err = store
        .commit(Decision {
            append: Some(append("order:V", 5, &["Booked"])),
            ..Decision::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Conflict);
    let err = store
        .commit(Decision {
            append: Some(append("order:fresh", 1, &["Booked"])),
            ..Decision::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VersionConflict { actual: 0, .. }));
}

/// Twenty concurrent decisions at version 0 of one stream: exactly one commits.
pub async fn concurrent_decisions_on_one_stream_have_one_winner(store: SharedStore) {
    let mut joins = Vec::new();
    for n in 0..20 {
        let store = store.clone();
        joins.push(tokio::spawn(async move {
            store
                .commit(Decision {
                    append: Some(append("order:R", 0, &["Captured"])),
                    timeline: vec![timeline("R", &format!("writer {n}"), T0)],
                    order: Some(order("R", &format!("S{n}"), 1, T0)),
                    ..Decision::default()
                })
                .await
        }));
    }
    let mut wins = 0;
    for join in joins {
        match join.await.unwrap() {
            Ok(committed) => {
                wins += 1;
                assert_eq!(committed.version, Some(1));
            }
            Err(e) => assert_eq!(e.kind(), crate::ErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.read_stream("order:R").await.unwrap().len(), 1);
    let entries = store.timeline("R").await.unwrap();
    assert_eq!(entries.len(), 1, "only the winner's timeline entry exists");
    let row = store.order("R").await.unwrap().unwrap();
    assert_eq!(
        format!("writer {}", &row.status[1..]),
        entries[0].entry.summary
    );
    assert_eq!(store.orders(OrderQuery::default()).await.unwrap().len(), 1);
}

/// A subscriber polling `read_all` with its last position while writers commit in parallel
/// sees every event exactly once, in increasing order.
pub async fn read_all_never_skips_a_committed_event(store: SharedStore) {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 40;
    let mut joins = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        joins.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..PER_WRITER {
                let committed = store
                    .commit(Decision {
                        append: Some(append(&format!("order:W{w}"), n as i64, &["Step"])),
                        ..Decision::default()
                    })
                    .await
                    .unwrap();
                seqs.extend(committed.event_seqs);
            }
            seqs
        }));
    }
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            while seen.len() < WRITERS * PER_WRITER {
                let page = store.read_all(after, 7).await.unwrap();
                for event in &page {
                    assert!(event.global_seq > after, "positions only grow");
                    after = event.global_seq;
                    seen.push(event.global_seq);
                }
                if page.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            seen
        })
    };
    let mut written = BTreeSet::new();
    for join in joins {
        written.extend(join.await.unwrap());
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the subscriber saw every event")
        .unwrap();
    let seen_set: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), seen_set.len(), "no event twice");
    assert_eq!(seen_set, written, "no committed event skipped");
}
