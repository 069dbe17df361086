//! The listener under loom: it runs unpinned, outside every lock, never nested, and may
//! write back into its own cache while entries expire on two threads at once.

use std::cell::Cell;
use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};
use wheelcache_loom_tests::{
    model_with_bound, thread, thread_local, Arc, AtomicUsize, Fixed, Model, Mutex, Ordering, Probe,
};

const MS: Duration = Duration::from_millis(1);

thread_local! {
    // Not `const`: loom's `thread_local!` takes a plain expression only.
    #[allow(clippy::missing_const_for_thread_local)]
    static DEPTH: Cell<usize> = Cell::new(0);
}

/// An entry lapses; one thread runs `run_pending_tasks` while another writes (a write turn
/// that may expire it too). The listener writes the expired value back under key 20,
/// replacing the entry there: a departure caused inside the listener. Every departure is
/// heard exactly once, the listener never nests (the replacement is heard after the
/// listener that caused it returns), and every value (`Track`ed) is dropped by the end.
#[test]
fn listener_writes_back_during_expiry() {
    // Three threads' worth of operations, each with its pins and maintenance turns: more
    // scheduling points than loom's default branch limit (1000). At the suite's preemption
    // bound (2) this model took 7.5 minutes of CI's 90; since listener writes take their
    // own turns it runs at 1, as the two-tier model does.
    model_with_bound(1, 10_000, || {
        let clock = ManualClock::new();
        // The listener reaches its cache through a slot emptied at the end (a clone of its own
        // cache captured directly would keep the cache alive for ever).
        let slot: Arc<Mutex<Option<Model>>> = Arc::new(Mutex::new(None));
        let expired = Arc::new(AtomicUsize::new(0));
        let replaced = Arc::new(AtomicUsize::new(0));
        let nested = Arc::new(AtomicUsize::new(0));
        let (s, e, r, n) = (
            slot.clone(),
            expired.clone(),
            replaced.clone(),
            nested.clone(),
        );
        let cache: Model = Cache::builder()
            .segments(1)
            .clock(clock.clone())
            .hasher(Fixed::default())
            .eviction_listener(move |k: &u8, v: &Probe, cause| {
                v.check();
                let depth = DEPTH.with(|d| {
                    d.set(d.get() + 1);
                    d.get()
                });
                if depth > 1 {
                    n.fetch_add(1, Ordering::SeqCst);
                }
                match cause {
                    RemovalCause::Expired => {
                        e.fetch_add(1, Ordering::SeqCst);
                        let cache = s.lock().unwrap().clone();
                        if let Some(cache) = cache {
                            cache.insert(20, Probe::new(v.id));
                        }
                    }
                    RemovalCause::Replaced => {
                        assert_eq!(*k, 20);
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                    other => panic!("unexpected departure {other:?}"),
                }
                DEPTH.with(|d| d.set(d.get() - 1));
            })
            .build();
        *slot.lock().unwrap() = Some(cache.clone());
        cache.insert(20, Probe::new(20));
        cache.insert_with_ttl(1, Probe::new(1), MS);
        clock.advance(MS);
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.run_pending_tasks());
        cache.insert(3, Probe::new(3));
        t.join().unwrap();
        cache.run_pending_tasks();
        assert_eq!(nested.load(Ordering::SeqCst), 0, "the listener nested");
        assert_eq!(expired.load(Ordering::SeqCst), 1, "the expiry heard once");
        assert_eq!(
            replaced.load(Ordering::SeqCst),
            1,
            "the replacement heard once"
        );
        assert_eq!(
            cache.get(&20).map(|p| p.id),
            Some(1),
            "the write-back landed"
        );
        assert_eq!(cache.len(), 2);
        // Break the cycle (the listener holds the slot) so the cache drops.
        drop(slot.lock().unwrap().take());
    });
}

/// Two caches: a removal from the first is written into the second (bounded at one
/// entry) from the first's listener, while another thread writes the second directly.
/// The listener mark is per cache, so the second maintains itself inside the first's
/// listener: once both threads are done, before any `run_pending_tasks`, the second holds
/// at most its bound and its own listener has heard the entry it let go. (With a
/// per-thread mark the write inside the listener took no turn, and when the other
/// thread's turn had already run, the second was left over its bound.) Two caches' worth
/// of turns: at the suite's preemption bound (2) loom ran over 15 minutes without
/// finishing, so this model runs at 1 (about 11 s).
#[test]
fn a_second_tier_fed_by_a_listener_maintains_itself() {
    model_with_bound(1, 20_000, || {
        let heard = Arc::new(AtomicUsize::new(0));
        let h = heard.clone();
        let second: Model = Cache::builder()
            .segments(1)
            .clock(ManualClock::new())
            .hasher(Fixed::default())
            .max_capacity(1)
            .eviction_listener(move |_k: &u8, v: &Probe, cause| {
                v.check();
                assert_eq!(cause, RemovalCause::Evicted);
                h.fetch_add(1, Ordering::SeqCst);
            })
            .build();
        let sink = second.clone();
        let first: Model = Cache::builder()
            .segments(1)
            .clock(ManualClock::new())
            .hasher(Fixed::default())
            .eviction_listener(move |k: &u8, v: &Probe, _| {
                sink.insert(*k, Probe::new(v.check()));
            })
            .build();
        first.insert(1, Probe::new(1));
        let other = {
            let second = second.clone();
            thread::spawn(move || second.insert(10, Probe::new(10)))
        };
        assert!(first.remove(&1).is_some()); // its listener writes 1 into the second
        other.join().unwrap();
        assert!(
            second.weighted_size() <= 1,
            "the second tier holds {} against a bound of 1",
            second.weighted_size()
        );
        assert_eq!(
            second.len() + heard.load(Ordering::SeqCst),
            2,
            "every entry the second tier let go was heard"
        );
    });
}
