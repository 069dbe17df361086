//! Borrowed reads under one epoch pin.

use super::Cache;
use crossbeam_epoch::Guard;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};

/// A cache handle pinned to the current epoch: values can be borrowed, not cloned, for as
/// long as it lives. Obtain one with [`Cache::pin`].
///
/// Nothing retired while a `Pinned` exists can be freed (on any thread) until it drops, so
/// hold it for a request, not for the life of a connection.
pub struct Pinned<'c, K, V, S> {
    cache: &'c Cache<K, V, S>,
    guard: Guard,
}

impl<'c, K, V, S> Pinned<'c, K, V, S> {
    pub(super) fn new(cache: &'c Cache<K, V, S>, guard: Guard) -> Self {
        Self { cache, guard }
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
        self.cache
            .inner
            .find(key, &self.guard, true)
            .map(|node| &node.value)
    }

    /// The live entry for `key`: its stored key and value, borrowed.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cache
            .inner
            .find(key, &self.guard, true)
            .map(|node| (&node.key, &node.value))
    }

    /// Whether a live entry exists for `key` (not counted as a hit or miss).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cache.inner.find(key, &self.guard, false).is_some()
    }
}

impl<K, V, S> fmt::Debug for Pinned<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned").field("cache", self.cache).finish()
    }
}
