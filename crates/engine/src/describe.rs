//! One-line, human-readable descriptions of events for timelines.

use crossdock_domain::order::Event;

/// Describes an event for people reading an order's timeline.
pub fn describe(event: &Event) -> String {
    match event {
        Event::OrderCaptured(d) => {
            let total: rust_decimal::Decimal = d
                .lines
                .iter()
                .map(|l| rust_decimal::Decimal::from(l.quantity) * l.unit_price)
                .sum();
            format!(
                "Order captured from {}: {} line(s), {} {} for account {}",
                d.source,
                d.lines.len(),
                total.round_dp(2),
                d.currency,
                d.account
            )
        }
        Event::OrderValidated(v) => {
            if v.backorder_expected {
                "Validated (price, credit, fulfilment); some lines will be backordered".to_owned()
            } else {
                "Validated: price, stock, credit and fulfilment checks passed".to_owned()
            }
        }
        Event::OrderRejected(r) => format!("Rejected by {}: {}", r.by, r.reasons.join("; ")),
        Event::OrderBooked(b) => format!("Booked in the ERP as {}", b.erp_ref),
        Event::LineAllocated {
            line,
            location,
            quantity,
            ..
        } => format!("Line {line}: {quantity} allocated at {location}"),
        Event::LineBackordered { line, quantity, .. } => {
            format!("Line {line}: {quantity} backordered")
        }
        Event::ShipmentProgressed {
            shipment,
            milestone,
            carrier,
            tracking,
            lines,
            ..
        } => {
            let units: u32 = lines.values().sum();
            let mut text = format!("Shipment {shipment} {} ({units} units)", milestone.as_str());
            if let (Some(carrier), Some(tracking)) = (carrier, tracking) {
                text.push_str(&format!(", {carrier} {tracking}"));
            }
            text
        }
        Event::InvoiceIssued { facts, .. } => {
            format!(
                "Invoice {} issued: {}",
                facts.number,
                facts.total.round_dp(2)
            )
        }
        Event::PaymentReceived { facts, .. } => {
            format!("Payment received: {}", facts.amount.round_dp(2))
        }
        Event::OrderCancelled(c) => format!("Cancelled in {}: {}", c.by, c.reason),
        Event::OrderClosed { .. } => "Closed: delivered, invoiced and paid".to_owned(),
        Event::ReturnRequested { rma, request } => {
            let units: u32 = request.lines.values().sum();
            format!(
                "Return {rma} requested: {units} unit(s), {}",
                request.reason
            )
        }
        Event::ReturnAuthorised { rma, authorisation } => {
            format!("Return {rma} authorised as {}", authorisation.erp_ref)
        }
        Event::ReturnRefused { rma, refusal } => {
            format!("Return {rma} refused: {}", refusal.reason)
        }
        Event::ReturnReceived { rma, facts, .. } => {
            let units: u32 = facts.lines.values().sum();
            format!("Return {rma}: {units} unit(s) received")
        }
        Event::CreditMemoIssued { rma, facts, .. } => format!(
            "Return {rma}: credit memo {} for {}",
            facts.number,
            facts.amount.round_dp(2)
        ),
        Event::RefundIssued { rma, facts, .. } => {
            format!("Return {rma}: refunded {}", facts.amount.round_dp(2))
        }
        Event::ReturnClosed { rma, .. } => format!("Return {rma} closed"),
    }
}
