//! Discovery, describe, single-record CRUD, upsert by external id and their errors.

use reqwest::Method;
use serde_json::json;

use crate::{Sim, V};

#[tokio::test]
async fn discovery_lists_versions_resources_and_limits() {
    let sim = Sim::start().await;
    let versions = sim.send(sim.http.get(sim.url("/services/data"))).await;
    assert_eq!(versions.status, 200);
    let list = versions.body.as_array().expect("array");
    assert_eq!(
        list.first().map(|v| v["version"].clone()),
        Some(json!("31.0"))
    );
    assert_eq!(
        list.last().map(|v| v["version"].clone()),
        Some(json!("65.0"))
    );
    assert_eq!(
        list.last().map(|v| v["label"].clone()),
        Some(json!("Winter '26"))
    );
    let with_slash = sim.send(sim.http.get(sim.url("/services/data/"))).await;
    assert_eq!(with_slash.body, versions.body);

    let root = sim.get("").await;
    assert_eq!(root.status, 200);
    let identity = root.body["identity"].as_str().expect("identity");
    assert!(
        identity.starts_with(&format!(
            "{}/id/{}/",
            sim.handle.base_url(),
            sim.handle.org_id()
        )),
        "{identity}"
    );
    assert_eq!(
        root.body["query"],
        json!(format!("/services/data/{V}/query"))
    );
    assert_eq!(root.header("sforce-limit-info"), Some("api-usage=1/15000"));

    let limits = sim.get("limits/").await;
    assert_eq!(
        limits.body["DailyApiRequests"],
        json!({"Max": 15000, "Remaining": 14998})
    );
    assert_eq!(
        limits.header("sforce-limit-info"),
        Some("api-usage=2/15000")
    );

    let unknown_version = sim
        .call(Method::GET, &sim.url("/services/data/v99.0/limits"), None)
        .await;
    assert_eq!(unknown_version.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn describe_declares_the_hub_fields_and_key_prefixes() {
    let sim = Sim::start().await;
    let list = sim.get("sobjects").await;
    let objects = list.body["sobjects"].as_array().expect("sobjects");
    let prefix = |name: &str| {
        objects
            .iter()
            .find(|o| o["name"] == name)
            .map(|o| o["keyPrefix"].clone())
    };
    assert_eq!(prefix("Account"), Some(json!("001")));
    assert_eq!(prefix("Order"), Some(json!("801")));
    assert_eq!(prefix("OrderItem"), Some(json!("802")));
    assert!(prefix("FulfillmentOrder").is_some() && prefix("Inventory_Level__c").is_some());

    let order = sim.get("sobjects/Order/describe").await;
    let fields = order.body["fields"].as_array().expect("fields");
    let field = |n: &str| {
        fields
            .iter()
            .find(|f| f["name"] == n)
            .cloned()
            .unwrap_or_default()
    };
    let hub = field("Hub_Order_Id__c");
    assert_eq!(
        (
            hub["externalId"].clone(),
            hub["unique"].clone(),
            hub["type"].clone()
        ),
        (json!(true), json!(true), json!("string"))
    );
    assert_eq!(field("Amount_Paid__c")["type"], json!("currency"));
    assert_eq!(field("Hub_Synced_At__c")["type"], json!("datetime"));
    assert_eq!(field("TotalAmount")["updateable"], json!(false));
    assert_eq!(field("AccountId")["referenceTo"], json!(["Account"]));
    assert_eq!(field("AccountId")["relationshipName"], json!("Account"));
    for key in [
        "name",
        "label",
        "type",
        "soapType",
        "length",
        "precision",
        "scale",
        "nillable",
        "createable",
        "updateable",
        "defaultedOnCreate",
        "calculated",
        "unique",
        "externalId",
        "idLookup",
        "referenceTo",
        "relationshipName",
        "picklistValues",
    ] {
        assert!(hub.get(key).is_some(), "field describe has {key}");
    }
    let tier = sim.get("sobjects/Account/describe").await.body["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "Customer_Tier__c").cloned())
        .unwrap_or_default();
    assert_eq!(tier["picklistValues"].as_array().map(Vec::len), Some(3));
    let item = sim.get("sobjects/OrderItem").await;
    assert_eq!(item.body["objectDescribe"]["keyPrefix"], json!("802"));
    assert_eq!(sim.get("sobjects/Nope/describe").await.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn records_are_created_read_updated_and_deleted() {
    let sim = Sim::start().await;
    let created = sim
        .post(
            "sobjects/Account/",
            json!({"name": "Acme", "Customer_Tier__c": "Gold", "Credit_Limit__c": 5000.5}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["success"], json!(true));
    assert_eq!(created.body["errors"], json!([]));
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("001"));
    assert!(created.header("location").is_some_and(|l| l.ends_with(&id)));

    let read = sim.get(&format!("sobjects/Account/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.body["attributes"],
        json!({"type": "Account", "url": format!("/services/data/{V}/sobjects/Account/{id}")})
    );
    assert_eq!(read.body["Name"], json!("Acme"));
    assert_eq!(read.body["Credit_Limit__c"], json!(5000.5));
    assert_eq!(read.body["Phone"], json!(null));
    let created_date = read.body["CreatedDate"].as_str().expect("CreatedDate");
    assert!(
        created_date.ends_with(".000+0000") || created_date.len() == 28,
        "{created_date}"
    );
    assert_eq!(read.body["OwnerId"], json!(sim.handle.user_id()));

    let partial = sim
        .get(&format!(
            "sobjects/Account/{}?fields=Name,Customer_Tier__c",
            &id[..15]
        ))
        .await;
    assert_eq!(partial.status, 200);
    assert_eq!(partial.body.as_object().map(|o| o.len()), Some(3));

    let updated = sim
        .patch(
            &format!("sobjects/Account/{id}"),
            json!({"Phone": "555-0100", "Customer_Tier__c": "Silver"}),
        )
        .await;
    assert_eq!(updated.status, 204);
    assert_eq!(
        sim.handle.state().record(&id).map(|r| r["Phone"].clone()),
        Some(json!("555-0100"))
    );

    assert_eq!(
        sim.delete(&format!("sobjects/Account/{id}")).await.status,
        204
    );
    let again = sim.delete(&format!("sobjects/Account/{id}")).await;
    assert_eq!(
        (again.status, again.error_code()),
        (404, Some("ENTITY_IS_DELETED"))
    );
    let upd = sim
        .patch(&format!("sobjects/Account/{id}"), json!({"Phone": "1"}))
        .await;
    assert_eq!(
        (upd.status, upd.error_code()),
        (404, Some("ENTITY_IS_DELETED"))
    );
    let missing = sim.get("sobjects/Account/001Dd0000099999AAA").await;
    assert_eq!(missing.error_code(), Some("NOT_FOUND"));
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_the_documented_error_codes() {
    let sim = Sim::start().await;
    let cases = [
        (json!({"Name": "x", "Nope__c": 1}), "INVALID_FIELD"),
        (
            json!({"Name": "x", "CreatedDate": "2026-01-01T00:00:00Z"}),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (json!({"Phone": "1"}), "REQUIRED_FIELD_MISSING"),
        (
            json!({"Name": "x", "Credit_Limit__c": true}),
            "JSON_PARSER_ERROR",
        ),
        (
            json!({"Name": "x", "Credit_Limit__c": "lots"}),
            "JSON_PARSER_ERROR",
        ),
        (
            json!({"Name": "x", "Customer_Tier__c": "Platinum"}),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        (
            json!({"Name": "x", "ParentId": "not-an-id"}),
            "MALFORMED_ID",
        ),
        (
            json!({"Name": "x", "ParentId": "003Dd0000000001AAA"}),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        (
            json!({"Name": "x", "ParentId": "001Dd0000000999AAA"}),
            "INVALID_CROSS_REFERENCE_KEY",
        ),
        (
            json!({"Name": "x", "AccountNumber": "x".repeat(41)}),
            "STRING_TOO_LONG",
        ),
        (json!(["not", "an", "object"]), "JSON_PARSER_ERROR"),
    ];
    for (body, code) in cases {
        let r = sim.post("sobjects/Account", body.clone()).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, Some(code)),
            "{body} → {}",
            r.text
        );
        assert!(r.body[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let missing = sim.post("sobjects/Account", json!({"Phone": "1"})).await;
    assert_eq!(missing.body[0]["fields"], json!(["Name"]));
    assert_eq!(
        missing.body[0]["message"],
        json!("Required fields are missing: [Name]")
    );

    let malformed = sim
        .send(
            sim.http
                .post(sim.data("sobjects/Account"))
                .bearer_auth(&sim.token)
                .header("content-type", "application/json")
                .body("{\"Name\": "),
        )
        .await;
    assert_eq!(
        (malformed.status, malformed.error_code()),
        (400, Some("JSON_PARSER_ERROR"))
    );
    let wrong_type = sim
        .send(
            sim.http
                .post(sim.data("sobjects/Account"))
                .bearer_auth(&sim.token)
                .header("content-type", "application/json")
                .body("{\"Name\": \"x\",\n \"Credit_Limit__c\": \"lots\"}"),
        )
        .await;
    assert_eq!(
        wrong_type.body[0]["message"],
        json!(
            "Cannot deserialize instance of currency from VALUE_STRING value lots or request may be missing a required field at [line:2, column:27]"
        ),
        "{}",
        wrong_type.text
    );
    let flag = sim
        .patch(
            "sobjects/Account/001Dd0000000001AAA",
            json!({"Credit_Limit__c": [1]}),
        )
        .await;
    assert_eq!(
        flag.status, 404,
        "an unknown id is looked up before the body"
    );
    let a_id = sim.create("Account", json!({"Name": "T"})).await;
    let bad_update = sim
        .patch(
            &format!("sobjects/Account/{a_id}"),
            json!({"Credit_Limit__c": false}),
        )
        .await;
    assert_eq!(
        (bad_update.status, bad_update.error_code()),
        (400, Some("JSON_PARSER_ERROR")),
        "{}",
        bad_update.text
    );
    assert!(
        bad_update.body[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("from VALUE_FALSE value false")),
        "{}",
        bad_update.text
    );
    let event = sim
        .post(
            "sobjects/Order_Shipped__e",
            json!({"Order_Number__c": "E-1", "Shipped_At__c": true}),
        )
        .await;
    assert_eq!(
        (event.status, event.body[0]["message"].clone()),
        (
            400,
            json!(
                "Cannot deserialize instance of datetime from VALUE_TRUE value true or request may be missing a required field at [line:1, column:46]"
            )
        ),
        "{}",
        event.text
    );
    for path in [
        "sobjects/Account/xyz",
        "sobjects/Contact/001Dd0000000001AAA",
        "sobjects/Account/001Dd00000000!!AAA",
    ] {
        let bad_id = sim.get(path).await;
        assert_eq!(
            (bad_id.status, bad_id.error_code()),
            (404, Some("NOT_FOUND")),
            "{path}: {}",
            bad_id.text
        );
        assert_eq!(
            bad_id.body[0]["message"],
            json!("The requested resource does not exist")
        );
        let r = sim.patch(path, json!({"Phone": "1"})).await;
        assert_eq!(
            (r.status, r.error_code()),
            (404, Some("NOT_FOUND")),
            "{path}"
        );
        let r = sim.delete(path).await;
        assert_eq!(
            (r.status, r.error_code()),
            (404, Some("NOT_FOUND")),
            "{path}"
        );
    }

    let a = sim
        .create(
            "Account",
            json!({"Name": "A", "ERP_Customer_Number__c": "C-1"}),
        )
        .await;
    let dup = sim
        .post(
            "sobjects/Account",
            json!({"Name": "B", "ERP_Customer_Number__c": "c-1"}),
        )
        .await;
    assert_eq!(dup.error_code(), Some("DUPLICATE_VALUE"));
    assert!(
        dup.body[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&a)),
        "{}",
        dup.text
    );

    let no_auth = sim.send(sim.http.get(sim.data("limits"))).await;
    assert_eq!(no_auth.status, 401);
    assert_eq!(
        no_auth.body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    let bad_token = sim
        .send(
            sim.http
                .get(sim.data("limits"))
                .bearer_auth("00D000000000000!nope"),
        )
        .await;
    assert_eq!(bad_token.error_code(), Some("INVALID_SESSION_ID"));
    let unknown = sim.get("nothing/here").await;
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (404, Some("NOT_FOUND"))
    );
    let wrong_method = sim
        .call(
            Method::PUT,
            &sim.data("sobjects/Account/001Dd0000000001AAA"),
            Some(json!({})),
        )
        .await;
    assert_eq!(wrong_method.status, 405);
    sim.shutdown().await;
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let sim = Sim::start().await;
    let first = sim
        .patch(
            "sobjects/Account/ERP_Customer_Number__c/C-42",
            json!({"Name": "Globex"}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["created"], json!(true));
    let id = first.body["id"].as_str().expect("id").to_string();
    let second = sim
        .patch(
            "sobjects/Account/ERP_Customer_Number__c/C-42",
            json!({"Name": "Globex Corp"}),
        )
        .await;
    assert_eq!(
        (
            second.status,
            second.body["created"].clone(),
            second.body["id"].clone()
        ),
        (200, json!(false), json!(id))
    );
    let old = sim
        .call(
            Method::PATCH,
            &sim.url("/services/data/v40.0/sobjects/Account/ERP_Customer_Number__c/C-42"),
            Some(json!({"Phone": "1"})),
        )
        .await;
    assert_eq!(old.status, 204);
    let by_ext = sim
        .get("sobjects/Account/ERP_Customer_Number__c/C-42")
        .await;
    assert_eq!(
        (by_ext.body["Name"].clone(), by_ext.body["Phone"].clone()),
        (json!("Globex Corp"), json!("1"))
    );
    assert_eq!(sim.handle.state().count("Account"), 1);

    let encoded = sim
        .patch(
            "sobjects/Order/Hub_Order_Id__c/ORD%2F1",
            json!({"Name": "x"}),
        )
        .await;
    assert_eq!(
        encoded.error_code(),
        Some("INVALID_FIELD"),
        "{}",
        encoded.text
    );
    let unknown_field = sim
        .patch("sobjects/Account/Name/x", json!({"Phone": "1"}))
        .await;
    assert_eq!(
        (unknown_field.status, unknown_field.error_code()),
        (404, Some("NOT_FOUND"))
    );
    let mismatch = sim
        .patch(
            "sobjects/Account/ERP_Customer_Number__c/C-42",
            json!({"ERP_Customer_Number__c": "C-43"}),
        )
        .await;
    assert_eq!(mismatch.status, 400);

    for n in 0..2 {
        sim.create(
            "Product2",
            json!({"Name": format!("P{n}"), "ExternalId": "SHARED"}),
        )
        .await;
    }
    let several = sim
        .patch(
            "sobjects/Product2/ExternalId/SHARED",
            json!({"Family": "Other"}),
        )
        .await;
    assert_eq!(several.status, 300);
    assert_eq!(several.body.as_array().map(Vec::len), Some(2));
    assert!(
        several.body[0]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("/services/data/{V}/sobjects/Product2/01t")))
    );
    let read_several = sim.get("sobjects/Product2/ExternalId/SHARED").await;
    assert_eq!(read_several.status, 300);
    let update_only = sim
        .call(
            Method::PATCH,
            &sim.data("sobjects/Account/ERP_Customer_Number__c/NEW?updateOnly=true"),
            Some(json!({"Name": "n"})),
        )
        .await;
    assert_eq!(update_only.status, 404);
    sim.shutdown().await;
}
