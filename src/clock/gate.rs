//! The TSC gate: deciding "has this deadline passed?" without reading the clock.
//!
//! ## Why
//! Every read of an entry with a deadline compares the deadline with the time. A reading
//! of `CLOCK_MONOTONIC` through the vDSO costs about 20 ns on the machines this crate is
//! measured on (an ordered `rdtsc`, a sequence lock, a scaling), next to a cache hit of
//! 50-100 ns. Most of those comparisons are far from close: a session read 50 ms into
//! its 30 minutes. A bare `rdtsc` adds about 5 ns amid other work, and is enough for them.
//!
//! ## The bound
//! Each thread keeps the pair `(c, m)` from its last real reading: the time-stamp counter
//! `c`, read just before `CLOCK_MONOTONIC` returned `m`. At a later counter value `c'`,
//! the monotonic clock lies in `[m, m + (c' - c) * S]`, where `S` bounds a counter tick's
//! length in nanoseconds from above. A deadline due at monotonic time `D` is
//! - passed if `m >= D`;
//! - not passed if `m + (c' - c) * S < D`;
//! - otherwise undecided: the thread reads the clock, which renews its pair, and decides
//!   with that reading.
//!
//! So the gate answers exactly what a clock reading at that moment would (see Precision).
//! A deadline far from now is decided by the pair; one within the interval's width reads
//! the clock.
//!
//! ## Invariants, and what they rest on
//! 1. **`m` is at most the time now**: `CLOCK_MONOTONIC` never goes back, and this thread
//!    read `m` earlier.
//! 2. **`m + (c' - c) * S` is at least the time now.** `c` was read before `m` (the vDSO's
//!    ordered `rdtsc` waits for ours), so `m` is at least the time at `c`; what is left is
//!    that `(c' - c) * S` covers the time since `c`. That needs:
//!    1. a counter that ticks at one rate in every power state: the CPU's invariant-TSC
//!       flag (CPUID leaf `0x8000_0007`, EDX bit 8);
//!    2. counters that agree across cores, as the thread may move between `c` and `c'`:
//!       Linux checks this and keeps `tsc` as its clocksource only while it holds, so the
//!       gate opens only where `tsc` is the current clocksource;
//!    3. `S` at least a tick's length: `S` is twice the length measured over the first
//!       10 ms after the first reading (a measurement good to well under 1%; the factor
//!       also covers a suspend of up to 10 ms inside the window, during which the counter
//!       may run while the monotonic clock stops). A measured rate outside 0.125-16 GHz
//!       closes the gate for good.
//! 3. **A counter behind `c`** (another core's, a resumed machine) gives a wrapped, huge
//!    difference, and a difference over 2^32 ticks (a second or more) is undecided too,
//!    which also keeps the product in range: the clock is read.
//!
//! ## Precision
//! `rdtsc` is not serialising: the counter may be sampled before the thread's preceding
//! instructions have finished, up to the processor's reorder window (on the order of
//! 100 ns). A read decided by the gate may therefore take its time up to that much before
//! its place in program order. That is far below the shortest tick (`MIN_TICK`, 1 us), so
//! "an entry is visible for at least its TTL and at most one tick longer" holds as before.
//! Writes, which set deadlines, read the clock itself.
//!
//! Elsewhere (other targets, Miri, the loom build) there is no gate, and every check
//! reads the clock.

use crate::clock::monotonic_nanos;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// `SCALE` while the first 10 ms are measured (and before the first reading).
const MEASURING: u64 = 0;
/// `SCALE` once the gate has been found unusable here: every check reads the clock.
const CLOSED: u64 = 1;
/// How long the tick's length is measured over before the gate opens.
const WINDOW_NS: u64 = 10_000_000;
/// The largest counter difference the pair decides with (invariant 3).
const MAX_ELAPSED: u64 = 1 << 32;
/// Where Linux names its current clocksource (invariant 2.2).
const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

/// `S`, nanoseconds per counter tick in 32.32 fixed point, doubled (invariant 2.3);
/// or [`MEASURING`], or [`CLOSED`]. An open scale is far above both: a tick of 1 ns
/// is 2^33. Relaxed everywhere: a value computed from two clock readings, publishing
/// nothing else; a thread that sees an older state only reads the clock more.
static SCALE: AtomicU64 = AtomicU64::new(MEASURING);

thread_local! {
    /// This thread's last `(counter, monotonic nanoseconds)` pair. `(0, 0)` before its
    /// first reading: a lower bound of 0 is true, and the counter difference from 0 is
    /// over `MAX_ELAPSED` on any machine up for more than a second, so it decides
    /// nothing until the first reading.
    static PAIR: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

#[inline]
fn counter() -> u64 {
    // No fence: see the module's Precision section.
    // SAFETY: 1. `rdtsc` exists on every x86-64 processor and reads a register, touching
    // no memory; 2. it needs no target feature; 3. were it disabled for user code (CR4.TSD,
    // which Linux sets only for a process that asked with `PR_SET_TSC`), it would fault
    // (SIGSEGV), not return a wrong value.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Whether the monotonic clock has reached `due` (nanoseconds since boot).
#[inline]
pub(crate) fn passed(due: u64) -> bool {
    let scale = SCALE.load(Ordering::Relaxed);
    if scale > CLOSED {
        let (c, m) = PAIR.get();
        if m >= due {
            return true; // invariant 1
        }
        let elapsed = counter().wrapping_sub(c);
        // elapsed < 2^32 and scale < 2^38 (the rate check): the product fits 70 bits,
        // the span 38.
        if elapsed <= MAX_ELAPSED
            && m.saturating_add(((u128::from(elapsed) * u128::from(scale)) >> 32) as u64) < due
        {
            return false; // invariant 2
        }
    } else if scale == CLOSED {
        return monotonic_nanos() >= due;
    }
    refresh() >= due
}

/// Reads the clock, renews this thread's pair with it, and returns it.
#[cold]
fn refresh() -> u64 {
    let c = counter();
    let m = monotonic_nanos();
    PAIR.set((c, m));
    if SCALE.load(Ordering::Relaxed) == MEASURING {
        measure(c, m);
    }
    m
}

/// Opens the gate once a reading comes 10 ms after the first one (or closes it).
fn measure(c: u64, m: u64) {
    static START: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    let Some((c0, m0)) = *START.get_or_init(|| supported().then_some((c, m))) else {
        SCALE.store(CLOSED, Ordering::Relaxed);
        return;
    };
    // `m` may be another thread's, read before `m0`: only a later one measures.
    if m < m0.saturating_add(WINDOW_NS) {
        return;
    }
    let (ns, ticks) = (m - m0, c.wrapping_sub(c0));
    // 0.125 to 16 GHz; a counter that went back wraps to far above 16 GHz.
    let sane = ticks > ns / 8 && ticks / 16 < ns;
    let scale = if sane {
        // Doubled (invariant 2.3) and rounded up; at most 2^33 * 8 = 2^36 here.
        ((u128::from(ns) << 33).div_ceil(u128::from(ticks))) as u64
    } else {
        CLOSED
    };
    // Whoever measures first decides; later measurements agree closely anyway.
    let _ = SCALE.compare_exchange(MEASURING, scale, Ordering::Relaxed, Ordering::Relaxed);
}

/// Invariants 2.1 and 2.2: an invariant TSC, and Linux keeping it as its clocksource; and
/// `rdtsc` allowed in this process (`prctl(PR_SET_TSC)` can make it fault instead).
fn supported() -> bool {
    use core::arch::x86_64::__cpuid;
    let invariant_tsc =
        __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0;
    let mut mode: libc::c_int = 0;
    // SAFETY: 1. `PR_GET_TSC` writes one `c_int` through its second argument, and `mode`
    // is a valid, writable `c_int` for the call's duration; 2. it reads only this process's
    // own setting.
    let allowed = unsafe { libc::prctl(libc::PR_GET_TSC, &mut mode as *mut libc::c_int) } == 0
        && mode == libc::PR_TSC_ENABLE;
    invariant_tsc
        && allowed
        && std::fs::read_to_string(CLOCKSOURCE).is_ok_and(|source| source.trim() == "tsc")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Calls `passed` until the gate has measured its window (or closed), and says whether
    /// it is open.
    fn opened() -> bool {
        for _ in 0..100 {
            let _ = passed(u64::MAX);
            if SCALE.load(Ordering::Relaxed) != MEASURING {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        SCALE.load(Ordering::Relaxed) > CLOSED
    }

    #[test]
    fn opens_where_the_machine_supports_it() {
        assert_eq!(
            opened(),
            supported(),
            "scale {}",
            SCALE.load(Ordering::Relaxed)
        );
    }

    /// Every answer agrees with clock readings taken around it: a time reached before the
    /// call is passed, one not reached after it is not. (1 us of slack for the counter's
    /// unordered sampling, see Precision.) Where the gate is open, most answers must have
    /// come from the pair, not from a reading.
    #[test]
    fn answers_agree_with_the_clock_around_them() {
        let open = opened();
        const SLACK: u64 = 1_000;
        let (mut decided_by_pair, mut calls) = (0u64, 0u64);
        let end = monotonic_nanos() + 30_000_000;
        let mut offset = 0u64;
        while monotonic_nanos() < end {
            for far in [0, 10_000, 1_000_000, 1_000_000_000] {
                offset = offset
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let jitter = (offset >> 40) % 20_000;
                let before = monotonic_nanos();
                let (early, late) = (before - far - jitter, before + far + jitter);
                let pair = PAIR.get();
                let (was_early, was_late) = (passed(early), passed(late));
                let after = monotonic_nanos();
                calls += 2;
                if PAIR.get() == pair {
                    decided_by_pair += 2;
                }
                if early + SLACK <= before {
                    assert!(was_early, "{early} passed before the call ({before})");
                }
                if late > after + SLACK {
                    assert!(!was_late, "{late} not reached after the call ({after})");
                }
            }
        }
        if open {
            assert!(
                decided_by_pair * 2 > calls,
                "the pair decided {decided_by_pair} of {calls}"
            );
        }
    }

    #[test]
    fn a_fresh_thread_reads_the_clock_first() {
        let open = opened();
        std::thread::spawn(move || {
            assert_eq!(PAIR.get(), (0, 0));
            let now = monotonic_nanos();
            assert!(!passed(now + 1_000_000_000));
            if open {
                let (_, m) = PAIR.get();
                assert!(m >= now, "the first check renewed the pair");
            }
        })
        .join()
        .unwrap();
    }
}
