//! An operation's departures, and its unpinned phase, as one value.
//!
//! Every write works in two phases (see the `cache` module docs; a read has the second only
//! when it takes a maintenance turn, see `read`): pinned, it takes
//! entries out of the table and, if its segment is due, takes a maintenance turn; then,
//! unpinned and with no lock held, the listener hears of every entry that left, and the
//! segment seals and frees a little. [`Departures`] is that second phase. An operation
//! makes one *before* it pins (so it is dropped after the pin), puts in it every hold it
//! takes (its own departures, then those its turn took out), and the phase runs when the
//! value is dropped: at the end of the operation, or while a panic in user code that ran
//! between the two phases (a `V::clone`, a `Hash`, an `Eq`, `retain`'s predicate)
//! unwinds through it. So a departure cannot be lost by a call site that forgets it: a
//! hold lives only here or in the listener's queue, and the listener hears of it whatever
//! path the operation leaves by.

use super::Inner;
use crate::segment::{Held, Segment, FREE_BUDGET};
use std::mem::ManuallyDrop;

/// The departures of one operation on one segment (see the module docs).
pub(super) struct Departures<'c, K, V, S> {
    inner: &'c Inner<K, V, S>,
    /// The segment the operation worked in (sealed, and after a turn freed, at the end).
    segment: &'c Segment<K, V>,
    /// The operation's own departures (what it removed or replaced, a value it did not
    /// store), heard first. Only pushed to; emptied only by `deliver`, which leaves an
    /// unallocated vector, so an empty one needs no drop (see `end`).
    pub(super) own: ManuallyDrop<Vec<Held<K, V>>>,
    /// What its maintenance turns took out (as `own`).
    pub(super) turn: ManuallyDrop<Vec<Held<K, V>>>,
    /// Whether it took a turn (then it frees a bounded slice at the end).
    pub(super) turned: bool,
}

impl<'c, K, V, S> Departures<'c, K, V, S> {
    /// An empty set for an operation on segment `index` (allocates nothing).
    #[inline]
    pub(super) fn new(inner: &'c Inner<K, V, S>, index: usize) -> Self {
        Self {
            inner,
            segment: &inner.segments[index],
            own: ManuallyDrop::new(Vec::new()),
            turn: ManuallyDrop::new(Vec::new()),
            turned: false,
        }
    }

    /// The segment the operation works in.
    #[inline]
    pub(super) fn segment(&self) -> &'c Segment<K, V> {
        self.segment
    }

    /// Ends the operation: the unpinned phase. Call it where the operation's pin has
    /// ended. (Dropping it does the same; this spares the common path the drop glue's
    /// call.)
    #[inline(always)]
    pub(super) fn finish(mut self) {
        self.end();
        // Nothing is left to drop: `end` emptied both vectors, unallocated (see `own`).
        std::mem::forget(self);
    }
}

impl<K, V, S> Departures<'_, K, V, S> {
    /// The unpinned phase (see the module docs): the listener, then sealing and, after a
    /// turn, a bounded slice of freeing.
    #[inline(always)]
    fn end(&mut self) {
        // The common case (nothing held, nothing queued) reads two lengths and a flag.
        if !self.own.is_empty() || !self.turn.is_empty() || self.inner.notifier.has_queued() {
            self.deliver();
        }
        // Both vectors are now empty and unallocated (see `own`), so not dropping them
        // (`ManuallyDrop`) leaks nothing; it spares every operation two calls.
        debug_assert!(self.own.capacity() == 0 && self.turn.capacity() == 0);
        let segment = self.segment;
        segment.reclaim.seal_if_full();
        // Unwinding: the listener has heard and the holds are released; freeing (which
        // runs `Drop`s) waits for the next operation.
        if self.turned && !std::thread::panicking() {
            segment.free_ready(FREE_BUDGET);
        }
    }

    /// Tells the listener of what is held (and of what listeners queued meanwhile), the
    /// operation's own departures first.
    #[cold]
    #[inline(never)]
    fn deliver(&mut self) {
        let own = std::mem::take(&mut *self.own);
        let turn = std::mem::take(&mut *self.turn);
        self.inner.notifier.deliver(own.into_iter().chain(turn));
    }
}

impl<K, V, S> Drop for Departures<'_, K, V, S> {
    fn drop(&mut self) {
        self.end();
    }
}
