//! The simulator's own admin API under `/__sim/` (no OAuth, never counted against the API
//! limit): fault knobs, statistics, usage reset, token expiry, clock, event retention, gap
//! events, run-time schema changes, undelete and JWT keys.

use serde_json::{Value as Json, json};

use crate::auth;
use crate::cdc::{ChangeType, change_schema, schema_id};
use crate::config::Faults;
use crate::ids;
use crate::meta::{self, Kind};
use crate::state::{Shared, lock};
use crate::store::Txn;
use crate::util::Reply;

fn bad(message: &str) -> Reply {
    Reply::json(400, &json!({"error": message}))
}

fn body_json(body: &[u8]) -> Result<Json, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| bad(&format!("malformed JSON: {e}")))
}

/// Handles `/__sim/<path>`.
pub fn handle(shared: &Shared, method: &str, path: &str, body: &[u8]) -> Reply {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match (method, segs.as_slice()) {
        ("GET", ["faults"]) => Ok(faults_json(shared)),
        ("PUT" | "PATCH" | "POST", ["faults"]) => set_faults(shared, body, method == "PUT"),
        ("GET", ["stats"]) => Ok(stats(shared)),
        ("POST", ["usage", "reset"]) => {
            let mut u = lock(&shared.usage);
            u.used = 0;
            u.by_kind.clear();
            u.refused = 0;
            u.faults.clear();
            Ok(Reply::json(200, &json!({"used": 0, "max": u.max})))
        }
        ("PUT" | "POST", ["limits"]) => body_json(body).and_then(|b| {
            let max = b
                .get("daily_api_requests")
                .and_then(Json::as_u64)
                .ok_or_else(|| bad("daily_api_requests (integer) is required"))?;
            lock(&shared.usage).max = max;
            Ok(Reply::json(200, &json!({"daily_api_requests": max})))
        }),
        ("GET", ["credentials"]) => Ok(credentials(shared)),
        ("POST", ["tokens"]) => body_json(body).and_then(|b| {
            let (token, user) = match b.get("username") {
                None | Some(Json::Null) => (auth::issue_token(shared), shared.user_id18.clone()),
                Some(Json::String(name)) => {
                    auth::issue_token_for(shared, name).map_err(|e| bad(&e))?
                }
                Some(_) => return Err(bad("username must be a string")),
            };
            Ok(Reply::json(
                201,
                &json!({"access_token": token, "user_id": user}),
            ))
        }),
        ("POST", ["tokens", "refresh"]) => body_json(body).and_then(|b| {
            let user = match b.get("username") {
                None | Some(Json::Null) => shared.user_id15().to_string(),
                Some(Json::String(name)) => {
                    let now = shared.clock.now_ms();
                    lock(&shared.org)
                        .ensure_user(name, now)
                        .map_err(|e| bad(&e))?
                }
                Some(_) => return Err(bad("username must be a string")),
            };
            Ok(Reply::json(
                201,
                &json!({"refresh_token": auth::issue_refresh_token_as(shared, &user), "user_id": ids::to18(&user)}),
            ))
        }),
        ("POST", ["tokens", "expire"]) => Ok(Reply::json(
            200,
            &json!({"expired": auth::expire_all(shared)}),
        )),
        ("POST", ["clock", "advance"]) => body_json(body).and_then(|b| {
            let secs = b
                .get("secs")
                .and_then(Json::as_i64)
                .filter(|s| *s >= 0)
                .ok_or_else(|| bad("secs (non-negative integer) is required"))?;
            shared.clock.advance(secs.saturating_mul(1000));
            let now = shared.clock.now_ms();
            let expired = lock(&shared.org).events.expire(now);
            Ok(Reply::json(
                200,
                &json!({"now": crate::value::format_datetime(now), "events_expired": expired}),
            ))
        }),
        ("POST", ["events", "trim"]) => body_json(body).map(|b| {
            let upto = b.get("upto_replay_id").and_then(Json::as_u64);
            let mut org = lock(&shared.org);
            let n = org.events.trim(upto);
            Reply::json(
                200,
                &json!({"trimmed": n, "latest_replay_id": org.events.latest()}),
            )
        }),
        ("GET", ["events"]) => Ok(events(shared)),
        ("POST", ["events", "gap"]) => body_json(body).and_then(|b| gap(shared, &b)),
        ("POST", ["schema", "fields"]) => body_json(body).and_then(|b| add_field(shared, &b)),
        ("POST", ["records", id, "undelete"]) => {
            let now = shared.clock.now_ms();
            let mut org = lock(&shared.org);
            let mut txn = Txn::begin(&mut org, now, String::new());
            match txn.undelete(id) {
                Ok(id) => {
                    txn.commit();
                    Ok(Reply::json(200, &json!({"id": id, "success": true})))
                }
                Err(e) => {
                    txn.rollback();
                    Ok(Reply::json(
                        400,
                        &json!([{"errorCode": e.code, "message": e.message}]),
                    ))
                }
            }
        }
        ("POST", ["jwt", "keys"]) => {
            let pem = String::from_utf8_lossy(body).to_string();
            if !pem.contains("-----BEGIN") {
                Err(bad("body must be a PEM certificate or public key"))
            } else {
                let mut auth = lock(&shared.auth);
                auth.jwt_keys.push(pem);
                auth.revision += 1;
                Ok(Reply::json(201, &json!({"keys": auth.jwt_keys.len()})))
            }
        }
        _ => Err(Reply::json(
            404,
            &json!({"error": format!("no admin endpoint {method} /__sim/{}", segs.join("/"))}),
        )),
    };
    result.unwrap_or_else(|r| r)
}

fn faults_json(shared: &Shared) -> Reply {
    let f = lock(&shared.faults).faults.clone();
    Reply::json(200, &serde_json::to_value(f).unwrap_or(Json::Null))
}

fn set_faults(shared: &Shared, body: &[u8], replace: bool) -> Result<Reply, Reply> {
    let patch = body_json(body)?;
    let mut current = if replace {
        json!({})
    } else {
        serde_json::to_value(lock(&shared.faults).faults.clone()).unwrap_or(json!({}))
    };
    let (Some(cur), Some(p)) = (current.as_object_mut(), patch.as_object()) else {
        return Err(bad("body must be a JSON object"));
    };
    for (k, v) in p {
        cur.insert(k.clone(), v.clone());
    }
    let faults: Faults =
        serde_json::from_value(current).map_err(|e| bad(&format!("invalid faults: {e}")))?;
    faults.validate().map_err(|e| bad(&e))?;
    lock(&shared.faults).faults = faults;
    Ok(faults_json(shared))
}

fn stats(shared: &Shared) -> Reply {
    let (records, retained, latest) = {
        let org = lock(&shared.org);
        (org.counts(), org.events.events().len(), org.events.latest())
    };
    let u = lock(&shared.usage);
    Reply::json(
        200,
        &json!({
            "api_usage": {"used": u.used, "max": u.max, "refused": u.refused},
            "calls_by_kind": u.by_kind,
            "faults_injected": u.faults,
            "records": records,
            "events": {"retained": retained, "latest_replay_id": latest},
        }),
    )
}

fn credentials(shared: &Shared) -> Reply {
    let c = &shared.config.credentials;
    Reply::json(
        200,
        &json!({
            "client_id": c.client_id, "client_secret": c.client_secret,
            "username": c.username, "password": c.password, "security_token": c.security_token,
            "org_id": shared.org_id18, "user_id": shared.user_id18, "instance_url": shared.base_url,
        }),
    )
}

fn events(shared: &Shared) -> Reply {
    let org = lock(&shared.org);
    let list: Vec<Json> = org
        .events
        .events()
        .iter()
        .map(|e| json!({"replay_id": e.replay_id, "entity": e.entity, "change": e.change, "schema_id": e.schema_id, "event_id": e.event_id, "at": crate::value::format_datetime(e.at_ms)}))
        .collect();
    Reply::json(
        200,
        &json!({"latest_replay_id": org.events.latest(), "events": list}),
    )
}

fn gap(shared: &Shared, b: &Json) -> Result<Reply, Reply> {
    let object = b
        .get("object")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("object is required"))?;
    let change = b
        .get("change_type")
        .and_then(Json::as_str)
        .unwrap_or("GAP_UPDATE");
    let change_type = ChangeType::parse(change).ok_or_else(|| {
        bad("change_type must be GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE or GAP_OVERFLOW")
    })?;
    let record_ids: Vec<String> = b
        .get("record_ids")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(|s| ids::parse(s).map_or_else(|| s.to_string(), |i| ids::to18(&i)))
                .collect()
        })
        .unwrap_or_default();
    if change_type != ChangeType::GapOverflow && record_ids.is_empty() {
        return Err(bad(
            "record_ids are required for GAP_* events other than GAP_OVERFLOW",
        ));
    }
    let now = shared.clock.now_ms();
    let mut org = lock(&shared.org);
    let obj = org
        .meta
        .object_index(object)
        .filter(|&o| org.meta.objects[o].kind == Kind::SObject)
        .ok_or_else(|| bad("unknown object"))?;
    let def = org.meta.objects[obj].clone();
    let user = shared.user_id18.clone();
    let replay = org
        .events
        .publish_gap(&def, change_type, record_ids, &user, now);
    Ok(Reply::json(201, &json!({"replay_id": replay})))
}

fn add_field(shared: &Shared, b: &Json) -> Result<Reply, Reply> {
    let object = b
        .get("object")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("object is required"))?;
    let name = b
        .get("name")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("name is required"))?;
    if !name.ends_with("__c")
        || !name
            .trim_end_matches("__c")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.len() < 4
    {
        return Err(bad("name must be a custom field API name ending in __c"));
    }
    let ty = meta::parse_type(b.get("type").and_then(Json::as_str).unwrap_or("string"))
        .ok_or_else(|| bad("unknown field type"))?;
    let mut org = lock(&shared.org);
    let obj = org
        .meta
        .object_index(object)
        .ok_or_else(|| bad("unknown object"))?;
    if org.meta.objects[obj].field(name).is_some() {
        return Err(bad("field already exists"));
    }
    let mut field = meta::custom_field(name, ty);
    if b.get("external_id").and_then(Json::as_bool) == Some(true) {
        field.external_id = true;
        field.unique = true;
    }
    org.meta.objects[obj].add_field(field);
    org.touch();
    let (schema, _) = change_schema(&org.meta.objects[obj]);
    let id = org.events.register_schema(schema.clone());
    debug_assert_eq!(id, schema_id(&schema));
    Ok(Reply::json(
        201,
        &json!({"object": org.meta.objects[obj].name, "field": name, "schema_id": id}),
    ))
}
