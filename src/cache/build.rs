//! Assembling a cache from its builder's settings: segments, clock, limits, and the
//! reaper if asked for.

use super::builder::{CacheBuilder, MAX_SEGMENTS, MIN_SEGMENT_SHARE};
use super::listener::Notifier;
use super::{reaper, Cache, Inner};
use crate::clock::Ticker;
use crate::evict::Limits;
use crate::segment::Segment;
use crate::stats::Stats;
use crate::sync::{AtomicBool, AtomicUsize};
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

impl<K, V, S> CacheBuilder<K, V, S> {
    /// Builds the cache (and starts the reaper, if asked for).
    ///
    /// # Panics
    /// If the reaper was requested and the OS refuses to start a thread.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::builder()
    ///     .max_capacity(1_000)
    ///     .time_to_live(Duration::from_secs(60))
    ///     .build();
    /// cache.insert(1, 1);
    /// assert_eq!(cache.get(&1), Some(1));
    /// assert_eq!(cache.policy().max_capacity(), Some(1_000));
    /// assert_eq!(cache.time_to_live(), Some(Duration::from_secs(60)));
    /// ```
    pub fn build(self) -> Cache<K, V, S>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Send + Sync + 'static,
        S: BuildHasher + Send + Sync + 'static,
    {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut segments = self
            .segments
            .unwrap_or(threads.saturating_mul(4))
            .clamp(1, MAX_SEGMENTS)
            .next_power_of_two();
        if let Some(max) = self.max_capacity {
            // At least `MIN_SEGMENT_SHARE` of the bound a segment (see `segments`).
            let most = usize::try_from(max / MIN_SEGMENT_SHARE).unwrap_or(usize::MAX);
            segments = segments.min(prev_power_of_two(most.max(1)));
        }
        let ticker = match self.clock {
            Some(clock) => Ticker::new(clock, self.tick),
            None => Ticker::monotonic(self.tick),
        };
        let reading = ticker.read();
        let now = reading.tick();
        let per_segment = self.capacity.div_ceil(segments);
        let limits = Arc::new(
            Limits::new(
                self.max_capacity,
                self.weigher.is_some(),
                self.tti.map(|t| ticker.ticks_for(t)),
            )
            .shared_by(segments),
        );
        let timed = self.ttl.is_some() || self.tti.is_some() || self.expiry.is_some();
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
            handles: AtomicUsize::new(1),
            flights: super::load::Flights::new(segments),
            expiry: self.expiry,
            origin: super::expiry::origin_of(reading),
            name: self.name,
            timed: AtomicBool::new(timed),
            // Not under loom: its samples would add scheduling points to every model.
            climber: (self.max_capacity.is_some() && !crate::sync::MODEL)
                .then(|| std::sync::Mutex::new(crate::evict::climb::Climber::new())),
            _owns: PhantomData,
        });
        if let Some(interval) = self.reaper {
            reaper::spawn(&inner, interval).expect("failed to spawn the wheelcache reaper thread");
        }
        Cache { inner }
    }
}

/// The largest power of two no greater than `n` (`n` at least 1).
fn prev_power_of_two(n: usize) -> usize {
    debug_assert!(n >= 1);
    1 << (usize::BITS - 1 - n.leading_zeros())
}
