//! Memory per entry, and what an emptied cache keeps, for every subject.
//!
//! For each subject: insert 10^6 entries (u64 key, `Arc` value of 256 bytes, 5 s TTL) and
//! report requested bytes per entry beyond the value's own allocation (key, value pointer
//! and overhead; a counting allocator); then let every entry lapse, run the subject's maintenance (a sweep, or the
//! cache's own), and report what it still holds.
//!
//! `cargo run --release --example memory -- [entries]`

#[path = "../tests/common/counting.rs"]
mod counting;
#[path = "../benches/peers/mod.rs"]
mod peers;

use peers::{value, Dash, Moka, MutexMap, Papaya, Quick, RwLockMap, Subject, Wheel};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// Longer than filling takes, so nothing lapses before it is measured.
const TTL: Duration = Duration::from_secs(5);

fn measure<S: Subject>(n: u64) {
    let value_bytes = std::mem::size_of::<peers::Session>() as isize + 16; // ArcInner
    let base = counting::live_bytes();
    let subject = S::new(TTL, n as usize);
    for k in 0..n {
        subject.insert(k, value(k));
    }
    let filled = Instant::now();
    let full = counting::live_bytes() - base;
    let per_entry = full as f64 / n as f64 - value_bytes as f64;
    // The last entry lapses one TTL after the fill ends.
    std::thread::sleep(TTL + Duration::from_millis(50));
    assert!(filled.elapsed() > TTL);
    let t = Instant::now();
    subject.maintain();
    let took = t.elapsed();
    let len = subject.len();
    let after = counting::live_bytes() - base;
    println!(
        "| {} | {:.0} | {} | {:.2} | {:.0} ms |",
        S::NAME,
        per_entry,
        len,
        after as f64 / 1048576.0,
        took.as_secs_f64() * 1e3
    );
    drop(subject);
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    println!("{n} entries, u64 key, 64-byte Arc value, 5 s TTL, tables pre-sized for {n}");
    println!("| subject | bytes per entry (key, value pointer and overhead; not the value) | entries left after expiry | MiB held after expiry | maintenance time |");
    println!("|---|---|---|---|---|");
    measure::<Wheel>(n);
    measure::<MutexMap>(n);
    measure::<RwLockMap>(n);
    measure::<Dash>(n);
    measure::<Papaya>(n);
    measure::<Moka>(n);
    measure::<Quick>(n);
}
