//! A count-min sketch of how often keys were inserted recently: TinyLFU's frequency
//! filter (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission
//! Policy", ACM TOS 2017), as Caffeine's `FrequencySketch` keeps it.
//!
//! Four rows of 4-bit saturating counters; a key's estimate is the least of its four
//! counters, and a record raises only the counters at that least value (*conservative
//! update*: Estan and Varghese, "New directions in traffic measurement and accounting",
//! SIGCOMM 2002), so a key's estimate grows less with its neighbours' traffic (only
//! where a neighbour's least counter is one of the key's own). It is fed by the
//! maintainer only: each insert it applies (for a cache filled on misses, the same as
//! counting misses), and each pass of main's CLOCK hand over an entry hit since the
//! previous pass. Reads never touch it, so a hit still writes nothing shared. 2 bytes per
//! counter column, sized to the segment's entries (resized, and so reset, as that changes
//! by 4x).
//!
//! Counts are halved once three times as many records as there are counters in a row
//! have been counted (and the count of records is halved with them, so after the first
//! halving every 1.5 times), so old popularity fades. TinyLFU halves after ten times the
//! cache's size in *requests*; this sketch sees only what the maintainer records, about a
//! third of the requests at the hit ratios a cache is sized for, so three times its
//! width is about that sample. With ten (counting records as if they were requests) the
//! counts of a working set that had moved on outlived it: on the phase-change stream at 10% capacity
//! (`benches/hit_ratio.rs`) they halved once in four phases, and new hot keys were
//! refused for it. Conservative update with the shorter sample took that stream from
//! 71.05 / 69.35% to 72.10 / 70.76% and the one at 1% from 52.81 / 52.57% to 53.43 /
//! 53.21%, with every Zipf stream level or up (the bench's one-thread table; the
//! README has the full run).

/// Rows of counters (each with its own hash of the key).
const ROWS: usize = 4;
/// Counters per `u64` word.
const PER_WORD: usize = 16;
/// The counts are halved after this many records per counter column (see the essay).
const HALVE_AFTER: usize = 3;
const SEEDS: [u64; ROWS] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x85EB_CA77_C2B2_AE63,
];

/// The sketch (maintenance lock held for every call).
#[derive(Debug, Default)]
pub(crate) struct Sketch {
    /// `ROWS` rows of `width / PER_WORD` words.
    words: Vec<u64>,
    /// Counters per row (a power of two, at least `PER_WORD`), or 0 before first use.
    width: usize,
    /// Increments since the last halving.
    adds: usize,
}

impl Sketch {
    fn slot(&self, hash: u64, row: usize) -> (usize, u32) {
        let h = (hash ^ SEEDS[row]).wrapping_mul(SEEDS[(row + 1) % ROWS]);
        let counter = ((h >> 32) as usize) & (self.width - 1);
        let word = row * (self.width / PER_WORD) + counter / PER_WORD;
        (word, ((counter % PER_WORD) * 4) as u32)
    }

    /// Sizes the sketch for a segment of `entries` (resetting it when it resizes).
    pub(crate) fn fit(&mut self, entries: usize) {
        let want = entries.max(PER_WORD).next_power_of_two();
        if self.width == 0 || want > self.width * 2 || want * 4 < self.width {
            self.width = want;
            self.words = vec![0; ROWS * want / PER_WORD];
            self.adds = 0;
        }
    }

    /// Counts one insert of `hash`.
    pub(crate) fn record(&mut self, hash: u64) {
        if self.width == 0 {
            return;
        }
        // Conservative update: only the key's least counters go up (those above them
        // already count other keys' inserts too).
        let slots: [(usize, u32); ROWS] = std::array::from_fn(|row| self.slot(hash, row));
        let least = slots
            .iter()
            .map(|&(w, shift)| (self.words[w] >> shift) & 0xf)
            .min()
            .unwrap_or(0xf);
        for (w, shift) in slots {
            if least < 0xf && (self.words[w] >> shift) & 0xf == least {
                self.words[w] += 1 << shift;
            }
        }
        self.adds += 1;
        if self.adds >= self.width * HALVE_AFTER {
            for w in &mut self.words {
                *w = (*w >> 1) & 0x7777_7777_7777_7777;
            }
            self.adds /= 2;
        }
    }

    /// The estimated recent inserts of `hash`.
    pub(crate) fn estimate(&self, hash: u64) -> u64 {
        if self.width == 0 {
            return 0;
        }
        (0..ROWS)
            .map(|row| {
                let (w, shift) = self.slot(hash, row);
                (self.words[w] >> shift) & 0xf
            })
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_fade() {
        let mut s = Sketch::default();
        s.fit(1_000);
        for _ in 0..20 {
            s.record(42);
        }
        assert_eq!(s.estimate(42), 15);
        assert_eq!(s.estimate(43), 0);
        // Another key, inserted often: the halvings make 42's old count fade.
        for _ in 0..30_000 {
            s.record(43);
        }
        assert_eq!(s.estimate(43), 15);
        assert!(
            s.estimate(42) < 4,
            "halving makes old counts fade: {}",
            s.estimate(42)
        );
    }

    /// Conservative update: a record raises only the key's least counters, so a counter
    /// it shares with a busier key is left alone (a plain count-min raised it too).
    #[test]
    fn a_record_leaves_a_shared_busier_counter_alone() {
        let mut s = Sketch::default();
        s.fit(1_000);
        let a = 7u64;
        let counter = |s: &Sketch, (w, shift): (usize, u32)| (s.words[w] >> shift) & 0xf;
        // A key sharing exactly a's first-row counter.
        let b = (0..1_000_000u64)
            .find(|&b| {
                b != a
                    && s.slot(a, 0) == s.slot(b, 0)
                    && (1..ROWS).all(|r| s.slot(a, r) != s.slot(b, r))
            })
            .expect("a key sharing one counter");
        for _ in 0..5 {
            s.record(b);
        }
        s.record(a);
        assert_eq!(s.estimate(a), 1);
        assert_eq!(counter(&s, s.slot(a, 0)), 5, "the shared counter stays b's");
        assert_eq!(s.estimate(b), 5);
    }
}
