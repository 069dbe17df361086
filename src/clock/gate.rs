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
//! So the gate gives the answer a reading taken during the call would give. A deadline
//! far from now is decided by the pair; one within the interval's width reads the clock.
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
//!       measurement brackets each clock reading between two counter reads (the second
//!       ordered, `rdtscp`) and divides the clock's advance by the smallest counter
//!       advance the brackets allow, so a preempted reading only raises it. A window with
//!       a suspend in it (`CLOCK_BOOTTIME` moved against `CLOCK_MONOTONIC` by over 1 ms),
//!       longer than a second, or giving a rate outside 0.125-16 GHz is measured again.
//!       The factor 2 covers NTP's slewing (at most 0.05%) many times over.
//! 3. **A pair goes stale.** Every pair carries the gate's state word (`STATE`: the scale
//!    and a generation) and decides only while it still matches; a counter difference
//!    over `MAX_ELAPSED` (about 90 ms at 3 GHz) decides nothing, nor does one that wrapped
//!    (a counter behind `c`). So each busy thread reads the clock at least every
//!    `MAX_ELAPSED` ticks.
//! 4. **A broken bound closes the gate.** Each renewal checks the old pair against the new
//!    reading: a reading past the old pair's upper bound (a counter reset by a sleep state,
//!    a skew the kernel did not catch, a wrong scale) closes the gate for the process,
//!    and every later check reads the clock. A counter seen going back bumps the
//!    generation, so every thread's pair is renewed before it decides again. What remains
//!    unguarded: a thread idle from a counter reset until the counter climbs back to its
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
/// A window over which `CLOCK_BOOTTIME` gained more than this on `CLOCK_MONOTONIC` had a
/// suspend in it (or a preemption between the two readings): measured again.
const MAX_SUSPEND_NS: u64 = 1_000_000;
/// The largest counter difference a pair decides with (invariant 3).
const MAX_ELAPSED: u64 = 1 << 28;
/// Added to the upper bound for a counter sampled early (see Ordering).
const SLACK: u64 = 10_000;
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
}

/// A clock reading bracketed by two counter reads, the second one ordered after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Sample {
    before: u64,
    mono: u64,
    after: u64,
    /// `CLOCK_BOOTTIME - CLOCK_MONOTONIC`: grows by the time spent suspended.
    suspended: u64,
}

#[inline]
fn counter() -> u64 {
    // SAFETY: 1. `rdtsc` exists on every x86-64 processor and reads a register, touching
    // no memory; 2. it needs no target feature; 3. in a thread for which it is disabled
    // (CR4.TSD, set by `prctl(PR_SET_TSC, PR_TSC_SIGSEGV)`) it faults with SIGSEGV rather
    // than reading a wrong value; `supported` checks the setting of the thread that builds
    // the first cache, and a thread that disables it later has asked for that fault.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The counter, read after every earlier instruction has finished (`rdtscp`).
fn counter_ordered() -> u64 {
    let mut aux = 0u32;
    // SAFETY: 1. `rdtscp` writes the processor id into `aux`, a valid, writable `u32` for
    // the call's duration; 2. the processor has the instruction: this runs only while the
    // gate is measuring or open, which `prepare` allows only where `/proc/cpuinfo` lists
    // `rdtscp`; 3. with CR4.TSD set it faults with SIGSEGV, never reading a wrong value (see
    // `counter`'s 3).
    unsafe { core::arch::x86_64::__rdtscp(&mut aux) }
}

fn boottime_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: 1. `ts` is a valid, writable `timespec` for the call's duration; 2.
    // `CLOCK_BOOTTIME` exists on every Linux since 2.6.39, and a failure leaves `ts` zero,
    // which only makes the window's suspend check measure again.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The decision a pair makes (see The bound): `None` when it cannot decide.
#[inline]
pub(super) fn decide(pair: (u64, u64, u64), now: u64, state: u64, due: u64) -> Option<bool> {
    let (c, m, word) = pair;
    if m >= due {
        return Some(true); // invariant 1, whatever the state
    }
    let scale = state & SCALE_MASK;
    let elapsed = now.wrapping_sub(c);
    if word != state || scale <= CLOSED || elapsed > MAX_ELAPSED {
        return None; // invariant 3
    }
    // elapsed <= 2^28 and scale < 2^40: the product fits 68 bits, the span 36.
    let span = ((u128::from(elapsed) * u128::from(scale)) >> 32) as u64;
    (m.saturating_add(span).saturating_add(SLACK) < due).then_some(false)
}

/// Whether the monotonic clock has reached `due` (nanoseconds since boot).
#[inline]
pub(crate) fn passed(due: u64) -> bool {
    let state = STATE.load(Ordering::Relaxed);
    if let Some(answer) = decide(PAIR.get(), counter(), state, due) {
        return answer;
    }
    if state & SCALE_MASK == CLOSED {
        return monotonic_nanos() >= due;
    }
    renew(state) >= due
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
/// `after` (the second ordered after the reading).
pub(super) fn verdict(
    old: (u64, u64, u64),
    before: u64,
    mono: u64,
    after: u64,
    state: u64,
) -> Verdict {
    let (old_c, old_m, _) = old;
    if old_m == 0 {
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
/// this thread's pair, and returns the reading.
#[cold]
fn renew(state: u64) -> u64 {
    let old = PAIR.get();
    let before = counter();
    let mono = monotonic_nanos();
    let after = counter_ordered();
    match verdict(old, before, mono, after, state) {
        Verdict::Back => {
            // A failed exchange means the state moved on anyway.
            let _ = STATE.compare_exchange(
                state,
                state.wrapping_add(1 << SCALE_BITS),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        Verdict::Broken => close(),
        Verdict::Fine if state & SCALE_MASK == MEASURING => measure(Sample {
            before,
            mono,
            after,
            suspended: boottime_nanos().wrapping_sub(mono),
        }),
        Verdict::Fine => {}
    }
    PAIR.set((before, mono, STATE.load(Ordering::Relaxed)));
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
pub(super) fn scale_from(start: Sample, end: Sample) -> Option<u64> {
    let ns = end.mono.checked_sub(start.mono)?;
    // The counter advanced at least this between the two clock readings.
    let ticks = end.before.checked_sub(start.after)?;
    let suspended = end.suspended.wrapping_sub(start.suspended);
    if !(WINDOW_NS..=MAX_WINDOW_NS).contains(&ns) || suspended > MAX_SUSPEND_NS {
        return None;
    }
    if ticks <= ns / 8 || ticks / 16 >= ns {
        return None; // outside 0.125-16 GHz
    }
    // Doubled and rounded up: at most 2^33 * 8 = 2^36.
    Some((u128::from(ns) << 33).div_ceil(u128::from(ticks)) as u64)
}

/// Takes a sample into the current window: opens the gate when the window measures, or
/// starts the window again from it.
fn measure(sample: Sample) {
    // `try_lock`: a thread that finds another measuring reads the clock this time.
    let Ok(mut start) = START.try_lock() else {
        return;
    };
    let Some(first) = *start else {
        *start = Some(sample);
        return;
    };
    if sample.mono < first.mono.saturating_add(WINDOW_NS) && sample.mono >= first.mono {
        return; // not long enough yet
    }
    match scale_from(first, sample) {
        Some(scale) => {
            // Keeps the generation (a renewal may have bumped it while measuring); fails
            // only if the state moved on from measuring (closed) meanwhile.
            let state = STATE.load(Ordering::Relaxed);
            if state & SCALE_MASK == MEASURING {
                let open = (state & !SCALE_MASK) | scale;
                let _ = STATE.compare_exchange(state, open, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        None => *start = Some(sample),
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

/// Called when a cache with the default clock is built: checks the machine once, and
/// closes the gate where it cannot work.
pub(crate) fn prepare() {
    if !*SUPPORTED.get_or_init(supported) {
        close();
    }
}

#[cfg(test)]
mod tests;
