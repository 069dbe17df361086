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
//! stack and goes round again if it is not empty. By the fences' total order, either the
//! holder sees the push or the writer's `try_lock` sees the lock free.
//!
//! Expiry work per write-path call is bounded ([`WRITE_BUDGET`] entries); entries fired
//! are returned to the caller, who runs the listener after the lock is released.

use crate::clock::NEVER;
use crate::reclaim::Pending;
use crate::sync::{self, fence, AtomicPtr, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::table::node::{Node, NodePtr, DETACHED, QUEUED, REMOVED, SCHEDULED};
use crate::table::{Shrink, Table, Tuning};
use crate::wheel::Wheel;
use crossbeam_epoch::Guard;
use crossbeam_utils::CachePadded;
use std::ptr;
use std::sync::Arc;

/// Entries a write may expire or re-file per call.
pub(crate) const WRITE_BUDGET: usize = 32;
/// Sentinels a write-path shrink step may delete per call.
const SHRINK_BUDGET: usize = 64;
/// Retired nodes a write may free per call (see `reclaim`): more than a write-path turn
/// retires, so freeing keeps up.
const FREE_BUDGET: usize = 64;
/// Requests queued since the last drain that make a segment due for maintenance (one under
/// loom, so that every write maintains and the models see every interleaving).
const HANDOFF_BATCH: usize = if cfg!(loom) { 1 } else { 16 };

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
    /// Write path: `try_lock`, bounded work.
    Write,
    /// `run_pending_tasks` and the reaper: wait for the lock, finish everything due.
    Full,
}

/// State guarded by the maintenance lock.
#[derive(Debug)]
struct Maint<K, V> {
    wheel: Wheel<K, V>,
    shrink: Shrink,
}

#[derive(Debug)]
pub(crate) struct Segment<K, V> {
    pub(crate) table: Table<K, V>,
    handoff: CachePadded<HandOff<K, V>>,
    maint: Mutex<Maint<K, V>>,
}

impl<K, V> Segment<K, V> {
    pub(crate) fn new(capacity: usize, tuning: Tuning, now: u64, pending: Arc<Pending>) -> Self {
        Self {
            table: Table::new(capacity, tuning, pending),
            handoff: CachePadded::new(HandOff {
                head: AtomicPtr::new(ptr::null_mut()),
                queued: AtomicUsize::new(0),
                due_at: AtomicU64::new(0),
            }),
            maint: Mutex::new(Maint {
                wheel: Wheel::new(now),
                shrink: Shrink::Idle,
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

    /// Remover duties for a node this thread logically deleted (won the marking CAS).
    pub(crate) fn removed(&self, node: NodePtr<'_, K, V>, guard: &Guard) {
        if node.deadline() == NEVER {
            // Never queued, never scheduled: the wheel side is done already.
            self.table.settle(node, REMOVED | DETACHED, guard);
        } else {
            // One RMW sets REMOVED and claims the queue slot; AcqRel pairs with the drainer's
            // `fetch_and` (see `drain`), so whichever comes second sees the other's flag.
            let old = node.meta.fetch_or(REMOVED | QUEUED, Ordering::AcqRel);
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

    /// Drains the hand-off, advances the wheel to `now` and takes a shrink step. Entries
    /// this call expired (it is their remover) are appended to `expired`; the caller counts
    /// them and runs the listener. Returns true if due work was left for later.
    pub(crate) fn maintain<'g>(
        &self,
        now: u64,
        mode: Mode,
        guard: &'g Guard,
        expired: &mut Vec<NodePtr<'g, K, V>>,
    ) -> bool {
        let (budget, shrink_budget) = match mode {
            Mode::Write => (WRITE_BUDGET, SHRINK_BUDGET),
            Mode::Full => (usize::MAX, usize::MAX),
        };
        loop {
            // SeqCst: pairs with the fence after unlocking below (see the module docs).
            fence(Ordering::SeqCst);
            let maint = match mode {
                Mode::Write => sync::try_lock(&self.maint),
                Mode::Full => Some(sync::lock(&self.maint)),
            };
            let Some(mut locked) = maint else {
                return false;
            };
            let maint = &mut *locked;
            self.drain(&mut maint.wheel, guard, expired);
            let mut left = budget;
            // SAFETY: scheduled nodes are alive (not DETACHED, so not retired) and we hold
            // the maintenance lock.
            let caught_up = unsafe {
                maint
                    .wheel
                    .advance(now, &mut left, |node| self.expire(node, guard, expired))
            };
            let shrinking = self
                .table
                .shrink_step(&mut maint.shrink, shrink_budget, guard);
            // Relaxed: read by `due` as a hint; stored under the lock, so the maintainers'
            // values are ordered, and a later tick is never published before its work.
            let due_at = if caught_up && !shrinking { now + 1 } else { 0 };
            self.handoff.due_at.store(due_at, Ordering::Relaxed);
            drop(locked);
            fence(Ordering::SeqCst);
            if self.handoff.head.load(Ordering::Relaxed).is_null() {
                return !caught_up || shrinking;
            }
        }
    }

    /// Applies every queued request. Maintenance lock held.
    fn drain<'g>(
        &self,
        wheel: &mut Wheel<K, V>,
        guard: &'g Guard,
        expired: &mut Vec<NodePtr<'g, K, V>>,
    ) {
        // Reset first, so pushes that miss this swap still count towards the next turn.
        self.handoff.queued.store(0, Ordering::Relaxed);
        // Acquire pairs with the Release push.
        let mut next = self.handoff.head.swap(ptr::null_mut(), Ordering::Acquire);
        while !next.is_null() {
            let raw = next;
            // SAFETY: a QUEUED node is neither DETACHED nor retired, so alive for `'g`.
            let node = unsafe { NodePtr::from_raw(raw) };
            // Read the link first: once QUEUED is cleared the node may be pushed again.
            next = node.chain.load(Ordering::Relaxed);
            // AcqRel: pairs with the remover's `fetch_or` in `removed`.
            let old = node.meta.fetch_and(!QUEUED, Ordering::AcqRel);
            if old & REMOVED != 0 {
                if old & SCHEDULED != 0 {
                    // SAFETY: SCHEDULED means it is linked into our wheel; lock held.
                    unsafe { wheel.cancel(raw) };
                    node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
                }
                self.table.settle(node, DETACHED, guard);
            } else if old & SCHEDULED == 0 {
                // SAFETY: alive until DETACHED, which only this lock's holder sets; lock held.
                if unsafe { wheel.schedule(raw) } {
                    // Relaxed: SCHEDULED is read only under the lock, which orders it.
                    node.meta.fetch_or(SCHEDULED, Ordering::Relaxed);
                } else {
                    self.expire(raw, guard, expired);
                }
            }
        }
    }

    /// A due node left the wheel: remove it from the table unless someone else already
    /// did (that remover's queued request will detach it). Maintenance lock held.
    fn expire<'g>(
        &self,
        raw: *mut Node<K, V>,
        guard: &'g Guard,
        expired: &mut Vec<NodePtr<'g, K, V>>,
    ) {
        // SAFETY: the node was on the wheel (or about to be), so alive; `guard` has been
        // held since before it could be retired.
        let node: NodePtr<'g, K, V> = unsafe { NodePtr::from_raw(raw) };
        node.meta.fetch_and(!SCHEDULED, Ordering::Relaxed);
        if self.table.mark(&node, guard) {
            self.table.settle(node, REMOVED | DETACHED, guard);
            self.table.unlink(node.link.so_key, guard);
            expired.push(node);
        }
    }

    /// Frees retired nodes whose grace period has passed: a bounded slice on the write
    /// path, all of them otherwise. Call with no lock held (it runs `Drop`s). Returns true
    /// if some are left.
    pub(crate) fn free_ready(&self, mode: Mode) -> bool {
        let left = self.table.limbo.free_ready(match mode {
            Mode::Write => FREE_BUDGET,
            Mode::Full => usize::MAX,
        });
        if left {
            // Keep the next writes' turns coming until the ready list is empty, so freeing
            // never falls behind retiring. Relaxed: a hint, as in `maintain`; a maintainer's
            // store may overwrite it, which only moves the next turn to the next tick or
            // batch.
            self.handoff.due_at.store(0, Ordering::Relaxed);
        }
        left
    }

    /// Seals the limbo so everything retired so far is on its way to being freed.
    pub(crate) fn seal(&self, guard: &Guard) {
        self.table.limbo.seal(guard);
    }
}

impl<K, V> Drop for Segment<K, V> {
    fn drop(&mut self) {
        // Settle what the hand-off still holds so the table and limbo drops free every node
        // exactly once: removed nodes are detached (and retired if already unlinked);
        // live ones stay on the list, which frees them.
        // SAFETY: `&mut self`: no other thread can reach the segment.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        let mut next = self.handoff.head.swap(ptr::null_mut(), Ordering::Relaxed);
        while !next.is_null() {
            // SAFETY: queued nodes are alive; exclusive access.
            let node = unsafe { NodePtr::from_raw(next) };
            next = node.chain.load(Ordering::Relaxed);
            let old = node.meta.fetch_and(!QUEUED, Ordering::Relaxed);
            if old & REMOVED != 0 {
                self.table.settle(node, DETACHED, guard);
            }
        }
    }
}
