//! Hit ratios of the bounded caches on the same request streams, one thread,
//! get-then-insert-on-miss: wheelcache (`max_capacity`), moka (`max_capacity`, its
//! TinyLFU-admitted LRU), quick_cache (its S3-FIFO-like CLOCK-Pro), and an exact LRU.
//!
//! Streams over 10^6 keys, each generated once (seeded) and replayed to every subject:
//! Zipf(0.8), Zipf(1.0), Zipf(1.2); Zipf(1.0) with one-off scans (every 1,000 requests a
//! run of 2,000 fresh keys); a loop over 1.2x the capacity. Capacities: 1% and 10% of the
//! key space. The first quarter of each stream warms the cache; the ratio counts the rest.
//!
//! Every subject is used as its docs recommend: no manual maintenance calls (moka and
//! wheelcache do their eviction work on the write path).
//!
//! Then the bound's overshoot: 8 threads insert fresh keys into a wheelcache bounded at
//! 10^4 and 10^5 (reading `weighted_size` after every insert); the worst seen is printed.
//!
//! Run: `cargo bench --bench hit_ratio` (`-- quick` for 10x shorter streams).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Distribution;
use std::collections::HashMap;

const KEYS: u64 = 1_000_000;

trait Bounded {
    const NAME: &'static str;
    fn new(capacity: u64) -> Self;
    /// Whether `key` hit; inserts it on a miss.
    fn request(&mut self, key: u64) -> bool;
}

struct Wheel(wheelcache::Cache<u64, u64>);
impl Bounded for Wheel {
    const NAME: &'static str = "wheelcache";
    fn new(capacity: u64) -> Self {
        Self(wheelcache::Cache::builder().max_capacity(capacity).build())
    }
    fn request(&mut self, key: u64) -> bool {
        let hit = self.0.get(&key).is_some();
        if !hit {
            self.0.insert(key, key);
        }
        hit
    }
}

struct Moka(moka::sync::Cache<u64, u64>);
impl Bounded for Moka {
    const NAME: &'static str = "moka";
    fn new(capacity: u64) -> Self {
        Self(moka::sync::Cache::new(capacity))
    }
    fn request(&mut self, key: u64) -> bool {
        let hit = self.0.get(&key).is_some();
        if !hit {
            self.0.insert(key, key);
        }
        hit
    }
}

struct Quick(quick_cache::sync::Cache<u64, u64>);
impl Bounded for Quick {
    const NAME: &'static str = "quick_cache";
    fn new(capacity: u64) -> Self {
        Self(quick_cache::sync::Cache::new(capacity as usize))
    }
    fn request(&mut self, key: u64) -> bool {
        let hit = self.0.get(&key).is_some();
        if !hit {
            self.0.insert(key, key);
        }
        hit
    }
}

/// An exact LRU: a map to slab indices and a doubly linked recency list.
struct Lru {
    map: HashMap<u64, usize>,
    keys: Vec<u64>,
    prev: Vec<usize>,
    next: Vec<usize>,
    head: usize, // most recent
    tail: usize, // least recent
    capacity: usize,
}

const NIL: usize = usize::MAX;

impl Lru {
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
}

impl Bounded for Lru {
    const NAME: &'static str = "exact LRU";
    fn new(capacity: u64) -> Self {
        Self {
            map: HashMap::new(),
            keys: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity as usize,
        }
    }
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

fn zipf(s: f64, n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let z = rand_distr::Zipf::new(KEYS, s).unwrap();
    // Zipf ranks 1..=KEYS, scattered so that popularity is not key order.
    (0..n)
        .map(|_| (z.sample(&mut rng) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
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

fn looping(capacity: u64, n: usize) -> Vec<u64> {
    let len = capacity * 12 / 10;
    (0..n as u64).map(|i| i % len).collect()
}

fn ratio<C: Bounded>(capacity: u64, stream: &[u64]) -> f64 {
    let mut cache = C::new(capacity);
    let warm = stream.len() / 4;
    let mut hits = 0u64;
    for (i, &k) in stream.iter().enumerate() {
        let hit = cache.request(k);
        if i >= warm && hit {
            hits += 1;
        }
    }
    hits as f64 / (stream.len() - warm) as f64 * 100.0
}

/// The largest `weighted_size` 8 concurrent inserters see, for a bound of `capacity`.
fn overshoot(capacity: u64, per_thread: u64) -> u64 {
    let cache: wheelcache::Cache<u64, u64> =
        wheelcache::Cache::builder().max_capacity(capacity).build();
    let worst = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (cache, worst) = (&cache, &worst);
            s.spawn(move || {
                let mut mine = 0;
                for i in 0..per_thread {
                    cache.insert((t << 40) | i, i);
                    mine = mine.max(cache.weighted_size());
                }
                worst.fetch_max(mine, std::sync::atomic::Ordering::Relaxed);
            });
        }
    });
    cache.run_pending_tasks();
    assert!(cache.weighted_size() <= capacity);
    worst.into_inner()
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let n = if quick { 400_000 } else { 4_000_000 };
    println!("hit ratio (%), one thread, get then insert on miss, {n} requests per stream (first quarter warms up)\n");
    println!(
        "| stream | capacity | {} | {} | {} | {} |",
        Wheel::NAME,
        Moka::NAME,
        Quick::NAME,
        Lru::NAME
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut rng = SmallRng::seed_from_u64(7);
    for capacity in [KEYS / 100, KEYS / 10] {
        let streams: Vec<(String, Vec<u64>)> = vec![
            ("Zipf 0.8".into(), zipf(0.8, n, rng.gen())),
            ("Zipf 1.0".into(), zipf(1.0, n, rng.gen())),
            ("Zipf 1.2".into(), zipf(1.2, n, rng.gen())),
            ("Zipf 1.0 + scans".into(), scan_mix(n, rng.gen())),
            ("loop 1.2x capacity".into(), looping(capacity, n)),
        ];
        for (name, stream) in &streams {
            println!(
                "| {name} | {capacity} | {:.2} | {:.2} | {:.2} | {:.2} |",
                ratio::<Wheel>(capacity, stream),
                ratio::<Moka>(capacity, stream),
                ratio::<Quick>(capacity, stream),
                ratio::<Lru>(capacity, stream),
            );
        }
    }
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
