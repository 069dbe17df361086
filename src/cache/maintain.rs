//! Maintenance driven by callers: the turns writes and reads take, the unpinned phase
//! that delivers departures, full turns (`run_pending_tasks`, the reaper), and the
//! cache's teardown.

use super::departures::Departures;
use super::{Inner, MAX_RECLAIM_WAIT};
use crate::entry::reclaim::{self, Progress};
use crate::segment::{Mode, Segment, Sink, Turn};
use crate::stats::Event;
use crate::sync::{self, Ordering, Patience};
use crossbeam_epoch::{self as epoch, Guard};
use std::cell::Cell;
use std::hash::{BuildHasher, Hash};

/// A full turn that evicts while the cache is over its bound, draining nothing new (see
/// [`Mode::Full`]): the bound's rounds and a migration's.
const EVICTING: Mode = Mode::Full {
    drain: false,
    evict: true,
};

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

/// Evicting turns per thread between two looks at the small queue's climber.
const CLIMB_EVERY: u32 = 32;

sync::thread_cell! {
    /// Evicting turns this thread took since its last look (see [`CLIMB_EVERY`]).
    static EVICTING_TURNS: Cell<u32> = Cell::new(0);
}

fn climb_owed() -> bool {
    EVICTING_TURNS.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n % CLIMB_EVERY == 0
    })
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
    /// segment's first turn begins, evicting nothing (so every segment's lapsed entries
    /// have left before `enforce_bound` evicts a live one); then the bound, the listener
    /// for every expiry, and sealing. Returns which segments' tables are migrating.
    pub(super) fn maintain_all(&self, now: u64) -> Vec<bool> {
        let mut migrating = vec![false; self.segments.len()];
        for (index, migrating) in migrating.iter_mut().enumerate() {
            let mut drained = false;
            loop {
                let mut out = Departures::new(self, index);
                let mode = Mode::Full {
                    drain: !drained,
                    evict: false,
                };
                let turn = self.turn(index, now, mode, &mut out);
                drained |= turn.drained;
                *migrating = turn.migrating;
                out.finish();
                if drained && !turn.due_left {
                    break;
                }
            }
        }
        self.enforce_bound(now);
        // Departures queued by listeners (this thread's delivery loop takes a few rounds).
        self.notifier.deliver(None);
        for segment in self.segments.iter() {
            segment.reclaim.seal();
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
                let mut out = Departures::new(self, index);
                let turn = self.turn(index, now, EVICTING, &mut out);
                evicted += turn.evicted;
                out.finish();
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
                    let mut out = Departures::new(self, index);
                    migrating[index] = self.turn(index, now, EVICTING, &mut out).migrating;
                    out.finish();
                }
                if !freed[index] {
                    freed[index] =
                        segment.reclaim.free_pending(&mut targets[index]) == Progress::Done;
                }
                done &= freed[index] && !migrating[index] && !segment.table.garbage_pending();
                done &= owed.as_ref().is_none_or(|g| segment.owed(g[index]) == 0);
            }
            if done || !may_wait || patience.exhausted() {
                return;
            }
            // Departures listeners queued meanwhile are delivered here too.
            self.notifier.deliver(None);
            patience.pause(|| epoch::pin().flush());
        }
    }

    /// The reaper's round: the same bounded full turns, then one push of the epoch, and
    /// what was ready at its previous round already freed, without waiting (what is ready
    /// now is left a round to the threads of its lane, see `entry::reclaim`).
    pub(super) fn reap(&self) {
        let now = self.ticker.now();
        let _ = self.maintain_all(now);
        epoch::pin().flush();
        for segment in self.segments.iter() {
            segment.reclaim.free_stale();
        }
    }
}

/// The parts of the protocol that need no hashing (so `Pinned`'s `Drop` can use them).
impl<K, V, S> Inner<K, V, S> {
    /// A write's (or an owed read's) maintenance turn, in the operation's own pinned phase
    /// (one pin per operation): if the segment is due. (Also inside a listener, this
    /// cache's or another's: what the turn takes out is queued until that listener returns
    /// if it is this cache's, see `listener`.) What it takes out goes to `out`, for the
    /// operation's unpinned phase.
    pub(super) fn turn_pinned(
        &self,
        index: usize,
        now: u64,
        guard: &Guard,
        out: &mut Departures<'_, K, V, S>,
    ) {
        if !self.segments[index].due(now) {
            return;
        }
        out.turned = true;
        // Relaxed: see `timed`.
        let timed = self.timed.load(Ordering::Relaxed);
        // A timed cache of several segments that is not over its bound when the turn
        // starts neither sweeps nor evicts: an insert landing meanwhile could otherwise take
        // it over, and the turn evict a live entry with no sweep before it.
        let swept = !(timed && self.segments.len() > 1)
            || (self.limits.over() && self.sweep_lapsed(index, now, guard, out));
        let mode = if self.limits.far_over() {
            // Back-pressure: evicts even if a sweep was locked out (see `evict`).
            Mode::Press
        } else if swept {
            Mode::Write
        } else {
            // A segment that may hold lapsed entries is being maintained by another thread,
            // or has more due than a turn's budget (or nothing was swept, above): evict
            // nothing this turn rather than a live entry while a lapsed one waits. A cache
            // left over the bound makes the next write take a turn and sweep again.
            Mode::Expire
        };
        let mut sink = Sink::new(self.notifier.wants(), &mut out.turn);
        let turn = self.segments[index].maintain(now, mode, guard, &mut sink);
        self.count(&turn);
        if turn.evicted > 0 {
            self.climb();
        }
        if mode.evicts() && self.limits.over() && self.segments.len() > 1 {
            // Still over the bound: this segment is down to its share of it, or had too
            // little to evict. Help one other segment (chosen per thread, round robin), so
            // the bound holds globally.
            let other =
                (index + 1 + next_helped() % (self.segments.len() - 1)) % self.segments.len();
            let mut sink = Sink::new(self.notifier.wants(), sink.into_out());
            let turn = self.segments[other].maintain(now, mode, guard, &mut sink);
            self.count(&turn);
        }
    }

    /// Lapsed entries leave before live ones are evicted, cache-wide: every segment but
    /// `index` that may hold an entry lapsed at `now` takes an expire-only turn, unless its
    /// lock is taken (its holder is maintaining it; waiting made every over-the-bound write
    /// a convoy). A segment is swept at most once a tick, as a caught-up turn is not due
    /// again until the next. Returns whether every such segment caught up with `now`.
    fn sweep_lapsed(
        &self,
        index: usize,
        now: u64,
        guard: &Guard,
        out: &mut Departures<'_, K, V, S>,
    ) -> bool {
        let mut caught_up = true;
        for (other, segment) in self.segments.iter().enumerate() {
            if other != index && segment.may_hold_lapsed(now) {
                let mut sink = Sink::new(self.notifier.wants(), &mut out.turn);
                let turn = segment.maintain(now, Mode::Expire, guard, &mut sink);
                self.count(&turn);
                caught_up &= !turn.locked_out && !turn.due_left;
            }
        }
        caught_up
    }

    /// A sample for the small queue's climber (see `evict::climb`), if it is free: looked
    /// at by one evicting turn in [`CLIMB_EVERY`] per thread, so an idle or unfilled cache
    /// never samples, and summing the striped counters stays off most turns.
    fn climb(&self) {
        let Some(climber) = &self.climber else {
            return;
        };
        if !climb_owed() {
            return;
        }
        let Ok(mut climber) = climber.try_lock() else {
            return;
        };
        let (hits, misses) = self.stats.hits_and_misses();
        let share = self.limits.small_share();
        if let Some(next) = climber.sample(hits, misses, self.len() as u64, share) {
            self.limits.set_small_share(next);
        }
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

    /// A read's turn: one read in [`READ_TURN_EVERY`] per thread looks at whether its
    /// segment is due (reading the clock only then) and takes a turn if so, under a short
    /// pin of its own after the read's (a [`Pinned`](super::Pinned) guard's when it drops).
    /// Out of line: the reads that owe none stay small.
    #[inline(never)]
    pub(super) fn read_turn(&self, index: usize) {
        let mut out = Departures::new(self, index);
        let guard = epoch::pin();
        self.turn_pinned(index, self.ticker.now(), &guard, &mut out);
        drop(guard);
        out.finish();
    }

    /// One full maintenance turn on segment `index` under a short pin of its own; what it
    /// takes out goes to `out` for the caller to deliver after this returns, unpinned.
    pub(super) fn turn(
        &self,
        index: usize,
        now: u64,
        mode: Mode,
        out: &mut Departures<'_, K, V, S>,
    ) -> Turn {
        let turn = {
            let guard = epoch::pin();
            let mut sink = Sink::new(self.notifier.wants(), &mut out.turn);
            self.segments[index].maintain(now, mode, &guard, &mut sink)
        };
        self.count(&turn);
        turn
    }

    pub(super) fn len(&self) -> usize {
        self.segments.iter().map(|s| s.table.len()).sum()
    }
}

impl<K, V, S> Drop for Inner<K, V, S> {
    fn drop(&mut self) {
        // Departures queued by listeners are still owed their notification (and their
        // holds must go before the segments do).
        self.notifier.deliver_all_queued();
        // The last handle is gone, so no thread can reach any node: the segments free
        // everything now (see `reclaim`), without waiting for anyone's pin.
        drop(std::mem::take(&mut self.segments));
    }
}
