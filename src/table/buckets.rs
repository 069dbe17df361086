//! The bucket directory of one split-ordered list.
//!
//! Bucket `i` holds a pointer to its sentinel link, or null until some writer first needs
//! it. Buckets live in chunks of doubling size — chunk 0 holds bucket 0, chunk `c >= 1`
//! holds buckets `2^(c-1) .. 2^c` — so doubling the table allocates one new chunk and
//! copies nothing (Shalev & Shavit's "segment table"), and halving it frees exactly the top
//! chunk.
//!
//! Ground rules: chunk pointers are installed by CAS (a racing installer frees its own
//! spare), removed only by the segment's maintenance-lock holder during a shrink, and freed
//! through the epoch. Bucket slots are written by CAS (install) or by that holder (clear).

use super::node::Link;
use crate::sync::{AtomicUsize, Ordering};
use crossbeam_epoch::{Atomic, Guard, Owned, Shared};
use std::mem::MaybeUninit;

/// Smallest table by default: 2^MIN_SIZE_LOG buckets (see `Tuning`).
pub(crate) const MIN_SIZE_LOG: usize = 2;
/// Largest table: 2^MAX_SIZE_LOG buckets per segment.
pub(crate) const MAX_SIZE_LOG: usize = 32;
const CHUNKS: usize = MAX_SIZE_LOG + 1;
/// The size word: the logical size's log2 in the low byte; while a shrink is in progress,
/// this flag and the pre-shrink log2 ([`FROM_SHIFT`]) whose sentinels are not all gone yet.
const SIZE_MASK: usize = 0xff;
const SHRINKING: usize = 1 << 8;
const FROM_SHIFT: u32 = 16;

pub(crate) type Chunk = [MaybeUninit<Atomic<Link>>];

/// Which chunk holds bucket `index`, and where in it.
#[inline]
fn locate(index: usize) -> (usize, usize) {
    if index == 0 {
        (0, 0)
    } else {
        let chunk = (usize::BITS - index.leading_zeros()) as usize;
        (chunk, index - (1 << (chunk - 1)))
    }
}

#[inline]
fn chunk_len(chunk: usize) -> usize {
    if chunk == 0 {
        1
    } else {
        1 << (chunk - 1)
    }
}

/// The parent of bucket `index`: the bucket it split from (its top set bit cleared).
#[inline]
pub(crate) fn parent(index: usize) -> usize {
    debug_assert!(index > 0);
    index & !(1 << (usize::BITS - 1 - index.leading_zeros()))
}

#[derive(Debug)]
pub(crate) struct Buckets {
    /// log2 of the logical bucket count.
    size_log: AtomicUsize,
    dir: [Atomic<Chunk>; CHUNKS],
}

impl Buckets {
    pub(crate) fn new(size_log: usize) -> Self {
        Self {
            size_log: AtomicUsize::new(size_log.min(MAX_SIZE_LOG)),
            dir: std::array::from_fn(|_| Atomic::null()),
        }
    }

    /// log2 of the current bucket count.
    #[inline]
    pub(crate) fn size_log(&self) -> usize {
        // Acquire pairs with the Release half of the resizing CASes below. Nothing is
        // published through the size itself; Acquire keeps the reasoning local.
        self.size_log.load(Ordering::Acquire) & SIZE_MASK
    }

    /// log2 of the size to *start* searches from: the logical size, or during a shrink the
    /// old one, so an operation starts at its deepest sentinel still standing instead of
    /// walking past every sentinel the shrink has yet to delete.
    #[inline]
    pub(crate) fn search_size_log(&self) -> usize {
        // Acquire: as in `size_log`.
        let word = self.size_log.load(Ordering::Acquire);
        if word & SHRINKING != 0 {
            (word >> FROM_SHIFT) & SIZE_MASK
        } else {
            word & SIZE_MASK
        }
    }

    /// Doubles the table from `2^from` buckets, unless someone resized first or a shrink is
    /// in progress (grows wait for it, so no bucket above the shrunk size is re-created
    /// while its sentinel is being deleted).
    pub(crate) fn try_grow(&self, from: usize) -> bool {
        from < MAX_SIZE_LOG
            && self
                .size_log
                .compare_exchange(from, from + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Starts a shrink from `2^from` to `2^to` buckets, blocking grows until
    /// [`end_shrink`](Self::end_shrink). Maintenance-lock holder only.
    pub(crate) fn begin_shrink(&self, from: usize, to: usize) -> bool {
        debug_assert!(to < from);
        self.size_log
            .compare_exchange(
                from,
                to | SHRINKING | (from << FROM_SHIFT),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Ends the shrink begun by [`begin_shrink`](Self::begin_shrink).
    pub(crate) fn end_shrink(&self, to: usize) {
        // Release: the cleared slots and retired chunks are in place before grows resume.
        self.size_log.store(to, Ordering::Release);
    }

    /// The slot of bucket `index`, allocating its chunk when `create` (writers) and
    /// answering `None` for an unallocated chunk otherwise (readers never write).
    pub(crate) fn slot<'g>(
        &self,
        index: usize,
        create: bool,
        guard: &'g Guard,
    ) -> Option<&'g Atomic<Link>> {
        let (c, offset) = locate(index);
        // Acquire pairs with the AcqRel install below: the slots' initialisation is visible.
        let mut chunk = self.dir[c].load(Ordering::Acquire, guard);
        if chunk.is_null() {
            if !create {
                return None;
            }
            let mut fresh = Owned::<Chunk>::init(chunk_len(c));
            for slot in fresh.iter_mut() {
                slot.write(Atomic::null());
            }
            chunk = match self.dir[c].compare_exchange(
                Shared::null(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            ) {
                Ok(installed) => installed,
                // The loser's spare is dropped here (slots need no drop).
                Err(race) => race.current,
            };
        }
        // SAFETY: `chunk` is non-null and protected by `guard` (chunks are freed only through
        // `defer_destroy` after being unpublished); every slot was initialised before the
        // chunk was published by the CAS above.
        let slots = unsafe { chunk.deref() };
        // SAFETY: as above, all slots of a published chunk are initialised.
        Some(unsafe { slots[offset].assume_init_ref() })
    }

    /// Unpublishes chunk `c` (buckets `2^(c-1)..2^c`) and returns it, for the caller to free
    /// an epoch later. Called only by the shrinking maintenance-lock holder, once the size
    /// is below the chunk.
    pub(crate) fn unpublish_chunk<'g>(
        &self,
        c: usize,
        guard: &'g Guard,
    ) -> Option<Shared<'g, Chunk>> {
        debug_assert!(c > 0);
        let old = self.dir[c].swap(Shared::null(), Ordering::AcqRel, guard);
        (!old.is_null()).then_some(old)
    }

    /// Frees every chunk. Links are not freed here: they are owned by the list.
    pub(crate) fn free_all(&mut self) {
        for chunk in &self.dir {
            // SAFETY: `&mut self` proves no other thread can reach the directory.
            let guard = unsafe { crossbeam_epoch::unprotected() };
            let c = chunk.swap(Shared::null(), Ordering::Relaxed, guard);
            if !c.is_null() {
                // SAFETY: exclusive access (above); the chunk was allocated by `Owned::init`.
                drop(unsafe { c.into_owned() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_bucket_once() {
        let mut seen = vec![false; 1 << 10];
        for (i, s) in seen.iter_mut().enumerate() {
            let (c, off) = locate(i);
            assert!(off < chunk_len(c));
            assert_eq!(if c == 0 { 0 } else { (1 << (c - 1)) + off }, i);
            *s = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(parent(1), 0);
        assert_eq!(parent(6), 2);
        assert_eq!(parent(4), 0);
    }
}
