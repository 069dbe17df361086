//! Hit ratios of the bounded caches on the same request streams, get-then-insert-on-miss:
//! wheelcache (`max_capacity`), moka (`max_capacity`, its TinyLFU-admitted LRU),
//! quick_cache (its S3-FIFO-like CLOCK-Pro), and an exact LRU.
//!
//! The key space is the 10^6 Zipf ranks 1..=10^6; a rank `r` is requested as the key
//! `r * 0x9E37_79B9_7F4A_7C15` (wrapping), so popularity is not key order. Each stream is
//! generated once per capacity from a seed and replayed to every subject, one-thread and
//! 4-thread. The streams:
//!
//! - **Zipf 0.8, Zipf 1.0, Zipf 1.2**: every request an independent Zipf(s) draw.
//! - **Zipf 1.0 + scans**: Zipf(1.0) draws, and after every 1,000 of them a run of 2,000
//!   fresh keys (each requested once, never again); cut to the stream's length, so a third
//!   of the requests are Zipf draws.
//! - **loop 1.2x / 2x capacity**: keys 0, 1, ..., L-1, 0, 1, ... with L = 1.2 or 2 times
//!   the capacity (an exact LRU never hits).
//! - **phase change**: Zipf(1.0) draws, but the stream is cut into phases of N = 10 x the
//!   capacity requests (10^5 at 1%, 10^6 at 10%), and in phase `p` the rank `r` is the key
//!   `(p * 10^6 + r) * 0x9E37_79B9_7F4A_7C15`: each phase scatters the ranks over its own
//!   keys, so at every phase change the whole working set, hot keys first, is new. (With
//!   `quick` at 10% the stream is shorter than one phase: there is no change.)
//! - **recency-heavy**: request `i` is, with probability 0.8, a copy of request `i - d`
//!   with `d` uniform in 1..=min(i, capacity/2) (a re-touch of a key the stream itself
//!   asked for within the last capacity/2 requests), otherwise a fresh Zipf(1.0) draw.
//!   Such a window holds at most capacity/2 distinct keys, so an exact LRU hits every
//!   re-touch (about 80% and more); a policy that makes new keys earn their place by
//!   frequency, or keeps them on probation in a small queue, misses some of them.
//!
//! Capacities: 1% and 10% of the 10^6 keys. Streams are 4 x 10^6 requests (`quick`:
//! 4 x 10^5). Every ratio is given twice, as "from the first request / after warm-up":
//! hits over all requests, and hits over the requests with index >= len/4 (the first
//! quarter warms the cache).
//!
//! The one-thread table replays each stream in order. The 4-thread table shares one cache
//! per subject among 4 threads that take the stream's requests in order from one shared
//! counter (each request goes to whichever thread asks next; the threads start together
//! at a barrier), so the cache sees the stream's order up to the threads' interleaving,
//! and the hits of all four are summed; warm-up is still the requests with index < len/4.
//! Subjects there: wheelcache, moka, quick_cache, and the exact LRU wrapped in a `Mutex`
//! (one lock around the whole list: the same policy, seeing the threads' interleaving).
//! Next to wheelcache's figure: its 4-thread minus its one-thread figure, from start /
//! after warm-up (the target is within 1 point).
//!
//! Every subject is used as its docs recommend: no manual maintenance calls (moka and
//! wheelcache do their eviction work on the write path).
//!
//! Then the bound's overshoot: 8 threads insert fresh keys into a wheelcache bounded at
//! 10^4 and 10^5 (reading `weighted_size` after every insert); the worst seen is printed.
//!
//! Run: `cargo bench --bench hit_ratio` (the whole run; `-- quick` for 10x shorter
//! streams; `-- concurrent` for the 4-thread table alone, with the wheelcache one-thread
//! figures it is compared with; the two combine: `-- quick concurrent`; `-- own` for
//! wheelcache's one-thread column alone, about 30 s, for trying a policy change).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Distribution;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

const KEYS: u64 = 1_000_000;
/// Threads sharing one cache in the concurrent run.
const THREADS: usize = 4;
/// Scatters Zipf ranks over the keys (odd: a bijection of `u64`).
const SCATTER: u64 = 0x9E37_79B9_7F4A_7C15;

/// A bounded cache under test, shared by reference (so also across threads).
trait Subject: Sync {
    const NAME: &'static str;
    fn new(capacity: u64) -> Self;
    /// Whether `key` hit; inserts it on a miss.
    fn request(&self, key: u64) -> bool;
}

struct Wheel(wheelcache::Cache<u64, u64>);
impl Subject for Wheel {
    const NAME: &'static str = "wheelcache";
    fn new(capacity: u64) -> Self {
        Self(wheelcache::Cache::builder().max_capacity(capacity).build())
    }
    fn request(&self, key: u64) -> bool {
        let hit = self.0.get(&key).is_some();
        if !hit {
            self.0.insert(key, key);
        }
        hit
    }
}

struct Moka(moka::sync::Cache<u64, u64>);
impl Subject for Moka {
    const NAME: &'static str = "moka";
    fn new(capacity: u64) -> Self {
        Self(moka::sync::Cache::new(capacity))
    }
    fn request(&self, key: u64) -> bool {
        let hit = self.0.get(&key).is_some();
        if !hit {
            self.0.insert(key, key);
        }
        hit
    }
}

struct Quick(quick_cache::sync::Cache<u64, u64>);
impl Subject for Quick {
    const NAME: &'static str = "quick_cache";
    fn new(capacity: u64) -> Self {
        Self(quick_cache::sync::Cache::new(capacity as usize))
    }
    fn request(&self, key: u64) -> bool {
        let hit = self.0.get(&key).is_some();
        if !hit {
            self.0.insert(key, key);
        }
        hit
    }
}

/// An exact LRU behind one lock (uncontended with one thread).
struct Lru(Mutex<LruList>);
impl Subject for Lru {
    const NAME: &'static str = "exact LRU";
    fn new(capacity: u64) -> Self {
        Self(Mutex::new(LruList::new(capacity as usize)))
    }
    fn request(&self, key: u64) -> bool {
        self.0.lock().unwrap().request(key)
    }
}

/// An exact LRU: a map to slab indices and a doubly linked recency list.
struct LruList {
    map: HashMap<u64, usize>,
    keys: Vec<u64>,
    prev: Vec<usize>,
    next: Vec<usize>,
    head: usize, // most recent
    tail: usize, // least recent
    capacity: usize,
}

const NIL: usize = usize::MAX;

impl LruList {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            keys: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
        }
    }
    fn detach(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n] = p;
        }
    }
    fn push_front(&mut self, i: usize) {
        self.prev[i] = NIL;
        self.next[i] = self.head;
        if self.head != NIL {
            self.prev[self.head] = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Whether `key` hit; on a miss, inserts it in place of the least recent key.
    fn request(&mut self, key: u64) -> bool {
        if let Some(&i) = self.map.get(&key) {
            self.detach(i);
            self.push_front(i);
            return true;
        }
        let i = if self.keys.len() < self.capacity {
            self.keys.push(key);
            self.prev.push(NIL);
            self.next.push(NIL);
            self.keys.len() - 1
        } else {
            let victim = self.tail;
            self.detach(victim);
            self.map.remove(&self.keys[victim]);
            self.keys[victim] = key;
            victim
        };
        self.map.insert(key, i);
        self.push_front(i);
        false
    }
}

/// The request streams (see the module's docs), each with the seed it is generated from.
#[derive(Clone, Copy)]
enum Stream {
    Zipf(f64, u64),
    Scans(u64),
    /// A loop over `tenths / 10` times the capacity.
    Loop(u64),
    Phases(u64),
    Recency(u64),
}

impl Stream {
    /// The streams for one capacity. `rng` gives the seeds of the streams the bench had
    /// before issue 22 (in the same order, so they are the same streams), `extra` those
    /// of the phase-change and recency-heavy streams.
    fn all(rng: &mut SmallRng, extra: &mut SmallRng) -> [Stream; 8] {
        [
            Stream::Zipf(0.8, rng.gen()),
            Stream::Zipf(1.0, rng.gen()),
            Stream::Zipf(1.2, rng.gen()),
            Stream::Scans(rng.gen()),
            Stream::Loop(12),
            Stream::Loop(20),
            Stream::Phases(extra.gen()),
            Stream::Recency(extra.gen()),
        ]
    }

    fn name(self) -> String {
        match self {
            Stream::Zipf(s, _) => format!("Zipf {s:.1}"),
            Stream::Scans(_) => "Zipf 1.0 + scans".into(),
            Stream::Loop(tenths) => format!("loop {}x capacity", tenths as f64 / 10.0),
            Stream::Phases(_) => "phase change every 10x capacity".into(),
            Stream::Recency(_) => "recency-heavy (80% within capacity/2)".into(),
        }
    }

    fn generate(self, capacity: u64, n: usize) -> Vec<u64> {
        match self {
            Stream::Zipf(s, seed) => zipf(s, n, seed),
            Stream::Scans(seed) => scan_mix(n, seed),
            Stream::Loop(tenths) => looping(capacity * tenths / 10, n),
            Stream::Phases(seed) => phases(capacity as usize * 10, n, seed),
            Stream::Recency(seed) => recency(capacity as usize / 2, n, seed),
        }
    }
}

fn zipf(s: f64, n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let z = rand_distr::Zipf::new(KEYS, s).unwrap();
    // Zipf ranks 1..=KEYS, scattered so that popularity is not key order.
    (0..n)
        .map(|_| (z.sample(&mut rng) as u64).wrapping_mul(SCATTER))
        .collect()
}

fn scan_mix(n: usize, seed: u64) -> Vec<u64> {
    let base = zipf(1.0, n, seed);
    let mut out = Vec::with_capacity(n + n * 2);
    let mut fresh = 1u64 << 62;
    for (i, k) in base.into_iter().enumerate() {
        out.push(k);
        if i % 1_000 == 999 {
            for _ in 0..2_000 {
                out.push(fresh);
                fresh += 1;
            }
        }
    }
    out.truncate(n);
    out
}

fn looping(len: u64, n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| i % len).collect()
}

/// Zipf(1.0) whose ranks move to keys of their own every `period` requests.
fn phases(period: usize, n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let z = rand_distr::Zipf::new(KEYS, 1.0).unwrap();
    (0..n)
        .map(|i| {
            let phase = (i / period) as u64;
            (phase * KEYS + z.sample(&mut rng) as u64).wrapping_mul(SCATTER)
        })
        .collect()
}

/// 80% re-touches of a request among the last `window`, 20% Zipf(1.0) draws.
fn recency(window: usize, n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let z = rand_distr::Zipf::new(KEYS, 1.0).unwrap();
    let mut out: Vec<u64> = Vec::with_capacity(n);
    for i in 0..n {
        let key = if i > 0 && rng.gen_bool(0.8) {
            out[i - rng.gen_range(1..=window.min(i))]
        } else {
            (z.sample(&mut rng) as u64).wrapping_mul(SCATTER)
        };
        out.push(key);
    }
    out
}

/// Hits counted over all requests and over those past warm-up (index >= len/4).
#[derive(Clone, Copy, Default)]
struct Hits {
    all: u64,
    warm: u64,
}

/// Hit ratios in %, from the first request and after warm-up.
#[derive(Clone, Copy)]
struct Ratio {
    start: f64,
    warm: f64,
}

impl Ratio {
    fn of(hits: Hits, len: usize) -> Self {
        let after = len - len / 4;
        Self {
            start: hits.all as f64 / len as f64 * 100.0,
            warm: hits.warm as f64 / after as f64 * 100.0,
        }
    }

    /// `self` minus `other`, as signed points.
    fn minus(self, other: Ratio) -> String {
        format!(
            "{:+.2} / {:+.2}",
            self.start - other.start,
            self.warm - other.warm
        )
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} / {:.2}", self.start, self.warm)
    }
}

/// Replays `stream` to `cache`, in order.
fn replay<C: Subject>(cache: &C, stream: &[u64]) -> Hits {
    let warm = stream.len() / 4;
    let mut hits = Hits::default();
    for (i, &key) in stream.iter().enumerate() {
        if cache.request(key) {
            hits.all += 1;
            hits.warm += u64::from(i >= warm);
        }
    }
    hits
}

fn one_thread<C: Subject>(capacity: u64, stream: &[u64]) -> Ratio {
    Ratio::of(replay(&C::new(capacity), stream), stream.len())
}

/// `THREADS` threads on one cache, taking the stream's requests in order from one shared
/// counter (each request goes to whichever thread asks next).
fn shared<C: Subject>(capacity: u64, stream: &[u64]) -> Ratio {
    let cache = C::new(capacity);
    let start = Barrier::new(THREADS);
    let next = AtomicUsize::new(0);
    let warm = stream.len() / 4;
    let hits = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (cache, start, next) = (&cache, &start, &next);
                s.spawn(move || {
                    start.wait();
                    let mut hits = Hits::default();
                    loop {
                        // Relaxed: the counter only deals out indices; nothing is
                        // published through it.
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&key) = stream.get(i) else {
                            return hits;
                        };
                        if cache.request(key) {
                            hits.all += 1;
                            hits.warm += u64::from(i >= warm);
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().fold(Hits::default(), |sum, t| {
            let h = t.join().unwrap();
            Hits {
                all: sum.all + h.all,
                warm: sum.warm + h.warm,
            }
        })
    });
    Ratio::of(hits, stream.len())
}

/// The 4-thread table's row, with wheelcache's difference from its one-thread `wheel`.
fn shared_row(name: &str, capacity: u64, stream: &[u64], wheel: Ratio) -> String {
    let wheel4 = shared::<Wheel>(capacity, stream);
    format!(
        "| {name} | {} | {wheel4} | {} | {} | {} | {} |",
        capacity_cell(capacity),
        wheel4.minus(wheel),
        shared::<Moka>(capacity, stream),
        shared::<Quick>(capacity, stream),
        shared::<Lru>(capacity, stream),
    )
}

fn capacity_cell(capacity: u64) -> String {
    format!("{capacity} ({}%)", capacity * 100 / KEYS)
}

/// The largest `weighted_size` 8 concurrent inserters see, for a bound of `capacity`.
fn overshoot(capacity: u64, per_thread: u64) -> u64 {
    let cache: wheelcache::Cache<u64, u64> =
        wheelcache::Cache::builder().max_capacity(capacity).build();
    let worst = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (cache, worst) = (&cache, &worst);
            s.spawn(move || {
                let mut mine = 0;
                for i in 0..per_thread {
                    cache.insert((t << 40) | i, i);
                    mine = mine.max(cache.weighted_size());
                }
                worst.fetch_max(mine, Ordering::Relaxed);
            });
        }
    });
    cache.run_pending_tasks();
    assert!(cache.weighted_size() <= capacity);
    worst.into_inner()
}

fn print_overshoot(n: usize) {
    println!("\nworst weighted_size seen by 8 concurrent inserters (fresh keys)\n");
    println!("| bound | inserts | worst seen | over the bound |");
    println!("| --- | --- | --- | --- |");
    for capacity in [KEYS / 100, KEYS / 10] {
        let per_thread = (n as u64 / 8).max(capacity);
        let worst = overshoot(capacity, per_thread);
        println!(
            "| {capacity} | {} | {worst} | {:.1}% |",
            per_thread * 8,
            (worst as f64 / capacity as f64 - 1.0) * 100.0
        );
    }
}

fn main() {
    let began = Instant::now();
    let quick = std::env::args().any(|a| a == "quick");
    let only_shared = std::env::args().any(|a| a == "concurrent");
    let own = std::env::args().any(|a| a == "own");
    let n = if quick { 400_000 } else { 4_000_000 };
    if !only_shared {
        println!("hit ratio (%), one thread, get then insert on miss, {n} requests per stream; each cell: from the first request / after warm-up (first quarter excluded)\n");
        println!(
            "| stream | capacity | {} | {} | {} | {} |",
            Wheel::NAME,
            Moka::NAME,
            Quick::NAME,
            Lru::NAME
        );
        println!("| --- | --- | --- | --- | --- | --- |");
    }
    let mut shared_rows = Vec::new();
    let (mut rng, mut extra) = (SmallRng::seed_from_u64(7), SmallRng::seed_from_u64(8));
    for capacity in [KEYS / 100, KEYS / 10] {
        for stream in Stream::all(&mut rng, &mut extra) {
            let (name, keys) = (stream.name(), stream.generate(capacity, n));
            let wheel = one_thread::<Wheel>(capacity, &keys);
            if own {
                println!("| {name} | {} | {wheel} |", capacity_cell(capacity));
                continue;
            }
            if !only_shared {
                println!(
                    "| {name} | {} | {wheel} | {} | {} | {} |",
                    capacity_cell(capacity),
                    one_thread::<Moka>(capacity, &keys),
                    one_thread::<Quick>(capacity, &keys),
                    one_thread::<Lru>(capacity, &keys),
                );
            }
            shared_rows.push(shared_row(&name, capacity, &keys, wheel));
        }
    }
    if own {
        println!("\n(wall time {:.0} s)", began.elapsed().as_secs_f64());
        return;
    }
    println!("\nhit ratio (%), {THREADS} threads sharing one cache (taking the stream's requests in order from one shared counter), {n} requests per stream; each cell: from the first request / after warm-up (requests with index < len/4 excluded)\n");
    println!(
        "| stream | capacity | {} | {0} 4 threads - 1 thread | {} | {} | {} (Mutex) |",
        Wheel::NAME,
        Moka::NAME,
        Quick::NAME,
        Lru::NAME
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in shared_rows {
        println!("{row}");
    }
    if !only_shared {
        print_overshoot(n);
    }
    println!("\n(wall time {:.0} s)", began.elapsed().as_secs_f64());
}
