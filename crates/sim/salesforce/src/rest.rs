//! The REST data API under `/services/data/vNN.N/`: discovery, describe, sObject CRUD, upsert
//! by external id, sObject Collections, Composite and query/queryAll with cursors.
//!
//! [`dispatch`] is synchronous and runs inside one [`Txn`], so Composite can run its
//! subrequests through the very same code and roll them back together.

use serde_json::{Map, Value as Json, json};

use crate::ids;
use crate::meta::Kind;
use crate::soql;
use crate::state::{Cursor, Shared, lock};
use crate::store::{DmlError, Txn};
use crate::util::{Reply, param, parse_form, percent_decode};

/// One data API call.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP method, upper case.
    pub method: String,
    /// API version without the `v` (`60.0`).
    pub version: String,
    /// Path segments after the version, percent-decoded, empty ones dropped.
    pub segs: Vec<String>,
    /// Query-string pairs.
    pub query: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
    /// Query page size (`Sforce-Query-Options: batchSize`).
    pub batch_size: usize,
}

/// The oldest API version served.
pub const MIN_VERSION: u32 = 31;

/// Splits `/services/data/vNN.N/rest?query` into a [`Call`]. `None` when it is not a data path
/// with a served version.
pub fn parse_call(
    method: &str,
    path_and_query: &str,
    body: Vec<u8>,
    batch_size: usize,
    max_version: u32,
) -> Option<Call> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let rest = path.strip_prefix("/services/data/v")?;
    let (version, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let major: u32 = version.strip_suffix(".0")?.parse().ok()?;
    if !(MIN_VERSION..=max_version).contains(&major) {
        return None;
    }
    Some(Call {
        method: method.to_ascii_uppercase(),
        version: version.to_string(),
        segs: tail
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s, false))
            .collect(),
        query: parse_form(query),
        body,
        batch_size,
    })
}

/// The endpoint kind of a call, for usage statistics.
pub fn kind_of(call: &Call) -> &'static str {
    let s: Vec<&str> = call.segs.iter().map(String::as_str).collect();
    match (call.method.as_str(), s.as_slice()) {
        (_, []) => "resources",
        (_, ["limits"]) => "limits",
        (_, ["limits", "recordCount"]) => "record_count",
        (_, ["sobjects"]) => "describe_global",
        (_, ["sobjects", _, "describe"]) | ("GET", ["sobjects", _]) => "describe",
        ("POST", ["sobjects", ..]) => "create",
        ("GET", ["sobjects", _, _]) => "read",
        ("PATCH", ["sobjects", _, _]) => "update",
        ("DELETE", ["sobjects", ..]) => "delete",
        ("GET", ["sobjects", _, _, _]) => "read_by_external_id",
        ("PATCH", ["sobjects", _, _, _]) => "upsert",
        (_, ["query" | "queryAll"]) => "query",
        (_, ["query" | "queryAll", _]) => "query_more",
        (_, ["composite"]) => "composite",
        (_, ["composite", "sobjects", ..]) => "collections",
        _ => "other",
    }
}

fn dml_reply(e: &DmlError) -> Reply {
    let status = match e.code {
        "NOT_FOUND" | "ENTITY_IS_DELETED" => 404,
        _ => 400,
    };
    let fields = if e.fields.is_empty()
        && !matches!(
            e.code,
            "REQUIRED_FIELD_MISSING" | "INVALID_FIELD_FOR_INSERT_UPDATE"
        ) {
        None
    } else {
        Some(e.fields.as_slice())
    };
    Reply::error(status, e.code, &e.message, fields)
}

fn not_found() -> Reply {
    Reply::error(
        404,
        "NOT_FOUND",
        "The requested resource does not exist",
        None,
    )
}

/// The 15-character id when `raw` is a well-formed id of object `obj`.
fn own_id(txn: &Txn<'_>, obj: usize, raw: &str) -> Option<String> {
    let prefix = &txn.org.meta.objects[obj].key_prefix;
    ids::parse(raw).filter(|i| i.starts_with(prefix.as_str()))
}

/// Jackson's name of a JSON value's first token, as REST's parser errors show it.
fn json_token(v: &Json) -> &'static str {
    match v {
        Json::Null => "VALUE_NULL",
        Json::Bool(true) => "VALUE_TRUE",
        Json::Bool(false) => "VALUE_FALSE",
        Json::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Json::Number(_) => "VALUE_NUMBER_INT",
        Json::String(_) => "VALUE_STRING",
        Json::Array(_) => "START_ARRAY",
        Json::Object(_) => "START_OBJECT",
    }
}

/// Line and column (1-based) just after the value of top-level key `key` in a JSON object's
/// text, where REST's parser reports a value it cannot deserialize.
fn value_end(raw: &[u8], key: &str) -> (usize, usize) {
    let text = String::from_utf8_lossy(raw);
    let chars: Vec<char> = text.chars().collect();
    let (mut line, mut col) = (1, 1);
    let mut i = 0;
    let mut depth = 0usize;
    let mut expect_key = false;
    let mut last_key: Option<String> = None;
    let advance = |c: char, line: &mut usize, col: &mut usize| {
        if c == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
    };
    let mut value_start: Option<usize> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let mut j = i + 1;
            let mut s = String::new();
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                if let Some(ch) = chars.get(j) {
                    s.push(*ch);
                }
                j += 1;
            }
            for ch in &chars[i..(j + 1).min(chars.len())] {
                advance(*ch, &mut line, &mut col);
            }
            i = j + 1;
            if depth == 1 && expect_key {
                last_key = Some(s);
                expect_key = false;
                continue;
            }
            if depth == 1 && value_start.is_some() {
                return (line, col);
            }
            continue;
        }
        match c {
            '{' | '[' => {
                depth += 1;
                if depth == 1 {
                    expect_key = true;
                }
            }
            '}' | ']' => {
                if depth == 2 && value_start.is_some() {
                    advance(c, &mut line, &mut col);
                    return (line, col);
                }
                depth = depth.saturating_sub(1);
            }
            ',' if depth == 1 => expect_key = true,
            ':' if depth == 1
                && last_key
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(key)) =>
            {
                value_start = Some(i);
            }
            c if depth == 1
                && value_start.is_some()
                && !c.is_whitespace()
                && chars
                    .get(i + 1)
                    .is_none_or(|n| n.is_whitespace() || matches!(n, ',' | '}')) =>
            {
                advance(c, &mut line, &mut col);
                return (line, col);
            }
            _ => {}
        }
        advance(c, &mut line, &mut col);
        i += 1;
    }
    (line, col)
}

/// REST reports a value of the wrong JSON type in a record body as the JSON parser's error
/// (400 `JSON_PARSER_ERROR`); other DML errors keep their codes.
fn write_reply(
    txn: &Txn<'_>,
    obj: usize,
    body: &Map<String, Json>,
    raw: &[u8],
    e: &DmlError,
) -> Reply {
    if e.code != "INVALID_TYPE_ON_FIELD_IN_RECORD" {
        return dml_reply(e);
    }
    let def = &txn.org.meta.objects[obj];
    let field = e.fields.first().map(String::as_str).unwrap_or_default();
    let Some((key, value)) = body.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)) else {
        return dml_reply(e);
    };
    let ty = def.field(field).map_or("string", |f| f.ty.name());
    let shown = match value {
        Json::String(s) => s.clone(),
        Json::Array(_) => "[".into(),
        Json::Object(_) => "{".into(),
        other => other.to_string(),
    };
    let (line, col) = value_end(raw, key);
    Reply::error(
        400,
        "JSON_PARSER_ERROR",
        &format!(
            "Cannot deserialize instance of {ty} from {} value {shown} or request may be missing a required field at [line:{line}, column:{col}]",
            json_token(value)
        ),
        None,
    )
}

fn method_not_allowed(method: &str, allowed: &str) -> Reply {
    Reply::error(
        405,
        "METHOD_NOT_ALLOWED",
        &format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
        None,
    )
}

/// `JSON_PARSER_ERROR` for a body that is not JSON.
pub fn parse_json(body: &[u8]) -> Result<Json, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_eof() {
            "Unexpected end-of-input"
        } else {
            "Unexpected character"
        };
        Reply::error(
            400,
            "JSON_PARSER_ERROR",
            &format!("{what}: {e} at [line:{}, column:{}]", e.line(), e.column()),
            None,
        )
    })
}

fn parse_object(body: &[u8]) -> Result<Map<String, Json>, Reply> {
    match parse_json(body)? {
        Json::Object(m) => Ok(m),
        other => {
            let token = match other {
                Json::Array(_) => "START_ARRAY",
                Json::String(_) => "VALUE_STRING",
                Json::Number(_) => "VALUE_NUMBER_INT",
                Json::Bool(_) => "VALUE_TRUE",
                _ => "VALUE_NULL",
            };
            Err(Reply::error(
                400,
                "JSON_PARSER_ERROR",
                &format!(
                    "Cannot deserialize instance of sObject from {token} value at [line:1, column:1]"
                ),
                None,
            ))
        }
    }
}

fn lock_row_fault(shared: &Shared) -> bool {
    let mut f = lock(&shared.faults);
    let rate = f.faults.lock_row_rate;
    let hit = f.roll(rate);
    drop(f);
    if hit {
        *lock(&shared.usage)
            .faults
            .entry("UNABLE_TO_LOCK_ROW".into())
            .or_default() += 1;
    }
    hit
}

fn lock_row_error() -> DmlError {
    DmlError::new(
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record or 1 records",
    )
}

/// Runs one data call inside `txn`.
pub fn dispatch(shared: &Shared, txn: &mut Txn<'_>, call: &Call) -> Reply {
    let s: Vec<&str> = call.segs.iter().map(String::as_str).collect();
    let m = call.method.as_str();
    match s.as_slice() {
        [] => match m {
            "GET" => resources(shared, call, txn.user()),
            _ => method_not_allowed(m, "GET"),
        },
        ["limits"] => match m {
            "GET" => limits(shared),
            _ => method_not_allowed(m, "GET"),
        },
        ["limits", "recordCount"] => match m {
            "GET" => record_count(txn, call),
            _ => method_not_allowed(m, "GET"),
        },
        ["sobjects"] => match m {
            "GET" => describe_global(txn, call),
            _ => method_not_allowed(m, "GET"),
        },
        ["sobjects", t, rest @ ..] => sobjects(shared, txn, call, t, rest),
        ["query" | "queryAll"] => match m {
            "GET" => query(txn, shared, call, s[0] == "queryAll"),
            _ => method_not_allowed(m, "GET"),
        },
        ["query" | "queryAll", locator] => match m {
            "GET" => query_more(shared, call, locator),
            _ => method_not_allowed(m, "GET"),
        },
        ["composite"] => match m {
            "POST" => composite(shared, txn, call),
            _ => method_not_allowed(m, "POST"),
        },
        ["composite", "sobjects", rest @ ..] => collections(shared, txn, call, rest),
        _ => not_found(),
    }
}

fn resources(shared: &Shared, call: &Call, user15: &str) -> Reply {
    let v = &call.version;
    let p = |r: &str| format!("/services/data/v{v}/{r}");
    Reply::json(
        200,
        &json!({
            "tooling": p("tooling"), "metadata": p("metadata"), "eclair": p("eclair"),
            "folders": p("folders"), "prechatForms": p("prechatForms"), "jobs": p("jobs"),
            "analytics": p("analytics"), "search": p("search"), "connect": p("connect"),
            "composite": p("composite"), "parameterizedSearch": p("parameterizedSearch"),
            "limits": p("limits"), "query": p("query"), "queryAll": p("queryAll"),
            "recent": p("recent"), "sobjects": p("sobjects"), "actions": p("actions"),
            "uiapi": p("ui-api"), "commerce": p("commerce"),
            "identity": shared.identity_url_of(&shared.base_url, &ids::to18(user15)),
        }),
    )
}

fn limits(shared: &Shared) -> Reply {
    let (max, used) = {
        let u = lock(&shared.usage);
        (u.max, u.used)
    };
    let fixed = |max: u64| json!({"Max": max, "Remaining": max});
    Reply::json(
        200,
        &json!({
            "DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)},
            "ConcurrentAsyncGetReportInstances": fixed(200),
            "ConcurrentSyncReportRuns": fixed(20),
            "DailyAsyncApexExecutions": fixed(250_000),
            "DailyBulkApiBatches": fixed(15_000),
            "DailyBulkV2QueryFileStorageMB": fixed(976_562),
            "DailyBulkV2QueryJobs": fixed(10_000),
            "DailyDeliveredPlatformEvents": fixed(50_000),
            "DataStorageMB": fixed(5),
            "FileStorageMB": fixed(20),
            "HourlyPublishedPlatformEvents": fixed(250_000),
            "HourlyPublishedStandardVolumePlatformEvents": fixed(50_000),
            "MonthlyPlatformEventsUsageEntitlement": fixed(300_000),
            "SingleEmail": fixed(15),
        }),
    )
}

/// `GET limits/recordCount[?sObjects=A,B]`: live records per object; without `sObjects`,
/// objects without records are left out. Unknown names are ignored.
fn record_count(txn: &Txn<'_>, call: &Call) -> Reply {
    let wanted: Option<Vec<&str>> = param(&call.query, "sObjects").map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    });
    let org = &txn.org;
    let mut out = Vec::new();
    for (i, def) in org.meta.objects.iter().enumerate() {
        if def.kind != Kind::SObject
            || wanted
                .as_ref()
                .is_some_and(|w| !w.iter().any(|n| n.eq_ignore_ascii_case(&def.name)))
        {
            continue;
        }
        let deleted = def.field_index("IsDeleted").unwrap_or(usize::MAX);
        let count = org.tables[i]
            .rows
            .values()
            .filter(|r| r.get(deleted) != &crate::value::Value::Bool(true))
            .count();
        if count > 0 || wanted.is_some() {
            out.push(json!({"count": count, "name": def.name}));
        }
    }
    Reply::json(200, &json!({"sObjects": out}))
}

fn describe_global(txn: &Txn<'_>, call: &Call) -> Reply {
    let objs: Vec<Json> = txn
        .org
        .meta
        .objects
        .iter()
        .map(|o| o.describe_global(&call.version))
        .collect();
    Reply::json(
        200,
        &json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objs}),
    )
}

fn object_of(txn: &Txn<'_>, name: &str) -> Result<usize, Reply> {
    txn.org.meta.object_index(name).ok_or_else(|| {
        Reply::error(
            404,
            "NOT_FOUND",
            &format!(
                "The requested resource does not exist: sObject type '{name}' is not supported."
            ),
            None,
        )
    })
}

fn field_list(txn: &Txn<'_>, obj: usize, raw: &str) -> Result<Vec<usize>, Reply> {
    let def = &txn.org.meta.objects[obj];
    raw.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            def.field_index(f).ok_or_else(|| {
                Reply::error(400, "INVALID_FIELD", &format!("No such column '{f}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", def.name), None)
            })
        })
        .collect()
}

fn sobjects(shared: &Shared, txn: &mut Txn<'_>, call: &Call, t: &str, rest: &[&str]) -> Reply {
    let obj = match object_of(txn, t) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let m = call.method.as_str();
    let def = &txn.org.meta.objects[obj];
    let name = def.name.clone();
    let v = call.version.clone();
    match rest {
        [] => match m {
            "GET" => Reply::json(
                200,
                &json!({"objectDescribe": def.describe_global(&v), "recentItems": []}),
            ),
            "POST" => {
                if def.kind == Kind::PlatformEvent {
                    return publish_event(shared, txn, call, obj);
                }
                let body = match parse_object(&call.body) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                if lock_row_fault(shared) {
                    return dml_reply(&lock_row_error());
                }
                match txn.insert(obj, &body) {
                    Ok(id) => Reply::json(201, &json!({"id": id, "success": true, "errors": []}))
                        .with_header(
                            "Location",
                            format!("/services/data/v{v}/sobjects/{name}/{id}"),
                        ),
                    Err(e) => write_reply(txn, obj, &body, &call.body, &e),
                }
            }
            _ => method_not_allowed(m, "GET,POST"),
        },
        ["describe"] => match m {
            "GET" => {
                let children = txn.org.meta.children_of(&name);
                Reply::json(200, &txn.org.meta.objects[obj].describe(&v, children))
            }
            _ => method_not_allowed(m, "GET"),
        },
        [id] => match m {
            "GET" => read(txn, call, obj, id),
            "PATCH" => {
                if own_id(txn, obj, id).is_none() {
                    return not_found();
                }
                let body = match parse_object(&call.body) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                if lock_row_fault(shared) {
                    return dml_reply(&lock_row_error());
                }
                match txn.update(obj, id, &body) {
                    Ok(_) => Reply::empty(204),
                    Err(e) => write_reply(txn, obj, &body, &call.body, &e),
                }
            }
            "DELETE" => {
                if own_id(txn, obj, id).is_none() {
                    return not_found();
                }
                if lock_row_fault(shared) {
                    return dml_reply(&lock_row_error());
                }
                match txn.delete(obj, id) {
                    Ok(_) => Reply::empty(204),
                    Err(e) => dml_reply(&e),
                }
            }
            "POST" if id.eq_ignore_ascii_case("Id") => {
                let body = match parse_object(&call.body) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                match txn.insert(obj, &body) {
                    Ok(id) => Reply::json(
                        201,
                        &json!({"id": id, "success": true, "errors": [], "created": true}),
                    ),
                    Err(e) => write_reply(txn, obj, &body, &call.body, &e),
                }
            }
            _ => method_not_allowed(m, "GET,PATCH,DELETE"),
        },
        [field, value] => by_external_id(shared, txn, call, obj, field, value),
        _ => not_found(),
    }
}

/// `POST sobjects/<Name>__e`: publishes a platform event immediately (not rolled back).
fn publish_event(shared: &Shared, txn: &mut Txn<'_>, call: &Call, obj: usize) -> Reply {
    let body = match parse_object(&call.body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let def = txn.org.meta.objects[obj].clone();
    let mut values = Vec::new();
    for (key, json) in &body {
        if key == "attributes" {
            continue;
        }
        let Some(i) = def.field_index(key).filter(|&i| def.fields[i].custom) else {
            return Reply::error(
                400,
                "INVALID_FIELD",
                &format!("No such column '{key}' on sobject of type {}", def.name),
                None,
            );
        };
        let fd = &def.fields[i];
        match crate::value::from_json(json, fd.ty, fd.length) {
            Ok(v) => values.push((i, v)),
            Err(_) => {
                let e = DmlError::new(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    format!("{}: value not of required type: {json}", fd.label),
                )
                .with_fields(vec![fd.name.clone()]);
                return write_reply(txn, obj, &body, &call.body, &e);
            }
        }
    }
    let now = shared.clock.now_ms();
    let user = ids::to18(txn.user());
    let replay = txn
        .org
        .events
        .publish_platform_values(&def, &values, &user, now);
    let id = ids::to18(&ids::make15(&def.key_prefix, replay));
    Reply::json(201, &json!({"id": id, "success": true, "errors": []}))
}

fn read(txn: &Txn<'_>, call: &Call, obj: usize, raw_id: &str) -> Reply {
    let def = &txn.org.meta.objects[obj];
    // A path segment that is not an id of this object names no resource (REST says 404).
    let Some(id15) = own_id(txn, obj, raw_id) else {
        return not_found();
    };
    let fields = match param(&call.query, "fields") {
        Some(f) => match field_list(txn, obj, f) {
            Ok(f) => Some(f),
            Err(r) => return r,
        },
        None => None,
    };
    let Some(rec) = txn.org.tables[obj].rows.get(&id15) else {
        return not_found();
    };
    let del = def.field_index("IsDeleted").unwrap_or(usize::MAX);
    if rec.get(del) == &crate::value::Value::Bool(true) {
        return Reply::error(404, "ENTITY_IS_DELETED", "entity is deleted", None);
    }
    Reply::json(
        200,
        &txn.org
            .record_json(obj, rec, fields.as_deref(), &call.version),
    )
}

fn external_field(txn: &Txn<'_>, obj: usize, field: &str) -> Option<usize> {
    let def = &txn.org.meta.objects[obj];
    def.field_index(field)
        .filter(|&i| i == 0 || def.fields[i].external_id)
}

fn by_external_id(
    shared: &Shared,
    txn: &mut Txn<'_>,
    call: &Call,
    obj: usize,
    field: &str,
    value: &str,
) -> Reply {
    let m = call.method.as_str();
    let Some(fi) = external_field(txn, obj, field) else {
        return Reply::error(
            404,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
            None,
        );
    };
    let name = txn.org.meta.objects[obj].name.clone();
    let v = call.version.clone();
    let matches = if fi == 0 {
        ids::parse(value)
            .filter(|i| txn.org.tables[obj].rows.contains_key(i))
            .into_iter()
            .collect()
    } else {
        txn.org.by_external_id(obj, fi, value)
    };
    let urls = |ms: &[String]| {
        Json::from(
            ms.iter()
                .map(|i| format!("/services/data/v{v}/sobjects/{name}/{}", ids::to18(i)))
                .collect::<Vec<_>>(),
        )
    };
    match m {
        "GET" => match matches.as_slice() {
            [] => not_found(),
            [one] => read(txn, call, obj, one),
            many => Reply::json(300, &urls(many)),
        },
        "PATCH" => {
            let body = match parse_object(&call.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if matches.len() > 1 {
                return Reply::json(300, &urls(&matches));
            }
            if matches.is_empty() && param(&call.query, "updateOnly") == Some("true") {
                return not_found();
            }
            if fi == 0 && matches.is_empty() {
                return not_found();
            }
            if lock_row_fault(shared) {
                return dml_reply(&lock_row_error());
            }
            match txn.upsert(obj, fi, value, &body) {
                Ok((id, true)) => Reply::json(
                    201,
                    &json!({"id": id, "success": true, "errors": [], "created": true}),
                )
                .with_header(
                    "Location",
                    format!("/services/data/v{v}/sobjects/{name}/{id}"),
                ),
                Ok((id, false)) => {
                    let major: u32 = v.trim_end_matches(".0").parse().unwrap_or(0);
                    if major >= 46 {
                        Reply::json(
                            200,
                            &json!({"id": id, "success": true, "errors": [], "created": false}),
                        )
                    } else {
                        Reply::empty(204)
                    }
                }
                Err(e) if e.code == "MULTIPLE_RECORDS" => Reply::json(300, &urls(&e.fields)),
                Err(e) => dml_reply(&e),
            }
        }
        "DELETE" => match matches.as_slice() {
            [] => not_found(),
            [one] => match txn.delete(obj, one) {
                Ok(_) => Reply::empty(204),
                Err(e) => dml_reply(&e),
            },
            many => Reply::json(300, &urls(many)),
        },
        _ => method_not_allowed(m, "GET,PATCH,DELETE"),
    }
}

fn query(txn: &Txn<'_>, shared: &Shared, call: &Call, all: bool) -> Reply {
    let Some(q) = param(&call.query, "q") else {
        return Reply::error(
            400,
            "MALFORMED_QUERY",
            "A query string has to be specified",
            None,
        );
    };
    let plan = match soql::compile_at(txn.org, q, shared.clock.now_ms()) {
        Ok(p) => p,
        Err(e) => return Reply::error(400, e.code, &e.message, None),
    };
    if param(&call.query, "columns") == Some("true") {
        return Reply::json(200, &soql::columns(txn.org, &plan));
    }
    let rows = soql::run(txn.org, &plan, all, &call.version);
    let batch = call.batch_size;
    if rows.records.len() <= batch {
        return Reply::json(
            200,
            &json!({"totalSize": rows.total, "done": true, "records": rows.records}),
        );
    }
    let total = rows.total;
    let all_rows = std::sync::Arc::new(rows.records);
    let first: Vec<Json> = all_rows[..batch].to_vec();
    let locator = lock(&shared.cursors).open(Cursor {
        rows: all_rows,
        batch,
    });
    Reply::json(
        200,
        &json!({
            "totalSize": total, "done": false,
            "nextRecordsUrl": format!("/services/data/v{}/query/{locator}-{batch}", call.version),
            "records": first,
        }),
    )
}

fn query_more(shared: &Shared, call: &Call, locator: &str) -> Reply {
    let invalid = || Reply::error(400, "INVALID_QUERY_LOCATOR", "invalid query locator", None);
    let (id, offset) = match locator.rsplit_once('-') {
        Some((id, off)) => match off.parse::<usize>() {
            Ok(o) => (id, o),
            Err(_) => return invalid(),
        },
        None => (locator, 0),
    };
    let Some(cursor) = lock(&shared.cursors).open.get(id).cloned() else {
        return invalid();
    };
    if offset > cursor.rows.len() {
        return invalid();
    }
    let end = (offset + cursor.batch).min(cursor.rows.len());
    let page: Vec<Json> = cursor.rows[offset..end].to_vec();
    let mut body =
        json!({"totalSize": cursor.rows.len(), "done": end >= cursor.rows.len(), "records": page});
    if end < cursor.rows.len()
        && let Some(o) = body.as_object_mut()
    {
        o.insert(
            "nextRecordsUrl".into(),
            Json::String(format!("/services/data/v{}/query/{id}-{end}", call.version)),
        );
    }
    Reply::json(200, &body)
}

fn record_result(id: Option<String>, err: Option<&DmlError>, created: Option<bool>) -> Json {
    let mut r = json!({
        "id": id,
        "success": err.is_none(),
        "errors": err.map(|e| vec![json!({"statusCode": e.code, "message": e.message, "fields": e.fields})]).unwrap_or_default(),
    });
    if let (Some(c), Some(o)) = (created, r.as_object_mut()) {
        o.insert("created".into(), Json::Bool(c));
    }
    r
}

fn rolled_back() -> DmlError {
    DmlError::new(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
    )
}

/// Applies `op` to each record with a savepoint per record; with `all_or_none`, any failure
/// rolls every record back.
fn per_record<T, F>(
    shared: &Shared,
    txn: &mut Txn<'_>,
    items: Vec<T>,
    all_or_none: bool,
    write: bool,
    mut op: F,
) -> Vec<Result<(String, Option<bool>), DmlError>>
where
    F: FnMut(&mut Txn<'_>, T) -> Result<(String, Option<bool>), DmlError>,
{
    let start = txn.savepoint();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        if write && lock_row_fault(shared) {
            results.push(Err(lock_row_error()));
            continue;
        }
        let sp = txn.savepoint();
        let r = op(txn, item);
        if r.is_err() {
            txn.rollback_to(sp);
        }
        results.push(r);
    }
    if all_or_none && results.iter().any(Result::is_err) {
        txn.rollback_to(start);
        for r in &mut results {
            if r.is_ok() {
                *r = Err(rolled_back());
            }
        }
    }
    results
}

fn render_results(
    results: Vec<Result<(String, Option<bool>), DmlError>>,
    with_created: bool,
) -> Reply {
    let out: Vec<Json> = results
        .into_iter()
        .map(|r| match r {
            Ok((id, created)) => record_result(Some(id), None, created.filter(|_| with_created)),
            // Failed (and rolled-back) records carry `id: null`.
            Err(e) => record_result(None, Some(&e), None),
        })
        .collect();
    Reply::json(200, &Json::Array(out))
}

fn record_type(
    txn: &Txn<'_>,
    rec: &Map<String, Json>,
    id: Option<&str>,
) -> Result<usize, DmlError> {
    let named = rec
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Json::as_str);
    if let Some(t) = named {
        return txn.org.meta.object_index(t).ok_or_else(|| {
            DmlError::new(
                "INVALID_TYPE",
                format!("sObject type '{t}' is not supported."),
            )
        });
    }
    id.and_then(ids::parse)
        .and_then(|i| txn.org.meta.object_by_prefix(&i[..3]))
        .ok_or_else(|| DmlError::new("INVALID_TYPE", "Must send a concrete entity type."))
}

fn collections(shared: &Shared, txn: &mut Txn<'_>, call: &Call, rest: &[&str]) -> Reply {
    let m = call.method.as_str();
    let too_many = || {
        Reply::error(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
            None,
        )
    };
    let body_records = |body: &Map<String, Json>| -> Result<(bool, Vec<Map<String, Json>>), Reply> {
        let all = body
            .get("allOrNone")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let Some(Json::Array(list)) = body.get("records") else {
            return Err(Reply::error(
                400,
                "JSON_PARSER_ERROR",
                "The request body must have a records array",
                None,
            ));
        };
        if list.len() > 200 {
            return Err(too_many());
        }
        let mut recs = Vec::with_capacity(list.len());
        for r in list {
            match r {
                Json::Object(o) => recs.push(o.clone()),
                _ => {
                    return Err(Reply::error(
                        400,
                        "JSON_PARSER_ERROR",
                        "Cannot deserialize instance of sObject from a non-object value",
                        None,
                    ));
                }
            }
        }
        Ok((all, recs))
    };
    match (m, rest) {
        ("POST", []) => {
            let (all, recs) = match parse_object(&call.body).and_then(|b| body_records(&b)) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let results = per_record(shared, txn, recs, all, true, |txn, rec| {
                let obj = record_type(txn, &rec, None)?;
                let mut fields = rec;
                fields.remove("attributes");
                txn.insert(obj, &fields).map(|id| (id, None))
            });
            render_results(results, false)
        }
        ("PATCH", []) => {
            let (all, recs) = match parse_object(&call.body).and_then(|b| body_records(&b)) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let results = per_record(shared, txn, recs, all, true, |txn, rec| {
                let id = rec
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("id"))
                    .and_then(|(_, v)| v.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        DmlError::new("MISSING_ARGUMENT", "Id not specified in an update call")
                    })?;
                let obj = record_type(txn, &rec, Some(&id))?;
                let mut fields = rec;
                fields.remove("attributes");
                fields.retain(|k, _| !k.eq_ignore_ascii_case("id"));
                txn.update(obj, &id, &fields).map(|id| (id, None))
            });
            render_results(results, false)
        }
        ("DELETE", []) => {
            let ids_raw = param(&call.query, "ids").unwrap_or_default();
            let list: Vec<String> = ids_raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if list.len() > 200 {
                return too_many();
            }
            let all = param(&call.query, "allOrNone") == Some("true");
            let results = per_record(shared, txn, list, all, true, |txn, id| {
                let obj = ids::parse(&id)
                    .and_then(|i| txn.org.meta.object_by_prefix(&i[..3]))
                    .ok_or_else(|| DmlError::new("MALFORMED_ID", format!("malformed id {id}")))?;
                txn.delete(obj, &id).map(|id| (id, None))
            });
            render_results(results, false)
        }
        ("GET" | "POST", [t]) => {
            let obj = match object_of(txn, t) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let (id_list, fields_raw): (Vec<String>, String) = if m == "GET" {
                let ids_raw = param(&call.query, "ids").unwrap_or_default();
                (
                    ids_raw
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    param(&call.query, "fields").unwrap_or_default().to_string(),
                )
            } else {
                let body = match parse_object(&call.body) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let list = body
                    .get("ids")
                    .and_then(Json::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Json::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let fields = body
                    .get("fields")
                    .and_then(Json::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Json::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                (list, fields)
            };
            if id_list.len() > 2000 {
                return too_many();
            }
            let fields = if fields_raw.is_empty() {
                None
            } else {
                match field_list(txn, obj, &fields_raw) {
                    Ok(f) => Some(f),
                    Err(r) => return r,
                }
            };
            let def = &txn.org.meta.objects[obj];
            let del = def.field_index("IsDeleted").unwrap_or(usize::MAX);
            let out: Vec<Json> = id_list
                .iter()
                .map(|raw| {
                    ids::parse(raw)
                        .and_then(|i| txn.org.tables[obj].rows.get(&i))
                        .filter(|r| r.get(del) != &crate::value::Value::Bool(true))
                        .map_or(Json::Null, |r| {
                            txn.org
                                .record_json(obj, r, fields.as_deref(), &call.version)
                        })
                })
                .collect();
            Reply::json(200, &Json::Array(out))
        }
        ("PATCH", [t, ext]) => {
            let obj = match object_of(txn, t) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let Some(fi) = external_field(txn, obj, ext).filter(|&i| i != 0) else {
                return Reply::error(
                    404,
                    "NOT_FOUND",
                    &format!(
                        "Provided external ID field does not exist or is not accessible: {ext}"
                    ),
                    None,
                );
            };
            let field_name = txn.org.meta.objects[obj].fields[fi].name.clone();
            let (all, recs) = match parse_object(&call.body).and_then(|b| body_records(&b)) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let results = per_record(shared, txn, recs, all, true, |txn, rec| {
                let value = rec
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&field_name))
                    .map(|(_, v)| match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .filter(|v| !v.is_empty() && v != "null")
                    .ok_or_else(|| {
                        DmlError::new("MISSING_ARGUMENT", format!("{field_name} not specified"))
                            .with_fields(vec![field_name.clone()])
                    })?;
                let mut fields = rec;
                fields.remove("attributes");
                txn.upsert(obj, fi, &value, &fields)
                    .map(|(id, c)| (id, Some(c)))
            });
            render_results(results, true)
        }
        _ => method_not_allowed(m, "GET,POST,PATCH,DELETE"),
    }
}

/// Looks a `@{ref.path}` expression up in earlier results (`id`, `records[0].Id`, `a.b`).
fn lookup(results: &Map<String, Json>, expr: &str) -> Option<String> {
    let (reference, path) = expr.split_once('.')?;
    let mut cur = results.get(reference)?;
    for part in path.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = idx.strip_suffix(']')?.parse().ok()?;
            cur = cur.get(n)?;
        }
    }
    match cur {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

/// Replaces every `@{...}` in `text`; `Err(expr)` names the first unresolvable reference.
fn substitute(text: &str, results: &Map<String, Json>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let expr = &after[..end];
        out.push_str(&lookup(results, expr).ok_or_else(|| expr.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute_json(v: &Json, results: &Map<String, Json>) -> Result<Json, String> {
    Ok(match v {
        Json::String(s) => Json::String(substitute(s, results)?),
        Json::Array(a) => Json::Array(
            a.iter()
                .map(|x| substitute_json(x, results))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(o) => Json::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), substitute_json(x, results)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn halted(message: &str) -> Json {
    json!([{"errorCode": "PROCESSING_HALTED", "message": message}])
}

fn composite(shared: &Shared, txn: &mut Txn<'_>, call: &Call) -> Reply {
    let body = match parse_object(&call.body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let all_or_none = body
        .get("allOrNone")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let Some(Json::Array(subs)) = body.get("compositeRequest") else {
        return Reply::error(
            400,
            "JSON_PARSER_ERROR",
            "compositeRequest is required",
            None,
        );
    };
    if subs.len() > 25 {
        return Reply::error(
            400,
            "LIMIT_EXCEEDED",
            "Composite requests cannot have more than 25 subrequests",
            None,
        );
    }
    let mut seen = std::collections::HashSet::new();
    for s in subs {
        let r = s
            .get("referenceId")
            .and_then(Json::as_str)
            .unwrap_or_default();
        if r.is_empty()
            || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || !seen.insert(r.to_string())
        {
            return Reply::error(
                400,
                "INVALID_INPUT",
                &format!("Invalid or duplicate referenceId '{r}'"),
                None,
            );
        }
        if s.get("url").and_then(Json::as_str).is_none()
            || s.get("method").and_then(Json::as_str).is_none()
        {
            return Reply::error(
                400,
                "INVALID_INPUT",
                "Each subrequest needs method, url and referenceId",
                None,
            );
        }
    }
    let start = txn.savepoint();
    let mut results: Map<String, Json> = Map::new();
    let mut out: Vec<Json> = Vec::with_capacity(subs.len());
    let mut failed_at: Option<usize> = None;
    for (n, s) in subs.iter().enumerate() {
        let reference = s
            .get("referenceId")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let method = s
            .get("method")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_ascii_uppercase();
        let entry = |status: u16, body: Json, headers: Json| json!({"body": body, "httpHeaders": headers, "httpStatusCode": status, "referenceId": reference});
        if failed_at.is_some() && all_or_none {
            out.push(entry(400, halted("The transaction was rolled back since another operation in the same transaction failed."), json!({})));
            continue;
        }
        let url = match substitute(
            s.get("url").and_then(Json::as_str).unwrap_or_default(),
            &results,
        ) {
            Ok(u) => u,
            Err(expr) => {
                out.push(entry(400, halted(&format!("Invalid reference specified. No value for {expr} found in {reference}. Provided referenceId ('{}') was not found or the referenced subrequest failed.", expr.split('.').next().unwrap_or_default())), json!({})));
                failed_at.get_or_insert(n);
                continue;
            }
        };
        let sub_body = match s.get("body").map(|b| substitute_json(b, &results)) {
            Some(Ok(b)) => serde_json::to_vec(&b).unwrap_or_default(),
            Some(Err(expr)) => {
                out.push(entry(
                    400,
                    halted(&format!(
                        "Invalid reference specified. No value for {expr} found in {reference}."
                    )),
                    json!({}),
                ));
                failed_at.get_or_insert(n);
                continue;
            }
            None => Vec::new(),
        };
        let Some(sub) = parse_call(
            &method,
            &url,
            sub_body,
            call.batch_size,
            shared.config.max_api_version,
        ) else {
            out.push(entry(404, json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]), json!({})));
            failed_at.get_or_insert(n);
            continue;
        };
        if matches!(sub.segs.first().map(String::as_str), Some("composite")) {
            out.push(entry(400, json!([{"errorCode": "INVALID_API_INPUT", "message": "Composite subrequests cannot be composite requests"}]), json!({})));
            failed_at.get_or_insert(n);
            continue;
        }
        let sp = txn.savepoint();
        let reply = dispatch(shared, txn, &sub);
        let body_json: Json = if reply.body.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&reply.body).unwrap_or(Json::Null)
        };
        let mut headers = Map::new();
        for (k, v) in &reply.headers {
            if k == "Location" {
                headers.insert(k.clone(), Json::String(v.clone()));
            }
        }
        if reply.status >= 400 {
            txn.rollback_to(sp);
            failed_at.get_or_insert(n);
        } else {
            results.insert(reference.clone(), body_json.clone());
        }
        out.push(entry(reply.status, body_json, Json::Object(headers)));
    }
    if let (Some(fail), true) = (failed_at, all_or_none) {
        txn.rollback_to(start);
        for (n, e) in out.iter_mut().enumerate() {
            if n < fail {
                e["body"] = halted(
                    "The transaction was rolled back since another operation in the same transaction failed.",
                );
                e["httpStatusCode"] = json!(400);
                e["httpHeaders"] = json!({});
            }
        }
    }
    Reply::json(200, &json!({"compositeResponse": out}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_errors_point_just_after_the_offending_value() {
        assert_eq!(value_end(br#"{"Amount":"abc"}"#, "Amount"), (1, 16));
        assert_eq!(
            value_end(
                br#"{"Name": "x", "Credit_Limit__c": true}"#,
                "credit_limit__c"
            ),
            (1, 38)
        );
        assert_eq!(
            value_end(
                b"{\n  \"Name\": \"x\",\n  \"Flag\": [1, {\"a\": 2}]\n}",
                "Flag"
            ),
            (3, 24)
        );
        assert_eq!(value_end(br#"{"A": 12,"B":1}"#, "A"), (1, 9));
    }

    #[test]
    fn composite_references_resolve_ids_and_indexes() {
        let mut results = Map::new();
        results.insert("ord".into(), json!({"id": "801x"}));
        results.insert(
            "q".into(),
            json!({"records": [{"Id": "001a"}, {"Id": "001b"}]}),
        );
        assert_eq!(
            substitute("/x/@{ord.id}", &results),
            Ok("/x/801x".to_string())
        );
        assert_eq!(
            substitute("@{q.records[1].Id}", &results),
            Ok("001b".to_string())
        );
        assert_eq!(
            substitute("@{nope.id}", &results),
            Err("nope.id".to_string())
        );
    }

    #[test]
    fn data_paths_parse_with_optional_trailing_slashes() {
        let c = parse_call(
            "get",
            "/services/data/v59.0/sobjects/Account/?x=1",
            Vec::new(),
            2000,
            65,
        );
        assert_eq!(
            c.as_ref().map(|c| c.segs.clone()),
            Some(vec!["sobjects".to_string(), "Account".to_string()])
        );
        assert_eq!(c.map(|c| c.method), Some("GET".to_string()));
        assert!(parse_call("GET", "/services/data/v99.0/", Vec::new(), 2000, 65).is_none());
        assert!(parse_call("GET", "/services/data/vX/", Vec::new(), 2000, 65).is_none());
    }
}
