//! The one door to atomics, cells, locks and fences.
//!
//! Every shared-memory primitive the crate uses comes from here, so the same code runs on
//! `std` and under [loom](https://docs.rs/loom) (tokio's `crate::loom` and crossbeam's
//! `primitive` modules follow the same pattern). The model-checking build needs both
//! `--cfg wheelcache_loom` and the `loom` feature; crossbeam-epoch switches over with
//! `--cfg crossbeam_loom` and its own `loom` feature, which ours turns on. The cfg is
//! namespaced so that a downstream crate building its own code with `--cfg loom` does not
//! change ours.
//!
//! `UnsafeCell` exposes loom's closure API (`with`, `with_mut`) on both builds, so loom can
//! see (and report as a race) every access to lock-protected data.

#[cfg(all(wheelcache_loom, feature = "loom"))]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};
#[cfg(all(wheelcache_loom, feature = "loom"))]
pub(crate) use loom::thread::ThreadId;
#[cfg(not(all(wheelcache_loom, feature = "loom")))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard,
};
#[cfg(not(all(wheelcache_loom, feature = "loom")))]
pub(crate) use std::thread::ThreadId;

/// Threads: loom's under the model (the reaper runs as a model thread there), std's
/// otherwise.
#[cfg(all(wheelcache_loom, feature = "loom"))]
pub(crate) use loom::thread::{Builder as ThreadBuilder, JoinHandle};
#[cfg(not(all(wheelcache_loom, feature = "loom")))]
pub(crate) use std::thread::{Builder as ThreadBuilder, JoinHandle};

/// Adds one to a *hint* (a count that only decides when to do work whose truth lies
/// elsewhere: a stack, a ring) and returns its value before, with a plain load and store
/// rather than an RMW: a locked instruction costs about 10 ns on the development VM
/// (`cargo run --release --example atomic_cost`), and the hints are bumped on every write.
/// Threads racing here may lose increments (on x86, one per racing thread at most; the
/// language's memory model bounds nothing), and a store may land before a reset it read
/// nothing of, so a hint may lag its truth: use it only where a lagging hint delays work
/// that something else also brings (each caller says what). Not for a count whose own
/// writer must see it: `Segment`'s `queued` shows why. Relaxed: a hint publishes nothing
/// and pairs with nothing.
#[inline]
pub(crate) fn bump_hint(hint: &AtomicUsize) -> usize {
    let n = hint.load(Ordering::Relaxed);
    hint.store(n.wrapping_add(1), Ordering::Relaxed);
    n
}

/// Parks the calling thread until unparked or `timeout` has passed (early wake-ups
/// allowed, as `std`'s), before its `round`th round of periodic work. Loom has no timed
/// park, and a model must end: there the first call returns at once (an early wake-up,
/// so loom explores that round running at any point of the other threads' work) and
/// later ones park until an unpark.
pub(crate) fn park_timeout(timeout: std::time::Duration, round: u64) {
    #[cfg(all(wheelcache_loom, feature = "loom"))]
    {
        let _ = timeout;
        if round > 0 {
            loom::thread::park();
        }
    }
    #[cfg(not(all(wheelcache_loom, feature = "loom")))]
    {
        let _ = round;
        std::thread::park_timeout(timeout);
    }
}

/// The calling thread's id (loom's model threads share one OS thread, so under the model
/// this is loom's id).
pub(crate) fn thread_id() -> ThreadId {
    #[cfg(all(wheelcache_loom, feature = "loom"))]
    return loom::thread::current().id();
    #[cfg(not(all(wheelcache_loom, feature = "loom")))]
    std::thread::current().id()
}

/// A number that tells this thread apart from those started near it, for spreading
/// per-thread work over a few lanes (callers cache it per thread). On `std`, a counter
/// drawn in the order threads first ask, so consecutive threads differ; under the model,
/// the model thread's index (a static counter would carry over from one execution to the
/// next, and loom's `ThreadId` hashes its execution's number too, while a model's
/// executions must be deterministic: loom prints only the index, so it is read from
/// there). A hint: nothing is ordered or published through it.
pub(crate) fn thread_ordinal() -> usize {
    #[cfg(all(wheelcache_loom, feature = "loom"))]
    {
        let id = format!("{:?}", thread_id());
        id.bytes().filter(u8::is_ascii_digit).fold(0usize, |n, d| {
            n.wrapping_mul(10).wrapping_add(usize::from(d - b'0'))
        })
    }
    #[cfg(not(all(wheelcache_loom, feature = "loom")))]
    {
        // Relaxed: a counter that orders nothing (see above); a plain std atomic, outside
        // any model, as it is never part of a synchronisation.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Thread-locals: loom's under the model (its threads share one OS thread), std's
/// otherwise, with a `const` initialiser (loom's macro does not take one).
macro_rules! thread_cell {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        #[cfg(all(wheelcache_loom, feature = "loom"))]
        loom::thread_local! { $(#[$attr])* static $name: $t = $init; }
        #[cfg(not(all(wheelcache_loom, feature = "loom")))]
        ::std::thread_local! { $(#[$attr])* static $name: $t = const { $init }; }
    };
}
pub(crate) use thread_cell;

/// The type of a [`thread_cell!`] static.
#[cfg(all(wheelcache_loom, feature = "loom"))]
pub(crate) type LocalKey<T> = loom::thread::LocalKey<T>;
/// The type of a [`thread_cell!`] static.
#[cfg(not(all(wheelcache_loom, feature = "loom")))]
pub(crate) type LocalKey<T> = std::thread::LocalKey<T>;

/// A per-thread flag (a `thread_cell!` of `Cell<bool>`) raised for a scope: put back as it
/// was when the guard drops, also while unwinding, so raised scopes nest. (The crate's
/// flags of this shape: a coalesced load comparing keys, reclamation freeing nodes.)
pub(crate) struct Raised {
    flag: &'static LocalKey<std::cell::Cell<bool>>,
    was: bool,
}

impl Raised {
    /// Raises `flag` on this thread until the guard drops.
    pub(crate) fn raise(flag: &'static LocalKey<std::cell::Cell<bool>>) -> Self {
        let was = flag.with(|f| f.replace(true));
        Self { flag, was }
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        let was = self.was;
        self.flag.with(|f| f.set(was));
    }
}

/// Whether this is the model-checking build (constants shrink under it).
pub(crate) const MODEL: bool = cfg!(all(wheelcache_loom, feature = "loom"));

#[cfg(all(wheelcache_loom, feature = "loom"))]
pub(crate) use loom::cell::UnsafeCell;

/// `std`'s `UnsafeCell` behind loom's closure API.
#[cfg(not(all(wheelcache_loom, feature = "loom")))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(all(wheelcache_loom, feature = "loom")))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Locks `mutex`, ignoring poisoning: every critical section in this crate keeps its data
/// consistent at each step (user code never runs under a lock), so a panic elsewhere in the
/// holding thread cannot leave the data half-updated.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on `condvar`, ignoring poisoning (as [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match condvar.wait(guard) {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on `condvar` for at most `timeout`, ignoring poisoning (as [`lock`]). Under
/// loom, which does not time out, a plain wait.
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

/// Like [`lock`] but never waits: `None` when another thread holds the lock.
pub(crate) fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    // loom's `Mutex` reports through std's error type too.
    use std::sync::TryLockError;
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Asks the processor to start loading the cache line at `p` into its caches: a hint
/// only. No value is read into the program, nothing is ordered, and no address faults, so
/// any pointer will do, even one to freed memory. A no-op off x86-64, under Miri and under
/// loom (where it would be no scheduling point either).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "sse",
        not(miri),
        not(all(wheelcache_loom, feature = "loom"))
    ))]
    // SAFETY: 1. `prefetcht0` reads nothing the program sees and raises no fault for any
    // address, mapped or not (Intel SDM, "PREFETCHh"), so the pointer need not be valid;
    // 2. `_mm_prefetch` needs SSE, which the `cfg` above requires of the target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "sse",
        not(miri),
        not(all(wheelcache_loom, feature = "loom"))
    )))]
    let _ = p;
}

/// Yields the processor (a loom scheduling point under the model).
pub(crate) fn yield_now() {
    #[cfg(all(wheelcache_loom, feature = "loom"))]
    loom::thread::yield_now();
    #[cfg(not(all(wheelcache_loom, feature = "loom")))]
    std::thread::yield_now();
}

/// A bounded wait for progress that other threads must make: at most `limit` of time spent
/// waiting in [`pause`](Self::pause) on `std` (accumulated, never restarted, so the wait
/// ends even while other threads keep changing what is being waited for; the caller's own
/// work between pauses does not count), a fixed number of rounds under loom (whose models
/// must be deterministic and cannot sleep).
#[derive(Debug)]
pub(crate) struct Patience {
    limit: std::time::Duration,
    waited: std::time::Duration,
    rounds: u32,
}

impl Patience {
    pub(crate) fn new(limit: std::time::Duration) -> Self {
        Self {
            limit,
            waited: std::time::Duration::ZERO,
            rounds: 0,
        }
    }

    pub(crate) fn exhausted(&self) -> bool {
        if MODEL {
            self.rounds >= 1
        } else {
            self.waited >= self.limit
        }
    }

    /// Runs `push` (something that helps the awaited progress along) and lets other threads
    /// run: yields at first, then sleeps briefly, so a descheduled thread holding what we
    /// wait for can run on a busy machine. The whole call counts as waiting.
    pub(crate) fn pause(&mut self, push: impl FnOnce()) {
        let started = std::time::Instant::now();
        push();
        self.rounds = self.rounds.saturating_add(1);
        if MODEL || self.rounds < 64 {
            yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        self.waited += started.elapsed();
    }
}
