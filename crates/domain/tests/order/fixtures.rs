//! Builders shared by the examples and the properties.

use std::collections::BTreeMap;

use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption};
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, LocationId, OrderId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{
    Channel, Command, CreditAnswer, DraftLine, Event, Order, OrderDraft, ValidationFacts,
    ValidationPolicy, decide, evolve,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;

pub fn at(minute: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + minute * 60).expect("valid timestamp")
}

pub fn draft(lines: &[(u32, &str)]) -> OrderDraft {
    OrderDraft {
        id: OrderId::new("ORD-1"),
        refs: ExternalRefs {
            sf_id: Some("801000000000001AAA".to_owned()),
            sf_number: Some("00000101".to_owned()),
            erp_ref: None,
        },
        account: AccountId::new("ACC-1"),
        channel: Channel::B2b,
        currency: Currency::USD,
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, (quantity, price))| DraftLine {
                line: LineNo(i as u32 + 1),
                sku: Sku::new(format!("SKU-{}", i + 1)),
                quantity: *quantity,
                unit_price: price.parse().expect("decimal"),
                sf_id: None,
            })
            .collect(),
        region: Some("EU".to_owned()),
        source: System::Salesforce,
        captured_at: at(0),
    }
}

/// ERP answers that make the draft pass validation.
pub fn passing_facts(draft: &OrderDraft) -> ValidationFacts {
    ValidationFacts {
        prices: draft.lines.iter().map(|l| (l.line, l.unit_price)).collect(),
        available: draft.lines.iter().map(|l| (l.sku.clone(), 1_000)).collect(),
        credit: CreditAnswer {
            approved: true,
            available: Some(Decimal::from(1_000_000)),
            reason: None,
        },
        options: vec![FulfilmentOption {
            method: FulfilmentMethod::ShipFromWarehouse,
            locations: vec![LocationId::new("WH-1")],
            promised_date: None,
        }],
    }
}

pub fn validate(draft: &OrderDraft, minute: i64) -> Command {
    Command::ValidateOrder {
        facts: passing_facts(draft),
        policy: ValidationPolicy::default(),
        at: at(minute),
    }
}

pub fn lines(pairs: &[(u32, u32)]) -> BTreeMap<LineNo, u32> {
    pairs.iter().map(|(l, q)| (LineNo(*l), *q)).collect()
}

/// Decides and applies each command in turn, returning the state and every event.
///
/// # Panics
/// When a command is refused: fixtures only feed valid histories.
pub fn run(commands: &[Command]) -> (Order, Vec<Event>) {
    let mut state = Order::default();
    let mut events = Vec::new();
    for command in commands {
        let produced =
            decide(command, &state).unwrap_or_else(|e| panic!("{} refused: {e}", command.name()));
        for event in &produced {
            evolve(&mut state, event);
        }
        events.extend(produced);
    }
    (state, events)
}
