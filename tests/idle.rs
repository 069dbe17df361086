//! Time-to-idle with a `ManualClock`: reads and writes extend, TTL still caps, and bad
//! input (zero, enormous).

mod common;

use common::Events;
use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};

const TICK: Duration = Duration::from_millis(1);

fn idle_cache(clock: &ManualClock, tti: Duration) -> Cache<u64, u64> {
    Cache::builder()
        .clock(clock.clone())
        .time_to_idle(tti)
        .build()
}

#[test]
fn an_idle_entry_expires_and_a_read_extends_it() {
    let clock = ManualClock::new();
    let cache = idle_cache(&clock, Duration::from_secs(10));
    cache.insert(1, 1);
    cache.insert(2, 2);
    clock.advance(Duration::from_secs(8));
    assert_eq!(cache.get(&1), Some(1)); // 1 is read at 8 s
    clock.advance(Duration::from_secs(2) + 2 * TICK);
    assert_eq!(cache.get(&2), None, "2 was idle for 10 s");
    assert_eq!(cache.get(&1), Some(1), "1 was read 2 s ago");
    clock.advance(Duration::from_secs(10) - TICK);
    assert_eq!(cache.get(&1), Some(1), "read just under 10 s ago");
    clock.advance(Duration::from_secs(10) + 2 * TICK);
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0, "the wheel removed both");
    assert_eq!(cache.stats().expirations, 2);
}

#[test]
fn a_write_extends_and_contains_key_does_not() {
    let clock = ManualClock::new();
    let cache = idle_cache(&clock, Duration::from_secs(10));
    cache.insert(1, 1);
    cache.insert(2, 2);
    clock.advance(Duration::from_secs(9));
    cache.insert(1, 10);
    assert!(cache.contains_key(&2));
    clock.advance(Duration::from_secs(2));
    assert!(!cache.contains_key(&2), "contains_key did not extend 2");
    assert_eq!(cache.get(&1), Some(10), "the write at 9 s extended 1");
}

#[test]
fn the_wheel_refiles_a_touched_entry_instead_of_expiring_it() {
    let clock = ManualClock::new();
    let events = Events::default();
    let ev = events.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .time_to_idle(Duration::from_secs(1))
        .eviction_listener(move |k, v, c| ev.push(*k, *v, c))
        .build();
    cache.insert(1, 1);
    for _ in 0..20 {
        clock.advance(Duration::from_millis(500));
        assert_eq!(cache.get(&1), Some(1));
        cache.run_pending_tasks();
    }
    assert!(events.take().is_empty(), "a read every 0.5 s keeps it");
    clock.advance(Duration::from_millis(1_100));
    cache.run_pending_tasks();
    assert_eq!(events.take(), vec![(1, 1, RemovalCause::Expired)]);
}

#[test]
fn ttl_still_caps_an_entry_that_is_read() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .time_to_live(Duration::from_secs(5))
        .time_to_idle(Duration::from_secs(2))
        .build();
    cache.insert(1, 1);
    cache.insert_with_ttl(2, 2, Duration::from_secs(3));
    for _ in 0..4 {
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get(&1), Some(1));
    }
    assert_eq!(cache.get(&2), None, "2's own TTL of 3 s capped it");
    clock.advance(Duration::from_secs(1) + TICK);
    assert_eq!(
        cache.get(&1),
        None,
        "TTL of 5 s caps 1 though it was read every second"
    );
    cache.run_pending_tasks();
    assert!(cache.is_empty());
}

#[test]
fn zero_tti_stores_nothing_and_enormous_tti_never_expires() {
    let clock = ManualClock::new();
    let events = Events::default();
    let ev = events.clone();
    let zero: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .time_to_idle(Duration::ZERO)
        .eviction_listener(move |k, v, c| ev.push(*k, *v, c))
        .build();
    zero.insert(1, 1);
    assert_eq!(zero.get_or_insert_with(2, || 2), 2);
    assert!(zero.is_empty());
    assert_eq!(
        events.take(),
        vec![(1, 1, RemovalCause::Expired), (2, 2, RemovalCause::Expired)]
    );
    let forever = idle_cache(&clock, Duration::MAX);
    forever.insert(1, 1);
    clock.advance(Duration::from_secs(1 << 40));
    forever.run_pending_tasks();
    assert_eq!(forever.get(&1), Some(1));
}

#[test]
fn idle_and_capacity_together() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .time_to_idle(Duration::from_secs(1))
        .max_capacity(100)
        .build();
    for k in 0..500 {
        cache.insert(k, k);
    }
    cache.run_pending_tasks();
    assert!(cache.len() <= 100);
    clock.advance(Duration::from_secs(2));
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.weighted_size(), 0);
}
