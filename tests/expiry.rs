//! The per-entry `Expiry` policy, driven by a `ManualClock`: what it is asked (create or
//! update, the instants, the time left), how its answers combine with the TTL, a zero
//! answer, the paths that write (insert, compute, the loads) and the one that does not ask
//! (`insert_with_ttl`), a panicking policy, and a policy under contention.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wheelcache::{Cache, Computed, Expiry, ManualClock, Op, RemovalCause};

/// What the policy was asked: `(key, "create" | "update", at, time left)`.
type Asked = Arc<Mutex<Vec<(u32, &'static str, Instant, Option<Duration>)>>>;

/// Lives `value` seconds from creation (0 means no deadline from the policy); an update
/// gets `update` if set, else keeps the time left. Records every question.
struct Recording {
    asked: Asked,
    update: Option<Duration>,
}

impl Expiry<u32, u64> for Recording {
    fn expire_after_create(&self, key: &u32, value: &u64, at: Instant) -> Option<Duration> {
        self.asked.lock().unwrap().push((*key, "create", at, None));
        (*value != 0).then(|| Duration::from_secs(*value))
    }

    fn expire_after_update(
        &self,
        key: &u32,
        _value: &u64,
        at: Instant,
        left: Option<Duration>,
    ) -> Option<Duration> {
        self.asked.lock().unwrap().push((*key, "update", at, left));
        self.update.or(left)
    }
}

fn cache_with(
    update: Option<Duration>,
    ttl: Option<Duration>,
) -> (Cache<u32, u64>, ManualClock, Asked) {
    let clock = ManualClock::new();
    let asked: Asked = Arc::default();
    let mut builder = Cache::builder()
        .expire_after(Recording {
            asked: Arc::clone(&asked),
            update,
        })
        .clock(clock.clone());
    if let Some(ttl) = ttl {
        builder = builder.time_to_live(ttl);
    }
    (builder.build(), clock, asked)
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn create_sets_each_entry_deadline() {
    let (cache, clock, asked) = cache_with(None, None);
    cache.insert(1, 5);
    cache.insert(2, 10);
    cache.insert(3, 0); // the policy sets none
    clock.advance(5 * SEC - Duration::from_nanos(1));
    assert_eq!(cache.get(&1), Some(5));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.get(&1), None, "due exactly 5 s after creation");
    assert_eq!(cache.get(&2), Some(10));
    clock.advance(5 * SEC);
    assert_eq!(cache.get(&2), None);
    clock.advance(Duration::from_secs(1_000_000));
    assert_eq!(
        cache.get(&3),
        Some(0),
        "no deadline from the policy, no TTL"
    );
    let asked = asked.lock().unwrap();
    let kinds: Vec<_> = asked.iter().map(|a| (a.0, a.1)).collect();
    assert_eq!(kinds, [(1, "create"), (2, "create"), (3, "create")]);
    // Maintenance removes what the policy expired, as Expired.
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 1);
}

#[test]
fn instants_are_the_origin_plus_the_manual_time() {
    let before = Instant::now();
    let (cache, clock, asked) = cache_with(None, None);
    let after = Instant::now();
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(3600));
    cache.insert(2, 1);
    clock.advance(Duration::from_millis(1500));
    cache.insert(2, 1);
    let asked = asked.lock().unwrap();
    let origin = asked[0].2;
    // The clock read zero when the cache was built, so its origin is the build instant.
    assert!(
        origin >= before && origin <= after,
        "origin {origin:?} outside the build"
    );
    assert_eq!(asked[1].2 - origin, Duration::from_secs(3600));
    assert_eq!(asked[2].2 - origin, Duration::from_millis(3_601_500));
}

#[test]
fn update_keeps_the_time_left_by_default() {
    let (cache, clock, asked) = cache_with(None, None);
    cache.insert(1, 10);
    clock.advance(4 * SEC);
    cache.insert(1, 99); // an update: keeps the 6 s left
    let (key, kind, _, left) = asked.lock().unwrap()[1];
    assert_eq!((key, kind, left), (1, "update", Some(6 * SEC)));
    clock.advance(6 * SEC - Duration::from_nanos(1));
    assert_eq!(cache.get(&1), Some(99));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.get(&1), None, "still due at the first write's 10 s");
    // A key whose entry lapsed is created again, not updated.
    cache.insert(1, 2);
    assert_eq!(asked.lock().unwrap()[2].1, "create");
    // An entry without a deadline passes `None` as the time left.
    cache.insert(7, 0);
    cache.insert(7, 3);
    let (key, kind, _, left) = asked.lock().unwrap()[4];
    assert_eq!((key, kind, left), (7, "update", None));
    clock.advance(Duration::from_secs(1_000_000));
    assert_eq!(cache.get(&7), Some(3), "kept: none left, none set");
}

#[test]
fn update_answer_replaces_the_deadline() {
    let (cache, clock, _asked) = cache_with(Some(30 * SEC), None);
    cache.insert(1, 5);
    clock.advance(4 * SEC);
    cache.insert(1, 5); // 30 s from now, later than the create's 5 s
    clock.advance(29 * SEC);
    assert_eq!(cache.get(&1), Some(5));
    clock.advance(SEC);
    assert_eq!(cache.get(&1), None);
}

#[test]
fn the_ttl_caps_the_policy_and_the_time_left_is_the_policys_own() {
    let (cache, clock, asked) = cache_with(None, Some(20 * SEC));
    cache.insert(1, 3_600); // the policy says an hour; the TTL says 20 s
    cache.insert(2, 5); // the policy is earlier
    clock.advance(5 * SEC);
    assert_eq!(cache.get(&2), None);
    assert_eq!(cache.get(&1), Some(3_600));
    // An update: the policy's own hour has 3,595 s left (the TTL is not part of it, as in
    // moka), kept; the TTL restarts, so the entry is due 20 s from this write.
    cache.insert(1, 3_600);
    assert_eq!(asked.lock().unwrap()[2].3, Some(3_595 * SEC));
    clock.advance(15 * SEC);
    assert_eq!(cache.get(&1), Some(3_600), "not at the first write's 20 s");
    clock.advance(5 * SEC);
    assert_eq!(cache.get(&1), None);
}

/// A policy that answers nothing changes nothing: an update restarts the TTL as it does
/// without one. (With the TTL counted in the time left, the default update answer kept
/// the first write's deadline: moka's suite, ported, found it.)
#[test]
fn a_policy_that_answers_nothing_leaves_the_ttl_restarting_on_update() {
    struct Nothing;
    impl Expiry<u32, u32> for Nothing {}
    let clock = ManualClock::new();
    let cache: Cache<u32, u32> = Cache::builder()
        .time_to_live(60 * SEC)
        .expire_after(Nothing)
        .clock(clock.clone())
        .build();
    cache.insert(1, 1);
    clock.advance(50 * SEC);
    cache.insert(1, 2); // due at 110 s
    clock.advance(20 * SEC);
    assert_eq!(cache.get(&1), Some(2));
    clock.advance(40 * SEC);
    assert_eq!(cache.get(&1), None);
}

/// The policy's own deadline survives an update that keeps it even where it lay past the
/// replaced entry's TTL: the restarted TTL would let the entry outlive it.
#[test]
fn a_kept_policy_deadline_past_the_old_ttl_still_bounds_the_update() {
    // The policy says 30 s; the TTL 20 s. At 10 s an update keeps the policy's 20 s left
    // (due at 30 s) and restarts the TTL (due at 30 s too); at 15 s another keeps 15 s.
    let (cache, clock, asked) = cache_with(None, Some(20 * SEC));
    cache.insert(1, 30);
    clock.advance(10 * SEC);
    cache.insert(1, 30);
    clock.advance(5 * SEC);
    cache.insert(1, 30);
    assert_eq!(asked.lock().unwrap()[2].3, Some(15 * SEC));
    clock.advance(15 * SEC - Duration::from_nanos(1));
    assert_eq!(cache.get(&1), Some(30));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(
        cache.get(&1),
        None,
        "at the policy's 30 s, before the TTL's 35 s"
    );
}

#[test]
fn an_update_restarts_the_ttl_under_a_longer_answer() {
    let (cache, clock, _asked) = cache_with(Some(Duration::from_secs(3600)), Some(20 * SEC));
    cache.insert(1, 3_600); // the TTL's 20 s
    clock.advance(5 * SEC);
    cache.insert(1, 3_600); // the policy says an hour; the TTL restarts: due at 25 s
    clock.advance(20 * SEC - Duration::from_nanos(1));
    assert_eq!(cache.get(&1), Some(3_600), "not at the first write's 20 s");
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn a_zero_answer_stores_nothing() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let clock = ManualClock::new();
    struct ZeroOnUpdate;
    impl Expiry<u32, u64> for ZeroOnUpdate {
        fn expire_after_update(
            &self,
            _: &u32,
            _: &u64,
            _: Instant,
            _: Option<Duration>,
        ) -> Option<Duration> {
            Some(Duration::ZERO)
        }
    }
    let cache: Cache<u32, u64> = Cache::builder()
        .expire_after(ZeroOnUpdate)
        .eviction_listener(move |k, v, cause| log.lock().unwrap().push((*k, *v, cause)))
        .clock(clock.clone())
        .build();
    cache.insert(1, 1);
    cache.insert(1, 2);
    assert_eq!(cache.get(&1), None);
    assert_eq!(
        *heard.lock().unwrap(),
        [
            (1, 1, RemovalCause::Replaced),
            (1, 2, RemovalCause::Expired)
        ]
    );
    assert_eq!(cache.len(), 0);
}

#[test]
fn insert_with_ttl_does_not_ask_the_policy() {
    let (cache, clock, asked) = cache_with(None, None);
    cache.insert_with_ttl(1, 1_000, 2 * SEC);
    assert!(asked.lock().unwrap().is_empty());
    clock.advance(2 * SEC);
    assert_eq!(cache.get(&1), None);
}

#[test]
fn loads_and_compute_ask_the_policy() {
    let (cache, clock, asked) = cache_with(None, None);
    assert_eq!(cache.get_with(1, || 5), 5);
    assert_eq!(cache.get_or_insert_with(2, || 5), 5);
    assert_eq!(cache.compute(3, |_| Op::Put(5)), Computed::Inserted);
    clock.advance(2 * SEC);
    assert_eq!(
        cache.compute(3, |v| Op::Put(v.copied().unwrap_or(0) + 1)),
        Computed::Updated
    );
    let kinds: Vec<_> = asked
        .lock()
        .unwrap()
        .iter()
        .map(|a| (a.0, a.1, a.3))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "create", None),
            (2, "create", None),
            (3, "create", None),
            (3, "update", Some(3 * SEC))
        ]
    );
    clock.advance(3 * SEC);
    assert_eq!(
        (cache.get(&1), cache.get(&2), cache.get(&3)),
        (None, None, None)
    );
}

/// Values dropped while this thread held an epoch pin (the cache must never do that).
static PINNED_DROPS: AtomicUsize = AtomicUsize::new(0);

/// Counts the values alive, to check each is dropped once, and never pinned.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        if crossbeam_epoch::is_pinned() {
            PINNED_DROPS.fetch_add(1, Ordering::Relaxed);
        }
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
fn counted(live: &Arc<AtomicUsize>) -> Counted {
    live.fetch_add(1, Ordering::Relaxed);
    Counted(Arc::clone(live))
}

#[test]
fn a_panicking_policy_changes_nothing_and_drops_the_value_once() {
    struct Panics;
    impl Expiry<u32, Arc<Counted>> for Panics {
        fn expire_after_create(&self, key: &u32, _: &Arc<Counted>, _: Instant) -> Option<Duration> {
            assert!(*key != 13, "policy refuses 13");
            None
        }
        fn expire_after_update(
            &self,
            _: &u32,
            _: &Arc<Counted>,
            _: Instant,
            _: Option<Duration>,
        ) -> Option<Duration> {
            panic!("policy panics on update")
        }
    }
    let live = Arc::new(AtomicUsize::new(0));
    {
        let cache: Cache<u32, Arc<Counted>> = Cache::builder().expire_after(Panics).build();
        cache.insert(1, Arc::new(counted(&live)));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.insert(1, Arc::new(counted(&live)))
        }));
        assert!(r.is_err());
        assert!(
            cache.contains_key(&1),
            "the entry before the panic is still there"
        );
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.insert(13, Arc::new(counted(&live)))
        }));
        assert!(r.is_err());
        assert!(!cache.contains_key(&13));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.get_or_insert_with(13, || Arc::new(counted(&live)));
        }));
        assert!(r.is_err());
        assert_eq!(
            live.load(Ordering::Relaxed),
            1,
            "only the stored value is alive"
        );
        assert_eq!(
            PINNED_DROPS.load(Ordering::Relaxed),
            0,
            "a value was dropped pinned"
        );
        assert_eq!(cache.len(), 1);
    }
    assert_eq!(live.load(Ordering::Relaxed), 0, "every value dropped once");
}

#[test]
fn concurrent_inserts_with_a_policy_lose_nothing_and_drop_once() {
    struct Bump;
    impl Expiry<u32, Counted> for Bump {
        fn expire_after_create(&self, _: &u32, _: &Counted, _: Instant) -> Option<Duration> {
            Some(Duration::from_secs(60))
        }
        fn expire_after_update(
            &self,
            _: &u32,
            _: &Counted,
            _: Instant,
            left: Option<Duration>,
        ) -> Option<Duration> {
            left.map(|l| l + Duration::from_millis(1))
        }
    }
    let live = Arc::new(AtomicUsize::new(0));
    let per_thread = if cfg!(miri) { 20 } else { 2_000 };
    {
        let cache: Cache<u32, Counted> = Cache::builder().expire_after(Bump).build();
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let (cache, live) = (&cache, &live);
                s.spawn(move || {
                    for i in 0..per_thread {
                        // Half the writes on 4 shared keys, half on the thread's own.
                        let key = if i % 2 == 0 {
                            (i / 2) % 4
                        } else {
                            100 + t * 10_000 + i
                        };
                        cache.insert(key, counted(live));
                    }
                });
            }
        });
        assert_eq!(cache.len(), 4 + 4 * per_thread as usize / 2);
        // `run_pending_tasks` frees what was removed unless some thread stays pinned for
        // its whole wait (`MAX_RECLAIM_WAIT`): other tests of this binary may, under a
        // sanitizer's slowness, so allow it a few rounds.
        for _ in 0..50 {
            cache.run_pending_tasks();
            if live.load(Ordering::Relaxed) == cache.len() {
                break;
            }
        }
        assert_eq!(
            live.load(Ordering::Relaxed),
            cache.len(),
            "replaced values are dropped"
        );
        assert_eq!(
            PINNED_DROPS.load(Ordering::Relaxed),
            0,
            "a value was dropped pinned"
        );
    }
    assert_eq!(live.load(Ordering::Relaxed), 0);
}

/// Answers zero for the value 0, else an hour; `update` answers zero and, the first time,
/// writes the key itself (with `insert_with_ttl`, which does not ask the policy), so the
/// write it answers for must go round again.
struct ZeroForZero {
    cache: Arc<std::sync::OnceLock<Cache<u32, u64>>>,
    asked: Asked,
}

impl Expiry<u32, u64> for ZeroForZero {
    fn expire_after_create(&self, _: &u32, value: &u64, _: Instant) -> Option<Duration> {
        Some(if *value == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(3600)
        })
    }
    fn expire_after_update(
        &self,
        key: &u32,
        _: &u64,
        at: Instant,
        left: Option<Duration>,
    ) -> Option<Duration> {
        let first = {
            let mut asked = self.asked.lock().unwrap();
            asked.push((*key, "update", at, left));
            asked.len() == 1
        };
        if first {
            let cache = self.cache.get().unwrap();
            cache.insert_with_ttl(*key, 99, Duration::from_secs(7));
        }
        Some(Duration::ZERO)
    }
}

#[test]
fn a_refused_write_replaces_only_the_entry_it_was_answered_for() {
    let handle = Arc::new(std::sync::OnceLock::new());
    let asked: Asked = Arc::default();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache: Cache<u32, u64> = Cache::builder()
        .expire_after(ZeroForZero {
            cache: Arc::clone(&handle),
            asked: Arc::clone(&asked),
        })
        .eviction_listener(move |k, v, cause| log.lock().unwrap().push((*k, *v, cause)))
        .clock(ManualClock::new())
        .build();
    assert!(handle.set(cache.clone()).is_ok());
    cache.insert(1, 5);
    cache.insert(1, 6); // update -> zero; meanwhile the policy itself stores 99
    let asked = asked.lock().unwrap();
    let lefts: Vec<_> = asked.iter().map(|a| a.3).collect();
    // Asked again for the entry that replaced the one it first saw (99, whose write by
    // `insert_with_ttl` did not ask the policy: no deadline of the policy's own).
    assert_eq!(lefts, [Some(Duration::from_secs(3600)), None]);
    assert_eq!(cache.get(&1), None);
    assert_eq!(
        *heard.lock().unwrap(),
        [
            (1, 5, RemovalCause::Replaced),
            (1, 99, RemovalCause::Replaced),
            (1, 6, RemovalCause::Expired)
        ]
    );
}

#[test]
fn a_zero_answer_for_a_load_leaves_an_entry_stored_meanwhile() {
    let handle = Arc::new(std::sync::OnceLock::new());
    let cache: Cache<u32, u64> = Cache::builder()
        .expire_after(ZeroForZero {
            cache: Arc::clone(&handle),
            asked: Arc::default(),
        })
        .clock(ManualClock::new())
        .build();
    // The loader stores the key itself, then yields a value the policy refuses: the entry
    // stored meanwhile wins, as it does for any load.
    let got = cache.get_with(1, || {
        cache.insert(1, 7);
        0
    });
    assert_eq!(got, 7);
    assert_eq!(cache.get(&1), Some(7));
    // With nothing stored meanwhile, the refused value is returned and not kept.
    assert_eq!(cache.get_or_insert_with(2, || 0), 0);
    assert_eq!(cache.get(&2), None);
}
