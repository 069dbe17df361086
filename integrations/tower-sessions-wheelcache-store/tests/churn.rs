//! Tens of thousands of sessions created, read, updated and deleted or abandoned through
//! the store, round after round: after each round's expiry the store is empty with no
//! call but reading its length (its reaper did the work), every record is accounted for,
//! and a later round reuses the memory of the first instead of adding to it.
//!
//! "Memory back" is measured two ways: the cache's own accounting (`len` is zero and
//! every inserted record is counted as removed or expired in `stats`, so the cache holds
//! no entry; `run_pending_tasks` then frees every removed value), and the process's
//! resident set (`/proc/self/statm`, Linux only), which must not grow from round to round
//! the way it would if records leaked. This file holds one test, so the process is its own.

use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::SessionStore;
use tower_sessions_wheelcache_store::WheelcacheStore;

const ROUNDS: usize = 3;
const SESSIONS: u64 = 20_000;
const TASKS: u64 = 4;
const EXPIRY_MS: i64 = 500;

/// The process's resident set in KiB (pages of 4 KiB), if `/proc` has it.
fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

/// One session's life: created, read, written twice more, then one in ten deleted and
/// the rest abandoned to their expiry date.
async fn session(store: &WheelcacheStore, n: u64) {
    let mut data = std::collections::HashMap::new();
    data.insert("user".to_string(), format!("user-{n:012}").into());
    let expiry_date = OffsetDateTime::now_utc() + time::Duration::milliseconds(EXPIRY_MS);
    let mut record = Record {
        id: Id::default(),
        data,
        expiry_date,
    };
    store.create(&mut record).await.unwrap();
    for count in 1..=2u64 {
        let mut loaded = store.load(&record.id).await.unwrap().expect("just stored");
        loaded.data.insert("count".to_string(), count.into());
        store.save(&loaded).await.unwrap();
    }
    if n % 10 == 0 {
        store.delete(&record.id).await.unwrap();
    }
}

/// Drives one round from `TASKS` tasks; the resident set once all sessions are created.
async fn round(store: &WheelcacheStore, round: u64) -> Option<u64> {
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (task..SESSIONS).step_by(TASKS as usize) {
                session(&store, round * SESSIONS + i).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    rss_kib()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churned_sessions_all_leave_and_their_memory_is_reused() {
    let store = WheelcacheStore::default();
    let base = rss_kib();
    let (mut peaks, mut afters) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for r in 0..ROUNDS as u64 {
        let t = Instant::now();
        let peak = round(&store, r).await;
        let driven = t.elapsed();
        let live = store.len();
        let created = (r + 1) * SESSIONS;
        let expired = created - created / 10;
        // Waits for the counts too: the reaper counts a turn's expirations when the turn
        // ends, so `len` can read zero a moment before the last of them are counted.
        let limit = Instant::now() + Duration::from_secs(5);
        while (!store.is_empty() || store.stats().expirations < expired) && Instant::now() < limit {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(store.is_empty(), "round {r}: {} sessions left", store.len());
        let stats = store.stats();
        assert_eq!(stats.inserts, created, "round {r}: {stats:?}");
        assert_eq!(stats.updates, 2 * created, "round {r}: {stats:?}");
        assert_eq!(stats.removals, created / 10, "round {r}: {stats:?}");
        assert_eq!(stats.expirations, expired, "round {r}: {stats:?}");
        store.run_pending_tasks(); // frees every value removed before it
        let after = rss_kib();
        println!(
            "round {r}: {SESSIONS} sessions in {driven:?} ({live} live at the end), \
             empty {:?} after; RSS {base:?} KiB before any, {peak:?} at the peak, {after:?} after",
            t.elapsed() - driven
        );
        peaks.push(peak);
        afters.push(after);
    }
    println!("{ROUNDS} rounds in {:?}", started.elapsed());
    if let (Some(base), Some(peak), Some(first), Some(last)) =
        (base, peaks[0], afters[0], afters[ROUNDS - 1])
    {
        // A leak would add a round's growth each round; reuse adds about nothing.
        let growth = peak.saturating_sub(base).max(1024);
        assert!(
            last.saturating_sub(first) < growth / 2,
            "RSS grew {} KiB from round 1 to round {ROUNDS} (a round's growth: {growth} KiB)",
            last.saturating_sub(first)
        );
    }
}
