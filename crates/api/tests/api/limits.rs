//! Server limits against raw connections: slow headers, idle connections and slow bodies are
//! closed within the configured times while `/healthz` keeps answering; connections past the
//! cap and requests past the concurrency limit are refused at once with 503 and `Retry-After`;
//! failed authentications from one address are throttled with 429.

use std::time::Duration;

use crossdock_api::{ApiConfig, ServerConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{Options, TestApp};

/// The configured header, idle and body times of these tests (milliseconds).
const TIMEOUT_MS: u64 = 600;

fn limits(server: ServerConfig) -> Options {
    Options {
        config: ApiConfig {
            server,
            ..ApiConfig::default()
        },
        run_engine: false,
    }
}

fn short_timeouts() -> ServerConfig {
    ServerConfig {
        header_read_timeout_ms: TIMEOUT_MS,
        idle_timeout_ms: TIMEOUT_MS,
        body_read_timeout_ms: TIMEOUT_MS,
        ..ServerConfig::default()
    }
}

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; what it sent and how long it took.
async fn until_closed(stream: &mut TcpStream, started: Instant) -> (String, Duration) {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the connection was still open after 10 s"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_and_idle_connections_are_closed_while_healthz_answers() {
    let app = TestApp::with(limits(short_timeouts())).await;
    let address = address(&app);
    let started = Instant::now();
    let mut closers = Vec::new();
    for _ in 0..5 {
        // Headers a byte every 100 ms: never complete within the header time.
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        closers.push(tokio::spawn(async move {
            let (mut reader, mut writer) = stream.split();
            let trickle = async {
                let head = b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Slow: ";
                for byte in head.iter().chain(std::iter::repeat(&b'a')) {
                    if writer.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            let mut buffer = [0_u8; 256];
            let closed = async {
                loop {
                    match reader.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            tokio::select! {
                () = trickle => {}
                () = closed => {}
            }
            ("slow headers", started.elapsed())
        }));
    }
    for _ in 0..5 {
        // Connected, nothing sent.
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        closers.push(tokio::spawn(async move {
            let (_, elapsed) = until_closed(&mut stream, started).await;
            ("idle", elapsed)
        }));
    }
    // Meanwhile /healthz answers, each time quickly.
    // A new connection per probe (a pooled one would itself be closed when idle).
    let health = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut probes = 0;
    while closers.iter().any(|c| !c.is_finished()) {
        let asked = Instant::now();
        let response = health
            .get(format!("{}/healthz", app.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .expect("/healthz answers while slow connections are open");
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "{:?}",
            asked.elapsed()
        );
        probes += 1;
        assert!(started.elapsed() < Duration::from_secs(10), "never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(probes >= 3, "/healthz was asked {probes} times");
    let limit = Duration::from_millis(TIMEOUT_MS);
    for closer in closers {
        let (kind, elapsed) = closer.await.expect("task");
        assert!(
            elapsed >= limit.mul_f32(0.8) && elapsed < limit + Duration::from_millis(1_500),
            "{kind} connection closed after {elapsed:?} (limit {limit:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_at_the_body_time() {
    let app = TestApp::with(limits(short_timeouts())).await;
    let mut stream = TcpStream::connect(address(&app)).await.expect("connect");
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {}\r\nIdempotency-Key: slow-1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        app.key
    );
    stream.write_all(head.as_bytes()).await.expect("headers");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        for _ in 0..1000 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut received = Vec::new();
    let answer = async {
        let mut buffer = [0_u8; 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::select! {
        () = trickle => panic!("the whole slow body was read"),
        () = answer => {}
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("did not arrive within 600 ms"), "{text}");
    assert!(
        elapsed >= Duration::from_millis(TIMEOUT_MS * 8 / 10)
            && elapsed < Duration::from_millis(TIMEOUT_MS + 1_500),
        "closed after {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_refused_at_once_with_503() {
    let app = TestApp::with(limits(ServerConfig {
        max_connections: 3,
        ..ServerConfig::default()
    }))
    .await;
    let address = address(&app);
    // Three keep-alive connections, each known to be accepted (it was answered once).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
            .await
            .expect("request");
        let mut buffer = [0_u8; 1024];
        let n = stream.read(&mut buffer).await.expect("answer");
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let started = Instant::now();
    let mut extra = TcpStream::connect(&address).await.expect("connect");
    let (answer, elapsed) = until_closed(&mut extra, started).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        elapsed < Duration::from_millis(500),
        "refused after {elapsed:?}"
    );
    // A closed connection frees its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let (answer, _) = until_closed(&mut stream, Instant::now()).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_concurrency_limit_are_shed_with_503_and_retry_after() {
    let app = TestApp::with(Options {
        config: ApiConfig {
            erp_budget_ms: 10_000,
            server: ServerConfig {
                max_concurrent_requests: 2,
                ..ServerConfig::default()
            },
            ..ApiConfig::default()
        },
        run_engine: false,
    })
    .await;
    *app.erp.delay.lock().expect("delay") = Duration::from_millis(800);
    let body = json!({ "account": "ACC-1", "items": [{ "sku": "SKU-1", "quantity": 1 }] });
    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    // Ten times the capacity, at once.
    for _ in 0..20 {
        let request = client
            .post(format!("{}/v1/prices", app.base))
            .bearer_auth(&app.key)
            .json(&body);
        requests.push(tokio::spawn(async move {
            let started = Instant::now();
            let response = request.send().await.expect("answer");
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, retry_after, content_type, body, started.elapsed())
        }));
    }
    // While the admitted requests run, the health probe is not shed.
    let health = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let mut admitted = Vec::new();
    let mut shed = Vec::new();
    for request in requests {
        let (status, retry_after, content_type, body, elapsed) = request.await.expect("task");
        match status {
            200 => admitted.push(elapsed),
            503 => {
                assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
                assert_eq!(content_type.as_deref(), Some("application/problem+json"));
                assert_eq!(body["type"], "https://crossdock.dev/problems/unavailable");
                shed.push(elapsed);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    admitted.sort();
    shed.sort();
    println!(
        "admitted {} (p50 {:?}, p99 {:?}), shed {} (p50 {:?}, p99 {:?})",
        admitted.len(),
        percentile(&admitted, 0.5),
        percentile(&admitted, 0.99),
        shed.len(),
        percentile(&shed, 0.5),
        percentile(&shed, 0.99),
    );
    assert!(admitted.len() >= 2, "admitted {}", admitted.len());
    assert!(shed.len() >= 10, "shed {}", shed.len());
    assert!(
        percentile(&shed, 0.99) < Duration::from_millis(400),
        "shed answers took up to {:?}",
        percentile(&shed, 0.99)
    );
    assert!(
        percentile(&admitted, 0.99) < Duration::from_secs(5),
        "admitted answers took up to {:?}",
        percentile(&admitted, 0.99)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_from_one_address_are_throttled() {
    let app = TestApp::with(Options {
        config: ApiConfig {
            auth_failures_per_minute: 5,
            ..ApiConfig::default()
        },
        run_engine: false,
    })
    .await;
    assert_eq!(
        app.send("GET", "/v1/orders", &app.key.clone(), None, None)
            .await
            .status()
            .as_u16(),
        200
    );
    for attempt in 0..5 {
        let response = app
            .send("GET", "/v1/orders", "cdk_000000000000_wrong", None, None)
            .await;
        assert_eq!(response.status().as_u16(), 401, "attempt {attempt}");
    }
    let response = app
        .send("GET", "/v1/orders", "cdk_000000000000_wrong", None, None)
        .await;
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: Value = response.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://crossdock.dev/problems/rate-limited"
    );
    // While blocked, even the right key is refused: guessing gains nothing from a hit.
    assert_eq!(
        app.send("GET", "/v1/orders", &app.key.clone(), None, None)
            .await
            .status()
            .as_u16(),
        429
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_submissions_past_capacity_are_shed_and_every_accepted_order_is_booked() {
    let app = TestApp::with(Options {
        config: ApiConfig {
            erp_budget_ms: 10_000,
            server: ServerConfig {
                max_concurrent_requests: 2,
                ..ServerConfig::default()
            },
            ..ApiConfig::default()
        },
        run_engine: true,
    })
    .await;
    // Validation's ERP lookups take 300 ms: two submissions fill the capacity.
    *app.erp.delay.lock().expect("delay") = Duration::from_millis(300);
    let mut submissions = Vec::new();
    for n in 0..20 {
        let request = app
            .client
            .post(format!("{}/v1/orders", app.base))
            .bearer_auth(&app.key)
            .header("idempotency-key", format!("burst-{n}"))
            .json(&crate::helpers::order(&format!("BURST-{n}"), "ACC-1"));
        submissions.push(tokio::spawn(async move {
            let started = Instant::now();
            let response = request.send().await.expect("answer");
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            (n, status, retry_after, started.elapsed())
        }));
    }
    let mut accepted = Vec::new();
    let mut shed = Vec::new();
    let mut shed_ids = Vec::new();
    for submission in submissions {
        let (n, status, retry_after, elapsed) = submission.await.expect("task");
        match status {
            202 => accepted.push((n, elapsed)),
            503 => {
                assert!(retry_after, "503 without Retry-After");
                shed.push(elapsed);
                shed_ids.push(n);
            }
            other => panic!("submission {n}: unexpected {other}"),
        }
    }
    let mut accepted_times: Vec<Duration> = accepted.iter().map(|(_, t)| *t).collect();
    accepted_times.sort();
    shed.sort();
    println!(
        "orders: accepted {} (p99 {:?}), shed {} (p99 {:?})",
        accepted.len(),
        percentile(&accepted_times, 0.99),
        shed.len(),
        percentile(&shed, 0.99)
    );
    assert!(accepted.len() >= 2, "accepted {}", accepted.len());
    assert!(shed.len() >= 10, "shed {}", shed.len());
    assert!(percentile(&shed, 0.99) < Duration::from_millis(250));
    *app.erp.delay.lock().expect("delay") = Duration::ZERO;
    for (n, _) in accepted {
        app.wait_for(&format!("/v1/orders/EXT-all-scopes-BURST-{n}"), |o| {
            o["erp_order_number"].is_string()
        })
        .await;
    }
    // A shed submission was not captured; sent again with its key, it is accepted and booked.
    let again = shed_ids[0];
    let path = format!("/v1/orders/EXT-all-scopes-BURST-{again}");
    assert_eq!(app.get_json(&path).await.0, 404);
    let response = app
        .submit(
            &crate::helpers::order(&format!("BURST-{again}"), "ACC-1"),
            &format!("burst-{again}"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 202);
    app.wait_for(&path, |o| o["erp_order_number"].is_string())
        .await;
}
