//! The subjects compared in the benchmarks and the demonstration, behind one trait.
//!
//! Every subject stores a deadline per entry (or expires entries itself) so all do the
//! same work: hand-written maps store `(deadline, value)`, check it on read and are swept
//! periodically by [`Subject::sweep`]; moka and wheelcache expire entries themselves;
//! quick_cache has no TTL, so the deadline is checked on read only (it relies on its
//! capacity bound for memory).
#![allow(dead_code)]

pub(crate) mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The value every subject stores: what a server keeps per session, 256 bytes (a user id
/// and a buffer of state), behind an `Arc` as servers share it.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) user: u64,
    pub(crate) state: [u8; 248],
}

const _: () = assert!(std::mem::size_of::<Session>() == 256);

pub(crate) type Value = Arc<Session>;

pub(crate) fn value(user: u64) -> Value {
    Arc::new(Session {
        user,
        state: [0; 248],
    })
}

type Hasher = ahash::RandomState;

pub(crate) trait Subject: Send + Sync + 'static {
    const NAME: &'static str;
    /// Whether reads can borrow (no clone) in this subject's own API.
    const BORROWS: bool;
    /// Whether entries need [`Subject::sweep`] to leave.
    const SWEPT: bool;
    fn new(ttl: Duration, capacity: usize) -> Self;
    /// As `new`, for a run whose lapsed entries leave in the background every `every`: a
    /// cache with a reaper of its own starts it; the others are as `new` (the harness
    /// sweeps swept maps from a thread of its own at that cadence).
    fn with_reaper(ttl: Duration, capacity: usize, every: Duration) -> Self
    where
        Self: Sized,
    {
        let _ = every;
        Self::new(ttl, capacity)
    }
    fn insert(&self, key: u64, value: Value);
    /// A cloned read.
    fn get(&self, key: u64) -> Option<Value>;
    /// A borrowed read (falls back to a clone where the API cannot borrow).
    fn read(&self, key: u64) -> Option<u64>;
    fn remove(&self, key: u64);
    fn sweep(&self) {}
    /// Whatever makes lapsed entries leave now: a sweep, or the cache's own maintenance.
    fn maintain(&self) {
        self.sweep();
    }
    /// Entries held (may include expired ones until swept).
    fn len(&self) -> usize;
}

/// wheelcache as configured for the workload; with `BOUND`, also `max_capacity` set to
/// the workload's capacity (subject `wheelcache+bound`): the cost of the bound's
/// bookkeeping (extensions, access counts, eviction queues) on the same work.
pub(crate) struct WheelOf<const BOUND: bool>(wheelcache::Cache<u64, Value>);

pub(crate) type Wheel = WheelOf<false>;

impl<const BOUND: bool> WheelOf<BOUND> {
    fn build(ttl: Duration, capacity: usize, reaper: Option<Duration>) -> Self {
        let mut builder = wheelcache::Cache::builder()
            .time_to_live(ttl)
            .initial_capacity(capacity);
        if let Some(every) = reaper {
            builder = builder.background_reaper(every);
        }
        Self(if BOUND {
            builder.max_capacity(capacity as u64).build()
        } else {
            builder.build()
        })
    }
}
pub(crate) type WheelBounded = WheelOf<true>;

impl<const BOUND: bool> Subject for WheelOf<BOUND> {
    const NAME: &'static str = if BOUND {
        "wheelcache+bound"
    } else {
        "wheelcache"
    };
    const BORROWS: bool = true;
    const SWEPT: bool = false;
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self::build(ttl, capacity, None)
    }
    fn with_reaper(ttl: Duration, capacity: usize, every: Duration) -> Self {
        Self::build(ttl, capacity, Some(every))
    }
    fn insert(&self, key: u64, value: Value) {
        self.0.insert(key, value);
    }
    fn get(&self, key: u64) -> Option<Value> {
        self.0.get(&key)
    }
    fn read(&self, key: u64) -> Option<u64> {
        self.0.pin().get(&key).map(|s| s.user)
    }
    fn remove(&self, key: u64) {
        self.0.invalidate(&key);
    }
    fn maintain(&self) {
        self.0.run_pending_tasks();
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The map a service would sweep by hand: key to `(deadline, value)`.
type SweptTable = HashMap<u64, (Instant, Value), Hasher>;

/// How a hand-written swept map is locked: shared access for reads, exclusive for writes
/// (a `Mutex` gives exclusive access for both).
pub(crate) trait MapLock: Send + Sync + 'static {
    const NAME: &'static str;
    fn wrap(table: SweptTable) -> Self;
    fn shared<R>(&self, f: impl FnOnce(&SweptTable) -> R) -> R;
    fn exclusive<R>(&self, f: impl FnOnce(&mut SweptTable) -> R) -> R;
}

impl MapLock for Mutex<SweptTable> {
    const NAME: &'static str = "Mutex<HashMap>";
    fn wrap(table: SweptTable) -> Self {
        Mutex::new(table)
    }
    fn shared<R>(&self, f: impl FnOnce(&SweptTable) -> R) -> R {
        f(&self.lock().unwrap())
    }
    fn exclusive<R>(&self, f: impl FnOnce(&mut SweptTable) -> R) -> R {
        f(&mut self.lock().unwrap())
    }
}

impl MapLock for RwLock<SweptTable> {
    const NAME: &'static str = "RwLock<HashMap>";
    fn wrap(table: SweptTable) -> Self {
        RwLock::new(table)
    }
    fn shared<R>(&self, f: impl FnOnce(&SweptTable) -> R) -> R {
        f(&self.read().unwrap())
    }
    fn exclusive<R>(&self, f: impl FnOnce(&mut SweptTable) -> R) -> R {
        f(&mut self.write().unwrap())
    }
}

/// A std `HashMap` (ahash) behind a lock, with a deadline per entry, checked on read and
/// swept periodically: the fix a service would write by hand.
pub(crate) struct SweptMap<L> {
    map: L,
    ttl: Duration,
}

pub(crate) type MutexMap = SweptMap<Mutex<SweptTable>>;
pub(crate) type RwLockMap = SweptMap<RwLock<SweptTable>>;

impl<L: MapLock> Subject for SweptMap<L> {
    const NAME: &'static str = L::NAME;
    const BORROWS: bool = true;
    const SWEPT: bool = true;
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: L::wrap(HashMap::with_capacity_and_hasher(capacity, Hasher::new())),
            ttl,
        }
    }
    fn insert(&self, key: u64, value: Value) {
        let due = Instant::now() + self.ttl;
        self.map.exclusive(|m| m.insert(key, (due, value)));
    }
    fn get(&self, key: u64) -> Option<Value> {
        let now = Instant::now();
        self.map
            .shared(|m| m.get(&key).filter(|e| e.0 > now).map(|e| e.1.clone()))
    }
    fn read(&self, key: u64) -> Option<u64> {
        let now = Instant::now();
        self.map
            .shared(|m| m.get(&key).filter(|e| e.0 > now).map(|e| e.1.user))
    }
    fn remove(&self, key: u64) {
        self.map.exclusive(|m| m.remove(&key));
    }
    fn sweep(&self) {
        let now = Instant::now();
        self.map.exclusive(|m| m.retain(|_, e| e.0 > now));
    }
    fn len(&self) -> usize {
        self.map.shared(HashMap::len)
    }
}

pub(crate) struct Dash {
    map: dashmap::DashMap<u64, (Instant, Value), Hasher>,
    ttl: Duration,
}

impl Subject for Dash {
    const NAME: &'static str = "dashmap";
    const BORROWS: bool = true;
    const SWEPT: bool = true;
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: dashmap::DashMap::with_capacity_and_hasher(capacity, Hasher::new()),
            ttl,
        }
    }
    fn insert(&self, key: u64, value: Value) {
        self.map.insert(key, (Instant::now() + self.ttl, value));
    }
    fn get(&self, key: u64) -> Option<Value> {
        let now = Instant::now();
        self.map
            .get(&key)
            .filter(|e| e.0 > now)
            .map(|e| e.1.clone())
    }
    fn read(&self, key: u64) -> Option<u64> {
        let now = Instant::now();
        self.map.get(&key).filter(|e| e.0 > now).map(|e| e.1.user)
    }
    fn remove(&self, key: u64) {
        self.map.remove(&key);
    }
    fn sweep(&self) {
        let now = Instant::now();
        self.map.retain(|_, e| e.0 > now);
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

pub(crate) struct Papaya {
    map: papaya::HashMap<u64, (Instant, Value), Hasher>,
    ttl: Duration,
}

impl Subject for Papaya {
    const NAME: &'static str = "papaya";
    const BORROWS: bool = true;
    const SWEPT: bool = true;
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: papaya::HashMap::with_capacity_and_hasher(capacity, Hasher::new()),
            ttl,
        }
    }
    fn insert(&self, key: u64, value: Value) {
        self.map
            .pin()
            .insert(key, (Instant::now() + self.ttl, value));
    }
    fn get(&self, key: u64) -> Option<Value> {
        let now = Instant::now();
        self.map
            .pin()
            .get(&key)
            .filter(|e| e.0 > now)
            .map(|e| e.1.clone())
    }
    fn read(&self, key: u64) -> Option<u64> {
        let now = Instant::now();
        self.map
            .pin()
            .get(&key)
            .filter(|e| e.0 > now)
            .map(|e| e.1.user)
    }
    fn remove(&self, key: u64) {
        self.map.pin().remove(&key);
    }
    fn sweep(&self) {
        let now = Instant::now();
        self.map.pin().retain(|_, e| e.0 > now);
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

pub(crate) struct Moka(moka::sync::Cache<u64, Value, Hasher>);

struct FixedTtl(Duration);

impl moka::Expiry<u64, Value> for FixedTtl {
    fn expire_after_create(&self, _: &u64, _: &Value, _: Instant) -> Option<Duration> {
        Some(self.0)
    }
}

impl Subject for Moka {
    const NAME: &'static str = "moka";
    const BORROWS: bool = false;
    const SWEPT: bool = false;
    fn new(ttl: Duration, capacity: usize) -> Self {
        // Per-entry expiry (its timer wheel), as wheelcache; no capacity bound.
        Self(
            moka::sync::Cache::builder()
                .expire_after(FixedTtl(ttl))
                .initial_capacity(capacity)
                .build_with_hasher(Hasher::new()),
        )
    }
    fn insert(&self, key: u64, value: Value) {
        self.0.insert(key, value);
    }
    fn get(&self, key: u64) -> Option<Value> {
        self.0.get(&key)
    }
    fn read(&self, key: u64) -> Option<u64> {
        self.0.get(&key).map(|s| s.user)
    }
    fn remove(&self, key: u64) {
        self.0.invalidate(&key);
    }
    fn maintain(&self) {
        self.0.run_pending_tasks();
    }
    fn len(&self) -> usize {
        self.0.run_pending_tasks();
        self.0.entry_count() as usize
    }
}

pub(crate) struct Quick {
    cache: quick_cache::sync::Cache<u64, (Instant, Value), quick_cache::UnitWeighter, Hasher>,
    ttl: Duration,
}

impl Subject for Quick {
    const NAME: &'static str = "quick_cache";
    const BORROWS: bool = false;
    const SWEPT: bool = false;
    fn new(ttl: Duration, capacity: usize) -> Self {
        let cap = capacity.max(1 << 16);
        Self {
            cache: quick_cache::sync::Cache::with(
                cap,
                cap as u64,
                quick_cache::UnitWeighter,
                Hasher::new(),
                quick_cache::sync::DefaultLifecycle::default(),
            ),
            ttl,
        }
    }
    fn insert(&self, key: u64, value: Value) {
        self.cache.insert(key, (Instant::now() + self.ttl, value));
    }
    fn get(&self, key: u64) -> Option<Value> {
        let now = Instant::now();
        self.cache.get(&key).filter(|e| e.0 > now).map(|e| e.1)
    }
    fn read(&self, key: u64) -> Option<u64> {
        self.get(key).map(|s| s.user)
    }
    fn remove(&self, key: u64) {
        self.cache.remove(&key);
    }
    fn len(&self) -> usize {
        self.cache.len()
    }
}
