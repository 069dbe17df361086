//! The table's migration under loom, one model per hard case of the protocol (see the
//! `table` module's essay): an insert racing a migration, a remove racing one, a reader
//! that loaded the old table, slot reuse after a remove, and remove-by-node (expiry)
//! during a migration. Tables are tiny: two-slot groups under loom, one group to start,
//! growing at the second entry (`tiny_tables_for_tests`).

use std::hash::BuildHasher;
use std::time::Duration;
use wheelcache_loom_tests::{model, model_with_branches, thread, Fixed, Ordering, Probe};

const MS: Duration = Duration::from_millis(1);

/// Two keys whose home is the same group in a table of `groups` groups, computed the way
/// the table does (one segment, so every bit of the hash is the table's): the low 32 bits
/// scaled to the table.
fn same_home(groups: u64, count: usize) -> Vec<u8> {
    let hasher = Fixed::default();
    let home = |k: u8| ((hasher.hash_one(k) & 0xffff_ffff) * groups) >> 32;
    let mut by_home: std::collections::HashMap<u64, Vec<u8>> = Default::default();
    for k in 1..=u8::MAX {
        let keys = by_home.entry(home(k)).or_default();
        keys.push(k);
        if keys.len() == count {
            return keys.clone();
        }
    }
    unreachable!("255 keys always share a home in a small table")
}

/// An insert racing the migration another insert starts: nothing is lost, each key is
/// stored once.
#[test]
fn insert_racing_a_migration() {
    model_with_branches(10_000, || {
        let (cache, _clock, departures) = model(true);
        cache.insert(1, Probe::new(1));
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.insert(2, Probe::new(2))); // crosses the threshold
        cache.insert(3, Probe::new(3));
        t.join().unwrap();
        for k in [1, 2, 3] {
            assert_eq!(cache.get(&k).map(|p| p.id), Some(k), "key {k} lost");
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(departures.total(), 0);
    });
}

/// A remove racing a migration: the removed key is gone for good (not resurrected by the
/// copy), the other key survives, one departure.
#[test]
fn remove_racing_a_migration() {
    model_with_branches(10_000, || {
        let (cache, _clock, departures) = model(true);
        cache.insert(1, Probe::new(1));
        cache.insert(2, Probe::new(2)); // starts a migration
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.invalidate(&1));
        cache.insert(3, Probe::new(3)); // copies
        assert!(t.join().unwrap());
        assert_eq!(cache.get(&1).map(|p| p.id), None, "a removed key came back");
        assert_eq!(cache.get(&2).map(|p| p.id), Some(2));
        assert_eq!(cache.get(&3).map(|p| p.id), Some(3));
        assert_eq!(cache.len(), 2);
        assert_eq!(departures.explicit.load(Ordering::SeqCst), 1);
        assert_eq!(departures.total(), 1);
    });
}

/// A pinned reader that loaded the old table keeps reading it while another thread copies
/// it, removes the entry from the new table and runs maintenance (which frees it when it
/// may): the reader never reads a freed value (the Probe's cell would report the race).
#[test]
fn reader_that_loaded_the_old_table() {
    model_with_branches(10_000, || {
        let (cache, _clock, _departures) = model(true);
        cache.insert(1, Probe::new(1));
        cache.insert(2, Probe::new(2)); // starts a migration
        let c2 = cache.clone();
        let t = thread::spawn(move || {
            assert!(c2.invalidate(&1)); // copies the group first, then removes
            c2.run_pending_tasks();
        });
        {
            let pinned = cache.pin();
            if let Some(v) = pinned.get(&1) {
                v.check();
            }
            assert_eq!(pinned.get(&2).map(|p| p.check()), Some(2), "never lost");
        }
        t.join().unwrap();
        assert_eq!(cache.len(), 1);
    });
}

/// Slot reuse after a remove: in a group full of one home's keys (the third key lives in
/// the next group, passing the home), a remove frees a home slot that an insert of the
/// displaced key's neighbour reuses at once, while a reader looks for the displaced key:
/// it is found throughout (the overflow count keeps the lookup going past the freed slot).
#[test]
fn slot_reuse_after_a_remove() {
    model_with_branches(10_000, || {
        // Three keys with one home in a three-group table, plus one more for that home.
        let keys = same_home(3, 4);
        let (cache, _clock, _departures) = model(true);
        // One grow (at the 2nd insert) takes the table to three groups; the third key is
        // then displaced into the next group.
        for &k in &keys[..3] {
            cache.insert(k, Probe::new(k));
        }
        cache.run_pending_tasks();
        let (a, displaced, fresh) = (keys[0], keys[2], keys[3]);
        let c2 = cache.clone();
        let t = thread::spawn(move || {
            assert!(c2.invalidate(&a));
            c2.insert(fresh, Probe::new(fresh)); // may reuse `a`'s slot
        });
        assert_eq!(
            cache.get(&displaced).map(|p| p.id),
            Some(displaced),
            "the displaced key was missed"
        );
        t.join().unwrap();
        assert_eq!(cache.get(&displaced).map(|p| p.id), Some(displaced));
        assert_eq!(cache.get(&fresh).map(|p| p.id), Some(fresh));
        assert_eq!(cache.get(&a).map(|p| p.id), None);
    });
}

/// Remove by node during a migration: the wheel expires an entry (finding it by pointer
/// from its stored hash) while an insert migrates the table. Exactly one expiry, heard
/// once, and the other entries survive.
#[test]
fn remove_by_node_during_a_migration() {
    model_with_branches(10_000, || {
        let (cache, clock, departures) = model(true);
        cache.insert_with_ttl(1, Probe::new(1), MS);
        cache.run_pending_tasks(); // scheduled in the wheel
        cache.insert(2, Probe::new(2)); // starts a migration
        clock.advance(MS);
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.run_pending_tasks()); // expires 1
        cache.insert(3, Probe::new(3)); // copies
        t.join().unwrap();
        cache.run_pending_tasks();
        assert_eq!(cache.get(&1).map(|p| p.id), None);
        assert_eq!(cache.get(&2).map(|p| p.id), Some(2));
        assert_eq!(cache.get(&3).map(|p| p.id), Some(3));
        assert_eq!(cache.len(), 2);
        assert_eq!(departures.expired.load(Ordering::SeqCst), 1);
        assert_eq!(departures.total(), 1);
    });
}

/// A migration copying a group with a displaced entry (one living past its home): with
/// another insert forcing the grow and a reader looking for the displaced key, the key is
/// never lost. (Planting "skip entries that live past their home" in the copy fails this.)
#[test]
fn displaced_entries_survive_a_migration() {
    model_with_branches(10_000, || {
        let keys = same_home(3, 3);
        let other = (1..=u8::MAX)
            .find(|k| !keys.contains(k))
            .expect("a fourth key");
        let (cache, _clock, _departures) = model(true);
        for &k in &keys {
            cache.insert(k, Probe::new(k));
        }
        cache.run_pending_tasks(); // three groups, the last key displaced
        let displaced = keys[2];
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.insert(other, Probe::new(other))); // grows again
        let seen = cache.get(&displaced).map(|p| p.id);
        assert_eq!(seen, Some(displaced), "lost while being copied");
        t.join().unwrap();
        cache.run_pending_tasks();
        for &k in &keys {
            assert_eq!(
                cache.get(&k).map(|p| p.id),
                Some(k),
                "key {k} lost by the migration"
            );
        }
    });
}

/// Iteration racing migrations that inserts force (the first grow may be deferred while
/// the scan runs, the second cannot: no free slot): the stable key is yielded exactly
/// once, the inserted ones at most once each.
#[test]
fn iteration_racing_a_migration() {
    model_with_branches(20_000, || {
        let (cache, _clock, _departures) = model(true);
        cache.insert(1, Probe::new(1));
        let c2 = cache.clone();
        let t = thread::spawn(move || {
            c2.insert(2, Probe::new(2));
            c2.insert(3, Probe::new(3));
        });
        let mut seen = [0usize; 4];
        for (k, p) in cache.pin().iter() {
            assert_eq!(p.check(), *k);
            seen[usize::from(*k)] += 1;
        }
        t.join().unwrap();
        assert_eq!(seen[1], 1, "the stable key yielded {} times", seen[1]);
        assert!(
            seen[2] <= 1 && seen[3] <= 1,
            "a key yielded twice: {seen:?}"
        );
    });
}
