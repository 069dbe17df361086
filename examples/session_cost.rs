//! Instructions per session, counted: one thread runs the session workload of
//! `benches/peers/session.rs` against one subject, for a fixed number of steps, so that
//! valgrind's `callgrind` (or `cachegrind`) can count what each operation executes.
//!
//! Timings on a shared 2-core machine move by 10-30% between runs; instruction counts do
//! not, and they say where a subject's time goes function by function, which `perf` on a
//! machine without hardware counters cannot (it samples the clock, so a cache miss and the
//! instructions around it look alike). Run it under valgrind, not alone:
//!
//! ```text
//! cargo build --release --example session_cost
//! valgrind --tool=callgrind --callgrind-out-file=target/cost.wheelcache \
//!     target/release/examples/session_cost wheelcache
//! callgrind_annotate --inclusive=yes target/cost.wheelcache | head -40
//! ```
//!
//! Subjects: `wheelcache` (its own writes maintain it: no reaper, no housekeeping thread)
//! and the swept maps `dashmap`, `Mutex<HashMap>` and `RwLock<HashMap>`, swept in the
//! thread every [`SWEEP_EVERY`] steps (about every 100 ms at the speed the workload runs
//! under callgrind, the cadence the benchmark gives them). The TTL is the workload's
//! 200 ms of real time, so under valgrind (30-50 times slower) sessions abandoned to it
//! lapse after fewer steps than natively; it is the same for every subject.
//!
//! The same goes for all of wheelcache's time-driven work: a segment becomes due for a
//! maintenance turn at every new tick, so under valgrind its writes take more turns per
//! operation than natively (in 1.2 million steps, about 48,000 under callgrind against
//! about 28,000 natively), and a turn's share of a write's count is overstated by that
//! ratio. Add `--cache-sim=yes` to count simulated cache misses as well.
//!
//! `session_cost <subject> [steps]` (default 1,200,000 steps). It prints the operations
//! and hits, to divide the counts by.
#![allow(dead_code)] // the shared peers module has more than this uses

#[path = "../benches/peers/mod.rs"]
mod peers;

use peers::session::{Sessions, Tally};
use peers::{Dash, MutexMap, RwLockMap, Subject, Wheel};
use std::time::Duration;

/// Steps between two sweeps of a swept map.
const SWEEP_EVERY: u64 = 30_000;

fn run<S: Subject>(steps: u64) -> Tally {
    let subject = S::new(Duration::from_millis(200), 1 << 16);
    let mut tally = Tally::default();
    let mut sessions = Sessions::new(0);
    let mut done = 0;
    while done < steps {
        let n = SWEEP_EVERY.min(steps - done);
        sessions.run(&subject, n, &mut tally);
        subject.sweep(); // nothing for wheelcache
        done += n;
    }
    tally
}

fn main() {
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "wheelcache".into());
    let steps: u64 = match args.next().map(|s| s.parse()) {
        None => 1_200_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => panic!("steps: {e}"),
    };
    let tally = match subject.as_str() {
        "wheelcache" => run::<Wheel>(steps),
        "dashmap" => run::<Dash>(steps),
        "Mutex<HashMap>" => run::<MutexMap>(steps),
        "RwLock<HashMap>" => run::<RwLockMap>(steps),
        other => panic!("unknown subject {other}"),
    };
    println!(
        "{subject}: {steps} steps, {} operations ({} reads, {} hits, {} inserts, {} removes)",
        tally.ops,
        tally.reads,
        tally.hits,
        tally.insert.count(),
        tally.remove.count()
    );
}
