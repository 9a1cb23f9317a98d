//! External reference bindings: a reference names one order for good; a decision that binds
//! it to another order fails as a whole and moves nothing, also when several race.

use std::collections::BTreeSet;

use super::fixtures::{T0, append, lease, order, task, timeline};
use crate::{Binding, Decision, Error, NewDeadLetter, SharedStore};

fn binding(kind: &str, reference: &str, order_id: &str) -> Binding {
    Binding {
        system: "erp".to_owned(),
        kind: kind.to_owned(),
        reference: reference.to_owned(),
        order_id: order_id.to_owned(),
    }
}

/// A decision of `order_id` (its first event, summary row and a timeline entry) that binds
/// `bind`.
fn booking(order_id: &str, bind: Vec<Binding>) -> Decision {
    Decision {
        append: Some(append(&format!("order:{order_id}"), 0, &["Booked"])),
        order: Some(order(order_id, "Booked", 1, T0)),
        timeline: vec![timeline(order_id, "Booked", T0)],
        bind,
        ..Decision::default()
    }
}

/// A bound reference names its order; binding it again to the same order is a no-op; a
/// decision binding it to another order fails with both orders named and writes nothing of
/// itself (events, row, timeline, its other bindings), through `commit` and `complete`
/// alike; the refused task can still be dead-lettered.
pub async fn reference_is_bound_to_one_order(store: SharedStore) {
    store
        .commit(booking("A", vec![binding("order", "SO-1", "A")]))
        .await
        .unwrap();
    assert_eq!(
        store
            .bound("erp", "order", "SO-1")
            .await
            .unwrap()
            .as_deref(),
        Some("A")
    );
    // The same binding again, with another of the same order.
    store
        .commit(Decision {
            append: Some(append("order:A", 1, &["Shipped"])),
            bind: vec![
                binding("order", "SO-1", "A"),
                binding("shipment", "SH-1", "A"),
            ],
            ..Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .bound("erp", "shipment", "SH-1")
            .await
            .unwrap()
            .as_deref(),
        Some("A")
    );
    // The same value under another kind or system is another reference.
    assert_eq!(store.bound("erp", "invoice", "SO-1").await.unwrap(), None);
    assert_eq!(
        store.bound("salesforce", "order", "SO-1").await.unwrap(),
        None
    );

    let refused = store
        .commit(booking(
            "B",
            vec![
                binding("invoice", "IN-9", "B"),
                binding("order", "SO-1", "B"),
            ],
        ))
        .await
        .unwrap_err();
    match &refused {
        Error::ReferenceTaken {
            system,
            kind,
            reference,
            held_by,
            claimed_by,
        } => {
            assert_eq!(
                (system.as_str(), kind.as_str(), reference.as_str()),
                ("erp", "order", "SO-1")
            );
            assert_eq!((held_by.as_str(), claimed_by.as_str()), ("A", "B"));
        }
        other => panic!("expected ReferenceTaken, got {other:?}"),
    }
    assert_eq!(refused.kind(), crate::ErrorKind::ReferenceTaken);
    assert!(store.read_stream("order:B").await.unwrap().is_empty());
    assert_eq!(store.order("B").await.unwrap(), None);
    assert!(store.timeline("B").await.unwrap().is_empty());
    assert_eq!(store.bound("erp", "invoice", "IN-9").await.unwrap(), None);
    assert_eq!(
        store
            .bound("erp", "order", "SO-1")
            .await
            .unwrap()
            .as_deref(),
        Some("A")
    );

    // Completing a lease with such a decision fails the same way and keeps the lease; the
    // task can then go to the dead letters with a decision that binds nothing.
    store
        .enqueue(vec![task("erp", "erp:B", "book")])
        .await
        .unwrap();
    let leased = lease(&store, "erp", 1, T0).await;
    assert_eq!(leased.len(), 1);
    let refused = store
        .complete(
            &leased[0],
            booking("B", vec![binding("order", "SO-1", "B")]),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), crate::ErrorKind::ReferenceTaken);
    assert!(store.read_stream("order:B").await.unwrap().is_empty());
    let letter = store
        .dead_letter(
            &leased[0],
            NewDeadLetter {
                class: "reference-conflict".to_owned(),
                error: refused.to_string(),
                reason: "reference held by another order".to_owned(),
            },
            Decision {
                timeline: vec![timeline("B", "Refused: SO-1 belongs to A", T0)],
                ..Decision::default()
            },
        )
        .await
        .unwrap();
    let letter = store.dead_letter_by_id(letter).await.unwrap().unwrap();
    assert_eq!(letter.class, "reference-conflict");
    assert_eq!(store.timeline("B").await.unwrap().len(), 1);

    // A decision binding one reference to two orders at once binds neither.
    let refused = store
        .commit(Decision {
            bind: vec![
                binding("credit-memo", "CM-1", "C"),
                binding("credit-memo", "CM-1", "D"),
            ],
            ..Decision::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), crate::ErrorKind::ReferenceTaken);
    assert_eq!(
        store.bound("erp", "credit-memo", "CM-1").await.unwrap(),
        None
    );
}

/// Of many decisions racing to bind one reference to different orders, exactly one commits;
/// every other fails with the winner named, and only the winner's events are kept.
pub async fn concurrent_bindings_have_one_winner(store: SharedStore) {
    let racers: Vec<String> = (0..8).map(|n| format!("R{n}")).collect();
    let handles: Vec<_> = racers
        .iter()
        .map(|order_id| {
            let store = store.clone();
            let order_id = order_id.clone();
            tokio::spawn(async move {
                let outcome = store
                    .commit(booking(
                        &order_id,
                        vec![binding("order", "SO-77", &order_id)],
                    ))
                    .await;
                (order_id, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut holders = BTreeSet::new();
    for handle in handles {
        let (order_id, outcome) = handle.await.unwrap();
        match outcome {
            Ok(_) => winners.push(order_id),
            Err(Error::ReferenceTaken {
                held_by,
                claimed_by,
                ..
            }) => {
                assert_eq!(claimed_by, order_id);
                holders.insert(held_by);
            }
            Err(other) => panic!("unexpected error for {order_id}: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one binding wins: {winners:?}");
    let winner = &winners[0];
    assert_eq!(
        holders.into_iter().collect::<Vec<_>>(),
        vec![winner.clone()]
    );
    assert_eq!(
        store.bound("erp", "order", "SO-77").await.unwrap().as_ref(),
        Some(winner)
    );
    for order_id in &racers {
        let events = store
            .read_stream(&format!("order:{order_id}"))
            .await
            .unwrap();
        assert_eq!(events.len(), usize::from(order_id == winner), "{order_id}");
    }
}
