//! The order summary: a flat, serializable view of an order's current state. It is the read
//! model the store projects, the payload of state-based Salesforce write-backs, and what the
//! API and dashboard show.

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
    /// The summary as compact JSON: the text the store keeps as the order's read model.
    ///
    /// # Errors
    /// A time that RFC 3339 cannot write (a year outside 0–9999).
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

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
        let reason = self.status_reason();
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

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use time::OffsetDateTime;

    use super::{InvoiceSummary, LineSummary, OrderSummary, ReturnSummary, ShipmentSummary};
    use crate::ids::{
        AccountId, ExternalRefs, InvoiceId, LineNo, LocationId, OrderId, RmaId, ShipmentId, Sku,
    };
    use crate::order::{Channel, LineQuantities, Milestone, OrderStatus, ReturnStatus, StageTimes};

    fn amount(text: &str) -> Decimal {
        text.parse().expect("an amount")
    }

    fn at(unix: i64, nanos: u32) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(unix)
            .and_then(|t| t.replace_nanosecond(nanos))
            .ok()
    }

    /// A summary using every kind of field: absent and present ids, amounts with and
    /// without a scale, times with and without fractions, text JSON escapes.
    fn summary() -> OrderSummary {
        OrderSummary {
            id: OrderId::new("ORD-1"),
            refs: ExternalRefs {
                sf_id: Some("801000000000001AAA".into()),
                sf_number: None,
                erp_ref: Some("SO-7".into()),
            },
            account: AccountId::new("ACC-9"),
            channel: Channel::Marketplace,
            currency: "EUR".parse().expect("a currency"),
            status: OrderStatus::Booked,
            total: amount("104.30"),
            invoiced: amount("0"),
            paid: amount("-0.01"),
            credited: amount("7"),
            refunded: amount("79228162514264337593543950335"),
            lines: vec![LineSummary {
                line: LineNo(1),
                sku: Sku::new("SKU-1"),
                sf_id: None,
                unit_price: amount("52.15"),
                quantities: LineQuantities {
                    ordered: 2,
                    allocated: 2,
                    backordered: 0,
                    picked: 1,
                    shipped: 1,
                    delivered: 0,
                    invoiced: 0,
                    returned: 0,
                },
            }],
            shipments: vec![ShipmentSummary {
                id: ShipmentId::new("SH-1"),
                location: Some(LocationId::new("WH1")),
                milestone: Some(Milestone::Picked),
                carrier: None,
                tracking: Some("1Z\\9".into()),
                lines: vec![(LineNo(1), 1)],
            }],
            invoices: vec![InvoiceSummary {
                id: InvoiceId::new("INV-1"),
                number: "N-1".into(),
                total: amount("52.15"),
            }],
            returns: vec![ReturnSummary {
                rma: RmaId::new("RMA-1"),
                case: ExternalRefs::default(),
                status: ReturnStatus::Requested,
                erp_ref: None,
                lines: vec![(LineNo(1), 1)],
                credit_memos: vec!["CM-1".into()],
                credited: amount("0.00"),
                refunded: amount("1.500"),
                refusal: Some("said \"no\"\n\u{1}".into()),
            }],
            reason: None,
            times: StageTimes {
                captured: at(1_790_000_000, 0),
                validated: at(1_790_000_001, 560_228_681),
                booked: at(1_790_000_002, 500_000_000),
                ..StageTimes::default()
            },
        }
    }

    #[test]
    fn the_summary_json_has_its_fixed_shape() {
        let expected = concat!(
            r#"{"id":"ORD-1","refs":{"sf_id":"801000000000001AAA","erp_ref":"SO-7"},"#,
            r#""account":"ACC-9","channel":"marketplace","currency":"EUR","status":"Booked","#,
            r#""total":"104.30","invoiced":"0","paid":"-0.01","credited":"7","#,
            r#""refunded":"79228162514264337593543950335","#,
            r#""lines":[{"line":1,"sku":"SKU-1","sf_id":null,"unit_price":"52.15","#,
            r#""quantities":{"ordered":2,"allocated":2,"backordered":0,"picked":1,"#,
            r#""shipped":1,"delivered":0,"invoiced":0,"returned":0}}],"#,
            r#""shipments":[{"id":"SH-1","location":"WH1","milestone":"picked","#,
            r#""carrier":null,"tracking":"1Z\\9","lines":[[1,1]]}],"#,
            r#""invoices":[{"id":"INV-1","number":"N-1","total":"52.15"}],"#,
            r#""returns":[{"rma":"RMA-1","case":{},"status":"Requested","erp_ref":null,"#,
            r#""lines":[[1,1]],"credit_memos":["CM-1"],"credited":"0.00","refunded":"1.500","#,
            r#""refusal":"said \"no\"\n\u0001"}],"reason":null,"#,
            r#""times":{"captured":"2026-09-21T14:13:20Z","#,
            r#""validated":"2026-09-21T14:13:21.560228681Z","#,
            r#""booked":"2026-09-21T14:13:22.5Z","shipped":null,"delivered":null,"#,
            r#""invoiced":null,"paid":null,"closed":null,"cancelled":null}}"#,
        );
        let summary = summary();
        assert_eq!(summary.to_json().expect("rendered"), expected);
        // And it reads back as the same summary.
        let read: OrderSummary = serde_json::from_str(expected).expect("parsed");
        assert_eq!(read, summary);
    }
}
