//! Listing a table's entries for iteration and `retain`: weakly consistent, and exactly
//! once for an entry that stays put.
//!
//! A scan first helps any migration in progress to its end (as `clear` does), then reads
//! every slot of the current table: published nodes are listed, claims not yet committed
//! (`PENDING`) are skipped (inserted meanwhile). A migration can start while the scan
//! runs: then slots the scan meets frozen or moved hold nodes that are now in the next
//! table, so the scan finishes that migration and reads the new table too, skipping the
//! nodes it already listed. Nodes only move forward (old table to new) and the caller's
//! guard keeps every listed node's memory, so a node pointer identifies an entry for the
//! whole scan: **an entry present throughout is listed exactly once**, and one inserted
//! or removed meanwhile may or may not be.
//!
//! Bounded: while a scan runs, the table starts no optional migration (no grow at the
//! maximum load, no shrink: `Table::scanners`), only the grows of an insert that found
//! no free slot near home (`Table::growth_helps`), and each of those multiplies the
//! table's groups by at least 1.5. So a scan reads at most a logarithmic number of
//! tables, whatever the writers do; without that rule, writers growing and shrinking a
//! small table faster than the scan reads it kept it going round for ever.

use super::raw::GROUP;
use super::Table;
use crate::entry::node::{Node, NodePtr};
use crate::sync::Ordering;
use crossbeam_epoch::Guard;
use std::collections::HashSet;

impl<K, V> Table<K, V> {
    /// Every node published in the table during the scan, each once (see the module docs).
    pub(crate) fn list_all<'g>(&self, guard: &'g Guard) -> Vec<NodePtr<'g, K, V>> {
        let _scanning = Scanning::enter(self);
        let mut listed: Vec<NodePtr<'g, K, V>> = Vec::new();
        let mut seen: Option<HashSet<*const Node<K, V>>> = None;
        loop {
            let raw = self.finish_migration(guard);
            for g in 0..raw.len() {
                for i in 0..GROUP {
                    let w = raw.groups[g].slot(i);
                    if w.is_pending() {
                        continue;
                    }
                    let Some(node) = w.node() else { continue };
                    if seen
                        .as_ref()
                        .is_some_and(|s| s.contains(&node.cast_const()))
                    {
                        continue;
                    }
                    // SAFETY: `NodePtr::from_raw`'s 1: published in a table reachable under
                    // `guard`, so alive when loaded; its 2: alive until the guard (`'g`)
                    // drops, as retirement waits for it; its 3: the word keeps the
                    // provenance of `NodeBox::into_raw`'s pointer.
                    listed.push(unsafe { NodePtr::from_raw(node) });
                }
            }
            // Acquire pairs with `start_migration`'s seal CAS and Release store of the
            // target (and `current`'s Acquire load in `Table::current` with `install`'s
            // CAS): a migration that started or finished during the scan is seen.
            if raw.next.load(Ordering::Acquire).is_null() && std::ptr::eq(self.current(guard), raw)
            {
                return listed;
            }
            // A migration began during the scan: what it copied is in the next table.
            seen = Some(listed.iter().map(|n| n.as_ptr().cast_const()).collect());
        }
    }
}

/// Counts a scan in progress on a table, until dropped (also on unwind).
struct Scanning<'t, K, V>(&'t Table<K, V>);

impl<'t, K, V> Scanning<'t, K, V> {
    fn enter(table: &'t Table<K, V>) -> Self {
        // Relaxed: a hint that only holds off optional migrations (`Table::scanners`); it
        // publishes nothing and pairs with nothing.
        table.scanners.fetch_add(1, Ordering::Relaxed);
        Self(table)
    }
}

impl<K, V> Drop for Scanning<'_, K, V> {
    fn drop(&mut self) {
        // Relaxed: the hint's decrement; it publishes nothing and pairs with nothing.
        self.0.scanners.fetch_sub(1, Ordering::Relaxed);
    }
}
