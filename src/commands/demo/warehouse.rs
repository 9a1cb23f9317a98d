//! Warehouse and accounts staff for a day against a real Tryton. The ERP simulator runs its
//! own warehouse; Tryton waits for people: someone must reserve, pick, pack and ship the
//! customer shipments of booked orders, receive a supplier delivery when a backorder waits
//! for stock, take returned goods in, post the invoices of shipped orders and record the
//! customers' payments. This is that someone, working in waves about once a second
//! through its own Tryton session (it is not the hub: the hub only hears of its work
//! through Tryton's change feed).
//!
//! Shipments are left alone for a moment after they appear, as a warehouse picks in waves
//! and not the instant an order is booked; a cancellation that reaches Tryton meanwhile
//! finds the shipment still waiting.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossdock_erp::tryton::{Adapter, ShipmentStep};
use crossdock_ports::Failure;
use tokio_util::sync::CancellationToken;

/// Demo orders in Tryton: the hub's ids of orders captured in Salesforce.
pub const ORDERS: &str = "SF-%";
/// Demo returns in Tryton: the hub's ids of returns opened from Salesforce cases.
const RETURNS: &str = "RMA-%";
/// How long a new shipment waits for the next pick wave.
const HOLD: Duration = Duration::from_secs(3);
/// How long a backorder waits before the supplier delivers.
const SUPPLIER_LEAD: Duration = Duration::from_secs(4);
/// Time between waves.
const WAVE: Duration = Duration::from_millis(1500);
/// Shipments per Tryton call: one call is one transaction, and on SQLite a long one makes
/// every booking wait for the database.
const BATCH: usize = 4;

/// What the staff did during the day.
#[derive(Debug, Default, Clone)]
pub struct Work {
    /// Shipments closed (`done`).
    pub shipments_done: u64,
    /// Shipments that left with part of the goods (the rest backordered).
    pub partial_shipments: u64,
    /// Supplier deliveries received for backorders, and the units in them.
    pub restocks: (u64, i64),
    /// Invoices posted.
    pub invoices_posted: u64,
    /// Payments recorded.
    pub payments: u64,
    /// Return shipments received.
    pub returns_received: u64,
    /// Steps Tryton refused or that failed (retried in the next wave).
    pub failures: u64,
}

impl Work {
    /// One line for the summary.
    pub fn render(&self) -> String {
        format!(
            "warehouse and accounts staff in Tryton: {} shipments done ({} partial), {} supplier deliveries ({} units) for backorders, {} returns received, {} invoices posted, {} payments recorded, {} steps retried",
            self.shipments_done,
            self.partial_shipments,
            self.restocks.0,
            self.restocks.1,
            self.returns_received,
            self.invoices_posted,
            self.payments,
            self.failures
        )
    }
}

/// The staff at work until `stop`.
pub struct Staff {
    erp: Arc<Adapter>,
    /// When each shipment was first seen waiting (for the pick wave's hold and the
    /// supplier's lead time).
    seen: HashMap<i64, Instant>,
    /// Waiting shipments an assignment was tried on, and since when (those still waiting
    /// are short of stock).
    short: HashMap<i64, Instant>,
    /// When each invoice was seen posted (customers pay a moment later).
    posted: HashMap<i64, Instant>,
    work: Work,
}

impl Staff {
    /// Staff working through `erp` (their own Tryton session).
    pub fn new(erp: Adapter) -> Self {
        Self {
            erp: Arc::new(erp),
            seen: HashMap::new(),
            short: HashMap::new(),
            posted: HashMap::new(),
            work: Work::default(),
        }
    }

    /// Works in waves until `stop`, then reports.
    pub async fn run(mut self, stop: CancellationToken) -> Work {
        loop {
            if let Err(error) = self.wave().await {
                self.work.failures += 1;
                tracing::warn!(%error, "A warehouse wave in Tryton failed; the next one retries.");
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(WAVE) => {}
            }
        }
        self.work
    }

    fn failed(&mut self, what: &str, error: &Failure) {
        self.work.failures += 1;
        tracing::info!(%error, what, "Tryton refused a warehouse step; retrying in the next wave.");
    }

    /// Presses one step on shipments, a few per call; when Tryton refuses a batch (one
    /// shipment changed meanwhile, e.g. cancelled by the hub), tries them one by one.
    async fn step(&mut self, ids: &[i64], step: ShipmentStep) -> Vec<i64> {
        let mut moved = Vec::new();
        for batch in ids.chunks(BATCH) {
            if self.erp.step_shipments(batch, step).await.is_ok() {
                moved.extend_from_slice(batch);
                continue;
            }
            for id in batch {
                match self.erp.step_shipments(&[*id], step).await {
                    Ok(()) => moved.push(*id),
                    Err(error) => self.failed("shipment step", &error),
                }
            }
        }
        moved
    }

    async fn wave(&mut self) -> Result<()> {
        self.ship().await?;
        self.receive_returns().await?;
        self.invoice().await?;
        Ok(())
    }

    /// One step forward for every open shipment: the work of one wave.
    async fn ship(&mut self) -> Result<()> {
        let now = Instant::now();
        let open = self.erp.open_shipments(ORDERS).await?;
        let waiting: HashSet<i64> = open
            .iter()
            .filter(|s| s.state == "waiting")
            .map(|s| s.id)
            .collect();
        self.seen.retain(|id, _| open.iter().any(|s| s.id == *id));
        self.short.retain(|id, _| waiting.contains(id));
        let mut by_state: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut partial = Vec::new();
        let mut restock = Vec::new();
        for shipment in &open {
            let first_seen = *self.seen.entry(shipment.id).or_insert(now);
            if shipment.state == "waiting" {
                if now.duration_since(first_seen) < HOLD {
                    continue;
                }
                if shipment.partially_assigned {
                    // Ship what is on the shelf; Tryton opens a backorder for the rest.
                    partial.push(shipment.number.clone());
                    continue;
                }
                if let Some(since) = self.short.get(&shipment.id) {
                    // Nothing could be reserved: the supplier delivers after its lead time.
                    if now.duration_since(*since) >= SUPPLIER_LEAD {
                        restock.push(shipment.id);
                    }
                    continue;
                }
            }
            by_state
                .entry(shipment.state.as_str())
                .or_default()
                .push(shipment.id);
        }
        // Later steps first, so a shipment takes one step per wave.
        for (state, step) in [
            ("shipped", ShipmentStep::Done),
            ("packed", ShipmentStep::Ship),
            ("picked", ShipmentStep::Pack),
            ("assigned", ShipmentStep::Pick),
            ("waiting", ShipmentStep::Assign),
        ] {
            let ids = by_state.remove(state).unwrap_or_default();
            let moved = self.step(&ids, step).await;
            match step {
                // Those still waiting after the attempt are short of stock (the next
                // wave sees which).
                ShipmentStep::Assign => {
                    for id in moved {
                        self.short.entry(id).or_insert(now);
                    }
                }
                ShipmentStep::Done => self.work.shipments_done += moved.len() as u64,
                _ => {}
            }
        }
        for number in partial {
            match self.erp.ship_available(&number).await {
                Ok(_) => {
                    self.work.partial_shipments += 1;
                    self.work.shipments_done += 1;
                }
                Err(error) => self.failed("partial shipment", &error),
            }
        }
        for id in restock {
            match self.erp.restock_for(id).await {
                Ok(added) => {
                    let units: i64 = added.iter().map(|(_, u)| *u).sum();
                    if units > 0 {
                        self.work.restocks.0 += 1;
                        self.work.restocks.1 += units;
                    }
                    // Reserve again in the next wave.
                    self.short.remove(&id);
                }
                Err(error) => self.failed("supplier delivery", &error),
            }
        }
        Ok(())
    }

    async fn receive_returns(&mut self) -> Result<()> {
        let received = self.erp.receive_returns(RETURNS).await?;
        self.work.returns_received += received.len() as u64;
        Ok(())
    }

    /// Posts the invoices of shipped orders; the customers pay them a wave later.
    async fn invoice(&mut self) -> Result<()> {
        let now = Instant::now();
        let due = self.erp.invoices_due(ORDERS).await?;
        self.posted.retain(|id, _| due.iter().any(|i| i.id == *id));
        let drafts: Vec<i64> = due
            .iter()
            .filter(|i| i.state != "posted")
            .map(|i| i.id)
            .collect();
        for batch in drafts.chunks(BATCH) {
            if self.erp.post_invoices(batch).await.is_ok() {
                self.work.invoices_posted += batch.len() as u64;
                continue;
            }
            for id in batch {
                match self.erp.post_invoices(&[*id]).await {
                    Ok(()) => self.work.invoices_posted += 1,
                    Err(error) => self.failed("invoice posting", &error),
                }
            }
        }
        for invoice in due.iter().filter(|i| i.state == "posted") {
            let first = *self.posted.entry(invoice.id).or_insert(now);
            if now.duration_since(first) < WAVE || invoice.amount_to_pay.is_zero() {
                continue;
            }
            let description = format!(
                "Payment of {}",
                invoice.number.as_deref().unwrap_or("an invoice")
            );
            match self.erp.record_payment(invoice.id, &description).await {
                Ok(()) => self.work.payments += 1,
                Err(error) => self.failed("payment", &error),
            }
        }
        Ok(())
    }
}
