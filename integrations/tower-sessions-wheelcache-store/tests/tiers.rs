//! Two tiers: `CachingSessionStore<WheelcacheStore, RedisStore>`, memory in front of a real
//! Redis server, which the test also reads and writes directly (with the same `fred`
//! client the Redis store uses) to see which tier answered.
//!
//! The server is named by `WHEELCACHE_REDIS_URL` (e.g. `redis://127.0.0.1:6379`). Unset,
//! each test says it was skipped and passes, so `cargo test --workspace` passes on a
//! machine without Redis; set (as CI sets it), a server that cannot be reached fails them.
//! Each test deletes the records it made.

use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;
use tower_sessions::CachingSessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::SessionStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, KeysInterface, Pool};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_wheelcache_store::WheelcacheStore;

const URL_VAR: &str = "WHEELCACHE_REDIS_URL";

/// A pool connected to the server at `url`; panics if it cannot connect within 10 s.
async fn connect(url: &str) -> Pool {
    let config = Config::from_url(url).unwrap_or_else(|e| panic!("{URL_VAR}={url}: {e}"));
    let pool = Pool::new(config, None, None, None, 2).expect("a Redis pool");
    let init = tokio::time::timeout(Duration::from_secs(10), pool.init()).await;
    match init {
        Ok(Ok(_connection_task)) => pool,
        Ok(Err(e)) => panic!("{URL_VAR}={url} is set but Redis is unreachable: {e}"),
        Err(_) => panic!("{URL_VAR}={url} is set but Redis did not answer within 10 s"),
    }
}

fn record(tag: &str) -> Record {
    let mut data = HashMap::new();
    data.insert("tag".to_string(), tag.into());
    Record {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + time::Duration::minutes(10),
    }
}

fn tag(record: &Record) -> &str {
    record.data["tag"].as_str().expect("a tag")
}

/// Whether Redis itself holds a record for `id` (the Redis store's key is the id's text).
async fn in_redis(redis: &Pool, id: Id) -> bool {
    let n: i64 = redis.exists(id.to_string()).await.expect("EXISTS");
    n == 1
}

type Tiered = CachingSessionStore<WheelcacheStore, RedisStore<Pool>>;

/// The two tiers and a direct line to Redis; `None` (the test is skipped) if
/// `WHEELCACHE_REDIS_URL` is unset.
async fn tiers(test: &str) -> Option<(Tiered, WheelcacheStore, Pool)> {
    let Ok(url) = std::env::var(URL_VAR) else {
        println!("{test} skipped: {URL_VAR} is not set (e.g. {URL_VAR}=redis://127.0.0.1:6379)");
        return None;
    };
    let redis = connect(&url).await;
    let memory = WheelcacheStore::default();
    let tiers = CachingSessionStore::new(memory.clone(), RedisStore::new(redis.clone()));
    println!("{test}: against {url}");
    Some((tiers, memory, redis))
}

/// Deletes `ids` through both tiers and checks Redis no longer holds them.
async fn clean_up(tiers: &Tiered, redis: &Pool, ids: &[Id]) {
    for id in ids {
        tiers.delete(id).await.unwrap();
        assert!(!in_redis(redis, *id).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_served_by_the_memory_tier() {
    let Some((tiers, memory, redis)) = tiers("reads_are_served_by_the_memory_tier").await else {
        return;
    };
    // A created record is in both tiers, and Redis expires it at its expiry date.
    let mut a = record("a");
    tiers.create(&mut a).await.unwrap();
    assert!(in_redis(&redis, a.id).await, "create reached Redis");
    assert_eq!(memory.load(&a.id).await.unwrap().as_ref(), Some(&a));
    let ttl: i64 = redis.ttl(a.id.to_string()).await.expect("TTL");
    assert!(
        (1..=600).contains(&ttl),
        "Redis TTL {ttl} s for a 10-minute record"
    );

    // Deleted behind the cache's back in Redis, it still loads, as a memory hit.
    let _: i64 = redis.del(a.id.to_string()).await.expect("DEL");
    assert!(!in_redis(&redis, a.id).await);
    let hits = memory.stats().hits;
    assert_eq!(tiers.load(&a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(memory.stats().hits, hits + 1, "served by the memory tier");
    clean_up(&tiers, &redis, &[a.id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_falls_through_to_redis() {
    let Some((tiers, memory, redis)) = tiers("a_miss_falls_through_to_redis").await else {
        return;
    };
    // A record only Redis holds is loaded from it...
    let mut b = record("b");
    RedisStore::new(redis.clone()).create(&mut b).await.unwrap();
    assert!(memory.load(&b.id).await.unwrap().is_none(), "only in Redis");
    let misses = memory.stats().misses;
    let loaded = tiers.load(&b.id).await.unwrap().expect("loaded from Redis");
    assert_eq!(tag(&loaded), "b");
    assert_eq!(memory.stats().misses, misses + 1, "missed in memory first");
    // ...and the memory tier keeps it from then on.
    let _: i64 = redis.del(b.id.to_string()).await.expect("DEL");
    let again = tiers.load(&b.id).await.unwrap();
    assert_eq!(
        again.as_ref().map(tag),
        Some("b"),
        "kept in memory after the miss"
    );
    clean_up(&tiers, &redis, &[b.id]).await;
    assert!(memory.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_and_deletes_reach_both_tiers() {
    let Some((tiers, memory, redis)) = tiers("saves_and_deletes_reach_both_tiers").await else {
        return;
    };
    let mut c = record("c");
    tiers.create(&mut c).await.unwrap();
    c.data.insert("tag".to_string(), "c2".into());
    tiers.save(&c).await.unwrap();
    let from_redis = RedisStore::new(redis.clone()).load(&c.id).await.unwrap();
    assert_eq!(
        from_redis.as_ref().map(tag),
        Some("c2"),
        "save reached Redis"
    );
    let from_memory = memory.load(&c.id).await.unwrap();
    assert_eq!(
        from_memory.as_ref().map(tag),
        Some("c2"),
        "save reached memory"
    );

    tiers.delete(&c.id).await.unwrap();
    assert!(!in_redis(&redis, c.id).await, "delete reached Redis");
    assert!(memory.is_empty(), "delete reached memory");
    assert!(tiers.load(&c.id).await.unwrap().is_none());
}
