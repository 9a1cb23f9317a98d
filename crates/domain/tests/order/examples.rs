//! Given commands → expected events, effects and status.

use crossdock_domain::Error;
use crossdock_domain::ids::{
    CreditMemoId, ExternalRefs, InvoiceId, LineNo, LocationId, PaymentId, ReceiptId, RefundId,
    RmaId, ShipmentId, Sku, System,
};
use crossdock_domain::order::{
    Command, CreditAnswer, CreditMemoFacts, Effect, Event, InvoiceFacts, Milestone, OrderStatus,
    PaymentFacts, ReceiptFacts, ReturnRequest, ReturnStatus, ValidationPolicy, decide, react,
};
use rust_decimal::Decimal;

use super::fixtures::{at, draft, lines, passing_facts, run, validate};

fn dec(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

fn ship(id: &str, pairs: &[(u32, u32)], milestone: Milestone, minute: i64) -> Command {
    Command::RecordShipment {
        shipment: ShipmentId::new(id),
        location: Some(LocationId::new("WH-1")),
        lines: lines(pairs),
        milestone,
        carrier: Some("UPS".to_owned()),
        tracking: Some(format!("1Z{id}")),
        at: at(minute),
    }
}

fn book(minute: i64) -> Command {
    Command::RecordBooking {
        erp_ref: "SO-1".to_owned(),
        at: at(minute),
    }
}

#[test]
fn an_order_goes_from_capture_to_closed_through_partial_shipments() {
    let d = draft(&[(3, "10.00"), (2, "4.50")]);
    let mut commands = vec![Command::CaptureOrder(d.clone()), validate(&d, 1), book(2)];
    commands.push(Command::RecordAllocation {
        line: LineNo(1),
        location: LocationId::new("WH-1"),
        quantity: 3,
        at: at(3),
    });
    commands.push(Command::RecordAllocation {
        line: LineNo(2),
        location: LocationId::new("ST-9"),
        quantity: 2,
        at: at(3),
    });
    let (state, _) = run(&commands);
    assert_eq!(state.status(), OrderStatus::Allocated);

    let mut more = commands.clone();
    more.push(ship("S1", &[(1, 2)], Milestone::Shipped, 10));
    let (state, _) = run(&more);
    assert_eq!(state.status(), OrderStatus::PartiallyShipped);
    assert_eq!(state.shipped(LineNo(1)), 2);

    more.push(ship("S2", &[(1, 1), (2, 2)], Milestone::Shipped, 20));
    more.push(ship("S1", &[(1, 2)], Milestone::Delivered, 30));
    more.push(ship("S2", &[(1, 1), (2, 2)], Milestone::Delivered, 40));
    let (state, _) = run(&more);
    assert_eq!(state.status(), OrderStatus::Delivered);

    more.push(Command::RecordInvoice {
        invoice: InvoiceId::new("INV-1"),
        facts: InvoiceFacts {
            number: "INV2026-1".to_owned(),
            lines: lines(&[(1, 3), (2, 2)]),
            net: dec("39.00"),
            tax: dec("3.90"),
            total: dec("42.90"),
            issued_at: at(41),
        },
    });
    let (state, _) = run(&more);
    assert_eq!(state.status(), OrderStatus::Invoiced);

    more.push(Command::RecordPayment {
        payment: PaymentId::new("PAY-1"),
        facts: PaymentFacts {
            invoice: Some(InvoiceId::new("INV-1")),
            amount: dec("42.90"),
            received_at: at(50),
        },
    });
    let (state, events) = run(&more);
    assert_eq!(state.status(), OrderStatus::Paid);
    let last = events.last().expect("events");
    assert!(react(last, &state).contains(&Effect::CloseOrder));

    more.push(Command::CloseOrder { at: at(51) });
    let (state, _) = run(&more);
    assert_eq!(state.status(), OrderStatus::Closed);
    assert_eq!(state.total(), dec("39.00"));
    let times = state.stage_times();
    assert_eq!(times.shipped, Some(at(20)));
    assert_eq!(times.delivered, Some(at(40)));
    assert_eq!(times.paid, Some(at(50)));
}

#[test]
fn shipping_more_than_ordered_is_rejected() {
    let d = draft(&[(3, "10.00")]);
    let (state, _) = run(&[
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        book(2),
        ship("S1", &[(1, 2)], Milestone::Shipped, 3),
    ]);
    let before = state.clone();
    let error = decide(&ship("S2", &[(1, 2)], Milestone::Shipped, 4), &state).unwrap_err();
    assert_eq!(
        error,
        Error::QuantityExceeded {
            line: LineNo(1),
            what: "shipped".to_owned(),
            limit: 3,
            attempted: 4
        }
    );
    assert_eq!(
        error.to_string(),
        "line 1: shipped would reach 4 units, more than the 3 allowed"
    );
    assert_eq!(state, before);
}

#[test]
fn a_shipment_for_an_unknown_line_is_rejected() {
    let d = draft(&[(3, "10.00")]);
    let (state, _) = run(&[Command::CaptureOrder(d)]);
    let error = decide(&ship("S1", &[(7, 1)], Milestone::Shipped, 3), &state).unwrap_err();
    assert_eq!(error, Error::UnknownLine { line: LineNo(7) });
}

#[test]
fn crediting_an_unknown_return_is_rejected() {
    let d = draft(&[(1, "10.00")]);
    let (state, _) = run(&[Command::CaptureOrder(d)]);
    let error = decide(
        &Command::RecordCreditMemo {
            rma: RmaId::new("RMA-404"),
            credit_memo: CreditMemoId::new("CM-1"),
            facts: CreditMemoFacts {
                number: "CN-1".to_owned(),
                amount: dec("5"),
                at: at(1),
            },
        },
        &state,
    )
    .unwrap_err();
    assert_eq!(
        error,
        Error::UnknownRma {
            rma: RmaId::new("RMA-404")
        }
    );
    assert_eq!(error.code(), "unknown_rma");
}

#[test]
fn negative_money_is_rejected() {
    let d = draft(&[(1, "10.00")]);
    let (state, _) = run(&[Command::CaptureOrder(d)]);
    let error = decide(
        &Command::RecordPayment {
            payment: PaymentId::new("P"),
            facts: PaymentFacts {
                invoice: None,
                amount: dec("-0.01"),
                received_at: at(1),
            },
        },
        &state,
    )
    .unwrap_err();
    assert!(matches!(error, Error::NegativeAmount { ref field, .. } if field == "payment amount"));

    let mut bad = draft(&[(1, "-3.00")]);
    bad.id = "ORD-NEG".into();
    let error = decide(&Command::CaptureOrder(bad), &Default::default()).unwrap_err();
    assert_eq!(error.code(), "negative_amount");
}

#[test]
fn recording_the_same_fact_twice_produces_no_new_event() {
    let d = draft(&[(2, "10.00")]);
    let (state, events) = run(&[
        Command::CaptureOrder(d.clone()),
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        validate(&d, 2),
        book(3),
        book(4),
        ship("S1", &[(1, 2)], Milestone::Shipped, 5),
        ship("S1", &[(1, 2)], Milestone::Shipped, 6),
    ]);
    let names: Vec<_> = events.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "OrderCaptured",
            "OrderValidated",
            "OrderBooked",
            "ShipmentProgressed"
        ]
    );
    assert_eq!(state.status(), OrderStatus::Shipped);
}

#[test]
fn a_second_different_booking_is_a_conflict() {
    let d = draft(&[(2, "10.00")]);
    let (state, _) = run(&[Command::CaptureOrder(d.clone()), validate(&d, 1), book(2)]);
    let error = decide(
        &Command::RecordBooking {
            erp_ref: "SO-2".to_owned(),
            at: at(3),
        },
        &state,
    )
    .unwrap_err();
    assert_eq!(error.code(), "conflicting_booking");
}

#[test]
fn delivered_reported_before_shipped_does_not_move_back() {
    let d = draft(&[(2, "10.00")]);
    let (state, _) = run(&[
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        book(2),
        ship("S1", &[(1, 2)], Milestone::Delivered, 9),
    ]);
    assert_eq!(state.status(), OrderStatus::Delivered);
    let (state, _) = run(&[
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        book(2),
        ship("S1", &[(1, 2)], Milestone::Delivered, 9),
        ship("S1", &[(1, 2)], Milestone::Shipped, 5),
    ]);
    assert_eq!(state.status(), OrderStatus::Delivered);
    assert_eq!(state.delivered(LineNo(1)), 2);
    let shipment = &state.shipments[&ShipmentId::new("S1")];
    assert_eq!(shipment.times.len(), 2, "both milestone times are kept");
}

#[test]
fn a_shipment_before_booking_is_accepted_from_the_system_of_record() {
    let d = draft(&[(2, "10.00")]);
    let (state, _) = run(&[
        Command::CaptureOrder(d.clone()),
        ship("S1", &[(1, 1)], Milestone::Shipped, 3),
    ]);
    assert_eq!(state.status(), OrderStatus::PartiallyShipped);
    let (state, _) = run(&[
        Command::CaptureOrder(d.clone()),
        ship("S1", &[(1, 1)], Milestone::Shipped, 3),
        validate(&d, 1),
        book(2),
    ]);
    assert_eq!(state.status(), OrderStatus::PartiallyShipped);
}

#[test]
fn a_shipment_for_an_order_not_captured_may_succeed_later() {
    let error = decide(
        &ship("S1", &[(1, 1)], Milestone::Shipped, 3),
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(error, Error::NotCaptured);
    assert!(error.may_succeed_later());
}

#[test]
fn a_price_mismatch_rejects_the_order_with_the_reason() {
    let d = draft(&[(2, "18.00")]);
    let mut facts = passing_facts(&d);
    facts.prices.insert(LineNo(1), dec("20.00"));
    let (state, events) = run(&[
        Command::CaptureOrder(d),
        Command::ValidateOrder {
            facts,
            policy: ValidationPolicy::default(),
            at: at(1),
        },
    ]);
    assert_eq!(state.status(), OrderStatus::Rejected);
    let Event::OrderRejected(rejection) = &events[1] else {
        panic!("expected a rejection, got {:?}", events[1]);
    };
    assert_eq!(rejection.by, System::Hub);
    assert!(
        rejection.reasons[0].contains("agreed price 18.00 differs from the ERP price 20.00"),
        "{:?}",
        rejection.reasons
    );
    assert_eq!(react(&events[1], &state), vec![Effect::SyncOrder]);
}

#[test]
fn a_credit_refusal_rejects_the_order() {
    let d = draft(&[(2, "18.00")]);
    let mut facts = passing_facts(&d);
    facts.credit = CreditAnswer {
        approved: false,
        available: Some(dec("5")),
        reason: Some("would exceed the credit limit by 31.00".to_owned()),
    };
    let (state, _) = run(&[
        Command::CaptureOrder(d),
        Command::ValidateOrder {
            facts,
            policy: ValidationPolicy::default(),
            at: at(1),
        },
    ]);
    assert_eq!(state.status(), OrderStatus::Rejected);
    assert!(
        state
            .summary()
            .unwrap()
            .reason
            .unwrap()
            .contains("credit limit")
    );
}

#[test]
fn cancelling_a_rejected_order_changes_nothing() {
    let d = draft(&[(2, "18.00")]);
    let mut facts = passing_facts(&d);
    facts.prices.insert(LineNo(1), dec("20.00"));
    let (state, events) = run(&[
        Command::CaptureOrder(d),
        Command::ValidateOrder {
            facts,
            policy: ValidationPolicy::default(),
            at: at(1),
        },
        Command::CancelOrder {
            by: System::Salesforce,
            reason: "too late".to_owned(),
            at: at(2),
        },
    ]);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(state.status(), OrderStatus::Rejected);
}

#[test]
fn missing_stock_is_a_backorder_not_a_rejection() {
    let d = draft(&[(5, "3.00")]);
    let mut facts = passing_facts(&d);
    facts.available.insert(Sku::new("SKU-1"), 2);
    let (state, events) = run(&[
        Command::CaptureOrder(d.clone()),
        Command::ValidateOrder {
            facts: facts.clone(),
            policy: ValidationPolicy::default(),
            at: at(1),
        },
        book(2),
        Command::RecordAllocation {
            line: LineNo(1),
            location: LocationId::new("WH-1"),
            quantity: 2,
            at: at(3),
        },
        Command::RecordBackorder {
            line: LineNo(1),
            quantity: 3,
            at: at(3),
        },
    ]);
    let Event::OrderValidated(validation) = &events[1] else {
        panic!("expected validation");
    };
    assert!(validation.backorder_expected);
    assert_eq!(state.status(), OrderStatus::Backordered);
    assert_eq!(state.backordered(LineNo(1)), 3);

    let strict = ValidationPolicy {
        allow_backorder: false,
        ..ValidationPolicy::default()
    };
    let (state, _) = run(&[
        Command::CaptureOrder(d),
        Command::ValidateOrder {
            facts,
            policy: strict,
            at: at(1),
        },
    ]);
    assert_eq!(state.status(), OrderStatus::Rejected);
}

#[test]
fn cancelling_before_shipment_cancels_in_the_erp_too() {
    let d = draft(&[(2, "10.00")]);
    let (state, events) = run(&[
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        book(2),
        Command::CancelOrder {
            by: System::Salesforce,
            reason: "customer changed their mind".to_owned(),
            at: at(3),
        },
    ]);
    assert_eq!(state.status(), OrderStatus::Cancelled);
    let effects = react(events.last().unwrap(), &state);
    assert!(effects.contains(&Effect::CancelInErp));
    assert!(!Effect::BookOrder.is_still_needed(&state));
}

#[test]
fn a_cancellation_from_the_erp_is_not_sent_back_to_the_erp() {
    let d = draft(&[(2, "10.00")]);
    let (state, events) = run(&[
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        book(2),
        Command::CancelOrder {
            by: System::Erp,
            reason: "discontinued".to_owned(),
            at: at(3),
        },
    ]);
    assert_eq!(
        react(events.last().unwrap(), &state),
        vec![Effect::SyncOrder]
    );
}

#[test]
fn cancelling_after_shipment_is_refused() {
    let d = draft(&[(2, "10.00")]);
    let (state, _) = run(&[
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        book(2),
        ship("S1", &[(1, 1)], Milestone::Shipped, 3),
    ]);
    let error = decide(
        &Command::CancelOrder {
            by: System::Salesforce,
            reason: "late".to_owned(),
            at: at(4),
        },
        &state,
    )
    .unwrap_err();
    assert_eq!(error, Error::CancelAfterShipment { shipped: 1 });
}

#[test]
fn a_return_goes_from_request_to_refund_and_closes() {
    let d = draft(&[(3, "10.00")]);
    let rma = RmaId::new("RMA-1");
    let mut commands = vec![
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        book(2),
        ship("S1", &[(1, 3)], Milestone::Delivered, 3),
    ];
    let request = |qty| Command::RequestReturn {
        rma: rma.clone(),
        request: ReturnRequest {
            case: ExternalRefs {
                sf_id: Some("500000000000001AAA".to_owned()),
                sf_number: Some("00001001".to_owned()),
                erp_ref: None,
            },
            lines: lines(&[(1, qty)]),
            reason: "damaged".to_owned(),
            at: at(10),
        },
    };
    let (state, _) = run(&commands);
    let error = decide(&request(4), &state).unwrap_err();
    assert_eq!(error.code(), "quantity_exceeded");

    commands.push(request(2));
    let (state, events) = run(&commands);
    assert_eq!(state.returns[&rma].status(), ReturnStatus::Requested);
    assert!(
        react(events.last().unwrap(), &state)
            .contains(&Effect::AuthoriseReturn { rma: rma.clone() })
    );

    commands.push(Command::RecordReturnAuthorisation {
        rma: rma.clone(),
        erp_ref: "RMA-ERP-7".to_owned(),
        at: at(11),
    });
    commands.push(Command::RecordReturnReceipt {
        rma: rma.clone(),
        receipt: ReceiptId::new("RCV-1"),
        facts: ReceiptFacts {
            lines: lines(&[(1, 2)]),
            at: at(12),
        },
    });
    let (state, events) = run(&commands);
    assert_eq!(state.returns[&rma].status(), ReturnStatus::Received);
    assert_eq!(state.returned(LineNo(1)), 2);
    assert!(
        react(events.last().unwrap(), &state)
            .contains(&Effect::IssueCreditMemo { rma: rma.clone() })
    );

    commands.push(Command::RecordCreditMemo {
        rma: rma.clone(),
        credit_memo: CreditMemoId::new("CM-1"),
        facts: CreditMemoFacts {
            number: "CN2026-1".to_owned(),
            amount: dec("22.00"),
            at: at(13),
        },
    });
    let (state, _) = run(&commands);
    let too_much = Command::RecordRefund {
        rma: rma.clone(),
        refund: RefundId::new("RF-1"),
        credit_memo: CreditMemoId::new("CM-1"),
        amount: dec("22.01"),
        at: at(14),
    };
    assert_eq!(
        decide(&too_much, &state).unwrap_err().code(),
        "refund_exceeds_credit"
    );

    commands.push(Command::RecordRefund {
        rma: rma.clone(),
        refund: RefundId::new("RF-1"),
        credit_memo: CreditMemoId::new("CM-1"),
        amount: dec("22.00"),
        at: at(14),
    });
    let (state, events) = run(&commands);
    assert_eq!(state.returns[&rma].status(), ReturnStatus::Refunded);
    assert!(
        react(events.last().unwrap(), &state).contains(&Effect::CloseReturn { rma: rma.clone() })
    );
    commands.push(Command::CloseReturn {
        rma: rma.clone(),
        at: at(15),
    });
    let (state, _) = run(&commands);
    assert_eq!(state.returns[&rma].status(), ReturnStatus::Closed);
    assert_eq!(state.credited_total(), dec("22.00"));
    assert_eq!(state.refunded_total(), dec("22.00"));
}

#[test]
fn effects_have_stable_idempotency_keys() {
    let order = "ORD-9".into();
    assert_eq!(Effect::BookOrder.idempotency_key(&order), "ORD-9/book");
    assert_eq!(
        Effect::IssueRefund {
            rma: "R1".into(),
            credit_memo: "CM1".into()
        }
        .idempotency_key(&order),
        "ORD-9/rma/R1/refund/CM1"
    );
}

#[test]
fn events_round_trip_through_json() {
    let d = draft(&[(3, "10.25"), (1, "0.10")]);
    let (_, events) = run(&[
        Command::CaptureOrder(d.clone()),
        validate(&d, 1),
        book(2),
        ship("S1", &[(1, 1)], Milestone::Packed, 3),
    ]);
    for event in events {
        let json = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event, "{json}");
    }
}

#[test]
fn line_numbers_read_back_from_json_values_with_string_keys() {
    let lines = lines(&[(1, 2), (12, 3)]);
    let value = serde_json::to_value(&lines).unwrap();
    assert_eq!(value, serde_json::json!({"1": 2, "12": 3}));
    let back: std::collections::BTreeMap<LineNo, u32> = serde_json::from_value(value).unwrap();
    assert_eq!(back, lines);
    let err = serde_json::from_value::<LineNo>(serde_json::json!("x")).unwrap_err();
    assert!(err.to_string().contains("not a line number"));
}
