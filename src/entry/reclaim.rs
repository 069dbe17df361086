//! Freeing departed entries: per-segment batches, one epoch grace period, bounded frees.
//!
//! ## The problem
//! A retired node (unreachable, its three holds released: see `entry::node`) may still be
//! read by a thread that found it before it became unreachable and is still pinned.
//! Epoch-based reclamation frees it once every thread pinned at that time has unpinned
//! (Fraser, "Practical lock-freedom", PhD thesis, University of Cambridge, 2004; compared
//! with hazard pointers and quiescent-state schemes by Hart, McKenney, Demke Brown and
//! Walpole, "Performance of memory reclamation for lockless synchronization", JPDC 67(12),
//! 2007). crossbeam-epoch implements it, but handing it our nodes would cost three things:
//! its garbage waits in thread-local bags that a thread gone quiet never flushes (crossbeam
//! #540, #566); it runs deferred closures inline in whatever `pin` or `flush` collects them,
//! so key and value `Drop`s (user code) would run pinned on random operations; and a cache
//! could not tell when what it retired has been freed, so neither `run_pending_tasks` nor
//! `Drop` could promise anything.
//!
//! ## The scheme: only grace periods go through crossbeam; the nodes stay ours
//! 1. [`Reclaim::retire`] pushes a node onto the segment's *limbo* for its lane (the
//!    intrusive Treiber stack of `crate::intrusive`, through the node's `wheel.next`: see
//!    `entry::links`; lanes below). It never seals, so it may be called anywhere, under a
//!    lock included.
//! 2. [`Reclaim::seal`] (when [`BATCH`] nodes wait, and on every full maintenance pass; never
//!    under a lock) takes the whole limbo (every lane's, then one batch per lane), draws
//!    their number `n` from `drawn`, pushes them onto the *sealed* stack, and defers a
//!    closure that only records "batch `n`'s grace period is over" (`grace` raised to
//!    `n + 1`), flushing so the closure reaches crossbeam's global queue at once.
//! 3. [`Reclaim::free_ready`] frees queued batches numbered below `grace` (its lane's
//!    share, see "Lanes"), up to a budget, with no lock held and no pin of ours: key and
//!    value `Drop`s run there and nowhere else while the cache lives. A panic in one is
//!    caught and discarded, and the rest of the batch is still freed.
//!
//! ## Why a batch numbered below `grace` may be freed
//! `n < grace` means the closure of some batch `m >= n` has run. Retiring `n`'s nodes
//! happened before `n` was drawn, which happened before `m` was drawn (AcqRel RMWs on one
//! counter), before `m`'s closure was deferred. crossbeam runs that closure only after every
//! thread pinned when it was deferred has unpinned. A thread that can still reach one of
//! `n`'s nodes found it before it became unreachable, so it was pinned then, and has either
//! unpinned since or was still pinned at `m`'s defer: either way it is no longer pinned.
//!
//! ## Lanes: a node goes home to be freed
//! A node freed by a thread other than its allocator's goes back to that thread's glibc
//! arena under the arena's lock, colliding with the owner's `malloc`s (why and what it
//! cost: `entry::lane`).
//! So threads are dealt [`LANES`] lanes round robin, and a node records its allocating
//! thread's lane (in its hash word, see `entry::node`). `retire` files it in its lane's
//! limbo, one sealing takes every lane's limbo as batches of one number, and freeing is
//! shared out:
//! - an operation's pass ([`Reclaim::free_ready`]) frees its own lane's ready batches, and
//!   of every other lane only those beyond the first [`SLACK`] ready ones: a lane whose
//!   threads fall behind (or have gone, or wait for the processor) is helped, boundedly;
//! - the background pass ([`Reclaim::free_stale`], the reaper's) frees whatever was already
//!   ready at its previous pass, any lane: memory returns a round after its lane goes quiet;
//! - `run_pending_tasks` and `Drop` free every lane, as before.
//!
//! The lane is a hint: which thread frees a node changes only where its memory goes back,
//! never whether or when it may be freed (the grace argument above is per batch number).
//!
//! ## Ground rules
//! - `limbo` (one stack per lane) and `sealed`: lock-free stacks, pushed by anyone, taken
//!   whole by `swap` (so no ABA).
//! - `queue`: the sealed batches taken off the stack and not yet freed, touched only by the
//!   holder of the *freeing token* (`freeing`, taken by a CAS and never waited for: a thread
//!   that finds it taken skips freeing). While it frees, the holder's thread is marked (see
//!   [`is_freeing`]) so that a `Drop` calling back into the cache cannot wait for itself.
//!
//! ## One accounting
//! What is not yet freed is exactly what is in the lanes' `limbo`s, `sealed` and `queue`. To free
//! everything retired before it started, `run_pending_tasks` seals, then, holding the token,
//! moves the sealed stack into the queue and notes the highest number there; it is done once
//! no batch at or below that number is left in the queue (see [`Reclaim::free_pending`]).
//! Dropping the cache needs no epoch at all: the last handle is gone, so no thread can
//! reach any node, and [`Drop`] frees everything at once, never waiting for another thread.

use crate::entry::lane::{home_lane, LANES};
use crate::entry::links::WheelField;
use crate::entry::node::Node;
use crate::intrusive::{Chain, Stack, StackLink};
use crate::sync::{self, AtomicBool, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use std::cell::Cell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

/// Retired nodes that make a limbo due for sealing (fewer under Miri and loom, to exercise
/// sealing with few operations).
pub(crate) const BATCH: usize = if cfg!(miri) || sync::MODEL { 2 } else { 256 };

/// Ready batches (one per sealing) of each other lane that an operation's freeing pass
/// leaves to that lane's threads ("Lanes" above). At 2, at 8 threads on 2 cores, helpers
/// did half of all frees, into the owners' glibc arenas, and slept whenever an owner was
/// descheduled holding its arena's lock (README, "Performance", for the tail and memory).
const SLACK: usize = 8;

sync::thread_cell! {
    /// Set while this thread holds some segment's freeing token (and so runs `Drop`s).
    static FREEING: Cell<bool> = Cell::new(false);
}

/// Whether this thread is freeing retired nodes right now (inside a key's or value's
/// `Drop`): it must not wait for reclamation, which could be waiting for itself.
pub(crate) fn is_freeing() -> bool {
    FREEING.with(Cell::get)
}

/// Retired nodes, chained through their stack links.
type Nodes<K, V> = Chain<WheelField<K, V>>;

/// A sealed batch: retired nodes of one lane (never none), and its number (shared by the
/// batches of the other lanes sealed with it).
struct Batch<K, V> {
    nodes: Nodes<K, V>,
    number: u64,
    lane: usize,
}

/// Which ready batches a freeing pass may take.
#[derive(Clone, Copy, Debug)]
enum Share {
    /// An operation's pass on a thread of this lane: the lane's own, and of each other
    /// lane the ready batches beyond the first [`SLACK`].
    Home(usize),
    /// Every lane's, numbered below this.
    Below(u64),
}

/// A sealed batch on the sealed stack (a box from `Box::into_raw` in `seal`).
struct Sealed<K, V> {
    batch: Batch<K, V>,
    next: *mut Sealed<K, V>,
}

/// The sealed stack's link: [`Sealed::next`].
struct SealedLink<K, V>(PhantomData<fn() -> (K, V)>);

// SAFETY: `set_next` writes and `next` reads the same field, `Sealed::next`, and nothing
// else.
unsafe impl<K, V> StackLink for SealedLink<K, V> {
    type Node = Sealed<K, V>;

    unsafe fn set_next(node: *mut Sealed<K, V>, next: *mut Sealed<K, V>) {
        // SAFETY: 1. the box is alive (`set_next`'s 1); 2. the link is the caller's alone
        // (`set_next`'s 2), so this write races with nothing.
        unsafe { (*node).next = next };
    }

    unsafe fn next(node: *mut Sealed<K, V>) -> *mut Sealed<K, V> {
        // SAFETY: 1. alive (`next`'s 1); 2. no write races this read (`next`'s 2).
        unsafe { (*node).next }
    }
}

/// One segment's retired nodes on their way to being freed (see the module docs).
pub(crate) struct Reclaim<K, V> {
    /// Retired nodes not yet sealed, one stack per lane (a node goes to its own lane's).
    limbo: [Stack<WheelField<K, V>>; LANES],
    /// Nodes pushed onto `limbo` since it was last sealed (a hint for [`Self::seal_if_full`]).
    limbo_len: AtomicUsize,
    sealed: Stack<SealedLink<K, V>>,
    /// Batches numbered so far.
    drawn: AtomicU64,
    /// One past the highest batch number whose grace period is known to be over; shared
    /// with the deferred closures, which may run after the segment is gone.
    grace: Arc<AtomicU64>,
    freeing: AtomicBool,
    queue: UnsafeCell<VecDeque<Batch<K, V>>>,
    /// The `grace` that the last [`Reclaim::free_stale`] read: batches numbered below it
    /// were ready then. Written only by the freeing token's holder; Relaxed, as the token's
    /// hand-over (`Token::drop`'s Release, `take_token`'s Acquire) orders it.
    stale: AtomicU64,
}

// SAFETY: 1. the raw node pointers are owned by the reclamation (nobody else can reach a
// retired node's link or free it), so moving them moves owned `K, V`, which a cache only
// stores when `Send + Sync`; 2. the queue is touched only by the freeing-token holder,
// whichever thread that is.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Reclaim<K, V> {}
// SAFETY: 1. through `&Reclaim` a thread may free nodes (run `K`'s and `V`'s `Drop`) that
// other threads retired, which a cache allows only for `K, V: Send + Sync`; 2. every field
// reached through `&self` is atomic, except `queue`, which only the holder of the freeing
// token (taken by a CAS) touches.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Reclaim<K, V> {}

impl<K, V> std::fmt::Debug for Reclaim<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reclaim")
            .field("limbo_len", &self.limbo_len.load(Ordering::Relaxed))
            .field("drawn", &self.drawn.load(Ordering::Relaxed))
            .field("grace", &self.grace.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What [`Reclaim::free_pending`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Everything retired before the first call (of this round of calls) is freed.
    Done,
    /// Some of it still waits for its grace period, or another thread holds the token.
    Waiting,
}

impl<K, V> Reclaim<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            limbo: std::array::from_fn(|_| Stack::default()),
            limbo_len: AtomicUsize::new(0),
            sealed: Stack::default(),
            drawn: AtomicU64::new(0),
            grace: Arc::new(AtomicU64::new(0)),
            freeing: AtomicBool::new(false),
            queue: UnsafeCell::new(VecDeque::new()),
            stale: AtomicU64::new(0),
        }
    }

    /// Adds a node nobody can reach any more to the limbo. Never seals (see the module
    /// docs), so it is safe under any lock.
    ///
    /// # Safety
    /// 1. `node` was allocated by `NodeBox::new` (this is the pointer `into_raw` gave, or
    ///    one made from it with `map_addr`, so with the allocation's provenance).
    /// 2. It is unreachable from the table, the wheel, the hand-off stack, the cancel ring
    ///    and every `Held`, except by threads pinned since before it became unreachable
    ///    (which read its key, value and `meta`, never its `wheel` links).
    /// 3. It is retired exactly once (the three-hold handshake in `entry::node` picks one
    ///    caller).
    /// 4. Every access to the node's `wheel` field by its other holders happens-before
    ///    this call (`Reclaim::settle`'s AcqRel `fetch_or` gives that).
    pub(crate) unsafe fn retire(&self, node: *mut Node<K, V>) {
        // SAFETY: `push`'s 1: the node came from `NodeBox::new` (our 1) and is freed only
        // after a take returns it (sealing, then a free after its grace period); its 2: by
        // our 2 and 3 this thread alone holds the node now, so its link (`wheel.next`:
        // unreachable from the wheel, our 2) is ours, and our 4 orders its other holders'
        // accesses before this. Its 3: whoever frees the node runs `K`'s and `V`'s `Drop`s
        // on its own thread, which `Reclaim` allows only for `K, V: Send + Sync` (its
        // `Send` and `Sync` impls).
        // (The lane: an immutable field of the node, alive by our 1 and 2.)
        unsafe { self.limbo[(*node).lane()].push(node) };
        // A hint: a lost count (retirements race here from removers, listeners' holds and
        // maintainers) only seals later, at a later count or a full pass, which seals.
        sync::bump_hint(&self.limbo_len);
    }

    /// Seals the limbo if a batch's worth waits. Call with no lock held (it flushes).
    pub(crate) fn seal_if_full(&self) {
        // Relaxed: a hint that pairs with nothing (a stale count only moves the seal).
        if self.limbo_len.load(Ordering::Relaxed) >= BATCH {
            self.seal();
        }
    }

    /// Seals everything in the limbo as one batch and starts its grace period (see the
    /// module docs). Call with no lock held: the flush runs crossbeam's deferred closures,
    /// which may be anyone's.
    pub(crate) fn seal(&self) {
        // Relaxed: a hint of when to seal, pairs with nothing; reset before the swaps so
        // pushes that miss them still count towards the next seal.
        self.limbo_len.store(0, Ordering::Relaxed);
        // Every lane is taken before the number is drawn: a batch's nodes must all be
        // retired before its draw (module docs), however many lanes it spans.
        let taken: [Nodes<K, V>; LANES] = std::array::from_fn(|lane| self.limbo[lane].take());
        if taken.iter().all(Chain::is_empty) {
            return;
        }
        // AcqRel: the Release half pairs with the Acquire half of every later draw (this
        // same `fetch_add`, by a later sealer): retiring these batches happens before every
        // later draw, and so before a later batch's defer (module docs). The Acquire half
        // is the other end of that edge, from earlier draws.
        let number = self.drawn.fetch_add(1, Ordering::AcqRel);
        for (lane, nodes) in taken.into_iter().enumerate() {
            if nodes.is_empty() {
                continue;
            }
            let sealed = Box::into_raw(Box::new(Sealed {
                batch: Batch {
                    nodes,
                    number,
                    lane,
                },
                next: ptr::null_mut(),
            }));
            // SAFETY: `push`'s 1: a live box from `Box::into_raw` above, freed only by the
            // taker (`absorb_sealed`, `Drop`); its 2: ours alone until this push publishes
            // it; its 3: a batch holds retired nodes, which may be freed on any thread (as
            // for `retire`'s push).
            unsafe { self.sealed.push(sealed) };
        }
        let grace = Arc::clone(&self.grace);
        let guard = crossbeam_epoch::pin();
        guard.defer(move || {
            raise_grace(&grace, number + 1);
        });
        guard.flush();
    }

    /// An operation's share of freeing: up to about `budget` nodes of batches whose grace
    /// period is over, this thread's lane's first, then those of other lanes beyond the
    /// [`SLACK`] ready ones each (module docs, "Lanes"), with no lock held. Returns true if
    /// some it may free are ready and left (the caller keeps turns coming), false when none
    /// are, or when another thread is freeing.
    pub(crate) fn free_ready(&self, budget: usize) -> bool {
        let Some(_token) = self.take_token() else {
            return false;
        };
        let mut left = budget;
        // SAFETY: `absorb_sealed`'s and `free_queued`'s 1: we hold the freeing token
        // (`_token`, alive to the end of this function).
        unsafe {
            self.absorb_sealed();
            self.free_queued(&mut left, Share::Home(home_lane()))
        }
    }

    /// The background pass's share (the reaper's): every batch, whatever its lane, that
    /// was ready at the previous call already, so each lane's own threads had a whole
    /// period to free it. Unbounded (it runs on no caller's operation). Skipped if another
    /// thread is freeing.
    pub(crate) fn free_stale(&self) {
        let Some(_token) = self.take_token() else {
            return;
        };
        // Relaxed: written only under the token, whose hand-over orders it (see `stale`).
        let below = self.stale.load(Ordering::Relaxed);
        // Acquire pairs with the Release CAS in `raise_grace`, as in `free_queued`.
        let ready = self.grace.load(Ordering::Acquire);
        let mut left = usize::MAX;
        // SAFETY: `absorb_sealed`'s and `free_queued`'s 1: we hold the freeing token
        // (`_token`, alive to the end of this function).
        unsafe {
            self.absorb_sealed();
            self.free_queued(&mut left, Share::Below(below));
        }
        self.stale.store(ready, Ordering::Relaxed);
    }

    /// One step of freeing everything retired before the first call of a round: `target`
    /// starts `None` and remembers, across the round's calls, one past the highest batch
    /// number queued when this thread first held the token. Frees what is ready of those
    /// batches only (so the work is bounded by what was pending); returns whether all of
    /// them are freed.
    pub(crate) fn free_pending(&self, target: &mut Option<u64>) -> Progress {
        let Some(_token) = self.take_token() else {
            return Progress::Waiting;
        };
        // SAFETY: `absorb_sealed`'s 1: we hold the freeing token (`_token`, alive to the
        // end of this function).
        unsafe { self.absorb_sealed() };
        let below = *target.get_or_insert_with(|| {
            self.queue.with(|queue| {
                // SAFETY: 1. the token guards the queue, and we hold it (`_token`), so no
                // thread writes it during this read; 2. the last holder's writes happen-
                // before it (`Token::drop`'s Release, `take_token`'s Acquire).
                let queue = unsafe { &*queue };
                queue.iter().map(|b| b.number + 1).max().unwrap_or(0)
            })
        });
        let mut left = usize::MAX;
        // SAFETY: `free_queued`'s 1: we hold the freeing token (`_token`).
        unsafe { self.free_queued(&mut left, Share::Below(below)) };
        self.queue.with(|queue| {
            // SAFETY: 1. we hold the token that guards the queue (`_token`), so nobody
            // writes it during this read; 2. our own writes to it precede this read.
            let queue = unsafe { &*queue };
            if queue.iter().any(|b| b.number < below) {
                Progress::Waiting
            } else {
                Progress::Done
            }
        })
    }

    /// Moves the sealed stack into the queue.
    ///
    /// # Safety
    /// 1. The caller holds the freeing token.
    unsafe fn absorb_sealed(&self) {
        let mut taken = self.sealed.take();
        self.queue.with_mut(|queue| {
            // SAFETY: 1: the token gives this thread the queue alone, and the previous
            // holder's writes happen-before ours (`Token::drop`, `take_token`).
            let queue = unsafe { &mut *queue };
            // SAFETY: `pop`'s 1: boxes on the sealed stack are alive until their taker
            // frees them, and are the pointers `Box::into_raw` gave in `seal`; its 2: the
            // take made this chain ours.
            while let Some(top) = unsafe { taken.pop() } {
                // SAFETY: 1. boxes on the sealed stack come from `Box::into_raw` in `seal`;
                // 2. the take made this thread their only owner, and its Acquire made their
                // contents visible; 3. each is taken once (`pop` moved past it).
                let sealed = unsafe { Box::from_raw(top) };
                queue.push_back(sealed.batch);
            }
        });
    }

    /// Frees the queued batches whose grace period is over and that `share` allows, while
    /// `left` nodes of budget last. Returns true if such ready nodes are left.
    ///
    /// # Safety
    /// 1. The caller holds the freeing token.
    unsafe fn free_queued(&self, left: &mut usize, share: Share) -> bool {
        // Acquire pairs with the Release CAS in `raise_grace` (the deferred closures).
        let grace = self.grace.load(Ordering::Acquire);
        let (below, home) = match share {
            Share::Home(lane) => (grace, Some(lane)),
            Share::Below(below) => (grace.min(below), None),
        };
        // Ready batches of each other lane seen so far (for `Share::Home`).
        let mut others = [0usize; LANES];
        self.queue.with_mut(|queue| {
            // SAFETY: 1: the token gives this thread the queue alone, and the previous
            // holder's writes happen-before ours (`Token::drop`, `take_token`).
            let queue = unsafe { &mut *queue };
            let mut i = 0;
            while i < queue.len() {
                let batch = &queue[i];
                if batch.number >= below {
                    i += 1;
                    continue;
                }
                if home.is_some_and(|home| home != batch.lane) {
                    others[batch.lane] += 1;
                    if others[batch.lane] <= SLACK {
                        i += 1;
                        continue;
                    }
                }
                if *left == 0 {
                    return true;
                }
                // SAFETY: `free_some`'s 1: a batch holds retired nodes, from `NodeBox::new`
                // (`retire`'s 1); its 2: the batch is numbered below `grace`, so its grace
                // period is over (module docs), and it is in our queue (our 1), so no other
                // thread holds it; its 3: the links were written before `retire`'s Release
                // CAS, acquired by `seal`'s swap, and the batch reached us through `seal`'s
                // Release CAS, `absorb_sealed`'s Acquire swap and the token's hand-overs.
                if unsafe { free_some(&mut queue[i].nodes, left) } {
                    queue.remove(i);
                } else {
                    return true;
                }
            }
            false
        })
    }

    /// Takes the freeing token, marking this thread as freeing until the result drops.
    fn take_token(&self) -> Option<Token<'_>> {
        // Acquire pairs with the Release store in `Token::drop`: the previous holder's
        // queue changes are visible. Relaxed on failure: a thread that finds the token
        // taken reads nothing it guards.
        self.freeing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(Token {
            flag: &self.freeing,
            _freeing: sync::Raised::raise(&FREEING),
        })
    }
}

/// The freeing token, held; gives it back (and restores the thread's mark) on drop, even
/// when unwinding.
struct Token<'a> {
    flag: &'a AtomicBool,
    /// This thread's freeing mark, put back as it was after `drop` below.
    _freeing: sync::Raised,
}

impl Drop for Token<'_> {
    fn drop(&mut self) {
        // Release pairs with the Acquire CAS in `take_token`: our queue changes are
        // visible to the next holder.
        self.flag.store(false, Ordering::Release);
    }
}

/// Frees nodes from the front of a chain while `left` lasts; returns whether the chain
/// is empty now. Each node's successor, cold by now, is prefetched while it is freed.
///
/// # Safety
/// 1. Every node on the chain came from `NodeBox::new`, with its allocation's provenance.
/// 2. The caller owns them all: each is retired and past its grace period (or the cache
///    is gone), so no other thread reaches it or its link.
/// 3. Every earlier access to them (their links' writes included) happens-before this
///    call.
unsafe fn free_some<K, V>(nodes: &mut Nodes<K, V>, left: &mut usize) -> bool {
    while *left > 0 {
        // SAFETY: `pop`'s 1: the first node is alive (our 2: not yet freed, that is below)
        // with its provenance (our 1); its 2: our 2 and 3. `pop` reads the link first.
        let Some(node) = (unsafe { nodes.pop() }) else {
            return true;
        };
        sync::prefetch(nodes.first());
        // SAFETY: `free_node`'s 1: our 1 and 2 (from `NodeBox::new`, reachable by nobody
        // else); its 2: freed exactly once, here: `pop` has moved past it.
        unsafe { free_node(node) };
        *left -= 1;
    }
    nodes.is_empty()
}

/// Raises `grace` to at least `to` (a deferred closure's one act: see [`Reclaim::seal`]).
///
/// Release pairs with the Acquire load in `Reclaim::free_queued`: a freer that sees the
/// new number sees the grace period it stands for as over. If `grace` is already at `to`
/// or above, nothing is stored: a later batch's closure raised it, and that closure's own
/// Release covers this batch (module docs, "Why a batch numbered below `grace` may be
/// freed").
///
/// A compare-and-swap loop, not `fetch_max`, which would mean the same in the memory model:
/// ThreadSanitizer does not instrument `atomicrmw max`, so it never saw that Release, and it
/// reported every free after it as racing with the reads the grace period had waited for
/// (4 runs in 10 of the iteration test's scan under concurrent removals).
fn raise_grace(grace: &AtomicU64, to: u64) {
    // Relaxed: a first guess for the CAS below (which checks it); nothing is read through
    // it, and a value already at `to` needs no ordering (see above).
    let mut now = grace.load(Ordering::Relaxed);
    while now < to {
        match grace.compare_exchange_weak(now, to, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) => now = seen,
        }
    }
}

/// Frees one node, catching a panic from its key's or value's `Drop`.
///
/// # Safety
/// 1. The caller owns the node (from `NodeBox::new`, reachable by nobody else).
/// 2. It frees the node once.
pub(crate) unsafe fn free_node<K, V>(node: *mut Node<K, V>) {
    // SAFETY: `free`'s 1 (allocated by `NodeBox::new`) is our 1; its 2 (nobody else
    // reaches it, freed once) is our 1 and 2.
    let freed = catch_unwind(AssertUnwindSafe(move || unsafe {
        crate::entry::layout::free(node)
    }));
    if let Err(payload) = freed {
        crate::panics::discarded(
            "a key's or value's Drop (freeing a departed entry)",
            payload,
        );
    }
}

/// Frees a chain of nodes, catching panics from key and value `Drop`s.
///
/// # Safety
/// 1. Every node on the chain came from `NodeBox::new`, with its allocation's provenance.
/// 2. The caller owns them all: no other thread reaches any of them or their links.
/// 3. Every earlier access to them happens-before this call.
unsafe fn free_chain<K, V>(mut nodes: Nodes<K, V>) {
    let mut all = usize::MAX;
    // SAFETY: `free_some`'s 1, 2 and 3 are our 1, 2 and 3.
    let emptied = unsafe { free_some(&mut nodes, &mut all) };
    debug_assert!(emptied);
}

impl<K, V> Drop for Reclaim<K, V> {
    fn drop(&mut self) {
        // `&mut self`: the cache is being dropped, so its last handle is gone and no thread
        // can reach any node, pinned or not (module docs): free everything now. The takes'
        // Acquire is stronger than needed here: whatever handed us `&mut self` (the last
        // `Arc`'s drop, a join) ordered every other thread's pushes before this.
        for limbo in &self.limbo {
            // SAFETY: `free_chain`'s 1: retired nodes come from `NodeBox::new` (`retire`'s
            // 1); its 2: `&mut self` and no handle left, so nobody else reaches them; its 3:
            // the hand-over of `&mut self` ordered every other access before this.
            unsafe { free_chain(limbo.take()) };
        }
        let mut sealed = self.sealed.take();
        // SAFETY: `pop`'s 1: boxes on the sealed stack live until their taker frees them,
        // and are the pointers `Box::into_raw` gave in `seal`; its 2: the take made this
        // chain ours.
        while let Some(top) = unsafe { sealed.pop() } {
            // SAFETY: 1. boxes on the sealed stack come from `Box::into_raw` in `seal`;
            // 2. `&mut self`: ours alone; 3. each is taken once (`pop` moved past it).
            let sealed = unsafe { Box::from_raw(top) };
            // SAFETY: `free_chain`'s 1: a sealed batch holds retired nodes (`retire`'s 1);
            // its 2 and 3: `&mut self`, with no handle left, so nobody else reaches them
            // and every other access came before.
            unsafe { free_chain(sealed.batch.nodes) };
        }
        let queue = self.queue.with_mut(|q| {
            // SAFETY: `&mut self`: exclusive, and every other access came before it.
            std::mem::take(unsafe { &mut *q })
        });
        for batch in queue {
            // SAFETY: `free_chain`'s 1: a queued batch holds retired nodes (`retire`'s 1);
            // its 2 and 3: `&mut self`, with no handle left, so nobody else reaches them
            // and every other access came before.
            unsafe { free_chain(batch.nodes) };
        }
    }
}

#[cfg(test)]
#[path = "reclaim_tests.rs"]
mod tests;
