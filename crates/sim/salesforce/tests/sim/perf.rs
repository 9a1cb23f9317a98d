//! Throughput of the write paths the hub's demo uses (figures printed, counts asserted).

use std::time::Instant;

use futures::StreamExt;
use serde_json::{Value as Json, json};

use crate::Sim;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_writes_go_through_quickly() {
    let sim = Sim::start().await;
    let started = Instant::now();
    let singles: u32 = 2_000;
    let results: Vec<u16> = futures::stream::iter(0..singles)
        .map(|i| {
            let sim = &sim;
            async move {
                sim.patch(
                    &format!("sobjects/Account/ERP_Customer_Number__c/P-{i}"),
                    json!({"Name": format!("Perf {i}")}),
                )
                .await
                .status
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let single_secs = started.elapsed().as_secs_f64();
    assert!(results.iter().all(|s| *s == 201));

    let started = Instant::now();
    for batch in 0..10 {
        let records: Vec<Json> = (0..200)
            .map(|i| json!({"attributes": {"type": "Account"}, "ERP_Customer_Number__c": format!("P-{}", batch * 200 + i), "Credit_Status__c": "OK"}))
            .collect();
        let r = sim
            .patch(
                "composite/sobjects/Account/ERP_Customer_Number__c",
                json!({"records": records}),
            )
            .await;
        assert!(
            r.body
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x["created"] == json!(false))),
            "{}",
            r.text
        );
    }
    let batch_secs = started.elapsed().as_secs_f64();
    let state = sim.handle.state();
    assert_eq!(state.count("Account"), singles as usize);
    let ok = state
        .query("SELECT Id FROM Account WHERE Credit_Status__c = 'OK'")
        .map(|r| r.len());
    assert_eq!(ok, Ok(2_000));
    assert_eq!(state.events().len(), 4_000, "one change event per write");
    println!(
        "single upserts: {singles} in {single_secs:.2}s ({:.0}/s, 8 in flight); collections upserts: 2000 in {batch_secs:.2}s ({:.0}/s)",
        f64::from(singles) / single_secs,
        2000.0 / batch_secs
    );
    sim.shutdown().await;
}
