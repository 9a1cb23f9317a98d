//! The ERP change-feed subscriber: polls the ERP for changes after its durable cursor,
//! turns each into a canonical inbound message, and stores a page of them in the inbox
//! together with the cursor's new position, in one transaction (feed order kept). A crash
//! before the commit reads the page again; the inbox dedupes what was stored otherwise.

use std::sync::Arc;
use std::time::Duration;

use crossdock_domain::ids::{
    InvoiceId, OrderId, PaymentId, ReceiptId, RefundId, ShipmentId, System,
};
use crossdock_domain::order::Lane as LaneName;
use crossdock_domain::order::{Command, CreditMemoFacts, InvoiceFacts, PaymentFacts, ReceiptFacts};
use crossdock_ports::erp::{ChangeKind, ErpChange};
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_store::CursorMove;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::engine::Engine;

/// Cursor name of the ERP change feed.
pub const CURSOR: &str = "erp-changes";

/// Polls until `shutdown`.
pub async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    let lane = engine.lane(LaneName::Erp).clone();
    let mut backoff = Duration::from_millis(200);
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let wait = match poll_once(&engine).await {
            Ok(0) => {
                backoff = Duration::from_millis(200);
                engine.config.erp_poll
            }
            Ok(count) => {
                backoff = Duration::from_millis(200);
                debug!(count, "ERP changes accepted");
                Duration::ZERO
            }
            Err(error) => {
                // Expected while the ERP is down; the lane's breaker and the health view show it.
                debug!(%error, "ERP change feed unavailable");
                backoff = (backoff * 2).min(Duration::from_secs(10));
                backoff
            }
        };
        let wait = lane
            .blocked_until()
            .map_or(wait, |until| wait.max(until - tokio::time::Instant::now()));
        if !wait.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Reads one page of changes and stores them. Returns how many changes the page had.
///
/// # Errors
/// The ERP or the inbox failed; the cursor did not move.
pub async fn poll_once(engine: &Engine) -> Result<usize, String> {
    let store = engine.store();
    let cursor = store.cursor(CURSOR).await.map_err(|e| e.to_string())?;
    let lane = engine.lane(LaneName::Erp);
    let batch = match engine.erp().changes(cursor.as_deref(), 500).await {
        Ok(batch) => {
            lane.record(Ok(()));
            batch
        }
        Err(failure) => {
            lane.record(Err(failure.class));
            return Err(failure.to_string());
        }
    };
    let count = batch.changes.len();
    let mut messages = Vec::with_capacity(count);
    for change in batch.changes {
        messages.push(to_message(engine, change).await?);
    }
    let now = engine.clock().now();
    if count > 0 {
        // The page and the position after it, in one commit: the cursor never runs ahead
        // of what the inbox holds, and a page costs one durable round trip.
        let cursor = CursorMove {
            name: CURSOR.to_owned(),
            position: batch.cursor,
            at: now,
        };
        engine
            .accept_page(messages, Some(cursor))
            .await
            .map_err(|e| e.to_string())?;
    } else if cursor.as_deref() != Some(batch.cursor.as_str()) {
        store
            .save_cursor(CURSOR, &batch.cursor, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(count)
}

/// Maps an ERP change to a canonical inbound message.
///
/// # Errors
/// The store could not be asked which order a return belongs to.
pub async fn to_message(engine: &Engine, change: ErpChange) -> Result<InboundMessage, String> {
    let raw = serde_json::to_string(&change).unwrap_or_default();
    let at = change.at;
    let body = match change.kind {
        ChangeKind::OrderBooked { reference, erp_ref } => {
            order(reference, Command::RecordBooking { erp_ref, at })
        }
        ChangeKind::LineAllocated {
            reference,
            allocation,
        } => order(
            reference,
            Command::RecordAllocation {
                line: allocation.line,
                location: allocation.location,
                quantity: allocation.quantity,
                at,
            },
        ),
        ChangeKind::LineBackordered {
            reference,
            line,
            quantity,
        } => order(reference, Command::RecordBackorder { line, quantity, at }),
        ChangeKind::OrderCancelled { reference, reason } => order(
            reference,
            Command::CancelOrder {
                by: System::Erp,
                reason,
                at,
            },
        ),
        ChangeKind::Shipment {
            reference,
            shipment,
        } => order(
            reference,
            Command::RecordShipment {
                shipment: ShipmentId::new(shipment.id),
                location: shipment.location,
                lines: shipment.lines.into_iter().collect(),
                milestone: shipment.milestone,
                carrier: shipment.carrier,
                tracking: shipment.tracking,
                at: shipment.at,
            },
        ),
        ChangeKind::InvoiceIssued { reference, invoice } => order(
            reference,
            Command::RecordInvoice {
                invoice: InvoiceId::new(invoice.id),
                facts: InvoiceFacts {
                    number: invoice.number,
                    lines: invoice.lines.into_iter().collect(),
                    net: invoice.net,
                    tax: invoice.tax,
                    total: invoice.total,
                    issued_at: invoice.issued_at,
                },
            },
        ),
        ChangeKind::PaymentReceived {
            reference,
            payment,
            invoice,
            amount,
        } => order(
            reference,
            Command::RecordPayment {
                payment: PaymentId::new(payment),
                facts: PaymentFacts {
                    invoice: invoice.map(InvoiceId::new),
                    amount,
                    received_at: at,
                },
            },
        ),
        ChangeKind::Inventory { level } => Inbound::Inventory { level },
        ChangeKind::CreditChanged { report } => Inbound::Credit { report },
        ChangeKind::ReturnAuthorised { rma, erp_ref } => {
            by_return(
                engine,
                rma.as_str(),
                Command::RecordReturnAuthorisation {
                    rma: rma.clone(),
                    erp_ref,
                    at,
                },
            )
            .await?
        }
        ChangeKind::ReturnReceived { rma, receipt } => {
            let command = Command::RecordReturnReceipt {
                rma: rma.clone(),
                receipt: ReceiptId::new(receipt.id),
                facts: ReceiptFacts {
                    lines: receipt.lines.into_iter().collect(),
                    at,
                },
            };
            by_return(engine, rma.as_str(), command).await?
        }
        ChangeKind::CreditMemoIssued { rma, credit_memo } => {
            let command = Command::RecordCreditMemo {
                rma: rma.clone(),
                credit_memo: credit_memo.id.as_str().into(),
                facts: CreditMemoFacts {
                    number: credit_memo.number,
                    amount: credit_memo.amount,
                    at,
                },
            };
            by_return(engine, rma.as_str(), command).await?
        }
        ChangeKind::RefundIssued {
            rma,
            credit_memo,
            refund,
        } => {
            let command = Command::RecordRefund {
                rma: rma.clone(),
                refund: RefundId::new(refund.id),
                credit_memo: credit_memo.as_str().into(),
                amount: refund.amount,
                at,
            };
            by_return(engine, rma.as_str(), command).await?
        }
    };
    Ok(InboundMessage {
        source: System::Erp,
        message_id: change.id,
        received_at: engine.clock().now(),
        raw,
        body,
    })
}

fn order(reference: OrderId, command: Command) -> Inbound {
    Inbound::Order {
        order: reference,
        command,
    }
}

async fn by_return(engine: &Engine, rma: &str, command: Command) -> Result<Inbound, String> {
    match engine.store().resolve(rma).await {
        Ok(Some(order)) => Ok(Inbound::Order {
            order: OrderId::new(order),
            command,
        }),
        Ok(None) => Ok(Inbound::Unreadable {
            reason: format!("the ERP reported on return {rma}, which the hub does not know"),
        }),
        Err(error) => Err(format!("could not look up return {rma}: {error}")),
    }
}
