//! [`Policy`]: the configuration a cache was built with, as moka's `Cache::policy` reports it.

use std::time::Duration;

/// The configuration a cache was built with (see [`Cache::policy`](super::Cache::policy)).
///
/// ```
/// use std::time::Duration;
/// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::builder()
///     .max_capacity(1_000)
///     .time_to_live(Duration::from_secs(60))
///     .segments(4)
///     .build();
/// let policy = cache.policy();
/// assert_eq!(policy.max_capacity(), Some(1_000));
/// assert_eq!(policy.time_to_live(), Some(Duration::from_secs(60)));
/// assert_eq!(policy.time_to_idle(), None);
/// assert_eq!(policy.num_segments(), 4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub(super) max_capacity: Option<u64>,
    pub(super) time_to_live: Option<Duration>,
    pub(super) time_to_idle: Option<Duration>,
    pub(super) num_segments: usize,
}

impl Policy {
    /// The capacity bound (entries, or total weight with a weigher); `None` if unbounded.
    pub fn max_capacity(&self) -> Option<u64> {
        self.max_capacity
    }

    /// The default time-to-live of [`Cache::insert`](super::Cache::insert); `None` if none.
    pub fn time_to_live(&self) -> Option<Duration> {
        self.time_to_live
    }

    /// The time-to-idle; `None` if none.
    pub fn time_to_idle(&self) -> Option<Duration> {
        self.time_to_idle
    }

    /// The number of segments the key space is split into (a power of two).
    pub fn num_segments(&self) -> usize {
        self.num_segments
    }
}
