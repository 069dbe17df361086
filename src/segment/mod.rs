//! A segment: one lock-free table, one timing wheel, and the hand-off between them.
//!
//! Writers never wait for expiry work. The wheel sits behind the segment's *maintenance
//! lock*, which is only ever taken with `try_lock` on the write path. A writer that links
//! an entry with a deadline records that on the segment's **hand-off stack** (the
//! intrusive Treiber stack of `crate::intrusive`, threaded through the node's `wheel.next`
//! and taken whole, so no ABA); one that removes a scheduled entry records it in the segment's **cancel ring**
//! (a few slots of node pointers: the node's wheel links are in use then, so it cannot go
//! on the stack; when every slot is taken, the request is boxed onto an overflow stack); a read whose expiry policy moved an entry's deadline earlier records a
//! re-file request there too (see `cache::expiry`). Whoever holds the lock applies the
//! queued requests before advancing the wheel. The node's `QUEUED` flag keeps it queued
//! at most once, and the drainer acts on the node's *current* flags, so a schedule
//! request overtaken by a removal becomes a cancellation. When the ring is full (the
//! maintainers are 32 requests behind), the remover (or re-filing reader) boxes its
//! request onto the overflow stack and marks the segment due: no writer ever waits for
//! the maintenance lock (a bounded cache's back-pressure aside, see [`Mode::Press`]).
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
//! the cache is over its bound a turn evicts, within a budget of its own
//! ([`EVICT_BUDGET`]).
//!
//! Entries taken out are returned to the caller, who counts them and, with no lock held and
//! unpinned, runs the listener. Nothing here runs user code, and nothing flushes the epoch
//! (which runs crossbeam's deferred closures, anyone's) while holding the lock.

use crate::entry::links::WheelField;
use crate::entry::node::{Node, NodePtr, DETACHED, REMOVED};
use crate::entry::reclaim::Reclaim;
use crate::evict::{Limits, Queues};
use crate::intrusive::{Chain, Stack};
use crate::sync::{self, AtomicPtr, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::table::{Table, Tuning};
use crate::wheel::Wheel;

mod handoff;
mod held;
mod maintain;

use crossbeam_utils::CachePadded;
use handoff::OverflowLink;
pub(crate) use held::Held;
use std::ptr;
use std::sync::Arc;

/// Units of work (a request applied, an entry fired or re-filed) a write-path turn may do.
/// One unit costs about 150-250 ns (a node's neighbours, a table slot, a retirement), so
/// this bounds a write's own tail: at 64, the write that took a turn at a tick where
/// hundreds of sessions lapsed did about 10 us of work, which was the session workload's
/// insert and remove p99.9 at 1 thread (8-10 us). At 16 that p99.9 is 4-5 us, with
/// throughput level; the work is the same, spread over more turns. (16 is also
/// `HANDOFF_BATCH` outside loom: one turn applies a batch of requests.)
pub(crate) const WRITE_BUDGET: usize = 16;
/// Units of work (an entry passed by the hand, or evicted) a write-path turn of a bounded
/// cache may spend evicting, apart from [`WRITE_BUDGET`]. The hand may pass many hit
/// entries per victim (CLOCK with 2-bit counts), and with eviction held to the 16 units
/// left by the requests, the loops of `benches/hit_ratio.rs` at 1% capacity lost 0.3-0.8
/// points (the turns fell behind the bound more often); at 64, as before the split, they
/// did not.
pub(crate) const EVICT_BUDGET: usize = 64;
/// Units of work a full turn does per lock hold.
pub(crate) const FULL_CHUNK: usize = 4096;
/// Groups of a table migration a write-path turn may copy per call.
const MIGRATE_BUDGET: usize = 4;
/// Retired nodes a write's or read's turn may free (see `reclaim`; full turns free all that
/// is ready). Small, so that no one operation pays for a whole batch: freeing 256 at once
/// (each a value's `Drop` and two `free`s, about 150 ns) made the write tail (p99.9 about
/// 60 us in the session workload). Freeing still keeps up: while ready nodes are left the
/// segment stays due (`Segment::free_ready`), so every next write or owed read frees its
/// share, which is more than the one node or so each write retires. Bulk expiry retires
/// faster than this for a while; what waits is memory the expired entries held already.
pub(crate) const FREE_BUDGET: usize = 8;
/// Requests queued since the last drain that make a segment due for maintenance (one under
/// loom, so that every write maintains and the models see every interleaving).
const HANDOFF_BATCH: usize = if sync::MODEL { 1 } else { 16 };
/// Slots of the cancel ring (two under loom, so a model can fill it).
const CANCELS: usize = if sync::MODEL { 2 } else { 32 };

/// The hand-off stack and the write path's "is maintenance due?" state, on one cache line
/// (a writer touches it with its push anyway), then the cancel ring and its overflow.
#[derive(Debug)]
struct HandOff<K, V> {
    /// Scheduling requests of new nodes (through their `wheel.next`).
    stack: Stack<WheelField<K, V>>,
    /// Pushes since the last drain (a hint: reset before the drain's swap). Raised with an
    /// RMW, not `sync::bump_hint`: with a load and a store, loom found a pusher whose load
    /// read a count older than a drain's reset and whose store then fell before that reset,
    /// so its own `due` check read 0 while its request, pushed after the drain's swap, sat
    /// on the stack (model `a_second_tier_fed_by_a_listener_maintains_itself`).
    queued: AtomicUsize,
    /// The first tick at which writes must maintain again; 0 when due work was left.
    due_at: AtomicU64,
    /// Where the next cancel request tries first (a hint that spreads the pushes).
    cancel_at: AtomicUsize,
    /// Drained nodes with a request: removed ones whose wheel entry must be cancelled, live
    /// ones a read asked to re-file; null when free.
    cancels: CachePadded<[AtomicPtr<Node<K, V>>; CANCELS]>,
    /// Ring requests that found every slot taken, boxed (see `push_cancel`).
    overflow: Stack<OverflowLink<K, V>>,
}

/// How much maintenance a call may do, and whether it may wait for the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Write and read paths: `try_lock`, at most [`WRITE_BUDGET`] units, and at most
    /// [`EVICT_BUDGET`] more evicting.
    Write,
    /// A write while the cache is well over its bound (back-pressure, see `evict`): as
    /// `Write`, but waits for the lock (its holder's turn is bounded and runs no user code).
    Press,
    /// A write's sweep of another segment before it evicts, or its own turn when a sweep
    /// left lapsed entries behind (see `Inner::turn_pinned`): `try_lock` (a segment whose
    /// lock is taken is being maintained by its holder), at most [`WRITE_BUDGET`] units,
    /// applies requests and advances the wheel, and evicts nothing, so lapsed entries
    /// leave before live ones are evicted.
    Expire,
    /// `run_pending_tasks` and the reaper: wait for the lock, at most [`FULL_CHUNK`] units.
    /// With `drain`, the turn takes the hand-off stack once the backlog is empty (reported
    /// in [`Turn::drained`]); the caller asks until it has, then stops asking, so requests
    /// pushed after that are left to the writers. With `evict`, it also evicts while the
    /// cache is over its bound (a first pass over every segment expires without evicting).
    Full { drain: bool, evict: bool },
}

impl Mode {
    /// Whether a turn in this mode evicts while the cache is over its bound.
    pub(crate) fn evicts(self) -> bool {
        !matches!(self, Mode::Expire | Mode::Full { evict: false, .. })
    }
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
    /// The turn did nothing: its `try_lock` found the lock taken (`Mode::Write` and
    /// `Mode::Expire` only; another thread is maintaining the segment).
    pub(crate) locked_out: bool,
}

/// Requests taken off the hand-off stack but not yet applied (a list of still-`QUEUED`
/// nodes through their stack links).
#[derive(Debug)]
struct Backlog<K, V>(Chain<WheelField<K, V>>);

// SAFETY: 1. the backlog's nodes are QUEUED, hence alive, and reached only by the holder
// of the maintenance lock, inside whose `Mutex` the backlog moves; 2. a cache only
// stores `K, V: Send + Sync`.
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
    /// Retired entries on their way to being freed (their last hold was let go here: see
    /// [`Reclaim::settle`]).
    pub(crate) reclaim: Reclaim<K, V>,
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
pub(crate) struct Sink<'a, K, V> {
    /// Keep the nodes taken out held (`RELEASED` unset) in `out`, for the listener.
    hold: bool,
    /// The generation of [`Segment::owed`] the holds count in (set under the lock).
    generation: u8,
    out: &'a mut Vec<Held<K, V>>,
}

impl<'a, K, V> Sink<'a, K, V> {
    pub(crate) fn new(hold: bool, out: &'a mut Vec<Held<K, V>>) -> Self {
        Self {
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
            reclaim: Reclaim::new(),
            handoff: CachePadded::new(HandOff {
                stack: Stack::default(),
                queued: AtomicUsize::new(0),
                due_at: AtomicU64::new(0),
                cancel_at: AtomicUsize::new(0),
                cancels: CachePadded::new(std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut()))),
                overflow: Stack::default(),
            }),
            maint: Mutex::new(Maint {
                wheel: Wheel::new(now),
                backlog: Backlog(Chain::default()),
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

    /// Frees retired nodes whose grace period is over, at most `budget`. Call with no lock
    /// held and unpinned (it runs `Drop`s). Keeps the segment due while ready nodes are
    /// left, so freeing never falls behind retiring.
    pub(crate) fn free_ready(&self, budget: usize) {
        if self.reclaim.free_ready(budget) {
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
        let backlog = std::mem::take(&mut sync::lock(&self.maint).backlog.0);
        // The take's Acquire is stronger than needed: `&mut self`, and whatever handed it
        // to us (the last handle's drop) ordered every other thread's pushes before this.
        let stack = self.handoff.stack.take();
        for mut chain in [backlog, stack] {
            // SAFETY: `pop`'s 1: a QUEUED node is not DETACHED, so not retired, and
            // nothing retires it before our `settle` below, which comes after its last
            // use; the links hold `NodePtr` pointers, with their provenance; its 2: we took
            // the chain off the stack or the backlog, so its links are ours, and `&mut self`
            // orders every earlier write of them before this.
            while let Some(raw) = unsafe { chain.pop() } {
                // SAFETY: `NodePtr::from_raw`'s 1: a QUEUED node is not DETACHED, so not
                // retired; its 2: nothing retires it before our `settle` below, its last
                // use; its 3: the stack and backlog links hold the pointers `push` stored,
                // from `NodePtr::as_ptr`, with the allocation's provenance.
                let node = unsafe { NodePtr::from_raw(raw) };
                let old = node.take_request();
                if old & REMOVED != 0 {
                    self.reclaim.settle(node, DETACHED);
                }
            }
        }
        // Relaxed: `&mut self`, and whatever handed it to us ordered every other thread's
        // pushes and flag changes before this.
        let ring = self.handoff.cancels.iter();
        let ring = ring.map(|slot| slot.swap(ptr::null_mut(), Ordering::Relaxed));
        let mut overflow = self.handoff.overflow.take();
        let overflowed = std::iter::from_fn(|| {
            // SAFETY: `pop`'s 1: overflow boxes live until their taker frees them (just
            // below), and are the pointers `Box::into_raw` gave in `push_cancel`; its 2:
            // the take made the chain ours.
            let boxed = unsafe { overflow.pop() }?;
            // SAFETY: 1. from `Box::into_raw` in `push_cancel`; 2. ours alone since the
            // take; 3. freed once (`pop` moved past it).
            Some(unsafe { Box::from_raw(boxed) }.node)
        });
        for raw in ring.chain(overflowed).filter(|raw| !raw.is_null()) {
            // SAFETY: `NodePtr::from_raw`'s 1 and 2: a node on the ring or its overflow is
            // QUEUED, so not DETACHED, hence not retired before our `settle` below, its last
            // use; its 3: they hold the pointer `push_cancel` stored, from
            // `NodePtr::as_ptr`. Its wheel is dropped with us, so only the hold matters: a
            // removed node's (a live one, asking for a re-file, stays in the table, which
            // frees it).
            let node = unsafe { NodePtr::from_raw(raw) };
            let old = node.take_request();
            if old & REMOVED != 0 {
                self.reclaim.settle(node, DETACHED);
            }
        }
    }
}

#[cfg(test)]
mod tests;
