//! The retail day, planned from a seed: when each order arrives, for whom, what it holds, and
//! what will happen to it (a price the ERP disagrees with, a cancellation, a return, a
//! backorder). Pure: the same seed and size always give the same day.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the driver does to an order besides placing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twist {
    /// Nothing special.
    None,
    /// The rep types a price the ERP does not agree with: validation rejects the order.
    PriceMismatch,
    /// The customer cancels shortly after placing it (before shipment).
    Cancel,
    /// The customer returns part of it once delivered.
    Return,
}

/// One planned order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOrder {
    /// Sequence number in the day (0-based).
    pub n: u32,
    /// When, from the start of the day.
    pub at: Duration,
    /// Customer index.
    pub customer: usize,
    /// (item index, quantity).
    pub lines: Vec<(usize, u32)>,
    /// Sales channel.
    pub channel: &'static str,
    /// Special fate.
    pub twist: Twist,
    /// Whether it orders a scarce item in quantity (expect a backorder).
    pub backorder: bool,
    /// Placed during the promotion spike.
    pub in_spike: bool,
}

/// The whole day.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Orders, by time.
    pub orders: Vec<PlannedOrder>,
    /// Length of the order-taking day.
    pub day: Duration,
    /// Promotion spike (start, end): ten times the base rate.
    pub spike: (Duration, Duration),
    /// ERP outage (start, end).
    pub outage: (Duration, Duration),
}

impl Plan {
    /// Plans a day of `orders` orders over `customers` customers and `items` items (the last
    /// `scarce` items are short in stock).
    pub fn new(
        seed: u64,
        orders: u32,
        customers: usize,
        items: usize,
        scarce: &[usize],
        day: Duration,
    ) -> Plan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let spike = (day.mul_f64(0.25), day.mul_f64(0.35));
        let outage = (day.mul_f64(0.50), day.mul_f64(0.65));
        // Rate r over 90 % of the day and 10 r over 10 %: 1.9 r·day orders in all.
        let spike_share = 1.0 / 1.9;
        let in_spike_count = (f64::from(orders) * spike_share).round() as u32;
        let mut times: Vec<(Duration, bool)> = Vec::with_capacity(orders as usize);
        for i in 0..orders {
            if i < in_spike_count {
                let at = spike.0 + (spike.1 - spike.0).mul_f64(rng.random::<f64>());
                times.push((at, true));
            } else {
                let mut at = day.mul_f64(rng.random::<f64>() * 0.9);
                if at >= spike.0 {
                    at += spike.1 - spike.0;
                }
                times.push((at, false));
            }
        }
        times.sort();
        let twist_every = |share: f64| ((f64::from(orders) * share).round() as u32).max(1);
        let mismatches = twist_every(0.01);
        let cancels = twist_every(0.01);
        let returns = twist_every(0.03);
        let backorders = twist_every(0.05);
        // Twists go to orders outside the spike and the outage so each is easy to follow.
        let calm: Vec<u32> = times
            .iter()
            .enumerate()
            .filter(|(_, (at, spiked))| !spiked && (*at < outage.0 || *at > outage.1))
            .map(|(i, _)| i as u32)
            .collect();
        let mut twists = vec![Twist::None; orders as usize];
        let mut backordered = vec![false; orders as usize];
        let pick = |count: u32, rng: &mut ChaCha8Rng, mark: &mut dyn FnMut(usize) -> bool| {
            let mut placed = 0;
            let mut guard = 0;
            while placed < count && guard < 10_000 && !calm.is_empty() {
                guard += 1;
                let index = calm[rng.random_range(0..calm.len())] as usize;
                if mark(index) {
                    placed += 1;
                }
            }
        };
        for (count, twist) in [
            (mismatches, Twist::PriceMismatch),
            (cancels, Twist::Cancel),
            (returns, Twist::Return),
        ] {
            pick(count, &mut rng, &mut |i| {
                if twists[i] == Twist::None {
                    twists[i] = twist;
                    true
                } else {
                    false
                }
            });
        }
        pick(backorders, &mut rng, &mut |i| {
            if !backordered[i] && twists[i] != Twist::PriceMismatch {
                backordered[i] = true;
                true
            } else {
                false
            }
        });
        let plain_items: Vec<usize> = (0..items).filter(|i| !scarce.contains(i)).collect();
        let orders = times
            .into_iter()
            .enumerate()
            .map(|(i, (at, in_spike))| {
                let line_count = rng.random_range(1..=3);
                let mut lines: Vec<(usize, u32)> = Vec::new();
                while lines.len() < line_count {
                    let item = plain_items[rng.random_range(0..plain_items.len())];
                    if !lines.iter().any(|(it, _)| *it == item) {
                        lines.push((item, rng.random_range(1..=5)));
                    }
                }
                if backordered[i] && !scarce.is_empty() {
                    lines[0] = (
                        scarce[rng.random_range(0..scarce.len())],
                        rng.random_range(40..=80),
                    );
                }
                PlannedOrder {
                    n: i as u32,
                    at,
                    customer: rng.random_range(0..customers.max(1)),
                    lines,
                    channel: if rng.random::<f64>() < 0.7 {
                        "B2B"
                    } else {
                        "Web"
                    },
                    twist: twists[i],
                    backorder: backordered[i],
                    in_spike,
                }
            })
            .collect();
        Plan {
            orders,
            day,
            spike,
            outage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64) -> Plan {
        Plan::new(seed, 500, 25, 40, &[38, 39], Duration::from_secs(60))
    }

    #[test]
    fn the_same_seed_plans_the_same_day() {
        assert_eq!(plan(7), plan(7));
        assert_ne!(plan(7), plan(8));
    }

    #[test]
    fn the_spike_runs_at_ten_times_the_base_rate() {
        let p = plan(7);
        let spike_len = (p.spike.1 - p.spike.0).as_secs_f64();
        let in_spike = p
            .orders
            .iter()
            .filter(|o| o.at >= p.spike.0 && o.at <= p.spike.1)
            .count() as f64;
        let outside = p.orders.len() as f64 - in_spike;
        let rate_in = in_spike / spike_len;
        let rate_out = outside / (p.day.as_secs_f64() - spike_len);
        let ratio = rate_in / rate_out;
        assert!((8.0..12.0).contains(&ratio), "spike ratio {ratio}");
    }

    #[test]
    fn every_twist_happens_at_least_once_and_orders_are_in_time_order() {
        let p = plan(7);
        for twist in [Twist::PriceMismatch, Twist::Cancel, Twist::Return] {
            assert!(p.orders.iter().any(|o| o.twist == twist), "{twist:?}");
        }
        assert!(p.orders.iter().any(|o| o.backorder));
        assert!(p.orders.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(
            p.orders
                .iter()
                .any(|o| o.at > p.outage.0 && o.at < p.outage.1),
            "orders arrive during the outage"
        );
        let scarce_lines = p
            .orders
            .iter()
            .filter(|o| o.backorder)
            .all(|o| o.lines[0].0 >= 38);
        assert!(scarce_lines);
    }
}
