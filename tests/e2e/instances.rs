//! One live process per `hub.instance`: two `crossdock serve` with the same name on one
//! PostgreSQL schema. The second refuses to start, naming the setting and the holder's
//! heartbeat age, exits non-zero and writes nothing; once the first stops on SIGTERM (and
//! releases its claim) a new one starts at once. A SIGKILLed holder's claim blocks the name
//! until its heartbeat is a lease old, then is taken over; one frozen past its lease
//! (SIGSTOP) loses its claim and, resumed, stops with an error.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crossdock_ports::{Clock, SystemClock};
use crossdock_testkit::{TempDir, free_port, wait_ready};
use serde_json::Value;
use tokio::process::{Child, Command};

const LEASE_SECONDS: u64 = 3;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_crossdock"))
}

/// A `crossdock serve` process with its output in `log`.
struct Serve {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Serve {
    fn start(dir: &TempDir, name: &str, store: &str, erp: &str) -> Serve {
        let port = free_port();
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"
[store]
url = "{store}"

[hub]
listen = "127.0.0.1:{port}"
instance = "hub-a"
lease_seconds = {LEASE_SECONDS}

[erp]
type = "sim"
base_url = "{erp}"
"#
            ),
        )
        .expect("config written");
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary())
            .args(["serve", "--config", &config.display().to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("crossdock serve starts");
        Serve { child, log, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn ready(&self) {
        wait_ready(&self.url("/healthz"), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.output()));
    }

    async fn exit(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running after {limit:?}; log:\n{}", self.output()))
            .expect("exit status")
    }

    fn terminate(&self) {
        self.signal("TERM");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}: {status}");
    }
}

/// `GET /ops/cluster`'s members.
async fn members(serve: &Serve, key: &str) -> Vec<Value> {
    let response = reqwest::Client::new()
        .get(serve.url("/ops/cluster"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET /ops/cluster");
    assert!(response.status().is_success(), "{}", response.status());
    let body: Value = response.json().await.expect("JSON");
    body["members"].as_array().expect("members").clone()
}

/// The incarnation holding `hub-a` per `GET /ops/cluster`, checked to be the only member with
/// a heartbeat younger than the lease.
async fn holder(serve: &Serve, key: &str) -> String {
    let members = members(serve, key).await;
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["name"], "hub-a");
    let age = members[0]["heartbeat_age_seconds"].as_f64().expect("age");
    assert!((0.0..LEASE_SECONDS as f64).contains(&age), "{members:?}");
    members[0]["incarnation"]
        .as_str()
        .expect("incarnation")
        .to_owned()
}

/// Waits until the claim of `incarnation` (the only one) has a heartbeat a lease old.
async fn wait_stale(store: &str, incarnation: &str) {
    let reader = crossdock_store::open(store).await.expect("store opens");
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECONDS * 4);
    loop {
        let members = reader.instances().await.expect("instances");
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].incarnation, incarnation);
        if members[0].heartbeat_age(SystemClock.now()) > Duration::from_secs(LEASE_SECONDS) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the heartbeat of a stopped process moved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.close().await;
}

/// Runs a second `serve` while `hub-a` is held and checks it refuses as the issue asks.
async fn refused(dir: &TempDir, name: &str, store: &str, erp: &str) -> String {
    let started = Instant::now();
    let mut second = Serve::start(dir, name, store, erp);
    let status = second.exit(Duration::from_secs(60)).await;
    let output = second.output();
    assert_eq!(status.code(), Some(1), "{status}; log:\n{output}");
    for expected in [
        "hub.instance `hub-a` is taken",
        "its last heartbeat",
        &format!("younger than hub.lease_seconds = {LEASE_SECONDS}"),
    ] {
        assert!(output.contains(expected), "{expected:?} missing:\n{output}");
    }
    assert!(
        !output.contains("crossdock is serving"),
        "the refused process served:\n{output}"
    );
    assert!(
        reqwest::get(second.url("/healthz")).await.is_err(),
        "the refused process listens"
    );
    println!(
        "second process refused in {:?}: {}",
        started.elapsed(),
        output
            .lines()
            .find(|l| l.contains("is taken"))
            .unwrap_or("")
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_with_a_taken_hub_instance_refuses_to_start() {
    let dir = TempDir::new("instances").expect("temp dir");
    let schema = format!("instances_{}", std::process::id());
    let base = "postgres://postgres@127.0.0.1:5432/test";
    let store = format!("{base}?schema={schema}");
    let sim = crossdock_sim_erp::Simulator::start(crossdock_sim_erp::Config::default())
        .await
        .expect("ERP simulator starts");
    let erp = sim.base_url();
    let created = std::process::Command::new(binary())
        .args([
            "api-key", "create", "--client", "ops", "--scopes", "ops:read", "--store", &store,
        ])
        .output()
        .expect("crossdock api-key create");
    assert!(created.status.success(), "{created:?}");
    let key = String::from_utf8(created.stdout)
        .expect("key")
        .trim()
        .to_owned();

    let mut first = Serve::start(&dir, "first", &store, &erp);
    first.ready().await;
    let anonymous = reqwest::get(first.url("/ops/cluster"))
        .await
        .expect("GET /ops/cluster");
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let incarnation = holder(&first, &key).await;

    refused(&dir, "second", &store, &erp).await;
    // The refusal wrote nothing: the first still holds the name, and heartbeats on.
    assert_eq!(holder(&first, &key).await, incarnation);
    let heartbeat = members(&first, &key).await[0]["heartbeat_at"].clone();
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECONDS * 2);
    while members(&first, &key).await[0]["heartbeat_at"] == heartbeat {
        assert!(Instant::now() < deadline, "no heartbeat in two leases");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM: the first stops cleanly and releases the name; a new process starts at once.
    first.terminate();
    let status = first.exit(Duration::from_secs(60)).await;
    assert!(status.success(), "{status}; log:\n{}", first.output());
    let started = Instant::now();
    let mut third = Serve::start(&dir, "third", &store, &erp);
    third.ready().await;
    let third_incarnation = holder(&third, &key).await;
    assert_ne!(third_incarnation, incarnation);
    println!(
        "after SIGTERM a new process served in {:?}",
        started.elapsed()
    );

    // SIGKILL: the claim stays until its heartbeat is a lease old, then is taken over.
    let _ = third.child.kill().await;
    refused(&dir, "fourth", &store, &erp).await;
    wait_stale(&store, &third_incarnation).await;
    let mut fifth = Serve::start(&dir, "fifth", &store, &erp);
    fifth.ready().await;
    let fifth_incarnation = holder(&fifth, &key).await;
    assert_ne!(fifth_incarnation, third_incarnation);
    assert!(
        fifth.output().contains("Took over a stale claim"),
        "log:\n{}",
        fifth.output()
    );

    // Frozen past its lease (SIGSTOP): its claim is taken over, and once resumed (SIGCONT)
    // it finds the claim gone at its next heartbeat and stops with an error.
    fifth.signal("STOP");
    wait_stale(&store, &fifth_incarnation).await;
    let mut sixth = Serve::start(&dir, "sixth", &store, &erp);
    sixth.ready().await;
    let sixth_incarnation = holder(&sixth, &key).await;
    assert_ne!(sixth_incarnation, fifth_incarnation);
    fifth.signal("CONT");
    let status = fifth.exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{status}; log:\n{}", fifth.output());
    assert!(
        fifth
            .output()
            .contains("another process took over hub.instance `hub-a`"),
        "log:\n{}",
        fifth.output()
    );
    // The resumed process wrote nothing over the new holder's claim.
    assert_eq!(holder(&sixth, &key).await, sixth_incarnation);
    sixth.terminate();
    assert!(sixth.exit(Duration::from_secs(60)).await.success());
    let reader = crossdock_store::open(&store).await.expect("store opens");
    assert!(
        reader.instances().await.expect("instances").is_empty(),
        "a stopped process released its claim"
    );
    reader.close().await;

    sim.shutdown().await;
    crossdock_store::postgres::drop_schema(base, &schema)
        .await
        .expect("schema dropped");
}
