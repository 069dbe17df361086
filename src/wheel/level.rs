//! One level of the wheel: 64 slot lists and a bitmap of the non-empty ones.

use super::LEVELS;
use crate::entry::node::{Node, WheelLinks};
use crate::sync::UnsafeCell;
use std::ptr;

/// Slots per level (one `u64` occupancy word).
pub(crate) const SLOTS: usize = 64;

/// A doubly linked list of nodes threaded through `Node::wheel`, headed here. The first
/// node's `prev` is not null but a *slot mark* ([`mark`]): which level and slot head it,
/// so cancelling a head needs no deadline (an idle-expiring entry's wheel deadline moves).
#[derive(Debug)]
pub(crate) struct List<K, V> {
    pub(crate) head: *mut Node<K, V>,
}

impl<K, V> Default for List<K, V> {
    fn default() -> Self {
        Self {
            head: ptr::null_mut(),
        }
    }
}

/// The `prev` of a list's first node: its level and slot, with the low bit set (nodes are
/// at least 8-aligned, so no node pointer has it). Never dereferenced.
pub(crate) fn mark<K, V>(level: usize, slot: usize) -> *mut Node<K, V> {
    debug_assert!(
        level < LEVELS && slot < SLOTS,
        "slot mark out of range: level {level}, slot {slot}"
    );
    ptr::without_provenance_mut(((level * SLOTS + slot) << 1) | 1)
}

/// The level and slot a slot mark names; `None` for a node pointer (or null).
pub(crate) fn unmark<K, V>(prev: *mut Node<K, V>) -> Option<(usize, usize)> {
    let a = prev.addr();
    (a & 1 == 1).then_some(((a >> 1) / SLOTS, (a >> 1) % SLOTS))
}

/// Reads a node's wheel links.
///
/// # Safety
/// 1. `node` points to a live node (scheduled nodes are: they are not `DETACHED`, so not
///    retired).
/// 2. The caller holds the segment's maintenance lock, which guards every node's `wheel`
///    field while the node is on one of the segment's wheel lists or being linked into
///    one (then no stack or limbo uses `wheel.next`), and this node is.
unsafe fn links<K, V>(node: *mut Node<K, V>) -> (*mut Node<K, V>, *mut Node<K, V>) {
    // SAFETY: 1: the node is alive, so a shared reference to its field is valid (only
    // shared references to nodes are ever made).
    let cell: &UnsafeCell<WheelLinks<K, V>> = unsafe { &(*node).wheel };
    // SAFETY: 2: the lock is held and the field is the wheel's, so nothing writes it
    // during this read, and earlier writes (under the lock) happen-before it.
    cell.with(|l| unsafe { ((*l).prev, (*l).next) })
}

/// Writes a node's wheel links.
///
/// # Safety
/// 1. `node` points to a live node.
/// 2. The caller holds the segment's maintenance lock, and the node is on one of the
///    segment's wheel lists or being linked into one (so the lock guards its `wheel`).
unsafe fn set_links<K, V>(node: *mut Node<K, V>, prev: *mut Node<K, V>, next: *mut Node<K, V>) {
    // SAFETY: 1: the node is alive, so a shared reference to its field is valid.
    let cell: &UnsafeCell<WheelLinks<K, V>> = unsafe { &(*node).wheel };
    // SAFETY: 2: the lock is held and the field is the wheel's, so no other access to it
    // exists during this write.
    cell.with_mut(|l| unsafe { *l = WheelLinks { prev, next } });
}

/// Sets only `prev` of a neighbour.
///
/// # Safety
/// 1. `node` points to a live node.
/// 2. The caller holds the segment's maintenance lock, and the node is on one of the
///    segment's wheel lists (so the lock guards its `wheel`).
unsafe fn set_prev<K, V>(node: *mut Node<K, V>, prev: *mut Node<K, V>) {
    // SAFETY: 1: the node is alive, so a shared reference to its field is valid.
    let cell: &UnsafeCell<WheelLinks<K, V>> = unsafe { &(*node).wheel };
    // SAFETY: 2: the lock is held and the field is the wheel's: no other access exists.
    cell.with_mut(|l| unsafe { (*l).prev = prev });
}

/// Sets only `next` of a neighbour.
///
/// # Safety
/// 1. `node` points to a live node.
/// 2. The caller holds the segment's maintenance lock, and the node is on one of the
///    segment's wheel lists (so the lock guards its `wheel`).
unsafe fn set_next<K, V>(node: *mut Node<K, V>, next: *mut Node<K, V>) {
    // SAFETY: 1: the node is alive, so a shared reference to its field is valid.
    let cell: &UnsafeCell<WheelLinks<K, V>> = unsafe { &(*node).wheel };
    // SAFETY: 2: the lock is held and the field is the wheel's: no other access exists.
    cell.with_mut(|l| unsafe { (*l).next = next });
}

/// Takes `node` out of its list, fixing its neighbours; returns its old successor. The
/// list's head must be fixed by the caller when `node` was first.
///
/// # Safety
/// 1. `node` is alive and on one of the segment's wheel lists.
/// 2. Its neighbours there (its `prev` unless that is a slot mark, its `next` unless
///    null) are alive.
/// 3. The caller holds the segment's maintenance lock.
pub(crate) unsafe fn splice_out<K, V>(node: *mut Node<K, V>) -> *mut Node<K, V> {
    // SAFETY: `links`' and `set_links`' 1 and 2 for `node`: our 1 and 3. `set_next`'s
    // and `set_prev`'s (and the checks' `links`') 1 and 2 for the neighbours: our 2 and 3
    // (they are on the same list, so the lock guards their links too).
    unsafe {
        let (prev, next) = links(node);
        debug_assert!(
            !prev.is_null(),
            "splicing out {node:p}, which is on no list (prev null, next {next:p})"
        );
        if !prev.is_null() && unmark(prev).is_none() {
            debug_assert!(
                links(prev).1 == node,
                "{node:p}'s prev {prev:p} has next {:p}",
                links(prev).1
            );
            set_next(prev, next);
        }
        if !next.is_null() {
            debug_assert!(
                links(next).0 == node,
                "{node:p}'s next {next:p} has prev {:p}",
                links(next).0
            );
            set_prev(next, prev);
        }
        set_links(node, ptr::null_mut(), ptr::null_mut());
        next
    }
}

impl<K, V> List<K, V> {
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Pushes `node` at the head; `mark` is this list's slot mark.
    ///
    /// # Safety
    /// 1. `node` is alive, and stays alive until it is unlinked (popped or cancelled).
    /// 2. `node` is on no wheel list.
    /// 3. Every node on this list is alive.
    /// 4. The caller holds the segment's maintenance lock.
    /// 5. `mark` is this list's slot mark (its level and slot): `Wheel::cancel` trusts it
    ///    to find the list whose head to fix.
    pub(crate) unsafe fn push(&mut self, mark: *mut Node<K, V>, node: *mut Node<K, V>) {
        debug_assert!(unmark(mark).is_some(), "{mark:p} is not a slot mark");
        // SAFETY: `links`' and `set_links`' 1 and 2 for `node`: our 1 and 4 (it is being
        // linked into this list); `links`' and `set_prev`'s for the head: our 3 and 4.
        unsafe {
            debug_assert!(
                links(node).0.is_null() && node != self.head,
                "pushing {node:p} (prev {:p}), already on a list, onto {mark:p}",
                links(node).0
            );
            debug_assert!(
                self.head.is_null() || links(self.head).0 == mark,
                "head {:p} of {mark:p} has prev {:p}",
                self.head,
                links(self.head).0
            );
            set_links(node, mark, self.head);
            if !self.head.is_null() {
                set_prev(self.head, node);
            }
        }
        self.head = node;
    }

    /// Pops the head.
    ///
    /// # Safety
    /// 1. Every node on this list is alive.
    /// 2. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn pop(&mut self) -> Option<*mut Node<K, V>> {
        if self.head.is_null() {
            return None;
        }
        let node = self.head;
        // SAFETY: `unlink`'s 1: the head is on this list; its 2 and 3: our 1 and 2.
        unsafe { self.unlink(node) };
        Some(node)
    }

    /// Unlinks `node`, which is on this list, in O(1).
    ///
    /// # Safety
    /// 1. `node` is on this list.
    /// 2. Every node on this list is alive.
    /// 3. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn unlink(&mut self, node: *mut Node<K, V>) {
        // SAFETY: `links`' 1 and 2: `node` is alive (our 1 and 2) and on this list, whose
        // links the lock guards (our 3).
        let prev = unsafe { links(node).0 };
        debug_assert!(
            (self.head == node) == unmark(prev).is_some(),
            "unlinking {node:p} (prev {prev:p}) from a list headed by {:p}",
            self.head
        );
        // SAFETY: `splice_out`'s 1: `node` is alive and on this list (our 1 and 2); its 2:
        // its neighbours are on this list too, so alive (our 2); its 3: our 3.
        let next = unsafe { splice_out(node) };
        if self.head == node {
            self.head = next;
        }
    }

    /// The level and slot whose list `node` heads, or `None` if it has a predecessor.
    ///
    /// # Safety
    /// 1. `node` is alive and on one of the segment's wheel lists.
    /// 2. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn head_of(node: *mut Node<K, V>) -> Option<(usize, usize)> {
        // SAFETY: `links`' 1: our 1; its 2: our 2, and the node is on a wheel list.
        unmark(unsafe { links(node).0 })
    }
}

/// 64 slots of one span, and which of them are non-empty.
#[derive(Debug)]
pub(crate) struct Level<K, V> {
    pub(crate) occupied: u64,
    pub(crate) slots: [List<K, V>; SLOTS],
}

impl<K, V> Default for Level<K, V> {
    fn default() -> Self {
        Self {
            occupied: 0,
            slots: std::array::from_fn(|_| List::default()),
        }
    }
}

impl<K, V> Level<K, V> {
    /// Whether `slot`'s occupancy bit says what its list holds (the bitmap's invariant).
    fn bit_matches(&self, slot: usize) -> bool {
        ((self.occupied >> slot) & 1 == 1) != self.slots[slot].is_empty()
    }

    /// Links `node` into `slot`; `level` is this level's index in its wheel.
    ///
    /// # Safety
    /// 1. `node` is alive, and stays alive until it is unlinked (popped or cancelled).
    /// 2. `node` is on no wheel list.
    /// 3. Every node in this level's slots is alive.
    /// 4. The caller holds the segment's maintenance lock.
    /// 5. `level` is this level's index in its wheel (the slot mark names it).
    pub(crate) unsafe fn push(&mut self, level: usize, slot: usize, node: *mut Node<K, V>) {
        debug_assert!(
            slot < SLOTS && self.bit_matches(slot),
            "level {level}, slot {slot}: occupancy {:#x} disagrees with the list",
            self.occupied
        );
        // SAFETY: `List::push`'s 1, 2 and 4: our 1, 2 and 4; its 3: our 3; its 5: the mark
        // names this level (our 5) and this slot.
        unsafe { self.slots[slot].push(mark(level, slot), node) };
        self.occupied |= 1 << slot;
    }

    /// Takes the first node of `slot` out.
    ///
    /// # Safety
    /// 1. Every node in `slot` is alive.
    /// 2. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn pop(&mut self, slot: usize) -> Option<*mut Node<K, V>> {
        debug_assert!(
            slot < SLOTS && self.bit_matches(slot),
            "slot {slot}: occupancy {:#x} disagrees with the list",
            self.occupied
        );
        // SAFETY: `List::pop`'s 1 and 2: our 1 and 2.
        let node = unsafe { self.slots[slot].pop() };
        if self.slots[slot].is_empty() {
            self.occupied &= !(1 << slot);
        }
        node
    }

    /// Takes `node`, which is in `slot`, out in O(1).
    ///
    /// # Safety
    /// 1. `node` is on `slot`'s list.
    /// 2. Every node on that list is alive.
    /// 3. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn unlink(&mut self, slot: usize, node: *mut Node<K, V>) {
        debug_assert!(
            slot < SLOTS && (self.occupied >> slot) & 1 == 1 && self.bit_matches(slot),
            "unlinking {node:p} from slot {slot}, not occupied ({:#x})",
            self.occupied
        );
        // SAFETY: `List::unlink`'s 1, 2 and 3: our 1, 2 and 3.
        unsafe { self.slots[slot].unlink(node) };
        if self.slots[slot].is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    /// The first non-empty slot at or after `from`, by bit scan.
    pub(crate) fn next_occupied(&self, from: usize) -> Option<usize> {
        debug_assert!(from < SLOTS, "scan from slot {from}");
        let candidates = self.occupied & (u64::MAX << from);
        (candidates != 0).then(|| candidates.trailing_zeros() as usize)
    }
}
