//! An intrusive FIFO of nodes threaded through their extensions' queue links
//! ([`QueueLinks`]): push at the back, pop at the front, unlink anywhere in O(1). Only the
//! segment's maintenance-lock holder touches a queue or any node's queue links.

use crate::entry::node::{ext_of, Ext, Node, QueueLinks};
use std::ptr;

/// In no queue.
pub(crate) const NONE: u8 = 0;
/// In the small (probationary) queue.
pub(crate) const SMALL: u8 = 1;
/// In the main queue.
pub(crate) const MAIN: u8 = 2;

/// The extension of a node in a bounded cache.
///
/// # Safety
/// 1. `node` points to a live node that was allocated with an extension.
/// 2. `node` carries its allocation's provenance.
/// 3. The node stays alive while the returned reference is used (`'a`).
pub(crate) unsafe fn ext<'a, K, V>(node: *mut Node<K, V>) -> &'a Ext<K, V> {
    // SAFETY: `ext_of`'s 1, 2 and 3: our 1, 2 and 3.
    unsafe { ext_of(node) }.expect("a bounded cache's nodes have an extension")
}

/// Runs `f` on a node's queue links.
///
/// # Safety
/// 1. `node` is alive, extended, with its allocation's provenance, while `f` runs.
/// 2. The caller holds the maintenance lock, which guards every node's queue links, and
///    `f` does not reach this node's links another way.
unsafe fn with_links<K, V, R>(
    node: *mut Node<K, V>,
    f: impl FnOnce(&mut QueueLinks<K, V>) -> R,
) -> R {
    // SAFETY: `ext`'s 1, 2 and 3: our 1 (the reference is used only while `f` runs). The
    // `&mut`: our 2: no other access to the links exists while `f` runs, and earlier ones
    // (under the lock) happen-before it.
    unsafe { ext(node) }
        .links
        .with_mut(|l| f(unsafe { &mut *l }))
}

/// Which queue holds `node` ([`NONE`], [`SMALL`] or [`MAIN`]).
///
/// # Safety
/// 1. `node` is alive, extended, with its allocation's provenance.
/// 2. The caller holds the maintenance lock, which guards every node's `queue` stamp.
pub(crate) unsafe fn queue_of<K, V>(node: *mut Node<K, V>) -> u8 {
    // SAFETY: `ext`'s 1, 2 and 3: our 1 (the reference ends with this call). The read:
    // our 2: no write races it, and earlier writes (under the lock) happen-before it.
    unsafe { ext(node) }.queue.with(|q| unsafe { *q })
}

/// Stamps which queue holds `node`.
///
/// # Safety
/// 1. `node` is alive, extended, with its allocation's provenance.
/// 2. The caller holds the maintenance lock, which guards every node's `queue` stamp.
unsafe fn set_queue<K, V>(node: *mut Node<K, V>, id: u8) {
    // SAFETY: `ext`'s 1, 2 and 3: our 1 (the reference ends with this call). The write:
    // our 2: it is the only access to the stamp now.
    unsafe { ext(node) }.queue.with_mut(|q| unsafe { *q = id });
}

/// A FIFO of nodes (oldest at the front) and their total weight.
#[derive(Debug)]
pub(crate) struct Deque<K, V> {
    front: *mut Node<K, V>,
    back: *mut Node<K, V>,
    /// Which queue this is ([`SMALL`] or [`MAIN`]), stamped on its nodes.
    id: u8,
    pub(crate) len: usize,
    pub(crate) weight: u64,
}

impl<K, V> Deque<K, V> {
    pub(crate) fn new(id: u8) -> Self {
        debug_assert!(id == SMALL || id == MAIN, "queue id {id}");
        Self {
            front: ptr::null_mut(),
            back: ptr::null_mut(),
            id,
            len: 0,
            weight: 0,
        }
    }

    /// The queue's state for a failed check's message: (id, front, back, len, weight).
    fn shape(&self) -> (u8, *mut Node<K, V>, *mut Node<K, V>, usize, u64) {
        (self.id, self.front, self.back, self.len, self.weight)
    }

    /// Whether the ends and the counts agree: both ends null exactly when the queue is
    /// empty, and an empty queue weighs nothing (O(1): no walk).
    fn ends_agree(&self) -> bool {
        self.front.is_null() == self.back.is_null()
            && self.front.is_null() == (self.len == 0)
            && (self.len != 0 || self.weight == 0)
    }

    /// Appends `node` (in no queue).
    ///
    /// # Safety
    /// 1. `node` is alive, extended, with its allocation's provenance, and stays alive
    ///    until it is popped or unlinked.
    /// 2. `node` is in no queue.
    /// 3. The caller holds the maintenance lock.
    pub(crate) unsafe fn push_back(&mut self, node: *mut Node<K, V>) {
        let back = self.back;
        debug_assert!(
            self.ends_agree(),
            "queue (id, front, back, len, weight) {:?}",
            self.shape()
        );
        // SAFETY: `queue_of`'s, `set_queue`'s and `with_links`' 1 for `node`: our 1; for
        // `back`: a node of this queue, alive by the 1 of the push that queued it. Their 2:
        // our 3 (each closure touches only the links it is given).
        unsafe {
            debug_assert_eq!(queue_of(node), NONE, "{node:p} is queued already");
            debug_assert!(
                with_links(node, |l| l.prev.is_null() && l.next.is_null()),
                "{node:p}, in no queue, still has links"
            );
            debug_assert!(
                back.is_null() || with_links(back, |l| l.next.is_null()),
                "the back {back:p} of queue {:?} has a successor",
                self.shape()
            );
            set_queue(node, self.id);
            with_links(node, |l| {
                l.prev = back;
                l.next = ptr::null_mut();
            });
            if back.is_null() {
                self.front = node;
            } else {
                with_links(back, |l| l.next = node);
            }
        }
        self.back = node;
        self.len += 1;
        // SAFETY: `ext`'s 1, 2 and 3: our 1 (the reference ends with this statement).
        self.weight += u64::from(unsafe { ext(node) }.weight);
    }

    /// The oldest node, left in place.
    pub(crate) fn front(&self) -> Option<*mut Node<K, V>> {
        (!self.front.is_null()).then_some(self.front)
    }

    /// The oldest node, taken out.
    ///
    /// # Safety
    /// 1. Every node in this queue is alive (as each push promised).
    /// 2. The caller holds the maintenance lock.
    pub(crate) unsafe fn pop_front(&mut self) -> Option<*mut Node<K, V>> {
        let node = self.front;
        if node.is_null() {
            return None;
        }
        // SAFETY: `unlink`'s 1: the front is in this queue; its 2 and 3: our 1 and 2.
        unsafe { self.unlink(node) };
        Some(node)
    }

    /// Takes `node`, which is in this queue, out in O(1).
    ///
    /// # Safety
    /// 1. `node` is in this queue.
    /// 2. Every node in this queue is alive (as each push promised).
    /// 3. The caller holds the maintenance lock.
    pub(crate) unsafe fn unlink(&mut self, node: *mut Node<K, V>) {
        debug_assert!(
            self.len > 0 && self.ends_agree(),
            "unlinking from queue (id, front, back, len, weight) {:?}",
            self.shape()
        );
        // SAFETY: `queue_of`'s, `set_queue`'s, `with_links`' and `ext`'s 1 for `node` and
        // its neighbours: they are in this queue (our 1), so alive (our 2), and were
        // pushed extended with their provenance (`push_back`'s 1). Their 2: our 3 (each
        // closure touches only the links it is given).
        unsafe {
            debug_assert_eq!(
                queue_of(node),
                self.id,
                "{node:p} is not in {:?}",
                self.shape()
            );
            set_queue(node, NONE);
            let (prev, next) = with_links(node, |l| {
                let pn = (l.prev, l.next);
                *l = QueueLinks {
                    prev: ptr::null_mut(),
                    next: ptr::null_mut(),
                };
                pn
            });
            debug_assert!(
                (prev.is_null() == (self.front == node)) && (next.is_null() == (self.back == node)),
                "{node:p} (prev {prev:p}, next {next:p}) is out of place in {:?}",
                self.shape()
            );
            if prev.is_null() {
                self.front = next;
            } else {
                debug_assert!(
                    with_links(prev, |l| l.next == node),
                    "{node:p}'s prev {prev:p} does not lead back to it"
                );
                with_links(prev, |l| l.next = next);
            }
            if next.is_null() {
                self.back = prev;
            } else {
                debug_assert!(
                    with_links(next, |l| l.prev == node),
                    "{node:p}'s next {next:p} does not lead back to it"
                );
                with_links(next, |l| l.prev = prev);
            }
            let w = u64::from(ext(node).weight);
            debug_assert!(
                self.weight >= w,
                "{node:p} weighs {w}, more than {:?}",
                self.shape()
            );
            self.len -= 1;
            self.weight -= w;
        }
        debug_assert!(
            self.ends_agree(),
            "queue (id, front, back, len, weight) {:?}",
            self.shape()
        );
    }
}
