//! The crash test: the hub processes 2,000 orders against the ERP simulator while being killed
//! with SIGKILL at random moments and restarted. At the end every order is final and the ERP
//! created exactly one sale per order (duplicate deliveries are allowed; duplicate effects are
//! not). Run on SQLite and on PostgreSQL.

use std::time::Duration;

use crossdock_sim_erp::config::{PaymentBehaviour, Scenario};
use crossdock_testkit::{Dice, Process, TempDir, free_port, wait_ready};

const ORDERS: u32 = 2_000;
const KILLS: usize = 5;

async fn crash_drill(name: &str, store_url: impl FnOnce(&TempDir) -> String) {
    let dir = TempDir::new(name).expect("temp dir");
    let mut sim_config = crossdock_sim_erp::Config::default()
        .starting_now()
        .with_demo_timings();
    sim_config.seed = 11;
    sim_config.scenario = Scenario {
        customers: 30,
        items: 40,
        ..Scenario::default()
    };
    sim_config.payments = PaymentBehaviour {
        on_time_share: 1.0,
        late_share: 0.0,
        ..PaymentBehaviour::demo()
    };
    let sim = crossdock_sim_erp::Simulator::start(sim_config)
        .await
        .expect("ERP simulator starts");
    let port = free_port();
    let config = dir.path().join("drill.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
url = "{store}"

[hub]
listen = "127.0.0.1:{port}"

[erp]
type = "sim"
base_url = "{erp}"

[engine]
erp_poll_ms = 100
inventory_coalesce_ms = 200

[lanes.erp]
concurrency = 16
timeout_ms = 15000
lease_ms = 30000

[lanes.hub]
concurrency = 32
timeout_ms = 10000
lease_ms = 15000

[lanes.salesforce]
concurrency = 4
batch = 200
timeout_ms = 10000
lease_ms = 15000
"#,
            store = store_url(&dir),
            erp = sim.base_url(),
        ),
    )
    .expect("config written");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_crossdock"));
    let args = vec![
        "drill".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--orders".to_owned(),
        ORDERS.to_string(),
    ];
    let log = dir.path().join("drill.log");
    let seed = std::process::id() as u64;
    let mut dice = Dice::new(seed);
    println!("crash test {name}: seed {seed}, log {}", log.display());
    for kill in 0..KILLS {
        let mut hub =
            Process::spawn(binary, &args, &[("CROSSDOCK_LOG", "warn")], &log).expect("hub starts");
        wait_ready(
            &format!("http://127.0.0.1:{port}/healthz"),
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", hub.tail(40)));
        let after = Duration::from_millis(dice.between(500, 6_000));
        tokio::time::sleep(after).await;
        assert!(
            hub.exited().is_none(),
            "the hub exited on its own before kill {kill}:\n{}",
            hub.tail(40)
        );
        hub.kill9().await;
        println!("kill {} after {after:?}", kill + 1);
    }
    let mut hub =
        Process::spawn(binary, &args, &[("CROSSDOCK_LOG", "warn")], &log).expect("hub starts");
    let status = hub
        .wait(Duration::from_secs(900))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", hub.tail(60)));
    assert!(status.success(), "drill failed:\n{}", hub.tail(60));

    // Every order is final in the hub …
    let store = crossdock_store::open(&store_url_again(&dir, name))
        .await
        .expect("store reopens");
    let counts = store.order_counts().await.expect("counts");
    let final_orders: u64 = counts
        .iter()
        .filter(|(s, _)| ["Closed", "Rejected", "Cancelled"].contains(&s.as_str()))
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(final_orders, u64::from(ORDERS), "{counts:?}");
    let closed = counts
        .iter()
        .find(|(s, _)| s == "Closed")
        .map_or(0, |(_, n)| *n);
    // Customers run into their credit limits until payments come in, so how many orders are
    // refused depends on timing; that any refusal has another cause would be a crash artefact.
    assert!(
        closed > u64::from(ORDERS) / 2,
        "most orders close: {counts:?}"
    );

    // … and the ERP applied each booking exactly once, however often it was delivered.
    let stats = sim.stats();
    let mut delivered_more_than_once = 0;
    for n in 0..ORDERS {
        let reference = format!("DRILL-{n:05}");
        let row = store.order(&reference).await.unwrap().expect("order row");
        let booking = &stats["bookings"][&reference];
        let requests = booking["requests"].as_u64().unwrap_or(0);
        let created = booking["orders_created"].as_u64().unwrap_or(0);
        if row.status == "Rejected" {
            assert!(created <= 1, "{reference}: {created} sales");
            let body = row.body.value();
            let reason = body["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("credit"),
                "{reference} was rejected for something other than credit: {reason:?}"
            );
        } else {
            assert_eq!(
                created, 1,
                "{reference} ({}): {created} sales for {requests} requests",
                row.status
            );
        }
        if requests > 1 {
            delivered_more_than_once += 1;
        }
    }
    println!(
        "crash test {name}: {counts:?}; {delivered_more_than_once} bookings were delivered more than once, each applied once"
    );
    store.close().await;
    sim.shutdown().await;
    if let Some((url, schema)) = store_url_again(&dir, name).split_once("?schema=") {
        crossdock_store::postgres::drop_schema(url, schema)
            .await
            .expect("schema dropped");
    }
}

fn store_url_again(dir: &TempDir, name: &str) -> String {
    if name.starts_with("postgres") {
        postgres_url(name)
    } else {
        dir.path().join("hub.sqlite").display().to_string()
    }
}

fn postgres_url(name: &str) -> String {
    format!(
        "postgres://postgres@127.0.0.1:5432/test?schema={}_{}",
        name.replace('-', "_"),
        std::process::id()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_hub_survives_repeated_sigkill_without_duplicate_effects() {
    crash_drill("sqlite-crash", |dir| {
        dir.path().join("hub.sqlite").display().to_string()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hub_survives_repeated_sigkill_without_duplicate_effects() {
    crash_drill("postgres-crash", |_| postgres_url("postgres-crash")).await;
}
