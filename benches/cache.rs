//! wheelcache against mutex maps and peer caches, on identical work.
//!
//! Groups: `single_thread` (get hit/miss, insert new/replace, remove), `contended` (Zipf
//! reads 100/0 and 90/10, cloned and borrowed, and the session workload, at 1, 2 and 8
//! threads) and `expiry` (cost per lapsed entry, 10^3..10^6 lapsing together). Sizes are
//! kept small so the suite finishes in about ten minutes on a 2-core machine.
//! `cargo bench --bench cache -- <filter>` runs a part.

#![allow(missing_docs)] // criterion's macros generate undocumented items

#[path = "peers/mod.rs"]
mod peers;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use peers::{value, Dash, Moka, MutexMap, Papaya, Quick, RwLockMap, Subject, Wheel};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const KEYS: u64 = 100_000;
const TTL: Duration = Duration::from_secs(3600);
const SESSION_TTL: Duration = Duration::from_millis(200);
const BATCH: u64 = 1024;

fn short<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200));
    g
}

fn single<S: Subject>(c: &mut Criterion) {
    let mut g = short(c, "single_thread");
    g.throughput(Throughput::Elements(BATCH));
    let s = S::new(TTL, KEYS as usize);
    for k in 0..KEYS {
        s.insert(k, value(k));
    }
    let mut rng = SmallRng::seed_from_u64(1);
    let keys: Vec<u64> = (0..BATCH).map(|_| rng.gen_range(0..KEYS)).collect();
    g.bench_function(BenchmarkId::new("get_hit", S::NAME), |b| {
        b.iter(|| keys.iter().filter(|&&k| S::get(&s, k).is_some()).count())
    });
    g.bench_function(BenchmarkId::new("get_miss", S::NAME), |b| {
        b.iter(|| keys.iter().filter(|&&k| s.get(k + KEYS).is_some()).count())
    });
    g.bench_function(BenchmarkId::new("insert_replace", S::NAME), |b| {
        b.iter(|| keys.iter().for_each(|&k| s.insert(k, value(k))))
    });
    let fresh = AtomicU64::new(KEYS);
    g.bench_function(BenchmarkId::new("insert_new_then_remove", S::NAME), |b| {
        b.iter(|| {
            let base = fresh.fetch_add(BATCH, Ordering::Relaxed);
            (base..base + BATCH).for_each(|k| s.insert(k, value(k)));
            (base..base + BATCH).for_each(|k| s.remove(k));
        })
    });
    g.finish();
}

/// Runs `work(thread, ops)` on `threads` threads, `iters * BATCH` ops each, with a sweeper
/// every 100 ms for subjects that need one; returns the wall time.
fn threaded<S: Subject>(
    s: &Arc<S>,
    threads: usize,
    iters: u64,
    work: impl Fn(&S, usize, u64) + Send + Sync + 'static + Clone,
) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = S::SWEPT.then(|| {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                s.sweep();
            }
        })
    });
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (s, barrier, work) = (s.clone(), barrier.clone(), work.clone());
            std::thread::spawn(move || {
                barrier.wait();
                work(&s, t, iters * BATCH);
            })
        })
        .collect();
    // The clock starts before the release: workers cannot start before it, so the time
    // can only be overstated (by one wake-up), never understated on a busy machine.
    let start = Instant::now();
    barrier.wait();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = sweeper {
        h.join().unwrap();
    }
    elapsed
}

fn zipf_keys(seed: u64) -> Arc<Vec<u64>> {
    let zipf = Zipf::new(KEYS, 1.0).unwrap();
    let mut rng = SmallRng::seed_from_u64(seed);
    Arc::new(
        (0..1 << 16)
            .map(|_| zipf.sample(&mut rng) as u64 - 1)
            .collect(),
    )
}

fn contended<S: Subject>(c: &mut Criterion) {
    let mut g = short(c, "contended");
    let s = Arc::new(S::new(TTL, KEYS as usize));
    for k in 0..KEYS {
        s.insert(k, value(k));
    }
    let keys = zipf_keys(7);
    for threads in [1usize, 2, 8] {
        g.throughput(Throughput::Elements(BATCH * threads as u64));
        for (mix, writes) in [("zipf_100_0", 0u64), ("zipf_90_10", 10)] {
            for borrowed in [false, true] {
                if borrowed && !S::BORROWS {
                    continue;
                }
                let id = format!(
                    "{mix}_{}/{threads}t",
                    if borrowed { "borrow" } else { "clone" }
                );
                let keys = keys.clone();
                g.bench_function(BenchmarkId::new(id, S::NAME), |b| {
                    b.iter_custom(|iters| {
                        let keys = keys.clone();
                        threaded(&s, threads, iters, move |s, t, ops| {
                            for n in 0..ops {
                                let k = keys[(t * 7919 + n as usize) & 0xffff];
                                if writes > 0 && n % 100 < writes {
                                    s.insert(k, value(k));
                                } else if borrowed {
                                    std::hint::black_box(s.read(k));
                                } else {
                                    std::hint::black_box(s.get(k));
                                }
                            }
                        })
                    })
                });
            }
        }
    }
    g.finish();
    let sessions = Arc::new(S::new(SESSION_TTL, 1 << 16));
    let next = Arc::new(AtomicU64::new(1 << 40));
    let mut g = short(c, "contended");
    for threads in [1usize, 2, 8] {
        g.throughput(Throughput::Elements(BATCH * threads as u64));
        let (sessions, next) = (sessions.clone(), next.clone());
        g.bench_function(
            BenchmarkId::new(format!("session/{threads}t"), S::NAME),
            |b| {
                b.iter_custom(|iters| {
                    let next = next.clone();
                    threaded(&sessions, threads, iters, move |s, _t, ops| {
                        session_work(s, &next, ops)
                    })
                })
            },
        );
    }
    g.finish();
}

/// The session workload: start (insert with TTL), 4 reads, end 70% / abandon 30%.
/// Six operations per session.
fn session_work<S: Subject>(s: &S, next: &AtomicU64, ops: u64) {
    let mut done = 0;
    while done < ops {
        let id = next.fetch_add(1, Ordering::Relaxed);
        s.insert(id, value(id));
        for _ in 0..4 {
            std::hint::black_box(s.read(id));
        }
        if id % 10 < 7 {
            s.remove(id);
        }
        done += 6;
    }
}

fn expiry(c: &mut Criterion) {
    let mut g = c.benchmark_group("expiry");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(2));
    for n in [1_000u64, 10_000, 100_000, 1_000_000] {
        g.throughput(Throughput::Elements(n));
        g.bench_function(BenchmarkId::new("wheelcache", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let clock = wheelcache::ManualClock::new();
                    let cache: wheelcache::Cache<u64, peers::Value> =
                        wheelcache::Cache::builder().clock(clock.clone()).build();
                    for k in 0..n {
                        cache.insert_with_ttl(k, value(k), Duration::from_secs(1));
                    }
                    clock.advance(Duration::from_secs(1));
                    let start = Instant::now();
                    cache.run_pending_tasks();
                    total += start.elapsed();
                    assert_eq!(cache.len(), 0);
                }
                total
            })
        });
        g.bench_function(BenchmarkId::new("Mutex<HashMap>+sweep", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let map = MutexMap::new(Duration::ZERO, 0);
                    for k in 0..n {
                        map.insert(k, value(k));
                    }
                    let start = Instant::now();
                    map.sweep();
                    total += start.elapsed();
                    assert_eq!(map.len(), 0);
                }
                total
            })
        });
    }
    g.finish();
}

fn all_single(c: &mut Criterion) {
    single::<Wheel>(c);
    single::<MutexMap>(c);
    single::<RwLockMap>(c);
    single::<Dash>(c);
    single::<Papaya>(c);
    single::<Moka>(c);
    single::<Quick>(c);
}

fn all_contended(c: &mut Criterion) {
    contended::<Wheel>(c);
    contended::<MutexMap>(c);
    contended::<RwLockMap>(c);
    contended::<Dash>(c);
    contended::<Papaya>(c);
    contended::<Moka>(c);
    contended::<Quick>(c);
}

criterion_group!(benches, all_single, all_contended, expiry);
criterion_main!(benches);
