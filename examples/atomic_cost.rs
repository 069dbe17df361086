//! What one atomic read-modify-write costs on this machine, against a plain load and
//! store, a `SeqCst` fence and a clock reading: the unit `benches/tools/locked_ops.py`
//! counts in. One thread, an uncontended cache line, each in a loop of 10^8 (so the
//! figure is the instruction's cost when nothing else overlaps it; in real code some of
//! it hides behind other work).
//!
//! ```text
//! cargo run --release --example atomic_cost
//! ```

use std::hint::black_box;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::Instant;

const N: u64 = 100_000_000;

fn per_op(name: &str, f: impl Fn(u64)) {
    let start = Instant::now();
    for i in 0..N {
        f(black_box(i));
    }
    println!(
        "{name:<28} {:>6.2} ns",
        start.elapsed().as_nanos() as f64 / N as f64
    );
}

fn main() {
    let a = AtomicU64::new(0);
    per_op("fetch_add (lock xadd)", |i| {
        a.fetch_add(i & 1, Ordering::Relaxed);
    });
    per_op("compare_exchange (lock cmpxchg)", |i| {
        let _ = a.compare_exchange(i, i + 1, Ordering::AcqRel, Ordering::Relaxed);
    });
    per_op("load + store", |i| {
        a.store(a.load(Ordering::Relaxed) + (i & 1), Ordering::Relaxed);
    });
    per_op("store + SeqCst fence", |i| {
        a.store(i, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    });
    per_op("Instant::now", |_| {
        black_box(Instant::now());
    });
    black_box(a.load(Ordering::Relaxed));
}
