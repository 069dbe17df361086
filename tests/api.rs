//! Every public method, driven by a `ManualClock`.

mod common;

use common::{Events, Ledger, Tracked};
use std::sync::Arc;
use std::time::Duration;
use wheelcache::{Cache, CacheStats, ManualClock, RemovalCause};

const MS: Duration = Duration::from_millis(1);

fn manual(events: &Events) -> (Cache<u64, u64>, ManualClock) {
    let clock = ManualClock::new();
    let ev = events.clone();
    let cache = Cache::builder()
        .clock(clock.clone())
        .eviction_listener(move |k: &u64, v: &u64, c| ev.push(*k, *v, c))
        .build();
    (cache, clock)
}

#[test]
fn insert_get_remove_contains() {
    let events = Events::default();
    let (cache, _clock) = manual(&events);
    assert!(cache.is_empty());
    cache.insert(1, 10);
    cache.insert(2, 20);
    assert_eq!(cache.get(&1), Some(10));
    assert_eq!(cache.get(&3), None);
    assert!(cache.contains_key(&2));
    assert!(!cache.contains_key(&3));
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.remove(&1), Some(10));
    assert_eq!(cache.remove(&1), None);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.len(), 1);
    assert_eq!(events.take(), vec![(1, 10, RemovalCause::Explicit)]);
    let stats = cache.stats();
    assert_eq!(
        stats,
        CacheStats {
            hits: 1,
            misses: 2,
            inserts: 2,
            updates: 0,
            removals: 1,
            expirations: 0,
            evictions: 0,
            len: 1
        }
    );
}

#[test]
fn replace_reports_replaced_and_new_ttl() {
    let events = Events::default();
    let (cache, clock) = manual(&events);
    cache.insert_with_ttl(7, 1, 10 * MS);
    cache.insert_with_ttl(7, 2, 100 * MS);
    assert_eq!(events.take(), vec![(7, 1, RemovalCause::Replaced)]);
    clock.advance(50 * MS);
    cache.run_pending_tasks();
    assert_eq!(cache.get(&7), Some(2), "the new TTL replaced the old");
    clock.advance(50 * MS);
    assert_eq!(
        cache.get(&7),
        None,
        "never returns an expired entry, even before maintenance"
    );
    cache.run_pending_tasks();
    assert_eq!(events.take(), vec![(7, 2, RemovalCause::Expired)]);
    assert_eq!(cache.len(), 0);
    let s = cache.stats();
    assert_eq!((s.inserts, s.updates, s.expirations), (1, 1, 1));
}

#[test]
fn ttl_expiry_is_exact_to_the_tick() {
    let events = Events::default();
    let (cache, clock) = manual(&events);
    for i in 0..100u64 {
        cache.insert_with_ttl(i, i, Duration::from_millis(i + 1));
    }
    for step in 1..=100u64 {
        clock.advance(MS);
        cache.run_pending_tasks();
        assert_eq!(cache.len(), (100 - step) as usize, "at {step} ms");
        assert_eq!(cache.get(&(step - 1)), None);
        if step < 100 {
            assert_eq!(cache.get(&step), Some(step));
        }
    }
    let mut expired = events.take();
    expired.sort_by_key(|e| e.0);
    assert_eq!(
        expired,
        (0..100)
            .map(|i| (i, i, RemovalCause::Expired))
            .collect::<Vec<_>>()
    );
}

#[test]
fn default_ttl_and_no_ttl() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .time_to_live(Duration::from_secs(1))
        .build();
    assert_eq!(cache.time_to_live(), Some(Duration::from_secs(1)));
    cache.insert(1, 1);
    cache.insert_with_ttl(2, 2, Duration::MAX);
    clock.advance(Duration::from_secs(1));
    cache.run_pending_tasks();
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), Some(2));
    let plain: Cache<u64, u64> = Cache::new();
    plain.insert(1, 1);
    assert_eq!(plain.time_to_live(), None);
    assert_eq!(plain.get(&1), Some(1));
}

#[test]
fn zero_ttl_is_never_visible_and_not_stored() {
    let events = Events::default();
    let (cache, _clock) = manual(&events);
    cache.insert(5, 50);
    cache.insert_with_ttl(5, 51, Duration::ZERO);
    assert_eq!(cache.get(&5), None);
    assert_eq!(cache.len(), 0);
    cache.insert_with_ttl(6, 60, Duration::ZERO);
    assert_eq!(cache.get(&6), None);
    assert_eq!(
        events.take(),
        vec![
            (5, 50, RemovalCause::Replaced),
            (5, 51, RemovalCause::Expired),
            (6, 60, RemovalCause::Expired)
        ]
    );
    let s = cache.stats();
    assert_eq!((s.inserts, s.updates, s.expirations, s.len), (2, 1, 2, 0));
}

#[test]
fn huge_ttls_are_accepted() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder().clock(clock.clone()).build();
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    cache.insert_with_ttl(1, 1, Duration::MAX);
    cache.insert_with_ttl(2, 2, century);
    cache.insert_with_ttl(3, 3, Duration::from_secs(3 * 365 * 24 * 3600)); // past the levels
    clock.advance(Duration::from_secs(50 * 365 * 24 * 3600));
    cache.run_pending_tasks();
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.get(&2), Some(2));
    assert_eq!(cache.get(&3), None);
    clock.advance(Duration::from_secs(50 * 365 * 24 * 3600));
    cache.run_pending_tasks();
    assert_eq!(cache.get(&2), None, "a century later it has expired");
    assert_eq!(cache.get(&1), Some(1), "Duration::MAX never expires");
    assert_eq!(cache.len(), 1);
}

#[test]
fn overflow_entries_expire_on_time() {
    // 1 ms ticks: the levels cover 2^36 ms; these live past that and must fire exactly.
    let events = Events::default();
    let (cache, clock) = manual(&events);
    let range = Duration::from_millis(1 << 36);
    cache.insert_with_ttl(1, 1, range + Duration::from_secs(10));
    cache.insert_with_ttl(2, 2, 3 * range);
    clock.advance(range + Duration::from_secs(9));
    cache.run_pending_tasks();
    assert_eq!(cache.get(&1), Some(1));
    clock.advance(Duration::from_secs(1));
    cache.run_pending_tasks();
    assert_eq!(cache.get(&1), None);
    assert_eq!(events.take(), vec![(1, 1, RemovalCause::Expired)]);
    clock.advance(2 * range - Duration::from_secs(10) - MS);
    cache.run_pending_tasks();
    assert!(events.take().is_empty());
    clock.advance(MS);
    cache.run_pending_tasks();
    assert_eq!(events.take(), vec![(2, 2, RemovalCause::Expired)]);
}

#[test]
fn writes_advance_the_wheel_without_run_pending_tasks() {
    let events = Events::default();
    let clock = ManualClock::new();
    let ev = events.clone();
    // One segment, so every write maintains the same wheel.
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .segments(1)
        .eviction_listener(move |k: &u64, v: &u64, c| ev.push(*k, *v, c))
        .build();
    for i in 0..1000 {
        cache.insert_with_ttl(i, i, 10 * MS);
    }
    clock.advance(10 * MS);
    // Each write expires a bounded batch; enough writes clean everything.
    cache.insert(10_000, 0);
    let after_one = cache.len();
    assert!(
        after_one < 1001 && after_one > 1,
        "one write does bounded work: len {after_one}"
    );
    for i in 0..200 {
        cache.insert(20_000 + i, 0);
    }
    assert_eq!(cache.len(), 201, "busy writes cleaned the expired entries");
    assert_eq!(events.take().len(), 1000);
}

#[test]
fn get_or_insert_with_keeps_live_and_replaces_expired() {
    let events = Events::default();
    let clock = ManualClock::new();
    let ev = events.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .time_to_live(10 * MS)
        .eviction_listener(move |k: &u64, v: &u64, c| ev.push(*k, *v, c))
        .build();
    assert_eq!(cache.get_or_insert_with(1, || 10), 10);
    assert_eq!(
        cache.get_or_insert_with(1, || panic!("not called when live")),
        10
    );
    clock.advance(10 * MS);
    assert_eq!(cache.get_or_insert_with(1, || 11), 11);
    assert_eq!(events.take(), vec![(1, 10, RemovalCause::Expired)]);
    let s = cache.stats();
    assert_eq!((s.inserts, s.expirations, s.len), (2, 1, 1));
}

#[test]
fn clear_removes_everything_and_reports_each() {
    let events = Events::default();
    let (cache, clock) = manual(&events);
    for i in 0..500 {
        cache.insert(i, i);
    }
    cache.insert_with_ttl(1000, 1, MS);
    clock.advance(MS);
    cache.clear();
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.get(&3), None);
    let ev = events.take();
    assert_eq!(ev.len(), 501);
    assert_eq!(
        ev.iter().filter(|e| e.2 == RemovalCause::Explicit).count(),
        500
    );
    assert!(ev.contains(&(1000, 1, RemovalCause::Expired)));
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), Some(1));
}

#[test]
fn pinned_reads_borrow_and_outlive_removal() {
    let ledger = Ledger::new();
    let cache: Cache<u64, Tracked> = Cache::new();
    cache.insert(1, Tracked::new(1, &ledger));
    let pinned = cache.pin();
    let v = pinned.get(&1).expect("present");
    assert!(cache.invalidate(&1));
    cache.run_pending_tasks();
    assert_eq!(v.id, 1, "still readable while pinned");
    assert_eq!(ledger.dropped(), 0);
    assert!(pinned.get(&1).is_none());
    assert!(!pinned.contains_key(&1));
    drop(pinned);
    cache.run_pending_tasks();
    assert_eq!(ledger.dropped(), 1);
}

#[test]
fn borrowed_lookups() {
    let cache: Cache<String, u32> = Cache::new();
    cache.insert("alpha".to_string(), 1);
    assert_eq!(cache.get("alpha"), Some(1));
    assert!(cache.contains_key("alpha"));
    assert_eq!(
        cache.pin().get_key_value("alpha"),
        Some((&"alpha".to_string(), &1))
    );
    assert_eq!(cache.remove("alpha"), Some(1));
}

#[test]
#[cfg_attr(miri, ignore = "builds 65,536 segments: minutes under Miri")]
fn clones_share_one_cache_and_builder_clamps() {
    let a: Cache<u64, u64> = Cache::builder().segments(0).tick(Duration::ZERO).build();
    let b = a.clone();
    a.insert(1, 1);
    assert_eq!(b.get(&1), Some(1));
    let big: Cache<u64, u64> = Cache::builder()
        .segments(usize::MAX)
        .initial_capacity(10_000)
        .build();
    big.insert(1, 1);
    assert_eq!(big.get(&1), Some(1));
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Cache<String, Arc<Vec<u8>>>>();
    assert!(format!("{a:?}").contains("Cache"));
}

#[test]
fn invalidate_and_remove_of_expired() {
    let events = Events::default();
    let (cache, clock) = manual(&events);
    cache.insert_with_ttl(1, 1, MS);
    clock.advance(MS);
    assert_eq!(cache.remove(&1), None, "an expired entry is not returned");
    assert_eq!(events.take(), vec![(1, 1, RemovalCause::Expired)]);
    assert_eq!(cache.len(), 0);
    assert!(!cache.invalidate(&1));
}

#[test]
#[cfg_attr(miri, ignore = "waits on real time")]
fn background_reaper_cleans_a_quiet_cache() {
    let cache: Cache<u64, u64> = Cache::builder()
        .background_reaper(Duration::from_millis(5))
        .build();
    for i in 0..100 {
        cache.insert_with_ttl(i, i, Duration::from_millis(20));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cache.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        cache.len(),
        0,
        "the reaper expired everything without any call"
    );
    let weak_probe = cache.clone();
    drop(cache);
    drop(weak_probe); // the reaper must not keep it alive (nothing to assert but no hang)
}

#[test]
fn listener_may_call_back_into_the_cache() {
    let clock = ManualClock::new();
    let slot: Arc<std::sync::OnceLock<Cache<u64, u64>>> = Arc::default();
    let inner = Arc::clone(&slot);
    let cache: Cache<u64, u64> = Cache::builder()
        .clock(clock.clone())
        .segments(1)
        .eviction_listener(move |k: &u64, v: &u64, cause| {
            if cause == RemovalCause::Expired {
                let c = inner.get().unwrap();
                c.insert(k + 1000, *v); // re-entrant write while "expiring"
                let _ = c.get(k);
            }
        })
        .build();
    slot.set(cache.clone()).ok().unwrap();
    cache.insert_with_ttl(1, 1, MS);
    clock.advance(MS);
    cache.run_pending_tasks();
    assert_eq!(cache.get(&1001), Some(1));
    // break the cycle so the cache drops
    drop(slot);
}
