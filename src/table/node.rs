//! The two kinds of list node: bare [`Link`]s (bucket sentinels) and [`Node`]s (entries).
//!
//! Both start with a [`Link`] (`#[repr(C)]`), so the list is a list of `Link`s and an entry
//! is reached by casting; the low bit of `so_key` tells which a link is (1: entry, 0:
//! sentinel), and only entries are ever cast to [`Node`].
//!
//! ## Ground rules for the fields of a `Node`
//! - `link.so_key`, `key`, `value`: written once before the node is published, read-only
//!   afterwards; readable by any thread holding an epoch guard.
//! - `link.next`: CAS only (the split-ordered list protocol, see `table`). Tag bit 1 on it
//!   means the node is *logically deleted*; the one thread whose CAS set that bit is the
//!   node's *remover* and owes its departure bookkeeping.
//! - `meta`: the deadline (immutable) and the lifecycle flags below, changed by atomic RMW.
//! - `chain`: the link in at most one intrusive stack at a time: the segment's hand-off
//!   stack while `QUEUED`, then the segment's limbo once retired. Only the thread that owns
//!   that stack membership touches it.
//! - `wheel`: prev/next in a wheel slot; read and written only under the segment's
//!   maintenance lock.
//!
//! ## Lifecycle
//! **A node is freed one epoch grace period after the last of its three holders lets go**:
//! the list, the wheel side and the remover. Each lets go by setting one flag with an RMW
//! (`Table::settle`), and whichever sets the last of the three retires the node to its
//! segment's reclamation (`reclaim`):
//! - `UNLINKED`: set by the thread that physically unlinks the node from the list (Michael's
//!   CAS; any helper may do it).
//! - `DETACHED`: set by the maintenance-lock holder once the node is out of the wheel and
//!   off the hand-off stack for good; by the remover directly for a node with no deadline
//!   (it never meets the wheel); by the expirer for a node the wheel itself fired.
//! - `RELEASED`: set by the node's *remover* (the one thread whose marking CAS deleted it)
//!   once it is done with the node: after the eviction listener has returned, or at once
//!   when there is no listener. Until then the remover holds the node as a [`Held`], which
//!   keeps it alive without any epoch pin, so the listener can borrow its key and value
//!   while nothing else in the process is held back.
//!
//! The other flags: `QUEUED` (on the hand-off stack), `REMOVED` (logically deleted, set by
//! the remover in the RMW that may also set `QUEUED`), `SCHEDULED` (linked in a wheel slot,
//! set and cleared under the maintenance lock).

use crate::clock::{DEADLINE_BITS, NEVER};
use crate::policy::RemovalCause;
use crate::sync::{AtomicPtr, AtomicU64, Ordering, UnsafeCell};
use crossbeam_epoch::{Atomic, Shared};
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

/// The split-order key of an entry whose hash is `hash`: bit-reversed, low bit set.
#[inline]
pub(crate) fn regular_key(hash: u64) -> u64 {
    hash.reverse_bits() | 1
}

/// The split-order key of bucket `index`'s sentinel: bit-reversed, low bit clear.
#[inline]
pub(crate) fn sentinel_key(index: usize) -> u64 {
    (index as u64).reverse_bits()
}

/// The list's common prefix; a sentinel is exactly this.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Link {
    /// Sort key: bit-reversed hash (entries) or bucket index (sentinels).
    pub(crate) so_key: u64,
    /// Successor; tag 1 means this link is logically deleted.
    pub(crate) next: Atomic<Link>,
}

impl Link {
    pub(crate) fn sentinel(index: usize) -> Self {
        Self {
            so_key: sentinel_key(index),
            next: Atomic::null(),
        }
    }

    #[inline]
    pub(crate) fn is_entry(&self) -> bool {
        self.so_key & 1 == 1
    }
}

/// The wheel's intrusive doubly linked list pointers.
#[derive(Debug)]
pub(crate) struct WheelLinks<K, V> {
    pub(crate) prev: *mut Node<K, V>,
    pub(crate) next: *mut Node<K, V>,
}

/// An entry: a [`Link`] followed by its bookkeeping, key and value.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Node<K, V> {
    /// Must stay the first field: the list stores `*const Link` to entries.
    pub(crate) link: Link,
    /// Deadline in ticks (low 56 bits) and lifecycle flags (top 8).
    pub(crate) meta: AtomicU64,
    /// Hand-off stack or limbo link (see the ground rules).
    pub(crate) chain: AtomicPtr<Node<K, V>>,
    /// Wheel slot links, guarded by the segment's maintenance lock.
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
            link: Link {
                so_key: regular_key(hash),
                next: Atomic::null(),
            },
            meta: AtomicU64::new(meta),
            chain: AtomicPtr::new(ptr::null_mut()),
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

    /// Casts an entry's link back to its node, for reading (never for freeing: see
    /// [`NodePtr`]).
    ///
    /// # Safety
    /// `link` must be the `link` field of a `Node<K, V>` (so `link.is_entry()`, and every
    /// entry in a table of `K, V` is a `Node<K, V>`); the result borrows for as long as
    /// `link` does.
    #[inline]
    pub(crate) unsafe fn from_link(link: &Link) -> &Self {
        debug_assert!(link.is_entry());
        // SAFETY: `link` is the first field of a `#[repr(C)]` `Node<K, V>` (caller's
        // contract), so the two share an address and the node lives as long as the link.
        unsafe { &*(link as *const Link).cast::<Self>() }
    }

    /// Whether the entry is past its deadline at tick `now`.
    #[inline]
    pub(crate) fn is_expired(&self, now: u64) -> bool {
        let deadline = self.deadline();
        deadline != NEVER && deadline <= now
    }
}

/// A node reached under an epoch guard (`'g`).
///
/// It dereferences to `&Node`, and it keeps the pointer exactly as allocated
/// (`Box::into_raw`) or as loaded from the list, so the hand-off stack, the wheel and the
/// final free use a pointer with the allocation's full provenance — never one rebuilt from
/// a shared reference, which could not be used to free the node (Miri with Tree Borrows
/// rejects that).
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
    /// `link` is a non-null entry link of a table of `K, V`, protected by the guard `'g`
    /// stands for (or otherwise alive for `'g`).
    #[inline]
    pub(crate) unsafe fn from_shared(link: Shared<'g, Link>) -> Self {
        debug_assert!(!link.is_null());
        // SAFETY: caller's contract; the node starts with its link (`#[repr(C)]`).
        let raw = unsafe { NonNull::new_unchecked(link.with_tag(0).as_raw().cast_mut()) };
        Self {
            raw: raw.cast(),
            _guard: PhantomData,
        }
    }

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
