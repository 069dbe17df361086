//! An operation's departures, and its unpinned phase, as one value.
//!
//! Every operation works in two phases (see the `cache` module docs): pinned, it takes
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
use crate::segment::{Held, FREE_BUDGET};

/// The departures of one operation on one segment (see the module docs).
pub(super) struct Departures<'c, K, V, S> {
    inner: &'c Inner<K, V, S>,
    /// The segment the operation worked in (sealed, and after a turn freed, at the end).
    index: usize,
    /// The operation's own departures (what it removed or replaced, a value it did not
    /// store), heard first.
    pub(super) own: Vec<Held<K, V>>,
    /// What its maintenance turns took out.
    pub(super) turn: Vec<Held<K, V>>,
    /// Whether it took a turn (then it frees a bounded slice at the end).
    pub(super) turned: bool,
}

impl<'c, K, V, S> Departures<'c, K, V, S> {
    /// An empty set for an operation on segment `index` (allocates nothing).
    #[inline]
    pub(super) fn new(inner: &'c Inner<K, V, S>, index: usize) -> Self {
        Self {
            inner,
            index,
            own: Vec::new(),
            turn: Vec::new(),
            turned: false,
        }
    }

    /// The segment the operation works in.
    #[inline]
    pub(super) fn index(&self) -> usize {
        self.index
    }

    /// Ends the operation: the unpinned phase (the same as dropping it, named for the
    /// reader). Call it where the operation's pin has ended.
    #[inline]
    pub(super) fn finish(self) {}
}

impl<K, V, S> Drop for Departures<'_, K, V, S> {
    #[inline]
    fn drop(&mut self) {
        let inner = self.inner;
        let own = std::mem::take(&mut self.own);
        let turn = std::mem::take(&mut self.turn);
        inner.notifier.deliver(own.into_iter().chain(turn));
        if std::thread::panicking() {
            // Unwinding: the listener has heard, the holds are released; sealing and
            // freeing (which runs `Drop`s) wait for the next operation.
            return;
        }
        let segment = &inner.segments[self.index];
        segment.table.reclaim.seal_if_full();
        if self.turned {
            segment.free_ready(FREE_BUDGET);
        }
    }
}
