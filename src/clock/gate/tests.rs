//! The gate's tests: its two calculations on made-up timelines, and the live gate
//! against the clock on this machine.

use super::*;
use std::time::Duration;

/// An open state word of generation `gen` for a counter of `ghz` (doubled, as measured).
fn open_state(gen: u64, ghz: f64) -> u64 {
    let scale = ((2.0 / ghz) * (1u64 << 32) as f64).ceil() as u64;
    gen << SCALE_BITS | scale
}

#[test]
fn a_pair_decides_only_what_its_bound_covers() {
    let state = open_state(3, 1.0); // 2 ns per tick, doubled from 1 GHz
    let pair = (1_000, 5_000_000, state);
    let now = 1_000 + 1_000_000; // a million ticks: at most 2 ms
    assert_eq!(
        decide(pair, now, state, 5_000_000),
        Some(true),
        "reached at m"
    );
    assert_eq!(decide(pair, now, state, 4_000_000), Some(true));
    assert_eq!(
        decide(pair, now, state, 5_000_001),
        None,
        "inside the bound"
    );
    let hi = 5_000_000 + 2_000_000 + SLACK;
    assert_eq!(decide(pair, now, state, hi), None, "at the bound");
    assert_eq!(decide(pair, now, state, hi + 1), Some(false), "past it");
    // A stale or foreign pair decides nothing but what its reading alone proves.
    let other = open_state(4, 1.0);
    assert_eq!(decide(pair, now, other, hi + 1), None, "another generation");
    assert_eq!(decide(pair, now, other, 1), Some(true));
    let measuring = 3 << SCALE_BITS | MEASURING;
    let closed = 3 << SCALE_BITS | CLOSED;
    for state in [measuring, closed] {
        let pair = (1_000, 5_000_000, state);
        assert_eq!(decide(pair, now, state, hi + 1), None);
    }
    assert_eq!(decide(pair, 999, state, hi + 1), None, "a counter behind c");
    assert_eq!(decide(pair, 1_000 + MAX_ELAPSED + 1, state, u64::MAX), None);
    assert_eq!(
        decide(pair, 1_000 + MAX_ELAPSED, state, u64::MAX),
        Some(false)
    );
    assert_eq!(decide((0, 0, 0), now, state, 1), None, "no pair yet");
}

/// A timeline: the boot clock runs at 1 ns per ns, the counter at `ghz` except for
/// `stopped` ns before `stop_at` (a sleep state that stops it).
struct Timeline {
    ghz: f64,
    stop_at: u64,
    stopped: u64,
}

impl Timeline {
    fn new(ghz: f64) -> Self {
        Self {
            ghz,
            stop_at: u64::MAX,
            stopped: 0,
        }
    }

    fn counter(&self, ns: u64) -> u64 {
        let running = if ns >= self.stop_at {
            ns - self.stopped
        } else {
            ns
        };
        (running as f64 * self.ghz) as u64
    }

    /// A sample whose counter is read at `t`, the boot clock `late` ns later, and the
    /// counter again `after` ns after that.
    fn sample(&self, t: u64, late: u64, after: u64) -> Sample {
        Sample {
            before: self.counter(t),
            boot: t + late,
            after: self.counter(t + late + after),
        }
    }
}

/// However the readings are delayed inside their brackets (a preemption of up to 30 ms,
/// in the first sample or the last), the measured scale is at least twice the real one
/// (or, where the delays make the rate look below 0.125 GHz, there is none); a window
/// too short, too long or backwards measures again.
#[test]
fn a_measured_scale_covers_the_clock_whatever_the_delays() {
    for ghz in [0.2, 1.0, 2.45, 3.0, 5.5] {
        let line = Timeline::new(ghz);
        let real = (1u64 << 32) as f64 / ghz;
        let delays = [0, 50, 10_000, 3_000_000, 30_000_000];
        for late0 in delays {
            for after0 in delays {
                for late1 in delays {
                    let start = line.sample(1_000_000_000, late0, after0);
                    let end_at = start.boot + after0 + 20_000_000;
                    let end = line.sample(end_at, late1, 40);
                    let Some(scale) = scale_from(start, end) else {
                        // Only a rate the delays pushed out of range is measured again.
                        let ticks = (end.before - start.after) as f64;
                        let apparent = ticks / (end.boot - start.boot) as f64;
                        assert!(
                            apparent <= 0.125,
                            "{ghz} GHz, delays {late0}/{after0}/{late1}"
                        );
                        continue;
                    };
                    assert!(
                        scale as f64 >= 2.0 * real * 0.999_999,
                        "{ghz} GHz, delays {late0}/{after0}/{late1}: {scale} < 2 x {real}"
                    );
                }
            }
        }
        let start = line.sample(1_000_000_000, 0, 40);
        let at = |ms: u64| start.boot + ms * 1_000_000;
        assert_eq!(scale_from(start, line.sample(at(5), 0, 40)), None, "5 ms");
        assert_eq!(
            scale_from(start, line.sample(at(1_500), 0, 40)),
            None,
            "1.5 s"
        );
        assert_eq!(
            scale_from(line.sample(at(20), 0, 40), start),
            None,
            "backwards"
        );
    }
    let start = Sample {
        before: 0,
        boot: 0,
        after: 10,
    };
    let slow = Sample {
        before: 1_000_010, // 0.1 GHz over 10 ms
        boot: 10_000_000,
        after: 1_000_020,
    };
    assert_eq!(scale_from(start, slow), None, "below 0.125 GHz");
}

/// A suspend inside the window can only raise the scale: the boot clock runs through it
/// whether the counter stops (here) or runs on (the same as no suspend).
#[test]
fn a_suspend_in_the_window_only_raises_the_scale() {
    let ghz = 3.0;
    let real = (1u64 << 32) as f64 / ghz;
    for stopped in [1_000_000, 30_000_000, 100_000_000] {
        let line = Timeline {
            ghz,
            stop_at: 1_005_000_000,
            stopped,
        };
        let start = line.sample(1_000_000_000, 0, 40);
        let end = line.sample(1_000_000_000 + 20_000_000 + stopped, 0, 40);
        let scale = scale_from(start, end).expect("in range");
        assert!(scale as f64 >= 2.0 * real, "{stopped} ns stopped: {scale}");
    }
}

#[test]
fn measuring_keeps_its_window_until_it_measures() {
    let line = Timeline::new(3.0);
    let first = line.sample(1_000_000_000, 0, 40);
    assert_eq!(measure_step(None, first), (Some(first), None));
    let early = line.sample(1_005_000_000, 0, 40);
    assert_eq!(
        measure_step(Some(first), early),
        (Some(first), None),
        "5 ms in"
    );
    let late = line.sample(1_020_000_000, 0, 40);
    let (start, scale) = measure_step(Some(first), late);
    assert_eq!(start, Some(first));
    assert!(scale.is_some_and(|s| s as f64 >= 2.0 * (1u64 << 32) as f64 / 3.0));
    let stale = line.sample(3_000_000_000, 0, 40);
    assert_eq!(
        measure_step(Some(first), stale),
        (Some(stale), None),
        "2 s: again"
    );
    let older = line.sample(900_000_000, 0, 40);
    assert_eq!(
        measure_step(Some(first), older),
        (Some(older), None),
        "backwards: again"
    );
}

#[test]
fn a_renewal_judges_the_old_pair() {
    let state = open_state(1, 1.0);
    let old = (1_000, 5_000_000, state);
    // 10^6 ticks later the clock may be at most 2 ms + SLACK on.
    let fine = verdict(old, 1_000_900, 5_900_000, 1_001_000, state);
    assert_eq!(fine, Verdict::Fine);
    let broken = verdict(old, 1_000_900, 8_000_000, 1_001_000, state);
    assert_eq!(
        broken,
        Verdict::Broken,
        "3 ms in 10^6 ticks of at most 2 ns"
    );
    assert_eq!(
        verdict(old, 999, 8_000_000, 1_001_000, state),
        Verdict::Back
    );
    assert_eq!(
        verdict((0, 0, 0), 5, 1, 6, state),
        Verdict::Fine,
        "no old pair"
    );
    let other = open_state(2, 1.0);
    assert_eq!(
        verdict(old, 1_000_900, 8_000_000, 1_001_000, other),
        Verdict::Fine
    );
}

/// Calls `passed` until the gate has measured its window (or closed), and says whether
/// it is open.
fn opened() -> bool {
    if !prepare() {
        return false;
    }
    for _ in 0..200 {
        let _ = passed(u64::MAX);
        if STATE.load(Ordering::Relaxed) & SCALE_MASK != MEASURING {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    STATE.load(Ordering::Relaxed) & SCALE_MASK > CLOSED
}

#[test]
fn opens_where_the_machine_supports_it() {
    let state = STATE.load(Ordering::Relaxed);
    assert_eq!(opened(), supported(), "state {state:#x}");
}

/// Every answer agrees with clock readings taken around it: a time reached before the
/// call is passed, one not reached after it is not. Where the gate is open, most answers
/// must have come from the pair, not from a reading.
#[test]
fn answers_agree_with_the_clock_around_them() {
    let open = opened();
    let (mut decided_by_pair, mut calls) = (0u64, 0u64);
    let end = monotonic_nanos() + 30_000_000;
    let mut x = 1u64;
    while monotonic_nanos() < end {
        for far in [0, 20_000, 1_000_000, 1_000_000_000] {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let jitter = (x >> 40) % 30_000;
            let before = monotonic_nanos();
            let early = before.saturating_sub(far + jitter);
            let late = before + far + jitter;
            let pair = PAIR.get();
            let (was_early, was_late) = (passed(early), passed(late));
            let after = monotonic_nanos();
            calls += 2;
            if PAIR.get() == pair {
                decided_by_pair += 2;
            }
            assert!(was_early, "{early} was reached before the call ({before})");
            if late > after {
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
        assert_eq!(PAIR.get(), (0, 0, 0));
        let now = monotonic_nanos();
        assert!(!passed(now + 1_000_000_000));
        if open {
            let (_, m, word) = PAIR.get();
            assert!(m >= now, "the first check renewed the pair");
            assert!(word & SCALE_MASK > CLOSED, "with the open state: {word:#x}");
        }
    })
    .join()
    .unwrap();
}

/// A pair that has aged (tens of milliseconds, under `MAX_ELAPSED`) still never calls a
/// reached time not passed: this is where a scale below the real one would show, as the
/// slack no longer hides it.
#[test]
fn an_aged_pair_still_bounds_the_clock() {
    if !opened() {
        return;
    }
    for sleep_ms in [20, 40, 60] {
        let _ = passed(u64::MAX); // undecided: renews the pair
        std::thread::sleep(Duration::from_millis(sleep_ms));
        let now = monotonic_nanos();
        assert!(passed(now), "{sleep_ms} ms after a renewal");
        assert!(passed(now.saturating_sub(5_000_000)));
    }
}

/// The scale the gate measured is at least twice a rate bracketed here, independently,
/// over 50 ms.
#[test]
fn the_measured_scale_covers_an_independent_measurement() {
    if !opened() {
        return;
    }
    let (c0, m0) = (counter_ordered(), monotonic_nanos());
    std::thread::sleep(Duration::from_millis(50));
    let (m1, c1) = (monotonic_nanos(), counter_ordered());
    // `c0` was read before `m0` and `c1` after `m1`, so the counter advanced at least as
    // much as the clock did: a lower bound on ns per tick, within a few ns in 50 ms.
    let ns_per_tick_low = (m1 - m0) as f64 / (c1 - c0) as f64;
    let scale = (STATE.load(Ordering::Relaxed) & SCALE_MASK) as f64 / (1u64 << 32) as f64;
    assert!(
        scale >= 2.0 * ns_per_tick_low * 0.99,
        "scale {scale} ns per tick against a measured {ns_per_tick_low}"
    );
}

/// A write renews its pair after `WRITE_RENEWAL` answers from it (so a counter that
/// stalled is judged against a real reading within that many writes: see the module docs).
#[test]
fn writes_renew_their_pair_after_a_bounded_number_of_answers() {
    if !opened() {
        return;
    }
    std::thread::spawn(|| {
        let _ = read(); // a fresh pair, nothing served from it yet
        let pair = PAIR.get();
        let renewed_at = (1..=WRITE_RENEWAL as usize + 1).find(|_| {
            let _ = bounds();
            PAIR.get() != pair
        });
        // Earlier is allowed (another test may bump the generation), never later.
        assert!(renewed_at.is_some(), "{WRITE_RENEWAL} answers, no renewal");
    })
    .join()
    .unwrap();
}
