//! How a node is allocated: what a cache's policies put in front of it, how that is
//! found again, and the owned handle that allocates and frees it ([`NodeBox`]).
//!
//! ## Nine layouts, one allocation each
//! A cache with no bound and no expiry policy allocates a bare [`Node`] and pays for
//! nothing else (a time-to-idle alone adds nothing either to a node with no TTL: its
//! stamp lives in `meta`, below). A bound gives each node an [`Ext`] in front of it (16
//! bytes: the eviction-queue links), and so does an expiry policy to each node whose
//! write it answered (a write that did not ask it, such as `insert_with_ttl`'s, makes a
//! bare node in a cache with only a policy), and a time-to-idle to a node with a TTL
//! (its stamp goes in a prefix, which sits before an extension); `EXT` in the node's
//! hash word says so. In front of the extension go, only where needed (sizes for
//! keys and values aligned to at most 8; a prefix is padded to the allocation's
//! alignment):
//!
//! | prefix | when | bytes |
//! |--------|------|-------|
//! | [`Stamp`] | the cache has a time-to-idle and the node a TTL deadline | 8 |
//! | [`Weight`] | the entry weighs other than 1 (so a cache without a weigher has none) | 8 |
//! | [`Timer`] | the node's write was answered by an expiry policy (see `cache::expiry`) | 16 |
//!
//! and each combination of them ([`WeighedTimer`], and a [`WithStamp`] of the others).
//! `STAMPED`, `WEIGHED` and `TIMED` in the node's hash word say which (immutable, set
//! before the node is published). A prefixed allocation nests the plain extended one
//! ([`Prefixed`] holds an [`Extended`]), so the extension is the same distance before
//! the node in every layout whatever the key's and value's alignment; a prefix is found
//! at its own layout's distance ([`Whole::NODE`]).
//!
//! ## Where the idle stamp lives
//! A time-to-idle needs the tick of each entry's last read or write. A node with no TTL
//! deadline (the common case: a cache with a time-to-idle and no time-to-live) keeps it
//! in `meta`'s deadline bits, which it does not otherwise use (`IDLE_IN_META` in the hash
//! word says so, and its [`Node::deadline`] is then "none"); only a node with both pays
//! for a [`Stamp`] prefix. Readers raise a stamp with an RMW that only ever moves it
//! later; in `meta` that is a CAS loop that changes the deadline bits alone, so it never
//! undoes the lifecycle flags, the access counter or the queue mark, which change by RMW
//! too. The loom model `an_idle_stamp_survives_a_queue_move` (`loom-tests/tests/evict.rs`)
//! races a stamping read with the write whose turn moves the entry between queues, and
//! `an_idle_stamp_in_meta_and_the_other_bits_keep_each_other` races the two on threads.
//! Which queue holds the node is no longer a field at all (`evict::deque`: its links
//! and the `IN_MAIN` bit of `meta`). The extension was 32 bytes (tick, queue id and
//! weight, links), then 24 (tick and queue id packed, the weight a prefix), now 16.
//!
//! ## Provenance
//! What precedes a node is reached only through pointers that carry the whole
//! allocation's provenance ([`NodePtr`], a slot word, a list link), never from a `&Node`:
//! a pointer derived from a reference to the node may not step outside it (Miri with Tree
//! Borrows rejects that), and could not free the allocation either.

mod prefix;

use super::node::{Node, NodeLinks, NodePtr, IDLE_IN_META, STAMPED, TIMED, WEIGHED};
use crate::clock::NEVER;
use crate::intrusive::Links;
use crate::sync::{AtomicU64, Ordering, UnsafeCell};
use prefix::{parts, Parts, Stamp, WeighedTimer, Weight, WithStamp};
pub(crate) use prefix::{weight_of, Timer};
use prefix::{STAMPED_TIMED, STAMPED_WEIGHED, STAMPED_WEIGHED_TIMED, WEIGHED_TIMED};
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr::{self, NonNull};

/// Policy state of a node in a cache with a capacity bound, a time-to-idle or an expiry
/// policy, allocated in front of the node.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Ext<K, V> {
    /// The node's links in the eviction queue that holds it: maintenance lock only.
    pub(crate) links: UnsafeCell<NodeLinks<K, V>>,
}

#[cfg(not(all(wheelcache_loom, feature = "loom")))]
const _: () = assert!(std::mem::size_of::<Ext<u64, u64>>() == 16);

impl<K, V> Ext<K, V> {
    fn new() -> Self {
        Self {
            links: UnsafeCell::new(Links::new()),
        }
    }
}

/// What an extended node starts with: `idle` is the tick of its write in a cache with a
/// time-to-idle; `timer` is the policy's deadline and the write's time, in a cache with
/// an expiry policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExtInit {
    pub(crate) idle: Option<u64>,
    pub(crate) weight: u32,
    pub(crate) timer: Option<(u64, u64)>,
}

/// The allocation of an extended node: the extension, then the node.
#[repr(C)]
struct Extended<K, V> {
    ext: Ext<K, V>,
    node: Node<K, V>,
}

/// The allocation of a node with a prefix `P`: the prefix, then an [`Extended`] (nested,
/// so the extension is as far before the node as in a plain `Extended`).
#[repr(C)]
struct Prefixed<P, K, V> {
    prefix: P,
    extended: Extended<K, V>,
}

/// A type a node is allocated in.
///
/// # Safety
/// `NODE` is the offset of a `Node<K, V>` field in `Self`.
unsafe trait Whole<K, V> {
    const NODE: usize;
}

// SAFETY: a node is at offset 0 of itself.
unsafe impl<K, V> Whole<K, V> for Node<K, V> {
    const NODE: usize = 0;
}

// SAFETY: the offset of the `node` field.
unsafe impl<K, V> Whole<K, V> for Extended<K, V> {
    const NODE: usize = std::mem::offset_of!(Extended<K, V>, node);
}

// SAFETY: the offset of `extended`, plus that of the node within it.
unsafe impl<P, K, V> Whole<K, V> for Prefixed<P, K, V> {
    const NODE: usize = std::mem::offset_of!(Prefixed<P, K, V>, extended) + <Extended<K, V>>::NODE;
}

/// Which allocation a node lives in: a bare node, an extended one, or a prefixed one with
/// the prefixes its flags (`STAMPED`, `WEIGHED`, `TIMED`, never none) name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    Plain,
    Extended,
    Prefixed(u64),
}

/// # Safety
/// `node` points to a live node.
#[inline]
unsafe fn layout_of<K, V>(node: *mut Node<K, V>) -> Layout {
    // SAFETY: the node is alive (our obligation), so a shared reference to it may be made
    // for this read of its immutable hash word.
    let node = unsafe { &*node };
    if !node.is_extended() {
        return Layout::Plain;
    }
    match node.prefixes() {
        0 => Layout::Extended,
        prefixes => Layout::Prefixed(prefixes),
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
    // SAFETY: 1: the node is alive, so its immutable hash word may be read.
    if !unsafe { &*node }.is_extended() {
        return None;
    }
    // SAFETY: 1. EXT is set only on nodes that `NodeBox::new` placed in an `Extended` or
    // a `Prefixed`, both with the extension `Extended::NODE` before the node; 2. the
    // pointer carries the whole allocation's provenance (our 2), so stepping back to the
    // extension stays in bounds of it.
    let ext = unsafe { node.byte_sub(<Extended<K, V>>::NODE) }.cast::<Ext<K, V>>();
    // SAFETY: 1. `ext` is the live extension `NodeBox::new` initialised (the step above);
    // 2. it lives as long as its node, so for `'a` (our 3); 3. only shared references to
    // an `Ext` are made (its mutable fields are in cells).
    Some(unsafe { &*ext })
}

impl<'g, K, V> NodePtr<'g, K, V> {
    /// The node's extension, if it was allocated with one.
    #[inline]
    pub(crate) fn ext(self) -> Option<&'g Ext<K, V>> {
        // SAFETY: `ext_of`'s 1 (alive) is `from_raw`'s 1, its 2 (provenance) `from_raw`'s
        // 3, its 3 (alive for `'g`) `from_raw`'s 2.
        unsafe { ext_of(self.as_ptr()) }
    }

    /// The node's prefixes.
    #[inline]
    fn parts(self) -> Parts<'g> {
        // SAFETY: `parts`' 1: `from_raw`'s 1 and 2 (alive for `'g`); its 2: `from_raw`'s
        // 3; its 3: the node's own flags, read here.
        unsafe { parts(self.as_ptr(), self.prefixes()) }
    }

    /// The node's timer, if it was allocated with one (see [`Timer`]).
    #[inline]
    pub(crate) fn timer(self) -> Option<&'g Timer> {
        if self.prefixes() & TIMED == 0 {
            return None;
        }
        self.parts().timer
    }

    /// The entry's weight (1 unless a weigher said otherwise).
    #[inline]
    pub(crate) fn weight(self) -> u32 {
        // SAFETY: `weight_of`'s 1: `from_raw`'s 1 and 2; its 2: `from_raw`'s 3.
        unsafe { weight_of(self.as_ptr()) }
    }

    /// The tick of the entry's last read or write, for a node of a cache with a
    /// time-to-idle (`None` for any other): in `meta` for a node with no TTL deadline, in
    /// a prefix for one with.
    #[inline]
    pub(crate) fn idle(self) -> Option<u64> {
        if self.idle_in_meta() {
            return Some(self.get().meta_idle());
        }
        if self.prefixes() & STAMPED == 0 {
            return None;
        }
        self.parts().stamp.map(Stamp::idle)
    }

    /// Raises the entry's idle stamp to `tick` unless it is there already (a node with no
    /// idle stamp has nothing to raise). Readers call it only when [`idle`](Self::idle) is
    /// older, so a hot entry is written at most once a tick.
    #[inline]
    pub(crate) fn stamp(self, tick: u64) {
        if self.idle_in_meta() {
            return self.get().stamp_meta(tick);
        }
        if self.prefixes() & STAMPED != 0 {
            if let Some(stamp) = self.parts().stamp {
                stamp.raise(tick);
            }
        }
    }

    /// The tick the entry expires at by its TTL or expiry policy ([`NEVER`] for neither):
    /// the earlier of the TTL's and the timer's, if it has one.
    #[inline]
    pub(crate) fn expiry_deadline(self) -> u64 {
        self.policy_deadline().min(self.deadline())
    }

    /// The expiry policy's own deadline for the entry: its timer's ([`NEVER`] for none,
    /// or for an entry whose write did not ask the policy).
    #[inline]
    pub(crate) fn policy_deadline(self) -> u64 {
        match self.timer() {
            // Relaxed: pairs with nothing; a reader takes the deadline as of this load, and
            // the maintainer learns of a move through the re-file request's RMW on `meta`.
            Some(t) => t.deadline.load(Ordering::Relaxed),
            None => NEVER,
        }
    }
}

/// An owned node that is not (or no longer) in any table: allocated in one of the
/// layouts above, freed (dropping its key and value) if dropped.
#[derive(Debug)]
pub(crate) struct NodeBox<K, V>(NonNull<Node<K, V>>);

// SAFETY: 1. a `NodeBox` owns its node as a `Box` would (no other handle reaches it); 2.
// a cache only stores `K, V: Send`.
unsafe impl<K: Send, V: Send> Send for NodeBox<K, V> {}

impl<K, V> NodeBox<K, V> {
    /// Allocates a node (see [`Node::new`]), with an extension when `ext` is given, and
    /// the prefixes its idle stamp, weight and timer call for. An extended node starts
    /// `QUEUED`: the inserter owes the segment's maintainer a request, pushed right after
    /// linking. An idle stamp goes into `meta` when the node has no TTL `deadline` to
    /// keep there, and into a prefix when it has.
    pub(crate) fn new(hash: u64, key: K, value: V, deadline: u64, ext: Option<ExtInit>) -> Self {
        let Some(init) = ext else {
            return Self::place(Box::new(Node::new(hash, key, value, deadline)));
        };
        let weighed = init.weight != 1;
        let timer = init.timer.map(|(policy, written)| Timer {
            deadline: AtomicU64::new(policy),
            written,
        });
        let (low, stamp) = match init.idle {
            Some(tick) if deadline == NEVER => (tick, None),
            Some(tick) => (deadline, Some(Stamp(AtomicU64::new(tick)))),
            None => (deadline, None),
        };
        let flag = |on: bool, flag: u64| if on { flag } else { 0 };
        let layout = flag(init.idle.is_some() && stamp.is_none(), IDLE_IN_META)
            | flag(stamp.is_some(), STAMPED)
            | flag(weighed, WEIGHED)
            | flag(timer.is_some(), TIMED);
        let extended = Extended {
            ext: Ext::new(),
            // SAFETY: `extended`'s 1: the node goes into this `Extended`, which the match
            // below boxes alone or in the `Prefixed` that `layout`'s prefix flags name.
            node: unsafe { Node::extended(hash, key, value, low, layout) },
        };
        let weight = Weight(init.weight);
        match (stamp, timer, weighed) {
            (None, None, false) => Self::place(Box::new(extended)),
            (None, None, true) => Self::prefixed(weight, extended),
            (None, Some(timer), false) => Self::prefixed(timer, extended),
            (None, Some(timer), true) => Self::prefixed(WeighedTimer { timer, weight }, extended),
            (Some(stamp), None, false) => Self::prefixed(stamp, extended),
            (Some(stamp), None, true) => Self::prefixed(
                WithStamp {
                    prefix: weight,
                    stamp,
                },
                extended,
            ),
            (Some(stamp), Some(timer), false) => Self::prefixed(
                WithStamp {
                    prefix: timer,
                    stamp,
                },
                extended,
            ),
            (Some(stamp), Some(timer), true) => Self::prefixed(
                WithStamp {
                    prefix: WeighedTimer { timer, weight },
                    stamp,
                },
                extended,
            ),
        }
    }

    /// Allocates a bare node that keeps the idle stamp `tick` in `meta` (see
    /// [`Node::idle`]); it starts `QUEUED`, as an extended node does.
    pub(crate) fn idle(hash: u64, key: K, value: V, tick: u64) -> Self {
        Self::place(Box::new(Node::idle(hash, key, value, tick)))
    }

    /// Boxes `extended` behind `prefix`.
    fn prefixed<P>(prefix: P, extended: Extended<K, V>) -> Self {
        Self::place(Box::new(Prefixed { prefix, extended }))
    }

    /// Leaks `whole` and keeps a pointer to its node.
    fn place<W: Whole<K, V>>(whole: Box<W>) -> Self {
        let raw = Box::into_raw(whole);
        // SAFETY: 1. `W::NODE` is the node's offset in `W` (`Whole`'s contract), so the
        // step stays in the allocation and keeps its provenance; 2. `raw` came from
        // `Box::into_raw`, so it and the node pointer are not null.
        Self(unsafe { NonNull::new_unchecked(raw.byte_add(W::NODE).cast::<Node<K, V>>()) })
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
        // SAFETY: 1. we owned the node (from `NodeBox::new`, with its allocation's
        // provenance), so it is alive for `layout_of` (read before anything moves out),
        // and `key` and `value` are initialised; 2. they are read out once here, and
        // `release_in` then frees the rest without dropping them (its 1: `layout`, read
        // above; its 2 and 3: we own the allocation, nobody reaches it after us, and the
        // key and value were moved out).
        unsafe {
            let layout = layout_of(raw);
            let key = ptr::read(ptr::addr_of!((*raw).key));
            let value = ptr::read(ptr::addr_of!((*raw).value));
            release_in(raw, layout, false);
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
    // SAFETY: `layout_of`'s obligation: the node is alive until freed (our 1 and 2). Then
    // `release_in`'s 1: that layout; its 2 and 3: our 1 and 2 (the key and value are
    // still in it, to drop).
    unsafe { release_in(node, layout_of(node), true) }
}

/// Frees the allocation of `node`, whose layout is `layout`; drops the key and value with
/// it when `contents`, else only gives the memory back (they were moved out).
///
/// # Safety
/// 1. `layout` is `node`'s (read by [`layout_of`] while the node was whole).
/// 2. `node` came from [`NodeBox::new`] (with its allocation's provenance).
/// 3. Nobody else owns or reaches it, and it is freed once; without `contents`, its key
///    and value were moved out.
unsafe fn release_in<K, V>(node: *mut Node<K, V>, layout: Layout, contents: bool) {
    // SAFETY: `release_as`'s 1: the layout (our 1) names the type `NodeBox::new`
    // allocated, and our 2 gives the provenance; its 2: our 3.
    unsafe {
        match layout {
            Layout::Plain => release_as::<Node<K, V>, K, V>(node, contents),
            Layout::Extended => release_as::<Extended<K, V>, K, V>(node, contents),
            Layout::Prefixed(prefixes) => match prefixes {
                WEIGHED => release_as::<Prefixed<Weight, K, V>, K, V>(node, contents),
                TIMED => release_as::<Prefixed<Timer, K, V>, K, V>(node, contents),
                WEIGHED_TIMED => release_as::<Prefixed<WeighedTimer, K, V>, K, V>(node, contents),
                STAMPED => release_as::<Prefixed<Stamp, K, V>, K, V>(node, contents),
                STAMPED_WEIGHED => {
                    release_as::<Prefixed<WithStamp<Weight>, K, V>, K, V>(node, contents);
                }
                STAMPED_TIMED => {
                    release_as::<Prefixed<WithStamp<Timer>, K, V>, K, V>(node, contents);
                }
                _ => {
                    debug_assert_eq!(prefixes, STAMPED_WEIGHED_TIMED);
                    release_as::<Prefixed<WithStamp<WeighedTimer>, K, V>, K, V>(node, contents);
                }
            },
        }
    }
}

/// [`release_in`] for a node allocated in a `W`.
///
/// # Safety
/// 1. `node` is the node of a `Box<W>` that [`NodeBox::place`] leaked, with its
///    provenance.
/// 2. As [`release_in`]'s 3.
unsafe fn release_as<W: Whole<K, V>, K, V>(node: *mut Node<K, V>, contents: bool) {
    // SAFETY: 1: the allocation starts `W::NODE` before the node.
    let whole = unsafe { node.byte_sub(W::NODE) }.cast::<W>();
    if contents {
        // SAFETY: 1. a leaked `Box<W>` (our 1); 2. ours to free, once (our 2). Its drop
        // glue drops the key and value (the other fields have no `Drop`).
        drop(unsafe { Box::from_raw(whole) });
    } else {
        // SAFETY: 1. as above, as the `MaybeUninit` of its type (same layout), which
        // drops nothing: the key and value were moved out (our 2), and the other fields
        // have no `Drop`.
        drop(unsafe { Box::from_raw(whole.cast::<MaybeUninit<W>>()) });
    }
}
