//! `Expiry::expire_after_read`, driven by a `ManualClock`: what a read is asked (the
//! instants, the time left), which reads ask, answers that move a deadline later or
//! earlier (and the maintenance that then removes the entry on time, not at the old
//! deadline), the TTL's cap, a zero answer, a policy that leaves the method alone (asked
//! once, then never), one that reads the cache itself, a panicking one, and readers
//! racing writers and removers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wheelcache::{Cache, Expiry, ManualClock, RemovalCause};

const SEC: Duration = Duration::from_secs(1);

/// What a read was asked: `(key, read_at, time left, last_modified_at)`.
type Reads = Arc<Mutex<Vec<(u32, Instant, Option<Duration>, Instant)>>>;

/// Creation: `value` seconds (0: no deadline). Reads: the answer in `answer` (`None`
/// inside: keep the time left). Records every read question.
struct OnRead {
    reads: Reads,
    answer: Arc<Mutex<Option<Option<Duration>>>>,
}

impl Expiry<u32, u64> for OnRead {
    fn expire_after_create(&self, _: &u32, value: &u64, _: Instant) -> Option<Duration> {
        (*value != 0).then(|| Duration::from_secs(*value))
    }

    fn expire_after_read(
        &self,
        key: &u32,
        _: &u64,
        read_at: Instant,
        left: Option<Duration>,
        modified: Instant,
    ) -> Option<Duration> {
        self.reads
            .lock()
            .unwrap()
            .push((*key, read_at, left, modified));
        self.answer.lock().unwrap().unwrap_or(left)
    }
}

struct Setup {
    cache: Cache<u32, u64>,
    clock: ManualClock,
    reads: Reads,
    answer: Arc<Mutex<Option<Option<Duration>>>>,
    heard: Arc<Mutex<Vec<(u32, RemovalCause)>>>,
}

impl Setup {
    fn new(ttl: Option<Duration>) -> Self {
        let clock = ManualClock::new();
        let reads: Reads = Arc::default();
        let answer = Arc::new(Mutex::new(None));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heard);
        let mut builder = Cache::builder()
            .expire_after(OnRead {
                reads: Arc::clone(&reads),
                answer: Arc::clone(&answer),
            })
            .eviction_listener(move |k, _, cause| log.lock().unwrap().push((*k, cause)))
            .clock(clock.clone());
        if let Some(ttl) = ttl {
            builder = builder.time_to_live(ttl);
        }
        Self {
            cache: builder.build(),
            clock,
            reads,
            answer,
            heard,
        }
    }

    fn answer(&self, a: Option<Duration>) {
        *self.answer.lock().unwrap() = Some(a);
    }

    fn heard(&self) -> Vec<(u32, RemovalCause)> {
        self.heard.lock().unwrap().clone()
    }
}

#[test]
fn a_read_is_told_the_instants_and_the_time_left() {
    let s = Setup::new(None);
    let t0 = Instant::now();
    s.clock.advance(3 * SEC);
    s.cache.insert(1, 10);
    s.clock.advance(4 * SEC);
    assert_eq!(s.cache.get(&1), Some(10));
    let reads = s.reads.lock().unwrap().clone();
    assert_eq!(reads.len(), 1);
    let (key, read_at, left, modified) = reads[0];
    assert_eq!(key, 1);
    assert_eq!(
        left,
        Some(6 * SEC),
        "10 s from the write at 3 s, read at 7 s"
    );
    assert_eq!(
        read_at - modified,
        4 * SEC,
        "exactly the manual time between"
    );
    // The origin is the build's Instant less the clock's zero: within this test's span.
    let origin = modified - 3 * SEC;
    assert!(origin >= t0 - SEC && origin <= Instant::now(), "{origin:?}");
}

#[test]
fn only_reads_that_count_as_an_access_ask() {
    let s = Setup::new(None);
    s.cache.insert(1, 10);
    let asked = || s.reads.lock().unwrap().len();
    assert!(s.cache.contains_key(&1));
    assert_eq!(s.cache.iter().count(), 1);
    assert_eq!(s.cache.pin().iter().count(), 1);
    assert!(s.cache.pin().contains_key(&1));
    assert_eq!(asked(), 0, "contains_key and iteration are not reads");
    assert_eq!(s.cache.get(&1), Some(10));
    assert_eq!(s.cache.pin().get(&1), Some(&10));
    assert_eq!(s.cache.get_with(1, || unreachable!()), 10);
    assert_eq!(s.cache.get_or_insert_with(1, || unreachable!()), 10);
    assert_eq!(asked(), 4);
    assert_eq!(s.cache.get(&2), None, "a miss asks nothing");
    assert_eq!(asked(), 4);
}

#[test]
fn a_read_extends_the_deadline_and_maintenance_keeps_the_entry() {
    let s = Setup::new(None);
    s.cache.insert(1, 10);
    s.clock.advance(8 * SEC);
    s.answer(Some(20 * SEC));
    assert_eq!(s.cache.get(&1), Some(10)); // now due at 28 s
    *s.answer.lock().unwrap() = None; // later reads keep the time left
    s.clock.advance(12 * SEC); // 20 s: past the creation deadline
    s.cache.run_pending_tasks();
    assert_eq!(
        s.cache.len(),
        1,
        "the wheel re-filed it at the later deadline"
    );
    assert_eq!(s.cache.get(&1), Some(10));
    s.clock.advance(8 * SEC - Duration::from_nanos(1));
    assert_eq!(s.cache.get(&1), Some(10));
    s.clock.advance(Duration::from_nanos(1));
    assert_eq!(s.cache.get(&1), None, "due exactly 20 s after the read");
    s.cache.run_pending_tasks();
    assert_eq!(s.cache.len(), 0);
    assert_eq!(s.heard(), [(1, RemovalCause::Expired)]);
}

#[test]
fn a_read_that_shortens_the_deadline_gets_the_entry_removed_on_time() {
    let s = Setup::new(None);
    s.cache.insert(1, 0); // no deadline at all
    s.cache.insert(2, 3600);
    s.cache.run_pending_tasks(); // 2 is filed in the wheel at one hour
    s.answer(Some(2 * SEC));
    assert_eq!(s.cache.get(&1), Some(0));
    assert_eq!(s.cache.get(&2), Some(3600));
    *s.answer.lock().unwrap() = None;
    s.clock.advance(2 * SEC);
    assert_eq!(s.cache.get(&1), None);
    assert_eq!(s.cache.get(&2), None);
    // Not left for an hour, or for ever: the reads asked for a re-file.
    s.cache.run_pending_tasks();
    assert_eq!(s.cache.len(), 0);
    let mut heard = s.heard();
    heard.sort_by_key(|h| h.0);
    assert_eq!(
        heard,
        [(1, RemovalCause::Expired), (2, RemovalCause::Expired)]
    );
}

#[test]
fn a_read_can_take_the_deadline_away_and_another_can_bring_one_back() {
    let s = Setup::new(None);
    s.cache.insert(1, 5);
    s.cache.run_pending_tasks();
    s.answer(None); // no deadline from now on
    assert_eq!(s.cache.get(&1), Some(5));
    *s.answer.lock().unwrap() = None;
    s.clock.advance(Duration::from_secs(1_000_000));
    s.cache.run_pending_tasks(); // the wheel lets it go at 5 s, live
    assert_eq!(s.cache.len(), 1);
    assert_eq!(s.cache.get(&1), Some(5));
    s.answer(Some(SEC));
    assert_eq!(s.cache.get(&1), Some(5));
    s.clock.advance(SEC);
    s.cache.run_pending_tasks();
    assert_eq!(
        s.cache.len(),
        0,
        "filed again by the read that gave a deadline"
    );
    assert_eq!(s.heard(), [(1, RemovalCause::Expired)]);
}

#[test]
fn the_ttl_caps_a_read_answer() {
    let s = Setup::new(Some(10 * SEC));
    s.cache.insert(1, 0);
    s.clock.advance(5 * SEC);
    s.answer(Some(3600 * SEC));
    assert_eq!(s.cache.get(&1), Some(0));
    assert_eq!(
        s.reads.lock().unwrap()[0].2,
        None,
        "the policy's own time left (none); the TTL's 5 s are not part of it"
    );
    s.answer(None);
    s.clock.advance(5 * SEC);
    assert_eq!(
        s.cache.get(&1),
        None,
        "10 s from the write, whatever the reads say"
    );
}

#[test]
fn a_zero_answer_returns_the_value_and_the_entry_lapses() {
    let s = Setup::new(None);
    s.cache.insert(1, 100);
    s.cache.run_pending_tasks();
    s.answer(Some(Duration::ZERO));
    assert_eq!(
        s.cache.get(&1),
        Some(100),
        "the read that asked gets the value"
    );
    assert_eq!(s.cache.get(&1), None);
    s.cache.run_pending_tasks();
    assert_eq!(s.cache.len(), 0);
    assert_eq!(s.heard(), [(1, RemovalCause::Expired)]);
}

/// An update is a new write: its reads are told the update's time as last modified.
#[test]
fn an_update_is_the_last_modification() {
    let s = Setup::new(None);
    s.cache.insert(1, 100);
    s.clock.advance(5 * SEC);
    s.cache.insert(1, 100);
    s.clock.advance(2 * SEC);
    assert_eq!(s.cache.get(&1), Some(100));
    let (_, read_at, left, modified) = s.reads.lock().unwrap()[0];
    assert_eq!(read_at - modified, 2 * SEC);
    assert_eq!(left, Some(93 * SEC), "the update kept the time left");
}

/// Counts every question; overrides nothing but creation.
struct CreateOnly(Arc<AtomicUsize>);

impl Expiry<u32, u64> for CreateOnly {
    fn expire_after_create(&self, _: &u32, _: &u64, _: Instant) -> Option<Duration> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Some(10 * SEC)
    }
}

#[test]
fn a_policy_without_a_read_method_keeps_deadlines_where_writes_put_them() {
    let clock = ManualClock::new();
    let created = Arc::new(AtomicUsize::new(0));
    let cache: Cache<u32, u64> = Cache::builder()
        .expire_after(CreateOnly(Arc::clone(&created)))
        .clock(clock.clone())
        .build();
    cache.insert(1, 1);
    for _ in 0..9 {
        clock.advance(SEC);
        assert_eq!(cache.get(&1), Some(1));
    }
    clock.advance(SEC);
    assert_eq!(cache.get(&1), None, "reads did not move it");
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

/// A policy that reads the cache itself: its read question for its own key and another,
/// its creation question for another.
struct Rereads {
    cache: Arc<std::sync::OnceLock<Cache<u32, u64>>>,
    asked: Arc<AtomicUsize>,
}

impl Expiry<u32, u64> for Rereads {
    fn expire_after_create(&self, key: &u32, _: &u64, _: Instant) -> Option<Duration> {
        if let Some(cache) = self.cache.get() {
            let _ = cache.get(&(key + 1)); // a read inside a write's question
        }
        None
    }

    fn expire_after_read(
        &self,
        key: &u32,
        _: &u64,
        _: Instant,
        left: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let cache = self.cache.get().unwrap();
        assert_eq!(cache.get(key), Some(u64::from(*key)));
        let _ = cache.get(&(key + 1));
        left
    }
}

#[test]
fn reads_the_policy_makes_are_not_asked_about() {
    let handle = Arc::new(std::sync::OnceLock::new());
    let asked = Arc::new(AtomicUsize::new(0));
    let cache: Cache<u32, u64> = Cache::builder()
        .expire_after(Rereads {
            cache: Arc::clone(&handle),
            asked: Arc::clone(&asked),
        })
        .clock(ManualClock::new())
        .build();
    assert!(handle.set(cache.clone()).is_ok());
    cache.insert(2, 2);
    cache.insert(1, 1); // its creation question reads 2
    assert_eq!(
        asked.load(Ordering::SeqCst),
        0,
        "reads inside a policy are not asked"
    );
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.get(&2), Some(2));
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "one question per outer read"
    );
}

/// Panics on reads of key 13.
struct PanicsOn13;

impl Expiry<u32, u64> for PanicsOn13 {
    fn expire_after_create(&self, _: &u32, _: &u64, _: Instant) -> Option<Duration> {
        Some(10 * SEC)
    }

    fn expire_after_read(
        &self,
        key: &u32,
        _: &u64,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        assert_ne!(*key, 13, "no reads of 13");
        Some(100 * SEC)
    }
}

#[test]
fn a_panicking_read_policy_propagates_and_changes_nothing() {
    let clock = ManualClock::new();
    let cache: Cache<u32, u64> = Cache::builder()
        .expire_after(PanicsOn13)
        .clock(clock.clone())
        .build();
    cache.insert(13, 13);
    cache.insert(1, 1);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.get(&13)));
    assert!(panicked.is_err());
    assert_eq!(
        cache.get(&1),
        Some(1),
        "the cache still works, and reads ask again"
    );
    clock.advance(10 * SEC);
    assert_eq!(cache.get(&13), None, "13 kept its deadline");
    assert_eq!(cache.get(&1), Some(1), "1 was moved to 100 s");
    assert!(
        !crossbeam_epoch::is_pinned(),
        "the panic left no pin behind"
    );
}

/// Answers that move deadlines both ways (none, zero, up to 96 ms), in a fixed sequence.
struct Churn(std::sync::atomic::AtomicU64);

impl Expiry<u32, (u64, Counted)> for Churn {
    fn expire_after_create(&self, _: &u32, v: &(u64, Counted), _: Instant) -> Option<Duration> {
        Some(Duration::from_millis(1 + v.0 % 50))
    }

    fn expire_after_read(
        &self,
        key: &u32,
        v: &(u64, Counted),
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        let n = u64::from(*key) ^ v.0 ^ self.0.fetch_add(1, Ordering::Relaxed);
        match n % 4 {
            0 => None,
            1 => Some(Duration::ZERO),
            _ => Some(Duration::from_millis(n % 97)),
        }
    }
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Readers that move deadlines both ways race writers, removers and maintenance, in one
/// segment (so its re-file ring overflows and readers serve their own requests). Every
/// value is dropped exactly once, and once the clock passes every deadline maintenance
/// leaves nothing behind.
#[test]
fn readers_moving_deadlines_race_writers_and_removers() {
    let clock = ManualClock::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let cache: Cache<u32, (u64, Counted)> = Cache::builder()
        .expire_after(Churn(Default::default()))
        .segments(1)
        .clock(clock.clone())
        .build();
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let cache = &cache;
            let clock = &clock;
            let drops = &drops;
            let made = &made;
            scope.spawn(move || {
                for i in 0..if cfg!(miri) { 150 } else { 4_000u64 } {
                    let key = ((i * 7 + t * 13) % 64) as u32;
                    match (i + t) % 8 {
                        0 | 1 => {
                            made.fetch_add(1, Ordering::SeqCst);
                            cache.insert(key, (i, Counted(Arc::clone(drops))));
                        }
                        2 => {
                            cache.invalidate(&key);
                        }
                        3 if t == 0 => clock.advance(Duration::from_micros(700)),
                        4 if t == 1 => cache.run_pending_tasks(),
                        // Borrowed reads: a clone's drop would be counted.
                        _ => {
                            let pinned = cache.pin();
                            let _ = pinned.get(&key).map(|v| v.0);
                            let _ = pinned.get(&(key ^ 1)).map(|v| v.0);
                        }
                    }
                }
            });
        }
    });
    // Every deadline (at most 97 ms from a read, 50 ms from a write) has passed, except
    // for entries a read left with none: those are still there, live.
    clock.advance(Duration::from_secs(1));
    let mut rounds = 0;
    loop {
        cache.run_pending_tasks();
        // Anything still listed has no deadline (a read answered `None`) and stays; the
        // rest is gone once maintenance frees the replaced and removed values.
        let listed = cache.pin().iter().count();
        if drops.load(Ordering::SeqCst) + listed == made.load(Ordering::SeqCst) || rounds == 50 {
            break;
        }
        rounds += 1;
    }
    let listed = cache.pin().iter().count();
    assert_eq!(cache.len(), listed, "no lapsed entry is left stored");
    assert_eq!(
        drops.load(Ordering::SeqCst) + listed,
        made.load(Ordering::SeqCst),
        "every value dropped once, or still live in the cache"
    );
    drop(cache);
    assert_eq!(drops.load(Ordering::SeqCst), made.load(Ordering::SeqCst));
}

/// An over-aligned value (the node's alignment, hence its layout, changes with it).
#[derive(Clone, Debug, PartialEq)]
#[repr(align(128))]
struct Wide(u64);

/// Halves the time left on every read.
struct Halves;

impl Expiry<u32, Wide> for Halves {
    fn expire_after_create(&self, _: &u32, v: &Wide, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(v.0))
    }

    fn expire_after_read(
        &self,
        _: &u32,
        _: &Wide,
        _: Instant,
        left: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        left.map(|l| l / 2)
    }
}

/// Over-aligned values in caches with a policy, with and without a bound and a
/// time-to-idle: the timer, the extension and the node are found and freed right (Miri
/// checks the layouts), and the policy's answers land.
#[test]
fn over_aligned_values_keep_their_timers() {
    for bounded in [false, true] {
        let clock = ManualClock::new();
        let mut builder = Cache::builder().expire_after(Halves).clock(clock.clone());
        if bounded {
            builder = builder
                .max_capacity(100)
                .time_to_idle(Duration::from_secs(3600));
        }
        let cache: Cache<u32, Wide> = builder.build();
        for k in 0..8 {
            cache.insert(k, Wide(64));
        }
        cache.run_pending_tasks();
        assert_eq!(cache.get(&1), Some(Wide(64))); // now 32 s left
        assert_eq!(cache.pin().get(&2), Some(&Wide(64)));
        assert!(cache.invalidate(&3));
        clock.advance(32 * SEC);
        cache.run_pending_tasks();
        assert_eq!((cache.get(&1), cache.get(&2)), (None, None), "{bounded}");
        assert_eq!(cache.get(&4), Some(Wide(64)));
        assert_eq!(cache.len(), 5, "1, 2 re-filed and removed; 3 invalidated");
    }
}
