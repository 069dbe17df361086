//! Freeing departed entries: per-segment limbo batches handed to crossbeam-epoch.
//!
//! crossbeam-epoch (Fraser's epoch-based reclamation, as described by Hart et al., "Making
//! lazy synchronization practical", 2007) frees an object only after every thread that was
//! pinned when it was retired has unpinned. Its garbage sits first in a *thread-local* bag;
//! a thread that retires a few objects and then goes quiet keeps them forever, and at high
//! retirement rates the global queue can grow faster than pins collect it (crossbeam issues
//! #540, #566). Both break the promise that memory follows the live working set.
//!
//! So entries are not deferred one by one. A retired node is pushed onto its segment's
//! *limbo* stack (intrusive, through `Node::chain`; pops take the whole stack, so there is
//! no ABA). When a limbo holds [`BATCH`] nodes, or when `run_pending_tasks` or `Drop` asks,
//! the whole stack is *sealed*: one deferred closure takes the batch, and the guard is
//! flushed so the closure reaches the global queue at once instead of waiting in a local
//! bag. Garbage is therefore bounded by `segments x BATCH` unsealed nodes, plus what the
//! epoch holds back while some thread stays pinned, plus the ready batches below (which
//! writes free faster than they retire), and [`Pending`] counts sealed batches not yet
//! freed, so `run_pending_tasks` and `Drop` can push the epoch until it is zero.
//!
//! The deferred closure does not free the batch itself: crossbeam runs closures inline in
//! whatever `pin` or `flush` happens to collect them, and freeing 256 entries there (user
//! `Drop`s included) put tens of microseconds into random operations' latency. It only
//! moves the batch to its segment's *ready* list, and the segment's maintenance frees
//! ready nodes in bounded slices ([`Limbo::free_ready`]), outside every lock, the way it
//! expires entries. Once the segment is gone the closure frees the batch itself.
//!
//! Freeing a node drops its key and value, which is user code: a panic there is caught and
//! discarded (the rest of the batch is still freed), because it would otherwise unwind
//! through crossbeam's collector or the maintenance path of whichever thread ran it.

use crate::sync::{self, AtomicPtr, AtomicUsize, Mutex, Ordering};
use crate::table::node::{Link, Node};
use crossbeam_epoch::{Guard, Owned};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// Retired nodes per sealed batch (smaller under Miri and loom, to exercise sealing).
pub(crate) const BATCH: usize = if cfg!(any(miri, loom)) { 2 } else { 256 };

/// Deferred batches (sealed entry batches and a shrink's sentinels) whose closure has not
/// run yet; shared by every segment of one cache and by the closures themselves (which may
/// run after the cache is gone).
#[derive(Debug, Default)]
pub(crate) struct Pending(AtomicUsize);

impl Pending {
    pub(crate) fn batches(&self) -> usize {
        // Acquire pairs with the Release decrement in the batch closure: once zero is seen,
        // the frees (and value drops) it counted happen-before the caller's next step.
        self.0.load(Ordering::Acquire)
    }
}

/// A sealed batch: the head of a `chain`-linked list of retired nodes that only the
/// batch's holder can reach.
#[derive(Debug)]
struct Batch<K, V>(NonNull<Node<K, V>>);

// SAFETY: nobody else can reach a batch's nodes, so moving the batch moves their keys and
// values, which a cache requires to be `Send + Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Batch<K, V> {}

/// Batches past their grace period, for the segment's maintenance to free; `None` once the
/// limbo is dropped, after which a late closure frees its batch itself.
type Ready<K, V> = Mutex<Option<Vec<Batch<K, V>>>>;

/// One segment's retired-but-not-yet-sealed nodes, and its sealed batches that are ready
/// to be freed.
#[derive(Debug)]
pub(crate) struct Limbo<K, V> {
    head: AtomicPtr<Node<K, V>>,
    len: AtomicUsize,
    ready: Arc<Ready<K, V>>,
    pending: Arc<Pending>,
}

impl<K, V> Limbo<K, V> {
    pub(crate) fn new(pending: Arc<Pending>) -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
            ready: Arc::new(Mutex::new(Some(Vec::new()))),
            pending,
        }
    }

    /// Adds a node nobody can reach any more to the limbo, sealing a full batch.
    ///
    /// # Safety
    /// `node` was allocated by `Box::new`, is unreachable from the list, the wheel and the
    /// hand-off stack, and is retired exactly once (the `UNLINKED`/`DETACHED` handshake in
    /// `table::node` picks the one caller). Threads still holding guards may read it.
    pub(crate) unsafe fn retire(&self, node: *mut Node<K, V>, guard: &Guard) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the caller hands us the node; its `chain` is ours until it is freed.
            unsafe { (*node).chain.store(head, Ordering::Relaxed) };
            // Release publishes the `chain` store to the sealer's Acquire swap.
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        // Relaxed: the count only decides when to seal; the stack itself is the truth.
        if self.len.fetch_add(1, Ordering::Relaxed) + 1 >= BATCH {
            self.seal(guard);
        }
    }

    /// Hands sentinels deleted by a shrink step to the epoch as one counted batch.
    ///
    /// # Safety
    /// Each link came from `Owned::new`, is unlinked from the list and out of its bucket
    /// slot, and is retired exactly once (only the shrinking thread retires sentinels).
    pub(crate) unsafe fn retire_links(&self, links: Vec<*mut Link>, guard: &Guard) {
        if links.is_empty() {
            return;
        }
        let pending = Arc::clone(&self.pending);
        // SAFETY: the links are unreachable for threads that pin from now on; sentinels
        // hold no user data.
        unsafe {
            self.defer_counted(guard, move || {
                free_links(links);
                // Release pairs with the Acquire load in `Pending::batches`.
                pending.0.fetch_sub(1, Ordering::Release);
            })
        };
    }

    /// Hands every node in the limbo to the epoch as one batch and flushes the guard. When
    /// the grace period has passed the batch moves to the ready list (see the module docs).
    pub(crate) fn seal(&self, guard: &Guard) {
        self.len.store(0, Ordering::Relaxed);
        // Acquire pairs with the Release pushes in `retire`.
        let Some(head) = NonNull::new(self.head.swap(ptr::null_mut(), Ordering::Acquire)) else {
            return;
        };
        let batch = Batch(head);
        let ready = Arc::clone(&self.ready);
        let pending = Arc::clone(&self.pending);
        // SAFETY: every node in the batch is retired (see `retire`), so unreachable for
        // threads that pin from now on. The closure owns only the batch and two `Arc`s, so
        // it may outlive the cache and run on any thread: sound because a cache can only be
        // built for `K, V: Send + Sync + 'static` (see `Cache`'s bounds).
        unsafe {
            self.defer_counted(guard, move || {
                let mut list = sync::lock(&ready);
                match list.as_mut() {
                    // Still counted in `pending` until `free_ready` frees it.
                    Some(list) => list.push(batch),
                    None => {
                        drop(list);
                        free_batch(batch, &pending);
                    }
                }
            })
        };
    }

    /// Frees up to about `budget` nodes of batches whose grace period has passed; returns
    /// true if ready nodes are left. Must not be called with a lock held that a key's or
    /// value's `Drop` could want (it runs those `Drop`s).
    pub(crate) fn free_ready(&self, budget: usize) -> bool {
        let mut left = budget;
        while left > 0 {
            // Take one batch and free it with the ready list unlocked: a closure that
            // crossbeam runs on this thread meanwhile may want the lock.
            let Some(batch) = sync::lock(&self.ready).as_mut().and_then(Vec::pop) else {
                return false;
            };
            // SAFETY: the batch came off the ready list, so its grace period has passed and
            // we now hold it alone.
            match unsafe { free_some(batch.0.as_ptr(), &mut left) } {
                None => {
                    // Release pairs with the Acquire load in `Pending::batches`.
                    self.pending.0.fetch_sub(1, Ordering::Release);
                }
                Some(rest) => {
                    if let Some(list) = sync::lock(&self.ready).as_mut() {
                        list.push(Batch(rest));
                    }
                    return true;
                }
            }
        }
        sync::lock(&self.ready)
            .as_ref()
            .is_some_and(|l| !l.is_empty())
    }

    /// Defers `free` as one counted batch (see [`Pending`]) and flushes the guard, so the
    /// batch reaches the global queue at once instead of waiting in a thread-local bag.
    /// `free` must take the batch out of the count itself once it is freed.
    ///
    /// # Safety
    /// `free` may touch only what the caller has made unreachable for threads that pin
    /// from now on; it runs on any thread once every thread pinned now has unpinned.
    unsafe fn defer_counted(&self, guard: &Guard, free: impl FnOnce()) {
        // Relaxed: the Release decrement after the frees orders them; the increment only
        // has to be visible before the closure can run, which the defer below ensures.
        self.pending.0.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract; crossbeam runs the closure only after every thread
        // pinned now has unpinned.
        unsafe { guard.defer_unchecked(free) };
        guard.flush();
    }
}

/// Frees a whole batch and takes it out of the count.
fn free_batch<K, V>(batch: Batch<K, V>, pending: &Pending) {
    // SAFETY: whoever hands us a batch held it alone, past its grace period.
    unsafe { free_chain(batch.0.as_ptr()) };
    // Release pairs with the Acquire load in `Pending::batches`.
    pending.0.fetch_sub(1, Ordering::Release);
}

/// Frees nodes from the front of a chain while `left` lasts; returns what remains.
///
/// # Safety
/// As for [`free_chain`].
unsafe fn free_some<K, V>(
    mut node: *mut Node<K, V>,
    left: &mut usize,
) -> Option<NonNull<Node<K, V>>> {
    while *left > 0 {
        let current = NonNull::new(node)?;
        // SAFETY: the caller owns the chain; read the link before freeing its node.
        node = unsafe { current.as_ref() }.chain.load(Ordering::Relaxed);
        // SAFETY: owned, from `Box::new`, freed exactly once here; the chain is cut
        // because `node` (the rest) is no longer reached through it.
        unsafe { free_node(current.as_ptr()) };
        *left -= 1;
    }
    NonNull::new(node)
}

/// Frees a list of sentinel links.
fn free_links(links: Vec<*mut Link>) {
    for link in links {
        // SAFETY: the caller of `retire_links` handed these over: each from `Owned::new`,
        // unreachable, freed once.
        drop(unsafe { Owned::from_raw(link) });
    }
}

/// Frees one node, catching a panic from its key's or value's `Drop`.
///
/// # Safety
/// The caller owns the node (from `Box::new`, reachable by nobody else) and frees it once.
unsafe fn free_node<K, V>(node: *mut Node<K, V>) {
    // SAFETY: the caller's contract.
    let boxed = unsafe { Box::from_raw(node) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

/// Frees a `chain`-linked list of nodes, catching panics from key and value `Drop`s.
///
/// # Safety
/// The caller owns every node on the chain (each from `Box::new`, none reachable elsewhere).
pub(crate) unsafe fn free_chain<K, V>(mut node: *mut Node<K, V>) {
    while !node.is_null() {
        // SAFETY: the caller owns the chain; we read the link before freeing its node.
        let next = unsafe { (*node).chain.load(Ordering::Relaxed) };
        // SAFETY: owned, from `Box::new`, freed exactly once here.
        unsafe { free_node(node) };
        node = next;
    }
}

impl<K, V> Drop for Limbo<K, V> {
    fn drop(&mut self) {
        let head = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: `&mut self`: the segment is being dropped, nobody can read these nodes.
        unsafe { free_chain(head) };
        // Close the ready list: batches whose closures have not run yet free themselves.
        let ready = sync::lock(&self.ready).take().unwrap_or_default();
        for batch in ready {
            free_batch(batch, &self.pending);
        }
    }
}
