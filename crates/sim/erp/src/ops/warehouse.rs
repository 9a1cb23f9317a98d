//! Warehouse process over simulated time: each shipment moves allocated → picked → packed →
//! shipped → delivered with the configured durations. Shipping takes the stock out, assigns a
//! carrier and tracking number and (per configuration) issues the invoice.

use rand::Rng;
use serde_json::json;

use crate::config::InvoiceMode;
use crate::model::{LineQty, Milestone, Shipment, ShipmentState};
use crate::state::{State, Task};

const CARRIERS: [(&str, &str); 4] = [
    ("UPS", "1Z"),
    ("FedEx", "FX"),
    ("DHL", "JD"),
    ("USPS", "94"),
];

impl State {
    /// Creates a shipment for stock reserved at one location and starts its picking clock.
    pub(crate) fn create_shipment(
        &mut self,
        number: &str,
        location: &str,
        lines: Vec<LineQty>,
        backorder: bool,
    ) -> String {
        let id = Self::next_id(&mut self.counters.shipment, "SH");
        let external_ref = self
            .orders
            .get(number)
            .map(|o| o.external_ref.clone())
            .unwrap_or_default();
        let shipment = Shipment {
            id: id.clone(),
            order: number.to_owned(),
            order_external_ref: external_ref,
            location: location.to_owned(),
            status: ShipmentState::Allocated,
            lines,
            carrier: None,
            tracking_number: None,
            backorder,
            milestones: vec![Milestone {
                status: ShipmentState::Allocated,
                at: self.now,
            }],
            expected_delivery_at: None,
        };
        self.shipments.insert(id.clone(), shipment);
        if let Some(order) = self.orders.get_mut(number) {
            order.shipments.push(id.clone());
        }
        self.refresh_order(number);
        self.schedule(
            self.now + self.config.warehouse.pick_ms,
            Task::AdvanceShipment(id.clone()),
        );
        id
    }

    /// Moves a shipment one step; cancelled or delivered shipments stay as they are.
    pub(crate) fn advance_shipment(&mut self, id: &str) {
        let Some(shipment) = self.shipments.get(id) else {
            return;
        };
        let timings = self.config.warehouse.clone();
        let (next, delay) = match shipment.status {
            ShipmentState::Allocated => (ShipmentState::Picked, Some(timings.pack_ms)),
            ShipmentState::Picked => (ShipmentState::Packed, Some(timings.ship_ms)),
            ShipmentState::Packed => (ShipmentState::Shipped, None),
            ShipmentState::Shipped => (ShipmentState::Delivered, None),
            ShipmentState::Delivered | ShipmentState::Cancelled => return,
        };
        let order_number = shipment.order.clone();
        let location = shipment.location.clone();
        let lines = shipment.lines.clone();
        let now = self.now;
        let mut follow_up = delay;
        if next == ShipmentState::Shipped {
            let (carrier, prefix) = CARRIERS[self.rng.random_range(0..CARRIERS.len())];
            let digits: u64 = self.rng.random_range(100_000_000_000..1_000_000_000_000);
            let same_region = self
                .orders
                .get(&order_number)
                .map(|o| o.ship_to_region.as_str())
                == self.locations.get(&location).map(|l| l.region.as_str());
            let transit = if same_region {
                timings.transit_same_region_ms
            } else {
                timings.transit_other_region_ms
            };
            if let Some(shipment) = self.shipments.get_mut(id) {
                shipment.carrier = Some(carrier.to_owned());
                shipment.tracking_number = Some(format!("{prefix}{digits}"));
                shipment.expected_delivery_at = Some(now + transit);
            }
            follow_up = Some(transit);
            for line in &lines {
                let stock = self.stock_mut(&line.sku, &location);
                stock.on_hand = stock.on_hand.saturating_sub(line.quantity);
                stock.reserved = stock.reserved.saturating_sub(line.quantity);
            }
        }
        if let Some(shipment) = self.shipments.get_mut(id) {
            shipment.status = next;
            shipment.milestones.push(Milestone {
                status: next,
                at: now,
            });
        }
        if let Some(order) = self.orders.get_mut(&order_number) {
            for shipped in &lines {
                if let Some(line) = order.lines.iter_mut().find(|l| l.line == shipped.line) {
                    match next {
                        ShipmentState::Shipped => line.shipped += shipped.quantity,
                        ShipmentState::Delivered => line.delivered += shipped.quantity,
                        _ => {}
                    }
                }
            }
        }
        self.refresh_order(&order_number);
        let event = match next {
            ShipmentState::Picked => "shipment.picked",
            ShipmentState::Packed => "shipment.packed",
            ShipmentState::Shipped => "shipment.shipped",
            _ => "shipment.delivered",
        };
        let data = self.shipment_event(id);
        self.emit(event, data);
        if next == ShipmentState::Shipped {
            let skus: std::collections::BTreeSet<&str> =
                lines.iter().map(|l| l.sku.as_str()).collect();
            for sku in skus {
                self.emit_inventory(sku, &location, "shipment_shipped");
            }
            match self.config.invoicing {
                InvoiceMode::PerShipment => {
                    let lines = lines.iter().map(|l| (l.line, l.quantity)).collect();
                    self.issue_invoice(&order_number, Some(id), lines);
                }
                InvoiceMode::OnCompletion => self.invoice_if_complete(&order_number),
            }
        }
        if let Some(delay) = follow_up {
            self.schedule(now + delay, Task::AdvanceShipment(id.to_owned()));
        }
    }

    /// Event payload of a shipment.
    pub(crate) fn shipment_event(&self, id: &str) -> serde_json::Value {
        let Some(shipment) = self.shipments.get(id) else {
            return serde_json::Value::Null;
        };
        let order_status = self.orders.get(&shipment.order).map(|o| o.status.clone());
        json!({
            "shipment": shipment.id,
            "order": shipment.order,
            "external_ref": shipment.order_external_ref,
            "order_status": order_status,
            "location": shipment.location,
            "status": shipment.status,
            "backorder": shipment.backorder,
            "lines": shipment.lines,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "expected_delivery_at": shipment.expected_delivery_at.map(crate::clock::format_ms),
        })
    }
}
