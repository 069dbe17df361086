//! Unit tests for `evict`: S3-FIFO as the module essay states it (new entries to small,
//! promotion on a hit, ghosts back to main, TinyLFU's test while main is full, CLOCK in
//! main), weights and the bound (`Limits`), unlinking any node, and the deques' links,
//! walked after every step.

use super::deque::{self, Deque, NONE};
use super::*;
use crate::clock::NEVER;
use crate::entry::layout::{ExtInit, NodeBox};

type N = Node<u64, u64>;

/// A hash whose low bits (the ghost's slot) and bits 32..47 (its fingerprint) are both `i`.
fn h(i: u64) -> u64 {
    i | (i << 32)
}

/// The test's nodes, freed when it ends (the queues only link them).
struct Pool(Vec<*mut N>);

impl Pool {
    /// A new extended node with hash `h(i)` and weight `w`.
    fn node(&mut self, i: u64, w: u32) -> *mut N {
        // Half with an idle stamp in `meta`, which shares the word with the queue mark.
        let ext = ExtInit {
            idle: (i % 2 == 0).then_some(0),
            weight: w,
            timer: None,
        };
        let raw = NodeBox::new(h(i), i, i, NEVER, Some(ext)).into_raw();
        self.0.push(raw);
        raw
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for &raw in &self.0 {
            // SAFETY: from `into_raw`, freed once; the queues are not used after this.
            drop(unsafe { NodeBox::from_raw(raw) });
        }
    }
}

fn id(node: *mut N) -> u64 {
    // SAFETY: pool nodes live until the pool drops; keys are immutable.
    unsafe { (*node).key }
}

fn touch(node: *mut N, times: usize) {
    for _ in 0..times {
        // SAFETY: a pool node, alive.
        unsafe { (*node).touch() };
    }
}

fn freq(node: *mut N) -> u64 {
    // SAFETY: a pool node, alive.
    unsafe { (*node).freq() }
}

fn queue(node: *mut N) -> u8 {
    // SAFETY: a pool node, alive and extended; the test is the only thread.
    unsafe { deque::queue_of(node) }
}

/// A pool node's queue links (prev, next).
fn links_of(node: *mut N) -> (*mut N, *mut N) {
    // SAFETY: `ext_of`'s 1 to 3: a pool node, alive until the pool drops, with the
    // provenance `into_raw` gave.
    let ext = unsafe { crate::entry::layout::ext_of(node) }.expect("a pool node is extended");
    // SAFETY: the cell's contents are read with no other access to them: the test is the
    // only thread, and holds no other reference to these links.
    ext.links.with(|l| unsafe { ((*l).prev, (*l).next) })
}

/// Walks a deque front to back, checking every back link, every node's queue mark, the
/// count and the weight; returns the keys in order.
fn walk(q: &Deque<u64, u64>, id_of_queue: u8) -> Vec<u64> {
    let mut out = Vec::new();
    let mut prev: *mut N = std::ptr::null_mut();
    let mut node = q.front().unwrap_or(std::ptr::null_mut());
    let mut weight = 0;
    while !node.is_null() {
        assert!(out.len() < q.len, "more nodes linked than counted: {out:?}");
        assert_eq!(
            queue(node),
            id_of_queue,
            "{} carries the wrong mark",
            id(node)
        );
        let (p, next) = links_of(node);
        if prev.is_null() {
            assert!(
                !p.is_null() && !crate::intrusive::list::is_node(p),
                "the front's prev is its queue's tag, not {p:p}"
            );
        } else {
            assert_eq!(p, prev, "{}'s back link", id(node));
        }
        // SAFETY: `weight_of`'s 1: a queued pool node, alive until the pool drops; its 2:
        // the pointer `into_raw` gave, with its allocation's provenance.
        weight += u64::from(unsafe { crate::entry::layout::weight_of(node) });
        out.push(id(node));
        prev = node;
        node = next;
    }
    assert_eq!(out.len(), q.len, "count");
    assert_eq!(weight, q.weight, "weight");
    out
}

/// Both queues' keys, front to back, after checking their links.
fn queues(q: &Queues<u64, u64>) -> (Vec<u64>, Vec<u64>) {
    (walk(&q.small, SMALL), walk(&q.main, MAIN))
}

/// Queues `node` with a segment share of 0, so main never has room to fill (see
/// `admit_with_share` for a filling segment).
fn admit(q: &mut Queues<u64, u64>, node: *mut N) {
    // SAFETY: a pool node, alive until the test ends, extended, in no queue; the test is
    // the only thread (it stands for the lock holder).
    unsafe { q.admit(node, climb::START, 0) };
    queues(q);
}

fn unlink(q: &mut Queues<u64, u64>, node: *mut N) {
    // SAFETY: as for `admit`; the node is in one of `q`'s queues or in none.
    unsafe { q.unlink(node) };
    assert_eq!(queue(node), NONE);
    let links = links_of(node);
    assert!(
        links.0.is_null() && links.1.is_null(),
        "an unlinked node keeps links"
    );
    queues(q);
}

/// The next victim's key (and the budget it spent), after checking the links.
fn victim(q: &mut Queues<u64, u64>, budget: usize) -> (Option<u64>, usize) {
    let mut left = budget;
    // SAFETY: every queued node is a live pool node; the test is the only thread.
    let v = unsafe { q.victim(&mut left, climb::START) };
    if let Some(v) = v {
        assert_eq!(queue(v), NONE, "a victim is out of its queue");
    }
    queues(q);
    (v.map(id), budget - left)
}

#[test]
fn new_entries_join_small_oldest_first() {
    let mut pool = Pool(Vec::new());
    let mut q = Queues::new();
    for i in 1..=5 {
        let node = pool.node(i, i as u32);
        assert_eq!(queue(node), NONE);
        admit(&mut q, node);
        assert_eq!(queue(node), SMALL);
    }
    assert_eq!(queues(&q), (vec![1, 2, 3, 4, 5], vec![]));
    assert_eq!((q.small.weight, q.main.weight, q.len()), (15, 0, 5));
}

#[test]
fn the_hand_evicts_from_small_and_promotes_what_was_hit() {
    let mut pool = Pool(Vec::new());
    let mut q = Queues::new();
    let nodes: Vec<_> = (1..=5).map(|i| pool.node(i, 1)).collect();
    for &n in &nodes {
        admit(&mut q, n);
    }
    touch(nodes[1], 1);
    touch(nodes[3], 2);
    // Oldest first; a hit one moves to main on the way, its count cleared.
    assert_eq!(victim(&mut q, usize::MAX), (Some(1), 1));
    assert_eq!(
        victim(&mut q, usize::MAX),
        (Some(3), 2),
        "2 promoted, then 3 evicted"
    );
    assert_eq!((queue(nodes[1]), freq(nodes[1])), (MAIN, 0));
    // Small is down to one entry, its least share: main's oldest, unhit since its
    // promotion, goes instead of the newest entry.
    assert_eq!(
        victim(&mut q, usize::MAX),
        (Some(2), 2),
        "4 promoted, then 2 evicted from main"
    );
    assert_eq!(queues(&q), (vec![5], vec![4]));
    assert_eq!(freq(nodes[3]), 0, "a promoted entry starts counting afresh");
    assert_eq!(victim(&mut q, usize::MAX), (Some(4), 1));
    // Main is empty: small gives up its last entry too.
    assert_eq!(victim(&mut q, usize::MAX), (Some(5), 1));
    assert_eq!(victim(&mut q, usize::MAX), (None, 1));
    assert_eq!(q.len(), 0);
}

/// In a segment whose small share rounds below one entry, the entry just queued is not
/// the next victim while main holds something: it gets its chance to be read. (With a
/// bound of 100 over 8 segments, `insert(k); get(k)` missed 191 times in 300.)
#[test]
fn small_keeps_one_entry_while_main_has_any() {
    let mut pool = Pool(Vec::new());
    let mut q = Queues::new();
    let old: Vec<_> = (1..=10).map(|i| pool.node(i, 1)).collect();
    for &n in &old {
        admit(&mut q, n);
        touch(n, 1);
    }
    // 1-9 are promoted on the way; 10 stays, small's last entry, and main's oldest goes.
    assert_eq!(victim(&mut q, usize::MAX), (Some(1), 10));
    for i in 11..=20 {
        let new = pool.node(i, 1);
        admit(&mut q, new);
        let (gone, _) = victim(&mut q, usize::MAX);
        assert_ne!(gone, Some(i), "the entry just queued was evicted at once");
        assert_eq!(queue(new), SMALL);
        touch(new, 1); // read after its insert, as a caller would
    }
}

/// Queues `node` in a segment whose share of the bound is `share` (so main has room for
/// 97% of it at the starting small share).
fn admit_with_share(q: &mut Queues<u64, u64>, node: *mut N, share: u64) {
    // SAFETY: as for `admit`.
    unsafe { q.admit(node, climb::START, share) };
    queues(q);
}

/// A segment with a share of 10 that has filled: 1-9 in main (room for 9: 97%, rounded
/// down), 10-12 in small, nothing evicted yet. Returns the queues and the twelve nodes.
fn filled_segment(pool: &mut Pool) -> (Queues<u64, u64>, Vec<*mut N>) {
    let mut q = Queues::new();
    let nodes: Vec<_> = (1..=12).map(|i| pool.node(i, 1)).collect();
    for &n in &nodes {
        admit_with_share(&mut q, n, 10);
    }
    assert_eq!(queues(&q), ((10..=12).collect(), (1..=9).collect()));
    (q, nodes)
}

#[test]
fn a_filling_segment_fills_main_and_its_unhit_entries_leave_after_a_probation() {
    let mut pool = Pool(Vec::new());
    let (mut q, nodes) = filled_segment(&mut pool);
    // 2 is hit; the other filled entries are not.
    touch(nodes[1], 1);
    // The first eviction ends the fill and starts the probation: 11 entries left, so 16
    // more evictions (one and a half times the entries) come from small as usual.
    assert_eq!(victim(&mut q, usize::MAX), (Some(10), 1));
    let mut next = 13;
    for _ in 0..16 {
        let node = pool.node(next, 1);
        next += 1;
        admit_with_share(&mut q, node, 10);
        assert_eq!(queue(node), SMALL, "the fill is over");
        let (gone, _) = victim(&mut q, usize::MAX);
        assert!(
            gone.unwrap() > 9,
            "a filled entry left during its probation: {gone:?}"
        );
    }
    // Then the hand passes the filled entries before small gives up more: the unhit ones
    // leave oldest first, the hit one goes round.
    let mut gone = Vec::new();
    for _ in 0..9 {
        let node = pool.node(next, 1);
        next += 1;
        admit_with_share(&mut q, node, 10);
        gone.push(victim(&mut q, usize::MAX).0.unwrap());
    }
    assert_eq!(gone[..8], [1, 3, 4, 5, 6, 7, 8, 9]);
    assert!(
        gone[8] > 9,
        "past the filled entries, small again: {gone:?}"
    );
    assert_eq!(queues(&q).1, vec![2]);
}

#[test]
fn filled_entries_that_were_removed_leave_the_hand_nothing_to_look_for() {
    let mut pool = Pool(Vec::new());
    let (mut q, nodes) = filled_segment(&mut pool);
    assert_eq!(victim(&mut q, usize::MAX), (Some(10), 1));
    for &n in &nodes[..9] {
        unlink(&mut q, n);
    }
    // Through the probation and past it, small keeps giving up its oldest: the count of
    // filled entries followed main down to empty.
    for i in 13..40 {
        admit_with_share(&mut q, pool.node(i, 1), 10);
        let (gone, _) = victim(&mut q, usize::MAX);
        assert_eq!(gone, Some(i - 2), "small's oldest");
    }
}

#[test]
fn an_emptied_segment_fills_again_by_weight() {
    let mut pool = Pool(Vec::new());
    let mut q = Queues::new();
    // A share of 100: main has room for 97 units of weight.
    let heavy: Vec<_> = (1..=3).map(|i| pool.node(i, 40)).collect();
    for &n in &heavy {
        admit_with_share(&mut q, n, 100);
    }
    assert_eq!(
        queues(&q),
        (vec![3], vec![1, 2]),
        "80 fit in main, 120 would not"
    );
    assert_eq!(victim(&mut q, usize::MAX), (Some(3), 1), "the fill is over");
    let light = pool.node(4, 1);
    admit_with_share(&mut q, light, 100);
    assert_eq!(queues(&q), (vec![4], vec![1, 2]));
    for &n in &heavy[..2] {
        unlink(&mut q, n);
    }
    unlink(&mut q, light);
    assert_eq!(q.len(), 0);
    admit_with_share(&mut q, pool.node(5, 1), 100);
    assert_eq!(
        queues(&q),
        (vec![], vec![5]),
        "emptied, it fills main again"
    );
}

#[test]
fn main_is_a_clock_with_two_bit_counts() {
    let mut pool = Pool(Vec::new());
    let mut q = Queues::new();
    let nodes: Vec<_> = (1..=5).map(|i| pool.node(i, 1)).collect();
    for (i, &n) in nodes.iter().enumerate() {
        admit(&mut q, n);
        if i < 4 {
            touch(n, 1);
        }
    }
    // The four hit are promoted (a look each); the fifth stays, small's last entry; then
    // main's oldest, unhit since, goes.
    assert_eq!(victim(&mut q, usize::MAX), (Some(1), 5));
    assert_eq!(queues(&q), (vec![5], vec![2, 3, 4]));
    touch(nodes[2], 3);
    touch(nodes[3], 1);
    assert_eq!(victim(&mut q, usize::MAX), (Some(2), 1));
    // 3 (count 3) and 4 (count 1) go round, each pass lowering the count by one.
    assert_eq!(victim(&mut q, 0), (None, 0), "no budget, no look");
    assert_eq!(victim(&mut q, 2), (None, 2), "budget spent on passes");
    assert_eq!(queues(&q), (vec![5], vec![3, 4]));
    assert_eq!((freq(nodes[2]), freq(nodes[3])), (2, 0));
    assert_eq!(
        victim(&mut q, usize::MAX),
        (Some(4), 2),
        "3 passes (2 to 1), 4 goes"
    );
    assert_eq!(
        victim(&mut q, usize::MAX),
        (Some(3), 2),
        "3 passes (1 to 0), then goes"
    );
    // The sketch counted 3's passes while hit (three), besides its insert.
    assert!(q.sketch.estimate(h(3)) >= 4, "{}", q.sketch.estimate(h(3)));
}

#[test]
fn a_ghost_comes_back_to_main_once() {
    let mut pool = Pool(Vec::new());
    let mut q = Queues::new();
    for i in 1..=3 {
        let n = pool.node(i, 1);
        admit(&mut q, n);
    }
    assert_eq!(victim(&mut q, usize::MAX), (Some(1), 1));
    let again = pool.node(1, 1);
    admit(&mut q, again);
    assert_eq!(queue(again), MAIN, "a ghost returns to main");
    let stranger = pool.node(9, 1);
    admit(&mut q, stranger);
    assert_eq!(queue(stranger), SMALL, "a new key goes to small");
    let third = pool.node(1, 1);
    admit(&mut q, third);
    assert_eq!(queue(third), SMALL, "taking a ghost forgets it");
    assert_eq!(queues(&q), (vec![2, 3, 9, 1], vec![1]));
}

/// Queues whose main is full (39 entries, small holding one more), with `ghost` just
/// evicted from small. `boost` then counts main's oldest entry that many more times.
fn full_main_with_a_ghost(pool: &mut Pool, ghost: u64, boost: usize) -> Queues<u64, u64> {
    let mut q = Queues::new();
    for i in 1..=40 {
        let n = pool.node(i, 1);
        admit(&mut q, n);
        touch(n, 1);
    }
    // 39 promoted; the 40th is small's share (1 of 40 is under 3%), so main's oldest goes.
    assert_eq!(victim(&mut q, usize::MAX), (Some(1), 40));
    assert_eq!((q.small.len, q.main.len), (1, 38));
    for i in [ghost, ghost + 1] {
        let n = pool.node(i, 1);
        admit(&mut q, n);
    }
    assert_eq!(
        victim(&mut q, usize::MAX),
        (Some(ghost), 2),
        "40 promoted, then out"
    );
    assert_eq!((q.small.len, q.main.len), (1, 39));
    for _ in 0..boost {
        q.sketch.record(h(2));
    }
    q
}

#[test]
fn a_ghost_must_beat_mains_oldest_while_main_is_full() {
    let mut pool = Pool(Vec::new());
    let mut q = full_main_with_a_ghost(&mut pool, 41, 0);
    let back = pool.node(41, 1);
    admit(&mut q, back);
    assert_eq!(
        queue(back),
        MAIN,
        "inserted more often lately than main's oldest"
    );

    let mut q = full_main_with_a_ghost(&mut pool, 41, 8);
    let back = pool.node(41, 1);
    admit(&mut q, back);
    assert_eq!(
        queue(back),
        SMALL,
        "main's oldest was counted more: the ghost waits"
    );
}

/// A main victim's hits not yet recorded count as one in the test: a ghost inserted once
/// more lately than main's oldest beats it unhit, and ties with it (and waits) once it
/// was hit; one inserted twice more beats it hit three times (they count as one). (Main's
/// next few oldest are hit too, so that the test judges the oldest.)
#[test]
fn a_hit_since_the_hands_last_pass_counts_once_for_mains_oldest() {
    for (boost, hits, want) in [(1, 0, MAIN), (1, 3, SMALL), (0, 3, MAIN)] {
        let mut pool = Pool(Vec::new());
        let mut q = full_main_with_a_ghost(&mut pool, 41, boost);
        let oldest = pool.0[1];
        assert_eq!(q.main.front(), Some(oldest));
        touch(oldest, hits);
        for &next in &pool.0[2..=super::VICTIM_DEPTH] {
            touch(next, 1);
        }
        let back = pool.node(41, 1);
        admit(&mut q, back);
        assert_eq!(
            (q.sketch.estimate(h(41)), q.sketch.estimate(h(2))),
            (2, boost as u64),
            "the ghost's inserts and main's oldest's"
        );
        assert_eq!(queue(back), want, "main's oldest hit {hits} times");
    }
}

/// The test judges the entry the hand would evict: main's oldest was counted often and
/// hit since the hand's last pass, so the hand would keep it and take the next, unhit and
/// counted less than the ghost; the ghost goes into main. With every one of main's
/// oldest within reach hit, it is judged against the oldest, and waits.
#[test]
fn the_test_judges_the_entry_the_hand_would_evict() {
    for (cold_next, want) in [(true, MAIN), (false, SMALL)] {
        let mut pool = Pool(Vec::new());
        let mut q = full_main_with_a_ghost(&mut pool, 41, 8);
        let oldest = pool.0[1];
        assert_eq!(q.main.front(), Some(oldest));
        touch(oldest, 1);
        if !cold_next {
            for &next in &pool.0[2..=super::VICTIM_DEPTH] {
                touch(next, 1);
            }
        }
        let back = pool.node(41, 1);
        admit(&mut q, back);
        assert!(q.sketch.estimate(h(41)) > q.sketch.estimate(h(3)));
        assert!(q.sketch.estimate(h(41)) < q.sketch.estimate(h(2)));
        assert_eq!(queue(back), want, "the next oldest cold: {cold_next}");
    }
}

#[test]
fn weights_decide_which_queue_the_hand_takes() {
    // Small's share is 3% of the weight: 2 of 102 is within it (main's oldest, key 1,
    // goes), 4 of 104 is over (small's, key 2, goes).
    for (light, want) in [(2, 1), (4, 2)] {
        let mut pool = Pool(Vec::new());
        let mut q = Queues::new();
        let heavy = pool.node(1, 100);
        admit(&mut q, heavy);
        touch(heavy, 1);
        assert_eq!(victim(&mut q, 1), (None, 1), "promoted; budget spent");
        let small = pool.node(2, light);
        admit(&mut q, small);
        assert_eq!((q.small.weight, q.main.weight), (u64::from(light), 100));
        assert_eq!(victim(&mut q, usize::MAX), (Some(want), 1), "light {light}");
    }
}

#[test]
fn unlink_takes_out_any_node() {
    let mut pool = Pool(Vec::new());
    let mut q = Queues::new();
    let nodes: Vec<_> = (1..=6).map(|i| pool.node(i, i as u32)).collect();
    for &n in &nodes {
        admit(&mut q, n);
    }
    unlink(&mut q, nodes[2]); // middle
    unlink(&mut q, nodes[0]); // front
    unlink(&mut q, nodes[5]); // back
    assert_eq!(queues(&q), (vec![2, 4, 5], vec![]));
    assert_eq!(q.small.weight, 2 + 4 + 5);
    let seven = pool.node(7, 7);
    admit(&mut q, seven); // after the new back
    assert_eq!(queues(&q).0, vec![2, 4, 5, 7]);
    touch(nodes[1], 1);
    assert_eq!(victim(&mut q, 1), (None, 1));
    assert_eq!(queues(&q), (vec![4, 5, 7], vec![2]));
    unlink(&mut q, nodes[1]); // out of main
    unlink(&mut q, nodes[1]); // in no queue: nothing happens
    for n in [nodes[3], seven, nodes[4]] {
        unlink(&mut q, n);
    }
    assert_eq!(queues(&q), (vec![], vec![]));
    assert_eq!((q.small.weight, q.main.weight, q.len()), (0, 0, 0));
    // Unlinked nodes may be queued again.
    admit(&mut q, nodes[0]);
    assert_eq!(queues(&q), (vec![1], vec![]));
}

#[test]
fn ghosts_are_forgotten_when_taken_or_overwritten() {
    let mut g = ghost::Ghost::default();
    assert!(!g.take(h(5)), "an empty ghost knows nothing");
    g.insert(h(5), 10);
    assert!(g.take(h(5)));
    assert!(!g.take(h(5)), "taken once");
    // Same slot (low bits), other fingerprints: the newer one wins.
    let (a, b) = (5 | (7 << 32), 5 | (9 << 32));
    g.insert(a, 10);
    g.insert(b, 10);
    assert!(!g.take(a));
    assert!(g.take(b));
    // A hash with fingerprint bits 0 is still remembered (0 marks an empty slot).
    g.insert(3, 10);
    assert!(g.take(3));
    // Resizing for many more entries starts empty.
    g.insert(h(6), 10);
    g.insert(h(8), 10_000);
    assert!(!g.take(h(6)), "resized, so forgotten");
    assert!(g.take(h(8)));
}

#[test]
fn limits_count_weight_against_the_bound() {
    let limits = Limits::new(Some(160), false, None);
    assert!(limits.weighed, "a bound weighs entries");
    limits.charge(160);
    assert!(!limits.over(), "at the bound is not over it");
    limits.charge(1);
    assert!(limits.over() && !limits.far_over());
    limits.charge(9);
    assert!(!limits.far_over(), "a sixteenth over (170) is not far over");
    limits.charge(0);
    limits.charge(1);
    assert_eq!(limits.weight(), 171);
    assert!(limits.far_over());
    limits.refund(11);
    assert!(!limits.over());
    limits.charge_guard(50).keep();
    assert_eq!(limits.weight(), 210, "kept");
    drop(limits.charge_guard(50));
    assert_eq!(limits.weight(), 210, "refunded when dropped");

    let unbounded = Limits::new(None, false, None);
    unbounded.charge(u32::MAX);
    assert_eq!(unbounded.weight(), 0, "an unweighed cache counts nothing");
    assert!(!unbounded.over() && !unbounded.far_over() && !unbounded.weighed);
    let weigher = Limits::new(None, true, None);
    weigher.charge(u32::MAX);
    assert!(weigher.weight() == u64::from(u32::MAX) && !weigher.over());
}

#[test]
fn idle_deadlines() {
    let none = Limits::new(None, false, None);
    assert_eq!(none.idle_deadline(5), NEVER);
    let tti = Limits::new(None, false, Some(10));
    assert!(tti.idle_ticks != 0 && !tti.weighed);
    assert_eq!(tti.idle_deadline(5), 16, "one tick more than the TTI");
    assert_eq!(tti.idle_deadline(NEVER - 3), NEVER, "saturates at NEVER");
    let huge = Limits::new(None, false, Some(u64::MAX));
    assert_eq!(huge.idle_deadline(1), NEVER);
}
