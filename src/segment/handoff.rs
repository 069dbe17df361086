//! The writers' side of the hand-off: what a write, a removal or a re-filing read
//! records for the maintainer (the stack, the cancel ring and its overflow), and whether
//! the segment is due for a turn.

use super::{Segment, CANCELS, HANDOFF_BATCH};
use crate::clock::NEVER;
use crate::entry::links::WheelField;
use crate::entry::node::{Node, NodePtr, DETACHED, QUEUED, RELEASED, REMOVED, UNLINKED};
use crate::intrusive::{Chain, StackLink};
use crate::sync::{self, Ordering};
use std::marker::PhantomData;
use std::ptr;

/// The longest batch of hand-off requests a weighed cache's turn puts back in the order
/// they were pushed (see `take_stack`): twice the batch that makes a segment due, so a
/// turn taken on time always reorders, and one far behind does bounded extra work.
const REORDER_MAX: usize = 2 * HANDOFF_BATCH;

/// A ring request that found every slot taken, boxed for the overflow stack (the one
/// allocation on the hand-off's writer side, only when the maintainers are a whole ring
/// behind).
pub(super) struct Overflowed<K, V> {
    pub(super) node: *mut Node<K, V>,
    next: *mut Overflowed<K, V>,
}

/// The overflow stack's link: [`Overflowed::next`].
pub(super) struct OverflowLink<K, V>(PhantomData<fn() -> (K, V)>);

// SAFETY: `set_next` writes and `next` reads the same field, `Overflowed::next`, and
// nothing else.
unsafe impl<K, V> StackLink for OverflowLink<K, V> {
    type Node = Overflowed<K, V>;

    unsafe fn set_next(node: *mut Overflowed<K, V>, next: *mut Overflowed<K, V>) {
        // SAFETY: 1. the box is alive (`set_next`'s 1); 2. the link is the caller's alone
        // (`set_next`'s 2), so this write races with nothing.
        unsafe { (*node).next = next };
    }

    unsafe fn next(node: *mut Overflowed<K, V>) -> *mut Overflowed<K, V> {
        // SAFETY: 1. alive (`next`'s 1); 2. no write races this read (`next`'s 2).
        unsafe { (*node).next }
    }
}

impl<K, V> Segment<K, V> {
    /// Whether `node` goes through the hand-off: it has a deadline, an idle stamp or an
    /// extension (the eviction queues, the idle deadline and an expiry policy's timer are
    /// the maintainer's).
    #[inline]
    pub(super) fn maintained(&self, node: &Node<K, V>) -> bool {
        node.is_extended() || node.idle_in_meta() || node.deadline() != NEVER
    }

    /// The tick the wheel should fire `node` at: its TTL or policy deadline, or the
    /// earliest idle deadline if that comes first (a read may move the idle one later, and
    /// a policy's either way: the wheel re-files at the old one, and a read that moves one
    /// earlier asks for a re-file, see [`refile`](Self::refile)).
    pub(super) fn wheel_deadline(&self, node: NodePtr<'_, K, V>) -> u64 {
        let d = node.expiry_deadline();
        match node.idle() {
            // The stamp is a hint that only ever moves the deadline later; the wheel
            // re-reads it when the deadline comes.
            Some(idle) => d.min(self.limits.idle_deadline(idle)),
            None => d,
        }
    }

    /// Uncounts a departed node's weight.
    pub(super) fn refund(&self, node: NodePtr<'_, K, V>) {
        if node.ext().is_some() {
            self.limits.refund(node.weight());
        }
    }

    /// After linking `node` (made with `QUEUED` set when it has a deadline or an
    /// extension): queue its request. A node with neither never meets the maintainer.
    pub(crate) fn linked(&self, node: NodePtr<'_, K, V>) {
        if self.maintained(&node) {
            self.push(node);
        }
    }

    /// Remover duties for a node this thread took out of the table (won the slot's CAS):
    /// let go of the table's hold, tell the wheel side, and let go of the remover's hold
    /// unless `hold` (the caller will settle `RELEASED` itself once its listener has
    /// returned).
    pub(crate) fn removed(&self, node: NodePtr<'_, K, V>, hold: bool) {
        let released = if hold { 0 } else { RELEASED };
        self.refund(node);
        if !self.maintained(&node) {
            // Never queued, never scheduled: the wheel side is done already.
            self.reclaim
                .settle(node, REMOVED | UNLINKED | DETACHED | released);
        } else {
            // One RMW sets REMOVED and claims the request slot (see `remove_queued`).
            let old = node.remove_queued(!hold);
            if old & QUEUED == 0 {
                // Drained already (so scheduled, or firing): ask for a cancellation.
                self.push_cancel(node);
            }
        }
    }

    /// After a read moved `node`'s policy deadline earlier (a swap on its timer): asks the
    /// maintainer to file it again, on the cancel ring (its wheel links may be in use).
    /// The `QUEUED` flag keeps one request per node: if one is pending already (the
    /// node's scheduling request, a removal's, another read's), that one is served after
    /// this and reads the new deadline. A removed node needs none.
    pub(crate) fn refile(&self, node: NodePtr<'_, K, V>) {
        if node.ask_refile() {
            self.push_cancel(node);
        }
    }

    /// Queues a scheduling request for a new node (QUEUED, in no wheel slot).
    pub(super) fn push(&self, node: NodePtr<'_, K, V>) {
        // SAFETY: `push`'s 1: the node carries its allocation's provenance (a `NodePtr`),
        // and stays alive until the maintainer takes it: it is QUEUED, so not DETACHED, so
        // not retired. Its 2: the node is QUEUED and not yet on the stack, so we, its
        // inserter, own its `wheel` links: it is in no wheel slot (not yet drained) and no
        // other thread has touched them (it was only just published). Its 3: the table
        // already shares the node with every thread, and a cache stores only
        // `K, V: Send + Sync`.
        unsafe { self.handoff.stack.push(node.as_ptr()) };
        // An RMW, not `sync::bump_hint`: this pusher's own `due` check must see its count
        // unless a drain's reset came after it (see `queued`).
        self.handoff.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues a request for a drained node (QUEUED again, maybe in a wheel slot): a
    /// removal's cancellation or a read's re-file, in a free ring slot; when none is free,
    /// boxed on the overflow stack. Never waits for the lock.
    pub(super) fn push_cancel(&self, node: NodePtr<'_, K, V>) {
        // A lost bump only sends two requests to the same first slot (the CAS decides).
        let start = sync::bump_hint(&self.handoff.cancel_at);
        for i in 0..CANCELS {
            let slot = &self.handoff.cancels[(start + i) % CANCELS];
            // Relaxed load: a first look that skips taken slots; the CAS decides. The CAS's
            // Release pairs with the Acquire load that takes the slot in `Segment::apply`:
            // the node's flags are visible to the drainer.
            if slot.load(Ordering::Relaxed).is_null()
                && slot
                    .compare_exchange(
                        ptr::null_mut(),
                        node.as_ptr(),
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                // An RMW, as in `push`.
                self.handoff.queued.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        // The ring is full: the maintainers are a ring behind. Box the request rather than
        // wait for the lock (whose holder may be descheduled), and make the segment due.
        let boxed = Box::into_raw(Box::new(Overflowed {
            node: node.as_ptr(),
            next: ptr::null_mut(),
        }));
        // SAFETY: `push`'s 1: a live box from `Box::into_raw` just above, freed only by its
        // taker (`Segment::apply_overflow`, `Segment`'s `Drop`); its 2: ours alone until
        // this push publishes it; its 3: it carries a pointer to a node of a cache, which
        // stores only `K, V: Send + Sync`.
        unsafe { self.handoff.overflow.push(boxed) };
        // Relaxed: a hint for `due` (and `mark_due` below makes the segment due anyway).
        self.handoff.queued.fetch_add(1, Ordering::Relaxed);
        self.mark_due();
    }

    /// Whether a write at tick `now` should take its turn at maintenance (see the module
    /// docs). Relaxed loads: a stale answer only moves the turn to a neighbouring write.
    pub(crate) fn due(&self, now: u64) -> bool {
        now >= self.handoff.due_at.load(Ordering::Relaxed)
            || self.handoff.queued.load(Ordering::Relaxed) >= HANDOFF_BATCH
            || self.limits.over()
    }

    /// Whether the segment may hold an entry lapsed at `now`: its last turn left work, or
    /// ended at an earlier tick (a turn that caught up at tick `t` expired everything due
    /// by `t`, and an entry pushed after it cannot have lapsed by `t`: a TTL is at least a
    /// tick). Ignores the bound, unlike [`due`](Self::due).
    pub(crate) fn may_hold_lapsed(&self, now: u64) -> bool {
        // Relaxed: as in `due`.
        now >= self.handoff.due_at.load(Ordering::Relaxed)
    }

    /// Marks the segment due, so the next write or read turn comes at once.
    pub(super) fn mark_due(&self) {
        // Relaxed: a hint that publishes nothing and pairs with nothing; a stale read in
        // `due` only moves a turn to a neighbouring write.
        self.handoff.due_at.store(0, Ordering::Relaxed);
    }

    /// Takes the whole hand-off stack. Maintenance lock held. In a weighed cache a batch
    /// of up to [`REORDER_MAX`] requests is turned oldest first, so that the eviction
    /// queues admit entries in the order they were linked: newest first, the newest entry
    /// of a batch went to the front of the small queue, its next victim, and a write's own
    /// turn could evict the entry it had just inserted (in a bound of 100 over 8 segments,
    /// before segments were capped by the bound, an `insert(k); get(k)` missed 3 times in
    /// 300 as the cache first filled). The wheel does not care about the order.
    pub(super) fn take_stack(&self) -> Chain<WheelField<K, V>> {
        // Reset first, so pushes that miss this take count towards the next turn. Not
        // always: `Stack::take` starts with a load that may pass this store (x86 lets a
        // load pass an earlier store to another line), so a push it misses can have its
        // count wiped by the reset. That push is still not stranded: the holder's
        // post-unlock fence and look at the stack (`maintain`) find it, and go round or
        // mark the segment due.
        self.handoff.queued.store(0, Ordering::Relaxed);
        let newest_first = self.handoff.stack.take();
        if !self.limits.weighed {
            return newest_first;
        }
        // SAFETY: `reversed_within`'s 1: every node on the hand-off is QUEUED, so not
        // DETACHED (only the maintenance lock's holder, our caller, detaches it, after
        // taking its request), so not retired and alive; stack links carry the pointer
        // `push` was given, a `NodePtr`'s, with its allocation's provenance. Its 2: the
        // take made the chain ours, its Acquire ordered the pushes' writes of the links,
        // and a QUEUED node whose request is not applied is in no wheel slot, so nothing
        // else reads or writes them while the lock is held.
        match unsafe { newest_first.reversed_within(REORDER_MAX) } {
            Ok(oldest_first) => oldest_first,
            // A longer batch (writers far ahead of the turns) stays newest first: the
            // reordering is work outside the turn's budget, so it is bounded.
            Err(newest_first) => newest_first,
        }
    }
}
