//! What `run_pending_tasks` guarantees on return about departures other threads' turns
//! took out: their listener calls have returned (within `MAX_RECLAIM_WAIT`). Regression:
//! it returned as soon as its own turns found nothing due, while another thread's turn
//! had taken the due entries out and was still delivering them (7 rounds in 1,481).
#![cfg(not(miri))] // real threads and sleeps

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};

const DUE: usize = 50;

/// A writer's turn takes every due entry out and delivers them slowly (its first listener
/// call waits 30 ms); `run_pending_tasks`, called meanwhile on another thread, returns only
/// once every one of them has been heard.
#[test]
fn returns_after_other_threads_turns_have_delivered() {
    for round in 0..5 {
        let clock = ManualClock::new();
        let heard = Arc::new(AtomicUsize::new(0));
        let (started, on_start) = mpsc::channel::<()>();
        let started = Mutex::new(Some(started));
        let slow = Arc::new(AtomicBool::new(true));
        let (h, s) = (Arc::clone(&heard), Arc::clone(&slow));
        let cache: Cache<usize, usize> = Cache::builder()
            .segments(1)
            .clock(clock.clone())
            .eviction_listener(move |_, _, cause| {
                assert_eq!(cause, RemovalCause::Expired);
                if s.swap(false, Ordering::SeqCst) {
                    if let Some(tx) = started.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
                h.fetch_add(1, Ordering::SeqCst);
            })
            .build();
        for i in 0..DUE {
            cache.insert_with_ttl(i, i, Duration::from_millis(1));
        }
        clock.advance(Duration::from_millis(2));
        let writer = {
            let cache = cache.clone();
            // A new tick: this write's turn expires the first due entries (its turn does up
            // to 16 units of work), and `run_pending_tasks` the rest.
            std::thread::spawn(move || cache.insert(DUE, 0))
        };
        on_start.recv().unwrap();
        cache.run_pending_tasks();
        assert_eq!(
            heard.load(Ordering::SeqCst),
            DUE,
            "round {round}: run_pending_tasks returned before the departures another thread \
             took out were heard"
        );
        writer.join().unwrap();
    }
}

/// Called from inside the listener on the thread that is delivering, it does not wait for
/// its own undelivered departures (that would only run out its patience).
#[test]
fn from_inside_the_listener_it_does_not_wait_for_itself() {
    let clock = ManualClock::new();
    let slot: Arc<std::sync::OnceLock<Cache<usize, usize>>> = Arc::default();
    let s = Arc::clone(&slot);
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let w = Arc::clone(&slowest);
    let cache: Cache<usize, usize> = Cache::builder()
        .segments(1)
        .clock(clock.clone())
        .eviction_listener(move |_, _, _| {
            let started = std::time::Instant::now();
            s.get().unwrap().run_pending_tasks();
            let took = started.elapsed();
            let mut w = w.lock().unwrap();
            *w = (*w).max(took);
        })
        .build();
    let _ = slot.set(cache.clone());
    for i in 0..DUE {
        cache.insert_with_ttl(i, i, Duration::from_millis(1));
    }
    clock.advance(Duration::from_millis(2));
    cache.insert(DUE, 0);
    let slowest = *slowest.lock().unwrap();
    assert!(
        slowest < wheelcache::MAX_RECLAIM_WAIT / 2,
        "a nested run_pending_tasks took {slowest:?}"
    );
}
