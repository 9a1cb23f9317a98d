//! One external reference never belongs to two orders: an ERP that issues an order number
//! again (restored from an old backup, or a simulator that lost its latest state) has its
//! answer refused, both orders flagged, and nothing overwritten.

use std::sync::Arc;
use std::time::Duration;

use crossdock_engine::loopback::LoopbackSalesforce;
use crossdock_store::{DeadLetter, DeadLetterFilter, DeadLetterStatus};

use super::harness::{FlakyErp, Hub, capture, test_config};

/// A hub (named `name`) on a [`FlakyErp`] that has closed `order` for `account`, with the
/// ERP number the order was booked under.
async fn closed_order(name: &str, order: &str, account: &str) -> (Arc<FlakyErp>, Hub, String) {
    let erp = FlakyErp::new();
    let hub = Hub::start(
        name,
        erp.clone(),
        Arc::new(LoopbackSalesforce::default()),
        test_config(),
    )
    .await;
    hub.submit(capture(order, account)).await;
    hub.wait_for_order(
        Duration::from_secs(60),
        order,
        &format!("{order} closed"),
        |r| r.status == "Closed",
    )
    .await;
    let number = hub
        .store
        .order(order)
        .await
        .unwrap()
        .and_then(|row| row.erp_ref)
        .unwrap_or_else(|| panic!("{order} has its ERP number"));
    (erp, hub, number)
}

/// The reference-conflict exceptions, once there are two (one for each order).
async fn both_flagged(hub: &Hub) -> Vec<DeadLetter> {
    let conflicts = DeadLetterFilter {
        class: Some("reference-conflict".to_owned()),
        ..DeadLetterFilter::default()
    };
    let store = hub.store.clone();
    hub.wait_for(Duration::from_secs(60), "both orders flagged", || {
        let (store, conflicts) = (store.clone(), conflicts.clone());
        async move { store.dead_letters(conflicts).await.unwrap().len() == 2 }
    })
    .await;
    store.dead_letters(conflicts).await.unwrap()
}

/// The exception among `letters` that flags `order`.
fn flag_of<'a>(letters: &'a [DeadLetter], order: &str) -> &'a DeadLetter {
    letters
        .iter()
        .find(|l| l.task.order_id.as_deref() == Some(order))
        .unwrap_or_else(|| panic!("no exception for {order}: {letters:#?}"))
}

/// The order the ERP's order number `number` is bound to in the hub.
async fn erp_holder(hub: &Hub, number: &str) -> Option<String> {
    hub.store.bound("erp", "order", number).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_number_issued_again_is_refused_and_both_orders_are_flagged() {
    let (erp, hub, number) = closed_order("reissue", "REF-A", "ACC-RA").await;
    let store = hub.store.clone();
    assert_eq!(erp_holder(&hub, &number).await.as_deref(), Some("REF-A"));

    // The ERP forgets REF-A's booking and gives its number to REF-B.
    *erp.reissue.lock().unwrap() = Some(("REF-B".to_owned(), number.clone()));
    hub.submit(capture("REF-B", "ACC-RB")).await;
    let letters = both_flagged(&hub).await;

    let (refused, holder) = (flag_of(&letters, "REF-B"), flag_of(&letters, "REF-A"));
    assert_eq!(refused.task.kind, "book");
    assert_eq!(refused.task.lane, "erp");
    assert_eq!(refused.status, DeadLetterStatus::Open);
    assert!(
        refused.error.contains(&number) && refused.error.contains("REF-A"),
        "{}",
        refused.error
    );
    assert_eq!(holder.task.kind, "reference-conflict");
    assert_eq!(holder.task.lane, "erp", "the ERP owns the exception");
    assert_eq!(holder.status, DeadLetterStatus::Open);
    assert!(
        holder.error.contains("forgotten") && holder.error.contains("REF-B"),
        "{}",
        holder.error
    );

    // Nothing is overwritten: the number stays REF-A's, REF-B is not booked.
    let a = store.order("REF-A").await.unwrap().unwrap();
    assert_eq!(a.erp_ref.as_deref(), Some(number.as_str()));
    assert_eq!(a.status, "Closed");
    let b = store.order("REF-B").await.unwrap().unwrap();
    assert_eq!(b.erp_ref, None);
    assert_ne!(b.status, "Booked");
    assert!(
        store
            .read_stream("order:REF-B")
            .await
            .unwrap()
            .iter()
            .all(|e| e.kind != "OrderBooked"),
        "REF-B's stream records no booking"
    );
    assert_eq!(erp_holder(&hub, &number).await.as_deref(), Some("REF-A"));
    assert_eq!(
        store.resolve(&number).await.unwrap().as_deref(),
        Some("REF-A")
    );

    // Both timelines tell the story.
    let story = |entries: Vec<crossdock_store::StoredTimelineEntry>| -> Vec<String> {
        entries
            .into_iter()
            .filter(|e| e.entry.outcome.as_deref() == Some("reference-conflict"))
            .map(|e| e.entry.summary)
            .collect()
    };
    let b_story = story(store.timeline("REF-B").await.unwrap());
    assert!(
        b_story
            .iter()
            .any(|s| s.contains(&number) && s.contains("belongs to order REF-A")),
        "{b_story:#?}"
    );
    let a_story = story(store.timeline("REF-A").await.unwrap());
    assert!(
        a_story
            .iter()
            .any(|s| s.contains(&number) && s.contains("for order REF-B too")),
        "{a_story:#?}"
    );
    assert!(
        a_story
            .iter()
            .any(|s| s.starts_with("Flagged") && s.contains("forgotten")),
        "{a_story:#?}"
    );
    hub.stop().await;
}

/// The change feed too: an ERP event that books an order under a number another order holds
/// is refused (the message kept as refused), both orders are flagged, and the flag reads
/// what the ERP's number names now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_event_naming_another_orders_number_is_refused() {
    use crossdock_domain::ids::System;
    use crossdock_domain::order::Command;
    use crossdock_ports::{Clock, SystemClock};
    use crossdock_store::InboundStatus;

    use super::harness::message;

    let (erp, hub, number) = closed_order("feed-reissue", "FEED-A", "ACC-FA").await;
    let store = hub.store.clone();
    // FEED-B's own booking call fails for good, so only the feed books it.
    *erp.fail_booking_of.lock().unwrap() = Some("FEED-B".to_owned());
    hub.submit(capture("FEED-B", "ACC-FB")).await;
    let of_b = DeadLetterFilter {
        order_id: Some("FEED-B".to_owned()),
        ..DeadLetterFilter::default()
    };
    hub.wait_for(Duration::from_secs(60), "FEED-B's booking given up", || {
        let (store, of_b) = (store.clone(), of_b.clone());
        async move { !store.dead_letters(of_b).await.unwrap().is_empty() }
    })
    .await;

    hub.submit(message(
        System::Erp,
        "feed-booked-FEED-B",
        "FEED-B",
        Command::RecordBooking {
            erp_ref: number.clone(),
            at: SystemClock.now(),
        },
    ))
    .await;
    let letters = both_flagged(&hub).await;
    let refused = flag_of(&letters, "FEED-B");
    assert_eq!(refused.task.kind, "inbound");
    let holder = flag_of(&letters, "FEED-A");
    assert_eq!(holder.task.kind, "reference-conflict");
    assert!(
        holder.error.contains("still names this order"),
        "{}",
        holder.error
    );
    let message = store
        .inbound_by_status(InboundStatus::Refused, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.message_id == "feed-booked-FEED-B")
        .expect("the feed message is kept as refused");
    assert!(
        message
            .error
            .as_deref()
            .is_some_and(|e| e.contains("belongs to order FEED-A")),
        "{:?}",
        message.error
    );
    assert_eq!(
        store.order("FEED-B").await.unwrap().unwrap().erp_ref,
        None,
        "nothing overwritten"
    );
    assert_eq!(
        store
            .order("FEED-A")
            .await
            .unwrap()
            .unwrap()
            .erp_ref
            .as_deref(),
        Some(number.as_str())
    );
    hub.stop().await;
}
