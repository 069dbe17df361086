//! The example server on a `WheelcacheStore`, driven over real HTTP on loopback by clients
//! that keep cookies as browsers do: what a client sees, and what the store holds.

mod common;

use common::{app, bare_client, browser, call, serve, session_cookie};
use reqwest::header::COOKIE;
use std::time::{Duration, Instant};
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::Expiry;
use tower_sessions_wheelcache_store::WheelcacheStore;

fn half_hour() -> Expiry {
    Expiry::OnInactivity(CookieDuration::minutes(30))
}

/// Waits (without touching the store but to read its length) until it is empty; the time
/// that took, or `None` if it was still not empty after `limit`.
async fn until_empty(store: &WheelcacheStore, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if store.is_empty() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.is_empty().then(|| start.elapsed())
}

/// The store's expiration count once it reaches `expected` (or after a second): the reaper
/// counts a turn's expirations when the turn ends, so the store can read empty a moment
/// before the last of them are counted.
async fn expirations_reaching(store: &WheelcacheStore, expected: u64) -> u64 {
    let start = Instant::now();
    while store.stats().expirations < expected && start.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store.stats().expirations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_round_trip_keeps_each_sessions_state() {
    let store = WheelcacheStore::default();
    let base = serve(app(store.clone(), half_hour())).await;
    let (alice, bob) = (browser(), browser());
    for expected in ["1", "2", "3"] {
        let (status, body) = call(alice.post(format!("{base}/count"))).await;
        assert_eq!((status, body.as_str()), (200, expected));
    }
    // A second browser has its own session and counter.
    assert_eq!(
        call(bob.post(format!("{base}/count"))).await,
        (200, "1".into())
    );
    assert_eq!(
        call(alice.post(format!("{base}/count"))).await,
        (200, "4".into())
    );
    // A client that drops the cookie starts over, in a third session.
    assert_eq!(
        call(bare_client().post(format!("{base}/count"))).await,
        (200, "1".into())
    );
    assert_eq!(store.len(), 3);
    assert_eq!(store.stats().inserts, 3, "one record created per session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_names_the_session_and_logout_deletes_its_record() {
    let store = WheelcacheStore::default();
    let base = serve(app(store.clone(), half_hour())).await;
    let alice = browser();
    assert_eq!(call(alice.get(format!("{base}/whoami"))).await.0, 401);
    let login = alice
        .post(format!("{base}/login"))
        .body("alice")
        .send()
        .await
        .expect("login answers");
    let cookie = session_cookie(&login).expect("login sets the session cookie");
    assert_eq!(login.text().await.unwrap(), "welcome alice");
    assert_eq!(
        call(alice.get(format!("{base}/whoami"))).await,
        (200, "alice".into())
    );
    assert_eq!(store.len(), 1);

    // The cookie alone is the credential: another client presenting it is alice.
    let thief = bare_client()
        .get(format!("{base}/whoami"))
        .header(COOKIE, format!("id={cookie}"));
    assert_eq!(call(thief).await, (200, "alice".into()));

    assert_eq!(
        call(alice.post(format!("{base}/logout"))).await,
        (200, "bye".into())
    );
    // Deleted at once: no maintenance, no wait.
    assert!(store.is_empty(), "logout leaves {} records", store.len());
    assert_eq!(store.stats().removals, 1);
    assert_eq!(call(alice.get(format!("{base}/whoami"))).await.0, 401);
    // The old cookie, replayed, finds nothing on the server either.
    let replay = bare_client()
        .get(format!("{base}/whoami"))
        .header(COOKIE, format!("id={cookie}"));
    assert_eq!(call(replay).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_replaces_the_session_id_it_came_in_with() {
    let store = WheelcacheStore::default();
    let base = serve(app(store.clone(), half_hour())).await;
    let client = bare_client();
    let before = client.post(format!("{base}/count")).send().await.unwrap();
    let before = session_cookie(&before).expect("the counter sets a cookie");
    let login = client
        .post(format!("{base}/login"))
        .header(COOKIE, format!("id={before}"))
        .body("mallory")
        .send()
        .await
        .unwrap();
    let after = session_cookie(&login).expect("login sets a cookie");
    assert_ne!(before, after);
    // The id from before the login no longer names any session.
    let old = client
        .get(format!("{base}/whoami"))
        .header(COOKIE, format!("id={before}"));
    assert_eq!(call(old).await.0, 401);
    assert_eq!(store.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_session_is_gone_after_its_expiry() {
    let store = WheelcacheStore::default();
    let base = serve(app(
        store.clone(),
        Expiry::OnInactivity(CookieDuration::seconds(1)),
    ))
    .await;
    let first = bare_client()
        .post(format!("{base}/count"))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let cookie = session_cookie(&first).expect("a session cookie");
    assert_eq!(first.text().await.unwrap(), "1");
    let again = bare_client()
        .post(format!("{base}/count"))
        .header(COOKIE, format!("id={cookie}"));
    assert_eq!(
        call(again).await,
        (200, "2".into()),
        "alive within its second"
    );
    assert_eq!(store.len(), 1);

    // No request touches the store from here: the wheel and the reaper remove it.
    let waited = until_empty(&store, Duration::from_secs(5)).await;
    let gone = waited.map(|_| started.elapsed());
    assert!(gone.is_some(), "the session outlived its expiry by 4 s");
    assert!(
        gone.unwrap() >= Duration::from_millis(900),
        "gone early: {gone:?}"
    );
    assert_eq!(expirations_reaching(&store, 1).await, 1);

    // Its cookie, replayed, starts a new session: the old count is gone.
    let replay = bare_client()
        .post(format!("{base}/count"))
        .header(COOKIE, format!("id={cookie}"));
    assert_eq!(call(replay).await, (200, "1".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_sessions_all_expire() {
    const CLIENTS: usize = 2_000;
    const PARALLEL: usize = 32;
    let store = WheelcacheStore::default();
    let base = serve(app(
        store.clone(),
        Expiry::OnInactivity(CookieDuration::seconds(1)),
    ))
    .await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..PARALLEL {
        let base = base.clone();
        tasks.spawn(async move {
            // Each client is a fresh browser: one session, two requests.
            for _ in (worker..CLIENTS).step_by(PARALLEL) {
                let client = browser();
                for expected in ["1", "2"] {
                    let (status, body) = call(client.post(format!("{base}/count"))).await;
                    assert_eq!((status, body.as_str()), (200, expected));
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a client task");
    }
    let driven = started.elapsed();
    let stats = store.stats();
    assert_eq!(stats.inserts, CLIENTS as u64, "one record per client");
    assert!(!store.is_empty());
    let waited = until_empty(&store, Duration::from_secs(10)).await;
    assert!(waited.is_some(), "{} sessions left after 10 s", store.len());
    assert_eq!(
        expirations_reaching(&store, CLIENTS as u64).await,
        CLIENTS as u64
    );
    println!("{CLIENTS} HTTP sessions in {driven:?}; the store was empty {waited:?} later");
}
