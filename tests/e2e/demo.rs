//! The main job end to end: `crossdock demo --orders 500 --seed 7 --exit` plays a retail day
//! (B2B orders, a promotion spike, backorders, a cancellation, returns, an ERP outage) against
//! the Salesforce and ERP simulators and checks its own summary. The test reads that summary:
//! every order in its planned final state, no duplicate booking, no disagreement between
//! Salesforce, the ERP and the hub, and the outage absorbed.

use std::time::Duration;

use crossdock_testkit::{Process, TempDir};

/// The figure after `prefix` on the summary line that starts with it.
fn figure(summary: &str, prefix: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{summary}"));
    line.trim_start()[prefix.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retail_day_of_500_orders_ends_with_salesforce_and_the_erp_in_agreement() {
    let dir = TempDir::new("demo").expect("temp dir");
    let log = dir.path().join("demo.log");
    let args = crate::demo_args(500, 7, &dir.path().join("data"), &[]);
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_crossdock"));
    let mut demo = Process::spawn(binary, &args, &[("CROSSDOCK_LOG", "error")], &log)
        .expect("the demo starts");
    let status = demo
        .wait(Duration::from_secs(1_500))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", demo.tail(60)));
    let summary = std::fs::read_to_string(&log).expect("log");
    assert!(status.success(), "the demo failed:\n{summary}");
    assert!(summary.contains("result: every check passed"), "{summary}");
    assert_eq!(figure(&summary, "orders:"), 500, "{summary}");
    assert_eq!(figure(&summary, "duplicate bookings in the ERP:"), 0);
    assert_eq!(
        figure(&summary, "reconciliation:"),
        500,
        "every order checked"
    );
    assert!(
        summary.contains(" 0 disagreements between Salesforce, the ERP and the hub"),
        "{summary}"
    );
    assert!(!summary.contains("unexpected final state"), "{summary}");
    // Orders that arrived while the ERP was down were all booked after it came back.
    let during = figure(&summary, "ERP outage:");
    assert!(during > 0, "the outage caught orders:\n{summary}");
    assert!(
        summary.contains(&format!(
            "{during} orders arrived during it; {during} of them were booked after it"
        )),
        "{summary}"
    );
    let (closed, planned) = {
        let line = summary
            .lines()
            .find(|l| l.starts_with("returns:"))
            .expect("returns line");
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse().ok())
            .collect();
        (numbers[0], numbers[1])
    };
    assert!(planned > 0 && closed == planned, "{summary}");
}
