//! The small queue's share, adapted by hill climbing on the hit rate.
//!
//! S3-FIFO's small queue is a probation filter: a new entry must be hit while there to
//! reach main. No share suits every stream. On a loop slightly larger than the cache a
//! small queue of 1% of the weight instead of 3% gained 0.9-1.8 points (main keeps more of
//! the loop); on a working set that moves (phase changes) and on recency-heavy traffic 6%
//! gained up to 3.6 points (new hot keys need time on probation to be hit). So the share
//! climbs, as Caffeine sizes its admission window (Manes, "Design of a modern cache", and
//! the adaptive W-TinyLFU of Einziger, Eytan, Friedman and Manes, "Adaptive software cache
//! management", Middleware 2018): every sample period the cache's hit rate over that
//! period is compared with the previous period's; if it fell, the direction reverses. The
//! step shrinks each sample (so the share settles), and grows back when the hit rate jumps
//! (the stream changed, so the share has somewhere new to go).
//!
//! The rate comes from the cache's own counters (hits and misses, striped per thread), so
//! hits stay free of shared writes. A sample is a period of at least [`PERIODS`] times as
//! many requests as the cache holds entries (and at least [`MIN_PERIOD`]). Samples are
//! taken by an evicting write's maintenance turn that finds the climber free (`try_lock`,
//! never waited for), so an unbounded cache, or one not yet full, never climbs.
//!
//! The period is what makes it work on loops. Over one cache's worth of requests the hit
//! rate of a loop twice the capacity alternates between the loop's halves (main holds a
//! fixed subset of its keys), the climber took that for signal, and the loop at 1%
//! capacity fell from 47% to 40% hits; over three it was stable, over five a little
//! better again (`benches/hit_ratio.rs`: the figures are in the README). Over 4 million
//! requests that leaves a cache at 10% of 10^6 keys only six samples, so the climber
//! helps small caches (relative to their traffic) most. The share settles by the step's
//! decay, and can then still move by a thousandth a sample.

/// The share a cache starts with, in thousandths (quick_cache's default, 3%: the paper's
/// 10% measured 1-2 points lower on our Zipf streams).
pub(crate) const START: u64 = 30;
/// The least share (a tenth of the start), in thousandths.
pub(crate) const MIN: u64 = 10;
/// The largest share, in thousandths.
pub(crate) const MAX: u64 = 200;
/// The fewest requests in a sample period.
pub(crate) const MIN_PERIOD: u64 = 4_096;
/// The first step, in thousandths: towards a smaller share.
const FIRST_STEP: f64 = -5.0;
/// Each sample's step is the previous one's times this, down to [`LEAST_STEP`].
const DECAY: f64 = 0.9;
/// The smallest step (a tenth of a percent).
const LEAST_STEP: f64 = 1.0;
/// A change of the hit rate this large (a tenth: 10 points) between two samples restarts
/// the step at [`FIRST_STEP`]'s size.
const RESTART: f64 = 0.1;
/// A sample period, in multiples of the cache's entry count.
pub(crate) const PERIODS: u64 = 5;

/// The climber's state: the counts at the last sample, that sample's hit rate, the step.
#[derive(Debug)]
pub(crate) struct Climber {
    requests: u64,
    hits: u64,
    rate: Option<f64>,
    step: f64,
}

impl Climber {
    pub(crate) fn new() -> Self {
        Self {
            requests: 0,
            hits: 0,
            rate: None,
            step: FIRST_STEP,
        }
    }

    /// Given the cache's cumulative `hits` and `misses`, its entry count and the current
    /// share: the new share, once a period has passed since the last sample.
    pub(crate) fn sample(
        &mut self,
        hits: u64,
        misses: u64,
        entries: u64,
        share: u64,
    ) -> Option<u64> {
        let requests = hits.saturating_add(misses);
        let period = requests.saturating_sub(self.requests);
        if period < entries.saturating_mul(PERIODS).max(MIN_PERIOD) {
            return None;
        }
        let rate = hits.saturating_sub(self.hits) as f64 / period as f64;
        self.requests = requests;
        self.hits = hits;
        let Some(previous) = self.rate.replace(rate) else {
            // The first period only sets the baseline.
            return None;
        };
        if rate == previous {
            // No signal (as in a cache read only through calls that count no hits): stay.
            return None;
        }
        if rate < previous {
            self.step = -self.step;
        }
        if (rate - previous).abs() >= RESTART {
            self.step = FIRST_STEP.abs().copysign(self.step);
        }
        let next = (share as f64 + self.step)
            .round()
            .clamp(MIN as f64, MAX as f64) as u64;
        self.step = (self.step * DECAY)
            .abs()
            .max(LEAST_STEP)
            .copysign(self.step);
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a sample whose period of `n` requests had `rate` hits.
    fn feed(
        c: &mut Climber,
        totals: &mut (u64, u64),
        n: u64,
        rate: f64,
        share: u64,
    ) -> Option<u64> {
        let hits = (n as f64 * rate) as u64;
        totals.0 += hits;
        totals.1 += n - hits;
        c.sample(totals.0, totals.1, 0, share)
    }

    #[test]
    fn it_keeps_a_direction_that_helps_and_reverses_one_that_hurts() {
        let (mut c, mut t) = (Climber::new(), (0, 0));
        assert_eq!(
            c.sample(10, 10, 0, START),
            None,
            "a short period is no sample"
        );
        assert_eq!(
            feed(&mut c, &mut t, MIN_PERIOD, 0.50, START),
            None,
            "the baseline"
        );
        // Better: keeps going down (the first step is -5, then 90% of it).
        assert_eq!(
            feed(&mut c, &mut t, MIN_PERIOD, 0.51, START),
            Some(START - 5)
        );
        let down = feed(&mut c, &mut t, MIN_PERIOD, 0.52, START - 5).unwrap();
        assert_eq!(down, START - 9, "a step of 4.5, rounded");
        // Worse: turns back up.
        let up = feed(&mut c, &mut t, MIN_PERIOD, 0.515, down).unwrap();
        assert!(up > down, "reversed: {up}");
        // A fall of 10 points or more also reverses, and restarts the step at 5.
        let next = feed(&mut c, &mut t, MIN_PERIOD, 0.40, up).unwrap();
        assert_eq!(next, up - 5, "reversed and restarted");
    }

    #[test]
    fn the_share_stays_within_its_bounds_and_the_period_follows_the_entries() {
        let (mut c, mut t) = (Climber::new(), (0, 0));
        let mut share = START;
        let mut rate = 0.3;
        for _ in 0..100 {
            rate += 0.001; // always better: always down
            if let Some(next) = feed(&mut c, &mut t, MIN_PERIOD, rate, share) {
                share = next;
            }
        }
        assert_eq!(share, MIN);
        // With a million entries a period is five million requests.
        let (h, m) = (t.0 + MIN_PERIOD, t.1);
        assert_eq!(c.sample(h, m, 1_000_000, share), None);
    }
}
