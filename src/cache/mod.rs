//! The public cache: hashing to a segment, each operation's two phases, and the
//! departure protocol.
//!
//! ## Two phases
//! Every operation reads the clock first (so a panicking [`Clock`](crate::Clock) changes
//! nothing), hashes once, and works in one segment, in two phases:
//! 1. **Pinned** (one pin per operation; a read that owes a maintenance turn, one in 64 per
//!    thread, takes that turn under a second, short pin): the table work, and for each
//!    entry it took out (it won the slot's CAS, so it is the entry's unique *remover*) the
//!    remover's duties: the count, the wheel hand-off (`Segment::removed`), and a [`Held`]
//!    on the node if there is a listener; then, if the segment is due, a bounded
//!    maintenance turn (see `segment`), which runs no user code either.
//! 2. **Unpinned, no lock held**: the listener for every departure (its own and those its
//!    turn expired), each hold released once it has returned; then sealing and, after a
//!    turn, a bounded slice of freeing. A read that took no turn has no second phase: it
//!    took nothing out and retired nothing.
//!
//! So the user code the cache calls on its own — the listener, `init`, key and value
//! `Drop`s — never runs pinned or under a lock of ours. (`Hash`, `Eq` and `V::clone` run
//! pinned: they are how an entry is found and read.)
//!
//! ## Maintenance without a caller
//! Writes take turns on their segment when it is due. So do reads: one read in
//! `maintain::READ_TURN_EVERY` per thread (a thread-local count, no shared write) checks its
//! segment and takes a turn if it is due, so a cache that only sees `get` traffic still
//! removes lapsed entries and gives their memory back. `run_pending_tasks` and the reaper
//! do full turns over every segment, bounded by what was pending when they began.
//!
//! ## Where things are
//! The public methods and their docs are in `api_keyed` (one key) and `api_whole` (the
//! whole cache), each a line or two over the engine: `read` (locating a key, liveness),
//! `write` (storing, refusing, removing, the remover's duties), `load` (coalesced loads: the flights) and `load_driver` (the one loop that drives them, blocking or async),
//! `compute`, `iter`, `expiry` (the `Expiry` policy), and `maintain` (turns, the unpinned
//! phase, full turns, teardown). `listener` tells the listener; `reaper` is the optional
//! maintenance thread.

mod api_keyed;
mod api_whole;
mod build;
mod builder;
pub(crate) mod builder_limits {
    pub use super::builder::{MAX_INITIAL_CAPACITY, MAX_SEGMENTS, MIN_SEGMENT_SHARE};
}
mod compute;
mod config;
mod departures;
mod expiry;
mod iter;
pub(crate) mod listener;
mod load;
#[cfg(feature = "async")]
mod load_async;
mod load_driver;
mod maintain;
mod pinned;
mod read;
mod reaper;
mod retime;
mod write;

pub use builder::CacheBuilder;
pub use compute::{Computed, Op};
pub use config::Policy;
pub use expiry::Expiry;
pub use iter::{IntoClones, Iter};
pub use pinned::Pinned;

use crate::cache::listener::Notifier;
use crate::clock::Ticker;
use crate::evict::Limits;
use crate::segment::Segment;
use crate::stats::Stats;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use load::Flights;
use std::fmt;

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The longest [`Cache::run_pending_tasks`] waits for other threads' epoch pins to end
/// before it returns with some reclamation left undone (see its docs).
pub const MAX_RECLAIM_WAIT: Duration = Duration::from_millis(100);

/// The weigher's type.
pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync + 'static>;

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
    expiry: Option<expiry::BoxedExpiry<K, V>>,
    /// The `Instant` the clock's zero stands for, for the policy (see `expiry`).
    origin: std::time::Instant,
    /// The builder's `name`, if any.
    name: Option<Arc<str>>,
    /// Whether any entry was ever given a deadline (a TTL, a time-to-idle or a policy in
    /// the configuration, or one `insert_with_ttl`): until then no entry can lapse, and an
    /// over-the-bound write skips its sweep for lapsed entries (see `maintain`).
    timed: AtomicBool,
    /// The small queue's hill climber (a bounded cache only; see `evict::climb`).
    climber: Option<std::sync::Mutex<crate::evict::climb::Climber>>,
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
            .field("name", &self.inner.name)
            .field("len", &self.inner.len())
            .field("segments", &self.inner.segments.len())
            .field("time_to_live", &self.inner.ttl)
            .field("tick", &self.inner.ticker.tick())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
