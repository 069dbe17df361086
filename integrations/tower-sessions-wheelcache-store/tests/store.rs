//! `WheelcacheStore` through the `SessionStore` trait alone: creation never overwrites,
//! records expire at their own dates, loads never see an expired record, deletes and the
//! bound.

use std::collections::HashSet;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::SessionStore;
use tower_sessions_wheelcache_store::WheelcacheStore;

/// A record with id `id`, data `owner`, expiring `ms` milliseconds from now (negative:
/// already expired).
fn record(id: i128, owner: u64, ms: i64) -> Record {
    let mut data = std::collections::HashMap::new();
    data.insert("owner".to_string(), owner.into());
    Record {
        id: Id(id),
        data,
        expiry_date: OffsetDateTime::now_utc() + time::Duration::milliseconds(ms),
    }
}

fn owner(record: &Record) -> u64 {
    record.data["owner"].as_u64().expect("an owner")
}

const HOUR_MS: i64 = 3_600_000;

#[tokio::test]
async fn create_never_overwrites_a_stored_record() {
    let store = WheelcacheStore::default();
    store.save(&record(7, 1, HOUR_MS)).await.unwrap();
    let mut second = record(7, 2, HOUR_MS);
    store.create(&mut second).await.unwrap();
    assert_ne!(second.id, Id(7), "the colliding id was replaced");
    let first = store.load(&Id(7)).await.unwrap().expect("the first record");
    assert_eq!(owner(&first), 1);
    let loaded = store
        .load(&second.id)
        .await
        .unwrap()
        .expect("the second record");
    assert_eq!(loaded, second);
    assert_eq!(store.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_id_each_get_their_own() {
    const TASKS: u64 = 8;
    const EACH: u64 = 250;
    let store = WheelcacheStore::default();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            let mut made = Vec::new();
            for i in 0..EACH {
                // Every create starts from the same id: all but one must move.
                let mut r = record(42, task * EACH + i, HOUR_MS);
                store.create(&mut r).await.unwrap();
                made.push((r.id, task * EACH + i));
            }
            made
        });
    }
    let mut made = Vec::new();
    while let Some(done) = tasks.join_next().await {
        made.extend(done.unwrap());
    }
    let ids: HashSet<Id> = made.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids.len(),
        (TASKS * EACH) as usize,
        "two creates returned one id"
    );
    assert_eq!(made.iter().filter(|(id, _)| *id == Id(42)).count(), 1);
    assert_eq!(
        store.len(),
        (TASKS * EACH) as usize,
        "a create overwrote another"
    );
    for (id, expected) in made {
        let loaded = store
            .load(&id)
            .await
            .unwrap()
            .expect("each record is stored");
        assert_eq!(
            owner(&loaded),
            expected,
            "record {id:?} holds another's data"
        );
    }
}

#[tokio::test]
async fn each_record_expires_at_its_own_date() {
    let store = WheelcacheStore::default();
    let start = Instant::now();
    for (id, ms) in [(1, 150), (2, 400), (3, HOUR_MS)] {
        store.create(&mut record(id, id as u64, ms)).await.unwrap();
    }
    // Only reading the length, so the store's reaper is what takes them out.
    let (mut left, mut gone) = (3, Vec::new());
    while left > 1 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = store.len();
        while left > now {
            gone.push(start.elapsed());
            left -= 1;
        }
    }
    assert_eq!(gone.len(), 2, "expired: {gone:?}, left: {}", store.len());
    assert!(gone[0] >= Duration::from_millis(150), "{gone:?}");
    assert!(gone[0] < Duration::from_millis(400), "{gone:?}");
    assert!(gone[1] >= Duration::from_millis(400), "{gone:?}");
    assert!(store.load(&Id(1)).await.unwrap().is_none());
    assert!(store.load(&Id(2)).await.unwrap().is_none());
    assert!(store.load(&Id(3)).await.unwrap().is_some());
    // The reaper counts a turn's expirations when the turn ends, a moment after `len`
    // drops: wait (briefly) for the count.
    let counted = Instant::now();
    while store.stats().expirations < 2 && counted.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.stats().expirations, 2);
}

#[tokio::test]
async fn a_record_past_its_expiry_is_not_stored() {
    let store = WheelcacheStore::default();
    let mut stale = record(1, 1, -1_000);
    store.create(&mut stale).await.unwrap();
    assert!(store.is_empty());
    assert!(store.load(&stale.id).await.unwrap().is_none());

    // A save of an expired version removes the live one.
    store.save(&record(2, 2, HOUR_MS)).await.unwrap();
    assert!(store.load(&Id(2)).await.unwrap().is_some());
    store.save(&record(2, 3, -1)).await.unwrap();
    assert!(store.load(&Id(2)).await.unwrap().is_none());
    assert!(store.is_empty());
}

#[tokio::test]
async fn save_moves_the_expiry_both_ways() {
    let store = WheelcacheStore::default();
    store.save(&record(1, 1, 100)).await.unwrap();
    store.save(&record(1, 2, HOUR_MS)).await.unwrap(); // extended
    store.save(&record(2, 1, HOUR_MS)).await.unwrap();
    store.save(&record(2, 2, 100)).await.unwrap(); // shortened
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = store.load(&Id(1)).await.unwrap().expect("extended record");
    assert_eq!(owner(&kept), 2);
    assert!(store.load(&Id(2)).await.unwrap().is_none());
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn load_never_returns_an_expired_record() {
    let store = WheelcacheStore::default();
    store.save(&record(1, 1, 30)).await.unwrap();
    let mut seen = 0;
    loop {
        let before = OffsetDateTime::now_utc();
        match store.load(&Id(1)).await.unwrap() {
            Some(r) => {
                assert!(
                    r.expiry_date > before,
                    "loaded {:?} at {before}",
                    r.expiry_date
                );
                seen += 1;
            }
            None => break,
        }
    }
    assert!(seen > 0, "the record was never loaded");
    assert!(store.load(&Id(1)).await.unwrap().is_none());
}

#[tokio::test]
async fn delete_removes_at_once() {
    let store = WheelcacheStore::default();
    let mut r = record(1, 1, HOUR_MS);
    store.create(&mut r).await.unwrap();
    store.delete(&r.id).await.unwrap();
    assert!(store.is_empty());
    assert!(store.load(&r.id).await.unwrap().is_none());
    store.delete(&r.id).await.unwrap(); // deleting nothing is fine
    assert_eq!(store.stats().removals, 1);
}

#[tokio::test]
async fn a_bounded_store_keeps_at_most_its_bound_and_its_busy_sessions() {
    const BOUND: u64 = 1_000;
    const CREATED: i128 = 20_000;
    let store = WheelcacheStore::with_max_sessions(BOUND);
    let mut busy = record(0, 0, HOUR_MS);
    store.create(&mut busy).await.unwrap();
    for i in 1..CREATED {
        store.create(&mut record(i, 1, HOUR_MS)).await.unwrap();
        assert!(
            store.load(&busy.id).await.unwrap().is_some(),
            "busy evicted at {i}"
        );
    }
    store.run_pending_tasks();
    assert!(
        store.len() as u64 <= BOUND,
        "{} sessions over a bound of {BOUND}",
        store.len()
    );
    let evicted = store.stats().evictions;
    assert_eq!(evicted + store.len() as u64, CREATED as u64);
}

/// A bound of a few sessions: each created session can be loaded right after. (With
/// the cache split into more segments than the bound, a new session was evicted by its
/// own insert: 48% of them at a bound of 4 on a 2-core machine, found by a probe.)
#[tokio::test]
async fn a_small_bounded_store_keeps_the_session_it_just_created() {
    for bound in [1u64, 2, 4, 16] {
        let store = WheelcacheStore::with_max_sessions(bound);
        for i in 0..500 {
            let mut created = record(i, 1, HOUR_MS);
            store.create(&mut created).await.unwrap();
            assert!(
                store.load(&created.id).await.unwrap().is_some(),
                "bound {bound}: session {i} was gone at once"
            );
        }
        store.run_pending_tasks();
        assert!(
            store.len() as u64 <= bound,
            "bound {bound}: {}",
            store.len()
        );
    }
}
