//! An entry of the cache, [`Node`], and the rules of its life.
//!
//! Nodes are heap-allocated (`entry::layout::NodeBox`) and never move: the table's slots
//! point at them, the timing wheel links them intrusively, and retired ones wait in their
//! segment's reclamation queue through the same memory. What a cache's policies allocate
//! in front of a node (an extension, a weight, a timer) and how it is found and freed is
//! `entry::layout`'s; the layout flags in the hash word (`EXT`, `IDLE_IN_META`,
//! `STAMPED`, `WEIGHED`, `TIMED`) say which layout a node has.
//!
//! ## Ground rules for the fields of a `Node`
//! - `hash_lane`, `key`, `value`: written once before the node is published, read-only
//!   afterwards; readable by any thread holding an epoch guard (or a [`Held`]). The first
//!   holds the key's 48-bit table hash, the allocating thread's reclamation lane and the
//!   layout's flags (`EXT`, `IDLE_IN_META`, `STAMPED`, `WEIGHED`, `TIMED`).
//! - `meta`: in its low 55 bits the TTL deadline (immutable; a timer's deadline, which
//!   reads may move, may be later: the entry lapses at the earlier), or, with
//!   `IDLE_IN_META`, the idle stamp (raised by reads with a CAS that changes those bits
//!   alone: see `entry::layout`); then the lifecycle flags below (changed by atomic RMW),
//!   `IN_MAIN` (the eviction queue's mark, changed by RMW under the maintenance lock) and
//!   the policy's 2-bit access counter in the top bits (raised by hits with one CAS while
//!   below 3, lowered by the eviction hand).
//! - a timer's deadline: swapped by reads an expiry policy answers (see `cache::expiry`).
//! - `wheel`: prev/next in a wheel slot while the node is filed there (its `prev` is then
//!   never null, and it is null while the node is in no slot: the wheel's membership
//!   flag), read and written only under the segment's maintenance lock. When the node is in
//!   no wheel slot, `wheel.next` is the node's link in at most one intrusive stack instead
//!   (see `entry::links`): the segment's hand-off stack while it waits to be scheduled (it
//!   is `QUEUED` and not yet filed), then its segment's limbo once retired (the wheel is
//!   done with it). Only the thread that owns that stack membership touches it. A node is
//!   thus 32 bytes plus its key and value.
//!
//! ## Lifecycle
//! **A node is freed one epoch grace period after the last of its three holders lets go**:
//! the table, the wheel side and the remover. Each lets go by setting one flag with an RMW
//! (`Reclaim::settle`), and whichever sets the last of the three retires the node to its
//! segment's reclamation (`reclaim`):
//! - `UNLINKED`: set by the node's *remover*: the one thread whose CAS took it out of its
//!   table slot (a remove, a replacing insert, an expiry, `clear`). No other slot can hold
//!   it then: a migration copies a node only while its old slot is frozen, and clears the
//!   old slot before anyone may remove the node from the new one (see `table`).
//! - `DETACHED`: set by the maintenance-lock holder once the node is out of the wheel and
//!   off the hand-off stack for good; by the remover directly for a node with no deadline
//!   (it never meets the wheel); by the expirer or evicter for a node the maintainer
//!   itself removed, unless a read's re-file request for it is pending (then serving that
//!   request sets it).
//! - `RELEASED`: set by the remover once it is done with the node: after the eviction
//!   listener has returned, or at once when there is no listener. Until then the remover
//!   holds the node as a [`Held`], which keeps it alive without any epoch pin, so the
//!   listener can borrow its key and value while nothing else in the process is held back.
//!
//! The other flags: `QUEUED` (a request for the node is pending: its scheduling request
//! on the hand-off stack, or a removal's or a read's on the cancel ring, see `segment`; a
//! read may leave it set on a removed node, where nothing reads it), `REMOVED` (taken out
//! of the table, set by the remover with `UNLINKED` in the RMW that may also set
//! `QUEUED`). Whether a node is filed in a wheel slot is not a flag: the wheel reads its
//! `wheel.prev` (`Wheel::is_scheduled`). Who may change each flag, and through which named
//! transition: `lifecycle`.

use super::lane;
use crate::clock::{DEADLINE_BITS, NEVER};
use crate::intrusive::Links;
use crate::sync::{AtomicU64, Ordering, UnsafeCell};
use crate::table::HASH_MASK;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

/// A request for the maintenance-lock holder is pending: the node is on the hand-off stack,
/// the backlog or the cancel ring (on one at a time).
pub(crate) const QUEUED: u64 = 1 << DEADLINE_BITS;
/// Logically deleted (set by the remover, in the same RMW that may set `QUEUED`).
pub(crate) const REMOVED: u64 = 1 << (DEADLINE_BITS + 1);
/// A bit no code sets. (It was the wheel's `SCHEDULED` flag; the wheel now tells whether
/// a node is filed by the node's `wheel.prev`, which saves a locked RMW on `meta` each
/// time a node is filed and each time it leaves: `Wheel::is_scheduled`.) Tests use it to
/// show that membership next to the flags.
#[cfg(test)]
pub(crate) const SPARE: u64 = 1 << (DEADLINE_BITS + 2);
/// Out of every table slot (set once, by the remover).
pub(crate) const UNLINKED: u64 = 1 << (DEADLINE_BITS + 3);
/// The wheel side will never touch the node again.
pub(crate) const DETACHED: u64 = 1 << (DEADLINE_BITS + 4);
/// The remover is done with the node (its listener, if any, has returned).
pub(crate) const RELEASED: u64 = 1 << (DEADLINE_BITS + 5);
/// Where a node's hash word keeps its lane (above the 48 bits of the hash).
const LANE_SHIFT: u32 = 56;
const LANE_BITS: u64 = 0xF;
/// In the hash word (immutable): the node was allocated with an extension before it
/// (see `entry::layout`).
pub(crate) const EXT: u64 = 1 << 52;
/// In the hash word (immutable): `meta`'s deadline bits hold the entry's idle stamp (the
/// tick of its last read or write) instead of a TTL deadline, which it does not have. Set
/// on the nodes of a cache with a time-to-idle that have no TTL deadline.
pub(crate) const IDLE_IN_META: u64 = 1 << 53;
/// In the hash word (immutable): the node's allocation has an idle stamp in front of its
/// extension (a node with a TTL deadline in a cache with a time-to-idle; see
/// `entry::layout`).
pub(crate) const STAMPED: u64 = 1 << 54;
/// In the hash word (immutable): the node's allocation has a weight in front of its
/// extension (see `entry::layout`).
pub(crate) const WEIGHED: u64 = 1 << 62;
/// In the hash word (immutable): the node's allocation has a timer in front of its
/// extension (see `entry::layout`).
pub(crate) const TIMED: u64 = 1 << 63;
/// The hash word's layout flags.
const LAYOUT_FLAGS: u64 = EXT | IDLE_IN_META | STAMPED | WEIGHED | TIMED;
const _: () = assert!(
    HASH_MASK >> LANE_SHIFT == 0
        && lane::LANES as u64 <= LANE_BITS + 1
        && (LANE_BITS << LANE_SHIFT) & LAYOUT_FLAGS == 0
        && HASH_MASK & LAYOUT_FLAGS == 0
        && (EXT | IDLE_IN_META | STAMPED).count_ones() == 3
);
/// The three holds on a node (see the lifecycle above): the last one set retires it.
pub(crate) const HOLDS: u64 = UNLINKED | DETACHED | RELEASED;
/// The node is in its bounded segment's main eviction queue rather than the small one
/// (meaningful only while it is in a queue: see `evict::deque`). Set and cleared by the
/// maintenance-lock holder alone, with an RMW that carries the other bits along.
pub(crate) const IN_MAIN: u64 = 1 << (DEADLINE_BITS + 6);
/// The policy's 2-bit access counter (top bits): raised by hits while below [`FREQ_MAX`],
/// lowered by the eviction hand (see `evict`).
pub(crate) const FREQ_SHIFT: u32 = DEADLINE_BITS + 7;
pub(crate) const FREQ_ONE: u64 = 1 << FREQ_SHIFT;
pub(crate) const FREQ_MAX: u64 = 3;
const _: () = assert!(FREQ_SHIFT + 2 == 64);

/// A node's links in one of the intrusive structures (see `entry::links`).
pub(crate) type NodeLinks<K, V> = Links<Node<K, V>>;

/// An entry: its hash, bookkeeping, key and value.
#[derive(Debug)]
pub(crate) struct Node<K, V> {
    /// The key's hash (its low 48 bits, [`HASH_MASK`]: where its probe starts, and its slot
    /// tag, with no user code), the lane of the thread that allocated it in bits 56..59
    /// (see `entry::reclaim`), and the layout flags ([`EXT`], [`IDLE_IN_META`],
    /// [`STAMPED`], [`WEIGHED`], [`TIMED`]). Read through [`Node::hash`], [`Node::lane`],
    /// [`Node::prefixes`], [`Node::is_extended`] and [`Node::idle_in_meta`].
    hash_lane: u64,
    /// The TTL deadline in ticks, or with [`IDLE_IN_META`] the idle stamp (low 55 bits),
    /// then the lifecycle flags, [`IN_MAIN`] and the access count (top 9: see the ground
    /// rules above).
    pub(crate) meta: AtomicU64,
    /// Wheel slot links, guarded by the segment's maintenance lock; `next` doubles as a
    /// stack link while the node is in no slot (see the ground rules).
    pub(crate) wheel: UnsafeCell<NodeLinks<K, V>>,
    pub(crate) key: K,
    pub(crate) value: V,
}

impl<K, V> Node<K, V> {
    /// A node not yet linked. One with a deadline starts `QUEUED`: the inserter owes the
    /// wheel a scheduling request, pushed right after linking.
    pub(crate) fn new(hash: u64, key: K, value: V, deadline: u64) -> Self {
        Self::with_flags(hash, key, value, deadline, deadline != NEVER, 0)
    }

    /// A bare node whose deadline bits hold the idle stamp `tick` ([`IDLE_IN_META`]): a
    /// node with no TTL deadline, no timer and no queue links (an unbounded cache with a
    /// time-to-idle). It starts `QUEUED`: the wheel files it at its idle deadline.
    pub(crate) fn idle(hash: u64, key: K, value: V, tick: u64) -> Self {
        Self::with_flags(hash, key, value, tick, true, IDLE_IN_META)
    }

    /// A node to be allocated after an extension (and the prefixes its `layout` flags
    /// name: [`STAMPED`], [`WEIGHED`], [`TIMED`]); it starts `QUEUED`: the inserter owes the
    /// segment's maintainer a request, pushed right after linking (see `entry::layout`).
    /// With [`IDLE_IN_META`] in `layout`, `low` is the idle stamp (the node has no TTL
    /// deadline); otherwise it is the TTL deadline.
    ///
    /// # Safety
    /// 1. The node is placed in the allocation its flags name, as `entry::layout`'s
    ///    `NodeBox::new` does, and in no other: whoever reaches it steps back from it to
    ///    the extension and prefixes its flags promise.
    pub(super) unsafe fn extended(hash: u64, key: K, value: V, low: u64, layout: u64) -> Self {
        debug_assert_eq!(layout & !(IDLE_IN_META | STAMPED | WEIGHED | TIMED), 0);
        debug_assert!(layout & (IDLE_IN_META | STAMPED) != IDLE_IN_META | STAMPED);
        Self::with_flags(hash, key, value, low, true, layout | EXT)
    }

    /// A node not yet linked; `queued` when the inserter will push it on the hand-off.
    /// Keeps `hash`'s low 48 bits ([`HASH_MASK`]: all a table hash has) and the layout
    /// flags `layout`; the node's lane is the calling thread's.
    fn with_flags(hash: u64, key: K, value: V, low: u64, queued: bool, layout: u64) -> Self {
        debug_assert!(low <= NEVER);
        debug_assert_eq!(layout & !LAYOUT_FLAGS, 0);
        Self {
            hash_lane: (hash & HASH_MASK) | ((lane::home_lane() as u64) << LANE_SHIFT) | layout,
            meta: AtomicU64::new(low | if queued { QUEUED } else { 0 }),
            wheel: UnsafeCell::new(Links::new()),
            key,
            value,
        }
    }

    /// The key's table hash (48 bits: see [`HASH_MASK`]).
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash_lane & HASH_MASK
    }

    /// The lane of the thread that allocated the node (below `lane::LANES`): its
    /// reclamation frees it on a thread of that lane when it can (see `entry::reclaim`).
    #[inline]
    pub(crate) fn lane(&self) -> usize {
        ((self.hash_lane >> LANE_SHIFT) & LANE_BITS) as usize % lane::LANES
    }

    /// Which prefixes the node's allocation has ([`STAMPED`], [`WEIGHED`], [`TIMED`];
    /// immutable).
    #[inline]
    pub(crate) fn prefixes(&self) -> u64 {
        self.hash_lane & (STAMPED | WEIGHED | TIMED)
    }

    /// Whether the node was allocated with an extension (immutable).
    #[inline]
    pub(crate) fn is_extended(&self) -> bool {
        self.hash_lane & EXT != 0
    }

    /// Whether `meta`'s deadline bits hold the idle stamp ([`IDLE_IN_META`]; immutable).
    #[inline]
    pub(crate) fn idle_in_meta(&self) -> bool {
        self.hash_lane & IDLE_IN_META != 0
    }

    /// The TTL deadline tick; [`NEVER`] for none. Immutable after publication, so
    /// `Relaxed`: the node's contents were published by the Release CAS that linked it (a
    /// publish in `table::insert`, or `copy_node`'s) and acquired by the load that found
    /// it (the Acquire `Group::slot`, or a stack's Acquire swap). A node whose deadline
    /// bits hold its idle stamp has none.
    #[inline]
    pub(crate) fn deadline(&self) -> u64 {
        if self.idle_in_meta() {
            return NEVER;
        }
        self.meta.load(Ordering::Relaxed) & NEVER
    }

    /// The idle stamp kept in `meta` (for a node with [`IDLE_IN_META`]). Relaxed: the stamp
    /// is a hint that pairs with nothing; it only ever moves later, and the maintainer
    /// rereads it when the wheel deadline it filed comes.
    #[inline]
    pub(super) fn meta_idle(&self) -> u64 {
        debug_assert!(self.idle_in_meta());
        self.meta.load(Ordering::Relaxed) & NEVER
    }

    /// Raises the idle stamp kept in `meta` to `tick` unless it is there already (for a
    /// node with [`IDLE_IN_META`]).
    #[inline]
    pub(super) fn stamp_meta(&self, tick: u64) {
        debug_assert!(self.idle_in_meta() && tick <= NEVER);
        // Relaxed: as in `meta_idle`. A CAS on the whole word that changes only the
        // deadline bits, so it never undoes a flag or counter change made meanwhile
        // (those are RMWs too: a change landing between the load and the CAS fails it,
        // and the loop retries on the new word).
        let _ = self
            .meta
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                (m & NEVER < tick).then_some((m & !NEVER) | tick)
            });
    }

    /// The policy's access counter (0..=[`FREQ_MAX`]). Relaxed: a hint of recency that
    /// orders nothing and pairs with nothing.
    #[inline]
    pub(crate) fn freq(&self) -> u64 {
        self.meta.load(Ordering::Relaxed) >> FREQ_SHIFT
    }

    /// A hit: raises the access counter unless it is at its cap. A hot entry's hit is one
    /// load; below the cap, one CAS attempt (a lost race, with another hit or with any
    /// other change of the word, an idle stamp in `meta` included, loses one count: it is
    /// a hint).
    /// Relaxed: the counter orders nothing (the maintainer reads it under its lock as a
    /// hint of recency).
    #[inline]
    pub(crate) fn touch(&self) {
        let m = self.meta.load(Ordering::Relaxed);
        if m >> FREQ_SHIFT < FREQ_MAX {
            let _ =
                self.meta
                    .compare_exchange(m, m + FREQ_ONE, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Lowers the access counter by one if it is above zero; returns what it was. For the
    /// maintenance-lock holder (the only one who lowers it).
    pub(crate) fn age(&self) -> u64 {
        // Relaxed: the counter orders nothing (a hint of recency; pairs with nothing, and
        // the flag bits in the word are only carried along). The CAS loop only ever lowers
        // a counter above zero, so a racing `touch` cannot make it wrap.
        let mut m = self.meta.load(Ordering::Relaxed);
        loop {
            let f = m >> FREQ_SHIFT;
            if f == 0 {
                return 0;
            }
            match self.meta.compare_exchange_weak(
                m,
                m - FREQ_ONE,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return f,
                Err(now) => m = now,
            }
        }
    }

    /// Clears the access counter (an entry promoted to the main queue starts afresh).
    pub(crate) fn clear_freq(&self) {
        // Relaxed: the counter orders nothing (a hint, read by the maintainer under its
        // lock); the flag bits in the word are untouched.
        self.meta
            .fetch_and(!(FREQ_MAX << FREQ_SHIFT), Ordering::Relaxed);
    }

    /// Whether the node is marked as in the main queue rather than the small one ([`IN_MAIN`]):
    /// for the maintenance-lock holder, the only one who changes the mark.
    #[inline]
    pub(crate) fn in_main(&self) -> bool {
        // Relaxed: only the lock holder writes the bit, and the lock's release and acquire
        // order each change before this read; other writers of the word (hits' counter
        // CAS, lifecycle RMWs, idle stamps) carry it along.
        self.meta.load(Ordering::Relaxed) & IN_MAIN != 0
    }

    /// Marks the node as in the main queue (`main`) or not: for the maintenance-lock holder.
    #[inline]
    pub(crate) fn set_in_main(&self, main: bool) {
        if self.in_main() == main {
            return;
        }
        // Relaxed: as in `in_main`. An RMW, so a concurrent RMW or CAS of the word by
        // another thread is neither lost nor undoes this change.
        if main {
            self.meta.fetch_or(IN_MAIN, Ordering::Relaxed);
        } else {
            self.meta.fetch_and(!IN_MAIN, Ordering::Relaxed);
        }
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
    /// 1. `raw` is not null and points to a live node.
    /// 2. The node stays alive for `'g`.
    /// 3. `raw` carries its whole allocation's provenance: it is the pointer
    ///    `NodeBox::into_raw` gave, or one made from it with `map_addr` (a slot word, a
    ///    stack or wheel link), never one rebuilt from a reference.
    #[inline]
    pub(crate) unsafe fn from_raw(raw: *mut Node<K, V>) -> Self {
        Self {
            // SAFETY: 1: `raw` is not null.
            raw: unsafe { NonNull::new_unchecked(raw) },
            _guard: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn as_non_null(self) -> NonNull<Node<K, V>> {
        self.raw
    }

    #[inline]
    pub(crate) fn as_ptr(self) -> *mut Node<K, V> {
        self.raw.as_ptr()
    }

    /// The node, for as long as the guard lives.
    #[inline]
    pub(crate) fn get(self) -> &'g Node<K, V> {
        // SAFETY: 1. `from_raw`'s 1 and 2: the node is alive for `'g`; 2. only shared
        // references to a node are ever made (its mutable state is atomic or in cells).
        unsafe { self.raw.as_ref() }
    }
}

impl<K, V> Deref for NodePtr<'_, K, V> {
    type Target = Node<K, V>;

    #[inline]
    fn deref(&self) -> &Node<K, V> {
        // SAFETY: 1. `from_raw`'s 1 and 2: the node is alive for `'g`, which outlives
        // `&self`; 2. only shared references to a node are ever made.
        unsafe { self.raw.as_ref() }
    }
}
