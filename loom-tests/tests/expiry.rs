//! An expiry policy's reads under loom: a read that moves a deadline earlier asks for a
//! re-file (a request on the cancel ring, under the node's QUEUED flag) while the entry is
//! removed, or while the wheel fires it at its old deadline. Either way the entry leaves
//! once, its value is dropped once, and nothing is left filed or stored. And `set_ttl`'s
//! swap of a re-timed node racing a removal.

use std::time::{Duration, Instant};
use wheelcache::{Expiry, ManualClock};
use wheelcache_loom_tests::{
    model_body, model_builder, thread, Arc, Departures, Model, Ordering, Probe,
};

const MS: Duration = Duration::from_millis(1);

/// Two milliseconds from creation; a read makes it one from the read.
struct Shorten;

impl Expiry<u8, Probe> for Shorten {
    fn expire_after_create(&self, _: &u8, _: &Probe, _: Instant) -> Option<Duration> {
        Some(2 * MS)
    }

    fn expire_after_read(
        &self,
        _: &u8,
        value: &Probe,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        value.check();
        Some(MS)
    }
}

fn model_shortening() -> (Model, ManualClock, Arc<Departures>) {
    let (builder, clock, departures) = model_builder();
    (builder.expire_after(Shorten).build(), clock, departures)
}

/// A read's re-file request races the entry's removal: one departure (explicit), and the
/// request, served after the removal, detaches rather than files the node.
#[test]
fn read_refile_vs_remove() {
    model_body(|| {
        let (cache, clock, departures) = model_shortening();
        cache.insert(1, Probe::new(1));
        cache.run_pending_tasks(); // filed at 2 ms
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.get(&1).map(|p| p.check()));
        let removed = cache.invalidate(&1);
        t.join().unwrap();
        assert!(removed);
        clock.advance(2 * MS);
        cache.run_pending_tasks();
        assert_eq!(cache.len(), 0);
        assert_eq!(departures.total(), 1);
        assert_eq!(departures.explicit.load(Ordering::SeqCst), 1);
    });
}

/// A read's re-file request is served while the entry is being removed. The maintainer
/// takes the removal's path (detaching the node in one RMW) when a plain load already
/// shows `REMOVED`, and otherwise takes the request with the RMW that reads the remover's
/// flag if it came first; either way the node is detached once and its value dropped once
/// (`Track`). Deciding on the plain load alone, and re-filing a node whose remover had
/// just relied on that pending request, leaks the node: the model fails.
#[test]
fn read_refile_served_during_remove() {
    model_body(|| {
        let (cache, clock, departures) = model_shortening();
        cache.insert(1, Probe::new(1));
        cache.run_pending_tasks(); // filed at 2 ms
        let _ = cache.get(&1).map(|p| p.check()); // its re-file request, for 1 ms
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.run_pending_tasks()); // serves it
        let removed = cache.invalidate(&1);
        t.join().unwrap();
        assert!(removed);
        clock.advance(2 * MS);
        cache.run_pending_tasks();
        assert_eq!(cache.len(), 0);
        assert_eq!(departures.total(), 1);
        assert_eq!(departures.explicit.load(Ordering::SeqCst), 1);
    });
}

/// A read's re-file request races the wheel firing the entry at its old deadline: it
/// expires once, and the request that outlives it only detaches it.
#[test]
fn read_refile_vs_expiry() {
    model_body(|| {
        let (cache, clock, departures) = model_shortening();
        cache.insert(1, Probe::new(1));
        cache.run_pending_tasks(); // filed at 2 ms
        let c2 = cache.clone();
        let clock2 = clock.clone();
        let t = thread::spawn(move || {
            clock2.advance(2 * MS);
            c2.run_pending_tasks();
        });
        let _ = cache.get(&1).map(|p| p.check());
        t.join().unwrap();
        cache.run_pending_tasks();
        assert_eq!(cache.len(), 0);
        assert_eq!(departures.total(), 1);
        assert_eq!(departures.expired.load(Ordering::SeqCst), 1);
    });
}

/// `set_ttl` (a new node with the same key and a clone of the value, swapped in by CAS,
/// the old one retired without a departure) races the entry's removal and the wheel: the
/// remove takes whichever node is in place, so the key leaves exactly once, as
/// `Explicit`, nobody hears a `Replaced`, and every value and clone is dropped once
/// (`Track`: a node the swap forgot to retire fails the model as leaked).
#[test]
fn set_ttl_vs_remove() {
    model_body(|| {
        let (builder, clock, departures) = model_builder();
        let cache: Model = builder.build();
        cache.insert_with_ttl(1, Probe::new(1), 2 * MS);
        cache.run_pending_tasks(); // filed at 2 ms
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.set_ttl(&1, 5 * MS));
        let removed = cache.remove(&1).map(|p| p.check());
        let retimed = t.join().unwrap();
        assert_eq!(
            removed,
            Some(1),
            "the remove finds the old node or its successor"
        );
        clock.advance(5 * MS);
        cache.run_pending_tasks();
        assert_eq!(cache.len(), 0);
        assert_eq!(departures.explicit.load(Ordering::SeqCst), 1);
        assert_eq!(
            departures.total(),
            1,
            "retimed {retimed}: no other departure"
        );
    });
}
