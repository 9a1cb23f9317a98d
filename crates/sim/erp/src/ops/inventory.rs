//! Inventory: availability per location, backorder queues, replenishment orders and their
//! arrival (which allocates waiting backorders first come, first served), admin stock edits.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{ApiError, Code, Result};
use crate::model::{LineQty, LocationKind, Replenishment};
use crate::state::{State, Task};

/// Replenishment lot size: orders are rounded up to whole lots plus one spare lot.
const LOT: u64 = 12;

impl State {
    /// `GET /api/v1/availability/{sku}`: stock per location, optionally one location.
    ///
    /// # Errors
    /// `unknown_item`, `unknown_location`.
    pub fn availability(&self, sku: &str, location: Option<&str>) -> Result<Value> {
        // The SKU names the resource: unknown is 404 here.
        self.require_item(sku).map_err(|e| ApiError {
            status: axum::http::StatusCode::NOT_FOUND,
            ..e
        })?;
        if let Some(code) = location {
            self.require_location(code)?;
        }
        let mut rows = Vec::new();
        let (mut on_hand, mut available) = (0u64, 0u64);
        for loc in self
            .locations
            .values()
            .filter(|l| location.is_none_or(|c| c == l.code))
        {
            let stock = self.stock(sku, &loc.code);
            let incoming: u64 = self
                .replenishments
                .values()
                .filter(|r| r.sku == sku && r.location == loc.code)
                .map(|r| r.quantity)
                .sum();
            let next_arrival = self
                .replenishments
                .values()
                .filter(|r| r.sku == sku && r.location == loc.code)
                .map(|r| r.arrives_at)
                .min()
                .map(crate::clock::format_ms);
            on_hand += stock.on_hand;
            available += stock.available();
            rows.push(json!({
                "location": loc.code,
                "kind": loc.kind,
                "region": loc.region,
                "on_hand": stock.on_hand,
                "reserved": stock.reserved,
                "available": stock.available(),
                "backordered": self.backordered_at(sku, &loc.code),
                "incoming": incoming,
                "next_arrival_at": next_arrival,
            }));
        }
        Ok(json!({
            "sku": sku,
            "as_of": crate::clock::format_ms(self.now),
            "total_on_hand": on_hand,
            "total_available": available,
            "locations": rows,
        }))
    }

    /// Quantity of `sku` waiting for stock at `location`.
    pub fn backordered_at(&self, sku: &str, location: &str) -> u64 {
        self.backorder_totals
            .get(&(sku.to_owned(), location.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Keeps the backorder index in step with order lines.
    pub(crate) fn adjust_backorder(&mut self, sku: &str, location: &str, add: u64, remove: u64) {
        let key = (sku.to_owned(), location.to_owned());
        let total = self.backorder_totals.get(&key).copied().unwrap_or(0);
        let total = (total + add).saturating_sub(remove);
        if total == 0 {
            self.backorder_totals.remove(&key);
        } else {
            self.backorder_totals.insert(key, total);
        }
    }

    fn incoming_at(&self, sku: &str, location: &str) -> u64 {
        self.replenishments
            .values()
            .filter(|r| r.sku == sku && r.location == location)
            .map(|r| r.quantity)
            .sum()
    }

    /// Orders stock for a location when its backorders exceed what is already on the way.
    pub(crate) fn ensure_replenishment(&mut self, sku: &str, location: &str) {
        let waiting = self.backordered_at(sku, location);
        let covered = self.incoming_at(sku, location) + self.stock(sku, location).available();
        if waiting > covered {
            let missing = waiting - covered;
            let quantity = missing.div_ceil(LOT) * LOT + LOT;
            let arrives_at = self.now + self.config.replenishment_delay_ms;
            self.add_replenishment(sku, location, quantity, arrives_at);
        }
    }

    /// Schedules a replenishment and returns it.
    pub(crate) fn add_replenishment(
        &mut self,
        sku: &str,
        location: &str,
        quantity: u64,
        arrives_at: i64,
    ) -> Replenishment {
        let id = Self::next_id(&mut self.counters.replenishment, "PO");
        let replenishment = Replenishment {
            id: id.clone(),
            sku: sku.to_owned(),
            location: location.to_owned(),
            quantity,
            arrives_at,
        };
        self.replenishments
            .insert(id.clone(), replenishment.clone());
        self.schedule(arrives_at, Task::Replenish(id));
        replenishment
    }

    /// A replenishment arrives: stock goes up, then waiting backorders are allocated.
    pub(crate) fn receive_replenishment(&mut self, id: &str) {
        let Some(replenishment) = self.replenishments.remove(id) else {
            return;
        };
        let (sku, location) = (replenishment.sku.clone(), replenishment.location.clone());
        self.stock_mut(&sku, &location).on_hand += replenishment.quantity;
        self.emit_inventory(&sku, &location, "replenishment_received");
        self.fill_backorders(&sku, &location);
    }

    /// Allocates available stock of `sku` at `location` to waiting backorders, oldest order
    /// first; each order gets a new shipment for what it received.
    pub(crate) fn fill_backorders(&mut self, sku: &str, location: &str) {
        let mut per_order: BTreeMap<String, Vec<LineQty>> = BTreeMap::new();
        let numbers: Vec<String> = self
            .orders
            .values()
            .filter(|o| {
                o.cancelled_at.is_none()
                    && o.lines
                        .iter()
                        .any(|l| l.sku == sku && l.backordered_at.contains_key(location))
            })
            .map(|o| o.number.clone())
            .collect();
        for number in numbers {
            let mut available = self.stock(sku, location).available();
            if available == 0 {
                break;
            }
            let mut taken = 0;
            if let Some(order) = self.orders.get_mut(&number) {
                for line in order.lines.iter_mut().filter(|l| l.sku == sku) {
                    let Some(waiting) = line.backordered_at.get(location).copied() else {
                        continue;
                    };
                    let take = waiting.min(available);
                    if take == 0 {
                        continue;
                    }
                    if take == waiting {
                        line.backordered_at.remove(location);
                    } else {
                        line.backordered_at
                            .insert(location.to_owned(), waiting - take);
                    }
                    line.allocated += take;
                    available -= take;
                    taken += take;
                    per_order.entry(number.clone()).or_default().push(LineQty {
                        line: line.line,
                        sku: sku.to_owned(),
                        quantity: take,
                    });
                }
            }
            self.stock_mut(sku, location).reserved += taken;
            self.adjust_backorder(sku, location, 0, taken);
        }
        if per_order.is_empty() {
            return;
        }
        self.emit_inventory(sku, location, "backorder_allocated");
        for (number, lines) in per_order {
            self.refresh_order(&number);
            let shipment = self.create_shipment(&number, location, lines, true);
            self.emit_allocated(&number, &shipment);
        }
        self.ensure_replenishment(sku, location);
    }

    /// Admin: sets the on-hand quantity of an item at a location (a stock count).
    ///
    /// # Errors
    /// `unknown_item`, `unknown_location`, `invalid_quantity` below what is reserved.
    pub fn set_on_hand(&mut self, sku: &str, location: &str, on_hand: u64) -> Result<Value> {
        self.require_item(sku)?;
        self.require_location(location)?;
        let reserved = self.stock(sku, location).reserved;
        if on_hand < reserved {
            return Err(ApiError::unprocessable(
                Code::InvalidQuantity,
                format!("on_hand {on_hand} is below the {reserved} reserved for open orders"),
            ));
        }
        self.stock_mut(sku, location).on_hand = on_hand;
        self.emit_inventory(sku, location, "stock_count");
        self.fill_backorders(sku, location);
        self.availability(sku, Some(location))
    }

    /// Location preference for automatic allocation: warehouses in the region first, then the
    /// other warehouses (stores only when asked for explicitly).
    pub(crate) fn default_preference(&self, region: &str) -> Vec<String> {
        let warehouses = self
            .locations
            .values()
            .filter(|l| l.kind == LocationKind::Warehouse);
        let (mut near, far): (Vec<_>, Vec<_>) = warehouses.partition(|l| l.region == region);
        near.extend(far);
        near.into_iter().map(|l| l.code.clone()).collect()
    }
}
