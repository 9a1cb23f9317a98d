//! Plays the planned day: mirrors the ERP's customers and products into Salesforce, then, on
//! schedule, places orders as sales reps and web shoppers would (in Salesforce), asks for a
//! cancellation, opens return cases once goods are delivered, and takes the ERP down for a
//! while in the middle of the day. The hub is not told anything directly: it hears it all
//! through Salesforce Change Data Capture and the ERP's change feed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossdock_domain::ids::{AccountId, Sku};
use crossdock_ports::erp::PriceRequest;
use crossdock_ports::{Erp, Failure, FailureClass};
use crossdock_store::SharedStore;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::salesforce_user::SalesforceUser;
use super::scenario::{Plan, PlannedOrder, Twist};

/// Namespace of the demo's own bookkeeping in the store (what was already done, for resume).
const KV: &str = "demo";

/// How long a start-up step keeps retrying a system that fails for a passing reason (the
/// ERP's outage window lasts a fraction of the day; the longest day is 600 s).
pub const START_PATIENCE: Duration = Duration::from_secs(600);

/// Runs `attempt` until it succeeds: a transient or throttled failure (the ERP in its outage
/// window, say) is shown and retried with backoff — 0.5 s doubling to 8 s, or the system's
/// `Retry-After` — for at most `patience`; a permanent failure, or one past `patience`, ends it.
///
/// # Errors
/// The last failure, with `what` as its context.
pub async fn with_retries<T, F, Fut>(what: &str, patience: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let failure = match attempt().await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        let wait = match failure.class {
            FailureClass::Transient | FailureClass::Conflict => delay,
            FailureClass::Throttled { retry_after } => retry_after.unwrap_or(delay),
            _ => return Err(anyhow::anyhow!("{what}: {failure}")),
        };
        if started.elapsed() + wait > patience {
            return Err(anyhow::anyhow!(
                "{what}: {failure} (still failing after {}s)",
                started.elapsed().as_secs()
            ));
        }
        eprintln!("{what}: {failure}; retrying in {:.1}s", wait.as_secs_f64());
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(Duration::from_secs(8));
    }
}

/// A customer of the demo, with its Salesforce id.
#[derive(Debug, Clone)]
pub struct Customer {
    /// Shared account number.
    pub account: String,
    /// Salesforce id.
    pub sf_id: String,
}

/// A product of the demo, with its Salesforce price book entry.
#[derive(Debug, Clone)]
pub struct Item {
    /// SKU.
    pub sku: String,
    /// List price.
    pub list_price: Decimal,
    /// Salesforce standard price book entry id.
    pub entry_id: String,
}

/// What the driver works with.
pub struct Driver {
    /// The Salesforce user placing orders.
    pub user: Arc<SalesforceUser>,
    /// The ERP (for the prices a rep would look up).
    pub erp: Arc<dyn Erp>,
    /// The hub's store (the driver's own bookkeeping lives in its `demo` records).
    pub store: SharedStore,
    /// Customers.
    pub customers: Vec<Customer>,
    /// Products.
    pub items: Vec<Item>,
    /// Standard price book.
    pub pricebook: String,
    /// The ERP's price per (order, line), looked up before the day starts, as reps keep
    /// their customers' negotiated prices at hand (the ERP may be down when they take an order).
    pub prices: std::sync::Mutex<BTreeMap<(u32, usize), Decimal>>,
}

/// Mirrors customers and products into Salesforce (once; a resumed demo finds them there).
pub async fn mirror(
    user: &SalesforceUser,
    customers: Vec<(String, String, String)>,
    items: Vec<(String, String, Decimal, i64)>,
) -> Result<(Vec<Customer>, Vec<Item>, String)> {
    let pricebook = user
        .query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
        .await?
        .first()
        .and_then(|r| r["Id"].as_str().map(str::to_owned))
        .context("the org has no standard price book")?;
    let existing: BTreeMap<String, String> = user
        .query("SELECT Id, AccountNumber FROM Account")
        .await?
        .into_iter()
        .filter_map(|r| {
            Some((
                r["AccountNumber"].as_str()?.to_owned(),
                r["Id"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let missing: Vec<&(String, String, String)> = customers
        .iter()
        .filter(|c| !existing.contains_key(&c.0))
        .collect();
    let ids = user
        .create(
            "Account",
            missing
                .iter()
                .map(|(account, name, tier)| {
                    json!({
                        "Name": name,
                        "AccountNumber": account,
                        "ERP_Customer_Number__c": account,
                        "Customer_Tier__c": tier,
                        "Type": "Customer",
                    })
                })
                .collect(),
        )
        .await?;
    let mut account_ids = existing;
    for (customer, id) in missing.iter().zip(ids) {
        account_ids.insert(customer.0.clone(), id);
    }
    let existing_entries: BTreeMap<String, String> = user
        .query("SELECT Id, ProductCode FROM PricebookEntry")
        .await?
        .into_iter()
        .filter_map(|r| {
            Some((
                r["ProductCode"].as_str()?.to_owned(),
                r["Id"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let new_items: Vec<&(String, String, Decimal, i64)> = items
        .iter()
        .filter(|i| !existing_entries.contains_key(&i.0))
        .collect();
    let product_ids = user
        .create(
            "Product2",
            new_items
                .iter()
                .map(|(sku, name, _, _)| {
                    json!({
                        "Name": name,
                        "ProductCode": sku,
                        "StockKeepingUnit": sku,
                        "ERP_Item_Code__c": sku,
                        "IsActive": true,
                    })
                })
                .collect(),
        )
        .await?;
    let entry_ids = user
        .create(
            "PricebookEntry",
            new_items
                .iter()
                .zip(&product_ids)
                .map(|((_, _, price, _), product)| {
                    json!({
                        "Pricebook2Id": pricebook,
                        "Product2Id": product,
                        "UnitPrice": price.to_string().parse::<f64>().unwrap_or(0.0),
                        "IsActive": true,
                    })
                })
                .collect(),
        )
        .await?;
    let mut entries = existing_entries;
    for (item, id) in new_items.iter().zip(entry_ids) {
        entries.insert(item.0.clone(), id);
    }
    let customers = customers
        .into_iter()
        .filter_map(|(account, _, _)| {
            Some(Customer {
                sf_id: account_ids.get(&account)?.clone(),
                account,
            })
        })
        .collect();
    let items = items
        .into_iter()
        .filter_map(|(sku, _, list_price, _)| {
            Some(Item {
                entry_id: entries.get(&sku)?.clone(),
                sku,
                list_price,
            })
        })
        .collect();
    Ok((customers, items, pricebook))
}

impl Driver {
    async fn done(&self, key: &str) -> bool {
        self.store.kv_get(KV, key).await.ok().flatten().is_some()
    }

    async fn remember(&self, key: &str, value: Value) -> Result<()> {
        self.store
            .kv_put(
                KV,
                key,
                value,
                crossdock_ports::Clock::now(&crossdock_ports::SystemClock),
            )
            .await?;
        Ok(())
    }

    /// The Salesforce id of a placed order.
    pub async fn placed(&self, n: u32) -> Option<String> {
        self.store
            .kv_get(KV, &format!("placed:{n}"))
            .await
            .ok()
            .flatten()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Notes as placed the orders an earlier run placed in Salesforce but was stopped before it
    /// noted them (a placement is one all-or-none composite call, so an order found there is
    /// whole): without this, a resumed day would place them a second time. Returns how many.
    pub async fn recover_placed(&self, plan: &Plan) -> Result<usize> {
        let mut unnoted = BTreeMap::new();
        for order in &plan.orders {
            if self.placed(order.n).await.is_none() {
                unnoted.insert(format!("demo order {}", order.n), order.n);
            }
        }
        if unnoted.is_empty() {
            return Ok(0);
        }
        let mut recovered = 0;
        for row in self.user.query("SELECT Id, Description FROM Order").await? {
            let (Some(id), Some(description)) = (row["Id"].as_str(), row["Description"].as_str())
            else {
                continue;
            };
            if let Some(n) = unnoted.remove(description) {
                self.remember(&format!("placed:{n}"), json!(id)).await?;
                recovered += 1;
            }
        }
        Ok(recovered)
    }

    /// Looks up the ERP's price of every line of every order not placed yet.
    pub async fn look_up_prices(&self, plan: &Plan) -> Result<()> {
        let today = crossdock_ports::Clock::now(&crossdock_ports::SystemClock).date();
        for order in &plan.orders {
            if self.placed(order.n).await.is_some() {
                continue;
            }
            let customer = &self.customers[order.customer % self.customers.len()];
            let requests: Vec<PriceRequest> = order
                .lines
                .iter()
                .map(|(item, qty)| PriceRequest {
                    sku: Sku::new(self.items[*item % self.items.len()].sku.clone()),
                    quantity: *qty,
                })
                .collect();
            let account = AccountId::new(customer.account.clone());
            let quotes = with_retries(
                &format!("price lookup for order {}", order.n),
                START_PATIENCE,
                || self.erp.prices(&account, &requests, today),
            )
            .await?;
            let mut prices = self
                .prices
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (index, request) in requests.iter().enumerate() {
                if let Some(quote) = quotes.iter().find(|q| q.sku == request.sku) {
                    prices.insert((order.n, index), quote.unit_price);
                }
            }
        }
        Ok(())
    }

    /// Places one order in Salesforce as its rep would.
    pub async fn place(&self, order: &PlannedOrder) -> Result<String> {
        let customer = &self.customers[order.customer % self.customers.len()];
        let lines: Vec<(&Item, u32)> = order
            .lines
            .iter()
            .map(|(item, qty)| (&self.items[*item % self.items.len()], *qty))
            .collect();
        let today = crossdock_ports::Clock::now(&crossdock_ports::SystemClock).date();
        let known = self
            .prices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let items: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(index, (item, qty))| {
                let mut price = known
                    .get(&(order.n, index))
                    .copied()
                    .unwrap_or(item.list_price);
                if order.twist == Twist::PriceMismatch {
                    // The rep promises 15 % off that the ERP never agreed to.
                    price = (price * Decimal::new(85, 2)).round_dp(2);
                }
                json!({
                    "PricebookEntryId": item.entry_id,
                    "Quantity": qty,
                    "UnitPrice": price.to_string().parse::<f64>().unwrap_or(0.0),
                })
            })
            .collect();
        let header = json!({
            "AccountId": customer.sf_id,
            "EffectiveDate": today.to_string(),
            "Status": "Draft",
            "Pricebook2Id": self.pricebook,
            "Sales_Channel__c": order.channel,
            "Description": format!("demo order {}", order.n),
        });
        let id = self.user.place_order(header, items).await?;
        self.remember(&format!("placed:{}", order.n), json!(id))
            .await?;
        Ok(id)
    }

    /// Asks Salesforce to cancel an order (the hub hears it through Change Data Capture).
    pub async fn cancel(&self, n: u32, sf_id: &str) -> Result<()> {
        if self.done(&format!("cancelled:{n}")).await {
            return Ok(());
        }
        self.user
            .update(
                "Order",
                sf_id,
                json!({ "Cancel_Requested__c": true, "Cancel_Reason__c": "Customer found a cheaper offer" }),
            )
            .await?;
        self.remember(&format!("cancelled:{n}"), json!(true)).await
    }

    /// Opens a return case for the first line of a delivered order.
    pub async fn open_return(&self, order: &PlannedOrder, sf_id: &str) -> Result<bool> {
        if self.done(&format!("case:{}", order.n)).await {
            return Ok(false);
        }
        let row = self
            .user
            .query(&format!(
                "SELECT Id, Hub_Status__c, AccountId FROM Order WHERE Id = '{sf_id}'"
            ))
            .await?;
        let Some(row) = row.first() else {
            return Ok(false);
        };
        let status = row["Hub_Status__c"].as_str().unwrap_or_default();
        if !["Delivered", "Invoiced", "Paid", "Closed"].contains(&status) {
            return Ok(false);
        }
        let (item, _) = order.lines[0];
        let sku = &self.items[item % self.items.len()].sku;
        let ids = self
            .user
            .create(
                "Case",
                vec![json!({
                    "Subject": format!("Return for demo order {}", order.n),
                    "AccountId": row["AccountId"],
                    "Order__c": sf_id,
                    "Type": "Return",
                    "Reason": "Damaged",
                    "Origin": "Web",
                    "Status": "New",
                    "Return_Lines__c": format!("{sku}:1"),
                })],
            )
            .await?;
        self.remember(&format!("case:{}", order.n), json!(ids.first()))
            .await?;
        Ok(true)
    }

    /// Plays the day: places every order not placed yet, on schedule, takes the ERP down
    /// during the outage window, and asks for the planned cancellations. A resumed day (some
    /// orders were placed by an earlier run) places the rest at once instead of waiting its
    /// schedule again from the start. Calls `placed` after each order.
    pub async fn play(
        &self,
        plan: &Plan,
        erp_admin: Option<crossdock_erp::sim::Admin>,
        mut on_placed: impl FnMut(),
    ) -> Result<()> {
        let started = Instant::now();
        let mut resumed = false;
        for order in &plan.orders {
            if self.placed(order.n).await.is_some() {
                resumed = true;
                break;
            }
        }
        let mut outage_started = self.done("outage").await;
        let mut pending_cancels: Vec<(Instant, u32, String)> = Vec::new();
        for order in &plan.orders {
            if let Some(id) = self.placed(order.n).await {
                if order.twist == Twist::Cancel {
                    pending_cancels.push((Instant::now(), order.n, id));
                }
                on_placed();
                continue;
            }
            let due = started + order.at;
            let now = Instant::now();
            if due > now && !resumed {
                tokio::time::sleep(due - now).await;
            }
            if !outage_started && order.at >= plan.outage.0 {
                if let Some(admin) = &erp_admin {
                    let duration = (plan.outage.1 - plan.outage.0).as_millis();
                    with_retries("starting the ERP outage", START_PATIENCE, || {
                        admin.start_outage(
                            crossdock_erp::sim::OutageMode::Http503,
                            Some(i64::try_from(duration).unwrap_or(i64::MAX)),
                        )
                    })
                    .await?;
                }
                outage_started = true;
                self.remember("outage", json!(true)).await?;
            }
            let id = self
                .place(order)
                .await
                .with_context(|| format!("placing order {}", order.n))?;
            if order.twist == Twist::Cancel {
                pending_cancels.push((Instant::now() + Duration::from_millis(300), order.n, id));
            }
            let now = Instant::now();
            let mut later = Vec::new();
            for (at, n, id) in pending_cancels.drain(..) {
                if at <= now {
                    self.cancel(n, &id).await?;
                } else {
                    later.push((at, n, id));
                }
            }
            pending_cancels = later;
            on_placed();
        }
        for (at, n, id) in pending_cancels {
            let now = Instant::now();
            if at > now {
                tokio::time::sleep(at - now).await;
            }
            self.cancel(n, &id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_transient_failure_at_start_is_retried_until_it_passes() {
        let attempts = AtomicU32::new(0);
        let answer = with_retries("reading the ERP's master data", START_PATIENCE, || async {
            if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Failure::transient(
                    "catalog: the ERP is unavailable (outage window)",
                ))
            } else {
                Ok(7)
            }
        })
        .await
        .expect("passes once the outage is over");
        assert_eq!((answer, attempts.load(Ordering::SeqCst)), (7, 3));
    }

    #[tokio::test]
    async fn a_permanent_failure_ends_at_once_and_one_past_patience_gives_up() {
        let attempts = AtomicU32::new(0);
        let error = with_retries("reading", START_PATIENCE, || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Failure::permanent("no such customer"))
        })
        .await
        .expect_err("permanent");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert!(error.to_string().contains("reading: "), "{error}");

        let attempts = AtomicU32::new(0);
        let error = with_retries("reading", Duration::from_millis(800), || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Failure::transient("still down"))
        })
        .await
        .expect_err("gave up");
        // 0.5 s, then the next wait (1 s) would pass the patience of 0.8 s.
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert!(error.to_string().contains("still failing"), "{error}");
    }
}
