//! The TSC gate: deciding "has this deadline passed?" without reading the clock.
//!
//! ## Why
//! Every read of an entry with a deadline compares the deadline with the time. A reading
//! of `CLOCK_MONOTONIC` through the vDSO costs about 20 ns on the machines this crate is
//! measured on (an ordered `rdtsc`, a sequence lock, a scaling), next to a cache hit of
//! 30-100 ns. Most of those comparisons are far from close: a session read 50 ms into its
//! 30 minutes. A bare `rdtsc` adds about 5 ns amid other work, and is enough for them.
//!
//! ## The bound
//! Each thread keeps the pair `(c, m)` from its last real reading: the time-stamp counter
//! `c`, read just before `CLOCK_MONOTONIC` returned `m`. At a later counter value `c'`,
//! the monotonic clock lies in `[m, m + (c' - c) * S + SLACK]`, where `S` bounds the
//! clock's nanoseconds per counter tick from above and `SLACK` (10 us) covers the counter
//! being sampled early (see Ordering). A deadline due at monotonic time `D` is
//! - passed if `m >= D`;
//! - not passed if `m + (c' - c) * S + SLACK < D`;
//! - otherwise undecided: the thread reads the clock, which renews its pair, and decides
//!   with that reading.
//!
//! So, while the invariants below hold, the gate gives the answer a reading taken during
//! the call would give. A deadline far from now is decided by the pair; one within the
//! interval's width reads the clock.
//!
//! Writes ask two more questions of the same interval: which tick it is (the wheel's
//! advance, a removal's cause) and which tick a new entry's TTL ends in. Both answers are
//! monotone in the time, so where the interval's two ends give the same one, so does every
//! time between them, and a reading during the call would too ([`bounds`]; the ticker
//! checks the ends and reads the clock where they differ, which renews the pair). The
//! interval is at least `SLACK` wide and widens by about twice the time elapsed, so a pair
//! serves writes until its interval reaches a tick boundary (or, for a new entry, its
//! TTL's), and at most [`WRITE_RENEWAL`] writes (below): in a unit test writing in a loop
//! with 1 ms ticks, about one write in forty read the clock, most of them for that renewal.
//! With ticks under `8 * SLACK` (80 us) the ends would rarely agree, and
//! writes read the clock directly (`Ticker::read_for`).
//!
//! A write also renews its pair after [`WRITE_RENEWAL`] answers from it. That is for the
//! failures the checks below cannot see (a counter that stalls, say): a read misled by
//! one answers "not yet" for a deadline that has passed, but a write misled by one would
//! set a deadline from a time that is too early, and its entry would lapse before its
//! TTL. Renewing judges the old pair against a real reading (invariant 4), so a stalled
//! counter closes the gate within that many writes of each thread.
//!
//! ## Invariants, and what they rest on
//! 1. **`m` is at most the time now**: `CLOCK_MONOTONIC` never goes back, and this thread
//!    read `m` earlier.
//! 2. **`m + (c' - c) * S` is at least the time at `c'`.** `c` was read before `m` (the
//!    vDSO's ordered `rdtsc` waits for ours), so `m` is at least the time at `c`; what is
//!    left is that `S` covers the clock's rate against the counter. That needs:
//!    1. a clock computed from this counter: Linux's current clocksource is `tsc`, and the
//!       CPU reports `constant_tsc` and `nonstop_tsc` (and `rdtscp`, which the measurement
//!       uses). All are checked once, when the first cache with the default clock is
//!       built, so no read makes a system call for them;
//!    2. counters that agree across cores, as the thread may move between `c` and `c'`:
//!       Linux checks this at boot before it keeps `tsc` (where it trusts the platform, it
//!       skips the check; a later change of clocksource is not watched: see 4);
//!    3. `S` at least the clock's nanoseconds per tick: twice a measured upper bound. The
//!       measurement brackets a `CLOCK_BOOTTIME` reading between two counter reads (the
//!       second ordered, `rdtscp`) at each end of a window of 10 ms to 1 s, and divides
//!       the boot clock's advance by the smallest counter advance the brackets allow: a
//!       preempted reading only raises it, and so does a suspend (the boot clock runs
//!       through it, the monotonic one does not). A rate outside 0.125-16 GHz is measured
//!       again. The factor 2 covers the kernel's frequency adjustments (NTP and chrony
//!       slew by at most 10%) several times over.
//! 3. **A pair goes stale.** Every pair carries the gate's state word (`STATE`: the scale
//!    and a generation) and decides only while it still matches; a counter difference
//!    over `MAX_ELAPSED` (about 90 ms at 3 GHz) decides nothing, nor does one that wrapped
//!    (a counter behind `c`). So each busy thread reads the clock at least every
//!    `MAX_ELAPSED` ticks.
//! 4. **A bound seen broken closes the gate.** A renewal whose old pair could still decide
//!    (same generation, under `MAX_ELAPSED` ticks old) checks it against the new reading: a
//!    reading past the old pair's upper bound (a skew the kernel did not catch, a counter
//!    slower than measured) closes the gate for the process, and every later check reads
//!    the clock. A counter seen going back (a reset by a sleep state, a core behind)
//!    bumps the generation, so every thread's pair is renewed before it decides again.
//!    What these checks cannot see: a pair older than `MAX_ELAPSED`, a counter that
//!    stalls, and a thread idle from a counter reset until the counter climbs back to its
//!    pair's value, whose first check then falls within `MAX_ELAPSED` of that value, with
//!    no other thread having checked in between.
//!
//! ## Ordering
//! `rdtsc` is not serialising: the counter may be sampled before the thread's preceding
//! instructions (an Acquire load among them) have finished, up to the processor's reorder
//! window. The `SLACK` added to the upper bound covers that window many times over (it is
//! bounded by the slowest single instruction still in flight, a cache or TLB miss, well
//! under a microsecond), so a check made after a thread learned from another that a
//! deadline had passed answers "passed" too. Deadlines within 10 us of the pair's bound
//! read the clock.
//!
//! Elsewhere (other targets, Miri, the loom build) there is no gate, and every check
//! reads the clock.

use super::monotonic_nanos;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The scale while the rate is being measured (and before the first cache is built).
const MEASURING: u64 = 0;
/// The scale once the gate is closed for the process: every check reads the clock.
const CLOSED: u64 = 1;
/// `STATE`'s low bits hold the scale; the rest count generations.
const SCALE_BITS: u32 = 40;
const SCALE_MASK: u64 = (1 << SCALE_BITS) - 1;
/// The least and most a measurement window may span.
const WINDOW_NS: u64 = 10_000_000;
const MAX_WINDOW_NS: u64 = 1_000_000_000;
/// The largest counter difference a pair decides with (invariant 3).
const MAX_ELAPSED: u64 = 1 << 28;
/// Added to the upper bound for a counter sampled early (see Ordering).
pub(super) const SLACK: u64 = 10_000;
/// Answers a thread's pair gives writes before a write renews it (see the module docs).
pub(super) const WRITE_RENEWAL: u32 = 64;
/// Where Linux names its current clocksource (invariant 2.1).
const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

/// The gate's state: generation `<< SCALE_BITS | scale`. The scale is `S` in 32.32 fixed
/// point (nanoseconds per counter tick, times 2^32), or [`MEASURING`], or [`CLOSED`]; an
/// open scale is at least 2^29 (16 GHz, doubled). Relaxed everywhere: a value computed from
/// clock readings that publishes nothing else, and a thread that sees an older state only
/// decides with a pair that was valid under it (a bump is a hint to renew sooner, not a
/// fence) or reads the clock.
static STATE: AtomicU64 = AtomicU64::new(MEASURING);

/// Whether this machine meets invariant 2.1 (set when the first default-clock cache is
/// built).
static SUPPORTED: OnceLock<bool> = OnceLock::new();

/// The sample a measurement window starts from.
static START: Mutex<Option<Sample>> = Mutex::new(None);

thread_local! {
    /// This thread's last `(counter, monotonic nanoseconds, state word)`. All zero before
    /// its first reading: a lower bound of 0 is true, and state word 0 is never an open
    /// one, so it decides nothing.
    static PAIR: Cell<(u64, u64, u64)> = const { Cell::new((0, 0, 0)) };
    /// Answers [`bounds`] gave from this thread's pair since it was last renewed.
    static SERVED: Cell<u32> = const { Cell::new(0) };
}

/// A `CLOCK_BOOTTIME` reading bracketed by two counter reads, the second one ordered
/// after it (the first is before the thread's `CLOCK_MONOTONIC` reading, which comes
/// before this one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Sample {
    before: u64,
    boot: u64,
    after: u64,
}

#[inline]
fn counter() -> u64 {
    // SAFETY: 1. `rdtsc` exists on every x86-64 processor and reads a register, touching
    // no memory; 2. it needs no target feature; 3. in a thread for which it is disabled
    // (CR4.TSD, set per thread by `prctl(PR_SET_TSC, PR_TSC_SIGSEGV)`) it faults with
    // SIGSEGV rather than reading a wrong value. `supported` checks the setting of the
    // thread that builds the first cache only; a reader thread that disabled it gets that
    // fault (memory-safe, and what it asked for).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The counter, read after every earlier instruction has finished (`rdtscp`).
fn counter_ordered() -> u64 {
    debug_assert_eq!(SUPPORTED.get(), Some(&true), "the gate was not prepared");
    let mut aux = 0u32;
    // SAFETY: 1. `rdtscp` writes the processor id into `aux`, a valid, writable `u32` for
    // the call's duration; 2. the processor has the instruction: this runs only from
    // `renew`, only from `passed`, `bounds` and `read`, which are called only by a
    // `Ticker` whose gate `prepare` allowed, and `prepare` allows it only where
    // `/proc/cpuinfo` lists `rdtscp` (checked in debug builds above); 3. with CR4.TSD set it faults with SIGSEGV, never
    // reading a wrong value (see `counter`'s 3).
    unsafe { core::arch::x86_64::__rdtscp(&mut aux) }
}

fn boottime_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: 1. `ts` is a valid, writable `timespec` for the call's duration; 2.
    // `CLOCK_BOOTTIME` exists on every Linux since 2.6.39, and a failure leaves `ts` zero:
    // a window with a zero reading measures again (`scale_from`).
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The interval `[m, m + (c' - c) * S + SLACK]` a pair bounds the clock in at counter
/// value `now` (see The bound), or `None` where the pair bounds nothing (invariant 3).
#[inline]
pub(super) fn interval(pair: (u64, u64, u64), now: u64, state: u64) -> Option<(u64, u64)> {
    let (c, m, word) = pair;
    let scale = state & SCALE_MASK;
    let elapsed = now.wrapping_sub(c);
    if word != state || scale <= CLOSED || elapsed > MAX_ELAPSED {
        return None;
    }
    // elapsed <= 2^28 and scale < 2^40: the product fits 68 bits, the span 36.
    let span = ((u128::from(elapsed) * u128::from(scale)) >> 32) as u64;
    Some((m, m.saturating_add(span).saturating_add(SLACK)))
}

/// The decision a pair makes (see The bound): `None` when it cannot decide.
#[inline]
pub(super) fn decide(pair: (u64, u64, u64), now: u64, state: u64, due: u64) -> Option<bool> {
    if pair.1 >= due {
        return Some(true); // invariant 1, whatever the state
    }
    let (_, hi) = interval(pair, now, state)?;
    (hi < due).then_some(false)
}

/// Whether the monotonic clock has reached `due` (nanoseconds since boot). Call only
/// after [`prepare`] returned `true` (it is what allows the counter instructions).
#[inline]
pub(crate) fn passed(due: u64) -> bool {
    let state = STATE.load(Ordering::Relaxed);
    if state & SCALE_MASK == CLOSED {
        return monotonic_nanos() >= due;
    }
    if let Some(answer) = decide(PAIR.get(), counter(), state, due) {
        return answer;
    }
    renew(state) >= due
}

/// Bounds `(lo, hi)` on the monotonic clock during the call: this thread's pair's
/// interval where the pair bounds the clock, else a reading (which renews the pair) as
/// `(m, m)`. Writes use it for the current tick and a new entry's deadline where the
/// whole interval gives one answer (`Ticker::read_for`). Call only after [`prepare`]
/// returned `true`.
#[inline]
pub(crate) fn bounds() -> (u64, u64) {
    let state = STATE.load(Ordering::Relaxed);
    if state & SCALE_MASK == CLOSED {
        let m = monotonic_nanos();
        return (m, m);
    }
    let served = SERVED.get();
    if served < WRITE_RENEWAL {
        if let Some(bounds) = interval(PAIR.get(), counter(), state) {
            SERVED.set(served + 1);
            return bounds;
        }
    }
    let m = renew(state);
    (m, m)
}

/// A reading of the monotonic clock that also renews this thread's pair (where the gate
/// is open), so that the checks after it decide by the pair again. Call only after
/// [`prepare`] returned `true`.
pub(crate) fn read() -> u64 {
    let state = STATE.load(Ordering::Relaxed);
    if state & SCALE_MASK == CLOSED {
        return monotonic_nanos();
    }
    renew(state)
}

/// Whether the gate has measured its scale and is not closed.
#[cfg(test)]
pub(super) fn is_open() -> bool {
    STATE.load(Ordering::Relaxed) & SCALE_MASK > CLOSED
}

/// What a renewal learns from the thread's old pair (invariant 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing against the gate.
    Fine,
    /// The counter went back past the old pair's: every pair is suspect.
    Back,
    /// The old pair would have called the new reading not yet reached at a counter value
    /// read after it: the bound is broken here.
    Broken,
}

/// Judges the old pair by a new reading `mono`, bracketed by counter reads `before` and
/// `after` (the second ordered after the reading). A bracket that went backwards (the
/// thread moved to a core whose counter is behind) counts as the counter going back.
pub(super) fn verdict(
    old: (u64, u64, u64),
    before: u64,
    mono: u64,
    after: u64,
    state: u64,
) -> Verdict {
    let (old_c, old_m, _) = old;
    if after.wrapping_sub(before) > u64::MAX / 2 {
        Verdict::Back
    } else if old_m == 0 {
        Verdict::Fine // no old pair
    } else if before.wrapping_sub(old_c) > u64::MAX / 2 {
        Verdict::Back
    } else if decide(old, after, state, mono) == Some(false) {
        Verdict::Broken
    } else {
        Verdict::Fine
    }
}

/// Reads the clock, judges the old pair by it, measures if the gate is measuring, renews
/// this thread's pair, and returns the reading. The new pair carries `state`, the word
/// loaded before its counter was read (or the word this renewal bumped it to): a word
/// loaded later could be a generation bumped after that counter value, which the bump
/// was meant to retire.
#[cold]
fn renew(state: u64) -> u64 {
    let old = PAIR.get();
    let measuring = state & SCALE_MASK == MEASURING;
    let before = counter();
    let mono = monotonic_nanos();
    // While measuring, `CLOCK_BOOTTIME` inside the same bracket (see `scale_from`).
    let boot = if measuring { boottime_nanos() } else { 0 };
    let after = counter_ordered();
    let mut word = state;
    match verdict(old, before, mono, after, state) {
        Verdict::Back => {
            let bumped = state.wrapping_add(1 << SCALE_BITS);
            // A failed exchange means the state moved on anyway: the pair then carries
            // the old word and decides nothing.
            if STATE
                .compare_exchange(state, bumped, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                word = bumped;
            }
        }
        Verdict::Broken => close(),
        Verdict::Fine if measuring => measure(Sample {
            before,
            boot,
            after,
        }),
        Verdict::Fine => {}
    }
    PAIR.set((before, mono, word));
    SERVED.set(0);
    mono
}

fn close() {
    let mut state = STATE.load(Ordering::Relaxed);
    loop {
        let closed = (state & !SCALE_MASK) | CLOSED;
        match STATE.compare_exchange_weak(state, closed, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => state = now,
        }
    }
}

/// `S` from a window's first and last samples (invariant 2.3), or `None` to measure again.
///
/// The rate is `CLOCK_BOOTTIME`'s: it runs through suspends, so over any interval it
/// advances at least as much as `CLOCK_MONOTONIC` does, and a suspend inside the window
/// (during which the counter may run or stop) can only raise `S`.
pub(super) fn scale_from(start: Sample, end: Sample) -> Option<u64> {
    let ns = end.boot.checked_sub(start.boot)?;
    // The counter advanced at least this between the two readings: `start.after` was read
    // after the first, `end.before` before the second.
    let ticks = end.before.checked_sub(start.after)?;
    if !(WINDOW_NS..=MAX_WINDOW_NS).contains(&ns) {
        return None;
    }
    if ticks <= ns / 8 || ticks / 16 >= ns {
        return None; // outside 0.125-16 GHz
    }
    // Doubled and rounded up: at most 2^33 * 8 = 2^36.
    Some((u128::from(ns) << 33).div_ceil(u128::from(ticks)) as u64)
}

/// One step of measuring: the window's start and a new sample give the window's new
/// start and, when the window measures, the scale.
pub(super) fn measure_step(start: Option<Sample>, sample: Sample) -> (Option<Sample>, Option<u64>) {
    let Some(first) = start else {
        return (Some(sample), None);
    };
    if (first.boot..first.boot.saturating_add(WINDOW_NS)).contains(&sample.boot) {
        return (start, None); // not long enough yet
    }
    match scale_from(first, sample) {
        Some(scale) => (start, Some(scale)),
        None => (Some(sample), None), // too long, backwards or out of range: start again
    }
}

/// Takes a sample into the current window, and opens the gate when the window measures.
fn measure(sample: Sample) {
    // `try_lock`: a thread that finds another measuring reads the clock this time.
    let Ok(mut start) = START.try_lock() else {
        return;
    };
    let (next, scale) = measure_step(*start, sample);
    *start = next;
    if let Some(scale) = scale {
        // Keeps the generation (a renewal may have bumped it while measuring). A failed
        // exchange (closed, or bumped since the load) leaves the gate measuring: the next
        // sample tries again.
        let state = STATE.load(Ordering::Relaxed);
        if state & SCALE_MASK == MEASURING {
            let open = (state & !SCALE_MASK) | scale;
            let _ = STATE.compare_exchange(state, open, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

/// Invariant 2.1, `rdtscp` present, and `rdtsc` allowed to this thread. Checked once, from
/// [`prepare`]: reads of the cache make no system call for it.
fn supported() -> bool {
    let flags = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .find(|line| line.starts_with("flags"))
            .is_some_and(|line| {
                let has = |flag: &str| line.split_whitespace().any(|w| w == flag);
                has("constant_tsc") && has("nonstop_tsc") && has("rdtscp")
            })
    });
    let mut mode: libc::c_int = 0;
    // SAFETY: 1. `PR_GET_TSC` writes one `c_int` through its second argument, and `mode`
    // is a valid, writable `c_int` for the call's duration; 2. it reads only the calling
    // thread's own setting (other threads' are checked by their first `rdtsc`: see
    // `counter`).
    let allowed = unsafe { libc::prctl(libc::PR_GET_TSC, &mut mode as *mut libc::c_int) } == 0
        && mode == libc::PR_TSC_ENABLE;
    flags
        && allowed
        && std::fs::read_to_string(CLOCKSOURCE).is_ok_and(|source| source.trim() == "tsc")
}

/// Called when a cache with the default clock is built: checks the machine once, closes
/// the gate where it cannot work, and says whether [`passed`], [`bounds`] and [`read`] may
/// be used.
pub(crate) fn prepare() -> bool {
    let supported = *SUPPORTED.get_or_init(supported);
    if !supported {
        close();
    }
    supported
}

#[cfg(test)]
mod tests;
