//! The cancel ring, its overflow, and the turns that serve them: a remover never waits,
//! and nothing it queues is stranded or served twice.

use super::*;

#[test]
fn a_full_ring_sends_the_request_to_the_overflow_and_the_remover_never_waits() {
    let f = Fixture::new();
    let n = CANCELS as u64 + 2;
    {
        let guard = crossbeam_epoch::pin();
        let nodes = inserted_and_scheduled(&f, n, &guard);
        for k in 0..CANCELS as u64 {
            f.remove(k, &guard);
            assert_eq!(f.ring(), k as usize + 1);
        }
        assert!(
            f.seg.handoff.overflow.looks_empty(),
            "room on the ring so far"
        );
        // The remover holds the lock's place: were it to wait for the lock, this would hang.
        let held = sync::lock(&f.seg.maint);
        f.remove(n - 2, &guard);
        f.remove(n - 1, &guard);
        drop(held);
        assert_eq!(f.ring(), CANCELS, "the ring is still full");
        assert!(
            !f.seg.handoff.overflow.looks_empty(),
            "boxed on the overflow"
        );
        assert!(f.seg.due(T0), "and the segment is due");
        assert_eq!(f.wheel_len(), n as usize, "nobody served them yet");
        assert!(nodes.iter().all(|&p| flags(p) & DETACHED == 0));
        // Write turns serve them within their budget, and the segment stays due until
        // every one is served.
        turns_while_due(&f, &guard);
        assert_eq!((f.ring(), f.wheel_len()), (0, 0));
        assert!(f.seg.handoff.overflow.looks_empty());
        assert!(nodes.iter().all(|&p| flags(p) == HOLDS | REMOVED));
    }
    f.finish(n as usize);
}

#[test]
fn a_write_turn_leaves_overflow_past_its_budget_for_the_next() {
    let f = Fixture::new();
    let n = (CANCELS + WRITE_BUDGET + 3) as u64;
    // Entries that stay, so that the removals leave the table too full to start shrinking
    // (a migration keeps a segment due on its own, and would hide what is tested here).
    let kept = 3 * n;
    {
        let guard = crossbeam_epoch::pin();
        let nodes = inserted_and_scheduled(&f, n + kept, &guard);
        for k in 0..n {
            f.remove(k, &guard);
        }
        let t = f.turn(T0, Mode::Write, &guard);
        assert!(!t.migrating, "no migration keeps the segment due");
        assert!(
            !f.seg.handoff.overflow.looks_empty(),
            "over the budget: some wait"
        );
        assert!(t.due_left, "the turn says it left work");
        assert!(f.seg.due(T0), "the segment stays due");
        f.turn(
            T0,
            Mode::Full {
                drain: true,
                evict: true,
            },
            &guard,
        );
        assert!(
            f.seg.handoff.overflow.looks_empty(),
            "a full turn applies it all"
        );
        assert_eq!((f.ring(), f.wheel_len()), (0, kept as usize));
        let removed = &nodes[..n as usize];
        assert!(removed.iter().all(|&p| flags(p) == HOLDS | REMOVED));
    }
    f.finish((n + kept) as usize);
}

/// Write turns at `T0` while the segment is due; fails if it is still due after more
/// turns than any pending work needs (a segment that stays due for ever).
/// Inserts keys `0..n` with deadline `T0 + 100` and has write turns schedule them all.
fn inserted_and_scheduled<'g>(f: &Fixture, n: u64, guard: &'g Guard) -> Vec<P<'g>> {
    let nodes: Vec<_> = (0..n).map(|k| f.insert(k, T0 + 100, guard)).collect();
    turns_while_due(f, guard);
    assert_eq!(scheduled(&nodes), n as usize);
    nodes
}

fn turns_while_due(f: &Fixture, guard: &Guard) {
    for _ in 0..1_000 {
        if !f.seg.due(T0) {
            return;
        }
        f.turn(T0, Mode::Write, guard);
    }
    panic!("still due after 1,000 write turns");
}

#[test]
fn applying_the_overflow_says_whether_it_left_requests() {
    let f = Fixture::new();
    let n = CANCELS as u64 + 5;
    {
        let guard = crossbeam_epoch::pin();
        let nodes = inserted_and_scheduled(&f, n, &guard);
        {
            // Held, so that every removal past the ring's slots is boxed on the overflow.
            let _held = sync::lock(&f.seg.maint);
            for k in 0..n {
                f.remove(k, &guard);
            }
        }
        let mut out = Vec::new();
        let mut sink = Sink::new(false, &mut out);
        let mut turn = Turn::default();
        let mut maint = sync::lock(&f.seg.maint);
        let mut budget = 2;
        let left =
            f.seg
                .apply_overflow(&mut maint, &mut budget, false, &guard, &mut sink, &mut turn);
        assert!(left && budget == 0, "two of five applied, three left");
        assert!(!f.seg.handoff.overflow.looks_empty());
        let mut budget = 10;
        let left =
            f.seg
                .apply_overflow(&mut maint, &mut budget, false, &guard, &mut sink, &mut turn);
        assert!(!left && budget == 7, "the three left applied, none left");
        assert!(f.seg.handoff.overflow.looks_empty());
        drop(maint);
        assert!(out.is_empty());
        turns_while_due(&f, &guard);
        assert_eq!((f.ring(), f.wheel_len()), (0, 0));
        assert!(nodes.iter().all(|&p| flags(p) == HOLDS | REMOVED));
    }
    f.finish(n as usize);
}

/// A full turn that runs out of its chunk with removals still on the cancel ring leaves
/// the segment due for the next write, but does not ask its caller to repeat for them:
/// they came after it began, and removers refilling the ring could keep a caller that
/// repeats while requests are left (`run_pending_tasks`, the reaper) going for ever.
#[test]
#[cfg_attr(
    miri,
    ignore = "16,000 nodes; what it checks is one condition, no unsafe code"
)]
fn a_full_turn_leaves_ring_requests_past_its_chunk_to_the_writers() {
    let f = Fixture::new();
    let full = Mode::Full {
        drain: true,
        evict: true,
    };
    // The first `CANCELS` removals fill the ring, the rest go to the overflow, which a
    // full turn applies whole: more than a chunk of them leaves the ring's for later.
    let n = (FULL_CHUNK + CANCELS + 8) as u64;
    let kept = 3 * n; // so that no shrinking migration keeps the segment due on its own
    {
        let guard = crossbeam_epoch::pin();
        let nodes: Vec<_> = (0..n + kept)
            .map(|k| f.insert(k, T0 + 100, &guard))
            .collect();
        let mut rounds = 0;
        while f.turn(T0, full, &guard).due_left {
            rounds += 1;
            assert!(rounds < 100, "scheduling never finished");
        }
        assert_eq!(scheduled(&nodes), (n + kept) as usize);
        for k in 0..n {
            f.remove(k, &guard);
        }
        assert_eq!(f.ring(), CANCELS);
        let t = f.turn(T0, full, &guard);
        assert!(!t.migrating);
        assert_eq!(f.ring(), CANCELS, "the chunk ran out before the ring");
        assert!(!t.due_left, "a full turn does not repeat for them");
        assert!(f.seg.due(T0), "the segment stays due for the next write");
        turns_while_due(&f, &guard);
        assert_eq!((f.ring(), f.wheel_len()), (0, kept as usize));
        let removed = &nodes[..n as usize];
        assert!(removed.iter().all(|&p| flags(p) == HOLDS | REMOVED));
    }
    f.finish((n + kept) as usize);
}
