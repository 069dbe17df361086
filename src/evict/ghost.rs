//! Ghost entries: hashes of keys the small queue recently evicted, so that a key coming
//! back soon after is admitted straight to the main queue (S3-FIFO's `G`).
//!
//! Hash-only and direct-mapped: an array of 16-bit fingerprints indexed by the hash's low
//! bits, where a newer ghost overwrites an older one in its slot. So it costs 2 bytes per
//! slot (a key never evicted passes for a ghost once in 2^15 lookups: it then merely
//! meets TinyLFU's test early), lookups and inserts are one load or store, and it forgets roughly in FIFO order
//! (the older of two colliding ghosts goes). It is sized to about the segment's entries,
//! as the paper's ghost queue is to the main queue, and resized (emptied) as that changes.

/// A direct-mapped set of key fingerprints.
#[derive(Debug, Default)]
pub(crate) struct Ghost {
    slots: Vec<u16>,
}

/// Fewest slots a ghost keeps once it has any.
const MIN_SLOTS: usize = 64;

fn fingerprint(hash: u64) -> u16 {
    // Bits 32..47 (the low bits pick the slot, the top ones the segment); never 0, which
    // marks an empty slot.
    ((hash >> 32) as u16) | 1
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
