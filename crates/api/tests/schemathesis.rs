//! Property-based contract test: schemathesis generates requests from `/openapi.json` against
//! a real hub on 127.0.0.1 (temp SQLite store, loopback downstreams, an API key with every
//! scope) and checks that no answer is a server error and every answer conforms to the
//! contract.
//!
//! Needs schemathesis: run `scripts/setup/schemathesis.sh` first.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossdock_api::auth::keys::{self, NewKey};
use crossdock_api::auth::scope::Scope;
use crossdock_api::{ApiConfig, AppState};
use crossdock_engine::loopback::{LoopbackErp, LoopbackSalesforce};
use crossdock_engine::{Engine, EngineConfig, Parts};
use crossdock_ports::{Clock, SeededRng, SystemClock};
use tokio_util::sync::CancellationToken;

fn schemathesis() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-schemathesis/bin/schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_conforms_to_its_contract_under_generated_requests() {
    let program = schemathesis();
    assert!(
        program.exists(),
        "schemathesis is not installed at {}: run scripts/setup/schemathesis.sh",
        program.display()
    );
    let dir = std::env::temp_dir().join(format!("crossdock-schemathesis-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = crossdock_store::open(dir.join("hub.sqlite").to_str().expect("utf-8"))
        .await
        .expect("store");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Engine::new(Parts {
        store: store.clone(),
        erp: Arc::new(LoopbackErp::new(clock.clone())),
        salesforce: Arc::new(LoopbackSalesforce::default()),
        clock: clock.clone(),
        rng: Arc::new(SeededRng::new(3)),
        config: EngineConfig {
            owner: "schemathesis".to_owned(),
            idle_poll: Duration::from_millis(20),
            erp_poll: Duration::from_millis(50),
            ..EngineConfig::default()
        },
    });
    let shutdown = CancellationToken::new();
    tokio::spawn(Arc::clone(&engine).run(shutdown.clone()));
    let key = keys::create(
        &store,
        NewKey {
            client: "schemathesis".to_owned(),
            scopes: Scope::ALL.to_vec(),
            accounts: Vec::new(),
            channels: Vec::new(),
            rate_per_second: Some(1_000_000),
        },
        clock.now(),
    )
    .await
    .expect("key")
    .key;
    let state = AppState::with_config(engine, ApiConfig::default()).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(crossdock_api::serve(listener, state, shutdown.clone()));

    let output = tokio::process::Command::new(&program)
        .args([
            "run",
            &format!("{url}/openapi.json"),
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--header",
            &format!("Authorization: Bearer {key}"),
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(&dir)
        .output()
        .await
        .expect("schemathesis runs");
    shutdown.cancel();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found contract violations (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
}
