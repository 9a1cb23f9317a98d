//! Chained steps: when a step's decision enqueues the next step of the work (an order's
//! booking after its validation, say) and that task's lane has a free slot, the commit of
//! the decision also leases the new task ([`Decision::claim`]) and the call runs it at once.
//! When the order has no next step ready on the call's own lane, the commit leases that
//! lane's next ready task instead, of any order ([`Decision::claim_ready`]): the call's slot
//! goes on to it as the lane's dispatcher would have sent it there, one lease later. An
//! accepted message's first step is claimed the same way with the message
//! (`Store::accept_inbound_leasing`). The step then needs no lease of its own and waits for
//! no dispatcher.
//!
//! What stays as without chaining: a claimed task is leased exactly as the dispatcher would
//! lease it (its key's head, due, counted attempt, fresh token, the lane's lease duration);
//! the lane's concurrency slot, token bucket, breaker and throttle pause are checked before
//! the claim, and a half-open breaker is never probed this way. Slots and tokens reserved for
//! a claim that leased nothing are given back. One task per lane is claimed per decision;
//! batched lanes and shutdown take no claims. Everything else waits for its dispatcher. A
//! chain runs while its lane has ready work and a token for it, oldest ready task first,
//! exactly the order the dispatcher leases in, so chains take nothing out of turn.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossdock_domain::order::Lane as LaneName;
use crossdock_store::{Decision, Lease, LeaseRequest};
use time::OffsetDateTime;
use tracing::warn;

use crate::engine::Engine;
use crate::lane::{Lane, Slot};

/// Leases of one lane to run in one call, with the concurrency slot the call holds.
pub(crate) struct Call {
    /// Lane of the leases.
    pub(crate) lane: LaneName,
    /// The leases (one, or a batch of one kind on a batched lane).
    pub(crate) leases: Vec<Lease>,
    /// The lane's slot, freed when the call ends.
    pub(crate) slot: Slot,
}

/// A slot and a token of a lane set aside for a claim; dropped unused, both go back.
pub(crate) struct Reservation {
    lane_name: LaneName,
    lane: Lane,
    slot: Option<Slot>,
}

impl Reservation {
    /// The call that runs `lease` with this reservation's slot.
    pub(crate) fn call(mut self, lease: Lease) -> Option<Call> {
        let slot = self.slot.take()?;
        Some(Call {
            lane: self.lane_name,
            leases: vec![lease],
            slot,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.slot.take().is_some() {
            self.lane.refund_token();
        }
    }
}

/// Reservations for a claim: one per lane for a decision, one per slot for a page of messages.
#[derive(Default)]
pub(crate) struct Reserved(pub(crate) Vec<Reservation>);

impl Engine {
    /// Sets aside a slot and a token of `lane_name` for a task claimed at commit, when the
    /// lane can start a call now; `own` (the call's slot, on its own lane) is used first.
    pub(crate) fn reserve_one(
        &self,
        lane_name: LaneName,
        own: Option<&mut Option<Slot>>,
    ) -> Option<Reservation> {
        let lane = self.lane(lane_name);
        if lane.config().batch > 1 || !lane.try_call_now() {
            return None;
        }
        let slot = match own {
            Some(own) if own.is_some() => own.take(),
            _ => lane.try_permit(),
        };
        if slot.is_none() {
            lane.refund_token();
        }
        Some(Reservation {
            lane_name,
            lane: lane.clone(),
            slot: Some(slot?),
        })
    }

    /// The lease request of a claim on `lane_name` at `now`: one task, the lane's lease.
    pub(crate) fn claim_request(&self, lane_name: LaneName, now: OffsetDateTime) -> LeaseRequest {
        LeaseRequest {
            lane: lane_name.as_str().to_owned(),
            owner: self.config.owner.clone(),
            limit: 1,
            lease_for: Duration::from_millis(self.lane(lane_name).config().lease_ms),
            now,
        }
    }

    /// Reserves a slot on each lane where `decision` enqueues a task due now, and asks the
    /// store to lease one such task per lane with the commit. On the call's own lane the
    /// call's slot (`own`) is used first, so that a full lane can still continue its order;
    /// when the order has nothing ready there, the slot leases the lane's next ready task.
    pub(crate) fn reserve(
        &self,
        decision: &mut Decision,
        own_lane: LaneName,
        own: &mut Option<Slot>,
    ) -> Reserved {
        let now = self.clock.now();
        let mut reserved: Vec<Reservation> = Vec::new();
        for task in &decision.tasks {
            let Some(lane_name) = LaneName::parse(&task.lane) else {
                continue;
            };
            if task.due_at > now || reserved.iter().any(|r| r.lane_name == lane_name) {
                continue;
            }
            let own = (lane_name == own_lane).then_some(&mut *own);
            reserved.extend(self.reserve_one(lane_name, own));
        }
        // A slot on the call's own lane that no new task of this work takes goes to the
        // lane's next ready task, whatever its key.
        if !reserved.iter().any(|r| r.lane_name == own_lane) {
            reserved.extend(self.reserve_one(own_lane, Some(own)));
        }
        decision.claim = reserved
            .iter()
            .map(|r| self.claim_request(r.lane_name, now))
            .collect();
        decision.claim_ready = reserved
            .iter()
            .any(|r| r.lane_name == own_lane)
            .then(|| self.claim_request(own_lane, now));
        Reserved(reserved)
    }

    /// The calls to run for the tasks the commit leased; the other reservations go back.
    pub(crate) fn claimed(&self, reserved: Reserved, leased: Vec<Lease>) -> Vec<Call> {
        let mut left = reserved.0;
        let mut calls = Vec::with_capacity(leased.len());
        for lease in leased {
            let found = left
                .iter()
                .position(|r| r.lane_name.as_str() == lease.task.lane);
            // The store leases no more than one task per reserved lane.
            match found.and_then(|at| left.swap_remove(at).call(lease)) {
                Some(call) => calls.push(call),
                None => warn!("A claimed lease without a slot; it will expire"),
            }
        }
        self.metrics
            .steps_chained
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        calls
    }
}
