//! Hashers that cluster keys: the table must not depend on the hasher's quality to
//! terminate. Each test runs its body on a thread and fails (instead of hanging the suite)
//! if the body does not finish in time, and checks the memory the cache holds against
//! the entries it holds (a counting allocator: tests run one at a time).

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;
use wheelcache::{Cache, CacheBuilder};

#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

static SERIAL: Mutex<()> = Mutex::new(());

/// Generous for a 2-core machine under load; a hang never finishes.
const LIMIT: Duration = Duration::from_secs(120);

/// Bytes per entry allowed for a `u64 -> u64` cache (nodes, slots at the table's lowest
/// load after a grow, and slack), plus a fixed allowance for empty segments.
const PER_ENTRY: isize = 160;
const FIXED: isize = 4 << 20;

/// The hash is the key itself (what `nohash_hasher::BuildNoHashHasher<u64>` does).
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("u64 keys only")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The key in the high half, zeros in the low 32 bits.
#[derive(Default)]
struct HighHalf(u64);

impl Hasher for HighHalf {
    fn finish(&self) -> u64 {
        self.0 << 32
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("u64 keys only")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Every key one hash.
#[derive(Default)]
struct Constant;

impl Hasher for Constant {
    fn finish(&self) -> u64 {
        42
    }
    fn write(&mut self, _: &[u8]) {}
}

/// Runs `body` on its own thread; fails if it does not return within [`LIMIT`].
fn within_limit(what: &str, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(LIMIT) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: report its panic.
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {LIMIT:?}"),
    }
}

/// Inserts `0..n` into a cache built with hasher `H`, reads every key back, removes half,
/// checks the memory held against the entries, and drops the cache.
fn sequential_keys<H: Hasher + Default + 'static>(what: &'static str, n: u64, segments: usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    within_limit(what, move || {
        let before = counting::live_bytes();
        let cache: Cache<u64, u64, BuildHasherDefault<H>> = CacheBuilder::new()
            .segments(segments)
            .hasher(BuildHasherDefault::default())
            .build();
        for k in 0..n {
            cache.insert(k, k);
        }
        assert_eq!(cache.len() as u64, n, "{what}: every key stored");
        for k in 0..n {
            assert_eq!(cache.get(&k), Some(k), "{what}: key {k}");
        }
        assert_eq!(cache.get(&n), None);
        let held = counting::live_bytes() - before;
        let allowed = FIXED + PER_ENTRY * n as isize;
        println!(
            "{what}: {n} keys, {held} bytes ({} a key)",
            held / n as isize
        );
        assert!(held <= allowed, "{what}: {held} bytes for {n} keys");
        for k in (0..n).step_by(2) {
            assert_eq!(cache.remove(&k), Some(k));
        }
        assert_eq!(cache.len() as u64, n / 2);
        for k in (1..n).step_by(2) {
            assert!(cache.contains_key(&k), "{what}: key {k} after removals");
        }
        drop(cache);
    });
}

/// An identity hasher on 10^5 sequential keys (regression: the insert of key 112 never
/// returned, growing the table by half again and again).
#[test]
fn an_identity_hasher_takes_sequential_keys() {
    sequential_keys::<Identity>("identity", 100_000, 8);
}

/// Hashes that differ only in their high 32 bits (regression: they shared one home group,
/// as with the identity hasher).
#[test]
fn hashes_sharing_their_low_half_spread() {
    sequential_keys::<HighHalf>("high half", 100_000, 8);
}

/// One hash for every key: slow (each operation walks the cluster) but it finishes, and
/// memory stays proportional to the entries.
#[test]
fn a_constant_hasher_is_slow_but_finishes() {
    sequential_keys::<Constant>("constant", 3_000, 1);
    sequential_keys::<Constant>("constant, 8 segments", 3_000, 8);
}

/// The reproduction, verbatim: 200 keys under an identity hasher.
#[test]
fn two_hundred_small_keys_under_an_identity_hasher() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    within_limit("200 keys", || {
        let c: Cache<u64, u64, BuildHasherDefault<Identity>> =
            CacheBuilder::new().hasher(Default::default()).build();
        for k in 0..200u64 {
            c.insert(k, k);
        }
        assert_eq!(c.len(), 200);
    });
}
