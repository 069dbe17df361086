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

/// A timeline: the counter runs at `ghz`, the clock at 1 ns per ns.
struct Timeline {
    ghz: f64,
}

impl Timeline {
    /// A sample whose counter is read at `t`, the clock `late` ns later, and the counter
    /// again `after` ns after that, with `suspended` ns of suspend so far.
    fn sample(&self, t: u64, late: u64, after: u64, suspended: u64) -> Sample {
        let counter = |ns: u64| (ns as f64 * self.ghz) as u64;
        Sample {
            before: counter(t),
            mono: t + late,
            after: counter(t + late + after),
            suspended,
        }
    }
}

/// However the clock readings are delayed inside their brackets (a preemption of up to
/// 30 ms, in the first sample or the last), the measured scale is at least twice the
/// real one (or, where the delays make the rate look below 0.125 GHz, there is none);
/// windows that are too short or long, or hold a suspend, measure again.
#[test]
fn a_measured_scale_covers_the_clock_whatever_the_delays() {
    for ghz in [0.2, 1.0, 2.45, 3.0, 5.5] {
        let line = Timeline { ghz };
        let real = (1u64 << 32) as f64 / ghz;
        let delays = [0, 50, 10_000, 3_000_000, 30_000_000];
        for late0 in delays {
            for after0 in delays {
                for late1 in delays {
                    let start = line.sample(1_000_000_000, late0, after0, 7);
                    let end_at = start.mono + after0 + 20_000_000;
                    let end = line.sample(end_at, late1, 40, 7);
                    let Some(scale) = scale_from(start, end) else {
                        // Only a rate the delays pushed out of range is measured again.
                        let apparent =
                            (end.before - start.after) as f64 / (end.mono - start.mono) as f64;
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
        let start = line.sample(1_000_000_000, 0, 40, 7);
        let at = |ms: u64| start.mono + ms * 1_000_000;
        assert_eq!(
            scale_from(start, line.sample(at(5), 0, 40, 7)),
            None,
            "5 ms"
        );
        assert_eq!(
            scale_from(start, line.sample(at(1_500), 0, 40, 7)),
            None,
            "1.5 s"
        );
        let asleep = line.sample(at(20), 0, 40, 7 + 2_000_000);
        assert_eq!(scale_from(start, asleep), None, "2 ms suspended");
        assert_eq!(
            scale_from(line.sample(at(20), 0, 40, 7), start),
            None,
            "backwards"
        );
    }
    let start = Sample {
        before: 0,
        mono: 0,
        after: 10,
        suspended: 0,
    };
    let slow = Sample {
        before: 1_000_010, // 0.1 GHz over 10 ms
        mono: 10_000_000,
        after: 1_000_020,
        suspended: 0,
    };
    assert_eq!(scale_from(start, slow), None, "below 0.125 GHz");
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
    prepare();
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
