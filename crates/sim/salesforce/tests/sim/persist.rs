//! Resumable runs: a simulator restarted on the same data folder — after a graceful stop or a
//! crash at any moment — continues with the same org, ids, tokens, CA and events.

use std::path::{Path, PathBuf};

use crossdock_sim_salesforce::Config;
use crossdock_sim_salesforce::proto::{FetchRequest, TopicRequest};
use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::pubsub::{authed, client, next, subscribe};
use crate::{Sim, q};

/// A fresh data folder for one test (nextest runs each test in its own process).
fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crossdock-sfsim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(dir: &Path) -> Config {
    Config {
        data_dir: Some(dir.to_path_buf()),
        ..Config::default()
    }
}

fn state_file(dir: &Path) -> Json {
    let bytes = std::fs::read(dir.join("org.json")).expect("org.json is written");
    serde_json::from_slice(&bytes).expect("org.json is JSON")
}

fn replay(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8-byte replay id"))
}

/// Replay ids of the retained change events.
fn change_replays(sim: &Sim) -> Vec<u64> {
    sim.handle
        .state()
        .events()
        .into_iter()
        .filter(|(_, _, change)| *change)
        .map(|(id, _, _)| id)
        .collect()
}

#[tokio::test]
async fn a_restarted_simulator_continues_where_it_stopped() {
    let dir = data_dir("restart");
    let sim = Sim::with(config(&dir)).await;
    assert!(!sim.handle.restored());
    assert_eq!(
        sim.handle.state_file(),
        Some(dir.join("org.json").as_path())
    );
    assert_eq!(
        state_file(&dir)["clean"],
        json!(false),
        "the file is marked in use at start"
    );
    // The simulator clock runs an hour ahead: the restarted one must not fall back.
    let advanced = sim
        .admin(Method::POST, "clock/advance", Some(json!({"secs": 3600})))
        .await;
    assert_eq!(advanced.status, 200);

    let pb = sim.standard_pricebook().await;
    let account = sim.create("Account", json!({"Name": "Resume Co"})).await;
    let (_, boot) = sim.priced_product("Boot", 120.0).await;
    let order = sim
        .create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Pricebook2Id": pb, "Hub_Order_Id__c": "H-R1"}))
        .await;
    sim.create("OrderItem", json!({"OrderId": order, "PricebookEntryId": boot, "Quantity": 2, "UnitPrice": 120, "Hub_Line_Key__c": "H-R1-1"}))
        .await;
    let activated = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"Status": "Activated"}),
        )
        .await;
    assert_eq!(activated.status, 204);
    let gone = sim.create("Account", json!({"Name": "Deleted Co"})).await;
    assert_eq!(
        sim.delete(&format!("sobjects/Account/{gone}")).await.status,
        204
    );
    let field = sim
        .admin(
            Method::POST,
            "schema/fields",
            Some(json!({"object": "Order", "name": "Promo_Code__c", "type": "string"})),
        )
        .await;
    assert_eq!(field.status, 201, "{}", field.text);
    let promo = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"Promo_Code__c": "BF26"}),
        )
        .await;
    assert_eq!(promo.status, 204, "{}", promo.text);
    let shipped = sim
        .post(
            "sobjects/Order_Shipped__e",
            json!({"Order_Number__c": "00000100", "Tracking_Number__c": "1Z999"}),
        )
        .await;
    assert_eq!(shipped.status, 201);
    let refresh = sim.handle.issue_refresh_token();
    let rep = sim
        .handle
        .issue_token_for("demo.rep@crossdock.sim")
        .expect("rep token");

    let ca = std::fs::read(sim.handle.ca_pem_path()).expect("CA");
    let old_http = sim.http.clone();
    let old_token = sim.token.clone();
    let order_before = sim.get(&format!("sobjects/Order/{order}")).await.body;
    let used_before = sim.handle.state().api_usage().0;
    let events_before = sim.handle.state().events();
    let replays_before = change_replays(&sim);
    assert!(replays_before.len() >= 6, "{replays_before:?}");
    sim.shutdown().await;
    assert_eq!(
        state_file(&dir)["clean"],
        json!(true),
        "a graceful stop says so"
    );

    let mut sim = Sim::with(config(&dir)).await;
    assert!(sim.handle.restored());
    assert_eq!(
        std::fs::read(sim.handle.ca_pem_path()).expect("CA"),
        ca,
        "the same CA"
    );
    assert_eq!(
        sim.handle.state().api_usage().0,
        used_before,
        "API usage carries on"
    );
    assert_eq!(
        sim.handle.state().events(),
        events_before,
        "the same retained events"
    );
    // A client that trusts the old CA, holding a token issued before the restart, reads the
    // same record from the new address.
    let r = old_http
        .get(sim.data(&format!("sobjects/Order/{order}")))
        .bearer_auth(&old_token)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Json>().await.ok(), Some(order_before.clone()));
    sim.token = old_token;
    assert_eq!(
        sim.get(&format!("sobjects/Account/{gone}"))
            .await
            .error_code(),
        Some("ENTITY_IS_DELETED")
    );
    let all = sim
        .get(&format!(
            "queryAll?q={}",
            q(&format!(
                "SELECT Id, IsDeleted FROM Account WHERE Id = '{gone}'"
            ))
        ))
        .await;
    assert_eq!(
        all.body["records"][0]["IsDeleted"],
        json!(true),
        "{}",
        all.text
    );
    assert_eq!(
        sim.get(&format!("sobjects/Order/{order}?fields=Promo_Code__c"))
            .await
            .body["Promo_Code__c"],
        json!("BF26"),
        "fields added at run time survive"
    );
    let userinfo = sim
        .send(
            sim.http
                .get(sim.url("/services/oauth2/userinfo"))
                .bearer_auth(&rep),
        )
        .await;
    assert_eq!(
        userinfo.body["preferred_username"],
        json!("demo.rep@crossdock.sim")
    );
    let c = sim.handle.credentials().clone();
    let refreshed = sim
        .send(sim.http.post(sim.url("/services/oauth2/token")).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", c.client_id.as_str()),
        ]))
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);

    // New records continue the numbering; the clock did not go back.
    let next_order = sim
        .create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-27", "Status": "Draft", "Pricebook2Id": pb}))
        .await;
    assert!(next_order[..15] > order[..15], "{next_order} after {order}");
    let fresh = sim.get(&format!("sobjects/Order/{next_order}")).await.body;
    assert_eq!(fresh["OrderNumber"], json!("00000101"));
    let created = fresh["CreatedDate"].as_str().unwrap_or_default();
    let before = order_before["LastModifiedDate"]
        .as_str()
        .unwrap_or_default();
    assert!(created >= before, "{created} is not before {before}");
    let line = sim
        .create("OrderItem", json!({"OrderId": next_order, "PricebookEntryId": boot, "Quantity": 1, "UnitPrice": 120}))
        .await;
    assert_eq!(
        sim.get(&format!("sobjects/OrderItem/{line}")).await.body["OrderItemNumber"],
        json!("0000000002")
    );

    // Replay ids keep increasing, and a subscriber resuming from a replay id stored before
    // the restart gets exactly the later events, old and new.
    let replays_after = change_replays(&sim);
    let last_before = replays_before.last().copied().unwrap_or_default();
    assert!(replays_after.len() > replays_before.len());
    assert!(
        replays_after[replays_before.len()..]
            .iter()
            .all(|&r| r > last_before)
    );
    let stored = replays_before[2];
    let expected: Vec<u64> = replays_after
        .iter()
        .copied()
        .filter(|&r| r > stored)
        .collect();
    let mut c = client(&sim).await;
    let topic = c
        .get_topic(authed(
            &sim,
            TopicRequest {
                topic_name: "/data/ChangeEvents".into(),
            },
        ))
        .await;
    assert!(topic.is_ok(), "the old token works over gRPC too");
    let mut sub = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/ChangeEvents".into(),
            replay_preset: 2,
            replay_id: stored.to_be_bytes().to_vec(),
            num_requested: 100,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("resumes from a stored replay id");
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let r = next(&mut sub).await.expect("events");
        got.extend(r.events.iter().map(|e| replay(&e.replay_id)));
    }
    assert_eq!(got, expected);
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// An answer leaves only once the org it reflects is saved: a crash right after the last
/// answer, long before any periodic save, keeps every record created, with its id, and the
/// restarted simulator never hands out an id or replay id it gave before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_an_answer_loses_nothing_it_acknowledged() {
    let dir = data_dir("crash");
    let sim = std::sync::Arc::new(Sim::with(config(&dir)).await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..60 {
        let sim = sim.clone();
        tasks.spawn(async move {
            let name = format!("Kept Co {n}");
            let id = sim.create("Account", json!({ "Name": name })).await;
            (id, name)
        });
    }
    let mut created = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        created.push(joined.expect("create task"));
    }
    let token = sim.token.clone();
    let latest_before_crash = sim.handle.state().latest_replay_id();
    // A crash: no final save, and no periodic save since the records were created.
    let sim = std::sync::Arc::into_inner(sim).expect("every task finished");
    drop(sim);
    let file = state_file(&dir);
    assert_eq!(file["clean"], json!(false), "no graceful stop");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("org.json")).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600), "org.json is owner-only");
    }

    let mut sim = Sim::with(config(&dir)).await;
    assert!(sim.handle.restored());
    sim.token = token;
    for (id, name) in &created {
        let saved = sim.get(&format!("sobjects/Account/{id}")).await;
        assert_eq!(saved.status, 200, "{name} was acknowledged: {}", saved.text);
        assert_eq!(saved.body["Name"], json!(name));
    }
    // Ids and replay ids handed out before the crash never name anything new.
    let again = sim.create("Account", json!({"Name": "After Co"})).await;
    assert!(
        created.iter().all(|(id, _)| again[..15] > id[..15]),
        "{again} is not newer than every id before the crash"
    );
    assert!(sim.handle.state().latest_replay_id() > latest_before_crash);
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_damaged_state_file_stops_the_start() {
    let dir = data_dir("damaged");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("org.json"), b"{\"format\": 1, \"objects\": ").expect("write");
    let err = crossdock_sim_salesforce::Simulator::start(config(&dir))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("org.json") && err.contains("EOF"), "{err}");
    // The damaged file is left for inspection, not replaced by an empty org.
    assert_eq!(
        std::fs::read(dir.join("org.json")).ok().as_deref(),
        Some(&b"{\"format\": 1, \"objects\": "[..])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
