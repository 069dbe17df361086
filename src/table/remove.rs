//! Removing: by key, by node, and everything (`clear`). The protocol is explained in the
//! `table` module's essay.

use super::lookup::{At, Scan};
use super::raw::sub_overflow;
use super::raw::{step, Raw, GROUP};
use super::word::Word;
use super::Table;
use crate::entry::node::{Node, NodePtr};
use crate::sync::{self, Ordering};
use crossbeam_epoch::Guard;

impl<K, V> Table<K, V> {
    /// Removes the published node whose key `matches`; the caller becomes its remover.
    /// `matches` is user code (`Eq`): a panic leaves the table unchanged.
    pub(crate) fn remove<'g>(
        &self,
        hash: u64,
        mut matches: impl FnMut(&Node<K, V>) -> bool,
        guard: &'g Guard,
    ) -> Option<NodePtr<'g, K, V>> {
        loop {
            let raw = self.writable(hash, guard);
            match self.scan(raw, hash, &mut matches) {
                Scan::Migrating => continue,
                Scan::Absent(_) => return None,
                Scan::Found(at, w) => {
                    // SAFETY: `take`'s 1: `scan` read `w` from `at` under `guard` (`'g`).
                    if let Some(node) = unsafe { self.take(raw, hash, at, w) } {
                        return Some(node);
                    }
                }
            }
        }
    }

    /// Removes `node` itself (the wheel expiring it, `clear`), found by pointer from its
    /// stored hash: no user code. True when this call removed it, making the caller its
    /// remover; false when it is no longer in the table.
    pub(crate) fn remove_node(&self, node: &Node<K, V>, guard: &Guard) -> bool {
        let hash = node.hash();
        let target: *const Node<K, V> = node;
        'retry: loop {
            let raw = self.writable(hash, guard);
            let home = raw.home(hash);
            for steps in 0..raw.len() {
                let g = step(home, steps, raw.len());
                let group = &raw.groups[g];
                let ctrl = group.ctrl();
                if ctrl.is_frozen() {
                    continue 'retry;
                }
                for i in 0..GROUP {
                    let w = group.slot(i);
                    if w.is_frozen() || w.is_moved() {
                        continue 'retry;
                    }
                    if w.is_pending() || w.node().map(|n| n.cast_const()) != Some(target) {
                        continue;
                    }
                    let at = At {
                        steps,
                        group: g,
                        slot: i,
                    };
                    // SAFETY: `take`'s 1: `w` was just read from `at` under `guard`.
                    if unsafe { self.take(raw, hash, at, w) }.is_some() {
                        return true;
                    }
                    continue 'retry;
                }
                if ctrl.overflow() == 0 {
                    return false;
                }
            }
            return false;
        }
    }

    /// Takes the published `w` out of its slot (CAS to empty), then takes its overflow
    /// marks back; `Some` when this call did (it is the node's remover).
    ///
    /// # Safety
    /// 1. `w` was read from slot `at` of `raw` under a guard that lives for `'g` (so its
    ///    node, if the CAS takes it, is not freed before `'g` ends: the returned pointer's
    ///    lifetime).
    pub(super) unsafe fn take<'g>(
        &self,
        raw: &Raw<K, V>,
        hash: u64,
        at: At,
        w: Word<K, V>,
    ) -> Option<NodePtr<'g, K, V>> {
        let slot = &raw.groups[at.group].slots[at.slot];
        // AcqRel. The Acquire half pairs with the Release CAS that published `w` (`insert`'s
        // publish or replace, `help_publish`, `copy_node`); the Acquire load that found `w`
        // (`Group::slot`) already did that, so it is stronger than the proof needs. The
        // Release half pairs with the Acquire of whoever next reads the slot; no proof
        // relies on it (a reused slot frees nothing: the node goes only through `settle`).
        // Both kept: on a CAS they cost next to nothing, and every write of a slot word
        // stays a Release, so `Group::slot`'s Acquire pairs with whichever write it reads.
        slot.compare_exchange(
            w.0,
            Word::<K, V>::EMPTY.0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .ok()?;
        let home = raw.home(hash);
        for m in 0..at.steps {
            sub_overflow(raw, step(home, m, raw.len()));
        }
        // Relaxed: a count that publishes nothing and pairs with nothing (read as a hint,
        // and by `len`).
        self.count.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `NodePtr::from_raw`'s 1: the node was published in the slot we just
        // emptied, so it is alive; its 2: it is retired only after our remover's duties,
        // and freed only after the caller's guard (`'g`, pinned before the scan) is gone;
        // its 3: the word keeps the provenance of `NodeBox::into_raw`'s pointer.
        Some(unsafe { NodePtr::from_raw(w.node().expect("published")) })
    }

    /// Removes every published entry (for `clear`): first helps any migration to its end,
    /// so that no entry is missed while being copied. Returns the entries this call
    /// removed; the caller is their remover. Entries inserted meanwhile may survive.
    pub(crate) fn remove_all<'g>(&self, guard: &'g Guard) -> Vec<NodePtr<'g, K, V>> {
        let mut removed = Vec::new();
        loop {
            let raw = self.finish_migration(guard);
            for g in 0..raw.len() {
                for i in 0..GROUP {
                    let w = raw.groups[g].slot(i);
                    if w.is_pending() || w.is_frozen() {
                        continue;
                    }
                    let Some(node) = w.node() else { continue };
                    // SAFETY: 1. published in this table when loaded, so alive then; 2. read
                    // under `guard`, which keeps it from being freed; 3. `hash` is
                    // immutable, so the read races with nothing.
                    let hash = unsafe { (*node).hash() };
                    let home = raw.home(hash);
                    let steps = (g + raw.len() - home) % raw.len();
                    let at = At {
                        steps,
                        group: g,
                        slot: i,
                    };
                    // SAFETY: `take`'s 1: `w` was just read from `at` under `guard` (`'g`).
                    if let Some(node) = unsafe { self.take(raw, hash, at, w) } {
                        removed.push(node);
                    }
                }
            }
            // A migration that began meanwhile may hold entries we skipped (frozen). Acquire
            // pairs with `start_migration`'s seal CAS and target store; only null-ness is
            // read (stronger than needed: `finish_migration` loads it again before use).
            if self.current(guard).next.load(Ordering::Acquire).is_null()
                && std::ptr::eq(self.current(guard), raw)
            {
                return removed;
            }
            sync::yield_now();
        }
    }
}
