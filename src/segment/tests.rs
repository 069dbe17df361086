//! Unit tests for `segment`: the hand-off between writers and the maintainer (the stack,
//! the cancel ring, the backlog), when a segment is due, a turn's budget, full turns, and
//! the `owed` counters. Every test ends by dropping its segment and checking that each
//! node it made was freed exactly once.

use super::*;
use crate::clock::NEVER;
use crate::entry::layout::NodeBox;
use crate::entry::node::{HOLDS, QUEUED, RELEASED, SPARE, UNLINKED};
use crate::entry::RemovalCause;
use crate::intrusive::ListLinks;
use crate::table::Insert;
use crossbeam_epoch::Guard;

/// The tick every test's segment starts at.
const T0: u64 = 1000;

/// A value that counts its drops.
#[derive(Debug)]
struct Counted(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

type P<'g> = NodePtr<'g, u64, Counted>;

/// An unbounded segment at [`T0`], and its values' drop count.
struct Fixture {
    seg: Segment<u64, Counted>,
    drops: Arc<std::sync::atomic::AtomicUsize>,
}

impl Fixture {
    fn new() -> Self {
        let limits = Arc::new(Limits::new(None, false, None));
        Self {
            seg: Segment::new(0, Tuning::DEFAULT, T0, limits),
            drops: Arc::default(),
        }
    }

    /// Drops the segment: every one of the `made` nodes must be freed, once.
    fn finish(self, made: usize) {
        let drops = self.drops.clone();
        drop(self.seg);
        let freed = drops.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(freed, made, "nodes freed");
    }

    /// Inserts key `k` with `deadline` (a plain node) and queues its request, as a write does.
    fn insert<'g>(&self, k: u64, deadline: u64, guard: &'g Guard) -> P<'g> {
        let node = NodeBox::new(hash(k), k, Counted(self.drops.clone()), deadline, None);
        match self.seg.table.insert(node, |a, b| a == b, |_| false, guard) {
            Insert::New(p) => {
                self.seg.linked(p);
                p
            }
            _ => panic!("key {k} was not new"),
        }
    }

    /// Removes key `k` as a writer does (its remover, holding nothing for a listener).
    fn remove<'g>(&self, k: u64, guard: &'g Guard) -> P<'g> {
        let p = self.seg.table.remove(hash(k), |n| n.key == k, guard);
        let p = p.expect("present");
        self.seg.removed(p, false);
        p
    }

    fn turn(&self, now: u64, mode: Mode, guard: &Guard) -> Turn {
        let mut out = Vec::new();
        let turn = self
            .seg
            .maintain(now, mode, guard, &mut Sink::new(false, &mut out));
        assert!(out.is_empty(), "held departures without asking");
        turn
    }

    fn present(&self, k: u64, guard: &Guard) -> bool {
        self.seg
            .table
            .lookup(hash(k), |n| n.key == k, guard)
            .is_some()
    }

    /// Nodes on the wheel (its links checked on the way).
    fn wheel_len(&self) -> usize {
        let maint = sync::lock(&self.seg.maint);
        // SAFETY: scheduled nodes are alive; we hold the maintenance lock.
        unsafe { maint.wheel.walk() }.len()
    }

    /// Requests on the cancel ring.
    fn ring(&self) -> usize {
        let cancels = self.seg.handoff.cancels.iter();
        cancels
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count()
    }

    fn queued(&self) -> usize {
        self.seg.handoff.queued.load(Ordering::Relaxed)
    }
}

/// A table hash (48 bits, as `Cache::locate` makes them) for key `k`.
fn hash(k: u64) -> u64 {
    k.wrapping_mul(0x9E37_79B9_7F4A_7C15) & crate::table::HASH_MASK
}

/// Filed in the wheel, as a flag bit for the assertions below (the wheel itself keeps it
/// in the node's links: see `Wheel::is_scheduled`).
const SCHEDULED: u64 = SPARE;

/// The node's lifecycle flags, with [`SCHEDULED`] set while it is on a wheel list.
fn flags(p: P<'_>) -> u64 {
    // SAFETY: `with_links`' 1: the tests read flags of nodes they hold, alive and with
    // their provenance; its 2: the fixture's tests run their turns on this thread, so no
    // other access to the links runs during this read, and the closure only reads.
    let filed = unsafe { WheelField::with_links(p.as_ptr(), |l| !l.prev.is_null()) };
    (p.meta.load(Ordering::Relaxed) & !NEVER) | if filed { SCHEDULED } else { 0 }
}

fn scheduled(nodes: &[P<'_>]) -> usize {
    nodes.iter().filter(|&&p| flags(p) & SCHEDULED != 0).count()
}

#[test]
fn a_linked_node_is_scheduled_by_the_next_turn_and_expires_at_its_deadline() {
    let f = Fixture::new();
    {
        let guard = crossbeam_epoch::pin();
        let p = f.insert(1, T0 + 100, &guard);
        assert_eq!(flags(p) & (QUEUED | SCHEDULED), QUEUED, "on the stack");
        assert_eq!((f.queued(), f.wheel_len()), (1, 0));
        let plain = f.insert(2, NEVER, &guard);
        assert_eq!(flags(plain), 0, "no deadline, no extension: never queued");
        assert_eq!(f.queued(), 1);
        let t = f.turn(T0, Mode::Write, &guard);
        assert!(t.drained && !t.due_left && t.expired == 0);
        assert_eq!(flags(p) & (QUEUED | SCHEDULED), SCHEDULED, "filed");
        assert_eq!((f.queued(), f.wheel_len()), (0, 1));
        assert_eq!(
            f.turn(T0 + 99, Mode::Write, &guard).expired,
            0,
            "not before its tick"
        );
        assert_eq!(f.wheel_len(), 1);
        assert_eq!(f.turn(T0 + 100, Mode::Write, &guard).expired, 1);
        assert!(!f.present(1, &guard) && f.present(2, &guard));
        assert_eq!(
            flags(p) & (HOLDS | SCHEDULED | REMOVED),
            HOLDS | REMOVED,
            "retired"
        );
        assert_eq!(f.wheel_len(), 0);
    }
    f.finish(2);
}

#[test]
fn a_node_removed_before_its_request_is_drained_never_meets_the_wheel() {
    let f = Fixture::new();
    {
        let guard = crossbeam_epoch::pin();
        let p = f.insert(1, T0 + 100, &guard);
        f.remove(1, &guard);
        let want = QUEUED | REMOVED | UNLINKED | RELEASED;
        assert_eq!(flags(p), want, "the request is still on the stack");
        assert_eq!(f.ring(), 0, "no cancellation: the drainer sees REMOVED");
        let t = f.turn(T0, Mode::Write, &guard);
        assert_eq!(
            flags(p),
            HOLDS | REMOVED,
            "detached by the drainer, never scheduled"
        );
        assert_eq!((t.expired, f.wheel_len()), (0, 0));
        assert_eq!(f.turn(T0 + 200, Mode::Write, &guard).expired, 0);
        // A node that never meets the maintainer is detached by its remover at once.
        let plain = f.insert(2, NEVER, &guard);
        f.remove(2, &guard);
        assert_eq!(flags(plain), HOLDS | REMOVED);
    }
    f.finish(2);
}

#[test]
fn removing_a_scheduled_node_goes_through_the_cancel_ring() {
    let f = Fixture::new();
    {
        let guard = crossbeam_epoch::pin();
        let p = f.insert(1, T0 + 100, &guard);
        f.turn(T0, Mode::Write, &guard);
        assert_eq!(f.wheel_len(), 1);
        f.remove(1, &guard);
        assert_eq!((f.ring(), f.queued(), f.wheel_len()), (1, 1, 1));
        assert_eq!(
            flags(p) & (QUEUED | SCHEDULED | DETACHED),
            QUEUED | SCHEDULED
        );
        let t = f.turn(T0, Mode::Write, &guard);
        assert_eq!((f.ring(), f.wheel_len(), t.expired), (0, 0, 0));
        assert_eq!(flags(p), HOLDS | REMOVED, "cancelled, detached, retired");
        assert_eq!(f.turn(T0 + 100, Mode::Write, &guard).expired, 0);
    }
    f.finish(1);
}

#[test]
fn a_segment_is_due_after_a_batch_of_requests_or_a_new_tick() {
    let f = Fixture::new();
    let batch = HANDOFF_BATCH as u64;
    {
        let guard = crossbeam_epoch::pin();
        assert!(f.seg.due(T0), "never maintained yet");
        f.turn(T0, Mode::Write, &guard);
        assert!(!f.seg.due(T0) && f.seg.due(T0 + 1), "due at the next tick");
        for k in 0..batch {
            f.insert(k, NEVER, &guard); // no request
        }
        assert!(!f.seg.due(T0));
        for k in batch..2 * batch - 1 {
            f.insert(k, T0 + 10, &guard);
        }
        assert!(!f.seg.due(T0), "one request short of a batch");
        f.insert(2 * batch - 1, T0 + 10, &guard);
        assert!(f.seg.due(T0), "a batch of requests");
        let t = f.turn(T0, Mode::Write, &guard);
        assert!(t.drained && !t.due_left);
        assert!(!f.seg.due(T0) && f.queued() == 0);
        // Cancellations count towards the batch too.
        for k in batch..2 * batch {
            f.remove(k, &guard);
        }
        assert_eq!(f.ring(), HANDOFF_BATCH);
        assert!(f.seg.due(T0));
        f.turn(T0, Mode::Write, &guard);
        assert_eq!(f.ring(), 0);
    }
    f.finish(2 * HANDOFF_BATCH);
}

#[test]
fn a_write_turn_keeps_to_its_budget_and_leaves_the_segment_due() {
    let f = Fixture::new();
    let n = WRITE_BUDGET + 10;
    {
        let guard = crossbeam_epoch::pin();
        let nodes: Vec<_> = (0..n as u64)
            .map(|k| f.insert(k, T0 + 50, &guard))
            .collect();
        let t = f.turn(T0, Mode::Write, &guard);
        assert!(t.drained && t.due_left);
        assert_eq!(
            scheduled(&nodes),
            WRITE_BUDGET,
            "the rest wait on the backlog"
        );
        assert!(f.seg.due(T0), "work left: due at once");
        let t = f.turn(T0, Mode::Write, &guard);
        assert!(
            !t.drained && !t.due_left,
            "the backlog first, then nothing left"
        );
        assert_eq!(scheduled(&nodes), n);
        assert!(!f.seg.due(T0));
        // Firing is bounded too.
        let t = f.turn(T0 + 50, Mode::Write, &guard);
        assert_eq!((t.expired, t.due_left), (WRITE_BUDGET, true));
        assert!(f.seg.due(T0 + 50));
        let t = f.turn(T0 + 50, Mode::Write, &guard);
        assert_eq!((t.expired, t.due_left), (10, false));
        // Emptied, the table may have started shrinking: then it stays due for that.
        assert_eq!(f.seg.due(T0 + 50), t.migrating);
    }
    f.finish(n);
}

#[test]
fn a_full_turn_does_everything_pending() {
    let f = Fixture::new();
    let n = if cfg!(miri) {
        WRITE_BUDGET + 8
    } else {
        3 * WRITE_BUDGET
    };
    {
        let guard = crossbeam_epoch::pin();
        let nodes: Vec<_> = (0..n as u64)
            .map(|k| f.insert(k, T0 + 50, &guard))
            .collect();
        let t = f.turn(
            T0,
            Mode::Full {
                drain: true,
                evict: true,
            },
            &guard,
        );
        assert!(t.drained && !t.due_left);
        assert_eq!(scheduled(&nodes), n);
        let late: Vec<_> = (0..5)
            .map(|k| f.insert(n as u64 + k, T0 + 50, &guard))
            .collect();
        let t = f.turn(
            T0,
            Mode::Full {
                drain: false,
                evict: true,
            },
            &guard,
        );
        assert!(!t.drained, "asked not to drain");
        assert!(late
            .iter()
            .all(|&p| flags(p) & (QUEUED | SCHEDULED) == QUEUED));
        assert!(f.seg.due(T0), "left for the next write");
        assert!(
            f.turn(
                T0,
                Mode::Full {
                    drain: true,
                    evict: true
                },
                &guard
            )
            .drained
        );
        assert_eq!(scheduled(&late), 5);
        let t = f.turn(
            T0 + 50,
            Mode::Full {
                drain: true,
                evict: true,
            },
            &guard,
        );
        assert_eq!((t.expired, t.due_left), (n + 5, false));
        assert_eq!(f.wheel_len(), 0);
    }
    f.finish(n + 5);
}

#[test]
fn a_write_turn_skips_a_taken_lock() {
    let f = Fixture::new();
    {
        let guard = crossbeam_epoch::pin();
        let p = f.insert(1, T0 + 10, &guard);
        {
            let _held = sync::lock(&f.seg.maint);
            let t = f.turn(T0, Mode::Write, &guard);
            assert!(!t.drained && !t.due_left);
            assert_eq!(
                flags(p) & (QUEUED | SCHEDULED),
                QUEUED,
                "still on the stack"
            );
        }
        assert!(f.turn(T0, Mode::Write, &guard).drained);
        assert_eq!(flags(p) & (QUEUED | SCHEDULED), SCHEDULED);
    }
    f.finish(1);
}

/// Inserts `keys` due at `at + 10`, schedules them at `at`, and expires them at `at + 10`
/// in a turn that holds them for the listener.
fn expire_held(f: &Fixture, keys: std::ops::Range<u64>, at: u64) -> Vec<Held<u64, Counted>> {
    let guard = crossbeam_epoch::pin();
    for k in keys.clone() {
        f.insert(k, at + 10, &guard);
    }
    f.turn(at, Mode::Write, &guard);
    let mut out = Vec::new();
    let t = f
        .seg
        .maintain(at + 10, Mode::Write, &guard, &mut Sink::new(true, &mut out));
    assert_eq!(t.expired, keys.clone().count());
    for held in &out {
        assert_eq!(held.cause, RemovalCause::Expired);
        let m = held.meta.load(Ordering::Relaxed);
        assert_eq!(
            m & HOLDS,
            UNLINKED | DETACHED,
            "the remover's hold is the Held's"
        );
    }
    out
}

#[test]
fn owed_counts_held_departures_by_generation() {
    let f = Fixture::new();
    let mut first = expire_held(&f, 0..3, T0);
    assert_eq!((f.seg.owed(0), f.seg.owed(1)), (3, 0));
    assert_eq!(f.seg.owed_before(), 0, "the generation that was counting");
    let second = expire_held(&f, 3..5, T0 + 10);
    assert_eq!(
        (f.seg.owed(0), f.seg.owed(1)),
        (3, 2),
        "new departures count in 1"
    );
    drop(first.pop());
    assert_eq!(f.seg.owed(0), 2, "delivered");
    drop(first);
    assert_eq!((f.seg.owed(0), f.seg.owed(1)), (0, 2));
    assert_eq!(f.seg.owed_before(), 1);
    drop(second);
    assert_eq!((f.seg.owed(0), f.seg.owed(1)), (0, 0));
    f.finish(5);
}

#[test]
fn dropping_a_segment_with_requests_pending_frees_each_node_once() {
    let f = Fixture::new();
    {
        let guard = crossbeam_epoch::pin();
        for k in 0..4 {
            f.insert(k, T0 + 10, &guard);
        }
        f.turn(T0, Mode::Write, &guard);
        f.remove(0, &guard); // a cancellation on the ring
        f.insert(10, T0 + 10, &guard);
        f.insert(11, T0 + 10, &guard);
        f.remove(10, &guard); // a removed node's request on the stack
        assert_eq!((f.ring(), f.queued()), (1, 3));
    }
    f.finish(6);
}

#[test]
fn dropping_a_segment_with_overflowed_requests_frees_each_node_once() {
    let f = Fixture::new();
    let n = CANCELS as u64 + 3;
    {
        let guard = crossbeam_epoch::pin();
        for k in 0..n {
            f.insert(k, T0 + 10, &guard);
        }
        while f.seg.due(T0) {
            f.turn(T0, Mode::Write, &guard);
        }
        for k in 0..n {
            f.remove(k, &guard); // the ring fills, then the overflow takes three
        }
        assert_eq!(f.ring(), CANCELS);
        assert!(!f.seg.handoff.overflow.looks_empty());
    }
    f.finish(n as usize);
}

/// The cancel ring and its overflow.
mod overflow;
