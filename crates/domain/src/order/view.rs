//! Derived views over the order's facts: per-line quantities, totals, status, stage times.

use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::state::{Milestone, Order, ReturnFacts};
use super::status::{OrderStatus, ReturnStatus};
use crate::ids::LineNo;

/// How the status reason of an order whose cancellation was refused (it had already shipped)
/// begins; the cancellation's own reason follows.
pub const CANCELLATION_REFUSED: &str = "Cancellation refused, the order had already shipped";

/// Every quantity the hub tracks for one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineQuantities {
    /// Units ordered.
    pub ordered: u32,
    /// Units allocated to a location.
    pub allocated: u32,
    /// Units waiting for stock.
    pub backordered: u32,
    /// Units picked.
    pub picked: u32,
    /// Units shipped.
    pub shipped: u32,
    /// Units delivered.
    pub delivered: u32,
    /// Units invoiced.
    pub invoiced: u32,
    /// Units returned (received back).
    pub returned: u32,
}

impl Order {
    /// Whether the order was captured (its lines are known).
    pub fn is_captured(&self) -> bool {
        self.draft.is_some()
    }

    /// Units ordered on a line (0 for an unknown line).
    pub fn ordered(&self, line: LineNo) -> u32 {
        self.draft
            .as_ref()
            .and_then(|d| d.lines.iter().find(|l| l.line == line))
            .map_or(0, |l| l.quantity)
    }

    /// Units allocated on a line, over every location.
    pub fn allocated(&self, line: LineNo) -> u32 {
        self.allocations
            .get(&line)
            .map_or(0, |by_location| by_location.values().sum())
    }

    /// Units still waiting for stock on a line.
    pub fn backordered(&self, line: LineNo) -> u32 {
        if self.backorders.contains_key(&line) && !self.cancellation_in_force() {
            let covered = self.allocated(line).max(self.shipped(line));
            self.ordered(line).saturating_sub(covered)
        } else {
            0
        }
    }

    /// Units of a line in shipments that reached at least `milestone`.
    pub fn quantity_at(&self, line: LineNo, milestone: Milestone) -> u32 {
        self.shipments
            .values()
            .filter(|s| s.milestone.is_some_and(|m| m >= milestone))
            .filter_map(|s| s.lines.get(&line))
            .sum()
    }

    /// Units shipped on a line.
    pub fn shipped(&self, line: LineNo) -> u32 {
        self.quantity_at(line, Milestone::Shipped)
    }

    /// Units delivered on a line.
    pub fn delivered(&self, line: LineNo) -> u32 {
        self.quantity_at(line, Milestone::Delivered)
    }

    /// Units invoiced on a line.
    pub fn invoiced(&self, line: LineNo) -> u32 {
        self.invoices
            .values()
            .filter_map(|i| i.lines.get(&line))
            .sum()
    }

    /// Units received back on a line, over every return.
    pub fn returned(&self, line: LineNo) -> u32 {
        self.returns
            .values()
            .flat_map(|r| r.receipts.values())
            .filter_map(|receipt| receipt.lines.get(&line))
            .sum()
    }

    /// Units of a line requested for return by returns that were not refused.
    pub fn return_requested(&self, line: LineNo) -> u32 {
        self.returns
            .values()
            .filter(|r| r.refusal.is_none())
            .filter_map(|r| r.request.as_ref())
            .filter_map(|req| req.lines.get(&line))
            .sum()
    }

    /// Every quantity of one line.
    pub fn line_quantities(&self, line: LineNo) -> LineQuantities {
        LineQuantities {
            ordered: self.ordered(line),
            allocated: self.allocated(line),
            backordered: self.backordered(line),
            picked: self.quantity_at(line, Milestone::Picked),
            shipped: self.shipped(line),
            delivered: self.delivered(line),
            invoiced: self.invoiced(line),
            returned: self.returned(line),
        }
    }

    /// Line numbers of the order.
    pub fn lines(&self) -> impl Iterator<Item = LineNo> + '_ {
        self.draft
            .iter()
            .flat_map(|d| d.lines.iter().map(|l| l.line))
    }

    fn all_lines(&self, predicate: impl Fn(LineNo) -> bool) -> bool {
        self.draft.is_some() && self.lines().all(predicate)
    }

    /// Every unit shipped.
    pub fn fully_shipped(&self) -> bool {
        self.all_lines(|l| self.shipped(l) >= self.ordered(l))
    }

    /// Every unit delivered.
    pub fn fully_delivered(&self) -> bool {
        self.all_lines(|l| self.delivered(l) >= self.ordered(l))
    }

    /// Every unit invoiced.
    pub fn fully_invoiced(&self) -> bool {
        self.all_lines(|l| self.invoiced(l) >= self.ordered(l))
    }

    /// Every unit allocated (or already shipped).
    pub fn fully_allocated(&self) -> bool {
        self.all_lines(|l| self.allocated(l).max(self.shipped(l)) >= self.ordered(l))
    }

    /// Anything shipped at all.
    pub fn any_shipped(&self) -> bool {
        self.lines().any(|l| self.shipped(l) > 0)
    }

    /// Order value: Σ quantity × unit price (exact).
    pub fn total(&self) -> Decimal {
        self.draft.as_ref().map_or(Decimal::ZERO, |d| {
            d.lines
                .iter()
                .map(|l| Decimal::from(l.quantity) * l.unit_price)
                .sum()
        })
    }

    /// Σ invoice totals (tax included).
    pub fn invoiced_total(&self) -> Decimal {
        self.invoices.values().map(|i| i.total).sum()
    }

    /// Σ payments.
    pub fn paid_total(&self) -> Decimal {
        self.payments.values().map(|p| p.amount).sum()
    }

    /// Σ credit memos over every return.
    pub fn credited_total(&self) -> Decimal {
        self.returns
            .values()
            .flat_map(|r| r.credit_memos.values())
            .map(|c| c.amount)
            .sum()
    }

    /// Σ refunds over every return.
    pub fn refunded_total(&self) -> Decimal {
        self.returns
            .values()
            .flat_map(|r| r.refunds.values())
            .map(|r| r.amount)
            .sum()
    }

    /// Invoices issued, fully delivered and paid.
    pub fn fully_paid(&self) -> bool {
        self.fully_invoiced() && self.paid_total() >= self.invoiced_total()
    }

    /// Whether a cancellation holds: one was requested (or reported by the ERP) and nothing
    /// shipped. Orders are cancelled only before shipment, so once goods left the ERP refuses
    /// (or has refused) the request and the order carries on through its lifecycle. Derived
    /// from the joined facts, so it does not depend on the order events arrive in.
    pub fn cancellation_in_force(&self) -> bool {
        self.cancellation.is_some() && !self.any_shipped()
    }

    /// Whether a cancellation was requested but the order had already shipped: the request is
    /// settled as refused.
    pub fn cancellation_refused(&self) -> bool {
        self.cancellation.is_some() && self.any_shipped()
    }

    /// Why the order is where it is, as told to Salesforce: the cancellation's reason while it
    /// holds, that it was refused once the order shipped, or why the order was rejected.
    pub fn status_reason(&self) -> Option<String> {
        match &self.cancellation {
            Some(c) if self.cancellation_refused() => {
                Some(format!("{CANCELLATION_REFUSED}: {}", c.reason))
            }
            Some(c) => Some(c.reason.clone()),
            None => self.rejection.as_ref().map(|r| r.reasons.join("; ")),
        }
    }

    /// Whether every condition to close the order holds.
    pub fn is_closable(&self) -> bool {
        self.closed.is_none()
            && !self.cancellation_in_force()
            && self.rejection.is_none()
            && self.fully_delivered()
            && self.fully_paid()
    }

    /// The order's status, derived from its facts.
    pub fn status(&self) -> OrderStatus {
        let shipped_any = self.any_shipped();
        if self.cancellation_in_force() {
            return OrderStatus::Cancelled;
        }
        if self.rejection.is_some() && self.booking.is_none() && !shipped_any {
            return OrderStatus::Rejected;
        }
        if self.closed.is_some() {
            return OrderStatus::Closed;
        }
        if self.fully_delivered() {
            if self.fully_paid() {
                return OrderStatus::Paid;
            }
            if self.fully_invoiced() {
                return OrderStatus::Invoiced;
            }
            return OrderStatus::Delivered;
        }
        if self.fully_shipped() {
            return OrderStatus::Shipped;
        }
        if shipped_any {
            return OrderStatus::PartiallyShipped;
        }
        if self.booking.is_some() {
            if self.fully_allocated() {
                return OrderStatus::Allocated;
            }
            // Sticky until every unit is allocated, so the status never steps back to
            // `Booked` when one line's backorder clears before another line is allocated.
            if !self.backorders.is_empty() {
                return OrderStatus::Backordered;
            }
            return OrderStatus::Booked;
        }
        if self.validation.is_some() {
            return OrderStatus::Validated;
        }
        OrderStatus::Captured
    }

    /// Latest time any shipment reached `milestone`, once every unit has reached it.
    fn completed_at(&self, milestone: Milestone, complete: bool) -> Option<OffsetDateTime> {
        if !complete {
            return None;
        }
        self.shipments
            .values()
            .filter_map(|s| s.times.get(&milestone))
            .map(|t| t.0.0)
            .max()
    }

    /// When each stage was reached, for cycle-time figures.
    pub fn stage_times(&self) -> StageTimes {
        let invoiced_at = if self.fully_invoiced() {
            self.invoices.values().map(|i| i.issued_at).max()
        } else {
            None
        };
        let paid_at = if self.fully_paid() {
            self.payments.values().map(|p| p.received_at).max()
        } else {
            None
        };
        StageTimes {
            captured: self.draft.as_ref().map(|d| d.captured_at),
            validated: self.validation.as_ref().map(|v| v.at),
            booked: self.booking.as_ref().map(|b| b.at),
            shipped: self.completed_at(Milestone::Shipped, self.fully_shipped()),
            delivered: self.completed_at(Milestone::Delivered, self.fully_delivered()),
            invoiced: invoiced_at,
            paid: paid_at,
            closed: self.closed.map(|c| c.0.0),
            cancelled: self
                .cancellation
                .as_ref()
                .filter(|_| self.cancellation_in_force())
                .map(|c| c.at),
        }
    }
}

/// When an order reached each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StageTimes {
    /// Captured.
    #[serde(with = "time::serde::rfc3339::option")]
    pub captured: Option<OffsetDateTime>,
    /// Validated.
    #[serde(with = "time::serde::rfc3339::option")]
    pub validated: Option<OffsetDateTime>,
    /// Booked in the ERP.
    #[serde(with = "time::serde::rfc3339::option")]
    pub booked: Option<OffsetDateTime>,
    /// Every unit shipped.
    #[serde(with = "time::serde::rfc3339::option")]
    pub shipped: Option<OffsetDateTime>,
    /// Every unit delivered.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered: Option<OffsetDateTime>,
    /// Fully invoiced.
    #[serde(with = "time::serde::rfc3339::option")]
    pub invoiced: Option<OffsetDateTime>,
    /// Fully paid.
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid: Option<OffsetDateTime>,
    /// Closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed: Option<OffsetDateTime>,
    /// Cancelled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancelled: Option<OffsetDateTime>,
}

impl ReturnFacts {
    /// Units requested per line.
    pub fn requested(&self, line: LineNo) -> u32 {
        self.request
            .as_ref()
            .and_then(|r| r.lines.get(&line).copied())
            .unwrap_or(0)
    }

    /// Units received per line.
    pub fn received(&self, line: LineNo) -> u32 {
        self.receipts
            .values()
            .filter_map(|r| r.lines.get(&line))
            .sum()
    }

    /// Σ credit memos.
    pub fn credited(&self) -> Decimal {
        self.credit_memos.values().map(|c| c.amount).sum()
    }

    /// Σ refunds.
    pub fn refunded(&self) -> Decimal {
        self.refunds.values().map(|r| r.amount).sum()
    }

    /// The return's status, derived from its facts.
    pub fn status(&self) -> ReturnStatus {
        if self.refusal.is_some() && self.receipts.is_empty() {
            return ReturnStatus::Rejected;
        }
        if self.closed.is_some() {
            return ReturnStatus::Closed;
        }
        if !self.credit_memos.is_empty() {
            if self.refunded() >= self.credited() {
                return ReturnStatus::Refunded;
            }
            return ReturnStatus::Credited;
        }
        if !self.receipts.is_empty() {
            return ReturnStatus::Received;
        }
        if self.authorisation.is_some() {
            return ReturnStatus::Authorised;
        }
        ReturnStatus::Requested
    }
}
