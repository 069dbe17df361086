//! One level of the wheel: 64 slot lists and a bitmap of the non-empty ones.

use super::LEVELS;
use crate::entry::links::WheelField;
use crate::entry::node::Node;
use crate::intrusive;
use std::ptr;

/// Slots per level (one `u64` occupancy word).
pub(crate) const SLOTS: usize = 64;

/// A slot's list: nodes threaded through their `wheel` links. Its tag (the first node's
/// `prev`) is a *slot mark* ([`mark`]): which level and slot head it, so cancelling a head
/// needs no deadline (an idle-expiring entry's wheel deadline moves).
pub(crate) type List<K, V> = intrusive::List<WheelField<K, V>>;

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

/// The level and slot whose list `node` heads, or `None` if it has a predecessor.
///
/// # Safety
/// 1. `node` is alive, carries its allocation's provenance, and is on one of the
///    segment's wheel lists.
/// 2. The caller holds the segment's maintenance lock, which guards the `wheel` links of
///    every node on those lists.
pub(crate) unsafe fn head_of<K, V>(node: *mut Node<K, V>) -> Option<(usize, usize)> {
    // SAFETY: `tag_if_first`'s 1 and 2: our 1 and 2.
    let tag = unsafe { intrusive::list::tag_if_first::<WheelField<K, V>>(node) }?;
    let named = unmark(tag);
    debug_assert!(
        named.is_some(),
        "{node:p} leads a list tagged {tag:p}, not a slot mark"
    );
    named
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
    /// 1. `node` is alive, carries its allocation's provenance, and stays alive until it
    ///    is unlinked (popped or cancelled).
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
        // SAFETY: `push_front`'s 1, 2 and 4: our 1, 2 and 4 (the lock guards the `wheel`
        // links of the slot's nodes and of `node`, being linked); its 3: our 3; its 5: a
        // slot mark has the low bit set, and this one names this level (our 5) and slot.
        unsafe { self.slots[slot].push_front(mark(level, slot), node) };
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
        // SAFETY: `pop_front`'s 1 and 2: our 1 and 2.
        let node = unsafe { self.slots[slot].pop_front() };
        if self.slots[slot].is_empty() {
            self.occupied &= !(1 << slot);
        }
        node
    }

    /// Takes `node`, which is in `slot`, out in O(1).
    ///
    /// # Safety
    /// 1. `node` is on `slot`'s list and carries its allocation's provenance.
    /// 2. Every node on that list is alive.
    /// 3. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn unlink(&mut self, slot: usize, node: *mut Node<K, V>) {
        debug_assert!(
            slot < SLOTS && (self.occupied >> slot) & 1 == 1 && self.bit_matches(slot),
            "unlinking {node:p} from slot {slot}, not occupied ({:#x})",
            self.occupied
        );
        // SAFETY: `List::unlink`'s 1, 2 and 3: our 1, 2 and 3.
        let _prev = unsafe { self.slots[slot].unlink(node) };
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
