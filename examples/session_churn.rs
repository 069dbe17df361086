//! The story this crate exists for, measured: a session store under churn.
//!
//! Worker threads start sessions (insert with a TTL), read each four times, then end 70%
//! of them (remove) and abandon the rest (left for the TTL). Each subject runs the same
//! work in turn while a sampler records live heap bytes (a counting allocator) and RSS
//! every 100 ms:
//!
//! - `leaky map`: `Mutex<HashMap>` that never deletes (the bug from the story);
//! - `mutex+sweep`: `Mutex<HashMap>` with deadlines, swept every 100 ms (the usual fix);
//! - `wheelcache`: this crate.
//!
//! `cargo run --release --example session_churn -- [--seconds N] [--threads T] [--ttl-ms M]`
//! (`--seconds` is per subject; default 5, so about 20 s in all).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wheelcache::Cache;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers to `System`, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// What a server keeps per session.
#[derive(Debug)]
struct Session {
    _user: u64,
    _state: [u8; 64],
}

/// The operations the workload needs from a session store.
trait Store: Send + Sync {
    fn start(&self, id: u64, s: Arc<Session>);
    fn read(&self, id: u64) -> bool;
    fn end(&self, id: u64);
    /// Periodic housekeeping a hand-written store needs (the sweep).
    fn sweep(&self) {}
}

struct Leaky(Mutex<HashMap<u64, Arc<Session>>>);

impl Store for Leaky {
    fn start(&self, id: u64, s: Arc<Session>) {
        self.0.lock().unwrap().insert(id, s);
    }
    fn read(&self, id: u64) -> bool {
        self.0.lock().unwrap().get(&id).is_some()
    }
    fn end(&self, _id: u64) {} // the bug: nothing ever deletes
}

struct Swept {
    map: Mutex<HashMap<u64, (Instant, Arc<Session>)>>,
    ttl: Duration,
}

impl Store for Swept {
    fn start(&self, id: u64, s: Arc<Session>) {
        let due = Instant::now() + self.ttl;
        self.map.lock().unwrap().insert(id, (due, s));
    }
    fn read(&self, id: u64) -> bool {
        let now = Instant::now();
        self.map
            .lock()
            .unwrap()
            .get(&id)
            .is_some_and(|(due, _)| *due > now)
    }
    fn end(&self, id: u64) {
        self.map.lock().unwrap().remove(&id);
    }
    fn sweep(&self) {
        let now = Instant::now();
        self.map.lock().unwrap().retain(|_, (due, _)| *due > now);
    }
}

struct Wheel(Cache<u64, Arc<Session>>);

impl Store for Wheel {
    fn start(&self, id: u64, s: Arc<Session>) {
        self.0.insert(id, s);
    }
    fn read(&self, id: u64) -> bool {
        self.0.pin().get(&id).is_some()
    }
    fn end(&self, id: u64) {
        self.0.invalidate(&id);
    }
}

/// A log-linear latency histogram (8 sub-buckets per power of two, in ns).
#[derive(Clone)]
struct Histogram(Vec<u64>);

impl Histogram {
    fn new() -> Self {
        Self(vec![0; 64 * 8])
    }
    fn record(&mut self, ns: u64) {
        let ns = ns.max(1);
        let exp = 63 - ns.leading_zeros() as usize;
        let sub = if exp >= 3 {
            ((ns >> (exp - 3)) & 7) as usize
        } else {
            0
        };
        self.0[exp * 8 + sub] += 1;
    }
    fn merge(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }
    /// The upper bound of the bucket holding quantile `q`.
    fn quantile(&self, q: f64) -> u64 {
        let total: u64 = self.0.iter().sum();
        let target = ((total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.0.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                let (exp, sub) = (i / 8, i % 8);
                return if exp >= 3 {
                    (8 + sub as u64 + 1) << (exp - 3)
                } else {
                    1 << exp
                };
            }
        }
        0
    }
}

struct Outcome {
    name: &'static str,
    ops: u64,
    secs: f64,
    peak: isize,
    middle: isize,
    last: isize,
    live_sessions: f64,
    rss_peak: u64,
    lat: Histogram,
    max_ns: u64,
    series: Vec<(f64, isize)>,
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn run(
    name: &'static str,
    store: Arc<dyn Store>,
    threads: usize,
    secs: f64,
    ttl: Duration,
) -> Outcome {
    let base = LIVE.load(Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU64::new(0));
    let abandoned = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, stop, next_id, abandoned) = (
                store.clone(),
                stop.clone(),
                next_id.clone(),
                abandoned.clone(),
            );
            std::thread::spawn(move || {
                let mut lat = Histogram::new();
                let (mut ops, mut max_ns, mut x) = (0u64, 0u64, 0x9E37_79B9u64 ^ t as u64);
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        let session = Arc::new(Session {
                            _user: id,
                            _state: [0; 64],
                        });
                        let t0 = Instant::now();
                        store.start(id, session);
                        let ns = t0.elapsed().as_nanos() as u64;
                        lat.record(ns);
                        max_ns = max_ns.max(ns);
                        for _ in 0..4 {
                            std::hint::black_box(store.read(id));
                        }
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if x % 10 < 7 {
                            store.end(id);
                        } else {
                            abandoned.fetch_add(1, Ordering::Relaxed);
                        }
                        ops += 6;
                    }
                }
                (ops, lat, max_ns)
            })
        })
        .collect();
    let sweeper = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                store.sweep();
            }
        })
    };
    // Sample every 100 ms; sessions alive now ~ abandoned within the last TTL + in flight.
    let mut series = Vec::new();
    let mut abandons: Vec<u64> = Vec::new();
    let (mut peak, mut rss_peak) = (0isize, 0u64);
    let window = (ttl.as_millis() / 100).max(1) as usize;
    let mut live_sessions = 0.0;
    while started.elapsed().as_secs_f64() < secs {
        std::thread::sleep(Duration::from_millis(100));
        let t = started.elapsed().as_secs_f64();
        let bytes = LIVE.load(Ordering::Relaxed) - base;
        abandons.push(abandoned.load(Ordering::Relaxed));
        let back = abandons.len().saturating_sub(window + 1);
        live_sessions = (abandons[abandons.len() - 1] - abandons[back]) as f64 + threads as f64;
        peak = peak.max(bytes);
        rss_peak = rss_peak.max(rss_bytes());
        series.push((t, bytes));
        if series.len() % 10 == 0 {
            println!(
                "  {name:<12} t={t:>5.1}s live heap {:>9.1} MiB  rss {:>7.1} MiB",
                bytes as f64 / 1048576.0,
                rss_bytes() as f64 / 1048576.0
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut lat = Histogram::new();
    let (mut ops, mut max_ns) = (0, 0);
    for w in workers {
        let (o, l, m) = w.join().unwrap();
        ops += o;
        lat.merge(&l);
        max_ns = max_ns.max(m);
    }
    sweeper.join().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let middle = series.get(series.len() / 2).map_or(0, |s| s.1);
    let last = series.last().map_or(0, |s| s.1);
    drop(store);
    Outcome {
        name,
        ops,
        secs: elapsed,
        peak,
        middle,
        last,
        live_sessions,
        rss_peak,
        lat,
        max_ns,
        series,
    }
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let secs = arg("--seconds", 5.0);
    let threads = arg("--threads", 4.0) as usize;
    let ttl = Duration::from_millis(arg("--ttl-ms", 200.0) as u64);
    println!("session churn: {threads} threads, TTL {ttl:?}, {secs} s per subject; 4 reads per session, 70% ended, 30% abandoned");
    let subjects: Vec<(&'static str, Arc<dyn Store>)> = vec![
        ("leaky map", Arc::new(Leaky(Mutex::new(HashMap::new())))),
        (
            "mutex+sweep",
            Arc::new(Swept {
                map: Mutex::new(HashMap::new()),
                ttl,
            }),
        ),
        (
            "wheelcache",
            Arc::new(Wheel(Cache::builder().time_to_live(ttl).build())),
        ),
    ];
    let mut outcomes = Vec::new();
    for (name, store) in subjects {
        println!("{name}:");
        outcomes.push(run(name, store, threads, secs, ttl));
    }
    println!();
    println!("| subject | Mops/s | peak heap MiB | final heap MiB | end/middle | bytes per live session | insert p50 | p99.9 | max | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        println!(
            "| {} | {:.2} | {:.1} | {:.1} | {:.2} | {:.0} | {} ns | {} ns | {:.2} ms | {:.0} |",
            o.name,
            o.ops as f64 / o.secs / 1e6,
            o.peak as f64 / 1048576.0,
            o.last as f64 / 1048576.0,
            o.last as f64 / o.middle.max(1) as f64,
            o.last as f64 / o.live_sessions.max(1.0),
            o.lat.quantile(0.5),
            o.lat.quantile(0.999),
            o.max_ns as f64 / 1e6,
            o.rss_peak as f64 / 1048576.0,
        );
    }
    let _ = outcomes.iter().map(|o| o.series.len()).sum::<usize>();
}
