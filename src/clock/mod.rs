//! Time: where the cache reads "now", and how durations become wheel ticks.
//!
//! The cache never reads wall-clock time. A [`Clock`] returns nanoseconds since an arbitrary
//! origin fixed when the clock was made, and must never go backwards. [`MonotonicClock`]
//! (the default) reads the system's monotonic clock, a vDSO call on Linux that takes no
//! lock. With it, on x86-64 Linux, most checks of a deadline read no clock at all: the
//! `gate` submodule bounds the time with the CPU's time-stamp counter and decides every
//! deadline that is not close, as a reading during the call would while the counter
//! behaves as the kernel promises (the submodule's docs say what it checks).
//! [`ManualClock`] is moved by hand, so tests and simulations decide exactly when an entry
//! is due.
//!
//! Deadlines are stored in *ticks* (the wheel's resolution, 1 ms by default) in 55 bits,
//! rounded **up**: an entry is visible for at least its TTL and at most one tick longer.
//! A deadline at or past [`NEVER`] means "no expiry"; with 1 ms ticks that is 1.14 million
//! years after the clock's origin, so `Duration::MAX` and other enormous TTLs saturate to it.
//!
//! A tick is never shorter than [`MIN_TICK`] (1 us). That keeps every clock reading below
//! [`NEVER`] in ticks (a clock's nanoseconds fit in a `u64`, and `u64::MAX` ns is under 2^54.1 us,
//! below 2^55), so a cache never gets too old for its deadlines: with 1 ns ticks a
//! cache 835 days old used to saturate every deadline to "never".

#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(miri),
    not(wheelcache_loom)
))]
mod gate;
mod reading;

use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
pub(crate) use reading::Reading;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::time::Instant;

/// A source of monotonic time for the cache.
///
/// Implementations must be cheap (every read of an entry that has a deadline asks for the
/// time) and must never go backwards. Time is nanoseconds since an origin the clock picks.
/// Give one to a cache with [`CacheBuilder::clock`](crate::CacheBuilder::clock); the
/// default is [`MonotonicClock`], and [`ManualClock`] is for tests.
///
/// A panicking clock is safe: every write reads the clock before it changes anything.
///
/// A clock that steps back (a wall clock set back, a simulation rewound) is bad input,
/// and the cache clamps it: a reading earlier than the latest tick the cache has seen
/// counts as that tick, so an entry that has lapsed never comes back, and no deadline is
/// set from an earlier time. Time then stands still for the cache until the clock passes
/// its old reading again. (The default clock, [`MonotonicClock`], cannot step back and is
/// not clamped; every other clock costs one more load per reading for the clamp.)
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use wheelcache::{Cache, Clock};
///
/// /// A clock driven by an external simulation's time, in milliseconds.
/// #[derive(Clone)]
/// struct SimClock(Arc<AtomicU64>);
///
/// impl Clock for SimClock {
///     fn now_nanos(&self) -> u64 {
///         self.0.load(Ordering::Relaxed).saturating_mul(1_000_000)
///     }
/// }
///
/// let millis = Arc::new(AtomicU64::new(0));
/// let cache: Cache<u32, u32> = Cache::builder().clock(SimClock(Arc::clone(&millis))).build();
/// cache.insert_with_ttl(1, 1, Duration::from_millis(250));
/// millis.store(249, Ordering::Relaxed);
/// assert_eq!(cache.get(&1), Some(1));
/// millis.store(250, Ordering::Relaxed);
/// assert_eq!(cache.get(&1), None);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since this clock's origin. Should never decrease between calls; a clock
    /// that steps back is clamped (see the trait docs).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.now_nanos(), 0);
    /// clock.advance(Duration::from_micros(3));
    /// assert_eq!(clock.now_nanos(), 3_000);
    /// ```
    fn now_nanos(&self) -> u64;
}

/// The default clock: the system's monotonic clock (what `std::time::Instant` reads),
/// measured from when the clock was created.
///
/// On Linux and Android it calls `clock_gettime(CLOCK_MONOTONIC)` directly, as `Instant`
/// does, but keeps its origin in nanoseconds, so a reading is one vDSO call and a
/// subtraction: about 27-31 ns against `Instant::elapsed`'s 39-47 ns here (it also
/// normalises and checks a `timespec` difference). Elsewhere it reads `Instant`.
///
/// A cache built without [`CacheBuilder::clock`](crate::CacheBuilder::clock) makes one of
/// its own. Copies share the origin, so they read the same time.
///
/// **Reads that skip the clock.** A cache that made its own clock, on x86-64 Linux where
/// the kernel keeps the CPU's time-stamp counter as its clocksource (and the CPU reports
/// `constant_tsc`, `nonstop_tsc` and `rdtscp`, and the building thread may read the
/// counter), checks a read entry's TTL mostly without a reading: each thread keeps its
/// last reading with the counter's value at that time, and the counter then bounds how
/// far the clock can have moved (its rate measured once per process, at least 10 ms after
/// the first such cache is built, and doubled as a margin). Only a deadline within that
/// bound of now takes a reading, as does the first check once a reading is 2^28 counter
/// ticks old (about 90 ms at 3 GHz). While the counter behaves as the kernel promises,
/// the answers are those a reading taken during the call would give; a bound seen broken
/// turns this off for the process (the `gate` module's docs list what is checked and
/// what is not). On the machines measured here a reading costs about 20 ns in the middle
/// of a read, the counter about 5. Writes (a new entry's deadline, the current tick) take
/// the same bound where the time it allows gives one answer (with ticks of at least 80
/// us; see the `gate` module), and otherwise read the clock. A time-to-idle and an expiry
/// policy read the clock as before, and so does a cache given any clock, this type
/// included, through [`CacheBuilder::clock`](crate::CacheBuilder::clock).
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    origin: u64,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    origin: Instant,
}

/// `CLOCK_MONOTONIC` in nanoseconds (saturating: 2^64 ns is 584 years of uptime).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: 1. `ts` is a valid, writable `timespec` for the call's duration; 2.
    // `CLOCK_MONOTONIC` exists on every Linux and Android kernel, so the call cannot fail
    // (it is what `Instant::now` calls, and std treats a failure there as impossible too).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    // Both fields are non-negative for CLOCK_MONOTONIC (time since boot).
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

impl MonotonicClock {
    /// A clock whose origin is now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Clock, MonotonicClock};
    ///
    /// let clock = MonotonicClock::new();
    /// std::thread::sleep(Duration::from_millis(2));
    /// assert!(clock.now_nanos() >= 2_000_000);
    /// ```
    pub fn new() -> Self {
        Self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            origin: monotonic_nanos(),
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // Never below the origin: the clock is monotonic (saturating all the same).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return monotonic_nanos().saturating_sub(self.origin);
        // 2^64 ns is 584 years of uptime: saturating is the documented behaviour past it.
        // (Plain u64 arithmetic: this runs on every read, and `as_nanos` goes via u128.)
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let elapsed = self.origin.elapsed();
            elapsed
                .as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(elapsed.subsec_nanos()))
        }
    }
}

/// A clock that moves only when told to. Clones share one time: keep one and give a clone
/// to the cache, and tests decide exactly when entries lapse, with no sleeping.
///
/// It starts at zero and only moves forward ([`advance`](Self::advance)), so it keeps the
/// [`Clock`] contract by construction.
///
/// ```
/// use std::time::Duration;
/// use wheelcache::{Cache, ManualClock};
///
/// let clock = ManualClock::new();
/// let cache: Cache<u32, u32> = Cache::builder().clock(clock.clone()).build();
/// cache.insert_with_ttl(1, 10, Duration::from_secs(5));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(cache.get(&1), None);
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// std::thread::sleep(Duration::from_millis(1));
    /// assert_eq!(clock.elapsed(), Duration::ZERO); // real time does not move it
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by` (saturating at `u64::MAX` nanoseconds, about 584 years),
    /// for every clone of this clock. Entries that become due are gone for reads at once;
    /// maintenance (a write's turn, [`Cache::run_pending_tasks`](crate::Cache::run_pending_tasks),
    /// the reaper) removes them and tells the listener.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::{Cache, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let cache: Cache<&str, u32> = Cache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.insert("a", 1);
    /// clock.advance(Duration::from_secs(59));
    /// assert_eq!(cache.get("a"), Some(1));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.get("a"), None);
    /// assert_eq!(cache.len(), 1); // still counted until maintenance removes it
    /// cache.run_pending_tasks();
    /// assert_eq!(cache.len(), 0);
    ///
    /// clock.advance(Duration::MAX); // saturates
    /// assert_eq!(clock.elapsed(), Duration::from_nanos(u64::MAX));
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed is enough: the clock is a single value read on its own; the cache never
        // infers anything about other memory from having seen a particular time.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// The time since this clock was created, as the cache sees it: the sum of every
    /// [`advance`](Self::advance) on it or its clones.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelcache::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let clone = clock.clone();
    /// clock.advance(Duration::from_millis(1500));
    /// clone.advance(Duration::from_millis(500));
    /// assert_eq!(clock.elapsed(), Duration::from_secs(2));
    /// assert_eq!(clone.elapsed(), Duration::from_secs(2));
    /// ```
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // Relaxed: the clock is one value read on its own; nothing else is inferred from
        // it, so it pairs with nothing (the increments in `advance` are Relaxed too).
        self.nanos.load(Ordering::Relaxed)
    }
}

/// The shortest tick a cache accepts; shorter ones (zero included) are raised to it. At this
/// resolution deadlines reach 2^55 us (about 1,142 years) past the clock's origin.
///
/// A TTL is rounded up to whole ticks, so with the tick at its minimum an entry lives at
/// least its TTL and less than one microsecond more:
///
/// ```
/// use std::time::Duration;
/// use wheelcache::{Cache, ManualClock, MIN_TICK};
///
/// assert_eq!(MIN_TICK, Duration::from_micros(1));
/// let clock = ManualClock::new();
/// let cache: Cache<u32, u32> = Cache::builder()
///     .tick(Duration::from_nanos(1)) // raised to MIN_TICK
///     .clock(clock.clone())
///     .build();
/// cache.insert_with_ttl(1, 1, Duration::from_nanos(500));
/// clock.advance(Duration::from_nanos(500));
/// assert_eq!(cache.get(&1), Some(1)); // with 1 ns ticks it would be gone
/// clock.advance(Duration::from_nanos(500));
/// assert_eq!(cache.get(&1), None); // due at the end of the first 1 us tick
/// ```
pub const MIN_TICK: Duration = Duration::from_micros(1);

/// Deadlines take the low 55 bits of an entry's `meta` word; the top 9 hold flags
/// (see `entry::node`).
pub(crate) const DEADLINE_BITS: u32 = 55;

/// The deadline of an entry that never expires; every deadline saturates to it.
pub(crate) const NEVER: u64 = (1 << DEADLINE_BITS) - 1;

/// A clock read in ticks of the wheel's resolution.
pub(crate) struct Ticker {
    clock: Box<dyn Clock>,
    tick_nanos: u64,
    /// For a clock that may step back (a user's): the latest reading the cache has seen,
    /// raised once per tick (see [`clamp`](Self::clamp)). `None` for the default clock,
    /// `Instant`, which does not step back. Boxed and padded: a shared write once per tick
    /// must not share a line with the fields every operation reads.
    latest: Option<Box<CachePadded<AtomicU64>>>,
    /// The default clock's origin (monotonic nanoseconds), where the TSC gate (see `gate`)
    /// decides deadline checks for it.
    #[cfg(all(
        target_arch = "x86_64",
        target_os = "linux",
        not(miri),
        not(wheelcache_loom)
    ))]
    gated: Option<u64>,
}

impl Ticker {
    /// A ticker for a user's clock, which may step back, so its readings are clamped.
    /// `tick` is clamped to at least [`MIN_TICK`] and at most `u64::MAX` ns.
    pub(crate) fn new(clock: Box<dyn Clock>, tick: Duration) -> Self {
        Self::with(clock, tick, true)
    }

    /// A ticker for the default clock ([`MonotonicClock`], made now): not clamped, as it
    /// cannot step back, and gated where the target allows.
    pub(crate) fn monotonic(tick: Duration) -> Self {
        let clock = MonotonicClock::new();
        #[allow(unused_mut)] // where there is no gate
        let mut ticker = Self::with(Box::new(clock), tick, false);
        #[cfg(all(
            target_arch = "x86_64",
            target_os = "linux",
            not(miri),
            not(wheelcache_loom)
        ))]
        {
            ticker.gated = gate::prepare().then_some(clock.origin);
        }
        ticker
    }

    fn with(clock: Box<dyn Clock>, tick: Duration, clamped: bool) -> Self {
        let tick_nanos = u64::try_from(tick.max(MIN_TICK).as_nanos()).unwrap_or(u64::MAX);
        let latest = clamped.then(|| Box::new(CachePadded::new(AtomicU64::new(0))));
        Self {
            clock,
            tick_nanos,
            latest,
            #[cfg(all(
                target_arch = "x86_64",
                target_os = "linux",
                not(miri),
                not(wheelcache_loom)
            ))]
            gated: None,
        }
    }

    /// Whether an entry with `deadline` has lapsed: `read().reached(deadline)`, but
    /// decided by the TSC gate without a clock reading where it can (see `gate`). For
    /// reads that need no more than this answer (a plain entry's liveness).
    #[inline]
    pub(crate) fn lapsed(&self, deadline: u64) -> bool {
        #[cfg(all(
            target_arch = "x86_64",
            target_os = "linux",
            not(miri),
            not(wheelcache_loom)
        ))]
        if let Some(origin) = self.gated {
            // As `reached`: NEVER and deadlines past `u64` nanoseconds never lapse.
            return deadline != NEVER
                && deadline
                    .checked_mul(self.tick_nanos)
                    .and_then(|due| origin.checked_add(due))
                    .is_some_and(gate::passed);
        }
        self.read().reached(deadline)
    }

    /// The current tick (rounded down): an entry with deadline `d` is expired once
    /// `now() >= d`. Decided by the TSC gate without a clock reading where it can (see
    /// [`read_for`](Self::read_for)).
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.read_for(None).tick()
    }

    /// A reading for a write: its [`tick`](Reading::tick), and its
    /// [`deadline_after`](Reading::deadline_after) for `ttl`, are those of a reading taken
    /// during the call. With the gate (see `gate`) it is an interval the time lies in,
    /// bounded without reading the clock, used only where both its ends give those same
    /// answers; elsewhere, where they differ, and with ticks under 80 us (where they
    /// rarely agree), a reading. Its other answers are a reading's only when it is one
    /// (see [`Reading`]).
    #[inline]
    pub(crate) fn read_for(&self, ttl: Option<Duration>) -> Reading {
        #[cfg(all(
            target_arch = "x86_64",
            target_os = "linux",
            not(miri),
            not(wheelcache_loom)
        ))]
        if let Some(origin) = self.gated.filter(|_| self.tick_nanos >= 8 * gate::SLACK) {
            // Since the origin, as `MonotonicClock::now_nanos` (a pair read before this
            // cache was made bounds the time from below at 0, which is still true). With
            // shorter ticks the interval's ends would rarely agree: read the clock.
            let (lo, hi) = gate::bounds();
            let (lo, hi) = (lo.saturating_sub(origin), hi.saturating_sub(origin));
            if let Some(bounded) = Reading::bounded(lo, hi, self.tick_nanos, ttl) {
                return bounded;
            }
            return Reading::exact(gate::read().saturating_sub(origin), self.tick_nanos);
        }
        let _ = ttl;
        self.read()
    }

    /// One reading of the clock, to derive both "now" and deadlines from (clamped for a
    /// clock that may step back).
    #[inline]
    pub(crate) fn read(&self) -> Reading {
        let nanos = self.clock.now_nanos();
        let nanos = match &self.latest {
            None => nanos,
            Some(latest) => self.clamp(latest, nanos),
        };
        Reading::exact(nanos, self.tick_nanos)
    }

    /// A user's clock that steps back is bad input (see [`Clock`]): a reading in a tick
    /// before the latest tick the cache has seen counts as the latest reading seen, so the
    /// cache never sees time go back a tick. What lapsed stays lapsed, and no deadline is
    /// set from an earlier time. Within one tick a reading may still be a little earlier
    /// than another; every decision of the cache is made in whole ticks, so none changes.
    /// One load per reading, and a write when a reading starts a later tick.
    #[inline]
    fn clamp(&self, latest: &AtomicU64, nanos: u64) -> u64 {
        // Relaxed: a high-water mark; nothing else is published through it, and a thread
        // that reads an older mark clamps less, never more, than one that reads the latest.
        let seen = latest.load(Ordering::Relaxed);
        if nanos < seen {
            return seen;
        }
        if nanos / self.tick_nanos > seen / self.tick_nanos {
            latest.fetch_max(nanos, Ordering::Relaxed);
        }
        nanos
    }

    /// The tick at which an entry inserted now with `ttl` expires (see [`Reading`]).
    #[cfg(test)]
    pub(crate) fn deadline_after(&self, ttl: Duration) -> u64 {
        self.read().deadline_after(ttl)
    }

    /// The wheel's resolution.
    /// Whole ticks covering `d` (rounded up), saturating at [`NEVER`].
    pub(crate) fn ticks_for(&self, d: Duration) -> u64 {
        u64::try_from(d.as_nanos().div_ceil(u128::from(self.tick_nanos)))
            .unwrap_or(NEVER)
            .min(NEVER)
    }

    pub(crate) fn tick(&self) -> Duration {
        Duration::from_nanos(self.tick_nanos)
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("tick_nanos", &self.tick_nanos)
            .field("now", &self.now())
            .finish()
    }
}

#[cfg(test)]
mod tests;
