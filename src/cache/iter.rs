//! Iteration and `retain`: every live entry, one segment at a time.
//!
//! Each segment's entries are listed by `Table::list_all` (weakly consistent: an entry
//! present for the whole iteration is listed exactly once, one inserted or removed
//! meanwhile may or may not be) and checked for expiry as they are yielded, so an expired
//! entry is never yielded. Iterating does not count as an access: no hit or miss, no idle
//! time restarted, no eviction counter raised.
//!
//! - [`Iter`] (from [`Pinned::iter`](super::Pinned::iter)) borrows keys and values under
//!   the user's pin, which keeps every listed node alive.
//! - [`IntoClones`] (from [`Cache::iter`]) clones them, pinning only while it lists and
//!   clones one segment's entries, so no pin outlives a segment. With each clone it keeps
//!   the tick from which its entry may have lapsed ([`Inner::lapses_from`]); a clone
//!   yielded at or after that tick is yielded only if a look at the key (not an access)
//!   finds it live then. (Without the look, the clones of a segment listed before its
//!   entries lapsed were yielded after: 99 of 100 in a probe.)
//! - `retain` lists a segment under a pin, asks the predicate about each entry still live,
//!   and removes the refused ones by pointer (`Table::remove_node`), as their remover.

use super::departures::Departures;
use super::read::Look;
use super::{Cache, Inner};
use crate::clock::NEVER;
use crate::entry::node::NodePtr;
use crate::entry::RemovalCause;
use crossbeam_epoch::{self as epoch, Guard};
use std::fmt;
use std::hash::{BuildHasher, Hash};

/// An iterator over the live entries of a cache, borrowing them under a [`Pinned`]
/// guard's pin: see [`Pinned::iter`](super::Pinned::iter).
///
/// [`Pinned`]: super::Pinned
pub struct Iter<'g, K, V, S> {
    inner: &'g Inner<K, V, S>,
    guard: &'g Guard,
    /// The next segment to list.
    segment: usize,
    listed: std::vec::IntoIter<NodePtr<'g, K, V>>,
}

impl<'g, K, V, S> Iter<'g, K, V, S> {
    pub(super) fn new(inner: &'g Inner<K, V, S>, guard: &'g Guard) -> Self {
        Self {
            inner,
            guard,
            segment: 0,
            listed: Vec::new().into_iter(),
        }
    }
}

impl<'g, K, V, S> Iterator for Iter<'g, K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = (&'g K, &'g V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            for node in self.listed.by_ref() {
                if self.inner.live_now(node, false) {
                    let node = node.get();
                    return Some((&node.key, &node.value));
                }
            }
            let segment = self.inner.segments.get(self.segment)?;
            self.segment += 1;
            self.listed = segment.table.list_all(self.guard).into_iter();
        }
    }
}

impl<K, V, S> fmt::Debug for Iter<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("segment", &self.segment)
            .finish_non_exhaustive()
    }
}

/// An iterator over clones of the live entries of a cache: see [`Cache::iter`].
pub struct IntoClones<'c, K, V, S> {
    cache: &'c Cache<K, V, S>,
    /// The next segment to list.
    segment: usize,
    /// The listed segment's live entries, cloned, each with the tick from which it may
    /// have lapsed.
    cloned: std::vec::IntoIter<(K, V, u64)>,
}

impl<'c, K, V, S> IntoClones<'c, K, V, S> {
    pub(super) fn new(cache: &'c Cache<K, V, S>) -> Self {
        Self {
            cache,
            segment: 0,
            cloned: Vec::new().into_iter(),
        }
    }
}

impl<K, V, S> Iterator for IntoClones<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        let inner = &self.cache.inner;
        loop {
            for (key, value, lapses_from) in self.cloned.by_ref() {
                if lapses_from == NEVER || inner.ticker.now() < lapses_from {
                    return Some((key, value));
                }
                let (hash, index) = inner.locate(&key);
                let guard = epoch::pin();
                // Live: the clone made at the listing is yielded, even if the entry has been
                // replaced since (weakly consistent, as the listing is). Swapping in the new
                // value would drop the old clone here, and a panicking `Drop` of it then
                // leaked the new one (`tests/panics.rs`).
                if inner.find(hash, index, &key, &guard, Look::Peek).is_some() {
                    return Some((key, value));
                }
            }
            let segment = inner.segments.get(self.segment)?;
            self.segment += 1;
            let guard = epoch::pin();
            self.cloned = segment
                .table
                .list_all(&guard)
                .into_iter()
                .filter(|n| inner.live_now(*n, false))
                .map(|n| (n.key.clone(), n.value.clone(), inner.lapses_from(&n)))
                .collect::<Vec<_>>()
                .into_iter();
        }
    }
}

impl<K, V, S> fmt::Debug for IntoClones<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoClones")
            .field("segment", &self.segment)
            .finish_non_exhaustive()
    }
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// Removes every live entry `keep` refuses (see [`Cache::retain`]); returns how many.
    pub(super) fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
        let mut removed = 0;
        for index in 0..self.segments.len() {
            let now = self.ticker.now();
            // Declared before the pin, so dropped after it: the departures are delivered
            // unpinned, on return and also if `keep` panics (nothing is left held).
            let mut departed = Departures::new(self, index);
            let guard = epoch::pin();
            let table = &self.segments[index].table;
            for node in table.list_all(&guard) {
                if !self.live_now(node, false) || keep(&node.key, &node.value) {
                    continue;
                }
                if table.remove_node(&node, &guard) {
                    let explicit = RemovalCause::Explicit;
                    let cause = self.departed_by_caller(index, node, explicit, now, &mut departed);
                    removed += usize::from(cause == explicit);
                }
            }
            self.turn_pinned(index, now, &guard, &mut departed);
            drop(guard);
            departed.finish();
        }
        removed
    }
}
