#![cfg(loom)]
//! Loom models of the table, run against the real code through the library's `sync` shim
//! and crossbeam-epoch's own loom support. Run with the command in the README.

use loom::thread;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;
use wheelcache::{Cache, ManualClock};

type Model<V> = Cache<u8, V, BuildHasherDefault<DefaultHasher>>;

/// A deterministic cache: one segment, a fixed hasher, a manual clock.
fn cache<V: Send + Sync + 'static>() -> (Model<V>, ManualClock) {
    let clock = ManualClock::new();
    let cache = Cache::builder()
        .segments(1)
        .clock(clock.clone())
        .hasher(BuildHasherDefault::<DefaultHasher>::default())
        .build();
    (cache, clock)
}

/// Two threads insert the same key: one value survives and `len` is one.
#[test]
fn insert_vs_insert_same_key() {
    loom::model(|| {
        let (cache, _clock) = cache::<u8>();
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.insert(1, 2));
        cache.insert(1, 1);
        t.join().unwrap();
        let v = cache.get(&1);
        assert!(v == Some(1) || v == Some(2), "{v:?}");
        assert_eq!(cache.len(), 1);
    });
}
