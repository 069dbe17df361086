//! A count-min sketch of how often keys were inserted recently: TinyLFU's frequency
//! filter (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission
//! Policy", ACM TOS 2017), as Caffeine's `FrequencySketch` keeps it.
//!
//! Four rows of 4-bit saturating counters; a key's estimate is the least of its four
//! counters. Counts are halved once the sketch has seen ten times as many keys as it has
//! counters per row, so old popularity fades. It is fed by the maintainer only: each insert
//! it applies (for a cache filled on misses, the same as counting misses), and each pass of
//! main's CLOCK hand over an entry hit since the previous pass. Reads never touch it, so a
//! hit still writes nothing shared. 2 bytes per counter column,
//! sized to the segment's entries (resized, and so reset, as that changes by 4x).

/// Rows of counters (each with its own hash of the key).
const ROWS: usize = 4;
/// Counters per `u64` word.
const PER_WORD: usize = 16;
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
        for row in 0..ROWS {
            let (w, shift) = self.slot(hash, row);
            if (self.words[w] >> shift) & 0xf < 0xf {
                self.words[w] += 1 << shift;
            }
        }
        self.adds += 1;
        if self.adds >= self.width * 10 {
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
}
