//! Order and return statuses, derived from facts and never stored.

use serde::{Deserialize, Serialize};

/// Where an order is in its lifecycle. Derived from per-line quantities, so it only moves
/// forward, except to `Cancelled` (before shipment) and `Rejected` (before booking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Received by the hub, not yet validated.
    Captured,
    /// Passed validation; waiting for (or being) booked in the ERP.
    Validated,
    /// Booked in the ERP.
    Booked,
    /// Booked, some units wait for stock.
    Backordered,
    /// Every unit is allocated to a location.
    Allocated,
    /// Some units shipped.
    PartiallyShipped,
    /// Every unit shipped.
    Shipped,
    /// Every unit delivered.
    Delivered,
    /// Delivered and fully invoiced.
    Invoiced,
    /// Invoices fully paid.
    Paid,
    /// Nothing left to do.
    Closed,
    /// Refused by validation or by the ERP.
    Rejected,
    /// Cancelled before shipment.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OrderStatus; 13] = [
        OrderStatus::Captured,
        OrderStatus::Validated,
        OrderStatus::Booked,
        OrderStatus::Backordered,
        OrderStatus::Allocated,
        OrderStatus::PartiallyShipped,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Invoiced,
        OrderStatus::Paid,
        OrderStatus::Closed,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
    ];

    /// Position on the forward path (`Captured` = 0 … `Closed` = 10); `None` for the
    /// terminal side paths `Rejected` and `Cancelled`.
    pub fn progress(self) -> Option<u8> {
        Some(match self {
            OrderStatus::Captured => 0,
            OrderStatus::Validated => 1,
            OrderStatus::Booked => 2,
            OrderStatus::Backordered => 3,
            OrderStatus::Allocated => 4,
            OrderStatus::PartiallyShipped => 5,
            OrderStatus::Shipped => 6,
            OrderStatus::Delivered => 7,
            OrderStatus::Invoiced => 8,
            OrderStatus::Paid => 9,
            OrderStatus::Closed => 10,
            OrderStatus::Rejected | OrderStatus::Cancelled => return None,
        })
    }

    /// Whether nothing more will happen to the order (returns aside).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Closed | OrderStatus::Rejected | OrderStatus::Cancelled
        )
    }

    /// Stable name, as stored in the hub's read models and used in queries.
    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::Captured => "Captured",
            OrderStatus::Validated => "Validated",
            OrderStatus::Booked => "Booked",
            OrderStatus::Backordered => "Backordered",
            OrderStatus::Allocated => "Allocated",
            OrderStatus::PartiallyShipped => "PartiallyShipped",
            OrderStatus::Shipped => "Shipped",
            OrderStatus::Delivered => "Delivered",
            OrderStatus::Invoiced => "Invoiced",
            OrderStatus::Paid => "Paid",
            OrderStatus::Closed => "Closed",
            OrderStatus::Rejected => "Rejected",
            OrderStatus::Cancelled => "Cancelled",
        }
    }

    /// Label written to Salesforce and shown to people. Accepted orders that the ERP has not
    /// booked yet (captured or validated) read "Awaiting Booking".
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Captured | OrderStatus::Validated => "Awaiting Booking",
            OrderStatus::PartiallyShipped => "Partially Shipped",
            other => other.name(),
        }
    }

    /// Parses [`OrderStatus::name`] back.
    pub fn parse(text: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// Where a return is. Derived like the order status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReturnStatus {
    /// Asked for by the customer.
    Requested,
    /// Authorised by the ERP (RMA number issued).
    Authorised,
    /// Goods received (fully or partly).
    Received,
    /// Credit memo issued.
    Credited,
    /// Refund paid.
    Refunded,
    /// Done.
    Closed,
    /// Refused by the ERP.
    Rejected,
}

impl ReturnStatus {
    /// Position on the forward path; `None` for `Rejected`.
    pub fn progress(self) -> Option<u8> {
        Some(match self {
            ReturnStatus::Requested => 0,
            ReturnStatus::Authorised => 1,
            ReturnStatus::Received => 2,
            ReturnStatus::Credited => 3,
            ReturnStatus::Refunded => 4,
            ReturnStatus::Closed => 5,
            ReturnStatus::Rejected => return None,
        })
    }

    /// Name as written to the Salesforce case.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Requested => "Requested",
            ReturnStatus::Authorised => "Authorised",
            ReturnStatus::Received => "Received",
            ReturnStatus::Credited => "Credited",
            ReturnStatus::Refunded => "Refunded",
            ReturnStatus::Closed => "Closed",
            ReturnStatus::Rejected => "Rejected",
        }
    }
}
