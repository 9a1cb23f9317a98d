//! A second user (a sales rep) next to the integration user: its own tokens, identity and
//! `commitUser`, and the Order cancellation fields it sets.

use crossdock_sim_salesforce::Config;
use crossdock_sim_salesforce::proto::FetchRequest;
use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::auth::{CERT_PEM, jwt, now_secs, token};
use crate::pubsub::{bitmap_names, client, decode_event, next, subscribe};
use crate::{Sim, q};

const REP: &str = "demo.rep@crossdock.sim";

/// Waits for the next response that carries events.
async fn next_events(
    sub: &mut crate::pubsub::Subscription,
) -> Vec<crossdock_sim_salesforce::proto::ConsumerEvent> {
    loop {
        let r = next(sub).await.expect("events");
        if !r.events.is_empty() {
            return r.events;
        }
    }
}

#[tokio::test]
async fn a_sales_rep_requests_a_cancellation_under_its_own_name() {
    let sim = Sim::with(Config {
        jwt_keys: vec![CERT_PEM.to_string()],
        keepalive_secs: 1,
        ..Config::default()
    })
    .await;
    let hub_user = sim.handle.user_id().to_string();
    assert_eq!(
        sim.handle.user_id_for(REP),
        None,
        "no rep before the first token"
    );
    let rep_token = sim.handle.issue_token_for(REP).expect("rep token");
    let rep_user = sim.handle.user_id_for(REP).expect("rep user created");
    assert_ne!(rep_user, hub_user);
    assert!(rep_user.starts_with("005") && rep_user.len() == 18);
    assert_eq!(
        sim.handle.user_id_for("DEMO.REP@crossdock.sim").as_deref(),
        Some(rep_user.as_str()),
        "usernames match case-insensitively"
    );
    // A second token for the same username reuses the user.
    let again = sim.handle.issue_token_for(REP).expect("second token");
    assert_ne!(again, rep_token);
    assert_eq!(sim.handle.state().count("User"), 2);
    assert!(sim.handle.issue_token_for("not an address").is_err());

    // The rep's identity.
    let info = sim
        .send(
            sim.http
                .get(sim.url("/services/oauth2/userinfo"))
                .bearer_auth(&rep_token),
        )
        .await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.body["user_id"], json!(rep_user));
    assert_eq!(info.body["preferred_username"], json!(REP));
    assert_eq!(info.body["name"], json!("Demo Rep"));
    let user_row = sim.get(&format!("sobjects/User/{rep_user}")).await;
    assert_eq!(user_row.body["Username"], json!(REP));
    assert_eq!(user_row.body["IsActive"], json!(true));

    // The admin API mints tokens for the same user; bad usernames are refused.
    let minted = sim
        .admin(Method::POST, "tokens", Some(json!({"username": REP})))
        .await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    assert_eq!(minted.body["user_id"], json!(rep_user));
    let bad = sim
        .admin(Method::POST, "tokens", Some(json!({"username": 7})))
        .await;
    assert_eq!(bad.status, 400);

    // JWT bearer works for any user of the org, by username.
    let exp = now_secs() + 300;
    let c = sim.handle.credentials().clone();
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            (
                "assertion",
                &jwt(&json!({"iss": c.client_id, "sub": REP, "aud": "https://login.salesforce.com", "exp": exp})),
            ),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.ends_with(&format!("/{rep_user}"))),
        "{body}"
    );

    // The cancellation fields are declared on Order.
    let describe = sim.get("sobjects/Order/describe").await.body;
    let field = |name: &str| {
        describe["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == json!(name)))
            .cloned()
            .unwrap_or(Json::Null)
    };
    let requested = field("Cancel_Requested__c");
    assert_eq!(requested["type"], json!("boolean"));
    assert_eq!(requested["defaultValue"], json!(false));
    assert_eq!(requested["custom"], json!(true));
    assert_eq!(requested["updateable"], json!(true));
    let reason = field("Cancel_Reason__c");
    assert_eq!(reason["type"], json!("string"));
    assert_eq!(reason["length"], json!(255));

    let account = sim.create("Account", json!({"Name": "Cancel Co"})).await;
    let order = sim
        .create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Hub_Order_Id__c": "H-CXL"}))
        .await;
    let created = sim.get(&format!("sobjects/Order/{order}")).await.body;
    assert_eq!(created["Cancel_Requested__c"], json!(false));
    assert_eq!(created["Cancel_Reason__c"], json!(null));
    assert_eq!(created["CreatedById"], json!(hub_user));

    let mut c = client(&sim).await;
    let mut sub = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            num_requested: 10,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("subscribes");
    // The first keepalive proves the subscription is live before the writes.
    next(&mut sub).await.expect("keepalive");

    let too_long = sim
        .send(
            sim.http
                .patch(sim.data(&format!("sobjects/Order/{order}")))
                .bearer_auth(&rep_token)
                .json(&json!({"Cancel_Reason__c": "x".repeat(256)})),
        )
        .await;
    assert_eq!(too_long.error_code(), Some("STRING_TOO_LONG"));
    let asked = sim
        .send(
            sim.http
                .patch(sim.data(&format!("sobjects/Order/{order}")))
                .bearer_auth(&rep_token)
                .json(&json!({"Cancel_Requested__c": true, "Cancel_Reason__c": "Customer changed their mind"})),
        )
        .await;
    assert_eq!(asked.status, 204, "{}", asked.text);
    let events = next_events(&mut sub).await;
    let (schema, value) =
        decode_event(&sim, &mut c, events[0].event.as_ref().expect("event")).await;
    let h = &value["ChangeEventHeader"];
    assert_eq!(h["changeType"], json!("UPDATE"));
    assert_eq!(h["commitUser"], json!(rep_user), "the rep made this change");
    let mut changed = bitmap_names(&schema, &h["changedFields"]);
    changed.sort();
    assert_eq!(
        changed,
        [
            "Cancel_Reason__c",
            "Cancel_Requested__c",
            "LastModifiedById",
            "LastModifiedDate"
        ]
    );
    assert_eq!(value["Cancel_Requested__c"], json!(true));
    assert_eq!(
        value["Cancel_Reason__c"],
        json!("Customer changed their mind")
    );
    assert_eq!(value["LastModifiedById"], json!(rep_user));

    // The hub's answer is the integration user's change.
    let answered = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"Hub_Status__c": "Cancelled", "Cancel_Requested__c": false}),
        )
        .await;
    assert_eq!(answered.status, 204, "{}", answered.text);
    let events = next_events(&mut sub).await;
    let (_, value) = decode_event(&sim, &mut c, events[0].event.as_ref().expect("event")).await;
    assert_eq!(value["ChangeEventHeader"]["commitUser"], json!(hub_user));
    assert_eq!(value["LastModifiedById"], json!(hub_user));

    let rows = sim
        .handle
        .state()
        .query(&format!(
            "SELECT Cancel_Requested__c, Cancel_Reason__c FROM Order WHERE Id = '{order}'"
        ))
        .expect("query");
    assert_eq!(rows[0]["Cancel_Requested__c"], json!(false));
    assert_eq!(
        rows[0]["Cancel_Reason__c"],
        json!("Customer changed their mind")
    );
    let by_rep = sim
        .get(&format!(
            "query?q={}",
            q(&format!(
                "SELECT COUNT() FROM Order WHERE CreatedById = '{rep_user}'"
            ))
        ))
        .await;
    assert_eq!(by_rep.body["totalSize"], json!(0));
    sim.shutdown().await;
}
