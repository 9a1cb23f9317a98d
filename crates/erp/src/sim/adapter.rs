//! [`Adapter`]: the ERP port over the simulator's HTTP API.
//!
//! - Writes carry the engine's idempotency key as `Idempotency-Key`; the simulator replays the
//!   first answer to a repeat (`Idempotent-Replayed: true`), and books look-up first by the
//!   hub's reference, so a second booking answers the first order with `created: false`.
//! - Lines are booked with `line_ref` = the hub's line number; every later answer and event
//!   is mapped back through the order's line map.
//! - Answers of the wrong shape are unknown failures naming the operation and the field.

use std::collections::BTreeMap;

use async_trait::async_trait;
use crossdock_domain::account::{Account, CreditStatus};
use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::{AccountId, LineNo, LocationId, Sku};
use crossdock_domain::money::{Currency, round_cents};
use crossdock_domain::order::{CreditAnswer, Milestone};
use crossdock_ports::erp::{
    Allocation, BookingConfirmation, BookingRequest, CancelOutcome, ChangeBatch, CreditMemo,
    CreditReport, CustomerRef, Erp, ErpInvoice, ErpLine, ErpOrder, ErpShipment, FulfilmentRequest,
    PriceQuote, PriceRequest, Refund, ReturnAuthorisation, ReturnReceipt, ReturnRequest,
};
use crossdock_ports::{Failure, failure::Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::json;
use time::Date;
use time::macros::format_description;

use super::client::{Client, LineMap};
use super::config::Config;
use super::{feed, wire};
use crate::rest::http::{Http, encode};

/// The ERP port over the ERP simulator.
#[derive(Debug)]
pub struct Adapter {
    client: Client,
    fan_out: usize,
}

impl Adapter {
    /// Builds the adapter (no I/O).
    ///
    /// # Errors
    /// Permanent when the configuration is invalid or the HTTP client cannot start.
    pub fn new(config: &Config) -> Result<Self> {
        config
            .validate()
            .map_err(|problems| Failure::permanent(problems.join("; ")).with_code("config"))?;
        let http = Http::new(&config.base_url, config.timeout(), config.connect_timeout())?;
        Ok(Self {
            client: Client::new(http),
            fan_out: config.fan_out,
        })
    }

    /// Base URL of the simulator.
    pub fn base_url(&self) -> &str {
        self.client.base()
    }

    async fn read_order(&self, key: &str) -> Result<wire::Order> {
        let order: wire::Order = self
            .client
            .get("get_order", &format!("/api/v1/orders/{}", encode(key)))
            .await?;
        self.client.remember_order(&order);
        Ok(order)
    }

    async fn read_shipments(&self, number: &str) -> Result<Vec<wire::Shipment>> {
        let shipments: wire::Shipments = self
            .client
            .get(
                "get_shipment",
                &format!("/api/v1/orders/{}/shipments", encode(number)),
            )
            .await?;
        Ok(shipments.shipments)
    }

    async fn quote(&self, account: &str, item: &PriceRequest, date: &str) -> Result<PriceQuote> {
        let op = "price_quote";
        let body = json!({
            "customer": account,
            "sku": item.sku.as_str(),
            "quantity": item.quantity,
            "date": date,
        });
        let quote: wire::Quote = self
            .client
            .fetch(op, Method::POST, "/api/v1/price-quotes", Some(&body), None)
            .await?
            .value;
        Ok(PriceQuote {
            sku: Sku::new(quote.sku),
            unit_price: quote.unit_price,
            list_price: quote.list_price,
            currency: parse_currency(op, "currency", &quote.currency)?,
            promotion: quote.promotion.map(|p| p.id),
        })
    }

    async fn stock_levels(&self, path: String) -> Result<Vec<InventoryLevel>> {
        let page: wire::Availability = self.client.get("availability", &path).await?;
        Ok(page
            .locations
            .into_iter()
            .map(|row| InventoryLevel {
                sku: Sku::new(page.sku.clone()),
                location: LocationId::new(row.location),
                on_hand: row.on_hand,
                reserved: row.reserved,
                available: row.available,
                as_of: page.as_of,
            })
            .collect())
    }

    /// Units of each line allocated per location, over the order's live shipments.
    pub(crate) async fn allocations(&self, number: &str, map: &LineMap) -> Result<Vec<Allocation>> {
        let shipments = self.read_shipments(number).await?;
        Ok(allocations_of(&shipments, map))
    }
}

/// Sums shipment lines per (line, location), leaving out cancelled shipments.
pub(crate) fn allocations_of(shipments: &[wire::Shipment], map: &LineMap) -> Vec<Allocation> {
    let mut totals: BTreeMap<(u32, String), u32> = BTreeMap::new();
    for shipment in shipments.iter().filter(|s| s.status != "cancelled") {
        for line in &shipment.lines {
            *totals
                .entry((to_hub(map, line.line), shipment.location.clone()))
                .or_default() += line.quantity;
        }
    }
    totals
        .into_iter()
        .map(|((line, location), quantity)| Allocation {
            line: LineNo(line),
            location: LocationId::new(location),
            quantity,
        })
        .collect()
}

/// A simulator line number in the hub's numbering.
pub(crate) fn to_hub(map: &LineMap, line: u32) -> u32 {
    map.get(&line).copied().unwrap_or(line)
}

/// A hub line number in the simulator's numbering.
fn to_sim(map: &LineMap, line: LineNo) -> Option<u32> {
    map.iter()
        .find(|(_, hub)| **hub == line.0)
        .map(|(sim, _)| *sim)
}

fn parse_currency(op: &str, field: &str, text: &str) -> Result<Currency> {
    text.parse().map_err(|e| {
        Failure::unknown(format!("{op}: answer field `{field}`: {e}")).with_code("malformed_answer")
    })
}

/// The port's credit status for the simulator's (`near_limit` still accepts orders).
pub(crate) fn credit_status(op: &str, field: &str, text: &str) -> Result<CreditStatus> {
    match text {
        "good" | "near_limit" => Ok(CreditStatus::Good),
        "over_limit" => Ok(CreditStatus::OverLimit),
        "on_hold" => Ok(CreditStatus::OnHold),
        other => Err(Failure::unknown(format!(
            "{op}: answer field `{field}`: unknown credit status {other:?}"
        ))
        .with_code("malformed_answer")),
    }
}

/// The milestone a shipment status stands for (`allocated` and `cancelled` are none).
pub(crate) fn milestone(status: &str) -> Option<Milestone> {
    match status {
        "picked" => Some(Milestone::Picked),
        "packed" => Some(Milestone::Packed),
        "shipped" => Some(Milestone::Shipped),
        "delivered" => Some(Milestone::Delivered),
        _ => None,
    }
}

fn shipment_of(op: &str, shipment: &wire::Shipment, map: &LineMap) -> Result<Option<ErpShipment>> {
    let Some(reached) = milestone(&shipment.status) else {
        if matches!(shipment.status.as_str(), "allocated" | "cancelled") {
            return Ok(None);
        }
        return Err(Failure::unknown(format!(
            "{op}: answer field `shipments[].status`: unknown shipment status {:?} of {}",
            shipment.status, shipment.id
        ))
        .with_code("malformed_answer"));
    };
    let at = shipment
        .milestones
        .iter()
        .rev()
        .find(|m| m.status == shipment.status)
        .map(|m| m.at)
        .ok_or_else(|| {
            Failure::unknown(format!(
                "{op}: answer field `shipments[].milestones`: shipment {} is {} but has no such milestone",
                shipment.id, shipment.status
            ))
            .with_code("malformed_answer")
        })?;
    Ok(Some(ErpShipment {
        id: shipment.id.clone(),
        location: Some(LocationId::new(shipment.location.clone())),
        lines: shipment
            .lines
            .iter()
            .map(|l| (LineNo(to_hub(map, l.line)), l.quantity))
            .collect(),
        milestone: reached,
        carrier: shipment.carrier.clone(),
        tracking: shipment.tracking_number.clone(),
        at,
    }))
}

fn method_of(kind: &str) -> Option<FulfilmentMethod> {
    match kind {
        "ship_from_warehouse" => Some(FulfilmentMethod::ShipFromWarehouse),
        "split" => Some(FulfilmentMethod::SplitShipment),
        "ship_from_store" => Some(FulfilmentMethod::ShipFromStore),
        "pickup_in_store" => Some(FulfilmentMethod::PickupInStore),
        _ => None,
    }
}

#[async_trait]
impl Erp for Adapter {
    fn name(&self) -> &str {
        "sim"
    }

    async fn prices(
        &self,
        account: &AccountId,
        items: &[PriceRequest],
        on: Date,
    ) -> Result<Vec<PriceQuote>> {
        let date = on
            .format(format_description!("[year]-[month]-[day]"))
            .map_err(|e| Failure::permanent(format!("price_quote: cannot format {on}: {e}")))?;
        let calls: Vec<_> = items
            .iter()
            .map(|item| self.quote(account.as_str(), item, &date))
            .collect();
        stream::iter(calls)
            .buffered(self.fan_out)
            .try_collect()
            .await
    }

    async fn availability(
        &self,
        skus: &[Sku],
        location: Option<&LocationId>,
    ) -> Result<Vec<InventoryLevel>> {
        let query =
            location.map_or_else(String::new, |l| format!("?location={}", encode(l.as_str())));
        let calls: Vec<_> = skus
            .iter()
            .map(|sku| {
                self.stock_levels(format!(
                    "/api/v1/availability/{}{query}",
                    encode(sku.as_str())
                ))
            })
            .collect();
        let pages: Vec<Vec<InventoryLevel>> = stream::iter(calls)
            .buffered(self.fan_out)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn credit_check(
        &self,
        account: &AccountId,
        amount: Decimal,
        currency: Currency,
    ) -> Result<CreditAnswer> {
        let op = "credit_check";
        let body =
            json!({ "customer": account.as_str(), "amount": round_cents(amount).to_string() });
        let credit: wire::Credit = self
            .client
            .fetch(op, Method::POST, "/api/v1/credit-checks", Some(&body), None)
            .await?
            .value;
        let kept_in = parse_currency(op, "currency", &credit.currency)?;
        if kept_in != currency {
            return Err(Failure::permanent(format!(
                "customer {account} has credit in {kept_in}; a check in {currency} is not possible"
            ))
            .with_code("currency_mismatch"));
        }
        let approved = credit.approved.ok_or_else(|| {
            Failure::unknown(format!("{op}: answer field `approved`: missing"))
                .with_code("malformed_answer")
        })?;
        Ok(CreditAnswer {
            approved,
            available: Some(credit.available_credit),
            reason: credit.reason.map(|reason| {
                format!(
                    "{reason}: available credit {} {kept_in}, order {} {kept_in}",
                    credit.available_credit,
                    round_cents(amount)
                )
            }),
        })
    }

    async fn fulfilment_options(
        &self,
        request: &FulfilmentRequest,
    ) -> Result<Vec<FulfilmentOption>> {
        let op = "fulfilment_options";
        let mut body = json!({
            "customer": request.account.as_str(),
            "lines": request.lines.iter().map(|(sku, quantity)| json!({"sku": sku.as_str(), "quantity": quantity})).collect::<Vec<_>>(),
        });
        if let Some(region) = &request.region {
            body["ship_to_region"] = json!(region);
        }
        let options: wire::FulfilmentOptions = self
            .client
            .fetch(
                op,
                Method::POST,
                "/api/v1/fulfilment-options",
                Some(&body),
                None,
            )
            .await?
            .value;
        options
            .options
            .into_iter()
            .enumerate()
            .map(|(index, option)| {
                let method = method_of(&option.kind).ok_or_else(|| {
                    Failure::unknown(format!(
                        "{op}: answer field `options[{index}].kind`: unknown option kind {:?}",
                        option.kind
                    ))
                    .with_code("malformed_answer")
                })?;
                Ok(FulfilmentOption {
                    method,
                    locations: option.locations.into_iter().map(LocationId::new).collect(),
                    promised_date: option.promised_delivery_at.map(|at| at.date()),
                })
            })
            .collect()
    }

    async fn book_order(
        &self,
        order: &BookingRequest,
        idempotency_key: &str,
    ) -> Result<BookingConfirmation> {
        let op = "book_order";
        let locations: Option<Vec<&str>> = order
            .fulfilment
            .as_ref()
            .filter(|f| !f.locations.is_empty())
            .map(|f| f.locations.iter().map(LocationId::as_str).collect());
        let mut body = json!({
            "external_ref": order.reference.as_str(),
            "customer": order.account.as_str(),
            "lines": order.lines.iter().map(|l| json!({
                "sku": l.sku.as_str(),
                "quantity": l.quantity,
                "line_ref": l.line.0.to_string(),
            })).collect::<Vec<_>>(),
        });
        if let Some(locations) = &locations {
            body["locations"] = json!(locations);
        }
        if let Some(region) = &order.region {
            body["ship_to_region"] = json!(region);
        }
        let reply = self
            .client
            .fetch::<wire::Order>(
                op,
                Method::POST,
                "/api/v1/orders",
                Some(&body),
                Some(idempotency_key),
            )
            .await?;
        let booked = reply.value;
        if booked.external_ref != order.reference.as_str() {
            return Err(Failure::unknown(format!(
                "{op}: answer field `external_ref`: the ERP answered order {} for reference {:?}, not {:?}",
                booked.number, booked.external_ref, order.reference.as_str()
            ))
            .with_code("malformed_answer"));
        }
        let map = self.client.remember_order(&booked);
        let allocated = booked.lines.iter().any(|l| l.allocated > 0);
        let allocations = match locations.as_deref() {
            _ if !allocated => Vec::new(),
            // One location: everything allocated is there, no need to read the shipments.
            Some([only]) => booked
                .lines
                .iter()
                .filter(|l| l.allocated > 0)
                .map(|l| Allocation {
                    line: LineNo(to_hub(&map, l.line)),
                    location: LocationId::new(*only),
                    quantity: l.allocated,
                })
                .collect(),
            _ => self.allocations(&booked.number, &map).await?,
        };
        Ok(BookingConfirmation {
            erp_ref: booked.number.clone(),
            created: reply.status == 201 && !reply.replayed,
            allocations,
            backorders: booked
                .lines
                .iter()
                .filter(|l| l.backordered > 0)
                .map(|l| (LineNo(to_hub(&map, l.line)), l.backordered))
                .collect(),
        })
    }

    async fn cancel_order(
        &self,
        erp_ref: &str,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<CancelOutcome> {
        // Look first: an order someone already cancelled answers "already cancelled".
        let before = self.read_order(erp_ref).await?;
        if before.cancelled_at.is_some() {
            return Ok(CancelOutcome::AlreadyCancelled);
        }
        let body = json!({ "reason": reason });
        let after: wire::Order = self
            .client
            .fetch(
                "cancel_order",
                Method::POST,
                &format!("/api/v1/orders/{}/cancel", encode(&before.number)),
                Some(&body),
                Some(idempotency_key),
            )
            .await?
            .value;
        if after.cancelled_at.is_none() {
            return Err(Failure::unknown(format!(
                "cancel_order: answer field `cancelled_at`: order {} is not cancelled after the cancellation",
                after.number
            ))
            .with_code("malformed_answer"));
        }
        Ok(CancelOutcome::Cancelled)
    }

    async fn order(&self, erp_ref: &str) -> Result<ErpOrder> {
        let op = "get_order";
        let order = self.read_order(erp_ref).await?;
        let map = self.client.line_map(&order.number).await?;
        let shipments = self.read_shipments(&order.number).await?;
        let invoices: wire::Invoices = self
            .client
            .get(
                "get_invoice",
                &format!("/api/v1/orders/{}/invoices", encode(&order.number)),
            )
            .await?;
        let mut erp_shipments = Vec::new();
        for shipment in &shipments {
            if let Some(shipment) = shipment_of(op, shipment, &map)? {
                erp_shipments.push(shipment);
            }
        }
        Ok(ErpOrder {
            erp_ref: order.number.clone(),
            reference: order.external_ref.as_str().into(),
            cancelled: order.cancelled_at.is_some(),
            lines: order
                .lines
                .iter()
                .map(|l| ErpLine {
                    line: LineNo(to_hub(&map, l.line)),
                    sku: Sku::new(l.sku.clone()),
                    ordered: l.quantity,
                    allocated: l.allocated,
                    backordered: l.backordered,
                    shipped: l.shipped,
                    delivered: l.delivered,
                })
                .collect(),
            shipments: erp_shipments,
            invoices: invoices
                .invoices
                .into_iter()
                .map(|i| ErpInvoice {
                    id: i.number.clone(),
                    number: i.number,
                    lines: i
                        .lines
                        .iter()
                        .map(|l| (LineNo(to_hub(&map, l.line)), l.quantity))
                        .collect(),
                    net: i.untaxed_amount,
                    tax: i.tax_amount,
                    total: i.total_amount,
                    paid: i.amount_paid,
                    issued_at: i.issued_at,
                })
                .collect(),
        })
    }

    async fn changes(&self, cursor: Option<&str>, limit: usize) -> Result<ChangeBatch> {
        feed::changes(self, &self.client, cursor, limit).await
    }

    async fn upsert_customer(
        &self,
        account: &Account,
        idempotency_key: &str,
    ) -> Result<CustomerRef> {
        let mut body = json!({ "name": account.name, "tier": account.tier.as_str() });
        if let Some(region) = &account.region {
            body["region"] = json!(region);
        }
        let reply = self
            .client
            .fetch::<wire::Customer>(
                "upsert_customer",
                Method::PUT,
                &format!("/api/v1/customers/{}", encode(account.id.as_str())),
                Some(&body),
                Some(idempotency_key),
            )
            .await?;
        Ok(CustomerRef {
            erp_ref: reply.value.number,
            created: reply.status == 201 && !reply.replayed,
        })
    }

    async fn credit_status(&self, account: &AccountId) -> Result<CreditReport> {
        let op = "customer_credit";
        let credit: wire::Credit = self
            .client
            .get(
                op,
                &format!("/api/v1/customers/{}/credit", encode(account.as_str())),
            )
            .await?;
        Ok(CreditReport {
            account: account.clone(),
            status: credit_status(op, "status", &credit.status)?,
            limit: Some(credit.credit_limit),
            balance: Some(credit.open_balance),
        })
    }

    async fn create_return(
        &self,
        request: &ReturnRequest,
        idempotency_key: &str,
    ) -> Result<ReturnAuthorisation> {
        let op = "create_rma";
        let number = match &request.order_erp_ref {
            Some(number) => number.clone(),
            None => self.read_order(request.order.as_str()).await?.number,
        };
        let map = self.client.line_map(&number).await?;
        let mut lines = Vec::new();
        for (line, sku, quantity) in &request.lines {
            let sim_line = to_sim(&map, *line).ok_or_else(|| {
                Failure::permanent(format!(
                    "order {number} has no line {line} (return {})",
                    request.rma
                ))
                .with_code("unknown_line")
            })?;
            lines.push(json!({ "line": sim_line, "sku": sku.as_str(), "quantity": quantity }));
        }
        let body = json!({
            "external_ref": request.rma.as_str(),
            "order": number,
            "reason": request.reason,
            "lines": lines,
        });
        let rma: wire::Rma = self
            .client
            .fetch(
                op,
                Method::POST,
                "/api/v1/rmas",
                Some(&body),
                Some(idempotency_key),
            )
            .await?
            .value;
        self.client.remember_rma(&rma.number, &rma.order);
        Ok(ReturnAuthorisation {
            erp_ref: rma.number,
        })
    }

    async fn receive_return(
        &self,
        erp_rma: &str,
        lines: &[(LineNo, u32)],
        idempotency_key: &str,
    ) -> Result<ReturnReceipt> {
        let order = self.client.rma_order(erp_rma).await?;
        let map = self.client.line_map(&order).await?;
        let mut body_lines = Vec::new();
        for (line, quantity) in lines {
            let sim_line = to_sim(&map, *line).ok_or_else(|| {
                Failure::permanent(format!("order {order} has no line {line} (RMA {erp_rma})"))
                    .with_code("unknown_line")
            })?;
            body_lines.push(json!({ "line": sim_line, "quantity": quantity }));
        }
        let body = json!({ "lines": body_lines });
        let rma: wire::Rma = self
            .client
            .fetch(
                "receive_return",
                Method::POST,
                &format!("/api/v1/rmas/{}/receipts", encode(erp_rma)),
                Some(&body),
                Some(idempotency_key),
            )
            .await?
            .value;
        Ok(ReturnReceipt {
            id: rma.receipt_id(),
            lines: lines.to_vec(),
        })
    }

    async fn issue_credit_memo(&self, erp_rma: &str, idempotency_key: &str) -> Result<CreditMemo> {
        let memo: wire::CreditMemo = self
            .client
            .fetch(
                "issue_credit_memo",
                Method::POST,
                &format!("/api/v1/rmas/{}/credit-memos", encode(erp_rma)),
                None,
                Some(idempotency_key),
            )
            .await?
            .value;
        Ok(CreditMemo {
            id: memo.number.clone(),
            number: memo.number,
            amount: memo.total_amount,
        })
    }

    async fn issue_refund(&self, credit_memo: &str, idempotency_key: &str) -> Result<Refund> {
        let refund: wire::Refund = self
            .client
            .fetch(
                "refund",
                Method::POST,
                &format!("/api/v1/credit-memos/{}/refunds", encode(credit_memo)),
                None,
                Some(idempotency_key),
            )
            .await?
            .value;
        Ok(Refund {
            id: refund.id,
            amount: refund.amount,
        })
    }
}
