//! Configuring a cache.

use super::{reaper, Cache, Inner, Weigher};
use crate::clock::{Clock, MonotonicClock, Ticker};
use crate::evict::Limits;
use crate::policy::{Listener, Notifier, RemovalCause};
use crate::segment::Segment;
use crate::stats::Stats;
use crate::table::Tuning;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The most segments a cache may have.
pub const MAX_SEGMENTS: usize = 1 << 16;

/// The largest [`CacheBuilder::initial_capacity`] honoured; larger requests are clamped to
/// it (the tables still grow on demand past it). Pre-sizing allocates the tables at once,
/// about 15 bytes per entry of capacity, so this bounds that allocation to about 64 MiB.
pub const MAX_INITIAL_CAPACITY: usize = 1 << 22;

/// Builds a [`Cache`]. Every setting has a default; see each method.
pub struct CacheBuilder<K, V, S = ahash::RandomState> {
    ttl: Option<Duration>,
    tti: Option<Duration>,
    max_capacity: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
    reaper: Option<Duration>,
    clock: Option<Box<dyn Clock>>,
    tick: Duration,
    segments: Option<usize>,
    capacity: usize,
    tuning: Tuning,
    hasher: S,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V, S> fmt::Debug for CacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("time_to_live", &self.ttl)
            .field("time_to_idle", &self.tti)
            .field("max_capacity", &self.max_capacity)
            .field("weigher", &self.weigher.is_some())
            .field("eviction_listener", &self.listener.is_some())
            .field("background_reaper", &self.reaper)
            .field("tick", &self.tick)
            .field("segments", &self.segments)
            .field("initial_capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K, V> CacheBuilder<K, V, ahash::RandomState> {
    /// The defaults: no TTL, no listener, no reaper, monotonic clock, 1 ms ticks, segments
    /// from the machine's parallelism, a random ahash hasher.
    pub fn new() -> Self {
        Self {
            ttl: None,
            tti: None,
            max_capacity: None,
            weigher: None,
            listener: None,
            reaper: None,
            clock: None,
            tick: Duration::from_millis(1),
            segments: None,
            capacity: 0,
            tuning: Tuning::DEFAULT,
            hasher: ahash::RandomState::new(),
            _types: PhantomData,
        }
    }
}

impl<K, V> Default for CacheBuilder<K, V, ahash::RandomState> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> CacheBuilder<K, V, S> {
    /// The TTL [`Cache::insert`] gives entries. Zero means entries inserted that way are
    /// never stored (see [`Cache::insert_with_ttl`]); `Duration::MAX` means no expiry.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Expires an entry once it has been neither read nor written for `tti` (at least that
    /// long, and at most two ticks longer). Reads that count as hits (`get`, `pin().get`,
    /// `get_or_insert_with` finding the entry) and writes of the entry restart its idle
    /// time; `contains_key` does not. With a TTL too, whichever comes first applies, and
    /// [`Cache::insert_with_ttl`] still caps that one entry.
    ///
    /// A zero `tti` stores nothing (every value goes straight to the listener as
    /// `Expired`); one too large for the clock's range means no idle expiry. A read that
    /// races the moment an entry lapses may or may not extend it.
    ///
    /// Each entry then carries a 32-byte extension (see [`max_capacity`](Self::max_capacity)).
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
    /// can be stored. After [`Cache::run_pending_tasks`] with no concurrent writers,
    /// [`Cache::weighted_size`] is at most `max`; while writers run it may exceed it by a
    /// sixteenth (past that, writers wait for eviction) plus the inserts in flight, at most
    /// a maintenance turn's (64) per writer (the measured worst case with 8 inserters is
    /// in the README). An entry heavier than `max` is never stored: it
    /// goes straight to the listener as `Evicted` (so `max_capacity(0)` stores nothing
    /// but zero-weight entries).
    ///
    /// Each entry of a bounded cache carries a 32-byte extension (its idle tick, weight and
    /// queue links) and about 4 bytes of ghost (hashes of recently evicted keys); a read of
    /// a hot entry writes nothing.
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
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// Called once for every entry that leaves the cache (not for entries still present
    /// when the cache is dropped), on the removing thread, after the operation has released
    /// every internal lock and its epoch pin: it may be slow, and it may call back into the
    /// cache. A panic in it is caught and discarded.
    ///
    /// Listeners never nest: departures caused from inside a listener (a write-back that
    /// replaces an entry, a `remove`, a `run_pending_tasks`) are delivered after it returns,
    /// not inside it, and writes made inside it take no maintenance turns.
    ///
    /// A listener that captures a clone of its own cache keeps the cache, and its reaper,
    /// alive for ever (the cache owns the listener, which owns the cache). Capture a handle
    /// you can take out instead, such as an `Arc<OnceLock<Cache<K, V>>>` or a `Weak` of your
    /// own state, or send departures over a channel to a task that holds the cache.
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Runs a background thread doing one maintenance round per `interval` (at least
    /// 1 ms), so a cache that goes quiet still expires entries and returns memory. The
    /// thread holds no strong reference and exits when the cache drops.
    pub fn background_reaper(mut self, interval: Duration) -> Self {
        self.reaper = Some(interval);
        self
    }

    /// The time source (default [`MonotonicClock`]); [`ManualClock`](crate::ManualClock)
    /// for tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// The wheel's resolution (default 1 ms). Entries expire at most one tick late. Ticks
    /// shorter than [`MIN_TICK`](crate::MIN_TICK) (1 us; zero included) are raised to it;
    /// deadlines then reach 2^55 ticks past the clock's origin (1,142 years at 1 us, 1.14
    /// million at 1 ms), and TTLs reaching past that never expire.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// The number of segments, rounded up to a power of two and clamped to
    /// `1..=`[`MAX_SEGMENTS`] (zero means one). Default: four per available core.
    pub fn segments(mut self, segments: usize) -> Self {
        self.segments = Some(segments);
        self
    }

    /// Pre-sizes the tables for about this many entries (default: small, grown on demand),
    /// clamped to [`MAX_INITIAL_CAPACITY`]. The tables are allocated when the cache is
    /// built (about 15 bytes per entry of capacity), not lazily, and never shrink below
    /// that size (as a `HashMap` built `with_capacity` does not); without pre-sizing they
    /// shrink as entries leave.
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

    /// The hasher (default: `ahash::RandomState`, seeded randomly per cache).
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> CacheBuilder<K, V, S2> {
        CacheBuilder {
            ttl: self.ttl,
            tti: self.tti,
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            listener: self.listener,
            reaper: self.reaper,
            clock: self.clock,
            tick: self.tick,
            segments: self.segments,
            capacity: self.capacity,
            tuning: self.tuning,
            hasher,
            _types: PhantomData,
        }
    }

    /// Builds the cache (and starts the reaper, if asked for).
    ///
    /// # Panics
    /// If the reaper was requested and the OS refuses to start a thread.
    pub fn build(self) -> Cache<K, V, S>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Send + Sync + 'static,
        S: BuildHasher + Send + Sync + 'static,
    {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let segments = self
            .segments
            .unwrap_or(threads.saturating_mul(4))
            .clamp(1, MAX_SEGMENTS)
            .next_power_of_two();
        let ticker = Ticker::new(
            self.clock
                .unwrap_or_else(|| Box::new(MonotonicClock::new())),
            self.tick,
        );
        let now = ticker.now();
        let per_segment = self.capacity.div_ceil(segments);
        let limits = Arc::new(Limits::new(
            self.max_capacity,
            self.weigher.is_some(),
            self.tti.map(|t| ticker.ticks_for(t)),
        ));
        let inner = Arc::new(Inner {
            segments: (0..segments)
                .map(|_| Segment::new(per_segment, self.tuning, now, Arc::clone(&limits)))
                .collect(),
            segment_bits: segments.trailing_zeros(),
            hasher: self.hasher,
            ticker,
            ttl: self.ttl,
            tti: self.tti,
            limits,
            weigher: self.weigher,
            notifier: Notifier::new(self.listener),
            stats: Stats::new(threads),
            reaper: OnceLock::new(),
            flights: super::load::Flights::new(segments),
            _owns: PhantomData,
        });
        if let Some(interval) = self.reaper {
            reaper::spawn(&inner, interval).expect("failed to spawn the wheelcache reaper thread");
        }
        Cache { inner }
    }
}
