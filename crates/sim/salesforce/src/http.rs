//! The HTTPS (and optional plain HTTP) listener: routes OAuth, identity, SOAP login, the REST
//! data API and the admin API; applies sessions, the daily API limit and fault injection.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::{Shared, lock};
use crate::store::Txn;
use crate::util::Reply;
use crate::{admin, auth, rest};

/// Largest request body accepted (Salesforce's REST limit is about 50 MB).
const MAX_BODY: usize = 52_428_800;

/// Per-listener state: the shared org and this listener's base URL.
#[derive(Clone)]
pub struct App {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// `scheme://host:port` of this listener.
    pub base: Arc<str>,
}

/// The router of one listener.
pub fn router(app: App) -> axum::Router {
    let shared = app.shared.clone();
    axum::Router::new()
        .fallback(entry)
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(
            shared,
            crate::persist::durable_answers,
        ))
}

fn to_response(reply: Reply) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in &reply.headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            builder = builder.header(k.as_str(), v);
        }
    }
    builder.body(Body::from(reply.body)).unwrap_or_default()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(h: &HeaderMap) -> Option<String> {
    header(h, "authorization")
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("OAuth "))
                .or_else(|| a.strip_prefix("bearer "))
        })
        .or_else(|| header(h, "x-sfdc-session"))
        .map(|t| t.trim().to_string())
}

fn versions(shared: &Shared) -> Reply {
    let seasons = ["Winter", "Spring", "Summer"];
    let list: Vec<serde_json::Value> = (rest::MIN_VERSION..=shared.config.max_api_version)
        .map(|v| {
            let k = i64::from(v) - 65;
            let season = seasons[usize::try_from(k.rem_euclid(3)).unwrap_or(0)];
            let year = 26 + k.div_euclid(3);
            json!({"label": format!("{season} '{year:02}"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")})
        })
        .collect();
    Reply::json(200, &serde_json::Value::Array(list))
}

/// Why a request body could not be read.
enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

/// Reads a whole body, at most [`MAX_BODY`] bytes, waiting at most `idle` for each part of it:
/// a body shorter than its `Content-Length` ends in [`BodyError::TimedOut`] instead of holding
/// the connection forever.
async fn read_body(body: Body, idle: Duration) -> Result<Vec<u8>, BodyError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut out = Vec::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => return Ok(out),
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_BODY {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
}

async fn entry(State(app): State<App>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let idle = Duration::from_millis(app.shared.config.read_timeout_ms.max(1));
    let bytes = match read_body(body, idle).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return to_response(Reply::error(
                413,
                "REQUEST_ENTITY_TOO_LARGE",
                &format!("Request body is larger than {MAX_BODY} bytes"),
                None,
            ));
        }
        Err(BodyError::TimedOut) => {
            return to_response(
                Reply::error(
                    408,
                    "REQUEST_TIMEOUT",
                    "The request body was not received in time",
                    None,
                )
                .with_header("Connection", "close".into()),
            );
        }
        Err(BodyError::Broken) => {
            return to_response(Reply::error(
                400,
                "JSON_PARSER_ERROR",
                "The request body could not be read",
                None,
            ));
        }
    };
    let method = parts.method.as_str().to_ascii_uppercase();
    let path = parts.uri.path().to_string();
    let pq = parts
        .uri
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_string());
    let shared = &app.shared;
    let base = &*app.base;
    let trimmed = path.trim_end_matches('/');
    let reply = if let Some(admin_path) = path.strip_prefix("/__sim/") {
        admin::handle(shared, &method, admin_path, &bytes)
    } else if trimmed == "/services/oauth2/token" {
        if method == "POST" {
            auth::token_endpoint(
                shared,
                base,
                header(&parts.headers, "authorization"),
                &bytes,
            )
        } else {
            Reply::error(
                405,
                "METHOD_NOT_ALLOWED",
                "HTTP Method not allowed. Allowed are POST",
                None,
            )
        }
    } else if trimmed == "/services/oauth2/userinfo" {
        match bearer(&parts.headers).and_then(|t| auth::session_user(shared, &t)) {
            Some(user) => auth::userinfo(shared, base, &user),
            None => Reply::json(403, &json!({"error": "Bad_OAuth_Token"})),
        }
    } else if trimmed == "/services/oauth2/revoke" {
        Reply::empty(200)
    } else if path.starts_with("/id/") {
        let q = crate::util::parse_form(parts.uri.query().unwrap_or_default());
        let token = bearer(&parts.headers)
            .or_else(|| crate::util::param(&q, "oauth_token").map(str::to_string));
        match token.and_then(|t| auth::session_user(shared, &t)) {
            Some(user) => auth::identity(shared, base, &user),
            None => Reply::json(403, &json!({"error": "Bad_OAuth_Token"})),
        }
    } else if let Some(ver) = path.strip_prefix("/services/Soap/u/") {
        let version = ver.split('/').next().unwrap_or("59.0").to_string();
        auth::soap_login(shared, base, &version, &bytes)
    } else if trimmed == "/services/data" {
        versions(shared)
    } else if path.starts_with("/services/data/") {
        data(&app, &method, &pq, &parts.headers, bytes).await
    } else {
        Reply::error(
            404,
            "NOT_FOUND",
            "The requested resource does not exist",
            None,
        )
    };
    to_response(reply)
}

fn batch_size(h: &HeaderMap) -> usize {
    header(h, "sforce-query-options")
        .and_then(|v| {
            v.split(',')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(2000, |n| n.clamp(200, 2000))
}

fn change_origin(h: &HeaderMap, version: &str) -> String {
    let client = header(h, "sforce-call-options").and_then(|v| {
        v.split(',')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim() == "client")
            .map(|(_, c)| c.trim().to_string())
    });
    match client {
        Some(c) => format!("com/salesforce/api/rest/{version};client={c}"),
        None => format!("com/salesforce/api/rest/{version}"),
    }
}

async fn data(app: &App, method: &str, pq: &str, headers: &HeaderMap, body: Vec<u8>) -> Reply {
    let shared = &app.shared;
    let with_limits = |r: Reply| {
        let info = shared.limit_info();
        r.with_header("Sforce-Limit-Info", info)
    };
    let Some(user) = bearer(headers).and_then(|t| auth::session_user(shared, &t)) else {
        return with_limits(Reply::error(
            401,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
            None,
        ));
    };
    let Some(call) = rest::parse_call(
        method,
        pq,
        body,
        batch_size(headers),
        shared.config.max_api_version,
    ) else {
        return with_limits(Reply::error(
            404,
            "NOT_FOUND",
            "The requested resource does not exist",
            None,
        ));
    };
    let kind = rest::kind_of(&call);
    {
        let mut u = lock(&shared.usage);
        if u.used >= u.max {
            u.refused += 1;
            drop(u);
            return with_limits(Reply::error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                None,
            ));
        }
        u.used += 1;
        *u.by_kind.entry(kind.to_string()).or_default() += 1;
    }
    let (fault, latency_ms) = {
        let mut f = lock(&shared.faults);
        let knobs = f.faults.clone();
        let jitter = f.below(knobs.latency_jitter_ms.saturating_add(1));
        let fault = if f.roll(knobs.throttle_rate) {
            Some(
                Reply::error(
                    429,
                    "REQUEST_LIMIT_EXCEEDED",
                    &format!(
                        "Too many requests. Retry after {} seconds.",
                        knobs.retry_after_secs
                    ),
                    None,
                )
                .with_header("Retry-After", knobs.retry_after_secs.to_string()),
            )
        } else if f.roll(knobs.server_error_rate) {
            Some(if f.below(2) == 0 {
                Reply::error(
                    503,
                    "SERVER_UNAVAILABLE",
                    "Server temporarily unavailable. Please try again.",
                    None,
                )
            } else {
                Reply::error(
                    500,
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)",
                    None,
                )
            })
        } else {
            None
        };
        (fault, knobs.latency_ms.saturating_add(jitter))
    };
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    if let Some(f) = fault {
        let code = match f.status {
            429 => "429",
            503 => "SERVER_UNAVAILABLE",
            _ => "UNKNOWN_EXCEPTION",
        };
        *lock(&shared.usage).faults.entry(code.into()).or_default() += 1;
        return with_limits(f);
    }
    let origin = change_origin(headers, &call.version);
    let now = shared.clock.now_ms();
    let reply = {
        let mut org = lock(&shared.org);
        let mut txn = Txn::begin(&mut org, now, origin).as_user(&user);
        let reply = rest::dispatch(shared, &mut txn, &call);
        if reply.status < 400 {
            txn.commit();
        } else {
            txn.rollback();
        }
        reply
    };
    with_limits(reply)
}

/// Accepts connections until `shutdown`, wrapping them in TLS when `tls` is set.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: App,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let read_timeout = Duration::from_millis(app.shared.config.read_timeout_ms.max(1));
    let router = router(app);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _peer)) = accepted else {
            // Transient accept errors (e.g. too many open files): back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let router = router.clone();
        let tls = tls.clone();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(router);
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            // Headers that trickle in slower than the read timeout close the connection.
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(read_timeout);
            let served = async {
                match tls {
                    Some(acceptor) => {
                        let Ok(Ok(tls_stream)) =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                                .await
                        else {
                            return;
                        };
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(tls_stream), service)
                            .await;
                    }
                    None => {
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                }
            };
            tokio::select! {
                () = stop.cancelled() => {}
                () = served => {}
            }
        });
    }
}
