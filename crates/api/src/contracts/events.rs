//! Event contracts: each order event type as a CloudEvents 1.0 envelope whose `data` is the
//! event's payload, described by a JSON Schema (draft 2020-12), and the function that wraps a
//! stored event in that envelope.
//!
//! Money amounts are decimal strings, times RFC 3339, per-line quantities objects keyed by
//! line number. Payload objects refuse unknown members, so a change of the domain model shows
//! up as a contract change (the committed schemas are tested against real events).

use crossdock_store::StoredEvent;
use serde_json::{Map, Value, json};

/// CloudEvents `type` prefix.
pub const TYPE_PREFIX: &str = "dev.crossdock.order.";

/// CloudEvents `source` of the hub's events.
pub const SOURCE: &str = "/crossdock/orders";

fn string() -> Value {
    json!({ "type": "string" })
}

fn id() -> Value {
    json!({ "type": "string", "minLength": 1 })
}

fn money() -> Value {
    json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$" })
}

fn datetime() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn uint() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

fn enumeration(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// Units per line: `{"1": 2, "3": 1}`.
fn line_map() -> Value {
    json!({
        "type": "object",
        "propertyNames": { "pattern": "^[0-9]+$" },
        "additionalProperties": { "type": "integer", "minimum": 0 }
    })
}

/// An object with required and optional members and nothing else.
fn object(required: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let mut properties = Map::new();
    for (name, schema) in required.iter().chain(optional) {
        properties.insert((*name).to_owned(), schema.clone());
    }
    json!({
        "type": "object",
        "required": required.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "properties": properties,
        "additionalProperties": false,
    })
}

fn refs() -> Value {
    object(
        &[],
        &[
            ("sf_id", string()),
            ("sf_number", string()),
            ("erp_ref", string()),
        ],
    )
}

fn system() -> Value {
    enumeration(&["salesforce", "erp", "hub", "api"])
}

fn date() -> Value {
    // `time::Date` as serialized by the domain: `YYYY-MM-DD`, or `[year, ordinal day]` in its
    // compact form.
    json!({
        "anyOf": [
            { "type": "string", "format": "date" },
            { "type": "array", "prefixItems": [{ "type": "integer" }, { "type": "integer" }], "items": false, "minItems": 2 }
        ]
    })
}

fn draft() -> Value {
    object(
        &[
            ("id", id()),
            ("refs", refs()),
            ("account", id()),
            (
                "channel",
                enumeration(&["b2b", "web", "marketplace", "store"]),
            ),
            (
                "currency",
                json!({ "type": "string", "pattern": "^[A-Z]{3}$" }),
            ),
            (
                "lines",
                array(object(
                    &[
                        ("line", uint()),
                        ("sku", id()),
                        ("quantity", uint()),
                        ("unit_price", money()),
                    ],
                    &[("sf_id", string())],
                )),
            ),
            ("source", system()),
            ("captured_at", datetime()),
        ],
        &[("region", string())],
    )
}

fn validation() -> Value {
    object(
        &[
            (
                "fulfilment",
                object(
                    &[
                        (
                            "method",
                            enumeration(&[
                                "ship_from_warehouse",
                                "split_shipment",
                                "ship_from_store",
                                "pickup_in_store",
                            ]),
                        ),
                        ("locations", array(id())),
                        ("promised_date", nullable(date())),
                    ],
                    &[],
                ),
            ),
            (
                "checks",
                array(object(
                    &[
                        (
                            "check",
                            enumeration(&["price", "inventory", "credit", "fulfilment"]),
                        ),
                        ("passed", boolean()),
                        ("detail", string()),
                    ],
                    &[],
                )),
            ),
            ("backorder_expected", boolean()),
            ("at", datetime()),
        ],
        &[],
    )
}

/// The schema of an event type's `data`; `None` for an unknown type.
pub fn data_schema(name: &str) -> Option<Value> {
    let at = || ("at", datetime());
    Some(match name {
        "OrderCaptured" => draft(),
        "OrderValidated" => validation(),
        "OrderRejected" => object(&[("by", system()), ("reasons", array(string())), at()], &[]),
        "OrderBooked" => object(&[("erp_ref", id()), at()], &[]),
        "LineAllocated" => object(
            &[
                ("line", uint()),
                ("location", id()),
                ("quantity", uint()),
                at(),
            ],
            &[],
        ),
        "LineBackordered" => object(&[("line", uint()), ("quantity", uint()), at()], &[]),
        "ShipmentProgressed" => object(
            &[
                ("shipment", id()),
                ("location", nullable(id())),
                ("lines", line_map()),
                (
                    "milestone",
                    enumeration(&["picked", "packed", "shipped", "delivered"]),
                ),
                ("carrier", nullable(string())),
                ("tracking", nullable(string())),
                at(),
            ],
            &[],
        ),
        "InvoiceIssued" => object(
            &[
                ("invoice", id()),
                (
                    "facts",
                    object(
                        &[
                            ("number", string()),
                            ("lines", line_map()),
                            ("net", money()),
                            ("tax", money()),
                            ("total", money()),
                            ("issued_at", datetime()),
                        ],
                        &[],
                    ),
                ),
            ],
            &[],
        ),
        "PaymentReceived" => object(
            &[
                ("payment", id()),
                (
                    "facts",
                    object(
                        &[
                            ("invoice", nullable(id())),
                            ("amount", money()),
                            ("received_at", datetime()),
                        ],
                        &[],
                    ),
                ),
            ],
            &[],
        ),
        "OrderCancelled" => object(&[("by", system()), ("reason", string()), at()], &[]),
        "OrderClosed" => object(&[at()], &[]),
        "ReturnRequested" => object(
            &[
                ("rma", id()),
                (
                    "request",
                    object(
                        &[
                            ("case", refs()),
                            ("lines", line_map()),
                            ("reason", string()),
                            at(),
                        ],
                        &[],
                    ),
                ),
            ],
            &[],
        ),
        "ReturnAuthorised" => object(
            &[
                ("rma", id()),
                ("authorisation", object(&[("erp_ref", id()), at()], &[])),
            ],
            &[],
        ),
        "ReturnRefused" => object(
            &[
                ("rma", id()),
                ("refusal", object(&[("reason", string()), at()], &[])),
            ],
            &[],
        ),
        "ReturnReceived" => object(
            &[
                ("rma", id()),
                ("receipt", id()),
                ("facts", object(&[("lines", line_map()), at()], &[])),
            ],
            &[],
        ),
        "CreditMemoIssued" => object(
            &[
                ("rma", id()),
                ("credit_memo", id()),
                (
                    "facts",
                    object(&[("number", string()), ("amount", money()), at()], &[]),
                ),
            ],
            &[],
        ),
        "RefundIssued" => object(
            &[
                ("rma", id()),
                ("refund", id()),
                (
                    "facts",
                    object(&[("credit_memo", id()), ("amount", money()), at()], &[]),
                ),
            ],
            &[],
        ),
        "ReturnClosed" => object(&[("rma", id()), at()], &[]),
        _ => return None,
    })
}

/// The full schema of an event type: the CloudEvents envelope with its `data`.
pub fn schema(name: &str) -> Value {
    let data = data_schema(name).unwrap_or(Value::Bool(false));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://crossdock.dev/contracts/events/{name}.schema.json"),
        "title": name,
        "description": format!("The order event {name} as a CloudEvents 1.0 message (structured JSON mode)."),
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"],
        "properties": {
            "specversion": { "const": "1.0" },
            "id": { "type": "string", "minLength": 1, "description": "Global sequence number of the event (unique, increasing)" },
            "source": { "type": "string", "minLength": 1 },
            "type": { "const": format!("{TYPE_PREFIX}{name}") },
            "subject": { "type": "string", "minLength": 1, "description": "Order id" },
            "time": { "type": "string", "format": "date-time" },
            "datacontenttype": { "const": "application/json" },
            "dataschema": { "type": "string" },
            "sequence": { "type": "integer", "minimum": 1, "description": "Version of the event in the order's stream" },
            "correlationid": { "type": "string" },
            "data": data,
        },
    })
}

/// A stored order event as a CloudEvents 1.0 message. The payload's `data` member (the
/// domain's serialized form is `{"type": …, "data": …}`) becomes the envelope's `data`.
pub fn to_cloud_event(event: &StoredEvent) -> Value {
    let data = event
        .payload
        .get("data")
        .cloned()
        .unwrap_or_else(|| event.payload.clone());
    let subject = event
        .stream
        .strip_prefix("order:")
        .unwrap_or(&event.stream)
        .to_owned();
    let mut envelope = json!({
        "specversion": "1.0",
        "id": event.global_seq.to_string(),
        "source": SOURCE,
        "type": format!("{TYPE_PREFIX}{}", event.kind),
        "subject": subject,
        "time": crate::views::rfc3339(event.occurred_at),
        "datacontenttype": "application/json",
        "dataschema": format!("https://crossdock.dev/contracts/events/{}.schema.json", event.kind),
        "sequence": event.version,
        "data": data,
    });
    if let Some(correlation) = &event.correlation {
        envelope["correlationid"] = json!(correlation);
    }
    envelope
}
