//! The adapter behind [`crossdock_ports::Salesforce`]: batched, state-based write-backs and
//! order re-reads.
//!
//! A batch of orders costs a handful of collections calls, not one per order: every `Order`
//! and `OrderItem` update of the batch goes into shared `PATCH /composite/sobjects` calls
//! (≤ 200 records each), every shipment into shared `Shipment` upserts by `Hub_Key__c`.
//! Each record's result is mapped back to the order it belongs to; an order fails when any
//! of its records failed, with the most severe class. Writes are idempotent (updates by id,
//! upserts by external id), so the engine may resend an order's whole state at any time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, RmaId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Channel, DraftLine, OrderDraft};
use crossdock_domain::summary::OrderSummary;
use crossdock_ports::erp::CreditReport;
use crossdock_ports::salesforce::ApiUsage;
use crossdock_ports::{Clock, Failure, Salesforce};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;

use crate::auth::{Tokens, load_private_key};
use crate::client::{Client, Write, Written, is_record_id, soql_quote};
use crate::config::{Auth, Config};
use crate::errors::worst;
use crate::limits::Limits;
use crate::mapping::{Mapping, inventory_key, shipment_status};
use crate::{Error, Result};

/// Ids per `IN (…)` list in one query.
const IN_CHUNK: usize = 200;
/// Cached lookups kept before a cache is cleared (bounds memory on long runs).
const CACHE_LIMIT: usize = 100_000;

/// The Salesforce adapter. Share it behind an `Arc`; the subscriber uses it for re-reads.
pub struct Adapter {
    config: Config,
    client: Arc<Client>,
    mapping: Mapping,
    clock: Arc<dyn Clock>,
    /// `ERP_Customer_Number__c` → Account id.
    accounts: Mutex<HashMap<String, String>>,
    /// `ERP_Item_Code__c` → Product2 id.
    products: Mutex<HashMap<String, String>>,
    /// Hub order id → Order id, for orders submitted through the hub.
    hub_orders: Mutex<HashMap<String, String>>,
    /// Object → its field names, lower-cased (from describe; read once per object).
    describes: Mutex<HashMap<String, Arc<HashSet<String>>>>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("login_url", &self.config.login_url)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn remember(cache: &Mutex<HashMap<String, String>>, key: &str, id: &str) {
    let mut c = lock(cache);
    if c.len() >= CACHE_LIMIT {
        c.clear();
    }
    c.insert(key.to_owned(), id.to_owned());
}

impl Adapter {
    /// Checks `config`, reads the files it names and sets up the HTTP client. No call is made
    /// until the first write or read (the token is fetched then).
    ///
    /// # Errors
    /// [`Error::Config`] with every problem, [`Error::File`] for an unreadable CA or key file,
    /// [`Error::Setup`] when the HTTP client cannot be built.
    pub fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate().map_err(Error::Config)?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.request_timeout())
            .connect_timeout(config.connect_timeout())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .user_agent(concat!("crossdock/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| Error::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::File {
                path: path.display().to_string(),
                reason: format!("not a PEM certificate: {e}"),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| Error::Setup(e.to_string()))?;
        let key = match &config.auth {
            Auth::JwtBearer {
                private_key_file, ..
            } => Some(
                load_private_key(private_key_file).map_err(|reason| Error::File {
                    path: private_key_file.display().to_string(),
                    reason,
                })?,
            ),
            _ => None,
        };
        let tokens = Tokens::new(
            http.clone(),
            &config.login_url,
            config.instance_url.clone(),
            &config.auth,
            key,
            clock.clone(),
        )
        .map_err(Error::Setup)?;
        let limits = Limits::new(
            config.daily_limit_reserve,
            std::time::Duration::from_secs(config.reserve_backoff_secs),
        );
        let client = Client::new(
            http,
            Arc::new(tokens),
            Arc::new(limits),
            &config.api_version,
            &config.client_name,
            config.batch_size,
        );
        Ok(Self {
            config: config.clone(),
            client: Arc::new(client),
            mapping: Mapping::new(&config.mapping),
            clock,
            accounts: Mutex::new(HashMap::new()),
            products: Mutex::new(HashMap::new()),
            hub_orders: Mutex::new(HashMap::new()),
            describes: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The REST client.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The field mapping in use.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Field names of `sobject` (lower-cased), read once through describe.
    ///
    /// # Errors
    /// The describe call's failure.
    pub async fn fields_of(&self, sobject: &str) -> Result<Arc<HashSet<String>>, Failure> {
        if let Some(known) = lock(&self.describes).get(sobject) {
            return Ok(known.clone());
        }
        let names: HashSet<String> = self
            .client
            .describe_fields(sobject)
            .await?
            .into_iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        let names = Arc::new(names);
        lock(&self.describes).insert(sobject.to_owned(), names.clone());
        Ok(names)
    }

    /// Forgets what describe said about `sobject` (after a schema change).
    pub fn forget_fields(&self, sobject: &str) {
        lock(&self.describes).remove(sobject);
    }

    /// Looks ids up by an external-id field, using and filling `cache`. Returns key → id for
    /// the keys found.
    async fn lookup(
        &self,
        cache: &Mutex<HashMap<String, String>>,
        sobject: &str,
        field: &str,
        keys: &[String],
    ) -> Result<HashMap<String, String>, Failure> {
        let mut found = HashMap::new();
        let mut missing: Vec<&String> = Vec::new();
        {
            let c = lock(cache);
            for k in keys {
                match c.get(k) {
                    Some(id) => {
                        found.insert(k.clone(), id.clone());
                    }
                    None => missing.push(k),
                }
            }
        }
        missing.sort();
        missing.dedup();
        for chunk in missing.chunks(IN_CHUNK) {
            let list: Vec<String> = chunk.iter().map(|k| soql_quote(k)).collect();
            let soql = format!(
                "SELECT Id, {field} FROM {sobject} WHERE {field} IN ({})",
                list.join(", ")
            );
            for rec in self.client.query(&soql).await? {
                let (Some(id), Some(key)) = (str_at(&rec, "Id"), str_at(&rec, field)) else {
                    continue;
                };
                remember(cache, key, id);
                found.insert(key.to_owned(), id.to_owned());
            }
        }
        Ok(found)
    }

    /// Finds (or creates) the `Order` of each hub-submitted order. Fills `sf_ids`; records
    /// failures in `failed`; marks in `written` the orders whose fields the upsert already wrote.
    async fn resolve_hub_orders(
        &self,
        orders: &[&OrderSummary],
        sf_ids: &mut [Option<String>],
        failed: &mut [Option<Failure>],
        written: &mut [bool],
        now: OffsetDateTime,
    ) {
        let wanted: Vec<usize> = (0..orders.len()).filter(|&i| sf_ids[i].is_none()).collect();
        if wanted.is_empty() {
            return;
        }
        let keys: Vec<String> = wanted.iter().map(|&i| orders[i].id.to_string()).collect();
        let known = match self
            .lookup(&self.hub_orders, "Order", "Hub_Order_Id__c", &keys)
            .await
        {
            Ok(k) => k,
            Err(f) => {
                for &i in &wanted {
                    failed[i] = Some(f.clone());
                }
                return;
            }
        };
        let mut create = Vec::new();
        for &i in &wanted {
            match known.get(orders[i].id.as_str()) {
                Some(id) => sf_ids[i] = Some(id.clone()),
                None => create.push(i),
            }
        }
        if create.is_empty() {
            return;
        }
        let accounts: Vec<String> = create
            .iter()
            .map(|&i| orders[i].account.to_string())
            .collect();
        let account_ids = match self
            .lookup(
                &self.accounts,
                "Account",
                "ERP_Customer_Number__c",
                &accounts,
            )
            .await
        {
            Ok(a) => a,
            Err(f) => {
                for &i in &create {
                    failed[i] = Some(f.clone());
                }
                return;
            }
        };
        let mut records = Vec::new();
        let mut owners = Vec::new();
        for &i in &create {
            let order = orders[i];
            let Some(account) = account_ids.get(order.account.as_str()) else {
                failed[i] = Some(
                    Failure::permanent(format!(
                        "no Salesforce account has ERP_Customer_Number__c = {}",
                        order.account
                    ))
                    .with_code("NOT_FOUND"),
                );
                continue;
            };
            let mut rec = Map::new();
            rec.insert("attributes".into(), json!({"type": "Order"}));
            self.mapping.order.render(&mut rec, |v| v.of(order, now));
            rec.insert("Hub_Order_Id__c".into(), Json::String(order.id.to_string()));
            rec.insert("AccountId".into(), Json::String(account.clone()));
            let day = order
                .times
                .captured
                .unwrap_or(now)
                .to_offset(time::UtcOffset::UTC)
                .date();
            rec.insert("EffectiveDate".into(), Json::String(day.to_string()));
            rec.insert("Status".into(), Json::String("Draft".into()));
            rec.insert(
                "Sales_Channel__c".into(),
                Json::String(order.channel.as_str().into()),
            );
            records.push(Json::Object(rec));
            owners.push(i);
        }
        let op = Write::Upsert {
            sobject: "Order".into(),
            field: "Hub_Order_Id__c".into(),
        };
        let results = self.client.write(&op, &records).await;
        for (i, result) in owners.into_iter().zip(results) {
            match result {
                Ok(Written { id, .. }) => {
                    remember(&self.hub_orders, orders[i].id.as_str(), &id);
                    sf_ids[i] = Some(id);
                    written[i] = true;
                }
                Err(f) => failed[i] = Some(f),
            }
        }
    }

    async fn write_unique_orders(&self, orders: &[&OrderSummary]) -> Vec<Option<Failure>> {
        let now = self.clock.now();
        let n = orders.len();
        let mut failed: Vec<Option<Failure>> = vec![None; n];
        let mut written = vec![false; n];
        let mut sf_ids: Vec<Option<String>> = orders
            .iter()
            .map(|o| o.refs.sf_id.clone().filter(|s| !s.is_empty()))
            .collect();
        for (i, id) in sf_ids.iter().enumerate() {
            if let Some(id) = id
                && !is_record_id(id)
            {
                failed[i] = Some(
                    Failure::permanent(format!("`{id}` is not a Salesforce record id"))
                        .with_code("MALFORMED_ID"),
                );
            }
        }
        self.resolve_hub_orders(orders, &mut sf_ids, &mut failed, &mut written, now)
            .await;

        // Orders and their items: one shared stream of updates.
        let mut updates = Vec::new();
        let mut owners = Vec::new();
        for (i, order) in orders.iter().enumerate() {
            let Some(id) = sf_ids[i].as_ref().filter(|_| failed[i].is_none()) else {
                continue;
            };
            if !written[i] && !self.mapping.order.is_empty() {
                let mut rec = Map::new();
                rec.insert("attributes".into(), json!({"type": "Order"}));
                rec.insert("Id".into(), Json::String(id.clone()));
                self.mapping.order.render(&mut rec, |v| v.of(order, now));
                updates.push(Json::Object(rec));
                owners.push(i);
            }
            if self.mapping.order_item.is_empty() {
                continue;
            }
            for line in &order.lines {
                let Some(item) = line.sf_id.as_ref().filter(|s| !s.is_empty()) else {
                    continue;
                };
                if !is_record_id(item) {
                    failed[i] = Some(
                        Failure::permanent(format!(
                            "line {} has `{item}`, which is not a Salesforce record id",
                            line.line
                        ))
                        .with_code("MALFORMED_ID"),
                    );
                    continue;
                }
                let mut rec = Map::new();
                rec.insert("attributes".into(), json!({"type": "OrderItem"}));
                rec.insert("Id".into(), Json::String(item.clone()));
                self.mapping.order_item.render(&mut rec, |v| v.of(line));
                updates.push(Json::Object(rec));
                owners.push(i);
            }
        }
        // Shipments that left the warehouse: upserted by their hub key.
        let mut shipments = Vec::new();
        let mut shipment_owners = Vec::new();
        for (i, order) in orders.iter().enumerate() {
            let Some(id) = sf_ids[i].as_ref().filter(|_| failed[i].is_none()) else {
                continue;
            };
            for s in &order.shipments {
                if shipment_status(s.milestone).is_none() {
                    continue;
                }
                let mut rec = Map::new();
                rec.insert(
                    "Hub_Key__c".into(),
                    Json::String(format!("{}/{}", order.id, s.id)),
                );
                rec.insert("OrderId".into(), Json::String(id.clone()));
                self.mapping.shipment.render(&mut rec, |v| v.of(s));
                shipments.push(Json::Object(rec));
                shipment_owners.push(i);
            }
        }
        let results = self.client.write(&Write::Update, &updates).await;
        merge(&mut failed, &owners, results);
        let upsert = Write::Upsert {
            sobject: "Shipment".into(),
            field: "Hub_Key__c".into(),
        };
        let results = self.client.write(&upsert, &shipments).await;
        merge(&mut failed, &shipment_owners, results);
        failed
    }

    async fn write_cases(&self, returns: &[(&OrderSummary, &RmaId)]) -> Vec<Option<Failure>> {
        let n = returns.len();
        let mut failed: Vec<Option<Failure>> = vec![None; n];
        let mut case_ids: Vec<Option<String>> = vec![None; n];
        let mut numbers: Vec<String> = Vec::new();
        for (i, (summary, rma)) in returns.iter().enumerate() {
            let Some(ret) = summary.returns.iter().find(|r| &r.rma == *rma) else {
                failed[i] = Some(Failure::permanent(format!(
                    "order {} has no return {rma}",
                    summary.id
                )));
                continue;
            };
            match (&ret.case.sf_id, &ret.case.sf_number) {
                (Some(id), _) if is_record_id(id) => case_ids[i] = Some(id.clone()),
                (Some(id), _) => {
                    failed[i] = Some(
                        Failure::permanent(format!("`{id}` is not a Salesforce case id"))
                            .with_code("MALFORMED_ID"),
                    );
                }
                (None, Some(number)) => numbers.push(number.clone()),
                (None, None) => {
                    failed[i] = Some(Failure::permanent(format!(
                        "return {rma} of order {} names no Salesforce case",
                        summary.id
                    )));
                }
            }
        }
        if !numbers.is_empty() {
            let cache = Mutex::new(HashMap::new());
            let found = self.lookup(&cache, "Case", "CaseNumber", &numbers).await;
            for (i, (summary, rma)) in returns.iter().enumerate() {
                if case_ids[i].is_some() || failed[i].is_some() {
                    continue;
                }
                let number = summary
                    .returns
                    .iter()
                    .find(|r| &r.rma == *rma)
                    .and_then(|r| r.case.sf_number.clone())
                    .unwrap_or_default();
                match &found {
                    Ok(map) => match map.get(&number) {
                        Some(id) => case_ids[i] = Some(id.clone()),
                        None => {
                            failed[i] = Some(
                                Failure::permanent(format!("no case has CaseNumber {number}"))
                                    .with_code("NOT_FOUND"),
                            );
                        }
                    },
                    Err(f) => failed[i] = Some(f.clone()),
                }
            }
        }
        let mut records = Vec::new();
        let mut owners = Vec::new();
        for (i, (summary, rma)) in returns.iter().enumerate() {
            let (Some(id), None) = (&case_ids[i], &failed[i]) else {
                continue;
            };
            let Some(ret) = summary.returns.iter().find(|r| &r.rma == *rma) else {
                continue;
            };
            let mut rec = Map::new();
            rec.insert("attributes".into(), json!({"type": "Case"}));
            rec.insert("Id".into(), Json::String(id.clone()));
            self.mapping.case.render(&mut rec, |v| v.of(ret));
            records.push(Json::Object(rec));
            owners.push(i);
        }
        let results = self.client.write(&Write::Update, &records).await;
        merge(&mut failed, &owners, results);
        failed
    }

    async fn write_levels(&self, levels: &[&InventoryLevel]) -> Vec<Option<Failure>> {
        let n = levels.len();
        let mut failed: Vec<Option<Failure>> = vec![None; n];
        let skus: Vec<String> = levels.iter().map(|l| l.sku.to_string()).collect();
        let products = match self
            .lookup(&self.products, "Product2", "ERP_Item_Code__c", &skus)
            .await
        {
            Ok(p) => p,
            Err(f) => return vec![Some(f); n],
        };
        let mut records = Vec::new();
        let mut owners = Vec::new();
        let mut touched: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, level) in levels.iter().enumerate() {
            let Some(product) = products.get(level.sku.as_str()) else {
                failed[i] = Some(
                    Failure::permanent(format!(
                        "no Salesforce product has ERP_Item_Code__c = {}",
                        level.sku
                    ))
                    .with_code("NOT_FOUND"),
                );
                continue;
            };
            let mut rec = Map::new();
            rec.insert("Hub_Key__c".into(), Json::String(inventory_key(level)));
            rec.insert("Product__c".into(), Json::String(product.clone()));
            self.mapping
                .inventory_level
                .render(&mut rec, |v| v.of(level));
            records.push(Json::Object(rec));
            owners.push(i);
            touched.entry(product.clone()).or_default().push(i);
        }
        let upsert = Write::Upsert {
            sobject: "Inventory_Level__c".into(),
            field: "Hub_Key__c".into(),
        };
        let results = self.client.write(&upsert, &records).await;
        merge(&mut failed, &owners, results);
        if self.mapping.product.is_empty() || touched.is_empty() {
            return failed;
        }
        // Product availability is the sum over every location, so read them all back.
        let ids: Vec<&String> = touched.keys().collect();
        let mut totals: BTreeMap<String, (i64, Option<OffsetDateTime>)> = BTreeMap::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let list: Vec<String> = chunk.iter().map(|k| soql_quote(k)).collect();
            let soql = format!(
                "SELECT Product__c, Available__c, As_Of__c FROM Inventory_Level__c WHERE Product__c IN ({})",
                list.join(", ")
            );
            match self.client.query(&soql).await {
                Ok(rows) => {
                    for row in rows {
                        let Some(product) = str_at(&row, "Product__c") else {
                            continue;
                        };
                        let entry = totals.entry(product.to_owned()).or_insert((0, None));
                        entry.0 += row
                            .get("Available__c")
                            .and_then(Json::as_f64)
                            .map_or(0, |v| v.round() as i64);
                        if let Some(at) = str_at(&row, "As_Of__c").and_then(parse_datetime) {
                            entry.1 = Some(entry.1.map_or(at, |cur: OffsetDateTime| cur.max(at)));
                        }
                    }
                }
                Err(f) => {
                    for product in chunk {
                        for &i in touched.get(*product).into_iter().flatten() {
                            failed[i] = Some(worst(failed[i].take(), f.clone()));
                        }
                    }
                }
            }
        }
        let mut records = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        for (product, (available, as_of)) in &totals {
            let mut rec = Map::new();
            rec.insert("attributes".into(), json!({"type": "Product2"}));
            rec.insert("Id".into(), Json::String(product.clone()));
            self.mapping
                .product
                .render(&mut rec, |v| v.of(*available, *as_of));
            records.push(Json::Object(rec));
            owners.push(touched.get(product).cloned().unwrap_or_default());
        }
        let results = self.client.write(&Write::Update, &records).await;
        for (levels_of_product, result) in owners.iter().zip(results) {
            if let Err(f) = result {
                for &i in levels_of_product {
                    failed[i] = Some(worst(failed[i].take(), f.clone()));
                }
            }
        }
        failed
    }

    async fn write_accounts(&self, reports: &[&CreditReport]) -> Vec<Option<Failure>> {
        let n = reports.len();
        let mut failed: Vec<Option<Failure>> = vec![None; n];
        let keys: Vec<String> = reports.iter().map(|r| r.account.to_string()).collect();
        let ids = match self
            .lookup(&self.accounts, "Account", "ERP_Customer_Number__c", &keys)
            .await
        {
            Ok(ids) => ids,
            Err(f) => return vec![Some(f); n],
        };
        let mut records = Vec::new();
        let mut owners = Vec::new();
        for (i, report) in reports.iter().enumerate() {
            let Some(id) = ids.get(report.account.as_str()) else {
                failed[i] = Some(
                    Failure::permanent(format!(
                        "no Salesforce account has ERP_Customer_Number__c = {}",
                        report.account
                    ))
                    .with_code("NOT_FOUND"),
                );
                continue;
            };
            let mut rec = Map::new();
            rec.insert("attributes".into(), json!({"type": "Account"}));
            rec.insert("Id".into(), Json::String(id.clone()));
            self.mapping
                .account_credit
                .render(&mut rec, |v| v.of(report));
            records.push(Json::Object(rec));
            owners.push(i);
        }
        let results = self.client.write(&Write::Update, &records).await;
        merge(&mut failed, &owners, results);
        failed
    }

    /// Reads an order with its items and turns it into a draft.
    async fn read(&self, sf_id: &str) -> Result<OrderDraft, Failure> {
        if !is_record_id(sf_id) {
            return Err(
                Failure::permanent(format!("`{sf_id}` is not a Salesforce record id"))
                    .with_code("MALFORMED_ID"),
            );
        }
        let order_fields = self.fields_of("Order").await?;
        let account_fields = self.fields_of("Account").await?;
        let product_fields = self.fields_of("Product2").await?;
        let has = |set: &HashSet<String>, f: &str| set.contains(&f.to_ascii_lowercase());

        let mut select = vec![
            "Id".to_owned(),
            "OrderNumber".to_owned(),
            "Status".to_owned(),
            "EffectiveDate".to_owned(),
            "ActivatedDate".to_owned(),
            "AccountId".to_owned(),
        ];
        for f in ["CurrencyIsoCode", "Sales_Channel__c", "Hub_Order_Id__c"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(self.mapping.region_fields.iter().cloned())
        {
            if has(&order_fields, &f) && !select.contains(&f) {
                select.push(f);
            }
        }
        for f in ["ERP_Customer_Number__c", "AccountNumber"] {
            if has(&account_fields, f) {
                select.push(format!("Account.{f}"));
            }
        }
        let soql = format!(
            "SELECT {} FROM Order WHERE Id = {}",
            select.join(", "),
            soql_quote(sf_id)
        );
        let order = self
            .client
            .query(&soql)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Failure::permanent(format!("no order has id {sf_id}")).with_code("NOT_FOUND")
            })?;

        let sku_fields: Vec<&String> = self
            .mapping
            .sku_fields
            .iter()
            .filter(|f| has(&product_fields, f))
            .collect();
        let mut item_select = vec![
            "Id".to_owned(),
            "OrderItemNumber".to_owned(),
            "Quantity".to_owned(),
            "UnitPrice".to_owned(),
        ];
        item_select.extend(sku_fields.iter().map(|f| format!("Product2.{f}")));
        let soql = format!(
            "SELECT {} FROM OrderItem WHERE OrderId = {} ORDER BY OrderItemNumber",
            item_select.join(", "),
            soql_quote(sf_id)
        );
        let items = self.client.query(&soql).await?;
        draft_from(
            &order,
            &items,
            &sku_fields,
            &self.mapping.region_fields,
            self.clock.now(),
        )
    }
}

/// Folds per-record results into their owners' failures.
fn merge(failed: &mut [Option<Failure>], owners: &[usize], results: Vec<Result<Written, Failure>>) {
    for (&owner, result) in owners.iter().zip(results) {
        if let Err(f) = result {
            failed[owner] = Some(worst(failed[owner].take(), f));
        }
    }
}

/// Runs `write` once per distinct key (the last entry with a key wins: it is the newest
/// state) and gives every entry its key's result.
async fn per_key<'a, T, K, F, Fut>(
    items: &'a [T],
    key: K,
    write: F,
) -> Vec<crossdock_ports::failure::Result<()>>
where
    K: Fn(&T) -> String,
    F: FnOnce(Vec<&'a T>) -> Fut,
    Fut: std::future::Future<Output = Vec<Option<Failure>>>,
{
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    let mut unique: Vec<&T> = Vec::new();
    let mut slots = Vec::with_capacity(items.len());
    for item in items {
        let k = key(item);
        let slot = match slot_of.get(&k) {
            Some(&s) => {
                unique[s] = item;
                s
            }
            None => {
                slot_of.insert(k, unique.len());
                unique.push(item);
                unique.len() - 1
            }
        };
        slots.push(slot);
    }
    let results = write(unique).await;
    slots
        .into_iter()
        .map(|s| match results.get(s) {
            Some(None) => Ok(()),
            Some(Some(f)) => Err(f.clone()),
            None => Err(Failure::unknown("no result for this record")),
        })
        .collect()
}

#[async_trait]
impl Salesforce for Adapter {
    async fn write_orders(
        &self,
        orders: &[OrderSummary],
    ) -> Vec<crossdock_ports::failure::Result<()>> {
        per_key(
            orders,
            |o| o.id.to_string(),
            |unique| async move { self.write_unique_orders(&unique).await },
        )
        .await
    }

    async fn write_returns(
        &self,
        returns: &[(OrderSummary, RmaId)],
    ) -> Vec<crossdock_ports::failure::Result<()>> {
        per_key(
            returns,
            |(o, r)| format!("{}\u{0}{r}", o.id),
            |unique| async move {
                let pairs: Vec<(&OrderSummary, &RmaId)> =
                    unique.iter().map(|(o, r)| (o, r)).collect();
                self.write_cases(&pairs).await
            },
        )
        .await
    }

    async fn write_inventory(
        &self,
        levels: &[InventoryLevel],
    ) -> Vec<crossdock_ports::failure::Result<()>> {
        per_key(levels, inventory_key, |unique| async move {
            self.write_levels(&unique).await
        })
        .await
    }

    async fn write_credit(
        &self,
        reports: &[CreditReport],
    ) -> Vec<crossdock_ports::failure::Result<()>> {
        per_key(
            reports,
            |r| r.account.to_string(),
            |unique| async move { self.write_accounts(&unique).await },
        )
        .await
    }

    async fn read_order(&self, sf_id: &str) -> crossdock_ports::failure::Result<OrderDraft> {
        self.read(sf_id).await
    }

    fn usage(&self) -> Option<ApiUsage> {
        self.client.limits().usage()
    }
}

/// The string at a dotted path (`Account.AccountNumber`) of a record; `None` when absent,
/// null or empty.
pub fn str_at<'a>(record: &'a Json, path: &str) -> Option<&'a str> {
    let mut cur = record;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// Parses a Salesforce datetime (`2026-11-26T22:33:00.000+0000`, also with `Z` or `+00:00`).
pub fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    // `+0000` → `+00:00`.
    let (main, offset) = text.split_at(text.len().checked_sub(5)?);
    if (offset.starts_with('+') || offset.starts_with('-'))
        && offset[1..].bytes().all(|b| b.is_ascii_digit())
    {
        let fixed = format!("{main}{}:{}", &offset[..3], &offset[3..]);
        return OffsetDateTime::parse(&fixed, &Rfc3339).ok();
    }
    None
}

/// A decimal from a JSON number or numeric string, exactly as written.
pub fn decimal(value: &Json) -> Option<Decimal> {
    let text = match value {
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.clone(),
        _ => return None,
    };
    Decimal::from_str(&text)
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok())
}

/// A sales channel as stored in `Sales_Channel__c`.
pub fn parse_channel(text: Option<&str>) -> Result<Channel, Failure> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Channel::B2b);
    };
    [
        Channel::B2b,
        Channel::Web,
        Channel::Marketplace,
        Channel::Store,
    ]
    .into_iter()
    .find(|c| c.as_str().eq_ignore_ascii_case(text))
    .ok_or_else(|| {
        Failure::permanent(format!(
            "Sales_Channel__c `{text}` is not one of B2B, Web, Marketplace, Store"
        ))
    })
}

/// Builds a draft from an `Order` row and its `OrderItem` rows.
///
/// # Errors
/// A permanent failure naming the first field that cannot be understood.
pub fn draft_from(
    order: &Json,
    items: &[Json],
    sku_fields: &[&String],
    region_fields: &[String],
    now: OffsetDateTime,
) -> Result<OrderDraft, Failure> {
    let sf_id = str_at(order, "Id").ok_or_else(|| Failure::unknown("order row has no Id"))?;
    let number = str_at(order, "OrderNumber")
        .ok_or_else(|| Failure::permanent(format!("order {sf_id} has no OrderNumber")))?;
    let id = str_at(order, "Hub_Order_Id__c").map_or_else(|| format!("SF-{number}"), str::to_owned);
    let account = str_at(order, "Account.ERP_Customer_Number__c")
        .or_else(|| str_at(order, "Account.AccountNumber"))
        .ok_or_else(|| {
            Failure::permanent(format!(
                "the account of order {number} has neither ERP_Customer_Number__c nor AccountNumber"
            ))
        })?;
    let currency = match str_at(order, "CurrencyIsoCode") {
        Some(code) => Currency::from_str(code)
            .map_err(|e| Failure::permanent(format!("order {number}: {e}")))?,
        None => Currency::USD,
    };
    let channel = parse_channel(str_at(order, "Sales_Channel__c"))
        .map_err(|f| Failure::permanent(format!("order {number}: {}", f.message)))?;
    let region = region_fields
        .iter()
        .find_map(|f| str_at(order, f))
        .map(str::to_owned);
    let captured_at = str_at(order, "ActivatedDate")
        .and_then(parse_datetime)
        .unwrap_or(now);
    let mut rows: Vec<&Json> = items.iter().collect();
    rows.sort_by(|a, b| str_at(a, "OrderItemNumber").cmp(&str_at(b, "OrderItemNumber")));
    let mut lines = Vec::with_capacity(rows.len());
    for (n, row) in rows.iter().enumerate() {
        let item_id = str_at(row, "Id").unwrap_or("?");
        let quantity = row
            .get("Quantity")
            .and_then(Json::as_f64)
            .ok_or_else(|| Failure::permanent(format!("order item {item_id} has no Quantity")))?;
        if quantity.fract() != 0.0 || quantity <= 0.0 || quantity > f64::from(u32::MAX) {
            return Err(Failure::permanent(format!(
                "order item {item_id} has quantity {quantity}; only whole positive units are supported"
            )));
        }
        let unit_price = row.get("UnitPrice").and_then(decimal).ok_or_else(|| {
            Failure::permanent(format!("order item {item_id} has no readable UnitPrice"))
        })?;
        let sku = sku_fields
            .iter()
            .find_map(|f| str_at(row, &format!("Product2.{f}")))
            .ok_or_else(|| {
                Failure::permanent(format!(
                    "the product of order item {item_id} has no SKU in {}",
                    sku_fields
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        lines.push(DraftLine {
            line: LineNo(u32::try_from(n + 1).unwrap_or(u32::MAX)),
            sku: Sku::new(sku),
            quantity: quantity as u32,
            unit_price,
            sf_id: Some(item_id.to_owned()),
        });
    }
    if lines.is_empty() {
        return Err(Failure::permanent(format!("order {number} has no items")));
    }
    Ok(OrderDraft {
        id: OrderId::new(id),
        refs: ExternalRefs {
            sf_id: Some(sf_id.to_owned()),
            sf_number: Some(number.to_owned()),
            erp_ref: None,
        },
        account: AccountId::new(account),
        channel,
        currency,
        lines,
        region,
        source: System::Salesforce,
        captured_at,
    })
}
