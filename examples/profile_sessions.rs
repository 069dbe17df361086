//! Runs the session workload on wheelcache alone, for profiling (`perf record`).
//! `cargo run --release --example profile_sessions -- [threads] [seconds]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wheelcache::Cache;

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let cache: Cache<u64, Arc<[u8; 48]>> = Cache::builder()
        .time_to_live(Duration::from_millis(200))
        .build();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (cache, stop, next) = (cache.clone(), stop.clone(), next.clone());
            std::thread::spawn(move || {
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    cache.insert(id, Arc::new([0; 48]));
                    for _ in 0..4 {
                        std::hint::black_box(cache.pin().get(&id).is_some());
                    }
                    if id % 10 < 7 {
                        cache.invalidate(&id);
                    }
                    ops += 6;
                }
                ops
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    println!(
        "{threads} threads: {:.2} Mops/s, len {}",
        ops as f64 / start.elapsed().as_secs_f64() / 1e6,
        cache.len()
    );
}
