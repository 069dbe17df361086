//! Unit tests of `entry::reclaim`: grace periods, budgets and lanes.

use super::*;

fn node(v: u64) -> *mut Node<u64, u64> {
    Box::into_raw(Box::new(Node::new(v, v, v, crate::clock::NEVER)))
}

#[test]
fn nothing_is_freed_before_its_grace_period_and_everything_after() {
    let reclaim: Reclaim<u64, u64> = Reclaim::new();
    for v in 0..10 {
        // SAFETY: 1. a plain `Box<Node>` is a `NodeBox::new` layout; 2. fresh,
        // reachable by nobody; 3. retired once, here; 4. the test's only thread.
        unsafe { reclaim.retire(node(v)) };
    }
    let pinned = crossbeam_epoch::pin();
    reclaim.seal();
    assert!(
        !reclaim.free_ready(usize::MAX),
        "freed while a pin from before stands"
    );
    let mut target = None;
    assert_eq!(reclaim.free_pending(&mut target), Progress::Waiting);
    assert_eq!(target, Some(1), "batch 0 is the one to wait for");
    drop(pinned);
    let mut rounds = 0;
    while reclaim.free_pending(&mut target) == Progress::Waiting {
        crossbeam_epoch::pin().flush();
        rounds += 1;
        assert!(rounds < 100_000, "the grace period never ended");
    }
    // SAFETY: 1. a test-only peek at the queue: nobody holds the token now, and this
    // thread is the only one that took it, so nothing writes the queue meanwhile.
    assert!(reclaim.queue.with(|q| unsafe { (*q).is_empty() }));
}

#[test]
fn a_later_grace_period_covers_earlier_batches() {
    let reclaim: Reclaim<u64, u64> = Reclaim::new();
    // SAFETY: 1. a plain `Box<Node>` is a `NodeBox::new` layout; 2. fresh, reachable
    // by nobody; 3. retired once, here; 4. this test is the only thread.
    unsafe { reclaim.retire(node(1)) };
    reclaim.seal();
    // SAFETY: 1. a plain `Box<Node>` is a `NodeBox::new` layout; 2. fresh, reachable
    // by nobody; 3. retired once, here; 4. this test is the only thread.
    unsafe { reclaim.retire(node(2)) };
    reclaim.seal();
    // Pretend only the second closure has run.
    reclaim.grace.store(2, Ordering::Release);
    let mut left = usize::MAX;
    let token = reclaim.take_token().unwrap();
    // SAFETY: `absorb_sealed`'s and `free_queued`'s 1: we hold the token (`token`).
    assert!(!unsafe {
        reclaim.absorb_sealed();
        reclaim.free_queued(&mut left, Share::Below(u64::MAX))
    });
    drop(token);
    assert_eq!(left, usize::MAX - 2, "both batches freed");
}

/// Batches queued and not yet freed (a test-only peek: call with no other thread on
/// `reclaim`, so nothing writes the queue meanwhile).
fn queued(reclaim: &Reclaim<u64, u64>) -> usize {
    // SAFETY: 1. no other thread uses `reclaim` (the caller's promise), so nothing
    // writes the queue during this read.
    reclaim.queue.with(|q| unsafe { (*q).len() })
}

/// Nodes made on a thread whose lane differs from this thread's (as addresses, to
/// cross back), with that lane.
fn foreign_nodes(count: u64) -> (Vec<usize>, usize) {
    loop {
        let (lane, nodes) = std::thread::spawn(move || {
            let nodes: Vec<usize> = (0..count).map(|v| node(v) as usize).collect();
            (home_lane(), nodes)
        })
        .join()
        .unwrap();
        if lane != home_lane() {
            return (nodes, lane);
        }
        for raw in nodes {
            // SAFETY: 1. from `node` (a `NodeBox::new` layout); 2. never published:
            // ours alone, freed once, here.
            unsafe { free_node(raw as *mut Node<u64, u64>) };
        }
    }
}

#[test]
fn an_operation_frees_its_lane_and_leaves_other_lanes_their_slack() {
    let reclaim: Reclaim<u64, u64> = Reclaim::new();
    let (theirs, lane) = foreign_nodes(SLACK as u64 + 1);
    assert_eq!(
        // SAFETY: 1. fresh from `node`, reachable by nobody.
        unsafe { (*(theirs[0] as *mut Node<u64, u64>)).lane() },
        lane,
        "a node carries the lane of the thread that made it"
    );
    let mine = node(100);
    // SAFETY: 1. a plain `Box<Node>` is a `NodeBox::new` layout; 2. fresh, reachable by
    // nobody; 3. retired once, here; 4. this test's thread is the only one using it.
    unsafe { reclaim.retire(mine) };
    reclaim.seal();
    for raw in theirs {
        // SAFETY: 1. made by `node` (a `NodeBox::new` layout); 2. never published,
        // reachable by nobody; 3. retired once, here; 4. its maker has been joined, so
        // its writes happen-before this.
        unsafe { reclaim.retire(raw as *mut Node<u64, u64>) };
        reclaim.seal();
    }
    assert_eq!(queued(&reclaim), 0, "sealed, not yet absorbed");
    // Pretend every grace period is over.
    reclaim.grace.store(u64::MAX, Ordering::Release);
    assert!(
        !reclaim.free_ready(usize::MAX),
        "nothing it may free is left"
    );
    assert_eq!(
        queued(&reclaim),
        SLACK,
        "our lane's batch and the other lane's beyond its slack are freed"
    );
    reclaim.free_stale();
    assert_eq!(queued(&reclaim), SLACK, "ready since the last pass only");
    reclaim.free_stale();
    assert_eq!(
        queued(&reclaim),
        0,
        "ready at the last pass: freed, any lane"
    );
}

#[test]
fn one_seal_numbers_every_lane_once() {
    let reclaim: Reclaim<u64, u64> = Reclaim::new();
    let (theirs, _) = foreign_nodes(2);
    for raw in theirs
        .into_iter()
        .map(|a| a as *mut Node<u64, u64>)
        .chain([node(7)])
    {
        // SAFETY: 1. `NodeBox::new` layouts; 2. fresh, reachable by nobody; 3. retired
        // once, here; 4. the maker has been joined.
        unsafe { reclaim.retire(raw) };
    }
    reclaim.seal();
    assert_eq!(
        reclaim.drawn.load(Ordering::Relaxed),
        1,
        "one number for both lanes"
    );
    let mut target = None;
    let mut rounds = 0;
    while reclaim.free_pending(&mut target) == Progress::Waiting {
        crossbeam_epoch::pin().flush();
        rounds += 1;
        assert!(rounds < 100_000, "the grace period never ended");
    }
    assert_eq!(queued(&reclaim), 0, "run_pending_tasks frees every lane");
}

#[test]
fn budgets_free_part_of_a_batch() {
    let reclaim: Reclaim<u64, u64> = Reclaim::new();
    for v in 0..5 {
        // SAFETY: 1. a plain `Box<Node>` is a `NodeBox::new` layout; 2. fresh,
        // reachable by nobody; 3. retired once, here; 4. the test's only thread.
        unsafe { reclaim.retire(node(v)) };
    }
    reclaim.seal();
    reclaim.grace.store(1, Ordering::Release);
    assert!(reclaim.free_ready(3), "two left");
    assert!(!reclaim.free_ready(3));
    let mut target = None;
    assert_eq!(reclaim.free_pending(&mut target), Progress::Done);
}
