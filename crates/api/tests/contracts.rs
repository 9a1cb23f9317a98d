//! The committed contracts (`contracts/` at the workspace root) are what the code generates,
//! and the event schemas describe the events the domain really produces.
//!
//! Regenerate after a deliberate change:
//! `UPDATE_CONTRACTS=1 cargo test -p crossdock-api --test contracts`

use std::collections::BTreeMap;
use std::path::PathBuf;

use crossdock_api::contracts::{self, check, events};
use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption};
use crossdock_domain::ids::{ExternalRefs, LineNo, LocationId, OrderId, RmaId, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{
    Booking, Cancellation, Channel, Check, CheckResult, CreditMemoFacts, DraftLine, Event,
    InvoiceFacts, Milestone, OrderDraft, PaymentFacts, ReceiptFacts, RefundFacts, Rejection,
    ReturnAuthorisation, ReturnRefusal, ReturnRequest, Validation,
};
use crossdock_store::StoredEvent;
use rust_decimal::Decimal;
use time::macros::{date, datetime};

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

#[test]
fn committed_contracts_match_the_code() {
    let dir = folder();
    if std::env::var_os("UPDATE_CONTRACTS").is_some() {
        contracts::write(&dir).expect("contracts written");
    }
    let mut stale = Vec::new();
    for (name, generated) in contracts::generate() {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if committed != generated {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "contracts/ differs from the code for {stale:?}; regenerate with \
         `UPDATE_CONTRACTS=1 cargo test -p crossdock-api --test contracts` and review the diff \
         (and `crossdock contracts check OLD NEW` for breaking changes)"
    );
}

/// One real instance of every event type.
fn samples() -> Vec<Event> {
    let at = datetime!(2025-03-03 08:00:00 UTC);
    let lines: BTreeMap<LineNo, u32> = [(LineNo(1), 2), (LineNo(2), 1)].into();
    let draft = OrderDraft {
        id: OrderId::new("SF-1"),
        refs: ExternalRefs {
            sf_id: Some("801000000000001AAA".into()),
            sf_number: Some("1".into()),
            erp_ref: None,
        },
        account: "ACC-1".into(),
        channel: Channel::B2b,
        currency: Currency::USD,
        lines: vec![DraftLine {
            line: LineNo(1),
            sku: "SKU-1".into(),
            quantity: 2,
            unit_price: Decimal::new(1250, 2),
            sf_id: Some("802".into()),
        }],
        region: Some("EAST".into()),
        source: System::Salesforce,
        captured_at: at,
    };
    let rma = RmaId::new("RMA-1");
    vec![
        Event::OrderCaptured(draft),
        Event::OrderValidated(Validation {
            fulfilment: FulfilmentOption {
                method: FulfilmentMethod::SplitShipment,
                locations: vec![LocationId::new("WH-1")],
                promised_date: Some(date!(2025 - 03 - 05)),
            },
            checks: vec![CheckResult {
                check: Check::Price,
                passed: true,
                detail: "ok".into(),
            }],
            backorder_expected: false,
            at,
        }),
        Event::OrderRejected(Rejection {
            by: System::Hub,
            reasons: vec!["credit refused".into()],
            at,
        }),
        Event::OrderBooked(Booking {
            erp_ref: "SO-1".into(),
            at,
        }),
        Event::LineAllocated {
            line: LineNo(1),
            location: LocationId::new("WH-1"),
            quantity: 2,
            at,
        },
        Event::LineBackordered {
            line: LineNo(1),
            quantity: 1,
            at,
        },
        Event::ShipmentProgressed {
            shipment: "SH-1".into(),
            location: None,
            lines: lines.clone(),
            milestone: Milestone::Shipped,
            carrier: Some("UPS".into()),
            tracking: None,
            at,
        },
        Event::InvoiceIssued {
            invoice: "INV-1".into(),
            facts: InvoiceFacts {
                number: "I-1".into(),
                lines: lines.clone(),
                net: Decimal::new(2500, 2),
                tax: Decimal::new(500, 2),
                total: Decimal::new(3000, 2),
                issued_at: at,
            },
        },
        Event::PaymentReceived {
            payment: "PAY-1".into(),
            facts: PaymentFacts {
                invoice: None,
                amount: Decimal::new(3000, 2),
                received_at: at,
            },
        },
        Event::OrderCancelled(Cancellation {
            by: System::Api,
            reason: "changed mind".into(),
            at,
        }),
        Event::OrderClosed { at },
        Event::ReturnRequested {
            rma: rma.clone(),
            request: ReturnRequest {
                case: ExternalRefs::default(),
                lines: lines.clone(),
                reason: "damaged".into(),
                at,
            },
        },
        Event::ReturnAuthorised {
            rma: rma.clone(),
            authorisation: ReturnAuthorisation {
                erp_ref: "RMA-9".into(),
                at,
            },
        },
        Event::ReturnRefused {
            rma: rma.clone(),
            refusal: ReturnRefusal {
                reason: "late".into(),
                at,
            },
        },
        Event::ReturnReceived {
            rma: rma.clone(),
            receipt: "RC-1".into(),
            facts: ReceiptFacts { lines, at },
        },
        Event::CreditMemoIssued {
            rma: rma.clone(),
            credit_memo: "CM-1".into(),
            facts: CreditMemoFacts {
                number: "CN-1".into(),
                amount: Decimal::new(1375, 2),
                at,
            },
        },
        Event::RefundIssued {
            rma: rma.clone(),
            refund: "RF-1".into(),
            facts: RefundFacts {
                credit_memo: "CM-1".into(),
                amount: Decimal::new(1375, 2),
                at,
            },
        },
        Event::ReturnClosed { rma, at },
    ]
}

#[test]
fn every_event_type_has_a_schema_that_its_cloud_events_satisfy() {
    let events = samples();
    let mut covered: Vec<&str> = events.iter().map(Event::name).collect();
    covered.sort_unstable();
    let mut names = Event::NAMES.to_vec();
    names.sort_unstable();
    assert_eq!(covered, names, "one sample per event type");
    for (seq, event) in events.iter().enumerate() {
        let stored = StoredEvent {
            global_seq: i64::try_from(seq).expect("small") + 1,
            stream: "order:SF-1".into(),
            version: 1,
            kind: event.name().into(),
            payload: serde_json::to_value(event).expect("event json"),
            occurred_at: event.at(),
            recorded_at: event.at(),
            causation: None,
            correlation: Some("api:capture:SF-1".into()),
        };
        let envelope = events::to_cloud_event(&stored);
        let schema = events::schema(event.name());
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        let errors: Vec<String> = validator
            .iter_errors(&envelope)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {errors:#?}\n{envelope:#}",
            event.name()
        );
        // A member the contract does not know is refused (the schema is not vacuous).
        let mut extra = envelope.clone();
        extra["data"]["surprise"] = serde_json::json!(1);
        assert!(
            !validator.is_valid(&extra),
            "{} accepts unknown members",
            event.name()
        );
        // The wrong type name is refused.
        let mut wrong = envelope;
        wrong["type"] = serde_json::json!("dev.crossdock.order.Nope");
        assert!(!validator.is_valid(&wrong));
    }
}

#[test]
fn the_committed_contract_has_no_breaking_change_against_itself() {
    let dir = folder();
    let found = check::paths(&dir, &dir).expect("readable");
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn every_error_code_has_a_docs_page() {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors");
    let missing: Vec<&str> = crossdock_api::problem::CODES
        .iter()
        .map(|(code, _, _)| *code)
        .filter(|code| !docs.join(format!("{code}.md")).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/errors has no page for {missing:?}"
    );
}
