//! ERP lane: validation lookups, booking, cancellation, returns, credit memos, refunds and
//! customer sync. Each call carries the task's idempotency key; its answer becomes commands.

use std::collections::BTreeMap;

use crossdock_domain::account::{Account, CustomerTier};
use crossdock_domain::ids::{CreditMemoId, RefundId, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Command, CreditMemoFacts, Effect, Order, ValidationFacts};
use crossdock_ports::erp::{
    BookingLine, BookingRequest, FulfilmentRequest, PriceRequest, ReturnRequest,
};
use crossdock_ports::{Failure, FailureClass};
use crossdock_store::{Decision, Lease, TimelineEntry};
use serde_json::json;

use super::{ApplyError, Outcome, apply_order, correlation, effect_of};
use crate::apply::Cause;
use crate::engine::Engine;

pub(super) async fn run(engine: &Engine, lease: &Lease) -> Outcome {
    let (order, effect) = match effect_of(lease) {
        Ok(parts) => parts,
        Err(failure) => return Outcome::Failed(failure),
    };
    let loaded = match engine.load_order(lease, &order).await {
        Ok(loaded) => loaded,
        Err(e) => return Outcome::Failed(Failure::transient(e.to_string())),
    };
    let state = &loaded.state;
    let now = engine.clock.now();
    if !effect.is_still_needed(state) {
        return Outcome::Done(Decision {
            timeline: vec![note(
                &order.to_string(),
                now,
                &format!("{} skipped: no longer needed", effect.step()),
                lease,
            )],
            ..Decision::default()
        });
    }
    let key = lease.task.idempotency_key.as_str();
    let erp = &engine.erp;
    let result: Result<Vec<Command>, Failure> = match &effect {
        Effect::ValidateOrder => validate(engine, state).await,
        Effect::BookOrder => book(engine, state, key).await,
        Effect::CancelInErp => {
            let erp_ref = state
                .booking
                .as_ref()
                .map(|b| b.erp_ref.clone())
                .unwrap_or_default();
            let reason = state
                .cancellation
                .as_ref()
                .map(|c| c.reason.clone())
                .unwrap_or_default();
            match erp.cancel_order(&erp_ref, &reason, key).await {
                Ok(outcome) => {
                    return Outcome::Done(Decision {
                        timeline: vec![note(
                            &order.to_string(),
                            now,
                            &format!("Cancelled in the ERP ({outcome:?})"),
                            lease,
                        )],
                        ..Decision::default()
                    });
                }
                // The ERP refuses because goods already left: the shipment it reports settles
                // the request (a shipped order is not cancelled and carries on to close), so
                // the refusal is recorded, not dead-lettered.
                Err(failure) if refused_after_shipment(&failure) => {
                    return Outcome::Done(Decision {
                        timeline: vec![TimelineEntry {
                            kind: "refusal".to_owned(),
                            outcome: Some("refused".to_owned()),
                            ..note(
                                &order.to_string(),
                                now,
                                &format!(
                                    "The ERP refused the cancellation, the order had already \
                                     shipped: {}",
                                    failure.message
                                ),
                                lease,
                            )
                        }],
                        ..Decision::default()
                    });
                }
                Err(failure) => Err(failure),
            }
        }
        Effect::AuthoriseReturn { rma } => {
            let facts = &state.returns[rma];
            let Some(request) = facts.request.as_ref() else {
                return Outcome::Failed(Failure::permanent(format!("return {rma} has no request")));
            };
            let Some(draft) = state.draft.as_ref() else {
                return Outcome::Failed(Failure::permanent("order not captured"));
            };
            let lines = request
                .lines
                .iter()
                .filter_map(|(line, qty)| {
                    draft
                        .lines
                        .iter()
                        .find(|l| l.line == *line)
                        .map(|l| (*line, l.sku.clone(), *qty))
                })
                .collect();
            let ask = ReturnRequest {
                rma: rma.clone(),
                order: order.clone(),
                order_erp_ref: state.booking.as_ref().map(|b| b.erp_ref.clone()),
                account: draft.account.clone(),
                lines,
                reason: request.reason.clone(),
            };
            match erp.create_return(&ask, key).await {
                Ok(authorisation) => Ok(vec![Command::RecordReturnAuthorisation {
                    rma: rma.clone(),
                    erp_ref: authorisation.erp_ref,
                    at: now,
                }]),
                Err(f) if f.class == FailureClass::Permanent => Ok(vec![Command::RefuseReturn {
                    rma: rma.clone(),
                    reason: f.message,
                    at: now,
                }]),
                Err(f) => Err(f),
            }
        }
        Effect::IssueCreditMemo { rma } => {
            let erp_rma = state.returns[rma]
                .authorisation
                .as_ref()
                .map(|a| a.erp_ref.clone())
                .unwrap_or_default();
            erp.issue_credit_memo(&erp_rma, key).await.map(|memo| {
                vec![Command::RecordCreditMemo {
                    rma: rma.clone(),
                    credit_memo: CreditMemoId::new(memo.id),
                    facts: CreditMemoFacts {
                        number: memo.number,
                        amount: memo.amount,
                        at: now,
                    },
                }]
            })
        }
        Effect::IssueRefund { rma, credit_memo } => erp
            .issue_refund(credit_memo.as_str(), key)
            .await
            .map(|refund| {
                vec![Command::RecordRefund {
                    rma: rma.clone(),
                    refund: RefundId::new(refund.id),
                    credit_memo: credit_memo.clone(),
                    amount: refund.amount,
                    at: now,
                }]
            }),
        other => Err(Failure::permanent(format!(
            "{} is not an ERP step",
            other.step()
        ))),
    };
    let commands = match result {
        Ok(commands) => commands,
        Err(failure) => return Outcome::Failed(failure),
    };
    let cause = Cause {
        system: System::Erp,
        causation: lease.task.idempotency_key.clone(),
        correlation: correlation(lease),
    };
    match apply_order(
        engine,
        lease,
        &order,
        &commands,
        &cause,
        Decision::default(),
    )
    .await
    {
        Ok(decision) => Outcome::Done(decision),
        Err(ApplyError::Unavailable(failure)) => Outcome::Failed(failure),
        Err(ApplyError::Refused(error)) => Outcome::Failed(
            Failure::unknown(format!(
                "the ERP's answer to {} cannot be applied: {error}",
                effect.step()
            ))
            .with_code(error.code()),
        ),
    }
}

/// Fetches prices, stock, credit and fulfilment options, and returns the validation command.
/// A permanent refusal (unknown customer or item) rejects the order with the ERP's message.
async fn validate(engine: &Engine, state: &Order) -> Result<Vec<Command>, Failure> {
    let draft = state
        .draft
        .as_ref()
        .ok_or_else(|| Failure::permanent("order not captured"))?;
    let now = engine.clock.now();
    let erp = &engine.erp;
    let items: Vec<PriceRequest> = draft
        .lines
        .iter()
        .map(|l| PriceRequest {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    let mut skus: Vec<_> = draft.lines.iter().map(|l| l.sku.clone()).collect();
    skus.sort();
    skus.dedup();
    let fulfilment = FulfilmentRequest {
        account: draft.account.clone(),
        region: draft.region.clone(),
        lines: draft
            .lines
            .iter()
            .map(|l| (l.sku.clone(), l.quantity))
            .collect(),
    };
    let outcome: Result<ValidationFacts, Failure> = async {
        // The four lookups are independent: asked at once, validation costs one ERP round trip.
        let (quotes, levels, credit, options) = tokio::try_join!(
            erp.prices(&draft.account, &items, now.date()),
            erp.availability(&skus, None),
            erp.credit_check(&draft.account, state.total(), draft.currency),
            erp.fulfilment_options(&fulfilment),
        )?;
        let mut prices = BTreeMap::new();
        for line in &draft.lines {
            if let Some(quote) = quotes.iter().find(|q| q.sku == line.sku) {
                prices.insert(line.line, quote.unit_price);
            }
        }
        let mut available = BTreeMap::new();
        for level in levels {
            *available.entry(level.sku).or_insert(0) += level.available.max(0);
        }
        Ok(ValidationFacts {
            prices,
            available,
            credit,
            options,
        })
    }
    .await;
    match outcome {
        Ok(facts) => Ok(vec![Command::ValidateOrder {
            facts,
            policy: engine.config.validation,
            at: now,
        }]),
        Err(f) if f.class == FailureClass::Permanent => Ok(vec![Command::RefuseBooking {
            reason: f.message,
            at: now,
        }]),
        Err(f) => Err(f),
    }
}

/// Books the order; the ERP's allocations and backorders are recorded with the booking.
async fn book(engine: &Engine, state: &Order, key: &str) -> Result<Vec<Command>, Failure> {
    let draft = state
        .draft
        .as_ref()
        .ok_or_else(|| Failure::permanent("order not captured"))?;
    let now = engine.clock.now();
    let request = BookingRequest {
        reference: draft.id.clone(),
        sf_number: draft.refs.sf_number.clone(),
        account: draft.account.clone(),
        currency: draft.currency,
        lines: draft
            .lines
            .iter()
            .map(|l| BookingLine {
                line: l.line,
                sku: l.sku.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
            })
            .collect(),
        fulfilment: state.validation.as_ref().map(|v| v.fulfilment.clone()),
        region: draft.region.clone(),
    };
    match engine.erp.book_order(&request, key).await {
        Ok(confirmation) => {
            let mut commands = vec![Command::RecordBooking {
                erp_ref: confirmation.erp_ref,
                at: now,
            }];
            for allocation in confirmation.allocations {
                commands.push(Command::RecordAllocation {
                    line: allocation.line,
                    location: allocation.location,
                    quantity: allocation.quantity,
                    at: now,
                });
            }
            for (line, quantity) in confirmation.backorders {
                if quantity > 0 {
                    commands.push(Command::RecordBackorder {
                        line,
                        quantity,
                        at: now,
                    });
                }
            }
            Ok(commands)
        }
        Err(f) if f.class == FailureClass::Permanent => Ok(vec![Command::RefuseBooking {
            reason: f.message,
            at: now,
        }]),
        Err(f) => Err(f),
    }
}

/// Creates or updates the ERP customer of an account.
pub(super) async fn customer(engine: &Engine, lease: &Lease) -> Outcome {
    let Some(account_id) = lease.task.payload.get("account").and_then(|a| a.as_str()) else {
        return Outcome::Failed(Failure::permanent("customer task has no `account`"));
    };
    let row = match engine.store.account(account_id).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            return Outcome::Failed(Failure::permanent(format!(
                "account {account_id} is unknown"
            )));
        }
        Err(e) => return Outcome::Failed(Failure::transient(e.to_string())),
    };
    let account: Account = serde_json::from_value(row.body.clone()).unwrap_or_else(|_| Account {
        id: account_id.into(),
        refs: Default::default(),
        name: row.name.clone(),
        tier: CustomerTier::Bronze,
        region: None,
        billing: None,
        shipping: None,
        currency: Currency::USD,
        credit_limit: None,
        open_balance: None,
        credit_status: None,
    });
    match engine
        .erp
        .upsert_customer(&account, &lease.task.idempotency_key)
        .await
    {
        Ok(customer) => {
            let mut row = row;
            row.erp_ref = Some(customer.erp_ref);
            row.updated_at = engine.clock.now();
            Outcome::Done(Decision {
                accounts: vec![row],
                ..Decision::default()
            })
        }
        Err(failure) => Outcome::Failed(failure),
    }
}

/// Whether the ERP refused a cancellation because the order already shipped (the REST ERP's
/// `cancel_after_shipment`, Tryton's `AlreadyShipped`).
fn refused_after_shipment(failure: &Failure) -> bool {
    failure.class == FailureClass::Permanent
        && matches!(
            failure.code.as_deref(),
            Some("cancel_after_shipment" | "AlreadyShipped")
        )
}

fn note(order: &str, at: time::OffsetDateTime, summary: &str, lease: &Lease) -> TimelineEntry {
    TimelineEntry {
        order_id: order.to_owned(),
        at,
        kind: "effect".to_owned(),
        summary: summary.to_owned(),
        detail: json!({ "task": lease.task.id, "idempotency_key": lease.task.idempotency_key }),
        system: Some("erp".to_owned()),
        outcome: Some("ok".to_owned()),
        latency_ms: None,
        correlation: correlation(lease),
    }
}
