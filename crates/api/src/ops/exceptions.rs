//! The exception queue: dead letters and refused or unreadable inbound messages, and what an
//! operator can do about them — retry, edit the payload then retry (checked against the task
//! kind's contract), resolve with a reason, and bulk replay by filter (a dry run first, then
//! through the same lanes, each key keeping its place, with a report of what failed again).
//! Every action is audited and noted on the order's timeline. Payloads are shown redacted.

use std::collections::BTreeSet;

use crossdock_domain::flow::Flow;
use crossdock_store::{
    AuditEntry, DeadLetter, DeadLetterFilter, DeadLetterStatus, InboundStatus, SharedStore,
    TimelineEntry,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::health::step_words;
use crate::problem::FieldError;
use crate::redact::{REDACTED, is_secret_key, redact_json};

/// Key-value namespace of replay batches.
pub const REPLAYS: &str = "ops_replays";

/// A dead letter as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExceptionView {
    /// Dead letter id.
    pub id: i64,
    /// `open`, `retried`, `resolved`, `auto_resolved`.
    pub status: String,
    /// Order.
    pub order_id: Option<String>,
    /// Lane (`erp`, `salesforce`, `hub`).
    pub lane: String,
    /// Task kind.
    pub kind: String,
    /// The step in words.
    pub step: String,
    /// Flow of the step.
    pub flow: Option<String>,
    /// Failure class.
    pub class: String,
    /// Error message.
    pub error: String,
    /// Short reason.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// Whether it holds back the later work of its key while open.
    pub blocking: bool,
    /// When it failed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Who closed it, how and why.
    pub resolution: Option<String>,
    /// Payload (redacted).
    pub payload: Value,
}

impl ExceptionView {
    /// The view of a dead letter.
    pub fn of(d: &DeadLetter, flows: &[Flow]) -> Self {
        Self {
            id: d.id,
            status: d.status.as_str().to_owned(),
            order_id: d.task.order_id.clone(),
            lane: d.task.lane.clone(),
            kind: d.task.kind.clone(),
            step: step_words(&d.task.kind),
            flow: crossdock_domain::flow::flow_of(flows, &d.task.kind).map(|f| f.name.clone()),
            class: d.class.clone(),
            error: d.error.clone(),
            reason: d.reason.clone(),
            attempts: d.task.attempts,
            blocking: d.task.blocking,
            created_at: d.created_at,
            closed_at: d.closed_at,
            resolution: d.resolution.clone(),
            payload: redact_json(&d.task.payload),
        }
    }
}

/// Which dead letters an operation concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    /// Status (`open` when absent in replays).
    pub status: Option<String>,
    /// Lane.
    pub lane: Option<String>,
    /// Task kind.
    pub kind: Option<String>,
    /// Flow name (its steps).
    pub flow: Option<String>,
    /// Failure class.
    pub class: Option<String>,
    /// Any id of an order.
    pub order: Option<String>,
    /// Failed at or after (RFC 3339).
    pub since: Option<String>,
    /// Failed before (RFC 3339).
    pub until: Option<String>,
    /// Most rows.
    pub limit: Option<usize>,
}

impl Filter {
    /// Parses `key=value,key=value` (the command line's `--filter`).
    ///
    /// # Errors
    /// An unknown key or a malformed pair.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut filter = Filter::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let text = value.trim();
            let value = Some(text.to_owned());
            match key.trim() {
                "status" => filter.status = value,
                "lane" => filter.lane = value,
                "kind" => filter.kind = value,
                "flow" => filter.flow = value,
                "class" => filter.class = value,
                "order" => filter.order = value,
                "since" => filter.since = value,
                "until" => filter.until = value,
                "limit" => {
                    filter.limit = Some(
                        text.parse()
                            .map_err(|_| "limit must be a number".to_owned())?,
                    );
                }
                other => {
                    return Err(format!(
                        "unknown filter key `{other}` (known: status, lane, kind, flow, class, order, since, until, limit)"
                    ));
                }
            }
        }
        Ok(filter)
    }

    fn time(field: &str, value: Option<&String>) -> Result<Option<OffsetDateTime>, ActionError> {
        value
            .map(|v| {
                OffsetDateTime::parse(v, &Rfc3339).map_err(|e| {
                    ActionError::Contract(vec![FieldError::new(
                        field,
                        format!("is not an RFC 3339 time: {e}"),
                    )])
                })
            })
            .transpose()
    }
}

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No such dead letter (or order).
    #[error("{0}")]
    NotFound(String),
    /// Not allowed in its state.
    #[error("{0}")]
    Invalid(String),
    /// The input does not meet its contract.
    #[error("the input is not valid")]
    Contract(Vec<FieldError>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crossdock_store::Error),
}

fn status(text: &str) -> Result<DeadLetterStatus, ActionError> {
    DeadLetterStatus::parse(text).ok_or_else(|| {
        ActionError::Contract(vec![FieldError::new(
            "status",
            "must be one of open, retried, resolved, auto_resolved",
        )])
    })
}

/// Dead letters matching a filter, newest first.
///
/// # Errors
/// A malformed filter, or a store failure.
pub async fn list(
    store: &SharedStore,
    flows: &[Flow],
    filter: &Filter,
) -> Result<Vec<DeadLetter>, ActionError> {
    let limit = filter.limit.unwrap_or(200).clamp(1, 10_000);
    let since = Filter::time("since", filter.since.as_ref())?;
    let until = Filter::time("until", filter.until.as_ref())?;
    let order_id = match &filter.order {
        Some(any) => Some(
            store
                .resolve(any)
                .await?
                .ok_or_else(|| ActionError::NotFound(format!("no order {any}")))?,
        ),
        None => None,
    };
    let kinds: Option<BTreeSet<String>> = match &filter.flow {
        Some(name) => {
            let flow = flows.iter().find(|f| &f.name == name).ok_or_else(|| {
                ActionError::Contract(vec![FieldError::new(
                    "flow",
                    format!("no flow named `{name}`"),
                )])
            })?;
            Some(flow.steps.iter().cloned().collect())
        }
        None => None,
    };
    let mut store_filter = DeadLetterFilter {
        status: filter.status.as_deref().map(status).transpose()?,
        lane: filter.lane.clone(),
        kind: filter.kind.clone(),
        order_id,
        class: filter.class.clone(),
        after_id: None,
        limit: Some(1_000),
    };
    let mut out = Vec::new();
    loop {
        let page = store.dead_letters(store_filter.clone()).await?;
        let full = page.len() == 1_000;
        store_filter.after_id = page.last().map(|d| d.id);
        out.extend(page.into_iter().filter(|d| {
            kinds.as_ref().is_none_or(|k| k.contains(&d.task.kind))
                && since.is_none_or(|s| d.created_at >= s)
                && until.is_none_or(|u| d.created_at < u)
        }));
        if !full {
            break;
        }
    }
    out.sort_by_key(|d| std::cmp::Reverse(d.id));
    out.truncate(limit);
    Ok(out)
}

/// One dead letter.
///
/// # Errors
/// Not found, or a store failure.
pub async fn get(store: &SharedStore, id: i64) -> Result<DeadLetter, ActionError> {
    store
        .dead_letter_by_id(id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("no dead letter {id}")))
}

async fn note(
    store: &SharedStore,
    dead: &DeadLetter,
    at: OffsetDateTime,
    actor: &str,
    action: &str,
    detail: Value,
) {
    let audit = AuditEntry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: format!("dead_letter:{}", dead.id),
        detail: redact_json(&detail),
    };
    if let Err(error) = store.audit(audit).await {
        tracing::error!(%error, action, dead_letter = dead.id, "Could not write the audit record");
    }
    if let Some(order) = &dead.task.order_id {
        let summary = match action {
            "dlq.retry" => format!("{} sent again by {actor}", step_words(&dead.task.kind)),
            "dlq.edit_retry" => format!(
                "{} corrected and sent again by {actor}",
                step_words(&dead.task.kind)
            ),
            "dlq.replay" => format!("{} replayed by {actor}", step_words(&dead.task.kind)),
            _ => format!(
                "{} closed by {actor}: {}",
                step_words(&dead.task.kind),
                detail
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ),
        };
        let entry = TimelineEntry {
            order_id: order.clone(),
            at,
            kind: "action".to_owned(),
            summary,
            detail: json!({ "dead_letter": dead.id, "action": action }),
            system: Some("hub".to_owned()),
            outcome: None,
            latency_ms: None,
            correlation: dead
                .task
                .payload
                .get("correlation")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        if let Err(error) = store.append_timeline(vec![entry]).await {
            tracing::warn!(%error, dead_letter = dead.id, "Could not note the action on the timeline");
        }
    }
}

/// Sends an open dead letter back to its queue, optionally with an edited payload (checked
/// against the kind's contract first). Returns the task id.
///
/// # Errors
/// Not found, not open, an edit that breaks the contract, or a store failure.
pub async fn retry(
    store: &SharedStore,
    id: i64,
    edited: Option<Value>,
    actor: &str,
    now: OffsetDateTime,
) -> Result<i64, ActionError> {
    let dead = get(store, id).await?;
    if dead.status != DeadLetterStatus::Open {
        return Err(ActionError::Invalid(format!(
            "dead letter {id} is {} already; only open ones can be retried",
            dead.status.as_str().replace('_', "-")
        )));
    }
    if let Some(edited) = &edited {
        super::contract::validate(&dead.task.kind, &dead.task.payload, edited)
            .map_err(ActionError::Contract)?;
    }
    let action = if edited.is_some() {
        "dlq.edit_retry"
    } else {
        "dlq.retry"
    };
    let task = store
        .retry_dead_letter(id, edited.clone(), actor, now)
        .await
        .map_err(|e| match e.kind() {
            crossdock_store::ErrorKind::NotFound => ActionError::NotFound(e.to_string()),
            crossdock_store::ErrorKind::Invalid => ActionError::Invalid(e.to_string()),
            _ => ActionError::Store(e),
        })?;
    let mut detail = json!({ "task": task, "kind": dead.task.kind, "order": dead.task.order_id });
    if let Some(edited) = edited {
        detail["before"] = dead.task.payload.clone();
        detail["after"] = edited;
    }
    note(store, &dead, now, actor, action, detail).await;
    Ok(task)
}

/// Closes an open dead letter with a reason.
///
/// # Errors
/// Not found, not open, an empty reason, or a store failure.
pub async fn resolve(
    store: &SharedStore,
    id: i64,
    reason: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<(), ActionError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ActionError::Contract(vec![FieldError::new(
            "reason",
            "say why it can be closed",
        )]));
    }
    let dead = get(store, id).await?;
    if dead.status != DeadLetterStatus::Open {
        return Err(ActionError::Invalid(format!(
            "dead letter {id} is {} already; only open ones can be resolved",
            dead.status.as_str().replace('_', "-")
        )));
    }
    store
        .resolve_dead_letter(id, reason, actor, now)
        .await
        .map_err(|e| match e.kind() {
            crossdock_store::ErrorKind::NotFound => ActionError::NotFound(e.to_string()),
            crossdock_store::ErrorKind::Invalid => ActionError::Invalid(e.to_string()),
            _ => ActionError::Store(e),
        })?;
    note(
        store,
        &dead,
        now,
        actor,
        "dlq.resolve",
        json!({ "reason": reason, "kind": dead.task.kind }),
    )
    .await;
    Ok(())
}

/// What a bulk replay would send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayPlan {
    /// The dead letters, oldest first (the order they will be sent in).
    pub items: Vec<ExceptionView>,
}

/// One replayed dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayedItem {
    /// Dead letter.
    pub dead_letter: i64,
    /// New task (absent when the replay of this one was refused).
    pub task: Option<i64>,
    /// Order.
    pub order_id: Option<String>,
    /// Task kind.
    pub kind: String,
    /// Why it was not sent.
    pub refused: Option<String>,
}

/// A replay batch as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayBatch {
    /// Batch id.
    pub id: String,
    /// Who.
    pub actor: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// The filter used.
    pub filter: Filter,
    /// Items, in the order sent.
    pub items: Vec<ReplayedItem>,
}

/// The dry run of a bulk replay: the open dead letters the filter selects, oldest first.
///
/// # Errors
/// A malformed filter, or a store failure.
pub async fn plan(
    store: &SharedStore,
    flows: &[Flow],
    filter: &Filter,
) -> Result<ReplayPlan, ActionError> {
    let mut filter = filter.clone();
    match filter.status.as_deref() {
        None => filter.status = Some("open".to_owned()),
        Some("open") => {}
        Some(other) => {
            return Err(ActionError::Contract(vec![FieldError::new(
                "status",
                format!("only open dead letters can be replayed, not `{other}` ones"),
            )]));
        }
    }
    let mut items = list(store, flows, &filter).await?;
    items.sort_by_key(|d| d.id);
    Ok(ReplayPlan {
        items: items.iter().map(|d| ExceptionView::of(d, flows)).collect(),
    })
}

/// Replays every open dead letter the filter selects, oldest first, and records the batch.
/// Each goes back to its lane's queue in its key's original place, so lanes keep their rate
/// limits and every order its step order.
///
/// # Errors
/// A malformed filter, or a store failure before anything was sent.
pub async fn replay(
    store: &SharedStore,
    flows: &[Flow],
    filter: &Filter,
    actor: &str,
    now: OffsetDateTime,
) -> Result<ReplayBatch, ActionError> {
    let plan = plan(store, flows, filter).await?;
    let id = format!(
        "{}-{}",
        now.unix_timestamp_nanos() / 1_000,
        plan.items.len()
    );
    let mut items = Vec::with_capacity(plan.items.len());
    for item in &plan.items {
        let dead = get(store, item.id).await?;
        let outcome = store.retry_dead_letter(item.id, None, actor, now).await;
        let (task, refused) = match outcome {
            Ok(task) => {
                note(
                    store,
                    &dead,
                    now,
                    actor,
                    "dlq.replay",
                    json!({ "task": task, "batch": id }),
                )
                .await;
                (Some(task), None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        items.push(ReplayedItem {
            dead_letter: item.id,
            task,
            order_id: item.order_id.clone(),
            kind: item.kind.clone(),
            refused,
        });
    }
    let batch = ReplayBatch {
        id: id.clone(),
        actor: actor.to_owned(),
        started_at: now,
        filter: filter.clone(),
        items,
    };
    let audit = AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action: "dlq.bulk_replay".to_owned(),
        target: format!("replay:{id}"),
        detail: json!({ "filter": filter, "sent": batch.items.iter().filter(|i| i.task.is_some()).count() }),
    };
    store.audit(audit).await?;
    store
        .kv_put(
            REPLAYS,
            &id,
            serde_json::to_value(&batch).unwrap_or_default(),
            now,
        )
        .await?;
    Ok(batch)
}

/// How one replayed item fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemOutcome {
    /// The item.
    #[serde(flatten)]
    pub item: ReplayedItem,
    /// `succeeded`, `waiting` (still queued), `failed_again`, `not_sent`.
    pub outcome: String,
    /// The new dead letter and its error, when it failed again.
    pub error: Option<String>,
}

/// The report of a replay batch: what succeeded, what waits, what failed again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Batch id.
    pub id: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Items.
    pub items: Vec<ItemOutcome>,
    /// Counts per outcome.
    pub succeeded: usize,
    /// Still queued.
    pub waiting: usize,
    /// Failed again.
    pub failed_again: usize,
}

/// The report of a replay batch.
///
/// # Errors
/// When the store fails.
pub async fn report(store: &SharedStore, id: &str) -> Result<Option<ReplayReport>, ActionError> {
    let Some(value) = store.kv_get(REPLAYS, id).await? else {
        return Ok(None);
    };
    let batch: ReplayBatch = serde_json::from_value(value)
        .map_err(|e| ActionError::Invalid(format!("replay batch {id} is unreadable: {e}")))?;
    let mut items = Vec::with_capacity(batch.items.len());
    for item in batch.items {
        let (outcome, error) = match (item.task, &item.order_id) {
            (None, _) => ("not_sent", item.refused.clone()),
            (Some(task), order) => {
                let again = store
                    .dead_letters(DeadLetterFilter {
                        order_id: order.clone(),
                        kind: Some(item.kind.clone()),
                        after_id: Some(item.dead_letter),
                        limit: Some(50),
                        ..DeadLetterFilter::default()
                    })
                    .await?
                    .into_iter()
                    .find(|d| d.task.id == task || d.created_at >= batch.started_at);
                if let Some(d) = again {
                    (
                        "failed_again",
                        Some(format!("dead letter {}: {}", d.id, d.error)),
                    )
                } else {
                    let queued = match order {
                        Some(order) => store
                            .tasks_for_order(order)
                            .await?
                            .iter()
                            .any(|t| t.id == task),
                        None => false,
                    };
                    (if queued { "waiting" } else { "succeeded" }, None)
                }
            }
        };
        items.push(ItemOutcome {
            item,
            outcome: outcome.to_owned(),
            error,
        });
    }
    let count = |o: &str| items.iter().filter(|i| i.outcome == o).count();
    Ok(Some(ReplayReport {
        id: batch.id,
        started_at: batch.started_at,
        succeeded: count("succeeded"),
        waiting: count("waiting"),
        failed_again: count("failed_again"),
        items,
    }))
}

/// An inbound message the hub refused or could not read, kept with its payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusedMessage {
    /// Inbox row id.
    pub inbox_id: i64,
    /// Source system.
    pub source: String,
    /// The source's message id.
    pub message_id: String,
    /// Kind.
    pub kind: String,
    /// `refused` or `failed`.
    pub status: String,
    /// Why.
    pub error: Option<String>,
    /// When received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The payload as received, secrets redacted.
    pub raw: String,
}

/// Refused and unreadable inbound messages, newest first.
///
/// # Errors
/// When the store fails.
pub async fn refused_messages(
    store: &SharedStore,
    limit: usize,
) -> crossdock_store::Result<Vec<RefusedMessage>> {
    let mut out = Vec::new();
    for status in [InboundStatus::Refused, InboundStatus::Failed] {
        let mut after = 0;
        loop {
            let page = store.inbound_by_status(status, after, 500).await?;
            let full = page.len() == 500;
            after = page.last().map_or(after, |r| r.id);
            out.extend(page.into_iter().map(|r| RefusedMessage {
                inbox_id: r.id,
                source: r.source,
                message_id: r.message_id,
                kind: r.kind,
                status: r.status.as_str().to_owned(),
                error: r.error,
                received_at: r.received_at,
                raw: redact_text(&r.raw),
            }));
            if !full {
                break;
            }
        }
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.inbox_id));
    out.truncate(limit);
    Ok(out)
}

/// Redacts secrets in a raw payload: JSON members by name; in other text, the value after a
/// secret-named key (`token=…`, `Authorization: …`) and after `Bearer`.
pub fn redact_text(raw: &str) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(raw) {
        return redact_json(&value).to_string();
    }
    let mut out = String::with_capacity(raw.len());
    for (i, line) in raw.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&redact_line(line));
    }
    out
}

fn redact_line(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        // Find the next separator `=` or `:` and look at the word before it.
        let Some(pos) = rest.find(['=', ':']) else {
            out.push_str(rest);
            break;
        };
        let (head, tail) = rest.split_at(pos);
        let key_start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(0, |i| i + 1);
        let key = &head[key_start..];
        out.push_str(head);
        out.push_str(&tail[..1]);
        let after = &tail[1..];
        if !key.is_empty() && is_secret_key(key) {
            let value_start = after.len() - after.trim_start().len();
            let value = &after[value_start..];
            let mut end = value
                .find(|c: char| c == '&' || c == ',' || c == ';' || c.is_whitespace())
                .unwrap_or(value.len());
            // `Authorization: Bearer xyz`: the scheme and the credential both go.
            if value[..end].eq_ignore_ascii_case("bearer")
                || value[..end].eq_ignore_ascii_case("basic")
            {
                let more = &value[end..];
                let skip = more.len() - more.trim_start().len();
                let cred_end = more[skip..]
                    .find(|c: char| c == '&' || c == ',' || c == ';' || c.is_whitespace())
                    .unwrap_or(more.len() - skip);
                end += skip + cred_end;
            }
            out.push_str(&after[..value_start]);
            out.push_str(REDACTED);
            rest = &value[end..];
        } else {
            rest = after;
        }
    }
    out.replace_bearer()
}

trait ReplaceBearer {
    fn replace_bearer(self) -> String;
}

impl ReplaceBearer for String {
    /// `Bearer <token>` anywhere else.
    fn replace_bearer(self) -> String {
        let lower = self.to_ascii_lowercase();
        let Some(pos) = lower.find("bearer ") else {
            return self;
        };
        let start = pos + "bearer ".len();
        let token_end = self[start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
            .map_or(self.len(), |i| start + i);
        if self[start..token_end] == *REDACTED || start == token_end {
            return self;
        }
        format!("{}{}{}", &self[..start], REDACTED, &self[token_end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_raw_payloads_are_redacted() {
        let json = r#"{"order":"O-1","auth":{"access_token":"abc123"},"password":"pw"}"#;
        let out = redact_text(json);
        assert!(!out.contains("abc123") && !out.contains("\"pw\""), "{out}");
        assert!(out.contains("O-1"));
        let form = "order=O-1&api_key=k-777&note=fine";
        let out = redact_text(form);
        assert_eq!(out, "order=O-1&api_key=[redacted]&note=fine");
        let headers = "Authorization: Bearer sekrit-token\nX-Trace: t-1\npassword=hunter2";
        let out = redact_text(headers);
        assert!(
            !out.contains("sekrit-token") && !out.contains("hunter2"),
            "{out}"
        );
        assert!(out.contains("X-Trace: t-1"), "{out}");
        let loose = "sent with bearer zzz999 at noon";
        assert!(!redact_text(loose).contains("zzz999"));
    }

    #[test]
    fn filters_parse_from_the_command_line() {
        let f = Filter::parse("lane=erp, kind=book,limit=5").expect("parses");
        assert_eq!(f.lane.as_deref(), Some("erp"));
        assert_eq!(f.kind.as_deref(), Some("book"));
        assert_eq!(f.limit, Some(5));
        assert!(Filter::parse("colour=red").is_err());
        assert!(Filter::parse("lane").is_err());
        assert!(Filter::parse("limit=x").is_err());
    }
}
