//! Model-based test of the task queue: random sequences of enqueue, lease, complete, retry,
//! dead-letter, dead-letter retry and resolve, release and clock moves run against the real
//! queue and a tiny in-memory model of the rules in [`crate::tasks`]; after every step the
//! outcomes and the whole queue must agree.
//!
//! Seeds are fixed (set `CROSSDOCK_MODEL_SEED` to replay one); a failure names its seed and
//! step.

use std::collections::BTreeMap;
use std::time::Duration;

use super::fixtures::{Rng, at, task};
use crate::{Error, Lease, LeaseRequest, NewDeadLetter, SharedStore, TaskState};

const LANES: [&str; 2] = ["erp", "salesforce"];

const KEYS: usize = 5;
const LEASE_SECS: i64 = 30;
const STEPS: usize = 250;

#[derive(Debug, Clone, PartialEq)]
enum State {
    Pending {
        due: i64,
    },
    Leased {
        token: i64,
        expires: i64,
        owner: String,
        due: i64,
    },
    Dead,
}

#[derive(Debug, Clone)]
struct ModelTask {
    lane: String,
    key: String,
    dedupe: Option<String>,
    blocking: bool,
    attempts: u32,
    state: State,
}

#[derive(Debug, Clone)]
struct Letter {
    task_id: i64,
    snapshot: ModelTask,
}

#[derive(Default)]
struct Model {
    tasks: BTreeMap<i64, ModelTask>,
    letters: BTreeMap<i64, Letter>,
}

impl Model {
    fn ready_at(&self, t: &ModelTask) -> Option<i64> {
        match &t.state {
            State::Pending { due } => Some(*due),
            State::Leased { expires, .. } => Some(*expires),
            State::Dead => None,
        }
    }

    /// Ids the rules allow leasing from `lane` at `now`, in lease order.
    fn leasable(&self, lane: &str, now: i64) -> Vec<i64> {
        let mut heads: BTreeMap<&str, i64> = BTreeMap::new();
        for (id, t) in &self.tasks {
            heads.entry(t.key.as_str()).or_insert(*id);
        }
        let mut ready: Vec<(i64, i64)> = heads
            .values()
            .filter_map(|id| {
                let t = &self.tasks[id];
                let ready_at = self.ready_at(t)?;
                let in_flight = self.tasks.iter().any(|(other, o)| {
                    *other != *id
                        && o.key == t.key
                        && matches!(o.state, State::Leased { expires, .. } if expires > now)
                });
                (t.lane == lane && ready_at <= now && !in_flight).then_some((ready_at, *id))
            })
            .collect();
        ready.sort();
        ready.into_iter().map(|(_, id)| id).collect()
    }

    fn holds(&self, lease: &Lease) -> bool {
        matches!(
            self.tasks.get(&lease.task.id).map(|t| &t.state),
            Some(State::Leased { token, .. }) if *token == lease.token
        )
    }
}

/// Random sequences against the real queue and the model agree at every step.
pub async fn queue_matches_its_model(store: SharedStore) {
    let seeds: Vec<u64> = match std::env::var("CROSSDOCK_MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("CROSSDOCK_MODEL_SEED is a number")],
        Err(_) => vec![11, 23, 5077],
    };
    for (run, seed) in seeds.into_iter().enumerate() {
        // Each run uses its own order id so runs do not see each other's tasks.
        run_one(&store, seed, &format!("M{run}")).await;
    }
}

async fn run_one(store: &SharedStore, seed: u64, order: &str) {
    let mut rng = Rng::new(seed);
    let mut model = Model::default();
    let mut held: Vec<Lease> = Vec::new();
    let mut now: i64 = 0;
    let failure = NewDeadLetter {
        class: "unknown".into(),
        error: "boom".into(),
        reason: "gave up".into(),
    };
    for step in 0..STEPS {
        let ctx = format!("seed {seed}, step {step}");
        match rng.below(100) {
            0..=24 => {
                // Lanes, keys and owners are per run: runs share the store.
                let lane = format!("{order}-{}", LANES[rng.below(2)]);
                let key = format!("{order}-k{}", rng.below(KEYS));
                let mut t = task(&lane, &key, "work");
                t.order_id = Some(order.to_owned());
                t.due_at = at(now + 10 * rng.below(3) as i64);
                t.blocking = rng.chance(50);
                t.dedupe = rng.chance(30).then(|| format!("d-{key}"));
                let collapses = t.dedupe.as_ref().is_some_and(|d| {
                    model.tasks.values().any(|m| {
                        m.lane == lane
                            && m.dedupe.as_ref() == Some(d)
                            && matches!(m.state, State::Pending { .. })
                    })
                });
                let ids = store.enqueue(vec![t.clone()]).await.unwrap();
                if collapses {
                    assert!(ids.is_empty(), "{ctx}: enqueue should collapse");
                } else {
                    assert_eq!(ids.len(), 1, "{ctx}: enqueue should add a task");
                    assert!(model.tasks.keys().all(|id| *id < ids[0]), "{ctx}: ids grow");
                    model.tasks.insert(
                        ids[0],
                        ModelTask {
                            lane,
                            key,
                            dedupe: t.dedupe,
                            blocking: t.blocking,
                            attempts: 0,
                            state: State::Pending {
                                due: (t.due_at - at(0)).whole_seconds(),
                            },
                        },
                    );
                }
            }
            25..=49 => {
                let lane = format!("{order}-{}", LANES[rng.below(2)]);
                let limit = 1 + rng.below(3);
                let owner = format!("{order}-w{}", rng.below(2));
                let expected: Vec<i64> =
                    model.leasable(&lane, now).into_iter().take(limit).collect();
                let leases = store
                    .lease(LeaseRequest {
                        lane: lane.clone(),
                        owner: owner.clone(),
                        limit,
                        lease_for: Duration::from_secs(LEASE_SECS as u64),
                        now: at(now),
                    })
                    .await
                    .unwrap();
                let mut got: Vec<i64> = leases.iter().map(|l| l.task.id).collect();
                got.sort_unstable();
                let mut want = expected.clone();
                want.sort_unstable();
                assert_eq!(got, want, "{ctx}: leased {lane} at {now}");
                for l in leases {
                    let t = model.tasks.get_mut(&l.task.id).unwrap();
                    t.attempts += 1;
                    assert_eq!(l.task.attempts, t.attempts, "{ctx}: attempts on lease");
                    let due = match t.state {
                        State::Pending { due } | State::Leased { due, .. } => due,
                        State::Dead => panic!("{ctx}: leased a dead task"),
                    };
                    t.state = State::Leased {
                        token: l.token,
                        expires: now + LEASE_SECS,
                        owner: owner.clone(),
                        due,
                    };
                    held.push(l);
                }
            }
            50..=79 if !held.is_empty() => {
                let lease = held.swap_remove(rng.below(held.len()));
                let holds = model.holds(&lease);
                let action = rng.below(10);
                let result = if action < 5 {
                    store.complete(&lease, Default::default()).await.map(|_| ())
                } else if action < 8 {
                    let due = now + 10 * rng.below(4) as i64;
                    let r = store
                        .retry(&lease, at(due), "transient", Default::default())
                        .await;
                    if holds && r.is_ok() {
                        model.tasks.get_mut(&lease.task.id).unwrap().state = State::Pending { due };
                    }
                    r
                } else {
                    let r = store
                        .dead_letter(&lease, failure.clone(), Default::default())
                        .await;
                    if let (true, Ok(letter)) = (holds, &r) {
                        let t = model.tasks.get_mut(&lease.task.id).unwrap();
                        let snapshot = t.clone();
                        if t.blocking {
                            t.state = State::Dead;
                        } else {
                            model.tasks.remove(&lease.task.id);
                        }
                        model.letters.insert(
                            *letter,
                            Letter {
                                task_id: lease.task.id,
                                snapshot,
                            },
                        );
                    }
                    r.map(|_| ())
                };
                match (holds, result) {
                    (true, Ok(())) => {
                        if action < 5 {
                            model.tasks.remove(&lease.task.id);
                        }
                    }
                    (false, Err(Error::LeaseLost { task })) => assert_eq!(task, lease.task.id),
                    (holds, other) => panic!("{ctx}: model holds={holds}, store said {other:?}"),
                }
            }
            80..=84 if !model.letters.is_empty() => {
                let ids: Vec<i64> = model.letters.keys().copied().collect();
                let letter_id = ids[rng.below(ids.len())];
                let letter = model.letters.remove(&letter_id).unwrap();
                if rng.chance(50) {
                    let back = store
                        .retry_dead_letter(letter_id, None, "ops", at(now))
                        .await
                        .unwrap();
                    assert_eq!(back, letter.task_id, "{ctx}: retried under its id");
                    let mut t = letter.snapshot;
                    t.attempts = 0;
                    t.state = State::Pending { due: now };
                    model.tasks.insert(letter.task_id, t);
                } else {
                    store
                        .resolve_dead_letter(letter_id, "handled", "ops", at(now))
                        .await
                        .unwrap();
                    if letter.snapshot.blocking {
                        model.tasks.remove(&letter.task_id);
                    }
                }
            }
            85..=89 => {
                let owner = format!("{order}-w{}", rng.below(2));
                let mut expected = 0;
                for t in model.tasks.values_mut() {
                    if let State::Leased { owner: o, due, .. } = &t.state
                        && *o == owner
                    {
                        expected += 1;
                        t.attempts = t.attempts.saturating_sub(1);
                        t.state = State::Pending { due: *due };
                    }
                }
                let released = store.release_all(&owner).await.unwrap();
                assert_eq!(released, expected, "{ctx}: released by {owner}");
            }
            _ => now += 1 + rng.below(40) as i64,
        }
        if std::env::var_os("CROSSDOCK_MODEL_TRACE").is_some() {
            eprintln!("{ctx}: now {now}, model {:?}", model.tasks);
        }
        compare(store, &model, order, &ctx).await;
    }
}

async fn compare(store: &SharedStore, model: &Model, order: &str, ctx: &str) {
    let stored = store.tasks_for_order(order).await.unwrap();
    let ids: Vec<i64> = stored.iter().map(|t| t.id).collect();
    let expected: Vec<i64> = model.tasks.keys().copied().collect();
    assert_eq!(ids, expected, "{ctx}: queued task ids");
    for s in &stored {
        let m = &model.tasks[&s.id];
        assert_eq!(s.attempts, m.attempts, "{ctx}: attempts of task {}", s.id);
        assert_eq!(s.key, m.key, "{ctx}");
        let state = match &m.state {
            State::Pending { due } => {
                assert_eq!(s.due_at, at(*due), "{ctx}: due time of task {}", s.id);
                TaskState::Pending
            }
            State::Leased { .. } => TaskState::Leased,
            State::Dead => TaskState::Dead,
        };
        assert_eq!(s.state, state, "{ctx}: state of task {}", s.id);
    }
}
