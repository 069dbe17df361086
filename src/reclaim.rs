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
//! the whole stack is *sealed*: one deferred closure frees the batch, and the guard is
//! flushed so the closure reaches the global queue at once instead of waiting in a local
//! bag. Garbage is therefore bounded by `segments x BATCH` unsealed nodes plus what the
//! epoch holds back while some thread stays pinned, and [`Pending`] counts sealed batches
//! not yet freed, so `run_pending_tasks` and `Drop` can push the epoch until it is zero.
//!
//! Freeing a node drops its key and value, which is user code: a panic there is caught and
//! discarded (the rest of the batch is still freed), because it would otherwise unwind
//! through crossbeam's collector on whichever thread happened to run it.

use crate::sync::{AtomicPtr, AtomicUsize, Ordering};
use crate::table::node::{Link, Node};
use crossbeam_epoch::{Guard, Owned};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
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

/// One segment's retired-but-not-yet-sealed nodes.
#[derive(Debug)]
pub(crate) struct Limbo<K, V> {
    head: AtomicPtr<Node<K, V>>,
    len: AtomicUsize,
    pending: Arc<Pending>,
}

impl<K, V> Limbo<K, V> {
    pub(crate) fn new(pending: Arc<Pending>) -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
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
        // SAFETY: the links are unreachable for threads that pin from now on; sentinels
        // hold no user data.
        unsafe { self.defer_counted(guard, move || free_links(links)) };
    }

    /// Hands every node in the limbo to the epoch as one batch and flushes the guard.
    pub(crate) fn seal(&self, guard: &Guard) {
        self.len.store(0, Ordering::Relaxed);
        // Acquire pairs with the Release pushes in `retire`.
        let batch = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        if batch.is_null() {
            return;
        }
        // SAFETY: every node in `batch` is retired (see `retire`), so unreachable for
        // threads that pin from now on. The closure owns only the nodes, so it may outlive
        // the cache and run on any thread: sound because a cache can only be built for
        // `K, V: Send + Sync + 'static` (see `Cache`'s bounds).
        unsafe { self.defer_counted(guard, move || free_chain(batch)) };
    }

    /// Defers `free` as one counted batch (see [`Pending`]) and flushes the guard, so the
    /// batch reaches the global queue at once instead of waiting in a thread-local bag.
    ///
    /// # Safety
    /// `free` may touch only what the caller has made unreachable for threads that pin
    /// from now on; it runs on any thread once every thread pinned now has unpinned.
    unsafe fn defer_counted(&self, guard: &Guard, free: impl FnOnce()) {
        // Relaxed: the closure's Release decrement orders the frees; the increment only has
        // to be visible before the closure can run, which the defer below ensures.
        self.pending.0.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::clone(&self.pending);
        // SAFETY: the caller's contract; crossbeam runs the closure only after every thread
        // pinned now has unpinned.
        unsafe {
            guard.defer_unchecked(move || {
                free();
                // Release pairs with the Acquire load in `Pending::batches`.
                pending.0.fetch_sub(1, Ordering::Release);
            });
        }
        guard.flush();
    }
}

/// Frees a list of sentinel links.
fn free_links(links: Vec<*mut Link>) {
    for link in links {
        // SAFETY: the caller of `retire_links` handed these over: each from `Owned::new`,
        // unreachable, freed once.
        drop(unsafe { Owned::from_raw(link) });
    }
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
        let boxed = unsafe { Box::from_raw(node) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
        node = next;
    }
}

impl<K, V> Drop for Limbo<K, V> {
    fn drop(&mut self) {
        let head = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: `&mut self`: the segment is being dropped, nobody can read these nodes.
        unsafe { free_chain(head) };
    }
}
