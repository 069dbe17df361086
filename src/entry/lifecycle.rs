//! The node's lifecycle flags, changed only through the named transitions here (the three
//! holds' releases among them, [`Reclaim::settle`]). Whether a node is filed in the wheel
//! is no flag: the wheel tells it by the node's links (`Wheel::is_scheduled`).
//!
//! | flag | set by | when, under what | cleared |
//! |------|--------|------------------|---------|
//! | `QUEUED` | the writer linking a node the maintainer must see ([`NodeBox::new`] with a deadline or an extension); the remover ([`Node::remove_queued`]); a reader whose policy moved the deadline earlier ([`Node::ask_refile`]) | lock-free, one RMW; at most one request is pending | by the maintenance-lock holder taking the request ([`Node::take_request`], or [`Reclaim::serve_removal`] for a removed node) |
//! | `REMOVED` | the remover ([`Node::remove_queued`], or `settle` for a node the maintainer never sees); a maintainer that expired or evicted it ([`Node::remove_by_maintainer`]); a value never stored ([`NodeBox::never_stored`]) | once, by the thread whose CAS took the node out of its slot | never |
//! | `UNLINKED`, `DETACHED`, `RELEASED` | the three holders (see `node`'s lifecycle) through [`Reclaim::settle`] (`DETACHED` also through [`Reclaim::serve_removal`]); all three at once for a value never stored | once each; the last retires the node | never |
//!
//! Each transition is one atomic RMW, with the ordering the protocol needs (said at each),
//! and checks its precondition with a `debug_assert!` that prints the flags.

use super::layout::NodeBox;
use super::node::{Node, NodePtr, DETACHED, HOLDS, QUEUED, RELEASED, REMOVED, UNLINKED};
use super::reclaim::Reclaim;
use crate::clock::NEVER;
use crate::sync::Ordering;

impl<K, V> Node<K, V> {
    /// The remover's one RMW for a node the maintainer may hold a request for: sets
    /// `REMOVED` and `UNLINKED`, claims the request slot (`QUEUED`), and with `release`
    /// lets go of the remover's hold (`RELEASED`). Returns the flags before: without
    /// `QUEUED` there, the caller must queue a cancellation itself.
    ///
    /// AcqRel: pairs with the drainer's AcqRel [`take_request`](Self::take_request) (or
    /// [`Reclaim::serve_removal`], which takes a removed node's request), so whichever
    /// comes second sees the other's flag and what came before it. It cannot be
    /// the node's last hold: `DETACHED` comes only after `REMOVED`.
    #[inline]
    pub(crate) fn remove_queued(&self, release: bool) -> u64 {
        let released = if release { RELEASED } else { 0 };
        let old = self
            .meta
            .fetch_or(REMOVED | UNLINKED | QUEUED | released, Ordering::AcqRel);
        debug_assert_eq!(
            old & (REMOVED | DETACHED),
            0,
            "removed twice, or detached before removal: flags {old:#x}"
        );
        old
    }

    /// The maintenance-lock holder takes the node's pending request (clears `QUEUED`).
    /// Returns the flags before (`REMOVED` there: the request is a removal's).
    ///
    /// AcqRel: pairs with the remover's [`remove_queued`](Self::remove_queued) and a
    /// reader's [`ask_refile`](Self::ask_refile) (whose new deadline the caller reads next).
    #[inline]
    pub(crate) fn take_request(&self) -> u64 {
        let old = self.meta.fetch_and(!QUEUED, Ordering::AcqRel);
        debug_assert!(old & QUEUED != 0, "no request pending: flags {old:#x}");
        old
    }

    /// A reader whose expiry policy moved the deadline earlier asks for a re-file (sets
    /// `QUEUED`). True if this call made the request: none was pending and the node is
    /// not removed (then the caller queues it on the cancel ring).
    ///
    /// AcqRel: Release publishes the timer's new deadline to the
    /// [`take_request`](Self::take_request) that serves the node's request, after this in
    /// the flag's order; Acquire pairs with a remover's
    /// [`remove_queued`](Self::remove_queued).
    #[inline]
    pub(crate) fn ask_refile(&self) -> bool {
        // With REMOVED set, QUEUED may now be set on a node that no request names: nothing
        // reads it there (the node is detached by its remover's request or already was).
        self.meta.fetch_or(QUEUED, Ordering::AcqRel) & (QUEUED | REMOVED) == 0
    }

    /// A maintainer took the node out of the table (expired or evicted it): sets
    /// `REMOVED`, so no read asks for a re-file any more. True if a request is pending
    /// (a read's re-file, on the ring): serving it detaches the node.
    ///
    /// AcqRel: as [`remove_queued`](Self::remove_queued)'s, against a reader's
    /// [`ask_refile`](Self::ask_refile).
    #[inline]
    pub(crate) fn remove_by_maintainer(&self) -> bool {
        let old = self.meta.fetch_or(REMOVED, Ordering::AcqRel);
        debug_assert_eq!(old & REMOVED, 0, "removed twice: flags {old:#x}");
        old & QUEUED != 0
    }

    /// Whether the node was taken out of the table (a hint for a maintainer holding the
    /// lock: the remover's request, queued with it, is served under the same lock).
    #[inline]
    pub(crate) fn is_removed(&self) -> bool {
        // Relaxed: read under the maintenance lock, which the remover's request must take
        // before the node leaves the queues; a stale `false` only makes the evicter try
        // the table, whose CAS then fails.
        self.meta.load(Ordering::Relaxed) & REMOVED != 0
    }
}

impl<K, V> Reclaim<K, V> {
    /// Lets go of one or more of a node's holds (`UNLINKED`, `DETACHED`, `RELEASED`,
    /// possibly with other flags); the call that sets the last of the three retires the
    /// node here (its segment's reclamation).
    pub(crate) fn settle(&self, node: NodePtr<'_, K, V>, flags: u64) {
        // AcqRel pairs with the other holders' RMWs that let go of a hold (this same
        // `fetch_or` by another holder, and `remove_queued`'s): the Release half publishes
        // everything this holder did with the node; the Acquire half makes the other
        // holders' accesses happen-before the free when this call is the last (the RMWs in
        // between on `meta` continue their release sequences).
        let old = node.meta.fetch_or(flags, Ordering::AcqRel);
        debug_assert_eq!(
            old & flags & HOLDS,
            0,
            "a hold released twice: flags {old:#x}"
        );
        if old & HOLDS != HOLDS && (old | flags) & HOLDS == HOLDS {
            // SAFETY: `retire`'s 1: every node comes from `NodeBox::new`, and a `NodePtr`
            // keeps the pointer's provenance (`NodePtr::from_raw`'s 3); its 2: all three
            // holders are done with it: it is out of every table slot (UNLINKED), the wheel,
            // hand-off and ring (DETACHED), and its remover's hands (RELEASED), so only
            // threads pinned since before it left can reach it; its 3: the `fetch_or` lets
            // exactly one call see the last hold go; its 4: the Acquire half of that
            // `fetch_or` (above) orders the other holders' accesses before this call.
            unsafe { self.retire(node.as_ptr()) };
        }
    }
}

impl<K, V> Reclaim<K, V> {
    /// The maintenance-lock holder serves a removed node's pending request in one RMW:
    /// takes it (clears `QUEUED`, as [`take_request`](Node::take_request)) and lets go of
    /// the wheel side's hold (`DETACHED`, as [`settle`](Self::settle), retiring the node
    /// if that was the last hold). For a node the caller saw `REMOVED` on, after taking it
    /// out of the wheel: no other request can be made for it (a remover's and a read's
    /// both stop at `REMOVED`), so taking the request here rather than with
    /// `take_request` first changes nothing but the number of locked instructions (one
    /// instead of two).
    ///
    /// AcqRel, as `settle`'s: the Release half publishes the wheel side's last touches of
    /// the node; the Acquire half, when this lets go of the last hold, makes the other
    /// holders' accesses happen-before the free (it also pairs with the remover's
    /// `remove_queued`, as `take_request`'s does).
    pub(crate) fn serve_removal(&self, node: NodePtr<'_, K, V>) {
        let old = node
            .meta
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |m| {
                Some((m & !QUEUED) | DETACHED)
            })
            .unwrap_or_else(|m| m);
        debug_assert!(
            old & (QUEUED | REMOVED) == QUEUED | REMOVED && old & DETACHED == 0,
            "serving a removal without a pending request, or twice: flags {old:#x}"
        );
        if old & HOLDS != HOLDS && (old | DETACHED) & HOLDS == HOLDS {
            // SAFETY: `retire`'s 1: every node comes from `NodeBox::new`, and a `NodePtr`
            // keeps the pointer's provenance; its 2: all three holders are done with it
            // (UNLINKED and RELEASED were set, and DETACHED is ours: the caller took it out
            // of the wheel and its queue first), so only threads pinned since before it
            // left can reach it; its 3: the RMW lets exactly one call see the last hold go;
            // its 4: the Acquire half of that RMW orders the other holders' accesses
            // before this call.
            unsafe { self.retire(node.as_ptr()) };
        }
    }
}

impl<K, V> NodeBox<K, V> {
    /// A node for a value the cache refuses (zero TTL, too heavy, no room): never linked,
    /// never scheduled, so removed with the table's and the wheel's holds gone; only its
    /// remover holds it, to tell the listener (then `RELEASED` retires it).
    pub(crate) fn never_stored(hash: u64, key: K, value: V) -> Self {
        let node = Self::new(hash, key, value, NEVER, None);
        // Relaxed: the node is not shared yet; whoever it is handed to gets it through a
        // Release (the listener's queue lock, or this thread).
        node.meta
            .fetch_or(REMOVED | UNLINKED | DETACHED, Ordering::Relaxed);
        node
    }
}
