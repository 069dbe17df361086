//! Writing to the list: insert, replace, remove, and marking by the wheel or `clear`.

use super::node::{Link, Node, NodePtr};
use super::Table;
use crate::sync::Ordering;
use crossbeam_epoch::{Guard, Shared};

/// What [`Table::insert`] did.
pub(crate) enum Insert<'g, K, V> {
    /// Linked under a key that had no entry.
    New(NodePtr<'g, K, V>),
    /// Took the place of `old`; the caller is now `old`'s remover.
    Replaced {
        old: NodePtr<'g, K, V>,
        new: NodePtr<'g, K, V>,
    },
    /// `keep` chose the existing entry; the unused node is handed back.
    Kept {
        existing: NodePtr<'g, K, V>,
        unused: Box<Node<K, V>>,
    },
}

/// Owns a not-yet-published node through its raw pointer, freeing it if dropped (when a
/// user `Eq` panics mid-search) unless [`publish`](Self::publish)ed or taken back.
struct Unpublished<K, V>(*mut Node<K, V>);

impl<K, V> Unpublished<K, V> {
    fn node(&self) -> &Node<K, V> {
        // SAFETY: we own the allocation until it is published or taken back.
        unsafe { &*self.0 }
    }

    /// The node is in the list now; the list owns it.
    fn publish<'g>(self) -> NodePtr<'g, K, V> {
        let raw = self.0;
        std::mem::forget(self);
        // SAFETY: just linked, so alive until retired, which waits out the caller's guard.
        unsafe { NodePtr::from_raw(raw) }
    }

    fn take_back(self) -> Box<Node<K, V>> {
        let raw = self.0;
        std::mem::forget(self);
        // SAFETY: never published; from `Box::into_raw`.
        unsafe { Box::from_raw(raw) }
    }
}

impl<K, V> Drop for Unpublished<K, V> {
    fn drop(&mut self) {
        // SAFETY: never published; from `Box::into_raw`; freed once.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

impl<K, V> Table<K, V> {
    /// Links `node`, replacing an existing entry with an equal key unless `keep` accepts
    /// it. `eq` compares a stored key with `node.key` (user code: may panic, in which case
    /// nothing was changed and `node` is dropped by the unwinding).
    pub(crate) fn insert<'g>(
        &self,
        node: Box<Node<K, V>>,
        mut eq: impl FnMut(&K, &K) -> bool,
        mut keep: impl FnMut(&Node<K, V>) -> bool,
        guard: &'g Guard,
    ) -> Insert<'g, K, V> {
        let so_key = node.link.so_key;
        // The raw pointer from `Box::into_raw` is the one published, so whoever frees the
        // node frees it through a pointer with the allocation's provenance.
        let node = Unpublished(Box::into_raw(node));
        let new = Shared::from(node.0.cast_const().cast::<Link>());
        loop {
            let pos = self.search(
                so_key,
                || self.writer_start(so_key, guard),
                // SAFETY: `so_key` is odd, so a matching link is an entry of this table.
                |l| eq(unsafe { &Node::<K, V>::from_link(l).key }, &node.node().key),
                guard,
            );
            if !pos.found {
                node.node().link.next.store(pos.curr, Ordering::Relaxed);
                // AcqRel: Release publishes the node's fields to readers' Acquire loads.
                if pos
                    .pred
                    .next
                    .compare_exchange(pos.curr, new, Ordering::AcqRel, Ordering::Acquire, guard)
                    .is_ok()
                {
                    self.count.fetch_add(1, Ordering::Relaxed);
                    return Insert::New(node.publish());
                }
                continue;
            }
            // SAFETY: found links are entries of this table, protected by `guard`.
            let old = unsafe { NodePtr::<K, V>::from_shared(pos.curr) };
            if keep(&old) {
                return Insert::Kept {
                    existing: old,
                    unused: node.take_back(),
                };
            }
            let succ = old.link.next.load(Ordering::Acquire, guard);
            if succ.tag() == 1 {
                continue; // removed under us: look again
            }
            node.node().link.next.store(succ, Ordering::Relaxed);
            // Invariant 4: one CAS deletes `old` and makes `new` reachable through it.
            // AcqRel: Release publishes `new`; Acquire orders our reads of `old` before it.
            if old
                .link
                .next
                .compare_exchange(
                    succ,
                    new.with_tag(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                    guard,
                )
                .is_err()
            {
                continue;
            }
            let new = node.publish();
            self.unlink_after_mark(pos.pred, pos.curr, new.as_ptr().cast::<Link>(), guard);
            return Insert::Replaced { old, new };
        }
    }

    /// Removes the entry with `so_key` that `matches` accepts; the caller becomes its
    /// remover. `matches` is user code (`Eq`): a panic leaves the table unchanged.
    pub(crate) fn remove<'g>(
        &self,
        so_key: u64,
        mut matches: impl FnMut(&Node<K, V>) -> bool,
        guard: &'g Guard,
    ) -> Option<NodePtr<'g, K, V>> {
        loop {
            let pos = self.search(
                so_key,
                || self.writer_start(so_key, guard),
                // SAFETY: `so_key` is odd, so a matching link is an entry.
                |l| matches(unsafe { Node::<K, V>::from_link(l) }),
                guard,
            );
            if !pos.found {
                return None;
            }
            // SAFETY: found links are entries of this table, protected by `guard`.
            let node = unsafe { NodePtr::<K, V>::from_shared(pos.curr) };
            let succ = node.link.next.load(Ordering::Acquire, guard);
            if succ.tag() == 1 {
                continue;
            }
            // AcqRel: pairs with readers' and helpers' Acquire loads of `next`.
            if node
                .link
                .next
                .compare_exchange(
                    succ,
                    succ.with_tag(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                    guard,
                )
                .is_ok()
            {
                self.count.fetch_sub(1, Ordering::Relaxed);
                self.unlink_after_mark(pos.pred, pos.curr, succ.as_raw(), guard);
                return Some(node);
            }
        }
    }

    /// Logically deletes `node` if nobody has yet (the wheel expiring it, or `clear`);
    /// true when this call did, making the caller its remover. Physical unlinking is left
    /// to [`unlink`](Self::unlink) or to any passing writer.
    pub(crate) fn mark(&self, node: &Node<K, V>, guard: &Guard) -> bool {
        let mut succ = node.link.next.load(Ordering::Acquire, guard);
        loop {
            if succ.tag() == 1 {
                return false;
            }
            // AcqRel: as in `remove`.
            match node.link.next.compare_exchange(
                succ,
                succ.with_tag(1),
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            ) {
                Ok(_) => {
                    self.count.fetch_sub(1, Ordering::Relaxed);
                    return true;
                }
                Err(race) => succ = race.current,
            }
        }
    }

    /// Makes sure a marked link with `so_key` is physically unlinked, by walking its run
    /// with the helping search (no user code runs).
    pub(crate) fn unlink(&self, so_key: u64, guard: &Guard) {
        let _ = self.search(
            so_key,
            || self.writer_start(so_key, guard),
            |_| false,
            guard,
        );
    }

    /// After marking `curr` (reached from `pred`), try the one CAS that unlinks it; fall
    /// back to the helping search.
    fn unlink_after_mark(
        &self,
        pred: &Link,
        curr: Shared<'_, Link>,
        succ: *const Link,
        guard: &Guard,
    ) {
        // AcqRel: as in `search`'s unlinking CAS.
        if pred
            .next
            .compare_exchange(
                curr,
                Shared::from(succ),
                Ordering::AcqRel,
                Ordering::Relaxed,
                guard,
            )
            .is_ok()
        {
            self.unlinked(curr);
        } else {
            // SAFETY: `curr` is still protected by `guard`.
            self.unlink(unsafe { curr.deref() }.so_key, guard);
        }
    }

    /// Marks every live entry (for `clear`) and unlinks them all in one helping pass.
    /// Returns the entries this call removed; the caller is their remover.
    pub(crate) fn mark_all<'g>(&self, guard: &'g Guard) -> Vec<NodePtr<'g, K, V>> {
        let mut removed = Vec::new();
        let head = self.sentinel(0, guard);
        let mut curr = head.next.load(Ordering::Acquire, guard).with_tag(0);
        // SAFETY: reached from the list under `guard`.
        while let Some(link) = unsafe { curr.as_ref() } {
            if link.is_entry() {
                // SAFETY: an entry link of this table, protected by `guard`.
                let node = unsafe { NodePtr::<K, V>::from_shared(curr) };
                if self.mark(&node, guard) {
                    removed.push(node);
                }
            }
            curr = link.next.load(Ordering::Acquire, guard).with_tag(0);
        }
        if !removed.is_empty() {
            let _ = self.search(u64::MAX, || self.sentinel(0, guard), |_| false, guard);
        }
        removed
    }
}
