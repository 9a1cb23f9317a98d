//! Sales orders: booking by external reference (look-up first, never two orders for one
//! reference), credit check, stock reservation per line per location with backorders for what
//! is missing, derived statuses, cancellation (refused once anything shipped), reads.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::error::{ApiError, Code, Result};
use crate::model::{LineQty, Order, OrderLine, ShipmentState, cents};
use crate::ops::{optional_str, parse_qty, required_array, required_str};
use crate::state::State;

/// One parsed order line request.
struct LineRequest {
    sku: String,
    quantity: u64,
    line_ref: Option<String>,
}

impl State {
    /// `POST /api/v1/orders`: books an order, or returns the one already booked under the same
    /// external reference. Returns whether it was created.
    ///
    /// # Errors
    /// `invalid_request`, `unknown_customer`, `unknown_item`, `unknown_location`,
    /// `invalid_quantity`, `customer_on_hold`, `credit_limit_exceeded`.
    pub fn book_order(&mut self, body: &Value) -> Result<(bool, Order)> {
        let external_ref = required_str(body, "external_ref")?.to_owned();
        self.stats
            .bookings
            .entry(external_ref.clone())
            .or_default()
            .requests += 1;
        // Look up first: the same reference always answers the same order.
        if let Some(order) = self
            .order_by_ref
            .get(&external_ref)
            .and_then(|n| self.orders.get(n))
        {
            return Ok((false, order.clone()));
        }
        let customer = self.require_customer(required_str(body, "customer")?)?;
        let mut requests = Vec::new();
        for (index, line) in required_array(body, "lines")?.iter().enumerate() {
            let sku = required_str(line, "sku").map_err(|e| ApiError {
                message: format!("lines[{index}].{}", e.message),
                ..e
            })?;
            self.require_item(sku)?;
            let field = format!("lines[{index}].quantity");
            let quantity = parse_qty(line.get("quantity").unwrap_or(&Value::Null), &field)?;
            let line_ref = optional_str(line, "line_ref")?.map(str::to_owned);
            requests.push(LineRequest {
                sku: sku.to_owned(),
                quantity,
                line_ref,
            });
        }
        let region = match optional_str(body, "ship_to_region")? {
            Some(region) => region.to_ascii_uppercase(),
            None => self.customers[&customer].region.clone(),
        };
        let preference = match body.get("locations") {
            None | Some(Value::Null) => self.default_preference(&region),
            Some(Value::Array(codes)) => {
                let mut list = Vec::new();
                for code in codes {
                    let Some(code) = code.as_str() else {
                        return Err(ApiError::bad_request(
                            Code::InvalidRequest,
                            "locations must be an array of location codes",
                        ));
                    };
                    self.require_location(code)?;
                    list.push(code.to_owned());
                }
                list
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    Code::InvalidRequest,
                    "locations must be an array of location codes",
                ));
            }
        };
        // Backorders wait at the first preferred warehouse.
        let backorder_location = preference
            .iter()
            .find(|c| self.locations[*c].kind == crate::model::LocationKind::Warehouse)
            .cloned()
            .or_else(|| self.default_preference(&region).into_iter().next())
            .or_else(|| preference.first().cloned())
            .ok_or_else(|| {
                ApiError::unprocessable(Code::UnknownLocation, "no location to ship from")
            })?;

        let mut lines = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            let quote = self.price(&customer, &request.sku, request.quantity, self.now)?;
            lines.push(OrderLine {
                line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                line_ref: request.line_ref.clone(),
                sku: request.sku.clone(),
                quantity: request.quantity,
                unit_price: quote.unit_price,
                list_price: quote.list_price,
                promotion: quote.promotion.map(|p| p.id),
                tax_rate: quote.tax_rate,
                amount: quote.amount,
                tax: quote.tax,
                total: quote.total,
                allocated: 0,
                backordered_at: BTreeMap::new(),
                backordered: 0,
                shipped: 0,
                delivered: 0,
                invoiced: 0,
                return_authorised: 0,
                returned: 0,
                credited: 0,
                cancelled: 0,
            });
        }
        let untaxed: Decimal = lines.iter().map(|l| l.amount).sum();
        let total: Decimal = lines.iter().map(|l| l.total).sum();

        let Some(credit) = self.credit_view(&customer) else {
            return Err(ApiError::unprocessable(
                Code::UnknownCustomer,
                "unknown customer",
            ));
        };
        if credit.on_hold {
            return Err(ApiError::unprocessable(
                Code::CustomerOnHold,
                format!("customer {customer} is on credit hold"),
            )
            .with_details(json!({ "customer": customer })));
        }
        if total > credit.available_credit {
            return Err(ApiError::unprocessable(
                Code::CreditLimitExceeded,
                format!(
                    "order total {total} exceeds the available credit {} of customer {customer}",
                    credit.available_credit
                ),
            )
            .with_details(json!({
                "customer": customer,
                "order_amount": total,
                "credit_limit": credit.credit_limit,
                "exposure": credit.exposure,
                "available_credit": credit.available_credit,
            })));
        }

        // Reserve line by line along the preference, backorder the rest.
        let number = Self::next_id(&mut self.counters.order, "SO");
        let mut per_location: BTreeMap<String, Vec<LineQty>> = BTreeMap::new();
        let mut touched = BTreeSet::new();
        let mut backorders = Vec::new();
        for line in &mut lines {
            let mut remaining = line.quantity;
            for code in &preference {
                if remaining == 0 {
                    break;
                }
                let stock = self
                    .stock
                    .entry((line.sku.clone(), code.clone()))
                    .or_default();
                let take = stock.available().min(remaining);
                if take > 0 {
                    stock.reserved += take;
                    remaining -= take;
                    line.allocated += take;
                    touched.insert((line.sku.clone(), code.clone()));
                    per_location.entry(code.clone()).or_default().push(LineQty {
                        line: line.line,
                        sku: line.sku.clone(),
                        quantity: take,
                    });
                }
            }
            if remaining > 0 {
                line.backordered_at
                    .insert(backorder_location.clone(), remaining);
                backorders.push((line.line, line.sku.clone(), remaining));
            }
        }
        for (_, sku, quantity) in &backorders {
            self.adjust_backorder(sku, &backorder_location, *quantity, 0);
        }
        let order = Order {
            number: number.clone(),
            external_ref: external_ref.clone(),
            customer: customer.clone(),
            status: String::new(),
            shipment_status: String::new(),
            invoice_status: String::new(),
            currency: self.config.currency.clone(),
            ship_to_region: region,
            booked_at: self.now,
            cancelled_at: None,
            lines,
            untaxed_amount: cents(untaxed),
            tax_amount: cents(total - untaxed),
            total_amount: cents(total),
            shipments: Vec::new(),
            invoices: Vec::new(),
            rmas: Vec::new(),
        };
        self.orders.insert(number.clone(), order);
        self.order_by_ref
            .insert(external_ref.clone(), number.clone());
        let stats = self.stats.bookings.entry(external_ref).or_default();
        stats.orders_created += 1;
        stats.order = Some(number.clone());
        self.refresh_order(&number);
        self.set_uninvoiced(&customer, &number, cents(total));

        let summary = self.order_event(&number);
        self.emit("order.booked", summary);
        for (sku, code) in &touched {
            self.emit_inventory(sku, code, "order_booked");
        }
        for (code, lines) in per_location {
            let shipment = self.create_shipment(&number, &code, lines, false);
            self.emit_allocated(&number, &shipment);
        }
        if !backorders.is_empty() {
            for (_, sku, _) in &backorders {
                self.ensure_replenishment(sku, &backorder_location);
            }
            let expected = self
                .replenishments
                .values()
                .filter(|r| r.location == backorder_location)
                .map(|r| (r.sku.clone(), r.arrives_at))
                .collect::<BTreeMap<_, _>>();
            let rows: Vec<Value> = backorders
                .iter()
                .map(|(line, sku, quantity)| {
                    json!({
                        "line": line,
                        "sku": sku,
                        "quantity": quantity,
                        "location": backorder_location,
                        "expected_at": expected.get(sku).map(|at| crate::clock::format_ms(*at)),
                    })
                })
                .collect();
            let order = &self.orders[&number];
            let data = json!({
                "order": number,
                "external_ref": order.external_ref,
                "customer": order.customer,
                "lines": rows,
            });
            self.emit("order.backordered", data);
        }
        self.refresh_credit(&customer);
        Ok((true, self.orders[&number].clone()))
    }

    /// Publishes `order.allocated` for a new shipment.
    pub(crate) fn emit_allocated(&mut self, number: &str, shipment: &str) {
        let (Some(order), Some(shipment)) = (self.orders.get(number), self.shipments.get(shipment))
        else {
            return;
        };
        let data = json!({
            "order": order.number,
            "external_ref": order.external_ref,
            "customer": order.customer,
            "status": order.status,
            "shipment": shipment.id,
            "location": shipment.location,
            "backorder": shipment.backorder,
            "lines": shipment.lines,
        });
        self.emit("order.allocated", data);
    }

    /// Event payload summarising an order.
    pub(crate) fn order_event(&self, number: &str) -> Value {
        let Some(order) = self.orders.get(number) else {
            return Value::Null;
        };
        let lines: Vec<Value> = order
            .lines
            .iter()
            .map(|l| {
                json!({
                    "line": l.line,
                    "line_ref": l.line_ref,
                    "sku": l.sku,
                    "quantity": l.quantity,
                    "unit_price": l.unit_price,
                    "total": l.total,
                    "allocated": l.allocated,
                    "backordered": l.backordered,
                })
            })
            .collect();
        json!({
            "order": order.number,
            "external_ref": order.external_ref,
            "customer": order.customer,
            "status": order.status,
            "currency": order.currency,
            "total_amount": order.total_amount,
            "lines": lines,
        })
    }

    /// Recomputes an order's derived quantities and statuses.
    pub(crate) fn refresh_order(&mut self, number: &str) {
        let invoice_status = {
            let Some(order) = self.orders.get(number) else {
                return;
            };
            let invoices: Vec<_> = order
                .invoices
                .iter()
                .filter_map(|n| self.invoices.get(n))
                .collect();
            if invoices.is_empty() {
                "none"
            } else if invoices.iter().all(|i| i.amount_due.is_zero()) {
                "paid"
            } else if invoices.iter().any(|i| !i.amount_paid.is_zero()) {
                "partially_paid"
            } else {
                "awaiting_payment"
            }
        };
        let Some(order) = self.orders.get_mut(number) else {
            return;
        };
        for line in &mut order.lines {
            line.backordered = line.backordered_at.values().sum();
        }
        let sum = |f: fn(&OrderLine) -> u64| order.lines.iter().map(f).sum::<u64>();
        let wanted = sum(|l| l.quantity - l.cancelled);
        let (allocated, backordered) = (sum(|l| l.allocated), sum(|l| l.backordered));
        let (shipped, delivered, invoiced) = (
            sum(|l| l.shipped),
            sum(|l| l.delivered),
            sum(|l| l.invoiced),
        );
        let fully_paid = invoice_status == "paid" && invoiced == wanted;
        order.status = if order.cancelled_at.is_some() {
            "cancelled"
        } else if wanted > 0 && delivered == wanted && fully_paid {
            "closed"
        } else if wanted > 0 && delivered == wanted {
            "delivered"
        } else if wanted > 0 && shipped == wanted {
            "shipped"
        } else if shipped > 0 {
            "partially_shipped"
        } else if backordered > 0 {
            "backordered"
        } else if allocated == wanted {
            "allocated"
        } else {
            "booked"
        }
        .to_owned();
        order.shipment_status = if order.shipments.is_empty() && backordered == 0 {
            "none"
        } else if wanted > 0 && delivered == wanted {
            "delivered"
        } else if wanted > 0 && shipped == wanted {
            "shipped"
        } else if shipped > 0 {
            "partially_shipped"
        } else {
            "waiting"
        }
        .to_owned();
        invoice_status.clone_into(&mut order.invoice_status);
    }

    /// Recomputes the value booked on an order but not yet invoiced (for credit exposure).
    pub(crate) fn recompute_uninvoiced(&mut self, number: &str) {
        let Some(order) = self.orders.get(number) else {
            return;
        };
        let value: Decimal = if order.cancelled_at.is_some() {
            Decimal::ZERO
        } else {
            order
                .lines
                .iter()
                .map(|l| {
                    let open = l.quantity - l.cancelled - l.invoiced.min(l.quantity - l.cancelled);
                    cents(Decimal::from(open) * l.unit_price_incl_tax())
                })
                .sum()
        };
        let customer = order.customer.clone();
        self.set_uninvoiced(&customer, number, value);
    }

    /// `POST /api/v1/orders/{number}/cancel`: cancels an order before anything shipped and
    /// releases its reservations. Cancelling a cancelled order answers it unchanged.
    ///
    /// # Errors
    /// `unknown_order`, `cancel_after_shipment`.
    pub fn cancel_order(&mut self, key: &str, reason: Option<&str>) -> Result<Order> {
        let number = self.order_number(key).ok_or_else(|| {
            ApiError::not_found(Code::UnknownOrder, format!("unknown order {key:?}"))
        })?;
        let order = &self.orders[&number];
        if order.cancelled_at.is_some() {
            return Ok(order.clone());
        }
        let shipped: Vec<Value> = order
            .shipments
            .iter()
            .filter_map(|id| self.shipments.get(id))
            .filter(|s| matches!(s.status, ShipmentState::Shipped | ShipmentState::Delivered))
            .map(|s| json!({ "shipment": s.id, "location": s.location, "status": s.status }))
            .collect();
        if !shipped.is_empty() {
            return Err(ApiError::conflict(
                Code::CancelAfterShipment,
                format!("order {number} cannot be cancelled: part of it has already shipped"),
            )
            .with_details(json!({ "order": number, "shipments": shipped })));
        }
        let mut released: BTreeMap<(String, String), u64> = BTreeMap::new();
        for id in order.shipments.clone() {
            let Some(shipment) = self.shipments.get_mut(&id) else {
                continue;
            };
            if shipment.status == ShipmentState::Cancelled {
                continue;
            }
            shipment.status = ShipmentState::Cancelled;
            shipment.milestones.push(crate::model::Milestone {
                status: ShipmentState::Cancelled,
                at: self.now,
            });
            for line in &shipment.lines {
                *released
                    .entry((line.sku.clone(), shipment.location.clone()))
                    .or_default() += line.quantity;
            }
        }
        let mut dropped_backorders = Vec::new();
        if let Some(order) = self.orders.get_mut(&number) {
            order.cancelled_at = Some(self.now);
            for line in &mut order.lines {
                line.cancelled = line.quantity - line.shipped;
                for (location, quantity) in std::mem::take(&mut line.backordered_at) {
                    dropped_backorders.push((line.sku.clone(), location, quantity));
                }
            }
        }
        for (sku, location, quantity) in dropped_backorders {
            self.adjust_backorder(&sku, &location, 0, quantity);
        }
        for ((sku, location), quantity) in &released {
            let stock = self.stock_mut(sku, location);
            stock.reserved = stock.reserved.saturating_sub(*quantity);
        }
        self.refresh_order(&number);
        self.recompute_uninvoiced(&number);
        let order = self.orders[&number].clone();
        let released_rows: Vec<Value> = released
            .iter()
            .map(|((sku, location), quantity)| json!({ "sku": sku, "location": location, "quantity": quantity }))
            .collect();
        self.emit(
            "order.cancelled",
            json!({
                "order": order.number,
                "external_ref": order.external_ref,
                "customer": order.customer,
                "reason": reason,
                "released": released_rows,
            }),
        );
        for (sku, location) in released.keys() {
            self.emit_inventory(sku, location, "order_cancelled");
            self.fill_backorders(sku, location);
        }
        self.refresh_credit(&order.customer);
        Ok(self.orders[&number].clone())
    }

    /// An order with its shipments and invoices expanded, for `GET /api/v1/orders/{number}`.
    ///
    /// # Errors
    /// `unknown_order` (404).
    pub fn order_view(&self, key: &str) -> Result<Value> {
        let order = self.order(key).ok_or_else(|| {
            ApiError::not_found(Code::UnknownOrder, format!("unknown order {key:?}"))
        })?;
        Ok(serde_json::to_value(order).unwrap_or_default())
    }
}
