//! Unit tests for `entry`: the node's nine layouts (with keys and values aligned to 1, 8
//! and 64), its flags word, the three holds as `Reclaim::settle` releases them, the access
//! counter and the deadline's encoding.
//!
//! The holds are released through `Reclaim::settle`, the one place the handshake is
//! written.

use super::layout::*;
use super::links::WheelField;
use super::node::*;
use super::reclaim::Reclaim;
use crate::clock::{DEADLINE_BITS, NEVER};
use crate::intrusive::StackLink;
use crate::sync::Ordering;
use std::fmt::Debug;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// A value that counts its drops.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn drops(counter: &Arc<AtomicUsize>) -> usize {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
struct Wide(u64);

/// Every layout: plain, and extended with each combination of an idle stamp (in a
/// prefix when the node has a TTL deadline, in `meta` when it has none), a weight and a
/// timer.
const LAYOUTS: [Option<ExtInit>; 9] = [
    None,
    Some(ExtInit {
        idle: None,
        weight: 1,
        timer: None,
    }),
    Some(ExtInit {
        idle: Some(7),
        weight: 1,
        timer: None,
    }),
    Some(ExtInit {
        idle: None,
        weight: 3,
        timer: None,
    }),
    Some(ExtInit {
        idle: Some(8),
        weight: 3,
        timer: None,
    }),
    Some(ExtInit {
        idle: None,
        weight: 1,
        timer: Some((400, 123_456)),
    }),
    Some(ExtInit {
        idle: Some(9),
        weight: 1,
        timer: Some((400, 123_456)),
    }),
    Some(ExtInit {
        idle: None,
        weight: u32::MAX,
        timer: Some((400, 123_456)),
    }),
    Some(ExtInit {
        idle: Some(10),
        weight: u32::MAX,
        timer: Some((400, 123_456)),
    }),
];

/// Every layout of a node with this key and value, with a TTL deadline and without:
/// where its parts are, what they hold.
fn check_layouts<K: Copy + PartialEq + Debug, V: Copy + PartialEq + Debug>(key: K, value: V) {
    for ext in LAYOUTS {
        for ttl in [1000, NEVER] {
            check_layout(key, value, ttl, ext);
        }
    }
    // A bare node that keeps its idle stamp in `meta`.
    let raw = NodeBox::idle(42, key, value, 7).into_raw();
    // SAFETY: from `into_raw`: alive until the `from_raw` below, with its provenance.
    let ptr = unsafe { NodePtr::from_raw(raw) };
    assert_eq!((ptr.hash(), ptr.key, ptr.value), (42, key, value));
    assert!(!ptr.is_extended() && ptr.ext().is_none() && ptr.idle_in_meta());
    assert_eq!(
        (ptr.prefixes(), ptr.weight(), ptr.deadline()),
        (0, 1, NEVER)
    );
    assert_ne!(
        ptr.meta.load(Ordering::Relaxed) & QUEUED,
        0,
        "owed to the wheel"
    );
    check_stamp(ptr, Some(7), NEVER);
    // SAFETY: from `into_raw`, reached by nobody else.
    let back = unsafe { NodeBox::from_raw(raw) };
    assert_eq!(back.into_parts(), (key, value));
}

fn check_layout<K: Copy + PartialEq + Debug, V: Copy + PartialEq + Debug>(
    key: K,
    value: V,
    ttl: u64,
    ext: Option<ExtInit>,
) {
    let node = NodeBox::new(42, key, value, ttl, ext);
    let raw = node.into_raw();
    // SAFETY: from `into_raw`: alive until the `from_raw` below, with its provenance.
    let ptr = unsafe { NodePtr::from_raw(raw) };
    let at = |p: *const u8| p.addr();
    assert_eq!(at(raw.cast()) % align_of::<Node<K, V>>(), 0);
    assert_eq!(at((&ptr.key as *const K).cast()) % align_of::<K>(), 0);
    assert_eq!(at((&ptr.value as *const V).cast()) % align_of::<V>(), 0);
    assert_eq!((ptr.hash(), ptr.key, ptr.value), (42, key, value));
    assert_eq!(ptr.deadline(), ttl);
    assert_eq!(ptr.is_extended(), ext.is_some(), "EXT says which layout");
    let meta = ptr.meta.load(Ordering::Relaxed);
    assert_eq!(
        meta & QUEUED != 0,
        ext.is_some() || ttl != NEVER,
        "a node with a deadline or an extension is owed a request"
    );
    match (ext, ptr.ext(), ptr.timer()) {
        (None, None, None) => assert_eq!((ptr.idle(), ptr.prefixes()), (None, 0)),
        (Some(init), Some(e), timer) => {
            assert_eq!(ptr.weight(), init.weight);
            let stamped = init.idle.is_some() && ttl != NEVER;
            assert_eq!(
                ptr.prefixes(),
                if init.weight == 1 { 0 } else { WEIGHED }
                    | if init.timer.is_some() { TIMED } else { 0 }
                    | if stamped { STAMPED } else { 0 },
                "the hash word names the prefixes"
            );
            assert_eq!(ptr.idle_in_meta(), init.idle.is_some() && !stamped);
            check_stamp(ptr, init.idle, ttl);
            assert_eq!(
                ptr.lane(),
                super::lane::home_lane(),
                "the flags leave the lane"
            );
            assert_eq!(
                at((e as *const Ext<K, V>).cast()) % align_of::<Ext<K, V>>(),
                0
            );
            assert!(at((e as *const Ext<K, V>).cast()) + size_of::<Ext<K, V>>() <= at(raw.cast()));
            match (init.timer, timer) {
                (None, None) => assert_eq!(ptr.expiry_deadline(), ttl),
                (Some((policy, written)), Some(t)) => {
                    assert_eq!(t.deadline.load(Ordering::Relaxed), policy.min(ttl));
                    assert_eq!(t.written, written);
                    assert!(at((t as *const Timer).cast()) < at((e as *const Ext<K, V>).cast()));
                    assert_eq!(ptr.expiry_deadline(), 400, "the policy's, earlier");
                }
                other => panic!("timer {other:?}"),
            }
        }
        other => panic!(
            "layout {:?}",
            (other.0, other.1.is_some(), other.2.is_some())
        ),
    }
    // SAFETY: from `into_raw`, reached by nobody else.
    let back = unsafe { NodeBox::from_raw(raw) };
    assert_eq!(back.into_parts(), (key, value));
}

/// The idle stamp `idle` a node was made with moves only later, and its TTL deadline
/// `ttl`, the weight and the flags stay.
fn check_stamp<K, V>(ptr: NodePtr<'_, K, V>, idle: Option<u64>, ttl: u64) {
    assert_eq!(ptr.idle(), idle);
    let Some(idle) = idle else {
        ptr.stamp(50);
        assert_eq!(ptr.idle(), None, "no stamp to raise");
        return;
    };
    let (weight, flags) = (ptr.weight(), ptr.meta.load(Ordering::Relaxed) & !NEVER);
    ptr.stamp(idle + 50);
    assert_eq!(ptr.idle(), Some(idle + 50));
    ptr.stamp(idle + 20);
    assert_eq!(ptr.idle(), Some(idle + 50), "a stamp never moves back");
    assert_eq!(ptr.deadline(), ttl, "stamps leave the TTL deadline");
    assert_eq!(ptr.weight(), weight);
    assert_eq!(ptr.meta.load(Ordering::Relaxed) & !NEVER, flags);
}

#[test]
fn layouts_with_alignments_1_8_and_64() {
    check_layouts(1u8, 2u8);
    check_layouts(1u64, 2u8);
    check_layouts(1u8, 2u64);
    check_layouts(Wide(1), 2u8);
    check_layouts(1u8, Wide(2));
    check_layouts(Wide(1), Wide(2));
    check_layouts((), ());
    assert_eq!(
        size_of::<Node<u64, u64>>(),
        48,
        "32 bytes plus the key and value"
    );
}

#[test]
fn every_layout_drops_its_key_and_value_once() {
    for ext in LAYOUTS {
        for deadline in [NEVER, 5] {
            let counter = Arc::new(AtomicUsize::new(0));
            let c = || Counted(counter.clone());
            drop(NodeBox::new(1, c(), c(), deadline, ext));
            assert_eq!(drops(&counter), 2, "dropped: key and value");
            // `into_parts` hands both back without dropping them, and frees the rest.
            let (k, v) = NodeBox::new(1, c(), c(), deadline, ext).into_parts();
            assert_eq!(drops(&counter), 2);
            drop((k, v));
            assert_eq!(drops(&counter), 4);
            // `free` through a raw pointer picks the layout from the node.
            let raw = NodeBox::new(1, c(), c(), deadline, ext).into_raw();
            // SAFETY: from `NodeBox::new`, owned here, freed once.
            unsafe { free(raw) };
            assert_eq!(drops(&counter), 6);
        }
    }
    let counter = Arc::new(AtomicUsize::new(0));
    let c = || Counted(counter.clone());
    drop(NodeBox::idle(1, c(), c(), 3));
    let raw = NodeBox::idle(1, c(), c(), 3).into_raw();
    // SAFETY: from `NodeBox::idle`, owned here, freed once.
    unsafe { free(raw) };
    assert_eq!(
        drops(&counter),
        4,
        "a bare idle node drops its key and value"
    );
}

#[test]
fn flags_are_distinct_bits_above_the_deadline() {
    let flags = [
        QUEUED, REMOVED, SPARE, UNLINKED, DETACHED, RELEASED, IN_MAIN,
    ];
    let freq = FREQ_MAX << FREQ_SHIFT;
    let mut all = NEVER;
    for f in flags.into_iter().chain([freq]) {
        assert_eq!(all & f, 0, "{f:#x} overlaps another field");
        all |= f;
    }
    assert_eq!(all, u64::MAX, "the word is fully used");
    assert!(flags.iter().all(|f| f.is_power_of_two()));
    assert_eq!(QUEUED, 1 << DEADLINE_BITS);
    assert_eq!(HOLDS, UNLINKED | DETACHED | RELEASED);
    assert_eq!(FREQ_ONE, 1 << FREQ_SHIFT);
    assert_eq!(
        u64::MAX >> FREQ_SHIFT,
        FREQ_MAX,
        "the counter is the top bits"
    );
}

#[test]
fn the_deadline_reads_through_flags_and_counts() {
    for d in [0, 1, 12_345, NEVER - 1, NEVER] {
        let node = Node::new(9, 1u64, 2u64, d);
        let meta = node.meta.load(Ordering::Relaxed);
        assert_eq!(node.deadline(), d);
        assert_eq!(
            meta & QUEUED != 0,
            d != NEVER,
            "queued iff it has a deadline"
        );
        assert_eq!(meta & !(NEVER | QUEUED), 0, "no other flag at birth");
        assert_eq!(node.freq(), 0);
        node.meta.fetch_or(!NEVER, Ordering::Relaxed);
        assert_eq!(node.deadline(), d, "flags and counter never leak into it");
        assert_eq!(node.freq(), FREQ_MAX);
    }
    // An extended node is always queued (the maintainer files it in the eviction queues).
    let init = ExtInit {
        idle: None,
        weight: 1,
        timer: None,
    };
    let node = NodeBox::new(1, 1u64, 1u64, NEVER, Some(init));
    assert_eq!(node.meta.load(Ordering::Relaxed) & !NEVER, QUEUED);
    assert!(node.is_extended());
    // The timer keeps the policy's own deadline; the entry lapses at the earlier of it and
    // the TTL's.
    for (policy, ttl, want) in [
        (10, 20, 10),
        (30, 20, 20),
        (NEVER, NEVER, NEVER),
        (5, NEVER, 5),
    ] {
        let timer = Some((policy, 0));
        let node = NodeBox::new(1, 1u64, 1u64, ttl, Some(ExtInit { timer, ..init }));
        // SAFETY: owned by `node`, alive while `ptr` is used.
        let ptr = unsafe { NodePtr::from_raw(NodeBox::into_raw(node)) };
        assert_eq!(
            (ptr.deadline(), ptr.policy_deadline(), ptr.expiry_deadline()),
            (ttl, policy, want)
        );
        // SAFETY: from `into_raw`, reached by nobody else.
        drop(unsafe { NodeBox::from_raw(ptr.as_ptr()) });
    }
}

#[test]
fn the_access_counter_saturates_and_leaves_the_rest_alone() {
    let node = Node::new(1, 1u64, 1u64, NEVER - 1);
    node.meta.fetch_or(REMOVED | UNLINKED, Ordering::Relaxed);
    let rest = node.meta.load(Ordering::Relaxed);
    for want in 1..=FREQ_MAX {
        node.touch();
        assert_eq!(node.freq(), want);
    }
    for _ in 0..3 {
        node.touch();
        assert_eq!(node.freq(), FREQ_MAX, "saturates at FREQ_MAX");
    }
    assert_eq!(
        node.meta.load(Ordering::Relaxed) & !(FREQ_MAX << FREQ_SHIFT),
        rest
    );
    for was in (1..=FREQ_MAX).rev() {
        assert_eq!(node.age(), was, "age returns what it was");
        assert_eq!(node.freq(), was - 1);
    }
    assert_eq!(node.age(), 0);
    assert_eq!(node.freq(), 0, "never wraps below zero");
    node.touch();
    node.touch();
    node.clear_freq();
    assert_eq!(node.freq(), 0);
    assert_eq!(
        node.meta.load(Ordering::Relaxed),
        rest,
        "deadline and flags untouched"
    );
}

#[test]
fn the_stack_link_round_trips() {
    let a = NodeBox::new(1, 1u64, 1u64, NEVER, None);
    let b = NodeBox::new(2, 2u64, 2u64, NEVER, None).into_raw();
    let a = a.into_raw();
    // SAFETY: `next`'s and `set_next`'s 1: we own both nodes, alive until dropped here;
    // their 2: neither is on a stack or in a wheel slot, and this is the only thread.
    unsafe {
        assert!(WheelField::next(a).is_null(), "a new node links nowhere");
        WheelField::set_next(a, b);
        assert_eq!(WheelField::next(a), b);
        drop(NodeBox::from_raw(b));
        drop(NodeBox::from_raw(a));
    }
}

/// A node the test still owns unless `settle` retired it: dropping it frees the node
/// unless its stack link shows it in the reclamation's limbo (behind `dummy`), even when a
/// release panics.
struct Unretired {
    raw: *mut Node<u64, Counted>,
    dummy: *mut Node<u64, Counted>,
}

impl Unretired {
    fn ptr(&self) -> NodePtr<'_, u64, Counted> {
        // SAFETY: alive: freed by our drop, or retired into a limbo that outlives us.
        unsafe { NodePtr::from_raw(self.raw) }
    }

    /// Whether `settle` retired the node: `retire` pushed it onto the limbo, on `dummy`.
    fn retired(&self) -> bool {
        // SAFETY: single-threaded: nobody else touches the link; in no wheel slot.
        unsafe { WheelField::next(self.raw) == self.dummy }
    }
}

impl Drop for Unretired {
    fn drop(&mut self) {
        if !self.retired() {
            // SAFETY: from `into_raw`, never retired, so nobody else frees it.
            drop(unsafe { NodeBox::from_raw(self.raw) });
        }
    }
}

fn counted(counter: &Arc<AtomicUsize>) -> *mut Node<u64, Counted> {
    NodeBox::new(1, 1, Counted(counter.clone()), NEVER, None).into_raw()
}

/// A node with a reclamation of its own, released in the given steps. Returns whether it
/// was retired after each step, its drops before the reclamation is dropped, and after.
fn settle_steps(steps: &[u64]) -> (Vec<bool>, usize, usize) {
    let counter = Arc::new(AtomicUsize::new(0));
    let reclaim: Reclaim<u64, Counted> = Reclaim::new();
    let dummy = counted(&Arc::new(AtomicUsize::new(0)));
    // SAFETY: `retire`'s 1: from `NodeBox::new` via `into_raw`; its 2: a fresh node nobody
    // else reaches; its 3: retired once, here; its 4: no other holder ever touched it.
    unsafe { reclaim.retire(dummy) };
    let node = Unretired {
        raw: counted(&counter),
        dummy,
    };
    let mut retired = Vec::new();
    for &hold in steps {
        reclaim.settle(node.ptr(), hold);
        retired.push(node.retired());
    }
    drop(node);
    let before = drops(&counter);
    drop(reclaim); // its drop frees what was retired
    (retired, before, drops(&counter))
}

#[test]
fn each_order_of_the_three_releases_frees_once() {
    let holds = [UNLINKED, DETACHED, RELEASED];
    for a in 0..3 {
        for b in (0..3).filter(|&b| b != a) {
            let order = [holds[a], holds[b], holds[3 - a - b]];
            for k in 0..=3 {
                let (retired, before, after) = settle_steps(&order[..k]);
                let want: Vec<bool> = (1..=k).map(|i| i == 3).collect();
                assert_eq!(
                    retired, want,
                    "{order:?}[..{k}]: retired by the last hold only"
                );
                assert_eq!(before, usize::from(k < 3), "{order:?}[..{k}]");
                assert_eq!(after, 1, "{order:?}[..{k}]: freed exactly once");
            }
        }
    }
    // Several at once, with other flags, as the remover and the maintainer release them.
    let all = REMOVED | UNLINKED | DETACHED | RELEASED;
    assert_eq!(settle_steps(&[all]), (vec![true], 0, 1));
    let two = [REMOVED | UNLINKED | RELEASED, DETACHED];
    assert_eq!(settle_steps(&two), (vec![false, true], 0, 1));
    let short = [DETACHED, REMOVED | UNLINKED | QUEUED];
    assert_eq!(settle_steps(&short), (vec![false, false], 1, 1));
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "a hold released twice")]
fn a_hold_released_twice_trips_the_debug_assertion() {
    settle_steps(&[RELEASED, UNLINKED, RELEASED]);
}

#[cfg(debug_assertions)]
#[test]
fn every_hold_released_twice_trips_the_debug_assertion() {
    for hold in [UNLINKED, DETACHED, RELEASED] {
        let caught = std::panic::catch_unwind(|| settle_steps(&[hold, hold]));
        let message = caught.expect_err("a second release must panic");
        let text = message.downcast_ref::<String>().map(String::as_str);
        assert!(
            text.is_some_and(|t| t.contains("a hold released twice")),
            "{text:?}"
        );
    }
}

/// An idle stamp kept in `meta` shares the word with the queue mark, the lifecycle flags
/// and the access counter: the stamp only moves later and keeps them, and their changes
/// keep the stamp, also while another thread stamps.
#[test]
fn an_idle_stamp_in_meta_and_the_other_bits_keep_each_other() {
    let init = ExtInit {
        idle: Some(5),
        weight: 1,
        timer: None,
    };
    let raw = NodeBox::new(1, 1u64, 1u64, NEVER, Some(init)).into_raw();
    // SAFETY: from `into_raw`: alive until the `from_raw` below, with its provenance.
    let ptr = unsafe { NodePtr::from_raw(raw) };
    assert!(ptr.idle_in_meta());
    assert_eq!((ptr.idle(), ptr.in_main()), (Some(5), false));
    ptr.set_in_main(true);
    ptr.touch();
    assert_eq!((ptr.idle(), ptr.in_main(), ptr.freq()), (Some(5), true, 1));
    ptr.stamp(9);
    assert_eq!((ptr.idle(), ptr.in_main(), ptr.freq()), (Some(9), true, 1));
    ptr.stamp(NEVER);
    assert_eq!(
        (ptr.idle(), ptr.in_main(), ptr.deadline()),
        (Some(NEVER), true, NEVER),
        "the largest tick keeps the mark"
    );
    ptr.set_in_main(false);
    assert_eq!((ptr.idle(), ptr.in_main()), (Some(NEVER), false));
    // SAFETY: from `into_raw`, reached by nobody else.
    drop(unsafe { NodeBox::from_raw(raw) });

    // One thread stamps every tick up to `LAST` while another moves the mark and the
    // counter round until it is done: a stamp, once made, is never undone by their
    // changes (the stamper checks after each), and the last mark stays.
    const LAST: u64 = if cfg!(miri) { 200 } else { 2_000_000 };
    let init = ExtInit {
        idle: Some(0),
        ..init
    };
    let raw = NodeBox::new(1, 1u64, 1u64, NEVER, Some(init)).into_raw();
    /// The node, shared by threads that touch only its atomic `meta`.
    struct MetaOnly(*mut Node<u64, u64>);
    // SAFETY: the threads below call only `stamp`, `idle`, `set_in_main`, `touch` and
    // `age`, which touch the atomic `meta` and the immutable hash word alone, never the
    // links in their cells; the node outlives both threads.
    unsafe impl Sync for MetaOnly {}
    impl MetaOnly {
        fn ptr(&self) -> NodePtr<'_, u64, u64> {
            // SAFETY: `from_raw`'s 1: from `into_raw`, so not null and alive; its 2: freed
            // only after both threads end, so alive while `&self` is; its 3: the pointer
            // `into_raw` gave.
            unsafe { NodePtr::from_raw(self.0) }
        }
    }
    let shared = MetaOnly(raw);
    let (start, done) = (
        std::sync::Barrier::new(2),
        std::sync::atomic::AtomicBool::new(false),
    );
    let (undone, moves) = std::thread::scope(|s| {
        let stamper = s.spawn(|| {
            start.wait();
            let undone = (1..=LAST)
                .filter(|&t| {
                    shared.ptr().stamp(t);
                    shared.ptr().idle() < Some(t)
                })
                .count();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            undone
        });
        let mover = s.spawn(|| {
            start.wait();
            let mut moves = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                moves += 1;
                shared.ptr().set_in_main(moves % 2 == 0);
                shared.ptr().touch();
                shared.ptr().age();
            }
            shared.ptr().set_in_main(true);
            moves
        });
        (stamper.join().unwrap(), mover.join().unwrap())
    });
    assert_eq!(
        undone, 0,
        "stamps undone by other changes ({moves} changes)"
    );
    let ptr = shared.ptr();
    assert_eq!(
        (ptr.idle(), ptr.in_main(), ptr.deadline()),
        (Some(LAST), true, NEVER)
    );
    // SAFETY: from `into_raw`, reached by nobody else now.
    drop(unsafe { NodeBox::from_raw(raw) });
}
