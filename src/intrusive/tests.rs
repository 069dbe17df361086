//! Unit tests for the intrusive list and stack, on a node of their own: the list checked
//! against a model (a `Vec` per list) under random pushes, inserts, pops and unlinks, with
//! every link walked after each step; the stack pushed from several threads while another
//! takes, every node seen exactly once.

use super::list::{is_node, splice_out, tag_if_first};
use super::*;
use crate::sync::UnsafeCell;
use std::collections::HashSet;
use std::ptr;

/// A test node: an id and one set of links, used by the list or by the stack.
struct TestNode {
    id: usize,
    links: UnsafeCell<Links<TestNode>>,
}

fn node(id: usize) -> *mut TestNode {
    Box::into_raw(Box::new(TestNode {
        id,
        links: UnsafeCell::new(Links::new()),
    }))
}

/// The adapter: a test node's only links.
struct ByLinks;

// SAFETY: `with_links` hands `f` the node's `links` field on every call, and touches
// nothing else.
unsafe impl ListLinks for ByLinks {
    type Node = TestNode;

    unsafe fn with_links<R>(node: *mut TestNode, f: impl FnOnce(&mut Links<TestNode>) -> R) -> R {
        // SAFETY: `with_links`' 1: alive; its 2: no other access while `f` runs.
        unsafe { (*node).links.with_mut(|l| f(&mut *l)) }
    }
}

// SAFETY: `set_next` writes and `next` reads the same field, `links.next`, and nothing else.
unsafe impl StackLink for ByLinks {
    type Node = TestNode;

    unsafe fn set_next(node: *mut TestNode, next: *mut TestNode) {
        // SAFETY: `set_next`'s 1: alive; its 2: the link is ours alone.
        unsafe { (*node).links.with_mut(|l| (*l).next = next) }
    }

    unsafe fn next(node: *mut TestNode) -> *mut TestNode {
        // SAFETY: `next`'s 1: alive; its 2: no write races this read.
        unsafe { (*node).links.with(|l| (*l).next) }
    }
}

/// The tag of model list `i`: an odd address (list 0 uses null, as the eviction queues do).
fn tag(i: usize) -> *mut TestNode {
    if i == 0 {
        ptr::null_mut()
    } else {
        ptr::without_provenance_mut((i << 1) | 1)
    }
}

/// Walks `list` (tagged `t`) and checks it holds exactly `model`, in order, with every
/// back link and the tag in place.
///
/// # Safety
/// Every node on the list is alive, and this thread owns their links.
unsafe fn check(list: &List<ByLinks>, t: *mut TestNode, model: &[*mut TestNode]) {
    let mut prev = t;
    let mut node = list.head();
    let mut seen = Vec::new();
    while !node.is_null() {
        // SAFETY: `with_links`' 1 and 2: alive and ours (our obligation).
        let (p, next) = unsafe { ByLinks::with_links(node, |l| (l.prev, l.next)) };
        // SAFETY: alive (our obligation), and `id` is never written after the node is made.
        let id = unsafe { (*node).id };
        assert_eq!(p, prev, "back link of node {id}");
        seen.push(node);
        prev = node;
        node = next;
    }
    assert_eq!(seen, model, "the list's order");
}

/// A seeded xorshift64*: the same sequence on every run.
fn rng(state: &mut u64) -> usize {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize
}

#[test]
fn lists_follow_a_model_through_random_operations() {
    const NODES: usize = 24;
    const LISTS: usize = 3;
    let nodes: Vec<_> = (0..NODES).map(node).collect();
    let mut lists: Vec<List<ByLinks>> = (0..LISTS).map(|_| List::default()).collect();
    let mut model: Vec<Vec<*mut TestNode>> = vec![Vec::new(); LISTS];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let steps = if cfg!(miri) { 400 } else { 20_000 };
    for _ in 0..steps {
        let n = nodes[rng(&mut state) % NODES];
        let on = model.iter().position(|m| m.contains(&n));
        let l = rng(&mut state) % LISTS;
        // SAFETY: for every call below, the nodes live until the end of the test (each
        // list's 1 to 3, and `tag_if_first`'s and `splice_out`'s 1 and 2: the model says
        // which list each node is on and where), this thread owns every link (their
        // ownership obligation), and `tag` is odd or null (`push_front`'s 5).
        unsafe {
            match on {
                None if rng(&mut state) % 2 == 0 || model[l].is_empty() => {
                    lists[l].push_front(tag(l), n);
                    model[l].insert(0, n);
                }
                None => {
                    let at = model[l][rng(&mut state) % model[l].len()];
                    lists[l].insert_after(at, n);
                    let i = model[l].iter().position(|&x| x == at).unwrap();
                    model[l].insert(i + 1, n);
                }
                Some(i) => {
                    let first = model[i][0] == n;
                    assert_eq!(tag_if_first::<ByLinks>(n), first.then_some(tag(i)));
                    match rng(&mut state) % 3 {
                        0 if first => assert_eq!(lists[i].pop_front(), Some(n)),
                        1 if !first => splice_out::<ByLinks>(n),
                        _ => {
                            let prev = lists[i].unlink(n);
                            let at = model[i].iter().position(|&x| x == n).unwrap();
                            let want = if at == 0 { tag(i) } else { model[i][at - 1] };
                            assert_eq!(prev, want, "unlink returns the old prev");
                            assert_eq!(is_node(prev), at > 0);
                        }
                    }
                    model[i].retain(|&x| x != n);
                    let unlinked = ByLinks::with_links(n, |l| l.prev.is_null() && l.next.is_null());
                    assert!(unlinked, "an unlinked node keeps no links");
                }
            }
            for (i, list) in lists.iter().enumerate() {
                check(list, tag(i), &model[i]);
            }
            for &n in nodes
                .iter()
                .filter(|n| !model.iter().any(|m| m.contains(n)))
            {
                let prev = ByLinks::with_links(n, |l| l.prev);
                assert!(prev.is_null(), "a node on no list has a null prev");
            }
        }
    }
    for n in nodes {
        // SAFETY: from `Box::into_raw`, freed once; the lists are not used after this.
        drop(unsafe { Box::from_raw(n) });
    }
}

#[test]
fn every_pushed_node_is_taken_exactly_once() {
    const THREADS: usize = 3;
    let per = if cfg!(miri) { 20 } else { 2_000 };
    let stack: Stack<ByLinks> = Stack::default();
    let mut seen = HashSet::new();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let stack = &stack;
            s.spawn(move || {
                for i in 0..per {
                    // SAFETY: `push`'s 1: fresh, freed only after the taker took it; its
                    // 2: fresh, so its link is ours until a take; its 3: a `TestNode` is
                    // plain data, fine to free on the taker's thread.
                    unsafe { stack.push(node(t * per + i)) };
                }
            });
        }
        // Take while the pushers push: every chain is ours alone.
        while seen.len() < THREADS * per {
            let mut chain = stack.take();
            // SAFETY: `pop`'s 1: nodes are freed only below, after `pop` moved past them;
            // its 2: the take made the chain ours.
            while let Some(n) = unsafe { chain.pop() } {
                // SAFETY: from `Box::into_raw`, taken once, freed once.
                let id = unsafe { Box::from_raw(n) }.id;
                assert!(seen.insert(id), "node {id} taken twice");
            }
            std::hint::spin_loop();
        }
    });
    assert!(stack.looks_empty());
    assert!(stack.take().is_empty());
}

#[test]
fn a_taken_chain_reversed_gives_the_oldest_first_within_its_limit() {
    let stack: Stack<ByLinks> = Stack::default();
    // SAFETY: reversing nothing touches no node.
    assert!(unsafe { stack.take().reversed_within(0) }.is_ok_and(|c| c.is_empty()));
    // The ids a chain of five pushed nodes yields, reversed within `limit` (or as it was,
    // newest first, when longer); frees the nodes.
    let walk = |limit: usize| -> (bool, Vec<usize>) {
        for id in 0..5 {
            // SAFETY: `push`'s 1: fresh, freed below after it is taken; its 2: fresh, so
            // its link is ours until the take; its 3: plain data, freed on this thread.
            unsafe { stack.push(node(id)) };
        }
        // SAFETY: `reversed_within`'s 1: every node is alive until freed below; its 2:
        // the take made the chain ours.
        let (ok, mut chain) = match unsafe { stack.take().reversed_within(limit) } {
            Ok(chain) => (true, chain),
            Err(chain) => (false, chain),
        };
        let mut ids = Vec::new();
        // SAFETY: `pop`'s 1: nodes are freed only after `pop` moved past them; its 2:
        // ours.
        while let Some(n) = unsafe { chain.pop() } {
            // SAFETY: from `Box::into_raw`, taken once, freed once.
            ids.push(unsafe { Box::from_raw(n) }.id);
        }
        (ok, ids)
    };
    assert_eq!(walk(5), (true, vec![0, 1, 2, 3, 4]), "pushed order");
    assert_eq!(walk(9), (true, vec![0, 1, 2, 3, 4]));
    assert_eq!(walk(4), (false, vec![4, 3, 2, 1, 0]), "too long: as it was");
    assert_eq!(walk(0), (false, vec![4, 3, 2, 1, 0]));
}
