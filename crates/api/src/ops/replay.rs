//! Replaying an event subscriber: its durable cursor moves back so it receives events again,
//! from a global position or from the first event recorded at or after a time. Audited.

use crossdock_store::{AuditEntry, SharedStore};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::exceptions::ActionError;
use crate::problem::FieldError;

/// Where to replay from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// The first event to deliver again (global position).
    Position(i64),
    /// The first event recorded at or after this time.
    Since(OffsetDateTime),
}

/// What moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// Cursor name.
    pub cursor: String,
    /// Position before.
    pub before: Option<String>,
    /// Position after (the subscriber next receives the event after it).
    pub after: String,
    /// First event it will receive again.
    pub first_event: i64,
}

/// The cursor name of a subscriber: the name itself when such a cursor exists, else
/// `bus:<name>` (the event bus's convention).
async fn cursor_of(
    store: &SharedStore,
    subscriber: &str,
) -> Result<(String, Option<String>), ActionError> {
    let cursors = store.cursors().await?;
    for candidate in [subscriber.to_owned(), format!("bus:{subscriber}")] {
        if let Some((name, position, _)) = cursors.iter().find(|(n, _, _)| *n == candidate) {
            return Ok((name.clone(), Some(position.clone())));
        }
    }
    let known: Vec<String> = cursors
        .iter()
        .map(|(n, _, _)| n.strip_prefix("bus:").unwrap_or(n).to_owned())
        .collect();
    Err(ActionError::NotFound(format!(
        "no subscriber `{subscriber}` (known: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )))
}

/// Moves a subscriber's cursor back.
///
/// # Errors
/// Unknown subscriber, a position ahead of the subscriber (that would skip events), no event
/// at or after the time, or a store failure.
pub async fn replay(
    store: &SharedStore,
    subscriber: &str,
    from: From,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Moved, ActionError> {
    let (cursor, before) = cursor_of(store, subscriber).await?;
    let first = match from {
        From::Position(position) if position < 1 => {
            return Err(ActionError::Contract(vec![FieldError::new(
                "from",
                "positions start at 1",
            )]));
        }
        From::Position(position) => position,
        From::Since(time) => store
            .read_since(time, 1)
            .await?
            .first()
            .map(|e| e.global_seq)
            .ok_or_else(|| {
                ActionError::NotFound(format!("no event was recorded at or after {time}"))
            })?,
    };
    let current: Option<i64> = before.as_deref().and_then(|p| p.parse().ok());
    if let Some(current) = current
        && first - 1 > current
    {
        return Err(ActionError::Invalid(format!(
            "`{subscriber}` is at position {current}; replaying from {first} would skip events"
        )));
    }
    let after = (first - 1).to_string();
    store.save_cursor(&cursor, &after, now).await?;
    store
        .audit(AuditEntry {
            at: now,
            actor: actor.to_owned(),
            action: "replay.subscriber".to_owned(),
            target: format!("cursor:{cursor}"),
            detail: json!({ "before": before, "after": after, "first_event": first }),
        })
        .await?;
    Ok(Moved {
        cursor,
        before,
        after,
        first_event: first,
    })
}
