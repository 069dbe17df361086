//! Growing (lock-free, by any inserter) and shrinking (bounded steps by the maintenance-lock
//! holder) of one table. See the module essay in `table` for the protocol.

use super::node::Link;
use super::Table;
use crate::sync::{AtomicUsize, Ordering};
use crossbeam_epoch::{Guard, Shared};
use std::sync::Arc;

/// Progress of a shrink; lives in the segment's maintenance state.
#[derive(Debug, Default)]
pub(crate) enum Shrink {
    /// No shrink under way.
    #[default]
    Idle,
    /// The size is down to `2^to` (grows blocked); waiting for every operation that read
    /// the old size `2^from` to finish (`grace` turns non-zero an epoch later).
    Waiting {
        from: usize,
        to: usize,
        grace: Arc<AtomicUsize>,
    },
    /// Deleting the sentinels of buckets `2^to .. left`, highest first: a bucket's parent
    /// is always lower, so it still stands and each deletion's walk starts right before
    /// the sentinel it deletes.
    Clearing { from: usize, to: usize, left: usize },
}

impl<K, V> Table<K, V> {
    /// Called after an insert linked a new entry: doubles the table when the average run
    /// passed `max_load`. One CAS; a lost race or a shrink in progress just skips.
    pub(crate) fn maybe_grow(&self) {
        let size_log = self.buckets.size_log();
        if self.len() > self.tuning.max_load << size_log {
            let _ = self.buckets.try_grow(size_log);
        }
    }

    /// One bounded step of shrinking; returns true while a shrink is still under way.
    /// Maintenance-lock holder only (`state` lives under that lock).
    pub(crate) fn shrink_step(&self, state: &mut Shrink, budget: usize, guard: &Guard) -> bool {
        match state {
            Shrink::Idle => {
                let from = self.buckets.size_log();
                let len = self.len();
                let min = self.tuning.min_size_log;
                if from <= min || len >= 1 << from {
                    return false;
                }
                // Aim for about two entries per bucket.
                let wanted = (len / 2).max(1);
                let to =
                    ((usize::BITS - (wanted - 1).leading_zeros()) as usize).clamp(min, from - 1);
                if !self.buckets.begin_shrink(from, to) {
                    return false;
                }
                let grace = Arc::new(AtomicUsize::new(0));
                let flag = Arc::clone(&grace);
                // Runs once every thread pinned now (so every operation that may have read
                // the old size) has unpinned. Release pairs with the Acquire load below.
                guard.defer(move || flag.store(1, Ordering::Release));
                guard.flush();
                *state = Shrink::Waiting { from, to, grace };
                true
            }
            Shrink::Waiting { from, to, grace } => {
                if grace.load(Ordering::Acquire) == 1 {
                    *state = Shrink::Clearing {
                        from: *from,
                        to: *to,
                        left: 1 << *from,
                    };
                } else {
                    guard.flush();
                }
                true
            }
            Shrink::Clearing { from, to, left } => {
                let floor = 1usize << *to;
                let stop = left.saturating_sub(budget).max(floor);
                let mut deleted = Vec::new();
                for index in (stop..*left).rev() {
                    deleted.extend(self.delete_sentinel(index, guard));
                }
                // SAFETY: each was unpublished from its slot and unlinked from the list by
                // `delete_sentinel`, and only this shrink retires sentinels.
                unsafe { self.limbo.retire_links(deleted, guard) };
                *left = stop;
                if stop == floor {
                    for chunk in (*to + 1)..=*from {
                        self.buckets.retire_chunk(chunk, guard);
                    }
                    self.buckets.end_shrink(*to);
                    *state = Shrink::Idle;
                }
                true
            }
        }
    }

    /// Clears bucket `index`'s slot and deletes its sentinel from the list, returning it
    /// for the caller to retire. Only during a shrink, for a bucket above the new size: no
    /// other thread can re-create it meanwhile.
    fn delete_sentinel(&self, index: usize, guard: &Guard) -> Option<*mut Link> {
        let slot = self.buckets.slot(index, false, guard)?;
        // AcqRel: Acquire reads the sentinel's contents; Release orders the clear before
        // the marking below.
        let sentinel = slot.swap(Shared::null(), Ordering::AcqRel, guard);
        // SAFETY: the sentinel is freed only after it is unlinked, which happens below or
        // later, under guards.
        let link = unsafe { sentinel.as_ref() }?;
        let marked = mark_link(link, guard);
        debug_assert!(marked, "only the shrink deletes sentinels");
        // Walk from the nearest standing ancestor (the parent, unless it never had a
        // sentinel): a short walk, since higher buckets are already gone. When it returns,
        // the marked sentinel is unlinked (by us or a helper).
        let so_key = link.so_key;
        let _ = self.search(
            so_key,
            || self.writer_start(so_key, guard),
            |_| false,
            guard,
        );
        Some(sentinel.as_raw().cast_mut())
    }
}

/// Sets the deletion tag on a sentinel's `next`; false if it was already set.
fn mark_link(link: &Link, guard: &Guard) -> bool {
    let mut succ = link.next.load(Ordering::Acquire, guard);
    loop {
        if succ.tag() == 1 {
            return false;
        }
        // AcqRel: as for entries in `Table::mark`.
        match link.next.compare_exchange(
            succ,
            succ.with_tag(1),
            Ordering::AcqRel,
            Ordering::Acquire,
            guard,
        ) {
            Ok(_) => return true,
            Err(race) => succ = race.current,
        }
    }
}
