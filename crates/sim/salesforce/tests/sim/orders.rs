//! Order lifecycle rules, price books, cases and auto-numbers.

use serde_json::json;

use crate::Sim;

#[tokio::test]
async fn orders_follow_the_draft_activation_rules() {
    let sim = Sim::start().await;
    let pb = sim.standard_pricebook().await;
    let account = sim.create("Account", json!({"Name": "Initech"})).await;
    let (_, shirt) = sim.priced_product("Shirt", 19.99).await;
    let (_, shoe) = sim.priced_product("Shoe", 80.0).await;

    let activated = sim
        .post(
            "sobjects/Order",
            json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Activated"}),
        )
        .await;
    assert_eq!(activated.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));
    let no_date = sim
        .post(
            "sobjects/Order",
            json!({"AccountId": account, "Status": "Draft"}),
        )
        .await;
    assert_eq!(no_date.body[0]["fields"], json!(["EffectiveDate"]));
    let bad_status = sim
        .post(
            "sobjects/Order",
            json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Shipped"}),
        )
        .await;
    assert_eq!(
        bad_status.error_code(),
        Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    let bad_date = sim
        .post(
            "sobjects/Order",
            json!({"AccountId": account, "EffectiveDate": "26/11/2026", "Status": "Draft"}),
        )
        .await;
    assert_eq!(bad_date.error_code(), Some("JSON_PARSER_ERROR"));

    let order = sim
        .create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Pricebook2Id": pb, "Hub_Order_Id__c": "H-1"}))
        .await;
    let read = sim.get(&format!("sobjects/Order/{order}")).await.body;
    assert_eq!(read["OrderNumber"], json!("00000100"));
    assert_eq!(read["StatusCode"], json!("Draft"));
    assert_eq!(read["TotalAmount"], json!(0.0));
    assert_eq!(read["EffectiveDate"], json!("2026-11-26"));

    let empty = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"Status": "Activated"}),
        )
        .await;
    assert_eq!(empty.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));

    let line = sim
        .create(
            "OrderItem",
            json!({"OrderId": order, "PricebookEntryId": shirt, "Quantity": 3, "UnitPrice": 19.99}),
        )
        .await;
    sim.create(
        "OrderItem",
        json!({"OrderId": order, "PricebookEntryId": shoe, "Quantity": 1.5, "UnitPrice": 80}),
    )
    .await;
    let item = sim.get(&format!("sobjects/OrderItem/{line}")).await.body;
    assert_eq!(item["TotalPrice"], json!(59.97));
    assert_eq!(item["ListPrice"], json!(19.99));
    assert_eq!(item["OrderItemNumber"], json!("0000000001"));
    assert!(
        item["Product2Id"]
            .as_str()
            .is_some_and(|p| p.starts_with("01t"))
    );
    let total = sim.get(&format!("sobjects/Order/{order}")).await.body["TotalAmount"].clone();
    assert_eq!(total, json!(179.97));

    let reprice = sim
        .patch(
            &format!("sobjects/OrderItem/{line}"),
            json!({"Quantity": 2}),
        )
        .await;
    assert_eq!(reprice.status, 204);
    assert_eq!(
        sim.get(&format!("sobjects/Order/{order}")).await.body["TotalAmount"],
        json!(159.98)
    );

    let activate = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"Status": "Activated"}),
        )
        .await;
    assert_eq!(activate.status, 204, "{}", activate.text);
    let active = sim.get(&format!("sobjects/Order/{order}")).await.body;
    assert_eq!(active["StatusCode"], json!("Activated"));
    assert!(active["ActivatedDate"].is_string());

    let frozen = sim
        .post(
            "sobjects/OrderItem",
            json!({"OrderId": order, "PricebookEntryId": shirt, "Quantity": 1, "UnitPrice": 19.99}),
        )
        .await;
    assert_eq!(frozen.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));
    let change = sim
        .patch(
            &format!("sobjects/OrderItem/{line}"),
            json!({"Quantity": 9}),
        )
        .await;
    assert_eq!(change.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));
    let remove = sim.delete(&format!("sobjects/OrderItem/{line}")).await;
    assert_eq!(remove.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));
    let other = sim.create("Account", json!({"Name": "Other"})).await;
    let reassign = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"AccountId": other}),
        )
        .await;
    assert_eq!(reassign.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));
    let hub_fields = sim.patch(&format!("sobjects/Order/{order}"), json!({"ERP_Order_Number__c": "ERP-9", "Hub_Status__c": "Booked", "Amount_Invoiced__c": 10.5})).await;
    assert_eq!(
        hub_fields.status, 204,
        "hub fields stay writable on activated orders: {}",
        hub_fields.text
    );

    let reopen = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"Status": "Draft"}),
        )
        .await;
    assert_eq!(reopen.status, 204);
    assert_eq!(
        sim.delete(&format!("sobjects/OrderItem/{line}"))
            .await
            .status,
        204
    );
    assert_eq!(
        sim.get(&format!("sobjects/Order/{order}")).await.body["TotalAmount"],
        json!(120.0)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn price_book_entries_need_a_standard_price_and_the_orders_book() {
    let sim = Sim::start().await;
    let product = sim
        .create("Product2", json!({"Name": "Hat", "IsActive": true}))
        .await;
    let custom = sim
        .create("Pricebook2", json!({"Name": "B2B", "IsActive": true}))
        .await;
    let early = sim.post("sobjects/PricebookEntry", json!({"Pricebook2Id": custom, "Product2Id": product, "UnitPrice": 9, "IsActive": true})).await;
    assert_eq!(early.error_code(), Some("STANDARD_PRICE_NOT_DEFINED"));
    let standard = sim.standard_pricebook().await;
    let std_entry = sim.create("PricebookEntry", json!({"Pricebook2Id": standard, "Product2Id": product, "UnitPrice": 10, "IsActive": true})).await;
    let dup = sim
        .post(
            "sobjects/PricebookEntry",
            json!({"Pricebook2Id": standard, "Product2Id": product, "UnitPrice": 11}),
        )
        .await;
    assert_eq!(dup.error_code(), Some("DUPLICATE_VALUE"));
    let b2b_entry = sim.create("PricebookEntry", json!({"Pricebook2Id": custom, "Product2Id": product, "UnitPrice": 9, "IsActive": true})).await;
    assert_eq!(
        sim.get(&format!("sobjects/PricebookEntry/{b2b_entry}"))
            .await
            .body["Name"],
        json!("Hat")
    );

    let account = sim.create("Account", json!({"Name": "Hooli"})).await;
    let order = sim.create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Pricebook2Id": custom})).await;
    let wrong_book = sim.post("sobjects/OrderItem", json!({"OrderId": order, "PricebookEntryId": std_entry, "Quantity": 1, "UnitPrice": 10})).await;
    assert_eq!(wrong_book.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));
    sim.create(
        "OrderItem",
        json!({"OrderId": order, "PricebookEntryId": b2b_entry, "Quantity": 1, "UnitPrice": 9}),
    )
    .await;
    let switch = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"Pricebook2Id": standard}),
        )
        .await;
    assert_eq!(switch.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));
    let no_book = sim
        .create(
            "Order",
            json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft"}),
        )
        .await;
    let orphan = sim.post("sobjects/OrderItem", json!({"OrderId": no_book, "PricebookEntryId": b2b_entry, "Quantity": 1, "UnitPrice": 9})).await;
    assert_eq!(orphan.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));

    assert_eq!(
        sim.delete(&format!("sobjects/Order/{order}")).await.status,
        204
    );
    assert_eq!(
        sim.handle.state().count("OrderItem"),
        0,
        "deleting an order deletes its items"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn cases_number_themselves_and_derive_closed_state() {
    let sim = Sim::start().await;
    let case = sim.create("Case", json!({"Subject": "Broken zipper", "RMA_Number__c": "RMA-1", "Return_Lines__c": "SKU-1:2;SKU-7:1"})).await;
    let read = sim.get(&format!("sobjects/Case/{case}")).await.body;
    assert_eq!(
        (
            read["CaseNumber"].clone(),
            read["Status"].clone(),
            read["IsClosed"].clone(),
            read["Priority"].clone()
        ),
        (
            json!("00001000"),
            json!("New"),
            json!(false),
            json!("Medium")
        )
    );
    assert_eq!(
        sim.patch(
            &format!("sobjects/Case/{case}"),
            json!({"Status": "Closed", "Refund_Amount__c": 12.5})
        )
        .await
        .status,
        204
    );
    let closed = sim.get(&format!("sobjects/Case/{case}")).await.body;
    assert_eq!(closed["IsClosed"], json!(true));
    assert!(closed["ClosedDate"].is_string());
    sim.patch(
        &format!("sobjects/Case/{case}"),
        json!({"Status": "Working"}),
    )
    .await;
    let reopened = sim.get(&format!("sobjects/Case/{case}")).await.body;
    assert_eq!(
        (reopened["IsClosed"].clone(), reopened["ClosedDate"].clone()),
        (json!(false), json!(null))
    );
    let ro = sim
        .patch(&format!("sobjects/Case/{case}"), json!({"IsClosed": true}))
        .await;
    assert_eq!(ro.error_code(), Some("INVALID_FIELD_FOR_INSERT_UPDATE"));

    let fo = sim
        .create(
            "FulfillmentOrder",
            json!({"Hub_Key__c": "FO-1", "Status": "Fulfilled"}),
        )
        .await;
    let fo_read = sim
        .get(&format!("sobjects/FulfillmentOrder/{fo}"))
        .await
        .body;
    assert_eq!(fo_read["StatusCategory"], json!("Fulfilled"));
    assert!(
        fo_read["FulfillmentOrderNumber"]
            .as_str()
            .is_some_and(|n| n.starts_with("FO-"))
    );
    let level = sim
        .patch(
            "sobjects/Inventory_Level__c/Hub_Key__c/SKU-1@DC-1",
            json!({"Available__c": 4, "On_Hand__c": 6, "Location__c": "DC-1"}),
        )
        .await;
    assert_eq!(level.status, 201, "{}", level.text);
    assert!(
        level.body["id"]
            .as_str()
            .is_some_and(|i| i.starts_with("a0I"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn amounts_outside_the_decimal_range_are_refused_not_crashed_on() {
    let sim = Sim::start().await;
    let pb = sim.standard_pricebook().await;
    let account = sim.create("Account", json!({"Name": "Overflow"})).await;
    let (_, entry) = sim.priced_product("Huge", 1.0).await;
    let order = sim.create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Pricebook2Id": pb})).await;
    let r = sim.post("sobjects/OrderItem", json!({"OrderId": order, "PricebookEntryId": entry, "Quantity": 1e20, "UnitPrice": 1e20})).await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some("NUMBER_OUTSIDE_VALID_RANGE")),
        "{}",
        r.text
    );
    assert_eq!(sim.handle.state().count("OrderItem"), 0);
    let bad_latency = sim
        .admin(
            reqwest::Method::PUT,
            "faults",
            Some(json!({"latency_ms": u64::MAX})),
        )
        .await;
    assert_eq!(bad_latency.status, 400);
    assert_eq!(sim.get("limits").await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn activated_orders_keep_custom_item_fields_and_description_editable() {
    let sim = Sim::start().await;
    let pb = sim.standard_pricebook().await;
    let account = sim.create("Account", json!({"Name": "Shipping Co"})).await;
    let (_, boot) = sim.priced_product("Boot", 120.0).await;
    let (_, sock) = sim.priced_product("Sock", 5.0).await;
    let order = sim
        .create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Pricebook2Id": pb}))
        .await;
    let line = sim
        .create("OrderItem", json!({"OrderId": order, "PricebookEntryId": boot, "Quantity": 4, "UnitPrice": 120, "Hub_Line_Key__c": "H-9-1"}))
        .await;
    let activate = sim
        .patch(
            &format!("sobjects/Order/{order}"),
            json!({"Status": "Activated"}),
        )
        .await;
    assert_eq!(activate.status, 204, "{}", activate.text);
    let item_url = format!("sobjects/OrderItem/{line}");

    // Custom fields and Description stay editable (the "Edit Activated Orders" permission).
    let shipped = sim
        .patch(&item_url, json!({"Quantity_Shipped__c": 2, "Quantity_Backordered__c": 2, "Description": "Two boots to follow"}))
        .await;
    assert_eq!(shipped.status, 204, "{}", shipped.text);
    // Sending a structural field with its current value changes nothing, so it is accepted.
    let same = sim
        .patch(
            &item_url,
            json!({"Quantity": 4.0, "UnitPrice": 120, "Quantity_Delivered__c": 1}),
        )
        .await;
    assert_eq!(same.status, 204, "{}", same.text);
    // Upsert by the hub's line key and collections updates go through the same rule.
    let upsert = sim
        .patch(
            "sobjects/OrderItem/Hub_Line_Key__c/H-9-1",
            json!({"Quantity_Shipped__c": 3}),
        )
        .await;
    assert_eq!(
        (upsert.status, upsert.body["created"].clone()),
        (200, json!(false)),
        "{}",
        upsert.text
    );
    let batch = sim
        .patch(
            "composite/sobjects",
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "OrderItem"}, "id": line, "Quantity_Invoiced__c": 3},
                {"attributes": {"type": "OrderItem"}, "id": line, "Quantity": 5},
            ]}),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    assert_eq!(batch.body[0]["success"], json!(true), "{}", batch.text);
    assert_eq!(
        batch.body[1]["errors"][0]["statusCode"],
        json!("FIELD_INTEGRITY_EXCEPTION")
    );

    let item = sim.get(&item_url).await.body;
    assert_eq!(item["Quantity_Shipped__c"], json!(3.0));
    assert_eq!(item["Quantity_Backordered__c"], json!(2.0));
    assert_eq!(item["Quantity_Delivered__c"], json!(1.0));
    assert_eq!(item["Quantity_Invoiced__c"], json!(3.0));
    assert_eq!(item["Description"], json!("Two boots to follow"));
    assert_eq!(item["Quantity"], json!(4.0));

    // The structural fields stay frozen.
    for (body, field) in [
        (json!({"Quantity": 3}), "Quantity"),
        (
            json!({"UnitPrice": 99.5, "Quantity_Shipped__c": 4}),
            "UnitPrice",
        ),
    ] {
        let r = sim.patch(&item_url, body).await;
        assert_eq!(
            r.error_code(),
            Some("FIELD_INTEGRITY_EXCEPTION"),
            "{}",
            r.text
        );
        assert_eq!(r.body[0]["fields"], json!([field]));
    }
    let refs = sim
        .patch(&item_url, json!({"PricebookEntryId": sock}))
        .await;
    assert_eq!(refs.error_code(), Some("INVALID_FIELD_FOR_INSERT_UPDATE"));
    let added = sim
        .post(
            "sobjects/OrderItem",
            json!({"OrderId": order, "PricebookEntryId": sock, "Quantity": 1, "UnitPrice": 5}),
        )
        .await;
    assert_eq!(added.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));
    let removed = sim.delete(&item_url).await;
    assert_eq!(removed.error_code(), Some("FIELD_INTEGRITY_EXCEPTION"));

    // Nothing refused changed the item or the order's total.
    let item = sim.get(&item_url).await.body;
    assert_eq!(
        (
            item["Quantity"].clone(),
            item["UnitPrice"].clone(),
            item["Quantity_Shipped__c"].clone()
        ),
        (json!(4.0), json!(120.0), json!(3.0))
    );
    assert_eq!(
        sim.get(&format!("sobjects/Order/{order}")).await.body["TotalAmount"],
        json!(480.0)
    );
    sim.shutdown().await;
}
