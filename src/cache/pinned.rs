//! Borrowed reads under one epoch pin.

use super::maintain::read_turn_owed;
use super::read::Look;
use super::{Cache, Iter};
use crossbeam_epoch::Guard;
use equivalent::Equivalent;
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
/// owed is taken when the guard drops, after its pin has ended. Its reads count as hits
/// and misses, and restart an entry's idle time, as `get`'s do.
///
/// ```
/// use wheelcache::Cache;
///
/// let cache: Cache<String, Vec<u8>> = Cache::new();
/// cache.insert("big".to_string(), vec![7; 4096]);
/// let pinned = cache.pin();
/// let bytes: &Vec<u8> = pinned.get("big").unwrap(); // no clone of the 4 KiB
/// assert_eq!(bytes.len(), 4096);
/// drop(pinned); // end the pin promptly
/// ```
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
    /// guard lives, even if the entry is removed or replaced meanwhile. Never returns an
    /// expired entry; counts as a hit or a miss.
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<&str, String> = Cache::new();
    /// cache.insert("a", "alpha".to_string());
    /// let pinned = cache.pin();
    /// let a = pinned.get("a").unwrap();
    /// cache.insert("a", "aleph".to_string()); // replaced meanwhile...
    /// assert_eq!(a, "alpha");                 // ...the borrow still reads the old value
    /// assert_eq!(pinned.get("a").map(String::as_str), Some("aleph"));
    /// assert_eq!(pinned.get("b"), None);
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.find(key, Look::Get).map(|(_, v)| v)
    }

    /// The live entry for `key`: its stored key and value, borrowed. Counts as a hit or a
    /// miss, like [`get`](Self::get).
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<String, u32> = Cache::new();
    /// cache.insert("visits".to_string(), 3);
    /// let pinned = cache.pin();
    /// let (key, value) = pinned.get_key_value("visits").unwrap();
    /// assert_eq!((key.as_str(), *value), ("visits", 3)); // the stored `String` key
    /// assert!(pinned.get_key_value("nope").is_none());
    /// ```
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.find(key, Look::Get)
    }

    /// Whether a live entry exists for `key`. Not counted as a hit or miss, and not a read
    /// for the entry's idle time.
    ///
    /// ```
    /// use wheelcache::Cache;
    ///
    /// let cache: Cache<u32, u32> = Cache::new();
    /// cache.insert(1, 10);
    /// let pinned = cache.pin();
    /// assert!(pinned.contains_key(&1));
    /// assert!(!pinned.contains_key(&2));
    /// drop(pinned);
    /// assert_eq!((cache.stats().hits, cache.stats().misses), (0, 0));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.find(key, Look::Peek).is_some()
    }

    /// Every live entry, borrowed under this guard's pin (see [`Iter`]): weakly
    /// consistent, so an entry present for the whole iteration is yielded exactly once, an
    /// expired one never, and one inserted or removed meanwhile may or may not be. Not an
    /// access: no hit, no idle time restarted. The pin lasts as long as the guard, so
    /// iterate and drop it; [`Cache::iter`] clones instead and pins only briefly.
    ///
    /// ```
    /// let cache: wheelcache::Cache<u32, String> = wheelcache::Cache::new();
    /// cache.insert(1, "one".into());
    /// cache.insert(2, "two".into());
    /// let pinned = cache.pin();
    /// let total: usize = pinned.iter().map(|(_, v)| v.len()).sum();
    /// assert_eq!(total, 6);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, S> {
        Iter::new(&self.cache.inner, &self.guard)
    }

    fn find<Q>(&self, key: &Q, look: Look) -> Option<(&K, &V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let inner = &self.cache.inner;
        let (hash, index) = inner.locate(key);
        let found = inner.find(hash, index, key, &self.guard, look).map(|node| {
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
        // SAFETY: `ManuallyDrop::drop`'s one obligation, that the value is not used again:
        // this is `Drop`, which runs once, and nothing below touches `self.guard`.
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
