//! Breaking-change check between two contract versions.
//!
//! Breaking for API clients:
//! - a removed path, operation, or successful (2xx) response;
//! - a removed parameter, or one that became required;
//! - a request body that became required, a new required request field, a request field no
//!   longer accepted, a narrowed request type, enum or bound;
//! - a removed or no-longer-guaranteed response field, a widened response type, a new
//!   response enum value.
//!
//! Event schemas are read like responses (consumers read them); a removed event type breaks.
//! Each finding is one line.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

/// Which side of the exchange a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Clients send it: it may only get more permissive.
    Request,
    /// Clients read it: it may only get more precise.
    Response,
}

/// Documents being compared, for `$ref` resolution.
struct Docs<'a> {
    old: &'a Value,
    new: &'a Value,
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return current;
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return current;
        };
        match doc.pointer(pointer) {
            Some(target) => current = target,
            None => return current,
        }
    }
    current
}

/// Types a schema allows (`null` included for `anyOf`/`oneOf` with a null branch); `None`
/// when it does not say.
fn types(doc: &Value, schema: &Value) -> Option<BTreeSet<String>> {
    let schema = resolve(doc, schema);
    if let Some(t) = schema.get("type") {
        return Some(match t {
            Value::String(s) => [s.clone()].into(),
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => BTreeSet::new(),
        });
    }
    let branches = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))?
        .as_array()?;
    let mut all = BTreeSet::new();
    for branch in branches {
        all.extend(types(doc, branch)?);
    }
    Some(all)
}

/// The non-null branch of a nullable union, or the schema itself.
fn main_branch<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = resolve(doc, schema);
    let branches = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(branches) = branches {
        let non_null: Vec<&Value> = branches
            .iter()
            .filter(|b| resolve(doc, b).get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let [only] = non_null.as_slice() {
            return resolve(doc, only);
        }
    }
    schema
}

fn string_set(schema: &Value, key: &str) -> Option<BTreeSet<String>> {
    schema.get(key)?.as_array().map(|items| {
        items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect()
    })
}

fn number(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn compare(
    docs: &Docs,
    old: &Value,
    new: &Value,
    at: &str,
    direction: Direction,
    depth: usize,
    out: &mut Vec<String>,
) {
    if depth > 24 {
        return;
    }
    if let (Some(old_types), Some(new_types)) = (types(docs.old, old), types(docs.new, new)) {
        let lost: Vec<_> = old_types.difference(&new_types).cloned().collect();
        let gained: Vec<_> = new_types.difference(&old_types).cloned().collect();
        let number_widened =
            |from: &BTreeSet<String>, to: &[String]| to == ["number"] && from.contains("integer");
        match direction {
            Direction::Request if !lost.is_empty() && !number_widened(&new_types, &lost) => {
                out.push(format!(
                    "{at}: request type narrowed (no longer accepts {})",
                    lost.join(", ")
                ));
            }
            Direction::Response
                if !(gained.is_empty()
                    || gained == ["integer"] && old_types.contains("number")) =>
            {
                out.push(format!(
                    "{at}: response type widened (may now be {})",
                    gained.join(", ")
                ));
            }
            _ => {}
        }
    }
    let old = main_branch(docs.old, old);
    let new = main_branch(docs.new, new);
    // Enumerations and constants.
    let old_enum = string_set(old, "enum");
    let new_enum = string_set(new, "enum");
    match (direction, &old_enum, &new_enum) {
        (Direction::Request, Some(o), Some(n)) => {
            let removed: Vec<_> = o.difference(n).cloned().collect();
            if !removed.is_empty() {
                out.push(format!(
                    "{at}: enum narrowed (no longer accepts {})",
                    removed.join(", ")
                ));
            }
        }
        (Direction::Request, None, Some(_)) => {
            out.push(format!("{at}: request values restricted to an enum"))
        }
        (Direction::Response, Some(o), Some(n)) => {
            let added: Vec<_> = n.difference(o).cloned().collect();
            if !added.is_empty() {
                out.push(format!("{at}: response enum gained {}", added.join(", ")));
            }
        }
        (Direction::Response, Some(_), None) => {
            out.push(format!("{at}: response no longer limited to an enum"))
        }
        _ => {}
    }
    if old.get("const") != new.get("const") && new.get("const").is_some() {
        out.push(format!("{at}: constant changed"));
    }
    if direction == Direction::Request {
        for (key, tighter_is_lower) in [
            ("maxLength", true),
            ("maximum", true),
            ("maxItems", true),
            ("minLength", false),
            ("minimum", false),
            ("minItems", false),
        ] {
            let narrowed = match (number(old, key), number(new, key)) {
                (None, Some(_)) => true,
                (Some(o), Some(n)) => (tighter_is_lower && n < o) || (!tighter_is_lower && n > o),
                _ => false,
            };
            if narrowed {
                out.push(format!("{at}: {key} narrowed"));
            }
        }
        if new.get("pattern").is_some() && old.get("pattern") != new.get("pattern") {
            out.push(format!("{at}: pattern changed"));
        }
    }
    // Object members.
    let empty = Map::new();
    let old_props = old
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_props = new
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let old_required = string_set(old, "required").unwrap_or_default();
    let new_required = string_set(new, "required").unwrap_or_default();
    match direction {
        Direction::Request => {
            for field in new_required.difference(&old_required) {
                out.push(format!("{at}: new required request field `{field}`"));
            }
            let closed = new.get("additionalProperties") == Some(&Value::Bool(false));
            for field in old_props.keys() {
                if !new_props.contains_key(field) && closed {
                    out.push(format!(
                        "{at}: request field `{field}` is no longer accepted"
                    ));
                }
            }
        }
        Direction::Response => {
            for field in old_props.keys() {
                if !new_props.contains_key(field) {
                    out.push(format!("{at}: removed response field `{field}`"));
                } else if old_required.contains(field) && !new_required.contains(field) {
                    out.push(format!(
                        "{at}: response field `{field}` is no longer always present"
                    ));
                }
            }
        }
    }
    for (field, old_schema) in old_props {
        if let Some(new_schema) = new_props.get(field) {
            compare(
                docs,
                old_schema,
                new_schema,
                &format!("{at}.{field}"),
                direction,
                depth + 1,
                out,
            );
        }
    }
    for key in ["items", "additionalProperties"] {
        if let (Some(o), Some(n)) = (old.get(key), new.get(key))
            && o.is_object()
            && n.is_object()
        {
            compare(docs, o, n, &format!("{at}[]"), direction, depth + 1, out);
        }
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn parameters<'a>(doc: &'a Value, item: &'a Value, operation: &'a Value) -> Vec<&'a Value> {
    item.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .map(|p| resolve(doc, p))
        .collect()
}

fn is_required(value: &Value) -> bool {
    value
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Breaking changes from `old` to `new` OpenAPI documents.
pub fn openapi(old: &Value, new: &Value) -> Vec<String> {
    let docs = Docs { old, new };
    let mut out = Vec::new();
    let empty = Map::new();
    let old_paths = old
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_paths = new
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (path, old_item) in old_paths {
        let Some(new_item) = new_paths.get(path) else {
            out.push(format!("removed path {path}"));
            continue;
        };
        for method in METHODS {
            let Some(old_op) = old_item.get(method) else {
                continue;
            };
            let name = format!("{} {path}", method.to_uppercase());
            let Some(new_op) = new_item.get(method) else {
                out.push(format!("removed operation {name}"));
                continue;
            };
            let old_params = parameters(old, old_item, old_op);
            let new_params = parameters(new, new_item, new_op);
            let key = |p: &Value| {
                (
                    p.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_lowercase(),
                    p.get("in")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                )
            };
            for old_param in &old_params {
                let (param, place) = key(old_param);
                match new_params
                    .iter()
                    .find(|p| key(p) == (param.clone(), place.clone()))
                {
                    None => out.push(format!("{name}: removed {place} parameter `{param}`")),
                    Some(new_param) => {
                        if is_required(new_param) && !is_required(old_param) {
                            out.push(format!(
                                "{name}: {place} parameter `{param}` is now required"
                            ));
                        }
                        if let (Some(o), Some(n)) =
                            (old_param.get("schema"), new_param.get("schema"))
                        {
                            compare(
                                &docs,
                                o,
                                n,
                                &format!("{name} parameter `{param}`"),
                                Direction::Request,
                                0,
                                &mut out,
                            );
                        }
                    }
                }
            }
            for new_param in &new_params {
                let (param, place) = key(new_param);
                if is_required(new_param)
                    && !old_params
                        .iter()
                        .any(|p| key(p) == (param.clone(), place.clone()))
                {
                    out.push(format!("{name}: new required {place} parameter `{param}`"));
                }
            }
            let old_body = old_op.get("requestBody").map(|b| resolve(old, b));
            let new_body = new_op.get("requestBody").map(|b| resolve(new, b));
            match (old_body, new_body) {
                (None, Some(body)) if is_required(body) => {
                    out.push(format!("{name}: a request body is now required"));
                }
                (Some(old_body), Some(new_body)) => {
                    if is_required(new_body) && !is_required(old_body) {
                        out.push(format!("{name}: the request body is now required"));
                    }
                    let old_content = old_body
                        .get("content")
                        .and_then(Value::as_object)
                        .unwrap_or(&empty);
                    let new_content = new_body
                        .get("content")
                        .and_then(Value::as_object)
                        .unwrap_or(&empty);
                    for (media, old_media) in old_content {
                        match new_content.get(media) {
                            None => {
                                out.push(format!("{name}: request body no longer accepts {media}"))
                            }
                            Some(new_media) => {
                                if let (Some(o), Some(n)) =
                                    (old_media.get("schema"), new_media.get("schema"))
                                {
                                    compare(
                                        &docs,
                                        o,
                                        n,
                                        &format!("{name} request body"),
                                        Direction::Request,
                                        0,
                                        &mut out,
                                    );
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
            let old_responses = old_op
                .get("responses")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let new_responses = new_op
                .get("responses")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            for (status, old_response) in old_responses {
                let old_response = resolve(old, old_response);
                let Some(new_response) = new_responses.get(status).map(|r| resolve(new, r)) else {
                    if status.starts_with('2') {
                        out.push(format!("{name}: removed response {status}"));
                    }
                    continue;
                };
                let old_content = old_response
                    .get("content")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                let new_content = new_response
                    .get("content")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                for (media, old_media) in old_content {
                    match new_content.get(media) {
                        None => out.push(format!(
                            "{name}: response {status} no longer returns {media}"
                        )),
                        Some(new_media) => {
                            if let (Some(o), Some(n)) =
                                (old_media.get("schema"), new_media.get("schema"))
                            {
                                compare(
                                    &docs,
                                    o,
                                    n,
                                    &format!("{name} response {status}"),
                                    Direction::Response,
                                    0,
                                    &mut out,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Breaking changes of one event schema (read like a response).
pub fn event(name: &str, old: &Value, new: &Value) -> Vec<String> {
    let docs = Docs { old, new };
    let mut out = Vec::new();
    compare(
        &docs,
        old,
        new,
        &format!("event {name}"),
        Direction::Response,
        0,
        &mut out,
    );
    out
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// A file is not JSON.
    #[error("{path} is not JSON: {error}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        error: serde_json::Error,
    },
}

fn read(path: &Path) -> Result<Value, CheckError> {
    let text = std::fs::read_to_string(path).map_err(|error| CheckError::Read {
        path: path.display().to_string(),
        error,
    })?;
    serde_json::from_str(&text).map_err(|error| CheckError::Json {
        path: path.display().to_string(),
        error,
    })
}

fn event_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, CheckError> {
    let events = dir.join("events");
    if !events.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(&events).map_err(|error| CheckError::Read {
        path: events.display().to_string(),
        error,
    })?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".schema.json")
                .map(|n| (n.to_owned(), e.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Compares two contract versions: two OpenAPI files, or two contract folders (each with
/// `openapi.json` and `events/<Type>.schema.json`). Returns the breaking changes.
///
/// # Errors
/// A file cannot be read or is not JSON.
pub fn paths(old: &Path, new: &Path) -> Result<Vec<String>, CheckError> {
    if !(old.is_dir() && new.is_dir()) {
        return Ok(openapi(&read(old)?, &read(new)?));
    }
    let mut out = Vec::new();
    let (old_api, new_api) = (old.join("openapi.json"), new.join("openapi.json"));
    if old_api.exists() {
        if new_api.exists() {
            out.extend(openapi(&read(&old_api)?, &read(&new_api)?));
        } else {
            out.push("removed the OpenAPI document".to_owned());
        }
    }
    let new_events = event_files(new)?;
    for (name, old_path) in event_files(old)? {
        match new_events.iter().find(|(n, _)| *n == name) {
            None => out.push(format!("removed event type {name}")),
            Some((_, new_path)) => out.extend(event(&name, &read(&old_path)?, &read(new_path)?)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(paths: Value, schemas: Value) -> Value {
        json!({ "openapi": "3.1.0", "paths": paths, "components": { "schemas": schemas } })
    }

    fn op(request: Option<Value>, response: Value, params: Value) -> Value {
        let mut operation = json!({
            "parameters": params,
            "responses": { "200": { "description": "ok", "content": { "application/json": { "schema": response } } } }
        });
        if let Some(schema) = request {
            operation["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
        }
        operation
    }

    fn base() -> Value {
        doc(
            json!({
                "/v1/orders": {
                    "post": op(Some(json!({ "$ref": "#/components/schemas/In" })), json!({ "$ref": "#/components/schemas/Out" }), json!([])),
                    "get": op(None, json!({ "$ref": "#/components/schemas/Out" }), json!([{ "name": "limit", "in": "query", "schema": { "type": "integer", "maximum": 200 } }])),
                },
                "/v1/inventory": { "get": op(None, json!({ "type": "object" }), json!([])) }
            }),
            json!({
                "In": { "type": "object", "required": ["account"], "additionalProperties": false, "properties": {
                    "account": { "type": "string" },
                    "channel": { "type": "string", "enum": ["b2b", "web"] },
                    "note": { "type": ["string", "null"] }
                }},
                "Out": { "type": "object", "required": ["order_id", "status"], "properties": {
                    "order_id": { "type": "string" },
                    "status": { "type": "string", "enum": ["Captured", "Booked"] },
                    "total": { "type": "string" }
                }}
            }),
        )
    }

    #[test]
    fn identical_contracts_have_no_breaking_change() {
        assert_eq!(openapi(&base(), &base()), Vec::<String>::new());
    }

    #[test]
    fn additive_changes_are_not_breaking() {
        let mut new = base();
        new["paths"]["/v1/returns"] =
            json!({ "post": op(None, json!({ "type": "object" }), json!([])) });
        new["components"]["schemas"]["In"]["properties"]["region"] = json!({ "type": "string" });
        new["components"]["schemas"]["In"]["properties"]["channel"]["enum"] =
            json!(["b2b", "web", "store"]);
        new["components"]["schemas"]["Out"]["properties"]["region"] = json!({ "type": "string" });
        new["paths"]["/v1/orders"]["get"]["parameters"][0]["schema"]["maximum"] = json!(500);
        assert_eq!(openapi(&base(), &new), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_breaking_change_is_reported_once() {
        let mut new = base();
        new["paths"]
            .as_object_mut()
            .map(|p| p.remove("/v1/inventory"));
        let schemas = &mut new["components"]["schemas"];
        schemas["In"]["required"] = json!(["account", "channel"]);
        schemas["In"]["properties"]["channel"]["enum"] = json!(["b2b"]);
        schemas["In"]["properties"]["note"]["type"] = json!("string");
        schemas["Out"]["properties"]
            .as_object_mut()
            .map(|p| p.remove("total"));
        schemas["Out"]["properties"]["status"]["enum"] = json!(["Captured", "Booked", "Shipped"]);
        new["paths"]["/v1/orders"]["get"]["parameters"] = json!([{ "name": "cursor", "in": "query", "required": true, "schema": { "type": "string" } }]);
        let found = openapi(&base(), &new);
        let expected = [
            "removed path /v1/inventory",
            "POST /v1/orders request body: new required request field `channel`",
            "POST /v1/orders request body.channel: enum narrowed (no longer accepts web)",
            "POST /v1/orders request body.note: request type narrowed (no longer accepts null)",
            "POST /v1/orders response 200: removed response field `total`",
            "POST /v1/orders response 200.status: response enum gained Shipped",
            "GET /v1/orders: removed query parameter `limit`",
            "GET /v1/orders: new required query parameter `cursor`",
        ];
        for line in expected {
            assert!(
                found.iter().any(|f| f == line),
                "missing `{line}` in {found:#?}"
            );
        }
        assert_eq!(
            found
                .iter()
                .filter(|f| f.contains("removed response field `total`"))
                .count(),
            2,
            "{found:#?}"
        );
    }

    #[test]
    fn a_removed_operation_and_response_are_breaking() {
        let mut new = base();
        new["paths"]["/v1/orders"]
            .as_object_mut()
            .map(|o| o.remove("get"));
        new["paths"]["/v1/orders"]["post"]["responses"] =
            json!({ "201": { "description": "created" } });
        let found = openapi(&base(), &new);
        assert!(
            found.contains(&"removed operation GET /v1/orders".to_owned()),
            "{found:#?}"
        );
        assert!(
            found.contains(&"POST /v1/orders: removed response 200".to_owned()),
            "{found:#?}"
        );
    }
}
