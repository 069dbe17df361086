//! Property test: random sequences of every public operation and clock advances against
//! a plain model (a `HashMap` with deadlines and idle times). Checks returned values,
//! `len`, `stats`, listener causes and drop counts; proptest shrinks a failure to a short,
//! readable sequence of `Op`s. Run four ways: plain, with a capacity bound, with a
//! time-to-idle, and with both. Which entry a bounded cache evicts is the policy's
//! choice, so the model takes each `Evicted` report as a removal (it must name a live
//! entry with its current value) and checks the bound after maintenance.

mod common;

use common::{Ledger, Tracked};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};

#[derive(Debug, Clone)]
enum Op {
    Insert(u8),
    InsertTtl(u8, u16),
    Get(u8),
    PinGet(u8),
    Contains(u8),
    Remove(u8),
    Invalidate(u8),
    GetOrInsert(u8),
    Clear,
    Advance(u16),
    RunPending,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..12;
    prop_oneof![
        3 => key.clone().prop_map(Op::Insert),
        4 => (key.clone(), 0u16..40).prop_map(|(k, t)| Op::InsertTtl(k, t)),
        3 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::PinGet),
        1 => key.clone().prop_map(Op::Contains),
        2 => key.clone().prop_map(Op::Remove),
        1 => key.clone().prop_map(Op::Invalidate),
        2 => key.prop_map(Op::GetOrInsert),
        1 => Just(Op::Clear),
        3 => (1u16..30).prop_map(Op::Advance),
        1 => Just(Op::RunPending),
    ]
}

type Event = (u8, u64, RemovalCause);

/// The cache's configuration for one run.
#[derive(Debug, Clone, Copy, Default)]
struct Config {
    capacity: Option<u64>,
    /// Time-to-idle in ms.
    tti: Option<u64>,
}

/// The reference: live entries with their value, deadline (ms) and last access (ms), and
/// expired entries the cache still owes an `Expired` report for.
#[derive(Default)]
struct Model {
    now: u64,
    cfg: Config,
    map: HashMap<u8, (u64, Option<u64>, u64)>,
    owed_expired: Vec<(u8, u64)>,
    inserts: u64,
    updates: u64,
    removals: u64,
    expirations: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
}

impl Model {
    /// Moves lapsed entries to the owed list.
    fn lapse(&mut self) {
        let now = self.now;
        let tti = self.cfg.tti;
        let lapsed: Vec<u8> = self
            .map
            .iter()
            // Idle: one tick (1 ms) past the TTI after the last access (see `time_to_idle`).
            .filter(|(_, (_, d, a))| {
                d.is_some_and(|d| d <= now) || tti.is_some_and(|t| now > a + t)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in lapsed {
            let (v, _, _) = self.map.remove(&k).unwrap();
            self.owed_expired.push((k, v));
            self.expirations += 1;
        }
    }

    fn put(&mut self, k: u8, v: u64, ttl: Option<u64>, events: &mut Vec<Event>) {
        self.lapse();
        match self.map.remove(&k) {
            Some((old, _, _)) => {
                events.push((k, old, RemovalCause::Replaced));
                self.updates += 1;
            }
            None => self.inserts += 1,
        }
        if ttl == Some(0) || self.cfg.tti == Some(0) {
            events.push((k, v, RemovalCause::Expired));
            self.expirations += 1;
        } else if self.cfg.capacity == Some(0) {
            events.push((k, v, RemovalCause::Evicted));
            self.evictions += 1;
        } else {
            self.map.insert(k, (v, ttl.map(|t| self.now + t), self.now));
        }
    }

    /// A counted read that found `k`: its idle time starts again.
    fn touch(&mut self, k: u8) {
        let now = self.now;
        if let Some(e) = self.map.get_mut(&k) {
            e.2 = now;
        }
    }
}

fn run(ops: &[Op], cfg: Config) -> Result<(), TestCaseError> {
    let ledger = Ledger::new();
    let clock = ManualClock::new();
    let log: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = log.clone();
    let mut builder = Cache::builder()
        .clock(clock.clone())
        .segments(2)
        .tiny_tables_for_tests()
        .eviction_listener(move |k: &u8, v: &Tracked, c| sink.lock().unwrap().push((*k, v.id, c)));
    if let Some(c) = cfg.capacity {
        builder = builder.max_capacity(c);
    }
    if let Some(t) = cfg.tti {
        builder = builder.time_to_idle(Duration::from_millis(t));
    }
    let cache: Cache<u8, Tracked> = builder.build();
    let mut m = Model {
        cfg,
        ..Model::default()
    };
    for (step, op) in ops.iter().enumerate() {
        let mut expect: Vec<Event> = Vec::new();
        let v = step as u64 + 1;
        match *op {
            Op::Insert(k) => {
                cache.insert(k, Tracked::new(v, &ledger));
                m.put(k, v, None, &mut expect);
            }
            Op::InsertTtl(k, t) => {
                cache.insert_with_ttl(k, Tracked::new(v, &ledger), Duration::from_millis(t.into()));
                m.put(k, v, Some(t.into()), &mut expect);
            }
            Op::Get(k) | Op::PinGet(k) => {
                let got = if matches!(op, Op::Get(_)) {
                    cache.get(&k).map(|t| t.id)
                } else {
                    cache.pin().get(&k).map(|t| t.id)
                };
                m.lapse();
                let want = m.map.get(&k).map(|e| e.0);
                if want.is_some() {
                    m.hits += 1;
                    m.touch(k);
                } else {
                    m.misses += 1
                }
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
            Op::Contains(k) => {
                m.lapse();
                prop_assert_eq!(
                    cache.contains_key(&k),
                    m.map.contains_key(&k),
                    "step {}",
                    step
                );
            }
            Op::Remove(k) | Op::Invalidate(k) => {
                let got = if matches!(op, Op::Remove(_)) {
                    cache.remove(&k).map(|t| t.id)
                } else {
                    cache.invalidate(&k).then_some(0)
                };
                m.lapse();
                let want = m.map.remove(&k).map(|(old, _, _)| {
                    expect.push((k, old, RemovalCause::Explicit));
                    m.removals += 1;
                    if matches!(op, Op::Remove(_)) {
                        old
                    } else {
                        0
                    }
                });
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
            Op::GetOrInsert(k) => {
                let got = cache.get_or_insert_with(k, || Tracked::new(v, &ledger)).id;
                m.lapse();
                let want = match m.map.get(&k) {
                    Some(e) => {
                        let v = e.0;
                        m.touch(k);
                        v
                    }
                    None => {
                        m.put(k, v, None, &mut expect);
                        v
                    }
                };
                prop_assert_eq!(got, want, "step {}", step);
            }
            Op::Clear => {
                cache.clear();
                m.lapse();
                for (k, (old, _, _)) in m.map.drain() {
                    expect.push((k, old, RemovalCause::Explicit));
                    m.removals += 1;
                }
            }
            Op::Advance(ms) => {
                clock.advance(Duration::from_millis(ms.into()));
                m.now += u64::from(ms);
            }
            Op::RunPending => {
                cache.run_pending_tasks();
                m.lapse();
            }
        }
        // Non-expiry departures must match this step exactly; `Expired` ones may come from
        // any write's maintenance, so they are settled against the owed list.
        let mut got: Vec<Event> = std::mem::take(&mut *log.lock().unwrap());
        // An eviction is the policy's choice: it must name a live entry, which leaves.
        for e in got.iter().filter(|e| e.2 == RemovalCause::Evicted) {
            if let Some(i) = expect.iter().position(|x| x == e) {
                expect.swap_remove(i); // a refused insert (capacity 0)
                continue;
            }
            prop_assert!(
                cfg.capacity.is_some(),
                "step {}: eviction without a bound",
                step
            );
            prop_assert_eq!(
                m.map.get(&e.0).map(|x| x.0),
                Some(e.1),
                "step {} {:?}: evicted {:?} is not live",
                step,
                op,
                e
            );
            m.map.remove(&e.0);
            m.evictions += 1;
        }
        got.retain(|e| e.2 != RemovalCause::Evicted);
        for e in got.iter().filter(|e| e.2 == RemovalCause::Expired) {
            if let Some(i) = m.owed_expired.iter().position(|o| (o.0, o.1) == (e.0, e.1)) {
                m.owed_expired.swap_remove(i);
            } else if let Some(i) = expect.iter().position(|x| x == e) {
                expect.swap_remove(i);
            } else {
                prop_assert!(false, "step {} {:?}: unexpected {:?}", step, op, e);
            }
        }
        got.retain(|e| e.2 != RemovalCause::Expired);
        got.sort_by_key(|e| (e.0, e.1));
        expect.sort_by_key(|e| (e.0, e.1));
        prop_assert_eq!(got, expect, "step {}: {:?}", step, op);
        if matches!(op, Op::RunPending) {
            prop_assert!(
                m.owed_expired.is_empty(),
                "step {}: never reported {:?}",
                step,
                m.owed_expired
            );
            prop_assert_eq!(cache.len(), m.map.len(), "step {}", step);
            if let Some(c) = cfg.capacity {
                prop_assert!(cache.len() as u64 <= c, "step {}: over the bound", step);
                prop_assert_eq!(cache.weighted_size(), cache.len() as u64);
            }
            // Nothing is pinned: every departed value has been dropped.
            prop_assert_eq!(ledger.live(), m.map.len() as isize, "step {}", step);
            let s = cache.stats();
            prop_assert_eq!(
                (
                    s.hits,
                    s.misses,
                    s.inserts,
                    s.updates,
                    s.removals,
                    s.expirations,
                    s.evictions
                ),
                (
                    m.hits,
                    m.misses,
                    m.inserts,
                    m.updates,
                    m.removals,
                    m.expirations,
                    m.evictions
                ),
                "step {}",
                step
            );
        }
    }
    drop(cache);
    prop_assert_eq!(ledger.live(), 0, "values outlived the cache");
    Ok(())
}

/// A sequence of operations, ending with maintenance (so every check runs at least once).
fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 120 }).prop_map(|mut ops| {
        ops.push(Op::RunPending);
        ops
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn cache_matches_model(ops in ops()) {
        run(&ops, Config::default())?;
    }

    #[test]
    fn bounded_cache_matches_model(ops in ops(), capacity in 0u64..6) {
        run(&ops, Config { capacity: Some(capacity), tti: None })?;
    }

    #[test]
    fn idle_cache_matches_model(ops in ops(), tti in 0u64..25) {
        run(&ops, Config { capacity: None, tti: Some(tti) })?;
    }

    #[test]
    fn bounded_idle_cache_matches_model(ops in ops(), capacity in 1u64..6, tti in 1u64..25) {
        run(&ops, Config { capacity: Some(capacity), tti: Some(tti) })?;
    }
}
