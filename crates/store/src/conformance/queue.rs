//! Task queue: leasing, expiry, per-key order, dedupe, atomic completion, release, depths.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fixtures::{Rng, T0, append, at, ids, lease, lease_request, note, queued, task};
use crate::{Decision, Error, NewDeadLetter, SharedStore, TaskState};

/// Due tasks are leased oldest due time first, up to the limit; leasing counts an attempt
/// and returns distinct tokens; lanes are separate.
pub async fn lease_takes_due_tasks_oldest_first(store: SharedStore) {
    let later = super::fixtures::NewTaskExt::due(task("erp", "erp:B", "book"), at(10));
    let enqueued = store
        .enqueue(vec![
            task("erp", "erp:A", "book"),
            later,
            task("erp", "erp:C", "book"),
            task("salesforce", "sf:D", "sf-sync"),
        ])
        .await
        .unwrap();
    assert_eq!(enqueued.len(), 4);
    assert!(
        enqueued.windows(2).all(|w| w[0] < w[1]),
        "ids increase with enqueue order"
    );
    let [a, b, c, d] = [enqueued[0], enqueued[1], enqueued[2], enqueued[3]];

    assert!(
        lease(&store, "erp", 0, T0).await.is_empty(),
        "limit 0 leases nothing"
    );
    let first = lease(&store, "erp", 10, T0).await;
    assert_eq!(ids(&first), vec![a, c], "only due tasks, oldest first");
    for l in &first {
        assert_eq!(l.task.attempts, 1);
        assert_eq!(l.task.state, TaskState::Leased);
        assert_eq!(l.owner, "worker-1");
        assert_eq!(l.expires_at, at(30));
    }
    assert_ne!(first[0].token, first[1].token);
    assert_eq!(first[0].task.payload["key"], "erp:A");
    assert!(
        lease(&store, "erp", 10, T0).await.is_empty(),
        "leased tasks are not leased again"
    );

    let due_later = lease(&store, "erp", 1, at(10)).await;
    assert_eq!(ids(&due_later), vec![b]);
    let sf = lease(&store, "salesforce", 10, T0).await;
    assert_eq!(ids(&sf), vec![d]);

    let tasks = store.tasks_for_order("A").await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].state, TaskState::Leased);
    assert_eq!(tasks[0].attempts, 1);
}

/// An expired lease is taken over; the old token then completes, retries and dead-letters
/// nothing. A lease that expired but was not taken over still completes.
pub async fn expired_lease_is_retaken_and_old_token_is_lost(store: SharedStore) {
    store
        .enqueue(vec![task("erp", "erp:E", "book")])
        .await
        .unwrap();
    let old = lease(&store, "erp", 1, T0).await.remove(0);
    assert!(
        lease(&store, "erp", 1, at(29)).await.is_empty(),
        "lease still held"
    );
    let new = store
        .lease(lease_request("erp", "worker-2", 1, at(31)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(new.task.id, old.task.id);
    assert_eq!(new.task.attempts, 2, "the crashed attempt counts");
    assert_ne!(new.token, old.token);
    assert_eq!(new.owner, "worker-2");

    let lost = store.complete(&old, note("E", "stale")).await.unwrap_err();
    assert!(matches!(lost, Error::LeaseLost { task } if task == old.task.id));
    assert_eq!(lost.kind(), crate::ErrorKind::LeaseLost);
    assert!(
        store.timeline("E").await.unwrap().is_empty(),
        "nothing of a lost lease is written"
    );
    let lost = store
        .retry(&old, at(40), "late", Decision::default())
        .await
        .unwrap_err();
    assert!(matches!(lost, Error::LeaseLost { .. }));
    let entry = NewDeadLetter {
        class: "permanent".into(),
        error: "late".into(),
        reason: "permanent failure".into(),
    };
    let lost = store
        .dead_letter(&old, entry, Decision::default())
        .await
        .unwrap_err();
    assert!(matches!(lost, Error::LeaseLost { .. }));
    assert!(
        store
            .dead_letters(Default::default())
            .await
            .unwrap()
            .is_empty()
    );

    store.complete(&new, note("E", "done")).await.unwrap();
    assert!(store.tasks_for_order("E").await.unwrap().is_empty());
    let again = store.complete(&new, note("E", "twice")).await.unwrap_err();
    assert!(
        matches!(again, Error::LeaseLost { .. }),
        "a completed task is gone"
    );

    store
        .enqueue(vec![task("erp", "erp:F", "book")])
        .await
        .unwrap();
    let expired = lease(&store, "erp", 1, T0).await.remove(0);
    store
        .complete(&expired, note("F", "late but unchallenged"))
        .await
        .unwrap();
    assert_eq!(store.timeline("F").await.unwrap().len(), 1);
}

/// Tasks of one key run one at a time, oldest first, across lanes too.
pub async fn key_never_has_two_tasks_in_flight(store: SharedStore) {
    let ids_k = store
        .enqueue(vec![
            task("erp", "erp:K", "validate"),
            task("erp", "erp:K", "book"),
            task("erp", "erp:K", "erp-cancel"),
            task("erp", "erp:L", "book"),
        ])
        .await
        .unwrap();
    let first = lease(&store, "erp", 10, T0).await;
    assert_eq!(ids(&first), vec![ids_k[0], ids_k[3]], "one task per key");
    assert!(lease(&store, "erp", 10, T0).await.is_empty());
    let k1 = first.iter().find(|l| l.task.id == ids_k[0]).unwrap();
    store.complete(k1, Decision::default()).await.unwrap();
    let second = lease(&store, "erp", 10, T0).await;
    assert_eq!(ids(&second), vec![ids_k[1]]);

    // A key shared by two lanes still runs one task at a time, in enqueue order.
    let shared = store
        .enqueue(vec![
            task("erp", "both:M", "book"),
            task("salesforce", "both:M", "sf-sync"),
        ])
        .await
        .unwrap();
    assert!(lease(&store, "salesforce", 10, T0).await.is_empty());
    let m = lease(&store, "erp", 10, T0).await;
    assert_eq!(ids(&m), vec![shared[0]]);
    store.complete(&m[0], Decision::default()).await.unwrap();
    assert_eq!(
        ids(&lease(&store, "salesforce", 10, T0).await),
        vec![shared[1]]
    );
}

/// Many workers lease in parallel over many keys: no key ever has two leases at once, and
/// each key's tasks finish in enqueue order.
pub async fn concurrent_workers_never_overlap_on_a_key(store: SharedStore) {
    workers_never_overlap_on_a_key(vec![store]).await;
}

/// The stress of [`concurrent_workers_never_overlap_on_a_key`] with workers spread over
/// several handles of one database (as several hub processes would be).
pub async fn workers_never_overlap_on_a_key(stores: Vec<SharedStore>) {
    const KEYS: usize = 40;
    const PER_KEY: usize = 5;
    const WORKERS: usize = 8;
    let mut batch = Vec::new();
    for round in 0..PER_KEY {
        for k in 0..KEYS {
            let mut t = task("erp", &format!("erp:K{k}"), &format!("step-{round}"));
            t.payload = serde_json::json!({ "round": round });
            batch.push(t);
        }
    }
    let enqueued = stores[0].enqueue(batch).await.unwrap();
    assert_eq!(enqueued.len(), KEYS * PER_KEY);

    // Our in-flight window for a task (lease returned .. just before complete/retry is sent)
    // lies inside the store's lease, so any overlap seen here is a real one.
    let in_flight: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let finished: Arc<Mutex<BTreeMap<String, Vec<i64>>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let store = stores[w % stores.len()].clone();
        let in_flight = Arc::clone(&in_flight);
        let finished = Arc::clone(&finished);
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 1);
            let owner = format!("worker-{w}");
            let mut idle = 0;
            loop {
                let done = finished
                    .lock()
                    .unwrap()
                    .values()
                    .map(Vec::len)
                    .sum::<usize>();
                if done == KEYS * PER_KEY {
                    return;
                }
                let mut request = lease_request("erp", &owner, 1 + rng.below(4), T0);
                request.lease_for = Duration::from_secs(3600);
                let leases = store.lease(request).await.unwrap();
                if leases.is_empty() {
                    idle += 1;
                    assert!(idle < 200_000, "workers starved");
                    tokio::task::yield_now().await;
                    continue;
                }
                for l in &leases {
                    let previous = in_flight
                        .lock()
                        .unwrap()
                        .insert(l.task.key.clone(), l.task.id);
                    assert_eq!(previous, None, "key {} leased twice at once", l.task.key);
                }
                tokio::task::yield_now().await;
                for l in leases {
                    in_flight.lock().unwrap().remove(&l.task.key);
                    if l.task.attempts < 2 && rng.chance(20) {
                        store
                            .retry(&l, T0, "transient", Decision::default())
                            .await
                            .unwrap();
                    } else {
                        // Recorded while the lease is held: once `complete` commits, the
                        // key's next task may be leased, finished and recorded by another
                        // worker before this one would get to record its own.
                        finished
                            .lock()
                            .unwrap()
                            .entry(l.task.key.clone())
                            .or_default()
                            .push(l.task.id);
                        store.complete(&l, Decision::default()).await.unwrap();
                    }
                }
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), async {
        for worker in workers {
            worker.await.unwrap();
        }
    })
    .await
    .expect("all tasks finish");
    let finished = finished.lock().unwrap();
    assert_eq!(finished.len(), KEYS);
    for (key, done) in finished.iter() {
        assert_eq!(done.len(), PER_KEY, "{key}");
        assert!(
            done.windows(2).all(|w| w[0] < w[1]),
            "{key} finished out of order: {done:?}"
        );
    }
}

/// A retried task due later holds back the younger tasks of its key; other keys proceed.
pub async fn retried_older_task_holds_back_its_key(store: SharedStore) {
    let k = store
        .enqueue(vec![
            task("erp", "erp:P", "book"),
            task("erp", "erp:P", "erp-cancel"),
        ])
        .await
        .unwrap();
    let j = store
        .enqueue(vec![task("erp", "erp:Q", "book")])
        .await
        .unwrap();
    let first = lease(&store, "erp", 10, T0).await;
    assert_eq!(ids(&first), vec![k[0], j[0]]);
    let p = first.iter().find(|l| l.task.id == k[0]).unwrap();
    store
        .retry(p, at(60), "ERP timeout", Decision::default())
        .await
        .unwrap();
    let q = first.iter().find(|l| l.task.id == j[0]).unwrap();
    store.complete(q, Decision::default()).await.unwrap();

    let pending = store.tasks_for_order("P").await.unwrap();
    assert_eq!(pending[0].state, TaskState::Pending);
    assert_eq!(pending[0].due_at, at(60));
    assert_eq!(pending[0].last_error.as_deref(), Some("ERP timeout"));
    assert_eq!(pending[0].attempts, 1);

    assert!(
        lease(&store, "erp", 10, at(1)).await.is_empty(),
        "the younger task waits"
    );
    let j2 = store
        .enqueue(vec![task("erp", "erp:Q", "sf-sync")])
        .await
        .unwrap();
    let q2 = lease(&store, "erp", 10, at(1)).await;
    assert_eq!(ids(&q2), j2, "other keys proceed");
    store.complete(&q2[0], Decision::default()).await.unwrap();
    let again = lease(&store, "erp", 10, at(60)).await;
    assert_eq!(ids(&again), vec![k[0]]);
    assert_eq!(again[0].task.attempts, 2);
    store
        .complete(&again[0], Decision::default())
        .await
        .unwrap();
    assert_eq!(ids(&lease(&store, "erp", 10, at(60)).await), vec![k[1]]);
}

/// `dedupe` collapses into a pending task of the same lane, not into a leased one.
pub async fn dedupe_collapses_pending_but_not_leased(store: SharedStore) {
    let sync = |key: &str| {
        let mut t = task("salesforce", key, "sf-sync");
        t.dedupe = Some("sync/A".into());
        t.blocking = false;
        t
    };
    let first = store
        .enqueue(vec![sync("sf:A"), sync("sf:A")])
        .await
        .unwrap();
    assert_eq!(first.len(), 1, "a duplicate in the same batch collapses");
    assert!(store.enqueue(vec![sync("sf:A")]).await.unwrap().is_empty());
    let mut other_lane = sync("hub:A");
    other_lane.lane = "hub".into();
    assert_eq!(
        store.enqueue(vec![other_lane]).await.unwrap().len(),
        1,
        "dedupe is per lane"
    );

    let leased = lease(&store, "salesforce", 1, T0).await;
    assert_eq!(ids(&leased), first);
    let second = store.enqueue(vec![sync("sf:A")]).await.unwrap();
    assert_eq!(second.len(), 1, "a leased task does not absorb new work");
    let committed = store
        .commit(Decision {
            tasks: vec![sync("sf:A"), task("salesforce", "sf:B", "sf-sync")],
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(
        committed.task_ids.len(),
        1,
        "deduplicated tasks are not reported"
    );
    assert_eq!(store.tasks_for_order("A").await.unwrap().len(), 3);

    // Back to pending after a retry, the leased task and the new one both stay.
    store
        .retry(&leased[0], T0, "busy", Decision::default())
        .await
        .unwrap();
    assert_eq!(store.tasks_for_order("A").await.unwrap().len(), 3);
}

/// `complete` (and `dead_letter`) write the decision with the task change, or nothing.
pub async fn complete_is_atomic_with_its_decision(store: SharedStore) {
    store
        .commit(Decision {
            append: Some(append("order:X", 0, &["Captured"])),
            ..Decision::default()
        })
        .await
        .unwrap();
    store
        .enqueue(vec![task("erp", "erp:X", "book")])
        .await
        .unwrap();
    let l = lease(&store, "erp", 1, T0).await.remove(0);
    let stale = Decision {
        append: Some(append("order:X", 0, &["Booked"])),
        tasks: vec![task("salesforce", "sf:X", "sf-sync")],
        timeline: vec![super::fixtures::timeline("X", "booked", T0)],
        ..Decision::default()
    };
    let err = store.complete(&l, stale.clone()).await.unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Conflict);
    let tasks = queued(&store, &["X"]).await;
    assert_eq!(tasks.len(), 1, "no task enqueued");
    assert_eq!(
        tasks[0].state,
        TaskState::Leased,
        "the task is still leased"
    );
    assert!(store.timeline("X").await.unwrap().is_empty());

    let entry = NewDeadLetter {
        class: "permanent".into(),
        error: "bad".into(),
        reason: "permanent failure".into(),
    };
    let err = store
        .dead_letter(&l, entry, stale.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Conflict);
    assert!(
        store
            .dead_letters(Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(queued(&store, &["X"]).await[0].state, TaskState::Leased);

    let fresh = Decision {
        append: Some(append("order:X", 1, &["Booked"])),
        ..stale
    };
    let committed = store.complete(&l, fresh).await.unwrap();
    assert_eq!(committed.version, Some(2));
    assert_eq!(committed.task_ids.len(), 1);
    let tasks = queued(&store, &["X"]).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].kind, "sf-sync");
    assert_eq!(store.timeline("X").await.unwrap().len(), 1);
}

/// A decision's `claim` leases, in its own transaction, the tasks it enqueued that are ready
/// on the claimed lane, oldest first and up to the limit: not a task queued behind its key,
/// not one due later, not one of another lane, and never a task the decision did not enqueue.
pub async fn complete_claims_the_next_ready_tasks(store: SharedStore) {
    store
        .enqueue(vec![
            task("erp", "erp:X", "book"),
            task("erp", "erp:Y", "book"),
        ])
        .await
        .unwrap();
    let l = lease(&store, "erp", 1, T0).await.remove(0);
    assert_eq!(l.task.key, "erp:X");
    let decision = Decision {
        tasks: vec![
            task("erp", "erp:X", "allocate"),
            task("erp", "erp:X", "invoice"),
            super::fixtures::NewTaskExt::due(task("erp", "erp:Z", "later"), at(10)),
            task("salesforce", "sf:X", "sf-sync"),
        ],
        claim: vec![lease_request("erp", "worker-2", 5, T0)],
        ..Decision::default()
    };
    let committed = store.complete(&l, decision).await.unwrap();
    assert_eq!(committed.task_ids.len(), 4);
    assert_eq!(ids(&committed.leased), vec![committed.task_ids[0]]);
    let claimed = &committed.leased[0];
    assert_eq!(claimed.task.kind, "allocate");
    assert_eq!(claimed.task.state, TaskState::Leased);
    assert_eq!(claimed.task.attempts, 1);
    assert_eq!(claimed.task.payload["kind"], "allocate");
    assert_eq!(claimed.owner, "worker-2");
    assert_eq!(claimed.expires_at, at(30));
    assert_ne!(claimed.token, l.token);

    let leased = lease(&store, "erp", 10, T0).await;
    assert_eq!(
        leased
            .iter()
            .map(|l| l.task.key.as_str())
            .collect::<Vec<_>>(),
        vec!["erp:Y"],
        "the claimed task is in flight, the one behind it waits, the later one is not due"
    );

    let next = Decision {
        tasks: vec![task("erp", "erp:P", "book"), task("erp", "erp:Q", "book")],
        claim: vec![lease_request("erp", "worker-2", 1, T0)],
        ..Decision::default()
    };
    let committed = store.complete(claimed, next).await.unwrap();
    assert_eq!(
        ids(&committed.leased),
        vec![committed.task_ids[0]],
        "up to the limit"
    );
    let leased = lease(&store, "erp", 10, T0).await;
    assert_eq!(
        leased
            .iter()
            .map(|l| l.task.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["invoice", "book"],
        "the unclaimed tasks are leased as usual"
    );
    assert_eq!(leased[1].task.key, "erp:Q");
}

/// A completion's `claim_ready` leases, in the same transaction, the next ready tasks of its
/// lane whatever their key, as `lease` would (oldest first, not a key with a task in flight,
/// not a task due later, not another lane), until the decision's leases on that lane (its
/// `claim`'s included) number the limit.
pub async fn complete_leases_the_lanes_next_ready_tasks(store: SharedStore) {
    store
        .enqueue(vec![
            task("erp", "erp:A", "book"),
            task("erp", "erp:B", "book"),
            task("erp", "erp:B", "allocate"),
            task("salesforce", "sf:S", "sf-sync"),
            task("erp", "erp:C", "book"),
        ])
        .await
        .unwrap();
    let first = lease(&store, "erp", 2, T0).await;
    assert_eq!(
        first
            .iter()
            .map(|l| l.task.key.as_str())
            .collect::<Vec<_>>(),
        vec!["erp:A", "erp:B"]
    );
    let decision = Decision {
        tasks: vec![super::fixtures::NewTaskExt::due(
            task("erp", "erp:A", "later"),
            at(10),
        )],
        claim_ready: Some(lease_request("erp", "worker-2", 1, T0)),
        ..Decision::default()
    };
    let committed = store.complete(&first[0], decision).await.unwrap();
    assert_eq!(committed.leased.len(), 1, "{:?}", committed.leased);
    let next = &committed.leased[0];
    assert_eq!(
        (next.task.key.as_str(), next.task.kind.as_str()),
        ("erp:C", "book"),
        "not B's second task (its key is in flight), not the task due later, not salesforce"
    );
    assert_eq!(next.task.state, TaskState::Leased);
    assert_eq!(next.task.attempts, 1);
    assert_eq!(
        next.task.payload["kind"], "book",
        "the payload comes parsed"
    );
    assert_eq!(next.owner, "worker-2");
    assert_eq!(next.expires_at, at(30));
    assert!(
        lease(&store, "erp", 10, T0).await.is_empty(),
        "C is in flight for the claim"
    );

    // The decision's own claim counts: with a limit of one, its new task is all it leases,
    // though B's second task is ready once B completes.
    let decision = Decision {
        tasks: vec![task("erp", "erp:D", "book")],
        claim: vec![lease_request("erp", "worker-2", 1, T0)],
        claim_ready: Some(lease_request("erp", "worker-2", 1, T0)),
        ..Decision::default()
    };
    let committed = store.complete(&first[1], decision).await.unwrap();
    assert_eq!(ids(&committed.leased), committed.task_ids);
    assert_eq!(committed.leased[0].task.key, "erp:D");

    // Nothing enqueued: the slot goes to what is ready, up to the limit.
    let decision = Decision {
        claim_ready: Some(lease_request("erp", "worker-2", 3, T0)),
        ..Decision::default()
    };
    let committed = store.complete(next, decision).await.unwrap();
    assert_eq!(
        committed
            .leased
            .iter()
            .map(|l| (l.task.key.as_str(), l.task.kind.as_str()))
            .collect::<Vec<_>>(),
        vec![("erp:B", "allocate")],
        "D is in flight and A's next task is not due"
    );
    let later = lease(&store, "erp", 10, at(10)).await;
    assert_eq!(
        later
            .iter()
            .map(|l| l.task.kind.as_str())
            .collect::<Vec<_>>(),
        vec!["later"],
        "the claimed leases are not leased again"
    );
}

/// `release_all` hands an owner's leases back without consuming the attempt.
pub async fn release_all_returns_leases_without_an_attempt(store: SharedStore) {
    store
        .enqueue(vec![
            task("erp", "erp:R1", "book"),
            task("erp", "erp:R2", "book"),
            task("erp", "erp:R3", "book"),
        ])
        .await
        .unwrap();
    let mine = store
        .lease(lease_request("erp", "worker-1", 2, T0))
        .await
        .unwrap();
    let theirs = store
        .lease(lease_request("erp", "worker-2", 2, T0))
        .await
        .unwrap();
    assert_eq!((mine.len(), theirs.len()), (2, 1));
    assert_eq!(store.release_all("worker-1").await.unwrap(), 2);
    assert_eq!(store.release_all("worker-1").await.unwrap(), 0);
    for l in &mine {
        let task = &store
            .tasks_for_order(l.task.order_id.as_deref().unwrap())
            .await
            .unwrap()[0];
        assert_eq!((task.state, task.attempts), (TaskState::Pending, 0));
    }
    let retaken = store
        .lease(lease_request("erp", "worker-3", 10, T0))
        .await
        .unwrap();
    assert_eq!(ids(&retaken), ids(&mine));
    assert!(retaken.iter().all(|l| l.task.attempts == 1));
    assert!(matches!(
        store.complete(&mine[0], Decision::default()).await,
        Err(Error::LeaseLost { .. })
    ));
    store
        .complete(&theirs[0], Decision::default())
        .await
        .unwrap();
}

/// Depth per lane: pending (due or not), due, leased, blocked; an expired lease counts as
/// pending and due.
pub async fn lane_depths_count_by_state(store: SharedStore) {
    let later = super::fixtures::NewTaskExt::due(task("erp", "erp:D2", "book"), at(100));
    store
        .enqueue(vec![
            task("erp", "erp:D1", "book"),
            later,
            task("erp", "erp:D3", "book"),
            task("erp", "erp:D4", "book"),
            task("salesforce", "sf:D5", "sf-sync"),
        ])
        .await
        .unwrap();
    // D1 and D3 and D4 are due; lease D1 + D3, dead-letter D3 (blocking), keep D1 leased.
    let leased = lease(&store, "erp", 2, T0).await;
    let entry = NewDeadLetter {
        class: "permanent".into(),
        error: "bad".into(),
        reason: "permanent failure".into(),
    };
    store
        .dead_letter(&leased[1], entry, Decision::default())
        .await
        .unwrap();
    let sf = lease(&store, "salesforce", 1, T0).await;
    assert_eq!(sf.len(), 1);

    let depths = store.lane_depths(at(40)).await.unwrap();
    assert_eq!(
        depths.iter().map(|d| d.lane.as_str()).collect::<Vec<_>>(),
        ["erp", "salesforce"]
    );
    let erp = &depths[0];
    // At +40 s the erp lease (30 s) has expired too: D1 counts as pending and due.
    assert_eq!(
        (erp.pending, erp.due, erp.leased, erp.blocked),
        (3, 2, 0, 1)
    );
    let erp_now = store.lane_depths(at(1)).await.unwrap();
    assert_eq!(
        (
            erp_now[0].pending,
            erp_now[0].due,
            erp_now[0].leased,
            erp_now[0].blocked
        ),
        (2, 1, 1, 1)
    );
    let sf_depth = &depths[1];
    assert_eq!((sf_depth.pending, sf_depth.due, sf_depth.leased), (1, 1, 0));
    assert!(erp.oldest_pending.is_some());
    assert_eq!(
        erp_now[1].oldest_pending, None,
        "no pending task in the lane at +1 s"
    );
}
