//! Policy: why entries leave, and who is told.
//!
//! Every entry leaves by exactly one of the [`RemovalCause`]s, and the eviction listener
//! (if any) hears of each departure exactly once — except entries still present when the
//! cache itself is dropped, which are dropped silently (as in moka and Caffeine).
//!
//! ## Who runs the listener, and where
//! The listener runs on the thread that removed the entry (a caller of `insert`, `remove`,
//! `clear`, a writer, reader or reaper doing maintenance, `run_pending_tasks`), after the
//! operation has released every internal lock **and its epoch pin**: a listener may be slow
//! (a log sink, a network call) without holding back memory reclamation anywhere in the
//! process, and may call back into the cache. The departed entry is kept alive for it by
//! its remover's hold (`entry::node`, `RELEASED`), so `&K` and `&V` stay valid unpinned,
//! and it is retired only once the listener has returned.
//!
//! **A cache's listener never nests within itself.** While a thread runs cache A's
//! listener, departures from A that its calls cause (a write-back that replaces an entry, a
//! `remove`, a maintenance turn its write takes, a `run_pending_tasks`) are not delivered
//! inside it: they are queued on A, and the outer delivery loop delivers them once the
//! listener returns (a bounded number of rounds, [`QUEUED_ROUNDS`]; what is left is
//! delivered by A's next delivery on any thread: a write, a full turn, or a read's
//! maintenance turn, which a thread takes once in 64 reads). So A's listener's nesting
//! depth on a thread is 1 whatever it does, and a listener that re-inserts on every
//! departure cannot grow the stack. The mark is per cache, not per thread: a second cache
//! written from A's listener (a second tier fed by A's evictions) maintains itself as usual
//! and delivers its own departures to its own listener at once, inside A's. Listeners of
//! different caches can so nest, at most once per cache on a thread's stack. (A per-thread
//! mark let a second tier fed only from a listener never maintain itself: it grew a hundred
//! times past its bound and never expired an entry.)
//!
//! A listener that panics is caught: the panic is discarded (the panic hook has already
//! reported it) and the cache carries on, as Caffeine does with a throwing listener.
//!
//! A listener that captures a clone of its own cache keeps that cache (and its reaper)
//! alive for ever: the cache owns the listener, which owns the cache. Capture a `Weak`
//! form instead (for example an `Arc<OnceLock<Cache>>` you clear, or a channel to a task
//! that holds the cache).

use crate::entry::RemovalCause;
use crate::segment::Held;
use crate::sync::{self, AtomicBool, Mutex, Ordering};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The listener's type.
pub(crate) type Listener<K, V> = Arc<dyn Fn(&K, &V, RemovalCause) + Send + Sync + 'static>;

/// Rounds of queued departures the outer delivery loop delivers after its own.
pub(crate) const QUEUED_ROUNDS: usize = 4;

sync::thread_cell! {
    /// The caches whose listeners this thread is running (their notifiers' addresses),
    /// innermost last: at most one entry per cache (see the module docs).
    static DELIVERING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// Marks this thread as delivering for one cache until dropped (also when unwinding).
struct Delivering;

impl Delivering {
    fn enter(id: usize) -> Self {
        DELIVERING.with(|d| d.borrow_mut().push(id));
        Self
    }
}

impl Drop for Delivering {
    fn drop(&mut self) {
        // Marks are dropped in the reverse order of `enter` (they are stack values), so
        // the innermost is ours.
        DELIVERING.with(|d| d.borrow_mut().pop());
    }
}

/// A cache's listener and the departures it has not been told of yet.
pub(crate) struct Notifier<K, V> {
    listener: Option<Listener<K, V>>,
    /// Departures caused from inside a listener, waiting for a delivery loop.
    queued: Mutex<Vec<Held<K, V>>>,
    /// Whether `queued` may be non-empty (so the common case reads one flag).
    has_queued: AtomicBool,
}

impl<K, V> std::fmt::Debug for Notifier<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, V> Notifier<K, V> {
    pub(crate) fn new(listener: Option<Listener<K, V>>) -> Self {
        Self {
            listener,
            queued: Mutex::new(Vec::new()),
            has_queued: AtomicBool::new(false),
        }
    }

    /// Whether this thread is running this cache's listener right now (then departures
    /// are queued, not delivered: see the module docs).
    pub(crate) fn delivering_here(&self) -> bool {
        let id = self.id();
        DELIVERING.with(|d| d.borrow().contains(&id))
    }

    /// This notifier's (so its cache's) identity for the thread's marks: its address,
    /// stable while the cache lives.
    fn id(&self) -> usize {
        (self as *const Self).addr()
    }

    /// Whether departures must be held for a listener (otherwise removers let go at once).
    #[inline]
    pub(crate) fn wants(&self) -> bool {
        self.listener.is_some()
    }

    /// Whether departures wait in the queue.
    #[inline]
    pub(crate) fn has_queued(&self) -> bool {
        // Relaxed: a hint; the queue is read under its lock.
        self.has_queued.load(Ordering::Relaxed)
    }

    /// Tells the listener of each departure, letting go of each hold once the listener has
    /// returned, then delivers what listeners queued meanwhile (bounded). On a thread that
    /// is already inside this cache's listener, queues them instead. Call unpinned and with
    /// no lock held.
    #[inline]
    pub(crate) fn deliver(&self, departed: impl IntoIterator<Item = Held<K, V>>) {
        let mut departed = departed.into_iter().peekable();
        // The common case (nothing departed, nothing queued) is two checks, inlined.
        if departed.peek().is_none() && !self.has_queued() {
            return;
        }
        self.deliver_now(departed);
    }

    #[inline(never)]
    fn deliver_now(&self, departed: impl Iterator<Item = Held<K, V>>) {
        if self.delivering_here() {
            let mut queued = sync::lock(&self.queued);
            queued.extend(departed);
            if !queued.is_empty() {
                self.has_queued.store(true, Ordering::Relaxed);
            }
            return;
        }
        let _delivering = Delivering::enter(self.id());
        for held in departed {
            self.tell(held);
        }
        for _ in 0..QUEUED_ROUNDS {
            if !self.has_queued() {
                break;
            }
            let batch = {
                let mut queued = sync::lock(&self.queued);
                self.has_queued.store(false, Ordering::Relaxed);
                std::mem::take(&mut *queued)
            };
            for held in batch {
                self.tell(held);
            }
        }
    }

    /// Delivers everything still queued, on a thread that may itself be inside a listener
    /// (the cache is being dropped: nobody else will).
    pub(crate) fn deliver_all_queued(&mut self) {
        let queued = std::mem::take(&mut *sync::lock(&self.queued));
        for held in queued {
            self.tell(held);
        }
    }

    /// Tells the listener of one departure (a panic in it is caught), then lets go of
    /// the hold.
    fn tell(&self, held: Held<K, V>) {
        if let Some(listener) = &self.listener {
            let told = catch_unwind(AssertUnwindSafe(|| {
                listener(&held.key, &held.value, held.cause)
            }));
            if let Err(payload) = told {
                crate::panics::discarded("the eviction listener", payload);
            }
        }
        drop(held);
    }
}
