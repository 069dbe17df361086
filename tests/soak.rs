//! Soak: session churn for `WHEELCACHE_SOAK_SECS` seconds (default 3). Live heap bytes
//! (counting allocator) must stay under a bound computed from the live entries, every
//! value must be dropped exactly once, and once traffic stops and the TTL passes the
//! cache must return to near-empty memory.

use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wheelcache::Cache;

#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

static VALUES: AtomicIsize = AtomicIsize::new(0);

/// A session value; counts live instances.
struct Session {
    _state: [u8; 48],
}

impl Session {
    fn new() -> Self {
        VALUES.fetch_add(1, Ordering::SeqCst);
        Session { _state: [0; 48] }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let before = VALUES.fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "a value was dropped twice");
    }
}

#[test]
fn churn_keeps_memory_flat_and_returns_it() {
    let secs: f64 = std::env::var("WHEELCACHE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(miri) { 0.2 } else { 3.0 });
    let ttl = Duration::from_millis(50);
    let base = counting::live_bytes();
    let cache: Cache<u64, Arc<Session>> = Cache::builder().time_to_live(ttl).build();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let (cache, stop) = (cache.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut id = t << 48;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    cache.insert(id, Arc::new(Session::new()));
                    for _ in 0..4 {
                        std::hint::black_box(cache.pin().get(&id).is_some());
                    }
                    if id % 10 < 7 {
                        cache.invalidate(&id);
                    }
                }
            })
        })
        .collect();
    // Bound: each live entry costs its node (64 B), its Arc'd value (64 B) and table share
    // (< 32 B); retired-but-unfreed garbage and crossbeam's bags add a bounded amount
    // (segments x batch nodes, a few bags per thread); 16 MiB covers that and allocator
    // bookkeeping at this machine's thread count.
    let started = Instant::now();
    let mut worst = 0f64;
    let mut samples = 0;
    while started.elapsed().as_secs_f64() < secs {
        std::thread::sleep(Duration::from_millis(20));
        let live_bytes = counting::live_bytes() - base;
        let entries = cache.len() as isize;
        let bound = entries * 256 + (16 << 20);
        worst = worst.max(live_bytes as f64 / bound as f64);
        samples += 1;
        assert!(
            live_bytes <= bound,
            "live {live_bytes} B > bound {bound} B for {entries} entries"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    std::thread::sleep(ttl + Duration::from_millis(5));
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0);
    assert_eq!(
        VALUES.load(Ordering::SeqCst),
        0,
        "every value dropped once the TTL passed"
    );
    let after = counting::live_bytes() - base;
    println!("soak: {samples} samples over {secs} s, worst live/bound {worst:.2}, {after} B left after the TTL");
    assert!(
        after < 1 << 20,
        "an idle, empty cache still holds {after} B"
    );
    drop(cache);
}
