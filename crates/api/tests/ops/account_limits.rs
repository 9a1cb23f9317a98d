//! A key limited to accounts sees on `/ops` and the dashboard only its accounts' orders,
//! traces and failed work; another account's records answer exactly like records that do not
//! exist, and it cannot act on them.

use std::sync::Arc;
use std::time::Duration;

use crossdock_api::auth::Scope;
use crossdock_api::auth::keys::{self, NewKey};
use crossdock_api::dashboard::COOKIE;
use crossdock_ports::SystemClock;
use crossdock_store::{DeadLetterFilter, DeadLetterStatus};
use serde_json::{Value, json};

use crate::harness::{Hub, capture_message, quick_settings};

async fn key(hub: &Hub, client: &str, scopes: Vec<Scope>, accounts: &[&str]) -> String {
    keys::create(
        &hub.store,
        NewKey {
            client: client.to_owned(),
            scopes,
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            channels: Vec::new(),
            rate_per_second: Some(10_000),
        },
        hub.clock.now(),
    )
    .await
    .expect("key")
    .key
}

async fn call(hub: &Hub, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = hub.client();
    let url = format!("{}{path}", hub.base);
    let request = match method {
        "POST" => client.post(url).json(&body.unwrap_or_else(|| json!({}))),
        _ => client.get(url),
    };
    let response = request.bearer_auth(key).send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn dead_letter_of(hub: &Hub, order: &str) -> i64 {
    hub.until(
        Duration::from_secs(20),
        &format!("the failed booking of {order}"),
        || async {
            hub.store
                .dead_letters(DeadLetterFilter {
                    status: Some(DeadLetterStatus::Open),
                    order_id: Some(order.to_owned()),
                    ..DeadLetterFilter::default()
                })
                .await
                .expect("store")
                .first()
                .map(|d| d.id)
        },
    )
    .await
}

fn orders_of(items: &Value) -> Vec<String> {
    let mut orders: Vec<String> = items
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["order_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    orders.sort();
    orders.dedup();
    orders
}

fn accounts_of(report: &Value) -> Vec<String> {
    let mut accounts: Vec<String> = report["exceptions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["account"].as_str().unwrap_or("(none)").to_owned())
                .collect()
        })
        .unwrap_or_default();
    accounts.sort();
    accounts.dedup();
    accounts
}

async fn dashboard(hub: &Hub, key: &str) -> String {
    let response = hub
        .client()
        .post(format!("{}/dashboard/login", hub.base))
        .header("x-crossdock-action", "1")
        .json(&json!({ "key": key }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status().as_u16(), 204);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_owned();
    assert!(cookie.starts_with(&format!("{COOKIE}=")));
    cookie
}

async fn page(hub: &Hub, cookie: &str, path: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}{path}", hub.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_limited_key_sees_only_its_accounts_on_ops_and_the_dashboard() {
    let hub = Hub::start("reach", Arc::new(SystemClock), quick_settings(), true).await;
    // One failed booking in each account; both wait for someone.
    hub.erp.break_bookings(&["MINE-1", "THEIRS-1"]);
    for (order, account) in [("MINE-1", "ACC-MINE"), ("THEIRS-1", "ACC-THEIRS")] {
        hub.engine
            .accept_message(capture_message(order, account, 2))
            .await
            .expect("accepted");
    }
    let mine = dead_letter_of(&hub, "MINE-1").await;
    let theirs = dead_letter_of(&hub, "THEIRS-1").await;
    let limited = key(&hub, "branch-ops", vec![Scope::OpsRead], &["ACC-MINE"]).await;
    let admin = hub.key.clone();

    // Every account's exceptions are in the report for the unlimited key…
    hub.wait_for(
        Duration::from_secs(20),
        "both accounts in the health report",
        || async {
            let (_, report) = call(&hub, &admin, "GET", "/ops/health", None).await;
            let accounts = accounts_of(&report);
            accounts.contains(&"ACC-MINE".to_owned()) && accounts.contains(&"ACC-THEIRS".to_owned())
        },
    )
    .await;
    // …and only its own for the limited key, ranked from 1 again.
    let (status, report) = call(&hub, &limited, "GET", "/ops/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        accounts_of(&report),
        vec!["ACC-MINE".to_owned()],
        "{report}"
    );
    assert_eq!(report["exceptions"][0]["rank"], 1, "{report}");
    assert!(!report.to_string().contains("THEIRS-1"), "{report}");

    // Traces: another account's order answers like one that does not exist.
    let (status, _) = call(&hub, &limited, "GET", "/ops/orders/MINE-1/trace", None).await;
    assert_eq!(status, 200);
    let (status, other) = call(&hub, &limited, "GET", "/ops/orders/THEIRS-1/trace", None).await;
    let (_, missing) = call(&hub, &limited, "GET", "/ops/orders/NOPE-1/trace", None).await;
    assert_eq!(status, 404, "{other}");
    assert_eq!(other["detail"], "no order THEIRS-1");
    assert_eq!(missing["detail"], "no order NOPE-1");
    let (status, _) = call(&hub, &admin, "GET", "/ops/orders/THEIRS-1/trace", None).await;
    assert_eq!(status, 200, "the unlimited key sees it");

    // Dead letters: the list and each one.
    let (_, all) = call(&hub, &admin, "GET", "/ops/dead-letters?status=open", None).await;
    assert_eq!(orders_of(&all["items"]), vec!["MINE-1", "THEIRS-1"]);
    let (status, own) = call(&hub, &limited, "GET", "/ops/dead-letters?status=open", None).await;
    assert_eq!(status, 200);
    assert_eq!(orders_of(&own["items"]), vec!["MINE-1"], "{own}");
    let (status, _) = call(
        &hub,
        &limited,
        "GET",
        &format!("/ops/dead-letters/{mine}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, other) = call(
        &hub,
        &limited,
        "GET",
        &format!("/ops/dead-letters/{theirs}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(other["detail"], format!("no dead letter {theirs}"));
    let (status, refused) = call(&hub, &limited, "GET", "/ops/refused-messages", None).await;
    assert_eq!((status, refused["items"].clone()), (200, json!([])));

    // Acting: a limited key with ops:write cannot touch the other account's failed work.
    let writer = key(
        &hub,
        "branch-lead",
        vec![Scope::OpsRead, Scope::OpsWrite],
        &["ACC-MINE"],
    )
    .await;
    let (status, _) = call(
        &hub,
        &writer,
        "POST",
        &format!("/ops/dead-letters/{theirs}/resolve"),
        Some(json!({ "reason": "not mine" })),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &hub,
        &writer,
        "POST",
        &format!("/ops/dead-letters/{theirs}/retry"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, problem) = call(
        &hub,
        &writer,
        "POST",
        "/ops/replays",
        Some(json!({ "dry_run": true })),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("filter.order")
    );
    let (status, _) = call(
        &hub,
        &writer,
        "POST",
        "/ops/replays",
        Some(json!({ "dry_run": true, "filter": { "order": "THEIRS-1" } })),
    )
    .await;
    assert_eq!(status, 404);
    let (status, plan) = call(
        &hub,
        &writer,
        "POST",
        "/ops/replays",
        Some(json!({ "dry_run": true, "filter": { "order": "MINE-1" } })),
    )
    .await;
    assert_eq!(
        (status, plan["would_send"].clone()),
        (200, json!(1)),
        "{plan}"
    );
    let theirs_now = hub
        .store
        .dead_letter_by_id(theirs)
        .await
        .expect("store")
        .expect("row");
    assert_eq!(theirs_now.status, DeadLetterStatus::Open, "untouched");

    // The dashboard, signed in with the limited key.
    let cookie = dashboard(&hub, &limited).await;
    let (status, overview) = page(&hub, &cookie, "/dashboard?partial=1").await;
    assert_eq!(status, 200);
    assert!(overview.contains("MINE-1"), "{overview}");
    assert!(!overview.contains("THEIRS-1"), "{overview}");
    let (status, failed) = page(&hub, &cookie, "/dashboard/exceptions?partial=1&status=").await;
    assert_eq!(status, 200);
    assert!(failed.contains("data-order=\"MINE-1\""), "{failed}");
    assert!(!failed.contains("THEIRS-1"), "{failed}");
    let (status, _) = page(&hub, &cookie, "/dashboard/orders/MINE-1?partial=1").await;
    assert_eq!(status, 200);
    let (status, other) = page(&hub, &cookie, "/dashboard/orders/THEIRS-1?partial=1").await;
    assert_eq!(status, 404);
    assert!(other.contains("No order is known by"), "{other}");
    let (status, _) = page(&hub, &cookie, "/dashboard/orders?id=THEIRS-1&partial=1").await;
    assert_eq!(status, 200, "the search does not lead to it");
    let (status, _) = page(&hub, &cookie, &format!("/dashboard/exceptions/{theirs}")).await;
    assert_eq!(status, 404);
    // The unlimited key's dashboard shows both.
    let cookie = dashboard(&hub, &admin).await;
    let (_, overview) = page(&hub, &cookie, "/dashboard?partial=1").await;
    assert!(
        overview.contains("MINE-1") && overview.contains("THEIRS-1"),
        "{overview}"
    );
    hub.stop().await;
}
