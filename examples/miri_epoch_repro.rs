//! A 60-line program that uses only crossbeam-epoch's documented API (`pin`,
//! `defer_unchecked`, `flush`) in wheelcache's retirement pattern: a thread removes a value,
//! retires it into a shared batch that whichever thread fills it seals (defer + flush), and
//! reads the value once more before unpinning. crossbeam documents that a deferred function
//! runs only after every thread pinned at the time has unpinned, so the read is safe.
//!
//! Natively it prints `ok`. Under Miri some schedules report a data race between that last
//! read and the free. This is the report seen on `tests/stress.rs` (README, "Known open
//! findings"), reproduced without any wheelcache code:
//!
//! `MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks
//! -Zmiri-many-seeds=0..24" cargo +nightly miri run --example miri_epoch_repro`

use crossbeam_epoch as epoch;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};

/// A value whose `Drop` writes it, so an unordered read shows up as a race.
struct Value {
    x: u64,
}

impl Drop for Value {
    fn drop(&mut self) {
        self.x = 0;
    }
}

fn main() {
    let slot = Arc::new(AtomicPtr::new(Box::into_raw(Box::new(Value { x: 1 }))));
    let batch: Arc<Mutex<Vec<usize>>> = Arc::default();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (slot, batch) = (slot.clone(), batch.clone());
            std::thread::spawn(move || {
                for _ in 0..40 {
                    let guard = epoch::pin();
                    let fresh = Box::into_raw(Box::new(Value { x: 1 }));
                    let old = slot.swap(fresh, Ordering::AcqRel);
                    let sealed = {
                        let mut b = batch.lock().unwrap();
                        b.push(old as usize);
                        (b.len() >= 2).then(|| std::mem::take(&mut *b))
                    };
                    if let Some(items) = sealed {
                        // SAFETY: every item was unlinked (swapped out) before it entered the
                        // batch, and is freed only after every thread pinned now unpins.
                        unsafe {
                            guard.defer_unchecked(move || {
                                for p in items {
                                    drop(Box::from_raw(p as *mut Value));
                                }
                            })
                        };
                        guard.flush();
                    }
                    // SAFETY: `old` is protected by our pin until `guard` drops.
                    let x = unsafe { std::ptr::read_volatile(&(*old).x) };
                    assert_eq!(x, 1, "read after free");
                    drop(guard);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // SAFETY: all threads are joined; the last value is ours.
    drop(unsafe { Box::from_raw(slot.load(Ordering::Acquire)) });
    println!("ok");
}
