//! The ERP port implemented against Tryton over JSON-RPC.
//!
//! Call map (details in each submodule):
//!
//! | port operation | Tryton |
//! | --- | --- |
//! | prices | `product.product.sale_price_uom` under the party's price list |
//! | availability, fulfilment options | `product.product` `quantity` / `forecast_quantity` per warehouse |
//! | credit check / status | `party.party` `credit_limit_amount` / `credit_amount`; the binding check is `confirm` |
//! | customer upsert | `party.party` by `code` |
//! | book order | `sale.sale` by `reference`, else `create` → `quote` → `confirm` (→ `process`) |
//! | order, change feed | `sale.sale`, `stock.shipment.out(.return)`, `account.invoice` |
//! | cancel | `sale.sale.cancel`, or shipment + invoice cancel and the exception wizards |
//! | returns | negative-quantity sale with `origin`, return shipment `receive`/`do`, credit note `post`, `account.invoice.pay` |
//!
//! Writes are serialised per business key inside the adapter (Tryton's `sale.reference`
//! is not unique) and look up before they create, so repeating a call never duplicates.

mod booking;
mod catalog;
mod customers;
mod feed;
mod returns;
mod snapshot;
mod warehouse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use crossdock_domain::account::Account;
use crossdock_domain::catalog::{FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::{AccountId, LineNo, LocationId, Sku};
use crossdock_domain::money::Currency;
use crossdock_domain::order::CreditAnswer;
use crossdock_ports::erp::{
    BookingConfirmation, BookingRequest, CancelOutcome, ChangeBatch, CreditMemo, CreditReport,
    CustomerRef, ErpOrder, FulfilmentRequest, PriceQuote, PriceRequest, Refund,
    ReturnAuthorisation, ReturnReceipt, ReturnRequest,
};
use crossdock_ports::failure::Result;
use crossdock_ports::{Clock, Erp, Failure};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::client::Client;
use super::config::Config;
use super::error::Error;

pub use warehouse::{ShipmentStep, ShipmentView};

/// Builds a call context from key/value pairs.
fn ctx<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The context wizards and buttons need to know the record they work on.
fn active(model: &str, id: i64) -> Map<String, Value> {
    ctx([
        ("active_model", json!(model)),
        ("active_id", json!(id)),
        ("active_ids", json!([id])),
    ])
}

/// One async mutex per business key, dropped when nobody holds it.
#[derive(Debug, Default)]
struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key.to_owned(), Arc::downgrade(&lock));
        lock
    }
}

/// A product as the adapter needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Product {
    id: i64,
    sku: Sku,
    uom: i64,
    list_price: Decimal,
}

#[derive(Debug, Default)]
struct ProductCache {
    by_sku: HashMap<Sku, Product>,
    sku_by_id: HashMap<i64, Sku>,
}

/// A customer (`party.party`) as the adapter needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Party {
    id: i64,
    name: String,
    addresses: Vec<i64>,
    payment_term: Option<i64>,
    price_list: Option<i64>,
}

/// The Tryton ERP adapter.
pub struct Adapter {
    client: Client,
    config: Config,
    clock: Arc<dyn Clock>,
    currency: Currency,
    /// Tryton id of the company currency, set once the company and the warehouses have been
    /// checked against the configuration (on `connect`, or on the first call after `new`).
    currency_id: tokio::sync::OnceCell<i64>,
    products: Mutex<ProductCache>,
    locks: KeyedLocks,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("url", &self.config.url)
            .field("database", &self.config.database)
            .field("user", &self.config.user)
            .field("currency", &self.currency)
            .finish_non_exhaustive()
    }
}

impl Adapter {
    /// An adapter that reaches Tryton only on its first call, so the hub can start while
    /// Tryton is down (calls fail as transient until it answers).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration or an unreadable password file.
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> std::result::Result<Self, Error> {
        let client = Client::new(config.client_config()?)?;
        Ok(Self {
            client,
            currency: config.currency,
            config,
            clock,
            currency_id: tokio::sync::OnceCell::new(),
            products: Mutex::new(ProductCache::default()),
            locks: KeyedLocks::default(),
        })
    }

    /// An adapter that has logged in and checked the configuration against Tryton: the
    /// company currency is the configured one and the warehouses are Tryton warehouses.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration, another currency or unknown
    /// warehouses, and any client error of the calls made.
    pub async fn connect(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> std::result::Result<Self, Error> {
        let adapter = Self::new(config, clock)?;
        adapter.ready().await?;
        Ok(adapter)
    }

    /// Checks the company and the warehouses once; returns the currency's Tryton id.
    async fn ready(&self) -> std::result::Result<i64, Error> {
        self.currency_id
            .get_or_try_init(|| self.check_setup())
            .await
            .copied()
    }

    async fn check_setup(&self) -> std::result::Result<i64, Error> {
        let client = &self.client;
        if client.context().is_none() {
            client.login().await?;
        }
        let company = client
            .context()
            .and_then(|c| c.get("company").and_then(Value::as_i64))
            .ok_or_else(|| Error::Config("the Tryton user has no company".to_owned()))?;
        let company = client
            .read("company.company", &[company], &["currency"], None)
            .await?;
        let currency_id = company
            .first()
            .ok_or_else(|| Error::malformed("model.company.company.read", "no company record"))?
            .int("currency")?;
        let currency = client
            .read("currency.currency", &[currency_id], &["code"], None)
            .await?;
        let code = currency
            .first()
            .ok_or_else(|| Error::malformed("model.currency.currency.read", "no currency record"))?
            .str("code")?
            .to_owned();
        if code != self.currency.code() {
            return Err(Error::Config(format!(
                "the Tryton company works in {code}, the adapter is configured for {}",
                self.currency
            )));
        }
        let ids: Vec<i64> = self.config.warehouses.iter().map(|w| w.id).collect();
        let found = client
            .search_read(
                "stock.location",
                json!([["id", "in", ids], ["type", "=", "warehouse"]]),
                0,
                None,
                None,
                &["id"],
                None,
            )
            .await?;
        let found: Vec<i64> = found
            .iter()
            .map(|r| r.id())
            .collect::<std::result::Result<_, _>>()?;
        let missing: Vec<String> = self
            .config
            .warehouses
            .iter()
            .filter(|w| !found.contains(&w.id))
            .map(|w| format!("{} (id {})", w.location, w.id))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Config(format!(
                "not Tryton warehouses: {}",
                missing.join(", ")
            )));
        }
        Ok(currency_id)
    }

    /// The JSON-RPC client (for diagnostics and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The company currency (configured, and checked against Tryton on first contact);
    /// every price and amount is in it.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    fn default_warehouse(&self) -> Result<i64> {
        self.config
            .warehouses
            .first()
            .map(|w| w.id)
            .ok_or_else(|| Failure::permanent("no Tryton warehouse configured"))
    }

    /// The hub's name of a Tryton warehouse.
    fn location_of(&self, warehouse: i64) -> LocationId {
        self.config.warehouse_by_id(warehouse).map_or_else(
            || LocationId::new(format!("tryton-warehouse-{warehouse}")),
            |w| LocationId::new(w.location.clone()),
        )
    }

    fn warehouse_named(&self, location: &LocationId) -> Result<i64> {
        self.config
            .warehouse_named(location.as_str())
            .map(|w| w.id)
            .ok_or_else(|| {
                Failure::permanent(format!(
                    "location {location} is not a configured Tryton warehouse"
                ))
            })
    }

    fn check_currency(&self, currency: Currency) -> Result<()> {
        if currency == self.currency {
            Ok(())
        } else {
            Err(Failure::permanent(format!(
                "Tryton works in {}; cannot handle an amount in {currency}",
                self.currency
            )))
        }
    }

    /// Products by SKU (cached after the first lookup).
    async fn products(&self, skus: &[Sku]) -> Result<HashMap<Sku, Product>> {
        let missing: Vec<&str> = {
            let cache = self
                .products
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            skus.iter()
                .filter(|s| !cache.by_sku.contains_key(*s))
                .map(Sku::as_str)
                .collect()
        };
        if !missing.is_empty() {
            let records = self
                .client
                .search_read(
                    "product.product",
                    json!([["code", "in", missing]]),
                    0,
                    None,
                    None,
                    &["code", "default_uom", "list_price_used"],
                    None,
                )
                .await?;
            let mut found = Vec::new();
            for record in &records {
                found.push(Product {
                    id: record.id()?,
                    sku: Sku::new(record.str("code")?),
                    uom: record.int("default_uom")?,
                    list_price: record.opt_decimal("list_price_used")?.unwrap_or_default(),
                });
            }
            let mut cache = self
                .products
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for product in found {
                cache.sku_by_id.insert(product.id, product.sku.clone());
                cache.by_sku.insert(product.sku.clone(), product);
            }
        }
        let cache = self
            .products
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut unknown = Vec::new();
        let mut result = HashMap::new();
        for sku in skus {
            match cache.by_sku.get(sku) {
                Some(product) => {
                    result.insert(sku.clone(), product.clone());
                }
                None => unknown.push(sku.as_str()),
            }
        }
        if unknown.is_empty() {
            Ok(result)
        } else {
            unknown.sort_unstable();
            unknown.dedup();
            Err(
                Failure::permanent(format!("unknown SKU in Tryton: {}", unknown.join(", ")))
                    .with_code("UnknownProduct"),
            )
        }
    }

    /// SKUs of Tryton product ids (cached).
    async fn skus_of(&self, ids: &[i64]) -> Result<HashMap<i64, Sku>> {
        let missing: Vec<i64> = {
            let cache = self
                .products
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut missing: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|id| !cache.sku_by_id.contains_key(id))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        if !missing.is_empty() {
            let records = self
                .client
                .read("product.product", &missing, &["code"], None)
                .await?;
            let mut cache = self
                .products
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for record in &records {
                let sku = record.opt_str("code")?.map_or_else(
                    || format!("tryton-product-{}", record.id().unwrap_or(0)),
                    str::to_owned,
                );
                cache.sku_by_id.insert(record.id()?, Sku::new(sku));
            }
        }
        let cache = self
            .products
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(ids
            .iter()
            .filter_map(|id| cache.sku_by_id.get(id).map(|s| (*id, s.clone())))
            .collect())
    }

    /// The customer whose `code` is the hub account id.
    async fn party(&self, account: &AccountId) -> Result<Party> {
        let records = self
            .client
            .search_read(
                "party.party",
                json!([["code", "=", account.as_str()]]),
                0,
                Some(1),
                None,
                &[
                    "name",
                    "addresses",
                    "customer_payment_term",
                    "sale_price_list",
                ],
                None,
            )
            .await?;
        let record = records.first().ok_or_else(|| {
            Failure::permanent(format!("customer {account} does not exist in Tryton"))
                .with_code("UnknownCustomer")
        })?;
        Ok(Party {
            id: record.id()?,
            name: record.str("name")?.to_owned(),
            addresses: record.ids("addresses")?,
            payment_term: record.opt_int("customer_payment_term")?,
            price_list: record.opt_int("sale_price_list")?,
        })
    }

    /// Whole units of a float quantity, or an unknown failure naming what it was.
    fn units(what: &str, quantity: f64) -> Result<i64> {
        super::value::whole_units(quantity).ok_or_else(|| {
            Failure::unknown(format!(
                "{what}: quantity {quantity} is not a whole number of units"
            ))
        })
    }
}

/// Decodes a change cursor (unit tests).
#[cfg(test)]
pub(crate) fn decode_cursor(text: &str) -> Result<()> {
    feed::Cursor::decode(text).map(drop)
}

/// Encodes a cursor, decodes it and encodes it again (unit tests).
#[cfg(test)]
pub(crate) fn feed_cursor_roundtrip(since: i128, seen: &[&str]) -> (String, String) {
    let cursor = feed::Cursor {
        since: Some(since),
        seen: seen.iter().map(|s| (*s).to_owned()).collect(),
    };
    let text = cursor.encode();
    let again = feed::Cursor::decode(&text)
        .map(|c| c.encode())
        .unwrap_or_default();
    (text, again)
}

/// `LineNo` of a sale line from its `sequence`, or its position when it has none.
fn line_no(sequence: Option<i64>, position: usize) -> LineNo {
    let from_sequence = sequence
        .and_then(|s| u32::try_from(s).ok())
        .filter(|s| *s > 0);
    LineNo(from_sequence.unwrap_or_else(|| u32::try_from(position + 1).unwrap_or(u32::MAX)))
}

fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

#[async_trait]
impl Erp for Adapter {
    fn name(&self) -> &str {
        "tryton"
    }

    async fn prices(
        &self,
        account: &AccountId,
        items: &[PriceRequest],
        on: time::Date,
    ) -> Result<Vec<PriceQuote>> {
        self.ready().await?;
        self.quote_prices(account, items, on).await
    }

    async fn availability(
        &self,
        skus: &[Sku],
        location: Option<&LocationId>,
    ) -> Result<Vec<InventoryLevel>> {
        self.ready().await?;
        self.stock_levels(skus, location).await
    }

    async fn credit_check(
        &self,
        account: &AccountId,
        amount: Decimal,
        currency: Currency,
    ) -> Result<CreditAnswer> {
        self.ready().await?;
        self.check_credit(account, amount, currency).await
    }

    async fn fulfilment_options(
        &self,
        request: &FulfilmentRequest,
    ) -> Result<Vec<FulfilmentOption>> {
        self.ready().await?;
        self.options_for(request).await
    }

    async fn book_order(
        &self,
        order: &BookingRequest,
        idempotency_key: &str,
    ) -> Result<BookingConfirmation> {
        self.ready().await?;
        self.book(order, idempotency_key).await
    }

    async fn cancel_order(
        &self,
        erp_ref: &str,
        reason: &str,
        _idempotency_key: &str,
    ) -> Result<CancelOutcome> {
        self.ready().await?;
        self.cancel(erp_ref, reason).await
    }

    async fn order(&self, erp_ref: &str) -> Result<ErpOrder> {
        self.ready().await?;
        self.read_order(erp_ref).await
    }

    async fn changes(&self, cursor: Option<&str>, limit: usize) -> Result<ChangeBatch> {
        self.ready().await?;
        self.poll_changes(cursor, limit).await
    }

    async fn upsert_customer(
        &self,
        account: &Account,
        _idempotency_key: &str,
    ) -> Result<CustomerRef> {
        self.ready().await?;
        self.sync_customer(account).await
    }

    async fn credit_status(&self, account: &AccountId) -> Result<CreditReport> {
        self.ready().await?;
        self.credit_report(account).await
    }

    async fn create_return(
        &self,
        request: &ReturnRequest,
        _idempotency_key: &str,
    ) -> Result<ReturnAuthorisation> {
        self.ready().await?;
        self.authorise_return(request).await
    }

    async fn receive_return(
        &self,
        erp_rma: &str,
        lines: &[(LineNo, u32)],
        idempotency_key: &str,
    ) -> Result<ReturnReceipt> {
        self.ready().await?;
        self.receive(erp_rma, lines, idempotency_key).await
    }

    async fn issue_credit_memo(&self, erp_rma: &str, idempotency_key: &str) -> Result<CreditMemo> {
        self.ready().await?;
        self.post_credit_note(erp_rma, idempotency_key).await
    }

    async fn issue_refund(&self, credit_memo: &str, idempotency_key: &str) -> Result<Refund> {
        self.ready().await?;
        self.refund(credit_memo, idempotency_key).await
    }
}
