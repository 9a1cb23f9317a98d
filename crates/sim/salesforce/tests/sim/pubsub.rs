//! The Pub/Sub API over TLS gRPC, driven by a tonic client generated from the same proto.

use std::time::Duration;

use crossdock_sim_salesforce::Config;
use crossdock_sim_salesforce::avro::Reader;
use crossdock_sim_salesforce::proto::pub_sub_client::PubSubClient;
use crossdock_sim_salesforce::proto::{
    FetchRequest, FetchResponse, ProducerEvent, PublishRequest, SchemaRequest, TopicRequest,
};
use reqwest::Method;
use serde_json::{Map, Value as Json, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::Sim;

pub async fn client(sim: &Sim) -> PubSubClient<Channel> {
    let ca = std::fs::read_to_string(sim.handle.ca_pem_path()).expect("CA");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", sim.handle.grpc_endpoint()))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connects");
    PubSubClient::new(channel)
}

pub fn authed<T>(sim: &Sim, msg: T) -> tonic::Request<T> {
    authed_as(sim, &sim.token, msg)
}

/// A request carrying `token` (another user's, or one issued before a restart).
pub fn authed_as<T>(sim: &Sim, token: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let md = req.metadata_mut();
    md.insert("accesstoken", token.parse().expect("ascii"));
    md.insert("instanceurl", sim.handle.base_url().parse().expect("ascii"));
    md.insert("tenantid", sim.handle.org_id().parse().expect("ascii"));
    req
}

/// Decodes Avro binary against a schema (the subset Salesforce schemas use).
fn decode(schema: &Json, r: &mut Reader<'_>, names: &mut Map<String, Json>) -> Json {
    match schema {
        Json::String(t) => match t.as_str() {
            "null" | "boolean" | "int" | "long" | "double" | "string" => {
                r.primitive(t).expect("primitive")
            }
            named => {
                let s = names.get(named).cloned().expect("named type");
                decode(&s, r, names)
            }
        },
        Json::Array(branches) => {
            let b = usize::try_from(r.long().expect("branch")).expect("branch index");
            decode(&branches[b], r, names)
        }
        Json::Object(o) => {
            if let Some(n) = o.get("name").and_then(Json::as_str)
                && o.get("type")
                    .and_then(Json::as_str)
                    .is_some_and(|t| t == "record" || t == "enum")
            {
                names.insert(n.to_string(), schema.clone());
            }
            match o.get("type").and_then(Json::as_str) {
                Some("record") => {
                    let mut out = Map::new();
                    for f in o["fields"].as_array().expect("fields") {
                        out.insert(
                            f["name"].as_str().expect("name").to_string(),
                            decode(&f["type"], r, names),
                        );
                    }
                    Json::Object(out)
                }
                Some("enum") => {
                    let i = usize::try_from(r.long().expect("enum")).expect("index");
                    o["symbols"][i].clone()
                }
                Some("array") => {
                    let mut items = Vec::new();
                    loop {
                        let n = r.long().expect("block");
                        if n == 0 {
                            break;
                        }
                        for _ in 0..n.unsigned_abs() {
                            items.push(decode(&o["items"], r, names));
                        }
                    }
                    Json::Array(items)
                }
                _ => decode(&o["type"], r, names),
            }
        }
        _ => Json::Null,
    }
}

pub async fn decode_event(
    sim: &Sim,
    c: &mut PubSubClient<Channel>,
    ev: &ProducerEvent,
) -> (Json, Json) {
    let schema = c
        .get_schema(authed(
            sim,
            SchemaRequest {
                schema_id: ev.schema_id.clone(),
            },
        ))
        .await
        .expect("schema")
        .into_inner();
    let schema: Json = serde_json::from_str(&schema.schema_json).expect("schema json");
    let mut r = Reader::new(&ev.payload);
    let value = decode(&schema, &mut r, &mut Map::new());
    assert!(r.at_end(), "payload decodes exactly");
    (schema, value)
}

pub fn bitmap_names(schema: &Json, bitmap: &Json) -> Vec<String> {
    let fields = schema["fields"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for entry in bitmap
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        let hex = entry.trim_start_matches("0x");
        for (pos, c) in hex.chars().rev().enumerate() {
            let nibble = c.to_digit(16).expect("hex");
            for bit in 0..4 {
                if nibble & (1 << bit) != 0 {
                    out.push(
                        fields[pos * 4 + bit]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            }
        }
    }
    out
}

pub struct Subscription {
    pub tx: mpsc::Sender<FetchRequest>,
    pub rx: tonic::Streaming<FetchResponse>,
}

pub async fn subscribe(
    sim: &Sim,
    c: &mut PubSubClient<Channel>,
    first: FetchRequest,
) -> Result<Subscription, tonic::Status> {
    let (tx, rx) = mpsc::channel(8);
    tx.send(first).await.expect("queue first request");
    let stream = c
        .subscribe(authed(sim, ReceiverStream::new(rx)))
        .await?
        .into_inner();
    Ok(Subscription { tx, rx: stream })
}

pub async fn next(sub: &mut Subscription) -> Result<FetchResponse, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(10), sub.rx.next())
        .await
        .expect("a response within 10 s")
        .expect("stream open")
}

async fn order_fixture(sim: &Sim) -> String {
    let account = sim.create("Account", json!({"Name": "CDC Co"})).await;
    sim.create("Order", json!({"AccountId": account, "EffectiveDate": "2026-11-26", "Status": "Draft", "Hub_Order_Id__c": "H-CDC"})).await
}

#[tokio::test]
async fn change_events_carry_a_faithful_header_and_payload() {
    let sim = Sim::with(Config {
        keepalive_secs: 1,
        ..Config::default()
    })
    .await;
    let mut c = client(&sim).await;
    let topic = c
        .get_topic(authed(
            &sim,
            TopicRequest {
                topic_name: "/data/OrderChangeEvent".into(),
            },
        ))
        .await
        .expect("topic")
        .into_inner();
    assert!(topic.can_subscribe && !topic.can_publish);
    assert_eq!(topic.tenant_guid, sim.handle.org_id());
    let order = order_fixture(&sim).await;

    let mut sub = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            num_requested: 1,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("subscribes");
    let keepalive = next(&mut sub).await.expect("keepalive");
    assert!(keepalive.events.is_empty());
    assert_eq!(
        keepalive.latest_replay_id.len(),
        8,
        "keepalives carry an 8-byte replay id"
    );
    assert_eq!(keepalive.pending_num_requested, 1);

    let r = sim
        .send(sim.http.patch(sim.data(&format!("sobjects/Order/{order}"))).bearer_auth(&sim.token).header("Sforce-Call-Options", "client=crossdock").json(&json!({"Hub_Status__c": "Booked", "Description": null, "ERP_Order_Number__c": "ERP-1"})))
        .await;
    assert_eq!(r.status, 204);
    let resp = loop {
        let r = next(&mut sub).await.expect("events");
        if !r.events.is_empty() {
            break r;
        }
    };
    assert_eq!(resp.events.len(), 1);
    assert_eq!(resp.pending_num_requested, 0);
    let ev = &resp.events[0];
    assert_eq!(ev.replay_id.len(), 8);
    assert_eq!(resp.latest_replay_id, ev.replay_id);
    let event = ev.event.as_ref().expect("event");
    let (schema, value) = decode_event(&sim, &mut c, event).await;
    assert_eq!(schema["name"], json!("OrderChangeEvent"));
    assert_eq!(schema["namespace"], json!("com.sforce.eventbus"));
    assert_eq!(schema["fields"][0]["name"], json!("ChangeEventHeader"));
    let h = &value["ChangeEventHeader"];
    assert_eq!(h["entityName"], json!("Order"));
    assert_eq!(h["changeType"], json!("UPDATE"));
    assert_eq!(h["recordIds"], json!([order]));
    assert_eq!(
        h["changeOrigin"],
        json!("com/salesforce/api/rest/60.0;client=crossdock")
    );
    assert_eq!(h["commitUser"], json!(sim.handle.user_id()));
    assert_eq!(h["sequenceNumber"], json!(1));
    assert!(h["transactionKey"].as_str().is_some_and(|k| k.len() == 36));
    let mut changed = bitmap_names(&schema, &h["changedFields"]);
    changed.sort();
    assert_eq!(
        changed,
        ["ERP_Order_Number__c", "Hub_Status__c", "LastModifiedDate"]
    );
    assert_eq!(value["Hub_Status__c"], json!("Booked"));
    assert_eq!(
        value["AccountId"],
        json!(null),
        "unchanged fields are null over Pub/Sub"
    );
    assert!(
        value["LastModifiedDate"]
            .as_i64()
            .is_some_and(|ms| ms > 1_700_000_000_000)
    );

    sub.tx
        .send(FetchRequest {
            num_requested: 5,
            ..FetchRequest::default()
        })
        .await
        .expect("more credit");
    sim.delete(&format!("sobjects/Order/{order}")).await;
    let resp = loop {
        let r = next(&mut sub).await.expect("events");
        if !r.events.is_empty() {
            break r;
        }
    };
    let event = resp.events[0].event.as_ref().expect("event");
    let (_, value) = decode_event(&sim, &mut c, event).await;
    assert_eq!(value["ChangeEventHeader"]["changeType"], json!("DELETE"));
    assert_eq!(
        value["Hub_Order_Id__c"],
        json!(null),
        "DELETE carries only the header"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn replay_ids_resume_expire_and_are_validated() {
    let sim = Sim::start().await;
    let mut c = client(&sim).await;
    let order = order_fixture(&sim).await;
    for status in ["Working", "Done"] {
        sim.patch(
            &format!("sobjects/Order/{order}"),
            json!({"Hub_Status__c": status}),
        )
        .await;
    }
    let mut sub = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/ChangeEvents".into(),
            replay_preset: 1,
            num_requested: 100,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("earliest");
    let mut got = Vec::new();
    while got.len() < 4 {
        let r = next(&mut sub).await.expect("events");
        got.extend(r.events);
    }
    let replays: Vec<u64> = got
        .iter()
        .map(|e| u64::from_be_bytes(e.replay_id.as_slice().try_into().expect("8 bytes")))
        .collect();
    assert!(
        replays.windows(2).all(|w| w[0] < w[1]),
        "increasing: {replays:?}"
    );
    let second = got[1].replay_id.clone();

    let mut resumed = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            replay_preset: 2,
            replay_id: second.clone(),
            num_requested: 10,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("custom");
    let r = next(&mut resumed)
        .await
        .expect("events after the stored id");
    let types: Vec<u64> = r
        .events
        .iter()
        .map(|e| u64::from_be_bytes(e.replay_id.as_slice().try_into().expect("8")))
        .collect();
    assert!(types.iter().all(|&id| id > replays[1]) && !types.is_empty());

    let bogus = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            replay_preset: 2,
            replay_id: vec![0, 0, 0, 0, 0, 0, 0, 3],
            num_requested: 1,
            ..FetchRequest::default()
        },
    )
    .await;
    let err = match bogus {
        Ok(mut s) => next(&mut s).await.expect_err("invalid replay id"),
        Err(e) => e,
    };
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        err.metadata()
            .get("error-code")
            .and_then(|v| v.to_str().ok()),
        Some("sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted")
    );

    let trimmed = sim
        .admin(Method::POST, "events/trim", Some(json!({})))
        .await;
    assert!(trimmed.body["trimmed"].as_u64().is_some_and(|n| n >= 4));
    let stale = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            replay_preset: 2,
            replay_id: second,
            num_requested: 1,
            ..FetchRequest::default()
        },
    )
    .await;
    let err = match stale {
        Ok(mut s) => next(&mut s).await.expect_err("trimmed replay id"),
        Err(e) => e,
    };
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    sim.shutdown().await;
}

#[tokio::test]
async fn platform_events_publish_and_gap_and_schema_changes_reach_subscribers() {
    let sim = Sim::start().await;
    let mut c = client(&sim).await;
    let mut unauth = tonic::Request::new(TopicRequest {
        topic_name: "/event/Order_Shipped__e".into(),
    });
    unauth
        .metadata_mut()
        .insert("accesstoken", "00D000000000000!bad".parse().expect("ascii"));
    let err = c.get_topic(unauth).await.expect_err("unauthenticated");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        err.metadata()
            .get("error-code")
            .and_then(|v| v.to_str().ok()),
        Some("sfdc.platform.eventbus.grpc.service.auth.error")
    );

    let topic = c
        .get_topic(authed(
            &sim,
            TopicRequest {
                topic_name: "/event/Order_Shipped__e".into(),
            },
        ))
        .await
        .expect("topic")
        .into_inner();
    assert!(topic.can_publish);
    let schema = c
        .get_schema(authed(
            &sim,
            SchemaRequest {
                schema_id: topic.schema_id.clone(),
            },
        ))
        .await
        .expect("schema")
        .into_inner();
    let schema_json: Json = serde_json::from_str(&schema.schema_json).expect("json");
    let names: Vec<&str> = schema_json["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(&names[..2], ["CreatedDate", "CreatedById"]);

    let mut sub = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/event/Order_Shipped__e".into(),
            num_requested: 2,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("subscribes");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut payload = Vec::new();
    crossdock_sim_salesforce::avro::put_long(&mut payload, 1_790_000_000_000);
    crossdock_sim_salesforce::avro::put_string(&mut payload, sim.handle.user_id());
    for field in &names[2..] {
        if *field == "Order_Number__c" {
            crossdock_sim_salesforce::avro::put_long(&mut payload, 1);
            crossdock_sim_salesforce::avro::put_string(&mut payload, "ERP-42");
        } else {
            crossdock_sim_salesforce::avro::put_long(&mut payload, 0);
        }
    }
    let publish = PublishRequest {
        topic_name: "/event/Order_Shipped__e".into(),
        events: vec![
            ProducerEvent {
                id: "corr-1".into(),
                schema_id: topic.schema_id.clone(),
                payload: payload.clone(),
                headers: Vec::new(),
            },
            ProducerEvent {
                id: "corr-2".into(),
                schema_id: topic.schema_id.clone(),
                payload: vec![1, 2, 3],
                headers: Vec::new(),
            },
        ],
        auth_refresh: String::new(),
    };
    let result = c
        .publish(authed(&sim, publish))
        .await
        .expect("publish")
        .into_inner();
    assert_eq!(result.results[0].correlation_key, "corr-1");
    assert_eq!(result.results[0].replay_id.len(), 8);
    assert!(result.results[0].error.is_none());
    assert!(
        result.results[1].error.is_some(),
        "a payload that does not decode is refused"
    );
    let delivered = next(&mut sub).await.expect("event");
    let ev = delivered.events[0].event.as_ref().expect("event");
    let (_, value) = decode_event(&sim, &mut c, ev).await;
    assert_eq!(value["Order_Number__c"], json!("ERP-42"));

    let over_rest = sim
        .post(
            "sobjects/Order_Shipped__e",
            json!({"Order_Number__c": "ERP-43", "Carrier__c": "DHL"}),
        )
        .await;
    assert_eq!(over_rest.status, 201, "{}", over_rest.text);
    assert!(
        over_rest.body["id"]
            .as_str()
            .is_some_and(|i| i.starts_with("e00"))
    );
    let delivered = next(&mut sub).await.expect("event published over REST");
    let (_, value) = decode_event(
        &sim,
        &mut c,
        delivered.events[0].event.as_ref().expect("event"),
    )
    .await;
    assert_eq!(
        (
            value["Order_Number__c"].clone(),
            value["Carrier__c"].clone()
        ),
        (json!("ERP-43"), json!("DHL"))
    );
    let bad = sim
        .post("sobjects/Order_Shipped__e", json!({"Nope__c": 1}))
        .await;
    assert_eq!(bad.error_code(), Some("INVALID_FIELD"));

    let cdc_publish = c
        .publish(authed(
            &sim,
            PublishRequest {
                topic_name: "/data/OrderChangeEvent".into(),
                ..PublishRequest::default()
            },
        ))
        .await;
    assert_eq!(
        cdc_publish
            .expect_err("CDC topics refuse publishing")
            .code(),
        tonic::Code::PermissionDenied
    );

    let order = order_fixture(&sim).await;
    let mut orders = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            num_requested: 10,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("subscribes");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let gap = sim
        .admin(
            Method::POST,
            "events/gap",
            Some(json!({"object": "Order", "change_type": "GAP_UPDATE", "record_ids": [order]})),
        )
        .await;
    assert_eq!(gap.status, 201, "{}", gap.text);
    let overflow = sim
        .admin(
            Method::POST,
            "events/gap",
            Some(json!({"object": "Order", "change_type": "GAP_OVERFLOW"})),
        )
        .await;
    assert_eq!(overflow.status, 201);
    let added = sim
        .admin(
            Method::POST,
            "schema/fields",
            Some(json!({"object": "Order", "name": "Gift_Message__c", "type": "string"})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let new_schema = added.body["schema_id"]
        .as_str()
        .expect("schema id")
        .to_string();
    sim.patch(
        &format!("sobjects/Order/{order}"),
        json!({"Gift_Message__c": "Happy birthday"}),
    )
    .await;
    let mut events = Vec::new();
    while events.len() < 3 {
        events.extend(next(&mut orders).await.expect("events").events);
    }
    let mut decoded = Vec::new();
    for e in &events {
        decoded.push(decode_event(&sim, &mut c, e.event.as_ref().expect("event")).await);
    }
    assert_eq!(
        decoded[0].1["ChangeEventHeader"]["changeType"],
        json!("GAP_UPDATE")
    );
    assert_eq!(
        decoded[0].1["ChangeEventHeader"]["recordIds"],
        json!([order])
    );
    assert_eq!(
        decoded[1].1["ChangeEventHeader"]["changeType"],
        json!("GAP_OVERFLOW")
    );
    assert_eq!(decoded[1].1["ChangeEventHeader"]["recordIds"], json!([]));
    let last = events[2].event.as_ref().expect("event");
    assert_eq!(last.schema_id, new_schema);
    assert_ne!(
        events[0].event.as_ref().map(|e| e.schema_id.clone()),
        Some(new_schema)
    );
    assert_eq!(decoded[2].1["Gift_Message__c"], json!("Happy birthday"));
    sim.shutdown().await;
}

#[tokio::test]
async fn streams_enforce_their_topic_publish_streams_answer_and_retention_expires_ids() {
    let sim = Sim::with(Config {
        http_port: Some(0),
        token_ttl_secs: 30 * 24 * 3600,
        ..Config::default()
    })
    .await;
    let plain = sim
        .handle
        .http_url()
        .expect("plain HTTP listener")
        .to_string();
    let over_http = sim
        .send(
            sim.http
                .get(format!("{plain}/services/data/v60.0/limits"))
                .bearer_auth(&sim.token),
        )
        .await;
    assert_eq!(over_http.status, 200, "plain HTTP serves the same API");

    let mut c = client(&sim).await;
    let order = order_fixture(&sim).await;
    let mut sub = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            replay_preset: 1,
            num_requested: 1,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("subscribes");
    let first = next(&mut sub).await.expect("the create event");
    let stored = first.events[0].replay_id.clone();
    sub.tx
        .send(FetchRequest {
            topic_name: "/data/AccountChangeEvent".into(),
            num_requested: 1,
            ..FetchRequest::default()
        })
        .await
        .expect("send");
    let err = next(&mut sub)
        .await
        .expect_err("a stream cannot change topic");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    sim.delete(&format!("sobjects/Order/{order}")).await;
    let undeleted = sim
        .admin(Method::POST, &format!("records/{order}/undelete"), None)
        .await;
    assert_eq!(undeleted.status, 200, "{}", undeleted.text);
    assert_eq!(
        sim.get(&format!("sobjects/Order/{order}")).await.status,
        200
    );
    let mut all = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            replay_preset: 1,
            num_requested: 3,
            ..FetchRequest::default()
        },
    )
    .await
    .expect("subscribes");
    let mut events = Vec::new();
    while events.len() < 3 {
        events.extend(next(&mut all).await.expect("events").events);
    }
    let mut kinds = Vec::new();
    for e in &events {
        kinds.push(
            decode_event(&sim, &mut c, e.event.as_ref().expect("event"))
                .await
                .1["ChangeEventHeader"]["changeType"]
                .clone(),
        );
    }
    assert_eq!(kinds, [json!("CREATE"), json!("DELETE"), json!("UNDELETE")]);

    let (tx, rx) = mpsc::channel(4);
    let topic = c
        .get_topic(authed(
            &sim,
            TopicRequest {
                topic_name: "/event/Order_Shipped__e".into(),
            },
        ))
        .await
        .expect("topic")
        .into_inner();
    let mut responses = c
        .publish_stream(authed(&sim, ReceiverStream::new(rx)))
        .await
        .expect("stream")
        .into_inner();
    for n in 0..2 {
        let mut payload = Vec::new();
        crossdock_sim_salesforce::avro::put_long(&mut payload, 1_790_000_000_000);
        crossdock_sim_salesforce::avro::put_string(&mut payload, sim.handle.user_id());
        for _ in 0..4 {
            crossdock_sim_salesforce::avro::put_long(&mut payload, 0);
        }
        let event = ProducerEvent {
            id: format!("stream-{n}"),
            schema_id: topic.schema_id.clone(),
            payload,
            headers: Vec::new(),
        };
        tx.send(PublishRequest {
            topic_name: "/event/Order_Shipped__e".into(),
            events: vec![event],
            auth_refresh: String::new(),
        })
        .await
        .expect("send");
        let resp = tokio::time::timeout(Duration::from_secs(10), responses.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("ok");
        assert_eq!(resp.results[0].correlation_key, format!("stream-{n}"));
        assert_eq!(resp.results[0].replay_id.len(), 8);
    }

    sim.admin(
        Method::POST,
        "clock/advance",
        Some(json!({"secs": 73 * 3600})),
    )
    .await;
    let expired = subscribe(
        &sim,
        &mut c,
        FetchRequest {
            topic_name: "/data/OrderChangeEvent".into(),
            replay_preset: 2,
            replay_id: stored,
            num_requested: 1,
            ..FetchRequest::default()
        },
    )
    .await;
    let err = match expired {
        Ok(mut s) => next(&mut s)
            .await
            .expect_err("outside the retention window"),
        Err(e) => e,
    };
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        sim.handle.state().events().is_empty(),
        "72 h retention dropped every event"
    );
    sim.shutdown().await;
}
