//! Running the demo against a real Tryton: the server started by `scripts/setup/tryton.sh`
//! describes itself in `.tryton/env`. The Tryton day is smaller (a few customers and
//! products of the seed), starts with a burst of orders far above Tryton's booking pace and
//! has no ERP outage; warehouse staff ([`super::warehouse`]) move its shipments, and
//! [`Peak`] watches the burst and checks the day against Tryton at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossdock_domain::ids::{AccountId, Sku};
use crossdock_domain::order::StageTimes;
use crossdock_domain::summary::OrderSummary;
use crossdock_erp::tryton::Adapter;
use crossdock_ports::erp::PriceRequest;
use crossdock_ports::{Erp, SystemClock};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::report::Report;
use super::salesforce_user::SalesforceUser;
use super::scenario::{Plan, Twist};
use super::warehouse;

/// The `.tryton/env` file of the checkout (or `TRYTON_ENV`).
fn env_file() -> PathBuf {
    std::env::var_os("TRYTON_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".tryton/env"))
}

/// Key/value pairs of `.tryton/env`.
pub fn env() -> Result<BTreeMap<String, String>> {
    let path = env_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is missing: start Tryton first with scripts/setup/tryton.sh",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// The Tryton adapter's configuration from `.tryton/env`.
pub fn config() -> Result<crossdock_erp::tryton::Config> {
    let env = env()?;
    let get = |key: &str| {
        env.get(key)
            .cloned()
            .with_context(|| format!("{key} missing from .tryton/env"))
    };
    let mut warehouses = Vec::new();
    for pair in get("TRYTON_WAREHOUSES")?.split(',') {
        let Some((name, id)) = pair.split_once('=') else {
            bail!("TRYTON_WAREHOUSES entry `{pair}` is not NAME=ID");
        };
        warehouses.push(format!("{{ id = {id}, location = \"{name}\" }}"));
    }
    let text = format!(
        "url = \"{url}\"\ndatabase = \"{db}\"\nuser = \"{user}\"\npassword_file = \"{pw}\"\nwarehouses = [{wh}]\ntaxes = [{tax}]\npayment_method = {pm}\npayment_term = {pt}\n",
        url = get("TRYTON_URL")?,
        db = get("TRYTON_DB")?,
        user = get("TRYTON_USER")?,
        pw = get("TRYTON_PASSWORD_FILE")?,
        wh = warehouses.join(", "),
        tax = get("TRYTON_TAX")?,
        pm = get("TRYTON_PAYMENT_METHOD")?,
        pt = get("TRYTON_PAYMENT_TERM")?,
    );
    toml::from_str(&text).context("building the Tryton adapter configuration")
}

/// Customer and product codes of the seeded Tryton database (from the seed summary the
/// setup script writes).
pub fn codes() -> Result<(Vec<String>, Vec<String>)> {
    let env = env()?;
    let path = env
        .get("TRYTON_SEED")
        .context("TRYTON_SEED missing from .tryton/env")?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let seed: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
    let keys = |field: &str| -> Vec<String> {
        seed[field]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    Ok((keys("customers"), keys("products")))
}

/// Customers the Tryton day orders for (the seed's customers without a credit limit: a
/// limit would refuse most of a day's orders). Few, because the hub books each account's
/// orders one after another: fewer accounts, fewer bookings at once in one trytond.
const CUSTOMERS: usize = 3;
/// Products the Tryton day sells (the scarce ones always among them).
const PRODUCTS: usize = 12;
/// Share of the day's orders in the burst at its start.
const BURST_SHARE: f64 = 0.55;
/// Length of the burst.
const BURST: Duration = Duration::from_secs(2);

/// Customers (account, name, tier) and items (sku, name, list price, available) of the
/// Tryton day: a small catalogue and a few customers from the seed, so each customer places
/// several orders and capture order per account means something.
///
/// # Errors
/// A missing `.tryton/env` or seed; Tryton's failures; demo orders of an earlier day
/// left in Tryton while this day's store is new (their ids would clash).
pub async fn master_data(
    erp: &Arc<dyn Erp>,
    store: &crossdock_store::SharedStore,
) -> Result<(
    Vec<(String, String, String)>,
    Vec<(String, String, rust_decimal::Decimal, i64)>,
)> {
    let fresh_store = store
        .orders(crossdock_store::OrderQuery {
            limit: Some(1),
            ..crossdock_store::OrderQuery::default()
        })
        .await?
        .is_empty();
    if fresh_store {
        let staff = Adapter::connect(config()?, Arc::new(SystemClock))
            .await
            .map_err(|e| anyhow::anyhow!("connecting to Tryton: {e}"))?;
        let earlier = staff
            .sales_by_reference(warehouse::ORDERS)
            .await
            .map_err(|e| anyhow::anyhow!("reading Tryton's sales: {e}"))?;
        if !earlier.is_empty() {
            bail!(
                "Tryton already holds {} demo orders of an earlier day (references like SF-00000100, \
                 which this day would use again); restore Tryton's seeded database with \
                 scripts/setup/tryton.sh and play again",
                earlier.len()
            );
        }
    }
    let (accounts, products) = codes()?;
    let mut customers = Vec::new();
    for account in accounts {
        let report = erp
            .credit_status(&AccountId::new(account.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("Tryton credit status of {account}: {e}"))?;
        if report.limit.is_none() {
            customers.push((account.clone(), account, "Silver".to_owned()));
        }
        if customers.len() == CUSTOMERS {
            break;
        }
    }
    let first = customers
        .first()
        .context("the Tryton seed has no customer without a credit limit")?
        .0
        .clone();
    let skus: Vec<Sku> = products.iter().map(|p| Sku::new(p.clone())).collect();
    let levels = erp
        .availability(&skus, None)
        .await
        .map_err(|e| anyhow::anyhow!("Tryton stock: {e}"))?;
    let available = |sku: &str| -> i64 {
        levels
            .iter()
            .filter(|l| l.sku.as_str() == sku)
            .map(|l| l.available)
            .sum()
    };
    // The scarce products (as the demo's plan picks them) and then the first others.
    let (scarce, plenty): (Vec<String>, Vec<String>) = products
        .into_iter()
        .filter(|sku| available(sku) > 0)
        .partition(|sku| available(sku) < 30);
    let chosen: Vec<String> = plenty
        .into_iter()
        .take(PRODUCTS.saturating_sub(scarce.len().min(3)))
        .chain(scarce.into_iter().take(3))
        .collect();
    let requests: Vec<PriceRequest> = chosen
        .iter()
        .map(|sku| PriceRequest {
            sku: Sku::new(sku.clone()),
            quantity: 1,
        })
        .collect();
    let today = crossdock_ports::Clock::now(&SystemClock).date();
    let quotes = erp
        .prices(&AccountId::new(first), &requests, today)
        .await
        .map_err(|e| anyhow::anyhow!("Tryton prices: {e}"))?;
    let items = chosen
        .into_iter()
        .map(|sku| {
            let price = quotes
                .iter()
                .find(|q| q.sku.as_str() == sku)
                .map_or(rust_decimal::Decimal::ONE, |q| q.list_price);
            let units = available(&sku);
            (sku.clone(), sku, price, units)
        })
        .collect();
    Ok((customers, items))
}

/// Reshapes the demo's day for Tryton, which books about 1.5 sales per second: the
/// promotion spike becomes a burst of about half the day's orders in the first two seconds
/// (several times Tryton's pace), the other orders spread over the rest of the day in their
/// planned order, and there is no ERP outage (that twist needs the simulator).
pub fn reshape(mut plan: Plan) -> Plan {
    let day = plan.day;
    let total = plan.orders.len();
    let burst_count = ((total as f64) * BURST_SHARE).round() as usize;
    // The spike's orders first (they carry no twist), then the calmest.
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by_key(|&i| (!plan.orders[i].in_spike, plan.orders[i].at));
    let calm_from = BURST + Duration::from_secs(1);
    let calm_span = day.saturating_sub(calm_from);
    let calm_count = total.saturating_sub(burst_count).max(1);
    let mut calm_rank = 0usize;
    for (rank, &index) in order.iter().enumerate() {
        let planned = &mut plan.orders[index];
        let twisted = planned.twist != Twist::None || planned.backorder;
        if rank < burst_count && !twisted {
            planned.in_spike = true;
            planned.at = BURST.mul_f64(rank as f64 / burst_count.max(1) as f64);
        } else {
            planned.in_spike = false;
            planned.at = calm_from + calm_span.mul_f64(calm_rank as f64 / calm_count as f64);
            calm_rank += 1;
        }
    }
    plan.orders.sort_by_key(|o| (o.at, o.n));
    plan.spike = (Duration::ZERO, BURST);
    // No outage: the window lies after the day, so nothing waits for it.
    plan.outage = (day * 100, day * 100);
    plan
}

/// What the Tryton day watches while it runs, and the warehouse staff working in Tryton.
pub struct Peak {
    staff: tokio::task::JoinHandle<warehouse::Work>,
    stop: CancellationToken,
    /// Sends the staff home when the day ends early (an error, Ctrl-C).
    _home_on_drop: tokio_util::sync::DropGuard,
    http: reqwest::Client,
    hub_url: String,
    /// Most orders Salesforce showed "Awaiting Booking" at once while others were already
    /// booked, and how many were booked then.
    awaiting: (usize, usize),
    /// Slowest answer of the hub's API (readiness and dashboard) while orders were
    /// awaiting booking.
    slowest: Duration,
    probes: u64,
}

impl Peak {
    /// Starts the staff (their own Tryton session).
    ///
    /// # Errors
    /// When Tryton cannot be reached.
    pub async fn start(hub_url: &str) -> Result<Peak> {
        let adapter = Adapter::connect(config()?, Arc::new(SystemClock))
            .await
            .map_err(|e| anyhow::anyhow!("the warehouse staff cannot sign in to Tryton: {e}"))?;
        let stop = CancellationToken::new();
        let staff = tokio::spawn(warehouse::Staff::new(adapter).run(stop.clone()));
        Ok(Peak {
            staff,
            _home_on_drop: stop.clone().drop_guard(),
            stop,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            hub_url: hub_url.to_owned(),
            awaiting: (0, 0),
            slowest: Duration::ZERO,
            probes: 0,
        })
    }

    /// Looks at Salesforce and the hub's API once (called about twice a second).
    pub async fn observe(&mut self, user: &SalesforceUser) {
        let Ok(orders) = user.query("SELECT Hub_Status__c FROM Order").await else {
            return;
        };
        let status = |o: &serde_json::Value| o["Hub_Status__c"].as_str().unwrap_or("").to_owned();
        let awaiting = orders
            .iter()
            .filter(|o| status(o) == "Awaiting Booking")
            .count();
        let booked = orders
            .iter()
            .filter(|o| {
                !matches!(
                    status(o).as_str(),
                    "" | "Awaiting Booking" | "Rejected" | "Cancelled"
                )
            })
            .count();
        if booked > 0 && awaiting > self.awaiting.0 {
            self.awaiting = (awaiting, booked);
        }
        if awaiting > 0 {
            for path in ["/readyz", "/dashboard"] {
                let started = Instant::now();
                let answered = self
                    .http
                    .get(format!("{}{path}", self.hub_url))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let took = if answered {
                    started.elapsed()
                } else {
                    Duration::from_secs(30)
                };
                self.slowest = self.slowest.max(took);
                self.probes += 1;
            }
        }
    }

    /// Stops the staff and checks the day against Tryton: one sale per order (duplicates
    /// go to the report), each account's orders booked in capture order, and the burst
    /// accepted faster than Tryton booked it. Returns the summary's Tryton section.
    ///
    /// # Errors
    /// When Tryton or the store cannot be read.
    pub async fn finish(
        self,
        rows: &[crossdock_store::OrderRow],
        plan: &Plan,
        user: &SalesforceUser,
        report: &mut Report,
    ) -> Result<String> {
        self.stop.cancel();
        let work = self.staff.await.unwrap_or_default();
        let reader = Adapter::connect(config()?, Arc::new(SystemClock))
            .await
            .map_err(|e| anyhow::anyhow!("connecting to Tryton: {e}"))?;
        let sales = reader
            .sales_by_reference(warehouse::ORDERS)
            .await
            .map_err(|e| anyhow::anyhow!("reading Tryton's sales: {e}"))?;
        for (reference, ids) in &sales {
            if ids.len() > 1 {
                report.duplicate_bookings.push(reference.clone());
            }
        }

        // Capture order per account against the order Tryton created the sales in.
        let mut by_account: BTreeMap<String, Vec<(OffsetDateTime, String, i64)>> = BTreeMap::new();
        for row in rows {
            if let (Some(captured), Some(ids)) = (row.captured_at, sales.get(&row.order_id)) {
                by_account.entry(row.account.clone()).or_default().push((
                    captured,
                    row.order_id.clone(),
                    ids[0],
                ));
            }
        }
        let mut out_of_order = Vec::new();
        for (account, mut orders) in by_account.clone() {
            orders.sort();
            for pair in orders.windows(2) {
                if pair[1].2 < pair[0].2 {
                    out_of_order.push(format!(
                        "{account}: {} was captured after {} but booked before it",
                        pair[1].1, pair[0].1
                    ));
                }
            }
        }
        report.unexpected.extend(
            out_of_order
                .iter()
                .map(|o| format!("booking order in Tryton: {o}")),
        );

        // The burst: when the hub accepted (validated) its orders and when Tryton booked them.
        let sf = user
            .query("SELECT OrderNumber, Description FROM Order")
            .await?;
        let burst: std::collections::BTreeSet<String> = sf
            .iter()
            .filter_map(|o| {
                let n: u32 = o["Description"]
                    .as_str()?
                    .strip_prefix("demo order ")?
                    .parse()
                    .ok()?;
                let planned = plan.orders.iter().find(|p| p.n == n)?;
                planned
                    .in_spike
                    .then(|| format!("SF-{}", o["OrderNumber"].as_str().unwrap_or_default()))
            })
            .collect();
        let times: Vec<StageTimes> = rows
            .iter()
            .filter(|r| burst.contains(&r.order_id))
            .filter_map(|r| r.body.parse::<OrderSummary>().ok())
            .map(|s| s.times)
            .collect();
        let start = times.iter().filter_map(|t| t.captured).min();
        let rate = |at: &dyn Fn(&StageTimes) -> Option<OffsetDateTime>| -> (usize, f64, f64) {
            let stamps: Vec<OffsetDateTime> = times.iter().filter_map(at).collect();
            let span = match (start, stamps.iter().max()) {
                (Some(s), Some(e)) => (*e - s).as_seconds_f64().max(0.001),
                _ => 0.0,
            };
            let per_second = if span > 0.0 {
                stamps.len() as f64 / span
            } else {
                0.0
            };
            (stamps.len(), span, per_second)
        };
        let accepted = rate(&|t| t.validated);
        let booked = rate(&|t| t.booked);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "peak against Tryton (one trytond process books about 1.5 sales/s):"
        );
        let _ = writeln!(
            out,
            "  burst accepted: {} orders in {:.1}s ({:.2} orders/s)",
            accepted.0, accepted.1, accepted.2
        );
        let _ = writeln!(
            out,
            "  burst booked by Tryton: {} orders in {:.1}s ({:.2} orders/s)",
            booked.0, booked.1, booked.2
        );
        let _ = writeln!(
            out,
            "  awaiting booking in Salesforce: up to {} orders while {} earlier ones were already booked",
            self.awaiting.0, self.awaiting.1
        );
        let _ = writeln!(
            out,
            "  hub API while orders awaited booking: slowest answer {} ms over {} requests",
            self.slowest.as_millis(),
            self.probes
        );
        let _ = writeln!(
            out,
            "  booked in capture order per account: {} accounts, {} out of order",
            by_account.len(),
            out_of_order.len()
        );
        let _ = writeln!(
            out,
            "  Tryton sales of demo orders: {} references, {} booked more than once",
            sales.len(),
            sales.values().filter(|ids| ids.len() > 1).count()
        );
        let _ = writeln!(out, "{}", work.render());
        Ok(out)
    }
}
