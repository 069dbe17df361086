//! TTLs against the real clock, through the default clock (on x86-64 Linux, reads decide
//! most deadlines from the time-stamp counter: `src/clock/gate.rs`). Every answer is
//! checked against `Instant` readings taken around the insert and the read, so the checks
//! hold however the threads are scheduled:
//! - a read that returns the entry began before `insert returned + TTL + one tick`;
//! - a read that misses it ended after `insert began + TTL`.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use wheelcache::Cache;

const TICK: Duration = Duration::from_millis(1);
const KEYS: u64 = 48;
const READERS: usize = 4;

/// The window each key's entry must be visible in: (insert began, insert returned, TTL).
type Windows = Vec<(Instant, Instant, Duration)>;

fn insert_all(cache: &Cache<u64, u64>) -> Windows {
    (0..KEYS)
        .map(|k| {
            let ttl = Duration::from_micros(1_500 + k * 700); // 1.5 ms to about 34 ms
            let began = Instant::now();
            cache.insert_with_ttl(k, k, ttl);
            (began, Instant::now(), ttl)
        })
        .collect()
}

/// Readers spin over every key until each has been seen missing, checking every answer.
/// Returns how many reads found their entry (to show the visible side was exercised).
fn read_until_gone(cache: Cache<u64, u64>, windows: Arc<Windows>) -> u64 {
    let start = Arc::new(Barrier::new(READERS));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (cache, windows, start) = (cache.clone(), Arc::clone(&windows), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let mut gone = vec![false; KEYS as usize];
                let mut hits = 0u64;
                let deadline = Instant::now() + Duration::from_secs(5);
                while gone.iter().any(|g| !g) {
                    assert!(
                        Instant::now() < deadline,
                        "reader {r}: entries outlived 5 s"
                    );
                    for k in 0..KEYS {
                        let (began, returned, ttl) = windows[k as usize];
                        let before = Instant::now();
                        let found = cache.get(&k);
                        let after = Instant::now();
                        if found.is_some() {
                            hits += 1;
                            assert!(
                                before < returned + ttl + TICK,
                                "key {k} (TTL {ttl:?}) seen {:?} after its insert returned",
                                before - returned
                            );
                            assert!(!gone[k as usize], "key {k} came back");
                        } else {
                            assert!(
                                after >= began + ttl,
                                "key {k} (TTL {ttl:?}) gone {:?} after its insert began",
                                after - began
                            );
                            gone[k as usize] = true;
                        }
                    }
                }
                hits
            })
        })
        .collect();
    readers.into_iter().map(|r| r.join().unwrap()).sum()
}

#[test]
fn reads_agree_with_the_real_clock_on_every_ttl() {
    let cache: Cache<u64, u64> = Cache::builder().tick(TICK).build();
    let windows = Arc::new(insert_all(&cache));
    let hits = read_until_gone(cache, windows);
    assert!(
        hits > KEYS,
        "the readers saw the entries alive ({hits} hits)"
    );
}

/// The same with a bound, whose entries carry the eviction extension (another branch of
/// the read's liveness check).
#[test]
fn bounded_reads_agree_with_the_real_clock_on_every_ttl() {
    let cache: Cache<u64, u64> = Cache::builder().tick(TICK).max_capacity(1_000).build();
    let windows = Arc::new(insert_all(&cache));
    let hits = read_until_gone(cache, windows);
    assert!(
        hits > KEYS,
        "the readers saw the entries alive ({hits} hits)"
    );
}
