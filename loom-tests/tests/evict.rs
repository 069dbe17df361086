//! Eviction under loom: a victim taken out by the capacity bound while another thread
//! reads it or removes it. The reader's borrowed value stays valid (a `Probe` read after
//! its drop is a reported race), every departure is heard once with one cause, and every
//! value is dropped (`Track`). And across segments: a lapsed entry leaves before a live one
//! is evicted, while another thread holds the lapsed entry's segment.

use std::time::Duration;
use wheelcache::{Cache, ManualClock, RemovalCause};
use wheelcache_loom_tests::{
    model_with_branches, thread, Arc, AtomicUsize, Fixed, Model, Ordering, Probe,
};

/// A one-segment cache bounded at one entry, counting departures of key 1 by cause.
fn bounded() -> (Model, Arc<[AtomicUsize; 3]>) {
    let heard: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let h = heard.clone();
    let cache: Model = Cache::builder()
        .segments(1)
        .clock(ManualClock::new())
        .hasher(Fixed::default())
        .max_capacity(1)
        .eviction_listener(move |k: &u8, v: &Probe, cause| {
            v.check();
            if *k == 1 {
                let i = match cause {
                    RemovalCause::Evicted => 0,
                    RemovalCause::Explicit => 1,
                    _ => 2,
                };
                h[i].fetch_add(1, Ordering::SeqCst);
            }
        })
        .build();
    (cache, heard)
}

/// Key 1 is stored; another thread inserts key 2 (over the bound: that write's
/// maintenance turn evicts one of them) while this one runs `here`; then both are joined
/// and the cache maintained.
fn race<R>(here: impl FnOnce(&Model) -> R) -> (Model, Arc<[AtomicUsize; 3]>, R) {
    let (cache, heard) = bounded();
    cache.insert(1, Probe::new(1));
    let writer = {
        let cache = cache.clone();
        thread::spawn(move || cache.insert(2, Probe::new(2)))
    };
    let out = here(&cache);
    writer.join().unwrap();
    cache.run_pending_tasks();
    (cache, heard, out)
}

/// The racing thread reads key 1 through a pin and checks the borrowed value while it
/// may be evicted.
#[test]
fn eviction_racing_a_read() {
    model_with_branches(5_000, || {
        let (cache, heard, ()) = race(|cache| {
            let pinned = cache.pin();
            if let Some(v) = pinned.get(&1) {
                assert_eq!(v.check(), 1);
            }
        });
        assert!(cache.len() <= 1, "len {}", cache.len());
        let evicted = heard[0].load(Ordering::SeqCst);
        assert_eq!(usize::from(cache.contains_key(&1)) + evicted, 1);
        assert_eq!(
            heard[1].load(Ordering::SeqCst) + heard[2].load(Ordering::SeqCst),
            0
        );
    });
}

/// The racing thread removes key 1. Key 1 leaves exactly once, as `Evicted` or as
/// `Explicit`, never both.
#[test]
fn eviction_racing_a_remove() {
    model_with_branches(5_000, || {
        let (cache, heard, removed) = race(|cache| cache.remove(&1).map(|v| v.check()));
        let evicted = heard[0].load(Ordering::SeqCst);
        let explicit = heard[1].load(Ordering::SeqCst);
        assert_eq!(evicted + explicit, 1, "key 1 left once");
        assert_eq!(removed.is_some(), explicit == 1);
        assert!(!cache.contains_key(&1));
        assert!(cache.len() <= 1);
    });
}

/// Keys for the cross-segment model: `a` in segment 0, `b` and `c` in segment 1 (found
/// with the crate's test hook; the hasher is fixed, so every execution finds the same).
fn spread(cache: &Model) -> (u8, u8, u8) {
    let mut first = (0..=u8::MAX).filter(|k| cache.segment_of_for_tests(k) == 0);
    let mut second = (0..=u8::MAX).filter(|k| cache.segment_of_for_tests(k) == 1);
    let a = first.next().expect("a key in segment 0");
    let (b, c) = (second.next().expect("b"), second.next().expect("c"));
    (a, b, c)
}

/// Lapsed before live, across segments. Two segments, a bound of 32, a TTL of 1 s, and
/// weights `a` 16, `b` 8, `c` 9: `a` (segment 0) has lapsed and `b` (segment 1) is live.
/// One thread inserts `c` into segment 1, which takes the total to 33, over the bound but
/// within its back-pressure slack (a sixteenth), so its turn must expire `a`, not evict,
/// while another thread runs `run_pending_tasks`, which holds segment 0's lock while it
/// expires `a`. In every interleaving `a` leaves as `Expired` and no live entry is
/// evicted. (A write that evicted after its sweep found segment 0's lock taken failed this
/// model: `b` or `c` was evicted while `a` waited.)
#[test]
fn a_lapsed_entry_leaves_before_a_live_one_is_evicted() {
    model_with_branches(20_000, || {
        let (builder, clock, heard) = wheelcache_loom_tests::model_builder();
        let cache = builder
            .segments(2)
            .max_capacity(32)
            .weigher(|_, v: &Probe| u32::from(v.id % 32))
            .time_to_live(Duration::from_secs(1))
            .build();
        let (a, b, c) = spread(&cache);
        // Weights by value id: a's value weighs 16, b's 8, c's 9.
        cache.insert(a, Probe::new(16));
        clock.advance(Duration::from_secs(2));
        cache.insert(b, Probe::new(8));
        let maintainer = {
            let cache = cache.clone();
            thread::spawn(move || cache.run_pending_tasks())
        };
        cache.insert(c, Probe::new(9));
        maintainer.join().unwrap();
        cache.run_pending_tasks();
        assert_eq!(
            heard.evicted.load(Ordering::SeqCst),
            0,
            "a live entry evicted"
        );
        assert_eq!(heard.expired.load(Ordering::SeqCst), 1);
        assert!(cache.contains_key(&b) && cache.contains_key(&c));
        assert!(!cache.contains_key(&a));
        assert_eq!(cache.weighted_size(), 17);
    });
}

/// The idle stamp and the queue mark share a word (`meta`, for a node with no TTL: see
/// `entry::layout`): a read that stamps key 1 races the write whose turn moves key 1
/// from the small queue to main. Neither may lose the other's change: after the race,
/// key 1 lives until 10 s after the read (a lost stamp let it lapse 10 s after its
/// insert), and the queues stay consistent (a lost mark trips the queues' own checks,
/// and the final `len`).
#[test]
fn an_idle_stamp_survives_a_queue_move() {
    model_with_branches(20_000, || {
        let clock = ManualClock::new();
        let cache: Model = Cache::builder()
            .segments(1)
            .clock(clock.clone())
            .hasher(Fixed::default())
            .max_capacity(2)
            .time_to_idle(Duration::from_secs(10))
            .build();
        cache.insert(1, Probe::new(1));
        // A hit while in the small queue: the write's turn below promotes key 1 to main.
        assert_eq!(cache.get(&1).map(|v| v.check()), Some(1));
        clock.advance(Duration::from_secs(5));
        let writer = {
            let cache = cache.clone();
            thread::spawn(move || {
                cache.insert(2, Probe::new(2));
                cache.insert(3, Probe::new(3));
            })
        };
        assert_eq!(cache.get(&1).map(|v| v.check()), Some(1), "read at 5 s");
        writer.join().unwrap();
        cache.run_pending_tasks();
        clock.advance(Duration::from_secs(7));
        cache.run_pending_tasks();
        assert!(cache.contains_key(&1), "idle since 5 s, so alive at 12 s");
        assert!(cache.len() <= 2, "len {}", cache.len());
    });
}
