//! The remover's hold on a departed node, as a value that cannot be lost.
//!
//! The thread whose CAS took a node out of its table is the node's *remover*, and owns
//! one of its three holds (`RELEASED`, see `entry::node`). Without a listener it lets go
//! at once. With one, it keeps the hold as a [`Held`], which keeps the node (so `&K` and
//! `&V`) alive without any epoch pin, until the listener has heard of the departure.
//!
//! Letting go is the `Held`'s own `Drop`: it settles `RELEASED` on the node through its
//! segment's reclamation (which retires it if that was the last hold) and, for a departure a maintenance turn took out, counts it delivered
//! (`Segment::owed`). So a `Held` dropped on any path, a panic's unwinding included, still
//! frees its node exactly once; what makes sure the listener hears of it first is the
//! operation's `Departures` (in `cache`), which holds every `Held` the operation made and
//! delivers them when it is dropped.

use super::Segment;
use crate::entry::node::{Node, NodePtr, RELEASED};
use crate::entry::RemovalCause;
use std::ops::Deref;
use std::ptr::NonNull;

/// A departed node its remover still holds (`RELEASED` unset), and why it left. Dropping
/// it lets go of the node.
#[derive(Debug)]
pub(crate) struct Held<K, V> {
    node: NonNull<Node<K, V>>,
    segment: NonNull<Segment<K, V>>,
    pub(crate) cause: RemovalCause,
    /// Its generation in `Segment::owed`, if a maintenance turn took it out.
    owed: Option<u8>,
}

// SAFETY: 1. a `Held` stands for the remover's share of the node, which a cache only
// stores for `K, V: Send + Sync`, and the node's shared fields are read-only or atomic;
// 2. it holds a shared reference to its segment, which is `Sync` for such `K, V`; so
// moving it to another thread moves that share and that reference.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Held<K, V> {}

impl<K, V> Held<K, V> {
    /// Takes over the remover's hold on `node`.
    ///
    /// # Safety
    /// 1. The caller is `node`'s remover and has not set `RELEASED` on it: it hands that
    ///    duty to the `Held`, whose `Drop` discharges it exactly once.
    /// 2. `node` belongs to `segment`'s table.
    /// 3. The `Held` is dropped before `segment` is. (A `Held` lives in an operation's
    ///    `Departures`, which borrows the cache, or in the listener's queue, which the
    ///    cache empties before it drops its segments.)
    /// 4. With `owed: Some(g)`, the caller has counted the departure in `segment.owed[g]`.
    pub(crate) unsafe fn new(
        node: NodePtr<'_, K, V>,
        cause: RemovalCause,
        segment: &Segment<K, V>,
        owed: Option<u8>,
    ) -> Self {
        Self {
            node: node.as_non_null(),
            segment: NonNull::from(segment),
            cause,
            owed,
        }
    }
}

impl<K, V> Deref for Held<K, V> {
    type Target = Node<K, V>;

    #[inline]
    fn deref(&self) -> &Node<K, V> {
        // SAFETY: 1. `RELEASED` is not set while the `Held` exists (obligation 1 of `new`),
        // so the node is not retired, hence alive for as long as `&self`; 2. only shared
        // references to a node are made.
        unsafe { self.node.as_ref() }
    }
}

impl<K, V> Drop for Held<K, V> {
    fn drop(&mut self) {
        // SAFETY: obligation 3 of `new`: the segment outlives the `Held`.
        let segment = unsafe { self.segment.as_ref() };
        // SAFETY: `NodePtr::from_raw`'s 1 and 2: obligation 1 of `new`: the node is alive
        // until the settle below, the hold's one release (`drop` runs once), and `node`
        // is not used after it; its 3: `node` came from a `NodePtr` (`as_non_null`).
        let node = unsafe { NodePtr::from_raw(self.node.as_ptr()) };
        // Obligation 2 of `new`: the node is this segment's, so retired into its
        // reclamation if this was its last hold.
        segment.reclaim.settle(node, RELEASED);
        if let Some(generation) = self.owed {
            // Obligation 4 of `new`: it was counted.
            segment.delivered(generation);
        }
    }
}
