//! Unit tests for `wheel`: the level arithmetic, firing checked against a model (a
//! `BTreeMap` of deadlines) as the wheel advances one tick at a time and by jumps, with and
//! without a budget, cancelling before and after a cascade, re-scheduling, and the module's
//! three invariants, checked after every step.

use super::level::{head_of, mark};
use super::*;
use crate::clock::NEVER;
use crate::entry::layout::NodeBox;
use std::collections::{BTreeMap, BTreeSet};

type N = Node<u64, u64>;

/// A seeded xorshift64* generator: the same sequence on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A node's wheel links.
///
/// # Safety
/// 1. `node` is alive.
/// 2. Nobody else touches its links now.
unsafe fn wheel_links<K, V>(node: *mut Node<K, V>) -> (*mut Node<K, V>, *mut Node<K, V>) {
    // SAFETY: our 1: alive, so the reference is valid.
    let cell = unsafe { &(*node).wheel };
    // SAFETY: our 2: no other access to the links while we read them.
    cell.with(|l| unsafe { ((*l).prev, (*l).next) })
}

impl<K, V> Wheel<K, V> {
    /// Test-only (the segment's tests use it too): every node on a slot list, as (level,
    /// slot, node), after checking each slot's occupancy bit and each list's back links
    /// (the first node's `prev` is its slot's mark).
    ///
    /// # Safety
    /// 1. Every scheduled node is alive.
    /// 2. The caller owns the wheel or holds its lock (nobody else touches the links).
    pub(crate) unsafe fn walk(&self) -> Vec<(usize, usize, *mut Node<K, V>)> {
        let mut out = Vec::new();
        for (l, level) in self.levels.iter().enumerate() {
            for (s, list) in level.slots.iter().enumerate() {
                let bit = (level.occupied >> s) & 1 == 1;
                assert_eq!(bit, !list.is_empty(), "occupancy bit of level {l} slot {s}");
                let mut prev = mark(l, s);
                let mut node = list.head();
                while !node.is_null() {
                    // SAFETY: `wheel_links`'s 1: a linked node is alive (our 1); its 2: our 2.
                    let (p, next) = unsafe { wheel_links(node) };
                    assert_eq!(p, prev, "broken back link at level {l} slot {s}");
                    out.push((l, s, node));
                    prev = node;
                    node = next;
                }
            }
        }
        out
    }
}

fn key(node: *mut N) -> u64 {
    // SAFETY: the harness's nodes live until it is dropped; keys are immutable.
    unsafe { (*node).key }
}

/// A wheel, its nodes (node `i` has key `i`), the deadline `advance` reads for each, and
/// the model: which nodes are scheduled, with which deadline.
struct Harness {
    wheel: Wheel<u64, u64>,
    nodes: Vec<*mut N>,
    deadline: Vec<u64>,
    model: BTreeMap<u64, u64>,
    /// Scheduled nodes whose deadline has not moved since they were filed.
    exact: BTreeSet<u64>,
}

impl Harness {
    fn new(now: u64, nodes: usize) -> Self {
        Self {
            wheel: Wheel::new(now),
            nodes: (0..nodes as u64)
                .map(|i| NodeBox::new(i, i, i, NEVER, None).into_raw())
                .collect(),
            deadline: vec![NEVER; nodes],
            model: BTreeMap::new(),
            exact: BTreeSet::new(),
        }
    }

    fn schedule(&mut self, id: u64, d: u64) -> bool {
        assert!(!self.model.contains_key(&id), "{id} is scheduled already");
        // SAFETY: the node is alive (ours until drop) and on no list (not in the model).
        let filed = unsafe { self.wheel.schedule(self.nodes[id as usize], d) };
        assert_eq!(
            filed,
            d > self.wheel.now(),
            "schedule({d}) at {}",
            self.wheel.now()
        );
        if filed {
            self.model.insert(id, d);
            self.exact.insert(id);
            self.deadline[id as usize] = d;
        }
        filed
    }

    fn cancel(&mut self, id: u64) {
        assert!(self.model.remove(&id).is_some(), "{id} is not scheduled");
        self.exact.remove(&id);
        // SAFETY: scheduled on this wheel (the model says so) and not handed out since.
        unsafe { self.wheel.cancel(self.nodes[id as usize]) };
    }

    /// The node's deadline moves while it is filed (an idle entry read, a policy's answer).
    fn retime(&mut self, id: u64, d: u64) {
        *self.model.get_mut(&id).expect("scheduled") = d;
        self.exact.remove(&id);
        self.deadline[id as usize] = d;
    }

    /// Advances, checks what fired against the model, and returns (caught up, fired).
    fn advance(&mut self, target: u64, budget: usize) -> (bool, Vec<(u64, u64)>) {
        let before = self.wheel.now();
        let mut left = budget;
        let mut fired = Vec::new();
        let deadline = &self.deadline;
        // SAFETY: every scheduled node is alive (the harness frees them only on drop).
        let done = unsafe {
            self.wheel.advance(
                target,
                &mut left,
                |n| deadline[key(n) as usize],
                |n, d| fired.push((key(n), d)),
            )
        };
        assert!(fired.len() <= budget - left, "fired more than it spent");
        for &(id, d) in &fired {
            let model = self.model.remove(&id);
            assert_eq!(
                model,
                Some(d),
                "{id} fired twice, unscheduled, or with a stale deadline"
            );
            assert!(
                d <= target || d == NEVER,
                "{id} fired at {target}, due at {d}"
            );
            self.exact.remove(&id);
        }
        if done {
            assert_eq!(self.wheel.now(), before.max(target));
            let now = self.wheel.now();
            assert!(
                self.model.values().all(|&d| d > now),
                "a node due by {now} was left behind"
            );
        } else {
            assert_eq!(left, 0, "stopped with budget left");
            assert!(self.wheel.now() <= target);
        }
        self.check(done);
        (done, fired)
    }

    /// The module's invariants, and the model's nodes exactly on the lists.
    fn check(&self, caught_up: bool) {
        let now = self.wheel.now();
        let mut seen = BTreeSet::new();
        // SAFETY: the harness owns the wheel and every node is alive.
        for (l, s, node) in unsafe { self.wheel.walk() } {
            let id = key(node);
            assert!(seen.insert(id), "{id} is on two lists (invariant 2)");
            let d = *self
                .model
                .get(&id)
                .expect("only scheduled nodes are linked");
            assert!(
                s >= digit(now, l),
                "level {l} slot {s} is behind now {now} (invariant 1)"
            );
            let shift = SLOT_BITS * l as u32;
            let start = ((now >> shift >> SLOT_BITS << SLOT_BITS) | s as u64) << shift;
            assert!(
                !caught_up || start > now,
                "now {now} passed slot {l}/{s} (invariant 3)"
            );
            assert!(
                d >= start,
                "{id} (due {d}) is filed in a later slot {l}/{s}"
            );
            if self.exact.contains(&id) {
                assert!(
                    d - start < 1 << shift,
                    "{id} (due {d}) is not in slot {l}/{s}"
                );
            }
            // SAFETY: linked, so alive; the harness owns the wheel.
            let ((prev, _), head) = unsafe { (wheel_links(node), head_of(node)) };
            assert_eq!(
                head,
                (prev == mark(l, s)).then_some((l, s)),
                "{id}'s slot mark"
            );
        }
        assert_eq!(
            seen.len(),
            self.model.len(),
            "a scheduled node is on no list"
        );
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for &raw in &self.nodes {
            // SAFETY: from `NodeBox::into_raw`, freed once; the wheel is never used again.
            drop(unsafe { NodeBox::from_raw(raw) });
        }
    }
}

#[test]
fn level_and_slot_of_a_deadline() {
    let cases: &[(u64, u64, usize, usize)] = &[
        (0, 1, 0, 1),
        (0, 63, 0, 63),
        (0, 64, 1, 1),
        (63, 64, 1, 1),
        (64, 127, 0, 63),
        (64, 128, 1, 2),
        (0, 4095, 1, 63),
        (0, 4096, 2, 1),
        (4095, 4096, 2, 1),
        (4096, 4097, 0, 1),
        (0, 1 << 54, 9, 1),
        (0, NEVER - 1, 9, 1),
        (NEVER - 2, NEVER - 1, 0, 62),
        ((1 << 54) - 1, 1 << 54, 9, 1),
    ];
    for &(now, d, level, slot) in cases {
        assert_eq!(
            (level_for(now, d), digit(d, level)),
            (level, slot),
            "now {now}, d {d}"
        );
    }
    // Every level's boundaries: 64^l - 1 is the top of level l - 1, 64^l opens level l.
    for l in 1..LEVELS {
        let span = 1u64 << (SLOT_BITS * l as u32);
        if span < NEVER {
            assert_eq!(level_for(0, span), l);
            assert_eq!(level_for(0, span - 1), l - 1);
            assert_eq!(level_for(span - 1, span), l, "a carry into level {l}");
        }
    }
    // Any pair: the level is the highest digit in which they differ, and there `d` is ahead.
    let mut rng = Rng::new(7);
    for _ in 0..if cfg!(miri) { 200 } else { 100_000 } {
        let now = rng.below(NEVER - 1) >> rng.below(56);
        let d = now + 1 + (rng.below(NEVER - 1 - now) >> rng.below(56));
        let l = level_for(now, d);
        assert!(digit(d, l) > digit(now, l), "now {now}, d {d}");
        assert!(
            (l + 1..LEVELS).all(|h| digit(d, h) == digit(now, h)),
            "now {now}, d {d}"
        );
    }
}

#[test]
fn schedule_refuses_the_past_and_now_and_files_the_rest() {
    let mut h = Harness::new(1000, 8);
    assert!(!h.schedule(0, 999), "a past deadline is due already");
    assert!(!h.schedule(1, 1000), "a deadline at now is due already");
    assert!(!h.schedule(2, 0));
    // SAFETY: the harness owns the wheel and its nodes.
    assert!(unsafe { h.wheel.walk() }.is_empty(), "nothing was linked");
    assert!(h.schedule(3, 1001));
    assert!(h.schedule(4, 1000 + 64 * 64));
    assert!(h.schedule(5, NEVER - 1), "the largest deadline has a slot");
    assert!(h.schedule(6, 1 << 40));
    // SAFETY: `walk`'s 1: the harness's nodes live as long as it does; its 2: the harness
    // owns the wheel.
    let mut filed: Vec<_> = unsafe { h.wheel.walk() }
        .into_iter()
        .map(|(l, s, n)| (key(n), l, s))
        .collect();
    filed.sort_unstable();
    let expect = |d: u64| (level_for(1000, d), digit(d, level_for(1000, d)));
    assert_eq!(expect(1001), (0, 1001 % 64));
    assert_eq!(expect(NEVER - 1).0, LEVELS - 1);
    let want: Vec<_> = [(3, 1001), (4, 1000 + 4096), (5, NEVER - 1), (6, 1 << 40)]
        .into_iter()
        .map(|(id, d)| (id, expect(d).0, expect(d).1))
        .collect();
    assert_eq!(filed, want);
    h.check(true);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "a node without deadline was scheduled")]
fn scheduling_never_trips_the_debug_assertion() {
    let mut h = Harness::new(0, 1);
    h.schedule(0, NEVER);
}

#[test]
fn stepping_one_tick_at_a_time_fires_each_node_at_its_deadline() {
    let (nodes, ticks) = if cfg!(miri) {
        (24, 150)
    } else {
        (3000, 20_000)
    };
    let mut h = Harness::new(0, nodes);
    let mut rng = Rng::new(11);
    let boundaries = [1, 63, 64, 65, 127, 128, 4095, 4096, 4097];
    for id in 0..nodes as u64 {
        let d = match boundaries.get(id as usize) {
            Some(&b) if b <= ticks => b,
            _ => 1 + rng.below(ticks),
        };
        assert!(h.schedule(id, d));
    }
    let mut fired_total = 0;
    for t in 1..=ticks {
        let (done, fired) = h.advance(t, usize::MAX);
        assert!(done);
        for &(id, d) in &fired {
            assert_eq!(d, t, "{id} fired at {t}, due at {d}");
        }
        fired_total += fired.len();
    }
    assert!(h.model.is_empty(), "never fired: {:?}", h.model);
    assert_eq!(fired_total, nodes);
}

#[test]
fn large_jumps_fire_what_is_due_and_nothing_else() {
    let mut deadlines = vec![NEVER - 1, NEVER - 2, 12_345];
    for l in 1..LEVELS as u32 {
        let span = 1u64 << (SLOT_BITS * l);
        deadlines.extend(
            [span - 1, span, span + 1]
                .into_iter()
                .filter(|&d| d < NEVER),
        );
    }
    let mut rng = Rng::new(3);
    deadlines.extend((0..40).map(|_| (100 + (rng.next() >> (9 + rng.below(40)))).min(NEVER - 1)));
    for start in [0, 77, 4096 * 64 + 5] {
        let mut h = Harness::new(start, deadlines.len());
        for (id, &d) in deadlines.iter().enumerate() {
            h.schedule(id as u64, d);
        }
        h.check(true);
        let targets = [
            start + 1,
            4096,
            4096 * 64 - 1,
            1 << 30,
            (1 << 42) + 5,
            (1 << 54) - 1,
            NEVER - 2,
            NEVER - 1,
        ];
        for target in targets {
            let (done, _) = h.advance(target, usize::MAX);
            assert!(done);
        }
        assert!(h.model.is_empty(), "never fired: {:?}", h.model);
    }
}

#[test]
fn a_budget_stops_mid_slot_and_the_next_call_resumes_there() {
    let mut h = Harness::new(0, 20);
    // Ten nodes due at 5000 (level 2, slot 1: it starts at 4096).
    for id in 0..10 {
        h.schedule(id, 5000);
    }
    let mut calls = 0;
    loop {
        let (done, fired) = h.advance(5000, 3);
        calls += 1;
        assert!(fired.len() <= 3);
        if done {
            break;
        }
        assert_eq!(h.wheel.now(), 4096, "stopped at the slot's start");
    }
    assert_eq!(calls, 4, "3 + 3 + 3 + 1");
    assert!(h.model.is_empty());
    // Ten nodes to cascade: advancing into their slot re-files them, each costing budget.
    for id in 10..20 {
        h.schedule(id, 3 * 4096 + 100 + id);
    }
    let mut spent = 0;
    loop {
        let (done, fired) = h.advance(3 * 4096 + 50, 4);
        assert!(fired.is_empty(), "nothing is due yet");
        spent += 1;
        if done {
            break;
        }
    }
    assert_eq!(spent, 3, "4 + 4 + 2 re-files");
    assert_eq!(h.advance(3 * 4096 + 200, usize::MAX).1.len(), 10);
    // A budget of zero with nothing due still moves `now`.
    assert!(h.advance(1 << 20, 0).0);
    assert_eq!(h.wheel.now(), 1 << 20);
}

#[test]
fn cancel_before_and_after_a_cascade() {
    let mut h = Harness::new(0, 4);
    // 100, 101, 102: all in level 1, slot 1 (ticks 64..128); the list is 2, 1, 0.
    for id in 0..3 {
        h.schedule(id, 100 + id);
    }
    h.cancel(1); // the middle of the list
    h.check(true);
    h.cancel(2); // its head: the next node must take the slot's mark
    h.check(true);
    // SAFETY: the harness owns the wheel and its nodes.
    let linked = unsafe { h.wheel.walk() };
    assert_eq!(linked, vec![(1, 1, h.nodes[0])]);
    // Advancing into the slot cascades node 0 to level 0 (slot 100 - 64 = 36 past 64).
    let (_, fired) = h.advance(70, usize::MAX);
    assert!(fired.is_empty());
    // SAFETY: `walk`'s 1: the harness's nodes live as long as it does; its 2: the harness
    // owns the wheel.
    assert_eq!(unsafe { h.wheel.walk() }, vec![(0, 36, h.nodes[0])]);
    h.cancel(0);
    h.check(true);
    // SAFETY: `walk`'s 1: the harness's nodes live as long as it does; its 2: the harness
    // owns the wheel.
    assert!(unsafe { h.wheel.walk() }.is_empty());
    assert!(h.wheel.levels.iter().all(|l| l.occupied == 0));
    assert!(
        h.advance(1 << 20, usize::MAX).1.is_empty(),
        "a cancelled node fired"
    );
    // A lone node cancelled before any cascade, from a high level.
    h.schedule(3, 1 << 40);
    h.cancel(3);
    assert!(h.wheel.levels.iter().all(|l| l.occupied == 0));
}

#[test]
fn rescheduling_and_moved_deadlines() {
    let mut h = Harness::new(0, 6);
    h.schedule(0, 1000);
    h.cancel(0);
    h.schedule(0, 10); // earlier
    h.schedule(1, 10);
    h.cancel(1);
    h.schedule(1, 5000); // later
                         // Moved while filed: later in its slot, much later, taken away, and earlier.
    h.schedule(2, 100);
    h.retime(2, 120);
    h.schedule(3, 100);
    h.retime(3, 10_000);
    h.schedule(4, 100);
    h.retime(4, NEVER);
    h.schedule(5, 100);
    h.retime(5, 70);
    let mut when = BTreeMap::new();
    // Every tick; under Miri, each deadline and the tick before it.
    let ticks: Vec<u64> = if cfg!(miri) {
        let due = [10, 20, 64, 70, 120, 5000, 10_000];
        due.iter().flat_map(|&d| [d - 1, d]).collect()
    } else {
        (1..=10_000).collect()
    };
    for t in ticks {
        for (id, d) in h.advance(t, usize::MAX).1 {
            when.insert(id, (t, d));
            if id == 0 && t == 10 {
                h.schedule(0, 20); // fired, then scheduled again
            }
        }
    }
    assert_eq!(when[&0], (20, 20));
    assert_eq!(when[&1], (5000, 5000));
    assert_eq!(when[&2], (120, 120), "re-filed at its new deadline");
    assert_eq!(when[&3], (10_000, 10_000));
    assert_eq!(when[&4], (64, NEVER), "handed out when its slot came");
    assert_eq!(
        when[&5],
        (70, 70),
        "re-filed when its slot came, then fired"
    );
    assert!(h.model.is_empty());
}

/// One random operation of [`matches_a_model_over_random_operations`].
fn random_step(h: &mut Harness, rng: &mut Rng) {
    let now = h.wheel.now();
    let id = rng.below(h.nodes.len() as u64);
    let scheduled = h.model.contains_key(&id);
    match rng.below(10) {
        0..=3 if !scheduled => {
            let d = match rng.below(8) {
                0 => now.saturating_sub(rng.below(100)),
                1 => NEVER - 1 - rng.below(4),
                2 => now + 1 + rng.below(64),
                3 => now + 1 + rng.below(4096),
                4 => now + 1 + rng.below(1 << 20),
                _ => now + 1 + (rng.next() >> (24 + rng.below(40))),
            };
            h.schedule(id, d.min(NEVER - 1));
        }
        4 if scheduled => h.cancel(id),
        5 if scheduled => {
            h.cancel(id);
            h.schedule(id, now + 1 + rng.below(5000));
        }
        6 if scheduled => {
            let d = h.model[&id];
            h.retime(id, (d + rng.below(3000)).min(NEVER - 1));
        }
        _ => {
            let jump = match rng.below(6) {
                0 | 1 => 1,
                2 => rng.below(64),
                3 => rng.below(5000),
                4 => rng.below(1 << 22),
                _ => rng.next() >> (26 + rng.below(30)),
            };
            let budget = [1, 3, 17, usize::MAX][rng.below(4) as usize];
            h.advance((now + jump).min(NEVER - 1), budget);
        }
    }
}

#[test]
fn matches_a_model_over_random_operations() {
    let (steps, nodes) = if cfg!(miri) { (150, 16) } else { (40_000, 200) };
    for seed in [1, 2, 0xDEAD_BEEF] {
        let mut rng = Rng::new(seed);
        let mut h = Harness::new(rng.below(1 << 30), nodes);
        for _ in 0..steps {
            random_step(&mut h, &mut rng);
        }
        // Everything left fires once, by the largest deadline.
        while !h.advance(NEVER - 1, 64).0 {}
        assert!(
            h.model.is_empty(),
            "seed {seed}: never fired: {:?}",
            h.model
        );
    }
}
