//! The intrusive Treiber stack: the writers' hand-off, reclamation's limbo and its sealed
//! batches.
//!
//! Any thread [`push`](Stack::push)es: it writes the node's link to the head it saw, then
//! swings the head to the node with a `Release` CAS, retrying on a lost race (Treiber,
//! "Systems Programming: Coping with Parallelism", IBM RJ 5118, 1986). A taker
//! [`take`](Stack::take)s everything at once with an `Acquire` swap to null and walks the
//! returned [`Chain`] alone, newest node first (or oldest first, turned by
//! [`Chain::reversed_within`]). The `Release`/`Acquire` pair makes each
//! pushed node's link, and whatever its pusher wrote before pushing, visible to the taker.
//!
//! There is no single-node pop, so the ABA hazard of Treiber's pop (a node popped, freed
//! or re-pushed while another popper still holds it) cannot arise: a push's CAS only
//! compares the head it wrote into its own node's link, and a node is never on a stack
//! twice (the pusher's obligation).

use crate::sync::{AtomicPtr, Ordering};
use std::fmt;
use std::marker::PhantomData;
use std::ptr;

/// Names the link field a stack threads its nodes through (an adapter type).
///
/// # Safety
/// Implementors promise that `next` reads back what `set_next` last wrote to the same
/// field of the same node, and that neither touches anything else.
pub(crate) unsafe trait StackLink {
    type Node;

    /// Writes `node`'s link.
    ///
    /// # Safety
    /// 1. `node` is alive.
    /// 2. No other access to the link exists now (the caller owns it: see
    ///    [`Stack::push`]'s 2), and every earlier one happens-before this call.
    unsafe fn set_next(node: *mut Self::Node, next: *mut Self::Node);

    /// Reads `node`'s link.
    ///
    /// # Safety
    /// As for `set_next`: 1. `node` is alive; 2. no write of the link races this read and
    /// the last one happens-before it.
    unsafe fn next(node: *mut Self::Node) -> *mut Self::Node;
}

/// A lock-free stack of nodes threaded through `A`'s link (see the module docs).
pub(crate) struct Stack<A: StackLink> {
    head: AtomicPtr<A::Node>,
    _link: PhantomData<A>,
}

impl<A: StackLink> fmt::Debug for Stack<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("head", &self.head.load(Ordering::Relaxed))
            .finish()
    }
}

impl<A: StackLink> Default for Stack<A> {
    fn default() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            _link: PhantomData,
        }
    }
}

impl<A: StackLink> Stack<A> {
    /// Pushes `node`.
    ///
    /// # Safety
    /// 1. `node` is alive, with its allocation's provenance, and stays alive until a
    ///    [`take`](Self::take) returns it and its taker is done with it.
    /// 2. The caller owns `node`'s link until then: `node` is on no stack, and no other
    ///    thread reads or writes the link before a take hands it over; every earlier
    ///    access to the link happens-before this call.
    /// 3. Handing `node` to whichever thread takes it is sound for its type (a `Stack` is
    ///    `Send + Sync` whatever its nodes are; the stacks' owners require
    ///    `K, V: Send + Sync`).
    pub(crate) unsafe fn push(&self, node: *mut A::Node) {
        // Relaxed: a first guess for the CAS below, which checks it; nothing is read
        // through it.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `set_next`'s 1: our 1; its 2: our 2 (until the CAS publishes the
            // node, the link is ours alone).
            unsafe { A::set_next(node, head) };
            // Release pairs with the Acquire swap in `take`: the link, and what the pusher
            // wrote before pushing, are visible to the taker.
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    /// Whether the stack looked empty. Relaxed: a hint for when to take, which pairs with
    /// nothing; the take itself is the truth.
    pub(crate) fn looks_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Takes every node pushed so far, newest first.
    pub(crate) fn take(&self) -> Chain<A> {
        // An empty stack is left alone: most takes (a turn's look at the sealed batches,
        // a seal's at each lane's limbo) find nothing, and the swap is a locked RMW. A
        // push the load misses is one the swap could have missed too, had it come first.
        // Relaxed: nothing is read through a null head.
        if self.head.load(Ordering::Relaxed).is_null() {
            return Chain::from_head(ptr::null_mut());
        }
        // Acquire pairs with the Release CAS in `push`: every taken node's link is visible.
        Chain::from_head(self.head.swap(ptr::null_mut(), Ordering::Acquire))
    }
}

/// Nodes taken off a [`Stack`], owned by whoever holds this: walked with
/// [`pop`](Self::pop), newest first unless [`reversed_within`](Self::reversed_within)
/// turned them. Dropping a chain that is not empty forgets its nodes
/// (it owns no memory of theirs): every holder walks it to the end or settles what is
/// left, as `Segment`'s and `Reclaim`'s `Drop`s do.
pub(crate) struct Chain<A: StackLink> {
    head: *mut A::Node,
    _link: PhantomData<A>,
}

impl<A: StackLink> fmt::Debug for Chain<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain").field("head", &self.head).finish()
    }
}

impl<A: StackLink> Default for Chain<A> {
    fn default() -> Self {
        Self::from_head(ptr::null_mut())
    }
}

impl<A: StackLink> Chain<A> {
    /// The chain that starts at `head` (null for none) and follows `A`'s links.
    pub(crate) fn from_head(head: *mut A::Node) -> Self {
        Self {
            head,
            _link: PhantomData,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// The first node, without taking it (null for none): for a prefetch, say.
    pub(crate) fn first(&self) -> *mut A::Node {
        self.head
    }

    /// Takes the first node off the chain; its link is read before it is returned, so the
    /// caller may reuse the link (or free the node) at once.
    ///
    /// # Safety
    /// 1. The chain's first node is alive, with its allocation's provenance.
    /// 2. The chain's links are the holder's: taken off a stack (whose `take` ordered
    ///    their writes before this) and written since only by the holder (as
    ///    [`reversed_within`](Self::reversed_within) does).
    pub(crate) unsafe fn pop(&mut self) -> Option<*mut A::Node> {
        let node = self.head;
        if node.is_null() {
            return None;
        }
        // SAFETY: `next`'s 1: our 1; its 2: our 2.
        self.head = unsafe { A::next(node) };
        Some(node)
    }

    /// The same nodes in the opposite order (oldest first, for a chain taken off a
    /// stack), relinked in place, if there are at most `limit` of them; otherwise the
    /// chain as it was (`Err`). Either way it visits at most `limit + 1` nodes, twice.
    ///
    /// # Safety
    /// 1. Every node of the chain is alive, with its allocation's provenance.
    /// 2. The chain's links are the holder's, as for [`pop`](Self::pop)'s 2: nothing else
    ///    reads or writes them while this runs.
    pub(crate) unsafe fn reversed_within(mut self, limit: usize) -> Result<Self, Self> {
        let mut reversed = Self::from_head(ptr::null_mut());
        for _ in 0..=limit {
            // SAFETY: `pop`'s 1: our 1, for each node in turn as it comes first; its 2:
            // our 2.
            let Some(node) = (unsafe { self.pop() }) else {
                return Ok(reversed);
            };
            // SAFETY: `set_next`'s 1: our 1; its 2: the link is ours (our 2), and `pop`
            // has read it already.
            unsafe { A::set_next(node, reversed.head) };
            reversed.head = node;
        }
        // Too long: turn the part taken back onto the rest, as it was.
        // SAFETY: `pop`'s 1: our 1 (the same nodes, all alive); its 2: our 2 (their links
        // are ours, last written by this call).
        while let Some(node) = unsafe { reversed.pop() } {
            // SAFETY: `set_next`'s 1: our 1; its 2: our 2, and `pop` has read the link.
            unsafe { A::set_next(node, self.head) };
            self.head = node;
        }
        Err(self)
    }
}
