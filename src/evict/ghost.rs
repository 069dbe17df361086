//! Ghost entries: hashes of keys the small queue recently evicted, so that a key coming
//! back soon after is admitted straight to the main queue (S3-FIFO's `G`).
//!
//! Hash-only and direct-mapped: an array of 8-bit fingerprints indexed by the hash's low
//! bits, where a newer ghost overwrites an older one in its slot. So it costs 1 byte per
//! slot (a key never evicted passes for a ghost about once in 255 lookups: it then merely
//! meets TinyLFU's test early), lookups and inserts are one load or store, and it
//! forgets roughly in FIFO order (the older of two colliding ghosts goes). It is sized to
//! about the segment's entries, as the paper's ghost queue is to the main queue, and
//! resized (emptied) as that changes.
//!
//! The fingerprints were 16 bits. At 8, the hit-ratio streams moved by at most 0.35 of a
//! point (`cargo bench --bench hit_ratio -- own`: the scan mix at 1% -0.27/-0.34, the
//! 2x loop at 10% +0.10/+0.12, the rest within 0.09), and a bounded cache's entry costs
//! a byte less (`tests/memory.rs`). Half as many 16-bit slots instead cost the 2x loop
//! at 10% 6 points.

/// A direct-mapped set of key fingerprints.
#[derive(Debug, Default)]
pub(crate) struct Ghost {
    slots: Vec<u8>,
}

/// Fewest slots a ghost keeps once it has any.
const MIN_SLOTS: usize = 64;

fn fingerprint(hash: u64) -> u8 {
    // Bits 32..39 (the low bits pick the slot, the top ones the segment); never 0, which
    // marks an empty slot.
    match (hash >> 32) as u8 {
        0 => 1,
        f => f,
    }
}

impl Ghost {
    fn index(&self, hash: u64) -> usize {
        (hash as usize) & (self.slots.len() - 1)
    }

    /// Remembers `hash`, sizing the ghost for `entries` (the segment's queued entries).
    pub(crate) fn insert(&mut self, hash: u64, entries: usize) {
        let want = entries.max(MIN_SLOTS).next_power_of_two();
        if self.slots.len() < want / 2 || self.slots.len() > want * 2 {
            self.slots = vec![0; want];
        }
        let i = self.index(hash);
        self.slots[i] = fingerprint(hash);
    }

    /// Whether `hash` is remembered; forgets it if so (it is being admitted again).
    pub(crate) fn take(&mut self, hash: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let i = self.index(hash);
        let hit = self.slots[i] == fingerprint(hash);
        if hit {
            self.slots[i] = 0;
        }
        hit
    }
}
