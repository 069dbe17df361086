//! A deterministic single-thread workload for counting instructions per operation, which
//! the noise of a shared machine does not blur (wall-clock benchmarks are in `benches/`).
//!
//! Each run builds the same cache (a fixed hasher, 8 segments, a one-hour TTL) with
//! 100,000 `Arc<[u8; 256]>` entries, then does one phase: `setup` (nothing more), `hit`
//! (1,000,000 gets of present keys), `miss` (1,000,000 gets of absent keys) or `churn`
//! (300,000 inserts of new keys, each followed by the removal of an old one); and, for the
//! cost of growing, `grow` (1,000,000 inserts into a second, empty cache built the same
//! way, its tables growing from one group) and `grow-dashmap` (the same inserts into an
//! empty dashmap with the same hasher, each with a deadline from `Instant::now`, as the
//! benchmark's swept map stores them). Count with callgrind and subtract `setup`'s total:
//!
//! ```text
//! cargo build --release --example instructions
//! for p in setup hit miss churn grow grow-dashmap; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$p \
//!     target/release/examples/instructions $p 2>&1 | grep Collected
//! done
//! ```
//!
//! Per operation: (`hit` - `setup`) / 10^6, and so on (`churn`'s over 300,000 pairs);
//! `setup` / 10^5 for an insert into a warm table. The `grow` phases' totals also count
//! dropping their 10^6 entries: for the inserts alone, take the insert functions'
//! inclusive counts (`callgrind_annotate --inclusive=yes`: `Inner::insert`, less its count
//! in `setup`; dashmap's `_insert` and `Instant::now`).

use std::sync::Arc;
use std::time::{Duration, Instant};
use wheelcache::{Cache, CacheBuilder};

const ENTRIES: u64 = 100_000;
const GROWN: u64 = 1_000_000;
const TTL: Duration = Duration::from_secs(3600);

fn main() {
    let phase = std::env::args().nth(1).unwrap_or_default();
    let build = || -> Cache<u64, Arc<[u8; 256]>, ahash::RandomState> {
        CacheBuilder::new()
            .hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))
            .segments(8)
            .time_to_live(TTL)
            .build()
    };
    let cache = build();
    let value = Arc::new([0u8; 256]);
    for k in 0..ENTRIES {
        cache.insert(k, Arc::clone(&value));
    }
    // xorshift64: the same keys in the same order every run.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut sum = 0usize;
    match phase.as_str() {
        "hit" => {
            for _ in 0..1_000_000 {
                sum += cache.get(&(next() % ENTRIES)).map_or(0, |v| v.len());
            }
        }
        "miss" => {
            for _ in 0..1_000_000 {
                sum += cache
                    .get(&(ENTRIES + next() % ENTRIES))
                    .map_or(0, |v| v.len());
            }
        }
        "churn" => {
            for i in 0..300_000u64 {
                cache.insert(ENTRIES + i, Arc::clone(&value));
                cache.remove(&i);
            }
        }
        "grow" => {
            let fresh = build();
            for k in 0..GROWN {
                fresh.insert(k, Arc::clone(&value));
            }
            sum = fresh.len();
        }
        "grow-dashmap" => {
            let map = dashmap::DashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
            for k in 0..GROWN {
                map.insert(k, (Instant::now() + TTL, Arc::clone(&value)));
            }
            sum = map.len();
        }
        "setup" => {}
        other => {
            eprintln!("unknown phase {other:?}: use setup, hit, miss, churn, grow or grow-dashmap");
            std::process::exit(2);
        }
    }
    std::hint::black_box(sum);
}
