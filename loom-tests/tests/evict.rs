//! Eviction under loom: a victim taken out by the capacity bound while another thread
//! reads it or removes it. The reader's borrowed value stays valid (a `Probe` read after
//! its drop is a reported race), every departure is heard once with one cause, and every
//! value is dropped (`Track`).

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
