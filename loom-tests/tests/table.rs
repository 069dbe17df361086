//! The table under loom: races on one key, borrowed reads against removal, and operations
//! racing a grow or a shrink. Each model ends by dropping the cache, so a value never freed
//! fails it through `loom::alloc::Track`.

use std::time::Duration;
use wheelcache_loom_tests::{model, model_body, model_with_branches, thread, Probe};

#[test]
fn insert_vs_insert_same_key() {
    model_body(|| {
        let (cache, _clock, departures) = model(false);
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.insert(1, Probe::new(2)));
        cache.insert(1, Probe::new(1));
        t.join().unwrap();
        let v = cache.get(&1).expect("one value survives").id;
        assert!(v == 1 || v == 2);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            departures.total(),
            1,
            "the loser was reported Replaced once"
        );
    });
}

#[test]
fn insert_vs_remove() {
    model_body(|| {
        let (cache, _clock, departures) = model(false);
        cache.insert(1, Probe::new(1));
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.remove(&1).map(|p| p.id));
        cache.insert(1, Probe::new(2));
        let removed = t.join().unwrap();
        let left = cache.get(&1).map(|p| p.id);
        // Either the remove took the first value (the second stays) or the second.
        match removed {
            Some(1) => assert_eq!(left, Some(2)),
            Some(2) => assert_eq!(left, None),
            other => panic!("remove returned {other:?}"),
        }
        assert_eq!(cache.len(), usize::from(left.is_some()));
        assert_eq!(departures.total(), 2 - usize::from(left.is_some()));
    });
}

/// A pinned reader keeps a borrowed value while another thread removes it and runs
/// maintenance (which seals and flushes the retired batch): the value must not be freed
/// under the reader.
#[test]
fn pinned_get_vs_remove() {
    model_body(|| {
        let (cache, _clock, _departures) = model(false);
        cache.insert(1, Probe::new(7));
        let c2 = cache.clone();
        let t = thread::spawn(move || {
            assert!(c2.invalidate(&1));
            c2.run_pending_tasks();
        });
        {
            let pinned = cache.pin();
            if let Some(v) = pinned.get(&1) {
                v.check();
            }
        }
        t.join().unwrap();
        assert_eq!(cache.len(), 0);
    });
}

/// Inserts on a one-group table: the second crosses the grow threshold while the other
/// thread reads, so lookups run against a table that is migrating.
#[test]
fn operations_during_grow() {
    model_body(|| {
        let (cache, _clock, _departures) = model(true);
        cache.insert(1, Probe::new(1));
        let c2 = cache.clone();
        let t = thread::spawn(move || {
            c2.insert(2, Probe::new(2));
            c2.insert(3, Probe::new(3));
        });
        assert_eq!(
            cache.get(&1).map(|p| p.id),
            Some(1),
            "never lost during a grow"
        );
        if let Some(p) = cache.get(&2) {
            assert_eq!(p.id, 2);
        }
        t.join().unwrap();
        for k in 1..=3 {
            assert_eq!(cache.get(&k).map(|p| p.id), Some(k));
        }
    });
}

/// The table empties and maintenance shrinks it (a migration to a smaller table) while
/// another thread reads and inserts.
#[test]
fn operations_during_shrink() {
    // `run_pending_tasks` loops until the shrink's grace period passes, which takes more
    // scheduling points than loom's default branch limit (1000) allows.
    model_with_branches(10_000, || {
        let (cache, _clock, _departures) = model(true);
        for k in 1..=3 {
            cache.insert(k, Probe::new(k));
        }
        cache.invalidate(&1);
        cache.invalidate(&2);
        let c2 = cache.clone();
        let t = thread::spawn(move || {
            c2.run_pending_tasks(); // shrinks the table
        });
        assert_eq!(
            cache.get(&3).map(|p| p.id),
            Some(3),
            "never lost during a shrink"
        );
        cache.insert(4, Probe::new(4));
        t.join().unwrap();
        assert_eq!(cache.get(&4).map(|p| p.id), Some(4));
        assert_eq!(cache.len(), 2);
        let _ = Duration::ZERO;
    });
}

/// `get_or_insert_with` racing itself: one value wins, both callers see it, the loser's
/// value is dropped once (Track would catch a leak, the cell a double drop's read).
#[test]
fn get_or_insert_with_races_itself() {
    model_body(|| {
        let (cache, _clock, departures) = model(false);
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.get_or_insert_with(1, || Probe::new(2)).id);
        let mine = cache.get_or_insert_with(1, || Probe::new(1)).id;
        let theirs = t.join().unwrap();
        assert_eq!(mine, theirs, "both callers got the stored value");
        assert_eq!(cache.get(&1).map(|p| p.id), Some(mine));
        assert_eq!(departures.total(), 0, "nothing left the cache");
    });
}
