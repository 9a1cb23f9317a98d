//! The SIGKILL loop: `crossdock demo --data-dir DIR` with 300 orders is killed with SIGKILL five
//! times at seeded random moments — the hub, the store, the ERP simulator and the Salesforce
//! simulator all at once, none with a chance to save — and restarted on the same directory each
//! time, then run to the end. Every end check of the summary passes, no ERP order number,
//! shipment, invoice or Salesforce id is bound to two hub orders (read from the hub's store
//! itself), the ERP holds one sale per order, and no order is left unfinished.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crossdock_store::OrderQuery;
use crossdock_testkit::{Dice, Process, TempDir};

const ORDERS: u32 = 300;
const KILLS: usize = 5;
/// Drives the kill moments; printed, so a failing run can be replayed.
const SEED: u64 = 22;

/// Waits until `log` contains `marker`, while the process runs.
async fn wait_for_line(process: &mut Process, log: &Path, marker: &str, limit: Duration) {
    let started = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(marker)
    {
        assert!(
            process.exited().is_none(),
            "the demo exited before {marker:?}:\n{}",
            process.tail(60)
        );
        assert!(
            started.elapsed() < limit,
            "no {marker:?} within {limit:?}:\n{}",
            process.tail(60)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_killed_five_times_finishes_with_every_check_passing() {
    let dir = TempDir::new("kill-loop").expect("temp dir");
    let data = dir.path().join("data");
    let args = crate::demo_args(ORDERS, 7, &data, &[]);
    let binary = Path::new(env!("CARGO_BIN_EXE_crossdock"));
    let env = [("CROSSDOCK_LOG", "error")];
    let mut dice = Dice::new(SEED);
    println!("kill loop: seed {SEED}, data in {}", data.display());

    let mut finished_early = None;
    for kill in 1..=KILLS {
        let log = dir.path().join(format!("run-{kill}.log"));
        let mut demo = Process::spawn(binary, &args, &env, &log).expect("the demo starts");
        wait_for_line(&mut demo, &log, "data in", Duration::from_secs(180)).await;
        // Anywhere from the start-up (mirroring, resuming) to the middle of the day.
        let after = Duration::from_millis(dice.between(500, 15_000));
        let deadline = Instant::now() + after;
        while Instant::now() < deadline && demo.exited().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(status) = demo.exited() {
            // The day ended before this kill: nothing left to interrupt.
            finished_early = Some((kill, status, log));
            break;
        }
        demo.kill9().await;
        println!("kill {kill} after {after:?}");
    }
    let log = dir.path().join("final.log");
    let summary = match finished_early {
        Some((kill, status, log)) => {
            println!("the day ended on its own before kill {kill}");
            let summary = std::fs::read_to_string(&log).expect("log");
            assert!(status.success(), "the day failed:\n{summary}");
            summary
        }
        None => {
            let mut demo = Process::spawn(binary, &args, &env, &log).expect("the demo restarts");
            let status = demo
                .wait(Duration::from_secs(1_200))
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", demo.tail(80)));
            let summary = std::fs::read_to_string(&log).expect("log");
            assert!(status.success(), "the last run failed:\n{summary}");
            summary
        }
    };
    assert!(summary.contains("result: every check passed"), "{summary}");
    assert!(
        summary.contains(&format!("orders: {ORDERS}\n")),
        "no order lost or placed twice:\n{summary}"
    );
    assert!(
        summary.contains("duplicate bookings in the ERP: 0\n"),
        "{summary}"
    );
    assert!(
        summary.contains("references bound to two hub orders: 0\n"),
        "{summary}"
    );

    // The hub's store itself, read after the last run: every order final, no reference held by
    // two orders.
    let store = crossdock_store::open(&data.join("crossdock.sqlite").display().to_string())
        .await
        .expect("the hub's store opens");
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .orders(OrderQuery {
                after: after.clone(),
                limit: Some(1_000),
                ..OrderQuery::default()
            })
            .await
            .expect("orders");
        let Some(last) = page.last().map(|r| r.order_id.clone()) else {
            break;
        };
        rows.extend(page);
        after = Some(last);
    }
    store.close().await;
    assert_eq!(rows.len(), ORDERS as usize, "one hub order per demo order");
    let stuck: Vec<String> = rows
        .iter()
        .filter(|r| !["Closed", "Rejected", "Cancelled"].contains(&r.status.as_str()))
        .map(|r| format!("{} is {}", r.order_id, r.status))
        .collect();
    assert!(stuck.is_empty(), "orders stuck: {stuck:?}");
    let mut holders: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for row in &rows {
        if let Some(erp_ref) = &row.erp_ref {
            holders
                .entry(erp_ref.clone())
                .or_default()
                .push(&row.order_id);
        }
    }
    let twice: Vec<_> = holders.iter().filter(|(_, held)| held.len() > 1).collect();
    assert!(twice.is_empty(), "ERP numbers bound twice: {twice:?}");
}
