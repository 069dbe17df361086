//! One level of the wheel: 64 slot lists and a bitmap of the non-empty ones.

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
/// `node` is alive (scheduled nodes are: they are not `DETACHED`, so not retired) and the
/// caller holds the segment's maintenance lock, which guards every node's `wheel` field.
unsafe fn links<K, V>(node: *mut Node<K, V>) -> (*mut Node<K, V>, *mut Node<K, V>) {
    // SAFETY: see the function contract.
    let cell: &UnsafeCell<WheelLinks<K, V>> = unsafe { &(*node).wheel };
    // SAFETY: the maintenance lock gives us exclusive access to the links.
    cell.with(|l| unsafe { ((*l).prev, (*l).next) })
}

/// Writes a node's wheel links.
///
/// # Safety
/// As for [`links`].
unsafe fn set_links<K, V>(node: *mut Node<K, V>, prev: *mut Node<K, V>, next: *mut Node<K, V>) {
    // SAFETY: see the function contract.
    let cell: &UnsafeCell<WheelLinks<K, V>> = unsafe { &(*node).wheel };
    // SAFETY: the maintenance lock gives us exclusive access to the links.
    cell.with_mut(|l| unsafe { *l = WheelLinks { prev, next } });
}

/// Sets only `prev` (or only `next`) of a neighbour.
///
/// # Safety
/// As for [`links`].
unsafe fn set_prev<K, V>(node: *mut Node<K, V>, prev: *mut Node<K, V>) {
    // SAFETY: see the function contract.
    let cell: &UnsafeCell<WheelLinks<K, V>> = unsafe { &(*node).wheel };
    // SAFETY: the maintenance lock gives us exclusive access to the links.
    cell.with_mut(|l| unsafe { (*l).prev = prev });
}

/// # Safety
/// As for [`links`].
unsafe fn set_next<K, V>(node: *mut Node<K, V>, next: *mut Node<K, V>) {
    // SAFETY: see the function contract.
    let cell: &UnsafeCell<WheelLinks<K, V>> = unsafe { &(*node).wheel };
    // SAFETY: the maintenance lock gives us exclusive access to the links.
    cell.with_mut(|l| unsafe { (*l).next = next });
}

/// Takes `node` out of its list, fixing its neighbours; returns its old successor. The
/// list's head must be fixed by the caller when `node` was first.
///
/// # Safety
/// As for [`links`]; the neighbours are on the same list, so they are live too.
pub(crate) unsafe fn splice_out<K, V>(node: *mut Node<K, V>) -> *mut Node<K, V> {
    // SAFETY: caller's contract.
    unsafe {
        let (prev, next) = links(node);
        if !prev.is_null() && unmark(prev).is_none() {
            set_next(prev, next);
        }
        if !next.is_null() {
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
    /// As for [`links`]; `node` is on no list.
    pub(crate) unsafe fn push(&mut self, mark: *mut Node<K, V>, node: *mut Node<K, V>) {
        // SAFETY: caller's contract; `self.head`, if any, is a scheduled (live) node.
        unsafe {
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
    /// As for [`links`], for every node on the list.
    pub(crate) unsafe fn pop(&mut self) -> Option<*mut Node<K, V>> {
        if self.head.is_null() {
            return None;
        }
        let node = self.head;
        // SAFETY: caller's contract.
        unsafe { self.unlink(node) };
        Some(node)
    }

    /// Unlinks `node`, which is on this list, in O(1).
    ///
    /// # Safety
    /// As for [`links`]; `node` is on this list.
    pub(crate) unsafe fn unlink(&mut self, node: *mut Node<K, V>) {
        // SAFETY: our contract: `node` is alive, on this list (so are its neighbours) and
        // the maintenance lock is held.
        let next = unsafe { splice_out(node) };
        if self.head == node {
            self.head = next;
        }
    }

    /// The level and slot whose list `node` heads, or `None` if it has a predecessor.
    ///
    /// # Safety
    /// As for [`links`].
    pub(crate) unsafe fn head_of(node: *mut Node<K, V>) -> Option<(usize, usize)> {
        // SAFETY: caller's contract.
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
    /// # Safety
    /// As for [`List::push`].
    pub(crate) unsafe fn push(&mut self, level: usize, slot: usize, node: *mut Node<K, V>) {
        // SAFETY: our contract: `node` is alive and on no list; the lock is held.
        unsafe { self.slots[slot].push(mark(level, slot), node) };
        self.occupied |= 1 << slot;
    }

    /// # Safety
    /// As for [`List::pop`].
    pub(crate) unsafe fn pop(&mut self, slot: usize) -> Option<*mut Node<K, V>> {
        // SAFETY: our contract: every node on the slot's list is alive; the lock is held.
        let node = unsafe { self.slots[slot].pop() };
        if self.slots[slot].is_empty() {
            self.occupied &= !(1 << slot);
        }
        node
    }

    /// # Safety
    /// As for [`List::unlink`]; `node` is in `slot`.
    pub(crate) unsafe fn unlink(&mut self, slot: usize, node: *mut Node<K, V>) {
        // SAFETY: our contract: `node` is alive and on `slot`'s list; the lock is held.
        unsafe { self.slots[slot].unlink(node) };
        if self.slots[slot].is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    /// The first non-empty slot at or after `from`, by bit scan.
    pub(crate) fn next_occupied(&self, from: usize) -> Option<usize> {
        let candidates = self.occupied & (u64::MAX << from);
        (candidates != 0).then(|| candidates.trailing_zeros() as usize)
    }
}
