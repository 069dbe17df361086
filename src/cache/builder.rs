//! Configuring a cache.

use super::listener::Listener;
#[cfg(doc)]
use super::Cache;
use super::{Expiry, Weigher};
use crate::clock::Clock;
#[cfg(doc)]
use crate::clock::MonotonicClock;
use crate::entry::RemovalCause;
use crate::table::Tuning;
use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// The most segments a cache may have. Each costs about 6.3 KiB even when empty (see
/// [`CacheBuilder::segments`]), so a cache with this many takes about 400 MiB before its
/// first entry.
pub const MAX_SEGMENTS: usize = 1 << 16;

/// The least share of a bound a segment is given: a bounded cache has at most
/// `max_capacity / MIN_SEGMENT_SHARE` segments (see [`CacheBuilder::segments`]).
pub const MIN_SEGMENT_SHARE: u64 = 16;

/// The largest [`CacheBuilder::initial_capacity`] honoured; larger requests are clamped to
/// it (the tables still grow on demand past it). Pre-sizing allocates the tables at once,
/// about 15 bytes per entry of capacity, so this bounds that allocation to about 64 MiB.
pub const MAX_INITIAL_CAPACITY: usize = 1 << 22;

/// Builds a [`Cache`]. Every setting has a default; see each method.
pub struct CacheBuilder<K, V, S = ahash::RandomState> {
    pub(super) ttl: Option<Duration>,
    pub(super) tti: Option<Duration>,
    pub(super) max_capacity: Option<u64>,
    pub(super) weigher: Option<Weigher<K, V>>,
    pub(super) expiry: Option<super::expiry::BoxedExpiry<K, V>>,
    pub(super) listener: Option<Listener<K, V>>,
    pub(super) reaper: Option<Duration>,
    pub(super) clock: Option<Box<dyn Clock>>,
    pub(super) tick: Duration,
    pub(super) segments: Option<usize>,
    pub(super) capacity: usize,
    pub(super) tuning: Tuning,
    pub(super) name: Option<Arc<str>>,
    pub(super) hasher: S,
    pub(super) _types: PhantomData<fn(K, V)>,
}

impl<K, V, S> fmt::Debug for CacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("time_to_live", &self.ttl)
            .field("time_to_idle", &self.tti)
            .field("max_capacity", &self.max_capacity)
            .field("weigher", &self.weigher.is_some())
            .field("expire_after", &self.expiry.is_some())
            .field("eviction_listener", &self.listener.is_some())
            .field("background_reaper", &self.reaper)
            .field("tick", &self.tick)
            .field("segments", &self.segments)
            .field("initial_capacity", &self.capacity)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K, V> CacheBuilder<K, V, ahash::RandomState> {
    /// The defaults: no TTL, no time-to-idle, no capacity bound, no weigher, no listener,
    /// no reaper, the [`MonotonicClock`], 1 ms ticks, four segments per available core (fewer
    /// for a small bound: see [`segments`](Self::segments)), no
    /// pre-sizing, and a randomly seeded ahash hasher. The same as
    /// [`Cache::builder`] and `CacheBuilder::default()`.
    ///
    /// ```
    /// use wheelcache::{Cache, CacheBuilder};
    ///
    /// let policy = CacheBuilder::<u32, u32>::new().build().policy();
    /// assert_eq!(policy.max_capacity(), None);
    /// assert_eq!(policy.time_to_live(), None);
    /// assert_eq!(policy.time_to_idle(), None);
    /// assert!(policy.num_segments().is_power_of_two());
    /// ```
    pub fn new() -> Self {
        Self {
            ttl: None,
            tti: None,
            max_capacity: None,
            weigher: None,
            expiry: None,
            listener: None,
            reaper: None,
            clock: None,
            tick: Duration::from_millis(1),
            segments: None,
            capacity: 0,
            tuning: Tuning::DEFAULT,
            name: None,
            hasher: ahash::RandomState::new(),
            _types: PhantomData,
        }
    }
}

impl<K, V> Default for CacheBuilder<K, V, ahash::RandomState> {
    /// The same as [`CacheBuilder::new`]: every setting at its default.
    ///
    /// ```
    /// use wheelcache::{Cache, CacheBuilder};
    ///
    /// let cache: Cache<&str, u32> = CacheBuilder::default().build();
    /// cache.insert("a", 1);
    /// assert_eq!(cache.get("a"), Some(1));
    /// assert_eq!(cache.time_to_live(), None);
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> CacheBuilder<K, V, S> {
    /// The TTL [`Cache::insert`] gives entries (and the value stores of
    /// [`get_or_insert_with`](Cache::get_or_insert_with), the loads and
    /// [`compute`](Cache::compute)): each expires that long after it was written, however
    /// often it is read. Default: none (entries stay until removed, evicted or idle).
    /// [`Cache::insert_with_ttl`] sets an entry's own TTL instead. Zero means the values
    /// those calls store are not stored at all (see [`Cache::insert_with_ttl`]);
    /// `Duration::MAX` means no expiry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<&str, u32> = Cache::builder()
    ///     .time_to_live(Duration::from_secs(30))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.insert("a", 1);
    /// cache.insert_with_ttl("b", 2, Duration::from_secs(60)); // its own TTL
    /// clock.advance(Duration::from_secs(29));
    /// assert_eq!(cache.get("a"), Some(1)); // reads do not extend a TTL...
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.get("a"), None); // ...so it is gone 30 s after the insert
    /// assert_eq!(cache.get("b"), Some(2));
    /// ```
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Expires an entry once it has been neither read nor written for `tti` (at least that
    /// long, and at most two ticks longer). With a TTL too, whichever comes first applies,
    /// and [`Cache::insert_with_ttl`] still caps that one entry.
    ///
    /// What restarts an entry's idle time:
    /// - reads that find it live: [`Cache::get`], [`Pinned::get`](crate::Pinned::get),
    ///   [`Pinned::get_key_value`](crate::Pinned::get_key_value), the lookup of
    ///   [`get_or_insert_with`](Cache::get_or_insert_with), and the lookup of
    ///   [`get_with`](Cache::get_with), [`try_get_with`](Cache::try_get_with) and
    ///   [`optionally_get_with`](Cache::optionally_get_with);
    /// - every write of it (an insert, a load or a [`compute`](Cache::compute) that stores
    ///   a value: the new entry starts idle at the write).
    ///
    /// What does not: [`contains_key`](Cache::contains_key) (on the cache or a
    /// [`Pinned`](crate::Pinned)), iteration ([`Cache::iter`],
    /// [`Pinned::iter`](crate::Pinned::iter)), [`retain`](Cache::retain) and
    /// [`invalidate_entries_if`](Cache::invalidate_entries_if), and `compute`'s look at the
    /// entry when it leaves it as it is.
    ///
    /// This is not the same list as the reads that count as hits or misses in
    /// [`Cache::stats`]: `get_or_insert_with`'s lookup restarts the idle time but counts as
    /// neither (see [`CacheStats`](crate::CacheStats)).
    ///
    /// A zero `tti` stores nothing (every value goes straight to the listener as
    /// `Expired`); one too large for the clock's range means no idle expiry. A read that
    /// races the moment an entry lapses may or may not extend it.
    ///
    /// It costs an entry with no TTL nothing: its idle tick lives in bits of the entry's
    /// flags word that only a TTL would use. An entry with a TTL too keeps the tick in 8
    /// bytes more (with an extension: see [`max_capacity`](Self::max_capacity)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<&str, u32> = Cache::builder()
    ///     .time_to_idle(Duration::from_secs(10))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.insert("read", 1);
    /// cache.insert("loaded", 2);
    /// cache.insert("checked", 3);
    /// clock.advance(Duration::from_secs(6));
    /// assert_eq!(cache.get("read"), Some(1)); // restarts its idle time
    /// assert_eq!(cache.get_or_insert_with("loaded", || 0), 2); // so does this lookup
    /// assert!(cache.contains_key("checked")); // this does not
    /// clock.advance(Duration::from_secs(6)); // 12 s after the inserts, 6 s after the reads
    /// assert!(!cache.contains_key("checked"));
    /// assert_eq!(cache.get("read"), Some(1));
    /// assert_eq!(cache.get("loaded"), Some(2));
    /// assert_eq!(cache.time_to_idle(), Some(Duration::from_secs(10)));
    /// ```
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// Bounds the cache: at most `max` entries, or with a [`weigher`](Self::weigher), a
    /// total weight of at most `max`. When an insert takes the total over the bound,
    /// entries are evicted (the listener hears [`RemovalCause::Evicted`], and they count in
    /// [`CacheStats::evictions`](crate::CacheStats::evictions)) by an S3-FIFO policy that
    /// keeps entries that are read again and lets one-off keys (a scan) pass through.
    ///
    /// The bound is global, not divided among segments: any entry up to `max` in weight
    /// can be stored. Eviction keeps the segments' queues even: a segment gives up entries
    /// only while it holds more than its share (`max` over the number of segments), so
    /// concurrent writers do not shrink some segments for others. After
    /// [`Cache::run_pending_tasks`] with no concurrent writers,
    /// [`Cache::weighted_size`] is at most `max`; while writers run it may exceed it by a
    /// sixteenth (past that, writers wait for eviction) plus the inserts in flight, at most
    /// a maintenance turn's (16) per writer (the measured worst case with 8 inserters is
    /// in the README). Lapsed entries leave before live ones are evicted, whichever
    /// segment holds them: a write over the bound first expires what may have lapsed in
    /// the other segments, and while the excess is within the sixteenth it evicts nothing
    /// if one of them is being maintained by another thread or has more work due than a
    /// turn's budget. An entry heavier than `max` is never stored: it
    /// goes straight to the listener as `Evicted` (so `max_capacity(0)` stores nothing
    /// but zero-weight entries).
    ///
    /// Each entry of a bounded cache carries a 16-byte extension (its queue links), 8
    /// bytes more if it weighs other than 1 (and 8 for its idle tick if it has both a TTL
    /// and a time-to-idle), and its share of the policy's memory: the ghost (8-bit
    /// fingerprints of recently evicted keys, 1 byte a slot, sized to about the segment's
    /// entries) and a frequency sketch. With a bound and a time-to-idle, an entry costs 64
    /// bytes beyond its `K` and `V` in all (measured
    /// by `cargo test --release --test memory -- --nocapture`). A read of a hot entry
    /// writes nothing.
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::builder().max_capacity(100).build();
    /// for i in 0..200 {
    ///     cache.insert(i, i);
    /// }
    /// cache.run_pending_tasks();
    /// assert!(cache.weighted_size() <= 100);
    /// assert_eq!(cache.len() as u64 + cache.stats().evictions, 200);
    /// assert_eq!(cache.policy().max_capacity(), Some(100));
    ///
    /// let none: Cache<u32, u32> = Cache::builder().max_capacity(0).build();
    /// none.insert(1, 1); // heavier than the bound: never stored
    /// assert_eq!(none.get(&1), None);
    /// assert_eq!(none.stats().evictions, 1);
    /// ```
    pub fn max_capacity(mut self, max: u64) -> Self {
        self.max_capacity = Some(max);
        self
    }

    /// Weighs entries for [`max_capacity`](Self::max_capacity), which then bounds their
    /// total weight rather than their number. It runs on the inserting thread before
    /// anything is changed (unpinned, no lock held); if it panics, the insert does not
    /// happen and the panic propagates. A weight of 0 is allowed: such an entry never
    /// counts against the bound and is never evicted, but still leaves by TTL, TTI or
    /// removal.
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, String> = Cache::builder()
    ///     .max_capacity(10) // bytes of value in all
    ///     .weigher(|_k, v: &String| v.len() as u32)
    ///     .build();
    /// cache.insert(1, "four".to_string());
    /// cache.insert(2, "three".to_string());
    /// assert_eq!(cache.weighted_size(), 9);
    /// cache.insert(3, "eleven long".to_string()); // weighs more than the whole bound
    /// assert_eq!(cache.get(&3), None);
    /// assert_eq!(cache.weighted_size(), 9);
    /// ```
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// Decides each entry's lifetime when it is written (see [`Expiry`]): the entry
    /// expires at the earlier of the TTL and the policy's answer, and the time-to-idle
    /// still applies. [`Cache::insert_with_ttl`] does not ask the policy. With a policy,
    /// `insert` is a compare-and-swap of the entry (as [`Cache::compute`] is), so the
    /// policy may be asked more than once under contention and must be quick; it runs
    /// pinned there (see [`Expiry`] for where it runs).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use wheelcache::{Cache, Expiry, ManualClock};
    ///
    /// /// Values say how many seconds they may live.
    /// struct SecondsInValue;
    /// impl Expiry<&'static str, u64> for SecondsInValue {
    ///     fn expire_after_create(&self, _: &&str, secs: &u64, _: Instant) -> Option<Duration> {
    ///         Some(Duration::from_secs(*secs))
    ///     }
    /// }
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<&str, u64> = Cache::builder()
    ///     .time_to_live(Duration::from_secs(60)) // caps every entry
    ///     .expire_after(SecondsInValue)
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.insert("short", 5);
    /// cache.insert("long", 3_600);
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(cache.get("short"), None);
    /// assert_eq!(cache.get("long"), Some(3_600));
    /// clock.advance(Duration::from_secs(55)); // the TTL is earlier than an hour
    /// assert_eq!(cache.get("long"), None);
    /// ```
    pub fn expire_after(mut self, expiry: impl Expiry<K, V>) -> Self {
        self.expiry = Some(super::expiry::boxed(expiry));
        self
    }

    /// Called once for every entry that leaves the cache (not for entries still present
    /// when the cache is dropped), on the removing thread, after the operation has released
    /// every internal lock and its epoch pin: it may be slow, and it may call back into the
    /// cache. A panic in it is caught and discarded.
    ///
    /// A listener never nests within itself: departures from this cache caused inside its
    /// listener (a write-back that replaces an entry, a `remove`, the maintenance turn a
    /// write takes, a `run_pending_tasks`) are delivered after it returns, not inside it.
    /// Another cache written from inside it (a second tier fed by this one's evictions) is
    /// not affected: it maintains itself and tells its own listener at once.
    ///
    /// A listener that captures a clone of its own cache keeps the cache, and its reaper,
    /// alive for ever (the cache owns the listener, which owns the cache). Capture a handle
    /// you can take out instead, such as an `Arc<OnceLock<Cache<K, V>>>` or a `Weak` of your
    /// own state, or send departures over a channel to a task that holds the cache.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock, RemovalCause};
    ///
    /// let heard = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&heard);
    /// let clock = ManualClock::new();
    /// let cache: Cache<&str, u32> = Cache::builder()
    ///     .clock(clock.clone())
    ///     .eviction_listener(move |k, v, cause| log.lock().unwrap().push((*k, *v, cause)))
    ///     .build();
    /// cache.insert("a", 1);
    /// cache.insert("a", 2); // replaces 1
    /// cache.remove("a");
    /// cache.insert_with_ttl("b", 3, Duration::from_secs(1));
    /// clock.advance(Duration::from_secs(1));
    /// cache.run_pending_tasks(); // "b" expires
    /// assert_eq!(*heard.lock().unwrap(), [
    ///     ("a", 1, RemovalCause::Replaced),
    ///     ("a", 2, RemovalCause::Explicit),
    ///     ("b", 3, RemovalCause::Expired),
    /// ]);
    /// ```
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Runs a background thread doing one maintenance round per `interval` (at least
    /// 1 ms), so a cache that goes quiet still expires entries and returns memory. The
    /// thread holds no strong reference between rounds, and the drop of the cache's last
    /// handle stops it: that drop waits for a round in progress to end (a bounded round,
    /// but one that runs the listener for what it expires), then frees the cache itself,
    /// so every entry is freed before `drop` returns. It waits at most 1 s: past that (a
    /// listener blocked on a lock the dropping thread holds), or for a last handle dropped
    /// by the listener itself, the round's end frees the cache on the reaper thread.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock, RemovalCause};
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let clock = ManualClock::new();
    /// let cache: Cache<u32, u32> = Cache::builder()
    ///     .clock(clock.clone())
    ///     .eviction_listener(move |k, _v, cause| {
    ///         let _ = tx.send((*k, cause));
    ///     })
    ///     .background_reaper(Duration::from_millis(1))
    ///     .build();
    /// cache.insert_with_ttl(1, 10, Duration::from_secs(1));
    /// clock.advance(Duration::from_secs(1));
    /// // No further call on the cache: the reaper finds the entry due and removes it.
    /// let heard = rx.recv_timeout(Duration::from_secs(30));
    /// assert_eq!(heard, Ok((1, RemovalCause::Expired)));
    /// assert_eq!(cache.len(), 0);
    /// ```
    pub fn background_reaper(mut self, interval: Duration) -> Self {
        self.reaper = Some(interval);
        self
    }

    /// The time source (default [`MonotonicClock`]); [`ManualClock`](crate::ManualClock)
    /// for tests, or any [`Clock`] of your own. Every TTL, time-to-idle and tick is
    /// measured on it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<u32, u32> = Cache::builder().clock(clock.clone()).build();
    /// cache.insert_with_ttl(1, 10, Duration::from_secs(3600));
    /// std::thread::sleep(Duration::from_millis(2)); // real time does not matter...
    /// assert_eq!(cache.get(&1), Some(10));
    /// clock.advance(Duration::from_secs(3600)); // ...only the clock's
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// The wheel's resolution (default 1 ms). Entries expire at most one tick late. Ticks
    /// shorter than [`MIN_TICK`](crate::MIN_TICK) (1 us; zero included) are raised to it;
    /// deadlines then reach 2^55 ticks past the clock's origin (1,142 years at 1 us, 1.14
    /// million at 1 ms), and TTLs reaching past that never expire.
    ///
    /// A TTL is rounded up to whole ticks past the clock's reading, so no entry expires
    /// early:
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<u32, u32> = Cache::builder()
    ///     .tick(Duration::from_secs(1))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.insert_with_ttl(1, 10, Duration::from_millis(1500)); // due at tick 2
    /// clock.advance(Duration::from_millis(1900));
    /// assert_eq!(cache.get(&1), Some(10)); // past its TTL, within the tick
    /// clock.advance(Duration::from_millis(100));
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// A name for the cache, for logs and dashboards: [`Cache::name`] returns it and `Debug`
    /// prints it (moka's `name`). Default: none.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::builder().name("sessions").build();
    /// assert_eq!(cache.name(), Some("sessions"));
    /// assert!(format!("{cache:?}").contains("sessions"));
    /// ```
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The number of segments, rounded up to a power of two and clamped to
    /// `1..=`[`MAX_SEGMENTS`] (zero means one). Default: four per available core.
    ///
    /// A bound ([`max_capacity`](Self::max_capacity)) lowers it further, to the largest
    /// power of two no greater than the bound over 16 ([`MIN_SEGMENT_SHARE`]; at least
    /// one), explicit or default: each segment evicts from its own queues, for its share
    /// of the bound, and a share of a few entries has no room for S3-FIFO's probation, so
    /// a new entry was evicted by its own insert (a bound of 4 over 8 segments lost 48%
    /// of new entries at once; of 100 over 256 segments, 67%).
    ///
    /// Each segment costs about 6.3 KiB even when empty, allocated at `build`: its wheel's
    /// slot heads (5 KiB), its smallest table and its hand-off (`tests/memory.rs` prints
    /// it). The default costs ~25 KiB a core; [`MAX_SEGMENTS`] ~400 MiB.
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::builder().segments(5).build();
    /// assert_eq!(cache.policy().num_segments(), 8);
    /// let one: Cache<u32, u32> = Cache::builder().segments(0).build();
    /// assert_eq!(one.policy().num_segments(), 1);
    /// let small: Cache<u32, u32> = Cache::builder().segments(64).max_capacity(100).build();
    /// assert_eq!(small.policy().num_segments(), 4); // 100 / 16 = 6, down to 4
    /// ```
    pub fn segments(mut self, segments: usize) -> Self {
        self.segments = Some(segments);
        self
    }

    /// Pre-sizes the tables for about this many entries (default: small, grown on demand),
    /// clamped to [`MAX_INITIAL_CAPACITY`]. The tables are allocated when the cache is
    /// built (about 15 bytes per entry of capacity), not lazily, and never shrink below
    /// that size (as a `HashMap` built `with_capacity` does not); without pre-sizing they
    /// shrink as entries leave.
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::builder().initial_capacity(10_000).build();
    /// assert!(cache.is_empty()); // room, not entries
    /// for i in 0..10_000 {
    ///     cache.insert(i, i);
    /// }
    /// assert_eq!(cache.len(), 10_000);
    /// ```
    pub fn initial_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.min(MAX_INITIAL_CAPACITY);
        self
    }

    /// Internal, for this crate's own tests (behind the `internal-tiny-tables` feature, not
    /// part of the API): tables of one group that grow past half of it, so model checks
    /// and small tests cross migrations (grows and shrinks) in a handful of operations.
    #[cfg(feature = "internal-tiny-tables")]
    #[doc(hidden)]
    pub fn tiny_tables_for_tests(mut self) -> Self {
        self.tuning = Tuning::TINY;
        self
    }

    /// The hasher (default: `ahash::RandomState`, seeded randomly per cache). It picks a
    /// key's segment and slot, so it should resist keys an adversary can choose.
    ///
    /// The cache mixes the hash before using it (one multiply), so hashers that leave
    /// most bits alike work as well as good ones: an identity hasher on integer keys
    /// (`nohash_hasher`), or one whose hashes differ only in their high bits. Keys that
    /// share one *whole* hash cannot be told apart by any table: each operation on them
    /// walks all of them (time linear in their number, never a hang, memory still
    /// proportional to the entries), and past about 65,000 such keys in one segment an
    /// insert is refused: nothing is stored and the listener hears the value as
    /// [`Evicted`](crate::RemovalCause::Evicted), as for a value heavier than the bound.
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    /// use wheelcache::{Cache, CacheBuilder};
    ///
    /// let cache: Cache<String, u32, RandomState> =
    ///     CacheBuilder::new().hasher(RandomState::new()).build();
    /// cache.insert("a".to_string(), 1);
    /// assert_eq!(cache.get("a"), Some(1));
    /// ```
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> CacheBuilder<K, V, S2> {
        CacheBuilder {
            ttl: self.ttl,
            tti: self.tti,
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            expiry: self.expiry,
            listener: self.listener,
            reaper: self.reaper,
            clock: self.clock,
            tick: self.tick,
            segments: self.segments,
            capacity: self.capacity,
            tuning: self.tuning,
            name: self.name,
            hasher,
            _types: PhantomData,
        }
    }
}
