//! `Cache::set_ttl`: an existing entry's deadline changed without replacing its value.

mod common;

use common::{Events, Ledger, Tracked};
use std::sync::Arc;
use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};

const S: Duration = Duration::from_secs(1);

#[test]
fn extends_and_shortens_without_a_departure() {
    let clock = ManualClock::new();
    let events = Events::default();
    let ev = events.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .time_to_live(10 * S)
        .eviction_listener(move |k, v, c| ev.push(*k, *v, c))
        .build();
    cache.insert(1, 10);
    cache.insert(2, 20);
    let before = cache.stats();
    assert!(cache.set_ttl(&1, 100 * S), "extended past the default TTL");
    assert!(cache.set_ttl(&2, 2 * S), "shortened");
    assert_eq!(cache.stats(), before, "no counter moves");
    clock.advance(3 * S);
    assert_eq!(cache.get(&2), None, "2 lapsed at its new deadline");
    clock.advance(50 * S);
    assert_eq!(cache.get(&1), Some(10), "1 outlived the default TTL");
    cache.run_pending_tasks();
    assert_eq!(events.take(), vec![(2, 20, RemovalCause::Expired)]);
    clock.advance(50 * S);
    assert_eq!(cache.get(&1), None, "1 lapsed at its new deadline");
    assert!(!cache.set_ttl(&1, S), "a lapsed entry is absent");
    assert!(!cache.set_ttl(&3, S), "absent");
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0, "set_ttl on absent keys stores nothing");
    assert_eq!(events.take(), vec![(1, 10, RemovalCause::Expired)]);
}

#[test]
fn a_zero_ttl_removes_the_entry_as_expired() {
    let events = Events::default();
    let ev = events.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .eviction_listener(move |k, v, c| ev.push(*k, *v, c))
        .build();
    cache.insert(1, 10);
    assert!(cache.set_ttl(&1, Duration::ZERO));
    assert_eq!(cache.get(&1), None);
    cache.run_pending_tasks();
    assert_eq!(events.take(), vec![(1, 10, RemovalCause::Expired)]);
    assert_eq!(cache.stats().expirations, 1);
}

#[test]
fn weight_idle_time_and_bound_hold() {
    let clock = ManualClock::new();
    let cache: Cache<u64, Arc<String>> = Cache::builder()
        .clock(clock.clone())
        .max_capacity(100)
        .weigher(|_, v: &Arc<String>| v.len() as u32)
        .time_to_idle(5 * S)
        .build();
    let value = Arc::new("x".repeat(40));
    cache.insert(1, Arc::clone(&value));
    cache.run_pending_tasks();
    assert_eq!(cache.weighted_size(), 40);
    clock.advance(4 * S);
    assert!(cache.set_ttl(&1, 60 * S));
    cache.run_pending_tasks();
    assert_eq!(
        cache.weighted_size(),
        40,
        "the weight is kept, counted once"
    );
    clock.advance(4 * S);
    let got = cache
        .get(&1)
        .expect("set_ttl restarted the idle time, as a write does");
    assert!(Arc::ptr_eq(&got, &value), "the same value");
    clock.advance(6 * S);
    assert_eq!(
        cache.get(&1),
        None,
        "idle for 6 s: the time-to-idle still applies"
    );
}

#[test]
fn racing_writers_drop_every_value_exactly_once() {
    let ledger = Ledger::new();
    {
        let cache: Cache<u64, Tracked> = Cache::builder().segments(2).build();
        let rounds = if cfg!(miri) { 50 } else { 20_000 };
        std::thread::scope(|s| {
            for t in 0..3u64 {
                let (cache, ledger) = (&cache, &ledger);
                s.spawn(move || {
                    for i in 0..rounds {
                        let key = i % 16;
                        match (i + t) % 3 {
                            0 => cache.insert(key, Tracked::new(key, ledger)),
                            1 => {
                                cache.set_ttl(&key, Duration::from_millis(1 + i % 50));
                            }
                            _ => {
                                cache.remove(&key);
                            }
                        }
                    }
                });
            }
        });
        for key in 0..16 {
            if let Some(v) = cache.get(&key) {
                assert_eq!(v.id, key, "a key's value is its own");
            }
        }
    }
    assert_eq!(ledger.live(), 0, "every value (and clone) dropped");
    assert_eq!(ledger.created(), ledger.dropped());
}
