//! An entry of the cache, [`Node`], and the rules of its life.
//!
//! Nodes are heap-allocated (`Box`) and never move: the table's slots point at them, the
//! timing wheel links them intrusively, and retired ones wait in their segment's
//! reclamation queue through the same memory.
//!
//! ## Ground rules for the fields of a `Node`
//! - `hash`, `key`, `value`: written once before the node is published, read-only
//!   afterwards; readable by any thread holding an epoch guard (or a [`Held`]).
//! - `meta`: the deadline (immutable) and the lifecycle flags below, changed by atomic RMW.
//! - `wheel`: prev/next in a wheel slot while `SCHEDULED`, read and written only under the
//!   segment's maintenance lock. When the node is in no wheel slot, `wheel.next` is the
//!   node's link in at most one intrusive stack instead (see [`Node::link`]): the segment's
//!   hand-off stack while it waits to be scheduled (it is `QUEUED` and not yet
//!   `SCHEDULED`), then its segment's limbo once retired (the wheel is done with it). Only
//!   the thread that owns that stack membership touches it. A node is thus 32 bytes plus
//!   its key and value.
//!
//! ## Lifecycle
//! **A node is freed one epoch grace period after the last of its three holders lets go**:
//! the table, the wheel side and the remover. Each lets go by setting one flag with an RMW
//! (`Table::settle`), and whichever sets the last of the three retires the node to its
//! segment's reclamation (`reclaim`):
//! - `UNLINKED`: set by the node's *remover*: the one thread whose CAS took it out of its
//!   table slot (a remove, a replacing insert, an expiry, `clear`). No other slot can hold
//!   it then: a migration copies a node only while its old slot is frozen, and clears the
//!   old slot before anyone may remove the node from the new one (see `table`).
//! - `DETACHED`: set by the maintenance-lock holder once the node is out of the wheel and
//!   off the hand-off stack for good; by the remover directly for a node with no deadline
//!   (it never meets the wheel); by the expirer for a node the wheel itself fired.
//! - `RELEASED`: set by the remover once it is done with the node: after the eviction
//!   listener has returned, or at once when there is no listener. Until then the remover
//!   holds the node as a [`Held`], which keeps it alive without any epoch pin, so the
//!   listener can borrow its key and value while nothing else in the process is held back.
//!
//! The other flags: `QUEUED` (on the hand-off stack), `REMOVED` (taken out of the table,
//! set by the remover with `UNLINKED` in the RMW that may also set `QUEUED`), `SCHEDULED`
//! (linked in a wheel slot, set and cleared under the maintenance lock).

use crate::clock::{DEADLINE_BITS, NEVER};
use crate::policy::RemovalCause;
use crate::sync::{AtomicU64, Ordering, UnsafeCell};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};

/// On the segment's hand-off stack, waiting for the maintenance-lock holder.
pub(crate) const QUEUED: u64 = 1 << DEADLINE_BITS;
/// Logically deleted (set by the remover, in the same RMW that may set `QUEUED`).
pub(crate) const REMOVED: u64 = 1 << (DEADLINE_BITS + 1);
/// Linked into a wheel slot (set and cleared only under the maintenance lock).
pub(crate) const SCHEDULED: u64 = 1 << (DEADLINE_BITS + 2);
/// Physically unlinked from the list (set once, by the unlinking thread).
pub(crate) const UNLINKED: u64 = 1 << (DEADLINE_BITS + 3);
/// The wheel side will never touch the node again.
pub(crate) const DETACHED: u64 = 1 << (DEADLINE_BITS + 4);
/// The remover is done with the node (its listener, if any, has returned).
pub(crate) const RELEASED: u64 = 1 << (DEADLINE_BITS + 5);
/// The three holds on a node (see the lifecycle above): the last one set retires it.
pub(crate) const HOLDS: u64 = UNLINKED | DETACHED | RELEASED;

/// The wheel's intrusive doubly linked list pointers.
#[derive(Debug)]
pub(crate) struct WheelLinks<K, V> {
    pub(crate) prev: *mut Node<K, V>,
    pub(crate) next: *mut Node<K, V>,
}

/// An entry: its hash, bookkeeping, key and value.
#[derive(Debug)]
pub(crate) struct Node<K, V> {
    /// The key's full hash: where its probe starts, and its slot tag, with no user code.
    pub(crate) hash: u64,
    /// Deadline in ticks (low 56 bits) and lifecycle flags (top 8).
    pub(crate) meta: AtomicU64,
    /// Wheel slot links, guarded by the segment's maintenance lock; `next` doubles as a
    /// stack link while the node is in no slot (see the ground rules).
    pub(crate) wheel: UnsafeCell<WheelLinks<K, V>>,
    pub(crate) key: K,
    pub(crate) value: V,
}

impl<K, V> Node<K, V> {
    /// A node not yet linked. One with a deadline starts `QUEUED`: the inserter owes the
    /// wheel a scheduling request, pushed right after linking.
    pub(crate) fn new(hash: u64, key: K, value: V, deadline: u64) -> Self {
        debug_assert!(deadline <= NEVER);
        let meta = if deadline == NEVER {
            NEVER
        } else {
            deadline | QUEUED
        };
        Self {
            hash,
            meta: AtomicU64::new(meta),
            wheel: UnsafeCell::new(WheelLinks {
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
            }),
            key,
            value,
        }
    }

    /// The deadline tick; [`NEVER`] for none. Immutable after publication, so `Relaxed`:
    /// the node's contents were published by the Release CAS that linked it and acquired
    /// by whichever load found it.
    #[inline]
    pub(crate) fn deadline(&self) -> u64 {
        self.meta.load(Ordering::Relaxed) & NEVER
    }

    /// Whether the entry is past its deadline at tick `now`.
    #[inline]
    pub(crate) fn is_expired(&self, now: u64) -> bool {
        let deadline = self.deadline();
        deadline != NEVER && deadline <= now
    }

    /// The node's stack link (`wheel.next`, see the ground rules).
    ///
    /// # Safety
    /// The caller owns the node's stack membership (it took the node off a stack it owns,
    /// or is about to push it) and the node is in no wheel slot; the link was written by
    /// the thread that pushed it, ordered before us by the stack's Release/Acquire.
    #[inline]
    pub(crate) unsafe fn link(&self) -> *mut Node<K, V> {
        // SAFETY: the caller's contract: nobody else touches `wheel` now.
        self.wheel.with(|l| unsafe { (*l).next })
    }

    /// Sets the node's stack link.
    ///
    /// # Safety
    /// As for [`link`](Self::link).
    #[inline]
    pub(crate) unsafe fn set_link(&self, next: *mut Node<K, V>) {
        // SAFETY: the caller's contract: nobody else touches `wheel` now.
        self.wheel.with_mut(|l| unsafe { (*l).next = next });
    }
}

/// A node reached under an epoch guard (`'g`).
///
/// It dereferences to `&Node`, and it keeps the pointer exactly as allocated
/// (`Box::into_raw`) or as loaded from a table slot (tag bits stripped with `map_addr`, so
/// the provenance is kept), so the hand-off stack, the wheel and the final free use a
/// pointer with the allocation's full provenance — never one rebuilt from a shared
/// reference, which could not be used to free the node (Miri with Tree Borrows rejects
/// that).
#[derive(Debug)]
pub(crate) struct NodePtr<'g, K, V> {
    raw: NonNull<Node<K, V>>,
    _guard: PhantomData<&'g Node<K, V>>,
}

impl<K, V> Clone for NodePtr<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for NodePtr<'_, K, V> {}

impl<'g, K, V> NodePtr<'g, K, V> {
    /// # Safety
    /// `raw` points to a live node that stays alive for `'g`.
    #[inline]
    pub(crate) unsafe fn from_raw(raw: *mut Node<K, V>) -> Self {
        Self {
            // SAFETY: caller's contract (non-null).
            raw: unsafe { NonNull::new_unchecked(raw) },
            _guard: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn as_ptr(self) -> *mut Node<K, V> {
        self.raw.as_ptr()
    }
}

impl<K, V> Deref for NodePtr<'_, K, V> {
    type Target = Node<K, V>;

    #[inline]
    fn deref(&self) -> &Node<K, V> {
        // SAFETY: the constructors' contracts keep the node alive while `self` exists.
        unsafe { self.raw.as_ref() }
    }
}

/// A departed node whose remover still holds it (`RELEASED` not yet set), with why it left
/// and the segment it belongs to. It keeps the node alive without an epoch pin: the node
/// cannot be retired, hence not freed, until [`Held::into_raw`] is handed to `settle` with
/// `RELEASED`. Used to call the listener unpinned.
#[derive(Debug)]
pub(crate) struct Held<K, V> {
    raw: NonNull<Node<K, V>>,
    pub(crate) cause: RemovalCause,
    pub(crate) segment: usize,
}

// SAFETY: a `Held` stands for the remover's share of the node, which a cache only stores
// for `K, V: Send + Sync`; moving it to another thread moves that share, and the node's
// shared fields are read-only or atomic.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Held<K, V> {}

impl<K, V> Held<K, V> {
    /// # Safety
    /// The caller is `node`'s remover and has not set `RELEASED`; it hands that duty to the
    /// `Held`, which must reach `settle(.., RELEASED)` through [`into_raw`](Self::into_raw)
    /// exactly once.
    pub(crate) unsafe fn new(node: NodePtr<'_, K, V>, cause: RemovalCause, segment: usize) -> Self {
        Self {
            raw: node.raw,
            cause,
            segment,
        }
    }

    /// Gives the hold up: the caller must settle the node with `RELEASED` at once.
    pub(crate) fn into_raw(self) -> *mut Node<K, V> {
        self.raw.as_ptr()
    }
}

impl<K, V> Deref for Held<K, V> {
    type Target = Node<K, V>;

    #[inline]
    fn deref(&self) -> &Node<K, V> {
        // SAFETY: `RELEASED` is not set while the `Held` exists (its contract), so the node
        // is not retired, hence not freed.
        unsafe { self.raw.as_ref() }
    }
}
