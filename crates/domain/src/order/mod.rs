//! The order aggregate: state as joined facts, `decide`, `evolve`, `react`, derived views.

mod command;
mod decide;
mod effect;
mod event;
mod evolve;
mod react;
mod state;
mod status;
mod validation;
mod view;

pub use command::Command;
pub use decide::decide;
pub use effect::{Effect, Lane, awaiting_booking};
pub use event::Event;
pub use evolve::{evolve, replay};
pub use react::react;
pub use state::{
    Booking, Cancellation, Channel, Check, CheckResult, CreditMemoFacts, DraftLine, InvoiceFacts,
    Milestone, Order, OrderDraft, PaymentFacts, ReceiptFacts, RefundFacts, Rejection,
    ReturnAuthorisation, ReturnFacts, ReturnRefusal, ReturnRequest, ShipmentFacts, Timestamp,
    Validation,
};
pub use status::{OrderStatus, ReturnStatus};
pub use validation::{CreditAnswer, ValidationFacts, ValidationPolicy, Verdict, judge};
pub use view::{CANCELLATION_REFUSED, LineQuantities, StageTimes};
