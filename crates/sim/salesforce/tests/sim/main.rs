//! End-to-end tests of the Salesforce simulator over real sockets: REST, OAuth, Pub/Sub,
//! faults, bad input, a second user, restarts on a data folder, and real third-party clients.

mod auth;
mod collections;
mod faults;
mod fuzz;
mod orders;
mod perf;
mod persist;
mod pubsub;
mod query;
mod real_clients;
mod rest;
mod robust;
mod soql_more;
mod users;

use std::time::Duration;

use crossdock_sim_salesforce::{Config, Handle, Simulator};
use serde_json::{Value as Json, json};

/// A running simulator plus an HTTPS client that trusts its CA.
pub struct Sim {
    pub handle: Handle,
    pub http: reqwest::Client,
    pub token: String,
}

/// A response: status, headers, JSON body (`Null` when empty or not JSON).
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Json,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `errorCode` of the first error of a REST error array.
    pub fn error_code(&self) -> Option<&str> {
        self.body
            .get(0)
            .and_then(|e| e.get("errorCode"))
            .and_then(Json::as_str)
    }
}

pub const V: &str = "v60.0";

impl Sim {
    pub async fn start() -> Sim {
        Sim::with(Config::default()).await
    }

    pub async fn with(config: Config) -> Sim {
        let handle = Simulator::start(config).await.expect("simulator starts");
        let ca = std::fs::read(handle.ca_pem_path()).expect("CA file is written");
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA parses"))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client builds");
        let token = handle.access_token().to_string();
        Sim {
            handle,
            http,
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.base_url(), path)
    }

    /// A data-API path: `/services/data/v60.0/<rest>`.
    pub fn data(&self, rest: &str) -> String {
        self.url(&format!("/services/data/{V}/{rest}"))
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("request is answered");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Json::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(&self, method: reqwest::Method, url: &str, body: Option<Json>) -> Resp {
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn get(&self, rest: &str) -> Resp {
        self.call(reqwest::Method::GET, &self.data(rest), None)
            .await
    }

    pub async fn post(&self, rest: &str, body: Json) -> Resp {
        self.call(reqwest::Method::POST, &self.data(rest), Some(body))
            .await
    }

    pub async fn patch(&self, rest: &str, body: Json) -> Resp {
        self.call(reqwest::Method::PATCH, &self.data(rest), Some(body))
            .await
    }

    pub async fn delete(&self, rest: &str) -> Resp {
        self.call(reqwest::Method::DELETE, &self.data(rest), None)
            .await
    }

    /// Creates a record and returns its id, failing the test otherwise.
    pub async fn create(&self, object: &str, body: Json) -> String {
        let r = self.post(&format!("sobjects/{object}"), body).await;
        assert_eq!(r.status, 201, "create {object}: {}", r.text);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// Admin API call (no OAuth).
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Resp {
        let mut req = self
            .http
            .request(method, self.url(&format!("/__sim/{path}")));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// A product with an active standard price; returns (product id, standard entry id).
    pub async fn priced_product(&self, name: &str, price: f64) -> (String, String) {
        let product = self
            .create(
                "Product2",
                json!({"Name": name, "IsActive": true, "ERP_Item_Code__c": format!("SKU-{name}")}),
            )
            .await;
        let pb = self.standard_pricebook().await;
        let entry = self
            .create("PricebookEntry", json!({"Pricebook2Id": pb, "Product2Id": product, "UnitPrice": price, "IsActive": true}))
            .await;
        (product, entry)
    }

    pub async fn standard_pricebook(&self) -> String {
        let r = self
            .get("query?q=SELECT+Id+FROM+Pricebook2+WHERE+IsStandard+%3D+true")
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["records"][0]["Id"]
            .as_str()
            .expect("standard price book")
            .to_string()
    }

    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}

/// URL-encodes a query for `?q=`.
pub fn q(soql: &str) -> String {
    let mut out = String::new();
    for b in soql.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
