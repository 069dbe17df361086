//! wheelcache against mutex maps and peer caches, on identical work.
//!
//! Groups: `single_thread` (get hit/miss, insert new/replace, remove; with a plain
//! single-threaded `HashMap` as the reference), `contended` (Zipf reads 100/0 and 90/10,
//! cloned and borrowed, and the session workload of `peers/session.rs` (each thread keeps
//! 512 live sessions across iterations), at 1, 2 and 8 threads; wheelcache
//! also as `wheelcache+bound`, with `max_capacity` set to the workload's capacity), `grow` (10^6
//! inserts into an empty, unsized map) and `expiry` (cost per lapsed entry, 10^3..10^6
//! lapsing together), and `policy_reads` (wheelcache alone: what an expiry policy costs a
//! hit, with and without `expire_after_read`). Sizes are kept small so the suite finishes
//! in a few minutes on a 2-core machine. `cargo bench --bench cache -- <filter>` runs a
//! part.
//!
//! ## Every peer at its best
//! - **Sweeping.** A swept map (a hand-written map with a deadline per entry) is swept
//!   at the cadence a service would choose for its TTL: every TTL/2, never more often
//!   than every 100 ms. So the session workload (200 ms TTL) sweeps every 100 ms, and the
//!   read workloads (1 h TTL) never sweep within a run. Every swept map checks the
//!   deadline on each read with `Instant::now()`, as a hand-written map does. wheelcache's
//!   default clock decides most such checks from the CPU's time-stamp counter instead
//!   (x86-64 Linux; see `MonotonicClock`), and that is part of its figures on reads: a
//!   map could do the same with a TSC clock of its own (`quanta`, for one).
//! - **No shared counters.** The session workload gives each thread its own key range,
//!   so no subject pays for a shared `AtomicU64` on every session.
//! - **Every subject in its own process.** A suite run (`cargo bench --bench cache`) runs
//!   each subject in a child process of its own (this binary again, with
//!   `WHEELCACHE_BENCH_ONLY=<name>`), so no subject's figure depends on another's leftovers:
//!   allocator state (measured: dashmap's insert+remove ran 2x slower after the other
//!   subjects in one process), epoch garbage, threads. `WHEELCACHE_BENCH_ONLY=dashmap`
//!   runs one subject alone, exactly as the suite runs it.
//! - **Rounds against drift.** This shared 2-core machine's speed drifts by up to 2x over
//!   minutes (one subject alone, twice, five minutes apart: 18.9 and 9.9 M ops/s). With
//!   `WHEELCACHE_BENCH_ROUNDS=<n>` the suite repeats, rotating the subjects' order each
//!   round, and prints the median of each figure and the ratios to wheelcache: compare
//!   ratios, not absolute numbers.

#![allow(missing_docs)] // criterion's macros generate undocumented items

#[path = "peers/mod.rs"]
mod peers;

use criterion::{BenchmarkId, Criterion, Throughput};
use peers::session::{Sessions, Tally};
use peers::{value, Dash, Moka, MutexMap, Papaya, Quick, RwLockMap, Subject, Wheel, WheelBounded};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
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

/// Whether `name` is to run (see `WHEELCACHE_BENCH_ONLY` in the module docs).
fn selected(name: &str) -> bool {
    std::env::var("WHEELCACHE_BENCH_ONLY").map_or(true, |only| only == name)
}

/// How often a swept subject with this TTL is swept (see the module docs).
fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 2).max(Duration::from_millis(100))
}

fn single<S: Subject>(c: &mut Criterion) {
    if !selected(S::NAME) {
        return;
    }
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

/// The reference for single-threaded operations: a plain `HashMap` (ahash) with a
/// deadline per entry, no lock at all.
fn single_plain_hashmap(c: &mut Criterion) {
    const NAME: &str = "HashMap";
    if !selected(NAME) {
        return;
    }
    let mut g = short(c, "single_thread");
    g.throughput(Throughput::Elements(BATCH));
    let mut map: HashMap<u64, (Instant, peers::Value), ahash::RandomState> =
        HashMap::with_capacity_and_hasher(KEYS as usize, ahash::RandomState::new());
    let due = Instant::now() + TTL;
    for k in 0..KEYS {
        map.insert(k, (due, value(k)));
    }
    let mut rng = SmallRng::seed_from_u64(1);
    let keys: Vec<u64> = (0..BATCH).map(|_| rng.gen_range(0..KEYS)).collect();
    let get = |map: &HashMap<u64, (Instant, peers::Value), ahash::RandomState>, k: u64| {
        let now = Instant::now();
        map.get(&k).filter(|e| e.0 > now).map(|e| e.1.clone())
    };
    g.bench_function(BenchmarkId::new("get_hit", NAME), |b| {
        b.iter(|| keys.iter().filter(|&&k| get(&map, k).is_some()).count())
    });
    g.bench_function(BenchmarkId::new("get_miss", NAME), |b| {
        b.iter(|| {
            keys.iter()
                .filter(|&&k| get(&map, k + KEYS).is_some())
                .count()
        })
    });
    g.bench_function(BenchmarkId::new("insert_replace", NAME), |b| {
        b.iter(|| {
            for &k in &keys {
                map.insert(k, (Instant::now() + TTL, value(k)));
            }
        })
    });
    let mut fresh = KEYS;
    g.bench_function(BenchmarkId::new("insert_new_then_remove", NAME), |b| {
        b.iter(|| {
            let base = fresh;
            fresh += BATCH;
            for k in base..base + BATCH {
                map.insert(k, (Instant::now() + TTL, value(k)));
            }
            for k in base..base + BATCH {
                map.remove(&k);
            }
        })
    });
    g.finish();
}

/// Runs `work(thread, ops)` on `threads` threads, `iters * BATCH` ops each, with a sweeper
/// at the subject's sweep cadence for `ttl` (see the module docs) for subjects that need
/// one; returns the wall time.
fn threaded<S: Subject>(
    s: &Arc<S>,
    ttl: Duration,
    threads: usize,
    iters: u64,
    work: impl Fn(&S, usize, u64) + Send + Sync + 'static + Clone,
) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = S::SWEPT.then(|| {
        let (s, stop) = (s.clone(), stop.clone());
        let every = sweep_interval(ttl);
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
                if last.elapsed() >= every {
                    s.sweep();
                    last = Instant::now();
                }
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
    if !selected(S::NAME) {
        return;
    }
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
                        threaded(&s, TTL, threads, iters, move |s, t, ops| {
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
    // Each thread's sessions (its window of live ones, its next id), kept across
    // iterations so sessions live on between them; each is locked only by its thread.
    let windows: Arc<Vec<Mutex<Sessions>>> =
        Arc::new((0..8).map(|t| Mutex::new(Sessions::new(t))).collect());
    let mut g = short(c, "contended");
    for threads in [1usize, 2, 8] {
        g.throughput(Throughput::Elements(BATCH * threads as u64));
        let (sessions, windows) = (sessions.clone(), windows.clone());
        g.bench_function(
            BenchmarkId::new(format!("session/{threads}t"), S::NAME),
            |b| {
                b.iter_custom(|iters| {
                    let windows = windows.clone();
                    threaded(&sessions, SESSION_TTL, threads, iters, move |s, t, ops| {
                        let mut tally = Tally::default();
                        windows[t].lock().unwrap().run(s, ops, &mut tally);
                    })
                })
            },
        );
    }
    g.finish();
}

/// 10^6 inserts into an empty map that was not pre-sized: how growing costs.
fn grow<S: Subject>(c: &mut Criterion) {
    if !selected(S::NAME) {
        return;
    }
    const N: u64 = 1_000_000;
    let mut g = c.benchmark_group("grow");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(N));
    g.bench_function(BenchmarkId::new("insert_1e6", S::NAME), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let s = S::new(TTL, 0);
                let start = Instant::now();
                for k in 0..N {
                    s.insert(k, value(k));
                }
                total += start.elapsed();
                assert_eq!(s.len() as u64, N);
            }
            total
        })
    });
    g.finish();
}

fn expiry(c: &mut Criterion) {
    let mut g = c.benchmark_group("expiry");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(2));
    for n in [1_000u64, 10_000, 100_000, 1_000_000] {
        g.throughput(Throughput::Elements(n));
        if selected(Wheel::NAME) {
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
        }
        expiry_swept::<MutexMap>(&mut g, n);
        expiry_swept::<Dash>(&mut g, n);
    }
    g.finish();
}

/// A swept map's sweep over `n` entries that have all lapsed.
fn expiry_swept<S: Subject>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: u64,
) {
    if !selected(S::NAME) {
        return;
    }
    g.bench_function(BenchmarkId::new(format!("{}+sweep", S::NAME), n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let map = S::new(Duration::ZERO, 0);
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

/// An expiry policy's cost to a read (wheelcache alone, one thread): hits on a cache
/// with a TTL and no policy, with a policy that sets a lifetime only at creation (its
/// `expire_after_read` is the default, so reads should cost the same), and with one that
/// overrides `expire_after_read` (asked on every hit; it keeps the time left).
fn policy_reads(c: &mut Criterion) {
    use wheelcache::{Cache, Expiry};
    struct CreateOnly;
    impl Expiry<u64, peers::Value> for CreateOnly {
        fn expire_after_create(&self, _: &u64, _: &peers::Value, _: Instant) -> Option<Duration> {
            Some(TTL)
        }
    }
    struct ReadToo;
    impl Expiry<u64, peers::Value> for ReadToo {
        fn expire_after_create(&self, _: &u64, _: &peers::Value, _: Instant) -> Option<Duration> {
            Some(TTL)
        }
        fn expire_after_read(
            &self,
            _: &u64,
            _: &peers::Value,
            _: Instant,
            left: Option<Duration>,
            _: Instant,
        ) -> Option<Duration> {
            left
        }
    }
    if !selected(Wheel::NAME) {
        return;
    }
    let mut g = short(c, "policy_reads");
    g.throughput(Throughput::Elements(BATCH));
    let caches: [(&str, Cache<u64, peers::Value>); 3] = [
        ("no_policy", Cache::builder().time_to_live(TTL).build()),
        (
            "create_only",
            Cache::builder().expire_after(CreateOnly).build(),
        ),
        (
            "read_override",
            Cache::builder().expire_after(ReadToo).build(),
        ),
    ];
    let mut rng = SmallRng::seed_from_u64(1);
    let keys: Vec<u64> = (0..BATCH).map(|_| rng.gen_range(0..KEYS)).collect();
    for (name, cache) in &caches {
        for k in 0..KEYS {
            cache.insert(k, value(k));
        }
        g.bench_function(BenchmarkId::new("get_hit", name), |b| {
            b.iter(|| keys.iter().filter(|&&k| cache.get(&k).is_some()).count())
        });
    }
    g.finish();
}

fn all_single(c: &mut Criterion) {
    single_plain_hashmap(c);
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
    contended::<WheelBounded>(c);
    contended::<MutexMap>(c);
    contended::<RwLockMap>(c);
    contended::<Dash>(c);
    contended::<Papaya>(c);
    contended::<Moka>(c);
    contended::<Quick>(c);
}

fn all_grow(c: &mut Criterion) {
    grow::<Wheel>(c);
    grow::<MutexMap>(c);
    grow::<Dash>(c);
    grow::<Papaya>(c);
    grow::<Moka>(c);
    // quick_cache is a bounded cache (its capacity is a bound, not a size hint): not a
    // growing map.
}

/// Every subject's name, as in the benchmark ids (the plain `HashMap` is the
/// single-threaded reference only).
const SUBJECTS: [&str; 9] = [
    "HashMap",
    "wheelcache",
    "wheelcache+bound",
    "Mutex<HashMap>",
    "RwLock<HashMap>",
    "dashmap",
    "papaya",
    "moka",
    "quick_cache",
];

fn main() {
    if let Some(log) = std::env::var_os("WHEELCACHE_BENCH_SUMMARIZE") {
        // Summarise a saved suite log again (its `=== round` lines name the subjects).
        let text = std::fs::read_to_string(&log).expect("read the suite log");
        let mut figures = Figures::default();
        let mut rounds = 0;
        let mut subject = None;
        let mut block = String::new();
        for line in text.lines().chain(std::iter::once("=== end")) {
            if let Some(header) = line.strip_prefix("=== ") {
                if let Some(s) = subject.take() {
                    collect(&mut figures, s, &block);
                }
                block.clear();
                subject = header
                    .rsplit(": ")
                    .next()
                    .and_then(|name| SUBJECTS.iter().find(|s| **s == name).copied());
                rounds += usize::from(subject == Some(SUBJECTS[0]));
                continue;
            }
            block.push_str(line);
            block.push('\n');
        }
        summarize(&figures, rounds);
        return;
    }
    if std::env::var_os("WHEELCACHE_BENCH_ONLY").is_some() {
        let mut c = Criterion::default().configure_from_args();
        all_single(&mut c);
        all_contended(&mut c);
        all_grow(&mut c);
        expiry(&mut c);
        policy_reads(&mut c);
        c.final_summary();
        return;
    }
    suite();
}

/// The suite: each subject in its own child process, for `WHEELCACHE_BENCH_ROUNDS`
/// rounds (default 1) in rotating order; then the medians and ratios.
fn suite() {
    let rounds: usize = std::env::var("WHEELCACHE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
        .max(1);
    let exe = std::env::current_exe().expect("the bench binary's path");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut figures = Figures::default();
    for round in 0..rounds {
        for i in 0..SUBJECTS.len() {
            let subject = SUBJECTS[(i + round) % SUBJECTS.len()];
            println!("=== round {} of {rounds}: {subject}", round + 1);
            let out = std::process::Command::new(&exe)
                .args(&args)
                .env("WHEELCACHE_BENCH_ONLY", subject)
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("run a subject's process");
            let text = String::from_utf8_lossy(&out.stdout);
            print!("{text}");
            assert!(out.status.success(), "{subject}'s process failed");
            collect(&mut figures, subject, &text);
        }
    }
    summarize(&figures, rounds);
}

/// Workload (the benchmark id without the subject) -> subject -> figures (M elements/s).
type Figures = std::collections::BTreeMap<String, HashMap<&'static str, Vec<f64>>>;

/// Adds one subject's criterion output to `figures`.
fn collect(figures: &mut Figures, subject: &'static str, text: &str) {
    for (id, value) in throughputs(text) {
        // The subject is one component of the id (`contended/session/2t/dashmap`,
        // `expiry/dashmap+sweep/1000`); the workload is the rest.
        let parts: Vec<&str> = id.split('/').collect();
        let Some(at) = parts
            .iter()
            .position(|p| *p == subject || p.strip_suffix("+sweep") == Some(subject))
        else {
            continue;
        };
        let workload: Vec<&str> = parts
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != at)
            .map(|(_, p)| *p)
            .collect();
        figures
            .entry(workload.join("/"))
            .or_default()
            .entry(subject)
            .or_default()
            .push(value);
    }
}

/// Prints the medians and the ratios to wheelcache, one row per workload.
fn summarize(figures: &Figures, rounds: usize) {
    println!("\n## Medians of {rounds} round(s), M elements/s (ratio: wheelcache / subject)\n");
    println!("| workload | {} |", SUBJECTS.join(" | "));
    println!("|---|{}", "---|".repeat(SUBJECTS.len()));
    for (workload, by_subject) in figures {
        let median = |s: &str| {
            by_subject.get(s).map(|v| {
                let mut v = v.clone();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            })
        };
        let wheel = median("wheelcache");
        let cells: Vec<String> = SUBJECTS
            .iter()
            .map(|s| match (median(s), wheel) {
                (Some(m), Some(w)) if *s != "wheelcache" => format!("{m:.2} ({:.2}x)", w / m),
                (Some(m), _) => format!("{m:.2}"),
                (None, _) => "-".into(),
            })
            .collect();
        println!("| {workload} | {} |", cells.join(" | "));
    }
}

/// (benchmark id, M elements/s) from criterion's output: an id line followed by its
/// `time:` and `thrpt:` lines (the middle estimate).
fn throughputs(text: &str) -> Vec<(String, f64)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("thrpt:") else {
            continue;
        };
        // The id is on the `time:` line just above (short ids), or on the line above that;
        // a `change:` block's lines are indented, so they never give an id.
        let above = lines[..i].iter().rev().take(2).copied().collect::<Vec<_>>();
        let id = match above.as_slice() {
            [time, ..] if !time.starts_with(' ') && time.contains("time:") => {
                time.split("time:").next().unwrap_or("")
            }
            [time, id, ..] if time.trim_start().starts_with("time:") => id,
            _ => continue,
        };
        if id.starts_with(' ') || id.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = rest
            .trim()
            .trim_matches(|c| c == '[' || c == ']')
            .split_whitespace()
            .collect();
        let (Some(value), Some(unit)) = (parts.get(2), parts.get(3)) else {
            continue;
        };
        let scale = match *unit {
            "elem/s" => 1e-6,
            "Kelem/s" => 1e-3,
            "Melem/s" => 1.0,
            "Gelem/s" => 1e3,
            _ => continue,
        };
        if let Ok(v) = value.parse::<f64>() {
            found.push((id.trim().to_string(), v * scale));
        }
    }
    found
}
