//! The one door to atomics, cells, locks and fences.
//!
//! Every shared-memory primitive the crate uses comes from here, so the same code runs on
//! `std` and under [loom](https://docs.rs/loom) (tokio's `crate::loom` and crossbeam's
//! `primitive` modules follow the same pattern). The model-checking build needs both
//! `--cfg loom` and the `loom` feature; crossbeam-epoch switches over with
//! `--cfg crossbeam_loom` and its own `loom` feature, which ours turns on.
//!
//! `UnsafeCell` exposes loom's closure API (`with`, `with_mut`) on both builds, so loom can
//! see (and report as a race) every access to lock-protected data.

#[cfg(all(loom, feature = "loom"))]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};
#[cfg(not(all(loom, feature = "loom")))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};

#[cfg(all(loom, feature = "loom"))]
pub(crate) use loom::cell::UnsafeCell;

/// `std`'s `UnsafeCell` behind loom's closure API.
#[cfg(not(all(loom, feature = "loom")))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(all(loom, feature = "loom")))]
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

/// Yields the processor (a loom scheduling point under the model).
pub(crate) fn yield_now() {
    #[cfg(all(loom, feature = "loom"))]
    loom::thread::yield_now();
    #[cfg(not(all(loom, feature = "loom")))]
    std::thread::yield_now();
}

/// Bounded waiting for progress that other threads must make: real time on `std`, a fixed
/// number of rounds under loom (whose models must be deterministic and cannot sleep).
#[derive(Debug)]
pub(crate) struct Patience {
    limit: std::time::Duration,
    since: std::time::Instant,
    rounds: u32,
}

impl Patience {
    pub(crate) fn new(limit: std::time::Duration) -> Self {
        Self {
            limit,
            since: std::time::Instant::now(),
            rounds: 0,
        }
    }

    /// Progress was made: start counting again.
    pub(crate) fn restart(&mut self) {
        self.rounds = 0;
        if !cfg!(all(loom, feature = "loom")) {
            self.since = std::time::Instant::now();
        }
    }

    pub(crate) fn exhausted(&self) -> bool {
        if cfg!(all(loom, feature = "loom")) {
            self.rounds >= 3
        } else {
            self.since.elapsed() > self.limit
        }
    }

    /// Lets other threads run: yields at first, then sleeps briefly.
    pub(crate) fn pause(&mut self) {
        self.rounds = self.rounds.saturating_add(1);
        if cfg!(all(loom, feature = "loom")) || self.rounds < 64 {
            yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}
