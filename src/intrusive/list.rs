//! The intrusive doubly linked list: the wheel's slots and the eviction queues.
//!
//! A list is its first node's address; each node's [`Links`] hold its neighbours. The
//! first node's `prev` is not null but the list's *tag*: any value that is not a node
//! pointer (null, or an address with the low bit set, which no node has, nodes being at
//! least 2-aligned). Its owner picks it; the wheel writes its level and slot there, so
//! cancelling a node that leads its slot needs no deadline to find the slot, and the
//! eviction queues a non-null tag, so that a node's `prev` is null exactly when it is on
//! no list (their way of telling membership). The last node's `next` is null.
//!
//! Invariants, for a list `l` whose nodes are `n1 .. nk`:
//! 1. `l.head` is `n1`, or null when `k = 0`;
//! 2. `n1.prev` is the tag, `ni.prev = n(i-1)` for `i > 1`, `ni.next = n(i+1)`, `nk.next`
//!    is null;
//! 3. a node is on at most one list per links field, and a node on no list has a null
//!    `prev` (its `next` may serve another structure meanwhile: an entry's `wheel.next` is
//!    its stack link while it is in no wheel slot); unlinking clears both.
//!
//! The list does not lock: every method touches links its caller must own, which the
//! callers do by holding their segment's maintenance lock. Each method checks the
//! invariants it touches with `debug_assert!`s that print the pointers involved.

use std::fmt;
use std::marker::PhantomData;
use std::ptr;

/// A node's links for one list.
#[derive(Debug)]
pub(crate) struct Links<T> {
    pub(crate) prev: *mut T,
    pub(crate) next: *mut T,
}

impl<T> Links<T> {
    /// The links of a node on no list.
    pub(crate) const fn new() -> Self {
        Self {
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
        }
    }
}

/// Names the [`Links`] field a list threads its nodes through (an adapter type).
///
/// # Safety
/// Implementors promise that `with_links` hands `f` the same `Links` field of `node` on
/// every call, a field that no other adapter names, and writes nothing else (it may read
/// immutable or atomic state to find the field). The list relies on node pointers being
/// non-null and at least 2-aligned (so that no node is taken for a tag); `List` checks the
/// alignment at compile time.
pub(crate) unsafe trait ListLinks {
    type Node;

    /// Runs `f` on `node`'s links.
    ///
    /// # Safety
    /// 1. `node` is alive and carries its allocation's provenance while `f` runs.
    /// 2. No other access to these links exists while `f` runs (the caller holds the lock
    ///    that guards them), and `f` does not reach them another way.
    unsafe fn with_links<R>(
        node: *mut Self::Node,
        f: impl FnOnce(&mut Links<Self::Node>) -> R,
    ) -> R;
}

/// Whether `p` is a node rather than a list tag.
pub(crate) fn is_node<T>(p: *mut T) -> bool {
    !p.is_null() && p.addr() & 1 == 0
}

/// `node`'s (prev, next).
///
/// # Safety
/// `with_links`' 1 and 2 for `node`.
unsafe fn links<A: ListLinks>(node: *mut A::Node) -> (*mut A::Node, *mut A::Node) {
    // SAFETY: `with_links`' 1 and 2: ours.
    unsafe { A::with_links(node, |l| (l.prev, l.next)) }
}

/// The tag of the list `node` leads, or `None` when it has a predecessor.
///
/// # Safety
/// 1. `node` is alive, carries its allocation's provenance, and is on a list threaded
///    through `A`'s links.
/// 2. The caller owns those links (holds the lock that guards them).
pub(crate) unsafe fn tag_if_first<A: ListLinks>(node: *mut A::Node) -> Option<*mut A::Node> {
    // SAFETY: `links`' 1 and 2: our 1 and 2.
    let prev = unsafe { links::<A>(node).0 };
    (!is_node(prev)).then_some(prev)
}

/// Takes `node`, which is on a list but not first on it, out between its neighbours;
/// no list's head changes, so the list itself is not needed.
///
/// # Safety
/// 1. `node` is alive, carries its allocation's provenance, and is on a list threaded
///    through `A`'s links, not first on it.
/// 2. Its neighbours there are alive.
/// 3. The caller owns the links of that list's nodes (holds the lock that guards them).
pub(crate) unsafe fn splice_out<A: ListLinks>(node: *mut A::Node) {
    // SAFETY: `links`' 1 and 2 for `node` and its prev: our 1 to 3. `detach`'s 1 to 3: our
    // 1 to 3, with `node`'s own links just read.
    unsafe {
        let (prev, next) = links::<A>(node);
        debug_assert!(
            is_node(prev) && links::<A>(prev).1 == node,
            "splicing out {node:p}, whose prev {prev:p} is a tag or does not lead back"
        );
        detach::<A>(node, prev, next);
    }
}

/// Joins `node`'s neighbours to each other (a tag `prev` is handed on to `next`, which
/// then leads the list) and clears `node`'s links. The list's head is the caller's.
///
/// # Safety
/// 1. `node` is alive and on a list threaded through `A`'s links, with links `(prev,
///    next)`.
/// 2. Its neighbours there are alive.
/// 3. The caller owns the links of that list's nodes.
unsafe fn detach<A: ListLinks>(node: *mut A::Node, prev: *mut A::Node, next: *mut A::Node) {
    // SAFETY: `with_links`' (and `links`') 1 for `node` and its neighbours: our 1 and 2;
    // their 2: our 3, and each closure touches only the links it is given.
    unsafe {
        if is_node(prev) {
            A::with_links(prev, |l| l.next = next);
        }
        if !next.is_null() {
            debug_assert!(
                links::<A>(next).0 == node,
                "{node:p}'s next {next:p} has prev {:p}",
                links::<A>(next).0
            );
            A::with_links(next, |l| l.prev = prev);
        }
        A::with_links(node, |l| *l = Links::new());
    }
}

/// A list of nodes threaded through `A`'s links (see the module docs).
pub(crate) struct List<A: ListLinks> {
    head: *mut A::Node,
    _links: PhantomData<A>,
}

impl<A: ListLinks> fmt::Debug for List<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List").field("head", &self.head).finish()
    }
}

impl<A: ListLinks> Default for List<A> {
    fn default() -> Self {
        Self {
            head: ptr::null_mut(),
            _links: PhantomData,
        }
    }
}

impl<A: ListLinks> List<A> {
    /// The first node, or null.
    pub(crate) fn head(&self) -> *mut A::Node {
        self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Links `node` first, with `tag` as the list's tag.
    ///
    /// # Safety
    /// 1. `node` is alive, with its allocation's provenance, and stays alive until it is
    ///    popped or unlinked.
    /// 2. `node` is on no list threaded through `A`'s links.
    /// 3. Every node on this list is alive.
    /// 4. The caller owns the links of `node` and of this list's nodes (holds the lock
    ///    that guards them).
    /// 5. `tag` is not a node ([`is_node`] is false) and is this list's tag on every push.
    pub(crate) unsafe fn push_front(&mut self, tag: *mut A::Node, node: *mut A::Node) {
        const {
            assert!(
                std::mem::align_of::<A::Node>() >= 2,
                "nodes must be 2-aligned"
            )
        };
        debug_assert!(!is_node(tag), "{tag:p} is a node, not a list tag");
        debug_assert!(node.addr() & 1 == 0, "{node:p} is not 2-aligned");
        let head = self.head;
        // SAFETY: `links`' and `with_links`' 1 and 2 for `node`: our 1 and 4; for `head`:
        // our 3 and 4 (each closure touches only the links it is given).
        unsafe {
            debug_assert!(
                links::<A>(node).0.is_null(),
                "pushing {node:p}, already on a list (links {:?}), onto {tag:p}",
                links::<A>(node)
            );
            debug_assert!(
                head.is_null() || links::<A>(head).0 == tag,
                "head {head:p} of {tag:p} has prev {:p}",
                links::<A>(head).0
            );
            A::with_links(node, |l| {
                *l = Links {
                    prev: tag,
                    next: head,
                }
            });
            if !head.is_null() {
                A::with_links(head, |l| l.prev = node);
            }
        }
        self.head = node;
    }

    /// Links `node` right after `at`.
    ///
    /// # Safety
    /// 1. `node` is alive, with its allocation's provenance, and stays alive until it is
    ///    popped or unlinked.
    /// 2. `node` is on no list threaded through `A`'s links.
    /// 3. `at` is on this list, and every node on it is alive.
    /// 4. The caller owns the links of `node` and of this list's nodes.
    pub(crate) unsafe fn insert_after(&mut self, at: *mut A::Node, node: *mut A::Node) {
        const {
            assert!(
                std::mem::align_of::<A::Node>() >= 2,
                "nodes must be 2-aligned"
            )
        };
        debug_assert!(node.addr() & 1 == 0, "{node:p} is not 2-aligned");
        // SAFETY: `links`' and `with_links`' 1 and 2 for `node`: our 1 and 4; for `at` and
        // its successor: our 3 and 4 (each closure touches only the links it is given).
        unsafe {
            debug_assert!(
                self.head == at || is_node(links::<A>(at).0),
                "inserting after {at:p}, which is not on this list"
            );
            debug_assert!(
                links::<A>(node).0.is_null(),
                "inserting {node:p}, already on a list (links {:?})",
                links::<A>(node)
            );
            let next = links::<A>(at).1;
            A::with_links(node, |l| *l = Links { prev: at, next });
            A::with_links(at, |l| l.next = node);
            if !next.is_null() {
                debug_assert!(
                    links::<A>(next).0 == at,
                    "{at:p}'s next {next:p} does not lead back"
                );
                A::with_links(next, |l| l.prev = node);
            }
        }
    }

    /// Takes the first node out.
    ///
    /// # Safety
    /// 1. Every node on this list is alive.
    /// 2. The caller owns the links of this list's nodes.
    pub(crate) unsafe fn pop_front(&mut self) -> Option<*mut A::Node> {
        let node = self.head;
        if node.is_null() {
            return None;
        }
        // SAFETY: `unlink`'s 1: the head is on this list, and is the pointer its push was
        // given (with its allocation's provenance: the push's 1); its 2 and 3: our 1 and 2.
        unsafe { self.unlink(node) };
        Some(node)
    }

    /// Takes `node`, which is on this list, out in O(1); returns its old `prev` (a node,
    /// or this list's tag when it was first).
    ///
    /// # Safety
    /// 1. `node` is on this list and carries its allocation's provenance.
    /// 2. Every node on this list is alive.
    /// 3. The caller owns the links of this list's nodes.
    pub(crate) unsafe fn unlink(&mut self, node: *mut A::Node) -> *mut A::Node {
        // SAFETY: `links`' 1 and 2: `node` is alive (our 1 and 2); our 3.
        let (prev, next) = unsafe { links::<A>(node) };
        debug_assert!(
            (self.head == node) != is_node(prev),
            "unlinking {node:p} (prev {prev:p}) from a list headed by {:p}",
            self.head
        );
        if is_node(prev) {
            // SAFETY: `splice_out`'s 1: on this list (our 1), not first (its prev is a
            // node); its 2: neighbours on this list are alive (our 2); its 3: our 3.
            unsafe { splice_out::<A>(node) };
            return prev;
        }
        // SAFETY: `detach`'s 1: `node` is on this list (our 1) with these links; its 2:
        // its successor is on this list, so alive (our 2); its 3: our 3.
        unsafe { detach::<A>(node, prev, next) };
        self.head = next;
        prev
    }
}
