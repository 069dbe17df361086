//! A segment: one lock-free table, one timing wheel, and the hand-off between them.
//!
//! Writers never wait for expiry work. The wheel sits behind the segment's *maintenance
//! lock*, which is only ever taken with `try_lock` on the write path. A writer that links
//! an entry with a deadline, or removes one, records that on the segment's **hand-off
//! stack** (a Treiber stack threaded through `Node::chain`, drained whole by `swap`, so no
//! ABA) and then tries the lock; whoever holds it applies every queued request before
//! advancing the wheel. The node's `QUEUED` flag keeps it on the stack at most once, and
//! the drainer acts on the node's *current* flags, so a schedule request overtaken by a
//! removal becomes a cancellation.
//!
//! Maintenance is amortised: a write takes its turn only when the segment is *due* —
//! [`HANDOFF_BATCH`] requests have queued since the last drain, the clock has reached a
//! tick the wheel has not seen, or the last maintainer left due work or a shrink behind.
//! Other writes only push (one CAS). A short-lived entry is then often removed before its
//! scheduling request is drained, and the drainer drops both without touching the wheel.
//! A request therefore waits until the segment's next due write: in a busy segment, within
//! `HANDOFF_BATCH` requests or one tick; in a cache that goes quiet, until
//! `run_pending_tasks` or the reaper applies it.
//!
//! When a writer does maintain, nothing it queued is stranded: it pushes, issues a SeqCst
//! fence, then tries the lock; the holder unlocks, issues a SeqCst fence, then looks at the
//! stack and goes round again if it is not empty (while its budget lasts; otherwise it
//! marks the segment due, so the next write takes the request). By the fences' total
//! order, either the holder sees the push or the writer's `try_lock` sees the lock free.
//!
//! Work per call is bounded: a write-path turn applies queued requests and fires or
//! re-files wheel entries for at most [`WRITE_BUDGET`] units of work in all, however many
//! writers keep pushing; requests taken off the stack but not yet applied wait on the
//! *backlog* (under the lock) for the next turn, and the segment stays due until they are
//! done. A full turn ([`Mode::Full`], for `run_pending_tasks` and the reaper) waits for the
//! lock, drains the stack once, and does at most [`FULL_CHUNK`] units per lock hold; its
//! caller repeats it while entries due by its clock reading are left, so it ends however
//! busy the writers are.
//!
//! Entries fired are returned to the caller, who counts them and, with no lock held and
//! unpinned, runs the listener. Nothing here runs user code, and nothing flushes the epoch
//! (which runs crossbeam's deferred closures, anyone's) while holding the lock.

use crate::clock::NEVER;
use crate::policy::RemovalCause;
use crate::sync::{self, fence, AtomicPtr, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::table::node::{Held, Node, NodePtr, DETACHED, QUEUED, RELEASED, REMOVED, SCHEDULED};
use crate::table::{Shrink, Table, Tuning};
use crate::wheel::Wheel;
use crossbeam_epoch::Guard;
use crossbeam_utils::CachePadded;
use std::ptr;

/// Units of work (a request applied, an entry fired or re-filed) a write-path turn may do.
pub(crate) const WRITE_BUDGET: usize = 64;
/// Units of work a full turn does per lock hold.
pub(crate) const FULL_CHUNK: usize = 4096;
/// Sentinels a write-path shrink step may delete per call.
const SHRINK_BUDGET: usize = 64;
/// Retired nodes a maintenance turn may free (see `reclaim`): more than a turn retires, so
/// freeing keeps up.
pub(crate) const FREE_BUDGET: usize = 256;
/// Requests queued since the last drain that make a segment due for maintenance (one under
/// loom, so that every write maintains and the models see every interleaving).
const HANDOFF_BATCH: usize = if sync::MODEL { 1 } else { 16 };

/// The hand-off stack and the write path's "is maintenance due?" state, on one cache line:
/// a writer touches it with its push anyway.
#[derive(Debug)]
struct HandOff<K, V> {
    head: AtomicPtr<Node<K, V>>,
    /// Pushes since the last drain (a hint: reset before the drain's swap).
    queued: AtomicUsize,
    /// The first tick at which writes must maintain again; 0 when due work was left.
    due_at: AtomicU64,
}

/// How much maintenance a call may do, and whether it may wait for the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Write and read paths: `try_lock`, at most [`WRITE_BUDGET`] units.
    Write,
    /// `run_pending_tasks` and the reaper: wait for the lock, at most [`FULL_CHUNK`] units.
    /// With `drain`, the turn takes the hand-off stack once the backlog is empty (reported
    /// in [`Turn::drained`]); the caller asks until it has, then stops asking, so requests
    /// pushed after that are left to the writers.
    Full { drain: bool },
}

/// What a maintenance turn did and left.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Turn {
    /// Entries this turn expired (it is their remover).
    pub(crate) expired: usize,
    /// Requests or entries due by the turn's tick are left for a later turn.
    pub(crate) due_left: bool,
    /// A shrink is under way.
    pub(crate) shrinking: bool,
    /// This turn took the hand-off stack.
    pub(crate) drained: bool,
}

/// Requests taken off the hand-off stack but not yet applied (a `chain`-linked list of
/// still-`QUEUED` nodes).
#[derive(Debug)]
struct Backlog<K, V>(*mut Node<K, V>);

// SAFETY: the backlog's nodes are QUEUED, hence alive, and reached only under the lock;
// a cache only stores `K, V: Send + Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Backlog<K, V> {}

/// State guarded by the maintenance lock.
#[derive(Debug)]
struct Maint<K, V> {
    wheel: Wheel<K, V>,
    shrink: Shrink,
    backlog: Backlog<K, V>,
}

#[derive(Debug)]
pub(crate) struct Segment<K, V> {
    pub(crate) table: Table<K, V>,
    handoff: CachePadded<HandOff<K, V>>,
    maint: Mutex<Maint<K, V>>,
}

/// Where a turn's departures go: counted, and held for the listener when `hold`.
pub(crate) struct Fired<'a, K, V> {
    /// The segment's index (for the `Held`s).
    pub(crate) index: usize,
    /// Keep fired nodes held (`RELEASED` unset) in `out`, for the listener.
    pub(crate) hold: bool,
    pub(crate) out: &'a mut Vec<Held<K, V>>,
}

impl<K, V> Segment<K, V> {
    pub(crate) fn new(capacity: usize, tuning: Tuning, now: u64) -> Self {
        Self {
            table: Table::new(capacity, tuning),
            handoff: CachePadded::new(HandOff {
                head: AtomicPtr::new(ptr::null_mut()),
                queued: AtomicUsize::new(0),
                due_at: AtomicU64::new(0),
            }),
            maint: Mutex::new(Maint {
                wheel: Wheel::new(now),
                shrink: Shrink::Idle,
                backlog: Backlog(ptr::null_mut()),
            }),
        }
    }

    /// After linking `node` (made with `QUEUED` set when it has a deadline): queue its
    /// scheduling. Nodes without a deadline never meet the wheel.
    pub(crate) fn linked(&self, node: NodePtr<'_, K, V>) {
        if node.deadline() != NEVER {
            self.push(node);
        }
    }

    /// Remover duties for a node this thread logically deleted (won the marking CAS): tell
    /// the wheel side, and let go of the remover's hold unless `hold` (the caller will
    /// settle `RELEASED` itself once its listener has returned).
    pub(crate) fn removed(&self, node: NodePtr<'_, K, V>, hold: bool) {
        let released = if hold { 0 } else { RELEASED };
        if node.deadline() == NEVER {
            // Never queued, never scheduled: the wheel side is done already.
            self.table.settle(node, REMOVED | DETACHED | released);
        } else {
            // One RMW sets REMOVED and claims the queue slot; AcqRel pairs with the drainer's
            // `fetch_and` (see `apply`), so whichever comes second sees the other's flag.
            // It cannot be a node's last hold: DETACHED comes only after REMOVED.
            let old = node
                .meta
                .fetch_or(REMOVED | QUEUED | released, Ordering::AcqRel);
            debug_assert_eq!(old & DETACHED, 0);
            if old & QUEUED == 0 {
                self.push(node);
            }
        }
    }

    fn push(&self, node: NodePtr<'_, K, V>) {
        let node = node.as_ptr();
        let mut head = self.handoff.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the node is QUEUED and not yet on the stack: its `chain` is ours.
            unsafe { (*node).chain.store(head, Ordering::Relaxed) };
            // Release publishes `chain` (and the node's flags) to the drainer's Acquire swap.
            match self.handoff.head.compare_exchange_weak(
                head,
                node,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        // Relaxed: a hint for `due`; the stack itself is the truth.
        self.handoff.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a write at tick `now` should take its turn at maintenance (see the module
    /// docs). Relaxed loads: a stale answer only moves the turn to a neighbouring write.
    pub(crate) fn due(&self, now: u64) -> bool {
        now >= self.handoff.due_at.load(Ordering::Relaxed)
            || self.handoff.queued.load(Ordering::Relaxed) >= HANDOFF_BATCH
    }

    /// Marks the segment due, so the next write or read turn comes at once.
    fn mark_due(&self) {
        // Relaxed: a hint, as in `due`.
        self.handoff.due_at.store(0, Ordering::Relaxed);
    }

    /// One maintenance turn: applies queued requests, advances the wheel to `now`, takes a
    /// shrink step, all within the mode's budget (see the module docs). Entries it expired
    /// go to `fired`. Flushes the epoch, if a shrink wants it, only after unlocking.
    pub(crate) fn maintain(
        &self,
        now: u64,
        mode: Mode,
        guard: &Guard,
        fired: &mut Fired<'_, K, V>,
    ) -> Turn {
        let (mut budget, shrink_budget, mut drain) = match mode {
            Mode::Write => (WRITE_BUDGET, SHRINK_BUDGET, true),
            Mode::Full { drain } => (FULL_CHUNK, usize::MAX, drain),
        };
        let mut turn = Turn::default();
        loop {
            // SeqCst: pairs with the fence after unlocking below (see the module docs).
            fence(Ordering::SeqCst);
            let maint = match mode {
                Mode::Write => sync::try_lock(&self.maint),
                Mode::Full { .. } => Some(sync::lock(&self.maint)),
            };
            let Some(mut locked) = maint else {
                return turn;
            };
            let maint = &mut *locked;
            if drain && maint.backlog.0.is_null() {
                maint.backlog.0 = self.take_stack();
                turn.drained = true;
            }
            self.apply(maint, &mut budget, guard, fired, &mut turn);
            // SAFETY: 1. scheduled nodes are alive (not DETACHED, so not retired); 2. we hold
            // the maintenance lock.
            let caught_up = unsafe {
                maint.wheel.advance(now, &mut budget, |node| {
                    self.expire(node, guard, fired, &mut turn);
                })
            };
            turn.shrinking = self
                .table
                .shrink_step(&mut maint.shrink, shrink_budget, guard);
            turn.due_left = !maint.backlog.0.is_null() || !caught_up;
            // Relaxed: read by `due` as a hint; stored under the lock, so the maintainers'
            // values are ordered, and a later tick is never published before its work.
            let due_at = if turn.due_left || turn.shrinking {
                0
            } else {
                now + 1
            };
            self.handoff.due_at.store(due_at, Ordering::Relaxed);
            drop(locked);
            if turn.shrinking {
                // Pushes the shrink's grace period along, with the lock released: the flush
                // runs deferred closures, which may be anyone's.
                guard.flush();
            }
            // SeqCst: pairs with the fence before a writer's `try_lock` (module docs).
            fence(Ordering::SeqCst);
            if self.handoff.head.load(Ordering::Relaxed).is_null() {
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
        }
    }

    /// Takes the whole hand-off stack. Maintenance lock held.
    fn take_stack(&self) -> *mut Node<K, V> {
        // Reset first, so pushes that miss this swap still count towards the next turn.
        self.handoff.queued.store(0, Ordering::Relaxed);
        // Acquire pairs with the Release push.
        self.handoff.head.swap(ptr::null_mut(), Ordering::Acquire)
    }

    /// Applies backlog requests while the budget lasts. Maintenance lock held.
    fn apply(
        &self,
        maint: &mut Maint<K, V>,
        budget: &mut usize,
        guard: &Guard,
        fired: &mut Fired<'_, K, V>,
        turn: &mut Turn,
    ) {
        while *budget > 0 && !maint.backlog.0.is_null() {
            *budget -= 1;
            let raw = maint.backlog.0;
            // SAFETY: a QUEUED node is not DETACHED, so not retired: alive.
            let node = unsafe { NodePtr::from_raw(raw) };
            // Read the link first: once QUEUED is cleared the node may be pushed again.
            maint.backlog.0 = node.chain.load(Ordering::Relaxed);
            // AcqRel: pairs with the remover's `fetch_or` in `removed`.
            let old = node.meta.fetch_and(!QUEUED, Ordering::AcqRel);
            if old & REMOVED != 0 {
                if old & SCHEDULED != 0 {
                    // SAFETY: SCHEDULED means it is linked into our wheel; lock held.
                    unsafe { maint.wheel.cancel(raw) };
                    node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
                }
                self.table.settle(node, DETACHED);
            } else if old & SCHEDULED == 0 {
                // SAFETY: 1. alive until DETACHED, which only this lock's holder sets; 2. on no
                // wheel list (not SCHEDULED); 3. lock held.
                if unsafe { maint.wheel.schedule(raw) } {
                    // Relaxed: SCHEDULED is read only under the lock, which orders it.
                    node.meta.fetch_or(SCHEDULED, Ordering::Relaxed);
                } else {
                    self.expire(raw, guard, fired, turn);
                }
            }
        }
    }

    /// A due node left the wheel: remove it from the table unless someone else already
    /// did (that remover's queued request will detach it). Maintenance lock held.
    fn expire(
        &self,
        raw: *mut Node<K, V>,
        guard: &Guard,
        fired: &mut Fired<'_, K, V>,
        turn: &mut Turn,
    ) {
        // SAFETY: the node was on the wheel (or about to be), so alive; `guard` has been
        // held since before it could be retired.
        let node: NodePtr<'_, K, V> = unsafe { NodePtr::from_raw(raw) };
        node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
        if self.table.mark(&node, guard) {
            turn.expired += 1;
            let released = if fired.hold { 0 } else { RELEASED };
            self.table.settle(node, REMOVED | DETACHED | released);
            if fired.hold {
                // SAFETY: the marking CAS made us the remover, and RELEASED is not set.
                fired
                    .out
                    .push(unsafe { Held::new(node, RemovalCause::Expired, fired.index) });
            }
            // Unlink last: the node may be retired by whoever sets UNLINKED.
            self.table.unlink(node.link.so_key, guard);
        }
    }

    /// Frees retired nodes whose grace period is over, at most `budget`. Call with no lock
    /// held and unpinned (it runs `Drop`s). Keeps the segment due while ready nodes are
    /// left, so freeing never falls behind retiring.
    pub(crate) fn free_ready(&self, budget: usize) {
        if self.table.reclaim.free_ready(budget) {
            self.mark_due();
        }
    }
}

impl<K, V> Drop for Segment<K, V> {
    fn drop(&mut self) {
        // Settle what the hand-off and the backlog still hold so the table and reclamation
        // drops free every node exactly once: removed nodes are detached (and retired if
        // already unlinked); live ones stay on the list, which frees them.
        let backlog = std::mem::replace(&mut sync::lock(&self.maint).backlog.0, ptr::null_mut());
        let stack = self.handoff.head.swap(ptr::null_mut(), Ordering::Relaxed);
        for mut next in [backlog, stack] {
            while !next.is_null() {
                // SAFETY: queued nodes are alive; `&mut self`: exclusive access.
                let node = unsafe { NodePtr::from_raw(next) };
                next = node.chain.load(Ordering::Relaxed);
                let old = node.meta.fetch_and(!QUEUED, Ordering::Relaxed);
                if old & REMOVED != 0 {
                    self.table.settle(node, DETACHED);
                }
            }
        }
    }
}
