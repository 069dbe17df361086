//! Every value inserted is dropped exactly once, and bad user code (panicking `Hash`, `Eq`,
//! listener, `Drop`) leaves the cache usable without leaking.

mod common;

use common::{Ledger, Tracked};
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};

const MS: Duration = Duration::from_millis(1);

/// Operation counts, shrunk under Miri.
fn scale(n: u64) -> u64 {
    if cfg!(miri) {
        (n / 100).max(10)
    } else {
        n
    }
}

#[test]
fn every_departure_path_drops_once() {
    let ledger = Ledger::new();
    let clock = ManualClock::new();
    let cache: Cache<u64, Tracked> = Cache::builder().clock(clock.clone()).segments(2).build();
    for i in 0..1000 {
        cache.insert_with_ttl(
            i,
            Tracked::new(i, &ledger),
            Duration::from_millis(1 + i % 50),
        );
    }
    for i in 0..100 {
        cache.insert(i, Tracked::new(i, &ledger)); // replaced
    }
    for i in 100..200 {
        assert!(cache.invalidate(&i)); // removed
    }
    drop(cache.remove(&200)); // removed, clone returned and dropped
    clock.advance(20 * MS); // some expire
    cache.run_pending_tasks();
    cache.clear();
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0);
    assert_eq!(
        ledger.live(),
        0,
        "created {} dropped {}",
        ledger.created(),
        ledger.dropped()
    );
    for i in 0..300 {
        cache.insert(i, Tracked::new(i, &ledger));
    }
    drop(cache); // the rest go with the cache
    assert_eq!(ledger.live(), 0);
    assert_eq!(ledger.created(), ledger.dropped());
}

#[test]
fn dropping_the_cache_drops_removed_values_too() {
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::builder().segments(1).build();
    for i in 0..10 {
        cache.insert_with_ttl(i, Tracked::new(i, &ledger), Duration::from_secs(60));
    }
    for i in 0..5 {
        cache.invalidate(&i); // retired but maybe not yet freed
    }
    drop(cache);
    assert_eq!(ledger.live(), 0);
}

#[test]
fn run_pending_tasks_frees_what_was_removed() {
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::new();
    for i in 0..10 {
        cache.insert(i, Tracked::new(i, &ledger));
    }
    for i in 0..10 {
        cache.invalidate(&i);
    }
    cache.run_pending_tasks();
    assert_eq!(
        ledger.live(),
        0,
        "no reader is pinned, so all removed values are gone"
    );
}

#[test]
fn get_or_insert_with_loser_value_dropped_once() {
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::new();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let cache = cache.clone();
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for k in 0..scale(200) {
                    let v = cache.get_or_insert_with(k, || Tracked::new(t * 1000 + k, &ledger));
                    ids.push(v.id);
                }
                ids
            })
        })
        .collect();
    let seen: Vec<Vec<u64>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for k in 0..scale(200) {
        let winner = cache.get(&k).unwrap().id;
        for ids in &seen {
            assert_eq!(ids[k as usize], winner, "every caller got the stored value");
        }
    }
    drop(cache);
    assert_eq!(ledger.live(), 0);
}

/// A key whose `Hash` or `Eq` panics on demand.
#[derive(Debug, Clone)]
struct Touchy {
    id: u64,
    panic_hash: Arc<AtomicBool>,
    panic_eq: Arc<AtomicBool>,
}

impl Hash for Touchy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        assert!(!self.panic_hash.load(Ordering::SeqCst), "hash panics");
        // All keys collide, so every lookup compares keys.
        0u8.hash(state);
    }
}

impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        assert!(!self.panic_eq.load(Ordering::SeqCst), "eq panics");
        self.id == other.id
    }
}

impl Eq for Touchy {}

#[test]
fn panicking_hash_and_eq_leave_the_cache_usable() {
    let ledger = Ledger::new();
    let ph = Arc::new(AtomicBool::new(false));
    let pe = Arc::new(AtomicBool::new(false));
    let key = |id| Touchy {
        id,
        panic_hash: ph.clone(),
        panic_eq: pe.clone(),
    };
    let cache: Cache<Touchy, Tracked> = Cache::builder().segments(1).build();
    for i in 0..20 {
        cache.insert(key(i), Tracked::new(i, &ledger));
    }
    ph.store(true, Ordering::SeqCst);
    assert!(catch_unwind(AssertUnwindSafe(
        || cache.insert(key(99), Tracked::new(99, &ledger))
    ))
    .is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| cache.get(&key(1)))).is_err());
    ph.store(false, Ordering::SeqCst);
    pe.store(true, Ordering::SeqCst);
    assert!(catch_unwind(AssertUnwindSafe(
        || cache.insert(key(98), Tracked::new(98, &ledger))
    ))
    .is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| cache.remove(&key(3)))).is_err());
    assert!(catch_unwind(AssertUnwindSafe(
        || cache.get_or_insert_with(key(97), || Tracked::new(97, &ledger))
    ))
    .is_err());
    pe.store(false, Ordering::SeqCst);
    assert_eq!(cache.len(), 20);
    for i in 0..20 {
        assert_eq!(cache.get(&key(i)).map(|t| t.id), Some(i));
    }
    assert!(cache.get(&key(99)).is_none() && cache.get(&key(98)).is_none());
    drop(cache);
    assert_eq!(
        ledger.live(),
        0,
        "values from the panicked inserts were dropped too"
    );
}

#[test]
fn panicking_listener_is_contained() {
    let ledger = Ledger::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let clock = ManualClock::new();
    let cache: Cache<u64, Tracked> = Cache::builder()
        .clock(clock.clone())
        .eviction_listener(move |_k, _v, cause| {
            c.fetch_add(1, Ordering::SeqCst);
            panic!("listener panics on {cause:?}");
        })
        .build();
    for i in 0..50 {
        cache.insert_with_ttl(i, Tracked::new(i, &ledger), MS);
    }
    cache.insert(0, Tracked::new(0, &ledger)); // Replaced: listener panics, insert still done
    assert_eq!(cache.get(&0).map(|t| t.id), Some(0));
    cache.invalidate(&1);
    clock.advance(MS);
    cache.run_pending_tasks();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        50,
        "every departure notified once"
    );
    assert_eq!(cache.len(), 1);
    cache.insert(7, Tracked::new(7, &ledger));
    assert!(cache.contains_key(&7));
    drop(cache);
    assert_eq!(ledger.live(), 0);
}

/// A value whose `Drop` panics (once) when told to.
struct Bomb {
    armed: bool,
    drops: Arc<AtomicUsize>,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.armed {
            panic!("value drop panics");
        }
    }
}

#[test]
fn panicking_value_drop_is_contained() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cache: Cache<u64, Bomb> = Cache::builder().segments(1).build();
    for i in 0..100 {
        cache.insert(
            i,
            Bomb {
                armed: i % 3 == 0,
                drops: drops.clone(),
            },
        );
    }
    for i in 0..50 {
        cache.invalidate(&i);
    }
    cache.run_pending_tasks();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        50,
        "panics did not stop the batch"
    );
    cache.insert(
        1000,
        Bomb {
            armed: false,
            drops: drops.clone(),
        },
    );
    assert_eq!(cache.len(), 51);
    drop(cache);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        101,
        "cache drop freed the rest despite panics"
    );
}

#[test]
fn listener_sees_each_departure_exactly_once_under_threads() {
    let ledger = Ledger::new();
    let departed = Arc::new(AtomicUsize::new(0));
    let d = departed.clone();
    let cache: Cache<u64, Tracked> = Cache::builder()
        .segments(4)
        .eviction_listener(move |_, _, _| {
            d.fetch_add(1, Ordering::SeqCst);
        })
        .build();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let cache = cache.clone();
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut inserted = 0;
                for i in 0..scale(20_000) {
                    let k = (i * 7 + t) % 500;
                    match i % 4 {
                        0 | 1 => {
                            cache.insert_with_ttl(
                                k,
                                Tracked::new(k, &ledger),
                                Duration::from_micros(200 + i % 900),
                            );
                            inserted += 1;
                        }
                        2 => {
                            cache.invalidate(&k);
                        }
                        _ => {
                            let _ = cache.get(&k);
                        }
                    }
                }
                inserted
            })
        })
        .collect();
    let inserted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    cache.run_pending_tasks();
    let left = cache.len();
    assert_eq!(departed.load(Ordering::SeqCst) + left, inserted);
    cache.clear();
    cache.run_pending_tasks();
    assert_eq!(ledger.live(), 0);
    assert_eq!(departed.load(Ordering::SeqCst), inserted);
    let _ = RemovalCause::Explicit;
}
