//! Caches written from another cache's listener (a second tier fed by the first one's
//! departures): the "inside a listener" mark is per cache, so the second cache maintains
//! itself (its bound, its expiry) and delivers its own departures, with no write to it
//! from outside a listener. Regression: with a per-thread mark, a second tier fed only
//! from a listener took no maintenance turns: 99,900 entries against a bound of 1,000, and
//! none of its lapsed entries expired or heard.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};

/// The documented slack of a bound while writers run: a sixteenth, plus a turn's inserts
/// (64) per writer.
fn slack(bound: u64, writers: u64) -> u64 {
    bound / 16 + 64 * writers
}

/// Counts the second tier's departures by cause.
#[derive(Default)]
struct Heard {
    evicted: AtomicUsize,
    expired: AtomicUsize,
    replaced: AtomicUsize,
}

impl Heard {
    fn listener(self: &Arc<Self>) -> impl Fn(&u64, &u64, RemovalCause) + Send + Sync + 'static {
        let heard = Arc::clone(self);
        move |_, _, cause| {
            let counter = match cause {
                RemovalCause::Evicted => &heard.evicted,
                RemovalCause::Expired => &heard.expired,
                RemovalCause::Replaced => &heard.replaced,
                other => panic!("unexpected {other:?}"),
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The first tier's evictions go to a bounded second tier: it keeps its own bound.
#[test]
fn a_tier_fed_by_a_listener_keeps_its_bound() {
    let heard = Arc::new(Heard::default());
    let l2: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .eviction_listener(heard.listener())
        .build();
    let sink = l2.clone();
    let l1: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .eviction_listener(move |k, v, _| sink.insert(*k, *v))
        .build();
    let mut worst = 0;
    for i in 0..100_000 {
        l1.insert(i, i);
        worst = worst.max(l2.weighted_size());
    }
    println!(
        "second tier: {} at the end, {worst} at worst, {} evictions heard",
        l2.weighted_size(),
        heard.evicted.load(Ordering::Relaxed)
    );
    assert!(
        worst <= 1_000 + slack(1_000, 1),
        "second tier reached {worst} against a bound of 1,000"
    );
    // Its departures were heard by its own listener, not left waiting.
    let stored = l2.len() as u64;
    let evicted = heard.evicted.load(Ordering::Relaxed) as u64;
    assert!(
        evicted + stored >= 99_000,
        "{evicted} heard, {stored} stored"
    );
}

/// A second tier with a TTL, fed only from the first tier's listener, expires its lapsed
/// entries through its own write turns and tells its listener.
#[test]
fn a_tier_fed_by_a_listener_expires_on_time() {
    let clock = ManualClock::new();
    let heard = Arc::new(Heard::default());
    let l2: Cache<u64, u64> = Cache::builder()
        .time_to_live(Duration::from_millis(5))
        .clock(clock.clone())
        .eviction_listener(heard.listener())
        .build();
    let sink = l2.clone();
    let l1: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clone())
        .eviction_listener(move |k, v, _| sink.insert(*k, *v))
        .build();
    for i in 0..10_000 {
        l1.insert(i, i);
    }
    let first = l2.len();
    assert!(first >= 9_800, "{first} entries in the second tier");
    clock.advance(Duration::from_millis(10));
    for i in 10_000..20_000 {
        l1.insert(i, i);
    }
    let expired = heard.expired.load(Ordering::Relaxed);
    let left = l2.len();
    println!("second tier: {first} lapsed, {expired} expired and heard, {left} left");
    // Every lapsed entry left through the second tier's own turns (each write turn does
    // up to 16 units of wheel work; 10,000 writes take hundreds of turns).
    assert_eq!(expired, first, "every lapsed entry expired and was heard");
    assert!(left <= 10_000, "{left} entries left");
    assert_eq!(heard.replaced.load(Ordering::Relaxed), 0);
}

/// Four threads use two tiers as a service would: a miss in the first looks in the
/// second, and the first's evictions feed the second. The second keeps its bound within
/// the documented slack throughout.
#[test]
fn two_tiers_under_four_threads_keep_the_second_bound() {
    const THREADS: u64 = 4;
    let l2: Cache<u64, u64> = Cache::builder().max_capacity(1_000).build();
    let sink = l2.clone();
    let l1: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .eviction_listener(move |k, v, _| sink.insert(*k, *v))
        .build();
    let worst = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (l1, l2, worst) = (l1.clone(), l2.clone(), Arc::clone(&worst));
            std::thread::spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for _ in 0..50_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 20_000;
                    if l1.get(&k).is_none() {
                        let v = l2.get(&k).unwrap_or(k);
                        l1.insert(k, v);
                    }
                    worst.fetch_max(l2.weighted_size(), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let worst = worst.load(Ordering::Relaxed);
    println!(
        "second tier: {} at the end, {worst} at worst",
        l2.weighted_size()
    );
    // Every thread writes the second tier, only through the first tier's listener.
    assert!(
        worst <= 1_000 + slack(1_000, THREADS),
        "second tier reached {worst} against a bound of 1,000"
    );
    l2.run_pending_tasks();
    assert!(l2.weighted_size() <= 1_000);
}

/// A cache written from its own listener still maintains itself: a listener that writes
/// every evicted entry back under a new key keeps the bound (its departures are heard
/// after it returns, never nested).
#[test]
fn a_cache_written_from_its_own_listener_keeps_its_bound() {
    let slot: Arc<std::sync::OnceLock<Cache<u64, u64>>> = Arc::default();
    let depth = Arc::new(AtomicUsize::new(0));
    let nested = Arc::new(AtomicUsize::new(0));
    let (s, d, n) = (Arc::clone(&slot), Arc::clone(&depth), Arc::clone(&nested));
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .eviction_listener(move |k, v, cause| {
            if d.fetch_add(1, Ordering::SeqCst) > 0 {
                n.fetch_add(1, Ordering::SeqCst);
            }
            if cause == RemovalCause::Evicted && *k < 1 << 40 {
                if let Some(c) = s.get() {
                    c.insert(*k + (1 << 40), *v);
                }
            }
            d.fetch_sub(1, Ordering::SeqCst);
        })
        .build();
    let _ = slot.set(cache.clone());
    let mut worst = 0;
    for i in 0..50_000 {
        cache.insert(i, i);
        worst = worst.max(cache.weighted_size());
    }
    assert_eq!(nested.load(Ordering::SeqCst), 0, "the listener nested");
    assert!(
        worst <= 1_000 + slack(1_000, 1),
        "reached {worst} against a bound of 1,000"
    );
}
