//! Change feed: every state change is an [`Event`] with a monotonically increasing `seq` and a
//! stable `id`. Each consumer (the poll feed and every webhook subscription) gets its own
//! [`Stream`] of deliveries, numbered by `position`, where the duplicate and out-of-order knobs
//! act: an event can be delivered twice, or held back and delivered after later events.
//! Without those faults a stream's positions equal the events' sequence numbers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::{de_time, ser_time};
use crate::faults::Faults;

/// One state change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number: 1, 2, 3, ... in the order changes happened.
    pub seq: u64,
    /// Stable event id (UUID), the same on every redelivery.
    pub id: String,
    /// Event type, e.g. `order.booked`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Simulated time of the change.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub occurred_at: i64,
    /// Type-specific payload.
    pub data: Value,
}

/// One delivery of an event at a position of a stream.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Position in the consumer's stream (the poll cursor).
    pub position: u64,
    /// The event.
    pub event: Arc<Event>,
}

impl Serialize for Delivery {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            position: u64,
            #[serde(flatten)]
            event: &'a Event,
        }
        Wire {
            position: self.position,
            event: &self.event,
        }
        .serialize(serializer)
    }
}

#[derive(Debug, Clone)]
struct Held {
    event: Arc<Event>,
    /// Deliver after this many more events were pushed.
    remaining: u32,
    /// Deliver at the latest at this simulated time.
    release_at: i64,
}

/// An ordered, possibly faulty, sequence of deliveries for one consumer.
#[derive(Debug, Default)]
pub struct Stream {
    entries: VecDeque<Arc<Event>>,
    /// Position of `entries[0]` (positions start at 1).
    first_position: u64,
    held: Vec<Held>,
    retention: usize,
}

impl Stream {
    /// An empty stream keeping at most `retention` deliveries.
    pub fn new(retention: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            first_position: 1,
            held: Vec::new(),
            retention,
        }
    }

    /// Position of the last delivery (0 when empty).
    pub fn last_position(&self) -> u64 {
        self.first_position + self.entries.len() as u64 - 1
    }

    /// Position of the oldest retained delivery.
    pub fn first_position(&self) -> u64 {
        self.first_position
    }

    /// Number of events held back for later delivery.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn append(&mut self, event: Arc<Event>) {
        self.entries.push_back(event);
        self.trim();
    }

    fn trim(&mut self) {
        while self.entries.len() > self.retention.max(1) {
            self.entries.pop_front();
            self.first_position += 1;
        }
    }

    /// Offers a new event to the stream, applying the duplicate and reorder knobs.
    pub fn push(&mut self, event: &Arc<Event>, now: i64, faults: &Faults, rng: &mut ChaCha8Rng) {
        // Events already held move one step closer to release.
        let mut released = Vec::new();
        self.held.retain_mut(|held| {
            held.remaining = held.remaining.saturating_sub(1);
            if held.remaining == 0 {
                released.push(held.event.clone());
                false
            } else {
                true
            }
        });
        let window = faults.reorder_window.max(1);
        let hold = faults.reorder_rate > 0.0 && rng.random_bool(faults.reorder_rate);
        if hold {
            let remaining = rng.random_range(1..=window);
            let release_at = now.saturating_add(faults.reorder_max_hold_ms);
            self.held.push(Held {
                event: event.clone(),
                remaining,
                release_at,
            });
        } else {
            self.append(event.clone());
        }
        for event in released {
            self.append(event);
        }
        if faults.duplicate_rate > 0.0 && rng.random_bool(faults.duplicate_rate) {
            // The copy comes right away or a few events later.
            let remaining = rng.random_range(0..=window);
            if remaining == 0 {
                self.append(event.clone());
            } else {
                let release_at = now.saturating_add(faults.reorder_max_hold_ms);
                self.held.push(Held {
                    event: event.clone(),
                    remaining,
                    release_at,
                });
            }
        }
    }

    /// Delivers held events whose longest hold has passed.
    pub fn release_due(&mut self, now: i64) {
        if self.held.iter().all(|held| held.release_at > now) {
            return;
        }
        let mut released = Vec::new();
        self.held.retain(|held| {
            if held.release_at <= now {
                released.push(held.event.clone());
                false
            } else {
                true
            }
        });
        for event in released {
            self.append(event);
        }
    }

    /// Deliveries after `after`, at most `limit`. `Err(first)` when `after` is older than the
    /// oldest retained position minus one.
    pub fn page(&self, after: u64, limit: usize) -> Result<Vec<Delivery>, u64> {
        let next = after.saturating_add(1);
        if next < self.first_position {
            return Err(self.first_position);
        }
        let skip = usize::try_from(next - self.first_position).unwrap_or(usize::MAX);
        Ok(self
            .entries
            .iter()
            .skip(skip)
            .take(limit)
            .zip(next..)
            .map(|(event, position)| Delivery {
                position,
                event: event.clone(),
            })
            .collect())
    }

    /// The delivery at `position`, if retained.
    pub fn get(&self, position: u64) -> Option<Delivery> {
        let index = usize::try_from(position.checked_sub(self.first_position)?).ok()?;
        self.entries.get(index).map(|event| Delivery {
            position,
            event: event.clone(),
        })
    }
}

/// A stream as persisted: deliveries refer to events by sequence number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamSnapshot {
    /// Position of the first retained delivery.
    first_position: u64,
    /// Deliveries in position order as `[first seq, count]` runs of consecutive sequence
    /// numbers (without delivery faults the whole stream is one run).
    runs: Vec<(u64, u64)>,
    /// Events held back for later delivery.
    held: Vec<HeldSnapshot>,
}

/// A held-back event as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeldSnapshot {
    seq: u64,
    remaining: u32,
    release_at_ms: i64,
}

impl Stream {
    /// Every event the stream refers to (retained deliveries and held events).
    pub(crate) fn referenced(&self) -> impl Iterator<Item = &Arc<Event>> {
        self.entries
            .iter()
            .chain(self.held.iter().map(|held| &held.event))
    }

    /// The stream as persisted.
    pub(crate) fn snapshot(&self) -> StreamSnapshot {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for event in &self.entries {
            match runs.last_mut() {
                Some((first, count)) if *first + *count == event.seq => *count += 1,
                _ => runs.push((event.seq, 1)),
            }
        }
        StreamSnapshot {
            first_position: self.first_position,
            runs,
            held: self
                .held
                .iter()
                .map(|held| HeldSnapshot {
                    seq: held.event.seq,
                    remaining: held.remaining,
                    release_at_ms: held.release_at,
                })
                .collect(),
        }
    }

    /// Rebuilds a persisted stream over the restored events.
    ///
    /// # Errors
    /// A message when the snapshot refers to an event that is not there.
    pub(crate) fn restore(
        snapshot: StreamSnapshot,
        retention: usize,
        events: &BTreeMap<u64, Arc<Event>>,
    ) -> Result<Self, String> {
        let event = |seq: u64| {
            events
                .get(&seq)
                .cloned()
                .ok_or_else(|| format!("a delivery refers to event {seq}, which is not stored"))
        };
        if snapshot.first_position == 0 {
            return Err("stream positions start at 1".to_owned());
        }
        let mut entries = VecDeque::new();
        for (first, count) in snapshot.runs {
            let last = first
                .checked_add(count)
                .ok_or_else(|| format!("invalid run of {count} events from {first}"))?;
            for seq in first..last {
                entries.push_back(event(seq)?);
            }
        }
        let held = snapshot
            .held
            .into_iter()
            .map(|held| {
                Ok(Held {
                    event: event(held.seq)?,
                    remaining: held.remaining,
                    release_at: held.release_at_ms,
                })
            })
            .collect::<Result<_, String>>()?;
        let mut stream = Self {
            entries,
            first_position: snapshot.first_position,
            held,
            retention,
        };
        stream.trim();
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn event(seq: u64) -> Arc<Event> {
        Arc::new(Event {
            seq,
            id: seq.to_string(),
            kind: "test".into(),
            occurred_at: 0,
            data: Value::Null,
        })
    }

    #[test]
    fn without_faults_positions_equal_sequence_numbers() {
        let mut stream = Stream::new(100);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for seq in 1..=10 {
            stream.push(&event(seq), 0, &Faults::default(), &mut rng);
        }
        let page = stream.page(3, 4).unwrap_or_default();
        let got: Vec<(u64, u64)> = page.iter().map(|d| (d.position, d.event.seq)).collect();
        assert_eq!(got, vec![(4, 4), (5, 5), (6, 6), (7, 7)]);
    }

    #[test]
    fn held_events_are_released_after_their_longest_hold() {
        let faults = Faults {
            reorder_rate: 1.0,
            reorder_window: 50,
            ..Faults::default()
        };
        let mut stream = Stream::new(100);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        stream.push(&event(1), 0, &faults, &mut rng);
        assert_eq!(stream.held(), 1);
        stream.release_due(faults.reorder_max_hold_ms);
        assert_eq!(stream.held(), 0);
        assert_eq!(stream.last_position(), 1);
    }

    #[test]
    fn a_faulty_stream_is_restored_delivery_for_delivery() {
        let faults = Faults {
            duplicate_rate: 0.3,
            reorder_rate: 0.3,
            reorder_window: 50,
            ..Faults::default()
        };
        let mut stream = Stream::new(100);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let events: BTreeMap<u64, Arc<Event>> = (1..=40).map(|seq| (seq, event(seq))).collect();
        for event in events.values() {
            stream.push(event, 0, &faults, &mut rng);
        }
        let snapshot = stream.snapshot();
        let text = serde_json::to_string(&snapshot).expect("serializes");
        let back: StreamSnapshot = serde_json::from_str(&text).expect("reads back");
        let restored = Stream::restore(back, 100, &events).expect("restores");
        let seqs = |s: &Stream| -> Vec<(u64, u64)> {
            let page = s.page(0, 1_000).unwrap_or_default();
            page.iter().map(|d| (d.position, d.event.seq)).collect()
        };
        assert_eq!(seqs(&restored), seqs(&stream));
        assert!(stream.held() > 0, "the seed holds some events back");
        assert_eq!(restored.held(), stream.held());
        // Both release the same held events at the same time.
        let (mut a, mut b) = (stream, restored);
        a.release_due(i64::MAX);
        b.release_due(i64::MAX);
        assert_eq!(seqs(&a), seqs(&b));

        let missing: BTreeMap<u64, Arc<Event>> =
            events.into_iter().filter(|(s, _)| *s != 7).collect();
        let error = Stream::restore(a.snapshot(), 100, &missing).expect_err("event 7 is missing");
        assert!(error.contains("event 7"), "{error}");
    }

    #[test]
    fn retention_drops_the_oldest_and_expires_old_cursors() {
        let mut stream = Stream::new(3);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for seq in 1..=5 {
            stream.push(&event(seq), 0, &Faults::default(), &mut rng);
        }
        assert_eq!(stream.page(0, 10).err(), Some(3));
        assert_eq!(stream.page(2, 10).map(|p| p.len()), Ok(3));
    }
}
