//! The capacity bound: `max_capacity`, the weigher, S3-FIFO's scan resistance, the global
//! bound under concurrent inserters, and bad input (zero capacity, oversized entries).

mod common;

use common::{Events, Ledger, Tracked};
use std::sync::Arc;
use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};

#[test]
fn bound_holds_after_maintenance_and_evictions_are_reported() {
    let events = Events::default();
    let ev = events.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .eviction_listener(move |k, v, c| ev.push(*k, *v, c))
        .build();
    const N: u64 = if cfg!(miri) { 150 } else { 1_000 };
    for k in 0..N {
        cache.insert(k, k);
    }
    cache.run_pending_tasks();
    assert!(cache.len() <= 100, "len {}", cache.len());
    assert_eq!(cache.weighted_size(), cache.len() as u64);
    let evicted = events.take();
    assert_eq!(evicted.len() + cache.len(), N as usize);
    assert!(evicted
        .iter()
        .all(|&(k, v, c)| k == v && c == RemovalCause::Evicted));
    assert_eq!(cache.stats().evictions, evicted.len() as u64);
    // What is left is readable, and what left is gone.
    for (k, _, _) in evicted {
        assert_eq!(cache.get(&k), None);
    }
}

#[test]
fn weigher_bounds_total_weight_and_an_entry_may_use_all_of_it() {
    let cache: Cache<u64, Vec<u8>> = Cache::builder()
        .max_capacity(1_000)
        .weigher(|_, v: &Vec<u8>| v.len() as u32)
        .segments(16)
        .build();
    for k in 0..100 {
        cache.insert(k, vec![0; 50]);
    }
    cache.run_pending_tasks();
    assert!(cache.weighted_size() <= 1_000, "{}", cache.weighted_size());
    assert_eq!(
        cache.weighted_size(),
        cache.len() as u64 * 50,
        "len {}",
        cache.len()
    );
    // Another entry as heavy as the whole capacity: eviction brings the total back within
    // the bound (the policy may pick the newcomer itself: queue order is per segment).
    cache.insert(1_000, vec![0; 1_000]);
    cache.run_pending_tasks();
    assert!(cache.weighted_size() <= 1_000, "{}", cache.weighted_size());
    // Capacity is not split among the 16 segments: in an empty cache, an entry weighing
    // the whole capacity (16 times a segment's share) is stored and stays.
    let fresh: Cache<u64, Vec<u8>> = Cache::builder()
        .max_capacity(1_000)
        .weigher(|_, v: &Vec<u8>| v.len() as u32)
        .segments(16)
        .build();
    fresh.insert(7, vec![0; 1_000]);
    fresh.run_pending_tasks();
    assert!(fresh.contains_key(&7));
    assert_eq!(fresh.weighted_size(), 1_000);
}

#[test]
fn an_entry_heavier_than_the_bound_is_refused_as_evicted() {
    let events = Events::default();
    let ev = events.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(10)
        .weigher(|_, v| *v as u32)
        .eviction_listener(move |k, v, c| ev.push(*k, *v, c))
        .build();
    cache.insert(1, 5);
    cache.insert(1, 11);
    assert_eq!(cache.get(&1), None);
    assert_eq!(
        events.take(),
        vec![
            (1, 5, RemovalCause::Replaced),
            (1, 11, RemovalCause::Evicted)
        ]
    );
    assert_eq!(cache.weighted_size(), 0);
    assert_eq!(cache.stats().evictions, 1);
}

#[test]
fn zero_capacity_stores_nothing_but_zero_weights() {
    let ledger = Ledger::new();
    let events = Events::default();
    let ev = events.clone();
    let cache: Cache<u64, Tracked> = Cache::builder()
        .max_capacity(0)
        .eviction_listener(move |k, v: &Tracked, c| ev.push(*k, v.id, c))
        .build();
    for k in 0..10 {
        cache.insert(k, Tracked::new(k, &ledger));
    }
    assert!(cache.is_empty());
    assert_eq!(events.take().len(), 10);
    cache.run_pending_tasks();
    assert_eq!(ledger.live(), 0, "every refused value is dropped");
    let zero: Cache<u64, u64> = Cache::builder().max_capacity(0).weigher(|_, _| 0).build();
    zero.insert(1, 1);
    zero.run_pending_tasks();
    assert_eq!(zero.get(&1), Some(1));
    assert_eq!(zero.weighted_size(), 0);
}

#[test]
fn zero_weight_entries_are_never_evicted_but_still_expire() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .max_capacity(10)
        .weigher(|k, _| u32::from(*k >= 100))
        .build();
    for k in 0..10 {
        cache.insert_with_ttl(k, k, Duration::from_secs(1)); // weight 0
    }
    for k in 100..200 {
        cache.insert(k, k); // weight 1 each
    }
    cache.run_pending_tasks();
    assert_eq!(cache.weighted_size(), 10);
    for k in 0..10 {
        assert_eq!(cache.get(&k), Some(k), "zero-weight {k} evicted");
    }
    clock.advance(Duration::from_secs(2));
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 10, "the zero-weight entries expired");
    assert!((0..10).all(|k| cache.get(&k).is_none()));
}

#[test]
fn a_hot_set_survives_a_scan_five_times_the_capacity() {
    const CAP: u64 = if cfg!(miri) { 100 } else { 1_000 };
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(CAP).build();
    let hot: Vec<u64> = (0..CAP / 2).collect();
    for &k in &hot {
        cache.insert(k, k);
    }
    for _ in 0..3 {
        for &k in &hot {
            assert_eq!(cache.get(&k), Some(k));
        }
    }
    cache.run_pending_tasks();
    // A scan of one-off keys, five times the capacity, read once each after insertion.
    for k in 1_000_000..1_000_000 + 5 * CAP {
        if cache.get(&k).is_none() {
            cache.insert(k, k);
        }
    }
    cache.run_pending_tasks();
    let kept = hot.iter().filter(|&&k| cache.get(&k).is_some()).count();
    assert!(
        kept as u64 >= CAP / 2 * 9 / 10,
        "only {kept} of {} hot keys survived the scan",
        CAP / 2
    );
    assert!(cache.len() as u64 <= CAP);
}

#[test]
fn concurrent_inserters_keep_the_bound_and_drop_every_value_once() {
    const CAP: u64 = if cfg!(miri) { 50 } else { 2_000 };
    const PER_THREAD: u64 = if cfg!(miri) { 100 } else { 20_000 };
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::builder().max_capacity(CAP).build();
    let worst = Arc::new(std::sync::atomic::AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let cache = cache.clone();
            let ledger = Arc::clone(&ledger);
            let worst = Arc::clone(&worst);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let k = t * 1_000_000 + i;
                    cache.insert(k, Tracked::new(k, &ledger));
                    if i % 3 == 0 {
                        cache.get(&(k / 2));
                    }
                    if i % 7 == 3 {
                        cache.invalidate(&(k - 3));
                    }
                    let size = cache.weighted_size();
                    worst.fetch_max(size, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let worst = worst.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "worst weighted_size seen by 8 inserters: {worst} for a bound of {CAP} ({:.1}% over)",
        (worst as f64 / CAP as f64 - 1.0) * 100.0
    );
    cache.run_pending_tasks();
    assert!(cache.weighted_size() <= CAP, "{}", cache.weighted_size());
    assert_eq!(cache.weighted_size(), cache.len() as u64);
    // The overshoot while writers run stays small (documented in `max_capacity`): past a
    // sixteenth over, writers wait for eviction; each of the 8 may have inserts in flight
    // (a turn does up to 16 units of work; this allows 64 each, as when a turn did 64).
    // (Without that back-pressure this measured 128% over.)
    assert!(worst <= CAP + CAP / 16 + 8 * 64, "overshoot to {worst}");
    cache.run_pending_tasks();
    assert_eq!(
        ledger.live(),
        cache.len() as isize,
        "every departed value dropped"
    );
    drop(cache);
    assert_eq!(ledger.live(), 0, "dropping the cache drops the rest");
    assert_eq!(ledger.created(), ledger.dropped());
}

#[test]
fn a_panicking_weigher_changes_nothing() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(10)
        .weigher(|_, v| if *v == 13 { panic!("unlucky") } else { 1 })
        .build();
    cache.insert(1, 1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.insert(1, 13)));
    assert!(r.is_err());
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.weighted_size(), 1);
}

#[test]
fn a_listener_that_reinserts_evicted_entries_terminates() {
    let slot: Arc<std::sync::OnceLock<Cache<u64, u64>>> = Arc::default();
    let weak = Arc::downgrade(&slot);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(50)
        .eviction_listener(move |k, v, c| {
            if c == RemovalCause::Evicted && *k < 1_000_000 {
                if let Some(cache) = weak.upgrade().and_then(|s| s.get().cloned()) {
                    cache.insert(k + 1_000_000, *v);
                }
            }
        })
        .build();
    slot.set(cache.clone()).unwrap();
    for k in 0..if cfg!(miri) { 150 } else { 1_000 } {
        cache.insert(k, k);
    }
    for _ in 0..3 {
        cache.run_pending_tasks();
    }
    assert!(cache.len() <= 50, "{}", cache.len());
    drop(slot);
}

/// Regression: 8 threads inserting fresh keys into a bounded cache keep some segments
/// nearly empty (eviction drains them) while others fill, so tables shrink and grow under
/// concurrent inserts. A migration that counted the live entries before sealing the old
/// table once sized a target too small for what the old table held by the time it was
/// copied, and the copier spun for ever looking for a free slot.
#[test]
fn bounded_churn_across_migrations_always_finishes() {
    let per_thread: u64 = if cfg!(miri) { 200 } else { 200_000 };
    for _ in 0..2 {
        let cache: Cache<u64, u64> = Cache::builder().max_capacity(10_000).build();
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..per_thread {
                        cache.insert((t << 40) | i, i);
                    }
                });
            }
        });
        cache.run_pending_tasks();
        assert!(cache.len() <= 10_000);
    }
}

/// A key whose `Eq` panics mid-insert leaves the weight counter as it was.
#[test]
fn a_panicking_eq_leaves_the_weight_as_it_was() {
    #[derive(Clone, Copy, Debug)]
    struct Touchy(u64);
    impl std::hash::Hash for Touchy {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.0.hash(h);
        }
    }
    impl PartialEq for Touchy {
        fn eq(&self, other: &Self) -> bool {
            if self.0 == 13 || other.0 == 13 {
                panic!("unlucky");
            }
            self.0 == other.0
        }
    }
    impl Eq for Touchy {}
    let cache: Cache<Touchy, u64> = Cache::builder().max_capacity(10).segments(1).build();
    cache.insert(Touchy(13), 1);
    for _ in 0..3 {
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.insert(Touchy(13), 2)));
        assert!(r.is_err());
    }
    assert_eq!(cache.weighted_size(), 1);
    assert_eq!(cache.len(), 1);
}

/// Lapsed entries leave before live ones are evicted, whichever segment holds them: a new
/// entry in a full cache of lapsed ones is kept (issue 22's case, over 100 hash seeds at
/// each bound; it used to be evicted in 69 of 100 caches at a bound of 2), with a TTL and
/// with a time-to-idle, and each lapsed entry is reported as `Expired`, never `Evicted`.
#[test]
fn lapsed_entries_leave_before_a_live_one_is_evicted() {
    let seeds = if cfg!(miri) { 4 } else { 100 };
    for bound in [2u64, 16, 64] {
        for idle in [false, true] {
            for seed in 0..seeds {
                let clock = ManualClock::new();
                let events = Events::default();
                let ev = events.clone();
                let builder = Cache::builder()
                    .max_capacity(bound)
                    .clock(clock.clone())
                    .hasher(ahash::RandomState::with_seeds(seed, seed ^ 7, 3, 4))
                    .eviction_listener(move |k, v, c| ev.push(*k, *v, c));
                let builder = if idle {
                    builder.time_to_idle(Duration::from_secs(1))
                } else {
                    builder.time_to_live(Duration::from_secs(1))
                };
                let cache: Cache<u64, u64, ahash::RandomState> = builder.build();
                for k in 0..bound {
                    cache.insert(k, k);
                }
                clock.advance(Duration::from_secs(2));
                cache.insert(bound, bound);
                let case = format!("bound {bound}, idle {idle}, seed {seed}");
                assert_eq!(cache.get(&bound), Some(bound), "{case}");
                cache.run_pending_tasks();
                assert_eq!(cache.get(&bound), Some(bound), "{case}");
                let heard = events.take();
                assert!(
                    heard
                        .iter()
                        .all(|&(k, _, c)| k < bound && c == RemovalCause::Expired),
                    "{case}: {heard:?}"
                );
                assert_eq!(
                    heard.len() as u64,
                    bound,
                    "{case}: every lapsed entry heard"
                );
            }
        }
    }
}

/// New live entries that push a full cache of lapsed ones over its bound all stay, through
/// their own writes' turns and then `run_pending_tasks`: only the lapsed entries leave.
#[test]
fn run_pending_tasks_expires_everywhere_before_evicting() {
    for seed in 0..if cfg!(miri) { 2 } else { 50 } {
        let clock = ManualClock::new();
        let cache: Cache<u64, u64, ahash::RandomState> = Cache::builder()
            .max_capacity(8)
            .time_to_live(Duration::from_secs(1))
            .clock(clock.clone())
            .hasher(ahash::RandomState::with_seeds(seed, 1, 2, 3))
            .build();
        for k in 0..8 {
            cache.insert(k, k);
        }
        clock.advance(Duration::from_secs(2));
        for k in 100..104 {
            cache.insert_with_ttl(k, k, Duration::from_secs(60));
        }
        cache.run_pending_tasks();
        for k in 100..104 {
            assert_eq!(cache.get(&k), Some(k), "seed {seed}, key {k}");
        }
        assert_eq!(cache.len(), 4, "seed {seed}");
    }
}

/// A small bound split among segments: each gets a share of about 12 entries, whose small
/// queue's share (3%) rounds below one entry. An entry read right after its insert is
/// there, and the latest entries stay. (Small gave up its last entry, the one just
/// queued, and a turn admitted a batch newest first: the insert's own turn evicted it,
/// 191 misses in 300, and 11 of the last 100 kept.)
#[test]
fn in_a_small_bound_an_entry_survives_its_own_insert() {
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(100).segments(8).build();
    let mut misses = 0;
    for k in 0..300 {
        cache.insert(k, k);
        misses += usize::from(cache.get(&k).is_none());
    }
    assert_eq!(misses, 0);
    cache.run_pending_tasks();
    assert!(cache.len() <= 100, "{}", cache.len());
    let kept = (200..300).filter(|k| cache.contains_key(k)).count();
    assert!(kept >= 50, "only {kept} of the last 100 kept");
}
