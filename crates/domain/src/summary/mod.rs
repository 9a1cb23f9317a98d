//! The order summary: a flat, serializable view of an order's current state. It is the read
//! model the store projects, the payload of state-based Salesforce write-backs, and what the
//! API and dashboard show.

mod json;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{
    AccountId, ExternalRefs, InvoiceId, LineNo, LocationId, OrderId, RmaId, ShipmentId, Sku,
};
use crate::money::Currency;
use crate::order::{
    Channel, LineQuantities, Milestone, Order, OrderStatus, ReturnStatus, StageTimes,
};

/// One line with every tracked quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineSummary {
    /// Line number.
    pub line: LineNo,
    /// Product.
    pub sku: Sku,
    /// Salesforce `OrderItem` id.
    pub sf_id: Option<String>,
    /// Price per unit.
    pub unit_price: Decimal,
    /// Quantities.
    pub quantities: LineQuantities,
}

/// One shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentSummary {
    /// Shipment id.
    pub id: ShipmentId,
    /// Location it ships from.
    pub location: Option<LocationId>,
    /// Furthest milestone.
    pub milestone: Option<Milestone>,
    /// Carrier.
    pub carrier: Option<String>,
    /// Tracking number.
    pub tracking: Option<String>,
    /// Units per line.
    pub lines: Vec<(LineNo, u32)>,
}

/// One invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSummary {
    /// Invoice id.
    pub id: InvoiceId,
    /// Document number.
    pub number: String,
    /// Total with tax.
    pub total: Decimal,
}

/// One return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnSummary {
    /// Return id.
    pub rma: RmaId,
    /// The Salesforce case.
    pub case: ExternalRefs,
    /// Status.
    pub status: ReturnStatus,
    /// ERP RMA number.
    pub erp_ref: Option<String>,
    /// Units requested per line.
    pub lines: Vec<(LineNo, u32)>,
    /// Credit memo numbers.
    pub credit_memos: Vec<String>,
    /// Amount credited.
    pub credited: Decimal,
    /// Amount refunded.
    pub refunded: Decimal,
    /// Refusal reason.
    pub refusal: Option<String>,
}

/// An order's current state, flattened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// Hub id.
    pub id: OrderId,
    /// Salesforce id and number; ERP order number once booked.
    pub refs: ExternalRefs,
    /// Customer.
    pub account: AccountId,
    /// Channel.
    pub channel: Channel,
    /// Currency.
    pub currency: Currency,
    /// Status.
    pub status: OrderStatus,
    /// Order value.
    pub total: Decimal,
    /// Σ invoices.
    pub invoiced: Decimal,
    /// Σ payments.
    pub paid: Decimal,
    /// Σ credit memos.
    pub credited: Decimal,
    /// Σ refunds.
    pub refunded: Decimal,
    /// Lines.
    pub lines: Vec<LineSummary>,
    /// Shipments.
    pub shipments: Vec<ShipmentSummary>,
    /// Invoices.
    pub invoices: Vec<InvoiceSummary>,
    /// Returns.
    pub returns: Vec<ReturnSummary>,
    /// Why the order was rejected or cancelled.
    pub reason: Option<String>,
    /// When each stage was reached.
    pub times: StageTimes,
}

impl OrderSummary {
    /// Fulfilment status as shown in Salesforce (e.g. `2 of 5 shipped`).
    pub fn fulfilment_status(&self) -> String {
        let ordered: u32 = self.lines.iter().map(|l| l.quantities.ordered).sum();
        let shipped: u32 = self.lines.iter().map(|l| l.quantities.shipped).sum();
        let delivered: u32 = self.lines.iter().map(|l| l.quantities.delivered).sum();
        let backordered: u32 = self.lines.iter().map(|l| l.quantities.backordered).sum();
        if delivered >= ordered && ordered > 0 {
            "Delivered".to_owned()
        } else if shipped > 0 {
            format!("{shipped} of {ordered} shipped, {delivered} delivered")
        } else if backordered > 0 {
            format!("{backordered} of {ordered} backordered")
        } else {
            "Not shipped".to_owned()
        }
    }

    /// Tracking numbers of every shipment, comma separated.
    pub fn tracking_numbers(&self) -> String {
        self.shipments
            .iter()
            .filter_map(|s| s.tracking.as_deref())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Order {
    /// The order's summary; `None` until the order is captured.
    pub fn summary(&self) -> Option<OrderSummary> {
        let draft = self.draft.as_ref()?;
        let mut refs = draft.refs.clone();
        if let Some(booking) = &self.booking {
            refs.erp_ref = Some(booking.erp_ref.clone());
        }
        let reason = self
            .cancellation
            .as_ref()
            .map(|c| c.reason.clone())
            .or_else(|| self.rejection.as_ref().map(|r| r.reasons.join("; ")));
        Some(OrderSummary {
            id: draft.id.clone(),
            refs,
            account: draft.account.clone(),
            channel: draft.channel,
            currency: draft.currency,
            status: self.status(),
            total: self.total(),
            invoiced: self.invoiced_total(),
            paid: self.paid_total(),
            credited: self.credited_total(),
            refunded: self.refunded_total(),
            lines: draft
                .lines
                .iter()
                .map(|l| LineSummary {
                    line: l.line,
                    sku: l.sku.clone(),
                    sf_id: l.sf_id.clone(),
                    unit_price: l.unit_price,
                    quantities: self.line_quantities(l.line),
                })
                .collect(),
            shipments: self
                .shipments
                .iter()
                .map(|(id, s)| ShipmentSummary {
                    id: id.clone(),
                    location: s.location.clone(),
                    milestone: s.milestone,
                    carrier: s.carrier.clone(),
                    tracking: s.tracking.clone(),
                    lines: s.lines.iter().map(|(l, q)| (*l, *q)).collect(),
                })
                .collect(),
            invoices: self
                .invoices
                .iter()
                .map(|(id, i)| InvoiceSummary {
                    id: id.clone(),
                    number: i.number.clone(),
                    total: i.total,
                })
                .collect(),
            returns: self
                .returns
                .iter()
                .filter_map(|(rma, r)| {
                    let request = r.request.as_ref()?;
                    Some(ReturnSummary {
                        rma: rma.clone(),
                        case: request.case.clone(),
                        status: r.status(),
                        erp_ref: r.authorisation.as_ref().map(|a| a.erp_ref.clone()),
                        lines: request.lines.iter().map(|(l, q)| (*l, *q)).collect(),
                        credit_memos: r.credit_memos.values().map(|c| c.number.clone()).collect(),
                        credited: r.credited(),
                        refunded: r.refunded(),
                        refusal: r.refusal.as_ref().map(|f| f.reason.clone()),
                    })
                })
                .collect(),
            reason,
            times: self.stage_times(),
        })
    }
}
