//! The Pub/Sub subscriber against the simulator's Pub/Sub API: captures, echo suppression,
//! durable checkpoints across restarts, expired replay ids, schema changes, gap events, and
//! the other Salesforce changes the hub listens to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossdock_domain::ids::{LineNo, System};
use crossdock_domain::order::{Command, OrderDraft};
use crossdock_ports::Salesforce;
use crossdock_ports::inbound::{Inbound, InboundMessage};
use crossdock_salesforce::Adapter;
use crossdock_salesforce::mapping::LineValue;
use crossdock_salesforce::pubsub::{Counters, Subscriber, replay_hex};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{MemoryCheckpoints, MemorySink, Org, Stage, counts, summary_of, wait_until};

const ORDERS: &str = "/data/OrderChangeEvent";

struct Running {
    counters: Arc<Counters>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(
        adapter: &Arc<Adapter>,
        sink: &Arc<MemorySink>,
        checkpoints: &Arc<MemoryCheckpoints>,
    ) -> Running {
        let subscriber = Subscriber::build(adapter.clone(), sink.clone(), checkpoints.clone())
            .expect("subscriber builds");
        let counters = subscriber.counters();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(subscriber.run(async move {
            let _ = stopped.await;
        }));
        Running {
            counters,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("subscriber task");
    }

    fn count(&self, pick: impl Fn(&Counters) -> &std::sync::atomic::AtomicU64) -> u64 {
        pick(&self.counters).load(Ordering::Relaxed)
    }
}

fn captures(sink: &MemorySink) -> Vec<(InboundMessage, OrderDraft)> {
    sink.messages()
        .into_iter()
        .filter_map(|m| match &m.body {
            Inbound::Order {
                command: Command::CaptureOrder(draft),
                ..
            } => Some((m.clone(), draft.clone())),
            _ => None,
        })
        .collect()
}

fn captured_ids(sink: &MemorySink) -> Vec<String> {
    captures(sink)
        .into_iter()
        .filter_map(|(_, d)| d.refs.sf_id)
        .collect()
}

fn unreadable(sink: &MemorySink) -> Vec<InboundMessage> {
    sink.messages()
        .into_iter()
        .filter(|m| matches!(m.body, Inbound::Unreadable { .. }))
        .collect()
}

fn key(topic: &str) -> String {
    format!("salesforce:{topic}")
}

/// Waits until the checkpoint of `topic` is at or past the replay id in `message_id`.
async fn checkpointed(checkpoints: &MemoryCheckpoints, topic: &str, message_id: &str) {
    let hex = message_id
        .trim_start_matches(topic)
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    wait_until(10, "the checkpoint", || {
        checkpoints.get(&key(topic)).is_some_and(|c| c >= hex)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activated_order_is_captured_and_the_hubs_own_writes_are_not_echoed() {
    let org = Org::start().await;
    let seed = org.seed(2, 2);
    let adapter = org.adapter();
    let sink = Arc::new(MemorySink::default());
    let checkpoints = Arc::new(MemoryCheckpoints::default());
    let running = Running::start(&adapter, &sink, &checkpoints);

    let order = &seed.orders[0];
    org.patch("Order", &order.id, json!({"Status": "Activated"}))
        .await;
    wait_until(15, "the capture", || captures(&sink).len() == 1).await;
    let (message, draft) = captures(&sink).remove(0);
    assert_eq!(message.source, System::Salesforce);
    let hex = message
        .message_id
        .strip_prefix("/data/OrderChangeEvent/")
        .expect("topic prefix");
    assert_eq!(
        hex.len(),
        16,
        "8-byte replay id in hex: {}",
        message.message_id
    );
    assert!(message.raw.contains("\"Activated\""), "{}", message.raw);
    assert!(message.raw.contains("\"changedFields\""), "{}", message.raw);
    assert_eq!(draft.id.as_str(), format!("SF-{}", order.number));
    assert_eq!(draft.account.as_str(), seed.account_number);
    let lines: Vec<(u32, String, u32)> = draft
        .lines
        .iter()
        .map(|l| (l.line.0, l.sku.to_string(), l.quantity))
        .collect();
    let expected: Vec<(u32, String, u32)> = order
        .items
        .iter()
        .enumerate()
        .map(|(i, (_, sku, q))| (u32::try_from(i + 1).expect("small"), sku.clone(), *q))
        .collect();
    assert_eq!(lines, expected);

    // The hub writes the order's state back: its own change comes back as an event with
    // `client=crossdock` and is not delivered.
    // (The simulated org refuses every OrderItem change on an activated order, stricter than
    // Salesforce, which lets a user with "Edit Activated Orders" update item fields: this
    // write-back leaves the item fields out through the mapping.)
    let writer = org.adapter_with(|c| {
        for (field, _) in crossdock_salesforce::mapping::ORDER_ITEM_FIELDS {
            c.mapping
                .order_item
                .insert((*field).to_owned(), LineValue::Omit);
        }
    });
    let suppressed = running.count(|c| &c.suppressed);
    let results = writer
        .write_orders(&[summary_of(order, &seed.account_number, 0, Stage::Booked)])
        .await;
    assert!(results[0].is_ok(), "{results:?}");
    wait_until(10, "the echo to be suppressed", || {
        running.count(|c| &c.suppressed) > suppressed
    })
    .await;
    // ... but it is checkpointed: the position moves up to the org's latest event.
    let latest = replay_hex(&org.sim.state().latest_replay_id().to_be_bytes());
    wait_until(10, "the checkpoint to pass the echo", || {
        checkpoints.get(&key(ORDERS)).is_some_and(|c| c >= latest)
    })
    .await;
    assert_eq!(captures(&sink).len(), 1, "no echo delivered");
    let order_messages = sink
        .messages()
        .into_iter()
        .filter(|m| m.message_id.starts_with(ORDERS))
        .count();
    assert_eq!(order_messages, 1, "{:?}", sink.messages());
    assert_eq!(running.count(|c| &c.unreadable), 0);
    running.stop().await;
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_survives_a_restart_without_losing_or_repeating_events() {
    let org = Org::start().await;
    let seed = org.seed(3, 1);
    // One event per fetch: every event needs fresh flow-control credit.
    let adapter = org.adapter_with(|c| c.pubsub.num_requested = 1);
    let sink = Arc::new(MemorySink::default());
    let checkpoints = Arc::new(MemoryCheckpoints::default());

    let first = Running::start(&adapter, &sink, &checkpoints);
    org.patch("Order", &seed.orders[0].id, json!({"Status": "Activated"}))
        .await;
    wait_until(15, "the first capture", || captures(&sink).len() == 1).await;
    let id = captures(&sink)[0].0.message_id.clone();
    checkpointed(&checkpoints, ORDERS, &id).await;
    first.stop().await;
    assert_eq!(adapter.client().tokens().requests(), 1);

    // Orders activated while the subscriber is down; its token expires meanwhile.
    for order in &seed.orders[1..] {
        org.patch("Order", &order.id, json!({"Status": "Activated"}))
            .await;
    }
    org.sim.expire_tokens();
    let second = Running::start(&adapter, &sink, &checkpoints);
    wait_until(15, "the captures made while down", || {
        captures(&sink).len() == 3
    })
    .await;
    assert!(
        second.count(|c| &c.reconnects) >= 1,
        "UNAUTHENTICATED led to a reconnect"
    );
    assert_eq!(
        adapter.client().tokens().requests(),
        2,
        "one refresh for every topic"
    );
    let mut ids = captured_ids(&sink);
    ids.sort();
    let mut expected: Vec<String> = seed.orders.iter().map(|o| o.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected, "nothing lost");
    let repeats: BTreeMap<String, usize> = counts(sink.accepted_ids())
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(repeats.is_empty(), "nothing delivered twice: {repeats:?}");
    second.stop().await;
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_replay_id_resumes_from_earliest_and_reports_the_gap_once() {
    let org = Org::start().await;
    let seed = org.seed(3, 1);
    let adapter = org.adapter_with(|c| c.pubsub.topics = vec![ORDERS.to_owned()]);
    let sink = Arc::new(MemorySink::default());
    let checkpoints = Arc::new(MemoryCheckpoints::default());

    let first = Running::start(&adapter, &sink, &checkpoints);
    org.patch("Order", &seed.orders[0].id, json!({"Status": "Activated"}))
        .await;
    wait_until(15, "the first capture", || captures(&sink).len() == 1).await;
    let id = captures(&sink)[0].0.message_id.clone();
    checkpointed(&checkpoints, ORDERS, &id).await;
    first.stop().await;
    assert!(
        checkpoints.get(&format!("{}#time", key(ORDERS))).is_some(),
        "commit time kept"
    );

    org.patch("Order", &seed.orders[1].id, json!({"Status": "Activated"}))
        .await;
    // Retention passes: every stored replay id becomes invalid.
    org.sim.trim_events(None);

    let second = Running::start(&adapter, &sink, &checkpoints);
    wait_until(15, "the gap report", || !unreadable(&sink).is_empty()).await;
    wait_until(15, "the re-read of the order changed while down", || {
        captured_ids(&sink).contains(&seed.orders[1].id)
    })
    .await;
    let notices = unreadable(&sink);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].message_id.contains("/replay-reset/"),
        "{}",
        notices[0].message_id
    );
    let Inbound::Unreadable { reason } = &notices[0].body else {
        unreachable!()
    };
    assert!(reason.contains("no longer accepts replay id"), "{reason}");
    assert!(
        captures(&sink)
            .iter()
            .any(|(m, d)| m.message_id.contains("/resync/")
                && d.refs.sf_id.as_deref() == Some(seed.orders[1].id.as_str())),
        "the missed activation came from the re-read"
    );
    // The subscription goes on from EARLIEST: new events still arrive.
    org.patch("Order", &seed.orders[2].id, json!({"Status": "Activated"}))
        .await;
    wait_until(15, "a capture after the reset", || {
        captured_ids(&sink).contains(&seed.orders[2].id)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(second.count(|c| &c.gaps), 1, "the gap was handled once");
    let resets = sink
        .accepted_ids()
        .into_iter()
        .filter(|i| i.contains("/replay-reset/"))
        .count();
    assert_eq!(resets, 1, "no resubscribe loop");
    second.stop().await;
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_gaps_and_overflow_keep_the_hub_in_sync() {
    let org = Org::start().await;
    let seed = org.seed(2, 1);
    let adapter = org.adapter_with(|c| c.pubsub.topics = vec![ORDERS.to_owned()]);
    let sink = Arc::new(MemorySink::default());
    let checkpoints = Arc::new(MemoryCheckpoints::default());
    let running = Running::start(&adapter, &sink, &checkpoints);

    // A field added to Order at run time: a new schema id, decoded without trouble.
    org.admin(
        reqwest::Method::POST,
        "schema/fields",
        json!({"object": "Order", "name": "Gift_Note__c", "type": "string"}),
    )
    .await;
    let first = &seed.orders[0];
    org.patch(
        "Order",
        &first.id,
        json!({"Status": "Activated", "Gift_Note__c": "wrap it"}),
    )
    .await;
    wait_until(15, "the capture after the schema change", || {
        captures(&sink).len() == 1
    })
    .await;
    assert!(captures(&sink)[0].0.raw.contains("wrap it"));
    assert_eq!(running.count(|c| &c.unreadable), 0);

    // The second order is activated by the hub itself (suppressed), then Salesforce reports
    // a gap for it: the subscriber re-reads it and captures it.
    let second = &seed.orders[1];
    let url = format!(
        "{}/services/data/v60.0/sobjects/Order/{}",
        org.sim.base_url(),
        second.id
    );
    let resp = org
        .http
        .patch(url)
        .bearer_auth(org.sim.access_token())
        .header("Sforce-Call-Options", "client=crossdock")
        .json(&json!({"Status": "Activated"}))
        .send()
        .await
        .expect("answered");
    assert!(resp.status().is_success());
    wait_until(10, "the suppression", || {
        running.count(|c| &c.suppressed) >= 1
    })
    .await;
    assert_eq!(captures(&sink).len(), 1);
    org.admin(
        reqwest::Method::POST,
        "events/gap",
        json!({"object": "Order", "change_type": "GAP_UPDATE", "record_ids": [second.id]}),
    )
    .await;
    wait_until(15, "the re-read after the gap", || {
        captured_ids(&sink).contains(&second.id)
    })
    .await;
    let (gap_message, _) = captures(&sink)
        .into_iter()
        .find(|(_, d)| d.refs.sf_id.as_deref() == Some(second.id.as_str()))
        .expect("captured");
    assert!(
        gap_message
            .message_id
            .ends_with(&format!("/{}/capture", second.id)),
        "{}",
        gap_message.message_id
    );
    assert_eq!(running.count(|c| &c.gaps), 1);

    // Overflow: every Order changed since the last commit seen is re-read.
    org.admin(
        reqwest::Method::POST,
        "events/gap",
        json!({"object": "Order", "change_type": "GAP_OVERFLOW"}),
    )
    .await;
    wait_until(15, "the overflow re-read", || captures(&sink).len() >= 4).await;
    let overflow: Vec<String> = captures(&sink)
        .into_iter()
        .skip(2)
        .filter_map(|(_, d)| d.refs.sf_id)
        .collect();
    assert!(
        overflow.contains(&first.id) && overflow.contains(&second.id),
        "{overflow:?}"
    );
    assert_eq!(running.count(|c| &c.gaps), 2);
    running.stop().await;
    org.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_returns_and_accounts_become_canonical_messages() {
    let org = Org::start().await;
    let seed = org.seed(1, 2);
    let order = &seed.orders[0];
    let adapter = org.adapter();
    let sink = Arc::new(MemorySink::default());
    let checkpoints = Arc::new(MemoryCheckpoints::default());
    let running = Running::start(&adapter, &sink, &checkpoints);

    org.patch("Order", &order.id, json!({"Status": "Activated"}))
        .await;
    org.patch(
        "Order",
        &order.id,
        json!({"Cancel_Requested__c": true, "Cancel_Reason__c": "Customer changed their mind"}),
    )
    .await;
    let hub_id = format!("SF-{}", order.number);
    wait_until(15, "the cancellation", || {
        sink.messages().iter().any(|m| {
            matches!(
                &m.body,
                Inbound::Order {
                    command: Command::CancelOrder { .. },
                    ..
                }
            )
        })
    })
    .await;
    let cancel = sink
        .messages()
        .into_iter()
        .find_map(|m| match m.body {
            Inbound::Order {
                order,
                command: Command::CancelOrder { by, reason, .. },
            } => Some((order, by, reason)),
            _ => None,
        })
        .expect("cancel");
    assert_eq!(cancel.0.as_str(), hub_id);
    assert_eq!(cancel.1, System::Salesforce);
    assert_eq!(cancel.2, "Customer changed their mind");

    let sku = &order.items[1].1;
    let case = org
        .create(
            "Case",
            json!({"Subject": "Arrived broken", "Type": "Return", "Order__c": order.id,
                   "Return_Lines__c": format!("{sku}:1"), "Reason": "Damaged"}),
        )
        .await;
    let number = org.record(&case)["CaseNumber"]
        .as_str()
        .expect("number")
        .to_owned();
    wait_until(15, "the return request", || {
        sink.messages().iter().any(|m| {
            matches!(
                &m.body,
                Inbound::Order {
                    command: Command::RequestReturn { .. },
                    ..
                }
            )
        })
    })
    .await;
    let (target, rma, request) = sink
        .messages()
        .into_iter()
        .find_map(|m| match m.body {
            Inbound::Order {
                order,
                command: Command::RequestReturn { rma, request },
            } => Some((order, rma, request)),
            _ => None,
        })
        .expect("return");
    assert_eq!(target.as_str(), hub_id);
    assert_eq!(rma.as_str(), format!("RMA-{number}"));
    assert_eq!(request.lines, BTreeMap::from([(LineNo(2), 1)]));
    assert_eq!(request.case.sf_id.as_deref(), Some(case.as_str()));
    assert_eq!(request.case.sf_number.as_deref(), Some(number.as_str()));
    assert_eq!(request.reason, "Damaged");

    org.create(
        "Account",
        json!({"Name": "Northwind", "ERP_Customer_Number__c": "C-NORTH", "Customer_Tier__c": "Gold", "BillingCity": "Oslo"}),
    )
    .await;
    wait_until(15, "the account", || {
        sink.messages().iter().any(
            |m| matches!(&m.body, Inbound::Account { account } if account.id.as_str() == "C-NORTH"),
        )
    })
    .await;
    let account = sink
        .messages()
        .into_iter()
        .find_map(|m| match m.body {
            Inbound::Account { account } if account.id.as_str() == "C-NORTH" => Some(account),
            _ => None,
        })
        .expect("account");
    assert_eq!(account.name, "Northwind");
    assert_eq!(account.tier, crossdock_domain::account::CustomerTier::Gold);
    assert_eq!(account.billing.map(|a| a.city), Some("Oslo".to_owned()));
    assert_eq!(
        running.count(|c| &c.unreadable),
        0,
        "{:?}",
        unreadable(&sink)
    );
    running.stop().await;
    org.shutdown().await;
}
