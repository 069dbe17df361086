//! The wheel hand-off under loom: writers scheduling and cancelling while another thread
//! advances the wheel, and entries replaced or removed while their timer fires.

use std::time::Duration;
use wheelcache_loom_tests::{model, model_body, model_with_bound, thread, Ordering, Probe};

const MS: Duration = Duration::from_millis(1);

/// A writer schedules (insert with TTL) while another thread runs maintenance: the
/// request is never stranded — after both, maintenance at the deadline expires it.
#[test]
fn schedule_vs_advance() {
    model_body(|| {
        let (cache, clock, departures) = model(false);
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.run_pending_tasks());
        cache.insert_with_ttl(1, Probe::new(1), 2 * MS);
        t.join().unwrap();
        assert_eq!(cache.get(&1).map(|p| p.id), Some(1));
        clock.advance(2 * MS);
        cache.run_pending_tasks();
        assert_eq!(cache.len(), 0);
        assert_eq!(departures.total(), 1);
    });
}

/// Remove races the timer firing: exactly one departure, the value dropped once.
#[test]
fn remove_vs_expiry() {
    model_body(|| {
        let (cache, clock, departures) = model(false);
        cache.insert_with_ttl(1, Probe::new(1), MS);
        cache.run_pending_tasks(); // scheduled in the wheel
        clock.advance(MS);
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.run_pending_tasks());
        let removed = cache.remove(&1);
        t.join().unwrap();
        assert!(removed.is_none(), "an expired entry is never returned");
        assert_eq!(cache.len(), 0);
        assert_eq!(departures.total(), 1, "one departure, whoever won");
    });
}

/// An entry is replaced while its old timer fires: the old value is not resurrected, the
/// new one is not expired early.
#[test]
fn replace_vs_expiry() {
    model_body(|| {
        let (cache, clock, departures) = model(false);
        cache.insert_with_ttl(1, Probe::new(1), MS);
        cache.run_pending_tasks();
        clock.advance(MS);
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.run_pending_tasks());
        cache.insert_with_ttl(1, Probe::new(2), 10 * MS);
        t.join().unwrap();
        cache.run_pending_tasks();
        assert_eq!(
            cache.get(&1).map(|p| p.id),
            Some(2),
            "the new value survives"
        );
        assert_eq!(cache.len(), 1);
        assert_eq!(departures.total(), 1, "the old value left once");
        assert_eq!(departures.expired.load(Ordering::SeqCst), 1);
    });
}

/// A remove cancels a timer while another thread advances: the cancelled entry does not
/// fire later, and nothing is reported twice.
#[test]
fn cancel_vs_advance() {
    model_body(|| {
        let (cache, clock, departures) = model(false);
        cache.insert_with_ttl(1, Probe::new(1), 5 * MS);
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.run_pending_tasks());
        assert!(cache.invalidate(&1));
        t.join().unwrap();
        clock.advance(5 * MS);
        cache.run_pending_tasks();
        assert_eq!(departures.total(), 1);
        assert_eq!(departures.explicit.load(Ordering::SeqCst), 1);
    });
}

/// Removals overflow the cancel ring (two slots under loom) while another thread runs a
/// full turn: the third request is boxed on the overflow stack instead of waiting for the
/// lock, and every entry still leaves once, each value dropped once, none fired later.
#[test]
fn overflowed_cancels_vs_full_turn() {
    // Three removals and a full turn take more scheduling points than the default limit,
    // and at preemption bound 2 the model ran past 7 minutes: bound 1, as the listener
    // models (one preemption already puts the third removal inside the full turn).
    model_with_bound(1, 10_000, || {
        let (cache, clock, departures) = model(false);
        for k in 0..3 {
            cache.insert_with_ttl(k, Probe::new(k), 5 * MS);
        }
        cache.run_pending_tasks(); // all three scheduled in the wheel
        let c2 = cache.clone();
        let t = thread::spawn(move || c2.run_pending_tasks());
        for k in 0..3 {
            assert!(cache.invalidate(&k));
        }
        t.join().unwrap();
        cache.run_pending_tasks();
        assert_eq!(cache.len(), 0);
        clock.advance(5 * MS);
        cache.run_pending_tasks();
        assert_eq!(departures.total(), 3, "each entry left once");
        assert_eq!(departures.explicit.load(Ordering::SeqCst), 3, "none fired");
    });
}
