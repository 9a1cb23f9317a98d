//! Authentication, scopes, object-level limits, rate limits, body limits, strict JSON, problem
//! answers, and secrets kept out of logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use crossdock_api::ApiConfig;
use crossdock_api::auth::scope::Scope;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::{AUDIENCE, Issuer, Options, TestApp, logs, order};

/// Every protected operation: method, path, body, the scope it needs.
fn protected() -> Vec<(&'static str, &'static str, Option<Value>, Scope)> {
    vec![
        (
            "POST",
            "/v1/orders",
            Some(order("SEC-1", "ACC-1")),
            Scope::OrdersWrite,
        ),
        ("GET", "/v1/orders", None, Scope::OrdersRead),
        ("GET", "/v1/orders/SEC-X", None, Scope::OrdersRead),
        ("GET", "/v1/orders/SEC-X/timeline", None, Scope::OrdersRead),
        ("GET", "/v1/orders/SEC-X/shipments", None, Scope::OrdersRead),
        ("GET", "/v2/orders/SEC-X", None, Scope::OrdersRead),
        ("GET", "/v1/inventory?sku=SKU-1", None, Scope::InventoryRead),
        (
            "POST",
            "/v1/prices",
            Some(json!({ "account": "ACC-1", "items": [{ "sku": "SKU-1", "quantity": 1 }] })),
            Scope::PricesRead,
        ),
        (
            "POST",
            "/v1/returns",
            Some(
                json!({ "order": "SEC-X", "case_number": "1", "lines": [{ "line": 1, "quantity": 1 }], "reason": "x" }),
            ),
            Scope::ReturnsWrite,
        ),
        ("GET", "/v1/returns/RMA-1", None, Scope::ReturnsRead),
        (
            "PUT",
            "/v1/accounts/ACC-1",
            Some(json!({ "name": "A", "tier": "Gold", "currency": "USD" })),
            Scope::AccountsWrite,
        ),
    ]
}

fn problem_type(body: &Value) -> &str {
    body["type"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_endpoint_refuses_bad_credentials_and_missing_scopes() {
    let issuer = Issuer::new();
    let dir = std::env::temp_dir().join(format!("crossdock-jwks-{}", uuid::Uuid::now_v7()));
    let app = TestApp::with(Options {
        config: ApiConfig {
            // Every endpoint is tried with several bad credentials from one address.
            auth_failures_per_minute: 10_000,
            ..issuer.config(&dir)
        },
        run_engine: false,
    })
    .await;
    let all = Scope::ALL.map(Scope::as_str).join(" ");
    let expired = issuer.token(false, "partner-1", AUDIENCE, &all, -120);
    let wrong_audience = issuer.token(true, "partner-1", "someone-else", &all, 600);
    let unknown_subject = issuer.token(false, "stranger", AUDIENCE, &all, 600);
    let forged = {
        // Change the signature's first character (all six bits count, unlike the last
        // character's) to another one: the signature no longer matches.
        let token = issuer.token(false, "partner-1", AUDIENCE, &all, 600);
        let at = token.rfind('.').expect("a JWT has three parts") + 1;
        let replacement = if token[at..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        format!("{}{replacement}{}", &token[..at], &token[at + 1..])
    };
    for (method, path, body, scope) in protected() {
        let cases = [
            ("no credentials", String::new()),
            ("expired token", expired.clone()),
            ("wrong audience", wrong_audience.clone()),
            ("unknown subject", unknown_subject.clone()),
            ("bad signature", forged.clone()),
            ("unknown key", "cdk_0123456789ab_nope".to_owned()),
        ];
        for (case, credential) in cases {
            let response = app
                .send(method, path, &credential, body.as_ref(), Some("k"))
                .await;
            assert_eq!(response.status().as_u16(), 401, "{method} {path}: {case}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            let problem: Value = response.json().await.expect("json");
            assert_eq!(
                problem_type(&problem),
                "https://crossdock.dev/problems/unauthorized",
                "{case}"
            );
        }
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
        let without = app.key_with("no-scope", &others, &[], None).await;
        let response = app
            .send(method, path, &without, body.as_ref(), Some("k"))
            .await;
        assert_eq!(
            response.status().as_u16(),
            403,
            "{method} {path}: key without {scope}"
        );
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["required_scope"], scope.as_str());
        let others = others
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let token = issuer.token(true, "partner-1", AUDIENCE, &others, 600);
        let response = app
            .send(method, path, &token, body.as_ref(), Some("k"))
            .await;
        assert_eq!(
            response.status().as_u16(),
            403,
            "{method} {path}: token without {scope}"
        );
        // With the scope, the request gets past authorisation (whatever the resource says).
        let token = issuer.token(false, "partner-1", AUDIENCE, scope.as_str(), 600);
        let response = app
            .send(method, path, &token, body.as_ref(), Some("k"))
            .await;
        let status = response.status().as_u16();
        assert!(
            ![401, 403].contains(&status),
            "{method} {path} with {scope}: {status}"
        );
    }
}

#[tokio::test]
async fn valid_tokens_of_both_algorithms_are_accepted() {
    let issuer = Issuer::new();
    let dir = std::env::temp_dir().join(format!("crossdock-jwks-{}", uuid::Uuid::now_v7()));
    let app = TestApp::with(Options {
        config: issuer.config(&dir),
        run_engine: false,
    })
    .await;
    for es256 in [false, true] {
        let token = issuer.token(es256, "partner-1", AUDIENCE, "orders:read", 600);
        let response = app.send("GET", "/v1/orders", &token, None, None).await;
        assert_eq!(response.status().as_u16(), 200, "es256={es256}");
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let app = TestApp::with(Options {
        config: ApiConfig {
            key_cache_secs: 0,
            ..ApiConfig::default()
        },
        run_engine: false,
    })
    .await;
    let key = app
        .key_with("soon-gone", &[Scope::OrdersRead], &[], None)
        .await;
    assert_eq!(
        app.send("GET", "/v1/orders", &key, None, None)
            .await
            .status()
            .as_u16(),
        200
    );
    let id = crossdock_api::auth::keys::split(&key)
        .expect("key shape")
        .0
        .to_owned();
    let revoked =
        crossdock_api::auth::keys::revoke(app.store(), &id, app.state.engine.clock().now()).await;
    assert!(revoked.expect("revoke"));
    assert_eq!(
        app.send("GET", "/v1/orders", &key, None, None)
            .await
            .status()
            .as_u16(),
        401
    );
    // Keys are also accepted in X-Api-Key.
    let response = app
        .client
        .get(format!("{}/v1/orders", app.base))
        .header("x-api-key", &app.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_orders_are_not_found() {
    let app = TestApp::start().await;
    assert_eq!(
        app.submit(&order("OBJ-1", "ACC-B"), "obj-1")
            .await
            .status()
            .as_u16(),
        202
    );
    let id = "EXT-all-scopes-OBJ-1";
    app.wait_for(&format!("/v1/orders/{id}"), |o| {
        o["erp_order_number"].is_string()
    })
    .await;
    let limited = app
        .key_with(
            "limited",
            &[
                Scope::OrdersRead,
                Scope::ReturnsWrite,
                Scope::ReturnsRead,
                Scope::PricesRead,
                Scope::OrdersWrite,
            ],
            &["ACC-A"],
            None,
        )
        .await;
    for path in [
        format!("/v1/orders/{id}"),
        format!("/v1/orders/{id}/timeline"),
        format!("/v1/orders/{id}/shipments"),
        format!("/v2/orders/{id}"),
    ] {
        let response = app.send("GET", &path, &limited, None, None).await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(
            problem_type(&problem),
            "https://crossdock.dev/problems/not-found"
        );
    }
    let body = json!({ "order": id, "return_id": "X1", "lines": [{ "line": 1, "quantity": 1 }], "reason": "x" });
    assert_eq!(
        app.send("POST", "/v1/returns", &limited, Some(&body), None)
            .await
            .status()
            .as_u16(),
        404
    );
    let prices = json!({ "account": "ACC-B", "items": [{ "sku": "SKU-1", "quantity": 1 }] });
    assert_eq!(
        app.send("POST", "/v1/prices", &limited, Some(&prices), None)
            .await
            .status()
            .as_u16(),
        404
    );
    let submit = app
        .send(
            "POST",
            "/v1/orders",
            &limited,
            Some(&order("OBJ-2", "ACC-B")),
            Some("o2"),
        )
        .await;
    assert_eq!(submit.status().as_u16(), 404);
    let list: Value = app
        .send("GET", "/v1/orders", &limited, None, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"], json!([]));
    // The owner sees it.
    assert_eq!(
        app.send(
            "GET",
            &format!("/v1/orders/{id}"),
            &app.key.clone(),
            None,
            None
        )
        .await
        .status()
        .as_u16(),
        200
    );
}

#[tokio::test]
async fn a_client_past_its_rate_limit_gets_429_with_retry_after() {
    let app = TestApp::with(Options {
        config: ApiConfig::default(),
        run_engine: false,
    })
    .await;
    let key = app
        .key_with("slowpoke", &[Scope::OrdersRead], &[], Some(1))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = app.send("GET", "/v1/orders", &key, None, None).await;
        if response.status().as_u16() == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429], "burst of 2 at 1/s");
    // Other clients are not affected.
    assert_eq!(
        app.send("GET", "/v1/orders", &app.key.clone(), None, None)
            .await
            .status()
            .as_u16(),
        200
    );
}

/// A body that counts the bytes the server pulls from it.
fn counting_body(total: usize, chunk: usize, pulled: Arc<AtomicUsize>) -> Body {
    let chunks = (0..total.div_ceil(chunk)).map(move |_| {
        pulled.fetch_add(chunk, Ordering::SeqCst);
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; chunk]))
    });
    Body::from_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn a_ten_megabyte_body_is_refused_without_reading_it() {
    let app = TestApp::with(Options {
        config: ApiConfig::default(),
        run_engine: false,
    })
    .await;
    let router = crossdock_api::router(app.state.clone());
    let ten_mb = 10 * 1024 * 1024;
    let chunk = 64 * 1024;

    // Declared length: refused before any byte is read.
    let pulled = Arc::new(AtomicUsize::new(0));
    let request = axum::http::Request::post("/v1/orders")
        .header("authorization", format!("Bearer {}", app.key))
        .header("idempotency-key", "big")
        .header("content-type", "application/json")
        .header("content-length", ten_mb.to_string())
        .body(counting_body(ten_mb, chunk, Arc::clone(&pulled)))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("answer");
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(pulled.load(Ordering::SeqCst), 0, "nothing read");

    // Streamed without a length: cut off at the limit.
    let pulled = Arc::new(AtomicUsize::new(0));
    let request = axum::http::Request::post("/v1/orders")
        .header("authorization", format!("Bearer {}", app.key))
        .header("idempotency-key", "big-stream")
        .header("content-type", "application/json")
        .body(counting_body(ten_mb, chunk, Arc::clone(&pulled)))
        .expect("request");
    let response = router.oneshot(request).await.expect("answer");
    assert_eq!(response.status().as_u16(), 413);
    let read = pulled.load(Ordering::SeqCst);
    let limit = ApiConfig::default().body_limit_bytes;
    assert!(
        read <= limit + chunk,
        "read {read} bytes of {ten_mb} with a limit of {limit}"
    );
    let bytes = axum::body::to_bytes(response.into_body(), 65_536)
        .await
        .expect("body");
    let problem: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        problem_type(&problem),
        "https://crossdock.dev/problems/payload-too-large"
    );
}

#[tokio::test]
async fn bodies_are_strict_and_every_error_is_a_problem_with_the_correlation_id() {
    let app = TestApp::with(Options {
        config: ApiConfig::default(),
        run_engine: false,
    })
    .await;
    let mut body = order("J-1", "ACC-1");
    body["discount"] = json!("5%");
    let response = app
        .client
        .post(format!("{}/v1/orders", app.base))
        .header("authorization", format!("Bearer {}", app.key))
        .header("idempotency-key", "j-1")
        .header("x-correlation-id", "corr-123")
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.headers()["x-correlation-id"], "corr-123");
    let problem: Value = response.json().await.expect("json");
    assert_eq!(
        problem_type(&problem),
        "https://crossdock.dev/problems/invalid-body"
    );
    assert_eq!(problem["correlation_id"], "corr-123");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown field `discount`"),
        "{problem}"
    );

    let response = app
        .client
        .post(format!("{}/v1/orders", app.base))
        .header("authorization", format!("Bearer {}", app.key))
        .header("idempotency-key", "j-2")
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 415);

    for (method, path, status, code) in [
        ("GET", "/v1/nowhere", 404, "not-found"),
        ("DELETE", "/v1/orders", 405, "method-not-allowed"),
        ("GET", "/v1/orders?limit=lots", 400, "bad-request"),
    ] {
        let response = app.send(method, path, &app.key.clone(), None, None).await;
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let generated = response.headers()["x-correlation-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let problem: Value = response.json().await.expect("json");
        assert_eq!(
            problem_type(&problem),
            format!("https://crossdock.dev/problems/{code}")
        );
        assert_eq!(problem["correlation_id"], generated.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_never_appear_in_the_logs() {
    let app = TestApp::start().await;
    app.submit(&order("LOG-1", "ACC-1"), "log-1").await;
    app.wait_for("/v1/orders/EXT-all-scopes-LOG-1", |o| {
        o["erp_order_number"].is_string()
    })
    .await;
    let response = app
        .client
        .get(format!("{}/v1/orders", app.base))
        .header("x-api-key", &app.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let _ = app
        .send(
            "GET",
            "/v1/orders",
            "cdk_0123456789ab_wrong-secret-value",
            None,
            None,
        )
        .await;
    let captured = logs();
    assert!(
        captured.contains("Request received"),
        "requests are logged at debug"
    );
    assert!(
        captured.contains("authorization: [redacted]"),
        "headers are logged, redacted"
    );
    let secret = key_secret(&app.key);
    assert!(
        !captured.contains(secret),
        "the API key's secret leaked into the logs"
    );
    assert!(
        !captured.contains("wrong-secret-value"),
        "a presented key leaked into the logs"
    );
}

#[tokio::test]
async fn every_write_is_audited() {
    let app = TestApp::start().await;
    app.submit(&order("AUD-1", "ACC-1"), "aud-1").await;
    let account = json!({ "name": "Harbor Outfitters", "tier": "Silver", "currency": "USD" });
    assert_eq!(
        app.send(
            "PUT",
            "/v1/accounts/ACC-9",
            &app.key.clone(),
            Some(&account),
            None
        )
        .await
        .status()
        .as_u16(),
        202
    );
    let audit = app.store().audit_log(0, 100).await.expect("audit");
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.entry.action.as_str(), a.entry.target.as_str()))
        .collect();
    assert!(
        actions.contains(&("order.submit", "EXT-all-scopes-AUD-1")),
        "{actions:?}"
    );
    assert!(actions.contains(&("account.put", "ACC-9")), "{actions:?}");
    assert!(audit.iter().all(|a| a.entry.actor.starts_with("key:")));
    let text = serde_json::to_string(&audit.iter().map(|a| &a.entry.detail).collect::<Vec<_>>())
        .expect("json");
    assert!(!text.contains(key_secret(&app.key)));
}

/// The secret of a key `cdk_<id>_<secret>`: everything after the id. The secret's base64url
/// alphabet has `_` too, so the text after the last `_` may be a few characters only (and
/// found in the logs by chance).
fn key_secret(key: &str) -> &str {
    let secret = key.splitn(3, '_').nth(2).expect("a key has a secret");
    assert!(secret.len() >= 40, "{key}");
    secret
}
