//! Finding a position in the list: the writers' helping search and the readers' pure walk.

use super::buckets::parent;
use super::node::{sentinel_key, Link, Node};
use super::Table;
use crate::sync::Ordering;
use crossbeam_epoch::{Guard, Shared};

/// Where a search stopped: `pred.next` was `curr` (both unmarked) when last read.
pub(crate) struct Position<'g> {
    pub(crate) pred: &'g Link,
    pub(crate) curr: Shared<'g, Link>,
    /// `curr` is the link the matcher accepted; otherwise `curr` is the first link past
    /// the key (or null) and a new link goes between `pred` and `curr`.
    pub(crate) found: bool,
}

/// The bucket of `so_key` in a table of `2^size_log` buckets.
#[inline]
pub(crate) fn bucket_of(so_key: u64, size_log: usize) -> usize {
    // Reversing back gives the hash (top bit forced); its low bits pick the bucket.
    (so_key.reverse_bits() & ((1u64 << size_log) - 1)) as usize
}

impl<K, V> Table<K, V> {
    /// Where a writer starts for `so_key`: the deepest sentinel still standing between its
    /// bucket at the search size and its bucket at the logical size, which is created if
    /// missing. (The two differ only during a shrink.)
    pub(crate) fn writer_start<'g>(&self, so_key: u64, guard: &'g Guard) -> &'g Link {
        let floor = bucket_of(so_key, self.buckets.size_log());
        let mut index = bucket_of(so_key, self.buckets.search_size_log());
        while index > floor {
            if let Some(link) = self.standing(index, guard) {
                return link;
            }
            index = parent(index);
        }
        self.sentinel(floor, guard)
    }

    /// Bucket `index`'s sentinel if its slot holds one; never creates anything.
    pub(crate) fn standing<'g>(&self, index: usize, guard: &'g Guard) -> Option<&'g Link> {
        let slot = self.buckets.slot(index, false, guard)?;
        // Acquire pairs with the AcqRel install in `sentinel`.
        let s = slot.load(Ordering::Acquire, guard);
        // SAFETY: sentinels are freed only via `defer_destroy` after their slot is cleared
        // and they are unlinked; `guard` was taken before we loaded the slot.
        unsafe { s.as_ref() }
    }

    /// Bucket `index`'s sentinel, inserting it (after its parent's) if missing.
    pub(crate) fn sentinel<'g>(&self, index: usize, guard: &'g Guard) -> &'g Link {
        let slot = self
            .buckets
            .slot(index, true, guard)
            .expect("slots are created on demand");
        // Acquire pairs with the AcqRel install below (and in racing initialisers).
        let current = slot.load(Ordering::Acquire, guard);
        // SAFETY: sentinels are freed only via `defer_destroy` after their slot is cleared.
        if let Some(link) = unsafe { current.as_ref() } {
            return link;
        }
        // Bucket 0 is installed at construction and never cleared, so `index > 0`.
        let key = sentinel_key(index);
        let up = parent(index);
        let pos = self.search(key, || self.sentinel(up, guard), |l| l.so_key == key, guard);
        let link = if pos.found {
            pos.curr
        } else {
            let mut fresh = crossbeam_epoch::Owned::new(Link::sentinel(index));
            let mut pos = pos;
            loop {
                fresh.next.store(pos.curr, Ordering::Relaxed);
                // AcqRel: Release publishes the sentinel's fields; Acquire (on failure too)
                // reads the newer successor we retry with.
                match pos.pred.next.compare_exchange(
                    pos.curr,
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                    guard,
                ) {
                    Ok(inserted) => break inserted,
                    Err(race) => {
                        fresh = race.new;
                        pos = self.search(
                            key,
                            || self.sentinel(up, guard),
                            |l| l.so_key == key,
                            guard,
                        );
                        if pos.found {
                            break pos.curr; // someone else inserted it; drop ours
                        }
                    }
                }
            }
        };
        match slot.compare_exchange(
            Shared::null(),
            link,
            Ordering::AcqRel,
            Ordering::Acquire,
            guard,
        ) {
            // SAFETY: just linked (or found) under `guard`.
            Ok(_) => unsafe { link.deref() },
            // SAFETY: another initialiser published this sentinel under our guard.
            Err(race) => unsafe { race.current.deref() },
        }
    }

    /// Michael's search: walks from `start()` to the first link past `so_key` or the first
    /// unmarked link the matcher accepts, unlinking every marked link on the way. Restarts
    /// from a fresh `start()` whenever a CAS fails or the start is itself deleted.
    pub(crate) fn search<'g>(
        &self,
        so_key: u64,
        start: impl Fn() -> &'g Link,
        mut matches: impl FnMut(&'g Link) -> bool,
        guard: &'g Guard,
    ) -> Position<'g> {
        'restart: loop {
            let mut pred = start();
            // Acquire pairs with the Release half of every CAS that links a node: its
            // fields are visible before we read them.
            let mut curr = pred.next.load(Ordering::Acquire, guard);
            if curr.tag() == 1 {
                // Our start sentinel was deleted by a shrink; the size has changed.
                crate::sync::yield_now();
                continue 'restart;
            }
            loop {
                // SAFETY: links are freed only an epoch after being unlinked; we reached this
                // one from a link that was in the list, under `guard`.
                let Some(c) = (unsafe { curr.as_ref() }) else {
                    return Position {
                        pred,
                        curr,
                        found: false,
                    };
                };
                let next = c.next.load(Ordering::Acquire, guard);
                if next.tag() == 1 {
                    // `c` is deleted: help unlink it. AcqRel: Release keeps our earlier reads
                    // of `c` before the unlink that lets it be retired; Acquire on failure
                    // reads the newer state we restart from.
                    match pred.next.compare_exchange(
                        curr,
                        next.with_tag(0),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        guard,
                    ) {
                        Ok(_) => {
                            self.unlinked(curr);
                            curr = next.with_tag(0);
                            continue;
                        }
                        Err(_) => continue 'restart,
                    }
                }
                if c.so_key > so_key {
                    return Position {
                        pred,
                        curr,
                        found: false,
                    };
                }
                if c.so_key == so_key && matches(c) {
                    return Position {
                        pred,
                        curr,
                        found: true,
                    };
                }
                pred = c;
                curr = next;
            }
        }
    }

    /// The readers' walk: no helping, no writes. Returns the first unmarked entry with
    /// `so_key` that `matches` accepts.
    pub(crate) fn lookup<'g>(
        &self,
        so_key: u64,
        mut matches: impl FnMut(&Node<K, V>) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g Node<K, V>> {
        'restart: loop {
            let start = self.reader_start(so_key, guard);
            // Acquire: see `search`.
            let mut curr = start.next.load(Ordering::Acquire, guard);
            if curr.tag() == 1 {
                crate::sync::yield_now();
                continue 'restart;
            }
            loop {
                // SAFETY: as in `search`: reached from the list under `guard`.
                let c = unsafe { curr.as_ref() }?;
                if c.so_key > so_key {
                    return None;
                }
                let next = c.next.load(Ordering::Acquire, guard);
                if c.so_key == so_key && next.tag() == 0 {
                    // SAFETY: `so_key` is odd (an entry key), so `c` is an entry.
                    let node = unsafe { Node::<K, V>::from_link(c) };
                    if matches(node) {
                        return Some(node);
                    }
                }
                curr = next.with_tag(0);
            }
        }
    }

    /// The nearest initialised sentinel at or above `so_key`'s bucket, without creating any.
    fn reader_start<'g>(&self, so_key: u64, guard: &'g Guard) -> &'g Link {
        let mut index = bucket_of(so_key, self.buckets.search_size_log());
        loop {
            if let Some(link) = self.standing(index, guard) {
                return link;
            }
            assert!(index != 0, "bucket 0's sentinel is never removed");
            index = parent(index);
        }
    }
}
