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
//! key holding `ops:read` (`ops:write` to act); the browser keeps a random session id (never
//! the key) in an HTTP-only, strictly same-site cookie, ended at sign-out or when the key is
//! revoked ([`session`]). Actions are `POST`s that must carry `X-Crossdock-Action: 1`, which a
//! cross-site form cannot send. Every action is audited under the key's client.
//!
//! Every response carries a Content-Security-Policy that allows scripts and styles from the
//! dashboard's own static files only (`/dashboard/app.js`, `/dashboard/signin.js`,
//! `/dashboard/app.css`; no inline script), forbids framing, and sets `nosniff` and a
//! same-origin referrer policy. Requests whose `Host` is neither `localhost`, an IP address
//! nor one of `ops.dashboard_hosts` are refused in every access mode (DNS rebinding). Pages
//! are rendered with `maud`, which escapes every value written into them.
//!
//! [`DashboardAccess`]: crate::ops::config::DashboardAccess

pub mod page;
pub mod session;
pub mod views;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Extension, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
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
use crate::ops::reach::Reach;
use crate::ops::{Ops, roi, trace};
use crate::problem::Problem;
use crate::state::AppState;

/// Name of the session cookie.
pub const COOKIE: &str = "crossdock_session";

/// The Content-Security-Policy of every dashboard response: scripts, styles and connections
/// to the dashboard itself only, no inline script or style, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard routes (the [`Ops`] context comes from the request's extensions).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard/app.js", get(app_js))
        .route("/dashboard/signin.js", get(signin_js))
        .route("/dashboard/app.css", get(app_css))
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
        .layer(axum::middleware::from_fn(check_host))
        .layer(axum::middleware::map_response(security_headers))
}

/// Adds the security headers to every dashboard response.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The host name of a `Host` value, without the port (IPv6 literals keep their brackets).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(name, _)| &host[..=name.len()]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether the dashboard answers to `host` (a `Host` header): `localhost`, an IP address (a
/// browser sends one only for a page opened by that address, which no DNS answer can change)
/// or one of `allowed` (a name, matching any port, or `name:port`).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim();
    let name = host_name(host);
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<std::net::Ipv4Addr>().is_ok()
        || bare
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .is_some_and(|n| n.parse::<std::net::Ipv6Addr>().is_ok())
    {
        return true;
    }
    allowed.iter().any(|a| {
        let a = a.trim();
        if a.contains(':') {
            a.eq_ignore_ascii_case(host)
        } else {
            a.eq_ignore_ascii_case(bare)
        }
    })
}

/// Refuses dashboard requests whose `Host` the hub does not answer to (in every access mode).
async fn check_host(request: Request, next: Next) -> Response {
    let allowed = request
        .extensions()
        .get::<Ops>()
        .map(|ops| ops.settings().config.dashboard_hosts.clone())
        .unwrap_or_default();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if host_allowed(&host, &allowed) => next.run(request).await,
        Some(host) => Problem::of(
            "forbidden",
            format!(
                "the dashboard does not answer to the host `{}`: open it by `localhost`, an IP address or a name listed in ops.dashboard_hosts",
                host.chars().take(100).collect::<String>()
            ),
        )
        .into_response(),
        None => Problem::of(
            "forbidden",
            "the dashboard needs a Host header naming localhost, an IP address or a name listed in ops.dashboard_hosts",
        )
        .into_response(),
    }
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", page::SCRIPT)
}

async fn signin_js() -> Response {
    asset("text/javascript; charset=utf-8", page::SIGNIN_SCRIPT)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", page::STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
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
    /// The accounts whose records they see.
    pub reach: Reach,
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
                reach: Reach::all(),
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
        let Some(id) = cookie(&parts.headers, COOKIE) else {
            return Err(deny(Problem::unauthorized(
                "sign in to the dashboard first",
            )));
        };
        let sessions = ops.sessions();
        let Some(session) = sessions.get(id, std::time::Instant::now()) else {
            return Err(deny(Problem::unauthorized(
                "the dashboard session has ended: sign in again",
            )));
        };
        let mut principal = session.principal.clone();
        if let Some(key_id) = session.key_id() {
            match state.key_record(key_id).await.map_err(deny)? {
                Some(record) if record.revoked_at.is_none() => {
                    let current = (
                        record.scopes.iter().copied().collect(),
                        record.accounts,
                        record.channels,
                    );
                    if (&principal.scopes, &principal.accounts, &principal.channels)
                        != (&current.0, &current.1, &current.2)
                    {
                        (principal.scopes, principal.accounts, principal.channels) = current;
                        sessions.update(id, principal.clone());
                    }
                }
                _ => {
                    sessions.close(id);
                    return Err(deny(Problem::unauthorized(
                        "the API key of this dashboard session was revoked: sign in again",
                    )));
                }
            }
        }
        if !principal.has(Scope::OpsRead) {
            return Err(Problem::forbidden(Scope::OpsRead.as_str()).into_response());
        }
        Ok(Viewer {
            actor: Ops::actor(&principal),
            can_write: principal.has(Scope::OpsWrite),
            reach: Reach::of(&principal),
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
    let who =
        (ops.settings().config.dashboard_access != DashboardAccess::Open).then(|| page::Who {
            label: &viewer.label,
        });
    let mut response = Html(page::frame(
        title,
        active,
        &main,
        who,
        ops.settings().config.live_refresh_ms,
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn open_dead_letters(ops: &Ops, reach: &Reach) -> Result<u64, Problem> {
    let store = ops.state().store();
    let items = store
        .dead_letters(crossdock_store::DeadLetterFilter {
            status: Some(crossdock_store::DeadLetterStatus::Open),
            limit: Some(10_000),
            ..crossdock_store::DeadLetterFilter::default()
        })
        .await?;
    Ok(reach.dead_letters(store, items).await?.len() as u64)
}

/// Renders the overview's content (used by the page and the benchmark).
///
/// # Errors
/// When the store fails.
pub async fn render_overview(ops: &Ops) -> Result<String, Problem> {
    render_overview_for(ops, &Reach::all()).await
}

/// Renders the overview's content as `reach` sees it.
///
/// # Errors
/// When the store fails.
pub async fn render_overview_for(ops: &Ops, reach: &Reach) -> Result<String, Problem> {
    let report = ops.health().await?;
    let now = ops.state().engine.clock().now();
    Ok(views::overview(
        &reach.health(&report),
        &ops.active_alerts(),
        open_dead_letters(ops, reach).await?,
        now,
    ))
}

async fn overview(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let main = render_overview_for(&ops, &viewer.reach).await?;
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
    render_flows_for(ops, &Reach::all()).await
}

/// Renders the flows page's content as `reach` sees it.
///
/// # Errors
/// When the store fails.
pub async fn render_flows_for(ops: &Ops, reach: &Reach) -> Result<String, Problem> {
    let report = ops.health().await?;
    Ok(views::flows(
        &ops.settings().flows,
        &reach.health(&report),
        &ops.state().engine.metrics().snapshot(),
    ))
}

async fn flows(
    Extension(ops): Extension<Ops>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    let main = render_flows_for(&ops, &viewer.reach).await?;
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
        && let Some(order) = state.store().resolve(asked).await?
        && viewer.reach.sees_order(state.store(), Some(&order)).await?
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
    render_trace_for(ops, any_id, can_write, &Reach::all()).await
}

/// Renders an order's trace page content as `reach` sees it; `None` when no order in reach
/// matches.
///
/// # Errors
/// When the store fails.
pub async fn render_trace_for(
    ops: &Ops,
    any_id: &str,
    can_write: bool,
    reach: &Reach,
) -> Result<Option<String>, Problem> {
    let now = ops.state().engine.clock().now();
    Ok(trace::trace(ops.state().store(), any_id)
        .await?
        .filter(|t| reach.sees(t.account.as_deref()))
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
    match render_trace_for(&ops, &path.id, viewer.can_write, &viewer.reach).await? {
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
    render_exceptions_for(ops, filter, can_write, &Reach::all()).await
}

/// Renders the failed-work page's content as `reach` sees it (refused messages, which name
/// no checked account, only with every account in reach).
///
/// # Errors
/// A malformed filter, or a store failure.
pub async fn render_exceptions_for(
    ops: &Ops,
    filter: &Filter,
    can_write: bool,
    reach: &Reach,
) -> Result<String, Problem> {
    let flows = &ops.settings().flows;
    let store = ops.state().store();
    let items = match exceptions::list(store, flows, filter).await {
        Ok(items) => reach.dead_letters(store, items).await?,
        Err(exceptions::ActionError::NotFound(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    let views_: Vec<ExceptionView> = items.iter().map(|d| ExceptionView::of(d, flows)).collect();
    let refused = if reach.is_all() {
        exceptions::refused_messages(store, 100).await?
    } else {
        Vec::new()
    };
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
    let main = render_exceptions_for(&ops, &q.filter(), viewer.can_write, &viewer.reach).await?;
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
    let dead = viewer
        .reach
        .dead_letter(ops.state().store(), path.id)
        .await?;
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
    let report = viewer
        .reach
        .replay_report(ops.state().store(), report)
        .await?;
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
    render_roi_for(ops, &Reach::all()).await
}

/// Renders the results page's content as `reach` sees it: the figures are hub-wide, the
/// list of recent manual interventions (which names other clients' work) only with every
/// account in reach.
///
/// # Errors
/// When the store fails.
pub async fn render_roi_for(ops: &Ops, reach: &Reach) -> Result<String, Problem> {
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
        .filter(|_| reach.is_all())
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
    let main = render_roi_for(&ops, &viewer.reach).await?;
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
    viewer: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let every = Duration::from_millis(ops.settings().config.live_refresh_ms.max(250));
    let reach = viewer.reach;
    let stream = futures::stream::unfold((ops, true), move |(ops, first)| {
        let reach = reach.clone();
        async move {
            if !first {
                tokio::time::sleep(every).await;
            }
            let data = fingerprint(&ops, &reach).await;
            Some((Ok(Event::default().event("tick").data(data)), (ops, false)))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// What the pages show, as `reach` sees it (a change elsewhere does not refresh its pages).
async fn fingerprint(ops: &Ops, reach: &Reach) -> String {
    let report = ops.health().await.ok();
    let health = report.as_deref().map(|h| reach.health(h));
    let open = open_dead_letters(ops, reach).await.unwrap_or(0);
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

/// Where a sign-in may lead: a path under `/dashboard` of this site (no `//`, no backslash, no
/// scheme, no control characters or spaces); anything else leads to `/dashboard`.
pub fn safe_next(next: Option<&str>) -> &str {
    const HOME: &str = "/dashboard";
    let Some(next) = next else {
        return HOME;
    };
    let under = next
        .strip_prefix(HOME)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']));
    let clean = next.len() <= 2_000
        && !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if under && clean { next } else { HOME }
}

async fn login_page(ApiQuery(q): ApiQuery<LoginQuery>) -> Response {
    let mut response = Html(page::signin(safe_next(q.next.as_deref()))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    key: String,
}

/// The attributes of the session cookie: `Secure` when configured, or when the sign-in came
/// from a page served over HTTPS (the browser's `Origin`).
fn cookie_attributes(ops: &Ops, headers: &HeaderMap) -> &'static str {
    let https = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    if ops.settings().config.secure_cookies || https {
        "Path=/dashboard; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/dashboard; HttpOnly; SameSite=Strict"
    }
}

/// Signs in. Failed sign-ins count against the address's budget of failed authentications,
/// as on the API.
async fn login(
    State(state): State<AppState>,
    Extension(ops): Extension<Ops>,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    ApiJson { value, .. }: ApiJson<LoginBody>,
) -> Result<Response, Problem> {
    require_action_header(&headers)?;
    let address = peer.map(|Extension(info)| info.0.ip());
    let key = value.key.trim();
    let attempt = async {
        if key.starts_with(crate::auth::keys::PREFIX) {
            principal_of_key(&state, key).await
        } else {
            Err(Problem::unauthorized(format!(
                "sign in with an API key (it starts with `{}`)",
                crate::auth::keys::PREFIX
            )))
        }
    };
    let principal = crate::auth::throttled(&state, address, attempt).await?;
    if !principal.has(Scope::OpsRead) {
        return Err(Problem::forbidden(Scope::OpsRead.as_str()));
    }
    let id = ops
        .sessions()
        .open(principal, std::time::Instant::now())
        .ok_or_else(|| Problem::internal("no randomness for a session id"))?;
    let cookie = format!(
        "{COOKIE}={id}; {}; Max-Age={}",
        cookie_attributes(&ops, &headers),
        session::LIFETIME.as_secs()
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| Problem::internal("a malformed cookie"))?,
    );
    Ok(response)
}

/// Ends the session (the old cookie no longer works, even if a copy of it is kept).
async fn logout(Extension(ops): Extension<Ops>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        ops.sessions().close(id);
    }
    let mut response = Redirect::to("/dashboard/login").into_response();
    let cleared = format!(
        "{COOKIE}=; {}; Max-Age=0",
        cookie_attributes(&ops, &headers)
    );
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
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
    viewer
        .reach
        .dead_letter(ops.state().store(), path.id)
        .await?;
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
    viewer
        .reach
        .dead_letter(ops.state().store(), path.id)
        .await?;
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
    viewer
        .reach
        .check_replay(ops.state().store(), &value.filter)
        .await?;
    Ok(Json(
        crate::ops::routes::replay_as(&ops, &value.filter, value.dry_run, &viewer.actor).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_leads_only_to_dashboard_paths_of_this_site() {
        for good in [
            "/dashboard",
            "/dashboard/orders/SO-1?partial=1",
            "/dashboard?x=1",
            "/dashboard/x\"><b>",
        ] {
            assert_eq!(safe_next(Some(good)), good, "{good}");
        }
        for bad in [
            "//evil.example/dashboard",
            "/dashboard//evil.example",
            "/dashboard\\..\\x",
            "https://evil.example/dashboard",
            "javascript:alert(1)",
            "/dashboard</script><script>window.pwned=1</script>",
            "/dashboardx",
            "/dashboard/a b",
            "/dashboard/\u{0}",
            "/dashboard/\n",
            "/ops/health",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/dashboard", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/dashboard");
    }

    #[test]
    fn the_sign_in_page_writes_next_into_an_attribute_escaped() {
        let html = page::signin("/dashboard/x\"><script>window.pwned=1</script>");
        assert!(!html.contains("<script>window"), "{html}");
        assert!(
            html.contains("data-next=\"/dashboard/x&quot;&gt;&lt;script&gt;"),
            "{html}"
        );
        assert!(
            !html.contains("<script>"),
            "no inline script at all: {html}"
        );
        assert!(html.contains("<script src=\"/dashboard/signin.js\"></script>"));
    }

    #[test]
    fn the_frame_has_no_inline_script_or_style_and_escapes_the_viewer() {
        let html = page::frame(
            "T<i>",
            "/dashboard",
            "<p>main</p>",
            Some(page::Who {
                label: "<img src=x onerror=alert(1)>",
            }),
            500,
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<title>T&lt;i&gt; · crossdock</title>"),
            "{html}"
        );
        assert!(html.contains("<p>main</p>"));
        assert!(
            !html.contains("<script>") && !html.contains("<style"),
            "{html}"
        );
        assert!(!html.contains(" style="), "{html}");
    }

    #[test]
    fn hosts_are_localhost_ip_addresses_or_configured_names() {
        let allowed = vec![
            "hub.example.com".to_owned(),
            "ops.example.com:8443".to_owned(),
        ];
        for good in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:3000",
            "10.1.2.3",
            "[::1]:8080",
            "[::1]",
            "hub.example.com",
            "Hub.Example.com:80",
            "ops.example.com:8443",
        ] {
            assert!(host_allowed(good, &allowed), "{good}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "ops.example.com:8080",
            "hub.example.com.evil.example",
            "[::1",
            "",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
