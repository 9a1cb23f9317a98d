//! The adapter behind [`crossdock_ports::Salesforce`]: batched, state-based write-backs and
//! order re-reads.
//!
//! A batch of orders costs a handful of collections calls, not one per order: every `Order`
//! and `OrderItem` update of the batch goes into shared `PATCH /composite/sobjects` calls
//! (≤ 200 records each), every shipment into shared `Shipment` upserts by `Hub_Key__c`.
//! Each record's result is mapped back to the order it belongs to; an order fails when any
//! of its records failed, with the most severe class. Writes are idempotent (updates by id,
//! upserts by external id), so the engine may resend an order's whole state at any time.
//!
//! `write` builds and sends the records; `read` turns an `Order` and its items into a draft.

mod read;
mod write;

pub use read::{decimal, draft_from, parse_channel, parse_datetime, str_at};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::ids::RmaId;
use crossdock_domain::order::OrderDraft;
use crossdock_domain::summary::OrderSummary;
use crossdock_ports::erp::CreditReport;
use crossdock_ports::salesforce::ApiUsage;
use crossdock_ports::{Clock, Failure, Salesforce};

use self::write::per_key;
use crate::auth::{Tokens, load_private_key};
use crate::client::{Client, soql_quote};
use crate::config::{Auth, Config};
use crate::limits::Limits;
use crate::mapping::{Mapping, inventory_key};
use crate::{Error, Result};

/// Ids per `IN (…)` list in one query.
pub(crate) const IN_CHUNK: usize = 200;
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn remember(cache: &Mutex<HashMap<String, String>>, key: &str, id: &str) {
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
            // JWT expiry is checked by Salesforce against its own clock: always wall time,
            // even when the hub runs on a simulated clock.
            Arc::new(crossdock_ports::SystemClock),
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
    pub(crate) async fn lookup(
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
