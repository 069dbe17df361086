//! The clock's unit tests: tick arithmetic, saturation, and the gated `lapsed`.

use super::*;

#[test]
fn time_left_reaches_past_u64_nanoseconds() {
    let clock = ManualClock::new();
    let ticker = Ticker::new(Box::new(clock.clone()), Duration::from_millis(1));
    let reading = ticker.read();
    let thousand_years = Duration::from_secs(1_000 * 365 * 24 * 3600);
    let deadline = reading.deadline_after(thousand_years);
    assert_eq!(reading.until(deadline), Some(thousand_years));
    assert_eq!(reading.until(NEVER), None);
    clock.advance(Duration::from_micros(1500));
    assert_eq!(ticker.read().until(2), Some(Duration::from_micros(500)));
    assert_eq!(
        ticker.read().until(1),
        Some(Duration::ZERO),
        "reached: none left"
    );
}

#[test]
fn deadlines_round_up_and_saturate() {
    let clock = ManualClock::new();
    let ticker = Ticker::new(Box::new(clock.clone()), Duration::from_millis(1));
    clock.advance(Duration::from_micros(1500));
    assert_eq!(ticker.now(), 1);
    // 1.5 ms + 1 ms = 2.5 ms: due at tick 3, never earlier than the TTL.
    assert_eq!(ticker.deadline_after(Duration::from_millis(1)), 3);
    assert_eq!(ticker.deadline_after(Duration::ZERO), 2);
    assert_eq!(ticker.deadline_after(Duration::MAX), NEVER);
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    let d = ticker.deadline_after(century);
    assert!(d < NEVER && d > 3_000_000_000_000, "{d}");
}

#[test]
fn reached_agrees_with_the_tick() {
    let ticks = [1, 3, 1_000_000, u64::MAX / 7, u64::MAX];
    let nanos = [0, 1, 2_999_999, 3_000_000, 1 << 40, u64::MAX - 1, u64::MAX];
    let deadlines = [0, 1, 2, 3, 1 << 20, NEVER - 1, NEVER];
    for tick_nanos in ticks {
        for n in nanos {
            let reading = Reading::exact(n, tick_nanos);
            for d in deadlines {
                let by_tick = d != NEVER && reading.tick() >= d;
                assert_eq!(reading.reached(d), by_tick, "n {n} t {tick_nanos} d {d}");
            }
        }
    }
}

#[test]
fn manual_clock_saturates() {
    let clock = ManualClock::new();
    clock.advance(Duration::MAX);
    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.now_nanos(), u64::MAX);
    let ticker = Ticker::new(Box::new(clock), Duration::ZERO);
    assert_eq!(ticker.tick(), MIN_TICK);
    // The oldest possible reading is still far from saturating deadlines.
    assert_eq!(ticker.now(), u64::MAX / 1000);
    assert!(ticker.now() < NEVER);
    assert!(ticker.deadline_after(Duration::from_secs(1)) < NEVER);
}

/// The default clock's `lapsed` (gated where the target has the gate) agrees with
/// readings taken around it, for deadlines from two ticks back to two ahead with 1 ms
/// ticks, and 20 back to 20 ahead with 1 us ticks: a deadline reached before the call has
/// lapsed, one not reached after it has not.
#[test]
#[cfg_attr(miri, ignore = "30 ms of busy reading; there is no gate under Miri")]
fn lapsed_agrees_with_readings_around_it() {
    for tick in [Duration::from_millis(1), MIN_TICK] {
        let ticker = Ticker::monotonic(tick);
        let t = ticker.tick_nanos;
        let end = std::time::Instant::now() + Duration::from_millis(30);
        while std::time::Instant::now() < end {
            let before = ticker.read();
            let base = before.tick();
            let reach = (20_000 / t).max(2); // 2 ticks, or 20 us of 1 us ticks
            for d in base.saturating_sub(reach)..=base + reach {
                let lapsed = ticker.lapsed(d);
                let after = ticker.read();
                let due = d * t;
                if due <= before.nanos() {
                    assert!(lapsed, "due {due}, read {} before", before.nanos());
                }
                if due > after.nanos() {
                    assert!(!lapsed, "due {due}, read {} after", after.nanos());
                }
            }
        }
        assert!(!ticker.lapsed(NEVER));
        assert!(
            !ticker.lapsed(NEVER - 1),
            "past u64 nanoseconds with 1 us ticks"
        );
    }
}

/// A write's reading (`read_for`, bounded by the TSC gate where the target has it) gives
/// the tick and the deadline that readings taken around it allow: never before the one
/// before it, never past the one after it. With 1 ms ticks, where the gate is open, most
/// must come without a reading (a bounded reading's ends differ).
#[test]
#[cfg_attr(miri, ignore = "30 ms of busy reading; there is no gate under Miri")]
fn a_write_reading_agrees_with_readings_around_it() {
    let ttls = [
        None,
        Some(Duration::from_millis(200)),
        Some(Duration::from_nanos(1_234_567)),
        Some(Duration::MAX),
    ];
    for tick in [Duration::from_millis(1), MIN_TICK] {
        let ticker = Ticker::monotonic(tick);
        let (mut bounded, mut calls) = (0u64, 0u64);
        let end = std::time::Instant::now() + Duration::from_millis(30);
        while std::time::Instant::now() < end {
            for ttl in ttls {
                let before = ticker.read();
                let reading = ticker.read_for(ttl);
                let after = ticker.read();
                if gate_open(&ticker) {
                    calls += 1;
                    bounded += u64::from(reading.lo != reading.hi);
                }
                assert!(before.tick() <= reading.tick() && reading.tick() <= after.tick());
                assert!(reading.lo <= after.nanos() && reading.hi >= before.nanos());
                if let Some(ttl) = ttl {
                    let d = reading.deadline_after(ttl);
                    assert!(before.deadline_after(ttl) <= d, "{ttl:?} from {before:?}");
                    assert!(d <= after.deadline_after(ttl), "{ttl:?} to {after:?}");
                }
            }
        }
        if tick == Duration::from_millis(1) && calls > 0 {
            assert!(bounded * 2 > calls, "{bounded} of {calls} bounded");
        }
    }
}

/// Whether `ticker`'s readings for writes may be bounded by the gate now.
fn gate_open(ticker: &Ticker) -> bool {
    #[cfg(all(
        target_arch = "x86_64",
        target_os = "linux",
        not(miri),
        not(wheelcache_loom)
    ))]
    return ticker.gated.is_some() && gate::is_open();
    #[cfg(not(all(
        target_arch = "x86_64",
        target_os = "linux",
        not(miri),
        not(wheelcache_loom)
    )))]
    {
        let _ = ticker;
        false
    }
}

/// A bounded reading is made exactly where every time in its interval gives its tick and
/// its deadline for the TTL it was made for, and answers with them.
#[test]
fn a_bounded_reading_answers_as_every_time_in_it() {
    let ticks = [1, 7, 1_000, 1_000_000, u64::MAX / 3];
    let ttls = [
        None,
        Some(Duration::ZERO),
        Some(Duration::from_nanos(1)),
        Some(Duration::from_nanos(999_999)),
        Some(Duration::from_millis(200)),
        Some(Duration::from_secs(u64::MAX / 4)),
        Some(Duration::MAX),
    ];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut made = 0;
    for t in ticks {
        for ttl in ttls {
            for _ in 0..2_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let lo = match x % 3 {
                    0 => x >> 8,
                    1 => (x >> 40) * t.min(1 << 20),
                    _ => u64::MAX - (x >> 44),
                };
                let hi = lo.saturating_add((x >> 12) % (t.saturating_mul(2)).max(2));
                let ends = [lo, hi].map(|n| Reading::exact(n, t));
                let agree = ends[0].tick() == ends[1].tick()
                    && ttl.is_none_or(|d| ends[0].deadline_after(d) == ends[1].deadline_after(d));
                let Some(r) = Reading::bounded(lo, hi, t, ttl) else {
                    assert!(!agree, "refused [{lo}, {hi}] t {t} ttl {ttl:?}");
                    continue;
                };
                made += 1;
                assert!(agree, "made [{lo}, {hi}] t {t} ttl {ttl:?}");
                for n in [lo, lo + (hi - lo) / 2, hi] {
                    let exact = Reading::exact(n, t);
                    assert_eq!(r.tick(), exact.tick(), "[{lo}, {hi}] t {t} at {n}");
                    if let Some(d) = ttl {
                        assert_eq!(r.deadline_after(d), exact.deadline_after(d), "at {n}");
                    }
                }
            }
        }
    }
    assert!(made > 10_000, "{made} made");
    // The edges: a zero TTL at time zero (deadline 0), and `reached` at both ends.
    let r = Reading::bounded(0, 0, 1_000, Some(Duration::ZERO)).expect("one time");
    assert_eq!((r.tick(), r.deadline_after(Duration::ZERO)), (0, 0));
    let r = Reading::bounded(2_001, 2_400, 1_000, Some(Duration::from_nanos(500))).unwrap();
    assert_eq!(
        (r.tick(), r.deadline_after(Duration::from_nanos(500))),
        (2, 3)
    );
    assert!(r.reached(2) && !r.reached(3));
    assert!(
        Reading::bounded(2_001, 3_000, 1_000, None).is_none(),
        "two ticks"
    );
    assert!(
        Reading::bounded(2_001, 2_600, 1_000, Some(Duration::from_nanos(500))).is_none(),
        "deadlines 3 and 4"
    );
}
