//! The async coalesced loads under tokio (several tasks, several threads).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wheelcache::Cache;

const SLOW: Duration = Duration::from_millis(300);

/// Eight tasks on a multi-threaded runtime ask for one missing key whose loader takes
/// 300 ms: one load, every task gets its value, about one load's time in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_one_load() {
    let cache: Arc<Cache<u32, String>> = Arc::new(Cache::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (cache, runs) = (Arc::clone(&cache), Arc::clone(&runs));
            tokio::spawn(async move {
                cache
                    .get_with_async(1, async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(SLOW).await;
                        "one".to_string()
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "one");
    }
    let took = started.elapsed();
    println!("8 tasks, one {SLOW:?} load: {took:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(took < SLOW * 4, "took {took:?}");
}

/// On one thread, waiting tasks do not block the loader (they await, not park).
#[tokio::test(flavor = "current_thread")]
async fn waiters_on_one_thread_do_not_block_the_loader() {
    let cache: Cache<u32, u32> = Cache::new();
    let runs = AtomicUsize::new(0);
    let load = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        5
    };
    let (a, b, c) = tokio::join!(
        cache.get_with_async(9, load()),
        cache.get_with_async(9, load()),
        cache.get_with_async(9, load()),
    );
    assert_eq!((a, b, c), (5, 5, 5));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A cancelled leader (its future dropped mid-load) hands over to a waiter, which loads.
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_leader_hands_over() {
    let cache: Arc<Cache<u32, u32>> = Arc::new(Cache::new());
    let mut leader = Box::pin(cache.get_with_async(3, async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        0
    }));
    // Polled until it times out: the leader has listed its flight and is loading.
    assert!(tokio::time::timeout(Duration::from_millis(20), &mut leader)
        .await
        .is_err());
    let c = Arc::clone(&cache);
    let waiter = tokio::spawn(async move { c.get_with_async(3, async { 33 }).await });
    // Let the waiter start waiting on the leader's flight, then cancel the leader.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished(), "the waiter waits for the leader");
    drop(leader);
    assert_eq!(waiter.await.unwrap(), 33);
    assert_eq!(cache.get(&3), Some(33));
}

/// Errors are shared with the tasks waiting on the load and not stored.
#[tokio::test(flavor = "current_thread")]
async fn an_async_error_is_shared() {
    let cache: Cache<u32, u32> = Cache::new();
    let runs = AtomicUsize::new(0);
    let load = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        Err::<u32, String>("no".into())
    };
    let (a, b) = tokio::join!(
        cache.try_get_with_async(4, load()),
        cache.try_get_with_async(4, load())
    );
    let (a, b) = (a.unwrap_err(), b.unwrap_err());
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(!cache.contains_key(&4));
}
