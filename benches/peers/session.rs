//! The session workload, shaped like a server's (shared by `benches/cache.rs` and the
//! demonstration, `examples/session_churn.rs`).
//!
//! Each thread keeps a *window* of [`WINDOW`] live sessions, its own ids. Every operation
//! picks at random: one in [`TURNOVER`] ends the session in a random window slot (a
//! `remove` in 70% of cases, abandoned to the TTL in the rest, so it ends at a random
//! point of its life) and starts a new one there (an `insert` with the TTL); every other
//! operation reads a random live session of the window. So sessions live across thousands
//! of other operations, a read rarely finds its entry in the CPU's cache, and each insert
//! is timed apart from its remove. Values are [`Session`](super::Session)s behind an
//! `Arc` (a few hundred bytes). Every read counts towards the hit ratio, from the first.
//!
//! Latency: every insert and remove is timed; one read in [`READ_SAMPLE`] is timed (timing
//! each would cost about as much as a hit).

use super::{value, Subject};
use std::time::Instant;

/// Live sessions per thread.
pub(crate) const WINDOW: usize = 512;
/// One operation in `TURNOVER` ends a session and starts another.
pub(crate) const TURNOVER: u64 = 8;
/// Sessions ended by `remove`, in percent (the rest are abandoned to the TTL).
pub(crate) const REMOVED_PERCENT: u64 = 70;
/// One read in `READ_SAMPLE` is timed.
pub(crate) const READ_SAMPLE: u64 = 16;

/// A log-linear latency histogram (8 sub-buckets per power of two, in ns) and its max.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    buckets: Vec<u64>,
    pub(crate) max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; 64 * 8],
            max: 0,
        }
    }
}

impl Histogram {
    pub(crate) fn record(&mut self, ns: u64) {
        let ns = ns.max(1);
        let exp = 63 - ns.leading_zeros() as usize;
        let sub = if exp >= 3 {
            ((ns >> (exp - 3)) & 7) as usize
        } else {
            0
        };
        self.buckets[exp * 8 + sub] += 1;
        self.max = self.max.max(ns);
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.max = self.max.max(other.max);
    }

    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// A bucket's middle, in ns (the histogram keeps no exact times: within 6.25% of them).
    fn middle(i: usize) -> f64 {
        let (exp, sub) = (i / 8, i % 8);
        if exp >= 3 {
            ((16 + 2 * sub as u64 + 1) << (exp - 3)) as f64 / 2.0
        } else {
            (1u64 << exp) as f64
        }
    }

    /// The mean, in ns (from the buckets' middles: see [`Self::middle`]).
    pub(crate) fn mean(&self) -> f64 {
        let total: f64 = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &c)| Self::middle(i) * c as f64)
            .sum();
        total / self.count().max(1) as f64
    }

    /// Of the operations slower than `ns`: their share of all operations, and their share
    /// of all the time operations took (both from the buckets' middles).
    pub(crate) fn slower_than(&self, ns: f64) -> (f64, f64) {
        let (mut slow, mut slow_time, mut time) = (0u64, 0.0, 0.0);
        for (i, &c) in self.buckets.iter().enumerate() {
            let t = Self::middle(i) * c as f64;
            time += t;
            if Self::middle(i) > ns {
                slow += c;
                slow_time += t;
            }
        }
        (
            slow as f64 / self.count().max(1) as f64,
            slow_time / time.max(1.0),
        )
    }

    /// The upper bound of the bucket holding quantile `q` (so within 12.5% above).
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        let target = ((self.count() as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= target {
                let (exp, sub) = (i / 8, i % 8);
                let upper = if exp >= 3 {
                    (8 + sub as u64 + 1) << (exp - 3)
                } else {
                    1 << exp
                };
                return upper.min(self.max);
            }
        }
        0
    }
}

/// What one thread (or, merged, all of them) did.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    pub(crate) ops: u64,
    pub(crate) reads: u64,
    pub(crate) hits: u64,
    pub(crate) abandoned: u64,
    pub(crate) insert: Histogram,
    pub(crate) remove: Histogram,
    pub(crate) read: Histogram,
}

impl Tally {
    pub(crate) fn merge(&mut self, other: &Self) {
        self.ops += other.ops;
        self.reads += other.reads;
        self.hits += other.hits;
        self.abandoned += other.abandoned;
        self.insert.merge(&other.insert);
        self.remove.merge(&other.remove);
        self.read.merge(&other.read);
    }
}

/// One thread's sessions: its window, its next id and its random state.
pub(crate) struct Sessions {
    window: Vec<u64>,
    next: u64,
    x: u64,
}

impl Sessions {
    /// Thread `t`'s sessions (ids from `(t + 1) << 40` up), with an empty window.
    pub(crate) fn new(t: usize) -> Self {
        Self {
            window: Vec::with_capacity(WINDOW),
            next: (t as u64 + 1) << 40,
            x: 0x9E37_79B9_7F4A_7C15 ^ (t as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
        }
    }

    fn rng(&mut self) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x
    }

    fn start<S: Subject>(&mut self, s: &S, tally: &mut Tally) -> u64 {
        self.next += 1;
        let session = value(self.next);
        let t0 = Instant::now();
        s.insert(self.next, session);
        tally.insert.record(t0.elapsed().as_nanos() as u64);
        self.next
    }

    /// Runs `ops` steps (filling the window first if it is not full: those inserts count
    /// as steps too). A step is one operation, except one that ends a session by `remove`
    /// and starts another: two, and `tally.ops` counts both. (The bench's throughput counts
    /// steps, the same for every subject.)
    pub(crate) fn run<S: Subject>(&mut self, s: &S, ops: u64, tally: &mut Tally) {
        for _ in 0..ops {
            tally.ops += 1;
            if self.window.len() < WINDOW {
                let id = self.start(s, tally);
                self.window.push(id);
                continue;
            }
            let r = self.rng();
            let slot = (r >> 32) as usize % WINDOW;
            if r % TURNOVER == 0 {
                let old = self.window[slot];
                if (r >> 8) % 100 < REMOVED_PERCENT {
                    let t0 = Instant::now();
                    s.remove(old);
                    tally.remove.record(t0.elapsed().as_nanos() as u64);
                    // The remove is an operation of its own.
                    tally.ops += 1;
                } else {
                    tally.abandoned += 1;
                }
                self.window[slot] = self.start(s, tally);
            } else {
                let id = self.window[slot];
                tally.reads += 1;
                let hit = if (r >> 16) % READ_SAMPLE == 0 {
                    let t0 = Instant::now();
                    let hit = std::hint::black_box(s.read(id)).is_some();
                    tally.read.record(t0.elapsed().as_nanos() as u64);
                    hit
                } else {
                    std::hint::black_box(s.read(id)).is_some()
                };
                tally.hits += u64::from(hit);
            }
        }
    }
}
