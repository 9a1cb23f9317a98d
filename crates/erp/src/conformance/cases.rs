//! The conformance cases. Each books its own orders under unique references, so cases can
//! share an ERP that keeps earlier runs' data; assertions that other activity could disturb
//! (stock levels) allow for it in the safe direction only.

use std::collections::{BTreeMap, BTreeSet};

use crossdock_domain::account::{Account, CreditStatus, CustomerTier};
use crossdock_domain::ids::{AccountId, ExternalRefs, LineNo, OrderId, RmaId};
use crossdock_domain::money::round_cents;
use crossdock_ports::FailureClass;
use crossdock_ports::erp::{
    CancelOutcome, ChangeKind, ErpChange, FulfilmentRequest, PriceRequest, ReturnRequest,
};
use rust_decimal::Decimal;

use super::Subject;
use super::support::{booking, done, feed_end, must, read_feed_until, today, unique};

/// Units available to promise of `sku` at the seeds' location.
async fn available(subject: &Subject, sku: &crossdock_domain::ids::Sku) -> i64 {
    let seeds = subject.warehouse.seeds();
    let levels = must(
        subject
            .erp
            .availability(std::slice::from_ref(sku), Some(&seeds.location))
            .await,
        "availability",
    );
    levels
        .iter()
        .filter(|l| &l.sku == sku && l.location == seeds.location)
        .map(|l| l.available)
        .sum()
}

/// Booking the same reference twice answers the first sale: `created` is false the second
/// time (same idempotency key: a retried request; another key: a replayed step), and the ERP
/// holds one sale for the reference.
pub async fn booking_the_same_order_twice_makes_one_sale(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let reference = unique("CONF-TWICE");
    let order = booking(
        erp,
        seeds,
        &seeds.good_customer,
        &reference,
        &[(seeds.plenty_item.clone(), 2)],
    )
    .await;
    let key = format!("{reference}/book");
    let first = must(erp.book_order(&order, &key).await, "first booking");
    assert!(
        first.created,
        "the first booking must report created: {first:?}"
    );
    let again = must(
        erp.book_order(&order, &key).await,
        "booking again with the same key",
    );
    assert!(
        !again.created,
        "a retried booking must report created = false: {again:?}"
    );
    assert_eq!(
        again.erp_ref, first.erp_ref,
        "a retried booking must answer the first sale"
    );
    let other = must(
        erp.book_order(&order, &format!("{reference}/book-again"))
            .await,
        "booking again with another key",
    );
    assert!(
        !other.created,
        "a second booking of the reference must report created = false"
    );
    assert_eq!(
        other.erp_ref, first.erp_ref,
        "a second booking must answer the first sale"
    );
    let sales = done(
        subject.warehouse.sales_with_reference(&reference).await,
        "counting sales",
    );
    assert_eq!(
        sales, 1,
        "the ERP must hold exactly one sale for {reference}"
    );
    let read = must(erp.order(&first.erp_ref).await, "reading the order");
    assert_eq!(
        read.reference,
        OrderId::new(reference.as_str()),
        "order reference"
    );
    assert_eq!(read.lines.len(), 1, "one line booked: {read:?}");
    assert_eq!(read.lines[0].line, LineNo(1), "the hub's line number");
    assert_eq!(read.lines[0].ordered, 2, "units ordered");
    assert!(!read.cancelled, "a fresh order is not cancelled");
}

/// Units available to promise drop by at least what a booking took.
pub async fn availability_drops_after_booking(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let before = available(subject, &seeds.plenty_item).await;
    assert!(
        before >= 3,
        "the plenty item must have stock at {}: {before}",
        seeds.location
    );
    let reference = unique("CONF-ATP");
    let order = booking(
        erp,
        seeds,
        &seeds.good_customer,
        &reference,
        &[(seeds.plenty_item.clone(), 3)],
    )
    .await;
    must(
        erp.book_order(&order, &format!("{reference}/book")).await,
        "booking",
    );
    let after = available(subject, &seeds.plenty_item).await;
    // Other activity on a shared ERP can only book more, never give stock back here.
    assert!(
        before - after >= 3,
        "availability of {} at {} must drop by the 3 units booked: {before} before, {after} after",
        seeds.plenty_item,
        seeds.location
    );
}

/// An order over the customer's credit limit is refused as a permanent failure carrying the
/// ERP's own message; the credit check says the same beforehand.
pub async fn credit_limit_breach_is_refused_permanently_with_the_erp_message(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let report = must(
        erp.credit_status(&seeds.tight_customer).await,
        "credit status",
    );
    let limit = report
        .limit
        .unwrap_or_else(|| panic!("the tight customer must report a credit limit: {report:?}"));
    let quote = must(
        erp.prices(
            &seeds.tight_customer,
            &[PriceRequest {
                sku: seeds.plenty_item.clone(),
                quantity: 1,
            }],
            today(),
        )
        .await,
        "pricing",
    );
    let unit = quote.first().map(|q| q.unit_price).unwrap_or_default();
    assert!(
        unit > Decimal::ZERO,
        "the plenty item must have a price: {quote:?}"
    );
    // Enough units that the untaxed amount alone passes the limit.
    let units =
        u32::try_from(((limit / unit).floor() + Decimal::ONE).mantissa()).unwrap_or(u32::MAX);
    let amount = round_cents(unit * Decimal::from(units));
    let check = must(
        erp.credit_check(&seeds.tight_customer, amount * Decimal::TWO, seeds.currency)
            .await,
        "credit check",
    );
    assert!(
        !check.approved,
        "twice over the limit must not be approved: {check:?}"
    );
    let fine = must(
        erp.credit_check(&seeds.good_customer, Decimal::ONE, seeds.currency)
            .await,
        "credit check of the good customer",
    );
    assert!(
        fine.approved,
        "1.00 for the good customer must be approved: {fine:?}"
    );

    let reference = unique("CONF-CREDIT");
    let order = booking(
        erp,
        seeds,
        &seeds.tight_customer,
        &reference,
        &[(seeds.plenty_item.clone(), units)],
    )
    .await;
    match erp.book_order(&order, &format!("{reference}/book")).await {
        Ok(confirmation) => panic!(
            "booking {amount} for a customer with a {limit} limit must be refused, got {confirmation:?}"
        ),
        Err(failure) => {
            assert_eq!(
                failure.class,
                FailureClass::Permanent,
                "a credit refusal must be permanent: {failure}"
            );
            assert!(
                failure.message.to_lowercase().contains("credit"),
                "the refusal must carry the ERP's message about credit: {failure}"
            );
        }
    }
}

fn shipped_by_shipment(
    changes: &[ErpChange],
    reference: &str,
) -> BTreeMap<String, Vec<(LineNo, u32)>> {
    let mut shipments = BTreeMap::new();
    for change in changes {
        if let ChangeKind::Shipment {
            reference: r,
            shipment,
        } = &change.kind
            && r.as_str() == reference
            && shipment.milestone >= crossdock_domain::order::Milestone::Shipped
        {
            shipments.insert(shipment.id.clone(), shipment.lines.clone());
        }
    }
    shipments
}

/// Shipping part of a line and later the rest gives two shipment changes in the feed, each
/// with its own units of the hub's line.
pub async fn partial_shipment_then_the_rest_reports_two_shipments(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let have = available(subject, &seeds.scarce_item).await;
    assert!(
        have <= 100,
        "the scarce item must have little stock, it has {have}"
    );
    // Order more than there is: what is there ships first, the rest after restocking.
    let first = u32::try_from(have.max(1)).unwrap_or(1);
    let rest = 2;
    let cursor = feed_end(erp).await;
    let reference = unique("CONF-PARTIAL");
    let order = booking(
        erp,
        seeds,
        &seeds.good_customer,
        &reference,
        &[(seeds.scarce_item.clone(), first + rest)],
    )
    .await;
    let booked = must(
        erp.book_order(&order, &format!("{reference}/book")).await,
        "booking",
    );
    done(
        subject
            .warehouse
            .ship(&booked.erp_ref, LineNo(1), first)
            .await,
        "first shipment",
    );
    done(
        subject
            .warehouse
            .ship(&booked.erp_ref, LineNo(1), rest)
            .await,
        "second shipment",
    );
    let changes = read_feed_until(erp, cursor, 100, |read| {
        shipped_by_shipment(read, &reference).len() >= 2
    })
    .await;
    let shipments = shipped_by_shipment(&changes, &reference);
    assert_eq!(
        shipments.len(),
        2,
        "two shipments of {reference} must be reported as shipped, got {shipments:?}"
    );
    let mut quantities: Vec<Vec<(LineNo, u32)>> = shipments.into_values().collect();
    quantities.sort_by_key(|lines| std::cmp::Reverse(lines.iter().map(|l| l.1).sum::<u32>()));
    let mut expected = vec![vec![(LineNo(1), first)], vec![(LineNo(1), rest)]];
    expected.sort_by_key(|lines| std::cmp::Reverse(lines.iter().map(|l| l.1).sum::<u32>()));
    assert_eq!(
        quantities, expected,
        "units per shipment, in the hub's line numbers"
    );
    let read = must(erp.order(&booked.erp_ref).await, "reading the order");
    assert_eq!(
        read.lines[0].shipped,
        first + rest,
        "units shipped on the line: {read:?}"
    );
}

/// A return of shipped goods, once received, gets a credit note for exactly what was invoiced
/// for them (tax included) and a refund of the same amount; the feed reports both.
pub async fn return_gets_a_credit_note_with_tax_and_a_refund(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let reference = unique("CONF-RETURN");
    let order = booking(
        erp,
        seeds,
        &seeds.good_customer,
        &reference,
        &[(seeds.plenty_item.clone(), 2)],
    )
    .await;
    let booked = must(
        erp.book_order(&order, &format!("{reference}/book")).await,
        "booking",
    );
    done(
        subject.warehouse.ship(&booked.erp_ref, LineNo(1), 2).await,
        "shipping",
    );
    let read = must(erp.order(&booked.erp_ref).await, "reading the order");
    assert!(
        !read.invoices.is_empty(),
        "the ERP must report an invoice once goods shipped: {read:?}"
    );
    let invoiced: Decimal = read.invoices.iter().map(|i| i.total).sum();
    let net: Decimal = read.invoices.iter().map(|i| i.net).sum();
    let tax: Decimal = read.invoices.iter().map(|i| i.tax).sum();
    assert_eq!(
        net + tax,
        invoiced,
        "invoice net + tax = total: {:?}",
        read.invoices
    );
    assert!(
        tax > Decimal::ZERO,
        "the item is taxed: {:?}",
        read.invoices
    );

    let cursor = feed_end(erp).await;
    let rma = RmaId::new(unique("CONF-RMA"));
    let request = ReturnRequest {
        rma: rma.clone(),
        order: OrderId::new(reference.as_str()),
        order_erp_ref: Some(booked.erp_ref.clone()),
        account: seeds.good_customer.clone(),
        lines: vec![(LineNo(1), seeds.plenty_item.clone(), 2)],
        reason: "damaged in transit".to_owned(),
    };
    let authorisation = must(
        erp.create_return(&request, &format!("{rma}/authorise"))
            .await,
        "return",
    );
    let again = must(
        erp.create_return(&request, &format!("{rma}/authorise-again"))
            .await,
        "return again",
    );
    assert_eq!(
        again.erp_ref, authorisation.erp_ref,
        "a second return request answers the first RMA"
    );
    done(
        subject
            .warehouse
            .receive_return(&authorisation.erp_ref, &[(LineNo(1), 2)])
            .await,
        "receiving the return",
    );
    let memo = must(
        erp.issue_credit_memo(&authorisation.erp_ref, &format!("{rma}/credit"))
            .await,
        "credit memo",
    );
    assert_eq!(
        memo.amount, invoiced,
        "the credit note for everything invoiced must equal the invoiced total incl. tax ({net} + {tax})"
    );
    let refund = must(
        erp.issue_refund(&memo.id, &format!("{rma}/refund")).await,
        "refund",
    );
    assert_eq!(
        refund.amount, memo.amount,
        "the refund pays the credit note back"
    );
    let changes = read_feed_until(erp, cursor, 100, |read| {
        read.iter()
            .any(|c| matches!(&c.kind, ChangeKind::RefundIssued { rma: r, .. } if r == &rma))
    })
    .await;
    let memos: Vec<_> = changes
        .iter()
        .filter_map(|c| match &c.kind {
            ChangeKind::CreditMemoIssued {
                rma: r,
                credit_memo,
            } if r == &rma => Some(credit_memo.amount),
            _ => None,
        })
        .collect();
    assert!(
        memos.contains(&memo.amount),
        "the feed must report the credit memo of {rma} with {}: {memos:?}",
        memo.amount
    );
    assert!(
        changes.iter().any(|c| matches!(
            &c.kind,
            ChangeKind::RefundIssued { rma: r, refund: f, .. } if r == &rma && f.amount == refund.amount
        )),
        "the feed must report the refund of {rma}"
    );
}

/// Cancelling a booked order works (and says so again when repeated); once something shipped
/// the ERP refuses with a permanent failure.
pub async fn cancel_works_before_shipment_and_is_refused_after(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let reference = unique("CONF-CANCEL");
    let order = booking(
        erp,
        seeds,
        &seeds.good_customer,
        &reference,
        &[(seeds.plenty_item.clone(), 1)],
    )
    .await;
    let booked = must(
        erp.book_order(&order, &format!("{reference}/book")).await,
        "booking",
    );
    let outcome = must(
        erp.cancel_order(
            &booked.erp_ref,
            "customer changed mind",
            &format!("{reference}/cancel"),
        )
        .await,
        "cancelling before shipment",
    );
    assert_eq!(
        outcome,
        CancelOutcome::Cancelled,
        "the first cancellation cancels"
    );
    let repeat = must(
        erp.cancel_order(
            &booked.erp_ref,
            "customer changed mind",
            &format!("{reference}/cancel-again"),
        )
        .await,
        "cancelling again",
    );
    assert!(
        matches!(
            repeat,
            CancelOutcome::AlreadyCancelled | CancelOutcome::Cancelled
        ),
        "cancelling a cancelled order is not an error: {repeat:?}"
    );
    let read = must(
        erp.order(&booked.erp_ref).await,
        "reading the cancelled order",
    );
    assert!(read.cancelled, "the order must read as cancelled: {read:?}");

    let reference = unique("CONF-SHIPPED");
    let order = booking(
        erp,
        seeds,
        &seeds.good_customer,
        &reference,
        &[(seeds.plenty_item.clone(), 1)],
    )
    .await;
    let booked = must(
        erp.book_order(&order, &format!("{reference}/book")).await,
        "booking",
    );
    done(
        subject.warehouse.ship(&booked.erp_ref, LineNo(1), 1).await,
        "shipping",
    );
    match erp
        .cancel_order(&booked.erp_ref, "too late", &format!("{reference}/cancel"))
        .await
    {
        Ok(outcome) => panic!("cancelling a shipped order must be refused, got {outcome:?}"),
        Err(failure) => assert_eq!(
            failure.class,
            FailureClass::Permanent,
            "cancel after shipment must be permanent: {failure}"
        ),
    }
    let read = must(
        erp.order(&booked.erp_ref).await,
        "reading the shipped order",
    );
    assert!(
        !read.cancelled,
        "a refused cancellation leaves the order alive"
    );
}

/// Reading the feed in pages of one change from a cursor loses nothing that one big read
/// from the same cursor sees (duplicates are allowed).
pub async fn change_feed_paging_loses_no_event(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let cursor = feed_end(erp).await;
    let mut references = BTreeSet::new();
    for _ in 0..3 {
        let reference = unique("CONF-FEED");
        let order = booking(
            erp,
            seeds,
            &seeds.good_customer,
            &reference,
            &[(seeds.plenty_item.clone(), 1)],
        )
        .await;
        must(
            erp.book_order(&order, &format!("{reference}/book")).await,
            "booking",
        );
        references.insert(reference);
    }
    let all_booked = |read: &[ErpChange]| {
        let seen: BTreeSet<&str> = read
            .iter()
            .filter_map(|c| match &c.kind {
                ChangeKind::OrderBooked { reference, .. } => Some(reference.as_str()),
                _ => None,
            })
            .collect();
        references.iter().all(|r| seen.contains(r.as_str()))
    };
    let whole = read_feed_until(erp, cursor.clone(), 500, all_booked).await;
    assert!(
        all_booked(&whole),
        "the feed must report the 3 bookings: {whole:?}"
    );
    let paged = read_feed_until(erp, cursor, 1, |read| {
        let ids: BTreeSet<&str> = read.iter().map(|c| c.id.as_str()).collect();
        whole.iter().all(|c| ids.contains(c.id.as_str()))
    })
    .await;
    let paged_ids: BTreeSet<&str> = paged.iter().map(|c| c.id.as_str()).collect();
    let lost: Vec<&ErpChange> = whole
        .iter()
        .filter(|c| !paged_ids.contains(c.id.as_str()))
        .collect();
    assert!(lost.is_empty(), "paging by one lost changes: {lost:?}");
    // The same change id always carries the same change.
    let mut by_id: BTreeMap<&str, &ErpChange> = BTreeMap::new();
    for change in whole.iter().chain(paged.iter()) {
        if let Some(earlier) = by_id.insert(change.id.as_str(), change) {
            assert_eq!(
                earlier.kind, change.kind,
                "change {} came back different",
                change.id
            );
        }
    }
}

/// A customer with a negotiated price pays less than the list price, which the quote also
/// shows; another customer's quote shows the same list price.
pub async fn negotiated_price_differs_from_list_price(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let item = [PriceRequest {
        sku: seeds.negotiated_item.clone(),
        quantity: 1,
    }];
    let negotiated = must(
        erp.prices(&seeds.negotiated_customer, &item, today()).await,
        "prices",
    );
    let quote = negotiated
        .iter()
        .find(|q| q.sku == seeds.negotiated_item)
        .unwrap_or_else(|| panic!("no quote for {}: {negotiated:?}", seeds.negotiated_item));
    assert!(
        quote.unit_price < quote.list_price,
        "the negotiated price must be below the list price: {quote:?}"
    );
    assert_eq!(quote.currency, seeds.currency, "quote currency");
    let list = must(
        erp.prices(&seeds.tight_customer, &item, today()).await,
        "prices",
    );
    assert_eq!(
        list.first().map(|q| q.list_price),
        Some(quote.list_price),
        "the list price is the same for every customer"
    );
}

/// Creating a customer reports `created`; syncing it again reports the same ERP customer
/// without creating another; its credit standing can be read.
pub async fn customer_upsert_is_idempotent(subject: &Subject) {
    let erp = subject.erp.as_ref();
    let id = unique("CONF-ACC");
    let mut account = Account {
        id: AccountId::new(id.as_str()),
        refs: ExternalRefs::default(),
        name: format!("Conformance Outfitters {id}"),
        tier: CustomerTier::Silver,
        region: None,
        billing: None,
        shipping: None,
        currency: subject.warehouse.seeds().currency,
        credit_limit: None,
        open_balance: None,
        credit_status: None,
    };
    let created = must(
        erp.upsert_customer(&account, &format!("{id}/sync")).await,
        "creating a customer",
    );
    assert!(
        created.created,
        "a new account must be created: {created:?}"
    );
    account.name.push_str(" (renamed)");
    let updated = must(
        erp.upsert_customer(&account, &format!("{id}/sync-2")).await,
        "updating it",
    );
    assert!(
        !updated.created,
        "syncing again must update, not create: {updated:?}"
    );
    assert_eq!(updated.erp_ref, created.erp_ref, "the same ERP customer");
    let report = must(
        erp.credit_status(&account.id).await,
        "credit status of the new customer",
    );
    assert_eq!(report.account, account.id, "credit report account");
    assert_eq!(
        report.status,
        CreditStatus::Good,
        "a new customer owes nothing: {report:?}"
    );
}

/// The ERP offers at least one way to fulfil a small order of an item it stocks, naming the
/// locations that would ship.
pub async fn fulfilment_options_are_offered(subject: &Subject) {
    let (erp, seeds) = (subject.erp.as_ref(), subject.warehouse.seeds());
    let options = must(
        erp.fulfilment_options(&FulfilmentRequest {
            account: seeds.good_customer.clone(),
            region: None,
            lines: vec![(seeds.plenty_item.clone(), 1)],
        })
        .await,
        "fulfilment options",
    );
    assert!(!options.is_empty(), "an item in stock must be fulfillable");
    assert!(
        options.iter().all(|o| !o.locations.is_empty()),
        "every option names its locations: {options:?}"
    );
}
