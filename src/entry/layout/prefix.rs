//! What goes in front of a node's extension, only where a node needs it: its idle stamp
//! (with a TTL deadline in a cache with a time-to-idle), its weight (other than 1), its
//! expiry policy's timer, and each combination; and how a node's are found from its
//! flags (the layouts are `entry::layout`'s).

use super::super::node::{Node, STAMPED, TIMED, WEIGHED};
use super::{Prefixed, Whole};
use crate::clock::NEVER;
use crate::sync::{AtomicU64, Ordering};

/// The idle stamp of a node that has a TTL deadline in a cache with a time-to-idle (its
/// `meta` holds the deadline, so the stamp cannot live there): the tick of the entry's
/// last read or write.
#[derive(Debug)]
pub(super) struct Stamp(pub(super) AtomicU64);

impl Stamp {
    /// The tick of the entry's last read or write. Relaxed: the stamp is a hint that pairs
    /// with nothing; it only ever moves later, and the maintainer rereads it when the
    /// wheel deadline it filed comes.
    #[inline]
    pub(super) fn idle(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Raises the stamp to `tick` unless it is there already.
    #[inline]
    pub(super) fn raise(&self, tick: u64) {
        debug_assert!(tick <= NEVER);
        // Relaxed: as in `idle`. A CAS loop that only ever moves the stamp later, and
        // writes nothing when another reader has raised it this far already.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                (s < tick).then_some(tick)
            });
    }
}

/// The expiry policy's state of a node (caches with an `Expiry` only; see `cache::expiry`).
#[derive(Debug)]
pub(crate) struct Timer {
    /// The policy's own deadline in ticks (its last answer for the entry; [`NEVER`] for
    /// none), which may lie past the TTL deadline in `meta`: the entry lapses at the
    /// earlier of the two ([`NodePtr::expiry_deadline`](crate::entry::node::NodePtr::expiry_deadline)). Moved by reads the policy
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
pub(super) struct Weight(pub(super) u32);

/// Both prefixes, for a weighed entry of a cache with an expiry policy.
#[repr(C)]
pub(super) struct WeighedTimer {
    pub(super) timer: Timer,
    pub(super) weight: Weight,
}

/// A prefix `P` and an idle stamp, for a node that has both.
#[repr(C)]
pub(super) struct WithStamp<P> {
    pub(super) prefix: P,
    pub(super) stamp: Stamp,
}

/// Names for the combinations of prefix flags, to match on.
pub(super) const WEIGHED_TIMED: u64 = WEIGHED | TIMED;
pub(super) const STAMPED_WEIGHED: u64 = STAMPED | WEIGHED;
pub(super) const STAMPED_TIMED: u64 = STAMPED | TIMED;
pub(super) const STAMPED_WEIGHED_TIMED: u64 = STAMPED | WEIGHED | TIMED;

/// The prefix of a node allocated in a `Prefixed<P, K, V>`.
///
/// # Safety
/// 1. `node` points to a live node allocated in a `Prefixed<P, K, V>` by
///    [`NodeBox::new`](super::NodeBox::new), and carries that allocation's provenance.
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

/// A node's prefixes, each `None` where its allocation has none.
#[derive(Clone, Copy)]
pub(super) struct Parts<'a> {
    pub(super) weight: Option<&'a Weight>,
    pub(super) timer: Option<&'a Timer>,
    pub(super) stamp: Option<&'a Stamp>,
}

/// The prefixes of the node at `node`, whose prefix flags are `prefixes`.
///
/// # Safety
/// 1. `node` points to a live node, which stays alive for `'a`.
/// 2. `node` carries its whole allocation's provenance.
/// 3. `prefixes` is the node's own ([`Node::prefixes`]).
pub(super) unsafe fn parts<'a, K, V>(node: *mut Node<K, V>, prefixes: u64) -> Parts<'a> {
    let none = Parts {
        weight: None,
        timer: None,
        stamp: None,
    };
    // SAFETY: in every arm, `prefix`'s 1: the flags (our 3) name the `Prefixed` that
    // `NodeBox::new` allocated the node in (a flag is set only with its prefix), and our
    // 2 gives its provenance; its 2: our 1.
    unsafe {
        match prefixes {
            0 => none,
            WEIGHED => Parts {
                weight: Some(prefix::<Weight, K, V>(node)),
                ..none
            },
            TIMED => Parts {
                timer: Some(prefix::<Timer, K, V>(node)),
                ..none
            },
            WEIGHED_TIMED => {
                let p = prefix::<WeighedTimer, K, V>(node);
                Parts {
                    weight: Some(&p.weight),
                    timer: Some(&p.timer),
                    stamp: None,
                }
            }
            STAMPED => Parts {
                stamp: Some(prefix::<Stamp, K, V>(node)),
                ..none
            },
            STAMPED_WEIGHED => {
                let p = prefix::<WithStamp<Weight>, K, V>(node);
                Parts {
                    weight: Some(&p.prefix),
                    stamp: Some(&p.stamp),
                    timer: None,
                }
            }
            STAMPED_TIMED => {
                let p = prefix::<WithStamp<Timer>, K, V>(node);
                Parts {
                    timer: Some(&p.prefix),
                    stamp: Some(&p.stamp),
                    weight: None,
                }
            }
            _ => {
                debug_assert_eq!(prefixes, STAMPED_WEIGHED_TIMED);
                let p = prefix::<WithStamp<WeighedTimer>, K, V>(node);
                Parts {
                    weight: Some(&p.prefix.weight),
                    timer: Some(&p.prefix.timer),
                    stamp: Some(&p.stamp),
                }
            }
        }
    }
}

/// The weight of the node at `node` (1 unless it has a weight prefix).
///
/// # Safety
/// 1. `node` points to a live node, which stays alive for the call.
/// 2. `node` carries its whole allocation's provenance.
#[inline]
pub(crate) unsafe fn weight_of<K, V>(node: *mut Node<K, V>) -> u32 {
    // SAFETY: 1: alive, so a shared reference may be made to read its immutable hash word
    // (the flags alone say which prefixes: each is set only with `EXT`).
    let prefixes = unsafe { &*node }.prefixes();
    if prefixes & WEIGHED == 0 {
        return 1;
    }
    // SAFETY: `parts`' 1 and 2: our 1 and 2 (the reference ends within this call); its
    // 3: read above.
    unsafe { parts(node, prefixes) }.weight.map_or(1, |w| w.0)
}
