//! The operations dashboard: server-rendered HTML under `/dashboard`, kept live with
//! server-sent events (`/dashboard/live`), a little plain JavaScript, no build step.
//!
//! Pages: health overview (ranked stuck items, per-flow status, alerts), flows (throughput and
//! answer times against targets), order trace (search by any id), failed work (dead letters
//! and refused messages with retry, edit-and-retry, close, bulk replay with a preview),
//! connected systems (connection state, queues, Salesforce API usage) and results (cycle
//! times, failures fixed automatically vs by people, stock accuracy).
//!
//! Access follows [`DashboardAccess`]: with `api_key` (the default) people sign in with an API
//! key holding `ops:read` (`ops:write` to act), kept in an HTTP-only same-site cookie; actions
//! are `POST`s that must carry `X-Crossdock-Action: 1`, which a cross-site form cannot send.
//! Every action is audited under the key's client.
//!
//! [`DashboardAccess`]: crate::ops::config::DashboardAccess

pub mod page;
pub mod views;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Extension, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossdock_domain::order::Lane as LaneName;
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ops::config::DashboardAccess;
use crate::ops::exceptions::{self, ExceptionView, Filter};
use crate::ops::{Ops, roi, trace};
use crate::problem::Problem;
use crate::state::AppState;

/// Name of the sign-in cookie.
pub const COOKIE: &str = "crossdock_key";

/// The dashboard routes (the [`Ops`] context comes from the request's extensions).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(overview))
        .route("/dashboard/flows", get(flows))
        .route("/dashboard/orders", get(order_search))
        .route("/dashboard/orders/{id}", get(order))
        .route("/dashboard/exceptions", get(exception_list))
        .route("/dashboard/exceptions/{id}", get(exception_detail))
        .route("/dashboard/replays/{id}", get(replay_report))
        .route("/dashboard/systems", get(systems))
        .route("/dashboard/roi", get(results))
        .route("/dashboard/live", get(live))
        .route("/dashboard/login", get(login_page).post(login))
        .route("/dashboard/logout", post(logout))
        .route(
            "/dashboard/actions/dead-letters/{id}/retry",
            post(action_retry),
        )
        .route(
            "/dashboard/actions/dead-letters/{id}/resolve",
            post(action_resolve),
        )
        .route("/dashboard/actions/replays", post(action_replay))
}

/// Who is looking at the dashboard.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Name recorded in the audit trail.
    pub actor: String,
    /// Whether they may act (retry, resolve, replay).
    pub can_write: bool,
    /// Shown in the header.
    pub label: String,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

async fn principal_of_key(state: &AppState, key: &str) -> Result<crate::auth::Principal, Problem> {
    let value = HeaderValue::from_str(key)
        .map_err(|_| Problem::unauthorized("the API key is malformed"))?;
    let (mut probe, ()) = axum::http::Request::new(()).into_parts();
    probe.headers.insert("x-api-key", value);
    crate::auth::authenticate(&probe, state).await
}

fn ops_of(parts: &Parts) -> Result<Ops, Response> {
    parts
        .extensions
        .get::<Ops>()
        .cloned()
        .ok_or_else(|| Problem::internal("the operations context is missing").into_response())
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ops = ops_of(parts)?;
        if ops.settings().config.dashboard_access == DashboardAccess::Open {
            return Ok(Viewer {
                actor: "dashboard".to_owned(),
                can_write: true,
                label: "open access".to_owned(),
            });
        }
        let is_page =
            parts.method == axum::http::Method::GET && !parts.uri.path().ends_with("/live");
        let deny = |problem: Problem| {
            if is_page {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/dashboard", |p| p.as_str());
                Redirect::to(&format!("/dashboard/login?next={}", page::url(next))).into_response()
            } else {
                problem.into_response()
            }
        };
        let Some(key) = cookie(&parts.headers, COOKIE) else {
            return Err(deny(Problem::unauthorized(
                "sign in to the dashboard first",
            )));
        };
        let principal = principal_of_key(state, key).await.map_err(deny)?;
        if !principal.has(Scope::OpsRead) {
            return Err(Problem::forbidden(Scope::OpsRead.as_str()).into_response());
        }
        Ok(Viewer {
            actor: Ops::actor(&principal),
            can_write: principal.has(Scope::OpsWrite),
            label: principal.client,
        })
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    partial: Option<String>,
}

fn respond(
    ops: &Ops,
    viewer: &Viewer,
    partial: bool,
    title: &str,
    active: &str,
    main: String,
) -> Response {
    if partial {
        return Html(main).into_response();
    }
    let who = if ops.settings().config.dashboard_access == DashboardAccess::Open {
        String::new()
    } else {
        format!(
            "· {} <form method=\"post\" action=\"/dashboard/logout\" style=\"display:inline\"><button style=\"padding:0 6px\">Sign out</button></form>",
            page::esc(&viewer.label)
        )
    };
    let mut response = Html(page::frame(
        title,
        active,
        &main,
        &who,
        ops.settings().config.live_refresh_ms,
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn open_dead_letters(ops: &Ops) -> Result<u64, Problem> {
    let items = ops
        .state()
        .store()
        .dead_letters(crossdock_store::DeadLetterFilter {
            status: Some(crossdock_store::DeadLetterStatus::Open),
            limit: Some(10_000),
            ..crossdock_store::DeadLetterFilter::default()
        })
        .await?;
    Ok(items.len() as u64)
}

/// Renders the overview's content (used by the page and the benchmark).
///
/// # Errors
/// When the store fails.
pub async fn render_overview(ops: &Ops) -> Result<String, Problem> {
    let report = ops.health().await?;
    let now = ops.state().engine.clock().now();
    Ok(views::overview(
        &report,
        &ops.active_alerts(),
        open_dead_letters(ops).await?,
        now,
    ))
}

async fn overview(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let main = render_overview(&ops).await?;
    Ok(respond(
        &ops,
        &viewer,
        q.partial.is_some(),
        "Business health",
        "/dashboard",
        main,
    ))
}

/// Renders the flows page's content.
///
/// # Errors
/// When the store fails.
pub async fn render_flows(ops: &Ops) -> Result<String, Problem> {
    let report = ops.health().await?;
    Ok(views::flows(
        &ops.settings().flows,
        &report,
        &ops.state().engine.metrics().snapshot(),
    ))
}

async fn flows(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let main = render_flows(&ops).await?;
    Ok(respond(
        &ops,
        &viewer,
        q.partial.is_some(),
        "Flows",
        "/dashboard/flows",
        main,
    ))
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    id: Option<String>,
    partial: Option<String>,
}

async fn order_search(
    State(state): State<AppState>,
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Response, Problem> {
    let asked = q.id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(asked) = asked
        && state.store().resolve(asked).await?.is_some()
    {
        return Ok(
            Redirect::to(&format!("/dashboard/orders/{}", page::url(asked))).into_response(),
        );
    }
    Ok(respond(
        &ops,
        &viewer,
        q.partial.is_some(),
        "Find an order",
        "/dashboard/orders",
        views::order_search(asked),
    ))
}

/// Renders an order's trace page content; `None` when no order matches.
///
/// # Errors
/// When the store fails.
pub async fn render_trace(
    ops: &Ops,
    any_id: &str,
    can_write: bool,
) -> Result<Option<String>, Problem> {
    let now = ops.state().engine.clock().now();
    Ok(trace::trace(ops.state().store(), any_id)
        .await?
        .map(|t| views::trace(&t, now, can_write)))
}

#[derive(Deserialize)]
struct IdPath {
    id: String,
}

async fn order(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiPath(path): ApiPath<IdPath>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    match render_trace(&ops, &path.id, viewer.can_write).await? {
        Some(main) => Ok(respond(
            &ops,
            &viewer,
            q.partial.is_some(),
            &format!("Order {}", path.id),
            "/dashboard/orders",
            main,
        )),
        None => {
            let mut response = respond(
                &ops,
                &viewer,
                q.partial.is_some(),
                "Find an order",
                "/dashboard/orders",
                views::order_search(Some(&path.id)),
            );
            *response.status_mut() = StatusCode::NOT_FOUND;
            Ok(response)
        }
    }
}

#[derive(Deserialize, Default)]
struct ExceptionsQuery {
    status: Option<String>,
    flow: Option<String>,
    lane: Option<String>,
    kind: Option<String>,
    class: Option<String>,
    order: Option<String>,
    partial: Option<String>,
}

impl ExceptionsQuery {
    fn filter(&self) -> Filter {
        let clean = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Filter {
            // The queue opens on what waits for someone; "Any" is an explicit empty choice.
            status: match &self.status {
                None => Some("open".to_owned()),
                some => clean(some),
            },
            flow: clean(&self.flow),
            lane: clean(&self.lane),
            kind: clean(&self.kind),
            class: clean(&self.class),
            order: clean(&self.order),
            ..Filter::default()
        }
    }
}

/// Renders the failed-work page's content.
///
/// # Errors
/// A malformed filter, or a store failure.
pub async fn render_exceptions(
    ops: &Ops,
    filter: &Filter,
    can_write: bool,
) -> Result<String, Problem> {
    let flows = &ops.settings().flows;
    let store = ops.state().store();
    let items = match exceptions::list(store, flows, filter).await {
        Ok(items) => items,
        Err(exceptions::ActionError::NotFound(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    let views_: Vec<ExceptionView> = items.iter().map(|d| ExceptionView::of(d, flows)).collect();
    let refused = exceptions::refused_messages(store, 100).await?;
    let now = ops.state().engine.clock().now();
    Ok(views::exceptions(
        &views_, filter, flows, &refused, now, can_write,
    ))
}

async fn exception_list(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<ExceptionsQuery>,
) -> Result<Response, Problem> {
    let main = render_exceptions(&ops, &q.filter(), viewer.can_write).await?;
    Ok(respond(
        &ops,
        &viewer,
        q.partial.is_some(),
        "Failed work",
        "/dashboard/exceptions",
        main,
    ))
}

#[derive(Deserialize)]
struct NumPath {
    id: i64,
}

async fn exception_detail(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiPath(path): ApiPath<NumPath>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let dead = exceptions::get(ops.state().store(), path.id).await?;
    let view = ExceptionView::of(&dead, &ops.settings().flows);
    let now = ops.state().engine.clock().now();
    let main = views::exception_detail(&view, now, viewer.can_write);
    Ok(respond(
        &ops,
        &viewer,
        q.partial.is_some(),
        &format!("Failed step {}", path.id),
        "/dashboard/exceptions",
        main,
    ))
}

async fn replay_report(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiPath(path): ApiPath<IdPath>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let report = exceptions::report(ops.state().store(), &path.id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no replay {}", path.id)))?;
    let now = ops.state().engine.clock().now();
    Ok(respond(
        &ops,
        &viewer,
        q.partial.is_some(),
        "Replay",
        "/dashboard/exceptions",
        views::replay_report(&report, now),
    ))
}

/// Renders the connected-systems page's content.
///
/// # Errors
/// When the store fails.
pub async fn render_systems(ops: &Ops) -> Result<String, Problem> {
    let engine = &ops.state().engine;
    let now = engine.clock().now();
    let depths = ops.state().store().lane_depths(now).await?;
    let lanes: Vec<_> = LaneName::ALL
        .into_iter()
        .map(|lane| {
            let runtime = engine.lane(lane);
            (
                lane.as_str().to_owned(),
                runtime.breaker(),
                runtime.is_paused(),
                depths.iter().find(|d| d.lane == lane.as_str()).cloned(),
            )
        })
        .collect();
    Ok(views::systems(
        &lanes,
        engine.salesforce().usage(),
        engine.erp().name(),
        now,
    ))
}

async fn systems(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let main = render_systems(&ops).await?;
    Ok(respond(
        &ops,
        &viewer,
        q.partial.is_some(),
        "Connected systems",
        "/dashboard/systems",
        main,
    ))
}

/// Renders the results (ROI) page's content.
///
/// # Errors
/// When the store fails.
pub async fn render_roi(ops: &Ops) -> Result<String, Problem> {
    let report = ops.health().await?;
    let follower = ops.follower().lock().await;
    let figures = roi::compute(ops.state().store(), &follower, &report).await?;
    let recent: Vec<_> = follower
        .recent_interventions()
        .map(|e| {
            (
                e.entry.at,
                e.entry.actor.clone(),
                e.entry.action.clone(),
                e.entry.target.clone(),
            )
        })
        .collect();
    drop(follower);
    Ok(views::roi(
        &figures,
        &recent,
        ops.state().engine.clock().now(),
    ))
}

async fn results(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let main = render_roi(&ops).await?;
    Ok(respond(
        &ops,
        &viewer,
        q.partial.is_some(),
        "Results",
        "/dashboard/roi",
        main,
    ))
}

/// `GET /dashboard/live`: a `tick` event every `live_refresh_ms` carrying a fingerprint of what
/// the pages show; the page reloads its content when the fingerprint changes.
async fn live(
    Extension(ops): Extension<Ops>,
    _viewer: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let every = Duration::from_millis(ops.settings().config.live_refresh_ms.max(250));
    let stream = futures::stream::unfold((ops, true), move |(ops, first)| async move {
        if !first {
            tokio::time::sleep(every).await;
        }
        let data = fingerprint(&ops).await;
        Some((Ok(Event::default().event("tick").data(data)), (ops, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn fingerprint(ops: &Ops) -> String {
    let health = ops.health().await.ok();
    let open = open_dead_letters(ops).await.unwrap_or(0);
    let engine = &ops.state().engine;
    let snapshot = engine.metrics().snapshot();
    let exceptions: Vec<(String, usize)> = health
        .as_ref()
        .map(|h| {
            h.exceptions
                .iter()
                .map(|e| (e.subject.clone(), e.rank))
                .collect()
        })
        .unwrap_or_default();
    let breakers: Vec<u8> = LaneName::ALL
        .into_iter()
        .map(|l| engine.lane(l).breaker().gauge())
        .collect();
    let text = json!({
        "exceptions": exceptions,
        "open_dead_letters": open,
        "steps": snapshot.steps_ok,
        "dead_lettered": snapshot.dead_lettered,
        "breakers": breakers,
        "alerts": ops.active_alerts().len(),
    })
    .to_string();
    // A short, stable fingerprint (FNV-1a) keeps the stream small.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(ApiQuery(q): ApiQuery<LoginQuery>) -> Html<String> {
    let next = q
        .next
        .filter(|n| n.starts_with("/dashboard") && !n.starts_with("//"))
        .unwrap_or_else(|| "/dashboard".to_owned());
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · crossdock</title>
<style>body{{font:15px system-ui,sans-serif;background:#f6f7f9;display:grid;place-items:center;height:100vh;margin:0}}
form{{background:#fff;padding:28px;border-radius:12px;border:1px solid #e3e7ec;width:380px}}input{{width:100%;padding:8px;margin:8px 0 14px;font:inherit}}
button{{padding:8px 16px;font:inherit;background:#2563eb;color:#fff;border:0;border-radius:6px}}.bad{{color:#c0392b}}</style></head>
<body><form id="f"><h2>crossdock operations</h2><label>API key (needs the ops:read scope)<input id="key" type="password" autocomplete="off" autofocus></label>
<button>Sign in</button><p id="err" class="bad"></p></form>
<script>document.getElementById('f').addEventListener('submit', async (e) => {{ e.preventDefault();
const r = await fetch('/dashboard/login', {{method:'POST', headers:{{'content-type':'application/json','x-crossdock-action':'1'}}, body: JSON.stringify({{key: document.getElementById('key').value}})}});
if (r.ok) location.href = {next}; else {{ const d = await r.json().catch(() => ({{}})); document.getElementById('err').textContent = d.detail || 'Sign-in failed'; }} }});</script></body></html>"#,
        next = serde_json::to_string(&next).unwrap_or_else(|_| "\"/dashboard\"".to_owned())
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    key: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson { value, .. }: ApiJson<LoginBody>,
) -> Result<Response, Problem> {
    require_action_header(&headers)?;
    let key = value.key.trim();
    let principal = principal_of_key(&state, key).await?;
    if !principal.has(Scope::OpsRead) {
        return Err(Problem::forbidden(Scope::OpsRead.as_str()));
    }
    let cookie =
        format!("{COOKIE}={key}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=43200");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|_| Problem::unauthorized("the API key is malformed"))?,
    );
    Ok(response)
}

async fn logout() -> Response {
    let mut response = Redirect::to("/dashboard/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "crossdock_key=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

fn require_action_header(headers: &HeaderMap) -> Result<(), Problem> {
    if headers.get("x-crossdock-action").is_some_and(|v| v == "1") {
        Ok(())
    } else {
        Err(Problem::of(
            "forbidden",
            "dashboard actions must be sent by the dashboard (header X-Crossdock-Action: 1)",
        ))
    }
}

fn require_write(viewer: &Viewer) -> Result<(), Problem> {
    if viewer.can_write {
        Ok(())
    } else {
        Err(Problem::forbidden(Scope::OpsWrite.as_str()))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    payload: Option<Value>,
}

async fn action_retry(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    headers: HeaderMap,
    ApiPath(path): ApiPath<NumPath>,
    ApiJson { value, .. }: ApiJson<RetryBody>,
) -> Result<Json<Value>, Problem> {
    require_action_header(&headers)?;
    require_write(&viewer)?;
    let task = crate::ops::routes::retry_as(&ops, path.id, value.payload, &viewer.actor).await?;
    Ok(Json(
        json!({ "dead_letter": path.id, "task": task, "status": "retried" }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    reason: String,
}

async fn action_resolve(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    headers: HeaderMap,
    ApiPath(path): ApiPath<NumPath>,
    ApiJson { value, .. }: ApiJson<ResolveBody>,
) -> Result<Json<Value>, Problem> {
    require_action_header(&headers)?;
    require_write(&viewer)?;
    let now = ops.state().engine.clock().now();
    exceptions::resolve(
        ops.state().store(),
        path.id,
        &value.reason,
        &viewer.actor,
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

async fn action_replay(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    headers: HeaderMap,
    ApiJson { value, .. }: ApiJson<ReplayBody>,
) -> Result<Json<Value>, Problem> {
    require_action_header(&headers)?;
    require_write(&viewer)?;
    Ok(Json(
        crate::ops::routes::replay_as(&ops, &value.filter, value.dry_run, &viewer.actor).await?,
    ))
}
