//! Bad and extreme input: tiny ticks, old caches, far deadlines, enormous pre-sizing, and a
//! `Clock` that panics. Each has a documented behaviour (README, "Semantics worth knowing").

mod common;

use common::{Ledger, Tracked};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wheelcache::{Cache, Clock, ManualClock, RemovalCause};

const DAY: Duration = Duration::from_secs(24 * 3600);
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// `tick(1 ns)` is raised to the documented minimum, so a cache older than 835 days (2^56
/// ns) still expires a 1 s TTL. (Before: deadlines saturated and the entry never expired.)
#[test]
fn an_old_cache_with_a_tiny_tick_still_expires() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .tick(Duration::from_nanos(1))
        .build();
    clock.advance(900 * DAY);
    cache.insert_with_ttl(1, 1, Duration::from_secs(1));
    assert_eq!(cache.get(&1), Some(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        cache.get(&1),
        None,
        "a 1 s TTL never lapsed in an old cache"
    );
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0);
    assert_eq!(wheelcache::MIN_TICK, Duration::from_micros(1));
}

/// Far deadlines cost their entries a bounded number of moves, not one re-file per region
/// of the wheel crossed. (Before: `tick(1 ns)`, 10^4 entries with a 2-year TTL and the clock
/// moved by a year made `run_pending_tasks` take 17.5 s.)
#[test]
fn far_deadlines_are_refiled_a_bounded_number_of_times() {
    let n: u64 = if cfg!(miri) { 50 } else { 10_000 };
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .tick(Duration::from_nanos(1))
        .segments(1)
        .build();
    for i in 0..n {
        cache.insert_with_ttl(i, i, 2 * YEAR + Duration::from_secs(i));
    }
    cache.run_pending_tasks();
    clock.advance(YEAR);
    let t0 = Instant::now();
    cache.run_pending_tasks();
    let took = t0.elapsed();
    println!("run_pending_tasks after a year: {took:?}");
    assert_eq!(cache.len() as u64, n, "nothing is due yet");
    assert!(cfg!(miri) || took < Duration::from_secs(1), "took {took:?}");
    clock.advance(YEAR + DAY);
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0, "every far deadline expired on time");
}

/// Deadlines far past the wheel's levels expire exactly on time too (one per level).
#[test]
fn far_deadlines_expire_on_time() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder().clock(clock.clone()).build();
    // `ManualClock` counts nanoseconds in a u64: it reaches 584 years.
    let ttls = [YEAR, 3 * YEAR, 100 * YEAR, 500 * YEAR];
    for (i, ttl) in ttls.iter().enumerate() {
        cache.insert_with_ttl(i as u64, i as u64, *ttl);
    }
    let mut elapsed = Duration::ZERO;
    for (i, ttl) in ttls.iter().enumerate() {
        let before = *ttl - Duration::from_millis(1);
        clock.advance(before - elapsed);
        cache.run_pending_tasks();
        assert_eq!(cache.get(&(i as u64)), Some(i as u64), "expired early");
        clock.advance(Duration::from_millis(1));
        elapsed = *ttl;
        cache.run_pending_tasks();
        assert!(!cache.contains_key(&(i as u64)), "ttl {ttl:?} not expired");
        assert_eq!(cache.len(), ttls.len() - i - 1);
    }
}

/// A request to pre-size for `usize::MAX` entries is clamped; the cache works. (Before: the
/// first insert aborted the process allocating 16 GiB.)
#[test]
#[cfg_attr(miri, ignore = "initialises millions of table slots")]
fn enormous_initial_capacity_is_clamped() {
    let cache: Cache<u64, u64> = Cache::builder().initial_capacity(usize::MAX).build();
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(wheelcache::MAX_INITIAL_CAPACITY, 1 << 22);
}

/// A clock that panics while `armed`.
#[derive(Clone, Default)]
struct FlakyClock {
    inner: ManualClock,
    armed: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
}

impl Clock for FlakyClock {
    fn now_nanos(&self) -> u64 {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if self.armed.load(Ordering::SeqCst) {
            panic!("clock failure");
        }
        self.inner.now_nanos()
    }
}

/// A panicking `Clock` leaves nothing half-done: every operation reads the clock before it
/// changes anything, so a failed call changes nothing, and afterwards every value is heard
/// and dropped exactly once. (Before: a clock panic inside `invalidate` lost the entry: its
/// value was never dropped and the listener never heard.)
#[test]
fn a_panicking_clock_leaves_nothing_half_done() {
    let ledger = Ledger::new();
    let clock = FlakyClock::default();
    let heard = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&heard);
    let cache: Cache<u64, Tracked> = Cache::builder()
        .clock(clock.clone())
        .time_to_live(Duration::from_secs(60))
        .eviction_listener(move |_k: &u64, _v: &Tracked, _c: RemovalCause| {
            h.fetch_add(1, Ordering::SeqCst);
        })
        .build();
    for i in 0..20 {
        cache.insert(i, Tracked::new(i, &ledger));
    }
    clock.armed.store(true, Ordering::SeqCst);
    let quietly = |f: &dyn Fn()| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = catch_unwind(AssertUnwindSafe(f));
        std::panic::set_hook(hook);
        assert!(r.is_err(), "the clock was not consulted");
    };
    for i in 0..20 {
        quietly(&|| {
            cache.invalidate(&i);
        });
        quietly(&|| drop(cache.remove(&i)));
        quietly(&|| cache.insert(i, Tracked::new(i + 100, &ledger)));
        quietly(&|| drop(cache.get(&i)));
        quietly(&|| drop(cache.get_or_insert_with(i + 1000, || Tracked::new(0, &ledger))));
    }
    quietly(&|| cache.clear());
    quietly(&|| cache.run_pending_tasks());
    clock.armed.store(false, Ordering::SeqCst);
    assert_eq!(cache.len(), 20, "a failed call removed entries");
    for i in 0..20 {
        assert_eq!(cache.get(&i).map(|v| v.id), Some(i), "entry {i} changed");
    }
    assert_eq!(heard.load(Ordering::SeqCst), 0);
    for i in 0..20 {
        assert!(cache.invalidate(&i));
    }
    cache.run_pending_tasks();
    assert_eq!(
        heard.load(Ordering::SeqCst),
        20,
        "every departure heard once"
    );
    drop(cache);
    assert_eq!(ledger.live(), 0, "every value dropped");
    assert_eq!(ledger.created(), ledger.dropped());
}

/// A clock that steps back is bad input, clamped (see `Clock`): an entry that lapsed does
/// not come back, a deadline set after the step counts from the latest time seen, and a
/// clock jumping back and forth while the cache writes and maintains panics nowhere
/// (debug assertions included).
#[test]
fn a_clock_that_steps_back_is_clamped() {
    struct Settable(Arc<AtomicU64>);
    impl Clock for Settable {
        fn now_nanos(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }
    const S: u64 = 1_000_000_000;
    let nanos = Arc::new(AtomicU64::new(S));
    let cache: Cache<u64, u64> = Cache::builder()
        .segments(1)
        .clock(Settable(Arc::clone(&nanos)))
        .build();
    cache.insert_with_ttl(1, 1, Duration::from_secs(1)); // due at 2 s
    cache.insert_with_ttl(2, 2, Duration::from_secs(10)); // due at 11 s
    nanos.store(5 * S, Ordering::Relaxed);
    assert_eq!(cache.get(&1), None);
    nanos.store(0, Ordering::Relaxed); // back 5 s
    assert_eq!(cache.get(&1), None, "a lapsed entry came back");
    assert_eq!(cache.get(&2), Some(2));
    cache.insert_with_ttl(3, 3, Duration::from_secs(2)); // from 5 s (clamped): due at 7 s
    nanos.store(6 * S, Ordering::Relaxed);
    assert_eq!(
        cache.get(&3),
        Some(3),
        "a deadline was set from before the step back"
    );
    nanos.store(7 * S, Ordering::Relaxed);
    assert_eq!(cache.get(&3), None);
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 1);
    for i in 0..2_000u64 {
        nanos.store(
            if i % 2 == 0 { 3 * S } else { 9 * S + i },
            Ordering::Relaxed,
        );
        cache.insert_with_ttl(10 + i % 100, i, Duration::from_millis(1 + i % 7));
        if i % 50 == 0 {
            cache.run_pending_tasks();
        }
    }
    nanos.store(20 * S, Ordering::Relaxed);
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0, "entry 2 and the churn all lapsed by 20 s");
}
