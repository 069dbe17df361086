//! A per-entry expiry policy: [`Expiry`], set with
//! [`CacheBuilder::expire_after`](super::CacheBuilder::expire_after).
//!
//! An entry's deadline is fixed when it is written: the earlier of the cache's TTL from
//! the write and the policy's answer for that write (`expire_after_create` for a key with
//! no live entry, `expire_after_update` for one that had). The time-to-idle, if any, still
//! applies on top, and a capacity bound may evict the entry earlier. An explicit
//! [`Cache::insert_with_ttl`](super::Cache::insert_with_ttl) sets that entry's TTL itself
//! and does not ask the policy.
//!
//! The policy runs inline in the write, like `Hash` and `Eq`: in `insert` and `compute`
//! it runs pinned, between reading the entry it answers for and swapping in the new one
//! (an insert with a policy is a compare-and-swap of the entry, as `compute` is, so the
//! answer always matches the entry it replaced; under contention it may be asked more than
//! once). In the loads (`get_with`, `get_or_insert_with`) it runs unpinned, after the
//! loader. It must be quick; it may read the cache, and a panic in it leaves the cache as
//! it was (the value is dropped, unpinned).
//!
//! Instants: the cache notes, when it is built, the `Instant` its clock's zero stands for
//! (`Instant::now()` less the clock's reading then), and passes that plus the clock's
//! reading. With a [`ManualClock`](crate::ManualClock), the instants passed are that
//! origin plus the manual time, so a policy sees exactly the time the test set.

use super::Inner;
use crate::clock::Reading;
use crate::table::node::NodePtr;
use std::hash::{BuildHasher, Hash};
use std::time::{Duration, Instant};

/// How long each entry lives, decided per entry when it is written (moka 0.12's `Expiry`,
/// without `expire_after_read`, which wheelcache does not have yet: an implementation
/// written for moka that defines it fails to compile here rather than being ignored).
///
/// `None` means the policy sets no deadline (the cache's TTL, if any, still does). A zero
/// duration stores nothing: the entry the policy was asked about, if any, is removed
/// (`Replaced`) and the value goes to the listener as `Expired`, as with a zero TTL (a
/// load's zero answer leaves an entry stored while the loader ran). Durations too large
/// for the clock's range mean "never".
///
/// ```
/// use std::time::{Duration, Instant};
/// use wheelcache::{Cache, Expiry, ManualClock};
///
/// /// Tokens live as long as they say; a refresh keeps the time left.
/// struct TokenExpiry;
///
/// impl Expiry<String, (String, Duration)> for TokenExpiry {
///     fn expire_after_create(
///         &self,
///         _key: &String,
///         value: &(String, Duration),
///         _created_at: Instant,
///     ) -> Option<Duration> {
///         Some(value.1)
///     }
/// }
///
/// let clock = ManualClock::new();
/// let cache: Cache<String, (String, Duration)> = Cache::builder()
///     .expire_after(TokenExpiry)
///     .clock(clock.clone())
///     .build();
/// cache.insert("a".into(), ("t1".into(), Duration::from_secs(10)));
/// cache.insert("b".into(), ("t2".into(), Duration::from_secs(60)));
/// clock.advance(Duration::from_secs(8));
/// // An update keeps the time left by default: "a" still lapses at 10 s.
/// cache.insert("a".into(), ("t1'".into(), Duration::from_secs(10)));
/// clock.advance(Duration::from_secs(2));
/// assert!(cache.get("a").is_none());
/// assert!(cache.get("b").is_some());
/// ```
pub trait Expiry<K, V>: Send + Sync + 'static {
    /// The lifetime of an entry written for a key with no live entry, from `created_at`.
    /// The default sets none.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use wheelcache::{Cache, Expiry, ManualClock};
    ///
    /// struct ByKey;
    /// impl Expiry<u32, u32> for ByKey {
    ///     fn expire_after_create(&self, key: &u32, _: &u32, _: Instant) -> Option<Duration> {
    ///         (*key != 0).then(|| Duration::from_secs(u64::from(*key)))
    ///     }
    /// }
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<u32, u32> =
    ///     Cache::builder().expire_after(ByKey).clock(clock.clone()).build();
    /// cache.insert(0, 0); // no deadline
    /// cache.insert(5, 5); // five seconds
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!((cache.get(&0), cache.get(&5)), (Some(0), None));
    /// ```
    fn expire_after_create(&self, key: &K, value: &V, created_at: Instant) -> Option<Duration> {
        let _ = (key, value, created_at);
        None
    }

    /// The lifetime of an entry written over a live one, from `updated_at`.
    /// `duration_until_expiry` is the time the replaced entry had left before its deadline
    /// (the earlier of its TTL and this policy's last answer), or `None` if it had none.
    /// The default keeps it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use wheelcache::{Cache, Expiry, ManualClock};
    ///
    /// /// Every write, first or not, gives the entry 30 seconds.
    /// struct ThirtyFromWrite;
    /// impl Expiry<&'static str, u32> for ThirtyFromWrite {
    ///     fn expire_after_create(&self, _: &&str, _: &u32, _: Instant) -> Option<Duration> {
    ///         Some(Duration::from_secs(30))
    ///     }
    ///     fn expire_after_update(
    ///         &self,
    ///         _: &&str,
    ///         _: &u32,
    ///         _: Instant,
    ///         _left: Option<Duration>,
    ///     ) -> Option<Duration> {
    ///         Some(Duration::from_secs(30))
    ///     }
    /// }
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<&str, u32> =
    ///     Cache::builder().expire_after(ThirtyFromWrite).clock(clock.clone()).build();
    /// cache.insert("a", 1);
    /// clock.advance(Duration::from_secs(20));
    /// cache.insert("a", 2); // 30 s from now
    /// clock.advance(Duration::from_secs(20));
    /// assert_eq!(cache.get("a"), Some(2));
    /// ```
    fn expire_after_update(
        &self,
        key: &K,
        value: &V,
        updated_at: Instant,
        duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        let _ = (key, value, updated_at);
        duration_until_expiry
    }
}

/// The time origin a cache passes its policy: the `Instant` its clock's zero stands for.
pub(super) fn origin_of(reading: Reading) -> Instant {
    let now = Instant::now();
    now.checked_sub(Duration::from_nanos(reading.nanos()))
        .unwrap_or(now)
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// The instant a clock reading stands for (see the module docs); a reading too far past
    /// the origin for `Instant` to hold (centuries) gives the latest one it can.
    fn instant(&self, reading: Reading) -> Instant {
        let mut by = Duration::from_nanos(reading.nanos());
        loop {
            if let Some(at) = self.origin.checked_add(by) {
                return at;
            }
            by /= 2;
        }
    }

    /// The deadline of an entry written now: the TTL's, or the policy's if earlier;
    /// `None` if the policy gave zero (the entry is not stored). `seen` is the live entry
    /// it replaces, if any. Runs the policy (user code): see the module docs for where.
    pub(super) fn write_deadline(
        &self,
        key: &K,
        value: &V,
        seen: Option<NodePtr<'_, K, V>>,
        reading: Reading,
    ) -> Option<u64> {
        let ttl = Self::deadline(self.ttl, reading);
        let Some(policy) = self.expiry.as_deref() else {
            return Some(ttl);
        };
        let at = self.instant(reading);
        let answer = match seen {
            None => policy.expire_after_create(key, value, at),
            Some(old) => {
                let left = reading.until(old.deadline());
                policy.expire_after_update(key, value, at, left)
            }
        };
        match answer {
            None => Some(ttl),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(ttl.min(reading.deadline_after(d))),
        }
    }
}
