//! The background reaper and the drop of the cache: the last handle's drop frees every
//! entry before it returns, whatever point of a reaper round it lands on. Regression: the
//! round's upgrade could leave the reaper holding the last reference, and the entries were
//! freed later, on the reaper thread (30 drops in 400).
#![cfg(not(miri))] // real threads and real time

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wheelcache::{Cache, ManualClock};

/// A value that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Many drops, each at a random point of the reaper's rounds (which have expiry work and
/// a listener to run): every value is dropped when `drop` returns.
#[test]
fn a_drop_racing_the_reaper_frees_everything_before_it_returns() {
    const ROUNDS: usize = 400;
    const ENTRIES: usize = 300;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut slowest = Duration::ZERO;
    for round in 0..ROUNDS {
        let dropped = Arc::new(AtomicUsize::new(0));
        let clock = ManualClock::new();
        let cache: Cache<usize, Counted> = Cache::builder()
            .clock(clock.clone())
            .segments(4)
            .eviction_listener(|_, _, _| std::hint::black_box(()))
            .background_reaper(Duration::from_millis(1))
            .build();
        for i in 0..ENTRIES {
            let value = Counted(Arc::clone(&dropped));
            if i % 2 == 0 {
                cache.insert_with_ttl(i, value, Duration::from_millis(1));
            } else {
                cache.insert(i, value);
            }
        }
        clock.advance(Duration::from_millis(2)); // half of them due: the rounds have work
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_micros(x % 1_500));
        let started = Instant::now();
        drop(cache);
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            ENTRIES,
            "round {round}: values not yet dropped when the last handle's drop returned"
        );
    }
    println!("slowest drop: {slowest:?}");
}

/// The last handle dropped by the listener, on the reaper thread, inside its round: no
/// deadlock (the drop cannot wait for its own thread), and the cache is freed when the
/// round ends.
#[test]
fn the_last_handle_dropped_on_the_reaper_thread() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new();
    let slot: Arc<Mutex<Option<Cache<u32, Counted>>>> = Arc::default();
    let s = Arc::clone(&slot);
    let cache: Cache<u32, Counted> = Cache::builder()
        .clock(clock.clone())
        .eviction_listener(move |_, _, _| drop(s.lock().unwrap().take()))
        .background_reaper(Duration::from_millis(1))
        .build();
    for i in 0..10 {
        cache.insert(i, Counted(Arc::clone(&dropped)));
    }
    cache.insert_with_ttl(99, Counted(Arc::clone(&dropped)), Duration::from_millis(1));
    *slot.lock().unwrap() = Some(cache.clone());
    drop(cache); // not the last: the listener's is
    clock.advance(Duration::from_millis(2));
    let deadline = Instant::now() + Duration::from_secs(30);
    while dropped.load(Ordering::SeqCst) < 11 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 11, "the cache was freed");
    assert!(slot.lock().unwrap().is_none());
}

/// A listener that blocks on a lock the dropping thread holds: the drop cannot wait for
/// the round to end (it never would), so it returns after `STOP_WAIT` (1 s), and the
/// round's end frees the cache once the lock is let go.
#[test]
fn a_listener_blocked_by_the_dropping_thread_does_not_hang_the_drop() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new();
    let lock = Arc::new(Mutex::new(()));
    let (entered, on_entered) = std::sync::mpsc::channel::<()>();
    let entered = Mutex::new(Some(entered));
    let l = Arc::clone(&lock);
    let cache: Cache<u32, Counted> = Cache::builder()
        .clock(clock.clone())
        .eviction_listener(move |_, _, _| {
            if let Some(tx) = entered.lock().unwrap().take() {
                let _ = tx.send(());
            }
            drop(l.lock().unwrap());
        })
        .background_reaper(Duration::from_millis(1))
        .build();
    cache.insert_with_ttl(1, Counted(Arc::clone(&dropped)), Duration::from_millis(1));
    cache.insert(2, Counted(Arc::clone(&dropped)));
    let held = lock.lock().unwrap();
    clock.advance(Duration::from_millis(2));
    on_entered.recv().unwrap(); // the reaper's listener now waits for `held`
    let started = Instant::now();
    drop(cache);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "the drop took {took:?}"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    while dropped.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "the round's end freed the cache"
    );
}

/// A clock that panics once on the reaper's thread, when armed.
struct PanicsOnTheReaper {
    clock: ManualClock,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl wheelcache::Clock for PanicsOnTheReaper {
    fn now_nanos(&self) -> u64 {
        let reaper = std::thread::current().name() == Some("wheelcache-reaper");
        if reaper && self.armed.swap(false, Ordering::SeqCst) {
            panic!("the clock panics once on the reaper thread");
        }
        self.clock.now_nanos()
    }
}

/// A panicking clock skips one reaper round, not the reaper: the thread used to end, and
/// nothing expired in the background any more. (Found by an adversarial probe.)
#[test]
fn a_panicking_clock_skips_a_round_and_the_reaper_goes_on() {
    let clock = ManualClock::new();
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let cache: Cache<u32, u32> = Cache::builder()
        .clock(PanicsOnTheReaper {
            clock: clock.clone(),
            armed: Arc::clone(&armed),
        })
        .background_reaper(Duration::from_millis(1))
        .eviction_listener(move |k, _, _| {
            let _ = tx.send(*k);
        })
        .build();
    armed.store(true, Ordering::SeqCst);
    let start = Instant::now();
    while armed.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the reaper never ran"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    cache.insert_with_ttl(1, 1, Duration::from_secs(1));
    clock.advance(Duration::from_secs(2));
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(1));
    assert_eq!(cache.len(), 0);
}
