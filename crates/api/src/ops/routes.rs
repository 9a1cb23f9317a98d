//! `/ops` JSON endpoints. Reads need the scope `ops:read`, actions `ops:write`; every action
//! is audited with the caller's credential.
//!
//! | route | scope |
//! |---|---|
//! | `GET /ops/health` | `ops:read` |
//! | `GET /ops/orders/{id}/trace` | `ops:read` |
//! | `GET /ops/dead-letters`, `GET /ops/dead-letters/{id}` | `ops:read` |
//! | `POST /ops/dead-letters/{id}/retry` (body optional: `{"payload": …}` to edit) | `ops:write` |
//! | `POST /ops/dead-letters/{id}/resolve` (`{"reason": …}`) | `ops:write` |
//! | `POST /ops/replays` (`{"filter": …, "dry_run": true}`) | `ops:write` |
//! | `GET /ops/replays/{id}` | `ops:read` |
//! | `GET /ops/refused-messages` | `ops:read` |
//! | `POST /ops/subscribers/{name}/replay` (`{"from": N}` or `{"since": TIME}`) | `ops:write` |
//! | `GET /ops/alerts`, `GET /ops/roi` | `ops:read` |
//! | `GET /ops/cluster` (instances sharing the store, with heartbeat age) | `ops:read` |
//!
//! A key limited to accounts (`--accounts`) sees only those accounts' exceptions, traces,
//! dead letters and replayed items; anything else answers 404 as if it did not exist, refused
//! messages are not shown to it, and it replays one order of its accounts at a time
//! ([`Reach`](super::reach::Reach)).

use axum::extract::{Extension, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::exceptions::{self, ActionError, ExceptionView, Filter};
use super::reach::Reach;
use super::{Ops, alerts, replay, roi, trace};
use crate::auth::Authorized;
use crate::auth::scope::{OpsRead, OpsWrite};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::problem::{FieldError, Problem};
use crate::state::AppState;

/// The routes (the [`Ops`] context comes from the request's extensions).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ops/health", get(health))
        .route("/ops/orders/{id}/trace", get(order_trace))
        .route("/ops/dead-letters", get(dead_letters))
        .route("/ops/dead-letters/{id}", get(dead_letter))
        .route("/ops/dead-letters/{id}/retry", post(retry))
        .route("/ops/dead-letters/{id}/resolve", post(resolve))
        .route("/ops/replays", post(bulk_replay))
        .route("/ops/replays/{id}", get(replay_report))
        .route("/ops/refused-messages", get(refused))
        .route("/ops/subscribers/{name}/replay", post(subscriber_replay))
        .route("/ops/alerts", get(active_alerts))
        .route("/ops/roi", get(roi_figures))
        .route("/ops/cluster", get(cluster))
}

impl From<ActionError> for Problem {
    fn from(error: ActionError) -> Self {
        match error {
            ActionError::NotFound(detail) => Problem::not_found(detail),
            ActionError::Invalid(detail) => Problem::of("invalid-state", detail),
            ActionError::Contract(errors) => Problem::validation(errors),
            ActionError::Store(error) => error.into(),
        }
    }
}

async fn health(
    Extension(ops): Extension<Ops>,
    caller: Authorized<OpsRead>,
) -> Result<Json<Value>, Problem> {
    let report = ops.health().await?;
    let reach = Reach::of(&caller.principal);
    Ok(Json(
        serde_json::to_value(&*reach.health(&report)).unwrap_or_default(),
    ))
}

#[derive(Deserialize)]
struct IdPath {
    id: String,
}

async fn order_trace(
    State(state): State<AppState>,
    caller: Authorized<OpsRead>,
    ApiPath(path): ApiPath<IdPath>,
) -> Result<Json<trace::Trace>, Problem> {
    let reach = Reach::of(&caller.principal);
    trace::trace(state.store(), &path.id)
        .await?
        .filter(|t| reach.sees(t.account.as_deref()))
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no order {}", path.id)))
}

async fn dead_letters(
    Extension(ops): Extension<Ops>,
    caller: Authorized<OpsRead>,
    ApiQuery(filter): ApiQuery<Filter>,
) -> Result<Json<Value>, Problem> {
    let flows = &ops.settings().flows;
    let store = ops.state().store();
    let items = Reach::of(&caller.principal)
        .dead_letters(store, exceptions::list(store, flows, &filter).await?)
        .await?;
    let views: Vec<ExceptionView> = items.iter().map(|d| ExceptionView::of(d, flows)).collect();
    Ok(Json(json!({ "items": views })))
}

#[derive(Deserialize)]
struct NumPath {
    id: i64,
}

async fn dead_letter(
    Extension(ops): Extension<Ops>,
    caller: Authorized<OpsRead>,
    ApiPath(path): ApiPath<NumPath>,
) -> Result<Json<ExceptionView>, Problem> {
    let dead = Reach::of(&caller.principal)
        .dead_letter(ops.state().store(), path.id)
        .await?;
    Ok(Json(ExceptionView::of(&dead, &ops.settings().flows)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    payload: Option<Value>,
}

async fn retry(
    Extension(ops): Extension<Ops>,
    caller: Authorized<OpsWrite>,
    ApiPath(path): ApiPath<NumPath>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    let edited = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        crate::extract::parse::<RetryBody>(&body)?.payload
    };
    Reach::of(&caller.principal)
        .dead_letter(ops.state().store(), path.id)
        .await?;
    let task = retry_as(&ops, path.id, edited, &Ops::actor(&caller.principal)).await?;
    Ok(Json(
        json!({ "dead_letter": path.id, "task": task, "status": "retried" }),
    ))
}

/// Retries a dead letter and wakes its lane.
pub(crate) async fn retry_as(
    ops: &Ops,
    id: i64,
    edited: Option<Value>,
    actor: &str,
) -> Result<i64, ActionError> {
    let state = ops.state();
    let now = state.engine.clock().now();
    let dead = exceptions::get(state.store(), id).await?;
    let task = exceptions::retry(state.store(), id, edited, actor, now).await?;
    state.engine.wake(alerts::lane_of_step(&dead.task.kind));
    Ok(task)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    reason: String,
}

async fn resolve(
    Extension(ops): Extension<Ops>,
    caller: Authorized<OpsWrite>,
    ApiPath(path): ApiPath<NumPath>,
    ApiJson { value, .. }: ApiJson<ResolveBody>,
) -> Result<Json<Value>, Problem> {
    let state = ops.state();
    Reach::of(&caller.principal)
        .dead_letter(state.store(), path.id)
        .await?;
    let now = state.engine.clock().now();
    exceptions::resolve(
        state.store(),
        path.id,
        &value.reason,
        &Ops::actor(&caller.principal),
        now,
    )
    .await?;
    Ok(Json(
        json!({ "dead_letter": path.id, "status": "resolved" }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default)]
    filter: Filter,
    #[serde(default)]
    dry_run: bool,
}

async fn bulk_replay(
    Extension(ops): Extension<Ops>,
    caller: Authorized<OpsWrite>,
    ApiJson { value, .. }: ApiJson<ReplayBody>,
) -> Result<Json<Value>, Problem> {
    Reach::of(&caller.principal)
        .check_replay(ops.state().store(), &value.filter)
        .await?;
    let result = replay_as(
        &ops,
        &value.filter,
        value.dry_run,
        &Ops::actor(&caller.principal),
    )
    .await?;
    Ok(Json(result))
}

/// A bulk replay (or its dry run) as JSON.
pub(crate) async fn replay_as(
    ops: &Ops,
    filter: &Filter,
    dry_run: bool,
    actor: &str,
) -> Result<Value, ActionError> {
    let state = ops.state();
    let flows = &ops.settings().flows;
    if dry_run {
        let plan = exceptions::plan(state.store(), flows, filter).await?;
        return Ok(json!({ "dry_run": true, "would_send": plan.items.len(), "items": plan.items }));
    }
    let now = state.engine.clock().now();
    let batch = exceptions::replay(state.store(), flows, filter, actor, now).await?;
    for lane in crossdock_domain::order::Lane::ALL {
        state.engine.wake(lane);
    }
    Ok(
        json!({ "dry_run": false, "batch": batch.id, "sent": batch.items.iter().filter(|i| i.task.is_some()).count(), "items": batch.items }),
    )
}

async fn replay_report(
    State(state): State<AppState>,
    caller: Authorized<OpsRead>,
    ApiPath(path): ApiPath<IdPath>,
) -> Result<Json<exceptions::ReplayReport>, Problem> {
    let report = exceptions::report(state.store(), &path.id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no replay {}", path.id)))?;
    Ok(Json(
        Reach::of(&caller.principal)
            .replay_report(state.store(), report)
            .await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn refused(
    State(state): State<AppState>,
    caller: Authorized<OpsRead>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<Value>, Problem> {
    // Refused messages are raw input that names no account the hub has checked.
    if !Reach::of(&caller.principal).is_all() {
        return Ok(Json(json!({ "items": [] })));
    }
    let items =
        exceptions::refused_messages(state.store(), query.limit.unwrap_or(100).clamp(1, 1_000))
            .await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriberReplayBody {
    from: Option<i64>,
    since: Option<String>,
}

#[derive(Deserialize)]
struct NamePath {
    name: String,
}

async fn subscriber_replay(
    State(state): State<AppState>,
    caller: Authorized<OpsWrite>,
    ApiPath(path): ApiPath<NamePath>,
    ApiJson { value, .. }: ApiJson<SubscriberReplayBody>,
) -> Result<Json<replay::Moved>, Problem> {
    if !Reach::of(&caller.principal).is_all() {
        return Err(Problem::of(
            "forbidden",
            "a key limited to accounts cannot move a subscriber's position: it concerns every account",
        ));
    }
    let from = match (value.from, value.since) {
        (Some(position), None) => replay::From::Position(position),
        (None, Some(since)) => {
            replay::From::Since(OffsetDateTime::parse(&since, &Rfc3339).map_err(|e| {
                Problem::validation(vec![FieldError::new(
                    "since",
                    format!("is not an RFC 3339 time: {e}"),
                )])
            })?)
        }
        _ => {
            return Err(Problem::validation(vec![FieldError::new(
                "from",
                "give exactly one of `from` (a position) or `since` (a time)",
            )]));
        }
    };
    let now = state.engine.clock().now();
    let moved = replay::replay(
        state.store(),
        &path.name,
        from,
        &Ops::actor(&caller.principal),
        now,
    )
    .await?;
    Ok(Json(moved))
}

async fn active_alerts(
    Extension(ops): Extension<Ops>,
    _caller: Authorized<OpsRead>,
) -> Json<Value> {
    Json(json!({ "alerts": ops.active_alerts() }))
}

async fn roi_figures(
    Extension(ops): Extension<Ops>,
    _caller: Authorized<OpsRead>,
) -> Result<Json<roi::Roi>, Problem> {
    let report = ops.health().await?;
    let follower = ops.follower().lock().await;
    Ok(Json(
        roi::compute(ops.state().store(), &follower, &report).await?,
    ))
}

/// Every instance that holds a claim on its name in the store, by name: incarnation, start
/// time, latest heartbeat and its age in seconds (by this instance's clock).
async fn cluster(
    State(state): State<AppState>,
    _caller: Authorized<OpsRead>,
) -> Result<Json<Value>, Problem> {
    let now = state.engine.clock().now();
    let members = state.store().instances().await?;
    let format = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "incarnation": m.incarnation,
                "started_at": format(m.started_at),
                "heartbeat_at": format(m.heartbeat_at),
                "heartbeat_age_seconds": m.heartbeat_age(now).as_secs_f64(),
            })
        })
        .collect();
    Ok(Json(json!({ "members": members })))
}
