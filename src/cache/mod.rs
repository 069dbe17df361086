//! The public cache: hashing to a segment, each operation's two phases, and the
//! departure protocol.
//!
//! ## Two phases
//! Every operation reads the clock first (so a panicking [`Clock`](crate::Clock) changes
//! nothing), hashes once, and works in one segment, in two phases:
//! 1. **Pinned** (one pin per operation): the table work, and for each entry it took out
//!    (it won the slot's CAS, so it is the entry's unique *remover*) the remover's duties:
//!    the count, the wheel hand-off (`Segment::removed`), and a [`Held`] on the node if
//!    there is a listener; then, if the segment is due, a bounded maintenance turn (see
//!    `segment`), which runs no user code either.
//! 2. **Unpinned, no lock held**: the listener for every departure (its own and those its
//!    turn expired), each hold released once it has returned; then sealing and, after a
//!    turn, a bounded slice of freeing.
//!
//! So the user code the cache calls on its own — the listener, `init`, key and value
//! `Drop`s — never runs pinned or under a lock of ours. (`Hash`, `Eq` and `V::clone` run
//! pinned: they are how an entry is found and read.)
//!
//! ## Maintenance without a caller
//! Writes take turns on their segment when it is due. So do reads: one read in
//! [`READ_TURN_EVERY`] per thread (a thread-local count, no shared write) checks its
//! segment and takes a turn if it is due, so a cache that only sees `get` traffic still
//! removes lapsed entries and gives their memory back. `run_pending_tasks` and the reaper
//! do full turns over every segment, bounded by what was pending when they began.

mod builder;
pub(crate) mod builder_limits {
    pub use super::builder::{MAX_INITIAL_CAPACITY, MAX_SEGMENTS};
}
mod compute;
mod config;
mod expiry;
mod iter;
mod load;
#[cfg(feature = "async")]
mod load_async;
mod pinned;
mod reaper;

pub use builder::CacheBuilder;
pub use compute::{Computed, Op};
pub use config::Policy;
use expiry::Deadline;
pub use expiry::Expiry;
pub use iter::{IntoClones, Iter};
pub use pinned::Pinned;

use crate::clock::{Reading, Ticker, NEVER};
use crate::evict::Limits;
use crate::policy::{Notifier, RemovalCause};
use crate::reclaim::{self, Progress};
use crate::segment::{Fired, Mode, Segment, Turn, FREE_BUDGET};
use crate::stats::{CacheStats, Event, Stats};
use crate::sync::{self, AtomicUsize, Ordering, Patience};
use crate::table::node::{ExtInit, Held, NodeBox, NodePtr, DETACHED, RELEASED, REMOVED, UNLINKED};
use crate::table::Insert;
use crossbeam_epoch::{self as epoch, Guard};
use load::{Flights, Found, Outcome};
use std::borrow::Borrow;
use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The longest [`Cache::run_pending_tasks`] waits for other threads' epoch pins to end
/// before it returns with some reclamation left undone (see its docs).
pub const MAX_RECLAIM_WAIT: Duration = Duration::from_millis(100);

/// The weigher's type.
pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync + 'static>;

/// Reads per thread between two looks at whether the read's segment is due for maintenance.
pub(crate) const READ_TURN_EVERY: u32 = 64;

sync::thread_cell! {
    /// Reads this thread made since its last look (see [`READ_TURN_EVERY`]).
    static READS: Cell<u32> = Cell::new(0);
}

sync::thread_cell! {
    /// Which other segment this thread's next over-the-bound write helps (round robin).
    static HELPED: Cell<usize> = Cell::new(0);
}

fn next_helped() -> usize {
    HELPED.with(|h| {
        let n = h.get().wrapping_add(1);
        h.set(n);
        n
    })
}

/// Counts a read; true once every [`READ_TURN_EVERY`] reads on this thread.
#[inline]
fn read_turn_owed() -> bool {
    READS.with(|r| {
        let n = r.get().wrapping_add(1);
        r.set(n);
        n % READ_TURN_EVERY == 0
    })
}

/// A concurrent cache in which every entry has a way out: explicit removal, a per-entry
/// time-to-live driven by a timing wheel, an optional time-to-idle (entries that go unread
/// expire), an optional capacity bound (on entries, or on total weight with a weigher)
/// kept by a scan-resistant S3-FIFO policy, and memory that follows the live entries.
/// Configure them with [`Cache::builder`].
///
/// `Cache` is a handle: clones share one cache, which is freed when the last handle drops.
/// The [crate-level guide](crate) covers the design, [choosing how entries
/// leave](crate#choosing-how-entries-leave), the [semantics worth
/// knowing](crate#semantics-worth-knowing) and coalesced loads, with examples.
///
/// ```
/// use std::time::Duration;
/// use wheelcache::{Cache, ManualClock};
///
/// let clock = ManualClock::new();
/// let cache: Cache<&str, u32> = Cache::builder()
///     .max_capacity(10_000)
///     .time_to_idle(Duration::from_secs(300))
///     .time_to_live(Duration::from_secs(3600))
///     .clock(clock.clone())
///     .build();
/// cache.insert("a", 1);
/// assert_eq!(cache.get("a"), Some(1));
/// clock.advance(Duration::from_secs(301));
/// assert_eq!(cache.get("a"), None); // unread for over 5 minutes
/// ```
pub struct Cache<K, V, S = ahash::RandomState> {
    inner: Arc<Inner<K, V, S>>,
}

pub(crate) struct Inner<K, V, S> {
    segments: Box<[Segment<K, V>]>,
    segment_bits: u32,
    hasher: S,
    ticker: Ticker,
    ttl: Option<Duration>,
    /// The configured time-to-idle (its ticks are in `limits`).
    tti: Option<Duration>,
    /// Capacity bound, weights and idle limit.
    limits: Arc<Limits>,
    weigher: Option<Weigher<K, V>>,
    notifier: Notifier<K, V>,
    stats: Stats,
    reaper: OnceLock<reaper::Reaper>,
    /// Live [`Cache`] handles (the `Arc`'s count also includes a reaper's round): the drop
    /// of the last one stops the reaper, so the cache is freed by that drop (see `reaper`).
    handles: AtomicUsize,
    /// Coalesced loads in progress (`get_with` and friends).
    flights: Flights<K, V>,
    /// The per-entry expiry policy, if any (see `expiry`).
    expiry: Option<expiry::Policy<K, V>>,
    /// The `Instant` the clock's zero stands for, for the policy (see `expiry`).
    origin: std::time::Instant,
    /// The cache owns `K`s and `V`s: Send/Sync follow theirs (the segments alone, holding
    /// raw pointers behind atomics, would say nothing about them).
    _owns: PhantomData<(K, V)>,
}

impl<K, V, S> Clone for Cache<K, V, S> {
    /// Another handle to the same cache (an `Arc` clone): what one handle stores, the
    /// others see. The cache is freed when the last handle drops.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// let handle = cache.clone();
    /// std::thread::spawn(move || handle.insert(1, 10)).join().unwrap();
    /// assert_eq!(cache.get(&1), Some(10));
    /// ```
    fn clone(&self) -> Self {
        // Relaxed: as `Arc::clone`; the new handle comes from a live one, so the count
        // cannot reach zero meanwhile.
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S> Drop for Cache<K, V, S> {
    /// Drops this handle; the last one frees the cache, every entry and retired value,
    /// before it returns: it first stops the reaper, if any, waiting at most for the round
    /// in progress (see [`CacheBuilder::background_reaper`]).
    fn drop(&mut self) {
        // AcqRel: as `Arc`'s drop: Release orders this handle's uses before the count's
        // fall; the last one's Acquire sees every other handle's.
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(reaper) = self.inner.reaper.get() {
                reaper::stop(reaper);
            }
        }
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.inner.len())
            .field("segments", &self.inner.segments.len())
            .field("time_to_live", &self.inner.ttl)
            .field("tick", &self.inner.ticker.tick())
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V, ahash::RandomState>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An unbounded cache with no default TTL (entries stay until removed, unless inserted
    /// with [`insert_with_ttl`](Self::insert_with_ttl)), with every other setting at the
    /// [`CacheBuilder::new`] default.
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

    /// A builder for a configured cache (the same as [`CacheBuilder::new`]).
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
    /// [`CacheBuilder::max_capacity`]); with a zero default TTL or time-to-idle, or a weight
    /// over the bound, nothing is stored (see [`insert_with_ttl`](Self::insert_with_ttl)),
    /// nor when over 65,000 keys in its segment share the key's whole hash (see
    /// [`CacheBuilder::hasher`]).
    /// With an [`Expiry`] policy ([`CacheBuilder::expire_after`]) the entry's deadline is
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
        if self.inner.expiry.is_some() {
            // A compare-and-swap of the entry, so the policy answers for the one replaced.
            self.inner
                .compute_with(key, Some(value), |_, spare| match spare.take() {
                    Some(value) => Op::Put(value),
                    None => unreachable!("a refused put hands its value back before a retry"),
                });
        } else {
            self.inner.put(key, value, self.inner.ttl);
        }
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

    /// A clone of the live value for `key`. Never returns an expired entry.
    ///
    /// It counts as a hit or a miss in [`stats`](Self::stats); when it finds the entry, it
    /// restarts the entry's idle time (with a [time-to-idle](CacheBuilder::time_to_idle))
    /// and raises its access count (what the [bound](CacheBuilder::max_capacity)'s policy
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
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
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
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, index) = self.inner.locate(key);
        let mut fired = Vec::new();
        let (found, turned) = {
            let guard = epoch::pin();
            let found = self
                .inner
                .find(hash, index, key, &guard, false, false)
                .is_some();
            (
                found,
                self.inner.read_turn_pinned(index, &guard, &mut fired),
            )
        };
        self.inner.after_write(index, fired, turned);
        found
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
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
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
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
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
        let outcome = self.inner.load(
            key,
            || Outcome::Value(Arc::new(init())),
            |o| matches!(o, Outcome::Value(_)),
        );
        match outcome {
            Outcome::Value(v) => Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
            _ => unreachable!("get_with only takes values"),
        }
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
        let outcome = self.inner.load(
            key,
            || match init() {
                Ok(v) => Outcome::Value(Arc::new(v)),
                Err(e) => Outcome::Error(Arc::new(Arc::new(e))),
            },
            |o| match o {
                Outcome::Value(_) => true,
                Outcome::Error(e) => e.is::<Arc<E>>(),
                Outcome::Nothing => false,
            },
        );
        match outcome {
            Outcome::Value(v) => Ok(Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone())),
            Outcome::Error(e) => Err(e
                .downcast_ref::<Arc<E>>()
                .cloned()
                .expect("only this error type is shared")),
            Outcome::Nothing => unreachable!("try_get_with's loader always decides"),
        }
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
        let outcome = self.inner.load(
            key,
            || init().map_or(Outcome::Nothing, |v| Outcome::Value(Arc::new(v))),
            |o| matches!(o, Outcome::Value(_) | Outcome::Nothing),
        );
        match outcome {
            Outcome::Value(v) => Some(Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone())),
            _ => None,
        }
    }

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

    /// An atomic read-modify-write of `key`'s entry: `f` sees the live value (or `None`)
    /// and returns an [`Op`]: keep it as it is, put a new value (stored with the default
    /// TTL, or an [`Expiry`] policy's earlier deadline), or remove the entry. The op is
    /// applied only if the entry is still the one `f` saw; otherwise `f` runs again on
    /// what is there now, so **under contention `f` may run more than once** (it is
    /// `FnMut`). Moka's `entry(k).and_compute_with`, papaya's `compute`.
    ///
    /// `f` runs under an epoch pin (it borrows the value): keep it short and do not block
    /// in it; it may read the cache but must not write `key` (its own write would make it
    /// run again, for ever). A panic in `f` propagates and changes nothing. A value the
    /// cache refuses (zero TTL, TTI or policy answer, heavier than the bound, a crowded
    /// hash: see [`CacheBuilder::hasher`]) is not
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
    /// access: no hit, no idle time restarted. [`Pinned::iter`] borrows instead of cloning.
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

    /// The configuration the cache was built with (see [`Policy`]).
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
        let max = self.inner.limits.max;
        Policy {
            max_capacity: (max != u64::MAX).then_some(max),
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
    ///    one in 4 ([`MAX_RECLAIM_WAIT`], so a listener slower than that on another thread
    ///    may still be running), and is skipped when the calling thread is pinned, inside
    ///    a key's or value's `Drop`, or inside this cache's listener (then the departures
    ///    its own thread holds are delivered once that listener returns, see
    ///    [`CacheBuilder::eviction_listener`]). An entry another thread's own operation
    ///    found lapsed and took out (an insert or a remove of its key) is heard when that
    ///    operation returns;
    /// 3. the tables have shrunk to fit what is left (unless some thread stayed pinned
    ///    throughout the wait below);
    /// 4. every value removed or expired before the call has been dropped — unless some
    ///    thread held an epoch pin for the whole of [`MAX_RECLAIM_WAIT`], or the calling
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
    /// operations in flight.
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
    /// [`CacheBuilder::time_to_live`]); `None` if entries stored that way never expire.
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

    /// The time-to-idle, if one is set (see [`CacheBuilder::time_to_idle`]).
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

    /// The total weight of the stored entries: with a [`weigher`](CacheBuilder::weigher),
    /// the sum of their weights; with only a [`max_capacity`](CacheBuilder::max_capacity),
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

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// `get` for a key already located.
    fn get_located<Q>(&self, hash: u64, index: usize, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let mut fired = Vec::new();
        let (value, turned) = {
            let guard = epoch::pin();
            let value = self
                .find(hash, index, key, &guard, true, true)
                .map(|n| n.value.clone());
            (value, self.read_turn_pinned(index, &guard, &mut fired))
        };
        self.after_write(index, fired, turned);
        value
    }

    /// The coalesced load behind `get_with` and friends (see `load`): the outcome this
    /// caller gets. `shares` says which outcomes of another caller's load this caller
    /// takes as its own; for any other it retries (and may lead).
    fn load(
        &self,
        key: K,
        init: impl FnOnce() -> Outcome<V>,
        shares: impl Fn(&Outcome<V>) -> bool,
    ) -> Outcome<V>
    where
        V: Clone,
    {
        let (hash, index) = self.locate(&key);
        let mut key = key;
        loop {
            if let Some(value) = self.get_located(hash, index, &key) {
                return Outcome::Value(Arc::new(value));
            }
            let present = |k: &K| {
                let guard = epoch::pin();
                self.find(hash, index, k, &guard, false, false).is_some()
            };
            match self.flights.join(index, hash, key, present) {
                Found::Present(mine) => key = mine,
                Found::Wait {
                    flight,
                    same_key,
                    key: mine,
                } => {
                    key = mine;
                    if let Some(outcome) = flight.wait() {
                        if same_key && shares(&outcome) {
                            return outcome;
                        }
                    }
                }
                Found::Lead(mut lead) => {
                    // Unpinned, no lock held: the loader may be slow and may call back.
                    let outcome = match init() {
                        Outcome::Value(value) => {
                            let value = Arc::try_unwrap(value).unwrap_or_else(|v| (*v).clone());
                            let key = lead.take_key();
                            Outcome::Value(Arc::new(self.get_or_insert_with(key, || value)))
                        }
                        other => other,
                    };
                    lead.finish(outcome.clone());
                    return outcome;
                }
            }
        }
    }

    /// The key's hash (the user's, mixed: see `table::mix`) and its segment.
    fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, usize) {
        let hash = crate::table::mix(self.hasher.hash_one(key));
        // Top bits pick the segment; the table uses the low 32 bits (home group) and bits
        // 32..47 (slot tags), so the three are independent.
        let index = hash.checked_shr(64 - self.segment_bits).unwrap_or(0) as usize;
        (hash, index)
    }

    fn deadline(ttl: Option<Duration>, now: Reading) -> u64 {
        ttl.map_or(NEVER, |t| now.deadline_after(t))
    }

    /// A found node's liveness check: its TTL deadline against the clock (read only when
    /// it has one); with a time-to-idle, also its idle stamp, which a counted read (`touch`)
    /// moves to now. In a bounded cache a counted read also raises the node's access count.
    fn live_now(&self, node: NodePtr<'_, K, V>, touch: bool) -> bool {
        self.live_with(node, touch, || self.ticker.read())
    }

    /// [`live_now`](Self::live_now) with the clock read by `read` (called only when there
    /// is a deadline or an idle limit to check).
    #[inline]
    fn live_with(&self, node: NodePtr<'_, K, V>, touch: bool, read: impl Fn() -> Reading) -> bool {
        let Some(ext) = node.ext() else {
            return node.deadline() == NEVER || !read().reached(node.deadline());
        };
        let deadline = node.expiry_deadline();
        if self.limits.idle_ticks == 0 {
            if deadline != NEVER && read().reached(deadline) {
                return false;
            }
        } else {
            let now = read();
            // Relaxed: see `Ext::idle`; a stamp is a hint that only moves later.
            let idle = ext.idle.load(Ordering::Relaxed);
            if now.reached(deadline) || now.tick() >= self.limits.idle_deadline(idle) {
                return false;
            }
            if touch && idle < now.tick() {
                ext.idle.store(now.tick(), Ordering::Relaxed);
            }
        }
        if touch && self.limits.weighed {
            node.touch();
        }
        true
    }

    /// A touching read's liveness check, then the policy's read question, with one clock
    /// reading for both (see `expiry`).
    fn live_and_asked<'g>(
        &self,
        node: NodePtr<'g, K, V>,
        index: usize,
    ) -> Option<NodePtr<'g, K, V>> {
        let reading = self.ticker.read();
        if !self.live_with(node, true, || reading) {
            return None;
        }
        self.ask_read(node, index, reading);
        Some(node)
    }

    /// Whether a node is expired at tick `now` (TTL or idle), for its remover's cause.
    fn expired_at(&self, node: &NodePtr<'_, K, V>, now: u64) -> bool {
        let deadline = node.expiry_deadline();
        (deadline != NEVER && deadline <= now)
            || node.ext().is_some_and(|ext| {
                now >= self.limits.idle_deadline(ext.idle.load(Ordering::Relaxed))
            })
    }

    /// The live node for `key`. A counted read (`count`: a `get`) is a hit or a miss; a
    /// touching one (`touch`: any read that counts as an access) restarts the entry's idle
    /// time and raises its access count (see [`live_now`](Self::live_now)).
    fn find<'g, Q>(
        &self,
        hash: u64,
        index: usize,
        key: &Q,
        guard: &'g Guard,
        count: bool,
        touch: bool,
    ) -> Option<NodePtr<'g, K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let found = self.segments[index]
            .table
            .lookup(hash, |n| n.key.borrow() == key, guard);
        let found = if touch && self.asks_reads() {
            found.and_then(|n| self.live_and_asked(n, index))
        } else {
            found.filter(|n| self.live_now(*n, touch))
        };
        if count {
            self.stats.record(if found.is_some() {
                Event::Hit
            } else {
                Event::Miss
            });
        }
        found
    }

    /// The weight of an entry about to be stored (runs the weigher: call unpinned).
    fn weigh(&self, key: &K, value: &V) -> u32 {
        self.weigher.as_ref().map_or(1, |w| w(key, value))
    }

    /// A node for an entry written at `reading`, with an extension when the cache needs
    /// one, and a timer when the write asked the expiry policy.
    fn node(
        &self,
        hash: u64,
        key: K,
        value: V,
        deadline: Deadline,
        reading: Reading,
        weight: u32,
    ) -> NodeBox<K, V> {
        let timer = deadline.policy.map(|p| (p, reading.nanos()));
        let ext = (self.limits.extended() || timer.is_some()).then_some(ExtInit {
            idle: reading.tick(),
            weight,
            timer,
        });
        NodeBox::new(hash, key, value, deadline.ttl, ext)
    }

    /// Whether an entry of `weight` is refused outright (heavier than the whole bound).
    fn refused(&self, weight: u32) -> bool {
        u64::from(weight) > self.limits.max
    }

    fn put(&self, key: K, value: V, ttl: Option<Duration>) {
        let now = self.ticker.read();
        if ttl.is_some_and(|t| t.is_zero()) || self.tti.is_some_and(|t| t.is_zero()) {
            return self.put_expired(key, value, now.tick(), RemovalCause::Expired);
        }
        let weight = self.weigh(&key, &value);
        if self.refused(weight) {
            return self.put_expired(key, value, now.tick(), RemovalCause::Evicted);
        }
        let (hash, index) = self.locate(&key);
        let segment = &self.segments[index];
        let mut fired = Vec::new();
        let node = self.node(
            hash,
            key,
            value,
            Deadline::ttl(Self::deadline(ttl, now)),
            now,
            weight,
        );
        let charge = self.limits.charge_guard(weight);
        let (departed, full, turned) = {
            let guard = epoch::pin();
            let inserted = segment.table.insert(node, |a, b| a == b, |_| false, &guard);
            let (departed, full) = match inserted {
                Insert::New(new) => {
                    charge.keep();
                    self.linked_new(segment, new);
                    (None, None)
                }
                Insert::Replaced { old, new } => {
                    charge.keep();
                    (self.linked_over(index, old, new, now.tick()), None)
                }
                Insert::Full { unused } => {
                    drop(charge);
                    (None, Some(unused))
                }
                Insert::Kept { .. } | Insert::Vacant { .. } => {
                    unreachable!("`keep` refused every existing entry, and vacant keys are taken")
                }
            };
            (
                departed,
                full,
                self.turn_pinned(index, now.tick(), &guard, &mut fired),
            )
        };
        if let Some(unused) = full {
            // No room for the key's hash (see `Insert::Full`): refused like a value
            // heavier than the bound. The key was absent, so nothing was replaced.
            let (key, value) = unused.into_parts();
            let cause = RemovalCause::Evicted;
            return self.unstored(hash, index, key, value, cause, None, fired, turned);
        }
        self.after_write(index, departed.into_iter().chain(fired), turned);
    }

    /// An entry that is not stored (a zero TTL or TTI: `Expired`; heavier than the bound:
    /// `Evicted`): remove what is there, and hand the value straight to the listener.
    fn put_expired(&self, key: K, value: V, now: u64, cause: RemovalCause) {
        let (hash, index) = self.locate(&key);
        let segment = &self.segments[index];
        let mut fired = Vec::new();
        let (old, turned) = {
            let guard = epoch::pin();
            let old = segment
                .table
                .remove(hash, |n| n.key == key, &guard)
                .map(|old| self.departed_by_caller(index, old, RemovalCause::Replaced, now));
            (old, self.turn_pinned(index, now, &guard, &mut fired))
        };
        self.unstored(hash, index, key, value, cause, old, fired, turned);
    }

    /// The unpinned end of a write whose value is not stored: counts it (an update if it
    /// replaced a live entry, `old`), hands the value to the listener as `cause` with the
    /// other departures, and finishes the write.
    #[allow(clippy::too_many_arguments)]
    fn unstored(
        &self,
        hash: u64,
        index: usize,
        key: K,
        value: V,
        cause: RemovalCause,
        old: Option<(RemovalCause, Option<Held<K, V>>)>,
        fired: Vec<Held<K, V>>,
        turned: bool,
    ) {
        self.stats.record(
            if old
                .as_ref()
                .is_some_and(|(cause, _)| *cause == RemovalCause::Replaced)
            {
                Event::Update
            } else {
                Event::Insert
            },
        );
        self.stats.record(if cause == RemovalCause::Evicted {
            Event::Eviction
        } else {
            Event::Expiration
        });
        // The value was never stored: it leaves as a node that only its remover holds
        // (never linked, never scheduled), so it is told like any departure, and freed
        // through the reclamation like any node.
        let never_stored = self.notifier.wants().then(|| {
            let node = NodeBox::new(hash, key, value, NEVER, None);
            node.meta
                .fetch_or(REMOVED | UNLINKED | DETACHED, sync::Ordering::Relaxed);
            // SAFETY: from `NodeBox::into_raw`, alive until retired; this thread is its
            // only holder (its remover) and has not set RELEASED.
            unsafe { Held::new(NodePtr::from_raw(node.into_raw()), cause, index) }
        });
        let old = old.and_then(|(_, held)| held);
        let departed = old.into_iter().chain(never_stored).chain(fired);
        self.after_write(index, departed, turned);
    }

    /// Bookkeeping after linking a node under a new key (pinned phase).
    fn linked_new(&self, segment: &Segment<K, V>, new: NodePtr<'_, K, V>) {
        self.stats.record(Event::Insert);
        segment.linked(new);
    }

    /// Bookkeeping after `new` replaced `old`, whose remover the caller is (pinned phase).
    fn linked_over(
        &self,
        index: usize,
        old: NodePtr<'_, K, V>,
        new: NodePtr<'_, K, V>,
        now: u64,
    ) -> Option<Held<K, V>> {
        let (cause, held) = self.departed_by_caller(index, old, RemovalCause::Replaced, now);
        self.stats.record(if cause == RemovalCause::Replaced {
            Event::Update
        } else {
            Event::Insert
        });
        self.segments[index].linked(new);
        held
    }

    /// Remover duties for an entry a caller took out (pinned phase): its cause (`Expired` if
    /// it had lapsed), the count, the wheel hand-off, and a hold for the listener if any.
    fn departed_by_caller(
        &self,
        index: usize,
        node: NodePtr<'_, K, V>,
        live_cause: RemovalCause,
        now: u64,
    ) -> (RemovalCause, Option<Held<K, V>>) {
        let cause = if self.expired_at(&node, now) {
            self.stats.record(Event::Expiration);
            RemovalCause::Expired
        } else {
            if live_cause == RemovalCause::Explicit {
                self.stats.record(Event::Removal);
            }
            live_cause
        };
        let hold = self.notifier.wants();
        self.segments[index].removed(node, hold);
        // SAFETY: we are the remover and `removed` left RELEASED unset (`hold`).
        let held = hold.then(|| unsafe { Held::new(node, cause, index) });
        (cause, held)
    }

    fn remove<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.ticker.now();
        let (hash, index) = self.locate(key);
        let mut fired = Vec::new();
        let (out, departed, turned) = {
            let guard = epoch::pin();
            let node =
                self.segments[index]
                    .table
                    .remove(hash, |n| n.key.borrow() == key, &guard)?;
            let (cause, held) = self.departed_by_caller(index, node, RemovalCause::Explicit, now);
            // Still pinned: the node cannot be freed under us even when not held.
            let out = (cause == RemovalCause::Explicit).then(|| read(&node.value));
            (out, held, self.turn_pinned(index, now, &guard, &mut fired))
        };
        self.after_write(index, departed.into_iter().chain(fired), turned);
        out
    }

    fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        let (hash, index) = self.locate(&key);
        {
            let guard = epoch::pin();
            if let Some(node) = self.find(hash, index, &key, &guard, false, true) {
                return node.value.clone();
            }
        }
        // Unpinned: `init` may take seconds without holding back any reclamation.
        let value = init();
        let reading = self.ticker.read();
        let weight = self.weigh(&key, &value);
        // Unpinned too: the policy's answer for a new entry (what it replaces, if anything,
        // has lapsed, so this is a creation).
        let zero_limit =
            self.ttl.is_some_and(|t| t.is_zero()) || self.tti.is_some_and(|t| t.is_zero());
        let deadline = if zero_limit {
            None // nothing is stored whatever the policy says: not asked
        } else {
            self.write_deadline(&key, &value, None, reading)
        };
        let unstored = if deadline.is_none() {
            Some(RemovalCause::Expired)
        } else {
            self.refused(weight).then_some(RemovalCause::Evicted)
        };
        if let Some(cause) = unstored {
            // An entry stored while `init` ran wins, as below; otherwise the value goes to
            // the listener unstored, and nothing is removed (an entry there has lapsed).
            let live = {
                let guard = epoch::pin();
                self.find(hash, index, &key, &guard, false, false)
                    .map(|n| n.value.clone())
            };
            if let Some(live) = live {
                drop(value);
                return live;
            }
            let out = value.clone();
            self.unstored(hash, index, key, value, cause, None, Vec::new(), false);
            return out;
        }
        let now = reading.tick();
        let segment = &self.segments[index];
        // Some here: a zero answer was not stored above.
        let node = self.node(
            hash,
            key,
            value,
            deadline.unwrap_or(Deadline::ttl(now)),
            reading,
            weight,
        );
        let charge = self.limits.charge_guard(weight);
        let keep = |existing: NodePtr<'_, K, V>| !self.expired_at(&existing, now);
        let mut fired = Vec::new();
        let (out, departed, unused, refused, turned) = {
            let guard = epoch::pin();
            let inserted = segment.table.insert(node, |a, b| a == b, keep, &guard);
            // Settle the weight before any clone (user code) can unwind.
            if matches!(inserted, Insert::Kept { .. } | Insert::Full { .. }) {
                drop(charge);
            } else {
                charge.keep();
            }
            // Every clone runs before the turn: a panicking one must not drop the
            // departures the turn takes out.
            let (out, departed, unused, refused) = match inserted {
                Insert::New(new) => {
                    self.linked_new(segment, new);
                    (new.value.clone(), None, None, false)
                }
                Insert::Replaced { old, new } => {
                    let held = self.linked_over(index, old, new, now);
                    (new.value.clone(), held, None, false)
                }
                Insert::Kept { existing, unused } => {
                    (existing.value.clone(), None, Some(unused), false)
                }
                // No room for the key's hash (see `Insert::Full`): the caller gets its
                // value, which is refused below, unpinned, as one heavier than the bound.
                Insert::Full { unused } => (unused.value.clone(), None, Some(unused), true),
                Insert::Vacant { .. } => unreachable!("vacant keys are taken"),
            };
            let turned = self.turn_pinned(index, now, &guard, &mut fired);
            (out, departed, unused, refused, turned)
        };
        let unused = unused.map(NodeBox::into_parts);
        if refused {
            let (key, value) = unused.expect("a refused insert hands its node back");
            let cause = RemovalCause::Evicted;
            self.unstored(hash, index, key, value, cause, None, fired, turned);
            return out;
        }
        self.after_write(index, departed.into_iter().chain(fired), turned);
        // The losing value is the caller's, dropped here, unpinned, after the departures
        // (its `Drop` may call back into the cache).
        drop(unused);
        out
    }

    fn clear(&self) {
        let now = self.ticker.now();
        for index in 0..self.segments.len() {
            let mut fired = Vec::new();
            let (departed, turned): (Vec<Held<K, V>>, bool) = {
                let guard = epoch::pin();
                let removed = self.segments[index].table.remove_all(&guard);
                let departed = removed
                    .into_iter()
                    .filter_map(|n| {
                        self.departed_by_caller(index, n, RemovalCause::Explicit, now)
                            .1
                    })
                    .collect();
                (departed, self.turn_pinned(index, now, &guard, &mut fired))
            };
            self.after_write(index, departed.into_iter().chain(fired), turned);
        }
    }

    /// Full turns over every segment, bounded by what is due at `now` and queued when each
    /// segment's first turn begins; then the listener for every expiry, and sealing. Returns
    /// which segments' tables are migrating.
    fn maintain_all(&self, now: u64) -> Vec<bool> {
        let mut migrating = vec![false; self.segments.len()];
        for (index, migrating) in migrating.iter_mut().enumerate() {
            let mut drained = false;
            loop {
                let mut fired = Vec::new();
                let turn = self.turn(index, now, Mode::Full { drain: !drained }, &mut fired);
                drained |= turn.drained;
                *migrating = turn.migrating;
                self.notifier.deliver(fired, |h| self.release(h));
                if drained && !turn.due_left {
                    break;
                }
            }
        }
        self.enforce_bound(now);
        // Departures queued by listeners (this thread's delivery loop takes a few rounds).
        self.notifier.deliver(None, |h| self.release(h));
        for segment in self.segments.iter() {
            segment.table.reclaim.seal();
        }
        migrating
    }

    /// While the total weight is over the bound, goes round the segments evicting (each
    /// segment's turns see the same global total). Bounded: it stops after a round that
    /// evicted nothing, or once it has evicted as many entries as the cache held when it
    /// began (what concurrent writers add meanwhile is theirs to evict).
    fn enforce_bound(&self, now: u64) {
        let mut allowance = self.len() + 1;
        while self.limits.over() && allowance > 0 {
            let mut evicted = 0;
            for index in 0..self.segments.len() {
                if !self.limits.over() {
                    break;
                }
                let mut fired = Vec::new();
                let turn = self.turn(index, now, Mode::Full { drain: false }, &mut fired);
                evicted += turn.evicted;
                self.notifier.deliver(fired, |h| self.release(h));
            }
            if evicted == 0 {
                break;
            }
            allowance = allowance.saturating_sub(evicted);
        }
    }

    fn run_pending_tasks(&self) {
        let now = self.ticker.now();
        let mut migrating = self.maintain_all(now);
        // Free everything sealed so far, waiting for grace periods while other threads'
        // pins allow (bounded), never for pins of this thread's own.
        let may_wait = !epoch::is_pinned() && !reclaim::is_freeing();
        // Departures other threads' turns took out before ours ended: wait for their
        // listeners too (not from inside this cache's listener, whose own outer delivery
        // may hold some of them).
        let owed: Option<Vec<u8>> = (self.notifier.wants() && !self.notifier.delivering_here())
            .then(|| self.segments.iter().map(Segment::owed_before).collect());
        let mut targets = vec![None; self.segments.len()];
        let mut freed = vec![false; self.segments.len()];
        let mut patience = Patience::new(MAX_RECLAIM_WAIT);
        loop {
            let mut done = true;
            for (index, segment) in self.segments.iter().enumerate() {
                if migrating[index] {
                    let mut fired = Vec::new();
                    migrating[index] = self
                        .turn(index, now, Mode::Full { drain: false }, &mut fired)
                        .migrating;
                    self.notifier.deliver(fired, |h| self.release(h));
                }
                if !freed[index] {
                    freed[index] =
                        segment.table.reclaim.free_pending(&mut targets[index]) == Progress::Done;
                }
                done &= freed[index] && !migrating[index] && !segment.table.garbage_pending();
                done &= owed.as_ref().is_none_or(|g| segment.owed(g[index]) == 0);
            }
            if done || !may_wait || patience.exhausted() {
                return;
            }
            // Departures listeners queued meanwhile are delivered here too.
            self.notifier.deliver(None, |h| self.release(h));
            patience.pause(|| epoch::pin().flush());
        }
    }

    /// The reaper's round: the same bounded full turns, then one push of the epoch and
    /// whatever is ready freed, without waiting.
    fn reap(&self) {
        let now = self.ticker.now();
        let _ = self.maintain_all(now);
        epoch::pin().flush();
        for segment in self.segments.iter() {
            segment.free_ready(usize::MAX);
        }
    }
}

/// Lets go of a departed node's remover hold (see `table::node`).
fn release<K, V>(segments: &[Segment<K, V>], held: Held<K, V>) {
    let (index, owed) = (held.segment, held.owed);
    // SAFETY: the hold kept the node alive until now; it is settled at once below.
    let node = unsafe { NodePtr::from_raw(held.into_raw()) };
    segments[index].table.settle(node, RELEASED);
    if let Some(generation) = owed {
        segments[index].delivered(generation);
    }
}

/// The parts of the protocol that need no hashing (so `Pinned`'s `Drop` can use them).
impl<K, V, S> Inner<K, V, S> {
    /// A write's (or an owed read's) maintenance turn, in the operation's own pinned phase
    /// (one pin per operation): if the segment is due. (Also inside a listener, this
    /// cache's or another's: what the turn takes out is queued until that listener returns
    /// if it is this cache's, see `policy`.)
    /// Entries it expired go to `fired` for the unpinned phase. True if it took the turn.
    fn turn_pinned(
        &self,
        index: usize,
        now: u64,
        guard: &Guard,
        fired: &mut Vec<Held<K, V>>,
    ) -> bool {
        if !self.segments[index].due(now) {
            return false;
        }
        let mut sink = Fired::new(index, self.notifier.wants(), fired);
        let mode = if self.limits.far_over() {
            Mode::Press
        } else {
            Mode::Write
        };
        let turn = self.segments[index].maintain(now, mode, guard, &mut sink);
        self.count(&turn);
        if self.limits.over() && self.segments.len() > 1 {
            // Still over the bound: this segment had too little to evict. Help one other
            // segment (chosen per thread, round robin), so the bound holds globally.
            let other =
                (index + 1 + next_helped() % (self.segments.len() - 1)) % self.segments.len();
            let mut sink = Fired::new(other, self.notifier.wants(), sink.into_out());
            let turn = self.segments[other].maintain(now, mode, guard, &mut sink);
            self.count(&turn);
        }
        true
    }

    /// Counts what a maintenance turn expired and evicted.
    fn count(&self, turn: &Turn) {
        if turn.expired > 0 {
            self.stats.add(Event::Expiration, turn.expired as u64);
        }
        if turn.evicted > 0 {
            self.stats.add(Event::Eviction, turn.evicted as u64);
        }
    }

    /// A read's part: one read in [`READ_TURN_EVERY`] per thread looks at whether its
    /// segment is due (reading the clock only then) and takes a turn if so.
    fn read_turn_pinned(&self, index: usize, guard: &Guard, fired: &mut Vec<Held<K, V>>) -> bool {
        read_turn_owed() && self.turn_pinned(index, self.ticker.now(), guard, fired)
    }

    /// The unpinned phase of an operation (see the module docs): the listener for the
    /// departures (its own and those its turn expired), then sealing and, after a turn, a
    /// bounded slice of freeing.
    fn after_write(
        &self,
        index: usize,
        departed: impl IntoIterator<Item = Held<K, V>>,
        turned: bool,
    ) {
        let segment = &self.segments[index];
        self.notifier.deliver(departed, |h| self.release(h));
        segment.table.reclaim.seal_if_full();
        if turned {
            segment.free_ready(FREE_BUDGET);
        }
    }

    /// A read turn owed by a [`Pinned`] guard, taken when it drops (its own short pin).
    fn read_turn(&self, index: usize) {
        let mut fired = Vec::new();
        let turned = {
            let guard = epoch::pin();
            self.turn_pinned(index, self.ticker.now(), &guard, &mut fired)
        };
        self.after_write(index, fired, turned);
    }

    /// One maintenance turn on segment `index` under a short pin of its own; the entries it
    /// expired go to `fired` (held, when there is a listener) for the caller to deliver
    /// after this returns, unpinned.
    fn turn(&self, index: usize, now: u64, mode: Mode, fired: &mut Vec<Held<K, V>>) -> Turn {
        let turn = {
            let guard = epoch::pin();
            let mut sink = Fired::new(index, self.notifier.wants(), fired);
            self.segments[index].maintain(now, mode, &guard, &mut sink)
        };
        self.count(&turn);
        turn
    }

    /// Lets go of a departed node once its listener has returned.
    fn release(&self, held: Held<K, V>) {
        release(&self.segments, held);
    }

    fn len(&self) -> usize {
        self.segments.iter().map(|s| s.table.len()).sum()
    }
}

impl<K, V, S> Drop for Inner<K, V, S> {
    fn drop(&mut self) {
        // Departures queued by listeners are still owed their notification.
        let segments = &self.segments;
        self.notifier.deliver_all_queued(|h| release(segments, h));
        // The last handle is gone, so no thread can reach any node: the segments free
        // everything now (see `reclaim`), without waiting for anyone's pin.
        drop(std::mem::take(&mut self.segments));
    }
}
