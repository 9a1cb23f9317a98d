//! A business rejection is an order outcome, never a failure (issue 22): orders for accounts
//! the ERP does not know, arriving past the API's checks, end Rejected with the ERP's reason;
//! a Salesforce that has no such account either leaves nothing to write back, so no dead
//! letter is left for anyone to page about.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crossdock_domain::account::Account;
use crossdock_domain::catalog::{FulfilmentOption, InventoryLevel};
use crossdock_domain::ids::{AccountId, LineNo, LocationId, RmaId, Sku, System};
use crossdock_domain::money::Currency;
use crossdock_domain::order::{Command, CreditAnswer, OrderDraft};
use crossdock_domain::summary::OrderSummary;
use crossdock_engine::loopback::LoopbackErp;
use crossdock_ports::erp::{
    BookingConfirmation, BookingRequest, CancelOutcome, ChangeBatch, CreditMemo, CreditReport,
    CustomerRef, ErpOrder, FulfilmentRequest, PriceQuote, PriceRequest, Refund,
    ReturnAuthorisation, ReturnReceipt, ReturnRequest,
};
use crossdock_ports::failure::Result as PortResult;
use crossdock_ports::salesforce::ApiUsage;
use crossdock_ports::{Erp, Failure, Salesforce, SystemClock};
use crossdock_store::DeadLetterFilter;
use rust_decimal::Decimal;

use super::harness::{Hub, draft, message, test_config};

/// Accounts neither system knows start with this.
const UNKNOWN: &str = "NONE-";

fn unknown_customer(account: &AccountId) -> PortResult<()> {
    if account.as_str().starts_with(UNKNOWN) {
        // What the ERP simulator's adapter answers: a permanent refusal.
        return Err(
            Failure::permanent(format!("unknown customer {:?}", account.as_str()))
                .with_code("unknown_customer"),
        );
    }
    Ok(())
}

/// The loopback ERP, except that it knows no `NONE-` account.
struct Erp404(LoopbackErp);

#[async_trait]
impl Erp for Erp404 {
    fn name(&self) -> &str {
        "ERP without NONE- accounts"
    }
    async fn prices(
        &self,
        a: &AccountId,
        i: &[PriceRequest],
        on: time::Date,
    ) -> PortResult<Vec<PriceQuote>> {
        unknown_customer(a)?;
        self.0.prices(a, i, on).await
    }
    async fn availability(
        &self,
        s: &[Sku],
        l: Option<&LocationId>,
    ) -> PortResult<Vec<InventoryLevel>> {
        self.0.availability(s, l).await
    }
    async fn credit_check(
        &self,
        a: &AccountId,
        x: Decimal,
        c: Currency,
    ) -> PortResult<CreditAnswer> {
        unknown_customer(a)?;
        self.0.credit_check(a, x, c).await
    }
    async fn fulfilment_options(&self, r: &FulfilmentRequest) -> PortResult<Vec<FulfilmentOption>> {
        unknown_customer(&r.account)?;
        self.0.fulfilment_options(r).await
    }
    async fn book_order(&self, o: &BookingRequest, k: &str) -> PortResult<BookingConfirmation> {
        unknown_customer(&o.account)?;
        self.0.book_order(o, k).await
    }
    async fn cancel_order(&self, e: &str, r: &str, k: &str) -> PortResult<CancelOutcome> {
        self.0.cancel_order(e, r, k).await
    }
    async fn order(&self, e: &str) -> PortResult<ErpOrder> {
        self.0.order(e).await
    }
    async fn changes(&self, c: Option<&str>, l: usize) -> PortResult<ChangeBatch> {
        self.0.changes(c, l).await
    }
    async fn upsert_customer(&self, a: &Account, k: &str) -> PortResult<CustomerRef> {
        self.0.upsert_customer(a, k).await
    }
    async fn credit_status(&self, a: &AccountId) -> PortResult<CreditReport> {
        unknown_customer(a)?;
        self.0.credit_status(a).await
    }
    async fn create_return(&self, r: &ReturnRequest, k: &str) -> PortResult<ReturnAuthorisation> {
        self.0.create_return(r, k).await
    }
    async fn receive_return(
        &self,
        e: &str,
        l: &[(LineNo, u32)],
        k: &str,
    ) -> PortResult<ReturnReceipt> {
        self.0.receive_return(e, l, k).await
    }
    async fn issue_credit_memo(&self, e: &str, k: &str) -> PortResult<CreditMemo> {
        self.0.issue_credit_memo(e, k).await
    }
    async fn issue_refund(&self, c: &str, k: &str) -> PortResult<Refund> {
        self.0.issue_refund(c, k).await
    }
}

/// A Salesforce that has no `NONE-` account: creating an order under one is refused as the
/// connector refuses it. With `refuse_all`, every order write is refused so.
#[derive(Default)]
struct Salesforce404 {
    refuse_all: bool,
    written: std::sync::Mutex<Vec<OrderSummary>>,
}

#[async_trait]
impl Salesforce for Salesforce404 {
    async fn write_orders(&self, orders: &[OrderSummary]) -> Vec<PortResult<()>> {
        orders
            .iter()
            .map(|order| {
                if self.refuse_all
                    || (order.refs.sf_id.is_none() && order.account.as_str().starts_with(UNKNOWN))
                {
                    return Err(Failure::permanent(format!(
                        "no Salesforce account has ERP_Customer_Number__c = {}",
                        order.account
                    ))
                    .with_code("NOT_FOUND"));
                }
                self.written
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(order.clone());
                Ok(())
            })
            .collect()
    }
    async fn write_returns(&self, returns: &[(OrderSummary, RmaId)]) -> Vec<PortResult<()>> {
        returns.iter().map(|_| Ok(())).collect()
    }
    async fn write_inventory(&self, levels: &[InventoryLevel]) -> Vec<PortResult<()>> {
        levels.iter().map(|_| Ok(())).collect()
    }
    async fn write_credit(&self, reports: &[CreditReport]) -> Vec<PortResult<()>> {
        reports.iter().map(|_| Ok(())).collect()
    }
    async fn read_order(&self, sf_id: &str) -> PortResult<OrderDraft> {
        Err(Failure::permanent(format!("no order {sf_id}")))
    }
    fn usage(&self) -> Option<ApiUsage> {
        None
    }
}

/// An order submitted through the API (no Salesforce id) for `account`.
fn api_capture(order: &str, account: &str) -> crossdock_ports::inbound::InboundMessage {
    let mut d = draft(order, account, &[("SKU-1", 2)]);
    d.refs.sf_id = None;
    d.refs.sf_number = None;
    d.source = System::Api;
    message(
        System::Api,
        &format!("capture:{order}"),
        order,
        Command::CaptureOrder(d),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_orders_for_unknown_accounts_are_rejected_and_leave_no_dead_letter() {
    let erp = Arc::new(Erp404(LoopbackErp::new(Arc::new(SystemClock))));
    let salesforce = Arc::new(Salesforce404::default());
    let hub = Hub::start("unknown-accounts", erp, salesforce.clone(), test_config()).await;
    for n in 0..100 {
        hub.submit(api_capture(
            &format!("EXT-api-U{n}"),
            &format!("{UNKNOWN}{n}"),
        ))
        .await;
    }
    // One good order beside them is booked and written back as usual.
    hub.submit(api_capture("EXT-api-GOOD", "ACC-1")).await;
    for n in 0..100 {
        let order = format!("EXT-api-U{n}");
        hub.wait_for_order(
            Duration::from_secs(30),
            &order,
            "rejected, settled",
            |row| row.status == "Rejected" && row.sf_synced_status.as_deref() == Some("Rejected"),
        )
        .await;
    }
    hub.wait_for_order(Duration::from_secs(30), "EXT-api-GOOD", "booked", |row| {
        row.erp_ref.is_some()
    })
    .await;
    let dead = hub
        .store
        .dead_letters(DeadLetterFilter::default())
        .await
        .expect("dead letters");
    assert!(dead.is_empty(), "{dead:?}");
    let timeline = hub.store.timeline("EXT-api-U42").await.expect("timeline");
    let said = |text: &str| {
        timeline
            .iter()
            .any(|e| e.entry.summary.contains(text) || e.entry.detail.to_string().contains(text))
    };
    assert!(said("unknown customer"), "the ERP's reason: {timeline:?}");
    assert!(
        said("not written to Salesforce"),
        "why nothing was written back: {timeline:?}"
    );
    let written = salesforce
        .written
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|o| o.account.as_str().starts_with(UNKNOWN))
        .count();
    assert_eq!(written, 0);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_salesforce_order_whose_write_back_fails_is_still_a_dead_letter() {
    // Only an order that Salesforce cannot hold at all is let go: one captured from
    // Salesforce (it has a Salesforce id) must reach it, so its failed write stays visible.
    let erp = Arc::new(Erp404(LoopbackErp::new(Arc::new(SystemClock))));
    let salesforce = Arc::new(Salesforce404 {
        refuse_all: true,
        ..Salesforce404::default()
    });
    let hub = Hub::start("sf-rejection", erp, salesforce, test_config()).await;
    hub.submit(super::harness::capture("SF-9", &format!("{UNKNOWN}9")))
        .await;
    let store = hub.store.clone();
    hub.wait_for(Duration::from_secs(30), "a dead letter", || {
        let store = store.clone();
        async move {
            !store
                .dead_letters(DeadLetterFilter::default())
                .await
                .expect("dead letters")
                .is_empty()
        }
    })
    .await;
    assert_eq!(hub.status("SF-9").await.as_deref(), Some("Rejected"));
    hub.stop().await;
}
