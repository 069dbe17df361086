//! The public cache: hashing to a segment, the write paths' bookkeeping, and the
//! departure protocol (stats, wheel hand-off, listener).
//!
//! Every operation pins the epoch once, hashes once, and works in one segment. A write
//! that removes an entry — `remove`, a replacing `insert`, `clear`, or the wheel — is the
//! entry's unique *remover* (it won the marking CAS), and the remover alone counts the
//! departure, hands the node to the wheel side (`Segment::removed`) and, after every lock is
//! released, calls the listener. A write whose segment is due (see `segment`) then does a
//! bounded slice of its maintenance (`Segment::maintain` in `Mode::Write`) and frees a
//! bounded number of retired nodes (`Segment::free_ready`), so a busy cache cleans itself.

mod builder;
pub(crate) mod builder_limits {
    pub use super::builder::MAX_SEGMENTS;
}
mod pinned;
mod reaper;

pub use builder::CacheBuilder;
pub use pinned::Pinned;

use crate::clock::{Reading, Ticker, NEVER};
use crate::policy::{notify, Listener, RemovalCause};
use crate::reclaim::Pending;
use crate::segment::{Mode, Segment};
use crate::stats::{CacheStats, Event, Stats};
use crate::table::node::{regular_key, Node, NodePtr};
use crate::table::Insert;
use crossbeam_epoch::{self as epoch, Guard};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long `run_pending_tasks` and `Drop` keep pushing the epoch *without progress*
/// before giving up on a thread that stays pinned (that garbage is then freed whenever
/// the thread unpins).
const FLUSH_PATIENCE: Duration = Duration::from_millis(200);

/// Pushes the epoch until `step()` reports nothing left (`0`). `step` returns a measure of
/// what is left; patience restarts whenever it changes. Spins with yields at first, then
/// sleeps briefly so a descheduled pinned thread can run.
fn push_epoch_until(mut step: impl FnMut() -> usize) {
    let mut patience = crate::sync::Patience::new(FLUSH_PATIENCE);
    let mut last = usize::MAX;
    loop {
        let left = step();
        if left == 0 {
            return;
        }
        if left != last {
            last = left;
            patience.restart();
        } else if patience.exhausted() {
            return;
        }
        epoch::pin().flush();
        patience.pause();
    }
}

/// A concurrent cache in which every entry has a way out: explicit removal, per-entry
/// time-to-live driven by a timing wheel, and memory that follows the live entries.
///
/// `Cache` is a handle: clones share one cache, which is freed when the last handle drops.
/// See the [crate documentation](crate) for the design and an example.
pub struct Cache<K, V, S = ahash::RandomState> {
    inner: Arc<Inner<K, V, S>>,
}

pub(crate) struct Inner<K, V, S> {
    segments: Box<[Segment<K, V>]>,
    segment_bits: u32,
    hasher: S,
    ticker: Ticker,
    ttl: Option<Duration>,
    listener: Option<Listener<K, V>>,
    stats: Stats,
    pending: Arc<Pending>,
    reaper: OnceLock<std::thread::Thread>,
    /// The cache owns `K`s and `V`s: Send/Sync follow theirs (the segments alone, holding
    /// raw pointers behind atomics, would say nothing about them).
    _owns: PhantomData<(K, V)>,
}

impl<K, V, S> Clone for Cache<K, V, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.inner.len())
            .field("segments", &self.inner.segments.len())
            .field("time_to_live", &self.inner.ttl)
            .field("tick", &self.inner.ticker.tick())
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V, ahash::RandomState>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An unbounded cache with no default TTL (entries stay until removed, unless inserted
    /// with [`insert_with_ttl`](Self::insert_with_ttl)).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a configured cache.
    pub fn builder() -> CacheBuilder<K, V, ahash::RandomState> {
        CacheBuilder::new()
    }
}

impl<K, V> Default for Cache<K, V, ahash::RandomState>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// Stores `value` under `key` with the cache's default TTL (no expiry if none is set),
    /// replacing any entry for `key` (the listener hears `Replaced`, or `Expired` if the
    /// old entry had already lapsed).
    pub fn insert(&self, key: K, value: V) {
        self.inner.put(key, value, self.inner.ttl);
    }

    /// Stores `value` under `key`, expiring `ttl` from now (rounded up to the next tick),
    /// replacing any entry for `key` and its TTL.
    ///
    /// A zero `ttl` stores nothing: any entry for `key` is removed (`Replaced`), and
    /// `value` goes straight to the listener as `Expired` and is dropped. TTLs too large
    /// for the clock's range (about 2.28 million years at 1 ms ticks), `Duration::MAX`
    /// included, mean "never expires".
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        self.inner.put(key, value, Some(ttl));
    }

    /// A clone of the live value for `key`. Never returns an expired entry.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let guard = epoch::pin();
        self.inner.find(key, &guard, true).map(|n| n.value.clone())
    }

    /// Pins the epoch so values can be borrowed instead of cloned. Keep the guard short:
    /// while any thread is pinned, memory retired since cannot be freed.
    pub fn pin(&self) -> Pinned<'_, K, V, S> {
        Pinned::new(self, epoch::pin())
    }

    /// Whether a live entry exists for `key` (not counted as a hit or miss).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = epoch::pin();
        self.inner.find(key, &guard, false).is_some()
    }

    /// Removes the entry for `key`, returning a clone of its value if it was live. The
    /// entry's timer is cancelled and its memory freed once no pinned reader can see it.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let guard = epoch::pin();
        self.inner.remove(key, &guard, |node| node.value.clone())
    }

    /// Removes the entry for `key` without cloning its value; true if a live entry left.
    pub fn invalidate<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = epoch::pin();
        self.inner.remove(key, &guard, |_| ()).is_some()
    }

    /// The live value for `key`, or `init()`'s, stored with the default TTL.
    ///
    /// Concurrent callers for one absent key may each run `init`, but exactly one value is
    /// stored and every caller gets a clone of that one; the others are dropped (once).
    /// With a zero default TTL the value is returned but not stored (see
    /// [`insert_with_ttl`](Self::insert_with_ttl)).
    pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        self.inner.get_or_insert_with(key, init)
    }

    /// Entries in the cache. Expired entries count until maintenance removes them; after
    /// [`run_pending_tasks`](Self::run_pending_tasks), with no concurrent writers, this is
    /// exactly the number of live entries.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry (the listener hears `Explicit`, or `Expired` for lapsed ones).
    /// Entries inserted concurrently may survive.
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// Does all pending maintenance now: applies queued timer changes, expires every due
    /// entry, advances shrinking, and pushes memory reclamation forward. When it returns,
    /// and no thread holds an epoch pin, every value removed or expired before the call
    /// has been dropped.
    pub fn run_pending_tasks(&self) {
        self.inner.run_pending_tasks();
    }

    /// A snapshot of the counters (see [`CacheStats`]).
    pub fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot(self.inner.len())
    }

    /// The default TTL used by [`insert`](Self::insert).
    pub fn time_to_live(&self) -> Option<Duration> {
        self.inner.ttl
    }
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    fn segment(&self, hash: u64) -> &Segment<K, V> {
        // Top bits pick the segment; buckets use the low bits, so the two are independent.
        let index = hash.checked_shr(64 - self.segment_bits).unwrap_or(0) as usize;
        &self.segments[index]
    }

    fn deadline(ttl: Option<Duration>, now: Reading) -> u64 {
        ttl.map_or(NEVER, |t| now.deadline_after(t))
    }

    fn expired_now(&self, node: &Node<K, V>) -> bool {
        node.deadline() != NEVER && self.ticker.read().reached(node.deadline())
    }

    fn find<'g, Q>(&self, key: &Q, guard: &'g Guard, count: bool) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let found = self
            .segment(hash)
            .table
            .lookup(regular_key(hash), |n| n.key.borrow() == key, guard)
            .filter(|n| !self.expired_now(n));
        if count {
            self.stats.record(if found.is_some() {
                Event::Hit
            } else {
                Event::Miss
            });
        }
        found
    }

    fn put(&self, key: K, value: V, ttl: Option<Duration>) {
        if ttl.is_some_and(|t| t.is_zero()) {
            return self.put_expired(key, value);
        }
        let hash = self.hash(&key);
        let segment = self.segment(hash);
        let guard = epoch::pin();
        let now = self.ticker.read();
        let node = Box::new(Node::new(hash, key, value, Self::deadline(ttl, now)));
        match segment.table.insert(node, |a, b| a == b, |_| false, &guard) {
            Insert::New(new) => self.linked_new(segment, new, now.tick(), &guard),
            Insert::Replaced { old, new } => {
                self.linked_over(segment, old, new, now.tick(), &guard)
            }
            Insert::Kept { .. } => unreachable!("`keep` refused every existing entry"),
        }
    }

    /// Zero TTL: remove what is there, and hand the value straight to the listener.
    fn put_expired(&self, key: K, value: V) {
        let hash = self.hash(&key);
        let segment = self.segment(hash);
        let guard = epoch::pin();
        let now = self.ticker.now();
        let old = segment
            .table
            .remove(regular_key(hash), |n| n.key == key, &guard);
        let old_cause = old
            .map(|old| self.departed_by_caller(segment, old, RemovalCause::Replaced, now, &guard));
        self.stats
            .record(if old_cause == Some(RemovalCause::Replaced) {
                Event::Update
            } else {
                Event::Insert
            });
        self.stats.record(Event::Expiration);
        if let (Some(old), Some(cause)) = (old, old_cause) {
            self.notify(&old, cause);
        }
        if let Some(listener) = &self.listener {
            notify(listener, &key, &value, RemovalCause::Expired);
        }
    }

    /// Bookkeeping after linking a node under a new key.
    fn linked_new(&self, segment: &Segment<K, V>, new: NodePtr<'_, K, V>, now: u64, guard: &Guard) {
        self.stats.record(Event::Insert);
        segment.linked(new);
        segment.table.maybe_grow();
        self.maintain_after_write(segment, now, guard);
    }

    /// Bookkeeping after `new` replaced `old` (the caller is `old`'s remover).
    fn linked_over(
        &self,
        segment: &Segment<K, V>,
        old: NodePtr<'_, K, V>,
        new: NodePtr<'_, K, V>,
        now: u64,
        guard: &Guard,
    ) {
        let cause = self.departed_by_caller(segment, old, RemovalCause::Replaced, now, guard);
        self.stats.record(if cause == RemovalCause::Replaced {
            Event::Update
        } else {
            Event::Insert
        });
        segment.linked(new);
        self.maintain_after_write(segment, now, guard);
        self.notify(&old, cause);
    }

    /// Remover duties for an entry a caller took out: its cause (`Expired` if it had
    /// lapsed), the count, and the wheel hand-off. The listener is called later.
    fn departed_by_caller(
        &self,
        segment: &Segment<K, V>,
        node: NodePtr<'_, K, V>,
        live_cause: RemovalCause,
        now: u64,
        guard: &Guard,
    ) -> RemovalCause {
        let cause = if node.is_expired(now) {
            self.stats.record(Event::Expiration);
            RemovalCause::Expired
        } else {
            if live_cause == RemovalCause::Explicit {
                self.stats.record(Event::Removal);
            }
            live_cause
        };
        segment.removed(node, guard);
        cause
    }

    fn remove<Q, R>(&self, key: &Q, guard: &Guard, read: impl FnOnce(&Node<K, V>) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let segment = self.segment(hash);
        let node = segment
            .table
            .remove(regular_key(hash), |n| n.key.borrow() == key, guard)?;
        let now = self.ticker.now();
        let cause = self.departed_by_caller(segment, node, RemovalCause::Explicit, now, guard);
        self.maintain_after_write(segment, now, guard);
        self.notify(&node, cause);
        (cause == RemovalCause::Explicit).then(|| read(&node))
    }

    fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        let guard = epoch::pin();
        if let Some(node) = self.find(&key, &guard, false) {
            return node.value.clone();
        }
        let value = init();
        if self.ttl.is_some_and(|t| t.is_zero()) {
            let out = value.clone();
            self.put_expired(key, value);
            return out;
        }
        let hash = self.hash(&key);
        let segment = self.segment(hash);
        let reading = self.ticker.read();
        let now = reading.tick();
        let node = Box::new(Node::new(
            hash,
            key,
            value,
            Self::deadline(self.ttl, reading),
        ));
        let keep = |existing: &Node<K, V>| !existing.is_expired(now);
        match segment.table.insert(node, |a, b| a == b, keep, &guard) {
            Insert::New(new) => {
                self.linked_new(segment, new, now, &guard);
                new.value.clone()
            }
            Insert::Replaced { old, new } => {
                self.linked_over(segment, old, new, now, &guard);
                new.value.clone()
            }
            Insert::Kept { existing, unused } => {
                let value = existing.value.clone();
                drop(unused);
                value
            }
        }
    }

    fn clear(&self) {
        let guard = epoch::pin();
        let now = self.ticker.now();
        for segment in self.segments.iter() {
            let removed = segment.table.mark_all(&guard);
            let causes: Vec<RemovalCause> = removed
                .iter()
                .map(|&n| self.departed_by_caller(segment, n, RemovalCause::Explicit, now, &guard))
                .collect();
            self.maintain_after_write(segment, now, &guard);
            for (node, cause) in removed.into_iter().zip(causes) {
                self.notify(&node, cause);
            }
        }
    }

    /// The write path's bounded slice of maintenance, then the listener for what expired.
    fn maintain_after_write(&self, segment: &Segment<K, V>, now: u64, guard: &Guard) {
        if !segment.due(now) {
            return;
        }
        let mut expired = Vec::new();
        segment.maintain(now, Mode::Write, guard, &mut expired);
        self.expired(&expired);
        segment.free_ready(Mode::Write);
    }

    fn expired(&self, nodes: &[NodePtr<'_, K, V>]) {
        if nodes.is_empty() {
            return;
        }
        self.stats.add(Event::Expiration, nodes.len() as u64);
        for node in nodes {
            self.notify(node, RemovalCause::Expired);
        }
    }

    fn notify(&self, node: &Node<K, V>, cause: RemovalCause) {
        if let Some(listener) = &self.listener {
            notify(listener, &node.key, &node.value, cause);
        }
    }

    /// One full pass over every segment; true if work is left (a shrink in progress).
    fn maintenance_round(&self) -> bool {
        let now = self.ticker.now();
        let mut more = false;
        for segment in self.segments.iter() {
            // A pin per segment, so the epoch can move on between them.
            let guard = epoch::pin();
            let mut expired = Vec::new();
            more |= segment.maintain(now, Mode::Full, &guard, &mut expired);
            self.expired(&expired);
            segment.seal(&guard);
            segment.free_ready(Mode::Full);
        }
        more
    }

    fn run_pending_tasks(&self) {
        // Each round's guard is dropped before the epoch is pushed, or it would hold the
        // epoch back itself. Rounds continue while a shrink waits for its grace period.
        push_epoch_until(|| usize::from(self.maintenance_round()) + self.pending.batches());
    }
}

impl<K, V, S> Inner<K, V, S> {
    fn len(&self) -> usize {
        self.segments.iter().map(|s| s.table.len()).sum()
    }
}

impl<K, V, S> Drop for Inner<K, V, S> {
    fn drop(&mut self) {
        if let Some(reaper) = self.reaper.get() {
            reaper.unpark();
        }
        // Free everything the segments own, then wait (bounded) for batches sealed
        // earlier to clear the epoch, so no value outlives the cache for long.
        drop(std::mem::take(&mut self.segments));
        push_epoch_until(|| self.pending.batches());
    }
}
