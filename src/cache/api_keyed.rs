//! The public API for one key: writes, reads, removals, loads and `compute` (their docs
//! and examples; the engine behind them is in `read`, `write`, `load` and `maintain`).

use super::load::Outcome;
use super::{Cache, CacheBuilder, Computed, Op, Pinned};
use crossbeam_epoch::{self as epoch};
use equivalent::Equivalent;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

impl<K, V> Cache<K, V, ahash::RandomState>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An unbounded cache with no default TTL (entries stay until removed, unless inserted
    /// with [`insert_with_ttl`](Self::insert_with_ttl)), with every other setting at the
    /// [`CacheBuilder::new`](crate::CacheBuilder::new) default.
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<String, u32> = Cache::new();
    /// assert!(cache.is_empty());
    /// assert_eq!(cache.time_to_live(), None);
    /// assert_eq!(cache.policy().max_capacity(), None);
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a configured cache (the same as [`CacheBuilder::new`](crate::CacheBuilder::new)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u64, String> = Cache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .max_capacity(1_000)
    ///     .build();
    /// assert_eq!(cache.time_to_live(), Some(Duration::from_secs(60)));
    /// assert_eq!(cache.policy().max_capacity(), Some(1_000));
    /// ```
    pub fn builder() -> CacheBuilder<K, V, ahash::RandomState> {
        CacheBuilder::new()
    }
}

impl<K, V> Default for Cache<K, V, ahash::RandomState>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// The same as [`Cache::new`]: unbounded, no default TTL.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = Default::default();
    /// cache.insert(1, 1);
    /// assert_eq!(cache.len(), 1);
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// Stores `value` under `key` with the cache's default TTL (no expiry if none is set),
    /// replacing any entry for `key` (the listener hears `Replaced`, or `Expired` if the
    /// old entry had already lapsed). The entry starts with a fresh idle time and access
    /// count. With a bound, an insert that takes the total over it evicts (see
    /// [`CacheBuilder::max_capacity`](crate::CacheBuilder::max_capacity)); with a zero default TTL or time-to-idle, or a weight
    /// over the bound, nothing is stored (see [`insert_with_ttl`](Self::insert_with_ttl)),
    /// nor when over 65,000 keys in its segment share the key's whole hash (see
    /// [`CacheBuilder::hasher`](crate::CacheBuilder::hasher)).
    /// With an [`Expiry`](crate::Expiry) policy ([`CacheBuilder::expire_after`](crate::CacheBuilder::expire_after)) the entry's deadline is
    /// the earlier of the TTL and the policy's answer, and the insert is a compare-and-swap
    /// of the entry, like [`compute`](Self::compute).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use wheelcache::{Cache, RemovalCause};
    ///
    /// let heard = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&heard);
    /// let cache: Cache<&str, u32> = Cache::builder()
    ///     .eviction_listener(move |k, v, cause| log.lock().unwrap().push((*k, *v, cause)))
    ///     .build();
    /// cache.insert("a", 1);
    /// cache.insert("a", 2);
    /// assert_eq!(cache.get("a"), Some(2));
    /// assert_eq!(*heard.lock().unwrap(), [("a", 1, RemovalCause::Replaced)]);
    /// assert_eq!((cache.stats().inserts, cache.stats().updates), (1, 1));
    /// ```
    pub fn insert(&self, key: K, value: V) {
        self.inner.insert(key, value);
    }

    /// Stores `value` under `key`, expiring `ttl` from now (rounded up to the next tick),
    /// replacing any entry for `key` and its TTL.
    ///
    /// A zero `ttl` stores nothing: any entry for `key` is removed (`Replaced`), and
    /// `value` goes straight to the listener as `Expired` and is dropped. TTLs too large
    /// for the clock's range (about 1.14 million years at 1 ms ticks), `Duration::MAX`
    /// included, mean "never expires".
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
    ///     .time_to_live(Duration::from_secs(60)) // for `insert`; not used here
    ///     .eviction_listener(move |k, v, cause| log.lock().unwrap().push((*k, *v, cause)))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.insert_with_ttl("short", 1, Duration::from_secs(5));
    /// cache.insert_with_ttl("forever", 2, Duration::MAX);
    /// cache.insert_with_ttl("none", 3, Duration::ZERO); // never stored
    /// assert_eq!(*heard.lock().unwrap(), [("none", 3, RemovalCause::Expired)]);
    /// assert_eq!(cache.get("none"), None);
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(cache.get("short"), None);
    /// clock.advance(Duration::from_secs(100 * 365 * 24 * 3600)); // a century
    /// assert_eq!(cache.get("forever"), Some(2));
    /// ```
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        self.inner.put(key, value, Some(ttl));
    }

    /// Gives the live entry for `key` the deadline [`insert_with_ttl`](Self::insert_with_ttl)
    /// with `ttl` would give it now, without replacing its value (Redis's `EXPIRE`,
    /// actix-session's `update_ttl`). Returns false, changing nothing, when there is no live
    /// entry. A zero `ttl` removes the entry, heard by the listener as `Expired`.
    ///
    /// - It is not a departure: the listener hears nothing, and no counter of
    ///   [`stats`](Self::stats) moves (but the zero-TTL removal, an expiration).
    /// - Like a write, it restarts the entry's idle time. An [`Expiry`](crate::Expiry)
    ///   policy is not asked, as for `insert_with_ttl`, and its deadline is dropped.
    /// - The entry is stored anew (entries are immutable nodes): its key and value are
    ///   cloned (for an `Arc` value, the same allocation), its weight is kept, and in a
    ///   bounded cache it re-enters the eviction queues as a new entry would.
    /// - Atomic with respect to other writes of the key: if one replaces or removes the
    ///   entry first, `set_ttl` applies to what is there then (or returns false).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<&str, Arc<String>> = Cache::builder().clock(clock.clone()).build();
    /// let value = Arc::new("state".to_string());
    /// cache.insert_with_ttl("s", Arc::clone(&value), Duration::from_secs(1));
    /// assert!(cache.set_ttl("s", Duration::from_secs(60))); // the session was used
    /// clock.advance(Duration::from_secs(30));
    /// assert!(Arc::ptr_eq(&cache.get("s").unwrap(), &value)); // the same value
    /// assert!(!cache.set_ttl("absent", Duration::from_secs(5)));
    /// assert!(cache.set_ttl("s", Duration::ZERO)); // removed, as Expired
    /// assert_eq!(cache.get("s"), None);
    /// ```
    pub fn set_ttl<Q>(&self, key: &Q, ttl: Duration) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
        K: Clone,
        V: Clone,
    {
        self.inner.set_ttl(key, ttl)
    }

    /// A clone of the live value for `key`. Never returns an expired entry.
    ///
    /// It counts as a hit or a miss in [`stats`](Self::stats); when it finds the entry, it
    /// restarts the entry's idle time (with a [time-to-idle](crate::CacheBuilder::time_to_idle))
    /// and raises its access count (what the [bound](crate::CacheBuilder::max_capacity)'s policy
    /// keeps entries by). [`pin`](Self::pin) borrows instead of cloning.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<String, u32> = Cache::builder()
    ///     .time_to_idle(Duration::from_secs(10))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.insert("a".to_string(), 1);
    /// assert_eq!(cache.get("a"), Some(1)); // a `&str` finds a `String` key
    /// assert_eq!(cache.get("b"), None);
    /// assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
    /// for _ in 0..5 {
    ///     clock.advance(Duration::from_secs(6));
    ///     assert_eq!(cache.get("a"), Some(1)); // each read restarts its idle time
    /// }
    /// clock.advance(Duration::from_secs(11));
    /// assert_eq!(cache.get("a"), None); // unread for 11 s
    /// ```
    ///
    /// A key made of owned parts is found by borrowed ones through
    /// [`Equivalent`](crate::Equivalent), with no allocation per lookup:
    ///
    /// ```
    /// use wheelcache::{Cache, Equivalent};
    ///
    /// /// Hashes as `(String, String)` does: a `&str` hashes as its `String`.
    /// #[derive(Hash)]
    /// struct Pair<'a>(&'a str, &'a str);
    ///
    /// impl Equivalent<(String, String)> for Pair<'_> {
    ///     fn equivalent(&self, key: &(String, String)) -> bool {
    ///         self.0 == key.0 && self.1 == key.1
    ///     }
    /// }
    ///
    /// let cache: Cache<(String, String), u32> = Cache::new();
    /// cache.insert(("tenant".to_string(), "user".to_string()), 7);
    /// assert_eq!(cache.get(&Pair("tenant", "user")), Some(7));
    /// assert!(cache.contains_key(&Pair("tenant", "user")));
    /// assert_eq!(cache.remove(&Pair("tenant", "user")), Some(7));
    /// assert_eq!(cache.pin().get(&Pair("tenant", "user")), None);
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let (hash, index) = self.inner.locate(key);
        self.inner.get_located(hash, index, key)
    }

    /// Pins the epoch so values can be borrowed instead of cloned.
    ///
    /// A pin is process-wide in effect: like any crossbeam-epoch pin, while it lives no
    /// memory retired since it began can be freed, in this cache, in any other cache, or by
    /// any other crossbeam user in the process. Hold it for a lookup or a request, not for
    /// the life of a connection, and do not block while holding it.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, String> = wheelcache::Cache::new();
    /// cache.insert(1, "a long value".to_string());
    /// let pinned = cache.pin();
    /// let len = pinned.get(&1).map(String::len); // borrowed, not cloned
    /// assert_eq!(len, Some(12));
    /// drop(pinned); // end the pin promptly
    /// ```
    pub fn pin(&self) -> Pinned<'_, K, V, S> {
        Pinned::new(self, epoch::pin())
    }

    /// Whether a live entry exists for `key`. Not counted as a hit or miss, and not an
    /// access: it does not restart the entry's idle time or raise its access count.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// cache.insert(1, 10);
    /// assert!(cache.contains_key(&1));
    /// assert!(!cache.contains_key(&2));
    /// assert_eq!((cache.stats().hits, cache.stats().misses), (0, 0));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.inner.contains_key(key)
    }

    /// Internal, for this crate's own tests (behind the `internal-tiny-tables` feature, not
    /// part of the API): the segment `key` belongs to, so a model can place keys in the
    /// segments it needs.
    #[cfg(feature = "internal-tiny-tables")]
    #[doc(hidden)]
    pub fn segment_of_for_tests<Q>(&self, key: &Q) -> usize
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.inner.locate(key).1
    }

    /// Removes the entry for `key`, returning a clone of its value if it was live. The
    /// entry's timer is cancelled and its memory freed once no pinned reader can see it.
    /// The listener hears `Explicit` (or `Expired`, and this returns `None`, if the entry
    /// had already lapsed).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<u32, String> = Cache::builder().clock(clock.clone()).build();
    /// cache.insert(1, "one".to_string());
    /// assert_eq!(cache.remove(&1), Some("one".to_string()));
    /// assert_eq!(cache.remove(&1), None); // already gone
    /// cache.insert_with_ttl(2, "two".to_string(), Duration::from_secs(1));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.remove(&2), None); // lapsed: it leaves, but as `Expired`
    /// assert!(cache.is_empty());
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        self.inner.remove(key, V::clone)
    }

    /// Removes the entry for `key` without cloning its value; true if a live entry left.
    /// Otherwise the same as [`remove`](Self::remove), and it needs no `V: Clone`.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, Vec<u8>> = wheelcache::Cache::new();
    /// cache.insert(1, vec![0; 1024]);
    /// assert!(cache.invalidate(&1));
    /// assert!(!cache.invalidate(&1));
    /// assert_eq!(cache.stats().removals, 1);
    /// ```
    pub fn invalidate<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.inner.remove(key, |_| ()).is_some()
    }

    /// The live value for `key`, or `init()`'s, stored with the default TTL, **without
    /// coalescing**: concurrent callers for one absent key may each run `init`; exactly one
    /// value is stored, every caller gets a clone of that one, and the others are dropped
    /// (once). Use [`get_with`](Self::get_with) to run `init` once per key.
    ///
    /// `init` runs unpinned and with no lock held, so it may be slow and may call back
    /// into the cache. With a zero default TTL the value is returned but not stored (see
    /// [`insert_with_ttl`](Self::insert_with_ttl)).
    ///
    /// ```
    /// let cache: wheelcache::Cache<&str, u32> = wheelcache::Cache::new();
    /// assert_eq!(cache.get_or_insert_with("a", || 1), 1);
    /// assert_eq!(cache.get_or_insert_with("a", || 2), 1); // already there
    /// ```
    pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        self.inner.get_or_insert_with(key, init)
    }

    /// The live value for `key`, or the value `init()` loads for it, with **one `init` per
    /// key at a time**: concurrent callers for an absent key wait (parked, not pinned,
    /// holding no lock) for the one running `init`, and all receive its value. Moka's
    /// `get_with`, Caffeine's `get(key, mappingFunction)`.
    ///
    /// The value is stored with the default TTL. If an entry for `key` was inserted while
    /// `init` ran, that entry wins: it is kept and returned to every caller, and `init`'s
    /// value is dropped.
    ///
    /// - `init` runs unpinned with no lock held: it may be slow, and may call back into
    ///   the cache, for other keys too.
    /// - If `init` panics, the panic propagates to this caller, nothing is stored, and one
    ///   waiter runs its own `init` (the others wait for that one).
    /// - **Panics** if `init` asks for `key` itself through a coalesced load (it would
    ///   wait for itself); the message says so. A cycle through other threads (A's loader
    ///   waits for B's key while B's loader waits for A's) deadlocks, as in every loading
    ///   cache: keep loaders acyclic.
    /// - The listener hears what storing `init`'s value displaces or refuses on this
    ///   caller's thread, while the load is still in progress for the other callers. A
    ///   coalesced load for `key` from there (or from a `Drop` the store runs) does not
    ///   wait for it: it runs its own `init` and stores that value as `get_or_insert_with`
    ///   would (an entry stored meanwhile wins).
    /// - Waiters receive the value `init` produced (or the entry that won) even when the
    ///   cache does not keep it (zero TTL, zero capacity, heavier than the bound). A waiter
    ///   whose key merely shares a hash with the one being loaded retries afterwards.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// let cache: wheelcache::Cache<u32, String> = wheelcache::Cache::new();
    /// let loads = AtomicU32::new(0);
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| {
    ///             let v = cache.get_with(7, || {
    ///                 loads.fetch_add(1, Ordering::Relaxed);
    ///                 std::thread::sleep(std::time::Duration::from_millis(50));
    ///                 "seven".to_string()
    ///             });
    ///             assert_eq!(v, "seven");
    ///         });
    ///     }
    /// });
    /// assert_eq!(loads.load(Ordering::Relaxed), 1);
    /// ```
    pub fn get_with(&self, key: K, init: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        let init = || Outcome::of_value(init());
        self.inner
            .load(key, false, init, Outcome::for_value)
            .into_value()
    }

    /// [`get_with`](Self::get_with) by reference: the key is looked up as `&Q` and cloned
    /// into a `K` only on a miss, so a hit costs no allocation (moka's `get_with_by_ref`).
    /// One hit or one miss is counted, as for `get_with`.
    ///
    /// ```
    /// let cache: wheelcache::Cache<String, usize> = wheelcache::Cache::new();
    /// assert_eq!(cache.get_with_by_ref("session-1", || 7), 7); // "session-1".to_owned()
    /// assert_eq!(cache.get_with_by_ref("session-1", || unreachable!()), 7); // no clone
    /// assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
    /// ```
    pub fn get_with_by_ref<Q>(&self, key: &Q, init: impl FnOnce() -> V) -> V
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
        V: Clone,
    {
        let (hash, index) = self.inner.locate(key);
        if let Some(value) = self.inner.get_located(hash, index, key) {
            return value;
        }
        let init = || Outcome::of_value(init());
        let outcome = self
            .inner
            .load(key.to_owned(), true, init, Outcome::for_value);
        outcome.into_value()
    }

    /// [`get_with`](Self::get_with) for a loader that can fail: an `Err` is stored
    /// nowhere, and every caller waiting on that load receives the same error (one
    /// `Arc<E>`). A later call loads again.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// let err = cache.try_get_with(1, || Err::<u32, _>("db down")).unwrap_err();
    /// assert_eq!(*err, "db down");
    /// assert!(!cache.contains_key(&1));
    /// assert_eq!(cache.try_get_with(1, || Ok::<_, &str>(10)), Ok(10));
    /// ```
    pub fn try_get_with<E>(&self, key: K, init: impl FnOnce() -> Result<V, E>) -> Result<V, Arc<E>>
    where
        V: Clone,
        E: Send + Sync + 'static,
    {
        let init = || Outcome::of_result(init());
        let shares = Outcome::for_result::<E>;
        self.inner.load(key, false, init, shares).into_result()
    }

    /// [`get_with`](Self::get_with) for a loader that may find nothing: `None` is stored
    /// nowhere and is what every caller waiting on that load receives. A later call loads
    /// again.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// assert_eq!(cache.optionally_get_with(1, || None), None);
    /// assert_eq!(cache.optionally_get_with(1, || Some(5)), Some(5));
    /// assert_eq!(cache.get(&1), Some(5));
    /// ```
    pub fn optionally_get_with(&self, key: K, init: impl FnOnce() -> Option<V>) -> Option<V>
    where
        V: Clone,
    {
        let init = || Outcome::of_option(init());
        self.inner
            .load(key, false, init, Outcome::for_option)
            .into_option()
    }

    /// [`try_get_with`](Self::try_get_with) by reference: the key is cloned only on a
    /// miss (moka's `try_get_with_by_ref`).
    ///
    /// ```
    /// let cache: wheelcache::Cache<String, u32> = wheelcache::Cache::new();
    /// assert!(cache.try_get_with_by_ref("k", || Err::<u32, _>("down")).is_err());
    /// assert_eq!(cache.try_get_with_by_ref("k", || Ok::<_, &str>(3)), Ok(3));
    /// assert_eq!(cache.try_get_with_by_ref("k", || Err("not asked")), Ok(3));
    /// ```
    pub fn try_get_with_by_ref<Q, E>(
        &self,
        key: &Q,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, Arc<E>>
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
        V: Clone,
        E: Send + Sync + 'static,
    {
        let (hash, index) = self.inner.locate(key);
        if let Some(value) = self.inner.get_located(hash, index, key) {
            return Ok(value);
        }
        let init = || Outcome::of_result(init());
        let shares = Outcome::for_result::<E>;
        self.inner
            .load(key.to_owned(), true, init, shares)
            .into_result()
    }

    /// [`optionally_get_with`](Self::optionally_get_with) by reference: the key is cloned
    /// only on a miss (moka's `optionally_get_with_by_ref`).
    ///
    /// ```
    /// let cache: wheelcache::Cache<String, u32> = wheelcache::Cache::new();
    /// assert_eq!(cache.optionally_get_with_by_ref("k", || None), None);
    /// assert_eq!(cache.optionally_get_with_by_ref("k", || Some(4)), Some(4));
    /// assert_eq!(cache.optionally_get_with_by_ref("k", || None), Some(4));
    /// ```
    pub fn optionally_get_with_by_ref<Q>(
        &self,
        key: &Q,
        init: impl FnOnce() -> Option<V>,
    ) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
        V: Clone,
    {
        let (hash, index) = self.inner.locate(key);
        if let Some(value) = self.inner.get_located(hash, index, key) {
            return Some(value);
        }
        let init = || Outcome::of_option(init());
        self.inner
            .load(key.to_owned(), true, init, Outcome::for_option)
            .into_option()
    }

    /// An atomic read-modify-write of `key`'s entry: `f` sees the live value (or `None`)
    /// and returns an [`Op`](crate::Op): keep it as it is, put a new value (stored with the default
    /// TTL, or an [`Expiry`](crate::Expiry) policy's earlier deadline), or remove the entry. The op is
    /// applied only if the entry is still the one `f` saw; otherwise `f` runs again on
    /// what is there now, so **under contention `f` may run more than once** (it is
    /// `FnMut`). Moka's `entry(k).and_compute_with`, papaya's `compute`.
    ///
    /// `f` runs under an epoch pin (it borrows the value): keep it short and do not block
    /// in it; it may read the cache but must not write `key` (its own write would make it
    /// run again, for ever). A panic in `f` propagates and changes nothing. A value the
    /// cache refuses (zero TTL, TTI or policy answer, heavier than the bound, a crowded
    /// hash: see [`CacheBuilder::hasher`](crate::CacheBuilder::hasher)) is not
    /// stored: the entry `f` saw is removed and the value handed to the listener
    /// ([`Computed::Refused`]). The weigher and the policy run pinned here too.
    ///
    /// ```
    /// use wheelcache::{Cache, Computed, Op};
    /// let hits: Cache<&str, u64> = Cache::new();
    /// let bump = |n: Option<&u64>| Op::Put(n.map_or(1, |n| n + 1));
    /// assert_eq!(hits.compute("/", bump), Computed::Inserted);
    /// assert_eq!(hits.compute("/", bump), Computed::Updated);
    /// assert_eq!(hits.get("/"), Some(2));
    /// // Remove once it reaches 2, else leave it.
    /// let done = hits.compute("/", |n| if n == Some(&2) { Op::Remove } else { Op::Nop });
    /// assert_eq!(done, Computed::Removed);
    /// assert_eq!(hits.compute("/", |_| Op::Nop), Computed::StillNone);
    /// ```
    pub fn compute(&self, key: K, f: impl FnMut(Option<&V>) -> Op<V>) -> Computed {
        self.inner.compute(key, f)
    }
}
