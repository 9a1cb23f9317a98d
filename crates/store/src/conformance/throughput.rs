//! Throughput check (prints, does not assert): lifecycle steps — a batched `lease` plus one
//! `complete` per task with a realistic decision — against the backend's baseline of
//! single-row commits. Shows group commit at work: with SQLite many concurrent `complete`
//! calls share one fsync. Run with `--no-capture` to see the figures.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use super::fixtures::{T0, append, order, task, timeline};
use crate::{Decision, LeaseRequest, SharedStore};

const TASKS: usize = 3000;
const LEASERS: usize = 4;
const BATCH: usize = 64;
const BASELINE_COMMITS: usize = 400;

/// Measures lifecycle steps per second with concurrent completes and prints it beside the
/// baseline commit rate of the same backend.
pub async fn concurrent_completes(store: SharedStore) {
    let baseline = baseline(store.backend()).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let mut t = task("erp", &format!("erp:P{n}"), "book");
            t.payload =
                json!({ "order": format!("P{n}"), "lines": [{ "sku": "SKU-1", "qty": 2 }] });
            t
        })
        .collect();
    for chunk in tasks.chunks(500) {
        store.enqueue(chunk.to_vec()).await.unwrap();
    }

    let started = Instant::now();
    let mut leasers = JoinSet::new();
    for w in 0..LEASERS {
        let store = store.clone();
        leasers.spawn(async move {
            let mut done = 0usize;
            loop {
                let leases = store
                    .lease(LeaseRequest {
                        lane: "erp".into(),
                        owner: format!("bench-{w}"),
                        limit: BATCH,
                        lease_for: Duration::from_secs(300),
                        now: T0,
                    })
                    .await
                    .unwrap();
                if leases.is_empty() {
                    return done;
                }
                let mut completes = JoinSet::new();
                for lease in leases {
                    let store = store.clone();
                    completes.spawn(async move {
                        let id = lease.task.payload["order"]
                            .as_str()
                            .unwrap_or("?")
                            .to_owned();
                        let decision = Decision {
                            append: Some(append(&format!("order:{id}"), 0, &["OrderBooked"])),
                            tasks: vec![task("salesforce", &format!("sf:{id}"), "sf-sync")],
                            order: Some(order(&id, "Booked", 1, T0)),
                            timeline: vec![timeline(&id, "booked in the ERP", T0)],
                            auto_resolve: Some((id.clone(), "book".into())),
                            ..Decision::default()
                        };
                        store.complete(&lease, decision).await.unwrap();
                    });
                }
                while let Some(joined) = completes.join_next().await {
                    joined.unwrap();
                    done += 1;
                }
            }
        });
    }
    let mut steps = 0;
    while let Some(joined) = leasers.join_next().await {
        steps += joined.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(steps, TASKS, "every task completed once");
    let rate = steps as f64 / elapsed;
    println!(
        "{} store: {rate:.0} lifecycle steps/s (lease batch {BATCH} + one complete per task, \
         {LEASERS} leasers) vs baseline {baseline:.0} single-row commits/s: {:.1}x",
        store.backend(),
        if baseline > 0.0 {
            rate / baseline
        } else {
            f64::NAN
        }
    );
}

async fn baseline(backend: &str) -> f64 {
    match backend {
        #[cfg(feature = "sqlite")]
        "sqlite" => tokio::task::spawn_blocking(|| {
            crate::sqlite::baseline_commit_rate(&std::env::temp_dir(), BASELINE_COMMITS)
        })
        .await
        .unwrap()
        .unwrap(),
        #[cfg(feature = "postgres")]
        "postgres" => crate::postgres::baseline_commit_rate(
            &super::harness::postgres_url(),
            BASELINE_COMMITS,
            8,
        )
        .await
        .unwrap(),
        other => panic!("no baseline for backend {other}"),
    }
}
