//! The `logging` feature: every panic of user code that the cache catches and goes on from
//! is reported through the `log` facade (a listener's, a value's `Drop` while freeing), and
//! `CacheStats` round-trips through serde with the `serde` feature.

use std::sync::{Mutex, OnceLock};
use wheelcache::{Cache, CacheStats};

/// The records logged so far (this test binary's logger).
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Collect;

impl log::Log for Collect {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let entry = (
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        );
        RECORDS.lock().unwrap().push(entry);
    }
    fn flush(&self) {}
}

fn records() -> &'static Mutex<Vec<(log::Level, String, String)>> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        log::set_logger(&Collect).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
    &RECORDS
}

fn logged_containing(what: &str) -> Vec<(log::Level, String, String)> {
    records()
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, message)| message.contains(what))
        .cloned()
        .collect()
}

#[test]
fn a_panicking_listener_is_reported_and_the_cache_goes_on() {
    let _ = records();
    let cache: Cache<u32, u32> = Cache::builder()
        .eviction_listener(|_, v, _| {
            if *v == 13 {
                panic!("listener says no to 13");
            }
        })
        .build();
    cache.insert(1, 13);
    assert_eq!(cache.remove(&1), Some(13));
    cache.insert(2, 2);
    assert_eq!(cache.get(&2), Some(2), "the cache goes on");
    let found = logged_containing("listener says no to 13");
    assert_eq!(found.len(), 1, "{found:?}");
    let (level, target, message) = &found[0];
    assert_eq!((*level, target.as_str()), (log::Level::Error, "wheelcache"));
    assert!(message.contains("eviction listener"), "{message}");
}

/// A value whose `Drop` panics.
struct Grenade(u32);

impl Drop for Grenade {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("grenade {} went off", self.0);
        }
    }
}

#[test]
fn a_panicking_value_drop_while_freeing_is_reported() {
    let _ = records();
    let cache: Cache<u32, Grenade> = Cache::new();
    cache.insert(7, Grenade(7));
    assert!(cache.invalidate(&7));
    // Freed after its grace period by a later turn; run_pending_tasks frees what is ready.
    cache.run_pending_tasks();
    let found = logged_containing("grenade 7 went off");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].2.contains("Drop"), "{}", found[0].2);
}

#[test]
fn stats_round_trip_through_serde() {
    let cache: Cache<u32, u32> = Cache::new();
    cache.insert(1, 1);
    let _ = cache.get(&1);
    let _ = cache.get(&2);
    let stats = cache.stats();
    let json = serde_json::to_string(&stats).unwrap();
    assert!(
        json.contains("\"hits\":1") && json.contains("\"misses\":1"),
        "{json}"
    );
    let back: CacheStats = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stats);
}
