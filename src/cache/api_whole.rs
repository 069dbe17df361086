//! The public API over the whole cache: size, clearing, bulk removal, iteration,
//! maintenance, statistics and configuration (docs and examples; the engine is in
//! `write` and `maintain`).

use super::{Cache, IntoClones, Policy};
use crate::stats::CacheStats;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// Entries in the cache. Expired entries count until maintenance removes them; after
    /// [`run_pending_tasks`](Self::run_pending_tasks), with no concurrent writers, this is
    /// exactly the number of live entries.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<u32, u32> = Cache::builder().clock(clock.clone()).build();
    /// cache.insert(1, 1);
    /// cache.insert_with_ttl(2, 2, Duration::from_secs(1));
    /// assert_eq!(cache.len(), 2);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.len(), 2); // 2 has lapsed but is still counted...
    /// cache.run_pending_tasks();
    /// assert_eq!(cache.len(), 1); // ...until maintenance removes it
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether [`len`](Self::len) is zero (so, like `len`, it counts lapsed entries until
    /// maintenance removes them).
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// assert!(cache.is_empty());
    /// cache.insert(1, 1);
    /// assert!(!cache.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry (the listener hears `Explicit`, or `Expired` for lapsed ones).
    /// Entries inserted concurrently may survive.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// assert_eq!(cache.get(&1), None);
    /// assert_eq!(cache.stats().removals, 2);
    /// ```
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// Removes every entry present at the call, as moka's `invalidate_all` does: the same
    /// as [`clear`](Self::clear) (the listener hears `Explicit`, or `Expired` for lapsed
    /// entries; entries inserted concurrently may survive).
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// cache.invalidate_all();
    /// assert!(cache.is_empty());
    /// ```
    pub fn invalidate_all(&self) {
        self.inner.clear();
    }

    /// Keeps only the live entries for which `keep` returns true; the others leave with
    /// `RemovalCause::Explicit` (heard by the listener, after `keep` has seen the whole
    /// segment, unpinned). Returns how many left.
    ///
    /// Weakly consistent, like [`iter`](Self::iter): every entry present for the whole
    /// call is asked exactly once; one inserted or removed meanwhile may or may not be.
    /// `keep` runs under an epoch pin (it borrows the entries), one segment at a time:
    /// keep it short, and do not block in it. It may read the cache; if it panics, the
    /// panic propagates, and the entries already refused have left (and are heard).
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// for i in 0..10 {
    ///     cache.insert(i, i);
    /// }
    /// assert_eq!(cache.retain(|_, v| v % 2 == 0), 5);
    /// assert_eq!(cache.len(), 5);
    /// assert!(cache.contains_key(&4) && !cache.contains_key(&5));
    /// ```
    pub fn retain(&self, keep: impl FnMut(&K, &V) -> bool) -> usize {
        self.inner.retain(keep)
    }

    /// Removes the live entries for which `predicate` returns true: moka's name for
    /// [`retain`](Self::retain) with the test inverted (and run at once, not later by a
    /// housekeeper). Returns how many left.
    ///
    /// ```
    /// let cache: wheelcache::Cache<String, u32> = wheelcache::Cache::new();
    /// cache.insert("user:1".into(), 1);
    /// cache.insert("admin:1".into(), 2);
    /// assert_eq!(cache.invalidate_entries_if(|k, _| k.starts_with("user:")), 1);
    /// assert!(cache.contains_key("admin:1"));
    /// ```
    pub fn invalidate_entries_if(&self, mut predicate: impl FnMut(&K, &V) -> bool) -> usize {
        self.inner.retain(|k, v| !predicate(k, v))
    }

    /// Clones of every live entry, one segment at a time (each segment is listed and
    /// cloned under a short pin of its own; nothing is pinned between segments). Weakly
    /// consistent: an entry present for the whole iteration is yielded exactly once, an
    /// expired one never, and one inserted or removed meanwhile may or may not be. Not an
    /// access: no hit, no idle time restarted. [`Pinned::iter`](crate::Pinned::iter) borrows instead of cloning.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, String> = wheelcache::Cache::new();
    /// cache.insert(1, "one".into());
    /// cache.insert(2, "two".into());
    /// let mut all: Vec<(u32, String)> = cache.iter().collect();
    /// all.sort();
    /// assert_eq!(all, [(1, "one".into()), (2, "two".into())]);
    /// ```
    pub fn iter(&self) -> IntoClones<'_, K, V, S>
    where
        K: Clone,
        V: Clone,
    {
        IntoClones::new(self)
    }

    /// The name given to [`CacheBuilder::name`](crate::CacheBuilder::name), if any.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// assert_eq!(cache.name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// The configuration the cache was built with (see [`Policy`](crate::Policy)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::builder()
    ///     .time_to_idle(Duration::from_secs(30))
    ///     .segments(2)
    ///     .build();
    /// let policy = cache.policy();
    /// assert_eq!(policy.time_to_idle(), Some(Duration::from_secs(30)));
    /// assert_eq!((policy.max_capacity(), policy.num_segments()), (None, 2));
    /// ```
    pub fn policy(&self) -> Policy {
        let limits = &self.inner.limits;
        Policy {
            max_capacity: limits.bounded.then_some(limits.max),
            time_to_live: self.inner.ttl,
            time_to_idle: self.inner.tti,
            num_segments: self.inner.segments.len(),
        }
    }

    /// Does the maintenance that is pending when it is called, and returns in bounded time
    /// however busy other threads keep the cache.
    ///
    /// When it returns:
    /// 1. every timer change (insert with a TTL, removal) queued before the call has been
    ///    applied;
    /// 2. every entry due at the call's clock reading has left the cache, and the listener
    ///    has returned for each: for those this call's turns took out, and for those
    ///    another thread's maintenance turn (a write's, a read's, the reaper's) took out
    ///    before this call's turns ended, which it waits for. The wait is bounded like the
    ///    one in 4 ([`MAX_RECLAIM_WAIT`](crate::MAX_RECLAIM_WAIT), so a listener slower than that on another thread
    ///    may still be running), and is skipped when the calling thread is pinned, inside
    ///    a key's or value's `Drop`, or inside this cache's listener (then the departures
    ///    its own thread holds are delivered once that listener returns, see
    ///    [`CacheBuilder::eviction_listener`](crate::CacheBuilder::eviction_listener)). An entry another thread's own operation
    ///    found lapsed and took out (an insert or a remove of its key) is heard when that
    ///    operation returns;
    /// 3. the tables have shrunk to fit what is left (unless some thread stayed pinned
    ///    throughout the wait below);
    /// 4. every value removed or expired before the call has been dropped — unless some
    ///    thread held an epoch pin for the whole of [`MAX_RECLAIM_WAIT`](crate::MAX_RECLAIM_WAIT), or the calling
    ///    thread is itself pinned (then it returns at once, having freed what it could) or
    ///    is inside a key's or value's `Drop`. Those values are dropped by later maintenance
    ///    turns (writes, reads, the reaper, another call) or when the cache drops.
    ///
    /// Work that other threads add during the call (new entries, new removals) is left to
    /// them and to later calls, so a housekeeping thread calling this periodically under
    /// load gets its turn back.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let expired = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&expired);
    /// let clock = ManualClock::new();
    /// let cache: Cache<u32, u32> = Cache::builder()
    ///     .clock(clock.clone())
    ///     .eviction_listener(move |_, _, _| {
    ///         counter.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build();
    /// for i in 0..100 {
    ///     cache.insert_with_ttl(i, i, Duration::from_secs(1));
    /// }
    /// clock.advance(Duration::from_secs(1));
    /// cache.run_pending_tasks();
    /// assert_eq!(cache.len(), 0); // every due entry has left...
    /// assert_eq!(expired.load(Ordering::Relaxed), 100); // ...and been heard
    /// assert_eq!(cache.stats().expirations, 100);
    /// ```
    pub fn run_pending_tasks(&self) {
        self.inner.run_pending_tasks();
    }

    /// A snapshot of the counters (see [`CacheStats`] for what each counts). Exact once
    /// the counted operations have returned; one taken while other threads work may miss
    /// operations in flight. Maintenance (the reaper's rounds included) counts a turn's
    /// expirations and evictions when the turn ends, so [`len`](Self::len) can drop a
    /// moment before those departures are counted.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// cache.insert(1, 1);
    /// cache.get(&1); // hit
    /// cache.get(&1); // hit
    /// cache.get(&2); // miss
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.inserts, stats.len), (2, 1, 1, 1));
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot(self.inner.len())
    }

    /// The default TTL used by [`insert`](Self::insert) (see
    /// [`CacheBuilder::time_to_live`](crate::CacheBuilder::time_to_live)); `None` if entries stored that way never expire.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::builder().time_to_live(Duration::from_secs(5)).build();
    /// assert_eq!(cache.time_to_live(), Some(Duration::from_secs(5)));
    /// assert_eq!(Cache::<u32, u32>::new().time_to_live(), None);
    /// ```
    pub fn time_to_live(&self) -> Option<Duration> {
        self.inner.ttl
    }

    /// The time-to-idle, if one is set (see [`CacheBuilder::time_to_idle`](crate::CacheBuilder::time_to_idle)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::builder().time_to_idle(Duration::from_secs(9)).build();
    /// assert_eq!(cache.time_to_idle(), Some(Duration::from_secs(9)));
    /// assert_eq!(Cache::<u32, u32>::new().time_to_idle(), None);
    /// ```
    pub fn time_to_idle(&self) -> Option<Duration> {
        self.inner.tti
    }

    /// The total weight of the stored entries: with a [`weigher`](crate::CacheBuilder::weigher),
    /// the sum of their weights; with only a [`max_capacity`](crate::CacheBuilder::max_capacity),
    /// the number of entries; without either, [`len`](Self::len). Like `len`, it counts
    /// expired entries until maintenance removes them; after
    /// [`run_pending_tasks`](Self::run_pending_tasks) with no concurrent writers it is at
    /// most the bound.
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let weighed: Cache<u32, String> = Cache::builder()
    ///     .max_capacity(1_000)
    ///     .weigher(|_k, v: &String| v.len() as u32)
    ///     .build();
    /// weighed.insert(1, "abc".to_string());
    /// weighed.insert(2, "de".to_string());
    /// assert_eq!(weighed.weighted_size(), 5); // the sum of the weights
    ///
    /// let counted: Cache<u32, String> = Cache::new();
    /// counted.insert(1, "abc".to_string());
    /// counted.insert(2, "de".to_string());
    /// assert_eq!(counted.weighted_size(), 2); // the number of entries
    /// ```
    pub fn weighted_size(&self) -> u64 {
        if self.inner.limits.weighed {
            self.inner.limits.weight()
        } else {
            self.len() as u64
        }
    }
}

/// `for (key, value) in &cache`: clones of every live entry, as [`Cache::iter`].
///
/// ```
/// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
/// cache.insert(1, 10);
/// cache.insert(2, 20);
/// let mut sum = 0;
/// for (key, value) in &cache {
///     sum += key * value;
/// }
/// assert_eq!(sum, 50);
/// ```
impl<'a, K, V, S> IntoIterator for &'a Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = (K, V);
    type IntoIter = IntoClones<'a, K, V, S>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
