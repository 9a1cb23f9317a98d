//! Fulfilment options for a prospective order: ship complete from one warehouse, split across
//! warehouses (with backorders when stock is short), or ship from a store in the customer's
//! region, each with a promised delivery date.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock::format_ms;
use crate::error::{ApiError, Result};
use crate::model::LocationKind;
use crate::ops::{optional_str, parse_qty, required_array, required_str};
use crate::state::State;

impl State {
    /// `POST /api/v1/fulfilment-options`.
    ///
    /// # Errors
    /// `unknown_customer`, `unknown_item`, `invalid_quantity`.
    pub fn fulfilment_options(&mut self, body: &Value) -> Result<Value> {
        let customer = self.require_customer(required_str(body, "customer")?)?;
        let region = match optional_str(body, "ship_to_region")? {
            Some(region) => region.to_ascii_uppercase(),
            None => self.customers[&customer].region.clone(),
        };
        let mut wanted: Vec<(String, u64)> = Vec::new();
        for (index, line) in required_array(body, "lines")?.iter().enumerate() {
            let sku = required_str(line, "sku").map_err(|e| ApiError {
                message: format!("lines[{index}].{}", e.message),
                ..e
            })?;
            self.require_item(sku)?;
            let quantity = parse_qty(
                line.get("quantity").unwrap_or(&Value::Null),
                &format!("lines[{index}].quantity"),
            )?;
            wanted.push((sku.to_owned(), quantity));
        }
        let timings = &self.config.warehouse;
        let processing = timings.pick_ms + timings.pack_ms + timings.ship_ms;
        let delivery_from = |state: &State, code: &str| {
            let same = state
                .locations
                .get(code)
                .is_some_and(|l| l.region == region);
            let transit = if same {
                timings.transit_same_region_ms
            } else {
                timings.transit_other_region_ms
            };
            state.now + processing + transit
        };
        let covers = |state: &State, code: &str| {
            wanted
                .iter()
                .all(|(sku, q)| state.stock(sku, code).available() >= *q)
        };
        let mut options = Vec::new();
        let preference = self.default_preference(&region);

        for code in preference.iter().filter(|c| covers(self, c)) {
            let allocations: Vec<Value> = wanted
                .iter()
                .map(|(sku, q)| json!({ "sku": sku, "location": code, "quantity": q }))
                .collect();
            options.push(json!({
                "kind": "ship_from_warehouse",
                "locations": [code],
                "complete": true,
                "allocations": allocations,
                "backordered": [],
                "shipments": 1,
                "promised_delivery_at": format_ms(delivery_from(self, code)),
            }));
        }
        // Split: greedy over the warehouses, backordering what none has.
        let mut allocations = Vec::new();
        let mut backordered = Vec::new();
        let mut used: BTreeMap<String, ()> = BTreeMap::new();
        let mut promised = self.now;
        for (sku, quantity) in &wanted {
            let mut remaining = *quantity;
            for code in &preference {
                let take = self.stock(sku, code).available().min(remaining);
                if take > 0 {
                    remaining -= take;
                    used.insert(code.clone(), ());
                    promised = promised.max(delivery_from(self, code));
                    allocations.push(json!({ "sku": sku, "location": code, "quantity": take }));
                }
                if remaining == 0 {
                    break;
                }
            }
            if let Some(code) = preference.first().filter(|_| remaining > 0) {
                let expected = self.now + self.config.replenishment_delay_ms;
                promised = promised.max(expected - self.now + delivery_from(self, code));
                backordered.push(json!({
                    "sku": sku,
                    "location": code,
                    "quantity": remaining,
                    "expected_at": format_ms(expected),
                }));
            }
        }
        let single_exists = !options.is_empty();
        if !single_exists || used.len() > 1 {
            options.push(json!({
                "kind": "split",
                "locations": used.keys().collect::<Vec<_>>(),
                "complete": backordered.is_empty(),
                "allocations": allocations,
                "backordered": backordered,
                "shipments": used.len() + usize::from(!backordered.is_empty()),
                "promised_delivery_at": format_ms(promised),
            }));
        }
        let stores: Vec<String> = self
            .locations
            .values()
            .filter(|l| l.kind == LocationKind::Store && l.region == region)
            .map(|l| l.code.clone())
            .collect();
        for code in stores.iter().filter(|c| covers(self, c)) {
            let allocations: Vec<Value> = wanted
                .iter()
                .map(|(sku, q)| json!({ "sku": sku, "location": code, "quantity": q }))
                .collect();
            options.push(json!({
                "kind": "ship_from_store",
                "locations": [code],
                "complete": true,
                "allocations": allocations,
                "backordered": [],
                "shipments": 1,
                "promised_delivery_at": format_ms(delivery_from(self, code)),
            }));
        }
        for (index, option) in options.iter_mut().enumerate() {
            option["option"] = json!(format!("OPT-{}", index + 1));
        }
        Ok(json!({
            "customer": customer,
            "ship_to_region": region,
            "as_of": format_ms(self.now),
            "options": options,
        }))
    }
}
