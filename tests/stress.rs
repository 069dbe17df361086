//! Several threads on the same and on different keys, then invariants.
//!
//! Sizes shrink under Miri (`cfg!(miri)`), which runs the same bodies far slower.

mod common;

use common::{Ledger, Tracked};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use wheelcache::Cache;

fn scale(n: u64) -> u64 {
    if cfg!(miri) {
        (n / 200).max(4)
    } else {
        n
    }
}

/// Each thread owns a key range, so its final state is known; readers run throughout.
/// The tables grow from tiny to large and shrink back.
#[test]
fn disjoint_writers_with_growth_and_shrink() {
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::builder().segments(4).build();
    let per = scale(20_000);
    let threads = 4u64;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let cache = cache.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let k = i % (per * threads);
                    if let Some(v) = cache.pin().get(&k) {
                        assert_eq!(v.id, k, "a read returned another key's value");
                    }
                    i = i.wrapping_add(7919);
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..threads)
        .map(|t| {
            let cache = cache.clone();
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let keys = t * per..(t + 1) * per;
                for k in keys.clone() {
                    cache.insert(k, Tracked::new(k, &ledger));
                }
                for k in keys.clone() {
                    assert_eq!(cache.get(&k).map(|v| v.id), Some(k));
                }
                for k in keys.clone().filter(|k| k % 10 != 0) {
                    assert!(cache.invalidate(&k), "key {k} vanished before removal");
                }
                for k in keys {
                    assert_eq!(cache.contains_key(&k), k % 10 == 0, "key {k}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    cache.run_pending_tasks();
    assert_eq!(cache.len() as u64, per * threads / 10);
    for k in 0..per * threads {
        assert_eq!(cache.get(&k).is_some(), k % 10 == 0);
    }
    cache.clear();
    cache.run_pending_tasks();
    assert_eq!(ledger.live(), 0);
}

/// All threads hammer the same few keys; values carry their key, and after the storm the
/// cache holds exactly the last write of each key per a final single-threaded pass.
#[test]
fn contended_same_keys() {
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::builder().segments(2).build();
    let ops = scale(50_000);
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = cache.clone();
            let ledger = ledger.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..ops {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 16;
                    match x % 5 {
                        0 | 1 => cache.insert(k, Tracked::new(k, &ledger)),
                        2 => {
                            cache.invalidate(&k);
                        }
                        3 => {
                            let v = cache.get_or_insert_with(k, || Tracked::new(k, &ledger));
                            assert_eq!(v.id, k);
                        }
                        _ => {
                            if let Some(v) = cache.get(&k) {
                                assert_eq!(v.id, k);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    cache.run_pending_tasks();
    let live = (0..16).filter(|k| cache.contains_key(k)).count();
    assert_eq!(cache.len(), live, "len matches the reachable entries");
    drop(cache);
    assert_eq!(ledger.live(), 0);
}

/// Short TTLs under churn from many threads: nothing expired is ever read, and once
/// traffic stops and the TTL passes, the cache empties completely.
#[test]
fn ttl_churn_empties_after_traffic_stops() {
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::builder()
        .segments(8)
        .time_to_live(Duration::from_millis(20))
        .build();
    let ops = scale(40_000);
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = cache.clone();
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                for i in 0..ops {
                    let k = t << 32 | i;
                    cache.insert(k, Tracked::new(k, &ledger));
                    for _ in 0..4 {
                        if let Some(v) = cache.get(&k) {
                            assert_eq!(v.id, k);
                        }
                    }
                    if i % 10 < 7 {
                        cache.invalidate(&k);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(25));
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0);
    assert_eq!(
        ledger.live(),
        0,
        "every value was dropped once the TTL passed"
    );
}

/// A model check of a single thread's view: random ops against a HashMap.
#[test]
fn matches_a_hashmap_model() {
    let cache: Cache<u32, u32> = Cache::builder().segments(2).build();
    let mut model = HashMap::new();
    let mut x = 0x2545_F491u32;
    for _ in 0..scale(200_000) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let k = x % 4096;
        match x % 3 {
            0 => {
                cache.insert(k, x);
                model.insert(k, x);
            }
            1 => assert_eq!(cache.remove(&k), model.remove(&k)),
            _ => assert_eq!(cache.get(&k), model.get(&k).copied()),
        }
        if x % 50_000 == 0 {
            // Empty it now and then so tables shrink and regrow.
            for k in model.keys() {
                cache.invalidate(k);
            }
            model.clear();
            cache.run_pending_tasks();
        }
    }
    assert_eq!(cache.len(), model.len());
}

/// One-group tables that grow past half a group: every few operations cross a
/// grow or a shrink while other threads read and write the same keys.
#[test]
fn tiny_tables_resize_under_contention() {
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::builder().segments(1).tiny_tables_for_tests().build();
    let ops = scale(30_000);
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = cache.clone();
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut x = t + 1;
                for i in 0..ops {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 64;
                    match x % 4 {
                        0 => cache.insert(k, Tracked::new(k, &ledger)),
                        1 => {
                            cache.invalidate(&k);
                        }
                        _ => {
                            if let Some(v) = cache.pin().get(&k) {
                                assert_eq!(v.id, k);
                            }
                        }
                    }
                    if i % 5000 == 0 {
                        cache.run_pending_tasks();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    cache.run_pending_tasks();
    let live = (0..64).filter(|k| cache.contains_key(k)).count();
    assert_eq!(cache.len(), live);
    cache.clear();
    cache.run_pending_tasks();
    assert_eq!(ledger.live(), 0);
}
