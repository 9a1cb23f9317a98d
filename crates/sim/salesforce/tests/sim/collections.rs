//! sObject Collections and Composite: partial success, allOrNone rollback, references,
//! and one API call per request.

use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::Sim;

fn accounts(n: usize, prefix: &str) -> Vec<Json> {
    (0..n).map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("{prefix}{i}"), "ERP_Customer_Number__c": format!("{prefix}{i}")})).collect()
}

#[tokio::test]
async fn collections_create_update_upsert_retrieve_and_delete() {
    let sim = Sim::start().await;
    let mut records = accounts(3, "A");
    records.push(json!({"attributes": {"type": "Account"}, "Phone": "no name"}));
    let used_before = sim.handle.state().api_usage().0;
    let created = sim
        .post(
            "composite/sobjects",
            json!({"allOrNone": false, "records": records}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(
        sim.handle.state().api_usage().0,
        used_before + 1,
        "a collections call counts once"
    );
    let results = created.body.as_array().expect("array");
    assert_eq!(results.len(), 4);
    assert!(
        results[..3]
            .iter()
            .all(|r| r["success"] == json!(true) && r["id"].is_string())
    );
    assert_eq!(results[3]["success"], json!(false));
    assert_eq!(
        results[3]["errors"][0]["statusCode"],
        json!("REQUIRED_FIELD_MISSING")
    );
    assert_eq!(results[3]["errors"][0]["fields"], json!(["Name"]));
    assert_eq!(sim.handle.state().count("Account"), 3);
    let ids: Vec<String> = results[..3]
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();

    let mut all_or_none = accounts(2, "B");
    all_or_none.push(
        json!({"attributes": {"type": "Account"}, "Name": "dup", "ERP_Customer_Number__c": "A0"}),
    );
    let rolled = sim
        .post(
            "composite/sobjects",
            json!({"allOrNone": true, "records": all_or_none}),
        )
        .await;
    let rr = rolled.body.as_array().expect("array");
    assert_eq!(
        rr[0]["errors"][0]["statusCode"],
        json!("ALL_OR_NONE_OPERATION_ROLLED_BACK")
    );
    assert_eq!(rr[0]["id"], json!(null));
    assert_eq!(rr[2]["errors"][0]["statusCode"], json!("DUPLICATE_VALUE"));
    assert_eq!(sim.handle.state().count("Account"), 3, "nothing committed");

    let updates: Vec<Json> = ids
        .iter()
        .map(|id| json!({"attributes": {"type": "Account"}, "id": id, "Phone": "555"}))
        .collect();
    let updated = sim
        .patch("composite/sobjects", json!({"records": updates}))
        .await;
    assert!(
        updated
            .body
            .as_array()
            .is_some_and(|a| a.iter().all(|r| r["success"] == json!(true))),
        "{}",
        updated.text
    );
    assert_eq!(
        sim.handle
            .state()
            .record(&ids[1])
            .map(|r| r["Phone"].clone()),
        Some(json!("555"))
    );

    let upserts = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "ERP_Customer_Number__c": "A0", "Name": "A0 renamed"},
        {"attributes": {"type": "Account"}, "ERP_Customer_Number__c": "NEW-1", "Name": "New"}
    ]});
    let upserted = sim
        .patch("composite/sobjects/Account/ERP_Customer_Number__c", upserts)
        .await;
    assert_eq!(
        upserted.body[0]["created"],
        json!(false),
        "{}",
        upserted.text
    );
    assert_eq!(upserted.body[0]["id"], json!(ids[0]));
    assert_eq!(upserted.body[1]["created"], json!(true));

    let got = sim
        .get(&format!(
            "composite/sobjects/Account?ids={},{},001Dd0000000999AAA&fields=Name,Phone",
            ids[0], ids[1]
        ))
        .await;
    assert_eq!(got.body[0]["Name"], json!("A0 renamed"));
    assert_eq!(got.body[1]["Phone"], json!("555"));
    assert_eq!(got.body[2], json!(null));
    let posted = sim
        .post(
            "composite/sobjects/Account",
            json!({"ids": [ids[2]], "fields": ["Name"]}),
        )
        .await;
    assert_eq!(posted.body[0]["Name"], json!("A2"));

    let deleted = sim
        .call(
            Method::DELETE,
            &sim.data(&format!(
                "composite/sobjects?ids={},{}&allOrNone=false",
                ids[0], ids[0]
            )),
            None,
        )
        .await;
    assert_eq!(deleted.body[0]["success"], json!(true));
    assert_eq!(
        deleted.body[1]["errors"][0]["statusCode"],
        json!("ENTITY_IS_DELETED")
    );

    let too_many = sim
        .post("composite/sobjects", json!({"records": accounts(201, "X")}))
        .await;
    assert_eq!(
        (too_many.status, too_many.error_code()),
        (400, Some("EXCEEDED_ID_LIMIT"))
    );
    let bad_json = sim
        .send(
            sim.http
                .post(sim.data("composite/sobjects"))
                .bearer_auth(&sim.token)
                .body("{records: ["),
        )
        .await;
    assert_eq!(bad_json.error_code(), Some("JSON_PARSER_ERROR"));
    sim.shutdown().await;
}

#[tokio::test]
async fn composite_resolves_references_and_rolls_back_all_or_none() {
    let sim = Sim::start().await;
    let pb = sim.standard_pricebook().await;
    let (_, entry) = sim.priced_product("Sock", 5.0).await;
    let v = "/services/data/v60.0";
    let request = json!({"allOrNone": true, "compositeRequest": [
        {"method": "POST", "url": format!("{v}/sobjects/Account"), "referenceId": "acct", "body": {"Name": "Composite Co"}},
        {"method": "POST", "url": format!("{v}/sobjects/Order"), "referenceId": "ord",
         "body": {"AccountId": "@{acct.id}", "EffectiveDate": "2026-11-26", "Status": "Draft", "Pricebook2Id": pb}},
        {"method": "POST", "url": format!("{v}/sobjects/OrderItem"), "referenceId": "line",
         "body": {"OrderId": "@{ord.id}", "PricebookEntryId": entry, "Quantity": 4, "UnitPrice": 5}},
        {"method": "GET", "url": format!("{v}/query?q=SELECT+Id,TotalAmount+FROM+Order+WHERE+Id='@{{ord.id}}'"), "referenceId": "q"},
        {"method": "PATCH", "url": format!("{v}/sobjects/Order/@{{q.records[0].Id}}"), "referenceId": "act", "body": {"Status": "Activated"}}
    ]});
    let used_before = sim.handle.state().api_usage().0;
    let r = sim.post("composite", request).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(sim.handle.state().api_usage().0, used_before + 1);
    let out = r.body["compositeResponse"].as_array().expect("responses");
    let statuses: Vec<i64> = out
        .iter()
        .filter_map(|e| e["httpStatusCode"].as_i64())
        .collect();
    assert_eq!(
        statuses,
        vec![201, 201, 201, 200, 204],
        "{}",
        r.text.replace("PROCESSING_HALTED", "P")
    );
    assert_eq!(out[3]["body"]["records"][0]["TotalAmount"], json!(20.0));
    assert!(
        out[1]["httpHeaders"]["Location"]
            .as_str()
            .is_some_and(|l| l.contains("/sobjects/Order/801"))
    );
    let order_id = out[1]["body"]["id"].as_str().expect("order id");
    assert_eq!(
        sim.handle
            .state()
            .record(order_id)
            .map(|o| o["Status"].clone()),
        Some(json!("Activated"))
    );

    let failing = json!({"allOrNone": true, "compositeRequest": [
        {"method": "POST", "url": format!("{v}/sobjects/Account"), "referenceId": "ok", "body": {"Name": "Rolled back"}},
        {"method": "POST", "url": format!("{v}/sobjects/Account"), "referenceId": "bad", "body": {"Phone": "no name"}},
        {"method": "POST", "url": format!("{v}/sobjects/Contact"), "referenceId": "after", "body": {"LastName": "x", "AccountId": "@{ok.id}"}}
    ]});
    let before = sim.handle.state().count("Account");
    let r = sim.post("composite", failing).await;
    let out = r.body["compositeResponse"].as_array().expect("responses");
    assert_eq!(out[0]["body"][0]["errorCode"], json!("PROCESSING_HALTED"));
    assert_eq!(
        out[1]["body"][0]["errorCode"],
        json!("REQUIRED_FIELD_MISSING")
    );
    assert_eq!(out[2]["body"][0]["errorCode"], json!("PROCESSING_HALTED"));
    assert_eq!(sim.handle.state().count("Account"), before, "rolled back");

    let partial = json!({"allOrNone": false, "compositeRequest": [
        {"method": "POST", "url": format!("{v}/sobjects/Account"), "referenceId": "bad", "body": {"Phone": "x"}},
        {"method": "POST", "url": format!("{v}/sobjects/Contact"), "referenceId": "dep", "body": {"LastName": "x", "AccountId": "@{bad.id}"}},
        {"method": "POST", "url": format!("{v}/sobjects/Account"), "referenceId": "fine", "body": {"Name": "Kept"}}
    ]});
    let r = sim.post("composite", partial).await;
    let out = r.body["compositeResponse"].as_array().expect("responses");
    assert_eq!(out[1]["body"][0]["errorCode"], json!("PROCESSING_HALTED"));
    assert_eq!(out[2]["httpStatusCode"], json!(201));
    assert_eq!(sim.handle.state().count("Account"), before + 1);

    let too_many: Vec<Json> = (0..26).map(|i| json!({"method": "GET", "url": format!("{v}/limits"), "referenceId": format!("r{i}")})).collect();
    let r = sim
        .post("composite", json!({"compositeRequest": too_many}))
        .await;
    assert_eq!(r.status, 400);
    sim.shutdown().await;
}
