//! Processing an inbound message: ownership check, then the order command (or the inventory,
//! account or credit update) it carries.

use std::borrow::Cow;

use crossdock_domain::ids::System;
use crossdock_domain::order::Lane as LaneName;
use crossdock_ports::Failure;
use crossdock_ports::inbound::Inbound;
use crossdock_store::{
    AccountRow, Decision, InboundStatus, InventoryRow, Lease, NewTask, TimelineEntry,
};
use serde::Deserialize;
use serde_json::json;

use super::{ApplyError, Outcome, apply_order};
use crate::apply::Cause;
use crate::engine::Engine;

pub(super) async fn run(engine: &Engine, lease: &Lease) -> Outcome {
    let Some(inbox_id) = lease
        .task
        .payload
        .get("inbox_id")
        .and_then(serde_json::Value::as_i64)
    else {
        return Outcome::Failed(Failure::permanent("inbound task has no `inbox_id`"));
    };
    let message = match message_of(engine, &lease.task.payload, inbox_id).await {
        Ok(message) => message,
        Err(failed) => return failed,
    };
    // Read from the payload in place: no copy of the body's JSON tree.
    let body: Inbound = match Inbound::deserialize(message.body.as_ref()) {
        Ok(body) => body,
        Err(e) => {
            return unreadable(
                inbox_id,
                &format!("the message body does not match the contract: {e}"),
            );
        }
    };
    let source = match message.source.as_ref() {
        "salesforce" => System::Salesforce,
        "erp" => System::Erp,
        "api" => System::Api,
        _ => System::Hub,
    };
    let now = engine.clock.now();
    let processed = Decision {
        inbound: Some((inbox_id, InboundStatus::Processed, None)),
        ..Decision::default()
    };
    let correlation = lease
        .task
        .payload
        .get("correlation")
        .and_then(|c| c.as_str())
        .map(str::to_owned);
    match body {
        Inbound::Order { order, command } => {
            let received = TimelineEntry {
                order_id: order.to_string(),
                at: now,
                kind: "inbound".to_owned(),
                summary: format!("Received {} from {source}", command.name()),
                detail: json!({ "inbox_id": inbox_id, "message_id": message.message_id.as_ref() }),
                system: Some(source.as_str().to_owned()),
                outcome: None,
                latency_ms: None,
                correlation: correlation.clone(),
            };
            if let Err(violation) = engine.config.ownership.check_command(&command, source) {
                engine
                    .metrics
                    .inbound_refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let reason = format!("refused: {violation}");
                return Outcome::Done(Decision {
                    inbound: Some((inbox_id, InboundStatus::Refused, Some(reason.clone()))),
                    timeline: vec![
                        received,
                        TimelineEntry {
                            order_id: order.to_string(),
                            at: now,
                            kind: "refusal".to_owned(),
                            summary: format!(
                                "Ownership: {} from {source} {reason}",
                                command.name()
                            ),
                            detail: json!({ "inbox_id": inbox_id, "violation": violation }),
                            system: Some(source.as_str().to_owned()),
                            outcome: Some("refused".to_owned()),
                            latency_ms: None,
                            correlation,
                        },
                    ],
                    ..Decision::default()
                });
            }
            let cause = Cause {
                system: source,
                causation: format!("inbox:{inbox_id}"),
                correlation: correlation.clone(),
            };
            let mut extra = processed;
            extra.timeline.push(received.clone());
            match apply_order(
                engine,
                lease,
                &order,
                std::slice::from_ref(&command),
                &cause,
                extra,
            )
            .await
            {
                Ok(decision) => Outcome::Done(decision),
                Err(ApplyError::Unavailable(failure)) => Outcome::Failed(failure),
                Err(ApplyError::Refused(error)) if error.may_succeed_later() => {
                    Outcome::Defer(format!("waiting for the order to catch up: {error}"))
                }
                Err(ApplyError::Refused(error)) => {
                    engine
                        .metrics
                        .inbound_refused
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let reason = format!("{} refused: {error}", command.name());
                    Outcome::FailedWith(
                        Failure::permanent(reason.clone()).with_code(error.code()),
                        Decision {
                            inbound: Some((inbox_id, InboundStatus::Refused, Some(reason.clone()))),
                            timeline: vec![
                                received,
                                TimelineEntry {
                                    order_id: order.to_string(),
                                    at: now,
                                    kind: "refusal".to_owned(),
                                    summary: reason,
                                    detail: json!({ "inbox_id": inbox_id, "error": error }),
                                    system: Some(source.as_str().to_owned()),
                                    outcome: Some("refused".to_owned()),
                                    latency_ms: None,
                                    correlation,
                                },
                            ],
                            ..Decision::default()
                        },
                    )
                }
            }
        }
        Inbound::Inventory { level } => {
            if let Err(violation) = engine.config.ownership.check(
                crossdock_domain::ownership::Entity::Inventory,
                None,
                source,
            ) {
                return refused(inbox_id, &violation.to_string());
            }
            let sku = level.sku.to_string();
            let mut decision = processed;
            decision.inventory.push(InventoryRow {
                sku: sku.clone(),
                location: level.location.to_string(),
                on_hand: level.on_hand,
                reserved: level.reserved,
                available: level.available,
                as_of: level.as_of,
                updated_at: now,
            });
            let coalesce =
                time::Duration::try_from(engine.config.inventory_coalesce).unwrap_or_default();
            decision.tasks.push(NewTask {
                lane: LaneName::Salesforce.as_str().to_owned(),
                kind: "sf-inventory".to_owned(),
                // Its own key, not the stock messages' `sku:…`: a write waiting out the
                // coalescing window must not hold back the next stock change (which it will
                // carry, as it reads the latest level when it runs).
                key: format!("sf-inventory:{sku}"),
                dedupe: Some(format!("sf-inventory/{sku}")),
                idempotency_key: format!("sf-inventory/{sku}"),
                payload: json!({ "sku": sku }),
                due_at: now + coalesce,
                blocking: false,
                order_id: None,
            });
            Outcome::Done(decision)
        }
        Inbound::Account { account } => {
            if let Err(violation) = engine.config.ownership.check(
                crossdock_domain::ownership::Entity::Account,
                None,
                source,
            ) {
                return refused(inbox_id, &violation.to_string());
            }
            let mut decision = processed;
            let existing = engine
                .store
                .account(account.id.as_str())
                .await
                .ok()
                .flatten();
            let mut body = serde_json::to_value(&account).unwrap_or_default();
            // Credit fields belong to the ERP: keep what the ERP said, ignore Salesforce's.
            if let Some(existing) = &existing {
                for field in ["credit_limit", "open_balance", "credit_status"] {
                    body[field] = existing.body.get(field).cloned().unwrap_or_default();
                }
            }
            decision.accounts.push(AccountRow {
                account_id: account.id.to_string(),
                sf_id: account.refs.sf_id.clone(),
                erp_ref: existing
                    .as_ref()
                    .and_then(|e| e.erp_ref.clone())
                    .or(account.refs.erp_ref.clone()),
                name: account.name.clone(),
                tier: account.tier.as_str().to_owned(),
                body,
                updated_at: now,
            });
            decision.tasks.push(NewTask {
                lane: LaneName::Erp.as_str().to_owned(),
                kind: "erp-customer".to_owned(),
                key: format!("account:{}", account.id),
                dedupe: Some(format!("erp-customer/{}", account.id)),
                idempotency_key: format!("erp-customer/{}/{}", account.id, message.message_id),
                payload: json!({ "account": account.id }),
                due_at: now,
                blocking: false,
                order_id: None,
            });
            Outcome::Done(decision)
        }
        Inbound::Credit { report } => {
            if let Err(violation) = engine.config.ownership.check(
                crossdock_domain::ownership::Entity::Account,
                Some("credit_status"),
                source,
            ) {
                return refused(inbox_id, &violation.to_string());
            }
            let mut decision = processed;
            let existing = engine
                .store
                .account(report.account.as_str())
                .await
                .ok()
                .flatten();
            let mut row = existing.unwrap_or_else(|| AccountRow {
                account_id: report.account.to_string(),
                sf_id: None,
                erp_ref: None,
                name: report.account.to_string(),
                tier: "Bronze".to_owned(),
                body: json!({}),
                updated_at: now,
            });
            row.body["credit_status"] = json!(report.status);
            row.body["credit_limit"] = json!(report.limit);
            row.body["open_balance"] = json!(report.balance);
            row.updated_at = now;
            decision.accounts.push(row);
            decision.tasks.push(NewTask {
                lane: LaneName::Salesforce.as_str().to_owned(),
                kind: "sf-credit".to_owned(),
                key: format!("account:{}", report.account),
                dedupe: Some(format!("sf-credit/{}", report.account)),
                idempotency_key: format!("sf-credit/{}", report.account),
                payload: json!({ "report": report }),
                due_at: now,
                blocking: false,
                order_id: None,
            });
            Outcome::Done(decision)
        }
        Inbound::Unreadable { reason } => unreadable(inbox_id, &reason),
    }
}

/// What the handler needs of an inbound message (borrowed from the task's payload when it
/// carries the message).
struct Message<'a> {
    source: Cow<'a, str>,
    message_id: Cow<'a, str>,
    body: Cow<'a, serde_json::Value>,
}

/// The message an inbound task processes: from the task's payload, which carries it (and
/// where an operator may have corrected the body in the dead-letter queue); from the inbox
/// row for a task whose payload does not (one enqueued before payloads carried it).
async fn message_of<'a>(
    engine: &Engine,
    payload: &'a serde_json::Value,
    inbox_id: i64,
) -> Result<Message<'a>, Outcome> {
    let text = |field: &str| payload.get(field).and_then(serde_json::Value::as_str);
    if let (Some(source), Some(message_id), Some(body)) =
        (text("source"), text("message_id"), payload.get("body"))
    {
        return Ok(Message {
            source: Cow::Borrowed(source),
            message_id: Cow::Borrowed(message_id),
            body: Cow::Borrowed(body),
        });
    }
    match engine.store.inbound(inbox_id).await {
        Ok(Some(record)) => Ok(Message {
            source: Cow::Owned(record.source),
            message_id: Cow::Owned(record.message_id),
            body: payload
                .get("body")
                .map_or(Cow::Owned(record.body), Cow::Borrowed),
        }),
        Ok(None) => Err(Outcome::Failed(Failure::permanent(format!(
            "inbox row {inbox_id} is missing"
        )))),
        Err(e) => Err(Outcome::Failed(Failure::transient(e.to_string()))),
    }
}

fn unreadable(inbox_id: i64, reason: &str) -> Outcome {
    Outcome::FailedWith(
        Failure::permanent(format!("unreadable message: {reason}")).with_code("unreadable"),
        Decision {
            inbound: Some((inbox_id, InboundStatus::Failed, Some(reason.to_owned()))),
            ..Decision::default()
        },
    )
}

fn refused(inbox_id: i64, reason: &str) -> Outcome {
    Outcome::Done(Decision {
        inbound: Some((
            inbox_id,
            InboundStatus::Refused,
            Some(format!("refused: {reason}")),
        )),
        ..Decision::default()
    })
}
