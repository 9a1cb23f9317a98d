//! Reconciliation: whether Salesforce and the ERP agree with the hub on an order. The
//! comparison is pure; `crossdock reconcile` and the demo's summary gather the records it
//! compares.

use std::collections::BTreeMap;

use crossdock_domain::order::OrderStatus;
use crossdock_domain::summary::OrderSummary;
use crossdock_ports::erp::ErpOrder;

/// What Salesforce shows of one order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SalesforceView {
    /// The hub status field (e.g. `Hub_Status__c`).
    pub status: Option<String>,
    /// The ERP order number field.
    pub erp_number: Option<String>,
    /// Units shipped per SKU, summed over the order's items.
    pub shipped: BTreeMap<String, f64>,
}

/// Which system a disagreement is with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// Salesforce does not show what the hub knows (a write-back can heal it).
    Salesforce,
    /// The ERP and the hub differ (a missed or unapplied ERP change).
    Erp,
}

/// One disagreement on one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The hub's order id.
    pub order_id: String,
    /// With which system.
    pub side: Side,
    /// What differs, in words.
    pub what: String,
}

/// The ERP's answer for a booked order: its record, or why it could not be read.
pub type ErpAnswer<'a> = Result<&'a ErpOrder, String>;

/// Compares the hub's view of an order (its status name and summary) with Salesforce's and the
/// ERP's. `salesforce` is `None` when the order is not in Salesforce; `erp` is `None` when the
/// order was never booked.
pub fn compare(
    status: &str,
    summary: &OrderSummary,
    salesforce: Option<&SalesforceView>,
    erp: Option<ErpAnswer<'_>>,
) -> Vec<Disagreement> {
    let order_id = summary.id.as_str().to_owned();
    let mut out = Vec::new();
    let mut say = |side, what: String| {
        out.push(Disagreement {
            order_id: order_id.clone(),
            side,
            what,
        })
    };
    let erp_ref = summary.refs.erp_ref.as_deref();
    if let Some(sf) = salesforce {
        let label = OrderStatus::parse(status).map_or("", OrderStatus::as_str);
        if sf.status.as_deref() != Some(label) {
            say(
                Side::Salesforce,
                format!("Salesforce shows status {:?}, the hub {label:?}", sf.status),
            );
        }
        if sf.erp_number.as_deref() != erp_ref {
            say(
                Side::Salesforce,
                format!(
                    "Salesforce has ERP number {:?}, the hub {erp_ref:?}",
                    sf.erp_number
                ),
            );
        }
        let mut hub_shipped: BTreeMap<String, f64> = BTreeMap::new();
        for line in &summary.lines {
            *hub_shipped.entry(line.sku.to_string()).or_default() +=
                f64::from(line.quantities.shipped);
        }
        for (sku, hub) in &hub_shipped {
            let shown = sf.shipped.get(sku).copied().unwrap_or(0.0);
            if (shown - hub).abs() > f64::EPSILON {
                say(
                    Side::Salesforce,
                    format!("{sku}: Salesforce shows {shown} shipped, the hub {hub}"),
                );
            }
        }
    }
    match erp {
        Some(Ok(erp)) => {
            if erp.cancelled != (status == "Cancelled") {
                say(
                    Side::Erp,
                    format!(
                        "the ERP has cancelled = {}, the hub {status}",
                        erp.cancelled
                    ),
                );
            }
            for line in &erp.lines {
                let hub = summary
                    .lines
                    .iter()
                    .find(|l| l.line == line.line)
                    .map_or(0, |l| l.quantities.shipped);
                if hub != line.shipped {
                    say(
                        Side::Erp,
                        format!(
                            "line {}: the ERP shipped {}, the hub knows of {hub}",
                            line.line.0, line.shipped
                        ),
                    );
                }
            }
        }
        Some(Err(error)) => say(
            Side::Erp,
            format!("the ERP cannot show {}: {error}", erp_ref.unwrap_or("?")),
        ),
        None => {
            if !matches!(status, "Rejected" | "Cancelled" | "Captured" | "Validated") {
                say(Side::Erp, format!("{status} but never booked"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, Sku};
    use crossdock_domain::money::Currency;
    use crossdock_domain::order::{Channel, LineQuantities, StageTimes};
    use crossdock_domain::summary::LineSummary;
    use crossdock_ports::erp::ErpLine;
    use rust_decimal::Decimal;

    fn summary(erp_ref: Option<&str>, shipped: u32) -> OrderSummary {
        OrderSummary {
            id: OrderId::new("SF-1"),
            refs: ExternalRefs {
                erp_ref: erp_ref.map(str::to_owned),
                ..ExternalRefs::default()
            },
            account: AccountId::new("C-1"),
            channel: Channel::B2b,
            currency: Currency::USD,
            status: OrderStatus::Shipped,
            total: Decimal::TEN,
            invoiced: Decimal::ZERO,
            paid: Decimal::ZERO,
            credited: Decimal::ZERO,
            refunded: Decimal::ZERO,
            lines: vec![LineSummary {
                line: LineNo(1),
                sku: Sku::new("SKU-1"),
                sf_id: None,
                unit_price: Decimal::from(5),
                quantities: LineQuantities {
                    ordered: 2,
                    shipped,
                    ..LineQuantities::default()
                },
            }],
            shipments: Vec::new(),
            invoices: Vec::new(),
            returns: Vec::new(),
            reason: None,
            times: StageTimes::default(),
        }
    }

    fn erp(shipped: u32, cancelled: bool) -> ErpOrder {
        ErpOrder {
            erp_ref: "SO-1".to_owned(),
            reference: OrderId::new("SF-1"),
            cancelled,
            lines: vec![ErpLine {
                line: LineNo(1),
                sku: Sku::new("SKU-1"),
                ordered: 2,
                allocated: 2,
                backordered: 0,
                shipped,
                delivered: 0,
            }],
            shipments: Vec::new(),
            invoices: Vec::new(),
        }
    }

    fn view(status: &str, erp_number: Option<&str>, shipped: f64) -> SalesforceView {
        SalesforceView {
            status: Some(status.to_owned()),
            erp_number: erp_number.map(str::to_owned),
            shipped: BTreeMap::from([("SKU-1".to_owned(), shipped)]),
        }
    }

    #[test]
    fn systems_that_agree_have_no_disagreement() {
        let summary = summary(Some("SO-1"), 2);
        let found = compare(
            "Shipped",
            &summary,
            Some(&view("Shipped", Some("SO-1"), 2.0)),
            Some(Ok(&erp(2, false))),
        );
        assert_eq!(found, Vec::new());
    }

    #[test]
    fn stale_salesforce_fields_are_salesforce_disagreements() {
        let summary = summary(Some("SO-1"), 2);
        let found = compare(
            "Shipped",
            &summary,
            Some(&view("Awaiting Booking", None, 0.0)),
            Some(Ok(&erp(2, false))),
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().all(|d| d.side == Side::Salesforce));
        assert!(found[0].what.contains("Awaiting Booking"));
    }

    #[test]
    fn erp_shipments_the_hub_missed_and_cancellations_are_erp_disagreements() {
        let summary = summary(Some("SO-1"), 1);
        let found = compare("Shipped", &summary, None, Some(Ok(&erp(2, true))));
        let what: Vec<&str> = found.iter().map(|d| d.what.as_str()).collect();
        assert_eq!(found.len(), 2, "{what:?}");
        assert!(found.iter().all(|d| d.side == Side::Erp));
        assert!(what[0].contains("cancelled = true"));
        assert!(what[1].contains("the ERP shipped 2, the hub knows of 1"));
    }

    #[test]
    fn an_order_past_booking_without_an_erp_number_is_reported() {
        let summary = summary(None, 0);
        assert_eq!(compare("Shipped", &summary, None, None).len(), 1);
        assert_eq!(compare("Rejected", &summary, None, None), Vec::new());
        let unreadable = compare("Shipped", &summary, None, Some(Err("timeout".to_owned())));
        assert!(unreadable[0].what.contains("timeout"));
    }
}
