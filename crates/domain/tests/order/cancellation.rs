//! A cancellation the ERP refuses because the goods already left: the request is settled by
//! the shipment, the order carries on through invoice and payment and closes, whatever order
//! the events arrive in and however often.

use crossdock_domain::ids::{InvoiceId, LocationId, PaymentId, ShipmentId, System};
use crossdock_domain::order::{
    Command, Effect, Event, InvoiceFacts, Milestone, Order, OrderStatus, PaymentFacts, decide,
    evolve, react, replay,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::fixtures::{at, draft, lines, run, validate};

fn dec(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

fn cancel(minute: i64) -> Command {
    Command::CancelOrder {
        by: System::Salesforce,
        reason: "Customer found a cheaper offer".to_owned(),
        at: at(minute),
    }
}

fn ship(milestone: Milestone, minute: i64) -> Command {
    Command::RecordShipment {
        shipment: ShipmentId::new("S1"),
        location: Some(LocationId::new("WH-1")),
        lines: lines(&[(1, 2)]),
        milestone,
        carrier: Some("UPS".to_owned()),
        tracking: Some("1ZS1".to_owned()),
        at: at(minute),
    }
}

fn invoice(minute: i64) -> Command {
    Command::RecordInvoice {
        invoice: InvoiceId::new("INV-1"),
        facts: InvoiceFacts {
            number: "INV2026-1".to_owned(),
            lines: lines(&[(1, 2)]),
            net: dec("20.00"),
            tax: dec("2.00"),
            total: dec("22.00"),
            issued_at: at(minute),
        },
    }
}

fn pay(minute: i64) -> Command {
    Command::RecordPayment {
        payment: PaymentId::new("PAY-1"),
        facts: PaymentFacts {
            invoice: Some(InvoiceId::new("INV-1")),
            amount: dec("22.00"),
            received_at: at(minute),
        },
    }
}

/// Booked; the cancellation is decided while the hub has not heard of the shipment yet (the
/// ERP had already shipped, so it refuses); then the shipment, invoice and payment arrive.
fn refused_cancellation() -> (Vec<Command>, Order, Vec<Event>) {
    let d = draft(&[(2, "10.00")]);
    let commands = vec![
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        Command::RecordBooking {
            erp_ref: "SO-1".to_owned(),
            at: at(2),
        },
        cancel(3),
        ship(Milestone::Shipped, 4),
        ship(Milestone::Delivered, 5),
        invoice(6),
        pay(7),
    ];
    let (state, events) = run(&commands);
    (commands, state, events)
}

#[test]
fn a_cancellation_refused_because_the_order_shipped_lets_it_close() {
    let (mut commands, state, events) = refused_cancellation();
    assert!(state.cancellation.is_some(), "the request is on record");
    assert!(state.cancellation_refused());
    assert!(!state.cancellation_in_force());
    assert_eq!(state.status(), OrderStatus::Paid);
    assert!(
        state.is_closable(),
        "a refused cancellation does not hold the order open"
    );
    assert_eq!(state.stage_times().cancelled, None);
    let summary = state.summary().expect("captured");
    assert_eq!(
        summary.reason.as_deref(),
        Some("Cancellation refused, the order had already shipped: Customer found a cheaper offer"),
        "Salesforce is told the cancellation was refused, not that it is pending"
    );

    // The payment's reaction closes the order, and the ERP is not asked to cancel any more.
    let effects = react(events.last().expect("events"), &state);
    assert!(effects.contains(&Effect::CloseOrder), "{effects:?}");
    assert!(!Effect::CancelInErp.is_still_needed(&state));

    commands.push(Command::CloseOrder { at: at(8) });
    let (closed, _) = run(&commands);
    assert_eq!(closed.status(), OrderStatus::Closed);
    // The same request heard again adds nothing.
    assert!(decide(&cancel(9), &closed).unwrap().is_empty());
}

#[test]
fn a_cancellation_before_anything_shipped_still_cancels_and_is_not_closable() {
    let d = draft(&[(2, "10.00")]);
    let (state, _) = run(&[
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        Command::RecordBooking {
            erp_ref: "SO-1".to_owned(),
            at: at(2),
        },
        cancel(3),
    ]);
    assert!(state.cancellation_in_force());
    assert!(!state.cancellation_refused());
    assert_eq!(state.status(), OrderStatus::Cancelled);
    assert!(!state.is_closable());
    assert_eq!(state.stage_times().cancelled, Some(at(3)));
    assert!(Effect::CancelInErp.is_still_needed(&state));
    assert_eq!(
        state.summary().expect("captured").reason.as_deref(),
        Some("Customer found a cheaper offer")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Ship, request cancel, invoice, pay in any order and with duplicates: the same state,
    /// closable, and closing it gives `Closed`.
    #[test]
    fn a_refused_cancellation_closes_in_any_event_order(
        order in Just((0..8usize).collect::<Vec<_>>()).prop_shuffle(),
        duplicates in proptest::collection::vec(0..8usize, 0..4),
    ) {
        let (_, expected, events) = refused_cancellation();
        prop_assert_eq!(events.len(), 8);
        let arrival: Vec<Event> = order
            .iter()
            .chain(duplicates.iter())
            .map(|i| events[*i].clone())
            .collect();
        let mut state = Order::default();
        for event in &arrival {
            evolve(&mut state, event);
        }
        prop_assert_eq!(&state, &expected);
        prop_assert_eq!(&replay(arrival.iter().rev()), &expected);
        prop_assert!(state.is_closable());
        prop_assert_eq!(state.status(), OrderStatus::Paid);
        let closing = decide(&Command::CloseOrder { at: at(8) }, &state)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(closing.len(), 1);
        evolve(&mut state, &closing[0]);
        prop_assert_eq!(state.status(), OrderStatus::Closed);
    }
}
