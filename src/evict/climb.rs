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
//! period is compared with the rate two periods before; if it fell in two samples running,
//! the direction reverses. The step shrinks each sample (so the share settles), and grows
//! back when the hit rate jumps (the stream changed, so the share has somewhere new to go).
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
//!
//! **Two samples back, two falls running.** Five entry counts of a loop twice the cache are
//! two and a half laps, so the samples still alternate (49.3% and 47.2% at 1% capacity,
//! printed per sample by a probe not kept): compared with the sample just before, every
//! other one looked like a fall, the direction flipped every sample, and the share sat
//! where the first steps had left it (2.7%, for a loop whose best share is the least).
//! Compared with the sample two back (same phase of the alternation), the trend shows. And
//! a loop 1.2 times the cache dips for one sample in five or six (to 81-82% from 83%): five
//! entry counts are 4.17 of its laps, and the odd sixth of a lap holds more or fewer of the
//! keys main does not keep as the window slides (the ghosts taken into main per sample,
//! 120-250, did not change at the dips). So a single fall no longer turns the climber; two
//! in a row do. With both, the share of either loop goes to the floor, which was lowered
//! from 1% to 0.5%: in three runs each of `cargo bench --bench hit_ratio -- own`, the 2x
//! loop at 1% went from 47.91 / 48.40 to 48.98 / 49.55 and the 1.2x loop at 1% from 81.43 /
//! 82.05 to 81.77 / 82.32; the loops at 10% gained 0.26-0.38, and no other stream moved by
//! more than 0.11 (the recency-heavy stream at 10% lost 0.06 / 0.08; at 1% its share still
//! climbs, to about 5%). Neither rule helps a loop whose samples repeat every three (one
//! 1.5 times the cache: five entry counts are 3.33 of its laps); its share may still stick
//! where the first steps leave it (not measured: the bench has no such loop).

/// The share a cache starts with, in thousandths (quick_cache's default, 3%: the paper's
/// 10% measured 1-2 points lower on our Zipf streams).
pub(crate) const START: u64 = 30;
/// The least share (a sixth of the start), in thousandths: a loop's best share is the
/// least (see "Two samples back" above).
pub(crate) const MIN: u64 = 5;
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
/// A change of the hit rate this large (a tenth: 10 points) from the reference sample
/// restarts the step at [`FIRST_STEP`]'s size.
const RESTART: f64 = 0.1;
/// A sample period, in multiples of the cache's entry count.
pub(crate) const PERIODS: u64 = 5;

/// The climber's state: the counts at the last sample, the last two samples' hit rates,
/// whether the last sample fell, the step.
#[derive(Debug)]
pub(crate) struct Climber {
    requests: u64,
    hits: u64,
    /// The last sample's hit rate.
    last: Option<f64>,
    /// The one before it: the next sample's reference.
    before_last: Option<f64>,
    /// Whether the last sample fell below its reference (one fall does not turn).
    fell: bool,
    step: f64,
}

impl Climber {
    pub(crate) fn new() -> Self {
        Self {
            requests: 0,
            hits: 0,
            last: None,
            before_last: None,
            fell: false,
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
        // The reference is the sample two back (the second sample has only the first).
        let reference = self.before_last.or(self.last);
        self.before_last = self.last.replace(rate);
        let Some(reference) = reference else {
            // The first period only sets the baseline.
            return None;
        };
        if rate == reference {
            // No signal (as in a cache read only through calls that count no hits): stay,
            // and the falls are no longer running.
            self.fell = false;
            return None;
        }
        let fell = rate < reference;
        if fell && self.fell {
            self.step = -self.step;
            self.fell = false;
        } else {
            self.fell = fell;
        }
        if (rate - reference).abs() >= RESTART {
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
        // Better than the only sample before: down (the first step is -5, then 90% of it).
        assert_eq!(
            feed(&mut c, &mut t, MIN_PERIOD, 0.51, START),
            Some(START - 5)
        );
        // Better than two back (0.50).
        let down = feed(&mut c, &mut t, MIN_PERIOD, 0.52, START - 5).unwrap();
        assert_eq!(down, START - 9, "a step of 4.5, rounded");
        // Worse than two back (0.51): one fall keeps the direction.
        let further = feed(&mut c, &mut t, MIN_PERIOD, 0.505, down).unwrap();
        assert_eq!(further, down - 4, "one fall does not turn it: {further}");
        // Worse than two back again (0.52): two falls running turn it back up.
        let up = feed(&mut c, &mut t, MIN_PERIOD, 0.50, further).unwrap();
        assert!(up > further, "reversed: {up}");
        // A rise restarts the count of falls: one more fall does not turn it.
        let on = feed(&mut c, &mut t, MIN_PERIOD, 0.51, up).unwrap();
        assert!(on > up, "still up: {on}");
        let still = feed(&mut c, &mut t, MIN_PERIOD, 0.49, on).unwrap();
        assert!(still > on, "one fall: still up: {still}");
        // A change of 10 points or more restarts the step at 5.
        let next = feed(&mut c, &mut t, MIN_PERIOD, 0.30, still).unwrap();
        assert_eq!(next, still - 5, "second fall: reversed and restarted");
    }

    /// The share after `samples` samples of a rate that alternates by two points from one
    /// sample to the next (a loop twice the cache) and moves by `slope` per thousandth.
    fn alternating(slope: f64, samples: usize) -> u64 {
        let (mut c, mut t) = (Climber::new(), (0, 0));
        let mut share = START;
        for i in 0..samples {
            let phase = if i % 2 == 0 { 0.02 } else { 0.0 };
            let rate = 0.47 + phase + (share as f64 - START as f64) * slope;
            if let Some(next) = feed(&mut c, &mut t, MIN_PERIOD, rate, share) {
                share = next;
            }
        }
        share
    }

    #[test]
    fn a_rate_that_alternates_between_samples_does_not_hold_the_share() {
        // Best at the floor (the first step's direction): it gets there.
        let down = alternating(-0.0005, 60);
        assert!(down <= MIN + 1, "settled at {down}, not the floor");
        // Best above (against the first step): it turns and climbs. Compared with the
        // sample just before, the alternation hid every fall behind a rise.
        let up = alternating(0.0005, 60);
        assert!(up > START + 10, "settled at {up}, not above the start");
    }

    #[test]
    fn a_one_sample_dip_does_not_turn_it() {
        // A loop 1.2 times the cache: level, but one sample in five dips by a point and a
        // half; each thousandth less share adds a little. It keeps going to the floor.
        let (mut c, mut t) = (Climber::new(), (0, 0));
        let mut share = START;
        for i in 0..60 {
            let dip = if i % 5 == 4 { 0.015 } else { 0.0 };
            let rate = 0.83 - dip - (share as f64 - MIN as f64) * 0.0002;
            if let Some(next) = feed(&mut c, &mut t, MIN_PERIOD, rate, share) {
                share = next;
            }
        }
        assert!(share <= MIN + 2, "settled at {share}, not the floor");
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
