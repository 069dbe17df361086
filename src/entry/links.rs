//! Which of a node's fields each intrusive structure threads it through (the adapters of
//! `crate::intrusive`).
//!
//! - [`WheelField`]: the node's `wheel` links. A wheel slot's list uses `prev` and `next`
//!   while the node is filed there (so `prev` is null exactly when it is in no slot: the
//!   wheel's membership test); while it is in no slot, `next` is its link on at most
//!   one stack: its segment's hand-off (`QUEUED`, not yet scheduled), then its segment's
//!   limbo and a sealed batch once retired (the wheel is done with it). The ground rules in
//!   `node` say who owns the field when.
//! - [`QueueField`]: the extension's links, for the eviction queues of a bounded cache.
//!
//! The adapters only name the field; who may touch it is each `unsafe fn`'s obligation.

use super::layout::ext_of;
use super::node::{Node, NodeLinks};
use crate::intrusive::{ListLinks, StackLink};
use std::marker::PhantomData;

/// A node's `wheel` links: wheel slot lists, the hand-off stack, limbo and sealed batches.
pub(crate) struct WheelField<K, V>(PhantomData<fn() -> (K, V)>);

// SAFETY: `with_links` hands `f` the node's `wheel` field on every call, a field no other
// adapter names (`QueueField` names the extension's), and touches nothing else.
unsafe impl<K, V> ListLinks for WheelField<K, V> {
    type Node = Node<K, V>;

    #[inline]
    unsafe fn with_links<R>(node: *mut Node<K, V>, f: impl FnOnce(&mut NodeLinks<K, V>) -> R) -> R {
        // SAFETY: 1: the node is alive (`with_links`' 1), so a shared reference to its
        // field is valid (only shared references to nodes are ever made).
        let cell = unsafe { &(*node).wheel };
        // SAFETY: 2: no other access to the links exists while `f` runs (`with_links`' 2),
        // so this `&mut` is unique.
        cell.with_mut(|l| f(unsafe { &mut *l }))
    }
}

// SAFETY: `set_next` writes and `next` reads the same field, `wheel.next`, and nothing else.
unsafe impl<K, V> StackLink for WheelField<K, V> {
    type Node = Node<K, V>;

    #[inline]
    unsafe fn set_next(node: *mut Node<K, V>, next: *mut Node<K, V>) {
        // SAFETY: 1: alive (`set_next`'s 1), so a shared reference to its field is valid.
        let cell = unsafe { &(*node).wheel };
        // SAFETY: 2: the link is the caller's alone now (`set_next`'s 2).
        cell.with_mut(|l| unsafe { (*l).next = next });
    }

    #[inline]
    unsafe fn next(node: *mut Node<K, V>) -> *mut Node<K, V> {
        // SAFETY: 1: alive (`next`'s 1), so a shared reference to its field is valid.
        let cell = unsafe { &(*node).wheel };
        // SAFETY: 2: no write races this read, and the last one happens-before it.
        cell.with(|l| unsafe { (*l).next })
    }
}

/// An extended node's queue links: the eviction queues.
pub(crate) struct QueueField<K, V>(PhantomData<fn() -> (K, V)>);

// SAFETY: `with_links` hands `f` the extension's `links` field on every call (a node's
// extension never changes), a field no other adapter names, and writes nothing else (to
// find the field it reads the node's immutable hash word: `EXT`).
unsafe impl<K, V> ListLinks for QueueField<K, V> {
    type Node = Node<K, V>;

    #[inline]
    unsafe fn with_links<R>(node: *mut Node<K, V>, f: impl FnOnce(&mut NodeLinks<K, V>) -> R) -> R {
        // SAFETY: `ext_of`'s 1 and 2: `with_links`' 1; its 3: the reference is used only
        // while `f` runs, when the node is alive (`with_links`' 1).
        let ext = unsafe { ext_of(node) }.expect("a queued node has an extension");
        // SAFETY: `with_links`' 2: no other access to the links exists while `f` runs.
        ext.links.with_mut(|l| f(unsafe { &mut *l }))
    }
}
