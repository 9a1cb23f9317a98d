//! Helpers the cases share: unique references, bookings priced by the ERP itself, feed
//! reading with a deadline, and failures turned into readable panics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossdock_domain::catalog::{FulfilmentMethod, FulfilmentOption};
use crossdock_domain::ids::{AccountId, LineNo, OrderId, Sku};
use crossdock_ports::erp::{BookingLine, BookingRequest, ErpChange, PriceRequest};
use crossdock_ports::{Clock, Erp, Failure, SystemClock};
use time::Date;

use super::Seeds;

/// Longest wait for a change to show up in the feed (a real ERP may lag a little).
const FEED_DEADLINE: Duration = Duration::from_secs(20);

/// Most pages read while looking for the end of the feed.
const MAX_PAGES: usize = 10_000;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A reference no earlier run used: the wall clock in milliseconds plus a counter.
pub(crate) fn unique(prefix: &str) -> String {
    let millis = SystemClock.now().unix_timestamp_nanos() / 1_000_000;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{millis}-{n}")
}

/// Today, for pricing.
pub(crate) fn today() -> Date {
    SystemClock.now().date()
}

/// The value or a panic naming what failed and how.
#[track_caller]
pub(crate) fn must<T>(result: Result<T, Failure>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(failure) => panic!(
            "{what} failed: {failure} (code {})",
            failure.code.as_deref().unwrap_or("-")
        ),
    }
}

/// `Ok` or a panic naming the driver step.
#[track_caller]
pub(crate) fn done<T>(result: Result<T, String>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(message) => panic!("warehouse driver: {what} failed: {message}"),
    }
}

/// A booking at the seeds' location with lines numbered from 1, priced by the ERP for the
/// customer (the hub books at the price it validated).
pub(crate) async fn booking(
    erp: &dyn Erp,
    seeds: &Seeds,
    customer: &AccountId,
    reference: &str,
    lines: &[(Sku, u32)],
) -> BookingRequest {
    let requests: Vec<PriceRequest> = lines
        .iter()
        .map(|(sku, quantity)| PriceRequest {
            sku: sku.clone(),
            quantity: *quantity,
        })
        .collect();
    let quotes = must(
        erp.prices(customer, &requests, today()).await,
        "pricing the order lines",
    );
    let mut booking_lines = Vec::new();
    for (index, (sku, quantity)) in lines.iter().enumerate() {
        let quote = quotes
            .iter()
            .find(|q| &q.sku == sku)
            .unwrap_or_else(|| panic!("prices: no quote for {sku} among {quotes:?}"));
        booking_lines.push(BookingLine {
            line: LineNo(u32::try_from(index + 1).unwrap_or(u32::MAX)),
            sku: sku.clone(),
            quantity: *quantity,
            unit_price: quote.unit_price,
        });
    }
    BookingRequest {
        reference: OrderId::new(reference),
        sf_number: Some(format!("SF-{reference}")),
        account: customer.clone(),
        currency: seeds.currency,
        lines: booking_lines,
        fulfilment: Some(FulfilmentOption {
            method: FulfilmentMethod::ShipFromWarehouse,
            locations: vec![seeds.location.clone()],
            promised_date: None,
        }),
        region: None,
    }
}

/// The cursor at the end of the feed now.
pub(crate) async fn feed_end(erp: &dyn Erp) -> Option<String> {
    let mut cursor: Option<String> = None;
    let mut empty_pages = 0;
    for _ in 0..MAX_PAGES {
        let batch = must(
            erp.changes(cursor.as_deref(), 500).await,
            "reading the change feed to its end",
        );
        let moved = cursor.as_deref() != Some(batch.cursor.as_str());
        empty_pages = if batch.changes.is_empty() {
            empty_pages + 1
        } else {
            0
        };
        cursor = Some(batch.cursor);
        // A page may be empty mid-feed (events an adapter does not follow) while the
        // cursor still moves; the end is a cursor that stays, or empty pages in a row.
        if !moved || empty_pages >= 3 {
            return cursor;
        }
    }
    panic!("the change feed did not end after {MAX_PAGES} pages")
}

/// Reads the feed from `cursor` in pages of `limit` until `enough` holds for everything
/// read, or the deadline passes. Returns what was read, in order.
pub(crate) async fn read_feed_until(
    erp: &dyn Erp,
    cursor: Option<String>,
    limit: usize,
    enough: impl Fn(&[ErpChange]) -> bool,
) -> Vec<ErpChange> {
    let deadline = tokio::time::Instant::now() + FEED_DEADLINE;
    let mut cursor = cursor;
    let mut read = Vec::new();
    loop {
        let batch = must(
            erp.changes(cursor.as_deref(), limit).await,
            "reading the change feed",
        );
        let empty = batch.changes.is_empty() && cursor.as_deref() == Some(batch.cursor.as_str());
        read.extend(batch.changes);
        cursor = Some(batch.cursor);
        if enough(&read) {
            return read;
        }
        if tokio::time::Instant::now() > deadline {
            return read;
        }
        if empty {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
