//! Borrowed reads under one epoch pin.

use super::{read_turn_owed, Cache};
use crossbeam_epoch::Guard;
use std::borrow::Borrow;
use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::mem::ManuallyDrop;

/// A cache handle pinned to the current epoch: values can be borrowed, not cloned, for as
/// long as it lives. Obtain one with [`Cache::pin`].
///
/// Nothing retired while a `Pinned` exists can be freed, on any thread, in this cache or
/// any other crossbeam-epoch user of the process, until it drops: hold it for a request,
/// not for the life of a connection.
///
/// Reads through it count towards the reads' maintenance turns like [`Cache::get`]; a turn
/// owed is taken when the guard drops, after its pin has ended.
pub struct Pinned<'c, K, V, S> {
    cache: &'c Cache<K, V, S>,
    guard: ManuallyDrop<Guard>,
    /// The segment of a read whose maintenance turn is owed (see `Cache::get`).
    owed: Cell<Option<usize>>,
}

impl<'c, K, V, S> Pinned<'c, K, V, S> {
    pub(super) fn new(cache: &'c Cache<K, V, S>, guard: Guard) -> Self {
        Self {
            cache,
            guard: ManuallyDrop::new(guard),
            owed: Cell::new(None),
        }
    }
}

impl<K, V, S> Pinned<'_, K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// The live value for `key`, borrowed. It stays valid (and is not dropped) while this
    /// guard lives, even if the entry is removed or replaced meanwhile.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key, true).map(|(_, v)| v)
    }

    /// The live entry for `key`: its stored key and value, borrowed.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key, true)
    }

    /// Whether a live entry exists for `key` (not counted as a hit or miss).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key, false).is_some()
    }

    fn find<Q>(&self, key: &Q, count: bool) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &self.cache.inner;
        let (hash, index) = inner.locate(key);
        let found = inner
            .find(hash, index, key, &self.guard, count, count)
            .map(|node| {
                let node = node.get();
                (&node.key, &node.value)
            });
        if read_turn_owed() {
            // Taken when the guard drops, after its pin (the user's) has ended.
            self.owed.set(Some(index));
        }
        found
    }
}

impl<K, V, S> Drop for Pinned<'_, K, V, S> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here; nothing uses the guard afterwards.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if let Some(index) = self.owed.take() {
            self.cache.inner.read_turn(index);
        }
    }
}

impl<K, V, S> fmt::Debug for Pinned<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned").field("cache", self.cache).finish()
    }
}
