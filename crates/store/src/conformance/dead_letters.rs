//! Dead letters: blocking and non-blocking, retry (edited), resolve, auto-resolve, filters.

use serde_json::json;

use super::fixtures::{T0, at, ids, lease, note, queued, task};
use crate::{
    DeadLetterFilter, DeadLetterStatus, Decision, Error, ErrorKind, NewDeadLetter, NewTask,
    SharedStore, TaskState,
};

fn failure(class: &str) -> NewDeadLetter {
    NewDeadLetter {
        class: class.to_owned(),
        error: format!("{class} error from the ERP"),
        reason: if class == "permanent" {
            "permanent failure".into()
        } else {
            "gave up after 5 attempts".into()
        },
    }
}

/// Enqueues `first` and a younger task of the same key, leases and dead-letters `first`.
/// Returns (dead letter id, first task id, younger task id).
async fn kill_head(store: &SharedStore, first: NewTask) -> (i64, i64, i64) {
    let key = first.key.clone();
    let lane = first.lane.clone();
    let order = first.order_id.clone().unwrap();
    let ids_ = store
        .enqueue(vec![first, task(&lane, &key, "erp-cancel")])
        .await
        .unwrap();
    let l = lease(store, &lane, 1, T0).await.remove(0);
    assert_eq!(l.task.id, ids_[0]);
    let dl = store
        .dead_letter(&l, failure("permanent"), note(&order, "dead-lettered"))
        .await
        .unwrap();
    (dl, ids_[0], ids_[1])
}

/// A blocking dead letter keeps its task in the queue as `dead` and holds the key until it
/// is retried; the retried task runs again from attempt one.
pub async fn blocking_holds_key_until_retried(store: SharedStore) {
    let (dl, first, younger) = kill_head(&store, task("erp", "erp:B1", "book")).await;
    let letter = store.dead_letter_by_id(dl).await.unwrap().expect("stored");
    assert_eq!(letter.status, DeadLetterStatus::Open);
    assert_eq!(letter.task.id, first);
    assert_eq!(letter.task.kind, "book");
    assert_eq!(letter.task.attempts, 1);
    assert!(letter.task.blocking);
    assert_eq!(
        letter.task.payload,
        json!({ "key": "erp:B1", "kind": "book" })
    );
    assert_eq!(letter.class, "permanent");
    assert_eq!(letter.error, "permanent error from the ERP");
    assert_eq!(letter.reason, "permanent failure");
    assert_eq!(letter.resolution, None);
    assert_eq!(letter.closed_at, None);
    assert_eq!(
        store.timeline("B1").await.unwrap().len(),
        1,
        "decision committed with it"
    );

    let tasks = queued(&store, &["B1"]).await;
    assert_eq!(
        tasks.iter().map(|t| t.state).collect::<Vec<_>>(),
        [TaskState::Dead, TaskState::Pending]
    );
    assert!(
        lease(&store, "erp", 10, at(3600)).await.is_empty(),
        "the key is held"
    );
    store
        .enqueue(vec![task("erp", "erp:B2", "book")])
        .await
        .unwrap();
    let other = lease(&store, "erp", 10, T0).await;
    assert_eq!(other.len(), 1, "other keys proceed");
    assert_eq!(other[0].task.key, "erp:B2");

    let back = store
        .retry_dead_letter(dl, None, "ops@retail", at(5))
        .await
        .unwrap();
    assert_eq!(back, first, "the task keeps its place");
    let letter = store.dead_letter_by_id(dl).await.unwrap().unwrap();
    assert_eq!(letter.status, DeadLetterStatus::Retried);
    assert!(letter.resolution.unwrap().contains("ops@retail"));
    assert_eq!(letter.closed_at, Some(at(5)));

    let again = lease(&store, "erp", 10, at(5)).await;
    assert_eq!(ids(&again), vec![first]);
    assert_eq!(again[0].task.attempts, 1, "attempts reset");
    store
        .complete(&again[0], Decision::default())
        .await
        .unwrap();
    assert_eq!(ids(&lease(&store, "erp", 10, at(5)).await), vec![younger]);
}

/// Resolving a blocking dead letter removes its task and frees the key.
pub async fn blocking_is_released_by_resolve(store: SharedStore) {
    let (dl, first, younger) = kill_head(&store, task("erp", "erp:B3", "book")).await;
    store
        .resolve_dead_letter(dl, "booked by hand in the ERP", "ops@retail", at(9))
        .await
        .unwrap();
    let letter = store.dead_letter_by_id(dl).await.unwrap().unwrap();
    assert_eq!(letter.status, DeadLetterStatus::Resolved);
    let resolution = letter.resolution.unwrap();
    assert!(resolution.contains("ops@retail") && resolution.contains("booked by hand"));
    assert_eq!(letter.closed_at, Some(at(9)));
    let tasks = queued(&store, &["B3"]).await;
    assert!(
        tasks.iter().all(|t| t.id != first),
        "the dead task left the queue"
    );
    assert_eq!(ids(&lease(&store, "erp", 10, T0).await), vec![younger]);
}

/// A non-blocking dead letter leaves the queue at once; its key proceeds.
pub async fn non_blocking_leaves_the_queue(store: SharedStore) {
    let mut first = task("erp", "erp:N1", "sf-sync");
    first.blocking = false;
    let (dl, first_id, younger) = kill_head(&store, first).await;
    let tasks = queued(&store, &["N1"]).await;
    assert_eq!(ids_of(&tasks), vec![younger]);
    let letter = store.dead_letter_by_id(dl).await.unwrap().unwrap();
    assert_eq!(letter.task.id, first_id);
    assert!(!letter.task.blocking);
    assert_eq!(ids(&lease(&store, "erp", 10, T0).await), vec![younger]);
}

fn ids_of(tasks: &[crate::Task]) -> Vec<i64> {
    tasks.iter().map(|t| t.id).collect()
}

/// Retrying with an edited payload: a blocking task is edited in place; a non-blocking one
/// comes back under its id (its key's original place) and waits for the younger task of
/// its key that holds a lease.
pub async fn retry_takes_an_edited_payload(store: SharedStore) {
    let (dl, first, _) = kill_head(&store, task("erp", "erp:E1", "book")).await;
    let edited = json!({ "key": "erp:E1", "kind": "book", "ship_to": "fixed address" });
    store
        .retry_dead_letter(dl, Some(edited.clone()), "ops", at(1))
        .await
        .unwrap();
    let again = lease(&store, "erp", 10, at(1)).await;
    assert_eq!(ids(&again), vec![first]);
    assert_eq!(again[0].task.payload, edited);
    assert!(
        store
            .dead_letter_by_id(dl)
            .await
            .unwrap()
            .unwrap()
            .resolution
            .unwrap()
            .contains("edited")
    );
    store
        .complete(&again[0], Decision::default())
        .await
        .unwrap();
    let younger = lease(&store, "erp", 10, at(1)).await;
    store
        .complete(&younger[0], Decision::default())
        .await
        .unwrap();

    let mut sync = task("erp", "erp:E2", "sf-sync");
    sync.blocking = false;
    let (dl, first, younger) = kill_head(&store, sync).await;
    let held = lease(&store, "erp", 10, T0).await;
    assert_eq!(ids(&held), vec![younger]);
    let edited = json!({ "fixed": true });
    let back = store
        .retry_dead_letter(dl, Some(edited.clone()), "ops", at(2))
        .await
        .unwrap();
    assert_eq!(back, first, "same id as before");
    let tasks = queued(&store, &["E2"]).await;
    assert_eq!(ids_of(&tasks), vec![first, younger]);
    assert_eq!((tasks[0].state, tasks[0].attempts), (TaskState::Pending, 0));
    assert_eq!(tasks[0].payload, edited);
    assert_eq!(tasks[0].due_at, at(2));
    assert!(
        lease(&store, "erp", 10, at(2)).await.is_empty(),
        "the younger task of its key is in flight"
    );
    store.complete(&held[0], Decision::default()).await.unwrap();
    let back = lease(&store, "erp", 10, at(2)).await;
    assert_eq!(ids(&back), vec![first]);
    assert_eq!(back[0].task.payload, edited);
}

/// Only an open dead letter can be retried or resolved; unknown ids are `NotFound`.
pub async fn actions_need_an_open_letter(store: SharedStore) {
    let (dl, _, _) = kill_head(&store, task("erp", "erp:O1", "book")).await;
    store
        .resolve_dead_letter(dl, "handled", "ops", at(1))
        .await
        .unwrap();
    let err = store
        .retry_dead_letter(dl, None, "ops", at(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    let err = store
        .resolve_dead_letter(dl, "again", "ops", at(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(
        store.dead_letter_by_id(dl).await.unwrap().unwrap().status,
        DeadLetterStatus::Resolved
    );

    let (dl2, _, _) = kill_head(&store, task("erp-2", "erp:O2", "book")).await;
    store
        .retry_dead_letter(dl2, None, "ops", at(1))
        .await
        .unwrap();
    let err = store
        .retry_dead_letter(dl2, None, "ops", at(2))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Invalid,
        "a retried letter cannot be retried twice"
    );

    let err = store
        .retry_dead_letter(987_654, None, "ops", at(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    let err = store
        .resolve_dead_letter(987_654, "x", "ops", at(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(store.dead_letter_by_id(987_654).await.unwrap(), None);
}

/// A later success of the same order and step auto-resolves its open dead letters (and a
/// blocking one frees its key); other steps' letters stay open.
pub async fn auto_resolve(store: SharedStore) {
    let mut sync = task("salesforce", "sf:A1", "sf-sync");
    sync.blocking = false;
    sync.order_id = Some("A1".into());
    store.enqueue(vec![sync.clone()]).await.unwrap();
    let l = lease(&store, "salesforce", 1, T0).await.remove(0);
    let sync_letter = store
        .dead_letter(&l, failure("unknown"), Decision::default())
        .await
        .unwrap();

    let mut book = task("erp", "erp:A1", "book");
    book.order_id = Some("A1".into());
    let mut cancel = task("erp", "erp:A1", "erp-cancel");
    cancel.order_id = Some("A1".into());
    store.enqueue(vec![book, cancel]).await.unwrap();
    let l = lease(&store, "erp", 1, T0).await.remove(0);
    let book_letter = store
        .dead_letter(&l, failure("permanent"), Decision::default())
        .await
        .unwrap();

    store.enqueue(vec![sync]).await.unwrap();
    let l = lease(&store, "salesforce", 1, T0).await.remove(0);
    let committed = store
        .complete(
            &l,
            Decision {
                auto_resolve: Some(("A1".into(), "sf-sync".into())),
                ..Decision::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(committed.auto_resolved, 1);
    let letter = store.dead_letter_by_id(sync_letter).await.unwrap().unwrap();
    assert_eq!(letter.status, DeadLetterStatus::AutoResolved);
    assert!(letter.closed_at.is_some());
    assert_eq!(
        store
            .dead_letter_by_id(book_letter)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeadLetterStatus::Open
    );
    assert!(
        lease(&store, "erp", 10, T0).await.is_empty(),
        "the booking still holds its key"
    );

    let committed = store
        .commit(Decision {
            auto_resolve: Some(("A1".into(), "book".into())),
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(committed.auto_resolved, 1);
    let next = lease(&store, "erp", 10, T0).await;
    assert_eq!(next.len(), 1, "the key is free again");
    assert_eq!(next[0].task.kind, "erp-cancel");
    let committed = store
        .commit(Decision {
            auto_resolve: Some(("A1".into(), "book".into())),
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(committed.auto_resolved, 0, "nothing open any more");
}

/// Listing filters by status, lane, kind, order and class, pages by id, honours the limit.
pub async fn filtered(store: SharedStore) {
    let mut letters = Vec::new();
    for (n, (lane, kind, class)) in [
        ("erp", "book", "permanent"),
        ("erp", "validate", "unknown"),
        ("salesforce", "sf-sync", "unknown"),
        ("erp", "book", "transient"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut t = task(lane, &format!("{lane}:F{n}"), kind);
        t.blocking = false;
        store.enqueue(vec![t]).await.unwrap();
        let l = lease(&store, lane, 1, T0).await.remove(0);
        letters.push(
            store
                .dead_letter(&l, failure(class), Decision::default())
                .await
                .unwrap(),
        );
    }
    let list = |filter: DeadLetterFilter| {
        let store = store.clone();
        async move {
            store
                .dead_letters(filter)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(DeadLetterFilter::default()).await, letters);
    assert_eq!(
        list(DeadLetterFilter {
            lane: Some("erp".into()),
            ..Default::default()
        })
        .await,
        vec![letters[0], letters[1], letters[3]]
    );
    assert_eq!(
        list(DeadLetterFilter {
            kind: Some("book".into()),
            ..Default::default()
        })
        .await,
        vec![letters[0], letters[3]]
    );
    assert_eq!(
        list(DeadLetterFilter {
            class: Some("unknown".into()),
            ..Default::default()
        })
        .await,
        vec![letters[1], letters[2]]
    );
    assert_eq!(
        list(DeadLetterFilter {
            order_id: Some("F2".into()),
            ..Default::default()
        })
        .await,
        vec![letters[2]]
    );
    assert_eq!(
        list(DeadLetterFilter {
            after_id: Some(letters[1]),
            limit: Some(1),
            ..Default::default()
        })
        .await,
        vec![letters[2]]
    );
    store
        .resolve_dead_letter(letters[0], "duplicate", "ops", at(1))
        .await
        .unwrap();
    assert_eq!(
        list(DeadLetterFilter {
            status: Some(DeadLetterStatus::Open),
            lane: Some("erp".into()),
            ..Default::default()
        })
        .await,
        vec![letters[1], letters[3]]
    );
    assert_eq!(
        list(DeadLetterFilter {
            status: Some(DeadLetterStatus::Resolved),
            ..Default::default()
        })
        .await,
        vec![letters[0]]
    );
}
