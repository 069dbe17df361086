//! How a node is allocated: what a cache's policies put in front of it, how that is
//! found again, and the owned handle that allocates and frees it ([`NodeBox`]).
//!
//! ## Five layouts, one allocation each
//! A cache with no bound, no time-to-idle and no expiry policy allocates a bare [`Node`]
//! and pays for nothing else. A bound or a time-to-idle gives each node an [`Ext`] in
//! front of it (24 bytes: the idle tick and queue id in one word, the eviction-queue
//! links), and so does an expiry policy to each node whose write it answered (a write
//! that did not ask it, such as `insert_with_ttl`'s, makes a bare node in a cache with
//! only a policy); `EXT` in the node's `meta` says so. In front of the extension go,
//! only where needed (sizes for keys and values aligned to at most 8; a prefix is padded
//! to the allocation's alignment):
//!
//! | prefix | when | bytes |
//! |--------|------|-------|
//! | [`Weight`] | the entry weighs other than 1 (so a cache without a weigher has none) | 8 |
//! | [`Timer`] | the node's write was answered by an expiry policy (see `cache::expiry`) | 16 |
//! | [`WeighedTimer`] | both | 24 |
//!
//! `WEIGHED` and `TIMED` in the node's hash word say which (immutable, set before the
//! node is published). A prefixed allocation nests the plain extended one ([`Prefixed`]
//! holds an [`Extended`]), so the extension is the same distance before the node in every
//! layout whatever the key's and value's alignment; a prefix is found at its own layout's
//! distance ([`Whole::NODE`]).
//!
//! ## Provenance
//! What precedes a node is reached only through pointers that carry the whole
//! allocation's provenance ([`NodePtr`], a slot word, a list link), never from a `&Node`:
//! a pointer derived from a reference to the node may not step outside it (Miri with Tree
//! Borrows rejects that), and could not free the allocation either.
//!
//! ## The extension's state word
//! The idle tick (low 55 bits, as deadlines) and which eviction queue holds the node (top
//! two bits) share one atomic word. Readers of an idle-expiring cache raise the tick with
//! a CAS loop that only ever moves it later and carries the queue bits along; the
//! maintenance-lock holder rewrites the queue bits with one RMW that carries the tick.
//! Neither can undo the other's change: the loom model `an_idle_stamp_survives_a_queue_move`
//! (`loom-tests/tests/evict.rs`) races a stamping read with the write whose turn moves
//! the entry between queues (with the queue id written by a plain load and store, it
//! fails), and a unit test races the two on threads. The tick had a word of its own, and
//! the queue id and the weight another, until this packing and the weight prefix took the
//! extension from 32 bytes to 24.

use super::node::{Node, NodeLinks, NodePtr, EXT, TIMED, WEIGHED};
use crate::clock::NEVER;
use crate::intrusive::Links;
use crate::sync::{AtomicU64, Ordering, UnsafeCell};
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr::{self, NonNull};

/// Where the extension's state word keeps the queue id (above the tick's 55 bits).
const QUEUE_SHIFT: u32 = 62;
const QUEUE_BITS: u64 = 3 << QUEUE_SHIFT;
const _: () = assert!(QUEUE_BITS & NEVER == 0);

/// Policy state of a node in a cache with a capacity bound, a time-to-idle or an expiry
/// policy, allocated in front of the node.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Ext<K, V> {
    /// The tick of the last read or write (time-to-idle; low 55 bits) and the id of the
    /// eviction queue that holds the node (top two bits; see the essay).
    state: AtomicU64,
    /// The node's links in that queue: maintenance lock only.
    pub(crate) links: UnsafeCell<NodeLinks<K, V>>,
}

#[cfg(not(all(wheelcache_loom, feature = "loom")))]
const _: () = assert!(std::mem::size_of::<Ext<u64, u64>>() == 24);

impl<K, V> Ext<K, V> {
    fn new(idle: u64) -> Self {
        debug_assert!(idle <= NEVER);
        Self {
            state: AtomicU64::new(idle),
            links: UnsafeCell::new(Links::new()),
        }
    }

    /// The tick of the entry's last read or write. Relaxed: the stamp is a hint that pairs
    /// with nothing; it only ever moves later, and the maintainer rereads it when the
    /// wheel deadline it filed comes.
    #[inline]
    pub(crate) fn idle(&self) -> u64 {
        self.state.load(Ordering::Relaxed) & NEVER
    }

    /// Raises the idle tick to `tick` unless it is there already: readers call it only
    /// when [`idle`](Self::idle) is older, so a hot entry is written at most once a tick.
    #[inline]
    pub(crate) fn stamp(&self, tick: u64) {
        debug_assert!(tick <= NEVER);
        // Relaxed: as in `idle`. The CAS carries the queue bits along, so a reader never
        // undoes the maintainer's change of them (`set_queue`'s RMW).
        let _ = self
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                (s & NEVER < tick).then_some((s & !NEVER) | tick)
            });
    }

    /// The id of the queue that holds the node, as the last [`set_queue`] left it (the
    /// maintenance-lock holder's to read: `evict::deque`).
    ///
    /// [`set_queue`]: Self::set_queue
    #[inline]
    pub(crate) fn queue(&self) -> u8 {
        // Relaxed: the queue bits change only by `set_queue`, under the maintenance lock,
        // whose release and acquire order every such change before this read; readers'
        // stamps also write the word, but carry the bits along (`stamp`'s CAS), and a load
        // sees the word no older than the lock holder's own last RMW of it.
        (self.state.load(Ordering::Relaxed) >> QUEUE_SHIFT) as u8
    }

    /// Sets the queue id to `id` (below 4), keeping the idle tick: for the
    /// maintenance-lock holder.
    #[inline]
    pub(crate) fn set_queue(&self, id: u8) {
        debug_assert!(id < 4);
        let bits = u64::from(id) << QUEUE_SHIFT;
        // Relaxed: as in `queue`. A CAS loop that writes the whole id whatever the word
        // held, and keeps a concurrent reader's stamp (a stamp landing between the load
        // and the CAS fails it, and the loop retries with the new tick). Only the lock
        // holder runs it, racing at most a reader's stamp once a tick.
        let _ = self
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some((s & !QUEUE_BITS) | bits)
            });
    }
}

/// The expiry policy's state of a node (caches with an `Expiry` only; see `cache::expiry`).
#[derive(Debug)]
pub(crate) struct Timer {
    /// The policy's own deadline in ticks (its last answer for the entry; [`NEVER`] for
    /// none), which may lie past the TTL deadline in `meta`: the entry lapses at the
    /// earlier of the two ([`NodePtr::expiry_deadline`]). Moved by reads the policy
    /// answers (a swap, so each mover knows whether it moved the entry's deadline
    /// earlier: then it asks the maintainer to re-file the node).
    /// Relaxed: the re-file request's RMW on `meta` publishes a move to the maintainer,
    /// and readers treat it as the entry's deadline at the moment they load it.
    pub(crate) deadline: AtomicU64,
    /// When the entry was written, in the clock's nanoseconds (immutable): the
    /// `last_modified_at` the policy is told.
    pub(crate) written: u64,
}

/// The weight of an entry that weighs other than 1 (immutable).
#[derive(Debug)]
struct Weight(u32);

/// Both prefixes, for a weighed entry of a cache with an expiry policy.
#[repr(C)]
struct WeighedTimer {
    timer: Timer,
    weight: Weight,
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

/// Which allocation a node lives in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    Plain,
    Extended,
    Weighed,
    Timed,
    WeighedTimed,
}

/// # Safety
/// `node` points to a live node.
#[inline]
unsafe fn layout_of<K, V>(node: *mut Node<K, V>) -> Layout {
    // SAFETY: the node is alive (our obligation), so a shared reference to it may be made
    // for this read (its mutable state is atomic or in cells).
    let node = unsafe { &*node };
    // Relaxed: EXT is immutable, set before the node was published (the Release CAS that
    // linked it, which the load that found the node acquired); so is the hash word.
    if node.meta.load(Ordering::Relaxed) & EXT == 0 {
        return Layout::Plain;
    }
    match node.prefixes() {
        0 => Layout::Extended,
        WEIGHED => Layout::Weighed,
        TIMED => Layout::Timed,
        _ => Layout::WeighedTimed,
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
    // SAFETY: 1: the node is alive, so its `meta` may be read. Relaxed: as in `layout_of`.
    let meta = unsafe { (*node).meta.load(Ordering::Relaxed) };
    if meta & EXT == 0 {
        return None;
    }
    // SAFETY: 1. EXT is set only on nodes that `NodeBox::new` placed in an `Extended` or
    // a `Prefixed`, both with the extension `Extended::NODE` before the node; 2. the
    // pointer carries the whole allocation's provenance (our 2), so stepping back to the
    // extension stays in bounds of it.
    let ext = unsafe { node.byte_sub(<Extended<K, V>>::NODE) }.cast::<Ext<K, V>>();
    // SAFETY: 1. `ext` is the live extension `NodeBox::new` initialised (the step above);
    // 2. it lives as long as its node, so for `'a` (our 3); 3. only shared references to
    // an `Ext` are made (its mutable fields are atomic or in cells).
    Some(unsafe { &*ext })
}

/// The prefix of a node allocated in a `Prefixed<P, K, V>`.
///
/// # Safety
/// 1. `node` points to a live node allocated in a `Prefixed<P, K, V>` by
///    [`NodeBox::new`], and carries that allocation's provenance.
/// 2. The node stays alive for `'a`.
unsafe fn prefix<'a, P, K, V>(node: *mut Node<K, V>) -> &'a P {
    // SAFETY: 1: the allocation starts `Prefixed::NODE` before the node, and the pointer
    // may step back to it.
    let whole = unsafe { node.byte_sub(<Prefixed<P, K, V>>::NODE) }.cast::<Prefixed<P, K, V>>();
    // SAFETY: 1. the prefix `NodeBox::new` initialised (obligation 1); 2. alive for `'a`
    // (obligation 2); 3. only shared references to a prefix are made (its mutable state
    // is atomic).
    unsafe { &(*whole).prefix }
}

/// The weight of the node at `node` (1 unless it has a weight prefix).
///
/// # Safety
/// 1. `node` points to a live node, which stays alive for the call.
/// 2. `node` carries its whole allocation's provenance.
#[inline]
pub(crate) unsafe fn weight_of<K, V>(node: *mut Node<K, V>) -> u32 {
    // SAFETY: 1: alive, so a shared reference may be made to read its immutable hash word
    // (the flags alone say which prefix: `WEIGHED` and `TIMED` are set only with `EXT`).
    let prefixes = unsafe { &*node }.prefixes();
    if prefixes & WEIGHED == 0 {
        return 1;
    }
    // SAFETY: `prefix`'s 1: the flags say which `Prefixed` `NodeBox::new` allocated, and
    // our 2 gives its provenance; its 2: the reference ends within this call (our 1).
    unsafe {
        if prefixes & TIMED == 0 {
            prefix::<Weight, K, V>(node).0
        } else {
            prefix::<WeighedTimer, K, V>(node).weight.0
        }
    }
}

impl<'g, K, V> NodePtr<'g, K, V> {
    /// The node's extension, if it was allocated with one.
    #[inline]
    pub(crate) fn ext(self) -> Option<&'g Ext<K, V>> {
        // SAFETY: `ext_of`'s 1 (alive) is `from_raw`'s 1, its 2 (provenance) `from_raw`'s
        // 3, its 3 (alive for `'g`) `from_raw`'s 2.
        unsafe { ext_of(self.as_ptr()) }
    }

    /// The node's timer, if it was allocated with one (see [`Timer`]).
    #[inline]
    pub(crate) fn timer(self) -> Option<&'g Timer> {
        // The flags alone say which prefix (`TIMED` and `WEIGHED` are set only with `EXT`).
        let prefixes = self.prefixes();
        if prefixes & TIMED == 0 {
            return None;
        }
        let node = self.as_ptr();
        // SAFETY: `prefix`'s 1: a live node (`from_raw`'s 1), and the flags say which
        // `Prefixed` `NodeBox::new` allocated it in, with the provenance `from_raw`'s 3
        // promises; its 2: `from_raw`'s 2 (alive for `'g`).
        unsafe {
            Some(if prefixes & WEIGHED == 0 {
                prefix::<Timer, K, V>(node)
            } else {
                &prefix::<WeighedTimer, K, V>(node).timer
            })
        }
    }

    /// The entry's weight (1 unless a weigher said otherwise).
    #[inline]
    pub(crate) fn weight(self) -> u32 {
        // SAFETY: `weight_of`'s 1: `from_raw`'s 1 and 2; its 2: `from_raw`'s 3.
        unsafe { weight_of(self.as_ptr()) }
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
    /// the prefixes its weight and timer call for. An extended node starts `QUEUED`: the
    /// inserter owes the segment's maintainer a request, pushed right after linking.
    pub(crate) fn new(hash: u64, key: K, value: V, deadline: u64, ext: Option<ExtInit>) -> Self {
        let Some(init) = ext else {
            return Self::place(Box::new(Node::new(hash, key, value, deadline)));
        };
        let weighed = init.weight != 1;
        let timer = init.timer.map(|(policy, written)| Timer {
            deadline: AtomicU64::new(policy),
            written,
        });
        let prefixes = if weighed { WEIGHED } else { 0 } | if timer.is_some() { TIMED } else { 0 };
        let extended = Extended {
            ext: Ext::new(init.idle),
            // SAFETY: `extended`'s 1: the node goes into this `Extended`, which the match
            // below boxes alone or in the `Prefixed` that `prefixes` names.
            node: unsafe { Node::extended(hash, key, value, deadline, prefixes) },
        };
        let weight = Weight(init.weight);
        match (timer, weighed) {
            (None, false) => Self::place(Box::new(extended)),
            (None, true) => Self::place(Box::new(Prefixed {
                prefix: weight,
                extended,
            })),
            (Some(timer), false) => Self::place(Box::new(Prefixed {
                prefix: timer,
                extended,
            })),
            (Some(timer), true) => Self::place(Box::new(Prefixed {
                prefix: WeighedTimer { timer, weight },
                extended,
            })),
        }
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
            Layout::Weighed => release_as::<Prefixed<Weight, K, V>, K, V>(node, contents),
            Layout::Timed => release_as::<Prefixed<Timer, K, V>, K, V>(node, contents),
            Layout::WeighedTimed => {
                release_as::<Prefixed<WeighedTimer, K, V>, K, V>(node, contents);
            }
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
