//! A per-entry expiry policy: [`Expiry`], set with
//! [`CacheBuilder::expire_after`](super::CacheBuilder::expire_after).
//!
//! An entry's deadline is set when it is written: the earlier of the cache's TTL from
//! the write and the policy's answer for that write (`expire_after_create` for a key with
//! no live entry, `expire_after_update` for one that had). Reads that count as an access
//! may move it (`expire_after_read`), either way, never past that TTL. The time-to-idle,
//! if any, still applies on top, and a capacity bound may evict the entry earlier. An
//! explicit [`Cache::insert_with_ttl`](super::Cache::insert_with_ttl) sets that entry's
//! TTL itself and does not ask the policy, on writes or reads.
//!
//! ## Deadlines that reads move
//! Each entry of a cache with a policy carries a *timer* (`entry::layout::Timer`): the
//! policy's own deadline (its last answer, which may lie past the TTL deadline the node
//! holds immutably) and the write's time (the `last_modified_at` reads are told). Readers
//! swap a new deadline into it. Expiry checks read the earlier of the timer and the TTL
//! deadline, so a read's answer takes effect at once; the timing wheel learns of it in
//! one of two ways:
//! - **Later**: nothing to do now. The wheel fires the node at the old deadline, reads the
//!   timer again and files it anew (as it does for a time-to-idle), or lets it go from
//!   the wheel if a read left it no deadline.
//! - **Earlier**: the reader asks for a re-file (`Segment::refile`) on the segment's
//!   cancel ring, under the node's `QUEUED` flag, the same protocol removals use: at most
//!   one request per node is pending, whoever serves it reads the latest deadline, and a
//!   request that finds the node removed only detaches it. The maintainer that expires or
//!   evicts a node with a request pending leaves the detaching to that request.
//!
//! The swap tells each reader whether its store moved the deadline earlier than the one
//! before it, whoever wrote that, so at every moment the wheel holds a node no later than
//! its deadline or a re-file is pending. Concurrent reads' answers race, and the last
//! swap wins, as in moka.
//!
//! Whether reads ask at all is found once: the default `expire_after_read` sets a
//! thread-local flag, and if the first read asked sees it set the cache stops asking.
//!
//! The policy runs inline in the write, like `Hash` and `Eq`: in `insert` and `compute`
//! it runs pinned, between reading the entry it answers for and swapping in the new one
//! (an insert with a policy is a compare-and-swap of the entry, as `compute` is, so the
//! answer always matches the entry it replaced; under contention it may be asked more than
//! once). In the loads (`get_with`, `get_or_insert_with`) it runs unpinned, after the
//! loader. It must be quick; it may read the cache, and a panic in it leaves the cache as
//! it was (the value is dropped, unpinned). The read answer runs pinned in the read that
//! asks it, with the entry borrowed. A read whose answer moves the deadline earlier swaps
//! the timer and queues one request; if the segment's ring of 32 requests is full (its
//! maintainers are that far behind) the read serves its request itself, waiting for the
//! maintenance lock, whose holder's turn is bounded, as a remover does.
//!
//! Instants: the cache notes, when it is built, the `Instant` its clock's zero stands for
//! (`Instant::now()` less the clock's reading then), and passes that plus the clock's
//! reading. With a [`ManualClock`](crate::ManualClock), the instants passed are that
//! origin plus the manual time, so a policy sees exactly the time the test set.

use super::Inner;
use crate::clock::{Reading, NEVER};
use crate::entry::node::NodePtr;
use crate::sync::{self, AtomicUsize, Ordering};
use std::cell::Cell;
use std::hash::{BuildHasher, Hash};
use std::time::{Duration, Instant};

/// How long each entry lives, decided per entry when it is written and moved by reads if
/// the policy wants (moka 0.12's `Expiry`, with its signatures and defaults).
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
    /// `duration_until_expiry` is the time the replaced entry had left before this
    /// policy's last answer for it, or `None` if that was `None` (or its write did not ask
    /// the policy, as `insert_with_ttl`'s does not), as in moka: the cache's TTL is not
    /// part of it, since it restarts with this write whatever the answer. The default
    /// keeps it, so a policy that overrides only `expire_after_create` leaves updates as
    /// they are without it (the TTL restarts; its own deadline stays where it was).
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

    /// The lifetime of an entry from a read at `read_at` that counts as an access (a
    /// `get`, a `Pinned::get` or `get_key_value`, a load that finds the entry; not
    /// `contains_key` or iteration). `duration_until_expiry` is the time left before this
    /// policy's current deadline for the entry (`None` for none; the cache's TTL is not
    /// part of it, as in moka), `last_modified_at` when it was written. The default keeps
    /// the time left.
    ///
    /// Reads cost nothing extra unless this method is overridden: the first read asked
    /// finds out, through the default body, and if it ran the cache never asks again. (So
    /// an implementation that forwards to another `Expiry`'s default for some entries
    /// only should return `duration_until_expiry` itself instead.) The read that asks
    /// still returns the value; a zero answer makes the entry lapse at once after it.
    /// An answer may move the deadline earlier or later, never past the cache's TTL from
    /// the write. A read made while a policy (this one or another cache's, any of its
    /// methods) runs on the same thread is not asked about, and entries written by `insert_with_ttl` keep their
    /// own deadline. It runs pinned, like `Hash` and `Eq`, and a panic in it propagates to
    /// the read, leaving the entry's deadline as it was (the read still counted as an
    /// access for the time-to-idle and the eviction policy).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use wheelcache::{Cache, Expiry, ManualClock};
    ///
    /// /// Sessions: 30 minutes from the last read, but at most 8 hours from the login.
    /// struct Session;
    /// impl Expiry<u64, String> for Session {
    ///     fn expire_after_create(&self, _: &u64, _: &String, _: Instant) -> Option<Duration> {
    ///         Some(Duration::from_secs(30 * 60))
    ///     }
    ///     fn expire_after_read(
    ///         &self,
    ///         _: &u64,
    ///         _: &String,
    ///         read_at: Instant,
    ///         _left: Option<Duration>,
    ///         login: Instant,
    ///     ) -> Option<Duration> {
    ///         let end = login + Duration::from_secs(8 * 3600);
    ///         Some(end.saturating_duration_since(read_at).min(Duration::from_secs(30 * 60)))
    ///     }
    /// }
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<u64, String> =
    ///     Cache::builder().expire_after(Session).clock(clock.clone()).build();
    /// cache.insert(7, "alice".to_string());
    /// for _ in 0..19 {
    ///     clock.advance(Duration::from_secs(25 * 60));
    ///     assert!(cache.get(&7).is_some()); // read within 30 minutes each time
    /// }
    /// // The last read, at 7 h 55 min, left 5 minutes: the 8 hours are up.
    /// clock.advance(Duration::from_secs(10 * 60));
    /// assert!(cache.get(&7).is_none());
    /// ```
    fn expire_after_read(
        &self,
        key: &K,
        value: &V,
        read_at: Instant,
        duration_until_expiry: Option<Duration>,
        last_modified_at: Instant,
    ) -> Option<Duration> {
        let _ = (key, value, read_at, last_modified_at);
        default_read_ran();
        duration_until_expiry
    }
}

/// The time origin a cache passes its policy: the `Instant` its clock's zero stands for.
pub(super) fn origin_of(reading: Reading) -> Instant {
    let now = Instant::now();
    now.checked_sub(Duration::from_nanos(reading.nanos()))
        .unwrap_or(now)
}

/// A write's deadlines in ticks: the TTL's (the node's `meta`) and, when the write asked
/// the policy, the policy's (the node's timer; [`NEVER`] for none).
#[derive(Clone, Copy, Debug)]
pub(super) struct Deadline {
    pub(super) ttl: u64,
    pub(super) policy: Option<u64>,
}

impl Deadline {
    /// A write that did not ask a policy.
    pub(super) fn ttl(ttl: u64) -> Self {
        Self { ttl, policy: None }
    }
}

sync::thread_cell! {
    /// This thread's place in a policy: bit 0 while a cache is asking one (a read made then
    /// is not asked about), bit 1 once the default `expire_after_read` body ran.
    static READING: Cell<u8> = Cell::new(0);
}

const ASKING: u8 = 1;
const DEFAULT_RAN: u8 = 2;

/// Called by the default `expire_after_read`: the policy does not override it.
fn default_read_ran() {
    READING.with(|r| r.set(r.get() | DEFAULT_RAN));
}

/// This thread is asking a policy while it lives: sets the asking bit (and clears the
/// default-ran one), and puts the asking bit back as it was however the policy returns (a
/// panic included), so a policy asked inside another leaves the outer one's mark.
struct Asking {
    was: bool,
}

impl Asking {
    fn enter() -> Self {
        let was = READING.with(|r| {
            let v = r.get();
            r.set((v | ASKING) & !DEFAULT_RAN);
            v & ASKING != 0
        });
        Self { was }
    }

    /// Whether an asking read is already under way on this thread.
    fn under_way() -> bool {
        READING.with(|r| r.get() & ASKING != 0)
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        let was = if self.was { ASKING } else { 0 };
        READING.with(|r| r.set((r.get() & !ASKING) | was));
    }
}

/// A cache's policy, with whether its reads ask it (found out by the first read asked).
pub(crate) struct Asked<E: ?Sized> {
    reads: AtomicUsize,
    policy: E,
}

/// A cache's `Expiry` policy, boxed as the cache holds it.
pub(crate) type BoxedExpiry<K, V> = Box<Asked<dyn Expiry<K, V>>>;

const UNKNOWN: usize = 0;
const NOT_OVERRIDDEN: usize = 1;
const OVERRIDDEN: usize = 2;

/// Boxes an `Expiry` policy for a cache.
pub(super) fn boxed<K, V>(policy: impl Expiry<K, V>) -> BoxedExpiry<K, V> {
    Box::new(Asked {
        reads: AtomicUsize::new(UNKNOWN),
        policy,
    })
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// The instant a clock reading stands for (see the module docs); a reading too far past
    /// the origin for `Instant` to hold (centuries) gives the latest one it can.
    fn instant(&self, nanos: u64) -> Instant {
        let mut by = Duration::from_nanos(nanos);
        loop {
            if let Some(at) = self.origin.checked_add(by) {
                return at;
            }
            by /= 2;
        }
    }

    /// The deadlines of an entry written now with time-to-live `ttl`: the TTL's, and the
    /// policy's if there is one; `None` if the policy gave zero (the entry is not stored).
    /// `seen` is the live entry it replaces, if any. Runs the policy (user code): see the
    /// module docs for where.
    pub(super) fn write_deadline(
        &self,
        key: &K,
        value: &V,
        ttl: Option<Duration>,
        seen: Option<NodePtr<'_, K, V>>,
        reading: Reading,
    ) -> Option<Deadline> {
        let ttl = Self::deadline(ttl, reading);
        let Some(Asked { policy, .. }) = self.expiry.as_deref() else {
            return Some(Deadline::ttl(ttl));
        };
        let at = self.instant(reading.nanos());
        let _asking = Asking::enter();
        let answer = match seen {
            None => policy.expire_after_create(key, value, at),
            Some(old) => {
                // The time left before the policy's own deadline, as moka reports it: the
                // TTL restarts with this write whatever the policy answers, so it is no
                // part of what the answer carries over.
                let left = reading.until(old.policy_deadline());
                policy.expire_after_update(key, value, at, left)
            }
        };
        let policy = match answer {
            None => NEVER,
            Some(d) if d.is_zero() => return None,
            Some(d) => reading.deadline_after(d),
        };
        Some(Deadline {
            ttl,
            policy: Some(policy),
        })
    }

    /// Whether reads that count as an access ask the policy: there is one, and the first
    /// read asked has not found `expire_after_read` left at its default. One load.
    #[inline]
    pub(super) fn asks_reads(&self) -> bool {
        // Relaxed: a hint settled once; a reader that misses it asks once more.
        self.expiry
            .as_ref()
            .is_some_and(|e| e.reads.load(Ordering::Relaxed) != NOT_OVERRIDDEN)
    }

    /// A read of `node` that counts as an access, found live at `reading`, in a cache
    /// whose reads ask ([`asks_reads`](Self::asks_reads)): asks `expire_after_read` and
    /// moves the entry's deadline to its answer (see the module docs).
    pub(super) fn ask_read(&self, node: NodePtr<'_, K, V>, index: usize, reading: Reading) {
        let Some(Asked { policy, reads }) = self.expiry.as_deref() else {
            return;
        };
        // Entries `insert_with_ttl` wrote keep their own deadline; a read made while a
        // policy runs on this thread is not asked about.
        let Some(timer) = node.timer() else {
            return;
        };
        if Asking::under_way() {
            return;
        }
        // Relaxed: see `Timer::deadline`.
        let seen = timer.deadline.load(Ordering::Relaxed);
        let answer = {
            let _asking = Asking::enter();
            let answer = policy.expire_after_read(
                &node.key,
                &node.value,
                self.instant(reading.nanos()),
                reading.until(seen),
                self.instant(timer.written),
            );
            let default_ran = READING.with(|r| r.get() & DEFAULT_RAN != 0);
            if reads.load(Ordering::Relaxed) == UNKNOWN {
                let found = if default_ran {
                    NOT_OVERRIDDEN
                } else {
                    OVERRIDDEN
                };
                // Relaxed: a one-way hint (UNKNOWN to an answer, once), read with the
                // Relaxed load in `asks_reads`; it publishes no other data, and a reader
                // that misses it asks the policy once more.
                let _ =
                    reads.compare_exchange(UNKNOWN, found, Ordering::Relaxed, Ordering::Relaxed);
            }
            if default_ran {
                return; // the time left, unchanged
            }
            answer
        };
        let deadline = match answer {
            None => NEVER,
            // Lapses at this reading: the read that asked still returns the value.
            Some(d) if d.is_zero() => reading.tick(),
            Some(d) => reading.deadline_after(d),
        };
        if deadline == seen {
            return;
        }
        // Relaxed: see `Timer::deadline`; the swap tells whether this store moved the
        // entry's deadline (the earlier of this one and the TTL's) earlier than it was,
        // whoever wrote that.
        let before = timer.deadline.swap(deadline, Ordering::Relaxed);
        let cap = node.deadline();
        if deadline.min(cap) < before.min(cap) {
            self.segments[index].refile(node);
        }
    }
}
