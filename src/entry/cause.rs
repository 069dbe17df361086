//! Why an entry left: [`RemovalCause`], what the listener is told with each departure.

/// Why an entry left the cache: what the
/// [`eviction_listener`](crate::CacheBuilder::eviction_listener) is told with each
/// departure. Every entry that leaves does so for exactly one cause, and the listener
/// hears of it once (entries still present when the cache drops are not reported).
///
/// The enum is `#[non_exhaustive]`: match it with a wildcard arm, or use
/// [`was_evicted`](Self::was_evicted).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use wheelcache::{Cache, ManualClock, RemovalCause};
///
/// let clock = ManualClock::new();
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&log);
/// let cache: Cache<&str, u32> = Cache::builder()
///     .max_capacity(10)
///     .weigher(|_k, v: &u32| *v)
///     .clock(clock.clone())
///     .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((*k, *v, cause)))
///     .build();
///
/// cache.insert("a", 1);
/// cache.insert("a", 2);                                   // the 1 is Replaced
/// cache.remove("a");                                      // the 2 is Explicit
/// cache.insert_with_ttl("b", 3, Duration::from_secs(1));
/// clock.advance(Duration::from_secs(1));
/// cache.run_pending_tasks();                              // the 3 is Expired
/// cache.insert("c", 11);                                  // heavier than the bound: Evicted
///
/// assert_eq!(*log.lock().unwrap(), [
///     ("a", 1, RemovalCause::Replaced),
///     ("a", 2, RemovalCause::Explicit),
///     ("b", 3, RemovalCause::Expired),
///     ("c", 11, RemovalCause::Evicted),
/// ]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Removed at a caller's request: [`remove`](crate::Cache::remove),
    /// [`invalidate`](crate::Cache::invalidate), [`clear`](crate::Cache::clear) and the
    /// other explicit removals.
    Explicit,
    /// Replaced by an insert under the same key (also when that insert stores nothing
    /// itself: a zero TTL, or a value heavier than the bound, still displaces the old
    /// entry).
    Replaced,
    /// Its time-to-live or its time-to-idle passed (found by the timing wheel, or found
    /// lapsed by the operation that removed or replaced it), or it was inserted with a zero
    /// TTL or time-to-idle and never stored.
    Expired,
    /// Evicted to respect the capacity bound
    /// ([`max_capacity`](crate::CacheBuilder::max_capacity)), or refused because it
    /// weighs more than the whole bound (or because over 65,000 keys in its segment share
    /// its whole hash: see [`hasher`](crate::CacheBuilder::hasher)). Moka calls this `Size`.
    Evicted,
}

impl RemovalCause {
    /// Whether the cache removed the entry on its own (expiry or eviction) rather than at
    /// a caller's request (the same test as moka's `RemovalCause::was_evicted`).
    ///
    /// ```
    /// use wheelcache::RemovalCause;
    ///
    /// assert!(RemovalCause::Expired.was_evicted());
    /// assert!(RemovalCause::Evicted.was_evicted());
    /// assert!(!RemovalCause::Explicit.was_evicted());
    /// assert!(!RemovalCause::Replaced.was_evicted());
    /// ```
    pub fn was_evicted(self) -> bool {
        matches!(self, Self::Expired | Self::Evicted)
    }
}
