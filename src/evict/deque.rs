//! An eviction queue: a FIFO of nodes on the shared intrusive list, threaded through their
//! extensions' queue links ([`QueueField`]), with its back, length and weight: push at the
//! back, pop at the front, unlink anywhere in O(1). Which queue holds a node is told by
//! its links (clear when it is in none) and its `IN_MAIN` mark in `meta` (small or
//! main), which costs no word of its own. Only the segment's maintenance-lock holder
//! touches a queue or any node's queue links and mark.

use crate::entry::layout::weight_of;
use crate::entry::links::QueueField;
use crate::entry::node::Node;
use crate::intrusive::list::{is_node, List};
use crate::intrusive::ListLinks;
use std::ptr;

/// In no queue.
pub(crate) const NONE: u8 = 0;
/// In the small (probationary) queue.
pub(crate) const SMALL: u8 = 1;
/// In the main queue.
pub(crate) const MAIN: u8 = 2;

/// Which queue holds `node` ([`NONE`], [`SMALL`] or [`MAIN`]): none while its queue
/// links are clear (a queued node's `prev` is a node or its queue's tag, never null),
/// else the queue its `IN_MAIN` mark names.
///
/// # Safety
/// 1. `node` is alive, extended, with its allocation's provenance.
/// 2. The caller holds the maintenance lock, which guards every node's queue links and
///    mark.
pub(crate) unsafe fn queue_of<K, V>(node: *mut Node<K, V>) -> u8 {
    // SAFETY: `with_links`' 1: our 1; its 2: our 2 (the lock guards the links, and the
    // closure only reads them).
    let queued = unsafe { QueueField::with_links(node, |l| !l.prev.is_null()) };
    if !queued {
        return NONE;
    }
    // SAFETY: alive (our 1), so a shared reference may be made to read its `meta`.
    if unsafe { &*node }.in_main() {
        MAIN
    } else {
        SMALL
    }
}

/// The tag of queue `id`'s list: not a node (its low bit is set) and not null, so that
/// every queued node's `prev` is non-null.
fn tag<K, V>(id: u8) -> *mut Node<K, V> {
    ptr::without_provenance_mut(1 | usize::from(id) << 1)
}

/// A FIFO of nodes (oldest at the front) and their total weight.
#[derive(Debug)]
pub(crate) struct Deque<K, V> {
    /// Oldest first; the list's tag is [`tag`]`(id)`, so that no queued node's `prev` is
    /// null.
    list: List<QueueField<K, V>>,
    back: *mut Node<K, V>,
    /// Which queue this is ([`SMALL`] or [`MAIN`]), marked on its nodes.
    id: u8,
    pub(crate) len: usize,
    pub(crate) weight: u64,
}

impl<K, V> Deque<K, V> {
    pub(crate) fn new(id: u8) -> Self {
        debug_assert!(id == SMALL || id == MAIN, "queue id {id}");
        Self {
            list: List::default(),
            back: ptr::null_mut(),
            id,
            len: 0,
            weight: 0,
        }
    }

    /// The queue's state for a failed check's message: (id, front, back, len, weight).
    fn shape(&self) -> (u8, *mut Node<K, V>, *mut Node<K, V>, usize, u64) {
        (self.id, self.list.head(), self.back, self.len, self.weight)
    }

    /// Whether the ends and the counts agree: both ends null exactly when the queue is
    /// empty, and an empty queue weighs nothing (O(1): no walk).
    fn ends_agree(&self) -> bool {
        self.list.is_empty() == self.back.is_null()
            && self.list.is_empty() == (self.len == 0)
            && (self.len != 0 || self.weight == 0)
    }

    /// Appends `node` (in no queue).
    ///
    /// # Safety
    /// 1. `node` is alive, extended, with its allocation's provenance, and stays alive
    ///    until it is popped or unlinked.
    /// 2. `node` is in no queue.
    /// 3. Every node in this queue is alive (as each push promised).
    /// 4. The caller holds the maintenance lock.
    pub(crate) unsafe fn push_back(&mut self, node: *mut Node<K, V>) {
        debug_assert!(
            self.ends_agree(),
            "queue (id, front, back, len, weight) {:?}",
            self.shape()
        );
        // SAFETY: `queue_of`'s 1 and 2: our 1 and 4; the dereference for `set_in_main`:
        // alive (our 1). `push_front`'s and `insert_after`'s 1: our 1; their 2: in no
        // queue (our 2), so its queue links are clear; 3: our 3 (`back` is on this list);
        // 4: our 4, the lock guarding every node's queue links; `push_front`'s 5: `tag`
        // sets the low bit, so it is no node, and it is this list's tag on every push.
        unsafe {
            debug_assert_eq!(queue_of(node), NONE, "{node:p} is queued already");
            (*node).set_in_main(self.id == MAIN);
            if self.back.is_null() {
                self.list.push_front(tag(self.id), node);
            } else {
                self.list.insert_after(self.back, node);
            }
        }
        self.back = node;
        self.len += 1;
        // SAFETY: `weight_of`'s 1 and 2: our 1 (alive, with its provenance).
        self.weight += u64::from(unsafe { weight_of(node) });
    }

    /// The oldest node, left in place.
    pub(crate) fn front(&self) -> Option<*mut Node<K, V>> {
        let front = self.list.head();
        (!front.is_null()).then_some(front)
    }

    /// The first of the `depth` oldest nodes whose access counter is zero (the one a CLOCK
    /// hand starting at the front would take, if it is that close), else the oldest; `None`
    /// when the queue is empty. Reads links and counters only: it moves nothing.
    ///
    /// # Safety
    /// 1. Every node in this queue is alive (as each push promised).
    /// 2. The caller holds the maintenance lock.
    pub(crate) unsafe fn first_cold(&self, depth: usize) -> Option<*mut Node<K, V>> {
        let front = self.front()?;
        let mut node = front;
        for _ in 0..depth {
            // SAFETY: `node` is in this queue (the front, or a `next` link of a node in it),
            // so alive (our 1); `freq` is an atomic load, and `with_links`' 1 (alive, and
            // with the provenance its push was given) and 2 (our 2: the lock guards the
            // links; the closure only reads them) hold.
            let next = unsafe {
                if (*node).freq() == 0 {
                    return Some(node);
                }
                QueueField::with_links(node, |l| l.next)
            };
            if next.is_null() {
                break;
            }
            node = next;
        }
        Some(front)
    }

    /// The oldest node, taken out.
    ///
    /// # Safety
    /// 1. Every node in this queue is alive (as each push promised).
    /// 2. The caller holds the maintenance lock.
    pub(crate) unsafe fn pop_front(&mut self) -> Option<*mut Node<K, V>> {
        let node = self.front()?;
        // SAFETY: `unlink`'s 1: the front is in this queue, and is the pointer its push was
        // given (with its provenance: `push_back`'s 1); its 2 and 3: our 1 and 2.
        unsafe { self.unlink(node) };
        Some(node)
    }

    /// Takes `node`, which is in this queue, out in O(1).
    ///
    /// # Safety
    /// 1. `node` is in this queue and carries its allocation's provenance.
    /// 2. Every node in this queue is alive (as each push promised).
    /// 3. The caller holds the maintenance lock.
    pub(crate) unsafe fn unlink(&mut self, node: *mut Node<K, V>) {
        debug_assert!(
            self.len > 0 && self.ends_agree(),
            "unlinking from queue (id, front, back, len, weight) {:?}",
            self.shape()
        );
        // SAFETY: `queue_of`'s 1 for `node`: in this queue (our 1), so alive (our 2) and
        // extended (`push_back`'s 1), with its provenance (our 1); its 2: our 3.
        // `weight_of`'s 1 and 2: alive, with its provenance (as just said).
        // `List::unlink`'s 1: our 1 (this queue's nodes are its list's); its 2: our 2;
        // its 3: our 3, the lock guarding every node's queue links.
        unsafe {
            debug_assert_eq!(
                queue_of(node),
                self.id,
                "{node:p} is not in {:?}",
                self.shape()
            );
            let prev = self.list.unlink(node);
            if self.back == node {
                self.back = if is_node(prev) { prev } else { ptr::null_mut() };
            }
            let w = u64::from(weight_of(node));
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
