//! Growing (lock-free, by any inserter) and shrinking (bounded steps by the maintenance-lock
//! holder) of one table. See the module essay in `table` for the protocol.

use super::buckets::Chunk;
use super::node::Link;
use super::Table;
use crate::sync::{AtomicUsize, Ordering};
use crossbeam_epoch::{Guard, Owned, Pointer, Shared};
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
                // the old size) has unpinned. Release pairs with the Acquire load below. No
                // flush here: the maintainer flushes after unlocking (a flush runs other
                // deferred closures, which must not run under our lock).
                guard.defer(move || flag.store(1, Ordering::Release));
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
                if !deleted.is_empty() {
                    let links = Links(deleted);
                    // SAFETY: 1. each link was unpublished from its slot and unlinked from the
                    // list by `delete_sentinel`, so only threads pinned now can reach it;
                    // 2. only this shrink retires sentinels, once each; 3. sentinels hold no
                    // user data, so freeing them anywhere, after the cache, is fine.
                    unsafe { self.defer_garbage(guard, move || links.free()) };
                }
                *left = stop;
                if stop == floor {
                    for chunk in (*to + 1)..=*from {
                        if let Some(old) = self.buckets.unpublish_chunk(chunk, guard) {
                            let old = ChunkPtr(old.into_usize());
                            // SAFETY: 1. just unpublished, so only threads pinned now can
                            // reach it; 2. unpublished once, by this shrink; 3. a chunk of
                            // bucket slots holds no user data.
                            unsafe { self.defer_garbage(guard, move || old.free()) };
                        }
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
        // Acquire: we read the sentinel's fields next. Nothing needs Release: clearing the
        // slot publishes no data (a reader that loads null starts from an ancestor), and the
        // marking CAS below has its own ordering.
        let sentinel = slot.swap(Shared::null(), Ordering::Acquire, guard);
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

impl<K, V> Table<K, V> {
    /// Defers `free` (a shrink's garbage) past the epoch, counted in `shrink_garbage` until it
    /// has run. No flush: the maintainer flushes once it has released the lock.
    ///
    /// # Safety
    /// `free` touches only memory that threads pinning from now on cannot reach, and no user
    /// data; it may run on any thread, after the cache is gone.
    unsafe fn defer_garbage(&self, guard: &Guard, free: impl FnOnce() + Send + 'static) {
        let count = Arc::clone(&self.shrink_garbage);
        // Relaxed: the Release decrement after the free orders it; the increment only has to
        // be visible before the closure can run, which the defer itself ensures.
        count.fetch_add(1, Ordering::Relaxed);
        // SAFETY: our contract; crossbeam runs the closure once every thread pinned now has
        // unpinned.
        unsafe {
            guard.defer_unchecked(move || {
                free();
                // Release pairs with the Acquire load in `shrink_garbage_pending`.
                count.fetch_sub(1, Ordering::Release);
            })
        };
    }
}

/// Sentinels deleted by one shrink step, owned until freed.
struct Links(Vec<*mut Link>);

// SAFETY: the links are unreachable (see `defer_garbage`'s callers) and hold no user data.
unsafe impl Send for Links {}

impl Links {
    fn free(self) {
        for link in self.0 {
            // SAFETY: each came from `Owned::new` and is freed once, here.
            drop(unsafe { Owned::from_raw(link) });
        }
    }
}

/// A bucket chunk unpublished by a shrink, owned until freed (as crossbeam's tagged
/// pointer word, which carries the slice length).
struct ChunkPtr(usize);

impl ChunkPtr {
    fn free(self) {
        // SAFETY: the word came from `Shared::into_usize` of a chunk allocated by
        // `Owned::init` (see `Buckets::slot`), unpublished once, and is freed once, here.
        drop(unsafe { <Owned<Chunk> as Pointer<Chunk>>::from_usize(self.0) });
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
