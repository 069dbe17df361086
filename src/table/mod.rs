//! One segment's hash table: a lock-free split-ordered list.
//!
//! ## Algorithm
//! Shalev & Shavit, "Split-Ordered Lists: Lock-Free Extensible Hash Tables" (JACM 2006):
//! all entries of the segment sit in **one** sorted lock-free linked list (Harris, "A
//! pragmatic implementation of non-blocking linked-lists", DISC 2001, with Michael's
//! memory-safe search, "High performance dynamic lock-free hash tables and list-based
//! sets", SPAA 2002). The sort key is the entry's hash with its bits reversed
//! (`so_key`), so the entries of bucket `h mod 2^k` form one contiguous run, and the run
//! of bucket `b` splits into the runs of `b` and `b + 2^k` when the table doubles. Each
//! bucket points at a *sentinel* link placed at the start of its run. Growing the table is
//! therefore one CAS on the size; no entry ever moves, nobody waits for a copy, and the
//! stored `so_key` means no key is ever re-hashed. New buckets get their sentinel lazily,
//! inserted after their parent's (the bucket they split from).
//!
//! **Shrinking** (our addition; the paper only grows): the maintenance-lock holder CASes
//! the size down, waits one epoch grace period (so every operation that read the old size
//! has finished), then clears the top chunk's bucket slots, deletes their sentinels like
//! ordinary nodes and frees the chunk through the epoch — a bounded number of buckets per
//! call. An operation that meets a deleted sentinel restarts from its bucket at the
//! current size. Grows are blocked while a shrink is under way (the size word carries a
//! `SHRINKING` flag that makes `try_grow`'s CAS fail until the shrink ends), so no bucket
//! above the shrunk size is re-created while its sentinel is being deleted; a table that
//! fills up meanwhile runs longer than `max_load` for the few steps the shrink has left.
//!
//! ## Invariants
//! 1. The list is sorted by `so_key`; entries with equal `so_key` (hash collisions) are
//!    adjacent in any order, and at most one *unmarked* entry per key exists.
//! 2. A link whose `next` carries tag 1 is logically deleted; its `next` never changes
//!    again. Only the CAS that sets that tag removes an entry, so each entry has exactly
//!    one remover.
//! 3. A link is physically unlinked exactly once (Michael's CAS of its predecessor). For an
//!    entry, that thread then sets its `UNLINKED` hold (`node.rs`). Sentinels are deleted only by a shrink, and the shrinking thread
//!    retires them itself (after its own walk has made sure they are unlinked), in one
//!    batch per step.
//! 4. Replacement is one CAS: `old.next` goes from `succ` to `new | MARK` with
//!    `new.next == succ`, so the key is never absent in between, and a reader that skips
//!    the marked `old` lands on `new`.
//! 5. Readers never write: they start at the nearest initialised, unmarked sentinel (their
//!    bucket's or an ancestor's) and skip marked links.

pub(crate) mod buckets;
pub(crate) mod node;
mod ops;
mod resize;
mod search;

pub(crate) use ops::Insert;
pub(crate) use resize::Shrink;

use crate::reclaim::Reclaim;
use crate::sync::{AtomicIsize, AtomicUsize, Ordering};
use buckets::{Buckets, MAX_SIZE_LOG, MIN_SIZE_LOG};
use crossbeam_epoch::{Owned, Shared};
use crossbeam_utils::CachePadded;
use node::{Link, Node, NodePtr, HOLDS, UNLINKED};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Sizing rules of a table; [`Tuning::DEFAULT`] except in model checks, which force tiny
/// tables so that two or three operations cross a grow or a shrink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tuning {
    /// The table never shrinks below `2^min_size_log` buckets.
    pub(crate) min_size_log: usize,
    /// Grow when the average run is longer than this (entries per bucket).
    pub(crate) max_load: usize,
}

impl Tuning {
    pub(crate) const DEFAULT: Self = Self {
        min_size_log: MIN_SIZE_LOG,
        max_load: 4,
    };
    /// One bucket to start, doubling past one entry per bucket.
    #[cfg(feature = "internal-tiny-tables")]
    pub(crate) const TINY: Self = Self {
        min_size_log: 0,
        max_load: 1,
    };
}

/// One segment's lock-free table.
#[derive(Debug)]
pub(crate) struct Table<K, V> {
    buckets: Buckets,
    /// Linked, unremoved entries. Removals may be counted before the matching insert, so it
    /// can dip below zero for a moment; readers clamp.
    count: CachePadded<AtomicIsize>,
    /// Retired entries on their way to being freed.
    pub(crate) reclaim: Reclaim<K, V>,
    /// Deferred frees of a shrink's sentinels and bucket chunks that have not run yet
    /// (shared with the closures, which may run after the table is gone).
    shrink_garbage: Arc<AtomicUsize>,
    tuning: Tuning,
}

impl<K, V> Table<K, V> {
    /// A table sized for about `capacity` entries.
    pub(crate) fn new(capacity: usize, tuning: Tuning) -> Self {
        let wanted = capacity.div_ceil(tuning.max_load.div_ceil(2)).max(1);
        let size_log = (usize::BITS - (wanted - 1).leading_zeros()) as usize;
        let table = Self {
            buckets: Buckets::new(size_log.clamp(tuning.min_size_log, MAX_SIZE_LOG)),
            count: CachePadded::new(AtomicIsize::new(0)),
            reclaim: Reclaim::new(),
            shrink_garbage: Arc::new(AtomicUsize::new(0)),
            tuning,
        };
        // SAFETY: the table is not shared yet.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        let slot = table.buckets.slot(0, true, guard);
        let head = Owned::new(Link::sentinel(0));
        slot.expect("chunk 0 is created on demand")
            .store(head, Ordering::Release);
        table
    }

    /// Entries in the table, expired ones included until they are removed.
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.count.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Lets go of one or more of a node's holds (`UNLINKED`, `DETACHED`, `RELEASED`, possibly
    /// with other flags); the call that sets the last of the three retires the node.
    pub(crate) fn settle(&self, node: NodePtr<'_, K, V>, flags: u64) {
        // AcqRel: Release publishes everything this holder did with the node; Acquire makes
        // the other holders' accesses happen-before the free when this call is the last.
        let old = node.meta.fetch_or(flags, Ordering::AcqRel);
        debug_assert_eq!(old & flags & HOLDS, 0, "a hold released twice");
        if old & HOLDS != HOLDS && (old | flags) & HOLDS == HOLDS {
            // SAFETY: 1. every node comes from `Box::into_raw`; 2. all three holders are done
            // with it: it is off the list (UNLINKED), the wheel and hand-off (DETACHED), and
            // its remover's hands (RELEASED), so only threads pinned since before it left
            // can reach it; 3. the fetch_or lets exactly one call see the last hold go.
            unsafe { self.reclaim.retire(node.as_ptr()) };
        }
    }

    /// Whether deferred frees from a shrink are still waiting for their grace period.
    pub(crate) fn shrink_garbage_pending(&self) -> bool {
        // Acquire pairs with the Release decrements in the closures: the frees are done.
        self.shrink_garbage.load(Ordering::Acquire) != 0
    }

    /// Bookkeeping for a link this thread just unlinked physically.
    fn unlinked(&self, link: Shared<'_, Link>) {
        // SAFETY: `link` was reachable an instant ago under the guard its lifetime stands for.
        if unsafe { link.deref() }.is_entry() {
            // SAFETY: an entry link of this table, protected by the same guard.
            let node = unsafe { NodePtr::<K, V>::from_shared(link) };
            self.settle(node, UNLINKED);
        }
        // A sentinel: the shrink that deleted it retires it (invariant 3).
    }
}

impl<K, V> Drop for Table<K, V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach the list.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        let head = self
            .buckets
            .slot(0, false, guard)
            .map(|s| s.load(Ordering::Relaxed, guard));
        let mut curr = head.unwrap_or_else(Shared::null);
        while !curr.is_null() {
            // SAFETY: exclusive access; every link on the list is alive until freed here.
            let link = unsafe { curr.deref() };
            let next = link.next.load(Ordering::Relaxed, guard).with_tag(0);
            if link.is_entry() {
                // SAFETY: a linked entry is owned by the list (it is retired only after it
                // is unlinked), allocated by `Box::new`, and freed once here, through the
                // pointer the list holds (the allocation's provenance).
                let boxed = unsafe { Box::from_raw(curr.as_raw().cast::<Node<K, V>>().cast_mut()) };
                let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
            } else {
                // SAFETY: as above, for a sentinel allocated by `Owned::new`.
                drop(unsafe { curr.into_owned() });
            }
            curr = next;
        }
        self.buckets.free_all();
    }
}

#[cfg(test)]
mod tests {
    use super::node::{regular_key, Node};
    use super::*;

    /// Walks the whole list: (entries, sentinels, longest run of entries between sentinels).
    fn shape<K, V>(table: &Table<K, V>) -> (usize, usize, usize) {
        let guard = crossbeam_epoch::pin();
        let mut curr = table
            .sentinel(0, &guard)
            .next
            .load(Ordering::Acquire, &guard);
        let (mut entries, mut sentinels, mut run, mut longest) = (0, 1, 0, 0);
        // SAFETY: test-only walk under a guard.
        while let Some(link) = unsafe { curr.with_tag(0).as_ref() } {
            if link.is_entry() {
                entries += 1;
                run += 1;
                longest = longest.max(run);
            } else {
                sentinels += 1;
                run = 0;
            }
            curr = link.next.load(Ordering::Acquire, &guard);
        }
        (entries, sentinels, longest)
    }

    #[test]
    fn grows_and_shrinks_keeping_runs_short() {
        let table: Table<u64, u64> = Table::new(0, Tuning::DEFAULT);
        let guard = crossbeam_epoch::pin();
        let hash = |k: u64| k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let n: u64 = if cfg!(miri) { 300 } else { 100_000 };
        for k in 0..n {
            let node = Box::new(Node::new(hash(k), k, k, crate::clock::NEVER));
            assert!(matches!(
                table.insert(node, |a, b| a == b, |_| false, &guard),
                Insert::New(_)
            ));
            table.maybe_grow();
        }
        let size_log = table.buckets.size_log();
        let (entries, sentinels, longest) = shape(&table);
        assert_eq!(entries as u64, n);
        let wanted = (64 - (n / 4).leading_zeros()) as usize - 1;
        assert!(size_log >= wanted, "size_log {size_log}");
        assert!(
            longest < 40,
            "longest run {longest}, sentinels {sentinels}, size_log {size_log}"
        );
        for k in 0..n {
            let removed = table.remove(regular_key(hash(k)), |n| n.key == k, &guard);
            assert!(removed.is_some(), "key {k}");
        }
        drop(guard);
        let mut shrink = Shrink::Idle;
        for _ in 0..1000 {
            let guard = crossbeam_epoch::pin();
            let busy = table.shrink_step(&mut shrink, usize::MAX, &guard);
            drop(guard);
            crossbeam_epoch::pin().flush();
            if !busy && table.buckets.size_log() == buckets::MIN_SIZE_LOG {
                break;
            }
        }
        assert_eq!(table.buckets.size_log(), buckets::MIN_SIZE_LOG);
        let (entries, sentinels, _) = shape(&table);
        assert_eq!(
            (entries, sentinels),
            (0, sentinels.min(1 << buckets::MIN_SIZE_LOG))
        );
    }
}
