//! Coalesced loads: `get_with`, `try_get_with`, `optionally_get_with`.

use std::hash::{BuildHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use wheelcache::Cache;

const SLOW: Duration = Duration::from_millis(if cfg!(miri) { 20 } else { 300 });

/// 8 threads ask for one missing key whose loader takes 300 ms: it runs once, all get its
/// value, and the whole thing takes about one load, not eight.
#[test]
fn eight_callers_one_load() {
    let cache: Cache<u32, String> = Cache::new();
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(8);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                barrier.wait();
                let v = cache.get_with(1, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(SLOW);
                    "one".to_string()
                });
                assert_eq!(v, "one");
            });
        }
    });
    let took = started.elapsed();
    println!("8 callers, one {SLOW:?} load: {took:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // (Not under Miri, whose interpretation of eight threads takes longer than the load.)
    if !cfg!(miri) {
        assert!(
            took < SLOW * 4,
            "took {took:?}: the callers did not share the load"
        );
    }
    assert_eq!(cache.get(&1).as_deref(), Some("one"));
}

/// The leader's loader panics: the panic reaches the leader, nothing is stored, and exactly
/// one waiter loads again (the others get that value).
#[test]
fn panicking_loader_hands_over_to_one_waiter() {
    let cache: Cache<u32, u32> = Cache::new();
    let runs = AtomicUsize::new(0);
    let panicked = AtomicUsize::new(0);
    let barrier = Barrier::new(6);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                barrier.wait();
                let got = catch_unwind(AssertUnwindSafe(|| {
                    cache.get_with(9, || {
                        let run = runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(SLOW / 3);
                        assert!(run > 0, "the first load fails");
                        90
                    })
                }));
                match got {
                    Ok(v) => assert_eq!(v, 90),
                    Err(_) => {
                        panicked.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(
        panicked.load(Ordering::SeqCst),
        1,
        "only the leader sees its panic"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one retry after the panic");
    assert_eq!(cache.get(&9), Some(90));
}

/// An `Err` is shared with every waiter (one `Arc`), and nothing is stored.
#[test]
fn an_error_is_shared_and_not_stored() {
    let cache: Cache<u32, u32> = Cache::new();
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(5);
    let errors: Vec<Arc<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    cache
                        .try_get_with(3, || {
                            runs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(SLOW);
                            Err::<u32, _>("source unavailable".to_string())
                        })
                        .unwrap_err()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])));
    assert_eq!(*errors[0], "source unavailable");
    assert!(!cache.contains_key(&3));
    // Not cached: the next call loads.
    assert_eq!(cache.try_get_with(3, || Ok::<_, String>(30)), Ok(30));
}

/// `None` is shared with `optionally_get_with` waiters and not stored.
#[test]
fn nothing_is_shared_and_not_stored() {
    let cache: Cache<u32, u32> = Cache::new();
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                barrier.wait();
                let got = cache.optionally_get_with(4, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(SLOW);
                    None
                });
                assert_eq!(got, None);
            });
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(cache.is_empty());
}

/// A loader may call back into the cache, including a coalesced load of another key.
#[test]
fn a_loader_may_load_another_key() {
    let cache: Cache<u32, u32> = Cache::new();
    let v = cache.get_with(1, || cache.get_with(2, || 20) + 1);
    assert_eq!(v, 21);
    assert_eq!(cache.get(&1), Some(21));
    assert_eq!(cache.get(&2), Some(20));
}

/// A loader asking for its own key would wait for itself: it panics, with a message.
#[test]
fn a_loader_asking_for_its_own_key_panics() {
    let cache: Cache<u32, u32> = Cache::new();
    let err = catch_unwind(AssertUnwindSafe(|| {
        cache.get_with(5, || cache.get_with(5, || 1))
    }))
    .unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap();
    assert!(msg.contains("its own key"), "{msg}");
    // The flight was abandoned: the key loads normally afterwards.
    assert_eq!(cache.get_with(5, || 50), 50);
}

/// The listener hears a loaded value that the cache refuses (a zero TTL) while the load
/// is still listed; a `get_with` for the same key from there runs its own loader instead
/// of waiting for the load that is waiting for the listener. (It waited for itself.)
#[test]
fn a_listener_loading_the_key_its_store_refused_does_not_wait_for_itself() {
    let heard = Arc::new(AtomicUsize::new(0));
    let cell: Arc<std::sync::OnceLock<Cache<u32, u32>>> = Arc::default();
    let cache: Cache<u32, u32> = Cache::builder()
        .time_to_live(Duration::ZERO)
        .eviction_listener({
            let (cell, heard) = (Arc::clone(&cell), Arc::clone(&heard));
            move |k, v, _| {
                // Only the outer store's departure loads again (the inner one is refused
                // too, and its departure is heard after this listener returns).
                if heard.fetch_add(1, Ordering::SeqCst) == 0 {
                    assert_eq!(*v, 1);
                    assert_eq!(cell.get().unwrap().get_with(*k, || 2), 2);
                }
            }
        })
        .build();
    cell.set(cache.clone()).ok();
    within(Duration::from_secs(10), move || {
        assert_eq!(cache.get_with(1, || 1), 1)
    });
    assert_eq!(
        heard.load(Ordering::SeqCst),
        2,
        "both refused values were heard"
    );
}

/// The same for a value heavier than the bound (heard as `Evicted`, never stored).
#[test]
fn a_listener_loading_the_key_its_store_evicted_does_not_wait_for_itself() {
    let cell: Arc<std::sync::OnceLock<Cache<u32, u32>>> = Arc::default();
    let cache: Cache<u32, u32> = Cache::builder()
        .max_capacity(10)
        .weigher(|_, v: &u32| *v)
        .eviction_listener({
            let cell = Arc::clone(&cell);
            move |k, v, _| {
                if *v == 100 {
                    assert_eq!(cell.get().unwrap().get_with(*k, || 5), 5);
                }
            }
        })
        .build();
    cell.set(cache.clone()).ok();
    let got = within(Duration::from_secs(10), {
        let cache = cache.clone();
        move || cache.get_with(1, || 100)
    });
    assert_eq!(got, 100, "the caller gets its own value, refused or not");
    assert_eq!(cache.get(&1), Some(5), "the listener's load was stored");
}

/// A nested load (above) whose own loader asks for the key again would recurse for ever
/// (no flight is listed for it): that call panics as a loader asking for its own key
/// does, and the nested load's panic reaches the listener, which the cache survives.
#[test]
fn a_nested_load_asking_for_its_own_key_panics_instead_of_recursing() {
    let panicked = Arc::new(AtomicUsize::new(0));
    let cell: Arc<std::sync::OnceLock<Cache<u32, u32>>> = Arc::default();
    let cache: Cache<u32, u32> = Cache::builder()
        .time_to_live(Duration::ZERO)
        .eviction_listener({
            let (cell, panicked) = (Arc::clone(&cell), Arc::clone(&panicked));
            move |k, _, _| {
                let cache = cell.get().unwrap();
                let inner = catch_unwind(AssertUnwindSafe(|| {
                    cache.get_with(*k, || cache.get_with(*k, || 3))
                }));
                if let Err(err) = inner {
                    let msg = err
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    assert!(msg.contains("its own key"), "{msg}");
                    panicked.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .build();
    cell.set(cache.clone()).ok();
    within(Duration::from_secs(10), move || {
        assert_eq!(cache.get_with(1, || 1), 1)
    });
    assert_eq!(panicked.load(Ordering::SeqCst), 1);
}

/// Runs `f` on a thread of its own and returns its result, failing the test if it takes
/// longer than `limit` (a deadlock would otherwise hang the test run).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(limit)
        .expect("the call did not return: it waited for itself")
}

/// A cache that keeps nothing (capacity 0) still hands the loaded value to the waiters.
#[test]
fn waiters_get_the_value_even_when_the_cache_refuses_it() {
    let cache: Cache<u32, u32> = Cache::builder().max_capacity(0).build();
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                barrier.wait();
                let v = cache.get_with(6, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(SLOW);
                    60
                });
                assert_eq!(v, 60);
            });
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(cache.is_empty());
}

/// Every key hashes alike: concurrent loads of different keys each get their own value.
#[test]
fn colliding_keys_each_get_their_own_value() {
    #[derive(Clone, Default)]
    struct Same;
    struct Flat;
    impl Hasher for Flat {
        fn finish(&self) -> u64 {
            42
        }
        fn write(&mut self, _: &[u8]) {}
    }
    impl BuildHasher for Same {
        type Hasher = Flat;
        fn build_hasher(&self) -> Flat {
            Flat
        }
    }
    let cache: Cache<u32, u32, Same> = Cache::builder().hasher(Same).build();
    let barrier = Barrier::new(6);
    std::thread::scope(|s| {
        for k in 0..6u32 {
            let (cache, barrier) = (&cache, &barrier);
            s.spawn(move || {
                barrier.wait();
                let v = cache.get_with(k, || {
                    std::thread::sleep(SLOW / 3);
                    k * 10
                });
                assert_eq!(v, k * 10);
            });
        }
    });
    for k in 0..6u32 {
        assert_eq!(cache.get(&k), Some(k * 10));
    }
}

/// A value inserted by another caller while the loader ran wins; every value is dropped
/// exactly once.
#[test]
fn an_entry_inserted_meanwhile_wins_and_drops_balance() {
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    #[derive(Debug, PartialEq)]
    struct Counted(u32);
    impl Counted {
        fn new(v: u32) -> Self {
            LIVE.fetch_add(1, Ordering::SeqCst);
            Self(v)
        }
    }
    impl Clone for Counted {
        fn clone(&self) -> Self {
            Self::new(self.0)
        }
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
    {
        let cache: Cache<u32, Counted> = Cache::new();
        let v = cache.get_with(1, || {
            cache.insert(1, Counted::new(100));
            Counted::new(1)
        });
        assert_eq!(v.0, 100);
        drop(v);
        let v = cache.get_with(2, || Counted::new(2));
        assert_eq!(v.0, 2);
    }
    let live = LIVE.load(Ordering::SeqCst);
    assert_eq!(live, 0, "every value dropped exactly once: {live} left");
}
