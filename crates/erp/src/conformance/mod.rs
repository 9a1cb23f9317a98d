//! The ERP port conformance suite: one set of async cases that every ERP adapter must pass,
//! whatever ERP is behind it.
//!
//! A case gets a [`Subject`]: the adapter under test as an `Arc<dyn Erp>` and a
//! [`Warehouse`] driver for what only the ERP's own staff do (ship units of an order line,
//! deliver, receive returned goods) plus the names of seed records ([`Seeds`]). Cases panic
//! with a message naming what the adapter got wrong.
//!
//! - [`cases`]: the cases, one `async fn` each; [`CASES`] lists them.
//! - [`erp_conformance_tests!`](crate::erp_conformance_tests): expands to one `#[tokio::test]`
//!   per case for a setup expression (a fresh subject per case).
//! - [`run_all`]: runs every case in turn on one subject and reports each (for ERPs that are
//!   one shared server, where cases must not run at the same time).
//! - [`sim::SimWarehouse`]: the driver for the ERP simulator (admin API);
//!   [`tryton::TrytonWarehouse`]: the driver for a real Tryton server.

pub mod cases;
pub mod sim;
mod support;
pub mod tryton;

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use crossdock_domain::ids::{AccountId, LineNo, LocationId, Sku};
use crossdock_domain::money::Currency;
use crossdock_ports::Erp;
use futures::FutureExt;
use futures::future::BoxFuture;

/// Names of the seed records the cases use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeds {
    /// A customer in good standing with room for every case's orders.
    pub good_customer: AccountId,
    /// A customer with a tight credit limit (a few hundred at most).
    pub tight_customer: AccountId,
    /// A customer with a negotiated price for [`Seeds::negotiated_item`].
    pub negotiated_customer: AccountId,
    /// The item that customer has a negotiated (lower) price for.
    pub negotiated_item: Sku,
    /// An item with plenty of stock at [`Seeds::location`].
    pub plenty_item: Sku,
    /// An item with little stock (a handful of units or none) at [`Seeds::location`].
    pub scarce_item: Sku,
    /// The warehouse the cases book and ship from.
    pub location: LocationId,
    /// Currency of the customers above.
    pub currency: Currency,
}

/// What only the ERP's own staff do, for the cases.
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// The seed records.
    fn seeds(&self) -> &Seeds;

    /// Ships `quantity` units of `line` of order `erp_ref` now — picked, packed and handed to
    /// the carrier — receiving stock into the warehouse first when it lacks the units. The
    /// rest of the line stays open.
    ///
    /// # Errors
    /// A message saying why the warehouse could not do it.
    async fn ship(&self, erp_ref: &str, line: LineNo, quantity: u32) -> Result<(), String>;

    /// Delivers everything shipped on the order.
    ///
    /// # Errors
    /// A message saying why.
    async fn deliver(&self, erp_ref: &str) -> Result<(), String>;

    /// Receives returned goods on an RMA at the warehouse.
    ///
    /// # Errors
    /// A message saying why.
    async fn receive_return(&self, erp_rma: &str, lines: &[(LineNo, u32)]) -> Result<(), String>;

    /// How many sales the ERP holds for the hub's reference (cancelled ones included).
    ///
    /// # Errors
    /// A message saying why it could not count.
    async fn sales_with_reference(&self, reference: &str) -> Result<usize, String>;
}

/// What a case runs against.
pub struct Subject {
    /// The adapter under test.
    pub erp: Arc<dyn Erp>,
    /// The driver of the ERP's own staff.
    pub warehouse: Arc<dyn Warehouse>,
    /// Whatever must live as long as the subject (e.g. an in-process ERP).
    pub keep_alive: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("erp", &self.erp.name())
            .field("seeds", self.warehouse.seeds())
            .finish_non_exhaustive()
    }
}

/// A case of the suite.
pub type Case = for<'a> fn(&'a Subject) -> BoxFuture<'a, ()>;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("booking_the_same_order_twice_makes_one_sale", |s| {
        Box::pin(cases::booking_the_same_order_twice_makes_one_sale(s))
    }),
    ("availability_drops_after_booking", |s| {
        Box::pin(cases::availability_drops_after_booking(s))
    }),
    (
        "credit_limit_breach_is_refused_permanently_with_the_erp_message",
        |s| Box::pin(cases::credit_limit_breach_is_refused_permanently_with_the_erp_message(s)),
    ),
    (
        "partial_shipment_then_the_rest_reports_two_shipments",
        |s| {
            Box::pin(cases::partial_shipment_then_the_rest_reports_two_shipments(
                s,
            ))
        },
    ),
    ("return_gets_a_credit_note_with_tax_and_a_refund", |s| {
        Box::pin(cases::return_gets_a_credit_note_with_tax_and_a_refund(s))
    }),
    ("cancel_works_before_shipment_and_is_refused_after", |s| {
        Box::pin(cases::cancel_works_before_shipment_and_is_refused_after(s))
    }),
    ("change_feed_paging_loses_no_event", |s| {
        Box::pin(cases::change_feed_paging_loses_no_event(s))
    }),
    ("negotiated_price_differs_from_list_price", |s| {
        Box::pin(cases::negotiated_price_differs_from_list_price(s))
    }),
    ("customer_upsert_is_idempotent", |s| {
        Box::pin(cases::customer_upsert_is_idempotent(s))
    }),
    ("fulfilment_options_are_offered", |s| {
        Box::pin(cases::fulfilment_options_are_offered(s))
    }),
];

/// The outcome of one case in [`run_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// Case name.
    pub name: &'static str,
    /// `Err` with the panic message when the case failed.
    pub outcome: Result<(), String>,
    /// Wall time it took.
    pub elapsed: std::time::Duration,
}

/// Runs every case in turn on one subject; a failing case does not stop the others.
pub async fn run_all(subject: &Subject) -> Vec<CaseReport> {
    let mut reports = Vec::new();
    for (name, case) in CASES {
        let started = std::time::Instant::now();
        let outcome = AssertUnwindSafe(case(subject))
            .catch_unwind()
            .await
            .map_err(|panic| panic_message(panic.as_ref()));
        reports.push(CaseReport {
            name,
            outcome,
            elapsed: started.elapsed(),
        });
    }
    reports
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "the case panicked".to_owned())
}

/// Expands to one `#[tokio::test]` per conformance case; `$setup` is an async expression
/// giving a fresh [`Subject`] for each.
///
/// ```ignore
/// crossdock_erp::erp_conformance_tests!(sim_subject());
/// ```
#[macro_export]
macro_rules! erp_conformance_tests {
    ($setup:expr) => {
        $crate::erp_conformance_tests!(@cases $setup;
            booking_the_same_order_twice_makes_one_sale,
            availability_drops_after_booking,
            credit_limit_breach_is_refused_permanently_with_the_erp_message,
            partial_shipment_then_the_rest_reports_two_shipments,
            return_gets_a_credit_note_with_tax_and_a_refund,
            cancel_works_before_shipment_and_is_refused_after,
            change_feed_paging_loses_no_event,
            negotiated_price_differs_from_list_price,
            customer_upsert_is_idempotent,
            fulfilment_options_are_offered,
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let subject: $crate::conformance::Subject = $setup.await;
                $crate::conformance::cases::$case(&subject).await;
            }
        )*
    };
}
