//! Striped event counters, so counting never makes a shared hot cache line, and a read
//! counts with a plain load and store, no read-modify-write.
//!
//! Every thread that counts holds a small integer, its *slot*, for as long as it lives:
//! the lowest one free in a process-wide allocator, given back when the thread exits. A
//! cache has a stripe of counters per slot up to its stripe count (twice the machine's
//! parallelism, at most 256) less one, and a thread whose slot has a stripe is that
//! stripe's only writer, so it bumps a counter with a Relaxed load and a Relaxed store. (A
//! thread that takes over a slot given back by an exited one sees its counts: the
//! hand-over goes through the allocator's lock.) Threads beyond share the last stripe and
//! use an RMW there. [`Stats::snapshot`] sums the stripes; counts are exact once the counted operations
//! have returned, and a snapshot taken meanwhile may miss some in flight.

use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// A snapshot of a cache's counters, from [`Cache::stats`](crate::Cache::stats).
///
/// The counters start at zero when the cache is built and only grow. Counting costs no
/// shared write: each thread counts in its own stripe, and a snapshot sums them, so it is
/// exact once the counted operations have returned (one taken while other threads work
/// may miss operations in flight). `contains_key` and `get_or_insert_with`'s lookup count
/// neither as a hit nor as a miss.
///
/// ```
/// use std::time::Duration;
/// use wheelcache::{Cache, CacheStats, ManualClock};
///
/// let clock = ManualClock::new();
/// let cache: Cache<&str, u32> = Cache::builder().clock(clock.clone()).build();
/// cache.insert("a", 1);                                  // insert
/// cache.insert("a", 2);                                  // update
/// cache.insert("b", 3);                                  // insert
/// cache.insert_with_ttl("c", 4, Duration::from_secs(1)); // insert
/// assert_eq!(cache.get("a"), Some(2));                   // hit
/// assert_eq!(cache.get("z"), None);                      // miss
/// cache.remove("b");                                     // removal
/// clock.advance(Duration::from_secs(1));
/// cache.run_pending_tasks();                             // "c" expires
///
/// let stats = cache.stats();
/// assert_eq!(stats, CacheStats {
///     hits: 1,
///     misses: 1,
///     inserts: 3,
///     updates: 1,
///     removals: 1,
///     expirations: 1,
///     evictions: 0,
///     len: 1,
/// });
/// let lookups = stats.hits + stats.misses;
/// assert_eq!(stats.hits as f64 / lookups as f64, 0.5); // the hit ratio
/// ```
///
/// With the `serde` feature it is `Serialize` and `Deserialize`, field by field (for a
/// metrics endpoint or a log line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CacheStats {
    /// Lookups that found a live entry: `get`, `pin().get` and `pin().get_key_value`
    /// calls, and the lookup each `get_with`, `try_get_with` and `optionally_get_with`
    /// call starts with.
    pub hits: u64,
    /// Lookups (as for [`hits`](Self::hits)) that found nothing, or only an expired
    /// entry. A coalesced load's caller that retries (after another caller's loader
    /// panicked or shared an outcome it does not take) counts its new lookup too.
    pub misses: u64,
    /// Entries stored under a key that had no live entry. An insert that stores nothing
    /// (a zero TTL or time-to-idle, a weight over the bound) counts here or in
    /// [`updates`](Self::updates) as a stored one would, and also as an
    /// [`expiration`](Self::expirations) or an [`eviction`](Self::evictions).
    pub inserts: u64,
    /// Entries stored in place of a live entry with the same key.
    pub updates: u64,
    /// Live entries removed at a caller's request (`remove`, `invalidate`, `clear` and the
    /// other explicit removals).
    pub removals: u64,
    /// Entries that left because their TTL passed (found by the wheel, or found expired by
    /// `remove`, `clear` or a replacing insert), or their time-to-idle, plus zero-TTL (or
    /// zero-TTI) inserts.
    pub expirations: u64,
    /// Entries evicted to respect the capacity bound (see
    /// [`CacheBuilder::max_capacity`](crate::CacheBuilder::max_capacity)), plus entries
    /// refused because they weigh more than the whole bound.
    pub evictions: u64,
    /// Entries in the cache when the snapshot was taken, as [`Cache::len`](crate::Cache::len)
    /// counts them: expired ones included until maintenance removes them.
    pub len: usize,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Hit = 0,
    Miss,
    Insert,
    Update,
    Removal,
    Expiration,
    Eviction,
}

const EVENTS: usize = 7;

#[derive(Debug, Default)]
struct Stripe([AtomicU64; EVENTS]);

#[derive(Debug)]
pub(crate) struct Stats {
    stripes: Box<[CachePadded<Stripe>]>,
}

/// Slots in use, process-wide (`true` = taken). A lock: taken once per thread, at its
/// first count and at its exit, never on a counting path.
static SLOTS: std::sync::Mutex<Vec<bool>> = std::sync::Mutex::new(Vec::new());

/// This thread's slot; gives it back when the thread exits.
struct Slot(usize);

impl Slot {
    fn take() -> Self {
        let mut slots = SLOTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = match slots.iter().position(|taken| !taken) {
            Some(free) => free,
            None => {
                slots.push(false);
                slots.len() - 1
            }
        };
        slots[index] = true;
        Self(index)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut slots = SLOTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots[self.0] = false;
    }
}

std::thread_local! {
    static SLOT: Slot = Slot::take();
}

impl Stats {
    /// `threads` is a hint: stripes are the next power of two at or above twice it.
    pub(crate) fn new(threads: usize) -> Self {
        // One stripe under loom: the stripe a thread gets depends on a process-wide
        // counter, which would make models nondeterministic.
        let n = if crate::sync::MODEL {
            1
        } else {
            threads.saturating_mul(2).clamp(2, 256).next_power_of_two()
        };
        Self {
            stripes: (0..n)
                .map(|_| CachePadded::new(Stripe::default()))
                .collect(),
        }
    }

    #[inline]
    pub(crate) fn record(&self, event: Event) {
        self.add(event, 1);
    }

    #[inline]
    pub(crate) fn add(&self, event: Event, n: u64) {
        if self.stripes.len() == 1 {
            // Relaxed: counters order nothing; a snapshot is a sum of independent counts.
            self.stripes[0].0[event as usize].fetch_add(n, Ordering::Relaxed);
            return;
        }
        // The last stripe is shared: by threads whose slot has no stripe of its own, and
        // during thread teardown, when the slot may be gone.
        let shared = self.stripes.len() - 1;
        let slot = SLOT.try_with(|s| s.0).unwrap_or(usize::MAX);
        if slot < shared {
            // This thread is the stripe's only writer (module docs): a plain increment.
            // Relaxed: counters order nothing and pair with nothing (a snapshot is a sum of
            // independent counts); the allocator's lock orders a slot's hand-over.
            let counter = &self.stripes[slot].0[event as usize];
            counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        } else {
            // Relaxed: counters order nothing.
            self.stripes[shared].0[event as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The count of `event` summed over the stripes.
    fn total(&self, event: Event) -> u64 {
        self.stripes
            .iter()
            // Relaxed: each counter is read on its own; they order nothing.
            .map(|s| s.0[event as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Hits and misses so far (the climber's sample; see `evict::climb`).
    pub(crate) fn hits_and_misses(&self) -> (u64, u64) {
        (self.total(Event::Hit), self.total(Event::Miss))
    }

    pub(crate) fn snapshot(&self, len: usize) -> CacheStats {
        let sum = |e: Event| self.total(e);
        CacheStats {
            hits: sum(Event::Hit),
            misses: sum(Event::Miss),
            inserts: sum(Event::Insert),
            updates: sum(Event::Update),
            removals: sum(Event::Removal),
            expirations: sum(Event::Expiration),
            evictions: sum(Event::Eviction),
            len,
        }
    }
}
