//! Properties over random valid histories (proptest):
//! - applying the events shuffled and with duplicates yields the same state as in order;
//! - the derived status never goes backwards except into `Cancelled` or `Rejected`;
//! - money totals are exact;
//! - deciding any command of the history again adds nothing;
//! - the summary's JSON writer gives the text `serde_json` gives, at every step.

use std::collections::BTreeMap;

use crossdock_domain::ids::{
    CreditMemoId, ExternalRefs, InvoiceId, LineNo, LocationId, PaymentId, ReceiptId, RefundId,
    RmaId, ShipmentId, System,
};
use crossdock_domain::money::round_cents;
use crossdock_domain::order::{
    Command, CreditMemoFacts, Event, InvoiceFacts, Milestone, Order, OrderStatus, PaymentFacts,
    ReceiptFacts, ReturnRequest, ValidationPolicy, decide, evolve, replay,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::fixtures::{at, draft, passing_facts};

/// Random choices that shape one order's history.
#[derive(Debug, Clone)]
struct Plan {
    /// (quantity, price in hundredths of a cent) per line.
    lines: Vec<(u32, u32)>,
    /// Drives every branch of the builder.
    choices: Vec<u8>,
    /// Shuffle seed.
    seed: u64,
}

fn plans() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec((1u32..8, 1u32..2_000_000), 1..5),
        prop::collection::vec(any::<u8>(), 32),
        any::<u64>(),
    )
        .prop_map(|(lines, choices, seed)| Plan {
            lines,
            choices,
            seed,
        })
}

struct Builder<'a> {
    choices: &'a [u8],
    next: usize,
    commands: Vec<Command>,
    minute: i64,
}

impl Builder<'_> {
    fn pick(&mut self, n: u8) -> u8 {
        let value = self.choices[self.next % self.choices.len()] % n;
        self.next += 1;
        value
    }

    fn push(&mut self, command: Command) {
        self.commands.push(command);
        self.minute += 1;
    }

    fn now(&self) -> time::OffsetDateTime {
        at(self.minute)
    }
}

/// Expected money, computed independently of the order's own views.
#[derive(Debug, Default)]
struct Expected {
    total: Decimal,
    invoiced: Decimal,
    paid: Decimal,
    credited: Decimal,
    refunded: Decimal,
}

/// Builds a valid history from a plan.
fn history(plan: &Plan) -> (Vec<Command>, Expected) {
    let priced: Vec<(u32, String)> = plan
        .lines
        .iter()
        .map(|(q, p)| (*q, Decimal::new(i64::from(*p), 4).to_string()))
        .collect();
    let refs: Vec<(u32, &str)> = priced.iter().map(|(q, p)| (*q, p.as_str())).collect();
    let d = draft(&refs);
    let mut expected = Expected {
        total: d
            .lines
            .iter()
            .map(|l| Decimal::from(l.quantity) * l.unit_price)
            .sum(),
        ..Expected::default()
    };
    let mut b = Builder {
        choices: &plan.choices,
        next: 0,
        commands: vec![Command::CaptureOrder(d.clone())],
        minute: 1,
    };

    match b.pick(12) {
        0 => {
            let mut facts = passing_facts(&d);
            facts
                .prices
                .insert(LineNo(1), d.lines[0].unit_price + Decimal::ONE);
            let at = b.now();
            b.push(Command::ValidateOrder {
                facts,
                policy: ValidationPolicy::default(),
                at,
            });
            return (b.commands, expected);
        }
        1 => {
            let at = b.now();
            b.push(Command::CancelOrder {
                by: System::Salesforce,
                reason: "changed mind".to_owned(),
                at,
            });
            return (b.commands, expected);
        }
        _ => {}
    }
    let at = b.now();
    b.push(Command::ValidateOrder {
        facts: passing_facts(&d),
        policy: ValidationPolicy::default(),
        at,
    });
    let at = b.now();
    b.push(Command::RecordBooking {
        erp_ref: "SO-1".to_owned(),
        at,
    });

    // Allocation across two locations, possibly leaving a backorder first.
    let mut splits = BTreeMap::new();
    for line in &d.lines {
        let first = u32::from(b.pick(u8::try_from(line.quantity + 1).unwrap_or(u8::MAX)));
        let first = first.min(line.quantity);
        splits.insert(line.line, (first, line.quantity - first));
        if b.pick(3) == 0 && first < line.quantity {
            let at = b.now();
            b.push(Command::RecordAllocation {
                line: line.line,
                location: LocationId::new("WH-1"),
                quantity: first,
                at,
            });
            let at = b.now();
            b.push(Command::RecordBackorder {
                line: line.line,
                quantity: line.quantity - first,
                at,
            });
        }
        let at = b.now();
        b.push(Command::RecordAllocation {
            line: line.line,
            location: LocationId::new("WH-1"),
            quantity: first,
            at,
        });
        let at = b.now();
        b.push(Command::RecordAllocation {
            line: line.line,
            location: LocationId::new("ST-2"),
            quantity: line.quantity - first,
            at,
        });
    }
    if b.pick(8) == 0 {
        let at = b.now();
        b.push(Command::CancelOrder {
            by: System::Erp,
            reason: "out of season".to_owned(),
            at,
        });
        return (b.commands, expected);
    }

    // Two shipments (one per location), each through its milestones.
    let full = b.pick(4) != 0;
    for (index, location) in ["WH-1", "ST-2"].iter().enumerate() {
        let lines: BTreeMap<LineNo, u32> = splits
            .iter()
            .map(|(l, (a, c))| (*l, if index == 0 { *a } else { *c }))
            .filter(|(_, q)| *q > 0)
            .collect();
        if lines.is_empty() {
            continue;
        }
        let last = if full { 4 } else { 2 + usize::from(b.pick(3)) };
        for milestone in &Milestone::ALL[..last.min(4)] {
            let at = b.now();
            b.push(Command::RecordShipment {
                shipment: ShipmentId::new(format!("S{index}")),
                location: Some(LocationId::new(*location)),
                lines: lines.clone(),
                milestone: *milestone,
                carrier: Some("DHL".to_owned()),
                tracking: Some(format!("TRK{index}")),
                at,
            });
        }
    }
    if !full {
        return (b.commands, expected);
    }

    // Invoices: one or two, tax 10 % rounded to cents.
    let lines: Vec<_> = d
        .lines
        .iter()
        .map(|l| (l.line, l.quantity, l.unit_price))
        .collect();
    let parts = if lines.len() > 1 && b.pick(2) == 0 {
        2
    } else {
        1
    };
    let chunk = lines.len().div_ceil(parts);
    for (index, group) in lines.chunks(chunk).enumerate() {
        let net: Decimal = group.iter().map(|(_, q, p)| Decimal::from(*q) * p).sum();
        let tax = round_cents(net * Decimal::new(1, 1));
        expected.invoiced += net + tax;
        b.push(Command::RecordInvoice {
            invoice: InvoiceId::new(format!("INV-{index}")),
            facts: InvoiceFacts {
                number: format!("INV2026-{index}"),
                lines: group.iter().map(|(l, q, _)| (*l, *q)).collect(),
                net,
                tax,
                total: net + tax,
                issued_at: b.now(),
            },
        });
    }

    // Payments: the invoiced total in one or two parts.
    let pays = 1 + u32::from(b.pick(2));
    let first = if pays == 2 {
        round_cents(expected.invoiced / Decimal::from(2))
    } else {
        expected.invoiced
    };
    for (index, amount) in [first, expected.invoiced - first].into_iter().enumerate() {
        if amount.is_zero() && index > 0 {
            continue;
        }
        expected.paid += amount;
        b.push(Command::RecordPayment {
            payment: PaymentId::new(format!("PAY-{index}")),
            facts: PaymentFacts {
                invoice: None,
                amount,
                received_at: b.now(),
            },
        });
    }
    let at = b.now();
    b.push(Command::CloseOrder { at });

    // A return of part of line 1.
    if b.pick(2) == 0 {
        let rma = RmaId::new("RMA-1");
        let qty = 1 + u32::from(b.pick(u8::try_from(d.lines[0].quantity).unwrap_or(u8::MAX)));
        let qty = qty.min(d.lines[0].quantity);
        let at = b.now();
        b.push(Command::RequestReturn {
            rma: rma.clone(),
            request: ReturnRequest {
                case: ExternalRefs::default(),
                lines: BTreeMap::from([(LineNo(1), qty)]),
                reason: "wrong size".to_owned(),
                at,
            },
        });
        let at = b.now();
        b.push(Command::RecordReturnAuthorisation {
            rma: rma.clone(),
            erp_ref: "RMA-E-1".to_owned(),
            at,
        });
        b.push(Command::RecordReturnReceipt {
            rma: rma.clone(),
            receipt: ReceiptId::new("RCV-1"),
            facts: ReceiptFacts {
                lines: BTreeMap::from([(LineNo(1), qty)]),
                at: b.now(),
            },
        });
        let credit = round_cents(Decimal::from(qty) * d.lines[0].unit_price * Decimal::new(11, 1));
        expected.credited = credit;
        expected.refunded = credit;
        b.push(Command::RecordCreditMemo {
            rma: rma.clone(),
            credit_memo: CreditMemoId::new("CM-1"),
            facts: CreditMemoFacts {
                number: "CN-1".to_owned(),
                amount: credit,
                at: b.now(),
            },
        });
        let at = b.now();
        b.push(Command::RecordRefund {
            rma: rma.clone(),
            refund: RefundId::new("RF-1"),
            credit_memo: CreditMemoId::new("CM-1"),
            amount: credit,
            at,
        });
        let at = b.now();
        b.push(Command::CloseReturn { rma, at });
    }
    (b.commands, expected)
}

fn decide_all(commands: &[Command]) -> Result<(Order, Vec<Event>, Vec<OrderStatus>), String> {
    let mut state = Order::default();
    let mut events = Vec::new();
    let mut statuses = vec![state.status()];
    for command in commands {
        let produced = decide(command, &state).map_err(|e| format!("{}: {e}", command.name()))?;
        for event in produced {
            evolve(&mut state, &event);
            statuses.push(state.status());
            events.push(event);
        }
    }
    Ok((state, events, statuses))
}

/// A deterministic shuffle with duplicates (xorshift; no randomness inside the domain).
fn shuffled_with_duplicates(events: &[Event], seed: u64) -> Vec<Event> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out: Vec<Event> = events.to_vec();
    for event in events {
        if next() % 3 == 0 {
            out.push(event.clone());
        }
    }
    for i in (1..out.len()).rev() {
        let j = usize::try_from(next() % (i as u64 + 1)).unwrap_or(0);
        out.swap(i, j);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn shuffled_and_duplicated_events_give_the_same_state(plan in plans()) {
        let (commands, _) = history(&plan);
        let (state, events, _) = decide_all(&commands).map_err(TestCaseError::fail)?;
        let replayed = replay(&shuffled_with_duplicates(&events, plan.seed));
        prop_assert_eq!(&replayed, &state);
        prop_assert_eq!(replayed.status(), state.status());
        prop_assert_eq!(replayed.summary(), state.summary());
    }

    #[test]
    fn evolve_reports_a_change_exactly_when_the_state_changed(plan in plans()) {
        let (commands, _) = history(&plan);
        let (_, events, _) = decide_all(&commands).map_err(TestCaseError::fail)?;
        let mut state = Order::default();
        let mut changes = 0;
        for event in shuffled_with_duplicates(&events, plan.seed) {
            let before = state.clone();
            let changed = evolve(&mut state, &event);
            prop_assert_eq!(changed, state != before, "{:?}", event);
            changes += usize::from(changed);
        }
        // Each decided event added something; duplicates and older facts add nothing.
        prop_assert!(changes <= events.len());
        prop_assert!(changes > 0);
    }

    #[test]
    fn status_never_goes_backwards_except_into_cancel_or_reject(plan in plans()) {
        let (commands, _) = history(&plan);
        let (_, _, statuses) = decide_all(&commands).map_err(TestCaseError::fail)?;
        for pair in statuses.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            match (before.progress(), after.progress()) {
                (Some(b), Some(a)) => prop_assert!(a >= b, "{:?} -> {:?}", before, after),
                (None, next) => prop_assert!(next.is_none() && after == before,
                    "left a terminal side path: {:?} -> {:?}", before, after),
                (Some(_), None) => prop_assert!(
                    matches!(after, OrderStatus::Cancelled | OrderStatus::Rejected)),
            }
        }
    }

    #[test]
    fn money_totals_are_exact(plan in plans()) {
        let (commands, expected) = history(&plan);
        let (state, _, _) = decide_all(&commands).map_err(TestCaseError::fail)?;
        prop_assert_eq!(state.total(), expected.total);
        prop_assert_eq!(state.invoiced_total(), expected.invoiced);
        prop_assert_eq!(state.paid_total(), expected.paid);
        prop_assert_eq!(state.credited_total(), expected.credited);
        prop_assert_eq!(state.refunded_total(), expected.refunded);
        let summary = state.summary().expect("captured");
        prop_assert_eq!(summary.total, expected.total);
        let line_sum: Decimal = summary.lines.iter()
            .map(|l| Decimal::from(l.quantities.ordered) * l.unit_price).sum();
        prop_assert_eq!(line_sum, expected.total);
    }

    #[test]
    fn deciding_the_history_again_adds_nothing(plan in plans()) {
        let (commands, _) = history(&plan);
        let (state, _, _) = decide_all(&commands).map_err(TestCaseError::fail)?;
        for command in &commands {
            // Validation facts were judged once; re-judging after the fact is a no-op.
            let again = decide(command, &state).map_err(|e| TestCaseError::fail(format!("{}: {e}", command.name())))?;
            prop_assert!(again.is_empty(), "{} produced {:?}", command.name(), again);
        }
    }
}
