//! The Salesforce connector against the in-process Salesforce org simulator (TLS, port 0):
//! authentication, paging, write-backs under injected faults, the API-limit reserve, the
//! Pub/Sub subscriber, and a calls-per-lifecycle measurement.

mod bench;
mod limits;
mod pubsub;
mod rest;
mod writes;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use crossdock_domain::ids::{
    AccountId, ExternalRefs, InvoiceId, LineNo, LocationId, OrderId, ShipmentId, Sku,
};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Channel, LineQuantities, Milestone, OrderStatus, StageTimes};
use crossdock_domain::summary::{InvoiceSummary, LineSummary, OrderSummary, ShipmentSummary};
use crossdock_ports::SystemClock;
use crossdock_ports::inbound::{Accepted, Checkpoints, InboundMessage, InboundSink, SinkError};
use crossdock_salesforce::config::Start;
use crossdock_salesforce::{Adapter, Auth, Config, Secret};
use crossdock_sim_salesforce::{Handle, Simulator};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

/// A running simulated org plus an HTTPS client that trusts it (for the "people" side of
/// tests: reps activating orders, agents opening cases, admin calls).
pub struct Org {
    pub sim: Handle,
    pub http: reqwest::Client,
}

impl Org {
    pub async fn start() -> Org {
        Org::with(crossdock_sim_salesforce::Config {
            keepalive_secs: 1,
            ..Default::default()
        })
        .await
    }

    pub async fn with(config: crossdock_sim_salesforce::Config) -> Org {
        let sim = Simulator::start(config).await.expect("simulator starts");
        let ca = std::fs::read(sim.ca_pem_path()).expect("simulator CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA parses"))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Org { sim, http }
    }

    /// Connector configuration for this org: client credentials, the org's CA, its
    /// Pub/Sub endpoint, subscriptions from the earliest event.
    pub fn config(&self) -> Config {
        let creds = self.sim.credentials();
        let mut config = Config::new(
            self.sim.base_url(),
            Auth::ClientCredentials {
                client_id: creds.client_id.clone(),
                client_secret: Secret::new(creds.client_secret.clone()),
            },
        );
        config.ca_file = Some(self.sim.ca_pem_path().to_path_buf());
        config.pubsub.endpoint = self.sim.grpc_endpoint();
        config.pubsub.start = Start::Earliest;
        config.pubsub.reconnect_max_secs = 2;
        config.daily_limit_reserve = 0;
        config
    }

    pub fn adapter(&self) -> Arc<Adapter> {
        self.adapter_with(|_| {})
    }

    pub fn adapter_with(&self, tweak: impl FnOnce(&mut Config)) -> Arc<Adapter> {
        let mut config = self.config();
        tweak(&mut config);
        Arc::new(Adapter::build(&config, Arc::new(SystemClock)).expect("adapter builds"))
    }

    /// A REST call as a person in the org would make it (no `client=` call option).
    pub async fn rest(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Json>,
    ) -> (u16, Json) {
        let url = format!("{}/services/data/v60.0/{path}", self.sim.base_url());
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.sim.access_token());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Json::Null))
    }

    pub async fn patch(&self, object: &str, id: &str, body: Json) {
        let (status, answer) = self
            .rest(
                reqwest::Method::PATCH,
                &format!("sobjects/{object}/{id}"),
                Some(body),
            )
            .await;
        assert!(status < 300, "PATCH {object}/{id}: {status} {answer}");
    }

    pub async fn create(&self, object: &str, body: Json) -> String {
        let (status, answer) = self
            .rest(
                reqwest::Method::POST,
                &format!("sobjects/{object}"),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "create {object}: {answer}");
        answer["id"].as_str().expect("id").to_owned()
    }

    /// An admin call (`/__sim/…`).
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Json) -> Json {
        let url = format!("{}/__sim/{path}", self.sim.base_url());
        let resp = self
            .http
            .request(method, url)
            .json(&body)
            .send()
            .await
            .expect("answered");
        let status = resp.status().as_u16();
        let answer: Json = resp.json().await.unwrap_or(Json::Null);
        assert!(status < 300, "admin {path}: {status} {answer}");
        answer
    }

    pub fn insert(&self, object: &str, fields: Json) -> String {
        self.sim
            .state()
            .insert(object, fields)
            .unwrap_or_else(|e| panic!("insert {object}: {e:?}"))
    }

    pub fn record(&self, id: &str) -> Json {
        self.sim
            .state()
            .record(id)
            .unwrap_or_else(|| panic!("record {id} exists"))
    }

    pub fn query(&self, soql: &str) -> Vec<Json> {
        self.sim
            .state()
            .query(soql)
            .unwrap_or_else(|e| panic!("query {soql}: {e:?}"))
    }

    pub fn calls_used(&self) -> u64 {
        self.sim.state().api_usage().0
    }

    /// Accounts, products with standard prices, and draft orders with items, inserted
    /// directly (no API calls).
    pub fn seed(&self, orders: usize, items_per_order: usize) -> Seed {
        let pricebook = self.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")[0]["Id"]
            .as_str()
            .expect("standard price book")
            .to_owned();
        let tag = SEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let account_number = format!("C-{tag}");
        let account = self.insert(
            "Account",
            json!({"Name": format!("Acme {tag}"), "ERP_Customer_Number__c": account_number}),
        );
        let mut products = Vec::new();
        for p in 0..items_per_order {
            let sku = format!("SKU-{tag}-{p}");
            let product = self.insert(
                "Product2",
                json!({"Name": sku, "IsActive": true, "StockKeepingUnit": sku, "ERP_Item_Code__c": sku}),
            );
            let entry = self.insert(
                "PricebookEntry",
                json!({"Pricebook2Id": pricebook, "Product2Id": product, "UnitPrice": 10 + p, "IsActive": true}),
            );
            products.push((sku, product, entry));
        }
        let mut seeded = Vec::with_capacity(orders);
        for _ in 0..orders {
            let order = self.insert(
                "Order",
                json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Pricebook2Id": pricebook}),
            );
            let mut items = Vec::new();
            for (p, (sku, _, entry)) in products.iter().enumerate() {
                let item = self.insert(
                    "OrderItem",
                    json!({"OrderId": order, "PricebookEntryId": entry, "Quantity": 2 + p, "UnitPrice": 10 + p}),
                );
                items.push((item, sku.clone(), u32::try_from(2 + p).unwrap_or(2)));
            }
            let number = self.record(&order)["OrderNumber"]
                .as_str()
                .expect("order number")
                .to_owned();
            seeded.push(SeededOrder {
                id: order,
                number,
                items,
            });
        }
        Seed {
            account,
            account_number,
            products,
            orders: seeded,
        }
    }

    pub async fn shutdown(self) {
        self.sim.shutdown().await;
    }
}

static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub struct SeededOrder {
    pub id: String,
    pub number: String,
    /// (OrderItem id, SKU, quantity)
    pub items: Vec<(String, String, u32)>,
}

pub struct Seed {
    pub account: String,
    pub account_number: String,
    /// (SKU, Product2 id, PricebookEntry id)
    pub products: Vec<(String, String, String)>,
    pub orders: Vec<SeededOrder>,
}

/// How far an order has got, for building summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Booked,
    Allocated,
    Shipped,
    Delivered,
    Invoiced,
    Paid,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Booked,
        Stage::Allocated,
        Stage::Shipped,
        Stage::Delivered,
        Stage::Invoiced,
        Stage::Paid,
    ];

    pub fn status(self) -> OrderStatus {
        match self {
            Stage::Booked => OrderStatus::Booked,
            Stage::Allocated => OrderStatus::Allocated,
            Stage::Shipped => OrderStatus::Shipped,
            Stage::Delivered => OrderStatus::Delivered,
            Stage::Invoiced => OrderStatus::Invoiced,
            Stage::Paid => OrderStatus::Paid,
        }
    }
}

/// The summary the engine would write for a seeded order at `stage`.
pub fn summary_of(order: &SeededOrder, account: &str, n: usize, stage: Stage) -> OrderSummary {
    let at_least = |s: Stage| {
        Stage::ALL.iter().position(|x| *x == stage) >= Stage::ALL.iter().position(|x| *x == s)
    };
    let total: Decimal = order
        .items
        .iter()
        .map(|(_, _, q)| Decimal::from(*q) * Decimal::from(10))
        .sum();
    let lines: Vec<LineSummary> = order
        .items
        .iter()
        .enumerate()
        .map(|(i, (item, sku, q))| LineSummary {
            line: LineNo(u32::try_from(i + 1).unwrap_or(1)),
            sku: Sku::new(sku.clone()),
            sf_id: Some(item.clone()),
            unit_price: Decimal::from(10),
            quantities: LineQuantities {
                ordered: *q,
                allocated: if at_least(Stage::Allocated) { *q } else { 0 },
                backordered: 0,
                picked: if at_least(Stage::Shipped) { *q } else { 0 },
                shipped: if at_least(Stage::Shipped) { *q } else { 0 },
                delivered: if at_least(Stage::Delivered) { *q } else { 0 },
                invoiced: if at_least(Stage::Invoiced) { *q } else { 0 },
                returned: 0,
            },
        })
        .collect();
    let shipments = if at_least(Stage::Shipped) {
        vec![ShipmentSummary {
            id: ShipmentId::new("SH-1"),
            location: Some(LocationId::new("WH-1")),
            milestone: Some(if at_least(Stage::Delivered) {
                Milestone::Delivered
            } else {
                Milestone::Shipped
            }),
            carrier: Some("UPS".into()),
            tracking: Some(format!("1Z{n:06}")),
            lines: lines
                .iter()
                .map(|l| (l.line, l.quantities.ordered))
                .collect(),
        }]
    } else {
        Vec::new()
    };
    let invoiced = at_least(Stage::Invoiced);
    OrderSummary {
        id: OrderId::new(format!("SF-{}", order.number)),
        refs: ExternalRefs {
            sf_id: Some(order.id.clone()),
            sf_number: Some(order.number.clone()),
            erp_ref: Some(format!("ERP-{}", order.number)),
        },
        account: AccountId::new(account),
        channel: Channel::B2b,
        currency: Currency::USD,
        status: stage.status(),
        total,
        invoiced: if invoiced { total } else { Decimal::ZERO },
        paid: if at_least(Stage::Paid) {
            total
        } else {
            Decimal::ZERO
        },
        credited: Decimal::ZERO,
        refunded: Decimal::ZERO,
        lines,
        shipments,
        invoices: if invoiced {
            vec![InvoiceSummary {
                id: InvoiceId::new("INV-1"),
                number: format!("INV-{}", order.number),
                total,
            }]
        } else {
            Vec::new()
        },
        returns: Vec::new(),
        reason: None,
        times: StageTimes::default(),
    }
}

/// An inbox in memory: deduplicates by message id like the real one, and records every
/// `accept` call so tests can see redeliveries.
#[derive(Default)]
pub struct MemorySink {
    pub stored: Mutex<Vec<InboundMessage>>,
    pub accepts: Mutex<Vec<String>>,
}

#[async_trait]
impl InboundSink for MemorySink {
    async fn accept(&self, message: InboundMessage) -> Result<Accepted, SinkError> {
        self.accepts
            .lock()
            .expect("lock")
            .push(message.message_id.clone());
        let mut stored = self.stored.lock().expect("lock");
        if stored.iter().any(|m| m.message_id == message.message_id) {
            return Ok(Accepted::Duplicate);
        }
        stored.push(message);
        Ok(Accepted::New)
    }
}

impl MemorySink {
    pub fn messages(&self) -> Vec<InboundMessage> {
        self.stored.lock().expect("lock").clone()
    }

    pub fn accepted_ids(&self) -> Vec<String> {
        self.accepts.lock().expect("lock").clone()
    }
}

/// Checkpoints in memory.
#[derive(Default)]
pub struct MemoryCheckpoints {
    pub positions: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl Checkpoints for MemoryCheckpoints {
    async fn load(&self, subscriber: &str) -> Result<Option<String>, SinkError> {
        Ok(self
            .positions
            .lock()
            .expect("lock")
            .get(subscriber)
            .cloned())
    }

    async fn save(&self, subscriber: &str, position: &str) -> Result<(), SinkError> {
        self.positions
            .lock()
            .expect("lock")
            .insert(subscriber.to_owned(), position.to_owned());
        Ok(())
    }
}

impl MemoryCheckpoints {
    pub fn get(&self, key: &str) -> Option<String> {
        self.positions.lock().expect("lock").get(key).cloned()
    }
}

/// Polls `done` every 50 ms until it holds or `secs` pass.
pub async fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counts per key.
pub fn counts<K: Ord>(items: impl IntoIterator<Item = K>) -> BTreeMap<K, usize> {
    let mut out = BTreeMap::new();
    for k in items {
        *out.entry(k).or_insert(0) += 1;
    }
    out
}
