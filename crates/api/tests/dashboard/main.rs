//! The dashboard in headless Chromium: during an ERP outage the health page lists the stuck
//! orders ranked by value, clicking one opens its trace, and retrying a failed booking from
//! the page makes it succeed, all under the dashboard's Content-Security-Policy; hostile
//! sign-in links run no script. Needs `scripts/setup/browser.sh` (Debian chromium and
//! playwright-core); fails with that instruction when they are missing.
//!
//! Screenshots go to `target/artifacts/dashboard/`.

#[path = "../ops/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossdock_api::ops::config::DashboardAccess;
use crossdock_ports::SystemClock;
use crossdock_store::{DeadLetterFilter, DeadLetterStatus};

use harness::{Hub, capture_message, quick_settings};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Chromium and playwright-core, or a failure naming the setup script.
fn browser_tools() -> PathBuf {
    let playwright = workspace().join(".browser/node_modules/playwright-core");
    let mut missing = Vec::new();
    if !Path::new("/usr/bin/chromium").exists() {
        missing.push("/usr/bin/chromium");
    }
    if !playwright.join("package.json").exists() {
        missing.push("playwright-core in .browser/");
    }
    if Process::new("node").arg("--version").output().is_err() {
        missing.push("node");
    }
    assert!(
        missing.is_empty(),
        "the browser tests need {} — run scripts/setup/browser.sh first",
        missing.join(", ")
    );
    playwright
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("artifacts/dashboard");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

fn run_script(hub: &Hub, playwright: &Path, phase: &str, env: &[(&str, String)]) {
    let script = workspace().join("tests/browser/dashboard.js");
    let mut command = Process::new("node");
    command
        .arg(&script)
        .env("PLAYWRIGHT_CORE", playwright)
        .env("BASE_URL", &hub.base)
        .env("API_KEY", &hub.key)
        .env("PHASE", phase)
        .env("ARTIFACTS", artifacts());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser phase {phase} failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts().display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_find_rank_trace_and_fix_stuck_orders_in_the_browser() {
    let playwright = browser_tools();
    let mut settings = quick_settings();
    settings.config.dashboard_access = DashboardAccess::ApiKey;
    settings.config.live_refresh_ms = 500;
    let hub = Hub::start("browser", Arc::new(SystemClock), settings, true).await;

    // A booking the ERP answers with garbage ends in the exception queue.
    hub.erp.break_bookings(&["DL-1"]);
    hub.engine
        .accept_message(capture_message("DL-1", "ACC-DL", 2))
        .await
        .expect("accepted");
    let dead = hub
        .until(Duration::from_secs(20), "the failed booking", || async {
            hub.store
                .dead_letters(DeadLetterFilter {
                    status: Some(DeadLetterStatus::Open),
                    order_id: Some("DL-1".to_owned()),
                    ..DeadLetterFilter::default()
                })
                .await
                .expect("store")
                .first()
                .map(|d| d.id)
        })
        .await;

    // Then the ERP goes down: three orders of different value wait for booking.
    hub.erp.down.store(true, Ordering::SeqCst);
    for (order, units) in [("OUT-SMALL", 1), ("OUT-BIG", 40), ("OUT-MID", 8)] {
        hub.engine
            .accept_message(capture_message(order, &format!("ACC-{order}"), units))
            .await
            .expect("accepted");
    }
    hub.wait_for(
        Duration::from_secs(20),
        "failed attempts on every outage order",
        || async {
            let mut all = true;
            for order in ["OUT-SMALL", "OUT-BIG", "OUT-MID"] {
                let timeline = hub.store.timeline(order).await.expect("timeline");
                all &= timeline
                    .iter()
                    .any(|e| e.entry.outcome.as_deref() == Some("transient"));
            }
            all
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let expected = serde_json::json!(["OUT-BIG", "OUT-MID", "OUT-SMALL"]).to_string();
    run_script(&hub, &playwright, "health", &[("EXPECTED", expected)]);

    // The ERP is back and answers properly: the operator retries the failed booking.
    hub.erp.break_bookings(&[]);
    hub.erp.down.store(false, Ordering::SeqCst);
    run_script(
        &hub,
        &playwright,
        "retry",
        &[
            ("DEAD_LETTER", dead.to_string()),
            ("DEAD_ORDER", "DL-1".to_owned()),
        ],
    );
    let dead_letter = hub
        .store
        .dead_letter_by_id(dead)
        .await
        .expect("store")
        .expect("row");
    assert_eq!(dead_letter.status, DeadLetterStatus::Retried);
    hub.wait_for(Duration::from_secs(20), "DL-1 to be booked", || async {
        hub.store
            .order("DL-1")
            .await
            .expect("store")
            .is_some_and(|r| r.erp_ref.is_some())
    })
    .await;
    let audit = hub.store.audit_log(0, 100).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|a| a.entry.action == "dlq.retry" && a.entry.actor.starts_with("ops-team")),
        "the retry from the page is audited under the signed-in key"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sign_in_links_run_no_script_in_the_browser() {
    let playwright = browser_tools();
    let mut settings = quick_settings();
    settings.config.dashboard_access = DashboardAccess::ApiKey;
    let hub = Hub::start("browser-xss", Arc::new(SystemClock), settings, false).await;
    run_script(&hub, &playwright, "xss", &[]);
    hub.stop().await;
}
