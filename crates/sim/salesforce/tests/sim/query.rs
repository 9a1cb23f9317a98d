//! SOQL over REST: filters, relationships, ordering, paging with cursors, queryAll and errors.

use serde_json::{Value as Json, json};

use crate::{Sim, q};

async fn seed_accounts(sim: &Sim, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let records: Vec<Json> = chunk
            .iter()
            .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("Acct {i:05}"), "Credit_Limit__c": (*i as f64), "Customer_Tier__c": (["Gold", "Silver", "Bronze"][i % 3])}))
            .collect();
        let r = sim
            .post("composite/sobjects", json!({"records": records}))
            .await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn queries_filter_order_limit_and_follow_parents() {
    let sim = Sim::start().await;
    seed_accounts(&sim, 30).await;
    let acct = sim
        .create(
            "Account",
            json!({"Name": "Parent Inc", "Customer_Tier__c": "Gold"}),
        )
        .await;
    sim.create("Contact", json!({"LastName": "Lovelace", "FirstName": "Ada", "AccountId": acct, "Email": "ada@example.com"})).await;
    sim.create("Contact", json!({"LastName": "Nobody"})).await;

    let r = sim.get(&format!("query?q={}", q("SELECT Id, Name, Account.Name, Account.Customer_Tier__c FROM Contact WHERE Account.Name = 'parent inc'"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["totalSize"].clone(), r.body["done"].clone()),
        (json!(1), json!(true))
    );
    let rec = &r.body["records"][0];
    assert_eq!(rec["Name"], json!("Ada Lovelace"));
    assert_eq!(rec["Account"]["Name"], json!("Parent Inc"));
    assert_eq!(rec["Account"]["attributes"]["type"], json!("Account"));
    assert!(
        r.text.contains(r#""records":[{"attributes":{"#),
        "records start with attributes: {}",
        r.text
    );
    let mut keys: Vec<&String> = rec
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    keys.sort();
    assert_eq!(
        keys,
        ["Account", "Id", "Name", "attributes"],
        "exactly the selected fields"
    );
    let orphan = sim
        .get(&format!(
            "query/?q={}",
            q("SELECT Name, Account.Name FROM Contact WHERE AccountId = null")
        ))
        .await;
    assert_eq!(orphan.body["records"][0]["Account"], json!(null));

    let count = sim.get(&format!("query?q={}", q("SELECT COUNT() FROM Account WHERE Customer_Tier__c IN ('Gold','Silver') AND NOT Name LIKE 'Parent%'"))).await;
    assert_eq!(
        (
            count.body["totalSize"].clone(),
            count.body["records"].clone()
        ),
        (json!(20), json!([]))
    );
    let range = sim
        .get(&format!("query?q={}", q("SELECT Name FROM Account WHERE (Credit_Limit__c >= 10 AND Credit_Limit__c < 13) OR Name = 'Acct 00029' ORDER BY Credit_Limit__c DESC")))
        .await;
    let names: Vec<&str> = range.body["records"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["Name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["Acct 00029", "Acct 00012", "Acct 00011", "Acct 00010"]
    );
    let paged = sim
        .get(&format!(
            "query?q={}",
            q("SELECT Name FROM Account ORDER BY Credit_Limit__c ASC NULLS LAST LIMIT 2 OFFSET 3")
        ))
        .await;
    let names: Vec<&str> = paged.body["records"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["Name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Acct 00003", "Acct 00004"]);
    let nulls_first = sim
        .get(&format!(
            "query?q={}",
            q("SELECT Name FROM Account ORDER BY Credit_Limit__c NULLS FIRST LIMIT 1")
        ))
        .await;
    assert_eq!(nulls_first.body["records"][0]["Name"], json!("Parent Inc"));
    let not_in = sim.get(&format!("query?q={}", q("SELECT COUNT() FROM Account WHERE Customer_Tier__c NOT IN ('Gold') AND CreatedDate > 2020-01-01T00:00:00Z"))).await;
    assert_eq!(not_in.body["totalSize"], json!(20));
    let org = sim.get(&format!("query?q={}", q("SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, OrganizationType FROM Organization"))).await;
    assert_eq!(org.body["records"][0]["IsSandbox"], json!(false));

    let cols = sim
        .get(&format!(
            "query?q={}&columns=true",
            q("SELECT Id, Account.Name FROM Contact")
        ))
        .await;
    assert_eq!(cols.body["entityName"], json!("Contact"));
    assert_eq!(
        cols.body["columnMetadata"][1]["columnName"],
        json!("Account")
    );
    assert_eq!(
        cols.body["columnMetadata"][1]["joinColumns"][0]["columnName"],
        json!("Name")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn large_results_page_through_cursors() {
    let sim = Sim::start().await;
    seed_accounts(&sim, 2_500).await;
    let first = sim
        .get(&format!("query?q={}", q("SELECT Id, Name FROM Account")))
        .await;
    assert_eq!(
        (first.body["totalSize"].clone(), first.body["done"].clone()),
        (json!(2500), json!(false))
    );
    assert_eq!(first.body["records"].as_array().map(Vec::len), Some(2000));
    let next = first.body["nextRecordsUrl"]
        .as_str()
        .expect("nextRecordsUrl");
    assert!(
        next.starts_with("/services/data/v60.0/query/01g") && next.ends_with("-2000"),
        "{next}"
    );
    let second = sim.call(reqwest::Method::GET, &sim.url(next), None).await;
    assert_eq!(
        (
            second.body["done"].clone(),
            second.body["records"].as_array().map(Vec::len)
        ),
        (json!(true), Some(500))
    );
    assert!(second.body.get("nextRecordsUrl").is_none());
    let mut seen: Vec<String> = first.body["records"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(second.body["records"].as_array().into_iter().flatten())
        .filter_map(|r| r["Id"].as_str().map(str::to_string))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 2500, "every row exactly once");

    let small = sim
        .send(
            sim.http
                .get(sim.data(&format!("query?q={}", q("SELECT Id FROM Account"))))
                .bearer_auth(&sim.token)
                .header("Sforce-Query-Options", "batchSize=500"),
        )
        .await;
    assert_eq!(small.body["records"].as_array().map(Vec::len), Some(500));
    assert!(
        small.body["nextRecordsUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with("-500"))
    );

    let bad = sim.get("query/01gDd0000000999AAA-2000").await;
    assert_eq!(
        (bad.status, bad.error_code()),
        (400, Some("INVALID_QUERY_LOCATOR"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn query_all_sees_deleted_rows_and_errors_are_precise() {
    let sim = Sim::start().await;
    let id = sim.create("Account", json!({"Name": "Gone"})).await;
    sim.delete(&format!("sobjects/Account/{id}")).await;
    let live = sim
        .get(&format!("query?q={}", q("SELECT Id FROM Account")))
        .await;
    assert_eq!(live.body["totalSize"], json!(0));
    let all = sim
        .get(&format!(
            "queryAll?q={}",
            q("SELECT Id, IsDeleted FROM Account")
        ))
        .await;
    assert_eq!(all.body["records"][0]["IsDeleted"], json!(true));

    let malformed = sim
        .get(&format!("query?q={}", q("SELECT Id FRM Account")))
        .await;
    assert_eq!(
        (malformed.status, malformed.error_code()),
        (400, Some("MALFORMED_QUERY"))
    );
    let msg = malformed.body[0]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("ERROR at Row:1:Column:11")
            && msg.contains("SELECT Id FRM Account\n          ^"),
        "{msg}"
    );
    let bad_type = sim
        .get(&format!("query?q={}", q("SELECT Id FROM Accountz")))
        .await;
    assert_eq!(bad_type.error_code(), Some("INVALID_TYPE"));
    assert!(
        bad_type.body[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sObject type 'Accountz' is not supported."))
    );
    let bad_field = sim
        .get(&format!("query?q={}", q("SELECT Id, Nam FROM Account")))
        .await;
    assert_eq!(bad_field.error_code(), Some("INVALID_FIELD"));
    let bad_literal = sim
        .get(&format!(
            "query?q={}",
            q("SELECT Id FROM Account WHERE Name = 5")
        ))
        .await;
    assert_eq!(bad_literal.error_code(), Some("INVALID_FIELD"));
    let no_q = sim.get("query").await;
    assert_eq!(no_q.error_code(), Some("MALFORMED_QUERY"));
    sim.shutdown().await;
}
