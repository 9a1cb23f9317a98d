//! One external reference never belongs to two orders: an ERP that issues an order number
//! again (restored from an old backup, or a simulator that lost its latest state) has its
//! answer refused, both orders flagged, and nothing overwritten.

use std::sync::Arc;
use std::time::Duration;

use crossdock_engine::loopback::LoopbackSalesforce;
use crossdock_store::{DeadLetterFilter, DeadLetterStatus};

use super::harness::{FlakyErp, Hub, capture, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_number_issued_again_is_refused_and_both_orders_are_flagged() {
    let erp = FlakyErp::new();
    let hub = Hub::start(
        "reissue",
        erp.clone(),
        Arc::new(LoopbackSalesforce::default()),
        test_config(),
    )
    .await;
    hub.submit(capture("REF-A", "ACC-RA")).await;
    hub.wait_for_order(Duration::from_secs(60), "REF-A", "REF-A closed", |r| {
        r.status == "Closed"
    })
    .await;
    let store = hub.store.clone();
    let number = store
        .order("REF-A")
        .await
        .unwrap()
        .and_then(|row| row.erp_ref)
        .expect("REF-A has its ERP number");
    assert_eq!(
        store
            .bound("erp", "order", &number)
            .await
            .unwrap()
            .as_deref(),
        Some("REF-A")
    );

    // The ERP forgets REF-A's booking and gives its number to REF-B.
    *erp.reissue.lock().unwrap() = Some(("REF-B".to_owned(), number.clone()));
    hub.submit(capture("REF-B", "ACC-RB")).await;
    let conflicts = DeadLetterFilter {
        class: Some("reference-conflict".to_owned()),
        ..DeadLetterFilter::default()
    };
    hub.wait_for(Duration::from_secs(60), "both orders flagged", || {
        let (store, conflicts) = (store.clone(), conflicts.clone());
        async move { store.dead_letters(conflicts).await.unwrap().len() == 2 }
    })
    .await;

    let letters = store.dead_letters(conflicts).await.unwrap();
    let of = |order: &str| {
        letters
            .iter()
            .find(|l| l.task.order_id.as_deref() == Some(order))
            .unwrap_or_else(|| panic!("no exception for {order}: {letters:#?}"))
    };
    let (refused, holder) = (of("REF-B"), of("REF-A"));
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
    assert_eq!(
        store
            .bound("erp", "order", &number)
            .await
            .unwrap()
            .as_deref(),
        Some("REF-A")
    );
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
