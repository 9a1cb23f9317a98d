//! The retail day against a real Tryton: `crossdock demo --erp tryton --orders 20 --seed 7
//! --exit`, with the server `scripts/setup/tryton.sh` starts (described by `.tryton/env`).
//! One trytond books about 1.5 sales per second, so this is also the peak test: a burst far
//! above that pace is accepted at once, buffered durably, booked at Tryton's pace in capture
//! order per account while Salesforce shows "Awaiting Booking", and warehouse staff move the
//! shipments in Tryton until every order closes. The test reads the demo's summary and
//! counts Tryton's sales per order reference itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossdock_erp::tryton::{Adapter, Config};
use crossdock_ports::SystemClock;
use crossdock_testkit::{Process, TempDir};

const SETUP: &str = "run scripts/setup/tryton.sh to install and start the Tryton server";

fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The numbers on the summary line that starts with `prefix`.
fn figures(summary: &str, prefix: &str) -> Vec<f64> {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{summary}"));
    line.trim_start()[prefix.len()..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|s| s.trim_matches('.').parse().ok())
        .collect()
}

async fn tryton(env: &std::path::Path) -> Adapter {
    let mut config = Config::from_env_file(env).unwrap_or_else(|e| panic!("{e}; {SETUP}"));
    config.timeout_secs = 120;
    Adapter::connect(config, Arc::new(SystemClock))
        .await
        .unwrap_or_else(|e| panic!("cannot use the Tryton server ({e}); {SETUP}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tryton_a_burst_far_above_trytons_pace_is_buffered_and_booked_in_capture_order() {
    let env = checkout().join(".tryton/env");
    assert!(
        env.exists(),
        "Tryton is not set up: {} is missing; {SETUP}",
        env.display()
    );
    // The demo's order ids repeat from day to day (SF-00000100, …): a Tryton that holds an
    // earlier day's orders is restored to its seeded database first.
    if !tryton(&env)
        .await
        .sales_by_reference("SF-%")
        .await
        .expect("reading Tryton's sales")
        .is_empty()
    {
        let status = std::process::Command::new(checkout().join("scripts/setup/tryton.sh"))
            .status()
            .expect("running scripts/setup/tryton.sh");
        assert!(status.success(), "scripts/setup/tryton.sh failed");
    }

    let dir = TempDir::new("demo-tryton").expect("temp dir");
    let log = dir.path().join("demo.log");
    let args = crate::demo_args(20, 7, &dir.path().join("data"), &["--erp", "tryton"]);
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_crossdock"));
    let env_var = env.display().to_string();
    let mut demo = Process::spawn(
        binary,
        &args,
        &[("CROSSDOCK_LOG", "error"), ("TRYTON_ENV", env_var.as_str())],
        &log,
    )
    .expect("the demo starts");
    let status = demo
        .wait(Duration::from_secs(600))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", demo.tail(80)));
    let summary = std::fs::read_to_string(&log).expect("log");
    assert!(status.success(), "the demo failed:\n{summary}");

    // Every order in its planned final state, reconciled without disagreement.
    assert!(summary.contains("result: every check passed"), "{summary}");
    assert_eq!(figures(&summary, "orders:"), vec![20.0], "{summary}");
    assert!(!summary.contains("unexpected final state"), "{summary}");
    assert_eq!(figures(&summary, "reconciliation:")[0], 20.0, "{summary}");
    assert!(
        summary.contains(" 0 disagreements between Salesforce, the ERP and the hub"),
        "{summary}"
    );
    assert_eq!(
        figures(&summary, "duplicate bookings in the ERP:"),
        vec![0.0]
    );

    // The peak: accepted faster than Tryton booked (the accept rate is bounded by how fast the
    // demo's Salesforce users can place orders, not by the hub), Salesforce showing orders
    // awaiting booking meanwhile, and each account's orders booked in capture order.
    let accepted = figures(&summary, "burst accepted:");
    let booked = figures(&summary, "burst booked by Tryton:");
    assert!(accepted[0] >= 10.0, "a real burst:\n{summary}");
    assert!(
        accepted[2] > booked[2],
        "the hub accepted the burst ({}/s) faster than Tryton booked it ({}/s):\n{summary}",
        accepted[2],
        booked[2]
    );
    let awaiting = figures(&summary, "awaiting booking in Salesforce:");
    assert!(
        awaiting[0] >= 3.0 && awaiting[1] >= 1.0,
        "Salesforce showed orders awaiting booking while earlier ones were booked:\n{summary}"
    );
    let order = figures(&summary, "booked in capture order per account:");
    assert!(order[0] >= 2.0 && order[1] == 0.0, "{summary}");
    let api = figures(&summary, "hub API while orders awaited booking:");
    assert!(
        api[1] > 0.0 && api[0] < 5_000.0,
        "the hub's API stayed responsive:\n{summary}"
    );

    // Tryton itself: one sale per order reference.
    let sales = tryton(&env)
        .await
        .sales_by_reference("SF-%")
        .await
        .expect("reading Tryton's sales");
    let twice: Vec<_> = sales.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "booked more than once in Tryton: {twice:?}"
    );
    assert!(sales.len() >= 15, "most orders booked: {sales:?}");
}
