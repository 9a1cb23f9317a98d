//! The simulator's change feed as the port's [`ChangeBatch`].
//!
//! The cursor is the simulator's delivery position (`after`). Every event type maps to port
//! changes, with line numbers in the hub's numbering:
//!
//! | simulator event | port change |
//! |---|---|
//! | `order.booked` | `OrderBooked` |
//! | `order.backordered` | one `LineBackordered` per line |
//! | `order.allocated` | one `LineAllocated` per line, with the total at the location |
//! | `order.cancelled` | `OrderCancelled` |
//! | `shipment.picked/packed/shipped/delivered` | `Shipment` with the milestone |
//! | `inventory.changed` | `Inventory` |
//! | `invoice.issued` | `InvoiceIssued` |
//! | `payment.received` | `PaymentReceived` |
//! | `rma.authorised` / `rma.received` | `ReturnAuthorised` / `ReturnReceived` |
//! | `credit_memo.issued` / `refund.issued` | `CreditMemoIssued` / `RefundIssued` |
//! | `customer.credit_status_changed` | `CreditChanged` |
//! | `customer.upserted` | none (the account master is Salesforce's) |
//!
//! An event that expands to several changes gives them ids `<event id>#<line>`, so a
//! duplicate delivery repeats the same ids and the inbox drops it. An event type the adapter
//! does not know is skipped with a warning (a newer ERP must not stall the feed); a known
//! event of the wrong shape is an unknown failure naming the event and the field.

use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::ids::{LineNo, LocationId, OrderId, RmaId, Sku};
use crossdock_domain::order::Milestone;
use crossdock_ports::erp::{
    Allocation, ChangeBatch, ChangeKind, CreditMemo, CreditReport, ErpChange, ErpInvoice,
    ErpShipment, Refund, ReturnReceipt,
};
use crossdock_ports::{Failure, failure::Result};
use serde::de::DeserializeOwned;
use tracing::warn;

use super::adapter::{Adapter, credit_status, to_hub};
use super::client::{Client, LineMap, hub_line};
use super::wire::{self, FeedEvent};
use crate::rest::http::decode_value;

const OP: &str = "feed";

/// Most events asked for in one page (the simulator's own bound).
const MAX_PAGE: usize = 1000;

/// Reads one page after `cursor` and maps it.
pub(crate) async fn changes(
    adapter: &Adapter,
    client: &Client,
    cursor: Option<&str>,
    limit: usize,
) -> Result<ChangeBatch> {
    let after = match cursor {
        None => 0,
        Some(text) => text.trim().parse::<u64>().map_err(|_| {
            Failure::permanent(format!(
                "the change-feed cursor {text:?} is not one this adapter gave (a whole number)"
            ))
            .with_code("invalid_cursor")
        })?,
    };
    let limit = limit.clamp(1, MAX_PAGE);
    let page: wire::Feed = client
        .get(OP, &format!("/api/v1/events?after={after}&limit={limit}"))
        .await?;
    let mut changes = Vec::new();
    let mut position = after;
    for event in &page.events {
        let mapped = map_event(adapter, client, event).await?;
        // Keep to `limit` changes, cutting only between events (an event's changes travel
        // together); the first event always goes, so the cursor always moves.
        if !changes.is_empty() && changes.len() + mapped.len() > limit {
            break;
        }
        changes.extend(mapped);
        position = event.position;
    }
    if page.events.is_empty() {
        position = page.next_after.max(after);
    }
    Ok(ChangeBatch {
        changes,
        cursor: position.to_string(),
    })
}

fn data<T: DeserializeOwned>(event: &FeedEvent) -> Result<T> {
    decode_value(
        OP,
        &format!("event {} ({}) data", event.position, event.kind),
        &event.data,
    )
}

fn change(event: &FeedEvent, kind: ChangeKind) -> ErpChange {
    ErpChange {
        id: event.id.clone(),
        at: event.occurred_at,
        kind,
    }
}

fn per_line(event: &FeedEvent, line: u32, kind: ChangeKind) -> ErpChange {
    ErpChange {
        id: format!("{}#{line}", event.id),
        at: event.occurred_at,
        kind,
    }
}

fn lines(map: &LineMap, lines: &[wire::LineQty]) -> Vec<(LineNo, u32)> {
    lines
        .iter()
        .map(|l| (LineNo(to_hub(map, l.line)), l.quantity))
        .collect()
}

/// Maps one event to zero or more changes.
pub(crate) async fn map_event(
    adapter: &Adapter,
    client: &Client,
    event: &FeedEvent,
) -> Result<Vec<ErpChange>> {
    let changes = match event.kind.as_str() {
        "order.booked" => {
            let d: wire::BookedData = data(event)?;
            client.remember_lines(
                &d.order,
                d.lines
                    .iter()
                    .map(|l| (l.line, hub_line(l.line, l.line_ref.as_deref())))
                    .collect(),
            );
            vec![change(
                event,
                ChangeKind::OrderBooked {
                    reference: OrderId::new(d.external_ref),
                    erp_ref: d.order,
                },
            )]
        }
        "order.backordered" => {
            let d: wire::BackorderedData = data(event)?;
            let map = client.line_map(&d.order).await?;
            d.lines
                .iter()
                .map(|l| {
                    let line = to_hub(&map, l.line);
                    per_line(
                        event,
                        line,
                        ChangeKind::LineBackordered {
                            reference: OrderId::new(d.external_ref.clone()),
                            line: LineNo(line),
                            quantity: l.quantity,
                        },
                    )
                })
                .collect()
        }
        "order.allocated" => {
            let d: wire::AllocatedData = data(event)?;
            let map = client.line_map(&d.order).await?;
            // The port reports the total allocated at a location. A booking makes one
            // shipment per location, so its lines are that total; a backorder filled later
            // adds a shipment at a location that may already have one: add them up.
            let allocations: Vec<Allocation> = if d.backorder {
                let touched: Vec<u32> = d.lines.iter().map(|l| to_hub(&map, l.line)).collect();
                adapter
                    .allocations(&d.order, &map)
                    .await?
                    .into_iter()
                    .filter(|a| a.location.as_str() == d.location && touched.contains(&a.line.0))
                    .collect()
            } else {
                d.lines
                    .iter()
                    .map(|l| Allocation {
                        line: LineNo(to_hub(&map, l.line)),
                        location: LocationId::new(d.location.clone()),
                        quantity: l.quantity,
                    })
                    .collect()
            };
            allocations
                .into_iter()
                .map(|allocation| {
                    per_line(
                        event,
                        allocation.line.0,
                        ChangeKind::LineAllocated {
                            reference: OrderId::new(d.external_ref.clone()),
                            allocation,
                        },
                    )
                })
                .collect()
        }
        "order.cancelled" => {
            let d: wire::CancelledData = data(event)?;
            vec![change(
                event,
                ChangeKind::OrderCancelled {
                    reference: OrderId::new(d.external_ref),
                    reason: d.reason.unwrap_or_default(),
                },
            )]
        }
        "shipment.picked" | "shipment.packed" | "shipment.shipped" | "shipment.delivered" => {
            let milestone = match event.kind.as_str() {
                "shipment.picked" => Milestone::Picked,
                "shipment.packed" => Milestone::Packed,
                "shipment.shipped" => Milestone::Shipped,
                _ => Milestone::Delivered,
            };
            let d: wire::ShipmentData = data(event)?;
            let map = client.line_map(&d.order).await?;
            vec![change(
                event,
                ChangeKind::Shipment {
                    reference: OrderId::new(d.external_ref),
                    shipment: ErpShipment {
                        id: d.shipment,
                        location: Some(LocationId::new(d.location)),
                        lines: lines(&map, &d.lines),
                        milestone,
                        carrier: d.carrier,
                        tracking: d.tracking_number,
                        at: event.occurred_at,
                    },
                },
            )]
        }
        "inventory.changed" => {
            let d: wire::InventoryData = data(event)?;
            vec![change(
                event,
                ChangeKind::Inventory {
                    level: InventoryLevel {
                        sku: Sku::new(d.sku),
                        location: LocationId::new(d.location),
                        on_hand: d.on_hand,
                        reserved: d.reserved,
                        available: d.available,
                        as_of: d.as_of,
                    },
                },
            )]
        }
        "invoice.issued" => {
            let d: wire::InvoiceData = data(event)?;
            let map = client.line_map(&d.order).await?;
            vec![change(
                event,
                ChangeKind::InvoiceIssued {
                    reference: OrderId::new(d.external_ref),
                    invoice: ErpInvoice {
                        id: d.invoice.clone(),
                        number: d.invoice,
                        lines: lines(&map, &d.lines),
                        net: d.untaxed_amount,
                        tax: d.tax_amount,
                        total: d.total_amount,
                        paid: rust_decimal::Decimal::ZERO,
                        issued_at: event.occurred_at,
                    },
                },
            )]
        }
        "payment.received" => {
            let d: wire::PaymentData = data(event)?;
            vec![change(
                event,
                ChangeKind::PaymentReceived {
                    reference: OrderId::new(d.external_ref),
                    payment: d.payment,
                    invoice: d.invoice,
                    amount: d.amount,
                },
            )]
        }
        "rma.authorised" => {
            let d: wire::RmaData = data(event)?;
            client.remember_rma(&d.rma, &d.order);
            vec![change(
                event,
                ChangeKind::ReturnAuthorised {
                    rma: RmaId::new(d.external_ref),
                    erp_ref: d.rma,
                },
            )]
        }
        "rma.received" => {
            let d: wire::RmaData = data(event)?;
            client.remember_rma(&d.rma, &d.order);
            let map = client.line_map(&d.order).await?;
            let received = d.received.as_deref().ok_or_else(|| {
                Failure::unknown(format!(
                    "{OP}: event {} ({}) data field `received`: missing",
                    event.position, event.kind
                ))
                .with_code("malformed_answer")
            })?;
            vec![change(
                event,
                ChangeKind::ReturnReceived {
                    rma: RmaId::new(d.external_ref.clone()),
                    receipt: ReturnReceipt {
                        id: wire::receipt_id(&d.rma, &d.lines),
                        lines: lines(&map, received),
                    },
                },
            )]
        }
        "credit_memo.issued" => {
            let d: wire::CreditMemoData = data(event)?;
            let rma = hub_rma(event, d.rma_external_ref, &d.rma)?;
            vec![change(
                event,
                ChangeKind::CreditMemoIssued {
                    rma,
                    credit_memo: CreditMemo {
                        id: d.credit_memo.clone(),
                        number: d.credit_memo,
                        amount: d.total_amount,
                    },
                },
            )]
        }
        "refund.issued" => {
            let d: wire::RefundData = data(event)?;
            let rma = hub_rma(event, d.rma_external_ref, &d.rma)?;
            vec![change(
                event,
                ChangeKind::RefundIssued {
                    rma,
                    credit_memo: d.credit_memo,
                    refund: Refund {
                        id: d.refund,
                        amount: d.amount,
                    },
                },
            )]
        }
        "customer.credit_status_changed" => {
            let d: wire::CreditStatusData = data(event)?;
            let field = format!(
                "event {} ({}) data field `status`",
                event.position, event.kind
            );
            vec![change(
                event,
                ChangeKind::CreditChanged {
                    report: CreditReport {
                        account: d.external_ref.into(),
                        status: credit_status(OP, &field, &d.status)?,
                        limit: Some(d.credit_limit),
                        // The event carries the exposure, not the open balance.
                        balance: None,
                    },
                },
            )]
        }
        "customer.upserted" => Vec::new(),
        other => {
            warn!(
                event = %event.id,
                position = event.position,
                kind = other,
                "Skipped an ERP event of a type the simulator adapter does not know"
            );
            Vec::new()
        }
    };
    Ok(changes)
}

fn hub_rma(event: &FeedEvent, external_ref: Option<String>, rma: &str) -> Result<RmaId> {
    external_ref.map(RmaId::new).ok_or_else(|| {
        Failure::unknown(format!(
            "{OP}: event {} ({}) data field `rma_external_ref`: missing for RMA {rma}",
            event.position, event.kind
        ))
        .with_code("malformed_answer")
    })
}
