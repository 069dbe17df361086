//! Shared pieces of the models in `tests/`. Each model is one body run two ways, as
//! tokio's `model(|| ...)` helper does: under `--cfg wheelcache_loom` (with crossbeam's
//! `crossbeam_loom`) loom explores its interleavings exhaustively; in a plain build (`cargo
//! test --workspace`) it runs once on real threads, a smoke test of the same assertions.
//! The shim below picks loom's or std's threads, atomics, cells and thread-locals.

#[cfg(wheelcache_loom)]
pub use loom::{
    cell::UnsafeCell,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread, thread_local,
};
#[cfg(not(wheelcache_loom))]
pub use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread, thread_local,
};

/// `std`'s `UnsafeCell` behind loom's closure API, for the plain build.
#[cfg(not(wheelcache_loom))]
#[derive(Debug)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(wheelcache_loom))]
impl<T> UnsafeCell<T> {
    pub fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Leak tracking: loom's `Track` under loom, nothing in the plain build.
#[cfg(wheelcache_loom)]
use loom::alloc::Track;
#[cfg(not(wheelcache_loom))]
#[derive(Debug)]
struct Track<T>(T);
#[cfg(not(wheelcache_loom))]
impl<T> Track<T> {
    fn new(value: T) -> Self {
        Self(value)
    }
}

/// Runs `body` under loom (every interleaving, with at most `max_branches` scheduling
/// points per execution), or once on real threads in a plain build.
pub fn model_with_branches(max_branches: usize, body: impl Fn() + Sync + Send + 'static) {
    #[cfg(wheelcache_loom)]
    {
        let mut builder = loom::model::Builder::new();
        builder.max_branches = max_branches;
        builder.check(body);
    }
    #[cfg(not(wheelcache_loom))]
    {
        let _ = max_branches;
        body();
    }
}

/// [`model_with_branches`] with at most `preemptions` preemptions per execution whatever
/// `LOOM_MAX_PREEMPTIONS` says: for models whose state space at the suite's bound (2)
/// would take CI too long. Each such model says why.
pub fn model_with_bound(
    preemptions: usize,
    max_branches: usize,
    body: impl Fn() + Sync + Send + 'static,
) {
    #[cfg(wheelcache_loom)]
    {
        let mut builder = loom::model::Builder::new();
        builder.max_branches = max_branches;
        builder.preemption_bound = Some(preemptions);
        builder.check(body);
    }
    #[cfg(not(wheelcache_loom))]
    {
        let _ = (preemptions, max_branches);
        body();
    }
}

/// [`model_with_branches`] with loom's default limit (1000).
pub fn model_body(body: impl Fn() + Sync + Send + 'static) {
    model_with_branches(1000, body);
}

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;
use wheelcache::{Cache, CacheBuilder, ManualClock, RemovalCause};

/// A deterministic hasher: loom replays executions and needs identical hashes each time.
pub type Fixed = BuildHasherDefault<DefaultHasher>;

/// The cache every model uses.
pub type Model = Cache<u8, Probe, Fixed>;

/// A value that catches misuse: `Track` makes a leak fail the model, and `Drop` writes a
/// loom cell that readers read, so a read racing with (or after) the free is a reported
/// data race.
#[derive(Debug)]
pub struct Probe {
    pub id: u8,
    cell: UnsafeCell<u8>,
    _track: Track<()>,
}

// SAFETY: `cell` is written only in `drop` (exclusive access) and read through `&self`;
// loom checks that those accesses are ordered, which is what the models test.
unsafe impl Sync for Probe {}

impl Probe {
    pub fn new(id: u8) -> Self {
        Self {
            id,
            cell: UnsafeCell::new(id),
            _track: Track::new(()),
        }
    }

    /// Reads the cell: a data race if the value is being (or was) dropped.
    pub fn check(&self) -> u8 {
        // SAFETY: a plain read; loom reports it if it races with the write in `drop`.
        let v = self.cell.with(|p| unsafe { *p });
        assert_eq!(v, self.id, "value read after drop");
        v
    }
}

impl Clone for Probe {
    fn clone(&self) -> Self {
        Probe::new(self.id)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: exclusive.
        self.cell.with_mut(|p| unsafe { *p = u8::MAX });
    }
}

/// Counts listener calls by cause.
#[derive(Debug, Default)]
pub struct Departures {
    pub explicit: AtomicUsize,
    pub replaced: AtomicUsize,
    pub expired: AtomicUsize,
    pub evicted: AtomicUsize,
}

impl Departures {
    pub fn total(&self) -> usize {
        self.explicit.load(Ordering::SeqCst)
            + self.replaced.load(Ordering::SeqCst)
            + self.expired.load(Ordering::SeqCst)
            + self.evicted.load(Ordering::SeqCst)
    }
}

/// A one-segment cache with a fixed hasher, a manual clock, a counting listener, and
/// (when `tiny`) one-group tables (two-slot groups under loom) that migrate at once.
pub fn model(tiny: bool) -> (Model, ManualClock, Arc<Departures>) {
    let (mut builder, clock, departures) = model_builder();
    if tiny {
        builder = builder.tiny_tables_for_tests();
    }
    (builder.build(), clock, departures)
}

/// The builder behind [`model`] (one segment, fixed hasher, manual clock, counting
/// listener), for models that add a setting.
pub fn model_builder() -> (CacheBuilder<u8, Probe, Fixed>, ManualClock, Arc<Departures>) {
    let clock = ManualClock::new();
    let departures = Arc::new(Departures::default());
    let d = departures.clone();
    let builder = Cache::builder()
        .segments(1)
        .clock(clock.clone())
        .hasher(Fixed::default())
        .eviction_listener(move |_k: &u8, v: &Probe, cause| {
            v.check();
            let counter = match cause {
                RemovalCause::Explicit => &d.explicit,
                RemovalCause::Replaced => &d.replaced,
                RemovalCause::Evicted => &d.evicted,
                _ => &d.expired,
            };
            counter.fetch_add(1, Ordering::SeqCst);
        });
    (builder, clock, departures)
}
