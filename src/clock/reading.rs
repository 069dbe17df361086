//! A clock reading, or an interval the time lay in, with the tick size that turns it into
//! ticks and deadlines (see the parent module for ticks, and `gate` for intervals).

#[cfg(doc)]
use super::Ticker;
use super::NEVER;
use std::time::Duration;

/// A tick not computed yet (no tick is above [`NEVER`]).
const UNKNOWN: u64 = u64::MAX;

/// A clock reading (nanoseconds) with the tick size to convert it.
///
/// Most readings are one reading of the clock (`lo == hi`). [`Ticker::read_for`] may
/// instead give an interval `[lo, hi]` the time lay in during the call, made only where
/// both ends fall in one tick; then [`tick`](Self::tick) and [`reached`](Self::reached)
/// answer as any time in it would (a deadline is a tick boundary), and
/// [`deadline_after`](Self::deadline_after) answers from `hi`, so that no entry expires
/// early (exactly so for the TTL the reading was made for).
///
/// The tick is computed once, and so is the deadline for the TTL a bounded reading was
/// made for: a 64-bit division takes tens of cycles, and a write asked for up to five of
/// them (the profile put the divisions' results among `read_for`'s hottest instructions).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reading {
    pub(super) lo: u64,
    pub(super) hi: u64,
    tick_nanos: u64,
    /// The tick, where computed already ([`UNKNOWN`] otherwise: a read that only asks
    /// [`reached`](Self::reached) divides nothing).
    tick: u64,
    /// The TTL this reading was made for, and its deadline (see [`Self::bounded`]).
    made_for: Option<(Duration, u64)>,
}

impl Reading {
    /// A reading of the clock: `nanos` since its origin.
    #[inline]
    pub(crate) fn exact(nanos: u64, tick_nanos: u64) -> Self {
        Self {
            lo: nanos,
            hi: nanos,
            tick_nanos,
            tick: UNKNOWN,
            made_for: None,
        }
    }

    /// The reading for a time known to lie in `[lo, hi]` (`lo <= hi`), if every time there
    /// gives one tick, and one deadline for `ttl`: both are monotone in the time, so it is
    /// enough that the two ends agree.
    #[inline]
    #[cfg_attr(
        not(all(
            target_arch = "x86_64",
            target_os = "linux",
            not(miri),
            not(wheelcache_loom)
        )),
        allow(dead_code) // only the gate makes intervals
    )]
    pub(super) fn bounded(
        lo: u64,
        hi: u64,
        tick_nanos: u64,
        ttl: Option<Duration>,
    ) -> Option<Self> {
        debug_assert!(lo <= hi);
        let tick = lo / tick_nanos;
        // `hi` is in `lo`'s tick if it is before the next one starts (or there is none),
        // or both are at `NEVER` or past it.
        if tick < NEVER
            && (tick + 1)
                .checked_mul(tick_nanos)
                .is_some_and(|next| hi >= next)
        {
            return None;
        }
        let mut reading = Self {
            lo,
            hi,
            tick_nanos,
            tick: tick.min(NEVER),
            made_for: None,
        };
        if let Some(ttl) = ttl {
            let d = reading.deadline_after(ttl);
            // `lo`'s deadline is at most `d` (monotone); it is `d` exactly when
            // `ceil((lo + ttl) / t) >= d`, that is `lo + ttl > (d - 1) * t`, clamped to
            // `NEVER` or not. In u128, where neither side overflows.
            let lo_reaches = d == 0
                || u128::from(lo) + ttl.as_nanos() > u128::from(d - 1) * u128::from(tick_nanos);
            if !lo_reaches {
                return None;
            }
            reading.made_for = Some((ttl, d));
        }
        Some(reading)
    }

    /// The current tick, rounded down (see [`Ticker::now`]).
    #[inline]
    pub(crate) fn tick(self) -> u64 {
        if self.tick == UNKNOWN {
            return (self.lo / self.tick_nanos).min(NEVER);
        }
        self.tick
    }

    /// Whether an entry with `deadline` has lapsed at this reading: `tick() >= deadline`,
    /// computed with a multiplication instead of a division, because every read asks.
    /// (`floor(n / t) >= d` exactly when `n >= d * t`; past `u64` the product exceeds any
    /// reading.) [`NEVER`] never lapses.
    #[inline]
    pub(crate) fn reached(self, deadline: u64) -> bool {
        deadline != NEVER
            && deadline
                .checked_mul(self.tick_nanos)
                .is_some_and(|due| self.lo >= due)
    }

    /// Nanoseconds since the clock's origin: for readings of the clock only (expiry
    /// policies' times), never an interval's.
    #[inline]
    pub(crate) fn nanos(self) -> u64 {
        debug_assert_eq!(self.lo, self.hi, "an interval has no one time");
        self.lo
    }

    /// The time left at this reading before `deadline` (zero once reached), or `None` for
    /// [`NEVER`].
    pub(crate) fn until(self, deadline: u64) -> Option<Duration> {
        if deadline == NEVER {
            return None;
        }
        let due = u128::from(deadline) * u128::from(self.tick_nanos);
        let left = due.saturating_sub(u128::from(self.nanos()));
        // Deadlines reach past `u64` nanoseconds (584 years): split into whole seconds.
        let secs = u64::try_from(left / 1_000_000_000).unwrap_or(u64::MAX);
        let nanos = u32::try_from(left % 1_000_000_000).unwrap_or(0);
        Some(Duration::new(secs, nanos))
    }

    /// The tick at which an entry stored at this reading with `ttl` expires, rounded up so
    /// no entry expires early (from an interval's later end); [`NEVER`] when that lies
    /// past the range.
    #[inline]
    pub(crate) fn deadline_after(self, ttl: Duration) -> u64 {
        match self.made_for {
            Some((made_for, deadline)) if made_for == ttl => deadline,
            _ => self.deadline_from_hi(ttl),
        }
    }

    fn deadline_from_hi(self, ttl: Duration) -> u64 {
        // u64 arithmetic when it fits (every realistic TTL), u128 otherwise.
        let due = u64::try_from(ttl.as_nanos())
            .ok()
            .and_then(|ttl| self.hi.checked_add(ttl));
        let ticks = match due {
            Some(due) => due.div_ceil(self.tick_nanos),
            None => {
                let due = u128::from(self.hi) + ttl.as_nanos();
                u64::try_from(due.div_ceil(u128::from(self.tick_nanos))).unwrap_or(NEVER)
            }
        };
        ticks.min(NEVER)
    }
}
