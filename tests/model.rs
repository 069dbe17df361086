//! Property test: random sequences of every public operation and clock advances against
//! a plain model (a `HashMap` with deadlines). Checks returned values, `len`, `stats`,
//! listener causes and drop counts; proptest shrinks a failure to a short, readable
//! sequence of `Op`s.

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

/// The reference: live entries with their deadline (ms), and expired entries the cache
/// still owes an `Expired` report for.
#[derive(Default)]
struct Model {
    now: u64,
    map: HashMap<u8, (u64, Option<u64>)>,
    owed_expired: Vec<(u8, u64)>,
    inserts: u64,
    updates: u64,
    removals: u64,
    expirations: u64,
    hits: u64,
    misses: u64,
}

impl Model {
    /// Moves lapsed entries to the owed list.
    fn lapse(&mut self) {
        let now = self.now;
        let lapsed: Vec<u8> = self
            .map
            .iter()
            .filter(|(_, (_, d))| d.is_some_and(|d| d <= now))
            .map(|(k, _)| *k)
            .collect();
        for k in lapsed {
            let (v, _) = self.map.remove(&k).unwrap();
            self.owed_expired.push((k, v));
            self.expirations += 1;
        }
    }

    fn put(&mut self, k: u8, v: u64, ttl: Option<u64>, events: &mut Vec<Event>) {
        self.lapse();
        match self.map.remove(&k) {
            Some((old, _)) => {
                events.push((k, old, RemovalCause::Replaced));
                self.updates += 1;
            }
            None => self.inserts += 1,
        }
        if ttl == Some(0) {
            events.push((k, v, RemovalCause::Expired));
            self.expirations += 1;
        } else {
            self.map.insert(k, (v, ttl.map(|t| self.now + t)));
        }
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let ledger = Ledger::new();
    let clock = ManualClock::new();
    let log: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = log.clone();
    let cache: Cache<u8, Tracked> = Cache::builder()
        .clock(clock.clone())
        .segments(2)
        .tiny_tables_for_tests()
        .eviction_listener(move |k: &u8, v: &Tracked, c| sink.lock().unwrap().push((*k, v.id, c)))
        .build();
    let mut m = Model::default();
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
                    m.hits += 1
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
                let want = m.map.remove(&k).map(|(old, _)| {
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
                    Some(e) => e.0,
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
                for (k, (old, _)) in m.map.drain() {
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
                    s.expirations
                ),
                (
                    m.hits,
                    m.misses,
                    m.inserts,
                    m.updates,
                    m.removals,
                    m.expirations
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

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn cache_matches_model(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 120 })) {
        let mut ops = ops;
        ops.push(Op::RunPending);
        run(&ops)?;
    }
}
