//! A Salesforce user for the demo: creates accounts, products, orders and cases through the
//! org's REST API exactly as people and other apps would (so Change Data Capture carries
//! their changes to the hub). It is not the hub's connector and shares no code with it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// REST API version the demo user speaks.
const VERSION: &str = "v60.0";

/// A signed-in Salesforce user.
pub struct SalesforceUser {
    http: reqwest::Client,
    base: String,
    token: String,
    /// API calls this user made (the summary subtracts them from the org's usage).
    pub calls: AtomicU64,
}

impl SalesforceUser {
    /// A user with an access token on an instance, trusting the given CA.
    pub fn new(base: &str, token: &str, ca_pem: &Path) -> Result<Self> {
        let pem = std::fs::read(ca_pem).with_context(|| format!("reading {}", ca_pem.display()))?;
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            calls: AtomicU64::new(0),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/services/data/{VERSION}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token)
            .header("Sforce-Call-Options", "client=retail-demo-user");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("Salesforce answered {status} to {method} {path}: {text}");
        }
        if text.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str(&text)
                .with_context(|| format!("{method} {path}: not JSON: {text}"))
        }
    }

    /// Creates records (one collections call per 200) and returns their ids in order.
    pub async fn create(&self, object: &str, records: Vec<Value>) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(records.len());
        for chunk in records.chunks(200) {
            let body = json!({
                "allOrNone": true,
                "records": chunk.iter().map(|r| {
                    let mut r = r.clone();
                    r["attributes"] = json!({ "type": object });
                    r
                }).collect::<Vec<_>>(),
            });
            let answer = self
                .send(reqwest::Method::POST, "/composite/sobjects", Some(body))
                .await?;
            for result in answer.as_array().cloned().unwrap_or_default() {
                if result["success"] != json!(true) {
                    bail!("creating {object} failed: {result}");
                }
                ids.push(result["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        Ok(ids)
    }

    /// Updates one record.
    pub async fn update(&self, object: &str, id: &str, fields: Value) -> Result<()> {
        self.send(
            reqwest::Method::PATCH,
            &format!("/sobjects/{object}/{id}"),
            Some(fields),
        )
        .await
        .map(|_| ())
    }

    /// Creates an order with its items in one composite call, then activates it.
    pub async fn place_order(&self, order: Value, items: Vec<Value>) -> Result<String> {
        let mut requests = vec![json!({
            "method": "POST",
            "url": format!("/services/data/{VERSION}/sobjects/Order"),
            "referenceId": "order",
            "body": order,
        })];
        for (i, item) in items.into_iter().enumerate() {
            let mut item = item;
            item["OrderId"] = json!("@{order.id}");
            requests.push(json!({
                "method": "POST",
                "url": format!("/services/data/{VERSION}/sobjects/OrderItem"),
                "referenceId": format!("item{i}"),
                "body": item,
            }));
        }
        requests.push(json!({
            "method": "PATCH",
            "url": format!("/services/data/{VERSION}/sobjects/Order/@{{order.id}}"),
            "referenceId": "activate",
            "body": { "Status": "Activated" },
        }));
        let answer = self
            .send(
                reqwest::Method::POST,
                "/composite",
                Some(json!({ "allOrNone": true, "compositeRequest": requests })),
            )
            .await?;
        let responses = answer["compositeResponse"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for response in &responses {
            let status = response["httpStatusCode"].as_u64().unwrap_or(0);
            if !(200..300).contains(&status) {
                bail!("placing an order failed: {response}");
            }
        }
        responses
            .first()
            .and_then(|r| r["body"]["id"].as_str())
            .map(str::to_owned)
            .context("the composite answer has no order id")
    }

    /// Runs a query and returns every record (following `nextRecordsUrl`).
    pub async fn query(&self, soql: &str) -> Result<Vec<Value>> {
        let mut records = Vec::new();
        let mut answer = self
            .send(
                reqwest::Method::GET,
                &format!("/query?q={}", urlencode(soql)),
                None,
            )
            .await?;
        loop {
            records.extend(answer["records"].as_array().cloned().unwrap_or_default());
            let Some(next) = answer["nextRecordsUrl"].as_str().map(str::to_owned) else {
                break;
            };
            let path = next.trim_start_matches(&format!("/services/data/{VERSION}"));
            answer = self.send(reqwest::Method::GET, path, None).await?;
        }
        Ok(records)
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
