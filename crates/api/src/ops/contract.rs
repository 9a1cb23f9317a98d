//! Payload contracts of task kinds: an edited dead-letter payload is accepted only when the
//! handler of its kind can read it, and only when it still targets the same order (or message,
//! product, account). The contract is the handler's own types (`Effect`, `Inbound`,
//! `CreditReport`), so an accepted edit cannot fail for being unreadable.

use crossdock_domain::order::Effect;
use crossdock_engine::apply::StepKind;
use crossdock_ports::erp::CreditReport;
use crossdock_ports::inbound::Inbound;
use serde_json::Value;

use crate::problem::FieldError;

/// Task kinds that carry an order effect.
pub const EFFECT_KINDS: [&str; 10] = [
    "validate",
    "book",
    "erp-cancel",
    "sf-sync",
    "close",
    "rma-authorise",
    "rma-credit-memo",
    "rma-refund",
    "sf-return",
    "rma-close",
];

/// Checks `edited` against the contract of `kind`, given the payload the task had.
///
/// # Errors
/// Every problem found, with the field it concerns.
pub fn validate(kind: &str, original: &Value, edited: &Value) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(object) = edited.as_object() else {
        return Err(vec![FieldError::new("payload", "must be a JSON object")]);
    };
    let same = |field: &str, errors: &mut Vec<FieldError>| {
        if original.get(field) != edited.get(field) {
            errors.push(FieldError::new(
                field,
                format!(
                    "cannot be changed (was {})",
                    original
                        .get(field)
                        .map_or_else(|| "absent".to_owned(), Value::to_string)
                ),
            ));
        }
    };
    if let Some(correlation) = object.get("correlation")
        && !(correlation.is_null() || correlation.is_string())
    {
        errors.push(FieldError::new("correlation", "must be a string or null"));
    }
    match kind {
        k if EFFECT_KINDS.contains(&k) => {
            match object.get("order").and_then(Value::as_str) {
                Some(order) if !order.trim().is_empty() => same("order", &mut errors),
                _ => errors.push(FieldError::new(
                    "order",
                    "must be the order id (a non-empty string)",
                )),
            }
            match object.get("effect") {
                None => errors.push(FieldError::new("effect", "is required")),
                Some(effect) => match serde_json::from_value::<Effect>(effect.clone()) {
                    Ok(effect) if effect.step_kind() == kind => {}
                    Ok(effect) => errors.push(FieldError::new(
                        "effect",
                        format!(
                            "is a `{}` step, but this task is `{kind}`",
                            effect.step_kind()
                        ),
                    )),
                    Err(e) => errors.push(FieldError::new(
                        "effect",
                        format!("is not a valid effect: {e}"),
                    )),
                },
            }
            for field in object.keys() {
                if !["order", "effect", "correlation", "deferrals"].contains(&field.as_str()) {
                    errors.push(FieldError::new(field.clone(), "is not part of the payload"));
                }
            }
        }
        "inbound" => {
            match object.get("inbox_id").and_then(Value::as_i64) {
                Some(_) => same("inbox_id", &mut errors),
                None => errors.push(FieldError::new("inbox_id", "must be the message's row id")),
            }
            // The message's source and id name the message the task processes.
            same("source", &mut errors);
            same("message_id", &mut errors);
            if let Some(body) = object.get("body")
                && let Err(e) = serde_json::from_value::<Inbound>(body.clone())
            {
                errors.push(FieldError::new(
                    "body",
                    format!("does not match the message contract: {e}"),
                ));
            }
            for field in object.keys() {
                if ![
                    "inbox_id",
                    "source",
                    "message_id",
                    "body",
                    "correlation",
                    "deferrals",
                ]
                .contains(&field.as_str())
                {
                    errors.push(FieldError::new(field.clone(), "is not part of the payload"));
                }
            }
        }
        "sf-inventory" => match object.get("sku").and_then(Value::as_str) {
            Some(sku) if !sku.trim().is_empty() => same("sku", &mut errors),
            _ => errors.push(FieldError::new("sku", "must be the product code")),
        },
        "erp-customer" => match object.get("account").and_then(Value::as_str) {
            Some(account) if !account.trim().is_empty() => same("account", &mut errors),
            _ => errors.push(FieldError::new("account", "must be the account id")),
        },
        "sf-credit" => match object.get("report") {
            Some(report) => match serde_json::from_value::<CreditReport>(report.clone()) {
                Ok(report) => {
                    let before = original
                        .get("report")
                        .and_then(|r| r.get("account"))
                        .and_then(Value::as_str);
                    if before.is_some_and(|b| b != report.account.as_str()) {
                        errors.push(FieldError::new("report.account", "cannot be changed"));
                    }
                }
                Err(e) => errors.push(FieldError::new(
                    "report",
                    format!("is not a valid credit report: {e}"),
                )),
            },
            None => errors.push(FieldError::new("report", "is required")),
        },
        other => errors.push(FieldError::new(
            "payload",
            format!(
                "tasks of kind `{other}` have no editable payload contract; retry without editing"
            ),
        )),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_effect_payload_must_stay_on_its_order_and_step() {
        let original =
            json!({"order": "ORD-1", "effect": {"type": "book_order"}, "correlation": "c-1"});
        assert!(validate("book", &original, &original).is_ok());
        let moved =
            json!({"order": "ORD-2", "effect": {"type": "book_order"}, "correlation": "c-1"});
        let errors = validate("book", &original, &moved)
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "order");
        let other_step = json!({"order": "ORD-1", "effect": {"type": "sync_order"}});
        let errors = validate("book", &original, &other_step)
            .err()
            .unwrap_or_default();
        assert!(errors[0].message.contains("sf-sync"), "{errors:?}");
        let garbage = json!({"order": "ORD-1", "effect": {"Nope": 1}, "extra": true});
        let errors = validate("book", &original, &garbage)
            .err()
            .unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["effect", "extra"]);
        assert!(validate("book", &original, &json!([1])).is_err());
    }

    #[test]
    fn an_inbound_body_must_match_the_message_contract() {
        let original = json!({"inbox_id": 7, "correlation": "api:1"});
        let bad = json!({"inbox_id": 7, "body": {"kind": "nonsense"}});
        let errors = validate("inbound", &original, &bad)
            .err()
            .unwrap_or_default();
        assert_eq!(errors[0].field, "body");
        let other_row = json!({"inbox_id": 8});
        assert!(validate("inbound", &original, &other_row).is_err());
        // The message a task carries cannot be swapped for another.
        let carried = json!({"inbox_id": 7, "source": "api", "message_id": "1"});
        let other_message = json!({"inbox_id": 7, "source": "api", "message_id": "2"});
        let errors = validate("inbound", &carried, &other_message)
            .err()
            .unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["message_id"]);
        assert!(validate("mystery", &original, &original).is_err());
    }
}
