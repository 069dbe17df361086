//! Shared pieces of the loom models in `tests/` (compiled only under `--cfg loom`).
#![cfg(wheelcache_loom)]

use loom::alloc::Track;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;
use wheelcache::{Cache, ManualClock, RemovalCause};

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
}

impl Departures {
    pub fn total(&self) -> usize {
        self.explicit.load(Ordering::SeqCst)
            + self.replaced.load(Ordering::SeqCst)
            + self.expired.load(Ordering::SeqCst)
    }
}

/// A one-segment cache with a fixed hasher, a manual clock, a counting listener, and
/// (when `tiny`) one-group tables (two-slot groups under loom) that migrate at once.
pub fn model(tiny: bool) -> (Model, ManualClock, Arc<Departures>) {
    let clock = ManualClock::new();
    let departures = Arc::new(Departures::default());
    let d = departures.clone();
    let mut builder = Cache::builder()
        .segments(1)
        .clock(clock.clone())
        .hasher(Fixed::default())
        .eviction_listener(move |_k: &u8, v: &Probe, cause| {
            v.check();
            let counter = match cause {
                RemovalCause::Explicit => &d.explicit,
                RemovalCause::Replaced => &d.replaced,
                _ => &d.expired,
            };
            counter.fetch_add(1, Ordering::SeqCst);
        });
    if tiny {
        builder = builder.tiny_tables_for_tests();
    }
    (builder.build(), clock, departures)
}
