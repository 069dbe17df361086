//! The coalesced load's hand-off under loom: a waiter never misses the loader's result,
//! and never waits for ever when the loader panics.

use std::panic::{catch_unwind, AssertUnwindSafe};
use wheelcache::Cache;
use wheelcache_loom_tests::{model_with_branches, thread, Arc, AtomicUsize, Fixed, Ordering};

type Loads = Cache<u8, u8, Fixed>;

fn cache() -> Arc<Loads> {
    Arc::new(
        Cache::builder()
            .segments(1)
            .hasher(Fixed::default())
            .build(),
    )
}

/// Two threads load one key: in every interleaving both get the one value and the loader
/// runs once (the second caller either waits for the flight or finds the stored entry).
#[test]
fn two_callers_share_one_load() {
    model_with_branches(10_000, || {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let (c, r) = (cache.clone(), runs.clone());
        let other = thread::spawn(move || {
            c.get_with(1, || {
                r.fetch_add(1, Ordering::SeqCst);
                7
            })
        });
        let mine = cache.get_with(1, || {
            runs.fetch_add(1, Ordering::SeqCst);
            7
        });
        assert_eq!(mine, 7);
        assert_eq!(other.join().unwrap(), 7);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// The leader's loader panics while another caller may be waiting: the waiter is woken
/// and loads itself (loom reports a deadlock if it could wait for ever), and the panic
/// reaches only the caller whose loader panicked.
#[test]
fn a_panicking_loader_never_strands_its_waiter() {
    std::panic::set_hook(Box::new(|_| {}));
    model_with_branches(10_000, || {
        let cache = cache();
        let c = cache.clone();
        let other = thread::spawn(move || c.get_with(1, || 2));
        let mine = catch_unwind(AssertUnwindSafe(|| {
            cache.get_with(1, || panic!("load failed"))
        }));
        assert_eq!(other.join().unwrap(), 2);
        // Either this thread led and panicked, or the other had stored 2 first.
        if let Ok(v) = mine {
            assert_eq!(v, 2);
        }
        assert_eq!(cache.get(&1), Some(2));
    });
}
