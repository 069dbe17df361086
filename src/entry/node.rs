//! An entry of the cache, [`Node`], and the rules of its life.
//!
//! Nodes are heap-allocated ([`NodeBox`]) and never move: the table's slots point at them,
//! the timing wheel links them intrusively, and retired ones wait in their segment's
//! reclamation queue through the same memory. A cache with a capacity bound or a
//! time-to-idle allocates each node with an [`Ext`] in front of it (idle tick, weight,
//! eviction-queue links); `EXT` in `meta` says so, and [`free`] picks the layout. It is
//! reached only through pointers that carry the whole allocation's provenance
//! ([`NodePtr::ext`]), never from a `&Node`. A cache with an `Expiry` policy puts a
//! [`Timer`] in front of that (the policy's deadline, which reads may move, and the write's
//! time); the extension's `timed` says so. That allocation nests the plain extended one,
//! so the extension is found the same way in either.
//!
//! ## Ground rules for the fields of a `Node`
//! - `hash_lane`, `key`, `value`: written once before the node is published, read-only
//!   afterwards; readable by any thread holding an epoch guard (or a [`Held`]). The first
//!   holds the key's 48-bit table hash and the allocating thread's reclamation lane.
//! - `meta`: the TTL deadline (immutable, low 55 bits; a [`Timer`]'s deadline, which reads
//!   may move, is never later), the lifecycle flags below (changed by atomic RMW), `EXT`
//!   (immutable) and the policy's 2-bit access counter in the top bits (raised by hits
//!   with one CAS while below 3, lowered by the eviction hand).
//! - `Timer::deadline`: swapped by reads an expiry policy answers (see `cache::expiry`).
//! - `wheel`: prev/next in a wheel slot while `SCHEDULED`, read and written only under the
//!   segment's maintenance lock. When the node is in no wheel slot, `wheel.next` is the
//!   node's link in at most one intrusive stack instead (see `entry::links`): the segment's
//!   hand-off stack while it waits to be scheduled (it is `QUEUED` and not yet
//!   `SCHEDULED`), then its segment's limbo once retired (the wheel is done with it). Only
//!   the thread that owns that stack membership touches it. A node is thus 32 bytes plus
//!   its key and value.
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
//! `QUEUED`), `SCHEDULED` (linked in a wheel slot: set and cleared only by the wheel
//! itself, `Wheel::schedule`, `cancel` and `advance`'s hand-out, under the maintenance
//! lock). Who may change each flag, and through which named transition: `lifecycle`.

use super::lane;
use crate::clock::{DEADLINE_BITS, NEVER};
use crate::intrusive::Links;
use crate::sync::{AtomicU64, Ordering, UnsafeCell};
use crate::table::HASH_MASK;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};

/// A request for the maintenance-lock holder is pending: the node is on the hand-off stack,
/// the backlog or the cancel ring (on one at a time).
pub(crate) const QUEUED: u64 = 1 << DEADLINE_BITS;
/// Logically deleted (set by the remover, in the same RMW that may set `QUEUED`).
pub(crate) const REMOVED: u64 = 1 << (DEADLINE_BITS + 1);
/// Linked into a wheel slot (set and cleared only by the wheel, under the maintenance lock).
pub(crate) const SCHEDULED: u64 = 1 << (DEADLINE_BITS + 2);
/// Out of every table slot (set once, by the remover).
pub(crate) const UNLINKED: u64 = 1 << (DEADLINE_BITS + 3);
/// The wheel side will never touch the node again.
pub(crate) const DETACHED: u64 = 1 << (DEADLINE_BITS + 4);
/// The remover is done with the node (its listener, if any, has returned).
pub(crate) const RELEASED: u64 = 1 << (DEADLINE_BITS + 5);
/// Where a node's hash word keeps its lane (above the 48 bits of the hash).
const LANE_SHIFT: u32 = 56;
const _: () = assert!(HASH_MASK >> LANE_SHIFT == 0 && lane::LANES <= 1 << (64 - LANE_SHIFT));
/// The three holds on a node (see the lifecycle above): the last one set retires it.
pub(crate) const HOLDS: u64 = UNLINKED | DETACHED | RELEASED;
/// The node was allocated with an [`Ext`] before it (immutable).
pub(crate) const EXT: u64 = 1 << (DEADLINE_BITS + 6);
/// The policy's 2-bit access counter (top bits): raised by hits while below [`FREQ_MAX`],
/// lowered by the eviction hand (see `evict`).
pub(crate) const FREQ_SHIFT: u32 = DEADLINE_BITS + 7;
pub(crate) const FREQ_ONE: u64 = 1 << FREQ_SHIFT;
pub(crate) const FREQ_MAX: u64 = 3;
const _: () = assert!(FREQ_SHIFT + 2 == 64);

/// Policy state of a node in a cache with a capacity bound, a time-to-idle or an expiry
/// policy, allocated in front of the node (an unbounded cache with none of these allocates
/// none and pays nothing for it).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Ext<K, V> {
    /// The tick of the last read or write (time-to-idle): a Relaxed store by readers, only
    /// when it differs, so a hot entry is written at most once per tick.
    pub(crate) idle: AtomicU64,
    /// The entry's weight (immutable; 1 without a weigher).
    pub(crate) weight: u32,
    /// Which eviction queue holds the node (`evict::deque::NONE`, `SMALL` or `MAIN`),
    /// beside `weight` so the two share a word: maintenance lock only.
    pub(crate) queue: UnsafeCell<u8>,
    /// A [`Timer`] precedes the extension (immutable; in the word's padding).
    timed: bool,
    /// The node's links in that queue: maintenance lock only.
    pub(crate) links: UnsafeCell<NodeLinks<K, V>>,
}

/// A node's links in one of the intrusive structures (see `entry::links`).
pub(crate) type NodeLinks<K, V> = Links<Node<K, V>>;

#[cfg(not(all(wheelcache_loom, feature = "loom")))]
const _: () = assert!(std::mem::size_of::<Ext<u64, u64>>() == 32);

/// The expiry policy's state of a node (caches with an `Expiry` only; see `cache::expiry`).
#[derive(Debug)]
pub(crate) struct Timer {
    /// The policy's deadline in ticks, never later than the TTL deadline in `meta`;
    /// [`NEVER`] for none. Moved by reads the policy answers (a swap, so each mover knows
    /// whether it moved it earlier: then it asks the maintainer to re-file the node).
    /// Relaxed: the re-file request's RMW on `meta` publishes a move to the maintainer,
    /// and readers treat it as the entry's deadline at the moment they load it.
    pub(crate) deadline: AtomicU64,
    /// When the entry was written, in the clock's nanoseconds (immutable): the
    /// `last_modified_at` the policy is told.
    pub(crate) written: u64,
}

/// What an extended node starts with: `timer` is the policy's deadline and the write's
/// time, in a cache with an expiry policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExtInit {
    pub(crate) idle: u64,
    pub(crate) weight: u32,
    pub(crate) timer: Option<(u64, u64)>,
}

/// The allocation of an extended node: the extension, then the node.
#[repr(C)]
struct Extended<K, V> {
    ext: Ext<K, V>,
    node: Node<K, V>,
}

/// The allocation of a node with a timer: the timer, then an [`Extended`] (nested, so the
/// extension is as far before the node as in a plain `Extended`, whatever the key's and
/// value's alignment).
#[repr(C)]
struct Timed<K, V> {
    timer: Timer,
    extended: Extended<K, V>,
}

/// How far before the node its extension starts: the same in both layouts (see [`Timed`]).
const fn ext_offset<K, V>() -> usize {
    std::mem::offset_of!(Extended<K, V>, node)
}

/// How far before the node a [`Timed`] allocation starts.
const fn timed_offset<K, V>() -> usize {
    std::mem::offset_of!(Timed<K, V>, extended) + ext_offset::<K, V>()
}

/// Which allocation a node lives in (from `EXT` and the extension's `timed`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Plain,
    Extended,
    Timed,
}

/// # Safety
/// 1. `node` points to a live node, which stays alive for the call.
/// 2. `node` carries its whole allocation's provenance (see [`ext_of`]).
unsafe fn layout_of<K, V>(node: *mut Node<K, V>) -> Layout {
    // SAFETY: `ext_of`'s 1 and 2 are our 1 and 2; its 3 (alive for `'a`): the extension
    // is used only within this call, while our 1 keeps the node alive.
    match unsafe { ext_of(node) } {
        None => Layout::Plain,
        Some(ext) if ext.timed => Layout::Timed,
        Some(_) => Layout::Extended,
    }
}

/// An entry: its hash, bookkeeping, key and value.
#[derive(Debug)]
pub(crate) struct Node<K, V> {
    /// The key's hash (its low 48 bits, [`HASH_MASK`]: where its probe starts, and its slot
    /// tag, with no user code), and the lane of the thread that allocated it in bits
    /// 56..59 (see `entry::reclaim`). Read through [`Node::hash`] and [`Node::lane`].
    hash_lane: u64,
    /// Deadline in ticks (low 55 bits), then the lifecycle flags and the access count (top
    /// 9: see the table above).
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

    /// A node not yet linked; `queued` when the inserter will push it on the hand-off.
    /// Keeps `hash`'s low 48 bits ([`HASH_MASK`]: all a table hash has); the node's lane is
    /// the calling thread's.
    fn with_flags(hash: u64, key: K, value: V, deadline: u64, queued: bool, flags: u64) -> Self {
        debug_assert!(deadline <= NEVER);
        let meta = deadline | flags | if queued { QUEUED } else { 0 };
        Self {
            hash_lane: (hash & HASH_MASK) | ((lane::home_lane() as u64) << LANE_SHIFT),
            meta: AtomicU64::new(meta),
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
        (self.hash_lane >> LANE_SHIFT) as usize % lane::LANES
    }

    /// The deadline tick; [`NEVER`] for none. Immutable after publication, so `Relaxed`:
    /// the node's contents were published by the Release CAS that linked it (a publish in
    /// `table::insert`, or `copy_node`'s) and acquired by the load that found it (the
    /// Acquire `Group::slot`, or a stack's Acquire swap).
    #[inline]
    pub(crate) fn deadline(&self) -> u64 {
        self.meta.load(Ordering::Relaxed) & NEVER
    }

    /// The policy's access counter (0..=[`FREQ_MAX`]). Relaxed: a hint of recency that
    /// orders nothing and pairs with nothing.
    #[inline]
    pub(crate) fn freq(&self) -> u64 {
        self.meta.load(Ordering::Relaxed) >> FREQ_SHIFT
    }

    /// A hit: raises the access counter unless it is at its cap. A hot entry's hit is one
    /// load; below the cap, one CAS attempt (a lost race loses one count: it is a hint).
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

    /// The node's extension, if it was allocated with one.
    #[inline]
    pub(crate) fn ext(self) -> Option<&'g Ext<K, V>> {
        // SAFETY: `ext_of`'s 1 (alive) is `from_raw`'s 1, its 2 (provenance) `from_raw`'s
        // 3, its 3 (alive for `'g`) `from_raw`'s 2.
        unsafe { ext_of(self.raw.as_ptr()) }
    }

    /// The node's timer, if it was allocated with one (see [`Timer`]).
    #[inline]
    pub(crate) fn timer(self) -> Option<&'g Timer> {
        if !self.ext()?.timed {
            return None;
        }
        // SAFETY: 1. `timed` is set only on extensions `NodeBox::new` placed in a `Timed`,
        // whose node is `timed_offset` in; 2. the pointer carries the whole allocation's
        // provenance (`from_raw`'s 3), so stepping back stays in bounds of it.
        let whole =
            unsafe { self.raw.as_ptr().byte_sub(timed_offset::<K, V>()) }.cast::<Timed<K, V>>();
        // SAFETY: 1. `whole` is the start of a live `Timed` (the step above), whose timer
        // `NodeBox::new` initialised; 2. the timer lives as long as its node, alive for
        // `'g` (`from_raw`'s 2); 3. only shared references to it are made (`deadline` is
        // atomic, `written` immutable).
        Some(unsafe { &(*whole).timer })
    }

    /// The tick the entry expires at by its TTL or expiry policy ([`NEVER`] for neither):
    /// the timer's deadline if it has one (never later than the TTL's), else the TTL's.
    #[inline]
    pub(crate) fn expiry_deadline(self) -> u64 {
        match self.timer() {
            // Relaxed: pairs with nothing; a reader takes the deadline as of this load, and
            // the maintainer learns of a move through the re-file request's RMW on `meta`.
            Some(t) => t.deadline.load(Ordering::Relaxed),
            None => self.deadline(),
        }
    }
}

/// The extension of the node at `node`, if it has one.
///
/// # Safety
/// 1. `node` points to a live node.
/// 2. `node` carries the provenance of its whole allocation (as allocated by
///    [`NodeBox::new`], or loaded from a slot).
/// 3. The node stays alive for `'a`.
#[inline]
pub(crate) unsafe fn ext_of<'a, K, V>(node: *mut Node<K, V>) -> Option<&'a Ext<K, V>> {
    // SAFETY: 1: the node is alive, so its `meta` may be read. Relaxed: EXT is immutable,
    // set before the node was published (the Release CAS that linked it, which the load
    // that found the node acquired).
    let meta = unsafe { (*node).meta.load(Ordering::Relaxed) };
    if meta & EXT == 0 {
        return None;
    }
    // SAFETY: 1. EXT is set only on nodes that `NodeBox::new` placed in an `Extended` or
    // a `Timed`, both with the extension `ext_offset` before the node; 2. the pointer
    // carries the whole allocation's provenance (our 2), so stepping back to the
    // extension stays in bounds of it.
    let ext = unsafe { node.byte_sub(ext_offset::<K, V>()) }.cast::<Ext<K, V>>();
    // SAFETY: 1. `ext` is the live extension `NodeBox::new` initialised (the step above);
    // 2. it lives as long as its node, so for `'a` (our 3); 3. only shared references to
    // an `Ext` are made (its mutable fields are atomic or in cells).
    Some(unsafe { &*ext })
}

/// An owned node that is not (or no longer) in any table: allocated with or without an
/// extension, freed (dropping its key and value) if dropped.
#[derive(Debug)]
pub(crate) struct NodeBox<K, V>(NonNull<Node<K, V>>);

// SAFETY: 1. a `NodeBox` owns its node as a `Box` would (no other handle reaches it); 2.
// a cache only stores `K, V: Send`.
unsafe impl<K: Send, V: Send> Send for NodeBox<K, V> {}

impl<K, V> NodeBox<K, V> {
    /// Allocates a node (see [`Node::new`]), with an extension when `ext` is given. It starts
    /// `QUEUED` when it has a deadline or an extension (`queued`): the inserter owes the
    /// segment's maintainer a request, pushed right after linking.
    pub(crate) fn new(hash: u64, key: K, value: V, deadline: u64, ext: Option<ExtInit>) -> Self {
        let raw = match ext {
            None => Box::into_raw(Box::new(Node::new(hash, key, value, deadline))),
            Some(init) => {
                let ext = Ext {
                    idle: AtomicU64::new(init.idle),
                    weight: init.weight,
                    queue: UnsafeCell::new(0),
                    timed: init.timer.is_some(),
                    links: UnsafeCell::new(Links::new()),
                };
                let node = Node::with_flags(hash, key, value, deadline, true, EXT);
                match init.timer {
                    None => {
                        let whole = Box::into_raw(Box::new(Extended { ext, node }));
                        // SAFETY: `whole` is a valid, freshly allocated pointer; the field
                        // pointer keeps the allocation's provenance (no reference is made).
                        unsafe { ptr::addr_of_mut!((*whole).node) }
                    }
                    Some((policy, written)) => {
                        let timer = Timer {
                            deadline: AtomicU64::new(policy.min(deadline)),
                            written,
                        };
                        let extended = Extended { ext, node };
                        let whole = Box::into_raw(Box::new(Timed { timer, extended }));
                        // SAFETY: `whole` is a valid, freshly allocated pointer; the field
                        // pointer keeps the allocation's provenance (no reference is made).
                        unsafe { ptr::addr_of_mut!((*whole).extended.node) }
                    }
                }
            }
        };
        // SAFETY: from `Box::into_raw`, not null.
        Self(unsafe { NonNull::new_unchecked(raw) })
    }

    /// Gives up ownership (the table publishes the pointer).
    pub(crate) fn into_raw(self) -> *mut Node<K, V> {
        let raw = self.0.as_ptr();
        std::mem::forget(self);
        raw
    }

    /// The key and value back, the allocation freed (for a write that lost its race and
    /// tries again with the same key).
    pub(crate) fn into_parts(self) -> (K, V) {
        let raw = self.into_raw();
        use std::mem::MaybeUninit;
        // SAFETY: 1. we owned the node (from `NodeBox::new`, with its allocation's
        // provenance), so `key` and `value` are initialised and read out once here; 2. the
        // memory is then freed as the `MaybeUninit` of the type it was allocated as (its
        // layout read first), which drops nothing (the other fields have no `Drop`).
        unsafe {
            let layout = layout_of(raw);
            let key = ptr::read(ptr::addr_of!((*raw).key));
            let value = ptr::read(ptr::addr_of!((*raw).value));
            match layout {
                Layout::Plain => drop(Box::from_raw(raw.cast::<MaybeUninit<Node<K, V>>>())),
                Layout::Extended => drop(Box::from_raw(
                    raw.byte_sub(ext_offset::<K, V>())
                        .cast::<MaybeUninit<Extended<K, V>>>(),
                )),
                Layout::Timed => drop(Box::from_raw(
                    raw.byte_sub(timed_offset::<K, V>())
                        .cast::<MaybeUninit<Timed<K, V>>>(),
                )),
            }
            (key, value)
        }
    }

    /// Takes ownership back.
    ///
    /// # Safety
    /// 1. `raw` came from [`into_raw`](Self::into_raw) (so it is not null, and is a
    ///    `NodeBox::new` allocation with its provenance).
    /// 2. Nobody else owns or reaches the node: the `NodeBox` will free it.
    pub(crate) unsafe fn from_raw(raw: *mut Node<K, V>) -> Self {
        // SAFETY: 1: not null.
        Self(unsafe { NonNull::new_unchecked(raw) })
    }
}

impl<K, V> Deref for NodeBox<K, V> {
    type Target = Node<K, V>;

    fn deref(&self) -> &Node<K, V> {
        // SAFETY: 1. we own the node (`new`, or `from_raw`'s 2), alive until we drop; 2.
        // only shared references to it are made while we hold it.
        unsafe { self.0.as_ref() }
    }
}

impl<K, V> Drop for NodeBox<K, V> {
    fn drop(&mut self) {
        // SAFETY: `free`'s 1: allocated by `new` (or `from_raw`'s 1), with its provenance;
        // its 2: we own it (nobody else reaches it), and `drop` runs once.
        unsafe { free(self.0.as_ptr()) };
    }
}

/// Frees a node allocated by [`NodeBox::new`], dropping its key and value. A panic from
/// their `Drop` propagates, after the memory is given back.
///
/// # Safety
/// 1. `node` came from [`NodeBox::new`] (with its allocation's provenance).
/// 2. Nobody else owns or reaches it, and it is freed once.
pub(crate) unsafe fn free<K, V>(node: *mut Node<K, V>) {
    // SAFETY: `layout_of`'s 1 and 2: by our 1 and 2 the node is alive until the free
    // below, and the pointer has its allocation's provenance.
    match unsafe { layout_of(node) } {
        // SAFETY: 1. a plain node is a `Box<Node>` (our 1 and its layout); 2. ours to free,
        // once (our 2).
        Layout::Plain => drop(unsafe { Box::from_raw(node) }),
        // SAFETY: 1. an extended node lives in an `Extended`, `ext_offset` in (obligation
        // 1 and its layout); 2. obligation 2: we may free it.
        Layout::Extended => drop(unsafe {
            Box::from_raw(node.byte_sub(ext_offset::<K, V>()).cast::<Extended<K, V>>())
        }),
        // SAFETY: 1. a timed node lives in a `Timed`, `timed_offset` in (obligation 1 and
        // its layout); 2. obligation 2: we may free it.
        Layout::Timed => drop(unsafe {
            Box::from_raw(node.byte_sub(timed_offset::<K, V>()).cast::<Timed<K, V>>())
        }),
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
