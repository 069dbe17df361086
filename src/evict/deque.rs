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
/// `node` is alive, was allocated with an extension, and carries its allocation's
/// provenance; the returned reference is used while the node stays alive.
pub(crate) unsafe fn ext<'a, K, V>(node: *mut Node<K, V>) -> &'a Ext<K, V> {
    // SAFETY: the caller's contract.
    unsafe { ext_of(node) }.expect("a bounded cache's nodes have an extension")
}

/// Runs `f` on a node's queue links.
///
/// # Safety
/// As for [`ext`], and the caller holds the maintenance lock (which guards the links).
unsafe fn with_links<K, V, R>(
    node: *mut Node<K, V>,
    f: impl FnOnce(&mut QueueLinks<K, V>) -> R,
) -> R {
    // SAFETY: 1. alive and extended (our contract), so `ext` is valid; 2. the lock is held,
    // so no other access to the links exists while `f` runs.
    unsafe { ext(node) }
        .links
        .with_mut(|l| f(unsafe { &mut *l }))
}

/// Which queue holds `node` ([`NONE`], [`SMALL`] or [`MAIN`]).
///
/// # Safety
/// As for [`with_links`].
pub(crate) unsafe fn queue_of<K, V>(node: *mut Node<K, V>) -> u8 {
    // SAFETY: 1. alive and extended (our contract); 2. the lock is held, so no write races
    // this read.
    unsafe { ext(node) }.queue.with(|q| unsafe { *q })
}

/// Stamps which queue holds `node`.
///
/// # Safety
/// As for [`with_links`].
unsafe fn set_queue<K, V>(node: *mut Node<K, V>, id: u8) {
    // SAFETY: 1. alive and extended (our contract); 2. the lock is held, so this write is
    // the only access.
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
        Self {
            front: ptr::null_mut(),
            back: ptr::null_mut(),
            id,
            len: 0,
            weight: 0,
        }
    }

    /// Appends `node` (in no queue).
    ///
    /// # Safety
    /// As for [`with_links`]; `node` is in no queue and stays alive until it is popped or
    /// unlinked.
    pub(crate) unsafe fn push_back(&mut self, node: *mut Node<K, V>) {
        let back = self.back;
        // SAFETY: our contract; `back`, if any, is a live node of this queue.
        unsafe {
            debug_assert_eq!(queue_of(node), NONE);
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
        // SAFETY: our contract: `node` is alive and extended.
        self.weight += u64::from(unsafe { ext(node) }.weight);
    }

    /// The oldest node, left in place.
    pub(crate) fn front(&self) -> Option<*mut Node<K, V>> {
        (!self.front.is_null()).then_some(self.front)
    }

    /// The oldest node, taken out.
    ///
    /// # Safety
    /// As for [`with_links`], for the nodes in this queue.
    pub(crate) unsafe fn pop_front(&mut self) -> Option<*mut Node<K, V>> {
        let node = self.front;
        if node.is_null() {
            return None;
        }
        // SAFETY: our contract: the front node is alive and ours.
        unsafe { self.unlink(node) };
        Some(node)
    }

    /// Takes `node`, which is in this queue, out in O(1).
    ///
    /// # Safety
    /// As for [`with_links`]; `node` is in this queue.
    pub(crate) unsafe fn unlink(&mut self, node: *mut Node<K, V>) {
        // SAFETY: our contract: `node` and its neighbours are live nodes of this queue.
        unsafe {
            debug_assert_eq!(queue_of(node), self.id);
            set_queue(node, NONE);
            let (prev, next) = with_links(node, |l| {
                let pn = (l.prev, l.next);
                *l = QueueLinks {
                    prev: ptr::null_mut(),
                    next: ptr::null_mut(),
                };
                pn
            });
            if prev.is_null() {
                self.front = next;
            } else {
                with_links(prev, |l| l.next = next);
            }
            if next.is_null() {
                self.back = prev;
            } else {
                with_links(next, |l| l.prev = prev);
            }
            self.len -= 1;
            self.weight -= u64::from(ext(node).weight);
        }
    }
}
