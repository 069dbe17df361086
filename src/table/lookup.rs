//! Finding a key: the readers' lookup, and the writers' scan of a probe sequence. The
//! protocol is explained in the `table` module's essay.

use super::raw::{step, Raw, GROUP};
use super::word::{tag_of, Want, Word};
use super::Table;
use crate::entry::node::{Node, NodePtr};
use crossbeam_epoch::Guard;
/// Where a probe found a key, or a free slot.
#[derive(Clone, Copy)]
pub(super) struct At {
    /// Groups from the home group.
    pub(super) steps: usize,
    pub(super) group: usize,
    pub(super) slot: usize,
}

impl At {
    pub(super) fn offset(self) -> usize {
        self.steps * GROUP + self.slot
    }
}

/// What a scan of the probe sequence saw.
pub(super) enum Scan<K, V> {
    /// The key's published node.
    Found(At, Word<K, V>),
    /// The key is absent; the first free slot, if one was within reach of a new insert
    /// (`Tuning::reach` slots from home).
    Absent(Option<At>),
    /// A migration has reached the probe sequence: start again through `writable`.
    Migrating,
}

impl<K, V> Table<K, V> {
    /// The published node whose key `matches`, under `guard`. Readers write nothing and
    /// never help a migration. In a table being migrated they probe the old table as usual,
    /// skipping copied groups and slots (a copied home group does not mean its keys are
    /// copied: some may live, not yet copied, in later groups), and look in the next table
    /// only if the key was not found and the probe met something copied.
    ///
    /// Always inlined into its one non-test caller (the cache's `find`): a read then sets
    /// up one call frame instead of two.
    #[inline(always)]
    pub(crate) fn lookup<'g>(
        &self,
        hash: u64,
        mut matches: impl FnMut(&Node<K, V>) -> bool,
        guard: &'g Guard,
    ) -> Option<NodePtr<'g, K, V>> {
        let tag = tag_of(hash);
        let want = Want::new(tag);
        let mut raw = self.current(guard);
        loop {
            let home = raw.home(hash);
            let mut copied = false;
            for steps in 0..raw.len() {
                let group = &raw.groups[step(home, steps, raw.len())];
                let ctrl = group.ctrl();
                if ctrl.is_moved() {
                    copied = true;
                } else {
                    for i in 0..GROUP {
                        let word = group.slot(i);
                        // One mask and compare rejects empty, pending and other tags' words;
                        // only an unusual word (moved, untagged) needs the full checks, out
                        // of line, so that the loop is small enough to unroll.
                        if !word.tagged_with(want)
                            && (!word.unusual() || !unusual_may_hold(word, tag, &mut copied))
                        {
                            continue;
                        }
                        // SAFETY: `NodePtr::from_raw`'s 1: a published (or frozen published)
                        // word points at a node that was alive when loaded; its 2: nodes are
                        // freed only a grace period after leaving every slot, and `guard`
                        // (`'g`) was taken before this load; its 3: the word keeps the
                        // provenance of the pointer `NodeBox::into_raw` gave.
                        let node = unsafe {
                            NodePtr::from_raw(word.node().expect("a published word has a node"))
                        };
                        if node.hash() == hash && matches(&node) {
                            return Some(node);
                        }
                    }
                }
                // A copied group keeps its overflow count as frozen: still the probe's end.
                if ctrl.overflow() == 0 {
                    break;
                }
            }
            if !copied {
                return None;
            }
            // SAFETY: `next_of`'s 1: the probe met a copied group of `raw`.
            raw = unsafe { self.next_of(raw, guard) };
        }
    }

    /// Scans `hash`'s probe sequence for a published node that `matches`, and for the
    /// first free slot a new insert may claim (within `Tuning::reach` slots of home, at
    /// most what a commit can name).
    pub(super) fn scan(
        &self,
        raw: &Raw<K, V>,
        hash: u64,
        mut matches: impl FnMut(&Node<K, V>) -> bool,
    ) -> Scan<K, V> {
        let tag = tag_of(hash);
        let want = Want::new(tag);
        let home = raw.home(hash);
        let mut free = None;
        let mut searching = true;
        for steps in 0..raw.len() {
            if !searching && (free.is_some() || steps * GROUP > self.tuning.reach) {
                break;
            }
            let g = step(home, steps, raw.len());
            let group = &raw.groups[g];
            let ctrl = group.ctrl();
            if ctrl.is_frozen() {
                return Scan::Migrating;
            }
            for i in 0..GROUP {
                let w = group.slot(i);
                // The readers' one-compare filter first (see `lookup`): a frozen word passes
                // it, and is caught by the check below before its node is looked at.
                let candidate = searching && w.tagged_with(want);
                if w.is_frozen() || w.is_moved() {
                    return Scan::Migrating;
                }
                if candidate || (searching && w.unusual() && w.may_hold(tag)) {
                    // SAFETY: 1. a published word points at a node that was alive when
                    // loaded; 2. nodes are freed only a grace period after leaving every
                    // slot, and the caller is pinned while we run (`raw` is a `&'g Raw`
                    // borrowed from its guard: `writable`), so it stays alive while `n` is
                    // used; 3. only shared references to nodes are made.
                    let n = unsafe { &*w.node().expect("published") };
                    if n.hash() == hash && matches(n) {
                        return Scan::Found(
                            At {
                                steps,
                                group: g,
                                slot: i,
                            },
                            w,
                        );
                    }
                } else if w.is_empty() && free.is_none() && steps * GROUP + i <= self.tuning.reach {
                    free = Some(At {
                        steps,
                        group: g,
                        slot: i,
                    });
                }
            }
            if ctrl.overflow() == 0 {
                // No key whose probe reaches here lives further on: ours is absent.
                searching = false;
            }
        }
        Scan::Absent(free)
    }
}

/// An unusual word's checks (see [`Word::unusual`]): whether a reader must look at its
/// node (a published untagged word that may hold `tag`); a moved word sets `copied`.
#[cold]
#[inline(never)]
fn unusual_may_hold<K, V>(word: Word<K, V>, tag: usize, copied: &mut bool) -> bool {
    if word.is_moved() {
        *copied = true;
        return false;
    }
    word.may_hold(tag)
}
