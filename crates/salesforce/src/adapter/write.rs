//! Batched write-backs: records per order, per return, per stock level and per credit
//! report, sent through collections calls and folded back into one result per entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::ids::RmaId;
use crossdock_domain::summary::OrderSummary;
use crossdock_ports::Failure;
use crossdock_ports::erp::CreditReport;
use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;

use super::read::{parse_datetime, str_at};
use super::{Adapter, IN_CHUNK, remember};
use crate::client::{Write, Written, is_record_id, soql_quote};
use crate::errors::worst;
use crate::mapping::{inventory_key, shipment_status};

impl Adapter {
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

    pub(super) async fn write_unique_orders(
        &self,
        orders: &[&OrderSummary],
    ) -> Vec<Option<Failure>> {
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

    pub(super) async fn write_cases(
        &self,
        returns: &[(&OrderSummary, &RmaId)],
    ) -> Vec<Option<Failure>> {
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

    pub(super) async fn write_levels(&self, levels: &[&InventoryLevel]) -> Vec<Option<Failure>> {
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

    pub(super) async fn write_accounts(&self, reports: &[&CreditReport]) -> Vec<Option<Failure>> {
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
pub(super) async fn per_key<'a, T, K, F, Fut>(
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
