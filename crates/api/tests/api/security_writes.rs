//! Object-level authorisation of every `/v1` write through identifiers a client chooses: a key
//! limited to one account cannot write to another account's order, case or account through a
//! Salesforce identifier, cannot block another account's future order, and cannot tell from
//! the answers whether another account's record exists.

use std::time::Duration;

use crossdock_api::auth::scope::Scope;
use serde_json::{Value, json};

use crate::helpers::{TestApp, order};

/// Salesforce record id of account B's order.
const B_ORDER_SF_ID: &str = "801000000000001AAA";
/// Salesforce record id of account B's case.
const B_CASE_SF_ID: &str = "500000000000001AAA";
/// Salesforce record id of account B's account.
const B_ACCOUNT_SF_ID: &str = "001000000000001AAA";

/// An order named by its Salesforce number.
fn salesforce_order(number: &str, account: &str, sf_id: Option<&str>) -> Value {
    let mut body = order("unused", account);
    let object = body.as_object_mut().expect("an object");
    object.remove("external_order_id");
    object.insert("salesforce_order_number".to_owned(), json!(number));
    if let Some(sf_id) = sf_id {
        object.insert("salesforce_id".to_owned(), json!(sf_id));
    }
    body
}

/// A key limited to account ACC-A with every write and read scope of `/v1`.
async fn limited_key(app: &TestApp) -> String {
    app.key_with(
        "tenant-a",
        &[
            Scope::OrdersWrite,
            Scope::OrdersRead,
            Scope::ReturnsWrite,
            Scope::ReturnsRead,
            Scope::AccountsWrite,
        ],
        &["ACC-A"],
        None,
    )
    .await
}

/// Status and body of an answer, without its correlation id (which differs per request).
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let mut body: Value = response.json().await.unwrap_or(Value::Null);
    if let Some(object) = body.as_object_mut() {
        object.remove("correlation_id");
    }
    (status, body)
}

/// Asserts a generic refusal of exactly `field`.
fn assert_refused(answer: &(u16, Value), field: &str, what: &str) {
    assert_eq!(answer.0, 422, "{what}: {}", answer.1);
    let fields: Vec<&str> = answer.1["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, [field], "{what}: {}", answer.1);
}

/// An order of account ACC-B submitted by Salesforce (the unrestricted key), booked.
async fn b_order(app: &TestApp, number: &str, sf_id: Option<&str>) -> Value {
    let response = app
        .submit(
            &salesforce_order(number, "ACC-B", sf_id),
            &format!("b-{number}"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 202, "B's order {number}");
    app.wait_for(&format!("/v1/orders/SF-{number}"), |o| {
        o["erp_order_number"].is_string()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_key_cannot_take_or_block_another_accounts_salesforce_order() {
    let app = TestApp::start().await;
    let before = b_order(&app, "00100", Some(B_ORDER_SF_ID)).await;
    let limited = limited_key(&app).await;
    let submit = |body: Value, key: &'static str| {
        let app = &app;
        let limited = limited.clone();
        async move {
            answer(
                app.send("POST", "/v1/orders", &limited, Some(&body), Some(key))
                    .await,
            )
            .await
        }
    };

    // (a) Another account's Salesforce Order id on an order of its own account.
    let mut foreign_id = order("A-1", "ACC-A");
    foreign_id["salesforce_id"] = json!(B_ORDER_SF_ID);
    let foreign_id = submit(foreign_id, "a-1").await;
    assert_refused(&foreign_id, "salesforce_id", "another account's order id");
    let mut unknown_id = order("A-2", "ACC-A");
    unknown_id["salesforce_id"] = json!("801000000000999AAA");
    let unknown_id = submit(unknown_id, "a-2").await;
    assert_eq!(
        foreign_id, unknown_id,
        "another account's order id and an unknown one get the same answer"
    );

    // (b) Another account's existing order number, and the next one (not yet used).
    let existing = submit(salesforce_order("00100", "ACC-A", None), "a-3").await;
    assert_refused(
        &existing,
        "salesforce_order_number",
        "another account's order number",
    );
    let next = submit(salesforce_order("00101", "ACC-A", None), "a-4").await;
    assert_eq!(
        existing, next,
        "an existing order number of another account and an unused one get the same answer"
    );

    // Nothing was written: B's order is unchanged, under every id, even for an admin.
    for id in [B_ORDER_SF_ID, "SF-00100", "00100"] {
        let (status, now) = app.get_json(&format!("/v1/orders/{id}")).await;
        assert_eq!(status, 200, "{id}");
        assert_eq!(now["order_id"], "SF-00100", "{id}");
        assert_eq!(now["account"], "ACC-B", "{id}");
        assert_eq!(now["erp_order_number"], before["erp_order_number"], "{id}");
    }
    assert_eq!(app.get_json("/v1/orders/SF-00101").await.0, 404);
    for id in ["A-1", "A-2"] {
        assert_eq!(
            app.get_json(&format!("/v1/orders/EXT-tenant-a-{id}"))
                .await
                .0,
            404,
            "a refused order is not captured"
        );
    }

    // B's next order arrives later with that number and is booked: it was not blocked.
    let later = b_order(&app, "00101", None).await;
    assert_eq!(later["account"], "ACC-B");

    // The key's own orders still go through with its own ids.
    let own = submit(order("A-3", "ACC-A"), "a-5").await;
    assert_eq!(own.0, 202, "{}", own.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_key_may_repeat_its_own_orders_salesforce_ids_only() {
    let app = TestApp::start().await;
    // Salesforce submits an order of account ACC-A; its own client repeats it.
    let body = salesforce_order("00300", "ACC-A", Some("801000000000300AAA"));
    assert_eq!(app.submit(&body, "sf-300").await.status().as_u16(), 202);
    app.wait_for("/v1/orders/SF-00300", |o| o["erp_order_number"].is_string())
        .await;
    let limited = limited_key(&app).await;
    let repeat = answer(
        app.send("POST", "/v1/orders", &limited, Some(&body), Some("a-300"))
            .await,
    )
    .await;
    assert_eq!(repeat.0, 202, "its own order: {}", repeat.1);
    assert_eq!(repeat.1["order_id"], "SF-00300");
    // The same Salesforce id on another order of its own is refused (bound to SF-00300).
    let mut other = order("A-9", "ACC-A");
    other["salesforce_id"] = json!("801000000000300AAA");
    let other = answer(
        app.send("POST", "/v1/orders", &limited, Some(&other), Some("a-301"))
            .await,
    )
    .await;
    assert_refused(&other, "salesforce_id", "an id bound to another order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_takes_a_salesforce_id_another_order_holds() {
    let app = TestApp::start().await;
    b_order(&app, "00400", Some(B_ORDER_SF_ID)).await;
    // Even the unrestricted key (which speaks for Salesforce) cannot rebind it.
    let mut taken = order("ADMIN-1", "ACC-B");
    taken["salesforce_id"] = json!(B_ORDER_SF_ID);
    let taken = answer(app.submit(&taken, "admin-1").await).await;
    assert_refused(&taken, "salesforce_id", "an id bound to another order");
    let (_, still) = app.get_json(&format!("/v1/orders/{B_ORDER_SF_ID}")).await;
    assert_eq!(still["order_id"], "SF-00400");
    // A fresh id is the unrestricted key's to set.
    let mut fresh = order("ADMIN-2", "ACC-B");
    fresh["salesforce_id"] = json!("801000000000402AAA");
    let fresh = answer(app.submit(&fresh, "admin-2").await).await;
    assert_eq!(fresh.0, 202, "{}", fresh.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_key_cannot_write_to_another_accounts_case() {
    let app = TestApp::start().await;
    // Account B's order is delivered and has a return on Salesforce case 00077.
    app.submit(&order("B-RET", "ACC-B"), "b-ret").await;
    let b = "EXT-all-scopes-B-RET";
    // Account A's order, delivered too.
    app.submit(&order("A-RET", "ACC-A"), "a-ret").await;
    let a = "EXT-all-scopes-A-RET";
    for id in [b, a] {
        app.wait_for(&format!("/v1/orders/{id}/shipments"), |s| {
            s["shipments"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x["milestone"] == "delivered"))
        })
        .await;
    }
    let b_return = json!({ "order": b, "case_number": "00077", "case_id": B_CASE_SF_ID,
        "lines": [{ "line": 1, "quantity": 1 }], "reason": "damaged" });
    let response = app
        .send(
            "POST",
            "/v1/returns",
            &app.key.clone(),
            Some(&b_return),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let before = app
        .wait_for("/v1/returns/RMA-00077", |r| {
            r["status"] == "Closed" || r["status"] == "Refunded"
        })
        .await;

    let limited = limited_key(&app).await;
    let request = |body: Value| {
        let app = &app;
        let limited = limited.clone();
        async move {
            answer(
                app.send("POST", "/v1/returns", &limited, Some(&body), None)
                    .await,
            )
            .await
        }
    };
    let on_own = |extra: Value| {
        let mut body =
            json!({ "order": a, "lines": [{ "line": 1, "quantity": 1 }], "reason": "x" });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    // (c) Another account's case number or case id on a return of its own order.
    let foreign_number = request(on_own(json!({ "case_number": "00077" }))).await;
    assert_refused(
        &foreign_number,
        "case_number",
        "another account's case number",
    );
    let unknown_number = request(on_own(json!({ "case_number": "00999" }))).await;
    assert_eq!(
        foreign_number, unknown_number,
        "no tell whether the case exists"
    );
    let foreign_id = request(on_own(
        json!({ "return_id": "R-1", "case_id": B_CASE_SF_ID }),
    ))
    .await;
    assert_refused(&foreign_id, "case_id", "another account's case id");
    let unknown_id = request(on_own(
        json!({ "return_id": "R-1", "case_id": "500000000000999AAA" }),
    ))
    .await;
    assert_eq!(foreign_id, unknown_id, "no tell whether the case exists");
    // Nor on the other account's order (404, as for any order it may not see).
    let on_theirs = request(json!({ "order": b, "return_id": "R-2",
        "lines": [{ "line": 1, "quantity": 1 }], "reason": "x" }))
    .await;
    assert_eq!(on_theirs.0, 404, "{}", on_theirs.1);

    // B's case is untouched and A's order has no return.
    let after = app.get_json("/v1/returns/RMA-00077").await.1;
    for field in ["order_id", "case_number", "lines", "erp_rma"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(after["order_id"], b);
    let (_, a_order) = app.get_json(&format!("/v2/orders/{a}")).await;
    assert_eq!(a_order["returns"], json!([]), "{a_order}");

    // Its own return with its own id goes through.
    let own = request(on_own(json!({ "return_id": "R-3" }))).await;
    assert_eq!(own.0, 202, "{}", own.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_key_cannot_write_to_another_accounts_salesforce_account() {
    let app = TestApp::start().await;
    let put = |key: String, account: &'static str, sf_id: &'static str| {
        let app = &app;
        async move {
            let body = json!({ "name": "Name", "tier": "Gold", "currency": "USD", "salesforce_id": sf_id });
            answer(
                app.send(
                    "PUT",
                    &format!("/v1/accounts/{account}"),
                    &key,
                    Some(&body),
                    None,
                )
                .await,
            )
            .await
        }
    };
    let admin = app.key.clone();
    assert_eq!(put(admin.clone(), "ACC-B", B_ACCOUNT_SF_ID).await.0, 202);
    assert_eq!(
        put(admin.clone(), "ACC-A", "001000000000002AAA").await.0,
        202
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = app.store().account("ACC-A").await.expect("account");
        let b = app.store().account("ACC-B").await.expect("account");
        if a.is_some() && b.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "accounts never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let limited = limited_key(&app).await;
    let foreign = put(limited.clone(), "ACC-A", B_ACCOUNT_SF_ID).await;
    assert_refused(&foreign, "salesforce_id", "another account's Salesforce id");
    let unknown = put(limited.clone(), "ACC-A", "001000000000999AAA").await;
    assert_eq!(
        foreign, unknown,
        "no tell whether the Salesforce account exists"
    );
    let theirs = put(limited.clone(), "ACC-B", B_ACCOUNT_SF_ID).await;
    assert_eq!(theirs.0, 404, "{}", theirs.1);
    // Its own account, with the Salesforce id the hub holds for it, is accepted.
    let own = put(limited, "ACC-A", "001000000000002AAA").await;
    assert_eq!(own.0, 202, "{}", own.1);
    let b = app
        .store()
        .account("ACC-B")
        .await
        .expect("account")
        .expect("stored");
    assert_eq!(b.sf_id.as_deref(), Some(B_ACCOUNT_SF_ID));
}
