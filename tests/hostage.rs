//! User code never holds memory hostage: a slow `init`, a slow listener, or traffic that
//! only reads must not stop the cache (or the process) from freeing what departed.
//!
//! A counting global allocator measures live requested bytes, so this binary holds only
//! these tests, run one at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wheelcache::{Cache, ManualClock, RemovalCause};

#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// Tests in this file measure one global counter: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: isize = 1 << 20;
const MS: Duration = Duration::from_millis(1);

/// How far the live heap may rise while user code runs slowly under churn. The churn keeps
/// about 200 ms of 30% abandoned sessions alive (a few MiB); what was held hostage before
/// grew by 150 MiB per second.
const HOSTAGE_BOUND: isize = 48 * MIB;

fn live() -> isize {
    counting::live_bytes()
}

/// Two threads churn sessions (insert a 256-byte value with a 200 ms TTL, read it, end 70%)
/// until `stop`; per-thread key ranges.
fn churn(
    cache: &Cache<u64, Arc<[u8; 256]>>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..2u64)
        .map(|t| {
            let cache = cache.clone();
            let stop = Arc::clone(stop);
            std::thread::spawn(move || {
                let mut k = (t + 1) << 40;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    cache.insert_with_ttl(k, Arc::new([0; 256]), 200 * MS);
                    let _ = cache.get(&k);
                    if k % 10 < 7 {
                        cache.invalidate(&k);
                    }
                }
            })
        })
        .collect()
}

/// Sets its flag when dropped, so that a failed assertion still stops the threads the
/// flag governs (they would otherwise churn on through the next tests' measurements).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Samples the live heap every millisecond while `run` runs; returns the rise of the peak
/// over the level just before.
fn peak_rise_during(run: impl FnOnce()) -> isize {
    let done = Arc::new(AtomicBool::new(false));
    let _done_on_unwind = StopOnDrop(Arc::clone(&done));
    let base = live();
    let sampler = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut peak = live();
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(live());
                std::thread::sleep(MS);
            }
            peak
        })
    };
    run();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap() - base
}

/// `get_or_insert_with` whose `init` takes a second (a database load) while two threads
/// churn: `init` runs unpinned, so the churn's garbage is still freed. (Before: +466 MiB
/// over a 3 s `init`.)
#[test]
fn a_slow_init_does_not_hold_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cache: Cache<u64, Arc<[u8; 256]>> = Cache::new();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_unwind = StopOnDrop(Arc::clone(&stop));
    let workers = churn(&cache, &stop);
    std::thread::sleep(Duration::from_millis(300)); // reach the steady state
    let rise = peak_rise_during(|| {
        let v = cache.get_or_insert_with(1, || {
            std::thread::sleep(Duration::from_secs(1));
            Arc::new([7; 256])
        });
        assert_eq!(v[0], 7);
    });
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    println!("live heap rose {} KiB during a 1 s init", rise / 1024);
    assert!(rise < HOSTAGE_BOUND, "live heap rose {} MiB", rise / MIB);
}

/// A listener that takes a second (a slow log sink) while two threads churn: listeners run
/// unpinned, so nothing else is held back. (Before: +424 MiB over a 2 s listener.)
#[test]
fn a_slow_listener_does_not_hold_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cache: Cache<u64, Arc<[u8; 256]>> = Cache::builder()
        .eviction_listener(|k: &u64, v: &Arc<[u8; 256]>, cause| {
            if *k == 1 && cause == RemovalCause::Explicit {
                std::thread::sleep(Duration::from_secs(1));
                assert_eq!(v[0], 9, "the listener's value stays valid while it runs");
            }
        })
        .build();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_unwind = StopOnDrop(Arc::clone(&stop));
    let workers = churn(&cache, &stop);
    cache.insert(1, Arc::new([9; 256]));
    std::thread::sleep(Duration::from_millis(300));
    let rise = peak_rise_during(|| assert!(cache.invalidate(&1)));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    println!("live heap rose {} KiB during a 1 s listener", rise / 1024);
    assert!(rise < HOSTAGE_BOUND, "live heap rose {} MiB", rise / MIB);
}

/// Only reads after 10^5 entries lapse, no reaper and no writes: the reads' maintenance
/// turns remove the entries and give the memory back. (Before: 10^6 lapsed entries kept
/// 143 MiB and `len() == 10^6` an hour later.)
#[test]
fn reads_alone_give_memory_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let n = 100_000u64;
    let clock = ManualClock::new();
    let before = live();
    let cache: Cache<u64, Arc<[u8; 64]>> = Cache::builder().clock(clock.clone()).build();
    let empty = live() - before;
    for i in 0..n {
        cache.insert_with_ttl(i, Arc::new([0; 64]), Duration::from_secs(1));
    }
    let full = live() - before;
    clock.advance(Duration::from_secs(2));
    let t0 = Instant::now();
    for i in 0..10 * n {
        let _ = cache.get(&(i % n));
    }
    let after = live() - before;
    println!(
        "empty {} KiB, full {} KiB, after {} reads {} KiB ({:?}); len {}",
        empty / 1024,
        full / 1024,
        10 * n,
        after / 1024,
        t0.elapsed(),
        cache.len()
    );
    assert_eq!(cache.len(), 0);
    assert!(
        after - empty < 2 * MIB,
        "kept {} KiB",
        (after - empty) / 1024
    );
}

/// Pre-sizing for `usize::MAX` entries is clamped and lazy: one insert allocates little.
#[test]
fn enormous_initial_capacity_allocates_little() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = live();
    let cache: Cache<u64, u64> = Cache::builder().initial_capacity(usize::MAX).build();
    cache.insert(1, 1);
    let used = live() - before;
    println!(
        "initial_capacity(usize::MAX) + one insert: {} KiB",
        used / 1024
    );
    // Pre-sizing is eager: about 15 bytes per entry of the clamped capacity.
    assert!(used < 80 * MIB, "{} MiB", used / MIB);
    drop(cache);
}
