//! A segment: one lock-free table, one timing wheel, and the hand-off between them.
//!
//! Writers never wait for expiry work. The wheel sits behind the segment's *maintenance
//! lock*, which is only ever taken with `try_lock` on the write path. A writer that links
//! an entry with a deadline records that on the segment's **hand-off stack** (a Treiber
//! stack threaded through the node's stack link, `Node::link`, drained whole by `swap`, so
//! no ABA); one that removes a scheduled entry records it in the segment's **cancel ring**
//! (a few slots of node pointers: the node's wheel links are in use then, so it cannot go
//! on the stack); a read whose expiry policy moved an entry's deadline earlier records a
//! re-file request there too (see `cache::expiry`). Whoever holds the lock applies the
//! queued requests before advancing the wheel. The node's `QUEUED` flag keeps it queued
//! at most once, and the drainer acts on the node's *current* flags, so a schedule
//! request overtaken by a removal becomes a cancellation. When the ring is full (the
//! maintainers are 32 requests behind), the remover (or re-filing reader) waits for the
//! lock and serves its request itself: the one place a writer waits for maintenance, for
//! one turn's bounded work.
//!
//! Maintenance is amortised: a write takes its turn only when the segment is *due* —
//! [`HANDOFF_BATCH`] requests have queued since the last drain, the clock has reached a
//! tick the wheel has not seen, or the last maintainer left due work or a table migration
//! unfinished.
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
//! In a bounded cache every new entry goes through the hand-off too: the maintainer links
//! it into the segment's eviction queues (`evict`) when it applies the request, and while
//! the cache is over its bound a turn evicts within the same budget.
//!
//! Entries fired are returned to the caller, who counts them and, with no lock held and
//! unpinned, runs the listener. Nothing here runs user code, and nothing flushes the epoch
//! (which runs crossbeam's deferred closures, anyone's) while holding the lock.

use crate::clock::NEVER;
use crate::evict::{Limits, Queues};
use crate::policy::RemovalCause;
use crate::sync::{self, fence, AtomicPtr, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::table::node::{
    Held, Node, NodePtr, DETACHED, EXT, QUEUED, RELEASED, REMOVED, SCHEDULED, UNLINKED,
};
use crate::table::{Table, Tuning};
use crate::wheel::Wheel;
use crossbeam_epoch::Guard;
use crossbeam_utils::CachePadded;
use std::ptr;
use std::sync::Arc;

/// Units of work (a request applied, an entry fired or re-filed) a write-path turn may do.
pub(crate) const WRITE_BUDGET: usize = 64;
/// Units of work a full turn does per lock hold.
pub(crate) const FULL_CHUNK: usize = 4096;
/// Groups of a table migration a write-path turn may copy per call.
const MIGRATE_BUDGET: usize = 4;
/// Retired nodes a maintenance turn may free (see `reclaim`): more than a turn retires, so
/// freeing keeps up.
pub(crate) const FREE_BUDGET: usize = 256;
/// Requests queued since the last drain that make a segment due for maintenance (one under
/// loom, so that every write maintains and the models see every interleaving).
const HANDOFF_BATCH: usize = if sync::MODEL { 1 } else { 16 };
/// Slots of the cancel ring (two under loom, so a model can fill it).
const CANCELS: usize = if sync::MODEL { 2 } else { 32 };

/// The hand-off stack and the write path's "is maintenance due?" state, on one cache line
/// (a writer touches it with its push anyway), then the cancel ring.
#[derive(Debug)]
struct HandOff<K, V> {
    head: AtomicPtr<Node<K, V>>,
    /// Pushes since the last drain (a hint: reset before the drain's swap).
    queued: AtomicUsize,
    /// The first tick at which writes must maintain again; 0 when due work was left.
    due_at: AtomicU64,
    /// Where the next cancel request tries first (a hint that spreads the pushes).
    cancel_at: AtomicUsize,
    /// Drained nodes with a request: removed ones whose wheel entry must be cancelled, live
    /// ones a read asked to re-file; null when free.
    cancels: CachePadded<[AtomicPtr<Node<K, V>>; CANCELS]>,
}

/// How much maintenance a call may do, and whether it may wait for the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Write and read paths: `try_lock`, at most [`WRITE_BUDGET`] units.
    Write,
    /// A write while the cache is well over its bound (back-pressure, see `evict`): as
    /// `Write`, but waits for the lock (its holder's turn is bounded and runs no user code).
    Press,
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
    /// Entries this turn evicted to respect the capacity bound (it is their remover).
    pub(crate) evicted: usize,
    /// Requests or entries due by the turn's tick are left for a later turn.
    pub(crate) due_left: bool,
    /// The cache is still over its bound and this segment has entries left to evict. Kept
    /// apart from `due_left`: a full turn's caller repeats while work due at its reading is
    /// left, and eviction is never that (concurrent writers can keep the cache over the
    /// bound for ever); `enforce_bound` does the rest, bounded.
    pub(crate) evict_left: bool,
    /// A table migration is under way.
    pub(crate) migrating: bool,
    /// This turn took the hand-off stack.
    pub(crate) drained: bool,
}

/// Requests taken off the hand-off stack but not yet applied (a list of still-`QUEUED`
/// nodes through their stack links).
#[derive(Debug)]
struct Backlog<K, V>(*mut Node<K, V>);

// SAFETY: the backlog's nodes are QUEUED, hence alive, and reached only under the lock;
// a cache only stores `K, V: Send + Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Backlog<K, V> {}

/// State guarded by the maintenance lock.
#[derive(Debug)]
struct Maint<K, V> {
    wheel: Wheel<K, V>,
    backlog: Backlog<K, V>,
    /// The eviction queues (empty unless the cache is bounded).
    queues: Queues<K, V>,
    /// Which of [`Segment::owed`]'s counters the departures turns take out now count in.
    generation: u8,
}

#[derive(Debug)]
pub(crate) struct Segment<K, V> {
    pub(crate) table: Table<K, V>,
    handoff: CachePadded<HandOff<K, V>>,
    maint: Mutex<Maint<K, V>>,
    /// The cache's capacity and idle limits.
    limits: Arc<Limits>,
    /// Departures this segment's maintenance turns took out (held for the listener) whose
    /// listener call has not returned yet, in two generations: `run_pending_tasks` flips
    /// the generation after its own turns and waits for the old one to drain (see
    /// [`owed_before`](Self::owed_before)). Two generations make the wait conservative,
    /// not exact: when two calls overlap, the second flips back, and the first then also
    /// waits for departures taken after it began (still within its bounded wait).
    owed: [AtomicUsize; 2],
}

/// Where a turn's departures go: counted, and held for the listener when `hold`.
pub(crate) struct Fired<'a, K, V> {
    /// The segment's index (for the `Held`s).
    index: usize,
    /// Keep fired nodes held (`RELEASED` unset) in `out`, for the listener.
    hold: bool,
    /// The generation of [`Segment::owed`] the holds count in (set under the lock).
    generation: u8,
    out: &'a mut Vec<Held<K, V>>,
}

impl<'a, K, V> Fired<'a, K, V> {
    pub(crate) fn new(index: usize, hold: bool, out: &'a mut Vec<Held<K, V>>) -> Self {
        Self {
            index,
            hold,
            generation: 0,
            out,
        }
    }

    /// The sink's vector, for another segment's sink.
    pub(crate) fn into_out(self) -> &'a mut Vec<Held<K, V>> {
        self.out
    }
}

impl<K, V> Segment<K, V> {
    pub(crate) fn new(capacity: usize, tuning: Tuning, now: u64, limits: Arc<Limits>) -> Self {
        Self {
            table: Table::new(capacity, tuning),
            handoff: CachePadded::new(HandOff {
                head: AtomicPtr::new(ptr::null_mut()),
                queued: AtomicUsize::new(0),
                due_at: AtomicU64::new(0),
                cancel_at: AtomicUsize::new(0),
                cancels: CachePadded::new(std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut()))),
            }),
            maint: Mutex::new(Maint {
                wheel: Wheel::new(now),
                backlog: Backlog(ptr::null_mut()),
                queues: Queues::new(),
                generation: 0,
            }),
            limits,
            owed: [AtomicUsize::new(0), AtomicUsize::new(0)],
        }
    }

    /// Starts a new generation of [`owed`](Self::owed) departures and returns the old
    /// one: every departure a turn took out before this call (turns hold the lock this
    /// takes) counts in it, and leaves it once its listener has returned.
    pub(crate) fn owed_before(&self) -> u8 {
        let mut maint = sync::lock(&self.maint);
        let old = maint.generation;
        maint.generation ^= 1;
        old
    }

    /// Departures of `generation` whose listener has not returned yet.
    pub(crate) fn owed(&self, generation: u8) -> usize {
        // Acquire pairs with the Release decrement in `delivered`: the listener calls
        // counted out happen-before the caller's return.
        self.owed[usize::from(generation)].load(Ordering::Acquire)
    }

    /// A held departure's listener has returned (called for every `Held` a turn made).
    pub(crate) fn delivered(&self, generation: u8) {
        // Release pairs with the Acquire load in `owed`.
        self.owed[usize::from(generation)].fetch_sub(1, Ordering::Release);
    }

    /// Whether `node` goes through the hand-off: it has a deadline, or an extension (the
    /// eviction queues, the idle deadline and an expiry policy's timer are the
    /// maintainer's).
    #[inline]
    fn maintained(&self, node: &Node<K, V>) -> bool {
        // Relaxed: EXT is immutable.
        node.meta.load(Ordering::Relaxed) & EXT != 0 || node.deadline() != NEVER
    }

    /// The tick the wheel should fire `node` at: its TTL or policy deadline, or the
    /// earliest idle deadline if that comes first (a read may move the idle one later, and
    /// a policy's either way: the wheel re-files at the old one, and a read that moves one
    /// earlier asks for a re-file, see [`refile`](Self::refile)).
    fn wheel_deadline(&self, node: NodePtr<'_, K, V>) -> u64 {
        let d = node.expiry_deadline();
        match node.ext() {
            // Relaxed: the stamp is a hint that only ever moves the deadline later; the
            // wheel re-reads it when the deadline comes.
            Some(ext) if self.limits.idle_ticks != 0 => {
                d.min(self.limits.idle_deadline(ext.idle.load(Ordering::Relaxed)))
            }
            _ => d,
        }
    }

    /// Uncounts a departed node's weight.
    fn refund(&self, node: NodePtr<'_, K, V>) {
        if let Some(ext) = node.ext() {
            self.limits.refund(ext.weight);
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
            self.table
                .settle(node, REMOVED | UNLINKED | DETACHED | released);
        } else {
            // One RMW sets REMOVED and claims the queue slot; AcqRel pairs with the drainer's
            // `fetch_and` (see `apply`), so whichever comes second sees the other's flag.
            // It cannot be a node's last hold: DETACHED comes only after REMOVED.
            let old = node
                .meta
                .fetch_or(REMOVED | UNLINKED | QUEUED | released, Ordering::AcqRel);
            debug_assert_eq!(old & DETACHED, 0);
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
        // AcqRel: Release publishes the timer's new deadline to whichever `fetch_and` of
        // QUEUED serves the node's request (in `serve` or `apply`), which comes after this
        // in the flag's order; Acquire pairs with a remover's `fetch_or`.
        let old = node.meta.fetch_or(QUEUED, Ordering::AcqRel);
        if old & (QUEUED | REMOVED) == 0 {
            self.push_cancel(node);
        }
        // With REMOVED set, QUEUED may now be set on a node that no request names: nothing
        // reads it there (the node is detached by its remover's request or already was).
    }

    /// Queues a scheduling request for a new node (QUEUED, in no wheel slot).
    fn push(&self, node: NodePtr<'_, K, V>) {
        let node = node.as_ptr();
        let mut head = self.handoff.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the node is QUEUED and not yet on the stack or in a wheel slot: its
            // stack link is ours.
            unsafe { (*node).set_link(head) };
            // Release publishes the link (and the node's flags) to the drainer's Acquire swap.
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

    /// Queues a request for a drained node (QUEUED again, maybe in a wheel slot): a
    /// removal's cancellation or a read's re-file, in a free ring slot; when none is free,
    /// waits for the lock and serves it directly.
    fn push_cancel(&self, node: NodePtr<'_, K, V>) {
        // Relaxed: only spreads the pushes over the ring.
        let start = self.handoff.cancel_at.fetch_add(1, Ordering::Relaxed);
        for i in 0..CANCELS {
            let slot = &self.handoff.cancels[(start + i) % CANCELS];
            // Release publishes the node's flags to the drainer's Acquire swap.
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
                // Relaxed: a hint for `due`.
                self.handoff.queued.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        // The ring is full: the maintainers are behind. Serve it ourselves, waiting for the
        // lock (its holder's turn is bounded and runs no user code).
        let mut locked = sync::lock(&self.maint);
        self.serve(&mut locked, node, false);
    }

    /// Applies one ring request. For a removed node: out of the wheel if it is in it, then
    /// the wheel side's hold goes. For a live one (a read moved its deadline earlier): out
    /// of the wheel and in again at its deadline now. If that has passed, returns true
    /// with the node in no slot, for the caller to expire, when `due` says it can;
    /// otherwise the node is filed at the wheel's next tick. Maintenance lock held
    /// (`maint` is its state).
    fn serve(&self, maint: &mut Maint<K, V>, node: NodePtr<'_, K, V>, due: bool) -> bool {
        // AcqRel: pairs with the remover's `fetch_or` in `removed`, and with the reader's in
        // `refile` (its new deadline is read below).
        let old = node.meta.fetch_and(!QUEUED, Ordering::AcqRel);
        if old & REMOVED == 0 {
            if old & SCHEDULED != 0 {
                // SAFETY: SCHEDULED means it is linked into our wheel; lock held.
                unsafe { maint.wheel.cancel(node.as_ptr()) };
                node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
            }
            let d = self.wheel_deadline(node);
            if d != NEVER {
                if due && d <= maint.wheel.now() {
                    return true;
                }
                let d = d.max(maint.wheel.now() + 1).min(NEVER - 1);
                // SAFETY: 1. alive until DETACHED, which only this lock's holder sets; 2. on
                // no wheel list (not SCHEDULED); 3. lock held.
                let filed = unsafe { maint.wheel.schedule(node.as_ptr(), d) };
                debug_assert!(filed, "filed after the wheel's now");
                // Relaxed: SCHEDULED is read only under the lock, which orders it.
                node.meta.fetch_or(SCHEDULED, Ordering::Relaxed);
            }
            return false;
        }
        if old & SCHEDULED != 0 {
            // SAFETY: SCHEDULED means it is linked into our wheel; lock held.
            unsafe { maint.wheel.cancel(node.as_ptr()) };
            node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
        }
        if node.ext().is_some() {
            // SAFETY: 1. alive until DETACHED, set below; 2. extended; 3. lock held.
            unsafe { maint.queues.unlink(node.as_ptr()) };
        }
        self.table.settle(node, DETACHED);
        false
    }

    /// Whether a write at tick `now` should take its turn at maintenance (see the module
    /// docs). Relaxed loads: a stale answer only moves the turn to a neighbouring write.
    pub(crate) fn due(&self, now: u64) -> bool {
        now >= self.handoff.due_at.load(Ordering::Relaxed)
            || self.handoff.queued.load(Ordering::Relaxed) >= HANDOFF_BATCH
            || self.limits.over()
    }

    /// Marks the segment due, so the next write or read turn comes at once.
    fn mark_due(&self) {
        // Relaxed: a hint, as in `due`.
        self.handoff.due_at.store(0, Ordering::Relaxed);
    }

    /// One maintenance turn: applies queued requests, advances the wheel to `now`, takes a
    /// step of table maintenance (shrinking, copying), all within the mode's budget (see
    /// the module docs). Entries it expired go to `fired`.
    pub(crate) fn maintain(
        &self,
        now: u64,
        mode: Mode,
        guard: &Guard,
        fired: &mut Fired<'_, K, V>,
    ) -> Turn {
        let (mut budget, migrate_budget, mut drain) = match mode {
            Mode::Write | Mode::Press => (WRITE_BUDGET, MIGRATE_BUDGET, true),
            Mode::Full { drain } => (FULL_CHUNK, usize::MAX, drain),
        };
        let mut turn = Turn::default();
        loop {
            // SeqCst: pairs with the fence after unlocking below (see the module docs).
            fence(Ordering::SeqCst);
            let maint = match mode {
                Mode::Write => sync::try_lock(&self.maint),
                Mode::Press | Mode::Full { .. } => Some(sync::lock(&self.maint)),
            };
            let Some(mut locked) = maint else {
                return turn;
            };
            let maint = &mut *locked;
            fired.generation = maint.generation;
            if drain && maint.backlog.0.is_null() {
                maint.backlog.0 = self.take_stack();
                turn.drained = true;
            }
            self.apply(maint, &mut budget, guard, fired, &mut turn);
            let Maint { wheel, queues, .. } = maint;
            // SAFETY: 1. scheduled nodes are alive (not DETACHED, so not retired); 2. we hold
            // the maintenance lock.
            let caught_up = unsafe {
                wheel.advance(
                    now,
                    &mut budget,
                    // SAFETY: scheduled nodes are alive (as above).
                    |node| self.wheel_deadline(NodePtr::from_raw(node)),
                    |node, d| {
                        if d == NEVER {
                            // A read took its deadline away: it leaves the wheel, live.
                            // SAFETY: just popped from the wheel, so alive (scheduled nodes
                            // are not retired); we hold the lock.
                            let node = NodePtr::from_raw(node);
                            // Relaxed: SCHEDULED is set and cleared only under the lock.
                            node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
                        } else {
                            self.expire(node, queues, guard, fired, &mut turn);
                        }
                    },
                )
            };
            let over = self.evict(maint, now, &mut budget, guard, fired, &mut turn);
            // Starts shrinking a mostly empty table, copies a few groups of a migration:
            // no user code, no flush.
            turn.migrating = self.table.maintain(migrate_budget, guard);
            turn.due_left = !maint.backlog.0.is_null() || !caught_up;
            turn.evict_left = over;
            // Relaxed: read by `due` as a hint; stored under the lock, so the maintainers'
            // values are ordered, and a later tick is never published before its work.
            let due_at = if turn.due_left || turn.evict_left || turn.migrating {
                0
            } else {
                now + 1
            };
            self.handoff.due_at.store(due_at, Ordering::Relaxed);
            drop(locked);
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

    /// Applies the cancel ring's requests and the backlog's while the budget lasts.
    /// Maintenance lock held.
    fn apply(
        &self,
        maint: &mut Maint<K, V>,
        budget: &mut usize,
        guard: &Guard,
        fired: &mut Fired<'_, K, V>,
        turn: &mut Turn,
    ) {
        for slot in self.handoff.cancels.iter() {
            if *budget == 0 {
                return;
            }
            // Relaxed first: most slots are empty, and an empty slot needs no swap.
            if slot.load(Ordering::Relaxed).is_null() {
                continue;
            }
            // Acquire pairs with the Release CAS in `push_cancel`.
            let raw = slot.swap(ptr::null_mut(), Ordering::Acquire);
            if raw.is_null() {
                continue;
            }
            *budget -= 1;
            // SAFETY: a QUEUED node is not DETACHED, so not retired: alive.
            let node = unsafe { NodePtr::from_raw(raw) };
            if self.serve(maint, node, true) {
                self.expire(raw, &mut maint.queues, guard, fired, turn);
            }
        }
        while *budget > 0 && !maint.backlog.0.is_null() {
            *budget -= 1;
            let raw = maint.backlog.0;
            // SAFETY: a QUEUED node is not DETACHED, so not retired: alive.
            let node = unsafe { NodePtr::from_raw(raw) };
            // Read the link first: once scheduled, the node's links are the wheel's.
            // SAFETY: we own the backlog, and the node is in no wheel slot yet.
            maint.backlog.0 = unsafe { node.link() };
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
                let d = self.wheel_deadline(node);
                if d != NEVER {
                    // SAFETY: 1. alive until DETACHED, which only this lock's holder sets; 2.
                    // on no wheel list (not SCHEDULED); 3. lock held.
                    if unsafe { maint.wheel.schedule(raw, d) } {
                        // Relaxed: SCHEDULED is read only under the lock, which orders it.
                        node.meta.fetch_or(SCHEDULED, Ordering::Relaxed);
                    } else {
                        self.expire(raw, &mut maint.queues, guard, fired, turn);
                        continue;
                    }
                }
                if self.limits.weighed && node.ext().is_some_and(|e| e.weight != 0) {
                    // SAFETY: 1. alive until DETACHED, which only this lock's holder sets,
                    // after unlinking it; 2. extended, in no queue (drained once); 3. lock.
                    unsafe { maint.queues.admit(raw) };
                }
            }
        }
    }

    /// A due node left the wheel: take it out of the table unless someone else already
    /// did (that remover's queued request will detach it). Maintenance lock held.
    fn expire(
        &self,
        raw: *mut Node<K, V>,
        queues: &mut Queues<K, V>,
        guard: &Guard,
        fired: &mut Fired<'_, K, V>,
        turn: &mut Turn,
    ) {
        // SAFETY: the node was on the wheel (or about to be), so alive; `guard` has been
        // held since before it could be retired.
        let node: NodePtr<'_, K, V> = unsafe { NodePtr::from_raw(raw) };
        node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
        if self.table.remove_node(&node, guard) {
            turn.expired += 1;
            if node.ext().is_some() {
                // SAFETY: alive (we are its remover and hold it), extended; lock held.
                unsafe { queues.unlink(raw) };
            }
            self.departed(node, RemovalCause::Expired, fired);
        }
    }

    /// The remover's duties for a node a maintainer took out of the table, out of the
    /// wheel and the queues already: its weight, and its hold for the listener.
    fn departed(&self, node: NodePtr<'_, K, V>, cause: RemovalCause, fired: &mut Fired<'_, K, V>) {
        self.refund(node);
        if fired.hold {
            // Relaxed: counted under the maintenance lock, which `owed_before` takes too,
            // so a generation's counts are complete when it is flipped.
            self.owed[usize::from(fired.generation)].fetch_add(1, Ordering::Relaxed);
            // SAFETY: the slot's CAS made us the remover, and RELEASED is not set yet.
            let mut held = unsafe { Held::new(node, cause, fired.index) };
            held.owed = Some(fired.generation);
            fired.out.push(held);
        }
        let released = if fired.hold { 0 } else { RELEASED };
        // A read's re-file request may be pending on the ring (a timed node, QUEUED: see
        // `refile`); serving it detaches the node then. Setting REMOVED first (AcqRel, as
        // in `removed`) stops further requests, so without one the wheel side is done.
        let queued =
            node.timer().is_some() && node.meta.fetch_or(REMOVED, Ordering::AcqRel) & QUEUED != 0;
        let detached = if queued { 0 } else { DETACHED };
        // Last use of `node` here: without a hold this may retire it.
        self.table
            .settle(node, REMOVED | UNLINKED | detached | released);
    }

    /// Evicts while the cache's total weight is over its bound and the budget lasts (see
    /// `evict`); a victim already expired at `now` is reported as `Expired`. Returns whether it stopped with the total still over and entries left to
    /// evict here. Maintenance lock held.
    fn evict(
        &self,
        maint: &mut Maint<K, V>,
        now: u64,
        budget: &mut usize,
        guard: &Guard,
        fired: &mut Fired<'_, K, V>,
        turn: &mut Turn,
    ) -> bool {
        while self.limits.over() {
            // SAFETY: queued nodes are alive (they leave the queues before DETACHED); the
            // lock is held.
            let Some(raw) = (unsafe { maint.queues.victim(budget) }) else {
                return *budget == 0 && maint.queues.len() > 0;
            };
            // SAFETY: it was queued, so alive; `guard` predates its retirement.
            let node: NodePtr<'_, K, V> = unsafe { NodePtr::from_raw(raw) };
            // A removed node's remover has queued its cancellation, which detaches it.
            if node.meta.load(Ordering::Relaxed) & REMOVED != 0 {
                continue;
            }
            if self.table.remove_node(&node, guard) {
                // Relaxed: SCHEDULED is set and cleared only under this lock.
                if node.meta.load(Ordering::Relaxed) & SCHEDULED != 0 {
                    // SAFETY: SCHEDULED: linked into our wheel; lock held.
                    unsafe { maint.wheel.cancel(raw) };
                    node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
                }
                // A victim already past its TTL or idle deadline leaves as what it is.
                let cause = if self.wheel_deadline(node) <= now {
                    turn.expired += 1;
                    RemovalCause::Expired
                } else {
                    turn.evicted += 1;
                    RemovalCause::Evicted
                };
                self.departed(node, cause, fired);
            }
        }
        false
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
        // Settle what the hand-off, the backlog and the cancel ring still hold so the table
        // and reclamation drops free every node exactly once: removed nodes are detached
        // (and retired, their other holds being gone); live ones stay in the table, which
        // frees them.
        let backlog = std::mem::replace(&mut sync::lock(&self.maint).backlog.0, ptr::null_mut());
        let stack = self.handoff.head.swap(ptr::null_mut(), Ordering::Relaxed);
        for mut next in [backlog, stack] {
            while !next.is_null() {
                // SAFETY: queued nodes are alive; `&mut self`: exclusive access.
                let node = unsafe { NodePtr::from_raw(next) };
                // SAFETY: exclusive access; a stacked node is in no wheel slot.
                next = unsafe { node.link() };
                let old = node.meta.fetch_and(!QUEUED, Ordering::Relaxed);
                if old & REMOVED != 0 {
                    self.table.settle(node, DETACHED);
                }
            }
        }
        for slot in self.handoff.cancels.iter() {
            let raw = slot.swap(ptr::null_mut(), Ordering::Relaxed);
            if !raw.is_null() {
                // SAFETY: a queued node is alive; exclusive access. Its wheel is dropped
                // with us, so only the hold matters: a removed node's (a live one, asking
                // for a re-file, stays in the table, which frees it).
                let node = unsafe { NodePtr::from_raw(raw) };
                let old = node.meta.fetch_and(!QUEUED, Ordering::Relaxed);
                if old & REMOVED != 0 {
                    self.table.settle(node, DETACHED);
                }
            }
        }
    }
}
