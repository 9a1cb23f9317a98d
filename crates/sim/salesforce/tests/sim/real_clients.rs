//! Real third-party Salesforce clients against the simulator: simple-salesforce (Python),
//! jsforce and salesforce-pubsub-api-client (Node). Installed by `scripts/setup/sfclients.sh`;
//! these tests fail (never skip) when the clients are missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crossdock_sim_salesforce::Config;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::Sim;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn clients_dir() -> PathBuf {
    manifest().join("../../../.sfclients")
}

fn require(path: &Path, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is not installed ({} is missing): run scripts/setup/sfclients.sh",
        path.display()
    );
    path.to_path_buf()
}

fn python() -> PathBuf {
    require(
        &clients_dir().join("venv/bin/python"),
        "simple-salesforce (Python venv)",
    )
}

fn node_dir() -> PathBuf {
    let dir = clients_dir().join("node");
    require(&dir.join("node_modules/jsforce/package.json"), "jsforce");
    require(
        &dir.join("node_modules/salesforce-pubsub-api-client/package.json"),
        "salesforce-pubsub-api-client",
    );
    require(
        &dir.join("node_modules/underscore/package.json"),
        "underscore (needed by avro-js)",
    );
    dir
}

/// Copies a client script next to its node_modules so Node resolves the packages.
fn node_script(name: &str) -> PathBuf {
    let dir = node_dir();
    let target = dir.join(name);
    std::fs::copy(manifest().join("tests/clients").join(name), &target)
        .expect("copy client script");
    target
}

/// Seeds `n` accounts named `Bulk NNNNN` straight into the org (no API calls).
fn seed_bulk(sim: &Sim, n: usize) {
    for i in 0..n {
        sim.handle
            .state()
            .insert("Account", json!({"Name": format!("Bulk {i:05}")}))
            .expect("seed account");
    }
}

fn common_env(sim: &Sim, cmd: &mut Command) {
    let c = sim.handle.credentials();
    cmd.env("SIM", sim.handle.base_url())
        .env("TOKEN", &sim.token)
        .env("GRPC", sim.handle.grpc_endpoint())
        .env("REQUESTS_CA_BUNDLE", sim.handle.ca_pem_path())
        .env("NODE_EXTRA_CA_CERTS", sim.handle.ca_pem_path())
        .env("CONSUMER_KEY", &c.client_id)
        .env("CLIENT_ID", &c.client_id)
        .env("CLIENT_SECRET", &c.client_secret)
        .env("USERNAME", &c.username)
        .env("PASSWORD", &c.password)
        .env("SECURITY_TOKEN", &c.security_token)
        .env("ORG_ID", sim.handle.org_id())
        .env("USER_ID", sim.handle.user_id())
        .env(
            "JWT_KEY_FILE",
            manifest().join("tests/fixtures/jwt_test_key.pem"),
        )
        .kill_on_drop(true);
}

async fn run_json(mut cmd: Command, what: &str) -> Json {
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 120 s"))
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{what} printed no JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_drives_rest_query_paging_collections_and_logins() {
    let python = python();
    let sim = Sim::with(Config {
        jwt_keys: vec![include_str!("../fixtures/jwt_test_cert.pem").to_string()],
        ..Config::default()
    })
    .await;
    seed_bulk(&sim, 2_100);
    let mut cmd = Command::new(python);
    cmd.arg(manifest().join("tests/clients/simple_salesforce_client.py"));
    common_env(&sim, &mut cmd);
    let out = run_json(cmd, "simple-salesforce client").await;

    let id = out["created"]["id"].as_str().expect("created id");
    assert_eq!(out["created"]["success"], json!(true));
    assert_eq!(out["read_name"], json!("Py Account"));
    assert_eq!(out["update_status"], json!(204));
    assert_eq!(out["read_by_ext"], json!(id));
    assert_eq!(out["upsert_statuses"], json!([201, 200]));
    assert_eq!(out["duplicate_error"], json!("DUPLICATE_VALUE"));
    assert_eq!(
        (
            out["query_total"].clone(),
            out["query_records"].clone(),
            out["query_distinct"].clone()
        ),
        (json!(2100), json!(2100), json!(2100))
    );
    assert_eq!(
        out["aggregate"][0]["attributes"]["type"],
        json!("AggregateResult")
    );
    assert_eq!(out["aggregate"][0]["n"], json!(2100));
    assert_eq!(out["aggregate"][0]["expr0"], json!("Bulk 02099"));
    assert_eq!(out["with_children"][0]["Name"], json!("Py Account"));
    assert_eq!(out["with_children"][0]["Contacts"], Json::Null);
    assert_eq!(out["collection"][0]["success"], json!(true));
    assert_eq!(
        out["collection"][1]["errors"][0]["statusCode"],
        json!("REQUIRED_FIELD_MISSING")
    );
    assert!(
        out["api_usage"]["api-usage"][0]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{}",
        out["api_usage"]
    );
    assert_eq!(out["deleted_visible"], json!(true));
    assert_eq!(out["jwt_org_rows"], json!(1));
    assert!(
        out["jwt_instance"]
            .as_str()
            .is_some_and(|i| sim.handle.base_url().ends_with(i)),
        "{}",
        out["jwt_instance"]
    );
    assert_eq!(out["soap_user_rows"], json!(1));

    let state = sim.handle.state();
    let upserted = state
        .query("SELECT Name FROM Account WHERE ERP_Customer_Number__c = 'PY-2'")
        .expect("query");
    assert_eq!(upserted.len(), 1);
    assert_eq!(upserted[0]["Name"], json!("Py Upserted Again"));
    assert_eq!(
        state
            .record(id)
            .map(|r| (r["Phone"].clone(), r["IsDeleted"].clone())),
        Some((json!("555-0199"), json!(true)))
    );
    assert_eq!(
        state
            .query("SELECT Id FROM Contact WHERE LastName = 'Py One'")
            .map(|r| r.len()),
        Ok(1)
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsforce_drives_rest_query_paging_collections_and_oauth_flows() {
    let script = node_script("jsforce_client.cjs");
    let sim = Sim::start().await;
    seed_bulk(&sim, 2_300);
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .current_dir(node_dir())
        .env("REFRESH_TOKEN", sim.handle.issue_refresh_token());
    common_env(&sim, &mut cmd);
    let out = run_json(cmd, "jsforce client").await;

    let id = out["created"]["id"].as_str().expect("created id");
    assert_eq!(out["retrieved"], json!("JS Account"));
    assert_eq!(out["updated"]["success"], json!(true));
    assert_eq!(
        (
            out["upserts"][0]["created"].clone(),
            out["upserts"][1]["created"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(
        (out["query_records"].clone(), out["query_distinct"].clone()),
        (json!(2300), json!(2300))
    );
    assert_eq!(out["first_page"]["records"], json!(2000));
    assert_eq!(
        out["grouped"],
        json!([["Bulk 00009", 1], ["Bulk 00008", 1], ["Bulk 00007", 1]])
    );
    assert_eq!(out["created_today"], json!(2300));
    assert_eq!(out["first_page"]["done"], json!(false));
    assert!(
        out["collection_create"]
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|r| r["success"] == json!(true)))
    );
    assert!(
        out["collection_update"]
            .as_array()
            .is_some_and(|a| a.iter().all(|r| r["success"] == json!(true))),
        "{}",
        out["collection_update"]
    );
    assert_eq!(
        out["collection_retrieve"],
        json!(["js@example.com", "js@example.com"])
    );
    let upsert_created: Vec<Json> = out["collection_upsert"]
        .as_array()
        .map(|a| a.iter().map(|r| r["created"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(upsert_created, vec![json!(true), json!(false)]);
    assert!(
        out["collection_destroy"]
            .as_array()
            .is_some_and(|a| a.iter().all(|r| r["success"] == json!(true)))
    );
    assert_eq!(out["identity"]["user_id"], json!(sim.handle.user_id()));
    assert!(
        out["limitInfo"]["apiUsage"]["used"]
            .as_u64()
            .is_some_and(|n| n > 5)
    );
    assert_eq!(out["limitInfo"]["apiUsage"]["limit"], json!(15000));
    assert_eq!(out["bad_field"], json!("INVALID_FIELD"));
    assert_eq!(
        out["password_login"]["organizationId"],
        json!(sim.handle.org_id())
    );
    assert_eq!(
        out["password_login"]["hasRefresh"],
        json!(false),
        "no refresh token from the password flow"
    );
    assert_eq!(out["password_query"], json!(1));
    assert_eq!(out["refresh_query"], json!(1));
    assert_eq!(out["refreshed"], json!(true));
    assert_eq!(
        out["soap_login"]["organizationId"],
        json!(sim.handle.org_id())
    );
    assert_eq!(
        out["soap_login"]["instanceUrl"],
        json!(sim.handle.base_url())
    );

    let state = sim.handle.state();
    assert_eq!(
        state.record(id).map(|r| r["Phone"].clone()),
        Some(json!("555-0142"))
    );
    let names = state.query("SELECT Name FROM Account WHERE ERP_Customer_Number__c IN ('JS-2', 'JS-3') ORDER BY ERP_Customer_Number__c").expect("query");
    assert_eq!(
        names.iter().map(|r| r["Name"].clone()).collect::<Vec<_>>(),
        vec![json!("JS Two Renamed"), json!("JS Three")]
    );
    assert_eq!(state.count("Contact"), 0, "destroyed");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_client_decodes_order_change_events() {
    let script = node_script("pubsub_client.mjs");
    let sim = Sim::with(Config {
        keepalive_secs: 1,
        ..Config::default()
    })
    .await;
    let account = sim.create("Account", json!({"Name": "Stream Co"})).await;
    let order = sim.create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Hub_Order_Id__c": "H-PS"})).await;

    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    common_env(&sim, &mut cmd);
    let mut child = cmd.spawn().expect("node starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let read_line = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| {
        tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    };
    let first = read_line(&mut lines).await;
    if first.as_deref() != Some("SUBSCRIBED") {
        let _ = child.kill().await;
        let err = child
            .wait_with_output()
            .await
            .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
            .unwrap_or_default();
        panic!("the Pub/Sub client did not subscribe: {first:?}\n{err}");
    }
    let r = sim
        .send(
            sim.http
                .patch(sim.data(&format!("sobjects/Order/{order}")))
                .bearer_auth(&sim.token)
                .header("Sforce-Call-Options", "client=crossdock-test")
                .json(&json!({"Hub_Status__c": "Shipped", "ERP_Order_Number__c": "ERP-77"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let line = read_line(&mut lines).await.unwrap_or_default();
    let event: Json = serde_json::from_str(
        line.strip_prefix("EVENT ")
            .unwrap_or_else(|| panic!("expected an EVENT line, got {line:?}")),
    )
    .expect("event JSON");
    assert_eq!(event["entityName"], json!("Order"));
    assert_eq!(event["changeType"], json!("UPDATE"));
    assert_eq!(event["recordIds"], json!([order]));
    assert_eq!(
        event["changeOrigin"],
        json!("com/salesforce/api/rest/60.0;client=crossdock-test")
    );
    let mut changed: Vec<String> = event["changedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        ["ERP_Order_Number__c", "Hub_Status__c", "LastModifiedDate"]
    );
    assert_eq!(event["hubStatus"], json!("Shipped"));
    assert_eq!(event["erpNumber"], json!("ERP-77"));
    let replay = event["replayId"].as_u64().expect("numeric replay id");
    assert!(
        sim.handle
            .state()
            .events()
            .iter()
            .any(|(id, entity, _)| *id == replay && entity == "Order")
    );

    let line = read_line(&mut lines).await.unwrap_or_default();
    let published: Json = serde_json::from_str(
        line.strip_prefix("PUBLISHED ")
            .unwrap_or_else(|| panic!("expected a PUBLISHED line, got {line:?}")),
    )
    .expect("publish JSON");
    assert_eq!(published["correlationKey"], json!("shipped-1"));
    assert_eq!(published["error"], json!(null));
    let shipped_replay = published["replayId"].as_u64().expect("numeric replay id");
    assert!(
        sim.handle
            .state()
            .events()
            .iter()
            .any(|(id, entity, change)| *id == shipped_replay
                && entity == "Order_Shipped__e"
                && !change),
        "the platform event is stored under its replay id"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("client exits")
        .expect("status");
    assert!(status.success());
    sim.shutdown().await;
}
