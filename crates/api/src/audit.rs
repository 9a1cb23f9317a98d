//! The audit trail of API writes: who (the client's credential id), what, on what, and the
//! details with secrets redacted. Append-only, through `Store::audit`.

use crossdock_store::AuditEntry;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::redact::redact_json;
use crate::state::AppState;

/// Appends an audit record for a write the API accepted. A store failure is logged: the write
/// itself is already durable and must not be reported as failed.
pub async fn record(
    state: &AppState,
    principal: &Principal,
    action: &str,
    target: &str,
    detail: Value,
) {
    let mut detail = redact_json(&detail);
    if let Some(object) = detail.as_object_mut() {
        object.insert("client".to_owned(), json!(principal.client));
    }
    record_as(state, &principal.id, action, target, detail).await;
}

/// Appends an audit record for an actor that is not an API client (a webhook sender).
pub async fn record_as(state: &AppState, actor: &str, action: &str, target: &str, detail: Value) {
    let entry = AuditEntry {
        at: state.engine.clock().now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: redact_json(&detail),
    };
    if let Err(error) = state.store().audit(entry).await {
        tracing::error!(%error, action, target, "Could not write the audit record");
    }
}
