//! The lock holder's side: a maintenance turn applies the queued requests, advances the
//! wheel, evicts while over the bound, and hands every departure to the caller's sink.

use super::Held;
use super::{
    Maint, Mode, Segment, Sink, Turn, EVICT_BUDGET, FULL_CHUNK, MIGRATE_BUDGET, WRITE_BUDGET,
};
use crate::clock::NEVER;
use crate::entry::node::{Node, NodePtr, DETACHED, RELEASED, REMOVED, UNLINKED};
use crate::entry::RemovalCause;
use crate::evict::Queues;
use crate::sync::{self, fence, Ordering};
use crossbeam_epoch::Guard;
use std::ptr;

impl<K, V> Segment<K, V> {
    /// Applies one ring request. For a removed node: out of the wheel if it is in it, then
    /// the wheel side's hold goes. For a live one (a read moved its deadline earlier): out
    /// of the wheel and in again at its deadline now. If that has passed, returns true
    /// with the node in no slot, for the caller to expire, when `due` says it can;
    /// otherwise the node is filed at the wheel's next tick. Maintenance lock held
    /// (`maint` is its state).
    pub(super) fn serve(
        &self,
        maint: &mut Maint<K, V>,
        node: NodePtr<'_, K, V>,
        due: bool,
    ) -> bool {
        // A removal's request (the common case: every removal of a filed node queues one)
        // is taken and the wheel side let go of in one RMW, `serve_removal` below. REMOVED
        // is sticky, so a plain load that sees it may skip `take_request`; one that does
        // not (a read's re-file request, or a removal that set it after this load) takes
        // the request with the RMW, which reads the latest flags.
        // Relaxed: only picks the path; `serve_removal`'s AcqRel orders the rest.
        if node.meta.load(Ordering::Relaxed) & REMOVED != 0 {
            // SAFETY: `detach_served`'s 1 to 3: ours (alive: QUEUED, so not DETACHED; a
            // ring request's node is off the stack and not retired; lock held).
            unsafe { self.detach_served(maint, node, true) };
            return false;
        }
        // Its new deadline, if a reader asked, is read below (see `take_request`).
        let old = node.take_request();
        if old & REMOVED == 0 {
            // SAFETY: `unschedule`'s 1: a QUEUED node is not DETACHED, so alive, and a
            // `NodePtr`'s pointer carries its allocation's provenance; its 2: a node is only
            // filed in its own segment's wheel; its 3: lock held, and a ring request's node
            // was drained off the stack already and is not retired.
            unsafe { maint.wheel.unschedule(node.as_ptr()) };
            let d = self.wheel_deadline(node);
            if d != NEVER {
                if due && d <= maint.wheel.now() {
                    return true;
                }
                let d = d.max(maint.wheel.now() + 1).min(NEVER - 1);
                // SAFETY: `schedule`'s 1: alive until DETACHED, which only this lock's holder
                // sets, after unscheduling it, and a `NodePtr`'s pointer (with its
                // allocation's provenance); its 2: unscheduled just above; its 3: lock held.
                let filed = unsafe { maint.wheel.schedule(node.as_ptr(), d) };
                debug_assert!(filed, "filed after the wheel's now");
            }
            return false;
        }
        // SAFETY: `detach_served`'s 1 to 3: as above.
        unsafe { self.detach_served(maint, node, false) };
        false
    }

    /// A removed node's ring request: out of the wheel and its eviction queue, then the
    /// wheel side's hold goes (`DETACHED`), with the request taken in the same RMW if
    /// `take` (the caller did not take it with `take_request`).
    ///
    /// # Safety
    /// 1. `node` is QUEUED, or its request was just taken by the caller (`take_request`);
    ///    either way the request is the caller's to serve, so the node is not DETACHED
    ///    and alive, and its pointer carries its allocation's provenance (a `NodePtr`'s).
    /// 2. It is off the hand-off stack (a ring request's node was drained) and not
    ///    retired.
    /// 3. The caller holds the maintenance lock (`maint` is its state).
    unsafe fn detach_served(&self, maint: &mut Maint<K, V>, node: NodePtr<'_, K, V>, take: bool) {
        // SAFETY: `unschedule`'s 1: our 1; its 2: a node is only filed in its own
        // segment's wheel; its 3: our 3 and 2.
        unsafe { maint.wheel.unschedule(node.as_ptr()) };
        if node.ext().is_some() {
            // SAFETY: `Queues::unlink`'s 1: alive until DETACHED, set below; its 2: extended
            // (`ext()` is some; from the table, so with its provenance), and in no queue or
            // in ours (a node is only queued in its own segment); its 3: our 3.
            unsafe { maint.queues.unlink(node.as_ptr()) };
        }
        if take {
            self.reclaim.serve_removal(node);
        } else {
            self.reclaim.settle(node, DETACHED);
        }
    }

    /// Applies the ring requests that overflowed (see `push_cancel`), oldest last, while
    /// the budget lasts; what is left goes back on the overflow stack, and the return
    /// value says so (the segment stays due). A `full` turn applies all it took (bounded:
    /// what was pushed before its take), so `run_pending_tasks` serves every removal that
    /// finished before it began. Maintenance lock held.
    pub(super) fn apply_overflow(
        &self,
        maint: &mut Maint<K, V>,
        budget: &mut usize,
        full: bool,
        guard: &Guard,
        sink: &mut Sink<'_, K, V>,
        turn: &mut Turn,
    ) -> bool {
        if self.handoff.overflow.looks_empty() {
            return false;
        }
        let mut left = false;
        let mut taken = self.handoff.overflow.take();
        // SAFETY: `pop`'s 1: overflow boxes live until their taker frees them (below), and
        // are the pointers `Box::into_raw` gave in `push_cancel`; its 2: the take (Acquire,
        // pairing with the pushes' Release) made the chain ours.
        while let Some(boxed) = unsafe { taken.pop() } {
            if *budget == 0 && !full {
                // SAFETY: `push`'s 1: a live box, still freed only by its taker; its 2:
                // ours (taken, and `pop` has read its link); its 3: as for its first push.
                unsafe { self.handoff.overflow.push(boxed) };
                left = true;
                continue;
            }
            *budget = budget.saturating_sub(1);
            // SAFETY: 1. from `Box::into_raw` in `push_cancel`; 2. ours alone since the
            // take; 3. freed once, here (`pop` moved past it).
            let raw = unsafe { Box::from_raw(boxed) }.node;
            // SAFETY: `NodePtr::from_raw`'s 1 and 2: a QUEUED node is not DETACHED (only
            // this lock's holder detaches it, after taking its request), so not retired:
            // alive while we hold the lock; its 3: the box holds the pointer `push_cancel`
            // was given, a `NodePtr`'s.
            let node = unsafe { NodePtr::from_raw(raw) };
            if self.serve(maint, node, true) {
                self.expire(raw, &mut maint.queues, guard, sink, turn);
            }
        }
        left
    }

    /// One maintenance turn: applies queued requests, advances the wheel to `now`, takes a
    /// step of table maintenance (shrinking, copying), all within the mode's budget (see
    /// the module docs). What it takes out (expired or evicted) goes to `sink`.
    pub(crate) fn maintain(
        &self,
        now: u64,
        mode: Mode,
        guard: &Guard,
        sink: &mut Sink<'_, K, V>,
    ) -> Turn {
        let (mut budget, migrate_budget, mut drain) = match mode {
            Mode::Write | Mode::Press | Mode::Expire => (WRITE_BUDGET, MIGRATE_BUDGET, true),
            Mode::Full { drain, .. } => (FULL_CHUNK, usize::MAX, drain),
        };
        // A write's eviction has a budget of its own (see `EVICT_BUDGET`); a full turn's
        // shares the chunk.
        let mut evict_budget = match mode {
            Mode::Full { .. } => None,
            _ => Some(EVICT_BUDGET),
        };
        let mut turn = Turn::default();
        let mut first = true;
        loop {
            // SeqCst: pairs with the fence after unlocking below (see the module docs).
            fence(Ordering::SeqCst);
            let maint = match mode {
                Mode::Write | Mode::Expire => sync::try_lock(&self.maint),
                Mode::Press | Mode::Full { .. } => Some(sync::lock(&self.maint)),
            };
            let Some(mut locked) = maint else {
                // Only a first attempt's failure means the turn did nothing (a later one's
                // holder takes the request this turn went round for).
                turn.locked_out = first;
                return turn;
            };
            let maint = &mut *locked;
            sink.generation = maint.generation;
            if drain && maint.backlog.0.is_empty() {
                maint.backlog.0 = self.take_stack();
                turn.drained = true;
            }
            let full = matches!(mode, Mode::Full { .. });
            let left = self.apply(maint, &mut budget, full, guard, sink, &mut turn);
            let caught_up = self.advance_wheel(maint, now, &mut budget, guard, sink, &mut turn);
            let over = mode.evicts() && {
                let budget = evict_budget.as_mut().unwrap_or(&mut budget);
                self.evict(maint, now, budget, guard, sink, &mut turn)
            };
            // Starts shrinking a mostly empty table, copies a few groups of a migration:
            // no user code, no flush.
            turn.migrating = self.table.maintain(migrate_budget, guard);
            // Requests left on the ring or the overflow keep the segment due; a full turn's
            // caller does not repeat for them (they came after the turn began, and removers
            // could keep refilling the ring for ever: see `Mode::Full`).
            turn.due_left = (left && !full) || !maint.backlog.0.is_empty() || !caught_up;
            turn.evict_left = over;
            // Relaxed: read by `due` as a hint; stored under the lock, so the maintainers'
            // values are ordered, and a later tick is never published before its work.
            let due_at = if left || turn.due_left || turn.evict_left || turn.migrating {
                0
            } else {
                now + 1
            };
            self.handoff.due_at.store(due_at, Ordering::Relaxed);
            drop(locked);
            // SeqCst: pairs with the fence before a writer's `try_lock` (module docs).
            fence(Ordering::SeqCst);
            if !self.handoff.overflow.looks_empty() {
                // A remover boxed a request while we held the lock, and the `due_at` store
                // above may have overwritten its mark (a hint: the request count, or the
                // next tick, would bring a turn anyway, later).
                self.mark_due();
            }
            if self.handoff.stack.looks_empty() {
                return turn;
            }
            // A writer pushed while we held the lock and may have found it taken.
            if matches!(mode, Mode::Full { .. }) {
                // Not ours to wait for (a full turn does what was pending when it began):
                // the next write's turn takes it.
                self.mark_due();
                return turn;
            }
            if budget == 0 {
                self.mark_due();
                turn.due_left = true;
                return turn;
            }
            // Go round again, within the same budget, so its request is not stranded.
            drain = true;
            first = false;
        }
    }

    /// Advances the wheel to `now` within the budget: entries due leave it and are
    /// expired (or, if a read took their deadline away, leave it live). Returns whether the
    /// wheel caught up with `now`. Maintenance lock held.
    fn advance_wheel(
        &self,
        maint: &mut Maint<K, V>,
        now: u64,
        budget: &mut usize,
        guard: &Guard,
        sink: &mut Sink<'_, K, V>,
        turn: &mut Turn,
    ) -> bool {
        let Maint { wheel, queues, .. } = maint;
        // SAFETY: `Wheel::advance`'s 1: a scheduled node is not DETACHED (only this lock's
        // holder detaches, after unscheduling), so not retired: alive; its 2: lock held.
        unsafe {
            wheel.advance(
                now,
                budget,
                // SAFETY: `NodePtr::from_raw`'s 1 and 2: a scheduled node is alive (see
                // `advance`'s 1 above) while the closure runs, under the lock; its 3: wheel
                // links carry the `into_raw` pointer.
                |node| self.wheel_deadline(NodePtr::from_raw(node)),
                |node, d| {
                    if d == NEVER {
                        // A read took its deadline away: it has left the wheel, live.
                    } else {
                        self.expire(node, queues, guard, sink, turn);
                    }
                },
            )
        }
    }

    /// Applies the cancel ring's requests, its overflow's and the backlog's while the
    /// budget lasts (a `full` turn applies the whole overflow it takes). Returns whether
    /// the budget ran out with ring or overflow requests left (the backlog speaks for
    /// itself): the turn then leaves the segment due, as the requests' own count no longer
    /// does (the drain that began the turn reset it). Maintenance lock held.
    pub(super) fn apply(
        &self,
        maint: &mut Maint<K, V>,
        budget: &mut usize,
        full: bool,
        guard: &Guard,
        sink: &mut Sink<'_, K, V>,
        turn: &mut Turn,
    ) -> bool {
        let overflow_left = self.apply_overflow(maint, budget, full, guard, sink, turn);
        for (i, slot) in self.handoff.cancels.iter().enumerate() {
            if *budget == 0 {
                // Relaxed: a hint (the load and store that take a request, below, are the
                // truth); a request pushed after this look counts towards `due`.
                let ring_left = self.handoff.cancels[i..]
                    .iter()
                    .any(|s| !s.load(Ordering::Relaxed).is_null());
                return overflow_left || ring_left;
            }
            // Acquire pairs with the Release CAS in `push_cancel`. No swap: a pusher's CAS
            // only fills an empty slot, so a slot holding a request changes only here,
            // under the lock, and a load and a store take it (a locked RMW costs about
            // 10 ns here). Relaxed store: emptying the slot publishes nothing; the next
            // pusher's CAS reads it and writes its own request, which our next Acquire
            // load of the slot sees.
            let raw = slot.load(Ordering::Acquire);
            if raw.is_null() {
                continue;
            }
            slot.store(ptr::null_mut(), Ordering::Relaxed);
            *budget -= 1;
            // SAFETY: `NodePtr::from_raw`'s 1 and 2: a QUEUED node is not DETACHED (only
            // this lock's holder detaches it, after taking its request), so not retired:
            // alive while we hold the lock; its 3: ring slots hold the `into_raw` pointer.
            let node = unsafe { NodePtr::from_raw(raw) };
            if self.serve(maint, node, true) {
                self.expire(raw, &mut maint.queues, guard, sink, turn);
            }
        }
        self.apply_backlog(maint, budget, guard, sink, turn);
        overflow_left
    }

    /// Applies the backlog's requests (schedules, and admissions to the eviction queues)
    /// while the budget lasts. Maintenance lock held.
    fn apply_backlog(
        &self,
        maint: &mut Maint<K, V>,
        budget: &mut usize,
        guard: &Guard,
        sink: &mut Sink<'_, K, V>,
        turn: &mut Turn,
    ) {
        while *budget > 0 {
            // The link is read first (`pop` does): once scheduled, the node's links are the
            // wheel's. SAFETY: `pop`'s 1: a QUEUED node is not DETACHED (only this lock's
            // holder detaches it, after taking its request), so not retired: alive while
            // we hold the lock, and stack links carry the `into_raw` pointer; its 2: the
            // backlog is ours (under the lock), taken off the stack by `take_stack`, whose
            // Acquire ordered the pushes' writes of the links, and a QUEUED node whose
            // request is not applied is in no wheel slot, so nothing wrote them since but
            // `take_stack`'s reordering, under this lock.
            let Some(raw) = (unsafe { maint.backlog.0.pop() }) else {
                break;
            };
            *budget -= 1;
            // SAFETY: `NodePtr::from_raw`'s 1: the node is alive (QUEUED, so not DETACHED,
            // so not retired); its 2: it stays alive while we hold the lock, whose holder
            // alone detaches it; its 3: stack links carry the pointer `push` was given, a
            // `NodePtr`'s, with its allocation's provenance.
            let node = unsafe { NodePtr::from_raw(raw) };
            let old = node.take_request();
            if old & REMOVED != 0 {
                // SAFETY: `unschedule`'s 1: QUEUED, so alive, and the pointer the hand-off
                // push was given (with its provenance); its 2: a node is only filed in its
                // own segment's wheel; its 3: lock held, and the node was taken off the
                // stack (the backlog is ours) and is not retired (not DETACHED).
                unsafe { maint.wheel.unschedule(raw) };
                self.reclaim.settle(node, DETACHED);
            // SAFETY: `is_scheduled`'s 1: QUEUED, so alive, with its provenance (as above);
            // its 2: lock held, off the stack and not retired (as above).
            } else if !unsafe { maint.wheel.is_scheduled(raw) } {
                let d = self.wheel_deadline(node);
                if d != NEVER {
                    // SAFETY: `schedule`'s 1: alive until DETACHED, which only this lock's
                    // holder sets, after unscheduling it, and the pointer the push was given
                    // (with its provenance); its 2: on no wheel list (just checked); its 3:
                    // lock held.
                    if !unsafe { maint.wheel.schedule(raw, d) } {
                        self.expire(raw, &mut maint.queues, guard, sink, turn);
                        continue;
                    }
                }
                if self.limits.weighed && node.ext().is_some() && node.weight() != 0 {
                    // SAFETY: `Queues::admit`'s 1: alive until DETACHED, which only this
                    // lock's holder sets, after unlinking it; its 2: extended (with its
                    // provenance: from the stack), and in no queue (a node is admitted once,
                    // when its one schedule request is drained); its 3: lock held.
                    unsafe {
                        maint
                            .queues
                            .admit(raw, self.limits.small_share(), self.limits.share)
                    };
                }
            }
        }
    }

    /// A due node left the wheel: take it out of the table unless someone else already
    /// did (that remover's queued request will detach it). Maintenance lock held.
    pub(super) fn expire(
        &self,
        raw: *mut Node<K, V>,
        queues: &mut Queues<K, V>,
        guard: &Guard,
        sink: &mut Sink<'_, K, V>,
        turn: &mut Turn,
    ) {
        // SAFETY: `NodePtr::from_raw`'s 1: the node was on the wheel or the stack (callers:
        // `advance`'s `fire`, `apply`), so not DETACHED, so alive; its 2: `guard` has been
        // held since before it could be retired; its 3: wheel and stack links carry the
        // `into_raw` pointer.
        let node: NodePtr<'_, K, V> = unsafe { NodePtr::from_raw(raw) };
        if self.table.remove_node(&node, guard) {
            turn.expired += 1;
            if node.ext().is_some() {
                // SAFETY: `Queues::unlink`'s 1: alive (we are its remover, and RELEASED is
                // not set yet); its 2: extended, with its provenance, in no queue or ours;
                // its 3: lock held.
                unsafe { queues.unlink(raw) };
            }
            self.departed(node, RemovalCause::Expired, sink);
        }
    }

    /// The remover's duties for a node a maintainer took out of the table, out of the
    /// wheel and the queues already: its weight, and its hold for the listener.
    pub(super) fn departed(
        &self,
        node: NodePtr<'_, K, V>,
        cause: RemovalCause,
        sink: &mut Sink<'_, K, V>,
    ) {
        self.refund(node);
        if sink.hold {
            // Relaxed: counted under the maintenance lock, which `owed_before` takes too,
            // so a generation's counts are complete when it is flipped.
            self.owed[usize::from(sink.generation)].fetch_add(1, Ordering::Relaxed);
            // SAFETY: 1. the slot's CAS made us the remover, and RELEASED is not set yet
            // (it is set below only without a hold); 2. the node is in our table; 3. the
            // sink's vector belongs to an operation's `Departures`, which borrows the
            // cache; 4. counted just above.
            let held = unsafe { Held::new(node, cause, self, Some(sink.generation)) };
            sink.out.push(held);
        }
        let released = if sink.hold { 0 } else { RELEASED };
        // A read's re-file request may be pending on the ring (a timed node, QUEUED: see
        // `refile`); serving it detaches the node then. Setting REMOVED first stops
        // further requests, so without one the wheel side is done.
        let queued = node.timer().is_some() && node.remove_by_maintainer();
        let detached = if queued { 0 } else { DETACHED };
        // Last use of `node` here: without a hold this may retire it.
        self.reclaim
            .settle(node, REMOVED | UNLINKED | detached | released);
    }

    /// Evicts while the cache's total weight is over its bound, this segment's queues hold
    /// more than its share of the bound, and the budget lasts (see `evict`); a victim
    /// already expired at `now` is reported as `Expired`. Returns whether it stopped with
    /// the total still over and entries left to evict here.
    /// Maintenance lock held.
    pub(super) fn evict(
        &self,
        maint: &mut Maint<K, V>,
        now: u64,
        budget: &mut usize,
        guard: &Guard,
        sink: &mut Sink<'_, K, V>,
        turn: &mut Turn,
    ) -> bool {
        // Only down to the segment's share: the segments holding more than theirs give up
        // the rest (see `evict`, "A global bound with per-segment queues").
        while self.limits.over() && maint.queues.weight() > self.limits.share {
            // SAFETY: `Queues::victim`'s 1: a queued node is alive (it leaves the queues
            // before it is DETACHED); its 2: lock held.
            let Some(raw) = (unsafe { maint.queues.victim(budget, self.limits.small_share()) })
            else {
                return *budget == 0 && maint.queues.len() > 0;
            };
            // SAFETY: `NodePtr::from_raw`'s 1: it was queued, so alive; its 2: `guard`
            // predates its retirement; its 3: queue links carry the `into_raw` pointer.
            let node: NodePtr<'_, K, V> = unsafe { NodePtr::from_raw(raw) };
            // A removed node's remover has queued its cancellation, which detaches it.
            if node.is_removed() {
                continue;
            }
            if self.table.remove_node(&node, guard) {
                // SAFETY: `unschedule`'s 1: queued, so alive, and the pointer its admission
                // was given (with its provenance: `admit`'s 2); its 2: a node is only filed
                // in its own segment's wheel; its 3: lock held, and a queued node was
                // drained off the stack (admission follows the drain) and is not retired.
                unsafe { maint.wheel.unschedule(raw) };
                // A victim already past its TTL or idle deadline leaves as what it is.
                let cause = if self.wheel_deadline(node) <= now {
                    turn.expired += 1;
                    RemovalCause::Expired
                } else {
                    turn.evicted += 1;
                    RemovalCause::Evicted
                };
                self.departed(node, cause, sink);
            }
        }
        false
    }
}
