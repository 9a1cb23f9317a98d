//! Inbox: dedupe by `(source, message_id)`, raw payload kept, task enqueued with it.

use serde_json::json;

use super::fixtures::{T0, at, inbound, lease, lease_request};
use crate::{Accepted, CursorMove, Decision, InboundStatus, SharedStore, TaskState};

/// A message is stored once per `(source, message_id)`, raw, with its task; a repeat is a
/// duplicate that changes nothing.
pub async fn dedupes_by_source_and_message_id(store: SharedStore) {
    let first = store
        .accept_inbound(inbound("salesforce", "m-1", "order:A"))
        .await
        .unwrap();
    let Accepted::New(id) = first else {
        panic!("first accept must be new, got {first:?}")
    };

    let record = store.inbound(id).await.unwrap().expect("stored");
    assert_eq!(record.source, "salesforce");
    assert_eq!(record.message_id, "m-1");
    assert_eq!(
        record.raw, "{\"id\":\"m-1\", \"raw\": true}",
        "raw payload kept byte for byte"
    );
    assert_eq!(record.body, json!({ "message": "m-1" }));
    assert_eq!(record.status, InboundStatus::Pending);
    assert_eq!(record.received_at, T0);

    let tasks = store.tasks_for_order("A").await.unwrap();
    assert_eq!(
        tasks.len(),
        1,
        "the processing task is enqueued with the message"
    );
    assert_eq!(tasks[0].payload["inbox_id"], json!(id));
    assert_eq!(tasks[0].payload["correlation"], json!("salesforce:m-1"));
    assert_eq!(tasks[0].state, TaskState::Pending);

    let mut again = inbound("salesforce", "m-1", "order:A");
    again.raw = "different bytes".to_owned();
    assert_eq!(
        store.accept_inbound(again).await.unwrap(),
        Accepted::Duplicate(id)
    );
    assert_eq!(store.inbound(id).await.unwrap().unwrap().raw, record.raw);
    assert_eq!(
        store.tasks_for_order("A").await.unwrap().len(),
        1,
        "no second task"
    );

    // Same message id from another source is another message.
    let other = store
        .accept_inbound(inbound("erp", "m-1", "order:A"))
        .await
        .unwrap();
    assert!(matches!(other, Accepted::New(other_id) if other_id != id));
    assert_eq!(store.inbound(9_999_999).await.unwrap(), None);
}

/// Accepting with a claim leases the message's task in the same transaction when it is
/// ready: not for a duplicate, not behind a task of its key, not on another lane; the task's
/// payload carries its inbox id, also when the sender's payload had one of its own.
pub async fn accept_leasing_claims_a_ready_task(store: SharedStore) {
    let hub = |now| Some(lease_request("hub", "worker-2", 1, now));
    let mut message = inbound("api", "m-1", "order:A");
    if let Some(task) = message.task.as_mut() {
        task.payload["inbox_id"] = json!(-1);
    }
    let (accepted, leased) = store
        .accept_inbound_leasing(message, hub(T0))
        .await
        .unwrap();
    let Accepted::New(id) = accepted else {
        panic!("first accept must be new, got {accepted:?}")
    };
    let leased = leased.expect("the ready task is leased");
    assert_eq!(leased.task.payload["inbox_id"], json!(id));
    assert_eq!(leased.task.payload["correlation"], json!("api:m-1"));
    assert_eq!(leased.task.state, TaskState::Leased);
    assert_eq!(leased.task.attempts, 1);
    assert_eq!(leased.owner, "worker-2");
    assert_eq!(leased.expires_at, at(30));
    assert!(lease(&store, "hub", 10, T0).await.is_empty(), "in flight");

    let (again, none) = store
        .accept_inbound_leasing(inbound("api", "m-1", "order:A"), hub(T0))
        .await
        .unwrap();
    assert_eq!(again, Accepted::Duplicate(id));
    assert!(none.is_none(), "a duplicate leases nothing");

    let (second, behind) = store
        .accept_inbound_leasing(inbound("api", "m-2", "order:A"), hub(T0))
        .await
        .unwrap();
    assert!(matches!(second, Accepted::New(_)));
    assert!(behind.is_none(), "queued behind the task in flight");

    let elsewhere = Some(lease_request("erp", "worker-2", 1, T0));
    let (third, other_lane) = store
        .accept_inbound_leasing(inbound("api", "m-3", "order:B"), elsewhere)
        .await
        .unwrap();
    assert!(matches!(third, Accepted::New(_)));
    assert!(other_lane.is_none(), "only the claimed lane");
    let (_, early) = store
        .accept_inbound_leasing(inbound("api", "m-4", "order:C"), hub(at(-1)))
        .await
        .unwrap();
    assert!(early.is_none(), "not due yet at the claim's time");
    let pending: Vec<String> = lease(&store, "hub", 10, T0)
        .await
        .into_iter()
        .map(|l| l.task.key)
        .collect();
    assert_eq!(pending, vec!["order:B", "order:C"]);
}

/// 50 concurrent accepts of one message: exactly one is new, one task exists.
pub async fn dedupes_concurrent_accepts(store: SharedStore) {
    let mut joins = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        joins.push(tokio::spawn(async move {
            store
                .accept_inbound(inbound("api", "dup-1", "order:C"))
                .await
        }));
    }
    let mut new = Vec::new();
    let mut duplicates = Vec::new();
    for join in joins {
        match join.await.unwrap().expect("accept") {
            Accepted::New(id) => new.push(id),
            Accepted::Duplicate(id) => duplicates.push(id),
        }
    }
    assert_eq!(new.len(), 1, "exactly one accept stores the message");
    assert_eq!(duplicates.len(), 49);
    assert!(
        duplicates.iter().all(|id| *id == new[0]),
        "duplicates name the stored row"
    );
    let tasks = store.tasks_for_order("C").await.unwrap();
    assert_eq!(tasks.len(), 1, "exactly one processing task");
    let pending = store
        .inbound_by_status(InboundStatus::Pending, 0, 100)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
}

/// A decision marks the message; listing by status pages by id.
pub async fn status_follows_decisions(store: SharedStore) {
    let mut ids = Vec::new();
    for n in 0..5 {
        match store
            .accept_inbound(inbound(
                "salesforce",
                &format!("s-{n}"),
                &format!("order:S{n}"),
            ))
            .await
            .unwrap()
        {
            Accepted::New(id) => ids.push(id),
            other => panic!("unexpected {other:?}"),
        }
    }
    let leased = lease(&store, "hub", 10, at(1)).await;
    assert_eq!(leased.len(), 5, "one inbound task per key");
    let first = leased
        .iter()
        .find(|l| l.task.payload["inbox_id"] == json!(ids[0]))
        .unwrap();
    store
        .complete(
            first,
            Decision {
                inbound: Some((ids[0], InboundStatus::Processed, None)),
                ..Decision::default()
            },
        )
        .await
        .unwrap();
    let refused = leased
        .iter()
        .find(|l| l.task.payload["inbox_id"] == json!(ids[1]))
        .unwrap();
    store
        .complete(
            refused,
            Decision {
                inbound: Some((ids[1], InboundStatus::Refused, Some("not the owner".into()))),
                ..Decision::default()
            },
        )
        .await
        .unwrap();

    assert_eq!(
        store.inbound(ids[0]).await.unwrap().unwrap().status,
        InboundStatus::Processed
    );
    let refused = store.inbound(ids[1]).await.unwrap().unwrap();
    assert_eq!(refused.status, InboundStatus::Refused);
    assert_eq!(refused.error.as_deref(), Some("not the owner"));

    let pending = store
        .inbound_by_status(InboundStatus::Pending, 0, 2)
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|r| r.id).collect::<Vec<_>>(),
        ids[2..4].to_vec()
    );
    let rest = store
        .inbound_by_status(InboundStatus::Pending, ids[3], 10)
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[4]]);

    // Marking an unknown message fails the whole decision.
    let leased_rest: Vec<_> = leased
        .iter()
        .filter(|l| l.task.payload["inbox_id"] == json!(ids[2]))
        .collect();
    let err = store
        .complete(
            leased_rest[0],
            Decision {
                inbound: Some((9_999_999, InboundStatus::Processed, None)),
                ..Decision::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    assert_eq!(
        store.tasks_for_order("S2").await.unwrap().len(),
        1,
        "task not removed"
    );
}

/// A page of feed messages is stored in order with the feed's cursor in one transaction:
/// duplicates (known before, or earlier in the page) change nothing, the claim leases the
/// lane's oldest ready tasks, and a page that fails stores nothing and leaves the cursor.
pub async fn page_is_stored_in_order_with_its_cursor(store: SharedStore) {
    let Accepted::New(known) = store
        .accept_inbound(inbound("erp", "m-0", "order:A"))
        .await
        .unwrap()
    else {
        panic!("first accept must be new")
    };
    let page = ["m-1", "m-2", "m-0", "m-3", "m-2"]
        .iter()
        .zip(["order:A", "order:B", "order:A", "order:A", "order:B"])
        .map(|(id, key)| inbound("erp", id, key))
        .collect();
    let moved = CursorMove {
        name: "feed".to_owned(),
        position: "p-5".to_owned(),
        at: T0,
    };
    let (accepted, leased) = store
        .accept_inbound_page(
            page,
            Some(moved.clone()),
            Some(lease_request("hub", "worker-2", 2, T0)),
        )
        .await
        .unwrap();
    let new: Vec<i64> = accepted
        .iter()
        .filter_map(|a| match a {
            Accepted::New(id) => Some(*id),
            Accepted::Duplicate(_) => None,
        })
        .collect();
    assert_eq!(new.len(), 3, "m-1, m-2, m-3 are new: {accepted:?}");
    assert_eq!(accepted[2], Accepted::Duplicate(known));
    assert_eq!(
        accepted[4],
        Accepted::Duplicate(new[1]),
        "repeated in the page"
    );
    assert_eq!(store.cursor("feed").await.unwrap().as_deref(), Some("p-5"));

    let correlations = |tasks: Vec<crate::Task>| -> Vec<String> {
        tasks
            .into_iter()
            .map(|t| t.payload["correlation"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(
        correlations(store.tasks_for_order("A").await.unwrap()),
        vec!["erp:m-0", "erp:m-1", "erp:m-3"],
        "one task per new message, in page order"
    );
    let claimed: Vec<(String, serde_json::Value)> = leased
        .iter()
        .map(|l| (l.task.key.clone(), l.task.payload["inbox_id"].clone()))
        .collect();
    assert_eq!(
        claimed,
        vec![
            ("order:A".to_owned(), json!(known)),
            ("order:B".to_owned(), json!(new[1]))
        ],
        "each key's oldest task, oldest ready first"
    );
    assert!(leased.iter().all(|l| l.owner == "worker-2"));
    // Each lease carries its task's payload as stored, inbox id included (the page's own
    // task and the older one alike).
    for l in &leased {
        let order = l
            .task
            .order_id
            .as_deref()
            .expect("inbound tasks name their order");
        let stored = store.tasks_for_order(order).await.unwrap();
        let task = stored.iter().find(|t| t.id == l.task.id).expect("stored");
        assert_eq!(task.payload, l.task.payload, "{}", l.task.key);
        assert_eq!(l.task.payload["body"], json!({ "lines": [1, 2] }));
    }
    assert!(
        lease(&store, "hub", 10, T0).await.is_empty(),
        "heads in flight"
    );

    let mut bad = inbound("erp", "m-5", "order:C");
    if let Some(task) = bad.task.as_mut() {
        task.payload = json!(5);
    }
    let failed = store
        .accept_inbound_page(
            vec![inbound("erp", "m-4", "order:C"), bad],
            Some(CursorMove {
                position: "p-7".to_owned(),
                ..moved
            }),
            None,
        )
        .await;
    assert!(failed.is_err(), "a task payload must be an object");
    assert!(store.tasks_for_order("C").await.unwrap().is_empty());
    assert_eq!(store.cursor("feed").await.unwrap().as_deref(), Some("p-5"));
    assert!(
        matches!(
            store
                .accept_inbound(inbound("erp", "m-4", "order:C"))
                .await
                .unwrap(),
            Accepted::New(_)
        ),
        "m-4 was not stored by the failed page"
    );
}
