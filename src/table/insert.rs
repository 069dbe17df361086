//! Inserting: a new key, or replacing a key's node, claimed and committed on its home
//! group. The protocol is explained in the `table` module's essay.

use super::lookup::{At, Scan};
use super::raw::{add_overflow, clear_named, sub_overflow};
use super::raw::{step, Raw, GROUP, MAX_PROBE};
use super::word::{tag_of, Ctrl, Word};
use super::Table;
use crate::entry::layout::NodeBox;
use crate::entry::node::{Node, NodePtr};
use crate::sync::Ordering;
use crossbeam_epoch::Guard;

/// What [`Table::insert`] did.
pub(crate) enum Insert<'g, K, V> {
    /// Published under a key that had no entry.
    New(NodePtr<'g, K, V>),
    /// Took the place of `old`; the caller is now `old`'s remover.
    Replaced {
        old: NodePtr<'g, K, V>,
        new: NodePtr<'g, K, V>,
    },
    /// `keep` chose the existing entry; the unused node is handed back.
    Kept {
        existing: NodePtr<'g, K, V>,
        unused: NodeBox<K, V>,
    },
    /// No entry had the key and the caller asked for a replacement only
    /// ([`Table::insert_when`] with `vacant` false); the unused node is handed back.
    Vacant { unused: NodeBox<K, V> },
    /// No slot within reach of the key's home, and a bigger table would not help: more
    /// keys share the hash's home bits than an insert can probe past (a degenerate
    /// hasher, see [`Table::growth_helps`]). The unused node is handed back.
    Full { unused: NodeBox<K, V> },
}

/// Owns a not-yet-published node through its raw pointer, freeing it if dropped (when a
/// user `Eq` panics mid-probe) unless [`publish`](Self::publish)ed or taken back. It is
/// never in a slot while user code runs: claims are made and undone with no user code
/// between them.
struct Unpublished<K, V>(*mut Node<K, V>);

impl<K, V> Unpublished<K, V> {
    fn node(&self) -> &Node<K, V> {
        // SAFETY: we own the allocation until it is published or taken back.
        unsafe { &*self.0 }
    }

    /// The node is in the table now; the table owns it.
    fn publish<'g>(self) -> NodePtr<'g, K, V> {
        let raw = self.0;
        std::mem::forget(self);
        // SAFETY: `NodePtr::from_raw`'s 1: from `NodeBox::into_raw`, not null, alive; its
        // 2: just published, so it is retired only once out of the table, and freed only
        // after the caller's pin (`'g`) ends; its 3: the `into_raw` pointer itself.
        unsafe { NodePtr::from_raw(raw) }
    }

    fn take_back(self) -> NodeBox<K, V> {
        let raw = self.0;
        std::mem::forget(self);
        // SAFETY: `NodeBox::from_raw`'s 1: from `NodeBox::into_raw`; its 2: never published
        // (no slot holds it), so nobody else reaches it, and `self` is consumed.
        unsafe { NodeBox::from_raw(raw) }
    }
}

impl<K, V> Drop for Unpublished<K, V> {
    fn drop(&mut self) {
        // SAFETY: `NodeBox::from_raw`'s 1: from `NodeBox::into_raw`; its 2: never published
        // (no slot holds it), and `publish`/`take_back` forget `self`, so this drop is the
        // only owner, once.
        drop(unsafe { NodeBox::from_raw(self.0) });
    }
}

impl<K, V> Table<K, V> {
    /// Publishes `node`, replacing an existing entry with an equal key unless `keep`
    /// accepts it. `eq` compares a stored key with `node.key` (user code: may panic, in
    /// which case nothing was changed and `node` is dropped by the unwinding).
    pub(crate) fn insert<'g>(
        &self,
        node: NodeBox<K, V>,
        eq: impl FnMut(&K, &K) -> bool,
        keep: impl FnMut(NodePtr<'g, K, V>) -> bool,
        guard: &'g Guard,
    ) -> Insert<'g, K, V> {
        self.insert_when(node, eq, keep, true, guard)
    }

    /// [`insert`](Self::insert), which publishes under a key with no entry only if
    /// `vacant` (else it hands the node back as [`Insert::Vacant`]): a compare-and-swap of
    /// a whole entry, with `keep` refusing every entry but the expected one.
    pub(crate) fn insert_when<'g>(
        &self,
        node: NodeBox<K, V>,
        mut eq: impl FnMut(&K, &K) -> bool,
        mut keep: impl FnMut(NodePtr<'g, K, V>) -> bool,
        vacant: bool,
        guard: &'g Guard,
    ) -> Insert<'g, K, V> {
        let hash = node.hash();
        // The raw pointer from `NodeBox::into_raw` is the one published, so whoever frees
        // the node frees it through a pointer with the allocation's provenance.
        let node = Unpublished(node.into_raw());
        let word = Word::published(node.0, tag_of(hash));
        loop {
            let raw = self.writable(hash, guard);
            let home = raw.home(hash);
            let c0 = raw.groups[home].ctrl();
            if c0.is_frozen() {
                continue;
            }
            if let Some(offset) = c0.named() {
                self.help_publish(raw, home, c0, offset);
                continue;
            }
            let scan = self.scan(raw, hash, |n| eq(&n.key, &node.node().key));
            let free = match scan {
                Scan::Migrating => continue,
                Scan::Found(at, old_word) => {
                    match Self::replace(raw, at, old_word, word, &mut keep) {
                        Some(Ok(old)) => {
                            return Insert::Replaced {
                                old,
                                new: node.publish(),
                            }
                        }
                        Some(Err(existing)) => {
                            return Insert::Kept {
                                existing,
                                unused: node.take_back(),
                            }
                        }
                        None => continue,
                    }
                }
                Scan::Absent(_) if !vacant => {
                    return Insert::Vacant {
                        unused: node.take_back(),
                    }
                }
                Scan::Absent(free) => free,
            };
            let (at, target) = match self.place(raw, free, guard) {
                Place::At { at, target } => (at, target),
                Place::Retry => continue,
                Place::Full => {
                    return Insert::Full {
                        unused: node.take_back(),
                    }
                }
            };
            let Some(version) = self.claim_and_commit(raw, home, c0, at, word) else {
                if target {
                    raw.room.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            };
            if !self.publish(raw, home, at, word, version) {
                // A migration froze our committed claim before anyone published it: it was
                // never visible, and the copy skipped it. Insert again, into the next table.
                continue;
            }
            // Relaxed: a count, read as a hint and by `len`.
            self.count.fetch_add(1, Ordering::Relaxed);
            let published = node.publish();
            self.maybe_grow(raw, guard);
            return Insert::New(published);
        }
    }
}

/// Where a new key goes (see [`Table::place`]).
enum Place {
    /// Into `at`; `target`: of a migration in progress, with one of its set-aside slots
    /// taken for it (given back if the claim fails).
    At { at: At, target: bool },
    /// The table changed under the insert (it grew, or a migration must finish): start
    /// again.
    Retry,
    /// No room for the key's hash, and growing cannot help.
    Full,
}

impl<K, V> Table<K, V> {
    /// The key's node `old_word` was found at `at`: unless `keep` keeps it (`Err(old)`),
    /// one CAS takes it out and puts `word` in (`Ok(old)`), so the key is never absent in
    /// between and the winner of the CAS is `old`'s remover. `None` if the slot changed.
    fn replace<'g>(
        raw: &Raw<K, V>,
        at: At,
        old_word: Word<K, V>,
        word: Word<K, V>,
        keep: &mut impl FnMut(NodePtr<'g, K, V>) -> bool,
    ) -> Option<Result<NodePtr<'g, K, V>, NodePtr<'g, K, V>>> {
        // SAFETY: `NodePtr::from_raw`'s 1: a published slot word names a live node; its 2:
        // the caller's scan read it under its guard (`'g`), and a node is retired only
        // once out of every slot, so freed only after that pin; its 3: slot words carry
        // the `into_raw` pointer (`Word::published`).
        let old = unsafe { NodePtr::from_raw(old_word.node().expect("found")) };
        if keep(old) {
            return Some(Err(old));
        }
        // Release publishes the new node's fields to readers' Acquire loads.
        let slot = &raw.groups[at.group].slots[at.slot];
        slot.compare_exchange(old_word.0, word.0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
            .then_some(Ok(old))
    }

    /// Where a new key goes in `raw`, the table its scan found `free` in (the first free
    /// slot within `Tuning::reach`, if any).
    fn place(&self, raw: &Raw<K, V>, free: Option<At>, guard: &Guard) -> Place {
        let current = std::ptr::eq(raw, self.current(guard));
        // No free slot near home: grow if that can help (`growth_helps`: at the maximum
        // load when there is room further out, from the target load when there is none
        // within reach), or if the table is full: a table no larger than the reach was
        // scanned whole, so no free slot means none anywhere (`count` misses claims not
        // yet published, so it can understate the load). Otherwise the insert goes
        // further out (within `named`'s reach). A target of a migration in progress with
        // no room in reach finishes the migration first.
        let near = free.filter(|at| at.steps < MAX_PROBE);
        let full = free.is_none() && raw.capacity() <= self.tuning.reach + 1;
        if near.is_none() && current && (full || self.growth_helps(raw, free.is_some())) {
            self.start_migration(raw, true, guard);
            return Place::Retry;
        }
        let Some(at) = free else {
            if !current {
                self.finish_migration(guard);
                return Place::Retry;
            }
            // Nothing in reach of a table larger than the reach, below the target load, so
            // growth cannot help: the keys around this home share their hash's home bits
            // (a hasher that ignores the key). Refused, not a hang.
            return Place::Full;
        };
        // In a migration's target, a new key takes one of the slots set aside for them;
        // when none is left, finish the migration first (see `Raw::room`). Relaxed: a
        // count of slots; no data is published through it.
        let target = !current;
        if target && raw.room.fetch_sub(1, Ordering::Relaxed) <= 0 {
            raw.room.fetch_add(1, Ordering::Relaxed);
            self.finish_migration(guard);
            return Place::Retry;
        }
        Place::At { at, target }
    }

    /// Claims the free slot `at` for `word` and commits the insert on the home group:
    /// `Some(version)` of the commit when committed (the home's `named` now names `at`).
    /// On failure nothing is left behind. No user code runs here.
    pub(super) fn claim_and_commit(
        &self,
        raw: &Raw<K, V>,
        home: usize,
        c0: Ctrl,
        at: At,
        word: Word<K, V>,
    ) -> Option<u64> {
        let slot = &raw.groups[at.group].slots[at.slot];
        // Claim. AcqRel: Release publishes the node's fields to whoever helps publish it;
        // Acquire, on failure, is not needed (we start again), Relaxed would do, but a
        // failure here is rare and this keeps the pair symmetric with `publish`.
        if slot
            .compare_exchange(
                Word::<K, V>::EMPTY.0,
                word.pending().0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return None;
        }
        // Overflow marks on the groups the key passes, before it can be seen (a reader
        // that finds it must find every group on the way marked). The home group's mark is
        // part of the commit below. Counts saturate (see `word`), so marking never fails.
        for m in 1..at.steps {
            add_overflow(raw, step(home, m, raw.len()), 1);
        }
        let passes = u64::from(at.steps > 0);
        let hg = &raw.groups[home];
        loop {
            let c = hg.ctrl();
            // Another commit (or a migration) since our scan: the scan is stale.
            if c.version() != c0.version() || c.named().is_some() || c.is_frozen() {
                break;
            }
            // AcqRel: Release orders the claim and the marks before the commit for the
            // helpers that read `named`; Acquire keeps our later steps after it.
            let committed = c.committed(at.offset(), passes);
            if hg
                .ctrl
                .compare_exchange(c.0, committed.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some(committed.version());
            }
        }
        // Undo: the marks, then the claim (still ours: nobody else changes a claimed slot
        // but a migration freezing it, which leaves the word frozen for the copier to skip).
        for m in 1..at.steps {
            sub_overflow(raw, step(home, m, raw.len()));
        }
        let _ = slot.compare_exchange(
            word.pending().0,
            Word::<K, V>::EMPTY.0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        None
    }

    /// Publishes the committed claim at `at` and clears the home group's `named`, if it
    /// still names this commit (`version`). False when a migration froze the claim before
    /// anyone published it (then it was never visible).
    pub(super) fn publish(
        &self,
        raw: &Raw<K, V>,
        home: usize,
        at: At,
        word: Word<K, V>,
        version: u64,
    ) -> bool {
        let slot = &raw.groups[at.group].slots[at.slot];
        // Release publishes the node to readers' Acquire loads. It fails if a helper
        // published it first, or a migration froze the slot while the claim was pending:
        // the word found says which. A frozen pending claim stays exactly that word for
        // good; anything else means our node was published (and maybe since replaced,
        // removed, copied: it is unique, so no other claim can look like ours).
        let published = match slot.compare_exchange(
            word.pending().0,
            word.0,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(now) => Word(now) != word.pending().frozen(),
        };
        clear_named(raw, home, at.offset(), version);
        published
    }

    /// Publishes the insert the home group's `named` names (a committer that has not got
    /// round to it), so that our own scan sees it, and clears `named`.
    pub(super) fn help_publish(&self, raw: &Raw<K, V>, home: usize, c: Ctrl, offset: usize) {
        let (steps, i) = (offset / GROUP, offset % GROUP);
        let g = step(home, steps, raw.len());
        let slot = &raw.groups[g].slots[i];
        let w = Word(slot.load(Ordering::Acquire));
        // The slot holds the committed node only while `named` still names it at the same
        // version: clearing `named` bumps the version, and a new commit needs it clear.
        // (No ABA on the slot: its node cannot be freed while we are pinned.)
        let still = raw.groups[home].ctrl();
        if still.named() == Some(offset)
            && still.version() == c.version()
            && w.is_pending()
            && !w.is_frozen()
        {
            let _ =
                slot.compare_exchange(w.0, w.unpending().0, Ordering::AcqRel, Ordering::Relaxed);
        }
        clear_named(raw, home, offset, c.version());
    }
}
