//! Authentication, token refresh, paging and order reads.

use std::sync::Arc;

use crossdock_domain::ids::{LineNo, Sku};
use crossdock_ports::{FailureClass, Salesforce, SystemClock};
use crossdock_salesforce::{Adapter, Auth, Secret};
use serde_json::json;

use crate::Org;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_once_for_many_concurrent_callers() {
    let org = Org::start().await;
    let adapter = org.adapter();
    let client = adapter.client().clone();
    let first = client
        .query("SELECT Id FROM Organization")
        .await
        .expect("query");
    assert_eq!(first.len(), 1);
    assert_eq!(
        client.tokens().requests(),
        1,
        "one token for the first call"
    );

    let expired = org.sim.expire_tokens();
    assert!(expired >= 1);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.query("SELECT Id FROM Organization").await })
        })
        .collect();
    for call in calls {
        let rows = call
            .await
            .expect("task")
            .expect("call succeeds after the refresh");
        assert_eq!(rows.len(), 1);
    }
    assert_eq!(
        client.tokens().requests(),
        2,
        "eight callers that met the expired token caused exactly one refresh"
    );
    org.shutdown().await;
}

#[tokio::test]
async fn the_jwt_bearer_flow_signs_in_with_the_connected_app_key() {
    let org = Org::start().await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let cert = std::fs::read_to_string(format!("{fixtures}/jwt_cert.pem")).expect("cert");
    org.sim.add_jwt_key(&cert);
    let creds = org.sim.credentials().clone();
    for key in ["jwt_key.pem", "jwt_key_rsa.pem"] {
        let adapter = org.adapter_with(|c| {
            c.auth = Auth::JwtBearer {
                client_id: creds.client_id.clone(),
                username: creds.username.clone(),
                private_key_file: format!("{fixtures}/{key}").into(),
                audience: None,
            };
        });
        let rows = adapter
            .client()
            .query("SELECT Id FROM Organization")
            .await
            .unwrap_or_else(|f| panic!("{key}: {f}"));
        assert_eq!(rows.len(), 1);
    }
    // The wrong user is refused for good, with Salesforce's error code.
    let adapter = org.adapter_with(|c| {
        c.auth = Auth::JwtBearer {
            client_id: creds.client_id.clone(),
            username: "someone.else@example.com".into(),
            private_key_file: format!("{fixtures}/jwt_key.pem").into(),
            audience: None,
        };
    });
    let failure = adapter
        .client()
        .query("SELECT Id FROM Organization")
        .await
        .expect_err("unknown user");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.code.as_deref(), Some("invalid_grant"));
    org.shutdown().await;
}

#[tokio::test]
async fn a_rejected_fixed_token_fails_permanently() {
    let org = Org::start().await;
    let token = org.sim.issue_token();
    let adapter = org.adapter_with(|c| {
        c.auth = Auth::AccessToken {
            token: Secret::new(token),
            instance_url: org.sim.base_url().to_owned(),
        };
    });
    assert!(
        adapter
            .client()
            .query("SELECT Id FROM Organization")
            .await
            .is_ok()
    );
    org.sim.expire_tokens();
    let failure = adapter
        .client()
        .query("SELECT Id FROM Organization")
        .await
        .expect_err("expired");
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.code.as_deref(), Some("INVALID_SESSION_ID"));
    org.shutdown().await;
}

#[tokio::test]
async fn queries_follow_next_records_url_across_pages() {
    let org = Org::start().await;
    for i in 0..2_150 {
        org.insert("Account", json!({"Name": format!("Page {i:05}")}));
    }
    let adapter = org.adapter();
    let before = org.sim.state().calls_by_kind();
    let rows = adapter
        .client()
        .query("SELECT Id, Name FROM Account WHERE Name LIKE 'Page %'")
        .await
        .expect("query");
    assert_eq!(rows.len(), 2_150);
    let mut names: Vec<&str> = rows.iter().filter_map(|r| r["Name"].as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 2_150, "every row once");
    let after = org.sim.state().calls_by_kind();
    let calls: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    assert_eq!(calls, 2, "two pages of at most 2,000 rows: {after:?}");
    org.shutdown().await;
}

#[tokio::test]
async fn read_order_returns_the_order_with_numbered_lines() {
    let org = Org::start().await;
    let seed = org.seed(1, 2);
    let order = &seed.orders[0];
    let adapter = org.adapter();
    let draft = adapter.read_order(&order.id).await.expect("read");
    assert_eq!(draft.id.as_str(), format!("SF-{}", order.number));
    assert_eq!(draft.account.as_str(), seed.account_number);
    assert_eq!(draft.refs.sf_id.as_deref(), Some(order.id.as_str()));
    assert_eq!(draft.lines.len(), 2);
    for (i, line) in draft.lines.iter().enumerate() {
        assert_eq!(line.line, LineNo(u32::try_from(i + 1).expect("small")));
        assert_eq!(line.sku, Sku::new(order.items[i].1.clone()));
        assert_eq!(line.quantity, order.items[i].2);
        assert_eq!(line.unit_price, rust_decimal::Decimal::from(10 + i));
        assert_eq!(line.sf_id.as_deref(), Some(order.items[i].0.as_str()));
    }
    // Once the hub has written its id, re-reads keep it.
    org.patch("Order", &order.id, json!({"Hub_Order_Id__c": "HUB-77"}))
        .await;
    let draft = adapter.read_order(&order.id).await.expect("read");
    assert_eq!(draft.id.as_str(), "HUB-77");
    let missing = adapter
        .read_order("801000000000000AAA")
        .await
        .expect_err("no such order");
    assert_eq!(missing.class, FailureClass::Permanent);
    let malformed = adapter.read_order("x'; DELETE").await.expect_err("bad id");
    assert_eq!(malformed.code.as_deref(), Some("MALFORMED_ID"));
    org.shutdown().await;
}

#[tokio::test]
async fn building_fails_precisely_on_bad_files() {
    let org = Org::start().await;
    let mut config = org.config();
    config.ca_file = Some("/nonexistent/ca.pem".into());
    let err = Adapter::build(&config, Arc::new(SystemClock)).expect_err("missing CA");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    let mut config = org.config();
    config.auth = Auth::JwtBearer {
        client_id: "x".into(),
        username: "y".into(),
        private_key_file: org.sim.ca_pem_path().to_path_buf(),
        audience: None,
    };
    let err =
        Adapter::build(&config, Arc::new(SystemClock)).expect_err("a certificate is not a key");
    assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    org.shutdown().await;
}
