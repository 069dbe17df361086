//! Maintenance driven by callers: the turns writes and reads take, the unpinned phase
//! that delivers departures, full turns (`run_pending_tasks`, the reaper), and the
//! cache's teardown.

use super::{Inner, MAX_RECLAIM_WAIT};
use crate::entry::departure::Held;
use crate::entry::node::{NodePtr, RELEASED};
use crate::entry::reclaim::{self, Progress};
use crate::segment::{Fired, Mode, Segment, Turn, FREE_BUDGET};
use crate::stats::Event;
use crate::sync::{self, Patience};
use crossbeam_epoch::{self as epoch, Guard};
use std::cell::Cell;
use std::hash::{BuildHasher, Hash};

/// Reads per thread between two looks at whether the read's segment is due for maintenance.
pub(crate) const READ_TURN_EVERY: u32 = 64;

sync::thread_cell! {
    /// Reads this thread made since its last look (see [`READ_TURN_EVERY`]).
    static READS: Cell<u32> = Cell::new(0);
}

sync::thread_cell! {
    /// Which other segment this thread's next over-the-bound write helps (round robin).
    static HELPED: Cell<usize> = Cell::new(0);
}

fn next_helped() -> usize {
    HELPED.with(|h| {
        let n = h.get().wrapping_add(1);
        h.set(n);
        n
    })
}

/// Counts a read; true once every [`READ_TURN_EVERY`] reads on this thread.
#[inline]
pub(super) fn read_turn_owed() -> bool {
    READS.with(|r| {
        let n = r.get().wrapping_add(1);
        r.set(n);
        n % READ_TURN_EVERY == 0
    })
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// Full turns over every segment, bounded by what is due at `now` and queued when each
    /// segment's first turn begins; then the listener for every expiry, and sealing. Returns
    /// which segments' tables are migrating.
    pub(super) fn maintain_all(&self, now: u64) -> Vec<bool> {
        let mut migrating = vec![false; self.segments.len()];
        for (index, migrating) in migrating.iter_mut().enumerate() {
            let mut drained = false;
            loop {
                let mut fired = Vec::new();
                let turn = self.turn(index, now, Mode::Full { drain: !drained }, &mut fired);
                drained |= turn.drained;
                *migrating = turn.migrating;
                self.notifier.deliver(fired, |h| self.release(h));
                if drained && !turn.due_left {
                    break;
                }
            }
        }
        self.enforce_bound(now);
        // Departures queued by listeners (this thread's delivery loop takes a few rounds).
        self.notifier.deliver(None, |h| self.release(h));
        for segment in self.segments.iter() {
            segment.table.reclaim.seal();
        }
        migrating
    }

    /// While the total weight is over the bound, goes round the segments evicting (each
    /// segment's turns see the same global total). Bounded: it stops after a round that
    /// evicted nothing, or once it has evicted as many entries as the cache held when it
    /// began (what concurrent writers add meanwhile is theirs to evict).
    pub(super) fn enforce_bound(&self, now: u64) {
        let mut allowance = self.len() + 1;
        while self.limits.over() && allowance > 0 {
            let mut evicted = 0;
            for index in 0..self.segments.len() {
                if !self.limits.over() {
                    break;
                }
                let mut fired = Vec::new();
                let turn = self.turn(index, now, Mode::Full { drain: false }, &mut fired);
                evicted += turn.evicted;
                self.notifier.deliver(fired, |h| self.release(h));
            }
            if evicted == 0 {
                break;
            }
            allowance = allowance.saturating_sub(evicted);
        }
    }

    pub(super) fn run_pending_tasks(&self) {
        let now = self.ticker.now();
        let mut migrating = self.maintain_all(now);
        // Free everything sealed so far, waiting for grace periods while other threads'
        // pins allow (bounded), never for pins of this thread's own.
        let may_wait = !epoch::is_pinned() && !reclaim::is_freeing();
        // Departures other threads' turns took out before ours ended: wait for their
        // listeners too (not from inside this cache's listener, whose own outer delivery
        // may hold some of them).
        let owed: Option<Vec<u8>> = (self.notifier.wants() && !self.notifier.delivering_here())
            .then(|| self.segments.iter().map(Segment::owed_before).collect());
        let mut targets = vec![None; self.segments.len()];
        let mut freed = vec![false; self.segments.len()];
        let mut patience = Patience::new(MAX_RECLAIM_WAIT);
        loop {
            let mut done = true;
            for (index, segment) in self.segments.iter().enumerate() {
                if migrating[index] {
                    let mut fired = Vec::new();
                    migrating[index] = self
                        .turn(index, now, Mode::Full { drain: false }, &mut fired)
                        .migrating;
                    self.notifier.deliver(fired, |h| self.release(h));
                }
                if !freed[index] {
                    freed[index] =
                        segment.table.reclaim.free_pending(&mut targets[index]) == Progress::Done;
                }
                done &= freed[index] && !migrating[index] && !segment.table.garbage_pending();
                done &= owed.as_ref().is_none_or(|g| segment.owed(g[index]) == 0);
            }
            if done || !may_wait || patience.exhausted() {
                return;
            }
            // Departures listeners queued meanwhile are delivered here too.
            self.notifier.deliver(None, |h| self.release(h));
            patience.pause(|| epoch::pin().flush());
        }
    }

    /// The reaper's round: the same bounded full turns, then one push of the epoch and
    /// whatever is ready freed, without waiting.
    pub(super) fn reap(&self) {
        let now = self.ticker.now();
        let _ = self.maintain_all(now);
        epoch::pin().flush();
        for segment in self.segments.iter() {
            segment.free_ready(usize::MAX);
        }
    }
}

/// Lets go of a departed node's remover hold (see `entry::node`).
fn release<K, V>(segments: &[Segment<K, V>], held: Held<K, V>) {
    let (index, owed) = (held.segment, held.owed);
    // SAFETY: the hold kept the node alive until now; it is settled at once below.
    let node = unsafe { NodePtr::from_raw(held.into_raw()) };
    segments[index].table.settle(node, RELEASED);
    if let Some(generation) = owed {
        segments[index].delivered(generation);
    }
}

/// The parts of the protocol that need no hashing (so `Pinned`'s `Drop` can use them).
impl<K, V, S> Inner<K, V, S> {
    /// A write's (or an owed read's) maintenance turn, in the operation's own pinned phase
    /// (one pin per operation): if the segment is due. (Also inside a listener, this
    /// cache's or another's: what the turn takes out is queued until that listener returns
    /// if it is this cache's, see `listener`.)
    /// Entries it expired go to `fired` for the unpinned phase. True if it took the turn.
    pub(super) fn turn_pinned(
        &self,
        index: usize,
        now: u64,
        guard: &Guard,
        fired: &mut Vec<Held<K, V>>,
    ) -> bool {
        if !self.segments[index].due(now) {
            return false;
        }
        let mut sink = Fired::new(index, self.notifier.wants(), fired);
        let mode = if self.limits.far_over() {
            Mode::Press
        } else {
            Mode::Write
        };
        let turn = self.segments[index].maintain(now, mode, guard, &mut sink);
        self.count(&turn);
        if self.limits.over() && self.segments.len() > 1 {
            // Still over the bound: this segment had too little to evict. Help one other
            // segment (chosen per thread, round robin), so the bound holds globally.
            let other =
                (index + 1 + next_helped() % (self.segments.len() - 1)) % self.segments.len();
            let mut sink = Fired::new(other, self.notifier.wants(), sink.into_out());
            let turn = self.segments[other].maintain(now, mode, guard, &mut sink);
            self.count(&turn);
        }
        true
    }

    /// Counts what a maintenance turn expired and evicted.
    pub(super) fn count(&self, turn: &Turn) {
        if turn.expired > 0 {
            self.stats.add(Event::Expiration, turn.expired as u64);
        }
        if turn.evicted > 0 {
            self.stats.add(Event::Eviction, turn.evicted as u64);
        }
    }

    /// A read's part: one read in [`READ_TURN_EVERY`] per thread looks at whether its
    /// segment is due (reading the clock only then) and takes a turn if so.
    pub(super) fn read_turn_pinned(
        &self,
        index: usize,
        guard: &Guard,
        fired: &mut Vec<Held<K, V>>,
    ) -> bool {
        read_turn_owed() && self.turn_pinned(index, self.ticker.now(), guard, fired)
    }

    /// The unpinned phase of an operation (see the module docs): the listener for the
    /// departures (its own and those its turn expired), then sealing and, after a turn, a
    /// bounded slice of freeing.
    pub(super) fn after_write(
        &self,
        index: usize,
        departed: impl IntoIterator<Item = Held<K, V>>,
        turned: bool,
    ) {
        let segment = &self.segments[index];
        self.notifier.deliver(departed, |h| self.release(h));
        segment.table.reclaim.seal_if_full();
        if turned {
            segment.free_ready(FREE_BUDGET);
        }
    }

    /// A read turn owed by a [`Pinned`] guard, taken when it drops (its own short pin).
    pub(super) fn read_turn(&self, index: usize) {
        let mut fired = Vec::new();
        let turned = {
            let guard = epoch::pin();
            self.turn_pinned(index, self.ticker.now(), &guard, &mut fired)
        };
        self.after_write(index, fired, turned);
    }

    /// One maintenance turn on segment `index` under a short pin of its own; the entries it
    /// expired go to `fired` (held, when there is a listener) for the caller to deliver
    /// after this returns, unpinned.
    pub(super) fn turn(
        &self,
        index: usize,
        now: u64,
        mode: Mode,
        fired: &mut Vec<Held<K, V>>,
    ) -> Turn {
        let turn = {
            let guard = epoch::pin();
            let mut sink = Fired::new(index, self.notifier.wants(), fired);
            self.segments[index].maintain(now, mode, &guard, &mut sink)
        };
        self.count(&turn);
        turn
    }

    /// Lets go of a departed node once its listener has returned.
    pub(super) fn release(&self, held: Held<K, V>) {
        release(&self.segments, held);
    }

    pub(super) fn len(&self) -> usize {
        self.segments.iter().map(|s| s.table.len()).sum()
    }
}

impl<K, V, S> Drop for Inner<K, V, S> {
    fn drop(&mut self) {
        // Departures queued by listeners are still owed their notification.
        let segments = &self.segments;
        self.notifier.deliver_all_queued(|h| release(segments, h));
        // The last handle is gone, so no thread can reach any node: the segments free
        // everything now (see `reclaim`), without waiting for anyone's pin.
        drop(std::mem::take(&mut self.segments));
    }
}
