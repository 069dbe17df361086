//! Linearizability spot-check: threads insert unique values, remove and read a few keys,
//! recording each operation's invocation and response on a shared logical clock. Every
//! read must return a value some write could have produced at that point:
//! - a read of `v` needs `v`'s write to have started before the read ended, and no other
//!   write or remove of the key to lie entirely between `v`'s write and the read;
//! - a read of nothing needs no insert to have completed before the read began unless a
//!   remove (or a later write) could have come after it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use wheelcache::Cache;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Insert(u64),
    Remove,
    Read(Option<u64>),
}

#[derive(Debug, Clone, Copy)]
struct Op {
    key: u8,
    kind: Kind,
    start: u64,
    end: u64,
}

fn record(clock: &AtomicU64, key: u8, f: impl FnOnce() -> Kind) -> Op {
    let start = clock.fetch_add(1, Ordering::SeqCst);
    let kind = f();
    let end = clock.fetch_add(1, Ordering::SeqCst);
    Op {
        key,
        kind,
        start,
        end,
    }
}

fn check(history: &[Op]) {
    let writes: Vec<&Op> = history
        .iter()
        .filter(|o| !matches!(o.kind, Kind::Read(_)))
        .collect();
    for read in history.iter().filter(|o| matches!(o.kind, Kind::Read(_))) {
        let Kind::Read(got) = read.kind else {
            unreachable!()
        };
        let same_key = || writes.iter().filter(|w| w.key == read.key);
        match got {
            Some(v) => {
                let w = same_key()
                    .find(|w| matches!(w.kind, Kind::Insert(x) if x == v))
                    .unwrap_or_else(|| panic!("read {read:?} returned a value never written"));
                assert!(
                    w.start < read.end,
                    "read {read:?} saw {w:?} before it began"
                );
                let overwritten = same_key().any(|o| o.start > w.end && o.end < read.start);
                assert!(!overwritten, "read {read:?} returned the stale write {w:?}");
            }
            None => {
                // Invalid only if some insert finished before the read began and nothing
                // (a remove) could have been linearized after it and before the read ended.
                let impossible = same_key().any(|i| {
                    matches!(i.kind, Kind::Insert(_))
                        && i.end < read.start
                        && !same_key().any(|r| {
                            matches!(r.kind, Kind::Remove) && r.end > i.start && r.start < read.end
                        })
                });
                assert!(!impossible, "read {read:?} missed a completed insert");
            }
        }
    }
}

#[test]
fn histories_are_linearizable() {
    let rounds = if cfg!(miri) { 2 } else { 50 };
    let per_thread = if cfg!(miri) { 20 } else { 400 };
    for round in 0..rounds {
        let cache: Cache<u8, u64> = Cache::builder().segments(2).tiny_tables_for_tests().build();
        let clock = Arc::new(AtomicU64::new(0));
        let barrier = Arc::new(Barrier::new(3));
        let handles: Vec<_> = (0..3u64)
            .map(|t| {
                let (cache, clock, barrier) = (cache.clone(), clock.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut ops = Vec::new();
                    let mut x = (round as u64 + 1) * 0x9E37_79B9 + t;
                    for seq in 0..per_thread {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let key = (x % 3) as u8;
                        let value = (t << 32) | seq;
                        ops.push(match x % 7 {
                            0..=2 => record(&clock, key, || {
                                cache.insert(key, value);
                                Kind::Insert(value)
                            }),
                            3 => record(&clock, key, || {
                                cache.invalidate(&key);
                                Kind::Remove
                            }),
                            4 => record(&clock, key, || Kind::Read(cache.pin().get(&key).copied())),
                            _ => record(&clock, key, || Kind::Read(cache.get(&key))),
                        });
                    }
                    ops
                })
            })
            .collect();
        let history: Vec<Op> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        check(&history);
    }
}
