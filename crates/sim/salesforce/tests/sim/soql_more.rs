//! SOQL that real orgs accept: relative date literals, aggregates with GROUP BY / HAVING,
//! child relationship subqueries, FIELDS(), and `limits/recordCount`.

use serde_json::{Value as Json, json};

use crate::{Resp, Sim, q};

async fn query(sim: &Sim, soql: &str) -> Resp {
    sim.get(&format!("query?q={}", q(soql))).await
}

async fn ok(sim: &Sim, soql: &str) -> Json {
    let r = query(sim, soql).await;
    assert_eq!(r.status, 200, "{soql}: {}", r.text);
    r.body
}

async fn refused(sim: &Sim, soql: &str) -> (String, String) {
    let r = query(sim, soql).await;
    assert_eq!(r.status, 400, "{soql}: {}", r.text);
    (
        r.error_code().unwrap_or_default().to_string(),
        r.body[0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn names(body: &Json, field: &str) -> Vec<String> {
    let mut v: Vec<String> = body["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r[field].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn shift(date: time::Date, days: i64) -> String {
    let d = date + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[tokio::test]
async fn relative_date_literals_cover_salesforce_ranges_on_dates_and_datetimes() {
    let sim = Sim::start().await;
    let account = sim.create("Account", json!({"Name": "Dates"})).await;
    let created = sim.get(&format!("sobjects/Account/{account}")).await.body["CreatedDate"]
        .as_str()
        .expect("CreatedDate")
        .to_string();
    let part = |r: std::ops::Range<usize>| created[r].parse::<u8>().expect("number");
    let today = time::Date::from_calendar_date(
        created[..4].parse().expect("year"),
        time::Month::try_from(part(5..7)).expect("month"),
        part(8..10),
    )
    .expect("date");
    let pb = sim.standard_pricebook().await;
    for (label, days) in [
        ("d-8", -8),
        ("d-7", -7),
        ("d-1", -1),
        ("d0", 0),
        ("d1", 1),
        ("d3", 3),
        ("d4", 4),
        ("d40", 40),
        ("d-40", -40),
    ] {
        sim.create(
            "Order",
            json!({"AccountId": account, "EffectiveDate": shift(today, days), "Status": "Draft",
                   "Pricebook2Id": pb, "Hub_Order_Id__c": label}),
        )
        .await;
    }
    let hub = |soql: &str| format!("SELECT Hub_Order_Id__c FROM Order WHERE {soql}");
    let cases: [(&str, &[&str]); 8] = [
        ("EffectiveDate = TODAY", &["d0"]),
        ("EffectiveDate = YESTERDAY", &["d-1"]),
        ("EffectiveDate = TOMORROW", &["d1"]),
        ("EffectiveDate = LAST_N_DAYS:7", &["d-1", "d-7", "d0"]),
        ("EffectiveDate = NEXT_N_DAYS:3", &["d1", "d3"]),
        (
            "EffectiveDate > TODAY AND EffectiveDate < NEXT_N_DAYS:3",
            &[],
        ),
        ("EffectiveDate = N_DAYS_AGO:8", &["d-8"]),
        (
            "EffectiveDate != LAST_N_DAYS:40 AND EffectiveDate < TODAY",
            &[],
        ),
    ];
    for (cond, expected) in cases {
        let body = ok(&sim, &hub(cond)).await;
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(names(&body, "Hub_Order_Id__c"), want, "{cond}");
    }
    let later = ok(&sim, &hub("EffectiveDate > NEXT_N_DAYS:3")).await;
    assert_eq!(names(&later, "Hub_Order_Id__c"), ["d4", "d40"]);
    let before = ok(&sim, &hub("EffectiveDate < LAST_N_DAYS:7")).await;
    assert_eq!(names(&before, "Hub_Order_Id__c"), ["d-40", "d-8"]);
    let this_month = ok(&sim, &hub("EffectiveDate = THIS_MONTH")).await;
    let month_of = |days: i64| (today + time::Duration::days(days)).month();
    let mut want: Vec<String> = [-8, -7, -1, 0, 1, 3, 4, 40, -40]
        .iter()
        .filter(|d| month_of(**d) == today.month())
        .map(|d| format!("d{d}"))
        .collect();
    want.sort();
    assert_eq!(names(&this_month, "Hub_Order_Id__c"), want);
    // Datetime fields: every record was created today (UTC).
    let dt = ok(&sim, "SELECT Id FROM Order WHERE CreatedDate = TODAY").await;
    assert_eq!(dt["totalSize"], json!(9));
    let dt = ok(
        &sim,
        "SELECT Id FROM Order WHERE CreatedDate < TODAY OR CreatedDate = LAST_MONTH",
    )
    .await;
    assert_eq!(dt["totalSize"], json!(0));
    let dt = ok(
        &sim,
        "SELECT Id FROM Order WHERE CreatedDate = THIS_YEAR AND CreatedDate >= LAST_N_WEEKS:2",
    )
    .await;
    assert_eq!(dt["totalSize"], json!(9));
    let (code, _) = refused(&sim, "SELECT Id FROM Order WHERE Status = TODAY").await;
    assert_eq!(code, "INVALID_FIELD");
    let (code, _) = refused(
        &sim,
        "SELECT Id FROM Order WHERE EffectiveDate = LAST_N_DAYS",
    )
    .await;
    assert_eq!(code, "MALFORMED_QUERY");
    let (code, _) = refused(&sim, "SELECT Id FROM Order WHERE EffectiveDate = TODAY:3").await;
    assert_eq!(code, "MALFORMED_QUERY");
    for n in ["99999999", "99999999999999999999999"] {
        let soql = format!("SELECT Id FROM Order WHERE EffectiveDate = LAST_N_DAYS:{n}");
        let (code, _) = refused(&sim, &soql).await;
        assert_eq!(code, "MALFORMED_QUERY", "{soql}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn aggregates_group_by_and_having_return_aggregate_results() {
    let sim = Sim::start().await;
    for (name, tier, limit) in [
        ("A", "Gold", Some(100.5)),
        ("B", "Gold", Some(50.0)),
        ("C", "Silver", Some(10.0)),
        ("D", "Silver", None),
        ("E", "Bronze", Some(1.0)),
    ] {
        sim.create(
            "Account",
            json!({"Name": name, "Customer_Tier__c": tier, "Credit_Limit__c": limit}),
        )
        .await;
    }
    let body = ok(
        &sim,
        "SELECT Customer_Tier__c, COUNT(Id), SUM(Credit_Limit__c) total, MAX(Credit_Limit__c), MIN(Name), COUNT(Credit_Limit__c) FROM Account GROUP BY Customer_Tier__c HAVING COUNT(Id) > 1 ORDER BY Customer_Tier__c",
    )
    .await;
    assert_eq!(body["totalSize"], json!(2), "{body}");
    assert_eq!(
        body["records"],
        json!([
            {"attributes": {"type": "AggregateResult"}, "Customer_Tier__c": "Gold", "expr0": 2, "total": 150.5, "expr1": 100.5, "expr2": "A", "expr3": 2},
            {"attributes": {"type": "AggregateResult"}, "Customer_Tier__c": "Silver", "expr0": 2, "total": 10.0, "expr1": 10.0, "expr2": "C", "expr3": 1},
        ])
    );
    let all = ok(
        &sim,
        "SELECT COUNT(Id) n, AVG(Credit_Limit__c), COUNT_DISTINCT(Customer_Tier__c) FROM Account",
    )
    .await;
    assert_eq!(all["records"][0]["n"], json!(5));
    assert_eq!(all["records"][0]["expr0"], json!(40.375));
    assert_eq!(all["records"][0]["expr1"], json!(3));
    let none = ok(
        &sim,
        "SELECT COUNT(Id), SUM(Credit_Limit__c) FROM Account WHERE Name = 'zzz'",
    )
    .await;
    assert_eq!(
        none["records"],
        json!([{"attributes": {"type": "AggregateResult"}, "expr0": 0, "expr1": null}])
    );
    let ordered = ok(&sim, "SELECT Customer_Tier__c tier, COUNT(Id) c FROM Account GROUP BY Customer_Tier__c ORDER BY COUNT(Id) DESC, Customer_Tier__c LIMIT 2").await;
    assert_eq!(
        ordered["records"]
            .as_array()
            .map(|a| a.iter().map(|r| r["tier"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("Gold"), json!("Silver")])
    );
    let distinct = ok(
        &sim,
        "SELECT Customer_Tier__c FROM Account GROUP BY Customer_Tier__c",
    )
    .await;
    assert_eq!(distinct["totalSize"], json!(3));
    let cols = sim
        .get(&format!(
            "query?columns=true&q={}",
            q("SELECT Customer_Tier__c, COUNT(Id) FROM Account GROUP BY Customer_Tier__c")
        ))
        .await;
    assert_eq!(cols.body["groupBy"], json!(true));
    assert_eq!(cols.body["columnMetadata"][1]["columnName"], json!("expr0"));
    assert_eq!(cols.body["columnMetadata"][1]["aggregate"], json!(true));

    for (soql, code, text) in [
        (
            "SELECT Name, COUNT(Id) FROM Account",
            "MALFORMED_QUERY",
            "must be grouped or aggregated",
        ),
        (
            "SELECT SUM(Name) FROM Account",
            "MALFORMED_QUERY",
            "does not support aggregate operator SUM",
        ),
        (
            "SELECT Id FROM Account WHERE COUNT(Id) > 1",
            "MALFORMED_QUERY",
            "HAVING",
        ),
        (
            "SELECT COUNT(), Name FROM Account",
            "MALFORMED_QUERY",
            "COUNT() must be the only element",
        ),
        (
            "SELECT Customer_Tier__c FROM Account GROUP BY Customer_Tier__c HAVING Name = 'A'",
            "MALFORMED_QUERY",
            "must be grouped or aggregated",
        ),
        (
            "SELECT COUNT(Nope__c) FROM Account",
            "INVALID_FIELD",
            "No such column 'Nope__c'",
        ),
    ] {
        let (c, m) = refused(&sim, soql).await;
        assert_eq!(c, code, "{soql}: {m}");
        assert!(
            m.contains(text) && m.contains("ERROR at Row:1:Column:"),
            "{soql}: {m}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn child_relationship_subqueries_nest_records_per_parent() {
    let sim = Sim::start().await;
    let (_, entry) = sim.priced_product("Widget", 2.5).await;
    let pb = sim.standard_pricebook().await;
    let account = sim.create("Account", json!({"Name": "Parent"})).await;
    let lonely = sim.create("Account", json!({"Name": "Lonely"})).await;
    sim.create("Contact", json!({"LastName": "Zed", "AccountId": account}))
        .await;
    sim.create("Contact", json!({"LastName": "Amy", "AccountId": account}))
        .await;
    let order = sim
        .create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Pricebook2Id": pb, "Hub_Order_Id__c": "H-1"}))
        .await;
    for qty in [1, 3, 2] {
        sim.create(
            "OrderItem",
            json!({"OrderId": order, "PricebookEntryId": entry, "Quantity": qty, "UnitPrice": 2.5}),
        )
        .await;
    }
    let body = ok(&sim, "SELECT Id, Hub_Order_Id__c, (SELECT Id, Quantity FROM OrderItems ORDER BY Quantity DESC) FROM Order").await;
    let items = &body["records"][0]["OrderItems"];
    assert_eq!(items["totalSize"], json!(3), "{body}");
    assert_eq!(items["done"], json!(true));
    assert_eq!(
        items["records"][0]["attributes"]["type"],
        json!("OrderItem")
    );
    let qty: Vec<Json> = items["records"]
        .as_array()
        .map(|a| a.iter().map(|r| r["Quantity"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(qty, vec![json!(3.0), json!(2.0), json!(1.0)]);

    let body = ok(&sim, "SELECT Name, (SELECT LastName FROM Contacts WHERE LastName != 'Nobody' ORDER BY LastName LIMIT 1) FROM Account ORDER BY Name").await;
    assert_eq!(body["records"][0]["Name"], json!("Lonely"));
    assert_eq!(
        body["records"][0]["Contacts"],
        Json::Null,
        "no children is null"
    );
    assert_eq!(body["records"][1]["Contacts"]["totalSize"], json!(1));
    assert_eq!(
        body["records"][1]["Contacts"]["records"][0]["LastName"],
        json!("Amy")
    );
    let _ = lonely;
    let cols = sim
        .get(&format!(
            "query?columns=true&q={}",
            q("SELECT Name, (SELECT LastName FROM Contacts) FROM Account")
        ))
        .await;
    assert_eq!(cols.body["columnMetadata"][1]["aggregate"], json!(true));
    assert_eq!(
        cols.body["columnMetadata"][1]["joinColumns"][0]["columnName"],
        json!("LastName")
    );
    let (code, msg) = refused(&sim, "SELECT Id, (SELECT Id FROM Nopes) FROM Account").await;
    assert_eq!(code, "INVALID_TYPE");
    assert!(
        msg.contains("Didn't understand relationship 'Nopes'"),
        "{msg}"
    );
    let (code, _) = refused(
        &sim,
        "SELECT Id, (SELECT Id, (SELECT Id FROM OrderItems) FROM Orders) FROM Account",
    )
    .await;
    assert_eq!(code, "MALFORMED_QUERY");
    sim.shutdown().await;
}

#[tokio::test]
async fn fields_functions_expand_and_all_needs_a_limit() {
    let sim = Sim::start().await;
    sim.create("Account", json!({"Name": "F", "Credit_Limit__c": 5}))
        .await;
    let std = ok(&sim, "SELECT FIELDS(STANDARD) FROM Account").await;
    let rec = &std["records"][0];
    assert_eq!(rec["Name"], json!("F"));
    assert!(rec.get("Id").is_some() && rec.get("CreatedDate").is_some());
    assert!(rec.get("Credit_Limit__c").is_none(), "{rec}");
    let all = ok(&sim, "SELECT FIELDS(ALL) FROM Account LIMIT 200").await;
    assert_eq!(all["records"][0]["Credit_Limit__c"], json!(5.0));
    let custom = ok(&sim, "SELECT Name, FIELDS(CUSTOM) FROM Account LIMIT 10").await;
    let keys: Vec<String> = custom["records"][0]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert!(
        keys.iter()
            .all(|k| k == "attributes" || k == "Name" || k.ends_with("__c")),
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k == "Credit_Limit__c"));
    for soql in [
        "SELECT FIELDS(ALL) FROM Account",
        "SELECT FIELDS(CUSTOM) FROM Account LIMIT 201",
    ] {
        let (code, msg) = refused(&sim, soql).await;
        assert_eq!(code, "MALFORMED_QUERY");
        assert!(
            msg.contains("The SOQL FIELDS function must have a LIMIT of at most 200"),
            "{msg}"
        );
    }
    let (code, _) = refused(&sim, "SELECT FIELDS(SOME) FROM Account").await;
    assert_eq!(code, "MALFORMED_QUERY");
    sim.shutdown().await;
}

#[tokio::test]
async fn record_counts_per_object() {
    let sim = Sim::start().await;
    let a = sim.create("Account", json!({"Name": "One"})).await;
    sim.create("Account", json!({"Name": "Two"})).await;
    sim.create("Contact", json!({"LastName": "C", "AccountId": a}))
        .await;
    let r = sim
        .get("limits/recordCount?sObjects=Account,Contact,Case,Nope")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["sObjects"].as_array().map(Vec::len),
        Some(3),
        "{}",
        r.text
    );
    let find = |body: &Json, name: &str| {
        body["sObjects"].as_array().and_then(|a| {
            a.iter()
                .find(|o| o["name"] == name)
                .map(|o| o["count"].clone())
        })
    };
    assert_eq!(find(&r.body, "Account"), Some(json!(2)));
    assert_eq!(find(&r.body, "Contact"), Some(json!(1)));
    assert_eq!(find(&r.body, "Case"), Some(json!(0)));
    assert_eq!(find(&r.body, "Nope"), None);
    sim.delete(&format!("sobjects/Account/{a}")).await;
    let r = sim.get("limits/recordCount").await;
    assert_eq!(find(&r.body, "Account"), Some(json!(1)));
    assert_eq!(
        find(&r.body, "Case"),
        None,
        "objects without records are left out"
    );
    sim.shutdown().await;
}
