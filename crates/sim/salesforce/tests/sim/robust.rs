//! Nothing crashes the simulator: deep and wide SOQL, 1,000 seeded garbage requests over a raw
//! socket, bodies shorter than their `Content-Length` and headers that never end.

use std::time::{Duration, Instant};

use crossdock_sim_salesforce::cdc::EventLog;
use crossdock_sim_salesforce::{Config, meta, soql, store::Org};
use proptest::prelude::*;
use proptest::test_runner::{Config as PConfig, TestRunner};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Sim, q};

const QUERY_CODES: &[&str] = &[
    "MALFORMED_QUERY",
    "INVALID_FIELD",
    "INVALID_TYPE",
    "NUMBER_OUTSIDE_VALID_RANGE",
];

fn org() -> Org {
    Org::new(
        meta::standard(),
        "Robust",
        "u@example.com",
        0,
        EventLog::new(1, 1_000),
    )
}

/// A condition built from `atoms` joined by `AND`/`OR`, wrapped in `depth` parentheses or
/// `NOT`s: deep when `depth` is large, wide when `width` is.
fn condition(width: usize, depth: usize, nots: bool, ops: &[bool]) -> String {
    let atoms = [
        "Name = 'a'",
        "Phone != null",
        "Name LIKE 'x%'",
        "Id IN ('x')",
    ];
    let mut inner = String::new();
    for i in 0..width.max(1) {
        if i > 0 {
            inner.push_str(if ops[i % ops.len()] { " AND " } else { " OR " });
        }
        inner.push_str(atoms[i % atoms.len()]);
    }
    let mut out = String::with_capacity(inner.len() + depth * 5);
    for _ in 0..depth {
        out.push_str(if nots { "NOT (" } else { "(" });
    }
    out.push_str(&inner);
    for _ in 0..depth {
        out.push(')');
    }
    out
}

/// A query and the nesting depth of its condition.
fn deep_or_wide() -> impl Strategy<Value = (String, usize)> {
    (
        prop_oneof![0usize..8, 0usize..200, 50usize..6_000],
        prop_oneof![0usize..5, 90usize..110, 100usize..5_000],
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 1..8),
        prop_oneof![
            Just(""),
            Just(")"),
            Just("("),
            Just(" AND"),
            Just(" LIMIT 5")
        ],
    )
        .prop_map(|(width, depth, nots, ops, tail)| {
            let text = format!(
                "SELECT Id FROM Account WHERE {}{tail}",
                condition(width, depth, nots, &ops)
            );
            (text, if nots { depth * 2 } else { depth })
        })
}

/// Runs `f` on a thread with a stack no larger than a runtime worker's (2 MiB), so a parser
/// that recursed without bound would overflow here too.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("thread starts")
        .join()
        .expect("no panic")
}

/// Cases per property run: `SOQL_FUZZ_CASES` (the long fuzzing run sets it), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("SOQL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Token soup over the whole grammar: aggregates, GROUP BY / HAVING, subqueries, FIELDS(),
/// relative date literals (some out of range), plus the plain clauses.
fn grammar_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "GROUP",
        "BY",
        "HAVING",
        "ORDER",
        "ASC",
        "DESC",
        "NULLS",
        "LAST",
        "LIMIT",
        "OFFSET",
        "COUNT()",
        "COUNT(Id)",
        "COUNT(",
        "SUM(Credit_Limit__c)",
        "AVG(Name)",
        "MIN(CreatedDate)",
        "MAX(",
        "expr0",
        "COUNT_DISTINCT(Customer_Tier__c)",
        "FIELDS(ALL)",
        "FIELDS(STANDARD)",
        "FIELDS(",
        "(SELECT Id FROM Contacts)",
        "(SELECT",
        "Contacts",
        "OrderItems",
        "Id",
        "Name",
        "Customer_Tier__c",
        "Credit_Limit__c",
        "CreatedDate",
        "Account.Name",
        "Account",
        "Contact",
        "Order",
        ",",
        "(",
        ")",
        "=",
        "!=",
        "<",
        ">=",
        "'x'",
        "5",
        "200",
        "201",
        "TODAY",
        "LAST_N_DAYS:5",
        "NEXT_N_MONTHS:3",
        "LAST_N_DAYS:99999999999",
        "THIS_QUARTER",
        "N_DAYS_AGO:",
        "2026-01-01",
        "null",
        "true",
        "n",
    ]);
    let shaped = (
        prop::sample::select(vec![
            "Customer_Tier__c, COUNT(Id)",
            "COUNT(Id) c, SUM(Credit_Limit__c)",
            "Name, (SELECT Id, LastName FROM Contacts WHERE CreatedDate = TODAY)",
            "FIELDS(STANDARD)",
            "FIELDS(ALL)",
            "MAX(CreatedDate), MIN(Name) m",
        ]),
        prop::sample::select(vec![
            "",
            " WHERE CreatedDate = LAST_N_DAYS:30",
            " WHERE CreatedDate > NEXT_N_YEARS:2 OR CreatedDate < THIS_WEEK",
            " GROUP BY Customer_Tier__c",
            " GROUP BY Customer_Tier__c HAVING COUNT(Id) > 1",
            " GROUP BY Name HAVING MAX(Credit_Limit__c) >= 2 ORDER BY COUNT(Id) DESC",
        ]),
        prop::sample::select(vec![
            "",
            " LIMIT 5",
            " LIMIT 200",
            " LIMIT 201",
            " OFFSET 1",
        ]),
    )
        .prop_map(|(select, rest, tail)| format!("SELECT {select} FROM Account{rest}{tail}"));
    prop_oneof![
        2 => prop::collection::vec(token, 0..18).prop_map(|t| t.join(" ")),
        3 => shaped,
    ]
}

/// An org with a few accounts (tiers, limits, some nulls) and contacts under them.
fn seeded_org() -> Org {
    let mut org = org();
    let now = 1_796_000_000_000;
    let account = org.meta.object_index("Account").expect("Account");
    let contact = org.meta.object_index("Contact").expect("Contact");
    let user = org.user_id.clone();
    let mut txn =
        crossdock_sim_salesforce::store::Txn::begin(&mut org, now, "seed".into()).as_user(&user);
    for i in 0..12 {
        let tier = [None, Some("Gold"), Some("Silver")][i % 3];
        let body = serde_json::json!({
            "Name": format!("A{}", i % 5),
            "Customer_Tier__c": tier,
            "Credit_Limit__c": if i % 4 == 0 { None } else { Some(i * 10) },
        });
        let id = txn
            .insert(account, body.as_object().expect("object"))
            .expect("account is created");
        if i % 2 == 0 {
            let c = serde_json::json!({"LastName": format!("C{i}"), "AccountId": id});
            txn.insert(contact, c.as_object().expect("object"))
                .expect("contact is created");
        }
    }
    txn.commit();
    org
}

#[test]
fn the_whole_grammar_compiles_or_is_refused_without_a_panic() {
    let org = seeded_org();
    let mut runner = TestRunner::new(PConfig {
        cases: cases(1_000),
        failure_persistence: None,
        ..PConfig::default()
    });
    let aggregated = std::cell::Cell::new(0usize);
    let nested = std::cell::Cell::new(0usize);
    let result = runner.run(&grammar_soup(), |text| {
        match soql::compile_at(&org, &text, 1_796_000_000_000) {
            Ok(plan) => {
                let rows = soql::run(&org, &plan, false, "60.0");
                prop_assert_eq!(rows.records.len(), rows.total);
                let first = rows.records.first();
                if first.is_some_and(|r| r["attributes"]["type"] == "AggregateResult") {
                    aggregated.set(aggregated.get() + 1);
                }
                if first.is_some_and(|r| r["Contacts"]["totalSize"].is_u64()) {
                    nested.set(nested.get() + 1);
                }
                prop_assert!(soql::columns(&org, &plan)["columnMetadata"].is_array());
            }
            Err(e) => {
                prop_assert!(QUERY_CODES.contains(&e.code), "{} for {text:?}", e.code);
                prop_assert!(
                    e.message.contains("ERROR at Row:") || e.message.contains("longer than"),
                    "{}",
                    e.message
                );
            }
        }
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
    assert!(aggregated.get() > 0, "aggregate queries ran");
    assert!(nested.get() > 0, "subqueries ran");
}

#[test]
fn deep_and_wide_soql_compiles_or_is_refused_with_malformed_query() {
    let outcome = on_small_stack(|| {
        let org = org();
        let mut runner = TestRunner::new(PConfig {
            cases: cases(300),
            failure_persistence: None,
            ..PConfig::default()
        });
        let refused_deep = std::cell::Cell::new(0usize);
        let accepted_wide = std::cell::Cell::new(0usize);
        let result = runner.run(&deep_or_wide(), |(text, depth)| {
            match soql::compile(&org, &text) {
                Ok(plan) => {
                    let rows = soql::run(&org, &plan, false, "60.0");
                    prop_assert_eq!(rows.records.len(), rows.total);
                    prop_assert!(depth <= soql::MAX_NESTING, "{} levels accepted", depth);
                    if text.len() > 2_000 {
                        accepted_wide.set(accepted_wide.get() + 1);
                    }
                }
                Err(e) => {
                    prop_assert!(QUERY_CODES.contains(&e.code), "{}", e.code);
                    if depth > soql::MAX_NESTING {
                        prop_assert_eq!(e.code, "MALFORMED_QUERY");
                        refused_deep.set(refused_deep.get() + 1);
                    }
                }
            }
            Ok(())
        });
        (
            result.map_err(|e| e.to_string()),
            refused_deep.get(),
            accepted_wide.get(),
        )
    });
    let (result, refused_deep, accepted_wide) = outcome;
    assert!(result.is_ok(), "{result:?}");
    assert!(
        refused_deep > 0,
        "the generator reached past the nesting limit"
    );
    assert!(accepted_wide > 0, "long AND/OR chains are accepted");
}

#[test]
fn nesting_limit_is_exact_and_long_chains_are_fine() {
    on_small_stack(|| {
        let org = org();
        let at_limit = format!(
            "SELECT Id FROM Account WHERE {}",
            condition(1, soql::MAX_NESTING, true, &[true])
        );
        // `NOT (` counts twice per level: one NOT and one parenthesis.
        let half = soql::MAX_NESTING / 2;
        let ok = format!(
            "SELECT Id FROM Account WHERE {}",
            condition(3, half, true, &[true, false])
        );
        assert!(soql::compile(&org, &ok).is_ok());
        let e = soql::compile(&org, &at_limit).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some("MALFORMED_QUERY"));
        assert!(
            e.as_ref()
                .is_some_and(|e| e.message.contains("nested at most 100 levels")),
            "{e:?}"
        );
        let parens = format!(
            "SELECT Id FROM Account WHERE {}",
            condition(1, soql::MAX_NESTING, false, &[true])
        );
        assert!(soql::compile(&org, &parens).is_ok());
        let too_deep = format!(
            "SELECT Id FROM Account WHERE {}",
            condition(1, soql::MAX_NESTING + 1, false, &[true])
        );
        assert!(soql::compile(&org, &too_deep).is_err());
        let chain = format!(
            "SELECT Id FROM Account WHERE {}",
            condition(5_000, 0, false, &[true, true, false])
        );
        let plan = soql::compile(&org, &chain);
        assert!(plan.is_ok(), "{:?}", plan.err());
        let long = format!(
            "SELECT Id FROM Account WHERE Name = '{}'",
            "x".repeat(soql::MAX_QUERY_CHARS)
        );
        let e = soql::compile(&org, &long).err();
        assert_eq!(
            e.map(|e| (e.code, e.message)),
            Some((
                "MALFORMED_QUERY",
                "SOQL statements cannot be longer than 100000 characters.".to_string()
            ))
        );
    });
}

/// One raw HTTP/1.1 exchange on a fresh connection: the status line's code, or `None` when the
/// server closed without answering. Waits at most 10 s.
async fn raw(addr: &str, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    if s.write_all(request).await.is_err() {
        return None;
    }
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed within 10 s"
    );
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
}

fn garbage(rng: &mut ChaCha8Rng, token: &str) -> Vec<u8> {
    const METHODS: &[&str] = &[
        "GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "TRACE", "FOO", "get", "",
    ];
    const PATHS: &[&str] = &[
        "sobjects",
        "sobjects/Account",
        "sobjects/Account/001Dd0000000001AAA",
        "sobjects/Account/%00%ff",
        "sobjects/Order/describe",
        "sobjects/Account/ERP_Customer_Number__c/C-1",
        "query",
        "query/01gXXXXXXXXXXXXXXX-2000",
        "queryAll",
        "composite",
        "composite/sobjects",
        "composite/sobjects/Account?ids=a,b,c",
        "limits",
        "limits/recordCount?sObjects=Account,Nope",
        "",
        "../../../etc/passwd",
        "sobjects/%",
    ];
    let rand_text = |rng: &mut ChaCha8Rng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
            .collect()
    };
    let method = METHODS[rng.random_range(0..METHODS.len())];
    let version = format!("v{}.{}", rng.random_range(0..80), rng.random_range(0..3));
    let mut path = format!(
        "/services/data/{version}/{}",
        PATHS[rng.random_range(0..PATHS.len())]
    );
    match rng.random_range(0..6) {
        0 => {
            let depth = rng.random_range(1..20_000);
            let soql = format!(
                "SELECT Id FROM Account WHERE {}Name = 'x'{}",
                "(".repeat(depth),
                ")".repeat(rng.random_range(0..depth + 1))
            );
            path = format!("/services/data/v60.0/query?q={}", q(&soql));
        }
        1 => {
            let n = rng.random_range(1..5_000);
            let soql = format!(
                "SELECT Id FROM Account WHERE {}",
                vec!["NOT Name = 'x'"; n].join(if rng.random_bool(0.5) {
                    " AND "
                } else {
                    " OR "
                })
            );
            path = format!("/services/data/v60.0/query?q={}", q(&soql));
        }
        2 => path.push_str(&format!("?q={}", q(&rand_text(rng, 30)))),
        _ => {}
    }
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    if rng.random_bool(0.8) {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for _ in 0..rng.random_range(0..4) {
        let name: String = rand_text(rng, 8)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        if !name.is_empty() {
            head.push_str(&format!("X-{name}: {}\r\n", rand_text(rng, 12)));
        }
    }
    let body: Vec<u8> = match rng.random_range(0..4) {
        0 => Vec::new(),
        1 => (0..rng.random_range(0..200))
            .map(|_| rng.random())
            .collect(),
        2 => format!(
            "{}\"Name\": {}",
            "[".repeat(rng.random_range(0..300)),
            "{".repeat(rng.random_range(0..300))
        )
        .into_bytes(),
        _ => br#"{"Name":"Acme","Credit_Limit__c":"lots","ParentId":"x"}"#.to_vec(),
    };
    // Sometimes the declared length is longer than what is sent (a truncated body).
    let declared = if rng.random_bool(0.05) {
        body.len() + rng.random_range(1..100)
    } else {
        body.len()
    };
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_garbage_requests_leave_the_simulator_answering() {
    let sim = Sim::with(Config {
        http_port: Some(0),
        read_timeout_ms: 100,
        daily_api_limit: 1_000_000,
        ..Config::default()
    })
    .await;
    let addr = sim
        .handle
        .http_url()
        .expect("plain HTTP listener")
        .trim_start_matches("http://")
        .to_string();
    let mut rng = ChaCha8Rng::seed_from_u64(26);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut server_errors = Vec::new();
    for i in 0..1_000 {
        let request = garbage(&mut rng, &sim.token);
        let status = raw(&addr, &request).await;
        if let Some(s) = status {
            *statuses.entry(s).or_default() += 1;
            if s >= 500 {
                server_errors.push((
                    i,
                    s,
                    String::from_utf8_lossy(&request[..request.len().min(200)]).to_string(),
                ));
            }
        }
    }
    assert!(server_errors.is_empty(), "{server_errors:?}");
    assert!(
        statuses.get(&400).copied().unwrap_or(0) > 50
            && statuses.get(&404).copied().unwrap_or(0) > 50,
        "{statuses:?}"
    );
    assert!(
        statuses.contains_key(&408),
        "truncated bodies time out: {statuses:?}"
    );
    let versions = sim.send(sim.http.get(sim.url("/services/data"))).await;
    assert_eq!(versions.status, 200, "the simulator still answers");
    assert!(versions.body.as_array().is_some_and(|v| !v.is_empty()));
    let alive = sim.get("limits").await;
    assert_eq!(alive.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn short_bodies_and_endless_headers_do_not_hold_a_connection() {
    let sim = Sim::with(Config {
        http_port: Some(0),
        read_timeout_ms: 200,
        ..Config::default()
    })
    .await;
    let addr = sim
        .handle
        .http_url()
        .expect("plain HTTP listener")
        .trim_start_matches("http://")
        .to_string();
    let started = Instant::now();
    let short = format!(
        "POST /services/data/v60.0/sobjects/Account HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"Name\":",
        sim.token
    );
    assert_eq!(raw(&addr, short.as_bytes()).await, Some(408));
    // Headers that never finish: the connection is closed without an answer.
    let endless = b"GET /services/data HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut s = TcpStream::connect(&addr).await.expect("connects");
    s.write_all(endless).await.expect("writes");
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "a connection with unfinished headers is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        raw(&addr, b"GET /services/data HTTP/1.1\r\nHost: x\r\n\r\n").await,
        Some(200)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn deep_soql_over_http_is_a_malformed_query() {
    let sim = Sim::start().await;
    let deep = format!(
        "SELECT Id FROM Account WHERE {}Name = 'x'{}",
        "(".repeat(5_000),
        ")".repeat(5_000)
    );
    let r = sim.get(&format!("query?q={}", q(&deep))).await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, Some("MALFORMED_QUERY")),
        "{}",
        r.text
    );
    let nots = format!(
        "SELECT Id FROM Account WHERE {}Name = 'x'",
        "NOT ".repeat(5_000)
    );
    let r = sim.get(&format!("query?q={}", q(&nots))).await;
    assert_eq!((r.status, r.error_code()), (400, Some("MALFORMED_QUERY")));
    sim.create("Account", serde_json::json!({"Name": "x"}))
        .await;
    let wide = format!(
        "SELECT Id FROM Account WHERE {}",
        vec!["Name = 'x'"; 1_500].join(" OR ")
    );
    let r = sim.get(&format!("query?q={}", q(&wide))).await;
    assert_eq!(
        (r.status, r.body["totalSize"].as_u64()),
        (200, Some(1)),
        "{}",
        r.text
    );
    sim.shutdown().await;
}

/// Avro payloads of published platform events: random bytes, and valid prefixes followed by
/// huge or negative lengths, decode to a value or an error, never a panic or a huge allocation.
#[test]
fn random_platform_event_payloads_decode_or_are_refused() {
    let meta = meta::standard();
    let def = meta
        .objects
        .iter()
        .find(|o| o.kind == meta::Kind::PlatformEvent)
        .expect("a platform event is declared")
        .clone();
    let (_, order) = crossdock_sim_salesforce::cdc::platform_schema(&def);
    let mut runner = TestRunner::new(PConfig {
        cases: cases(2_000),
        failure_persistence: None,
        ..PConfig::default()
    });
    let varint = prop_oneof![
        Just(vec![
            0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ]),
        Just(vec![0x01u8]),
        Just(vec![0xfeu8, 0xff, 0xff, 0xff, 0x0f]),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    let payload = (prop::collection::vec(varint, 0..12), any::<bool>()).prop_map(|(parts, cut)| {
        let mut out: Vec<u8> = parts.concat();
        if cut && !out.is_empty() {
            out.pop();
        }
        out
    });
    // A panic inside the decoder fails the run; a decoded payload is an object of the
    // event's fields.
    let result = runner.run(&payload, |bytes| {
        if let Ok(json) = crossdock_sim_salesforce::cdc::decode_platform(&def, &order, &bytes) {
            let fields = json.as_object().map(|o| o.len());
            prop_assert!(fields.is_some_and(|n| n <= def.fields.len()), "{json}");
        }
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}
